//! The campaign that brought a lead is a column of its own (migration 24): the store writes it with the lead, and the
//! migration fills it from the documents of the leads a database already holds, so the campaign report counts them
//! exactly as before.

use crm_core::actor::Context;
use crm_core::commerce::CommerceStore;
use crm_core::id::{CampaignId, TenantId, UserId};
use crm_core::lead::{LeadPartner, NewLead};
use crm_core::money::Currency;
use crm_core::partner::NewPartner;
use crm_core::service::CrmService;
use crm_storage_sqlite::SqliteStore;
use std::sync::Arc;

/// The campaign column of every lead of the file at `path`, by lead title.
fn columns(path: &std::path::Path) -> Vec<(String, Option<Vec<u8>>)> {
    let c = rusqlite::Connection::open(path).unwrap();
    let mut s = c
        .prepare("SELECT title_lc, campaign FROM leads ORDER BY title_lc")
        .unwrap();
    s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test]
async fn the_lead_campaign_is_written_with_the_lead_and_filled_by_the_migration() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("crm.sqlite");
    let sqlite = SqliteStore::open_file(&path).expect("open");
    let crm = CrmService::builder()
        .store(Arc::new(sqlite.clone()))
        .build()
        .unwrap();
    let ctx = Context::user(TenantId::new(), UserId::new());
    let campaign = CampaignId::new();
    crm.setup_tenant(&ctx).await.unwrap();
    for (title, source) in [("brought", Some(campaign)), ("walked in", None)] {
        let mut new = NewLead::new(
            LeadPartner::New {
                partner: NewPartner::company(format!("{title} SRL")),
            },
            title,
        );
        new.source.campaign = source;
        crm.enter_lead(&ctx, new).await.unwrap();
    }
    let eur = Currency::parse("EUR").unwrap();
    let before = sqlite
        .campaign_sums(ctx.tenant, campaign, None, eur)
        .await
        .unwrap();
    assert_eq!((before.leads, before.won), (1, 0));
    let written = columns(&path);
    assert_eq!(
        written,
        vec![
            (
                "brought".to_string(),
                Some(campaign.as_uuid().as_bytes().to_vec())
            ),
            ("walked in".to_string(), None),
        ]
    );
    drop((crm, sqlite));

    // Back to migration 23: the campaign only in the lead's document, its indexes on the document's expression (and
    // no campaign roll-ups, which migration 25 builds again, nor the customer year roll-up of migration 28).
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        let source = "json_extract(doc, '$.source.campaign')";
        c.execute_batch(&format!(
            "DROP TABLE campaign_customers; DROP TABLE campaign_reach; DROP TABLE sales_years; \
             DROP INDEX leads_by_campaign; DROP INDEX leads_campaign_partner; DROP INDEX leads_campaign_created; \
             ALTER TABLE leads DROP COLUMN campaign; \
             CREATE INDEX leads_by_campaign ON leads (tenant, {source}, created_at, status) WHERE {source} IS NOT NULL; \
             CREATE INDEX leads_campaign_partner ON leads (tenant, partner, ({source})) WHERE {source} IS NOT NULL; \
             CREATE INDEX leads_campaign_created ON leads (tenant, created_at, partner, ({source}), status) \
             WHERE {source} IS NOT NULL; DROP TABLE campaign_target_counts; \
             PRAGMA user_version = 23;"
        ))
        .unwrap();
    }
    let reopened = SqliteStore::open_file(&path).expect("migrate");
    assert_eq!(
        columns(&path),
        written,
        "the migration fills the column from the documents"
    );
    assert_eq!(
        reopened
            .campaign_sums(ctx.tenant, campaign, None, eur)
            .await
            .unwrap(),
        before
    );
}
