//! The sales roll-ups on SQLite, tampered with by hand: `verify_rollups` finds it and `rebuild_rollups` repairs
//! it (crm-core's `check_rollup_repair`; the roll-ups' upkeep itself runs in the conformance suite).

use crm_core::commerce::{CampaignMeasuresExt as _, CommerceStore};
use crm_core::id::TenantId;
use crm_core::store::Store;
use crm_storage_sql::{Runner, Sql};
use crm_storage_sqlite::SqliteStore;
use futures::FutureExt;
use std::sync::Arc;

#[tokio::test]
async fn tampered_campaign_rollups_are_found_and_rebuilt() {
    let sqlite = SqliteStore::open_temporary().expect("open");
    let store: Arc<dyn Store> = Arc::new(sqlite.clone());
    let commerce: Arc<dyn CommerceStore> = Arc::new(sqlite.clone());
    crm_core::conformance::commerce::check_campaign_rollup_repair(&store, &commerce, |tenant: TenantId| {
        let sqlite = sqlite.clone();
        async move {
            for text in [
                "UPDATE campaign_reach SET customers = customers + 5 WHERE tenant = ?1 AND grain = 2",
                "DELETE FROM campaign_customers WHERE tenant = ?1 AND grain = 0",
            ] {
                let (mut sql, _) = Sql::for_tenant(sqlite.dialect(), tenant);
                sql.text = text.to_string();
                sqlite.execute(sql).await.expect("tamper");
            }
        }
        .boxed()
    })
    .await;
}

/// The campaign report's counts of the targets, tampered with: the check lists them, a rebuild repairs them
/// (crm-core's `check_target_count_repair`).
#[tokio::test]
async fn tampered_target_counts_are_found_and_rebuilt() {
    let sqlite = SqliteStore::open_temporary().expect("open");
    let store: Arc<dyn Store> = Arc::new(sqlite.clone());
    let commerce: Arc<dyn CommerceStore> = Arc::new(sqlite.clone());
    crm_core::conformance::target_counts::check_target_count_repair(
        &store,
        &commerce,
        |tenant: TenantId| {
            let sqlite = sqlite.clone();
            async move {
                for text in [
                    "UPDATE campaign_target_counts SET n = n + 2 WHERE tenant = ?1 AND kind = 0",
                    "DELETE FROM campaign_target_counts WHERE tenant = ?1 AND kind = 1",
                ] {
                    let (mut sql, _) = Sql::for_tenant(sqlite.dialect(), tenant);
                    sql.text = text.to_string();
                    sqlite.execute(sql).await.expect("tamper");
                }
            }
            .boxed()
        },
    )
    .await;
}

#[tokio::test]
async fn tampered_rollups_are_found_and_rebuilt() {
    let sqlite = SqliteStore::open_temporary().expect("open");
    let store: Arc<dyn Store> = Arc::new(sqlite.clone());
    let commerce: Arc<dyn CommerceStore> = Arc::new(sqlite.clone());
    crm_core::conformance::commerce::check_rollup_repair(&store, &commerce, |tenant: TenantId| {
        let sqlite = sqlite.clone();
        async move {
            for text in [
                "UPDATE sales_months SET revenue_units = revenue_units + 1 WHERE tenant = ?1",
                // March 2026: month index 2026 * 12 + 2.
                "DELETE FROM sales_months WHERE tenant = ?1 AND month = 24314",
                "UPDATE partner_last_sales SET last_sale = last_sale - 1 WHERE tenant = ?1",
                // February 2026.
                "DELETE FROM bought_months WHERE tenant = ?1 AND month = 24313",
                // The groups' (dim 1) January 10th, 2026 (day number 739626).
                "UPDATE sales_days SET revenue_units = revenue_units + 1 WHERE tenant = ?1 AND dim = 1 \
                 AND day = 739626",
                "UPDATE sales_years SET revenue_units = revenue_units + 1 WHERE tenant = ?1 AND year = 2026",
            ] {
                let (mut sql, _) = Sql::for_tenant(sqlite.dialect(), tenant);
                sql.text = text.to_string();
                sqlite.execute(sql).await.expect("tamper");
            }
        }
        .boxed()
    })
    .await;
}

/// A database from before the roll-ups (migration 15) gets them built from its documents by migrations 16, 17, 21, 25
/// and 28, its documents' lines, which their JSON carried until migration 20, moved into `document_lines`, and the
/// fields its columns hold taken out of the JSON by migration 29: every document reads back exactly as before, and
/// no stored JSON keeps its lines or a field a column holds.
#[tokio::test]
async fn the_migration_builds_the_rollups_of_existing_documents() {
    use crm_core::commerce::{GroupBy, Period, SumsQuery};
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("crm.sqlite");
    let sqlite = SqliteStore::open_file(&path).expect("open");
    let store: Arc<dyn Store> = Arc::new(sqlite.clone());
    let commerce: Arc<dyn CommerceStore> = Arc::new(sqlite.clone());
    let (tenant, reporting) =
        crm_core::conformance::commerce::record_sample_sales(&store, &commerce).await;
    let year = Period::new(
        chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
        chrono::NaiveDate::from_ymd_opt(2026, 12, 31).unwrap(),
    )
    .unwrap();
    let q = SumsQuery::by(GroupBy::Group, year, reporting);
    let want = commerce.profit_sums(tenant, &q).await.unwrap();
    assert!(!want.is_empty());
    let campaigns = commerce
        .campaigns_sums(tenant, None, reporting)
        .await
        .unwrap();
    assert!(
        campaigns
            .iter()
            .any(|c| (c.sums.targets, c.sums.reached, c.sums.outcomes.len()) == (2, 1, 2)),
        "{campaigns:?}"
    );
    let docs = crm_core::conformance::commerce::documents_json(commerce.as_ref(), tenant).await;
    // Back to migration 15: no roll-up table, no holdout column, no score index, the lines in the documents' JSON
    // and not in columns of their own, no bulk-load tables.
    let lines_back = format!(
        "UPDATE documents SET doc = {};",
        crm_storage_sql::commerce::document_doc(crm_storage_sql::Dialect::Sqlite, "documents")
    );
    let drop_columns: String = crm_storage_sql::commerce::LINE_DECIMALS
        .iter()
        .map(|c| format!("ALTER TABLE document_lines DROP COLUMN {c};"))
        .collect();
    sqlite
        .with_writer(move |c| {
            c.execute_batch(&format!(
                "{lines_back} {drop_columns} \
                 DROP TABLE sales_months; DROP TABLE partner_last_sales; DROP TABLE bought_months; \
                 DROP TABLE sales_days; DROP TABLE bulk_loads; DROP TABLE deferred_indexes; \
                 DROP TABLE campaign_customers; DROP TABLE campaign_reach; DROP TABLE sales_years; \
                 DROP TABLE campaign_target_counts; \
                 DROP INDEX leads_campaign_partner; DROP INDEX leads_campaign_created; DROP INDEX leads_by_campaign; \
                 ALTER TABLE leads DROP COLUMN campaign; \
                 CREATE INDEX leads_by_campaign ON leads (tenant, json_extract(doc, '$.source.campaign'), created_at, \
                 status) WHERE json_extract(doc, '$.source.campaign') IS NOT NULL; \
                 ALTER TABLE campaign_targets DROP COLUMN holdout; DROP INDEX leads_by_score; \
                 PRAGMA user_version = 15;",
            ))
            .map_err(|e| crm_core::Error::invalid("sql", e.to_string()))
        })
        .await
        .unwrap();
    drop((store, commerce, sqlite));
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        let with_lines: i64 = c
            .query_row(
                "SELECT count(*) FROM documents WHERE json_type(doc, '$.lines') = 'array'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(with_lines as usize, docs.len(), "rewound to the old form");
        let with_columns: i64 = c
            .query_row(
                "SELECT count(*) FROM documents WHERE json_type(doc, '$.tenant') = 'text' \
                 AND json_type(doc, '$.attrs') = 'object' AND json_type(doc, '$.version') = 'integer'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(with_columns as usize, docs.len(), "the columns' fields too");
    }
    let reopened = SqliteStore::open_file(&path).expect("migrate");
    assert_eq!(reopened.profit_sums(tenant, &q).await.unwrap(), want);
    assert_eq!(
        reopened
            .campaigns_sums(tenant, None, reporting)
            .await
            .unwrap(),
        campaigns,
        "the campaign report's counts of the targets are built by migration 32"
    );
    assert_eq!(
        crm_core::conformance::commerce::documents_json(&reopened, tenant).await,
        docs
    );
    let (mut sql, _) = Sql::for_tenant(reopened.dialect(), tenant);
    sql.text =
        "SELECT count(*) FROM documents WHERE tenant = ?1 AND json_type(doc, '$.lines') IS NOT NULL"
            .to_string();
    let kept = reopened.rows(sql, false).await.unwrap();
    assert_eq!(
        kept[0][0].count("count").unwrap(),
        0,
        "no stored JSON keeps its lines"
    );
    let fields = crm_storage_sql::commerce::DOCUMENT_COLUMN_FIELDS.map(|f| format!("'$.{f}'"));
    let (mut sql, _) = Sql::for_tenant(reopened.dialect(), tenant);
    sql.text = format!(
        "SELECT count(*) FROM documents, json_each(documents.doc) f WHERE tenant = ?1 \
         AND f.fullkey IN ({})",
        fields.join(", ")
    );
    let kept = reopened.rows(sql, false).await.unwrap();
    assert_eq!(
        kept[0][0].count("count").unwrap(),
        0,
        "no stored JSON keeps a field its columns hold"
    );
    let check = reopened
        .rollups(tenant, crm_core::commerce::RollupAction::Verify)
        .await
        .unwrap();
    assert!(check.is_clean(), "{check:?}");
}

/// Records the sample sales on a fresh file, runs `tamper` (an adapter statement on the tenant, `?1`) and checks
/// that `verify_rollups` then fails with corrupt storage (`what` names the bad value).
async fn verify_is_corrupt_after(tamper: &str, what: &str) {
    let sqlite = SqliteStore::open_temporary().expect("open");
    let store: Arc<dyn Store> = Arc::new(sqlite.clone());
    let commerce: Arc<dyn CommerceStore> = Arc::new(sqlite.clone());
    let (tenant, _) = crm_core::conformance::commerce::record_sample_sales(&store, &commerce).await;
    assert!(commerce
        .rollups(tenant, crm_core::commerce::RollupAction::Verify)
        .await
        .unwrap()
        .is_clean());
    let (mut sql, _) = Sql::for_tenant(sqlite.dialect(), tenant);
    sql.text = tamper.to_string();
    assert!(
        sqlite.execute(sql).await.expect("tamper") > 0,
        "the sample has rows to tamper with"
    );
    let err = commerce
        .rollups(tenant, crm_core::commerce::RollupAction::Verify)
        .await
        .expect_err(what);
    assert!(
        matches!(
            err,
            crm_core::Error::Storage {
                kind: crm_core::StorageErrorKind::Corrupt,
                ..
            }
        ),
        "{err:?}"
    );
}

/// A stored day roll-up row whose day is no date is reported as corrupt storage by `verify_rollups`, not read as
/// some other day.
#[tokio::test]
async fn a_day_row_that_is_no_date_is_corrupt() {
    verify_is_corrupt_after(
        "UPDATE sales_days SET day = day + 1099511627776 WHERE tenant = ?1",
        "a day out of range",
    )
    .await;
}

/// A stored campaign roll-up row whose bucket is none of month, quarter, year or all time is reported as corrupt
/// storage by `verify_rollups`, not read as some other bucket.
#[tokio::test]
async fn a_campaign_row_of_no_bucket_is_corrupt() {
    verify_is_corrupt_after(
        "UPDATE campaign_customers SET grain = 9 WHERE tenant = ?1 AND grain = 0",
        "a bucket out of range",
    )
    .await;
}

/// A stored customer year roll-up row whose year is outside the business dates is reported as corrupt storage by
/// `verify_rollups`, not listed as some other year.
#[tokio::test]
async fn a_year_row_that_is_no_year_is_corrupt() {
    verify_is_corrupt_after(
        "UPDATE sales_years SET year = year + 1099511627776 WHERE tenant = ?1",
        "a year out of range",
    )
    .await;
}

/// A document's stored sums and a line's, changed behind the engine's back: the check lists both documents, a
/// rebuild takes the lines' (crm-core's `check_document_sums_repair`).
#[tokio::test]
async fn documents_whose_sums_differ_from_their_lines_are_found_and_repaired() {
    let sqlite = SqliteStore::open_temporary().expect("open");
    let store: Arc<dyn Store> = Arc::new(sqlite.clone());
    let commerce: Arc<dyn CommerceStore> = Arc::new(sqlite.clone());
    crm_core::conformance::commerce::check_document_sums_repair(&store, &commerce, |tenant: TenantId| {
        let sqlite = sqlite.clone();
        async move {
            for text in [
                "UPDATE documents SET revenue_units = revenue_units + 7, cost_units = cost_units - 3 \
                 WHERE tenant = ?1 AND number = 'R-2'",
                "UPDATE document_lines SET revenue_units = revenue_units + 5 WHERE tenant = ?1 AND document = \
                 (SELECT id FROM documents WHERE tenant = ?1 AND number = 'R-3')",
            ] {
                let (mut sql, _) = Sql::for_tenant(sqlite.dialect(), tenant);
                sql.text = text.to_string();
                sqlite.execute(sql).await.expect("tamper");
            }
        }
        .boxed()
    })
    .await;
}

/// A stored count of the campaign targets whose kind names no measure (no outcome has code 97) is corrupt storage
/// to `verify_rollups`, not listed as some other count.
#[tokio::test]
async fn a_target_count_of_no_measure_is_corrupt() {
    verify_is_corrupt_after(
        "UPDATE campaign_target_counts SET kind = 99 WHERE tenant = ?1 AND kind = 0",
        "a kind out of range",
    )
    .await;
}

/// A stored count of the targets reached on a day that is no date is corrupt storage to `verify_rollups`.
#[tokio::test]
async fn a_target_count_of_no_day_is_corrupt() {
    verify_is_corrupt_after(
        "UPDATE campaign_target_counts SET day = day + 1099511627776 WHERE tenant = ?1 AND kind = 1",
        "a day out of range",
    )
    .await;
}
