//! Native PostgreSQL errors mapped into crm-core's error kinds, so callers never match on SQLSTATEs.

#[cfg(test)]
use crm_core::StorageSource;
use crm_core::{Error, StorageErrorKind};
use deadpool_postgres::PoolError;
use tokio_postgres::error::SqlState;

/// The kind of record a table holds, as error messages name it.
pub(crate) fn entity_of_table(table: &str) -> &'static str {
    match table {
        "partners" => "partner",
        "partner_keys" => "partner key",
        "contact_refs" => "contact",
        "settings" => "setting",
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

/// Maps a tokio-postgres error by its SQLSTATE (database errors) or by what the client reports (a closed connection,
/// an I/O error underneath), never by matching message text. The native error is kept as the source.
pub(crate) fn map_pg(e: tokio_postgres::Error) -> Error {
    if let Some(db) = e.as_db_error() {
        let code = db.code().to_owned();
        let message = format!("{} ({})", db.message(), code.code());
        let class = &code.code()[..2];
        if code == SqlState::UNIQUE_VIOLATION {
            return Error::AlreadyExists {
                entity: entity_of_table(db.table().unwrap_or("")),
                key: key_of_detail(db.detail()),
            };
        }
        if code == SqlState::FOREIGN_KEY_VIOLATION {
            let col = column_of_detail(db.detail());
            return Error::invalid(
                col.clone(),
                format!("refers to a {col} that does not exist in this tenant"),
            );
        }
        if class == "23" {
            // Integrity constraints other than unique and foreign keys: check, not-null, exclusion.
            let what = db
                .column()
                .or(db.constraint())
                .unwrap_or("value")
                .to_string();
            return Error::invalid(what, format!("refused by PostgreSQL: {}", db.message()));
        }
        if class == "22" {
            // Data exceptions: out of range, untranslatable characters, truncation.
            return Error::invalid("value", format!("refused by PostgreSQL: {}", db.message()));
        }
        let kind = if class == "40"
            || code == SqlState::LOCK_NOT_AVAILABLE
            || code == SqlState::QUERY_CANCELED
        {
            // Transaction rollback: serialization failure, deadlock.
            StorageErrorKind::Retryable
        } else if class == "08" || class == "57" || code == SqlState::TOO_MANY_CONNECTIONS {
            // Connection exceptions, operator intervention (shutdown, cannot connect now).
            StorageErrorKind::Unavailable
        } else if class == "28"
            || class == "3D"
            || code == SqlState::INSUFFICIENT_PRIVILEGE
            || code == SqlState::UNDEFINED_TABLE
        {
            // Authorization, unknown database, missing table or privilege: the configuration is wrong.
            StorageErrorKind::Config
        } else {
            StorageErrorKind::Other
        };
        return Error::storage_caused(kind, message, e);
    }
    if e.is_closed() {
        return Error::storage_caused(
            StorageErrorKind::Unavailable,
            "PostgreSQL connection lost; retry later",
            e,
        );
    }
    let io = std::error::Error::source(&e).and_then(|s| s.downcast_ref::<std::io::Error>());
    if let Some(io) = io {
        let message = format!("PostgreSQL connection failed ({}); retry later", io.kind());
        return Error::storage_caused(StorageErrorKind::Unavailable, message, e);
    }
    let message = e.to_string();
    Error::storage_caused(StorageErrorKind::Other, message, e)
}

/// Maps a pool error.
pub(crate) fn map_pool(e: PoolError) -> Error {
    match e {
        PoolError::Backend(e) => map_pg(e),
        PoolError::Timeout(t) => Error::storage_caused(
            StorageErrorKind::Unavailable,
            format!("no PostgreSQL connection became available ({t:?} timeout); retry later"),
            PoolError::Timeout(t),
        ),
        PoolError::Closed => Error::storage(
            StorageErrorKind::Unavailable,
            "the connection pool is closed",
        ),
        other => Error::storage_caused(StorageErrorKind::Unavailable, other.to_string(), other),
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

    /// Constraint violations map by SQLSTATE, and the native error stays reachable as the source.
    #[tokio::test]
    async fn constraint_violations_map_by_code_and_keep_their_cause() {
        let url = match std::env::var("CRM_TEST_POSTGRES_URL") {
            Ok(u) => u,
            Err(_) => {
                assert_ne!(
                    std::env::var("CRM_REQUIRE_POSTGRES").as_deref(),
                    Ok("1"),
                    "CRM_REQUIRE_POSTGRES=1 but CRM_TEST_POSTGRES_URL is not set"
                );
                return;
            }
        };
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
            .batch_execute(
                "CREATE TEMP TABLE parent (id int PRIMARY KEY);
                 CREATE TEMP TABLE t (id int PRIMARY KEY, n int NOT NULL CHECK (n > 0),
                                      p int REFERENCES parent (id));
                 INSERT INTO parent VALUES (1); INSERT INTO t VALUES (1, 1, 1);",
            )
            .await
            .unwrap();
        let run = |sql: &'static str| {
            let client = &client;
            async move { map_pg(client.batch_execute(sql).await.unwrap_err()) }
        };
        assert!(matches!(
            run("INSERT INTO t VALUES (1, 2, NULL)").await,
            Error::AlreadyExists { .. }
        ));
        assert_eq!(
            run("INSERT INTO t VALUES (2, 0, NULL)").await.field(),
            Some("t_n_check")
        );
        assert_eq!(
            run("INSERT INTO t VALUES (3, NULL, NULL)").await.field(),
            Some("n")
        );
        assert!(matches!(
            run("INSERT INTO t VALUES (4, 1, 99)").await,
            Error::Invalid { .. }
        ));
        let e = run("SELECT * FROM no_such_table").await;
        assert_eq!(e.storage_kind(), Some(StorageErrorKind::Config), "{e:?}");
        assert!(e.to_string().contains("no_such_table"), "{e}");
        let source = std::error::Error::source(&e).expect("the native error is kept");
        let native = source
            .downcast_ref::<StorageSource>()
            .and_then(|s| s.get().downcast_ref::<tokio_postgres::Error>())
            .expect("the source is the tokio-postgres error");
        assert_eq!(native.code(), Some(&SqlState::UNDEFINED_TABLE));
    }

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
