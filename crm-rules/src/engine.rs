//! The Rhai rule engine: compiled once, evaluated per trigger under explicit limits.
//!
//! A rule is one `.rhai` file; its name is the file's stem. It reacts to a trigger named `N` (an event kind such as
//! `lead_stage_moved`, or a timer such as `lead_idle`) by defining `fn on_N(ev)`; it can refuse a change with
//! `fn guard_N(ev)` calling `refuse(reason)`; it declares the timers it wants with `fn timers() { ["lead_idle:3"] }`.
//! Scripts call action functions (`notify`, `email`, `open_request`, `escalate`, …) that only *record* actions:
//! a script can do no I/O of any kind.
//!
//! Scripts are compiled once into `Arc<AST>`s shared by every thread; each thread keeps its own `Engine` (one
//! engine shared by two threads scaled 1.3×, one per thread 2.1× in our measurements). The rule set can be swapped
//! at run time: an evaluation holds the `Arc` of the set it started with, so nothing in flight is lost or mixed.

use crate::error::{Location, RulesError};
use crate::views;
use crm_core::comms::{
    Action, DecidedAction, Decision, Recipient, Refusal, RuleEngine, RuleFailure, RuleTrace,
    TimerTrigger, Trigger, Views,
};
use crm_core::consent::Purpose;
use rhai::packages::Package;
use rhai::{Dynamic, Engine, EvalAltResult, NativeCallContext, Position, Scope, AST};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// The limits every evaluation runs under. Set explicitly: Rhai's defaults differ between debug and release builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Operations per entry-point call (a loop iteration, an expression step, a call: one each).
    pub max_operations: u64,
    /// Nested function calls.
    pub max_call_levels: usize,
    /// Expression nesting at the top level.
    pub max_expr_depth: usize,
    /// Expression nesting inside functions.
    pub max_function_expr_depth: usize,
    /// Bytes in one string.
    pub max_string_size: usize,
    /// Items in one array.
    pub max_array_size: usize,
    /// Entries in one object map.
    pub max_map_size: usize,
    /// Actions one rule may decide for one trigger.
    pub max_actions: usize,
    /// Wall-clock budget per entry-point call, in milliseconds.
    pub wall_clock_ms: u64,
    /// Bytes of source in one script: a larger one is refused before it is compiled (compiling costs time and
    /// memory in proportion to the source; a rule is a few hundred lines).
    pub max_script_bytes: usize,
}

/// The default [`Limits::max_script_bytes`]: 256 KiB.
pub const MAX_SCRIPT_BYTES: usize = 256 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_operations: 100_000,
            max_call_levels: 16,
            max_expr_depth: 64,
            max_function_expr_depth: 32,
            max_string_size: 16 * 1024,
            max_array_size: 1_000,
            max_map_size: 1_000,
            max_actions: 100,
            wall_clock_ms: 50,
            max_script_bytes: MAX_SCRIPT_BYTES,
        }
    }
}

// ---------------------------------------------------------------------------------------------------- per thread

/// What the action functions write into while one entry point runs (on this thread).
#[derive(Default)]
struct Collector {
    actions: Vec<Action>,
    refusal: Option<String>,
    known_roles: Option<Arc<BTreeSet<String>>>,
    max_actions: usize,
    deadline: Option<Instant>,
}

thread_local! {
    static ENGINES: RefCell<Vec<(Limits, Arc<Engine>)>> = const { RefCell::new(Vec::new()) };
    static COLLECT: RefCell<Collector> = RefCell::new(Collector::default());
}

/// The engine of this thread for `limits` (built on first use).
fn engine_for(limits: Limits) -> Arc<Engine> {
    ENGINES.with(|e| {
        let mut e = e.borrow_mut();
        if let Some((_, engine)) = e.iter().find(|(l, _)| *l == limits) {
            return engine.clone();
        }
        let engine = Arc::new(build_engine(limits));
        e.push((limits, engine.clone()));
        engine
    })
}

fn runtime_error(message: String, pos: Position) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(message.into(), pos))
}

fn recipient(ctx: &NativeCallContext, s: &str) -> Result<Recipient, Box<EvalAltResult>> {
    let r = Recipient::parse(s).map_err(|e| runtime_error(e.to_string(), ctx.call_position()))?;
    check_roles(ctx, &r)?;
    Ok(r)
}

fn check_roles(ctx: &NativeCallContext, r: &Recipient) -> Result<(), Box<EvalAltResult>> {
    match r {
        Recipient::Role(role) => COLLECT.with(|c| {
            let c = c.borrow();
            match &c.known_roles {
                Some(known) if !known.contains(role) => Err(runtime_error(
                    format!(
                        "unknown role `{role}`; known roles: {}",
                        known.iter().cloned().collect::<Vec<_>>().join(", ")
                    ),
                    ctx.call_position(),
                )),
                _ => Ok(()),
            }
        }),
        Recipient::ManagerOf(inner) => check_roles(ctx, inner),
        Recipient::FirstOf(all) => all.iter().try_for_each(|r| check_roles(ctx, r)),
        _ => Ok(()),
    }
}

/// The first name in `r` (through managers and fallbacks) that `named` takes out of a recipient and `known` does
/// not hold.
fn unknown_name(
    r: &Recipient,
    known: &BTreeSet<String>,
    named: fn(&Recipient) -> Option<&String>,
) -> Option<String> {
    match r {
        Recipient::ManagerOf(inner) => unknown_name(inner, known, named),
        Recipient::FirstOf(all) => all.iter().find_map(|r| unknown_name(r, known, named)),
        other => named(other).filter(|n| !known.contains(*n)).cloned(),
    }
}

fn unknown_role(r: &Recipient, roles: &BTreeSet<String>) -> Option<String> {
    unknown_name(r, roles, |r| match r {
        Recipient::Role(role) => Some(role),
        _ => None,
    })
}

fn unknown_user(r: &Recipient, users: &BTreeSet<String>) -> Option<String> {
    unknown_name(r, users, |r| match r {
        Recipient::UserKey(k) => Some(k),
        _ => None,
    })
}

fn record(ctx: &NativeCallContext, a: Action) -> Result<(), Box<EvalAltResult>> {
    COLLECT.with(|c| {
        let mut c = c.borrow_mut();
        if c.actions.len() >= c.max_actions {
            return Err(runtime_error(
                format!(
                    "a rule may decide at most {} actions per trigger",
                    c.max_actions
                ),
                ctx.call_position(),
            ));
        }
        c.actions.push(a);
        Ok(())
    })
}

/// `email(to, template[, vars])`: records the e-mail to `to`; `marketing_email` the same for an offer or a
/// campaign, which the engine enqueues only for contacts who consent to marketing by e-mail.
fn send_email(
    ctx: &NativeCallContext,
    to: &str,
    template: &str,
    vars: serde_json::Value,
    purpose: Purpose,
) -> Result<(), Box<EvalAltResult>> {
    let to = recipient(ctx, to)?;
    record(
        ctx,
        Action::SendEmail {
            to,
            template: template.to_string(),
            vars,
            purpose,
        },
    )
}

/// `open_request(assignee, title[, kind, due_in_hours])`: records the request for `assignee`.
fn open_request(
    ctx: &NativeCallContext,
    assignee: &str,
    title: &str,
    kind: Option<String>,
    due_in_hours: Option<i64>,
) -> Result<(), Box<EvalAltResult>> {
    let assignee = recipient(ctx, assignee)?;
    let due_in_hours = due_in_hours
        .map(|h| hours(ctx, "due_in_hours", h))
        .transpose()?;
    record(
        ctx,
        Action::OpenRequest {
            assignee,
            title: title.to_string(),
            kind,
            due_in_hours,
        },
    )
}

fn hours(ctx: &NativeCallContext, what: &str, n: i64) -> Result<u32, Box<EvalAltResult>> {
    let max = crm_core::comms::MAX_TIMER_HOURS;
    u32::try_from(n).ok().filter(|h| *h <= max).ok_or_else(|| {
        runtime_error(
            format!("{what} must be a whole number of hours ≥ 0 and at most {max} hours, got {n}"),
            ctx.call_position(),
        )
    })
}

fn build_engine(limits: Limits) -> Engine {
    let mut engine = Engine::new_raw();
    // Only what rules need: the language core, logic, arithmetic (with Decimal), strings, arrays and maps.
    // No time, no I/O, no `eval`, no modules.
    rhai::packages::CorePackage::new().register_into_engine(&mut engine);
    rhai::packages::LogicPackage::new().register_into_engine(&mut engine);
    rhai::packages::ArithmeticPackage::new().register_into_engine(&mut engine);
    rhai::packages::BasicMathPackage::new().register_into_engine(&mut engine);
    rhai::packages::BasicStringPackage::new().register_into_engine(&mut engine);
    rhai::packages::MoreStringPackage::new().register_into_engine(&mut engine);
    rhai::packages::BasicArrayPackage::new().register_into_engine(&mut engine);
    rhai::packages::BasicMapPackage::new().register_into_engine(&mut engine);
    engine.disable_symbol("eval");
    views::register(&mut engine);
    engine.set_max_operations(limits.max_operations);
    engine.set_max_call_levels(limits.max_call_levels);
    engine.set_max_expr_depths(limits.max_expr_depth, limits.max_function_expr_depth);
    engine.set_max_string_size(limits.max_string_size);
    engine.set_max_array_size(limits.max_array_size);
    engine.set_max_map_size(limits.max_map_size);
    engine.set_max_modules(0);
    engine.set_max_variables(1_000);
    engine.set_max_functions(1_000);
    engine.on_progress(|ops| {
        if ops % 128 != 0 {
            return None;
        }
        COLLECT.with(|c| match c.borrow().deadline {
            Some(d) if Instant::now() > d => Some(Dynamic::from("wall-clock budget")),
            _ => None,
        })
    });

    engine.register_fn(
        "notify",
        |ctx: NativeCallContext, to: &str, subject: &str, body: &str| {
            let to = recipient(&ctx, to)?;
            record(
                &ctx,
                Action::Notify {
                    to,
                    subject: subject.to_string(),
                    body: body.to_string(),
                },
            )
        },
    );
    for (name, purpose) in [
        ("email", Purpose::Service),
        ("marketing_email", Purpose::Marketing),
    ] {
        engine.register_fn(
            name,
            move |ctx: NativeCallContext, to: &str, template: &str, vars: rhai::Map| {
                let vars: serde_json::Value = rhai::serde::from_dynamic(&Dynamic::from_map(vars))
                    .map_err(|e| {
                    runtime_error(format!("email vars: {e}"), ctx.call_position())
                })?;
                send_email(&ctx, to, template, vars, purpose)
            },
        );
        engine.register_fn(
            name,
            move |ctx: NativeCallContext, to: &str, template: &str| {
                send_email(&ctx, to, template, serde_json::json!({}), purpose)
            },
        );
    }
    engine.register_fn(
        "open_request",
        |ctx: NativeCallContext, assignee: &str, title: &str, kind: &str, due_in_hours: i64| {
            let kind = (!kind.is_empty()).then(|| kind.to_string());
            open_request(&ctx, assignee, title, kind, Some(due_in_hours))
        },
    );
    engine.register_fn(
        "open_request",
        |ctx: NativeCallContext, assignee: &str, title: &str| {
            open_request(&ctx, assignee, title, None, None)
        },
    );
    engine.register_fn("reassign", |ctx: NativeCallContext, to: &str| {
        let to = recipient(&ctx, to)?;
        record(&ctx, Action::Reassign { to })
    });
    engine.register_fn("add_tag", |ctx: NativeCallContext, tag: &str| {
        record(
            &ctx,
            Action::AddTag {
                tag: tag.trim().to_lowercase(),
            },
        )
    });
    engine.register_fn(
        "follow_up",
        |ctx: NativeCallContext, in_hours: i64, note: &str| {
            let in_hours = hours(&ctx, "in_hours", in_hours)?;
            record(
                &ctx,
                Action::ScheduleFollowUp {
                    in_hours,
                    note: note.to_string(),
                },
            )
        },
    );
    engine.register_fn(
        "escalate",
        |ctx: NativeCallContext, from: &str, subject: &str, body: &str| {
            let from = recipient(&ctx, from)?;
            if matches!(from, Recipient::FirstOf(_)) {
                return Err(runtime_error(
                    "escalate() goes one step up from one recipient; for a fallback when nobody is above, \
                     write notify(\"manager:owner or management\", …)"
                        .into(),
                    ctx.call_position(),
                ));
            }
            record(
                &ctx,
                Action::Escalate {
                    from,
                    subject: subject.to_string(),
                    body: body.to_string(),
                },
            )
        },
    );
    engine.register_fn("refuse", |ctx: NativeCallContext, reason: &str| {
        COLLECT.with(|c| {
            let mut c = c.borrow_mut();
            if c.refusal.is_none() {
                c.refusal = Some(reason.to_string());
            }
        });
        let _ = ctx;
    });
    engine
}

// ---------------------------------------------------------------------------------------------------- rules

/// A rule's source text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSource {
    /// The rule's name (the file stem).
    pub name: String,
    /// The file it came from, for error messages.
    pub file: String,
    /// The Rhai code.
    pub code: String,
}

impl RuleSource {
    /// A rule named `name` with `code`, reported as file `<name>.rhai`.
    pub fn new(name: &str, code: &str) -> Self {
        Self {
            name: name.to_string(),
            file: format!("{name}.rhai"),
            code: code.to_string(),
        }
    }
}

/// One compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    name: String,
    file: String,
    ast: Arc<AST>,
    entry_points: BTreeSet<String>,
    /// Where each function is defined (line, column), for errors that carry no position of their own (limits).
    definitions: Vec<(String, usize, usize)>,
    /// Recipients written as string literals in action calls: (text, line, column).
    literal_recipients: Vec<(String, usize, usize)>,
    timers: Vec<TimerTrigger>,
    /// Whether a failing guard refuses the change (`fn fail_closed() { true }`) instead of letting it through.
    fail_closed: bool,
    /// The action calls of its entry points, with their conditions (a static look, for `check` and `graph`).
    calls: Vec<crate::scan::Call>,
}

impl Rule {
    /// The rule's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file it was compiled from.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// Its entry points (`on_lead_entered`, `guard_lead_stage_moved`, …).
    pub fn entry_points(&self) -> &BTreeSet<String> {
        &self.entry_points
    }

    /// The timers it declared.
    pub fn timers(&self) -> &[TimerTrigger] {
        &self.timers
    }

    /// The action calls its entry points make, with their arguments and conditions in plain words.
    pub fn calls(&self) -> &[crate::scan::Call] {
        &self.calls
    }

    /// The triggers it reacts to (entry-point names without their `on_` / `guard_` prefix).
    pub fn triggers(&self) -> BTreeSet<String> {
        self.entry_points
            .iter()
            .filter_map(|e| e.strip_prefix("on_").or_else(|| e.strip_prefix("guard_")))
            .map(str::to_string)
            .collect()
    }
}

/// The string literals passed as the first argument of the action functions that take a recipient, with their
/// 1-based line and column (a static look at the source, for `check`).
fn literal_recipients(code: &str) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    for (i, line) in code.lines().enumerate() {
        let text = line.split("//").next().unwrap_or_default();
        for f in ["notify", "email", "open_request", "escalate", "reassign"] {
            let pat = format!("{f}(");
            let mut from = 0;
            while let Some(p) = text[from..].find(&pat) {
                let start = from + p;
                from = start + pat.len();
                let before = text[..start].chars().last();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                let rest = text[from..].trim_start();
                if let Some(lit) = rest.strip_prefix('"') {
                    if let Some(end) = lit.find('"') {
                        let col = text.len() - rest.len() + 1;
                        out.push((lit[..end].to_string(), i + 1, col));
                    }
                }
            }
        }
    }
    out
}

/// A compiled, immutable set of rules, evaluated in name order.
#[derive(Debug, Clone)]
pub struct RuleSet {
    rules: Vec<Rule>,
    limits: Limits,
}

impl RuleSet {
    /// Compiles every source; all compile errors are reported together.
    pub fn compile(
        sources: impl IntoIterator<Item = RuleSource>,
        limits: Limits,
    ) -> Result<Self, RulesError> {
        let engine = engine_for(limits);
        let mut rules = Vec::new();
        let mut errors = Vec::new();
        for s in sources {
            match compile_one(&engine, &s, limits) {
                Ok(r) => rules.push(r),
                Err(e) => errors.push(e),
            }
        }
        match errors.len() {
            0 => {}
            1 => return Err(errors.remove(0)),
            _ => return Err(RulesError::Many(errors)),
        }
        rules.sort_by(|a, b| a.name.cmp(&b.name));
        if let Some(w) = rules.windows(2).find(|w| w[0].name == w[1].name) {
            return Err(RulesError::Compile {
                rule: w[0].name.clone(),
                at: Location {
                    file: w[1].file.clone(),
                    line: 0,
                    column: 0,
                },
                message: "two rules have the same name".into(),
            });
        }
        Ok(Self { rules, limits })
    }

    /// Compiles every `*.rhai` file of a directory (not recursive).
    pub fn load_dir(dir: &Path, limits: Limits) -> Result<Self, RulesError> {
        Self::compile(read_dir_sources(dir)?, limits)
    }

    /// The rules, in evaluation order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Checks the recipients written as literals in action calls against the organisation's roles: an unknown role
    /// (or a malformed recipient) is reported at its file, line and column before any event runs.
    pub fn check_recipients(&self, roles: &BTreeSet<String>) -> Result<(), RulesError> {
        self.check_recipients_with(roles, None)
    }

    /// [`RuleSet::check_recipients`], and, given the organisation's user keys, every `user:<key>` names one of
    /// them.
    pub fn check_recipients_with(
        &self,
        roles: &BTreeSet<String>,
        users: Option<&BTreeSet<String>>,
    ) -> Result<(), RulesError> {
        let mut errors = Vec::new();
        for r in &self.rules {
            for (text, line, column) in &r.literal_recipients {
                let problem = match Recipient::parse(text) {
                    Err(e) => Some(e.to_string()),
                    Ok(rec) => unknown_role(&rec, roles)
                        .map(|role| {
                            format!(
                                "unknown role `{role}`; known roles: {}",
                                roles.iter().cloned().collect::<Vec<_>>().join(", ")
                            )
                        })
                        .or_else(|| {
                            let users = users?;
                            let key = unknown_user(&rec, users)?;
                            let hint = crate::suggest::did_you_mean(
                                &key,
                                users.iter().map(String::as_str),
                            );
                            Some(format!(
                                "unknown person `{key}`{hint}; the people are: {}",
                                users.iter().cloned().collect::<Vec<_>>().join(", ")
                            ))
                        }),
                };
                if let Some(message) = problem {
                    errors.push(RulesError::Compile {
                        rule: r.name.clone(),
                        at: Location {
                            file: r.file.clone(),
                            line: *line,
                            column: *column,
                        },
                        message,
                    });
                }
            }
        }
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(RulesError::Many(errors)),
        }
    }

    /// Checks the template names written as literals in `email()` calls against the templates there are: an unknown
    /// one is reported at its file, line and column, with the likely name.
    pub fn check_templates(&self, templates: &[String]) -> Result<(), RulesError> {
        let mut errors = Vec::new();
        for r in &self.rules {
            for c in r.calls.iter().filter(|c| c.function == "email") {
                let Some(name) = c.args.get(1).and_then(|a| a.literal()) else {
                    continue;
                };
                if templates.iter().any(|t| t == name) {
                    continue;
                }
                let hint = crate::suggest::did_you_mean(name, templates.iter().map(String::as_str));
                errors.push(RulesError::Compile {
                    rule: r.name.clone(),
                    at: Location {
                        file: r.file.clone(),
                        line: c.second_arg.0,
                        column: c.second_arg.1,
                    },
                    message: format!(
                        "unknown template `{name}`{hint}; the templates are: {}",
                        if templates.is_empty() {
                            "(none)".to_string()
                        } else {
                            templates.join(", ")
                        }
                    ),
                });
            }
        }
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(RulesError::Many(errors)),
        }
    }

    /// Every timer any rule declared.
    pub fn timers(&self) -> Vec<TimerTrigger> {
        let set: BTreeSet<_> = self
            .rules
            .iter()
            .flat_map(|r| r.timers.iter().copied())
            .collect();
        set.into_iter().collect()
    }
}

/// The `*.rhai` sources of a directory, by file name.
pub fn read_dir_sources(dir: &Path) -> Result<Vec<RuleSource>, RulesError> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| RulesError::io(dir, e))?;
    for e in entries {
        let path = e.map_err(|e| RulesError::io(dir, e))?.path();
        if path.extension().and_then(|x| x.to_str()) != Some("rhai") {
            continue;
        }
        let code = std::fs::read_to_string(&path).map_err(|e| RulesError::io(&path, e))?;
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        out.push(RuleSource {
            name,
            file: path.display().to_string(),
            code,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn compile_one(engine: &Engine, s: &RuleSource, limits: Limits) -> Result<Rule, RulesError> {
    let err = |pos: Position, message: String| RulesError::Compile {
        rule: s.name.clone(),
        at: location(&s.file, pos),
        message,
    };
    if s.code.len() > limits.max_script_bytes {
        let max = limits.max_script_bytes;
        let readable = if max.is_multiple_of(1024) {
            format!("{max} bytes ({} KiB)", max / 1024)
        } else {
            format!("{max} bytes")
        };
        return Err(err(
            Position::NONE,
            format!(
                "the script is {} bytes long; at most {readable} are allowed: split it into several rules",
                s.code.len()
            ),
        ));
    }
    let mut ast = engine
        .compile(&s.code)
        .map_err(|e| err(e.1, e.0.to_string()))?;
    ast.set_source(s.file.as_str());
    let definitions: Vec<(String, usize, usize)> = s
        .code
        .lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let col = line.find("fn ")?;
            let rest = &line[col + 3..];
            let name: String = rest
                .trim_start()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            (!name.is_empty()).then_some((name, i + 1, col + 1))
        })
        .collect();
    let defined_at = |name: &str| -> Location {
        let (line, column) = definitions
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, l, c)| (*l, *c))
            .unwrap_or((0, 0));
        Location {
            file: s.file.clone(),
            line,
            column,
        }
    };
    let mut problems = Vec::new();
    let mut problem = |at: Location, message: String| {
        problems.push(RulesError::Compile {
            rule: s.name.clone(),
            at,
            message,
        })
    };
    let mut entry_points = BTreeSet::new();
    let mut timers_fn = None;
    let mut fail_closed_fn = None;
    for f in ast.iter_functions() {
        let name = f.name.to_string();
        if name == "fail_closed" {
            if !f.params.is_empty() {
                return Err(err(
                    Position::NONE,
                    "`fn fail_closed()` takes no parameters".into(),
                ));
            }
            fail_closed_fn = Some(());
        } else if name == "timers" {
            if !f.params.is_empty() {
                return Err(err(
                    Position::NONE,
                    "`fn timers()` takes no parameters".into(),
                ));
            }
            timers_fn = Some(());
        } else if name.starts_with("on_") || name.starts_with("guard_") {
            if f.params.len() != 1 {
                return Err(err(
                    Position::NONE,
                    format!("entry point `{name}` must take exactly one parameter (the event)"),
                ));
            }
            if let Some(message) = entry_point_problem(&name) {
                problem(defined_at(&name), message);
            }
            entry_points.insert(name);
        }
    }
    let scan = crate::scan::scan(&ast);
    for f in &scan.findings {
        problem(
            Location {
                file: s.file.clone(),
                line: f.line,
                column: f.column,
            },
            f.message.clone(),
        );
    }
    match problems.len() {
        0 => {}
        1 => return Err(problems.remove(0)),
        _ => return Err(RulesError::Many(problems)),
    }
    if entry_points.is_empty() {
        return Err(err(
            Position::NONE,
            "the rule defines no entry point: add `fn on_<event>(ev)`, e.g. `fn on_lead_entered(ev)`".into(),
        ));
    }
    let mut timers = Vec::new();
    if timers_fn.is_some() {
        let v = call(engine, &ast, "timers", Vec::new(), limits)
            .map_err(|e| err(inner_position(&e), describe(&e, limits)))?;
        let list = v.into_array().map_err(|t| {
            err(
                Position::NONE,
                format!("`fn timers()` must return an array of strings such as [\"lead_idle:3\"], got {t}"),
            )
        })?;
        for item in list {
            let text = item.into_string().map_err(|t| {
                err(
                    Position::NONE,
                    format!("`fn timers()` returned a {t}, not a string"),
                )
            })?;
            let t = TimerTrigger::parse(&text).map_err(|e| err(Position::NONE, e.to_string()))?;
            if !entry_points.contains(&format!("on_{}", t.name())) {
                return Err(err(
                    Position::NONE,
                    format!(
                        "the rule declares timer `{t}` but has no `fn on_{}(t)`",
                        t.name()
                    ),
                ));
            }
            timers.push(t);
        }
    }
    let mut fail_closed = false;
    if fail_closed_fn.is_some() {
        let v = call(engine, &ast, "fail_closed", Vec::new(), limits)
            .map_err(|e| err(inner_position(&e), describe(&e, limits)))?;
        fail_closed = v.as_bool().map_err(|t| {
            err(
                Position::NONE,
                format!("`fn fail_closed()` must return true or false, got {t}"),
            )
        })?;
        if fail_closed && !entry_points.iter().any(|e| e.starts_with("guard_")) {
            return Err(err(
                Position::NONE,
                "`fn fail_closed()` is for rules with a guard: add `fn guard_<event>(ev)` or remove it".into(),
            ));
        }
    }
    Ok(Rule {
        name: s.name.clone(),
        file: s.file.clone(),
        ast: Arc::new(ast),
        entry_points,
        definitions,
        literal_recipients: literal_recipients(&s.code),
        timers,
        fail_closed,
        calls: scan.calls,
    })
}

/// Why an entry point's name reacts to nothing (a misspelt event or timer), if it does not.
fn entry_point_problem(name: &str) -> Option<String> {
    let (prefix, trigger) = match name.strip_prefix("on_") {
        Some(t) => ("on_", t),
        None => ("guard_", name.strip_prefix("guard_")?),
    };
    if trigger == "rule_failed" {
        return Some(format!(
            "`{name}` would never run: a rule's failure does not trigger rules (so failures cannot loop); \
             failures are in the activity log as `rule_failed` events"
        ));
    }
    if prefix == "guard_" && views::TIMERS.contains(&trigger) {
        return Some(format!(
            "`{name}` can refuse nothing: a timer changes nothing to refuse; react to it with `on_{trigger}`"
        ));
    }
    let known: Vec<&str> = if prefix == "on_" {
        views::trigger_names().collect()
    } else {
        views::EVENTS.to_vec()
    };
    if known.contains(&trigger) {
        return None;
    }
    let candidates: Vec<String> = known.iter().map(|k| format!("{prefix}{k}")).collect();
    let hint = crate::suggest::did_you_mean(name, candidates.iter().map(String::as_str));
    Some(format!(
        "`{name}` reacts to nothing: there is no {} `{trigger}`{hint}",
        if prefix == "on_" {
            "event or timer"
        } else {
            "event"
        }
    ))
}

fn location(file: &str, pos: Position) -> Location {
    Location {
        file: file.to_string(),
        line: pos.line().unwrap_or(0),
        column: pos.position().unwrap_or(0),
    }
}

fn call(
    engine: &Engine,
    ast: &AST,
    name: &str,
    args: Vec<Dynamic>,
    limits: Limits,
) -> Result<Dynamic, Box<EvalAltResult>> {
    COLLECT.with(|c| {
        c.borrow_mut().deadline = Some(Instant::now() + Duration::from_millis(limits.wall_clock_ms))
    });
    let mut scope = Scope::new();
    let options = rhai::CallFnOptions::new()
        .eval_ast(false)
        .rewind_scope(true);
    let r = engine.call_fn_with_options::<Dynamic>(options, &mut scope, ast, name, args);
    COLLECT.with(|c| c.borrow_mut().deadline = None);
    r
}

fn inner_position(e: &EvalAltResult) -> Position {
    let p = e.unwrap_inner().position();
    if p.is_none() {
        e.position()
    } else {
        p
    }
}

/// A consultant-readable message for a script error (without the position, which the caller adds).
fn describe(e: &EvalAltResult, limits: Limits) -> String {
    let inner = e.unwrap_inner();
    match inner {
        EvalAltResult::ErrorRuntime(v, _) => v.to_string(),
        EvalAltResult::ErrorTerminated(_, _) => format!(
            "stopped: over the wall-clock budget of {} ms",
            limits.wall_clock_ms
        ),
        EvalAltResult::ErrorTooManyOperations(_) => format!(
            "stopped: over the limit of {} operations (an endless loop?)",
            limits.max_operations
        ),
        EvalAltResult::ErrorStackOverflow(_) => format!(
            "stopped: calls nested deeper than {} levels (endless recursion?)",
            limits.max_call_levels
        ),
        EvalAltResult::ErrorDataTooLarge(what, _) => format!(
            "stopped: {what} over its limit (strings {} bytes, arrays {} items, maps {} entries)",
            limits.max_string_size, limits.max_array_size, limits.max_map_size
        ),
        EvalAltResult::ErrorFunctionNotFound(sig, _) => {
            format!("unknown function `{sig}`: see the README for the functions rules can call")
        }
        other => {
            let text = other.to_string();
            let suffix = format!(" ({})", other.position());
            text.strip_suffix(&suffix).unwrap_or(&text).to_string()
        }
    }
}

// ---------------------------------------------------------------------------------------------------- engine

/// The [`RuleEngine`] on Rhai scripts, with an atomically replaceable [`RuleSet`].
#[derive(Debug)]
pub struct RhaiRuleEngine {
    current: RwLock<Arc<RuleSet>>,
    known_roles: Option<Arc<BTreeSet<String>>>,
}

impl RhaiRuleEngine {
    /// An engine evaluating `rules`.
    pub fn new(rules: RuleSet) -> Self {
        Self {
            current: RwLock::new(Arc::new(rules)),
            known_roles: None,
        }
    }

    /// An engine for `rules` written for `org` (when given): every recipient written as a literal must name one of
    /// its roles or people (checked now, at its file, line and column), and naming another role at run time is an
    /// error at the script line that names it.
    ///
    /// # Errors
    ///
    /// [`RulesError::Compile`] (or [`RulesError::Many`]) for each literal recipient naming a role or person `org`
    /// does not have, or that is malformed.
    pub fn for_org(rules: RuleSet, org: Option<&crate::fixtures::Org>) -> Result<Self, RulesError> {
        let Some(o) = org else {
            return Ok(Self::new(rules));
        };
        rules.check_recipients_with(
            &o.roles.iter().cloned().collect(),
            Some(&o.users.iter().map(|u| u.key.clone()).collect()),
        )?;
        Ok(Self::new(rules).with_known_roles(o.roles.iter().cloned()))
    }

    /// The scheme in `dir` (its `*.rhai` rules, and its `org.toml` when there is one: see
    /// [`RhaiRuleEngine::for_org`]), compiled under `limits`.
    ///
    /// # Errors
    ///
    /// [`RulesError::Io`] when the directory or a file cannot be read, [`RulesError::Fixture`] when `org.toml` is
    /// malformed, [`RulesError::Compile`] (or [`RulesError::Many`]) when a rule does not compile or names a role or
    /// person the organisation does not have.
    pub fn from_dir(dir: &Path, limits: Limits) -> Result<Self, RulesError> {
        let org_file = dir.join("org.toml");
        let org = if org_file.exists() {
            Some(crate::fixtures::Org::load(&org_file)?)
        } else {
            None
        };
        Self::for_org(RuleSet::load_dir(dir, limits)?, org.as_ref())
    }

    /// Makes naming a role outside `roles` an error at the script line that names it (instead of later, when the
    /// directory cannot resolve it).
    pub fn with_known_roles<I: IntoIterator<Item = String>>(mut self, roles: I) -> Self {
        self.known_roles = Some(Arc::new(roles.into_iter().collect()));
        self
    }

    /// The rule set now in force.
    pub fn rules(&self) -> Arc<RuleSet> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces the rule set atomically; evaluations already running finish with the old one. Returns the old set.
    pub fn replace(&self, rules: RuleSet) -> Arc<RuleSet> {
        let mut w = self.current.write().unwrap_or_else(|p| p.into_inner());
        std::mem::replace(&mut *w, Arc::new(rules))
    }

    /// Evaluates `trigger` against a given rule set (what [`RuleEngine::evaluate`] does with the current one).
    pub fn evaluate_with(&self, set: &RuleSet, trigger: &Trigger, views: &Views) -> Decision {
        // An event may answer to several names (`invoice_recorded` and `invoice_issued`): every guard first, then
        // every reaction, in the order of the names.
        let names = trigger.names();
        let guards: Vec<String> = names.iter().map(|n| format!("guard_{n}")).collect();
        let ons: Vec<String> = names.iter().map(|n| format!("on_{n}")).collect();
        let is_event = matches!(trigger, Trigger::Event(_));
        let engine = engine_for(set.limits);
        let mut arg: Option<Dynamic> = None;
        let mut decision = Decision::default();
        for rule in &set.rules {
            // A rule gets only the timers it declared: another rule's `request_overdue:5` is not its business.
            if let Trigger::Timer(f) = trigger {
                if !rule.timers.contains(&f.timer) {
                    continue;
                }
            }
            let mut points: Vec<&str> = Vec::new();
            if is_event {
                points.extend(
                    guards
                        .iter()
                        .filter(|g| rule.entry_points.contains(*g))
                        .map(String::as_str),
                );
            }
            let guarded = !points.is_empty();
            points.extend(
                ons.iter()
                    .filter(|o| rule.entry_points.contains(*o))
                    .map(String::as_str),
            );
            if points.is_empty() {
                continue;
            }
            let ev = arg.get_or_insert_with(|| views::trigger_to_dynamic(trigger, views));
            let started = Instant::now();
            COLLECT.with(|c| {
                *c.borrow_mut() = Collector {
                    known_roles: self.known_roles.clone(),
                    max_actions: set.limits.max_actions,
                    ..Default::default()
                }
            });
            let mut failure = None;
            for p in &points {
                match call(&engine, &rule.ast, p, vec![ev.clone()], set.limits) {
                    Ok(v) if v.is_unit() => {}
                    Ok(v) => {
                        failure = Some(format!(
                            "{}: entry point `{p}` must not return a value, but it returned a {} \
                             (decide with notify(), email(), refuse(), …)",
                            Location {
                                file: rule.file.clone(),
                                line: 0,
                                column: 0
                            },
                            v.type_name()
                        ));
                        break;
                    }
                    Err(e) => {
                        let pos = inner_position(&e);
                        failure = Some(if pos.is_none() {
                            // Limits stop a script between positions: name the entry point's definition.
                            let (line, column) = rule
                                .definitions
                                .iter()
                                .find(|(n, _, _)| n == p)
                                .map(|(_, l, c)| (*l, *c))
                                .unwrap_or((0, 0));
                            format!(
                                "{}: in `{p}`: {}",
                                Location {
                                    file: rule.file.clone(),
                                    line,
                                    column
                                },
                                describe(&e, set.limits)
                            )
                        } else {
                            format!(
                                "{}: {}",
                                location(&rule.file, pos),
                                describe(&e, set.limits)
                            )
                        });
                        break;
                    }
                }
            }
            let collected = COLLECT.with(|c| std::mem::take(&mut *c.borrow_mut()));
            let micros = started.elapsed().as_micros() as u64;
            if let Some(message) = failure {
                // A fail-closed rule whose guard was consulted refuses the change it could not judge.
                if rule.fail_closed && guarded {
                    decision.refusal.get_or_insert_with(|| Refusal {
                        rule: rule.name.clone(),
                        reason: format!(
                            "the rule could not decide and refuses when it cannot ({message})"
                        ),
                    });
                }
                // A failing rule decides nothing: half a decision is worse than none.
                decision.trace.push(RuleTrace {
                    rule: rule.name.clone(),
                    entry_point: Some(points.join(", ")),
                    matched: false,
                    actions: 0,
                    note: Some(format!("failed: {message}")),
                    micros,
                });
                decision.failures.push(RuleFailure {
                    rule: rule.name.clone(),
                    message,
                });
                continue;
            }
            let n = collected.actions.len();
            let refused = collected.refusal.clone().filter(|_| is_event);
            decision.trace.push(RuleTrace {
                rule: rule.name.clone(),
                entry_point: Some(points.join(", ")),
                matched: n > 0 || refused.is_some(),
                actions: n,
                note: refused.as_ref().map(|r| format!("refused: {r}")),
                micros,
            });
            if let Some(reason) = refused {
                if decision.refusal.is_none() {
                    decision.refusal = Some(Refusal {
                        rule: rule.name.clone(),
                        reason,
                    });
                }
            }
            decision
                .actions
                .extend(collected.actions.into_iter().map(|action| DecidedAction {
                    rule: rule.name.clone(),
                    action,
                }));
        }
        decision
    }
}

impl RuleEngine for RhaiRuleEngine {
    fn evaluate(&self, trigger: &Trigger, views: &Views) -> Decision {
        let set = self.rules();
        self.evaluate_with(&set, trigger, views)
    }

    fn timers(&self) -> Vec<TimerTrigger> {
        self.rules().timers()
    }
}
