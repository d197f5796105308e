//! Configuration of the PostgreSQL store.

use crm_core::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// How [`crm_core::store::Store::ingest`] writes rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum IngestMode {
    /// Binary `COPY … FROM STDIN` per table: the fastest path on PostgreSQL and Citus.
    #[default]
    Copy,
    /// Multi-row `INSERT … VALUES (…), (…)` statements: for servers that restrict `COPY` (CockroachDB in the
    /// extended protocol, some poolers).
    Insert,
}

/// Where and how to connect.
///
/// Give either [`PgConfig::url`] (`postgres://user:password@host:port/dbname`) or the parts; the parts fill what
/// the URL leaves out. `Debug` never shows the password.
///
/// ```
/// use crm_storage_postgres::PgConfig;
/// let c = PgConfig::from_url("postgres://crm:s3cret@127.0.0.1:5432/crm").with_schema("crm_test");
/// assert!(!format!("{c:?}").contains("s3cret"));
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct PgConfig {
    /// A connection URL; its parts override the fields below.
    pub url: Option<String>,
    /// Host name or address (default `127.0.0.1`).
    pub host: String,
    /// Port (default 5432).
    pub port: u16,
    /// User name (default `crm`).
    pub user: String,
    /// Password, if the server asks for one.
    pub password: Option<String>,
    /// Database name (default `crm`).
    pub dbname: String,
    /// The schema holding the engine's tables, created when missing (default `crm`). Letters, digits and `_`.
    pub schema: String,
    /// Most connections the pool opens (default 16).
    pub pool_size: usize,
    /// How long to wait for a connection, in milliseconds (default 5000).
    pub connect_timeout_ms: u64,
    /// How ingest writes rows.
    pub ingest: IngestMode,
    /// Rows per statement in [`IngestMode::Insert`] (default 500).
    pub insert_batch: usize,
    /// Read only: no migration runs (the schema must be current) and every session is
    /// `default_transaction_read_only`, so the server refuses any write (for dry runs such as `crm-rules replay`).
    pub read_only: bool,
}

impl Default for PgConfig {
    fn default() -> Self {
        Self {
            url: None,
            host: "127.0.0.1".into(),
            port: 5432,
            user: "crm".into(),
            password: None,
            dbname: "crm".into(),
            schema: "crm".into(),
            pool_size: 16,
            connect_timeout_ms: 5000,
            ingest: IngestMode::Copy,
            insert_batch: 500,
            read_only: false,
        }
    }
}

impl fmt::Debug for PgConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgConfig")
            .field("url", &self.url.as_deref().map(redact_url))
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("dbname", &self.dbname)
            .field("schema", &self.schema)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("ingest", &self.ingest)
            .field("insert_batch", &self.insert_batch)
            .field("read_only", &self.read_only)
            .finish()
    }
}

/// Replaces the password of a connection URL (and any `password=` parameter) with `<hidden>`.
fn redact_url(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let authority_end = out[rest_start..]
            .find(['/', '?'])
            .map(|i| rest_start + i)
            .unwrap_or(out.len());
        if let Some(at) = out[rest_start..authority_end].rfind('@') {
            let userinfo = &out[rest_start..rest_start + at];
            if let Some(colon) = userinfo.find(':') {
                out.replace_range(rest_start + colon + 1..rest_start + at, "<hidden>");
            }
        }
    }
    if let Some(i) = out.find("password=") {
        let start = i + "password=".len();
        let end = out[start..]
            .find(['&', ' '])
            .map(|j| start + j)
            .unwrap_or(out.len());
        out.replace_range(start..end, "<hidden>");
    }
    out
}

impl PgConfig {
    /// A configuration from a connection URL, everything else default.
    pub fn from_url(url: impl Into<String>) -> Self {
        Self {
            url: Some(url.into()),
            ..Self::default()
        }
    }

    /// Reads only: no migration runs and the server refuses every write (see the `read_only` field).
    pub fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }

    /// Uses another schema.
    pub fn with_schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// Sets the pool size.
    pub fn with_pool_size(mut self, size: usize) -> Self {
        self.pool_size = size;
        self
    }

    /// Sets the ingest mode.
    pub fn with_ingest(mut self, mode: IngestMode) -> Self {
        self.ingest = mode;
        self
    }

    /// Sets the connection timeout.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout_ms = timeout.as_millis().min(u64::MAX as u128) as u64;
        self
    }

    /// Checks the configuration, naming the first bad field.
    pub fn validate(&self) -> Result<()> {
        if !valid_identifier(&self.schema) {
            return Err(Error::invalid(
                "schema",
                format!(
                    "`{}` is not a plain identifier: use 1–63 lower-case letters, digits and `_`, not starting with a digit",
                    self.schema
                ),
            ));
        }
        if self.pool_size == 0 || self.pool_size > 1000 {
            return Err(Error::invalid("pool_size", "must be between 1 and 1000"));
        }
        if self.connect_timeout_ms == 0 {
            return Err(Error::invalid("connect_timeout_ms", "must be positive"));
        }
        if self.insert_batch == 0 || self.insert_batch > 5000 {
            return Err(Error::invalid("insert_batch", "must be between 1 and 5000"));
        }
        Ok(())
    }

    /// The tokio-postgres configuration, with the schema on the search path of every connection.
    pub(crate) fn to_tokio(&self) -> Result<tokio_postgres::Config> {
        self.validate()?;
        let mut c = match &self.url {
            Some(url) => tokio_postgres::Config::from_str(url).map_err(|e| {
                Error::invalid("url", format!("not a PostgreSQL connection URL: {e}"))
            })?,
            None => {
                let mut c = tokio_postgres::Config::new();
                c.host(&self.host)
                    .port(self.port)
                    .user(&self.user)
                    .dbname(&self.dbname);
                if let Some(p) = &self.password {
                    c.password(p);
                }
                c
            }
        };
        if c.get_hosts().is_empty() {
            c.host(&self.host);
        }
        if c.get_ports().is_empty() {
            c.port(self.port);
        }
        if c.get_user().is_none() {
            c.user(&self.user);
        }
        if c.get_dbname().is_none() {
            c.dbname(&self.dbname);
        }
        if c.get_password().is_none() {
            if let Some(p) = &self.password {
                c.password(p);
            }
        }
        if self.read_only {
            c.options(format!(
                "-c search_path={} -c default_transaction_read_only=on",
                self.schema
            ));
        } else {
            c.options(format!("-c search_path={}", self.schema));
        }
        c.connect_timeout(Duration::from_millis(self.connect_timeout_ms));
        c.application_name("crm-storage-postgres");
        Ok(c)
    }
}

/// Whether `s` is a lower-case SQL identifier that needs no quoting.
pub(crate) fn valid_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && s.len() <= 63
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_passwords() {
        let mut c = PgConfig::from_url("postgres://crm:topsecret@db:5432/crm?password=alsosecret");
        c.password = Some("hunter2".into());
        let s = format!("{c:?}");
        assert!(!s.contains("topsecret"), "{s}");
        assert!(!s.contains("alsosecret"), "{s}");
        assert!(!s.contains("hunter2"), "{s}");
        assert!(s.contains("crm:<hidden>@db:5432/crm"), "{s}");
    }

    #[test]
    fn schema_names_are_checked() {
        for bad in ["", "1x", "a-b", "Crm", "x;drop", &"a".repeat(64)] {
            let e = PgConfig::default().with_schema(bad).validate().unwrap_err();
            assert_eq!(e.field(), Some("schema"), "{bad}");
        }
        assert!(PgConfig::default().with_schema("crm_t1").validate().is_ok());
    }

    #[test]
    fn bad_url_is_invalid_not_a_panic() {
        let e = PgConfig::from_url("postgres://x:y@h:notaport/db")
            .to_tokio()
            .unwrap_err();
        assert_eq!(e.field(), Some("url"));
    }

    #[test]
    fn serde_fills_defaults() {
        let c: PgConfig = serde_json::from_str(r#"{"schema":"t1","ingest":"insert"}"#).unwrap();
        assert_eq!(c.schema, "t1");
        assert_eq!(c.ingest, IngestMode::Insert);
        assert_eq!(c.pool_size, 16);
    }
}
