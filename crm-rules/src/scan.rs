//! A static look at compiled scripts, for `check` and `graph`: which fields an entry point reads, and which action
//! functions it calls, with what, under which conditions.
//!
//! It walks Rhai's syntax tree (the `internals` feature), not the text, so comments and strings never confuse it.
//! It follows the entry point's parameter (`ev`, `t`, whatever its name) and variables assigned from it
//! (`let l = ev.lead;`): a property read on them (`ev.to_name`, `ev.lead.revenue`, `l.title`) must name a field the
//! trigger or record has. What it cannot follow (a record passed to a helper function, map indexing with `[...]`)
//! it leaves alone: it never refuses a correct script.

use crate::views;
use rhai::{ASTNode, Expr, Position, Stmt, AST};
use std::collections::HashMap;

/// What a variable holds: the trigger's argument, or one of the records it carries (the property that reads it
/// and its fields, from [`views::RECORDS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holds {
    Trigger,
    Record(&'static str, &'static [&'static str]),
}

impl Holds {
    /// The fields it has (`None` for an unknown trigger, which `check` reports on its entry point instead).
    fn fields(self, trigger: &str) -> Option<Vec<String>> {
        match self {
            Self::Trigger => views::trigger_fields(trigger),
            Self::Record(_, fields) => Some(fields.iter().map(|s| s.to_string()).collect()),
        }
    }

    fn describe(self, trigger: &str) -> String {
        match self {
            Self::Trigger if views::TIMERS.contains(&trigger) => format!("a `{trigger}` timer"),
            Self::Trigger => format!("a `{trigger}` event"),
            Self::Record(name, _) => format!("the {name}"),
        }
    }

    /// What `prop` of it holds, when that is a record.
    fn read(self, prop: &str) -> Option<Self> {
        let record = views::RECORDS.iter().find(|(name, _)| *name == prop);
        match (self, record) {
            (Self::Trigger, Some((name, fields))) => Some(Self::Record(name, fields)),
            _ => None,
        }
    }
}

/// A property read that names no field: why, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The consultant-readable message.
    pub message: String,
    /// 1-based line (0 when unknown).
    pub line: usize,
    /// 1-based column (0 when unknown).
    pub column: usize,
}

/// One argument of an action call, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// A plain string literal.
    Text(String),
    /// Anything else, in plain words (`Large negotiation: [lead title]`, `48`).
    Words(String),
}

impl Arg {
    /// The literal text, when the argument is a plain string.
    pub fn literal(&self) -> Option<&str> {
        match self {
            Self::Text(s) => Some(s),
            Self::Words(_) => None,
        }
    }

    /// The argument in plain words.
    pub fn words(&self) -> &str {
        match self {
            Self::Text(s) | Self::Words(s) => s,
        }
    }
}

/// A call of an action function (`notify`, `email`, `refuse`, …) in an entry point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The entry point it is in (`on_lead_won`).
    pub entry_point: String,
    /// The function called.
    pub function: String,
    /// Its arguments.
    pub args: Vec<Arg>,
    /// The conditions under which it runs, outermost first, in plain words (`the new stage is "Offer"`).
    pub conditions: Vec<String>,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// Where its first argument starts (line, column).
    pub first_arg: (usize, usize),
    /// Where its second argument starts (line, column).
    pub second_arg: (usize, usize),
}

/// The action functions scripts call.
pub const ACTION_FUNCTIONS: &[&str] = &[
    "notify",
    "email",
    "open_request",
    "escalate",
    "reassign",
    "add_tag",
    "follow_up",
    "refuse",
];

/// What a scan of one script found.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    /// Property reads that name no field.
    pub findings: Vec<Finding>,
    /// Action calls.
    pub calls: Vec<Call>,
}

fn pos(p: Position) -> (usize, usize) {
    (p.line().unwrap_or(0), p.position().unwrap_or(0))
}

/// Scans every entry point (`on_*`, `guard_*`) of a compiled script.
pub fn scan(ast: &AST) -> Scan {
    let mut out = Scan::default();
    for f in ast.iter_fn_def() {
        let name = f.name.to_string();
        let Some(trigger) = name
            .strip_prefix("on_")
            .or_else(|| name.strip_prefix("guard_"))
        else {
            continue;
        };
        let (Some(param), 1) = (f.params.first(), f.params.len()) else {
            continue;
        };
        // The body's type is not exported: walk an AST holding only this function, keeping its top statements.
        let mut only = ast.clone_functions_only();
        only.retain_functions(|_, _, n, _| n == name);
        let mut body: Vec<Stmt> = Vec::new();
        only.walk(&mut |path: &[ASTNode]| {
            if let [ASTNode::Stmt(s)] = path {
                body.push((*s).clone());
            }
            true
        });
        let mut w = Walker {
            trigger: trigger.to_string(),
            entry_point: name.clone(),
            vars: HashMap::from([(param.to_string(), Holds::Trigger)]),
            conditions: Vec::new(),
            out: &mut out,
        };
        for s in body.iter() {
            w.stmt(s);
        }
    }
    out.findings.sort_by_key(|f| (f.line, f.column));
    out.findings.dedup();
    // Rhai keeps functions in a hash map: source order makes `graph` and `check` the same in every run.
    out.calls.sort_by_key(|c| (c.line, c.column));
    out
}

/// Property chains and function calls met in a walk (cloned: the walk lends its nodes only for the callback).
#[derive(Default)]
struct Found {
    chains: Vec<Expr>,
    calls: Vec<(rhai::FnCallExpr, Position)>,
}

impl Found {
    fn visit(&mut self, path: &[ASTNode]) -> bool {
        match path.last() {
            Some(ASTNode::Expr(x @ Expr::Dot(..))) => self.chains.push((*x).clone()),
            Some(ASTNode::Expr(Expr::FnCall(c, p))) => self.calls.push(((**c).clone(), *p)),
            Some(ASTNode::Stmt(Stmt::FnCall(c, p))) => self.calls.push(((**c).clone(), *p)),
            _ => {}
        }
        true
    }
}

struct Walker<'a> {
    trigger: String,
    entry_point: String,
    vars: HashMap<String, Holds>,
    conditions: Vec<String>,
    out: &'a mut Scan,
}

/// The variable at the root of a property chain, and the properties read on it (up to an index or method call).
fn chain(e: &Expr) -> Option<(String, Vec<(String, Position)>)> {
    let Expr::Dot(bin, ..) = e else { return None };
    let Expr::Variable(v, ..) = &bin.lhs else {
        return None;
    };
    let mut props = Vec::new();
    let mut rest = &bin.rhs;
    loop {
        match rest {
            Expr::Property(p, at) => {
                props.push((p.2.to_string(), *at));
                break;
            }
            Expr::Dot(b, ..) => match &b.lhs {
                Expr::Property(p, at) => {
                    props.push((p.2.to_string(), *at));
                    rest = &b.rhs;
                }
                _ => break,
            },
            Expr::Index(b, ..) => {
                if let Expr::Property(p, at) = &b.lhs {
                    props.push((p.2.to_string(), *at));
                }
                break;
            }
            _ => break,
        }
    }
    Some((v.1.to_string(), props))
}

impl Walker<'_> {
    /// What a chain holds at its end (when it ends on the trigger or a record), checking each step.
    fn check_chain(&mut self, e: &Expr) -> Option<Holds> {
        let (root, props) = chain(e)?;
        let mut holds = *self.vars.get(&root)?;
        for (prop, at) in props {
            let fields = holds.fields(&self.trigger)?;
            if !fields.contains(&prop) {
                let (line, column) = pos(at);
                let hint = crate::suggest::did_you_mean(&prop, fields.iter().map(String::as_str));
                self.out.findings.push(Finding {
                    message: format!(
                        "{} has no field `{prop}`{hint}",
                        holds.describe(&self.trigger)
                    ),
                    line,
                    column,
                });
                return None;
            }
            holds = holds.read(&prop)?;
        }
        Some(holds)
    }

    /// Checks every property chain and records every action call inside an expression.
    fn expr(&mut self, e: &Expr) {
        let mut found = Found::default();
        e.walk(&mut Vec::new(), &mut |path: &[ASTNode]| found.visit(path));
        self.found(found);
    }

    fn found(&mut self, found: Found) {
        for c in &found.chains {
            self.check_chain(c);
        }
        for (c, p) in &found.calls {
            self.call(c, *p);
        }
    }

    fn call(&mut self, c: &rhai::FnCallExpr, at: Position) {
        if !ACTION_FUNCTIONS.contains(&c.name.as_str()) || c.op_token.is_some() {
            return;
        }
        let args = c
            .args
            .iter()
            .map(|a| match a {
                Expr::StringConstant(s, _) => Arg::Text(s.to_string()),
                other => Arg::Words(words(other)),
            })
            .collect();
        let (line, column) = pos(at);
        let arg_pos = |i: usize| c.args.get(i).map(|a| pos(a.position())).unwrap_or((0, 0));
        self.out.calls.push(Call {
            entry_point: self.entry_point.clone(),
            function: c.name.to_string(),
            args,
            conditions: self.conditions.clone(),
            line,
            column,
            first_arg: arg_pos(0),
            second_arg: arg_pos(1),
        });
    }

    fn block<'s>(&mut self, stmts: impl IntoIterator<Item = &'s Stmt>) {
        for s in stmts {
            self.stmt(s);
        }
    }

    fn stmt(&mut self, s: &Stmt) {
        match s {
            Stmt::Var(x, ..) => {
                let (ident, value, _) = &**x;
                self.expr(value);
                let holds = if chain(value).is_some() {
                    self.check_chain_quiet(value)
                } else {
                    match value {
                        Expr::Variable(v, ..) => self.vars.get(v.1.as_str()).copied(),
                        _ => None,
                    }
                };
                match holds {
                    Some(h) => {
                        self.vars.insert(ident.name.to_string(), h);
                    }
                    None => {
                        self.vars.remove(ident.name.as_str());
                    }
                }
            }
            Stmt::If(x, ..) => {
                self.expr(&x.expr);
                self.conditions.push(words(&x.expr));
                self.block(x.body.iter());
                self.conditions.pop();
                if !x.branch.is_empty() {
                    self.conditions.push(negated(&x.expr));
                    self.block(x.branch.iter());
                    self.conditions.pop();
                }
            }
            Stmt::Block(b) => self.block(b.iter()),
            Stmt::Expr(e) => self.expr(e),
            Stmt::FnCall(c, at) => {
                for a in &c.args {
                    self.expr(a);
                }
                self.call(c, *at);
            }
            Stmt::Return(Some(e), ..) => self.expr(e),
            other => {
                // Loops, switches and the rest: check what they read and call, without their conditions.
                let mut found = Found::default();
                other.walk(&mut Vec::new(), &mut |path: &[ASTNode]| found.visit(path));
                self.conditions.push("in a loop or switch".into());
                self.found(found);
                self.conditions.pop();
            }
        }
    }

    /// [`Walker::check_chain`] without reporting again (the expression was already checked).
    fn check_chain_quiet(&mut self, e: &Expr) -> Option<Holds> {
        let n = self.out.findings.len();
        let h = self.check_chain(e);
        self.out.findings.truncate(n);
        h
    }
}

// ---------------------------------------------------------------------------------------------------- plain words

/// A field as a manager reads it.
fn field_words(f: &str) -> String {
    match f {
        "to_name" => "the new stage".into(),
        "from_name" => "the previous stage".into(),
        "revenue" | "expected_revenue" => "the expected revenue".into(),
        "days" => "the timer's days".into(),
        "hours" => "the timer's hours".into(),
        "days_idle" => "the days without activity".into(),
        "days_overdue" => "the days overdue".into(),
        "days_to_renewal" => "the days until renewal".into(),
        "hours_to_start" => "the hours until the start".into(),
        "open" => "the amount still owed".into(),
        "hours_to_due" => "the hours until due".into(),
        "source" => "the channel".into(),
        "actor" => "who acted".into(),
        other => format!("the {}", other.replace('_', " ")),
    }
}

fn chain_words(e: &Expr) -> Option<String> {
    let (_, props) = chain(e)?;
    let names: Vec<&str> = props.iter().map(|(p, _)| p.as_str()).collect();
    Some(match names.as_slice() {
        [] => "the event".into(),
        [one] => field_words(one),
        [record, field] if views::RECORDS.iter().any(|(name, _)| name == record) => {
            format!(
                "the {record}'s {}",
                field_words(field).trim_start_matches("the ")
            )
        }
        [first, ..] if views::RECORDS.iter().any(|(name, _)| name == first) => {
            format!("the {first}'s {}", names[1..].join(" ").replace('_', " "))
        }
        _ => names.join(" ").replace('_', " "),
    })
}

/// An expression in plain words.
pub fn words(e: &Expr) -> String {
    if let Some(w) = chain_words(e) {
        return w;
    }
    match e {
        Expr::StringConstant(s, _) => format!("“{s}”"),
        Expr::IntegerConstant(n, _) => n.to_string(),
        Expr::BoolConstant(b, _) => b.to_string(),
        Expr::Unit(_) => "nothing".into(),
        Expr::Variable(v, ..) => v.1.replace('_', " "),
        Expr::InterpolatedString(parts, _) => parts
            .iter()
            .map(|p| match p {
                Expr::StringConstant(s, _) => s.to_string(),
                other => format!("[{}]", words(other).trim_start_matches("the ")),
            })
            .collect(),
        Expr::And(x, _) => x.iter().map(words).collect::<Vec<_>>().join(" and "),
        Expr::Or(x, _) => x
            .iter()
            .map(words)
            .collect::<Vec<_>>()
            .join(" or ")
            .to_string(),
        Expr::FnCall(c, _) if c.op_token.is_some() || c.name == "!" => match c.args.as_slice() {
            [a] if c.name == "!" => negated(a),
            [a, b] => compare(&c.name, a, b),
            _ => format!("({})", c.name),
        },
        Expr::FnCall(c, _) | Expr::MethodCall(c, _) => {
            let args: Vec<_> = c.args.iter().map(words).collect();
            format!("{}({})", c.name, args.join(", "))
        }
        Expr::Array(items, _) => format!(
            "[{}]",
            items.iter().map(words).collect::<Vec<_>>().join(", ")
        ),
        _ => "(a computed value)".into(),
    }
}

fn compare(op: &str, a: &Expr, b: &Expr) -> String {
    let (l, r) = (words(a), words(b));
    match (op, b) {
        ("==", Expr::Unit(_)) => format!("{l} is not set"),
        ("!=", Expr::Unit(_)) => format!("{l} is set"),
        ("==", _) => format!("{l} is {r}"),
        ("!=", _) => format!("{l} is not {r}"),
        ("<", _) => format!("{l} is below {r}"),
        ("<=", _) => format!("{l} is at most {r}"),
        (">", _) => format!("{l} is above {r}"),
        (">=", _) => format!("{l} is at least {r}"),
        (op, _) => format!("{l} {op} {r}"),
    }
}

/// The opposite of a condition in plain words (the `else` of an `if`).
pub fn negated(e: &Expr) -> String {
    if let Expr::FnCall(c, _) = e {
        if let [a, b] = c.args.as_slice() {
            let flipped = match c.name.as_str() {
                "==" => Some("!="),
                "!=" => Some("=="),
                "<" => Some(">="),
                "<=" => Some(">"),
                ">" => Some("<="),
                ">=" => Some("<"),
                _ => None,
            };
            if let Some(op) = flipped {
                return compare(op, a, b);
            }
        }
        if c.name == "!" {
            if let [a] = c.args.as_slice() {
                return words(a);
            }
        }
    }
    format!("not ({})", words(e))
}
