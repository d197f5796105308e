//! Products and product categories, recorded by the host under its own codes.

use crate::error::{Error, Result};
use crate::id::{CategoryId, ProductId, TenantId};
use crate::time::Timestamp;
use crate::validate;
use serde::{Deserialize, Serialize};

/// The longest host code (product code, category code, document number) accepted.
pub const MAX_CODE: usize = 64;

/// Checks a host code: trimmed, non-empty, at most [`MAX_CODE`] characters, no control characters.
pub fn code(field: &str, value: &str) -> Result<String> {
    validate::bounded(field, value, MAX_CODE, true)
}

record! {
    /// A product category (flat; a product belongs to at most one).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Category {
        /// The category's id.
        id: CategoryId,
        /// The tenant.
        tenant: TenantId,
        /// The host's code, unique per tenant.
        code: String => &str = borrow,
        /// Display name.
        name: String => &str = borrow,
        /// Optimistic-concurrency version, 1 on creation.
        version: u64,
        /// When it was first recorded.
        created_at: Timestamp,
        /// When it last changed.
        updated_at: Timestamp,
    }
}

record! {
    /// A product the tenant sells.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Product {
        /// The product's id.
        id: ProductId,
        /// The tenant.
        tenant: TenantId,
        /// The host's code (SKU), unique per tenant.
        code: String => &str = borrow,
        /// Display name.
        name: String => &str = borrow,
        /// Its category.
        category: Option<CategoryId>,
        /// Optimistic-concurrency version, 1 on creation.
        version: u64,
        /// When it was first recorded.
        created_at: Timestamp,
        /// When it last changed.
        updated_at: Timestamp,
    }
}

/// Input for recording a category.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewCategory {
    /// The host's code (required, unique per tenant).
    pub code: String,
    /// Display name (required).
    pub name: String,
}

/// Input for recording a product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewProduct {
    /// The host's code (required, unique per tenant).
    pub code: String,
    /// Display name (required).
    pub name: String,
    /// Its category.
    pub category: Option<CategoryId>,
}

/// What recording a host record decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded<T> {
    /// The same record was already there: nothing to write.
    Unchanged(T),
    /// A new record.
    Inserted(T),
    /// A changed record replacing the stored one, which had `expected_version`.
    Replaced {
        /// The new state (version bumped).
        record: T,
        /// The stored version it replaces.
        expected_version: u64,
    },
}

impl<T> Recorded<T> {
    /// The record, whatever happened.
    pub fn record(&self) -> &T {
        match self {
            Self::Unchanged(r) | Self::Inserted(r) => r,
            Self::Replaced { record, .. } => record,
        }
    }

    /// Whether anything is to be written.
    pub fn changed(&self) -> bool {
        !matches!(self, Self::Unchanged(_))
    }
}

/// Decides between no-op, insert and versioned replace for host records keyed by their code or number.
pub(crate) fn decide_replace(
    entity: &'static str,
    key: &str,
    stored_version: u64,
    given: Option<u64>,
) -> Result<u64> {
    match given {
        None => Err(Error::invalid(
            "version",
            format!(
                "{entity} `{key}` is already recorded with different content; pass its version ({stored_version}) \
                 to replace it"
            ),
        )),
        Some(v) if v != stored_version => Err(Error::Conflict {
            entity,
            id: key.to_string(),
            expected: v,
            actual: stored_version,
        }),
        Some(v) => Ok(v),
    }
}

impl NewCategory {
    /// Validates and decides how to record the category against the stored one with the same code, if any.
    /// `version` is the stored version the host says it changes (needed only when the content differs).
    pub fn record(
        self,
        tenant: TenantId,
        existing: Option<&Category>,
        version: Option<u64>,
        now: Timestamp,
    ) -> Result<Recorded<Category>> {
        let code = code("code", &self.code)?;
        let name = validate::name("name", &self.name)?;
        match existing {
            None => Ok(Recorded::Inserted(Category {
                id: CategoryId::new(),
                tenant,
                code,
                name,
                version: 1,
                created_at: now,
                updated_at: now,
            })),
            Some(old) if old.name == name => Ok(Recorded::Unchanged(old.clone())),
            Some(old) => {
                let expected_version =
                    decide_replace("product category", &code, old.version, version)?;
                let mut record = old.clone();
                record.name = name;
                record.version += 1;
                record.updated_at = now;
                Ok(Recorded::Replaced {
                    record,
                    expected_version,
                })
            }
        }
    }
}

impl NewProduct {
    /// Validates and decides how to record the product against the stored one with the same code, if any. The
    /// caller has checked that `category` exists in the tenant.
    pub fn record(
        self,
        tenant: TenantId,
        existing: Option<&Product>,
        version: Option<u64>,
        now: Timestamp,
    ) -> Result<Recorded<Product>> {
        let code = code("code", &self.code)?;
        let name = validate::name("name", &self.name)?;
        match existing {
            None => Ok(Recorded::Inserted(Product {
                id: ProductId::new(),
                tenant,
                code,
                name,
                category: self.category,
                version: 1,
                created_at: now,
                updated_at: now,
            })),
            Some(old) if old.name == name && old.category == self.category => {
                Ok(Recorded::Unchanged(old.clone()))
            }
            Some(old) => {
                let expected_version = decide_replace("product", &code, old.version, version)?;
                let mut record = old.clone();
                record.name = name;
                record.category = self.category;
                record.version += 1;
                record.updated_at = now;
                Ok(Recorded::Replaced {
                    record,
                    expected_version,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    #[test]
    fn product_recording_is_idempotent_by_code() {
        let t = TenantId::new();
        let now = Utc::now();
        let np = NewProduct {
            code: " P-1 ".into(),
            name: "Drill".into(),
            category: None,
        };
        let p = match np.clone().record(t, None, None, now).unwrap() {
            Recorded::Inserted(p) => p,
            other => panic!("expected insert, got {other:?}"),
        };
        assert_eq!(p.code, "P-1");
        assert!(!np.clone().record(t, Some(&p), None, now).unwrap().changed());
        let renamed = NewProduct {
            name: "Hammer drill".into(),
            ..np
        };
        let e = renamed.clone().record(t, Some(&p), None, now).unwrap_err();
        assert_eq!(e.field(), Some("version"));
        let e = renamed
            .clone()
            .record(t, Some(&p), Some(7), now)
            .unwrap_err();
        assert!(matches!(e, Error::Conflict { actual: 1, .. }), "{e}");
        match renamed.record(t, Some(&p), Some(1), now).unwrap() {
            Recorded::Replaced {
                record,
                expected_version,
            } => {
                assert_eq!(record.version, 2);
                assert_eq!(expected_version, 1);
                assert_eq!(record.id, p.id);
            }
            other => panic!("expected replace, got {other:?}"),
        }
    }

    #[test]
    fn empty_code_is_refused() {
        let e = NewCategory {
            code: "  ".into(),
            name: "Tools".into(),
        }
        .record(TenantId::new(), None, None, Utc::now())
        .unwrap_err();
        assert_eq!(e.field(), Some("code"));
    }
}
