//! The shared conformance suite (every check, plus the differential property test) on a real PostgreSQL server,
//! each test in its own schema.

mod common;

crm_core::conformance_tests!(common::dyn_store());
