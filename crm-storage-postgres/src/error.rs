//! Native PostgreSQL errors mapped into crm-core's error kinds, so callers never match on SQLSTATEs.

use crm_core::{Error, StorageErrorKind};
use deadpool_postgres::PoolError;
use tokio_postgres::error::SqlState;

/// The kind of record a table holds, as error messages name it.
pub(crate) fn entity_of_table(table: &str) -> &'static str {
    match table {
        "partners" => "partner",
        "partner_keys" => "partner key",
        "pipelines" => "pipeline",
        "lost_reasons" => "lost reason",
        "leads" => "lead",
        "lead_tags" => "lead tag",
        "requests" => "request",
        "comments" => "comment",
        "events" => "event",
        "stage_history" => "stage history entry",
        "product_categories" => "product category",
        "products" => "product",
        "exchange_rates" => "exchange rate",
        "campaigns" => "campaign",
        "documents" => "document",
        "document_lines" => "document line",
        "allocations" => "allocation",
        "campaign_costs" => "campaign cost entry",
        "campaign_targets" => "campaign target",
        _ => "record",
    }
}

/// The value part of a constraint-violation detail: `Key (tenant, id)=(a, b) already exists.` gives `b`.
fn key_of_detail(detail: Option<&str>) -> String {
    let Some(d) = detail else {
        return "?".into();
    };
    let values = d
        .split_once(")=(")
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(v, _)| v);
    match values {
        // The tenant comes first in every key: name only the rest.
        Some(v) => v.split_once(", ").map(|(_, k)| k).unwrap_or(v).to_string(),
        None => "?".into(),
    }
}

/// The column of a foreign key that points nowhere: `Key (tenant, partner)=(…) is not present …` gives `partner`.
fn column_of_detail(detail: Option<&str>) -> String {
    detail
        .and_then(|d| d.split_once("Key ("))
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(cols, _)| cols.rsplit(", ").next().unwrap_or(cols).to_string())
        .unwrap_or_else(|| "reference".into())
}

/// Maps a tokio-postgres error.
pub(crate) fn map_pg(e: tokio_postgres::Error) -> Error {
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        let kind =
            |k: StorageErrorKind| Error::storage(k, format!("{} ({})", db.message(), code.code()));
        return if *code == SqlState::UNIQUE_VIOLATION {
            Error::AlreadyExists {
                entity: entity_of_table(db.table().unwrap_or("")),
                key: key_of_detail(db.detail()),
            }
        } else if *code == SqlState::FOREIGN_KEY_VIOLATION {
            let col = column_of_detail(db.detail());
            Error::invalid(
                col.clone(),
                format!("refers to a {col} that does not exist in this tenant"),
            )
        } else if *code == SqlState::T_R_SERIALIZATION_FAILURE
            || *code == SqlState::T_R_DEADLOCK_DETECTED
            || *code == SqlState::LOCK_NOT_AVAILABLE
            || *code == SqlState::QUERY_CANCELED
        {
            kind(StorageErrorKind::Retryable)
        } else if code.code().starts_with("08")
            || *code == SqlState::ADMIN_SHUTDOWN
            || *code == SqlState::CRASH_SHUTDOWN
            || *code == SqlState::CANNOT_CONNECT_NOW
            || *code == SqlState::TOO_MANY_CONNECTIONS
        {
            kind(StorageErrorKind::Unavailable)
        } else if *code == SqlState::INVALID_PASSWORD
            || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
            || *code == SqlState::INVALID_CATALOG_NAME
            || *code == SqlState::INSUFFICIENT_PRIVILEGE
            || *code == SqlState::UNDEFINED_TABLE
        {
            kind(StorageErrorKind::Config)
        } else if *code == SqlState::UNTRANSLATABLE_CHARACTER
            || *code == SqlState::CHARACTER_NOT_IN_REPERTOIRE
            || *code == SqlState::NUMERIC_VALUE_OUT_OF_RANGE
            || *code == SqlState::STRING_DATA_RIGHT_TRUNCATION
        {
            Error::invalid("value", format!("refused by PostgreSQL: {}", db.message()))
        } else {
            kind(StorageErrorKind::Other)
        };
    }
    let text = e.to_string();
    let lower = text.to_lowercase();
    if e.is_closed()
        || lower.contains("connect")
        || lower.contains("communicating")
        || lower.contains("closed")
    {
        return Error::storage(
            StorageErrorKind::Unavailable,
            format!("PostgreSQL connection lost or refused: {text}; retry later"),
        );
    }
    if lower.contains("deserializing") {
        return Error::storage(
            StorageErrorKind::Corrupt,
            format!("a stored row could not be decoded: {text}"),
        );
    }
    if lower.contains("timed out") {
        return Error::storage(StorageErrorKind::Unavailable, text);
    }
    Error::storage(StorageErrorKind::Other, text)
}

/// Maps a pool error.
pub(crate) fn map_pool(e: PoolError) -> Error {
    match e {
        PoolError::Backend(e) => map_pg(e),
        PoolError::Timeout(t) => Error::storage(
            StorageErrorKind::Unavailable,
            format!("no PostgreSQL connection became available ({t:?} timeout); retry later"),
        ),
        PoolError::Closed => Error::storage(
            StorageErrorKind::Unavailable,
            "the connection pool is closed",
        ),
        other => Error::storage(StorageErrorKind::Unavailable, other.to_string()),
    }
}

/// A row whose stored document does not decode.
pub(crate) fn corrupt(what: &str, e: impl std::fmt::Display) -> Error {
    Error::storage(
        StorageErrorKind::Corrupt,
        format!("stored {what} could not be decoded: {e}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_are_parsed() {
        assert_eq!(
            key_of_detail(Some("Key (tenant, id)=(t1, l1) already exists.")),
            "l1"
        );
        assert_eq!(key_of_detail(None), "?");
        assert_eq!(
            column_of_detail(Some(
                "Key (tenant, partner)=(t, p) is not present in table \"partners\"."
            )),
            "partner"
        );
        assert_eq!(entity_of_table("leads"), "lead");
    }
}
