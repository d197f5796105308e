//! The benchmark suite shared by `benches/report.rs` (the report runner), `benches/micro.rs` (criterion) and
//! `tests/bench_smoke.rs` (the CI smoke test): a seeded data generator writing through `Store::ingest`, and the
//! workloads, each written twice — through the engine (`Impl::Ours`) and as plain SQL with prepared statements on
//! the same schema and data (`Impl::Sql`) — returning a digest that must be equal between the two.
//!
//! Each including target uses a different subset, hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod floor;
pub mod footprint;
pub mod gen;
pub mod pgsql;
pub mod record;
pub mod work;
