//! The benchmark report runner (`cargo bench --bench report`, driven by `scripts/bench`).
//!
//! For each size (`CRM_BENCH_SIZE`, a comma list of `XS`, `S`, `MID`, `M`, `ML`; default `S`) and backend
//! (`CRM_BENCH_BACKENDS`, `sqlite,postgres` by default; PostgreSQL at `CRM_BENCH_POSTGRES_URL` or
//! `CRM_TEST_POSTGRES_URL`, data in schema `bench_<size>_<seed>`) it generates the data set
//! once (cached under `<out>/data/<size>-<seed>/`, seed `CRM_BENCH_SEED`, default 42), then runs every workload
//! with the engine and with its plain-SQL baseline, each in a child process of its own (so the child's peak RSS,
//! `VmHWM`, is that workload's), `CRM_BENCH_REPS` times (default 5). It checks that both give the same result and
//! writes `<out>/report.md`, `<out>/report.json` and `<out>/time-vs-size.svg` (`<out>` is `CRM_BENCH_OUT`,
//! default `target/bench` in the workspace). It exits non-zero when a result differs from its baseline's.
//!
//! Child modes (used by the runner itself): `--gen SIZE [BACKEND]` and `--child SIZE WORKLOAD IMPL REPS [BACKEND]`.

#[path = "suite/mod.rs"]
mod suite;

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;
use suite::gen::{self, Manifest, Size};
use suite::work::{Backend, Env, Impl, WORKLOADS};

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_string())
}

fn out_dir() -> PathBuf {
    let p = PathBuf::from(env_or("CRM_BENCH_OUT", "target/bench"));
    if p.is_absolute() {
        p
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
    }
}

fn seed() -> u64 {
    env_or("CRM_BENCH_SEED", "42").parse().unwrap_or(42)
}

/// The PostgreSQL server the PostgreSQL runs use: `CRM_BENCH_POSTGRES_URL`, else the throwaway server of
/// `scripts/with-postgres` (`CRM_TEST_POSTGRES_URL`).
fn pg_url() -> Option<String> {
    ["CRM_BENCH_POSTGRES_URL", "CRM_TEST_POSTGRES_URL"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|u| !u.trim().is_empty()))
}

/// The schema holding a size's data on PostgreSQL.
fn pg_schema(size: &Size) -> String {
    format!("bench_{}_{}", size.name.to_lowercase(), seed())
}

fn need_pg_url() -> Result<String, String> {
    pg_url().ok_or_else(|| "no PostgreSQL server: set CRM_BENCH_POSTGRES_URL".to_string())
}

fn default_backend() -> String {
    "sqlite".into()
}

fn data_dir(size: &Size) -> PathBuf {
    out_dir().join("data").join(format!(
        "{}-{}{}",
        size.name,
        seed(),
        if gen::skew() { "-skew" } else { "" }
    ))
}

/// The peak resident set size of this process, in KiB (Linux `VmHWM`; 0 elsewhere).
fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// One measured (size, workload, implementation).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Measure {
    #[serde(default = "default_backend")]
    backend: String,
    size: String,
    leads: u64,
    workload: String,
    imp: String,
    secs: Vec<f64>,
    median: f64,
    /// Ours ÷ the baseline in each round (runs alternate, one pair per round): on `ours` only.
    #[serde(default)]
    pair_ratios: Vec<f64>,
    rows: u64,
    rows_per_s: f64,
    peak_rss_kb: u64,
    digest: String,
}

/// A child's answer.
#[derive(Debug, Serialize, Deserialize)]
struct ChildOut {
    secs: Vec<f64>,
    rows: u64,
    digest: String,
    peak_rss_kb: u64,
}

impl ChildOut {
    /// A generation's answer: its time, the writes and this process's peak RSS.
    fn generated(m: &Manifest) -> Self {
        Self {
            secs: vec![m.seconds],
            rows: m.rows,
            digest: String::new(),
            peak_rss_kb: peak_rss_kb(),
        }
    }
}

/// Prints a child's answer as the JSON line the runner reads.
fn print_out(out: &ChildOut) -> Result<(), String> {
    println!("{}", serde_json::to_string(out).map_err(|e| e.to_string())?);
    Ok(())
}

/// The `q`-quantile of `v` (0.25, 0.5, 0.75), interpolated between the closest ranks.
fn quantile(v: &[f64], q: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    match s.len() {
        0 => f64::NAN,
        n => {
            let at = q * (n - 1) as f64;
            let (lo, hi) = (at.floor() as usize, at.ceil() as usize);
            s[lo] + (s[hi] - s[lo]) * (at - lo as f64)
        }
    }
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

/// A generated data set of another size that holds exactly `size`'s partners and leads (same seed, same counts) but
/// no commerce data: `ML` for `M`. Generating `M` moves it into place and adds only the invoices, which gives the
/// same database as generating `M` from nothing (the generator writes tenants first, then commerce, from the
/// same seeded streams; workloads run on the twin since have moved some of its leads, as on any reused data set)
/// without writing its 9M lead rows again.
fn lead_only_twin(size: Size) -> Option<(PathBuf, Manifest)> {
    if size.lines == 0 {
        return None;
    }
    gen::SIZES.iter().find_map(|twin| {
        if twin.lines != 0 || twin.leads != size.leads || twin.partners != size.partners {
            return None;
        }
        let dir = data_dir(twin);
        let m = Manifest::load(&dir.join("manifest.json")).ok()?;
        (m.seed == seed() && dir.join("crm.sqlite").exists()).then_some((dir, m))
    })
}

fn child_gen(size: Size) -> Result<(), String> {
    let dir = data_dir(&size);
    if let Some((twin_dir, twin)) = lead_only_twin(size) {
        eprintln!(
            "bench: {} = {} + commerce: moving {} to {} and adding {} invoice lines",
            size.name,
            twin.size,
            twin_dir.display(),
            dir.display(),
            size.lines
        );
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::rename(&twin_dir, &dir).map_err(|e| e.to_string())?;
        let db = dir.join("crm.sqlite");
        let manifest = runtime().block_on(async {
            let store =
                crm_storage_sqlite::SqliteStore::open_file(&db).map_err(|e| e.to_string())?;
            gen::extend_with_commerce(&store, twin, size)
                .await
                .map_err(|e| e.to_string())
        })?;
        manifest.save(&dir.join("manifest.json"))?;
        print_out(&ChildOut::generated(&manifest))?;
        return Ok(());
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let db = dir.join("crm.sqlite");
    let manifest = runtime().block_on(async {
        let store = crm_storage_sqlite::SqliteStore::open_file(&db).map_err(|e| e.to_string())?;
        gen::generate(&store, size, seed())
            .await
            .map_err(|e| e.to_string())
    })?;
    manifest.save(&dir.join("manifest.json"))?;
    print_out(&ChildOut::generated(&manifest))?;
    Ok(())
}

/// Generates `size` into a fresh schema of the PostgreSQL server through `PgStore`'s ingest (binary COPY) and
/// stores the manifest in the schema.
fn child_gen_pg(size: Size) -> Result<(), String> {
    let url = need_pg_url()?;
    let schema = pg_schema(&size);
    let manifest = runtime().block_on(async {
        let client = suite::work::plain_pg(&url, &schema).await?;
        suite::pgsql::drop_schema(&client, &schema).await?;
        let store = suite::work::pg_store(&url, &schema).await?;
        let m = gen::generate(&store, size, seed())
            .await
            .map_err(|e| e.to_string())?;
        suite::pgsql::save_manifest(&client, &m).await?;
        client
            .batch_execute("VACUUM ANALYZE")
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(m)
    })?;
    print_out(&ChildOut::generated(&manifest))?;
    Ok(())
}

fn child_run(
    size: Size,
    workload: &str,
    imp: Impl,
    reps: usize,
    backend: Backend,
) -> Result<(), String> {
    let rt = runtime();
    let run = match backend {
        Backend::Sqlite => {
            let dir = data_dir(&size);
            let manifest = Manifest::load(&dir.join("manifest.json"))?;
            let mut env = Env::open(&dir.join("crm.sqlite"), manifest)?;
            rt.block_on(env.run(workload, imp, reps))?
        }
        Backend::Postgres => rt.block_on(async {
            let url = need_pg_url()?;
            let schema = pg_schema(&size);
            let client = suite::work::plain_pg(&url, &schema).await?;
            let manifest = suite::pgsql::load_manifest(&client)
                .await?
                .ok_or_else(|| format!("no {} data in schema {schema}", size.name))?;
            drop(client);
            let mut env = Env::open_pg(&url, &schema, manifest).await?;
            env.run(workload, imp, reps).await
        })?,
    };
    print_out(&ChildOut {
        secs: run.secs,
        rows: run.rows,
        digest: run.digest,
        peak_rss_kb: peak_rss_kb(),
    })?;
    Ok(())
}

fn spawn(args: &[&str]) -> Result<ChildOut, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = Command::new(exe)
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "child {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .ok_or_else(|| format!("child {args:?} printed no result"))?;
    serde_json::from_str(line).map_err(|e| format!("child {args:?}: {e}: {line}"))
}

/// The report: measures, generation figures, and whether every result equalled its baseline's.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Report {
    seed: u64,
    reps: usize,
    machine: String,
    generated: Vec<Generated>,
    measures: Vec<Measure>,
    /// Bytes per line against the plain schema, per size (SQLite).
    #[serde(default)]
    footprints: Vec<(String, suite::footprint::Footprint)>,
    mismatches: Vec<String>,
    notes: Vec<String>,
}

impl Report {
    /// Ours and the plain-SQL baseline measured for one (backend, size, workload), when both are there.
    fn ours_and_sql(
        &self,
        backend: &str,
        size: &str,
        workload: &str,
    ) -> Option<(&Measure, &Measure)> {
        let find = |imp: &str| {
            self.measures.iter().find(|m| {
                m.backend == backend && m.size == size && m.workload == workload && m.imp == imp
            })
        };
        Some((find("ours")?, find("sql")?))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Generated {
    #[serde(default = "default_backend")]
    backend: String,
    size: String,
    leads: u64,
    rows: u64,
    seconds: f64,
    rows_per_s: f64,
    peak_rss_kb: u64,
    db_bytes: u64,
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    format!("{cpu}, {cores} cores")
}

fn fmt_secs(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 1e-3 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{:.1} µs", s * 1e6)
    }
}

fn fmt_rate(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.2}M/s", r / 1e6)
    } else if r >= 1e3 {
        format!("{:.1}k/s", r / 1e3)
    } else {
        format!("{r:.0}/s")
    }
}

/// A time's median with its spread and minimum: `1.20 ms [1.10–1.35] ≥1.05 ms`, the bracket the interquartile
/// range from four runs, the whole range under four (where quartiles say nothing), nothing for one run.
fn spread(secs: &[f64]) -> String {
    let min = secs.iter().copied().fold(f64::INFINITY, f64::min);
    let max = secs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    match secs.len() {
        0 | 1 => fmt_secs(median(secs)),
        2 | 3 => format!(
            "{} [{}–{}]",
            fmt_secs(median(secs)),
            fmt_secs(min),
            fmt_secs(max)
        ),
        _ => format!(
            "{} [{}–{}] ≥{}",
            fmt_secs(median(secs)),
            fmt_secs(quantile(secs, 0.25)),
            fmt_secs(quantile(secs, 0.75)),
            fmt_secs(min)
        ),
    }
}

/// Ours ÷ the baseline: the median of the rounds' ratios with their range, or (an older report) of the medians.
fn ratio_of(o: &Measure, b: &Measure) -> String {
    match o.pair_ratios.as_slice() {
        [] => format!("{:.2}", o.median / b.median),
        [one] => format!("{one:.2}"),
        pairs => {
            let lo = pairs.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = pairs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            format!("{:.2} [{lo:.2}–{hi:.2}]", median(pairs))
        }
    }
}

fn write_markdown(r: &Report, path: &Path) -> std::io::Result<()> {
    let mut s = String::new();
    s.push_str("# Benchmark report\n\n");
    s.push_str(&format!(
        "Machine: {}. Seed {}; up to {} rounds per workload (fewer when its runs exceeded the time budget: see `secs` in report.json). A round is one timed run of each side, \
         the order alternating between rounds (ours first in odd-numbered ones), each run in a child process of its own after {} untimed warm-up run(s), so the peak \
         RSS (VmHWM) is that run's and neither side always inherits a page cache the other warmed. Times are medians with their interquartile range and minimum (`median [Q1–Q3] ≥min`; under four runs `median [min–max]`); \
         the ratio is the median of the rounds' ratios (each round's pair ran back to back, so load on the machine hits both) with its range. `sql` is the same work as plain SQL with prepared statements on a second \
         connection to the same data (rusqlite on the SQLite file, tokio-postgres on the PostgreSQL schema). Ratio = ours ÷ sql (lower is better; 1.0 = no overhead).\n\n",
        r.machine, r.seed, r.reps, suite::work::warmup_runs()
    ));
    if r.mismatches.is_empty() {
        s.push_str("Every result equals its baseline's result.\n\n");
    } else {
        s.push_str("**Results that differ from the baseline:**\n\n");
        for m in &r.mismatches {
            s.push_str(&format!("- {m}\n"));
        }
        s.push('\n');
    }
    for (backend, title) in [
        ("sqlite", "## Workloads on SQLite (the embedded default)\n\n"),
        (
            "postgres",
            "## Workloads on PostgreSQL\n\n`sql` is tokio-postgres with prepared statements on a second connection to the \
             same schema. The server is the throwaway one of `scripts/with-postgres` on the same machine (fsync off, \
             synchronous_commit off: commit latency is not what is compared). The engine's results equal SQLite's on \
             the same seed (checked).\n\n",
        ),
    ] {
    if !r.measures.iter().any(|m| m.backend == backend && m.imp == "ours") {
        continue;
    }
    s.push_str(title);
    s.push_str("| size | workload | rows | ours (median [IQR] ≥min) | sql (median [IQR] ≥min) | ratio [min–max of rounds] | ours rows/s | sql rows/s | ours peak RSS | sql peak RSS |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    let mut sizes: Vec<(u64, String)> = r
        .measures
        .iter()
        .filter(|m| m.backend == backend)
        .map(|m| (m.leads, m.size.clone()))
        .collect();
    sizes.sort();
    sizes.dedup();
    for (_, size) in &sizes {
        let measured = WORKLOADS
            .iter()
            .filter_map(|w| Some((w, r.ours_and_sql(backend, size, w.id)?)));
        for (w, (o, b)) in measured {
            s.push_str(&format!(
                "| {size} | {} — {} | {} {} | {} | {} | {} | {} | {} | {} MiB | {} MiB |\n",
                w.id,
                w.what,
                o.rows,
                w.unit,
                spread(&o.secs),
                spread(&b.secs),
                ratio_of(o, b),
                fmt_rate(o.rows_per_s),
                fmt_rate(b.rows_per_s),
                o.peak_rss_kb / 1024,
                b.peak_rss_kb / 1024
            ));
        }
    }
    s.push('\n');
    }
    let duck: Vec<&Measure> = r.measures.iter().filter(|m| m.imp == "duckdb").collect();
    if !duck.is_empty() {
        s.push_str("\n## Against an analytical engine (DuckDB, a column store) on the same data\n\nDuckDB's ids are typed UUID, its rows fetched inside its timer (column-wise through NumPy when it is installed: each size's note below says which), one untimed warm-up run first; it runs on all cores and again on one thread (ours runs on one).\n\n| size | workload | rows | ours (median) | sql (median) | duckdb, all cores (median [spread] ≥min) | ours ÷ duckdb | duckdb, 1 thread (median) | ours ÷ duckdb 1 thread | duckdb peak RSS |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for (d, (o, b)) in duck
            .iter()
            .filter_map(|d| Some((d, r.ours_and_sql("sqlite", &d.size, &d.workload)?)))
        {
            let one = r
                .measures
                .iter()
                .find(|m| m.imp == "duckdb-1t" && m.size == d.size && m.workload == d.workload);
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {:.2} | {} | {} | {} MiB |\n",
                d.size,
                d.workload,
                d.rows,
                fmt_secs(o.median),
                fmt_secs(b.median),
                spread(&d.secs),
                o.median / d.median,
                one.map_or("—".to_string(), |m| fmt_secs(m.median)),
                one.map_or("—".to_string(), |m| format!("{:.2}", o.median / m.median)),
                d.peak_rss_kb / 1024
            ));
        }
    }
    s.push_str("\n## Data generation (through `Store::ingest`, 10k-write change sets; a document with its lines is one write)\n\n| backend | size | leads | writes | time | writes/s | peak RSS | file |\n|---|---|---:|---:|---:|---:|---:|---:|\n");
    let mut generated = r.generated.clone();
    generated.sort_by_key(|g| (g.backend.clone(), g.leads, g.size.clone()));
    for g in &generated {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} MiB |\n",
            g.backend,
            g.size,
            g.leads,
            g.rows,
            fmt_secs(g.seconds),
            fmt_rate(g.rows_per_s),
            if g.peak_rss_kb == 0 {
                "reused, not measured".to_string()
            } else {
                format!("{} MiB", g.peak_rss_kb / 1024)
            },
            g.db_bytes / (1024 * 1024)
        ));
    }
    s.push_str(&footprint_markdown(r));
    if !r.notes.is_empty() {
        s.push_str("\n## Notes\n\n");
        for n in &r.notes {
            s.push_str(&format!("- {n}\n"));
        }
    }
    s.push_str("\nChart: `time-vs-size.svg` (median time of each workload against the number of leads, log–log).\n");
    std::fs::write(path, s)
}

/// Measures the bytes per line of `size`'s SQLite file against the plain schema (`suite::footprint`).
fn footprint(size: Size, report: &mut Report) -> Result<(), String> {
    let dir = data_dir(&size);
    eprintln!(
        "bench: sqlite {} footprint against the plain schema",
        size.name
    );
    let f =
        suite::footprint::measure(&dir.join("crm.sqlite"), &dir.join("plain-footprint.sqlite"))?;
    report.footprints.retain(|(s, _)| s != size.name);
    report.footprints.push((size.name.to_string(), f));
    save(report)
}

/// The footprint section of the report.
fn footprint_markdown(r: &Report) -> String {
    if r.footprints.is_empty() {
        return String::new();
    }
    let mut s = String::from(
        "\n## Footprint: bytes per document line (SQLite, pages in use)\n\n`commerce` is the engine's documents, \
         lines, allocations and the roll-ups kept from them, each with its indexes (the document JSON included); \
         `file` is every page in use (leads, partners, the activity log and all); `plain` is a fresh file holding the \
         same documents in the textbook schema of `benches/suite/footprint.rs` (ids as blobs, primary keys, the \
         unique number, a partner index and a day index).\n\n\
         | size | documents | lines | commerce per line | file per line | plain per line | commerce ÷ plain | largest tables |\n\
         |---|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for (size, f) in &r.footprints {
        let largest: Vec<String> = f
            .tables
            .iter()
            .take(6)
            .map(|(t, b)| format!("{t} {:.0} MiB", *b as f64 / 1048576.0))
            .collect();
        s.push_str(&format!(
            "| {size} | {} | {} | {:.0} B | {:.0} B | {:.0} B | {:.2} | {} |\n",
            f.documents,
            f.lines,
            f.commerce_per_line(),
            f.file_per_line(),
            f.plain_per_line(),
            f.commerce_per_line() / f.plain_per_line().max(1e-9),
            largest.join(", ")
        ));
    }
    s
}

fn write_chart(r: &Report, path: &Path) -> Result<(), String> {
    use plotters::prelude::*;
    let root = SVGBackend::new(path, (960, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let xs: Vec<u64> = r.measures.iter().map(|m| m.leads).collect();
    let (xmin, xmax) = (
        xs.iter().copied().min().unwrap_or(1) as f64,
        xs.iter().copied().max().unwrap_or(10) as f64,
    );
    let ys: Vec<f64> = r
        .measures
        .iter()
        .map(|m| m.median)
        .filter(|v| *v > 0.0)
        .collect();
    let ymin = ys.iter().copied().fold(f64::INFINITY, f64::min).min(1.0) / 2.0;
    let ymax = ys.iter().copied().fold(0.0, f64::max).max(1e-3) * 2.0;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Median time against data-set size on SQLite (solid: ours, dashed: plain SQL)",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (xmin * 0.8..xmax * 1.25).log_scale(),
            (ymin..ymax).log_scale(),
        )
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("leads in the data set")
        .y_desc("seconds")
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, w) in WORKLOADS.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        for imp in ["ours", "sql"] {
            let mut pts: Vec<(f64, f64)> = r
                .measures
                .iter()
                .filter(|m| {
                    m.backend == "sqlite" && m.workload == w.id && m.imp == imp && m.median > 0.0
                })
                .map(|m| (m.leads as f64, m.median))
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            if pts.is_empty() {
                continue;
            }
            if imp == "ours" {
                chart
                    .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
                    .map_err(|e| e.to_string())?
                    .label(w.id)
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                    });
            } else {
                chart
                    .draw_series(DashedLineSeries::new(
                        pts.clone(),
                        6,
                        4,
                        color.stroke_width(1),
                    ))
                    .map_err(|e| e.to_string())?;
            }
            chart
                .draw_series(pts.iter().map(|p| Circle::new(*p, 3, color.filled())))
                .map_err(|e| e.to_string())?;
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

fn save(r: &Report) -> Result<(), String> {
    let out = out_dir();
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    std::fs::write(
        out.join("report.json"),
        serde_json::to_string_pretty(r).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    write_markdown(r, &out.join("report.md")).map_err(|e| e.to_string())?;
    write_chart(r, &out.join("time-vs-size.svg"))
}

/// Makes sure `size` exists in the PostgreSQL schema (generating it when not) and records its generation.
fn ensure_data_pg(size: Size, report: &mut Report) -> Result<(), String> {
    let url = need_pg_url()?;
    let schema = pg_schema(&size);
    let existing = runtime().block_on(async {
        let client = suite::work::plain_pg(&url, &schema).await?;
        suite::pgsql::load_manifest(&client).await
    })?;
    let (rows, seconds, peak) = match existing {
        Some(m) => {
            eprintln!("bench: reusing PostgreSQL schema {schema}");
            (m.rows, m.seconds, 0)
        }
        None => {
            eprintln!(
                "bench: generating {} ({} leads) into PostgreSQL schema {schema}",
                size.name, size.leads
            );
            let out = spawn(&["--gen", size.name, "postgres"])?;
            (out.rows, out.secs[0], out.peak_rss_kb)
        }
    };
    let db_bytes = runtime()
        .block_on(async {
            let client = suite::work::plain_pg(&url, &schema).await?;
            let r = client
                .query_one(
                    "SELECT COALESCE(SUM(pg_total_relation_size(format('%I.%I', schemaname, tablename))), 0)::bigint \
                     FROM pg_tables WHERE schemaname = $1",
                    &[&schema],
                )
                .await
                .map_err(|e| e.to_string())?;
            Ok::<i64, String>(r.get(0))
        })? as u64;
    record_generation(
        report,
        Backend::Postgres,
        size,
        (rows, seconds, peak),
        db_bytes,
    );
    Ok(())
}

/// The schema objects (tables, indexes) of a SQLite database: (name, SQL).
fn sqlite_schema(db: &Path) -> Result<Vec<(String, String)>, String> {
    let conn = suite::work::plain_connection(db).map_err(|e| e.to_string())?;
    let mut stmt = conn
        .prepare(
            "SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )
        .map_err(|e| e.to_string())?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(|e| e.to_string())?;
    rows.collect::<rusqlite::Result<_>>()
        .map_err(|e| e.to_string())
}

/// Why a cached data set cannot be reused, if it cannot: its schema, once the store has applied the migrations,
/// must be the schema the current migrations give a new database (an index changed since it was generated would
/// otherwise be measured in its old form).
fn stale_schema(db: &Path) -> Result<Option<String>, String> {
    drop(crm_storage_sqlite::SqliteStore::open_file(db).map_err(|e| e.to_string())?);
    let fresh_dir = out_dir().join("data").join("schema-probe");
    let _ = std::fs::remove_dir_all(&fresh_dir);
    std::fs::create_dir_all(&fresh_dir).map_err(|e| e.to_string())?;
    let fresh = fresh_dir.join("fresh.sqlite");
    drop(crm_storage_sqlite::SqliteStore::open_file(&fresh).map_err(|e| e.to_string())?);
    let (want, have) = (sqlite_schema(&fresh)?, sqlite_schema(db)?);
    let _ = std::fs::remove_dir_all(&fresh_dir);
    Ok(want
        .iter()
        .find(|w| !have.contains(w))
        .map(|(name, sql)| format!("`{name}` is not `{sql}`")))
}

fn ensure_data(size: Size, report: &mut Report) -> Result<(), String> {
    let dir = data_dir(&size);
    let manifest_path = dir.join("manifest.json");
    let db = dir.join("crm.sqlite");
    let stale = if db.exists() {
        stale_schema(&db)?
    } else {
        None
    };
    if let Some(why) = &stale {
        eprintln!(
            "bench: {} was generated with an older schema ({why}): generating it again",
            dir.display()
        );
    }
    let (rows, seconds, peak) = match Manifest::load(&manifest_path) {
        Ok(m) if db.exists() && stale.is_none() => {
            eprintln!("bench: reusing {}", dir.display());
            (m.rows, m.seconds, 0)
        }
        _ => {
            eprintln!(
                "bench: generating {} ({} leads) into {}",
                size.name,
                size.leads,
                dir.display()
            );
            let out = spawn(&["--gen", size.name])?;
            (out.rows, out.secs[0], out.peak_rss_kb)
        }
    };
    let db_bytes = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
    record_generation(
        report,
        Backend::Sqlite,
        size,
        (rows, seconds, peak),
        db_bytes,
    );
    Ok(())
}

/// Records (replacing) how `size` was generated on `backend`: (writes, seconds, peak RSS in KiB; 0 when reused,
/// which keeps the figure recorded at generation).
fn record_generation(
    report: &mut Report,
    backend: Backend,
    size: Size,
    (rows, seconds, peak): (u64, f64, u64),
    db_bytes: u64,
) {
    let b = backend.name();
    // A reused data set keeps the peak measured when it was generated.
    let peak = match peak {
        0 => report
            .generated
            .iter()
            .find(|g| g.size == size.name && g.backend == b && g.rows == rows)
            .map_or(0, |g| g.peak_rss_kb),
        p => p,
    };
    report
        .generated
        .retain(|g| !(g.size == size.name && g.backend == b));
    report.generated.push(Generated {
        backend: b.into(),
        size: size.name.into(),
        leads: size.leads,
        rows,
        seconds,
        rows_per_s: rows as f64 / seconds.max(1e-9),
        peak_rss_kb: peak,
        db_bytes,
    });
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let result = match args.first().map(String::as_str) {
        Some("--gen") => {
            let backend = Backend::parse(args.get(2).map_or("sqlite", String::as_str));
            match (args.get(1).and_then(|s| gen::size(s)), backend) {
                (Some(size), Some(Backend::Sqlite)) => child_gen(size),
                (Some(size), Some(Backend::Postgres)) => child_gen_pg(size),
                _ => Err("usage: --gen SIZE [sqlite|postgres]".to_string()),
            }
        }
        Some("--floor") => match args.get(1).and_then(|s| gen::size(s)) {
            Some(size) => {
                let mut report = Report::default();
                floor(size, &mut report).map(|()| {
                    for n in &report.notes {
                        println!("{n}");
                    }
                })
            }
            None => Err("usage: --floor SIZE (its SQLite data generated)".into()),
        },
        Some("--child") => {
            let parsed = (|| {
                let size = gen::size(args.get(1)?)?;
                let imp = Impl::parse(args.get(3)?)?;
                let reps = args.get(4)?.parse().ok()?;
                let backend = Backend::parse(args.get(5).map_or("sqlite", String::as_str))?;
                Some((size, args.get(2)?.clone(), imp, reps, backend))
            })();
            match parsed {
                Some((size, w, imp, reps, backend)) => child_run(size, &w, imp, reps, backend),
                None => Err("usage: --child SIZE WORKLOAD ours|sql REPS [sqlite|postgres]".into()),
            }
        }
        _ => run_all(),
    };
    if let Err(e) = result {
        eprintln!("bench: {e}");
        std::process::exit(1);
    }
}

/// Records SQLite's `EXPLAIN QUERY PLAN` of the engine's profitability statement and of the plain-SQL baseline's,
/// for each grouping and period the suite measures, and of both sides' segment statements, so a ratio can be read against what each side scans: as
/// measured (the generated file has no statistics), and after `ANALYZE` when that changes a plan (run in a
/// transaction that is rolled back, so the file stays as measured).
fn plans(size: Size, report: &mut Report) -> Result<(), String> {
    use crm_core::commerce::{GroupBy, Period, SumsQuery};
    let dir = data_dir(&size);
    let manifest = Manifest::load(&dir.join("manifest.json"))?;
    let conn = suite::work::plain_connection(&dir.join("crm.sqlite")).map_err(|e| e.to_string())?;
    let plan = |sql: &str| -> Result<String, String> {
        let mut stmt = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .map_err(|e| e.to_string())?;
        // Unbound parameters read as NULL: the plan does not depend on their values without statistics.
        let nulls = vec![rusqlite::types::Null; stmt.parameter_count()];
        let rows = stmt
            .query_map(rusqlite::params_from_iter(nulls), |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .map_err(|e| e.to_string())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        // Each step under its parent, indented by depth.
        let mut depth = std::collections::HashMap::new();
        let mut out = Vec::new();
        for (id, parent, detail) in rows {
            let d = depth.get(&parent).map_or(0, |d| d + 1);
            depth.insert(id, d);
            out.push(format!("{}{detail}", "  ".repeat(d)));
        }
        Ok(out.join("\n"))
    };
    let y = manifest.commerce.year;
    let day = |m, d| chrono::NaiveDate::from_ymd_opt(y, m, d).ok_or("no such day");
    let periods = [
        ("one year", Period::year(y).map_err(|e| e.to_string())?),
        (
            "15 February to 14 November",
            Period::new(day(2, 15)?, day(11, 14)?).map_err(|e| e.to_string())?,
        ),
    ];
    let prefix = format!("{}: plan of", size.name);
    report.notes.retain(|n| !n.starts_with(&prefix));
    let eur = crm_core::money::Currency::parse("EUR").map_err(|e| e.to_string())?;
    let mut statements = Vec::new();
    for by in [GroupBy::Customer, GroupBy::Group] {
        for (label, period) in periods {
            let q = SumsQuery::by(by, period, eur);
            // The statements SQLite runs: a month or an edge each, in key order, merged as they are stepped.
            let ours: Vec<String> = crm_storage_sql::commerce::profit_arms(manifest.tenant, &q)
                .into_iter()
                .map(|s| s.text)
                .collect();
            let base = suite::work::profit_sql(by)?.sqlite.to_string();
            statements.push((
                format!("profitability by {}, {label}", by.as_str()),
                ours,
                base,
            ));
        }
    }
    // The segment (a missed goal): the engine's one statement and the hand-written one.
    if let Some(as_of) = manifest.commerce.as_of {
        let criteria = suite::work::segment_criteria(&manifest)?;
        let ours = crm_storage_sql::segment::segment_sql(
            crm_storage_sql::Dialect::Sqlite,
            manifest.tenant,
            &criteria,
            as_of,
            eur,
        )
        .map_err(|e| e.to_string())?
        .text;
        let base = suite::work::SEGMENT_SQL.replace('$', "?");
        statements.push(("the segment".to_string(), vec![ours], base));
    }
    let plans_of = |sqls: &Vec<String>| -> Result<String, String> {
        let mut out = Vec::new();
        for (i, sql) in sqls.iter().enumerate() {
            out.push(format!(
                "statement {} of {}:\n{}",
                i + 1,
                sqls.len(),
                plan(sql)?
            ));
        }
        Ok(out.join("\n"))
    };
    let mut plans = Vec::new();
    for (_, ours, base) in &statements {
        plans.push((plans_of(ours)?, plan(base)?));
    }
    conn.execute_batch("BEGIN; ANALYZE")
        .map_err(|e| e.to_string())?;
    let mut analyzed = Vec::new();
    for (_, ours, base) in &statements {
        analyzed.push((plans_of(ours)?, plan(base)?));
    }
    conn.execute_batch("ROLLBACK").map_err(|e| e.to_string())?;
    for (((what, _, _), (ours, base)), (ours_a, base_a)) in
        statements.iter().zip(plans).zip(analyzed)
    {
        let mut note =
            format!("{prefix} {what}: ours\n\n```\n{ours}\n```\n\n  plain SQL\n\n```\n{base}\n```");
        if (&ours_a, &base_a) != (&ours, &base) {
            note.push_str(&format!(
                "\n\n  after ANALYZE: ours\n\n```\n{ours_a}\n```\n\n  plain SQL\n\n```\n{base_a}\n```"
            ));
        } else {
            note.push_str("\n\n  (ANALYZE changes neither plan.)");
        }
        report.notes.push(note);
    }
    Ok(())
}

/// Measures the segment's floor on SQLite ([`suite::floor`]: the fastest plan found over the roll-ups, written by
/// hand for the example segment) on the data of `size`, and notes it beside the engine's and DuckDB's times.
fn floor(size: Size, report: &mut Report) -> Result<(), String> {
    let dir = data_dir(&size);
    let manifest = Manifest::load(&dir.join("manifest.json"))?;
    if manifest.commerce.as_of.is_none() {
        return Ok(());
    }
    let f = suite::floor::probe(&dir.join("crm.sqlite"), &manifest, 5)?;
    let (seq, par) = f.medians();
    let prefix = format!("{}: the segment's floor", size.name);
    report.notes.retain(|n| !n.starts_with(&prefix));
    report.notes.push(format!(
        "{prefix} (`suite::floor`: the example segment's three partner sets read from the roll-ups by keyed \
         ranges, {} above the volume, {} who bought the category, {} who bought in the last 90 days, combined in \
         Rust hash tables, then the {} members' names sought in id order; the same members as the baseline): \
         median of {} rounds {:.1} ms on one connection, {:.1} ms with the three sets read on three connections \
         at once",
        f.sets.0,
        f.sets.1,
        f.sets.2,
        f.members,
        f.rounds.len(),
        seq * 1e3,
        par * 1e3
    ));
    Ok(())
}

/// Runs `benches/duckdb_baseline.py` (segmentation and profitability in DuckDB on the same data) when python3 can
/// import duckdb; otherwise notes that it could not.
fn duckdb(size: Size, reps: usize, report: &mut Report) -> Result<(), String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/duckdb_baseline.py");
    let ok = Command::new("python3")
        .args(["-c", "import duckdb"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        let note =
            "DuckDB baseline skipped: `python3 -c 'import duckdb'` failed (pip install duckdb)"
                .to_string();
        if !report.notes.contains(&note) {
            report.notes.push(note);
        }
        return Ok(());
    }
    let dir = data_dir(&size);
    eprintln!("bench: {} duckdb ×{reps}", size.name);
    let out = Command::new("python3")
        .arg(&script)
        .arg(dir.join("crm.sqlite"))
        .arg(dir.join("manifest.json"))
        .arg(reps.to_string())
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "duckdb baseline failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("duckdb baseline: {e}"))?;
    let load = v["load_secs"].as_f64().unwrap_or(f64::NAN);
    let peak = v["peak_rss_kb"].as_u64().unwrap_or(0);
    let fetched = if v["columnar_fetch"].as_bool() == Some(true) {
        "column-wise (NumPy)"
    } else {
        "as Python tuples (`fetchall`: NumPy is not installed)"
    };
    let prefix = format!("{}: DuckDB", size.name);
    report.notes.retain(|n| !n.starts_with(&prefix));
    report.notes.push(format!(
        "{}: DuckDB {} (in-memory, all cores) loaded the tenant's partners, documents and lines from CSV exported out of \
         the SQLite file in {} (not counted in its times); its peak RSS includes that load. Its rows were fetched \
         {fetched} inside its timer.",
        size.name,
        duckdb_version(),
        fmt_secs(load)
    ));
    // All cores (`duckdb`) and one thread (`duckdb-1t`).
    for (key, imp) in [("workloads", "duckdb"), ("workloads_1t", "duckdb-1t")] {
        let Some(ws) = v[key].as_object() else {
            continue;
        };
        for (w, r) in ws {
            let secs: Vec<f64> = r["secs"]
                .as_array()
                .map(|a| a.iter().filter_map(|x| x.as_f64()).collect())
                .unwrap_or_default();
            let rows = r["rows"].as_u64().unwrap_or(0);
            let digest = r["digest"].as_str().unwrap_or("").to_string();
            let med = median(&secs);
            if let Some(ours) = report.measures.iter().find(|m| {
                m.backend == "sqlite" && m.size == size.name && m.workload == *w && m.imp == "ours"
            }) {
                if ours.digest != digest {
                    report.mismatches.push(format!(
                        "{} {w}: ours `{}` ≠ {imp} `{digest}`",
                        size.name, ours.digest
                    ));
                }
            }
            replace(
                report,
                Measure {
                    backend: "sqlite".into(),
                    size: size.name.into(),
                    leads: size.leads,
                    workload: w.clone(),
                    imp: imp.into(),
                    median: med,
                    pair_ratios: Vec::new(),
                    rows_per_s: rows as f64 / med.max(1e-12),
                    secs,
                    rows,
                    peak_rss_kb: peak,
                    digest,
                },
            );
        }
    }
    Ok(())
}

fn duckdb_version() -> String {
    Command::new("python3")
        .args(["-c", "import duckdb; print(duckdb.__version__)"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// Adds a measure, replacing an earlier one of the same backend, size, workload and implementation (and its
/// mismatch).
fn replace(report: &mut Report, m: Measure) {
    report.measures.retain(|o| {
        !(o.backend == m.backend && o.size == m.size && o.workload == m.workload && o.imp == m.imp)
    });
    let prefix = mismatch_prefix(&m.backend, &m.size, &m.workload);
    report.mismatches.retain(|x| !x.starts_with(&prefix));
    report.measures.push(m);
}

/// How a mismatch of (backend, size, workload) starts (SQLite's carry no backend, as before PostgreSQL runs).
fn mismatch_prefix(backend: &str, size: &str, workload: &str) -> String {
    if backend == "sqlite" {
        format!("{size} {workload}:")
    } else {
        format!("{backend} {size} {workload}:")
    }
}

/// Runs every workload of `size` on `backend` (ours and the plain-SQL baseline), then DuckDB (SQLite runs only).
fn run_size(
    size: Size,
    backend: Backend,
    reps: usize,
    only: Option<&str>,
    report: &mut Report,
) -> Result<(), String> {
    match backend {
        Backend::Sqlite => ensure_data(size, report)?,
        Backend::Postgres => ensure_data_pg(size, report)?,
    }
    let selected = |id: &str| only.is_none_or(|o| o.split(',').any(|x| x == id));
    if backend == Backend::Sqlite && size.lines > 0 && selected("footprint") {
        footprint(size, report)?;
    }
    let bname = backend.name();
    for w in WORKLOADS {
        if only.is_some_and(|o| !o.split(',').any(|x| x == w.id)) {
            continue;
        }
        if size.lines == 0 && COMMERCE.contains(&w.id) {
            continue;
        }
        // Rule evaluation touches no storage: it runs once, with the SQLite runs.
        if backend == Backend::Postgres && w.id == "rules_eval" {
            continue;
        }
        // Rounds of one timed run each side, in alternating order (ours first in even rounds), each run in a
        // child process of its own after an untimed warm-up: neither side always gets the caches the other warmed.
        let sides = [Impl::Ours, Impl::Sql];
        let mut secs: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
        let mut outs: [Option<ChildOut>; 2] = [None, None];
        let mut pairs = Vec::new();
        let mut changed = Vec::new();
        for round in 0..reps {
            let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            let mut this = [f64::NAN; 2];
            for k in order {
                eprintln!(
                    "bench: {bname} {} {} {} round {}/{reps}",
                    size.name,
                    w.id,
                    sides[k].name(),
                    round + 1
                );
                let out = spawn(&["--child", size.name, w.id, sides[k].name(), "1", bname])?;
                this[k] = out.secs.iter().sum();
                secs[k].extend(out.secs.iter().copied());
                if let Some(prev) = &outs[k] {
                    if prev.digest != out.digest {
                        changed.push(format!(
                            "{} round {} gave `{}`, before `{}`",
                            sides[k].name(),
                            round + 1,
                            out.digest,
                            prev.digest
                        ));
                    }
                }
                let rss = outs[k]
                    .as_ref()
                    .map_or(0, |o| o.peak_rss_kb)
                    .max(out.peak_rss_kb);
                outs[k] = Some(ChildOut {
                    peak_rss_kb: rss,
                    ..out
                });
            }
            pairs.push(this[0] / this[1]);
            if secs
                .iter()
                .any(|s| s.iter().sum::<f64>() > suite::work::budget_secs())
            {
                break;
            }
        }
        let mut digests = Vec::new();
        for (k, imp) in sides.iter().enumerate() {
            let out = outs[k].take().ok_or("no run")?;
            let med = median(&secs[k]);
            digests.push(out.digest.clone());
            replace(
                report,
                Measure {
                    backend: bname.into(),
                    size: size.name.into(),
                    leads: size.leads,
                    workload: w.id.into(),
                    imp: imp.name().into(),
                    median: med,
                    pair_ratios: if k == 0 { pairs.clone() } else { Vec::new() },
                    rows_per_s: out.rows as f64 / med.max(1e-12),
                    secs: std::mem::take(&mut secs[k]),
                    rows: out.rows,
                    peak_rss_kb: out.peak_rss_kb,
                    digest: out.digest,
                },
            );
        }
        let prefix = mismatch_prefix(bname, size.name, w.id);
        for c in changed {
            report.mismatches.push(format!("{prefix} {c}"));
        }
        if digests[0] != digests[1] {
            report.mismatches.push(format!(
                "{prefix} ours `{}` ≠ sql `{}`",
                digests[0], digests[1]
            ));
        }
        // The same seed gives the same data on both backends, so the engine must give the same result on both.
        if backend == Backend::Postgres {
            if let Some(lite) = report.measures.iter().find(|m| {
                m.backend == "sqlite"
                    && m.size == size.name
                    && m.workload == w.id
                    && m.imp == "ours"
            }) {
                if lite.digest != digests[0] {
                    let msg = format!(
                        "{prefix} PostgreSQL `{}` ≠ SQLite `{}`",
                        digests[0], lite.digest
                    );
                    report.mismatches.push(msg);
                }
            }
        }
        save(report)?;
    }
    let wanted = only.is_none_or(|o| {
        o.contains("duckdb")
            || o.contains("segment")
            || o.contains("profit")
            || o.contains("campaign")
    });
    if backend == Backend::Sqlite && size.lines > 0 && wanted {
        plans(size, report)?;
        floor(size, report)?;
        duckdb(size, reps, report)?;
    }
    save(report)
}

/// The workloads that need the commerce data (skipped for sizes without invoice lines).
const COMMERCE: [&str; 7] = [
    "segment",
    "profit_customer",
    "profit_group",
    "profit_customer_mid",
    "profit_group_mid",
    "campaign_roi",
    "attribution",
];

fn run_all() -> Result<(), String> {
    let sizes: Vec<Size> = env_or("CRM_BENCH_SIZE", "S")
        .split(',')
        .map(|s| gen::size(s).ok_or_else(|| format!("unknown size `{s}` (XS, S, MID, M, ML)")))
        .collect::<Result<_, _>>()?;
    let reps: usize = env_or("CRM_BENCH_REPS", "5")
        .parse()
        .map_err(|_| "CRM_BENCH_REPS: not a number")?;
    let only = std::env::var("CRM_BENCH_WORKLOADS")
        .ok()
        .filter(|s| !s.is_empty());
    let mut report = Report {
        seed: seed(),
        reps,
        machine: machine(),
        ..Default::default()
    };
    // report.json accumulates: a figure is replaced when it is measured again, the others are kept (so sizes and
    // workloads can be run one at a time).
    if let Ok(text) = std::fs::read_to_string(out_dir().join("report.json")) {
        if let Ok(old) = serde_json::from_str::<Report>(&text) {
            report.measures = old.measures;
            report.generated = old.generated;
            report.footprints = old.footprints;
            report.mismatches = old.mismatches;
            report.notes = old
                .notes
                .into_iter()
                .filter(|n| !n.starts_with("Load average"))
                .collect();
        }
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    report.notes.push(format!(
        "Load average when the run started: {} (other processes on the machine distort absolute times; ratios \
         measured in the same run hold better).",
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    ));
    let mut backends = Vec::new();
    for b in env_or("CRM_BENCH_BACKENDS", "sqlite,postgres").split(',') {
        match Backend::parse(b.trim()) {
            Some(Backend::Postgres) if pg_url().is_none() => {
                let note =
                    "PostgreSQL runs skipped: no server (run under scripts/with-postgres, or set \
                            CRM_BENCH_POSTGRES_URL)"
                        .to_string();
                eprintln!("bench: {note}");
                if !report.notes.contains(&note) {
                    report.notes.push(note);
                }
            }
            Some(x) => backends.push(x),
            None => {
                return Err(format!(
                    "CRM_BENCH_BACKENDS: unknown backend `{b}` (sqlite, postgres)"
                ))
            }
        }
    }
    for size in sizes {
        for &backend in &backends {
            run_size(size, backend, reps, only.as_deref(), &mut report)?;
        }
    }
    eprintln!("bench: wrote {}", out_dir().join("report.md").display());
    if report.mismatches.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} results differ from their baselines",
            report.mismatches.len()
        ))
    }
}
