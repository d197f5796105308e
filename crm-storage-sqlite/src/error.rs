//! Maps SQLite's errors into crm-core's error kinds.

use crm_core::{Error, StorageErrorKind};
use rusqlite::ErrorCode;

/// Converts a rusqlite error into the engine's error by its result code (extended code for constraints), never by
/// its message: callers never see SQLite result codes. The native error is kept as the source.
pub(crate) fn map(e: rusqlite::Error) -> Error {
    use rusqlite::ffi;
    let rusqlite::Error::SqliteFailure(f, msg) = &e else {
        let message = e.to_string();
        return Error::storage_caused(StorageErrorKind::Other, message, e);
    };
    let text = msg.clone().unwrap_or_else(|| f.to_string());
    let kind = match f.code {
        ErrorCode::ConstraintViolation => {
            return match f.extended_code {
                ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                    Error::AlreadyExists {
                        entity: "record",
                        key: text,
                    }
                }
                ffi::SQLITE_CONSTRAINT_FOREIGNKEY => Error::invalid(
                    "writes",
                    "a write references a record that does not exist in this tenant",
                ),
                // CHECK, NOT NULL and the rest: the value broke a rule of the schema.
                _ => Error::invalid("writes", format!("refused by a constraint: {text}")),
            };
        }
        ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => StorageErrorKind::Retryable,
        ErrorCode::CannotOpen
        | ErrorCode::PermissionDenied
        | ErrorCode::ReadOnly
        | ErrorCode::NotADatabase => StorageErrorKind::Config,
        ErrorCode::DatabaseCorrupt => StorageErrorKind::Corrupt,
        ErrorCode::DiskFull | ErrorCode::SystemIoFailure => StorageErrorKind::Unavailable,
        _ => StorageErrorKind::Other,
    };
    Error::storage_caused(kind, text, e)
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

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    /// Constraint violations map by extended result code, and the native error stays reachable as the source.
    #[test]
    fn constraint_violations_map_by_code_and_keep_their_cause() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(
            "PRAGMA foreign_keys = ON;
             CREATE TABLE parent (id INTEGER PRIMARY KEY);
             CREATE TABLE t (id INTEGER PRIMARY KEY, code TEXT UNIQUE, n INTEGER NOT NULL CHECK (n > 0),
                             p INTEGER REFERENCES parent (id));
             INSERT INTO parent VALUES (1); INSERT INTO t VALUES (1, 'a', 1, 1);",
        )
        .unwrap();
        let run = |sql: &str| map(c.execute_batch(sql).unwrap_err());
        assert!(matches!(
            run("INSERT INTO t VALUES (1, 'b', 1, NULL)"),
            Error::AlreadyExists { .. }
        ));
        assert!(matches!(
            run("INSERT INTO t VALUES (2, 'a', 1, NULL)"),
            Error::AlreadyExists { .. }
        ));
        for sql in [
            "INSERT INTO t VALUES (3, 'c', 0, NULL)",
            "INSERT INTO t VALUES (4, 'd', NULL, NULL)",
            "INSERT INTO t VALUES (5, 'e', 1, 99)",
        ] {
            let e = run(sql);
            assert_eq!(e.field(), Some("writes"), "{sql}: {e:?}");
        }
        let e = run("SELECT * FROM no_such_table");
        assert!(matches!(&e, Error::Storage { .. }), "{e:?}");
        let source = std::error::Error::source(&e).expect("the native error is kept");
        assert!(source.to_string().contains("no_such_table"), "{source}");
    }
}
