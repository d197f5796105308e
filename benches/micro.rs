//! Criterion micro-benchmarks: single operations of the engine beside the same operation as plain SQL, on the
//! generated `XS` data set (2,000 leads; written to `target/bench/micro/` on each run).
//!
//! `cargo bench --bench micro` (the full report with all sizes is `scripts/bench`).

#[path = "suite/mod.rs"]
mod suite;

use criterion::{criterion_group, criterion_main, Criterion};
use crm_core::store::{PageRequest, TimelineOf};
use crm_storage_sqlite::SqliteStore;
use std::hint::black_box;
use suite::gen;
use suite::work::{sql, Env};

fn setup() -> (tokio::runtime::Runtime, Env) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench/micro");
    std::fs::create_dir_all(&dir).expect("dir");
    let db = dir.join("crm.sqlite");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let size = gen::size("XS").expect("XS");
    let manifest = rt.block_on(async {
        let store = SqliteStore::open_file(&db).expect("open");
        gen::generate(&store, size, 42).await.expect("generate")
    });
    let env = Env::open(&db, manifest).expect("env");
    (rt, env)
}

fn benches(c: &mut Criterion) {
    let (rt, env) = setup();
    let suite::work::Base::Sqlite(conn) = &env.base else {
        unreachable!("Env::open gives a SQLite baseline")
    };
    let tenant = env.manifest.tenant;
    let lead = env.manifest.hot_leads[0];
    let mut g = c.benchmark_group("timeline_newest_50");
    g.bench_function("ours", |b| {
        b.iter(|| {
            rt.block_on(
                env.svc
                    .timeline(tenant, TimelineOf::Lead(lead), &PageRequest::first(50)),
            )
            .expect("timeline")
        })
    });
    g.bench_function("sql", |b| {
        b.iter(|| sql::timeline(conn, tenant, black_box(lead), 50).expect("timeline"))
    });
    g.finish();

    let pipeline = env.manifest.pipeline;
    let mut g = c.benchmark_group("board_2k_leads");
    g.bench_function("ours", |b| {
        b.iter(|| rt.block_on(env.svc.board(tenant, pipeline)).expect("board"))
    });
    g.bench_function("sql", |b| {
        b.iter(|| sql::board(conn, tenant, black_box(pipeline)).expect("board"))
    });
    g.finish();

    let mut g = c.benchmark_group("read_lead");
    let id = env.manifest.sample_leads[0];
    g.bench_function("ours", |b| {
        b.iter(|| rt.block_on(env.svc.lead(tenant, id)).expect("lead"))
    });
    g.bench_function("sql", |b| {
        b.iter(|| {
            let doc: String = conn
                .prepare_cached("SELECT doc FROM leads WHERE tenant = ?1 AND id = ?2")
                .and_then(|mut s| {
                    s.query_row(rusqlite::params![tenant.as_bytes(), id.as_bytes()], |r| {
                        r.get(0)
                    })
                })
                .expect("lead");
            serde_json::from_str::<crm_core::lead::Lead>(&doc).expect("doc")
        })
    });
    g.finish();

    // The portal's statement page of one partner with 10,000 documents (7,500 invoices, 2,500 payments settling a
    // third of them): balances per currency and every open item at its residual, beside the same two questions as
    // hand-written SQL (grouped allocation sums joined to the invoices) on the same file.
    let (portal, signed_up, partner, as_of) = rt.block_on(statement_fixture(&env));
    let (page, me) = rt.block_on(statement_page(&portal, &signed_up));
    let mut g = c.benchmark_group("portal_statement_10k_docs");
    g.sample_size(20);
    g.bench_function("ours", |b| {
        b.iter(|| {
            let st = rt.block_on(portal.statement(&me, Some(as_of)));
            st.expect("statement").open_items.len()
        })
    });
    g.bench_function("sql", |b| {
        b.iter(|| statement_sql(conn, me.tenant(), black_box(partner), as_of))
    });
    g.finish();
    // The same statement as the web page a representative opens: the session cookie checked and the representative
    // re-read, the statement read, its 5,000 open items rendered to HTML, through the portal's router.
    let mut g = c.benchmark_group("portal_statement_page_10k_docs");
    g.sample_size(20);
    g.bench_function("ours", |b| b.iter(|| rt.block_on(page.get(as_of))));
    g.bench_function("sql", |b| {
        b.iter(|| statement_sql(conn, me.tenant(), black_box(partner), as_of))
    });
    g.finish();
    assert!(
        rt.block_on(page.get(as_of)) > 1_000_000,
        "every open item on the page"
    );
    let ours = rt
        .block_on(portal.statement(&me, Some(as_of)))
        .expect("statement");
    assert_eq!(
        ours.open_items.len(),
        statement_sql(conn, me.tenant(), partner, as_of)
    );
}

/// A tenant with one customer holding 10,000 documents, its representative logged in.
async fn statement_fixture(
    env: &Env,
) -> (
    crm_core::service::PortalService,
    crm_core::service::Invited,
    crm_core::id::PartnerId,
    chrono::NaiveDate,
) {
    use crm_core::commerce::{Allocation, NewDocument, NewLine, NewProduct, PaymentDirection};
    use crm_core::partner::{NewContact, NewPartner};
    use rust_decimal::Decimal;
    let ctx =
        crm_core::actor::Context::user(crm_core::id::TenantId::new(), crm_core::id::UserId::new());
    env.svc.setup_tenant(&ctx).await.expect("tenant");
    let ron = crm_core::money::Currency::parse("RON").expect("RON");
    let cs = crm_core::service::CommerceService::new(env.svc.clone(), env.commerce.clone(), ron);
    // One product, no category: the statement reads no line.
    let p = NewProduct {
        code: "P".into(),
        name: "Goods".into(),
        category: None,
    };
    let recorded = cs.record_product(&ctx, p, None).await.expect("product");
    let product = recorded.record().id();
    let mut new = NewPartner::company("Big Customer SRL");
    new.owner = Some(ctx.actor.user_id().expect("a user"));
    new.contacts.push(NewContact {
        name: "Accounts".into(),
        email: Some("accounts@big.example".into()),
        ..NewContact::default()
    });
    let partner = env
        .svc
        .create_partner(&ctx, new)
        .await
        .expect("partner")
        .record;
    let start = chrono::NaiveDate::from_ymd_opt(2025, 1, 1).expect("day");
    for i in 0..7_500u32 {
        let day = start + chrono::Duration::days(i64::from(i % 700));
        let line = NewLine::new(
            product,
            Decimal::ONE,
            Decimal::from(100 + i % 50),
            Decimal::from(60),
        );
        let n = NewDocument::invoice(&format!("F-{i}"), partner.id(), day, "RON", vec![line])
            .due(day + chrono::Duration::days(30));
        cs.record_document(&ctx, n).await.expect("invoice");
        if i % 3 == 0 {
            let amount = Decimal::from(100 + i % 50);
            let mut pay = NewDocument::payment(
                &format!("P-{i}"),
                partner.id(),
                day + chrono::Duration::days(10),
                "RON",
                PaymentDirection::Received,
                amount,
            );
            pay.allocations = vec![Allocation {
                number: format!("F-{i}"),
                amount,
            }];
            cs.record_document(&ctx, pay).await.expect("payment");
        }
    }
    let portal = crm_core::service::PortalService::new(cs);
    let rights = crm_core::portal::Rights::all();
    let contact = partner.contacts()[0].id;
    let invited = portal
        .invite(&ctx, partner.id(), contact, rights)
        .await
        .expect("invite");
    let as_of = chrono::NaiveDate::from_ymd_opt(2026, 12, 31).expect("day");
    (portal, invited, partner.id(), as_of)
}

/// The portal's router with a representative signed in through its invitation link, as a browser holds it.
struct StatementPage {
    app: axum::Router,
    cookies: String,
}

impl StatementPage {
    /// Opens the statement page as of `as_of`; the size of the HTML.
    async fn get(&self, as_of: chrono::NaiveDate) -> usize {
        use http_body_util::BodyExt;
        use tower::ServiceExt;
        let req = axum::http::Request::get(format!("/?as_of={as_of}"))
            .header("cookie", &self.cookies)
            .body(axum::body::Body::empty())
            .expect("request");
        let res = self.app.clone().oneshot(req).await.expect("infallible");
        assert_eq!(res.status(), 200);
        let body = res.into_body().collect().await.expect("body").to_bytes();
        body.len()
    }
}

/// Signs the representative in through the web login (the invitation link's button) and returns the page opener
/// and the representative's principal.
async fn statement_page(
    portal: &crm_core::service::PortalService,
    invited: &crm_core::service::Invited,
) -> (StatementPage, crm_core::portal::Principal) {
    use tower::ServiceExt;
    let (tenant, rep) = (invited.representative.tenant(), invited.representative.id());
    let token = invited.token.as_str();
    let app = crm::web::Portal::new(portal.clone(), tenant, &[7u8; 64])
        .expect("secret")
        .secure_cookies(false)
        .router();
    let jar = |res: &axum::http::Response<axum::body::Body>| -> Vec<String> {
        res.headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_string))
            .collect()
    };
    let first = app
        .clone()
        .oneshot(
            axum::http::Request::get("/login")
                .body(axum::body::Body::empty())
                .expect("req"),
        )
        .await
        .expect("infallible");
    let csrf_cookie = jar(&first).pop().expect("the csrf cookie");
    let csrf = csrf_cookie.rsplit('=').next().expect("value");
    // The signed value ends with the token itself (64 hex digits after the signature).
    let csrf = &csrf[csrf.len() - 64..];
    let signed_in = app
        .clone()
        .oneshot(
            axum::http::Request::post(format!("/login/{token}"))
                .header("cookie", &csrf_cookie)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(axum::body::Body::from(format!("csrf={csrf}")))
                .expect("req"),
        )
        .await
        .expect("infallible");
    assert_eq!(signed_in.status(), 303, "signed in");
    let cookies = jar(&signed_in).join("; ");
    let me = portal.principal(tenant, rep).await.expect("principal");
    (StatementPage { app, cookies }, me)
}

/// The statement as hand-written SQL: balances per currency, and the open items (invoices and bills less their
/// allocations and correcting credit notes) decoded as the engine decodes them. Returns the number of open items.
fn statement_sql(
    conn: &rusqlite::Connection,
    tenant: crm_core::id::TenantId,
    partner: crm_core::id::PartnerId,
    as_of: chrono::NaiveDate,
) -> usize {
    let day = crm_core::commerce::day_number(as_of);
    let args = rusqlite::params![tenant.as_bytes(), partner.as_bytes(), day];
    let mut balances = conn
        .prepare_cached(
            "SELECT currency, \
               sum(CASE WHEN kind = 0 THEN total_units WHEN kind = 1 THEN -total_units \
                        WHEN kind = 3 AND COALESCE(direction, 0) = 0 THEN -total_units ELSE 0 END), \
               sum(CASE WHEN kind = 2 THEN total_units WHEN kind = 3 AND direction = 1 THEN -total_units ELSE 0 END) \
             FROM documents WHERE tenant = ?1 AND partner = ?2 AND issue_day <= ?3 GROUP BY currency",
        )
        .expect("prepare");
    let sums: Vec<(String, i64, i64)> = balances
        .query_map(args, |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("balances")
        .collect::<Result<_, _>>()
        .expect("rows");
    black_box(sums);
    // The documents' lines live in `document_lines`: the same expression the engine reads them back with.
    let doc = crm_storage_sql::commerce::document_doc(crm_storage_sql::Dialect::Sqlite, "d");
    let mut items = conn
        .prepare_cached(&format!(
            "WITH paid AS (SELECT a.target_kind AS k, a.target_number AS n, sum(a.amount_units) AS s \
               FROM allocations a JOIN documents p ON p.tenant = a.tenant AND p.id = a.document \
               WHERE a.tenant = ?1 AND a.partner = ?2 AND p.issue_day <= ?3 GROUP BY 1, 2), \
             credited AS (SELECT corrects AS n, sum(total_units) AS s FROM documents \
               WHERE tenant = ?1 AND partner = ?2 AND kind = 1 AND corrects IS NOT NULL AND issue_day <= ?3 \
               GROUP BY 1) \
             SELECT {doc}, d.total_units - COALESCE(paid.s, 0) \
               - CASE WHEN d.kind = 0 THEN COALESCE(credited.s, 0) ELSE 0 END AS open \
             FROM documents d LEFT JOIN paid ON paid.k = d.kind AND paid.n = d.number \
               LEFT JOIN credited ON d.kind = 0 AND credited.n = d.number \
             WHERE d.tenant = ?1 AND d.partner = ?2 AND d.kind IN (0, 2) AND d.issue_day <= ?3 AND open <> 0",
        ))
        .expect("prepare");
    let rows = items
        .query_map(args, |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .expect("items");
    let mut n = 0;
    for row in rows {
        let (doc, open) = row.expect("row");
        let d: crm_core::commerce::Document = serde_json::from_str(&doc).expect("doc");
        black_box((d, open));
        n += 1;
    }
    n
}

criterion_group!(micro, benches);
criterion_main!(micro);
