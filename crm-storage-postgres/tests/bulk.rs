//! A bulk load on PostgreSQL: the non-unique indexes are dropped while it is open and built again by its finish,
//! and a load left open by a process that went away stays open (PostgreSQL serves many processes, so connecting
//! never finishes another one's load) until `finish_bulk_loads` finishes it: the indexes are built again and the
//! roll-ups count the ingested documents. The load itself runs in crm-core's conformance suite
//! (`check_bulk_load`).

mod common;

use crm_core::commerce::CommerceStore;
use crm_core::store::{BulkStep, Store};
use crm_storage_postgres::PgStore;
use crm_storage_sql::{Runner, Sql};
use std::sync::Arc;

/// Every index of the store's schema: (name, definition), by name.
async fn indexes(pg: &PgStore) -> Vec<(String, String)> {
    let sql = Sql {
        dialect: pg.dialect(),
        text: "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() \
               ORDER BY indexname"
            .into(),
        params: Vec::new(),
    };
    pg.rows(sql, true)
        .await
        .expect("the catalog")
        .iter()
        .map(|r| {
            (
                r[0].text("name").unwrap().to_string(),
                r[1].text("definition").unwrap().to_string(),
            )
        })
        .collect()
}

fn parts(pg: &PgStore) -> (Arc<dyn Store>, Arc<dyn CommerceStore>) {
    (Arc::new(pg.clone()), Arc::new(pg.clone()))
}

#[tokio::test]
async fn a_load_left_open_is_finished_by_finish_bulk_loads() {
    let Some(url) = common::url() else {
        return;
    };
    let config = common::config(&url);
    let tenant = {
        let pg = PgStore::connect(config.clone()).await.expect("connect");
        let (store, commerce) = parts(&pg);
        crm_core::conformance::commerce::bulk_load_left_open(&store, &commerce).await
    };
    let pg = PgStore::connect(config).await.expect("connect again");
    let (_, commerce) = parts(&pg);
    let status = crm_core::conformance::commerce::bulk(&commerce, tenant, BulkStep::Status)
        .await
        .unwrap();
    assert!(status.open && status.deferred_indexes > 0, "{status:?}");
    let during = indexes(&pg).await;
    assert!(during.iter().all(|(_, d)| d.starts_with("CREATE UNIQUE")));
    assert_eq!(pg.finish_bulk_loads().await.unwrap(), vec![tenant]);
    crm_core::conformance::commerce::assert_bulk_load_finished(&commerce, tenant).await;
    assert!(pg.finish_bulk_loads().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_finished_load_leaves_every_index_as_it_was() {
    let Some(pg) = common::store().await else {
        return;
    };
    let (store, commerce) = parts(&pg);
    let before = indexes(&pg).await;
    assert!(before.iter().any(|(n, _)| n == "documents_partner"));
    let tenant = crm_core::conformance::commerce::bulk_load_left_open(&store, &commerce).await;
    let during = indexes(&pg).await;
    assert!(during.len() < before.len());
    let done = crm_core::conformance::commerce::bulk(&commerce, tenant, BulkStep::Finish)
        .await
        .expect("finish");
    assert!(done.rebuilt && done.deferred_indexes == 0, "{done:?}");
    assert_eq!(indexes(&pg).await, before);
    crm_core::conformance::commerce::assert_bulk_load_finished(&commerce, tenant).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finish_waits_for_the_ingests_under_way() {
    use crm_core::commerce::{GroupBy, NewDocument, Period, RollupAction, SumsQuery};
    use crm_core::conformance::commerce::{bulk, ingest_document, Shop};
    let Some(pg) = common::store().await else {
        return;
    };
    let (store, commerce) = parts(&pg);
    let s = Shop::new(&store, &commerce).await;
    let acme = s.customer("Acme").await;
    bulk(&commerce, s.w.tenant, BulkStep::Begin).await.unwrap();
    // Four writers ingest ten invoices each while the load finishes in their midst: whichever side of the finish
    // an invoice lands on, the roll-ups count it once (the rebuild after the ingests under way, or the ingest's
    // own roll-up statements after the finish).
    let writer = |k: usize| {
        let (s, acme) = (&s, &acme);
        async move {
            for i in 0..10 {
                let day = chrono::NaiveDate::from_ymd_opt(2026, 1 + (i % 12) as u32, 5).unwrap();
                let n = NewDocument::invoice(
                    &format!("T{k}-{i}"),
                    acme.id(),
                    day,
                    "RON",
                    vec![s.line(0, "1", "10", "5")],
                );
                ingest_document(s, n, acme).await;
            }
        }
    };
    let finish = async {
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        bulk(&commerce, s.w.tenant, BulkStep::Finish).await.unwrap()
    };
    let (_, _, _, _, done) = tokio::join!(writer(0), writer(1), writer(2), writer(3), finish);
    assert!(!done.open && done.deferred_indexes == 0, "{done:?}");
    let check = commerce
        .rollups(s.w.tenant, RollupAction::Verify)
        .await
        .unwrap();
    assert!(check.is_clean(), "{check:?}");
    let ron = crm_core::money::Currency::parse("RON").unwrap();
    let q = SumsQuery::by(GroupBy::Customer, Period::year(2026).unwrap(), ron);
    let sums = commerce.profit_sums(s.w.tenant, &q).await.unwrap();
    assert_eq!(sums.iter().map(|x| x.invoices).sum::<u64>(), 40);
}
