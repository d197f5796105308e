//! The sales roll-ups on PostgreSQL, tampered with by hand: `verify_rollups` finds it and `rebuild_rollups`
//! repairs it (crm-core's `check_rollup_repair`; the roll-ups' upkeep itself runs in the conformance suite).

mod common;

use crm_core::commerce::{CampaignMeasuresExt as _, CommerceStore};
use crm_core::id::TenantId;
use crm_core::store::Store;
use crm_storage_sql::{Runner, Sql};
use futures::FutureExt;
use std::sync::Arc;

#[tokio::test]
async fn tampered_campaign_rollups_are_found_and_rebuilt() {
    let Some(pg) = common::store().await else {
        return;
    };
    let store: Arc<dyn Store> = Arc::new(pg.clone());
    let commerce: Arc<dyn CommerceStore> = Arc::new(pg.clone());
    crm_core::conformance::commerce::check_campaign_rollup_repair(&store, &commerce, |tenant: TenantId| {
        let pg = pg.clone();
        async move {
            for text in [
                "UPDATE campaign_reach SET customers = customers + 5 WHERE tenant = $1 AND grain = 2",
                "DELETE FROM campaign_customers WHERE tenant = $1 AND grain = 0",
            ] {
                let (mut sql, _) = Sql::for_tenant(pg.dialect(), tenant);
                sql.text = text.to_string();
                pg.execute(sql).await.expect("tamper");
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
    let Some(pg) = common::store().await else {
        return;
    };
    let store: Arc<dyn Store> = Arc::new(pg.clone());
    let commerce: Arc<dyn CommerceStore> = Arc::new(pg.clone());
    crm_core::conformance::target_counts::check_target_count_repair(
        &store,
        &commerce,
        |tenant: TenantId| {
            let pg = pg.clone();
            async move {
                for text in [
                    "UPDATE campaign_target_counts SET n = n + 2 WHERE tenant = $1 AND kind = 0",
                    "DELETE FROM campaign_target_counts WHERE tenant = $1 AND kind = 1",
                ] {
                    let (mut sql, _) = Sql::for_tenant(pg.dialect(), tenant);
                    sql.text = text.to_string();
                    pg.execute(sql).await.expect("tamper");
                }
            }
            .boxed()
        },
    )
    .await;
}

#[tokio::test]
async fn tampered_rollups_are_found_and_rebuilt() {
    let Some(pg) = common::store().await else {
        return;
    };
    let store: Arc<dyn Store> = Arc::new(pg.clone());
    let commerce: Arc<dyn CommerceStore> = Arc::new(pg.clone());
    crm_core::conformance::commerce::check_rollup_repair(&store, &commerce, |tenant: TenantId| {
        let pg = pg.clone();
        async move {
            for text in [
                "UPDATE sales_months SET revenue_units = revenue_units + 1 WHERE tenant = $1",
                // March 2026: month index 2026 * 12 + 2.
                "DELETE FROM sales_months WHERE tenant = $1 AND month = 24314",
                "UPDATE partner_last_sales SET last_sale = last_sale - 1 WHERE tenant = $1",
                // February 2026.
                "DELETE FROM bought_months WHERE tenant = $1 AND month = 24313",
                // The groups' (dim 1) January 10th, 2026 (day number 739626).
                "UPDATE sales_days SET revenue_units = revenue_units + 1 WHERE tenant = $1 AND dim = 1 \
                 AND day = 739626",
                "UPDATE sales_years SET revenue_units = revenue_units + 1 WHERE tenant = $1 AND year = 2026",
            ] {
                let (mut sql, _) = Sql::for_tenant(pg.dialect(), tenant);
                sql.text = text.to_string();
                pg.execute(sql).await.expect("tamper");
            }
        }
        .boxed()
    })
    .await;
}

/// A schema from before the roll-ups (migration 14) gets them built from its documents by migrations 15, 16, 20, 24
/// and 25,
/// and its documents' lines, which their JSON carried until migration 19, moved into `document_lines`: every
/// document reads back exactly as before and no stored JSON keeps its lines.
#[tokio::test]
async fn the_migration_builds_the_rollups_of_existing_documents() {
    use crm_core::commerce::{GroupBy, Period, RollupAction, SumsQuery};
    use crm_storage_postgres::PgStore;
    let Some(url) = common::url() else {
        return;
    };
    let config = common::config(&url);
    let pg = PgStore::connect(config.clone()).await.expect("connect");
    let store: Arc<dyn Store> = Arc::new(pg.clone());
    let commerce: Arc<dyn CommerceStore> = Arc::new(pg.clone());
    let (tenant, reporting) =
        crm_core::conformance::commerce::record_sample_sales(&store, &commerce).await;
    let q = SumsQuery::by(GroupBy::Group, Period::year(2026).unwrap(), reporting);
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
    // Back to migration 14: no roll-up table, no holdout column, the lines in the documents' JSON and not in
    // columns of their own.
    let mut back = vec![format!(
        "UPDATE documents SET doc = ({})::jsonb",
        crm_storage_sql::commerce::document_doc(pg.dialect(), "documents")
    )];
    back.extend(
        crm_storage_sql::commerce::LINE_DECIMALS
            .iter()
            .map(|c| format!("ALTER TABLE document_lines DROP COLUMN {c}")),
    );
    back.extend(
        [
            "DROP TABLE sales_months",
            "DROP TABLE partner_last_sales",
            "DROP TABLE bought_months",
            "DROP TABLE sales_days",
            "ALTER TABLE campaign_targets DROP COLUMN holdout",
            "DROP TABLE campaign_customers",
            "DROP TABLE campaign_reach",
            "DROP TABLE sales_years",
            "DROP TABLE campaign_target_counts",
            "DELETE FROM schema_migrations WHERE version IN (15, 16, 17, 19, 20, 24, 25, 26, 27, 28, 29)",
        ]
        .map(String::from),
    );
    let back: Vec<Sql> = back
        .into_iter()
        .map(|text| Sql {
            text,
            ..Sql::new(pg.dialect())
        })
        .collect();
    pg.execute_all(back).await.expect("back to 14");
    let (mut old_form, _) = Sql::for_tenant(pg.dialect(), tenant);
    old_form.text =
        "SELECT count(*) FROM documents WHERE tenant = $1 AND jsonb_typeof(doc -> 'lines') = 'array'".into();
    let rows = pg.rows(old_form.clone(), false).await.unwrap();
    assert_eq!(
        rows[0][0].count("count").unwrap() as usize,
        docs.len(),
        "rewound to the old form"
    );
    drop((store, commerce, pg));
    let again = PgStore::connect(config).await.expect("migrate");
    assert_eq!(again.profit_sums(tenant, &q).await.unwrap(), want);
    assert_eq!(
        again.campaigns_sums(tenant, None, reporting).await.unwrap(),
        campaigns,
        "the campaign report's counts of the targets are built by migration 29"
    );
    assert_eq!(
        crm_core::conformance::commerce::documents_json(&again, tenant).await,
        docs
    );
    let rows = again.rows(old_form, false).await.unwrap();
    assert_eq!(
        rows[0][0].count("count").unwrap(),
        0,
        "no stored JSON keeps its lines"
    );
    let keys = crm_storage_sql::commerce::DOCUMENT_COLUMN_FIELDS.map(|f| format!("'{f}'"));
    let (mut kept, _) = Sql::for_tenant(again.dialect(), tenant);
    kept.text = format!(
        "SELECT count(*) FROM documents WHERE tenant = $1 AND doc ?| ARRAY[{}]",
        keys.join(", ")
    );
    let rows = again.rows(kept, false).await.unwrap();
    assert_eq!(
        rows[0][0].count("count").unwrap(),
        0,
        "no stored JSON keeps a field its columns hold"
    );
    let check = again.rollups(tenant, RollupAction::Verify).await.unwrap();
    assert!(check.is_clean(), "{check:?}");
}

/// A document's stored sums and a line's, changed behind the engine's back: the check lists both documents, a
/// rebuild takes the lines' (crm-core's `check_document_sums_repair`).
#[tokio::test]
async fn documents_whose_sums_differ_from_their_lines_are_found_and_repaired() {
    let Some(pg) = common::store().await else {
        return;
    };
    let store: Arc<dyn Store> = Arc::new(pg.clone());
    let commerce: Arc<dyn CommerceStore> = Arc::new(pg.clone());
    crm_core::conformance::commerce::check_document_sums_repair(&store, &commerce, |tenant: TenantId| {
        let pg = pg.clone();
        async move {
            for text in [
                "UPDATE documents SET revenue_units = revenue_units + 7, cost_units = cost_units - 3 \
                 WHERE tenant = $1 AND number = 'R-2'",
                "UPDATE document_lines SET revenue_units = revenue_units + 5 WHERE tenant = $1 AND document = \
                 (SELECT id FROM documents WHERE tenant = $1 AND number = 'R-3')",
            ] {
                let (mut sql, _) = Sql::for_tenant(pg.dialect(), tenant);
                sql.text = text.to_string();
                pg.execute(sql).await.expect("tamper");
            }
        }
        .boxed()
    })
    .await;
}
