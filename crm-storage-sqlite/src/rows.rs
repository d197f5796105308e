//! Encoding of records into rows and back.

use crate::error::corrupt;
use crm_core::Result;
use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

/// A UUID as the 16-byte blob SQLite stores.
pub(crate) fn blob(id: &Uuid) -> [u8; 16] {
    *id.as_bytes()
}

/// A blob column back into a UUID.
pub(crate) fn uuid(bytes: &[u8]) -> Result<Uuid> {
    Uuid::from_slice(bytes).map_err(|e| corrupt("id", e))
}

/// A record as JSON text for the `doc` column.
pub(crate) fn doc<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("engine records always serialise")
}

/// The `doc` column back into a record.
pub(crate) fn parse<T: DeserializeOwned>(what: &str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| corrupt(what, e))
}

/// A LIKE pattern matching `needle` anywhere, with `%`, `_` and `\` escaped (use with `ESCAPE '\'`).
pub(crate) fn contains_pattern(needle: &str) -> String {
    let mut p = String::with_capacity(needle.len() + 2);
    p.push('%');
    for c in needle.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}
