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
}

criterion_group!(micro, benches);
criterion_main!(micro);
