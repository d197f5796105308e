//! The shared storage conformance suite (being written).
