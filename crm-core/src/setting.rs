//! Tenant settings: small named JSON values a tenant keeps (an import's column mapping, a host's preferences).

use crate::error::{Error, Result};
use crate::id::TenantId;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// The most characters of a setting's key.
pub const MAX_KEY: usize = 64;
/// The most bytes of a setting's value, as JSON.
pub const MAX_VALUE: usize = 64 * 1024;

/// A named value of a tenant. Written with [`crate::store::Write::PutSetting`] (a new value replaces the old one),
/// read with [`crate::store::Key::Setting`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Setting {
    tenant: TenantId,
    key: String,
    value: serde_json::Value,
    updated_at: Timestamp,
}

impl Setting {
    /// A setting: `key` is 1 to [`MAX_KEY`] characters of `a-z`, `0-9`, `.`, `_` and `-`; `value` is at most
    /// [`MAX_VALUE`] bytes as JSON.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `key` or `value`.
    pub fn new(
        tenant: TenantId,
        key: &str,
        value: serde_json::Value,
        now: Timestamp,
    ) -> Result<Self> {
        let key = check_key(key)?;
        let size = value.to_string().len();
        if size > MAX_VALUE {
            return Err(Error::invalid(
                "value",
                format!("{size} bytes, at most {MAX_VALUE}"),
            ));
        }
        Ok(Self {
            tenant,
            key,
            value,
            updated_at: now,
        })
    }

    /// The tenant.
    pub fn tenant(&self) -> TenantId {
        self.tenant
    }

    /// The key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The value.
    pub fn value(&self) -> &serde_json::Value {
        &self.value
    }

    /// When it was last written.
    pub fn updated_at(&self) -> Timestamp {
        self.updated_at
    }
}

/// A setting's key as stored, or why it cannot be one (field `key`).
pub fn check_key(key: &str) -> Result<String> {
    let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-');
    if key.is_empty() || key.len() > MAX_KEY || !key.chars().all(ok) {
        return Err(Error::invalid(
            "key",
            format!("`{key}`: 1 to {MAX_KEY} characters of a-z, 0-9, `.`, `_` and `-`"),
        ));
    }
    Ok(key.to_string())
}
