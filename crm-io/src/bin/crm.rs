//! `crm`: imports and exports a tenant's data on an SQLite file or a PostgreSQL database.
//!
//! ```text
//! crm import partners partners.csv --db crm.sqlite --tenant 0192…  [--dry-run] [--rejects rejects.csv]
//! crm export leads --db postgres://… --tenant 0192… --format json --out leads.jsonl
//! ```
//!
//! Exit status: 0 when everything was imported or exported, 3 when an import refused rows (they are in the
//! rejects file), 1 on an error, 2 on a usage error.

use clap::{Parser, Subcommand, ValueEnum};
use crm_core::actor::Context;
use crm_core::id::TenantId;
use crm_core::lead::StatusKind;
use crm_core::service::{CrmService, ImportMode};
use crm_core::store::{Backend, LeadQuery};
use crm_io::{Encoding, Export, Format, ImportOptions, Mapping, Sinks, Table};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Debug, Parser)]
#[command(
    name = "crm",
    version,
    about = "Import and export a CRM tenant's data (CSV, JSON Lines)",
    arg_required_else_help = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the data is.
#[derive(Debug, clap::Args)]
struct Target {
    /// An SQLite file (created and migrated when it does not exist, on import) or a `postgres://` URL.
    #[arg(long, env = "CRM_DB")]
    db: String,
    /// The tenant (a UUID).
    #[arg(long, env = "CRM_TENANT")]
    tenant: uuid::Uuid,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Imports a CSV file (repeatable: rows found by their `ref` are updated, or left as they are).
    Import {
        /// What the file holds.
        table: TableArg,
        /// The CSV file (`-` for standard input).
        file: PathBuf,
        #[command(flatten)]
        target: Target,
        /// A JSON object mapping fields to the file's headers: {"name": "Denumire", "ref": "Cod"}.
        #[arg(long, conflicts_with = "mapping_name")]
        mapping: Option<PathBuf>,
        /// Use the mapping the tenant saved under this name (see --save-mapping).
        #[arg(long)]
        mapping_name: Option<String>,
        /// Save the mapping given with --mapping under this name, for the tenant's next files of this layout.
        #[arg(long, requires = "mapping")]
        save_mapping: Option<String>,
        /// Check every row and report; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Where the refused rows go, with their line, column and reason (default: FILE.rejects.csv).
        #[arg(long)]
        rejects: Option<PathBuf>,
        /// Where every row's outcome goes (created, updated, unchanged, failed; duplicates in a dry run).
        #[arg(long)]
        report: Option<PathBuf>,
        /// Rows per transaction.
        #[arg(long, default_value_t = 1000)]
        batch: usize,
        /// The delimiter (found from the header line when not given).
        #[arg(long)]
        delimiter: Option<char>,
        /// auto (UTF-8, else Windows-1250), utf-8, windows-1250, or any WHATWG label.
        #[arg(long, default_value = "auto")]
        encoding: String,
    },
    /// Writes everything held about a person (a partner, or one of its contacts) as one JSON document: the answer
    /// to a data-subject access request.
    AccessRequest {
        #[command(flatten)]
        target: Target,
        /// The partner (a UUID).
        #[arg(
            long,
            conflicts_with = "contact_ref",
            required_unless_present = "contact_ref"
        )]
        partner: Option<uuid::Uuid>,
        /// A contact, by the host's reference.
        #[arg(long)]
        contact_ref: Option<String>,
        /// The output file (standard output when not given).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Exports a tenant's records.
    Export {
        /// What to export.
        what: WhatArg,
        #[command(flatten)]
        target: Target,
        /// csv or json (JSON Lines).
        #[arg(long, value_enum, default_value_t = FormatArg::Csv)]
        format: FormatArg,
        /// The output file (standard output when not given).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Leads: only this status.
        #[arg(long, value_enum)]
        status: Option<StatusArg>,
        /// Leads: only those with this tag.
        #[arg(long)]
        tag: Option<String>,
        /// Leads: only those whose title contains this.
        #[arg(long)]
        text: Option<String>,
        /// Activities: after this feed position.
        #[arg(long, default_value_t = 0)]
        after: u64,
        /// Documents: only this kind.
        #[arg(long, value_enum)]
        kind: Option<KindArg>,
        /// Documents: only this partner's (its id).
        #[arg(long)]
        partner: Option<uuid::Uuid>,
        /// Documents: issued on or after this day (YYYY-MM-DD).
        #[arg(long)]
        from: Option<chrono::NaiveDate>,
        /// Documents: issued before this day (YYYY-MM-DD).
        #[arg(long)]
        before: Option<chrono::NaiveDate>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum KindArg {
    Invoice,
    CreditNote,
    VendorBill,
    Payment,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum TableArg {
    Partners,
    Contacts,
    Leads,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum WhatArg {
    Partners,
    Contacts,
    Leads,
    Activities,
    Documents,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FormatArg {
    Csv,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum StatusArg {
    Open,
    Won,
    Lost,
    Merged,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(format!("cannot start the runtime: {e}")),
    };
    match rt.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(e) => fail(e),
    }
}

fn fail(message: String) -> ExitCode {
    eprintln!("crm: {message}");
    ExitCode::from(1)
}

/// The backend `db` names: a PostgreSQL URL, else an SQLite file (`create`: made when missing).
async fn backend(db: &str, create: bool) -> Result<Arc<dyn Backend>, String> {
    if db.starts_with("postgres://") || db.starts_with("postgresql://") {
        let config = crm_storage_postgres::PgConfig::from_url(db).with_pool_size(2);
        let store = crm_storage_postgres::PgStore::connect(config)
            .await
            .map_err(|e| format!("{db}: {e}"))?;
        return Ok(Arc::new(store));
    }
    if !create && !Path::new(db).is_file() {
        return Err(format!(
            "{db}: no such SQLite file (or give a postgres:// URL)"
        ));
    }
    let store = crm_storage_sqlite::SqliteStore::open_file(db).map_err(|e| format!("{db}: {e}"))?;
    Ok(Arc::new(store))
}

fn service(backend: Arc<dyn Backend>) -> Result<CrmService, String> {
    CrmService::builder()
        .store(backend)
        .build()
        .map_err(|e| e.to_string())
}

fn bar(quiet: bool, len: Option<u64>, style: &str) -> ProgressBar {
    let bar = match len {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::new_spinner(),
    };
    if quiet {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    if let Ok(s) = ProgressStyle::with_template(style) {
        bar.set_style(s);
    }
    bar
}

fn create(path: &Path) -> Result<BufWriter<File>, String> {
    File::create(path)
        .map(BufWriter::new)
        .map_err(|e| format!("{}: {e}", path.display()))
}

async fn run(command: Command) -> Result<ExitCode, String> {
    match command {
        Command::Import {
            table,
            file,
            target,
            mapping,
            mapping_name,
            save_mapping,
            dry_run,
            rejects,
            report,
            batch,
            delimiter,
            encoding,
        } => {
            let table = match table {
                TableArg::Partners => Table::Partners,
                TableArg::Contacts => Table::Contacts,
                TableArg::Leads => Table::Leads,
            };
            let mut options = ImportOptions::new(table);
            options.batch = batch;
            options.mode = if dry_run {
                ImportMode::DryRun
            } else {
                ImportMode::Commit
            };
            options.encoding = Encoding::parse(&encoding)
                .ok_or_else(|| format!("--encoding: unknown `{encoding}`"))?;
            if let Some(d) = delimiter {
                options.delimiter = Some(
                    u8::try_from(d).map_err(|_| format!("--delimiter: `{d}` is not one byte"))?,
                );
            }
            if let Some(m) = mapping {
                let text =
                    std::fs::read_to_string(&m).map_err(|e| format!("{}: {e}", m.display()))?;
                options.mapping = serde_json::from_str::<Mapping>(&text)
                    .map_err(|e| format!("{}: {e}", m.display()))?;
            }
            let (input, len): (Box<dyn Read>, Option<u64>) = if file.as_os_str() == "-" {
                (Box::new(std::io::stdin().lock()), None)
            } else {
                let f = File::open(&file).map_err(|e| format!("{}: {e}", file.display()))?;
                let len = f.metadata().ok().map(|m| m.len());
                (Box::new(f), len)
            };
            let rejects_path = rejects.unwrap_or_else(|| {
                let name = if file.as_os_str() == "-" {
                    "stdin".into()
                } else {
                    file.display().to_string()
                };
                PathBuf::from(format!("{name}.rejects.csv"))
            });
            let mut rejects_out = create(&rejects_path)?;
            let mut report_out = report.as_deref().map(create).transpose()?;
            let crm = service(backend(&target.db, true).await?)?;
            let ctx = Context::system(TenantId::from_uuid(target.tenant));
            if let Some(name) = &save_mapping {
                let saved = options.mapping.save(&crm, &ctx, table, name).await;
                saved.map_err(|e| format!("--save-mapping {name}: {e}"))?;
            }
            if let Some(name) = &mapping_name {
                let loaded = Mapping::load(&crm, ctx.tenant, table, name).await;
                let loaded = loaded.map_err(|e| format!("--mapping-name {name}: {e}"))?;
                options.mapping = loaded.ok_or_else(|| {
                    format!("--mapping-name {name}: the tenant saved no such mapping")
                })?;
            }
            let bar = bar(
                target.quiet,
                len,
                "{bar:40} {bytes}/{total_bytes} {per_sec} {msg}",
            );
            let sinks = Sinks {
                rejects: Some(&mut rejects_out),
                outcomes: report_out.as_mut().map(|w| w as &mut dyn Write),
            };
            let started = std::time::Instant::now();
            let done = crm_io::import_csv(&crm, &ctx, input, &options, sinks, |p| {
                bar.set_position(p.bytes);
                bar.set_message(format!("{} rows, {} refused", p.rows, p.failed));
            })
            .await
            .map_err(|e| e.to_string())?;
            bar.finish_and_clear();
            rejects_out.flush().map_err(|e| e.to_string())?;
            let t = done.totals;
            let secs = started.elapsed().as_secs_f64();
            println!(
                "{}{} rows in {secs:.1} s ({:.0} rows/s; {}, delimiter {:?}): {} created, {} updated, {} unchanged, {} refused",
                if dry_run { "dry run, nothing written: " } else { "" },
                t.rows,
                t.rows as f64 / secs.max(1e-9),
                done.encoding,
                done.delimiter,
                t.created,
                t.updated,
                t.unchanged,
                t.failed
            );
            if t.failed > 0 {
                println!("refused rows: {}", rejects_path.display());
                return Ok(ExitCode::from(3));
            }
            std::fs::remove_file(&rejects_path).ok();
            Ok(ExitCode::SUCCESS)
        }
        Command::AccessRequest {
            target,
            partner,
            contact_ref,
            out,
        } => {
            let person = match (partner, contact_ref) {
                (Some(p), _) => crm_io::Person::Partner(crm_core::id::PartnerId::from_uuid(p)),
                (None, Some(r)) => crm_io::Person::ContactRef(r),
                (None, None) => return Err("--partner or --contact-ref is required".into()),
            };
            let backend = backend(&target.db, false).await?;
            let commerce: Arc<dyn crm_core::commerce::CommerceStore> = backend.clone();
            let crm = service(backend)?;
            let mut sink: Box<dyn Write> = match &out {
                Some(p) => Box::new(create(p)?),
                None => Box::new(BufWriter::new(std::io::stdout().lock())),
            };
            let tenant = TenantId::from_uuid(target.tenant);
            let summary =
                crm_io::access_request(&crm, Some(commerce.as_ref()), tenant, &person, &mut sink)
                    .await
                    .map_err(|e| e.to_string())?;
            if let Some(p) = out {
                let counts: Vec<String> = summary
                    .sections
                    .iter()
                    .map(|(n, c)| format!("{c} {n}"))
                    .collect();
                println!("{} ({})", p.display(), counts.join(", "));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Export {
            what,
            target,
            format,
            out,
            status,
            tag,
            text,
            after,
            kind,
            partner,
            from,
            before,
        } => {
            let format = match format {
                FormatArg::Csv => Format::Csv,
                FormatArg::Json => Format::JsonLines,
            };
            let what = match what {
                WhatArg::Documents => {
                    use crm_core::commerce::DocumentKind;
                    let filter = crm_io::DocumentFilter {
                        kind: kind.map(|k| match k {
                            KindArg::Invoice => DocumentKind::Invoice,
                            KindArg::CreditNote => DocumentKind::CreditNote,
                            KindArg::VendorBill => DocumentKind::VendorBill,
                            KindArg::Payment => DocumentKind::Payment,
                        }),
                        partner: partner.map(crm_core::id::PartnerId::from_uuid),
                        from,
                        before,
                    };
                    let b: Arc<dyn crm_core::commerce::CommerceStore> =
                        backend(&target.db, false).await?;
                    let mut sink: Box<dyn Write> = match &out {
                        Some(p) => Box::new(create(p)?),
                        None => Box::new(BufWriter::new(std::io::stdout().lock())),
                    };
                    let tenant = TenantId::from_uuid(target.tenant);
                    let n =
                        crm_io::export_documents(&b, tenant, &filter, format, &mut sink, |_| {})
                            .await
                            .map_err(|e| e.to_string())?;
                    if let Some(p) = out {
                        println!("{n} records to {}", p.display());
                    }
                    return Ok(ExitCode::SUCCESS);
                }
                WhatArg::Partners => Export::Partners,
                WhatArg::Contacts => Export::Contacts,
                WhatArg::Activities => Export::Activities { after },
                WhatArg::Leads => Export::Leads(LeadQuery {
                    status: status.map(|s| match s {
                        StatusArg::Open => StatusKind::Open,
                        StatusArg::Won => StatusKind::Won,
                        StatusArg::Lost => StatusKind::Lost,
                        StatusArg::Merged => StatusKind::Merged,
                    }),
                    tag,
                    text,
                    ..LeadQuery::default()
                }),
            };
            let crm = service(backend(&target.db, false).await?)?;
            let mut sink: Box<dyn Write> = match &out {
                Some(p) => Box::new(create(p)?),
                None => Box::new(BufWriter::new(std::io::stdout().lock())),
            };
            let bar = bar(
                target.quiet || out.is_none(),
                None,
                "{spinner} {pos} records {per_sec}",
            );
            let tenant = TenantId::from_uuid(target.tenant);
            let n = crm_io::export(&crm, tenant, &what, format, &mut sink, |n| {
                bar.set_position(n)
            })
            .await
            .map_err(|e| e.to_string())?;
            bar.finish_and_clear();
            if let Some(p) = out {
                println!("{n} records to {}", p.display());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
