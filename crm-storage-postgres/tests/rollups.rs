//! The sales roll-ups on PostgreSQL, tampered with by hand: `verify_rollups` finds it and `rebuild_rollups`
//! repairs it (crm-core's `check_rollup_repair`; the roll-ups' upkeep itself runs in the conformance suite).

mod common;

use crm_core::commerce::CommerceStore;
use crm_core::id::TenantId;
use crm_core::store::Store;
use crm_storage_sql::{Runner, Sql};
use futures::FutureExt;
use std::sync::Arc;

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
