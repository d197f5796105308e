//! Scoring a tenant's leads from an SQLite store: fitted on its won and lost leads (their facts as they stood at the
//! close), the open leads ranked with reasons; another tenant's history is not used; too little is refused.

use chrono::{TimeZone, Utc};
use crm_core::actor::Context;
use crm_core::event::EventKind;
use crm_core::id::{TenantId, UserId};
use crm_core::lead::StatusKind;
use crm_core::lead::{LeadCommand, LeadPartner, NewLead};
use crm_core::money::Currency;
use crm_core::partner::{Industry, NewPartner};
use crm_core::service::{CommerceService, CrmService};
use crm_core::store::{LeadQuery, LeadSort, PageRequest, TimelineOf};
use crm_core::time::FixedClock;
use crm_scoring::service::{LeadScoring, Scored};
use crm_scoring::ScoringError;
use std::sync::Arc;

/// The services over an in-memory SQLite store at a fixed time (2 March 2026, 09:00 UTC), reporting in RON, and a
/// set-up tenant's context.
async fn services() -> (CrmService, CommerceService, Arc<FixedClock>, Context) {
    let store = Arc::new(crm_storage_sqlite::SqliteStore::open_in_memory().unwrap());
    let clock = Arc::new(FixedClock::new(
        Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap(),
    ));
    let crm = CrmService::builder()
        .store(store.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    let commerce =
        CommerceService::new(crm.clone(), store.clone(), Currency::parse("RON").unwrap());
    let ctx = Context::user(TenantId::new(), UserId::new());
    crm.setup_tenant(&ctx).await.unwrap();
    (crm, commerce, clock, ctx)
}

#[tokio::test]
async fn open_leads_rank_by_the_history_of_won_and_lost_ones() {
    let (crm, commerce, clock, ctx) = services().await;
    let reason = crm.lost_reasons(ctx.tenant).await.unwrap()[0].id();
    let scoring = LeadScoring::new(commerce);

    let lead = |i: usize, industry: &str| {
        let crm = &crm;
        let ctx = &ctx;
        let industry = industry.to_string();
        async move {
            let mut p = NewPartner::company(format!("Company {i:03}"));
            p.industry = Some(Industry {
                name: industry,
                code: None,
            });
            crm.enter_lead(
                ctx,
                NewLead::new(LeadPartner::New { partner: p }, format!("Deal {i}")),
            )
            .await
            .unwrap()
            .record
        }
    };
    let short = scoring.fit(ctx.tenant).await.unwrap_err();
    assert_eq!(
        short,
        ScoringError::NotEnoughHistory {
            closed: 0,
            won: 0,
            lost: 0
        }
    );
    // History: wholesale leads are mostly won, retail ones mostly lost (one in five the other way).
    for i in 0..40 {
        let wholesale = i % 2 == 0;
        let l = lead(i, if wholesale { "Wholesale" } else { "Retail" }).await;
        clock.advance(chrono::Duration::hours(1));
        let won = wholesale != (i % 10 < 2);
        let cmd = if won {
            LeadCommand::Win
        } else {
            LeadCommand::Lose {
                reason: Some(reason),
                competitor: None,
                note: None,
            }
        };
        crm.transition(&ctx, l.id(), l.version(), cmd)
            .await
            .unwrap();
    }
    // Another tenant's leads are not its history.
    let other = Context::user(TenantId::new(), UserId::new());
    crm.setup_tenant(&other).await.unwrap();
    assert!(matches!(
        scoring.fit(other.tenant).await,
        Err(ScoringError::NotEnoughHistory { closed: 0, .. })
    ));

    // A won lead's stage is the one it was won from, not the won stage; a lost one's the stage it was lost in.
    for (status, stage) in [(StatusKind::Won, "Record"), (StatusKind::Lost, "Record")] {
        let q = LeadQuery {
            status: Some(status),
            ..LeadQuery::default()
        };
        let closed = crm
            .store()
            .query_leads(ctx.tenant, &q)
            .await
            .unwrap()
            .items
            .remove(0);
        let facts = scoring.facts(ctx.tenant, &closed).await.unwrap();
        assert_eq!(facts.stage.as_deref(), Some(stage), "{status:?}");
        assert_eq!(facts.activities, 1, "entered; the close is not activity");
    }
    let scorer = scoring.fit(ctx.tenant).await.unwrap();
    assert_eq!(scorer.history(), (40, 20));
    let retail = lead(100, "Retail").await;
    let wholesale = lead(101, "Wholesale").await;
    let ranked = scoring.rank_open(ctx.tenant, &scorer).await.unwrap();
    assert_eq!(ranked.len(), 2);
    assert_eq!(ranked[0].lead.id(), wholesale.id());
    assert_eq!(ranked[1].lead.id(), retail.id());
    assert!(
        ranked[0].score.value > 60 && ranked[1].score.value < 40,
        "{ranked:?}"
    );
    // Its reasons: it is wholesale and not retail, both for it; the retail lead's are the same, against it.
    let reasons = |r: &crm_scoring::service::Ranked| {
        r.score
            .reasons
            .iter()
            .take(2)
            .map(|r| (r.feature.clone(), r.contribution > 0.0))
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(
        reasons(&ranked[0]),
        std::collections::BTreeSet::from([
            ("industry: wholesale".to_string(), true),
            ("not industry: retail".to_string(), true)
        ])
    );
    assert_eq!(
        reasons(&ranked[1]),
        std::collections::BTreeSet::from([
            ("industry: retail".to_string(), false),
            ("not industry: wholesale".to_string(), false)
        ])
    );
    // The same history fits the same scorer.
    assert_eq!(scoring.fit(ctx.tenant).await.unwrap(), scorer);

    // Stored on the leads: the board lists them best first, the timeline says so, a second run writes nothing.
    let done = scoring.score_open(&ctx, &scorer).await.unwrap();
    assert_eq!(
        done,
        Scored {
            scored: 2,
            unchanged: 0,
            conflicts: 0
        }
    );
    let board = crm
        .store()
        .query_leads(
            ctx.tenant,
            &LeadQuery {
                status: Some(StatusKind::Open),
                sort: LeadSort::ScoreDesc,
                ..LeadQuery::default()
            },
        )
        .await
        .unwrap();
    let ids: Vec<_> = board.items.iter().map(|l| l.id()).collect();
    assert_eq!(ids, [wholesale.id(), retail.id()]);
    let stored = board.items[0].score().unwrap();
    assert_eq!(stored.value, ranked[0].score.value);
    assert_eq!(stored.reasons.len(), ranked[0].score.reasons.len());
    assert_eq!(board.items[0].updated_at(), wholesale.updated_at());
    let again = scoring.score_open(&ctx, &scorer).await.unwrap();
    assert_eq!(
        again,
        Scored {
            scored: 0,
            unchanged: 2,
            conflicts: 0
        }
    );
    let timeline = crm
        .timeline(
            ctx.tenant,
            TimelineOf::Lead(wholesale.id()),
            &PageRequest::first(10),
        )
        .await
        .unwrap();
    assert!(matches!(
        timeline.items[0].kind,
        EventKind::LeadScored { previous: None, value } if value == stored.value
    ));
}

#[tokio::test]
async fn facts_read_a_leads_whole_timeline_and_every_document_of_the_year_before_it() {
    use crm_core::commerce::{NewDocument, NewLine, NewProduct};
    use crm_core::event::CommentTarget;
    use rust_decimal::Decimal;
    let (crm, commerce, _, ctx) = services().await;
    let lead = crm
        .enter_lead(
            &ctx,
            NewLead::new(
                LeadPartner::New {
                    partner: NewPartner::company("Big Buyer SRL"),
                },
                "Renewal",
            ),
        )
        .await
        .unwrap()
        .record;
    let product = commerce
        .record_product(
            &ctx,
            NewProduct {
                code: "SKU-1".into(),
                name: "Item".into(),
                category: None,
            },
            None,
        )
        .await
        .unwrap()
        .record()
        .id();
    // More than a page (1,000) of each: the partner's invoices of the year before the lead (one unit each), and
    // comments on the lead; an invoice of the lead's own day and one older than a year do not count.
    let created = lead.created_at().date_naive();
    let invoice = |n: usize, day: chrono::NaiveDate| {
        NewDocument::invoice(
            &format!("INV-{n:05}"),
            lead.partner(),
            day,
            "RON",
            vec![NewLine::new(
                product,
                Decimal::ONE,
                Decimal::ONE,
                Decimal::ZERO,
            )],
        )
    };
    for n in 0..1_001 {
        let day = created - chrono::Days::new(1 + (n % 360) as u64);
        commerce
            .record_document(&ctx, invoice(n, day))
            .await
            .unwrap();
    }
    for (n, day) in [(5_000, created), (5_001, created - chrono::Days::new(400))] {
        commerce
            .record_document(&ctx, invoice(n, day))
            .await
            .unwrap();
    }
    for i in 0..1_001 {
        crm.comment(&ctx, CommentTarget::Lead(lead.id()), &format!("Note {i}"))
            .await
            .unwrap();
    }
    let scoring = LeadScoring::new(commerce);
    let lead = crm.lead(ctx.tenant, lead.id()).await.unwrap();
    let facts = scoring.facts(ctx.tenant, &lead).await.unwrap();
    assert_eq!(facts.past_purchases, 1_001.0);
    let events = {
        let mut n = 0;
        let mut page = PageRequest::first(PageRequest::MAX);
        loop {
            let p = crm
                .timeline(ctx.tenant, TimelineOf::Lead(lead.id()), &page)
                .await
                .unwrap();
            n += p.items.len();
            match p.next {
                Some(next) => page.after = Some(next),
                None => break n,
            }
        }
    };
    assert!(events > 1_001, "{events} events");
    assert_eq!(
        facts.activities as usize, events,
        "every event of the open lead"
    );
}
