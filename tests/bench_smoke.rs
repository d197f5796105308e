//! The benchmark suite's smoke test (run in CI): on a small generated data set, every workload runs through the
//! engine and through its plain-SQL baseline, and the two give the same result. Speed is not checked here;
//! `scripts/bench` measures it.

#[path = "../benches/suite/mod.rs"]
mod suite;

use crm_storage_sqlite::SqliteStore;
use suite::gen::{self, Size};
use suite::work::{Env, Impl, Scale, WORKLOADS};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn fresh_db(name: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench_smoke");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let db = dir.join(format!("{name}.sqlite"));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    db
}

/// Asserts that two runs of workload `id` give the same (non-empty) result; `what` names the two sides.
fn assert_same_result(id: &str, a: &suite::work::Run, b: &suite::work::Run, what: &str) {
    assert_eq!(a.digest, b.digest, "{id}: {what} differ");
    assert_eq!(a.rows, b.rows, "{id}");
    assert!(a.rows > 0, "{id}: no rows");
}

const SMOKE: Size = Size {
    name: "smoke",
    leads: 1_500,
    partners: 500,
    lines: 5_000,
};

#[test]
fn every_workload_gives_the_same_result_as_its_plain_sql_baseline() {
    let rt = runtime();
    let db = fresh_db("equal");
    let manifest = rt.block_on(async {
        let store = SqliteStore::open_file(&db).expect("open");
        gen::generate(&store, SMOKE, 7).await.expect("generate")
    });
    assert_eq!(manifest.leads, 1_500);
    assert_eq!(
        manifest.hot_leads.len(),
        3,
        "every 500th lead has a long timeline"
    );
    let mut env = Env::open(&db, manifest).expect("env");
    env.scale = Scale {
        single: 40,
        batch: 600,
        moves: 40,
        timelines: 40,
        evaluations: 300,
    };
    for w in WORKLOADS {
        let ours = rt
            .block_on(env.run(w.id, Impl::Ours, 2))
            .unwrap_or_else(|e| panic!("{} (ours): {e}", w.id));
        let sql = rt
            .block_on(env.run(w.id, Impl::Sql, 2))
            .unwrap_or_else(|e| panic!("{} (sql): {e}", w.id));
        assert_same_result(w.id, &ours, &sql, "ours and the baseline");
        assert_eq!(ours.secs.len(), 2);
    }
    // The segment and the reports are not empty, so their equality means something.
    let seg = rt
        .block_on(env.run("segment", Impl::Sql, 1))
        .expect("segment");
    let members: u64 = seg
        .digest
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(members > 0, "{}", seg.digest);
    // The segment's floor (`scripts/bench` notes its time) answers the same question: its members are the
    // baseline's, and it refuses to report a time when they differ.
    let floor = suite::floor::probe(&db, &env.manifest, 1).expect("the segment's floor");
    assert_eq!(floor.members as u64, members);
    assert_eq!(floor.rounds.len(), 1);
    let profit = rt
        .block_on(env.run("profit_group", Impl::Sql, 1))
        .expect("profit");
    assert!(profit.digest.starts_with("20 groups"), "{}", profit.digest);
    // The timelines read include the long ones, cut at 50 entries.
    let t = rt
        .block_on(env.run("timeline", Impl::Ours, 1))
        .expect("timeline");
    assert!(t.digest.starts_with("40 timelines"), "{}", t.digest);
    assert!(t.rows >= 3 * 50, "{}", t.rows);

    // A roll-up the floor reads, emptied behind the engine's back: its members differ from the baseline's, and
    // it says so instead of timing a different question.
    let category = env.manifest.commerce.category.expect("a category");
    rusqlite::Connection::open(&db)
        .and_then(|c| {
            c.execute(
                "DELETE FROM bought_months WHERE item = ?1",
                [&category.as_bytes()[..]],
            )
        })
        .expect("tamper");
    let err = suite::floor::probe(&db, &env.manifest, 1).expect_err("members differ");
    assert!(err.contains("floor found 0 members"), "{err}");
}

#[test]
fn the_generator_is_deterministic_for_a_seed() {
    let rt = runtime();
    let small = Size {
        name: "tiny",
        leads: 300,
        partners: 100,
        lines: 0,
    };
    let content = |name: &str, seed: u64| {
        let db = fresh_db(name);
        let manifest = rt.block_on(async {
            let store = SqliteStore::open_file(&db).expect("open");
            gen::generate(&store, small, seed).await.expect("generate")
        });
        let conn = suite::work::plain_connection(&db).expect("conn");
        let mut d = suite::work::Digest::default();
        for table in [
            "partners",
            "leads",
            "events",
            "stage_history",
            "partner_keys",
        ] {
            let sql = format!("SELECT * FROM {table} ORDER BY 1, 2, 3");
            let mut stmt = conn.prepare(&sql).expect("prepare");
            let n = stmt.column_count();
            let mut rows = stmt.query([]).expect("query");
            while let Some(r) = rows.next().expect("row") {
                for i in 0..n {
                    let v: rusqlite::types::Value = r.get(i).expect("value");
                    d.add(format!("{v:?}").as_bytes());
                }
            }
        }
        (manifest.rows, manifest.tenant, d.hex())
    };
    let a = content("det-a", 11);
    let b = content("det-b", 11);
    let c = content("det-c", 12);
    assert_eq!(a, b, "same seed, same data");
    assert_ne!(a.2, c.2, "another seed, other data");
    assert!(
        a.0 > 300 * 3,
        "partners, leads, events and history were written"
    );
}

#[test]
fn the_footprint_compares_the_same_documents_with_the_plain_schema() {
    let rt = runtime();
    let small = Size {
        name: "footprint",
        leads: 200,
        partners: 100,
        lines: 2_000,
    };
    let db = fresh_db("footprint");
    let manifest = rt.block_on(async {
        let store = SqliteStore::open_file(&db).expect("open");
        gen::generate(&store, small, 5).await.expect("generate")
    });
    let plain = db.with_extension("plain.sqlite");
    let f = suite::footprint::measure(&db, &plain).expect("footprint");
    let c = &manifest.commerce;
    assert_eq!(f.lines, c.lines, "every generated line is counted once");
    assert_eq!(
        f.documents,
        c.invoices + c.credit_notes + c.payments,
        "every document"
    );
    assert!(!plain.exists(), "the plain file is removed");
    // Each side's bytes are its pages in use: at least a page per table, and the engine's commerce tables are part
    // of its file.
    assert!(f.plain_bytes >= 5 * 4096, "{f:?}");
    assert!(
        f.commerce_bytes > 0 && f.commerce_bytes < f.file_bytes,
        "{f:?}"
    );
    let named: Vec<&str> = f.tables.iter().map(|(t, _)| t.as_str()).collect();
    for t in suite::footprint::COMMERCE_TABLES {
        assert!(named.contains(t), "{t} measured: {named:?}");
    }
    assert!(
        f.tables.windows(2).all(|w| w[0].1 >= w[1].1),
        "largest first"
    );
}

#[test]
fn on_postgresql_every_workload_equals_its_baseline_and_the_sqlite_result() {
    let Some(url) = suite::work::test_pg_url("bench smoke") else {
        return;
    };
    let rt = runtime();
    let db = fresh_db("pg-twin");
    let lite_manifest = rt.block_on(async {
        let store = SqliteStore::open_file(&db).expect("open");
        gen::generate(&store, SMOKE, 7).await.expect("generate")
    });
    let (schema, pg_manifest) = rt
        .block_on(suite::work::generate_pg(&url, "bench_smoke", SMOKE, 7))
        .expect("generate");
    assert_eq!(
        pg_manifest.tenant, lite_manifest.tenant,
        "same seed, same ids"
    );
    assert_eq!(pg_manifest.hot_leads, lite_manifest.hot_leads);
    let scale = Scale::SMOKE_PG;
    let mut lite = Env::open(&db, lite_manifest).expect("env");
    lite.scale = scale;
    let mut pg = rt
        .block_on(Env::open_pg(&url, &schema, pg_manifest))
        .expect("env");
    pg.scale = scale;
    assert!(matches!(pg.base, suite::work::Base::Postgres(_)));
    for w in WORKLOADS.iter().filter(|w| w.id != "rules_eval") {
        let run = |env: &mut Env, imp: Impl| {
            rt.block_on(env.run(w.id, imp, 2))
                .unwrap_or_else(|e| panic!("{} ({imp:?}): {e}", w.id))
        };
        let ours = run(&mut pg, Impl::Ours);
        let sql = run(&mut pg, Impl::Sql);
        let sqlite = run(&mut lite, Impl::Ours);
        assert_same_result(w.id, &ours, &sql, "PgStore and tokio-postgres");
        assert_eq!(
            ours.digest, sqlite.digest,
            "{}: PostgreSQL and SQLite differ",
            w.id
        );
    }
    rt.block_on(async {
        let client = suite::work::plain_pg(&url, &schema).await.expect("client");
        suite::pgsql::drop_schema(&client, &schema)
            .await
            .expect("drop schema");
    });
}
