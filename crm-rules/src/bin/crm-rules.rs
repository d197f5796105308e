//! `crm-rules`: check, test, explain and draw a communication schema.
//!
//! ```text
//! crm-rules check   DIR                      compile the rules (errors as file:line:column)
//! crm-rules test    DIR [FIXTURES...]        run the fixtures (default DIR/fixtures) and show differences
//! crm-rules explain DIR CASE                 for one fixture case (its name, or a file holding it): which rules
//!                                            ran, matched, decided and why
//! crm-rules graph   DIR [--mermaid]          the schema as Graphviz DOT (default) or Mermaid
//! crm-rules replay  DIR --db DB --tenant ID --since DATE
//!                                            what the scheme would have sent to whom for the events stored since
//!                                            DATE (DB: an SQLite file or a postgres:// URL), changing nothing
//! crm-rules completions SHELL                a completion script for bash, zsh, fish, elvish or powershell
//! ```
//!
//! Arguments are parsed with clap: `crm-rules --help` and `crm-rules <command> --help` describe each one.
//!
//! DIR holds the `*.rhai` rules, `org.toml` (roles, people, reporting lines), `fixtures/` and `templates/`.

use clap::{CommandFactory, Parser, Subcommand};
use crm_core::comms::{Action, Recipient};
use crm_rules::fixtures::{self, Case, Org};
use crm_rules::graph;
use crm_rules::notify::Templates;
use crm_rules::{Limits, RhaiRuleEngine, RuleSet, RulesError};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Check, test, explain and draw a communication scheme.
///
/// DIR holds the `*.rhai` rules, `org.toml` (roles, people, reporting lines), `fixtures/` and `templates/`.
#[derive(Debug, Parser)]
#[command(name = "crm-rules", version, arg_required_else_help = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Compile the rules and check every name they use (fields, events, roles, people, templates, fixtures);
    /// errors as file:line:column.
    Check {
        /// The scheme's directory.
        dir: PathBuf,
    },
    /// Run the fixtures and show, per rule, how the actions differ from the expected ones.
    Test {
        /// The scheme's directory.
        dir: PathBuf,
        /// Fixture files or directories to run [default: DIR/fixtures/]
        #[arg(value_name = "FIXTURES")]
        fixtures: Vec<PathBuf>,
    },
    /// For one fixture case: what the rules saw, which ran, what they decided, for whom and why.
    Explain {
        /// The scheme's directory.
        dir: PathBuf,
        /// A case's name, or a fixture file whose first case is explained.
        case: String,
    },
    /// Draw the scheme for a manager: when, if what, who is told what, and what is refused (Graphviz DOT by
    /// default).
    Graph {
        /// The scheme's directory.
        dir: PathBuf,
        /// Mermaid instead of DOT.
        #[arg(long, group = "format")]
        mermaid: bool,
        /// The per-person table "who gets what, when" (Markdown) instead of the diagram.
        #[arg(long, group = "format")]
        table: bool,
        /// SVG, drawn by Graphviz's `dot -Tsvg` (which must be installed).
        #[arg(long, group = "format")]
        svg: bool,
    },
    /// A dry run on real data: what the scheme would have decided, and for whom, for every event a tenant stored
    /// since DATE. The database is opened read only (an SQLite file is not migrated or written; PostgreSQL sessions
    /// are read-only): nothing is changed, queued or sent. Records are shown to the rules as they are now.
    #[cfg(feature = "replay")]
    Replay {
        /// The scheme's directory.
        dir: PathBuf,
        /// The database: an SQLite file, or a `postgres://` (`postgresql://`) URL.
        #[arg(long)]
        db: String,
        /// The tenant whose events are replayed (its id).
        #[arg(long)]
        tenant: crm_core::id::TenantId,
        /// The first day (`2026-03-01`, from midnight UTC) or instant (`2026-03-01T09:00:00Z`) replayed.
        #[arg(long, value_parser = parse_since)]
        since: crm_core::time::Timestamp,
        /// The PostgreSQL schema holding the engine's tables.
        #[arg(long, default_value = "crm")]
        schema: String,
    },
    /// Print a completion script for your shell (e.g. `crm-rules completions bash > /etc/bash_completion.d/crm-rules`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check { dir } => check(&dir),
        Command::Test { dir, fixtures } => {
            let given: Vec<String> = fixtures.iter().map(|p| p.display().to_string()).collect();
            test(&dir, &given)
        }
        Command::Explain { dir, case } => explain(&dir, &case),
        Command::Graph {
            dir,
            mermaid,
            table,
            svg,
        } => graph(&dir, mermaid, table, svg),
        #[cfg(feature = "replay")]
        Command::Replay {
            dir,
            db,
            tenant,
            since,
            schema,
        } => replay(&dir, &db, tenant, since, &schema),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "crm-rules",
                &mut std::io::stdout(),
            );
            Ok(true)
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}

/// What `load` reads from `path` when `present` says it is there; `None` when it is not.
fn load_if<T, E: std::fmt::Display>(
    path: &Path,
    present: fn(&Path) -> bool,
    load: impl FnOnce(&Path) -> Result<T, E>,
) -> Result<Option<T>, String> {
    if present(path) {
        load(path).map(Some).map_err(|e| e.to_string())
    } else {
        Ok(None)
    }
}

fn org_of(dir: &Path) -> Result<Option<Org>, String> {
    load_if(&dir.join("org.toml"), Path::exists, Org::load)
}

fn engine_of(dir: &Path, org: Option<&Org>) -> Result<RhaiRuleEngine, RulesError> {
    RhaiRuleEngine::for_org(RuleSet::load_dir(dir, Limits::default())?, org)
}

fn templates_of(dir: &Path) -> Result<Option<Templates>, String> {
    load_if(&dir.join("templates"), Path::is_dir, Templates::load_dir)
}

fn check(dir: &Path) -> Result<bool, String> {
    let org = org_of(dir)?;
    let templates = templates_of(dir)?;
    let loaded = engine_of(dir, org.as_ref()).and_then(|engine| {
        let names = templates
            .as_ref()
            .map(|t| t.names().to_vec())
            .unwrap_or_default();
        engine.rules().check_templates(&names)?;
        Ok(engine)
    });
    let mut problems: Vec<String> = Vec::new();
    if let Err(e) = &loaded {
        problems.push(e.to_string());
    }
    // The fixtures must name real events, timers, keys, people and rules, or they would test nothing.
    if dir.join("fixtures").is_dir() {
        let rules: Option<Vec<String>> = loaded.as_ref().ok().map(|e| {
            e.rules()
                .rules()
                .iter()
                .map(|r| r.name().to_string())
                .collect()
        });
        for f in fixture_files(dir, &[])? {
            match fixtures::load_fixtures(&f) {
                Ok(file) => problems.extend(
                    fixtures::check_fixtures(&f, &file, org.as_ref(), rules.as_deref())
                        .into_iter()
                        .map(|e| e.to_string()),
                ),
                Err(e) => problems.push(e.to_string()),
            }
        }
    }
    let engine = match loaded {
        Ok(engine) if problems.is_empty() => engine,
        _ => {
            for p in &problems {
                eprintln!("{p}");
            }
            return Ok(false);
        }
    };
    let set = engine.rules();
    if let Some(org) = &org {
        for w in handover_warnings(&set, org) {
            println!("warning: {w}");
        }
    }
    for r in set.rules() {
        let triggers: Vec<_> = r.triggers().into_iter().collect();
        println!(
            "ok  {:<20} {}  reacts to: {}",
            r.name(),
            r.file(),
            triggers.join(", ")
        );
    }
    let timers: Vec<_> = set.timers().iter().map(|t| t.to_string()).collect();
    if !timers.is_empty() {
        println!("timers: {}", timers.join(", "));
    }
    if let Some(t) = &templates {
        println!("templates: {}", t.names().join(", "));
    }
    println!("{} rules compile", set.rules().len());
    Ok(true)
}

/// `reassign()` to a role with several people: each would take the lead in turn, and the last one keeps it.
fn handover_warnings(set: &RuleSet, org: &Org) -> Vec<String> {
    let mut out = Vec::new();
    for r in set.rules() {
        for c in r.calls().iter().filter(|c| c.function == "reassign") {
            let Some(Ok(to)) = c
                .args
                .first()
                .and_then(|a| a.literal())
                .map(Recipient::parse)
            else {
                continue;
            };
            let roles = match &to {
                Recipient::Role(role) => vec![role.clone()],
                Recipient::FirstOf(all) => all
                    .iter()
                    .filter_map(|a| match a {
                        Recipient::Role(role) => Some(role.clone()),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            };
            for role in roles {
                let people = org.members(&role);
                if people.len() > 1 {
                    out.push(format!(
                        "{}:{}:{}: `reassign(\"{to}\")` hands the lead to role `{role}`, which has {} people ({}): \
                         each would take it in turn and the last one keeps it; name one person (`user:{}`), \
                         `owner` or `manager:owner`",
                        r.file(),
                        c.first_arg.0,
                        c.first_arg.1,
                        people.len(),
                        people.join(", "),
                        people[0]
                    ));
                }
            }
        }
    }
    out
}

fn fixture_files(dir: &Path, given: &[String]) -> Result<Vec<PathBuf>, String> {
    let roots: Vec<PathBuf> = if given.is_empty() {
        vec![dir.join("fixtures")]
    } else {
        given.iter().map(PathBuf::from).collect()
    };
    let mut out = Vec::new();
    for r in roots {
        if r.is_dir() {
            let mut files: Vec<_> = std::fs::read_dir(&r)
                .map_err(|e| format!("{}: {e}", r.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    matches!(
                        p.extension().and_then(|x| x.to_str()),
                        Some("toml" | "json")
                    )
                })
                .collect();
            files.sort();
            out.extend(files);
        } else {
            out.push(r);
        }
    }
    Ok(out)
}

/// The cases of the fixture files, checked (unknown keys, events, people, rules): every problem of every file is
/// reported, and none of the cases runs while there is one.
fn all_cases(
    dir: &Path,
    given: &[String],
    org: &Org,
    engine: &RhaiRuleEngine,
) -> Result<Vec<(PathBuf, Case)>, String> {
    let rules: Vec<String> = engine
        .rules()
        .rules()
        .iter()
        .map(|r| r.name().to_string())
        .collect();
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for f in fixture_files(dir, given)? {
        match fixtures::load_fixtures(&f) {
            Ok(file) => {
                problems.extend(
                    fixtures::check_fixtures(&f, &file, Some(org), Some(&rules))
                        .into_iter()
                        .map(|e| e.to_string()),
                );
                out.extend(file.cases.into_iter().map(|c| (f.clone(), c)));
            }
            Err(e) => problems.push(e.to_string()),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems.join("\n"))
    }
}

fn test(dir: &Path, given: &[String]) -> Result<bool, String> {
    let org = org_of(dir)?.ok_or_else(|| format!("{}: no org.toml", dir.display()))?;
    let engine = match engine_of(dir, Some(&org)) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("{e}");
            return Ok(false);
        }
    };
    let templates = templates_of(dir)?;
    let (mut passed, mut failed) = (0, 0);
    for (file, case) in all_cases(dir, given, &org, &engine)? {
        let mut r = fixtures::run_case(&engine, &org, &case);
        // E-mails must render: an unknown variable in a template fails the case that sends it.
        if let (Some(t), Ok((trigger, views))) = (&templates, fixtures::build_case(&case)) {
            let d = crm_core::comms::RuleEngine::evaluate(&engine, &trigger, &views);
            for (i, a) in d.actions.iter().enumerate() {
                if let Action::SendEmail { template, vars, .. } = &a.action {
                    let mut all = serde_json::json!({
                        "lead": views.lead, "partner": views.partner, "request": views.request,
                        "document": views.document, "campaign": views.campaign,
                    });
                    if let (Some(o), Some(v)) = (all.as_object_mut(), vars.as_object()) {
                        o.extend(v.clone());
                    }
                    if let Err(e) = t.render(template, &all) {
                        r.passed = false;
                        r.diff.push(format!("! action {i}: {e}"));
                    }
                }
            }
        }
        if r.passed {
            passed += 1;
            println!("ok    {}: {}", file.display(), r.name);
        } else {
            failed += 1;
            println!("FAIL  {}: {}", file.display(), r.name);
            for line in &r.diff {
                println!("      {line}");
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    Ok(failed == 0)
}

fn explain(dir: &Path, name: &str) -> Result<bool, String> {
    let org = org_of(dir)?.ok_or_else(|| format!("{}: no org.toml", dir.display()))?;
    let engine = engine_of(dir, Some(&org)).map_err(|e| e.to_string())?;
    // CASE is a fixture case's name, or a fixture file whose first case is explained.
    let given = Path::new(name);
    let cases = if given.is_file() {
        let file = fixtures::load_fixtures(given).map_err(|e| e.to_string())?;
        let first = file
            .cases
            .into_iter()
            .next()
            .ok_or_else(|| format!("{name}: no case"))?;
        vec![(given.to_path_buf(), first)]
    } else {
        all_cases(dir, &[], &org, &engine)?
    };
    let found = cases
        .iter()
        .find(|(_, c)| given.is_file() || c.name == name);
    let (_, case) = found.ok_or_else(|| {
        let names: Vec<_> = cases.iter().map(|(_, c)| c.name.as_str()).collect();
        format!("no case named {name:?}; cases: {}", names.join("; "))
    })?;
    let x = fixtures::explain_case(&engine, &org, case)?;
    println!("trigger: {}", x.input["type"].as_str().unwrap_or("?"));
    println!("input:   {}", x.input);
    println!("rules:");
    for t in &x.decision.trace {
        println!(
            "  {:<16} {:<10} {} action(s) in {} µs via {}{}",
            t.rule,
            if t.matched { "decided" } else { "no match" },
            t.actions,
            t.micros,
            t.entry_point.as_deref().unwrap_or("-"),
            t.note
                .as_deref()
                .map(|n| format!(" — {n}"))
                .unwrap_or_default()
        );
    }
    let consulted: BTreeSet<_> = x.decision.trace.iter().map(|t| t.rule.as_str()).collect();
    let set = engine.rules();
    let idle: Vec<_> = set
        .rules()
        .iter()
        .map(|r| r.name())
        .filter(|n| !consulted.contains(n))
        .collect();
    if !idle.is_empty() {
        println!("  (no entry point for this trigger: {})", idle.join(", "));
    }
    println!("actions:");
    for a in &x.actions {
        println!("  {}", serde_json::Value::Object(a.clone()));
    }
    for a in x
        .actions
        .iter()
        .filter(|a| a.get("action").and_then(|v| v.as_str()) == Some("reassign"))
    {
        let people: Vec<&str> = a
            .get("people")
            .and_then(|p| p.as_array())
            .map(|p| p.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        if people.len() > 1 {
            println!(
                "warning: the lead is handed to {} people ({}) by rule `{}`: each takes it in turn and the last \
                 one keeps it; name one person (`user:{}`), `owner` or `manager:owner`",
                people.len(),
                people.join(", "),
                a.get("rule").and_then(|v| v.as_str()).unwrap_or("?"),
                people[0]
            );
        }
    }
    if let Some(r) = &x.decision.refusal {
        println!("refused by `{}`: {}", r.rule, r.reason);
    }
    for f in &x.decision.failures {
        println!("failed: `{}`: {}", f.rule, f.message);
    }
    Ok(true)
}

fn graph(dir: &Path, mermaid: bool, table: bool, svg: bool) -> Result<bool, String> {
    let org = org_of(dir)?.ok_or_else(|| format!("{}: no org.toml", dir.display()))?;
    let engine = engine_of(dir, Some(&org)).map_err(|e| e.to_string())?;
    let edges = graph::edges(&engine.rules());
    if mermaid {
        print!("{}", graph::to_mermaid(&org, &edges));
    } else if table {
        print!("{}", graph::to_table(&org, &edges));
    } else if svg {
        print!("{}", render_svg(&graph::to_dot(&org, &edges))?);
    } else {
        print!("{}", graph::to_dot(&org, &edges));
    }
    Ok(true)
}

/// Runs Graphviz's `dot -Tsvg` on a DOT text.
fn render_svg(dot: &str) -> Result<String, String> {
    use std::io::Write as _;
    use std::process::{Command as Process, Stdio};
    let mut child = Process::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                "--svg needs Graphviz's `dot` (Debian or Ubuntu: apt-get install graphviz); without it, \
                 `crm-rules graph DIR` prints DOT for any Graphviz viewer"
                    .to_string()
            } else {
                format!("could not run Graphviz's `dot`: {e}")
            }
        })?;
    child
        .stdin
        .take()
        .ok_or("could not write to `dot`")?
        .write_all(dot.as_bytes())
        .map_err(|e| format!("could not write to `dot`: {e}"))?;
    let out = child
        .wait_with_output()
        .map_err(|e| format!("`dot` failed: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`dot` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    String::from_utf8(out.stdout).map_err(|e| format!("`dot` wrote no text: {e}"))
}

/// A day (midnight UTC) or an RFC 3339 instant.
#[cfg(feature = "replay")]
fn parse_since(s: &str) -> Result<crm_core::time::Timestamp, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| {
            format!("`{s}` is neither a day (2026-03-01) nor an instant (2026-03-01T09:00:00Z)")
        })
}

/// What the scheme in `dir` would have decided for the tenant's events stored since `since`, read from `db`.
#[cfg(feature = "replay")]
fn replay(
    dir: &Path,
    db: &str,
    tenant: crm_core::id::TenantId,
    since: crm_core::time::Timestamp,
    schema: &str,
) -> Result<bool, String> {
    use crm_rules::replay::{replay, Replayed};
    let org = org_of(dir)?;
    let engine = match engine_of(dir, org.as_ref()) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("{e}");
            return Ok(false);
        }
    };
    let org = org.unwrap_or_default();
    // The organisation file stands in for the host's directory: its roles and people by key; anyone else (the
    // real owners and assignees) shows by id.
    let mut directory = org.directory();
    directory.tenant = tenant;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let found: Vec<Replayed> = rt
        .block_on(async {
            if db.starts_with("postgres://") || db.starts_with("postgresql://") {
                let config = crm_storage_postgres::PgConfig::from_url(db)
                    .with_schema(schema)
                    .with_pool_size(2)
                    .read_only();
                let store = crm_storage_postgres::PgStore::connect(config).await?;
                replay(&store, tenant, since, &engine, &directory, &org).await
            } else {
                if !Path::new(db).is_file() {
                    return Err(crm_core::Error::invalid(
                        "db",
                        format!("{db}: no such SQLite file (or give a postgres:// URL)"),
                    ));
                }
                let config = crm_storage_sqlite::SqliteConfig::file(db).read_only();
                let store = crm_storage_sqlite::SqliteStore::open(config)?;
                replay(&store, tenant, since, &engine, &directory, &org).await
            }
        })
        .map_err(|e| format!("{db}: {e}"))?;
    println!(
        "replaying {} over the events of tenant {tenant} since {since} (a dry run: nothing is changed, queued or sent)",
        dir.display()
    );
    let (mut decided, mut actions, mut refusals, mut failures) = (0, 0, 0, 0);
    for r in found.iter().filter(|r| r.decided()) {
        decided += 1;
        println!(
            "{}  #{} {}: {}",
            r.event.at.format("%Y-%m-%d %H:%M:%S UTC"),
            r.position,
            r.event.kind.trigger_names().join("/"),
            r.event.describe()
        );
        for a in &r.actions {
            actions += 1;
            let field = |k: &str| a.get(k).and_then(|v| v.as_str()).map(str::to_string);
            let to = ["to", "assignee", "from"]
                .iter()
                .find_map(|k| field(k))
                .unwrap_or_else(|| "owner".into());
            let people: Vec<String> = a
                .get("people")
                .and_then(|p| p.as_array())
                .map(|p| {
                    p.iter()
                        .filter_map(|v| v.as_str())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            let what = ["subject", "title", "template", "tag", "note"]
                .iter()
                .find_map(|k| field(k).map(|v| format!("{k} “{v}”")))
                .unwrap_or_default();
            println!(
                "    would {} {to} → {}: {what} (rule {})",
                field("action").unwrap_or_default(),
                if people.is_empty() {
                    "nobody".to_string()
                } else {
                    people.join(", ")
                },
                field("rule").unwrap_or_default()
            );
        }
        if let Some(f) = &r.decision.refusal {
            refusals += 1;
            println!(
                "    would refuse the change (rule {}): {}",
                f.rule, f.reason
            );
        }
        for f in &r.decision.failures {
            failures += 1;
            println!("    would fail (rule {}): {}", f.rule, f.message);
        }
    }
    println!(
        "{} events since {since}: {decided} with decisions, {actions} actions, {refusals} refusals, {failures} failures",
        found.len()
    );
    Ok(true)
}
