//! Maps SQLite's errors into crm-core's error kinds.

use crm_core::{Error, StorageErrorKind};
use rusqlite::ErrorCode;

/// Converts a rusqlite error into the engine's error: callers never see SQLite result codes.
pub(crate) fn map(e: rusqlite::Error) -> Error {
    match &e {
        rusqlite::Error::SqliteFailure(f, msg) => {
            let text = msg.clone().unwrap_or_else(|| f.to_string());
            match f.code {
                ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
                    Error::storage(StorageErrorKind::Retryable, text)
                }
                ErrorCode::CannotOpen
                | ErrorCode::PermissionDenied
                | ErrorCode::ReadOnly
                | ErrorCode::NotADatabase => Error::storage(StorageErrorKind::Config, text),
                ErrorCode::DatabaseCorrupt => Error::storage(StorageErrorKind::Corrupt, text),
                ErrorCode::ConstraintViolation => {
                    if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY {
                        Error::invalid(
                            "writes",
                            "a write references a record that does not exist in this tenant",
                        )
                    } else {
                        Error::AlreadyExists {
                            entity: "record",
                            key: text,
                        }
                    }
                }
                ErrorCode::DiskFull | ErrorCode::SystemIoFailure => {
                    Error::storage(StorageErrorKind::Unavailable, text)
                }
                _ => Error::storage(StorageErrorKind::Other, text),
            }
        }
        _ => Error::storage(StorageErrorKind::Other, e.to_string()),
    }
}

/// A stored document that does not decode.
pub(crate) fn corrupt(what: &str, e: impl std::fmt::Display) -> Error {
    Error::storage(
        StorageErrorKind::Corrupt,
        format!("stored {what} does not decode: {e}"),
    )
}

/// A call that panicked on a connection thread: a bug, never retryable (a retrying host would loop forever).
pub(crate) fn panicked(payload: &(dyn std::any::Any + Send)) -> Error {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_string());
    Error::storage(
        StorageErrorKind::Internal,
        format!("the SQLite call panicked: {what}"),
    )
}

/// The store's threads are gone (the store was dropped or a thread died).
pub(crate) fn stopped() -> Error {
    Error::storage(
        StorageErrorKind::Unavailable,
        "the SQLite connection thread has stopped",
    )
}
