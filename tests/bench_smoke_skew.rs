//! The benchmark suite's smoke test on the skewed data (`CRM_BENCH_SKEW=1`, which the generator reads from the
//! environment: hence a test binary of its own, so no other test sees it): the data holds what the skewed variant
//! promises (other currencies, launched campaigns with targets and costs, a second tenant with commerce data), and
//! every workload gives the same result through the engine and through its plain-SQL baseline on it.

#[path = "../benches/suite/mod.rs"]
mod suite;

use crm_storage_sqlite::SqliteStore;
use suite::gen::{self, Size};
use suite::work::{Env, Impl, Scale, WORKLOADS};

#[test]
fn on_skewed_data_every_workload_equals_its_baseline() {
    // The only test of this binary: nothing else reads the environment while it is set.
    std::env::set_var("CRM_BENCH_SKEW", "1");
    assert!(gen::skew());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("skew.sqlite");
    let size = Size {
        name: "smoke-skew",
        leads: 1_500,
        partners: 500,
        lines: 5_000,
    };
    let manifest = rt.block_on(async {
        let store = SqliteStore::open_file(&db).expect("open");
        gen::generate(&store, size, 7).await.expect("generate")
    });
    let conn = suite::work::plain_connection(&db).expect("conn");
    let one = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).expect(sql) };
    // Other currencies: a fifth of the invoices in expectation, between a tenth and three tenths here.
    let invoices = one("SELECT count(*) FROM documents WHERE kind = 0");
    let foreign = one("SELECT count(*) FROM documents WHERE kind = 0 AND currency <> 'EUR'");
    assert!(
        foreign * 10 >= invoices && foreign * 10 <= invoices * 3,
        "{foreign} of {invoices} invoices in another currency"
    );
    assert_eq!(
        one("SELECT count(DISTINCT currency) FROM documents"),
        3,
        "EUR, RON and USD"
    );
    assert_eq!(
        one("SELECT count(*) FROM documents WHERE reporting <> 'EUR'"),
        0,
        "every document reports in EUR"
    );
    assert!(
        one("SELECT count(*) FROM exchange_rates") >= 2 * 36,
        "monthly rates"
    );
    // Launched campaigns with targets and costs (ten a tenant).
    assert_eq!(
        one("SELECT count(*) FROM campaigns WHERE status <> 0"),
        3 * 10
    );
    let targets = one("SELECT count(*) FROM campaign_targets");
    assert!(targets > 0, "targets");
    // Half of them call their targets: every telemarketing target has its call, some were reached, and the calls'
    // outcomes are of several kinds (the campaign report counts them from its roll-up).
    assert_eq!(
        one(
            "SELECT count(*) FROM campaigns WHERE json_extract(doc, '$.channel') = 'telemarketing'"
        ),
        3 * 5
    );
    assert_eq!(
        one("SELECT count(*) FROM campaign_targets t JOIN requests r ON r.tenant = t.tenant AND r.id = t.request"),
        one("SELECT count(*) FROM campaign_targets WHERE request IS NOT NULL"),
        "every call stored"
    );
    assert!(
        one("SELECT count(*) FROM campaign_targets WHERE reached_at IS NOT NULL") > 0,
        "reached"
    );
    assert!(
        one("SELECT count(DISTINCT outcome) FROM campaign_targets") >= 4,
        "outcomes"
    );
    assert!(one("SELECT count(*) FROM campaign_costs") >= 10, "costs");
    // Several tenants with commerce data.
    assert_eq!(one("SELECT count(DISTINCT tenant) FROM documents"), 3);
    assert_eq!(
        one("SELECT count(DISTINCT tenant) FROM sales_months"),
        3,
        "every tenant's roll-ups"
    );
    // Customers by Zipf's law: the busiest fifth of the main tenant's customers hold most of its invoices (the
    // Pareto principle's 80 % over every customer; among this small set's buyers, above the 37–38 % a uniform draw
    // gives).
    let customers = one(&format!(
        "SELECT count(DISTINCT partner) FROM documents WHERE kind = 0 AND tenant = x'{}'",
        manifest.tenant.as_uuid().simple()
    ));
    let top_fifth = one(&format!(
        "SELECT sum(n) FROM (SELECT count(*) AS n FROM documents WHERE kind = 0 AND tenant = x'{t}' \
         GROUP BY partner ORDER BY n DESC LIMIT (SELECT count(DISTINCT partner) / 5 FROM documents \
         WHERE kind = 0 AND tenant = x'{t}'))",
        t = manifest.tenant.as_uuid().simple()
    ));
    let main_invoices = one(&format!(
        "SELECT count(*) FROM documents WHERE kind = 0 AND tenant = x'{}'",
        manifest.tenant.as_uuid().simple()
    ));
    assert!(customers > 0);
    assert!(
        top_fifth * 100 >= main_invoices * 45,
        "the busiest fifth of {customers} customers hold {top_fifth} of {main_invoices} invoices"
    );
    // Some targets bought within the attribution's 90-day lookback after their campaign's launch, so the
    // attribution comparison below credits launch-day touches.
    assert!(
        one(
            "SELECT count(*) FROM campaign_targets t JOIN campaigns c ON c.tenant = t.tenant AND c.id = t.campaign \
             JOIN documents d ON d.tenant = t.tenant AND d.partner = t.partner AND d.kind = 0 \
             WHERE d.issue_day - CAST(julianday(date(json_extract(c.doc, '$.launched_at'))) - 1721424.5 AS INTEGER) \
             BETWEEN 0 AND 90"
        ) > 0,
        "targets bought after their launch"
    );
    let scale = Scale::SMOKE_PG;
    let tenant = manifest.tenant;
    let mut env = Env::open(&db, manifest).expect("env");
    env.scale = scale;
    // The same data on PostgreSQL (the server of scripts/test), when there is one: PgStore and the tokio-postgres
    // baselines equal each other and SQLite.
    let mut pg = suite::work::test_pg_url("skewed bench smoke").map(|url| {
        let (schema, m) = rt
            .block_on(suite::work::generate_pg(&url, "bench_skew", size, 7))
            .expect("generate");
        assert_eq!(m.tenant, tenant, "same seed, same ids");
        let mut pg = rt.block_on(Env::open_pg(&url, &schema, m)).expect("env");
        pg.scale = scale;
        (url, schema, pg)
    });
    for w in WORKLOADS {
        let run = |env: &mut Env, imp: Impl| {
            rt.block_on(env.run(w.id, imp, 1))
                .unwrap_or_else(|e| panic!("{} ({imp:?}): {e}", w.id))
        };
        let ours = run(&mut env, Impl::Ours);
        let sql = run(&mut env, Impl::Sql);
        assert_eq!(
            ours.digest, sql.digest,
            "{}: ours and the baseline differ",
            w.id
        );
        assert_eq!(ours.rows, sql.rows, "{}", w.id);
        assert!(ours.rows > 0, "{}: no rows", w.id);
        // Rule evaluation touches no storage: it runs on SQLite only (as in scripts/bench).
        if let Some((_, _, pg)) = pg.as_mut().filter(|_| w.id != "rules_eval") {
            let pg_ours = run(pg, Impl::Ours);
            let pg_sql = run(pg, Impl::Sql);
            assert_eq!(
                pg_ours.digest, pg_sql.digest,
                "{}: PgStore and tokio-postgres differ",
                w.id
            );
            assert_eq!(
                pg_ours.digest, ours.digest,
                "{}: PostgreSQL and SQLite differ",
                w.id
            );
        }
    }
    if let Some((url, schema, _)) = pg {
        rt.block_on(async {
            let client = suite::work::plain_pg(&url, &schema).await.expect("client");
            suite::pgsql::drop_schema(&client, &schema)
                .await
                .expect("drop schema");
        });
    }
}
