//! The outbox's statements.
