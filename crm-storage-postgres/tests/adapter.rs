//! Adapter behaviour beyond the shared suite, on a real server: migrations under concurrency, start-up errors,
//! the password never printed, both ingest paths, and index use of the timeline, board, per-customer and timer
//! queries.

mod common;

use chrono::{Duration, TimeZone, Utc};
use crm_core::actor::Context;
use crm_core::dedupe::keys_of;
use crm_core::event::{DomainEvent, StageHistoryEntry};
use crm_core::id::{TenantId, UserId};
use crm_core::lead::{NewLead, StatusKind};
use crm_core::money::Money;
use crm_core::partner::NewPartner;
use crm_core::pipeline::{NewPipeline, Pipeline};
use crm_core::service::lead_subject;
use crm_core::store::StoreExt;
use crm_core::store::{ChangeSet, LeadQuery, PageRequest, Store, TimelineOf, Write};
use crm_core::{Error, StorageErrorKind};
use crm_storage_postgres::{Explain, IngestMode, PgConfig, PgStore};

/// A tenant's worth of records as one insert-only change set: a pipeline, `partners` partners with `per` leads
/// each (owners cycling over `owners`), their events and first stage-history steps.
fn tenant_data(
    tenant: TenantId,
    partners: usize,
    per: usize,
    owners: &[UserId],
) -> (ChangeSet, Pipeline) {
    let t0 = Utc.with_ymd_and_hms(2026, 1, 5, 8, 0, 0).unwrap();
    let ctx = Context::system(tenant);
    let pipeline = NewPipeline::seed_default().build(tenant, t0).unwrap();
    let mut cs = ChangeSet::new();
    cs.push(Write::InsertPipeline(pipeline.clone()));
    let mut n = 0;
    for i in 0..partners {
        let now = t0 + Duration::minutes(i as i64);
        let p = NewPartner::company(format!("Firma {i} SRL"))
            .with_contact("Ana", Some(&format!("ana{i}@firma{i}.ro")), None)
            .build(tenant, now)
            .unwrap();
        cs.push(Write::InsertPartner {
            keys: keys_of(&p),
            partner: p.clone(),
        });
        for j in 0..per {
            let at = now + Duration::seconds(j as i64);
            let owner = owners[n % owners.len()];
            n += 1;
            let input = NewLead::for_partner(p.id(), format!("Lead {i}/{j}"))
                .with_owner(owner)
                .with_revenue(Money::parse(&format!("{}.25", 100 + n), "EUR").unwrap())
                .with_tag(if j % 2 == 0 { "even" } else { "odd" });
            let (lead, kind) = input.build(tenant, p.id(), &pipeline, at).unwrap();
            cs.push(Write::AppendEvent(DomainEvent::new(
                &ctx,
                at,
                lead_subject(&lead),
                kind,
            )));
            cs.push(Write::AppendStageHistory(StageHistoryEntry {
                tenant,
                lead: lead.id(),
                pipeline: pipeline.id(),
                from: None,
                to: lead.stage(),
                status: StatusKind::Open,
                at,
                actor: ctx.actor.clone(),
            }));
            cs.push(Write::InsertLead(lead));
        }
    }
    (cs, pipeline)
}

/// The timers' candidates for the leads of `cs`: an expected close date on every third lead, a request on each
/// lead, opened a minute apart (due on every other one), and per partner an invoice due a day after it was issued and marked with a
/// renewal date, as one insert-only change set.
fn timer_data(tenant: TenantId, cs: &mut ChangeSet) -> ChangeSet {
    use crm_core::commerce::{
        AppliedRate, CommerceWrite, DocumentFacts, NewDocument, NewLine, NewProduct,
    };
    use crm_core::request::NewRequest;
    let t0 = Utc.with_ymd_and_hms(2026, 1, 5, 8, 0, 0).unwrap();
    let day = t0.date_naive();
    let product = NewProduct {
        code: "P".into(),
        name: "Panel".into(),
        category: None,
    }
    .record(tenant, None, None, t0)
    .unwrap()
    .record()
    .clone();
    let products = std::collections::BTreeMap::from([(product.id(), product.clone())]);
    let eur = crm_core::money::Currency::parse("EUR").unwrap();
    let mut out = ChangeSet::new();
    out.push(CommerceWrite::InsertProduct(product.clone()).into());
    let mut writes = std::mem::take(cs).into_writes();
    for (i, w) in writes.iter_mut().enumerate() {
        match w {
            Write::InsertLead(l) => {
                // The close date set on the stored form, as a host's earlier edit would have left it.
                let close = (i % 3 == 0).then(|| day + Duration::days((i % 90) as i64));
                let mut v = serde_json::to_value(&*l).unwrap();
                v["expected_close"] = serde_json::json!(close);
                *l = serde_json::from_value(v).unwrap();
                let mut r = NewRequest::on_lead(l.id(), "Call", l.owner().unwrap());
                let opened = t0 + Duration::minutes(i as i64);
                r.due = (i % 2 == 0).then(|| opened + Duration::hours(i as i64 + 1));
                let (r, _) = r
                    .build(
                        tenant,
                        Some(l.partner()),
                        crm_core::actor::Actor::System,
                        opened,
                    )
                    .unwrap();
                out.push(Write::InsertRequest(r));
            }
            Write::InsertPartner { partner, .. } => {
                let issued = day + Duration::days((i % 200) as i64);
                let partner = &*partner;
                let doc = NewDocument::invoice(
                    &format!("F-{i}"),
                    partner.id(),
                    issued,
                    "EUR",
                    vec![NewLine::new(product.id(), 1.into(), 100.into(), 10.into())],
                )
                .due(issued + Duration::days(1))
                .renewing_on(issued + Duration::days(365));
                let settled = std::collections::BTreeMap::new();
                let facts = DocumentFacts {
                    partner,
                    products: &products,
                    rate: AppliedRate::identity(eur),
                    existing: None,
                    corrected: None,
                    campaign_exists: false,
                    settled: &settled,
                };
                let d = doc.record(tenant, facts, t0).unwrap().record().clone();
                out.push(CommerceWrite::InsertDocument(d).into());
                // A quotation and a meeting: the expiry rule's and the reminders' candidates.
                let (q, m) = sales_records(tenant, partner.id(), i, t0);
                out.push(CommerceWrite::InsertQuotation(q).into());
                out.push(CommerceWrite::InsertMeeting(m).into());
            }
            _ => {}
        }
    }
    *cs = writes.into_iter().collect();
    out
}

/// The sales records of partner `i`: a quotation issued on `t0`'s day and valid for 1 to 60 days (sent when `i`
/// is even), and an hour-long meeting `i` days after `t0`.
fn sales_records(
    tenant: TenantId,
    partner: crm_core::id::PartnerId,
    i: usize,
    t0: chrono::DateTime<Utc>,
) -> (crm_core::sales::Quotation, crm_core::sales::Meeting) {
    use crm_core::sales::{NewMeeting, Organiser, Slot};
    use crm_core::sales::{
        NewQuotation, QuotationCommand, QuotationLine, QuotationNumber, QuotationTerms, TaxTable,
    };
    let day = t0.date_naive();
    let ron = crm_core::money::Currency::parse("RON").unwrap();
    let price = crm_core::money::Money::parse("100", "RON").unwrap();
    let new = NewQuotation {
        lead: None,
        partner,
        currency: ron,
        terms: QuotationTerms {
            lines: vec![QuotationLine::new("Audit", 1.into(), price, "S")],
            valid_until: day + Duration::days(1 + (i % 60) as i64),
            terms: None,
        },
    };
    let (table, by) = (TaxTable::romania(), crm_core::actor::Actor::System);
    let number = QuotationNumber::first(2026, i as u32 + 1);
    let id = crm_core::id::QuotationId::new();
    let q = new
        .build(tenant, id, number, day, &table, by.clone(), t0)
        .unwrap();
    let q = if i.is_multiple_of(2) {
        crm_core::sales::apply(&q, QuotationCommand::Send, &table, &by, day, t0).unwrap()
    } else {
        q
    };
    let start = (t0 + Duration::days(i as i64)).naive_utc();
    let m = NewMeeting {
        title: format!("Visit {i}"),
        lead: None,
        partner: Some(partner),
        organiser: Organiser::new(UserId::new(), "Agent", "agent@example.ro"),
        attendees: Vec::new(),
        slot: Slot::new(start, start + Duration::hours(1), "UTC"),
        agenda: None,
    }
    .build(tenant, crm_core::id::MeetingId::new(), t0)
    .unwrap();
    (q, m)
}

async fn all_leads(store: &PgStore, tenant: TenantId) -> Vec<crm_core::lead::Lead> {
    let mut q = LeadQuery {
        page: PageRequest::first(PageRequest::MAX),
        ..Default::default()
    };
    let mut out = Vec::new();
    loop {
        let page = store.query_leads(tenant, &q).await.unwrap();
        out.extend(page.items);
        match page.next {
            Some(c) => q.page.after = Some(c),
            None => return out,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_run_once_when_two_processes_start_together() {
    let Some(url) = common::url() else { return };
    let config = common::config(&url);
    let (a, b) = tokio::join!(
        PgStore::connect(config.clone()),
        PgStore::connect(config.clone())
    );
    let (a, b) = (a.expect("first start"), b.expect("second start"));
    assert_eq!(
        a.migrate().await.unwrap(),
        Vec::<i32>::new(),
        "already up to date"
    );
    assert_eq!(b.migrate().await.unwrap(), Vec::<i32>::new());
    // Both see one schema: what one writes, the other reads.
    let tenant = TenantId::new();
    let (cs, pipeline) = tenant_data(tenant, 1, 1, &[UserId::new()]);
    a.ingest(tenant, cs).await.unwrap();
    assert_eq!(b.pipeline(tenant, pipeline.id()).await.unwrap(), pipeline);
    // And each migration is recorded exactly once.
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let rows = client
        .query(
            &format!(
                "SELECT version, count(*) FROM {}.schema_migrations GROUP BY version",
                config.schema
            ),
            &[],
        )
        .await
        .unwrap();
    assert!(!rows.is_empty());
    for r in rows {
        assert_eq!(
            r.get::<_, i64>(1),
            1,
            "migration {} applied twice",
            r.get::<_, i32>(0)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_output_hides_the_password() {
    let Some(url) = common::url() else { return };
    let store = PgStore::connect(common::config(&url)).await.unwrap();
    let password = password_of(&url);
    let shown = format!("{store:?} {:?}", store.config());
    assert!(!shown.contains(&password), "password printed: {shown}");
    assert!(shown.contains("<hidden>"), "{shown}");
}

/// The password of a connection URL.
fn password_of(url: &str) -> String {
    let c: tokio_postgres::Config = url.parse().unwrap();
    String::from_utf8(
        c.get_password()
            .expect("the test URL has a password")
            .to_vec(),
    )
    .unwrap()
}

fn storage_kind(e: &Error) -> Option<StorageErrorKind> {
    match e {
        Error::Storage { kind, .. } => Some(*kind),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_errors_are_typed_and_clear() {
    let Some(url) = common::url() else { return };
    let parsed: tokio_postgres::Config = url.parse().unwrap();
    let password = password_of(&url);

    // Connection refused: a loopback port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let refused = url.replacen(
        &format!(":{}/", parsed.get_ports()[0]),
        &format!(":{port}/"),
        1,
    );
    let e = PgStore::connect(common::config(&refused))
        .await
        .unwrap_err();
    assert_eq!(storage_kind(&e), Some(StorageErrorKind::Unavailable), "{e}");
    assert!(e.is_retryable(), "{e}");
    assert!(e.to_string().contains("cannot reach PostgreSQL"), "{e}");

    // Wrong password.
    let wrong = url.replacen(&format!(":{password}@"), ":not-the-password@", 1);
    let e = PgStore::connect(common::config(&wrong)).await.unwrap_err();
    assert_eq!(storage_kind(&e), Some(StorageErrorKind::Config), "{e}");
    assert!(!e.is_retryable());
    assert!(e.to_string().contains("password"), "{e}");
    assert!(!e.to_string().contains(&password), "{e}");

    // Missing database.
    let db = parsed.get_dbname().unwrap();
    let missing = url.replacen(&format!("/{db}"), "/no_such_database_here", 1);
    let e = PgStore::connect(common::config(&missing))
        .await
        .unwrap_err();
    assert_eq!(storage_kind(&e), Some(StorageErrorKind::Config), "{e}");
    assert!(e.to_string().contains("no_such_database_here"), "{e}");

    // A bad schema name never reaches the server.
    let e = PgStore::connect(PgConfig::from_url(&url).with_schema("bad-name"))
        .await
        .unwrap_err();
    assert_eq!(e.field(), Some("schema"), "{e}");
}

/// Ingests the same data through COPY and through multi-row INSERTs (in small batches) and reads the same back; a
/// failing ingest writes nothing in either mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_ingest_paths_write_the_same_and_fail_whole() {
    let Some(url) = common::url() else { return };
    let copy = PgStore::connect(common::config(&url)).await.unwrap();
    let mut c = common::config(&url).with_ingest(IngestMode::Insert);
    c.insert_batch = 7;
    let insert = PgStore::connect(c).await.unwrap();
    let tenant = TenantId::new();
    let owners = [UserId::new(), UserId::new()];
    let (cs, pipeline) = tenant_data(tenant, 9, 5, &owners);
    let writes = cs.writes().len() as u64;
    assert_eq!(copy.ingest(tenant, cs.clone()).await.unwrap(), writes);
    assert_eq!(insert.ingest(tenant, cs.clone()).await.unwrap(), writes);
    let (a, b) = (
        all_leads(&copy, tenant).await,
        all_leads(&insert, tenant).await,
    );
    assert_eq!(a.len(), 45);
    assert_eq!(a, b);
    assert_eq!(
        copy.board(tenant, pipeline.id()).await.unwrap(),
        insert.board(tenant, pipeline.id()).await.unwrap()
    );
    assert_eq!(
        copy.events_since(tenant, 0, 1000).await.unwrap(),
        insert.events_since(tenant, 0, 1000).await.unwrap()
    );
    // A second ingest of fresh rows followed by one already stored: nothing of it is written.
    for store in [&copy, &insert] {
        let (more, _) = tenant_data(tenant, 2, 2, &owners);
        let mut more: ChangeSet = more
            .into_writes()
            .into_iter()
            .filter(|w| !matches!(w, Write::InsertPipeline(_)))
            .collect();
        more.push(cs.writes()[1].clone());
        let e = store.ingest(tenant, more).await.unwrap_err();
        assert!(matches!(e, Error::AlreadyExists { .. }), "{e}");
        assert_eq!(all_leads(store, tenant).await.len(), 45);
        assert_eq!(store.events_since(tenant, 0, 1000).await.unwrap().len(), 45);
    }
}

/// With a few thousand rows over many tenants, and statistics gathered, the timeline, board and per-customer
/// queries read through their indexes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeline_board_and_customer_queries_use_indexes() {
    let Some(url) = common::url() else { return };
    let config = common::config(&url);
    let store = PgStore::connect(config.clone()).await.unwrap();
    let owners: Vec<UserId> = (0..8).map(|_| UserId::new()).collect();
    let mut tenants = Vec::new();
    for _ in 0..24 {
        let tenant = TenantId::new();
        let (mut cs, pipeline) = tenant_data(tenant, 30, 5, &owners);
        let timers = timer_data(tenant, &mut cs);
        store.ingest(tenant, cs).await.unwrap();
        store.ingest(tenant, timers).await.unwrap();
        tenants.push((tenant, pipeline));
    }
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(&format!("SET search_path TO {}; ANALYZE;", config.schema))
        .await
        .unwrap();
    let rows: i64 = client
        .query_one(
            &format!("SELECT count(*) FROM {}.leads", config.schema),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 24 * 150);

    let (tenant, pipeline) = tenants[7].clone();
    let lead = all_leads(&store, tenant).await.remove(3);
    let check = |plan: String, index: &str| {
        println!("--- plan (expecting {index}):\n{plan}");
        assert!(
            plan.contains(index) && !plan.contains("Seq Scan"),
            "expected an index scan on {index}, got:\n{plan}"
        );
    };
    check(
        store
            .explain(Explain::Timeline(tenant, TimelineOf::Lead(lead.id()), 50))
            .await
            .unwrap(),
        "events_by_lead",
    );
    check(
        store
            .explain(Explain::Timeline(
                tenant,
                TimelineOf::Partner(lead.partner()),
                50,
            ))
            .await
            .unwrap(),
        "events_by_partner",
    );
    check(
        store
            .explain(Explain::Board(tenant, pipeline.id()))
            .await
            .unwrap(),
        "leads_by_stage",
    );
    check(
        store
            .explain(Explain::Leads(
                tenant,
                LeadQuery {
                    owner: Some(owners[2]),
                    ..Default::default()
                },
            ))
            .await
            .unwrap(),
        "leads_by_owner",
    );
    check(
        store
            .explain(Explain::Leads(
                tenant,
                LeadQuery {
                    partner: Some(lead.partner()),
                    ..Default::default()
                },
            ))
            .await
            .unwrap(),
        "leads_by_partner",
    );
    // The timers' candidates: a range of their own index, never every open lead, request or document.
    let now = Utc.with_ymd_and_hms(2026, 3, 5, 8, 0, 0).unwrap();
    let today = now.date_naive();
    let leads = |q: LeadQuery| Explain::Leads(tenant, q);
    let requests = |q: crm_core::store::RequestQuery| Explain::Requests(tenant, q);
    use crm_core::commerce::CommerceKey;
    let commerce = |key: CommerceKey| Explain::Commerce(tenant, key);
    let timer_plans = [
        (
            leads(LeadQuery {
                status: Some(StatusKind::Open),
                updated_before: Some(now),
                sort: crm_core::store::LeadSort::UpdatedDesc,
                ..Default::default()
            }),
            "leads_idle",
        ),
        (
            leads(LeadQuery {
                status: Some(StatusKind::Open),
                close_before: Some(today),
                sort: crm_core::store::LeadSort::UpdatedDesc,
                ..Default::default()
            }),
            "leads_close",
        ),
        (
            requests(crm_core::store::RequestQuery {
                active_only: true,
                // The requests open for a while: the first few of the tenant.
                opened_before: Some(Utc.with_ymd_and_hms(2026, 1, 5, 8, 20, 0).unwrap()),
                ..Default::default()
            }),
            "requests_opened",
        ),
        (
            requests(crm_core::store::RequestQuery {
                active_only: true,
                due_after: Some(now - Duration::days(30)),
                due_before: Some(now),
                ..Default::default()
            }),
            "requests_by_due",
        ),
        (
            commerce(CommerceKey::DocumentsDue {
                kind: crm_core::commerce::DocumentKind::Invoice,
                from: today - Duration::days(30),
                before: today,
            }),
            "documents_due",
        ),
        (
            commerce(CommerceKey::DocumentsRenewing {
                from: today,
                to: today + Duration::days(30),
            }),
            "documents_renewing",
        ),
        (
            commerce(CommerceKey::QuotationsExpiring { before: today }),
            "quotations_expiring",
        ),
        (
            commerce(CommerceKey::MeetingsStarting {
                from: now,
                before: now + Duration::days(1),
            }),
            "meetings_starting",
        ),
    ];
    for (what, index) in timer_plans {
        check(store.explain(what).await.unwrap(), index);
    }
    // The queries themselves agree with the data.
    let board = store.board(tenant, pipeline.id()).await.unwrap();
    assert_eq!(board.columns.iter().map(|c| c.count).sum::<u64>(), 150);
    let page = store
        .timeline(tenant, TimelineOf::Lead(lead.id()), &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
}

/// A deadlock between two transactions surfaces as a typed retryable error, writes nothing, and the retry
/// succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlock_is_a_retryable_storage_error() {
    let Some(url) = common::url() else { return };
    let config = common::config(&url);
    let store = PgStore::connect(config.clone()).await.unwrap();
    let tenant = TenantId::new();
    let (cs, _) = tenant_data(tenant, 1, 2, &[UserId::new()]);
    store.ingest(tenant, cs).await.unwrap();
    let leads = all_leads(&store, tenant).await;
    let (l1, l2) = (leads[0].clone(), leads[1].clone());

    // Another session locks the second lead, and waits longer than the store's session before it checks for
    // deadlocks, so the store's transaction is the one PostgreSQL aborts.
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let client = std::sync::Arc::new(client);
    client
        .batch_execute(&format!(
            "BEGIN; SET LOCAL deadlock_timeout = '10s'; SET LOCAL search_path TO {};",
            config.schema
        ))
        .await
        .unwrap();
    client
        .execute(
            "SELECT 1 FROM leads WHERE tenant = $1 AND id = $2 FOR UPDATE",
            &[tenant.as_uuid(), l2.id().as_uuid()],
        )
        .await
        .unwrap();

    let bump = |l: &crm_core::lead::Lead| {
        // Two stale writers of one version: the change is made on the stored form, as a second process would.
        let mut next = serde_json::to_value(l).unwrap();
        next["version"] = serde_json::json!(l.version() + 1);
        next["title"] = serde_json::json!(format!("{} (edited)", l.title()));
        let next: crm_core::lead::Lead = serde_json::from_value(next).unwrap();
        Write::UpdateLead {
            lead: next,
            expected_version: l.version(),
        }
    };
    let mut both = ChangeSet::new();
    both.push(bump(&l1));
    both.push(bump(&l2));
    let commit = {
        let (store, both) = (store.clone(), both.clone());
        tokio::spawn(async move { store.commit(tenant, both).await })
    };
    // Let the store lock the first lead and queue behind the second; then close the cycle.
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let other = {
        let client = client.clone();
        let id = *l1.id().as_uuid();
        tokio::spawn(async move {
            client
                .execute(
                    "UPDATE leads SET updated_us = updated_us WHERE tenant = $1 AND id = $2",
                    &[tenant.as_uuid(), &id],
                )
                .await
        })
    };
    let e = commit.await.unwrap().unwrap_err();
    assert_eq!(storage_kind(&e), Some(StorageErrorKind::Retryable), "{e}");
    assert!(e.is_retryable());
    other.await.unwrap().unwrap();
    client.batch_execute("ROLLBACK").await.unwrap();
    // Nothing of the aborted change set was written, and the retry goes through.
    assert_eq!(store.lead(tenant, l1.id()).await.unwrap(), l1);
    store.commit(tenant, both).await.unwrap();
    assert_eq!(
        store.lead(tenant, l2.id()).await.unwrap().version(),
        l2.version() + 1
    );
}
