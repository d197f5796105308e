//! The CSV import at scale: a generated file of `CRM_IMPORT_ROWS` partners (1 000 000 by default) imported into a
//! fresh SQLite file through `crm_io::import_csv`, beside the plain-SQL baseline: the same file read with the same
//! CSV reader and its rows inserted with one prepared statement per batch into a plain table holding the same facts
//! (with the reference unique), in transactions of the same size, with the store's pragmas (WAL, synchronous
//! NORMAL). Each side runs in its own process (this binary, started again), so each peak RSS is its own; each runs
//! `CRM_IMPORT_REPS` times (3 by default), alternating which goes first. Writes target/bench/import/import.md and
//! prints it.
//!
//! `scripts/bench` runs it; `CRM_IMPORT_ROWS=100000 cargo bench -p crm-io --bench import` for a quick look.

use crm_core::actor::Context;
use crm_core::id::TenantId;
use crm_core::service::CrmService;
use crm_io::{import_csv, ImportOptions, Sinks, Table};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

const BATCH: usize = 1000;

fn dir() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let d = PathBuf::from(target).join("bench").join("import");
    std::fs::create_dir_all(&d).expect("bench directory");
    d
}

/// The generated file: a reference, a name, a contact's e-mail and phone, a city and a country per row.
fn generate(path: &Path, rows: u64) {
    if path.exists() {
        return;
    }
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("csv"));
    writeln!(out, "ref,name,email,phone,city,country").expect("write");
    let cities = [
        "București",
        "Cluj-Napoca",
        "Iași",
        "Timișoara",
        "Brașov",
        "Constanța",
    ];
    for i in 0..rows {
        writeln!(
            out,
            "C-{i:07},Firma {i} SRL,office@firma{i}.ro,+40 7{:02} {:03} {:03},{},RO",
            i % 100,
            (i / 100) % 1000,
            i % 1000,
            cities[(i % 6) as usize]
        )
        .expect("write");
    }
    out.flush().expect("flush");
}

/// The peak resident set of this process, in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn ours(csv: &Path, db: &Path) -> u64 {
    let store = crm_storage_sqlite::SqliteStore::open_file(db).expect("store");
    let crm = CrmService::builder()
        .store(Arc::new(store))
        .build()
        .expect("service");
    let ctx = Context::system(TenantId::new());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let file = std::fs::File::open(csv).expect("csv");
    let mut options = ImportOptions::new(Table::Partners);
    options.batch = BATCH;
    let report = rt
        .block_on(import_csv(
            &crm,
            &ctx,
            file,
            &options,
            Sinks::default(),
            |_| {},
        ))
        .expect("import");
    assert_eq!(report.totals.failed, 0, "{report:?}");
    report.totals.created
}

fn plain(csv: &Path, db: &Path) -> u64 {
    let conn = rusqlite::Connection::open(db).expect("db");
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .expect("wal");
    assert_eq!(mode, "wal");
    conn.execute_batch(
        "PRAGMA synchronous = NORMAL;
         CREATE TABLE partners (tenant BLOB NOT NULL, id BLOB NOT NULL, host_ref TEXT NOT NULL, name TEXT NOT NULL,
             email TEXT, phone TEXT, city TEXT, country TEXT NOT NULL, PRIMARY KEY (tenant, id)) WITHOUT ROWID;
         CREATE UNIQUE INDEX partners_ref ON partners (tenant, host_ref);",
    )
    .expect("schema");
    let tenant = uuid::Uuid::now_v7();
    let mut reader = csv::Reader::from_path(csv).expect("csv");
    let mut record = csv::StringRecord::new();
    let mut n = 0;
    let mut more = true;
    while more {
        let tx = conn.unchecked_transaction().expect("tx");
        {
            let mut ins = tx
                .prepare_cached(
                    "INSERT INTO partners (tenant, id, host_ref, name, email, phone, city, country)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .expect("statement");
            for _ in 0..BATCH {
                more = reader.read_record(&mut record).expect("record");
                if !more {
                    break;
                }
                let id = uuid::Uuid::now_v7();
                ins.execute(rusqlite::params![
                    tenant.as_bytes(),
                    id.as_bytes(),
                    &record[0],
                    &record[1],
                    &record[2],
                    &record[3],
                    &record[4],
                    &record[5]
                ])
                .expect("insert");
                n += 1;
            }
        }
        tx.commit().expect("commit");
    }
    n
}

/// One run of `role` in a fresh database, in this process: prints `rows seconds peak_kib`.
fn child(role: &str, csv: &Path, db: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        std::fs::remove_file(format!("{}{suffix}", db.display())).ok();
    }
    let started = Instant::now();
    let rows = match role {
        "ours" => ours(csv, db),
        _ => plain(csv, db),
    };
    let secs = started.elapsed().as_secs_f64();
    let bytes = std::fs::metadata(db).map(|m| m.len()).unwrap_or(0);
    println!("{rows} {secs} {} {bytes}", peak_rss_kib());
}

struct Run {
    rows: u64,
    secs: f64,
    kib: u64,
    bytes: u64,
}

fn spawn(role: &str) -> Run {
    let out = Command::new(std::env::current_exe().expect("self"))
        .env("CRM_IMPORT_ROLE", role)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{role}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or_default();
    let v: Vec<&str> = line.split_whitespace().collect();
    let num = |i: usize| v.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    Run {
        rows: num(0) as u64,
        secs: num(1),
        kib: num(2) as u64,
        bytes: num(3) as u64,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let rows: u64 = std::env::var("CRM_IMPORT_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let d = dir();
    let csv = d.join(format!("partners-{rows}.csv"));
    if let Ok(role) = std::env::var("CRM_IMPORT_ROLE") {
        child(&role, &csv, &d.join(format!("{role}.sqlite")));
        return;
    }
    let reps: usize = std::env::var("CRM_IMPORT_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    generate(&csv, rows);
    let size = std::fs::metadata(&csv).map(|m| m.len()).unwrap_or(0);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for rep in 0..reps {
        // Alternate the order, so neither side always has the page cache the other warmed.
        if rep % 2 == 0 {
            a.push(spawn("ours"));
            b.push(spawn("sql"));
        } else {
            b.push(spawn("sql"));
            a.push(spawn("ours"));
        }
    }
    assert!(
        a.iter().chain(&b).all(|r| r.rows == rows),
        "every run imports every row"
    );
    let secs = |v: &[Run]| median(v.iter().map(|r| r.secs).collect());
    let kib = |v: &[Run]| v.iter().map(|r| r.kib).max().unwrap_or(0);
    let bytes = |v: &[Run]| v.last().map_or(0, |r| r.bytes);
    let (ta, tb) = (secs(&a), secs(&b));
    let report = format!(
        "# CSV import, {rows} partners ({:.0} MiB of CSV), SQLite, batches of {BATCH}, median of {reps}\n\n\
         | side | seconds | rows/s | peak RSS | database file |\n|---|---:|---:|---:|---:|\n\
         | crm_io::import_csv (engine: validation, duplicate keys, host references, activity log) | {ta:.2} | {:.0} | {:.0} MiB | {:.0} MiB |\n\
         | plain SQL (csv + one prepared INSERT, unique reference) | {tb:.2} | {:.0} | {:.0} MiB | {:.0} MiB |\n\n\
         ours ÷ plain SQL: time {:.2}×, peak RSS {:.2}×\n",
        size as f64 / 1048576.0,
        rows as f64 / ta,
        kib(&a) as f64 / 1024.0,
        bytes(&a) as f64 / 1048576.0,
        rows as f64 / tb,
        kib(&b) as f64 / 1024.0,
        bytes(&b) as f64 / 1048576.0,
        ta / tb,
        kib(&a) as f64 / kib(&b).max(1) as f64,
    );
    std::fs::write(d.join("import.md"), &report).expect("report");
    println!("{report}");
}
