//! The communication scheme as a manager reads it: a diagram (DOT, Mermaid) and a per-person table ("who gets what,
//! when", Markdown).
//!
//! Both come from the scripts themselves ([`crate::scan`]): every action call with the trigger and timer days it
//! runs on, the conditions around it, its subject or template, and whom it reaches, in plain words; every
//! `refuse()` with its reason. The organisation file adds the people of each role and the reporting lines.

use crate::engine::RuleSet;
use crate::fixtures::Org;
use crate::scan::Call;
use crm_core::comms::{Recipient, TimerTrigger};
use std::collections::BTreeSet;
use std::fmt::Write as _;

/// One decision of the scheme: when, if what, which action, to whom, by which rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    /// The rule.
    pub rule: String,
    /// The trigger (`lead_stage_moved`, `lead_idle`).
    pub trigger: String,
    /// The timers of this trigger the rule declared (empty for events).
    pub timers: Vec<TimerTrigger>,
    /// The trigger in plain words (`a lead has had no activity for 3 days`).
    pub when: String,
    /// The conditions in plain words, outermost first.
    pub conditions: Vec<String>,
    /// The action function called (`notify`, `email`, …, `refuse`).
    pub function: String,
    /// What is decided, in plain words (`notification “Large negotiation: [lead's title]”`).
    pub what: String,
    /// Whom it reaches, as written (`None` for `refuse`, or a recipient computed at run time).
    pub recipient: Option<Recipient>,
    /// Whom it reaches, as written in the script.
    pub recipient_text: String,
}

impl Edge {
    /// Whether this is a refusal (a guard's `refuse()`).
    pub fn is_refusal(&self) -> bool {
        self.function == "refuse"
    }

    /// "if A and B", or nothing.
    pub fn condition_words(&self) -> String {
        if self.conditions.is_empty() {
            String::new()
        } else {
            format!("if {}", self.conditions.join(" and "))
        }
    }
}

/// A trigger in plain words, with the days or hours of the rule's timers.
pub fn when_words(trigger: &str, timers: &[TimerTrigger]) -> String {
    let amounts = || {
        let mut a: Vec<String> = timers.iter().map(|t| t.amount().to_string()).collect();
        a.dedup();
        match a.len() {
            0 => "N".to_string(),
            1 => a.remove(0),
            _ => {
                let last = a.pop().unwrap_or_default();
                format!("{} or {last}", a.join(", "))
            }
        }
    };
    match trigger {
        "partner_created" => "a partner is created".into(),
        "partner_updated" => "a partner is changed".into(),
        "lead_entered" => "a lead is entered".into(),
        "lead_updated" => "a lead is changed".into(),
        "lead_stage_moved" => "a lead moves to another stage".into(),
        "lead_won" => "a lead is won".into(),
        "lead_lost" => "a lead is lost".into(),
        "lead_reopened" => "a lead is reopened".into(),
        "lead_scored" => "a lead's score changes".into(),
        "comment_added" => "a comment is added".into(),
        "request_opened" => "a request is opened".into(),
        "request_updated" => "a request is changed".into(),
        "request_status_changed" => "a request changes status".into(),
        "invoice_recorded" => "an invoice is recorded".into(),
        "invoice_issued" => "an invoice is issued".into(),
        "payment_recorded" => "a payment is recorded".into(),
        "payment_received" => "a payment is received".into(),
        "budget_exceeded" => "a campaign's costs pass its budget".into(),
        "budget_threshold_passed" => "a campaign's costs pass a share of its budget".into(),
        "campaign_created" => "a campaign is created".into(),
        "campaign_launched" => "a campaign is launched".into(),
        "campaign_closed" => "a campaign is closed".into(),
        "campaign_cost_added" => "a campaign cost is booked".into(),
        "campaign_message_set" => "a campaign's message is set".into(),
        "campaign_messages_queued" => "a campaign's messages are queued".into(),
        "campaign_message_reported" => {
            "a campaign message is reported delivered, opened, bounced or unsubscribed".into()
        }
        "call_outcome_recorded" => "a call's outcome is recorded".into(),
        "quotation_sent" => "a quotation is sent".into(),
        "quotation_accepted" => "a quotation is accepted".into(),
        "quotation_declined" => "a quotation is declined".into(),
        "quotation_expired" => "a quotation expires".into(),
        "contract_created" => "a contract is made".into(),
        "contract_signed" => "a contract is signed".into(),
        "meeting_scheduled" => "a meeting is scheduled".into(),
        "meeting_held" => "a meeting is held".into(),
        "call_logged" => "a call is logged".into(),
        "lead_idle" => format!("a lead has had no activity for {} days", amounts()),
        "request_due_soon" => format!("a request is due within {} hours", amounts()),
        "request_overdue" if timers.iter().all(|t| t.amount() == 0) => {
            "a request is overdue".into()
        }
        "request_overdue" => format!("a request is {} days overdue", amounts()),
        "request_age" => format!("a request has been open for {} days", amounts()),
        "close_date_passed" => "a lead is past its expected close date".into(),
        "open_item_overdue" if timers.iter().all(|t| t.amount() == 0) => {
            "an invoice is overdue and unpaid".into()
        }
        "open_item_overdue" => format!("an invoice is {} days overdue and unpaid", amounts()),
        "contract_renewal_due" => format!("a contract renews within {} days", amounts()),
        "meeting_starts_in" => format!("a meeting starts within {} hours", amounts()),
        other => other.replace('_', " "),
    }
}

fn quoted(s: &str) -> String {
    format!("“{s}”")
}

/// What a call decides, in plain words.
fn what_words(c: &Call) -> String {
    let arg = |i: usize| {
        c.args
            .get(i)
            .map(|a| a.words().to_string())
            .unwrap_or_default()
    };
    match c.function.as_str() {
        "notify" => format!("notification {}", quoted(&arg(1))),
        "email" => format!("e-mail {}", quoted(&arg(1))),
        "open_request" if c.args.len() >= 4 => {
            format!("task {} due in {} hours", quoted(&arg(1)), arg(3))
        }
        "open_request" => format!("task {}", quoted(&arg(1))),
        "escalate" => format!("escalation {}", quoted(&arg(1))),
        "reassign" => "the lead is handed over".into(),
        "add_tag" => format!("tag {}", quoted(&arg(0))),
        "follow_up" => format!(
            "follow-up reminder in {} hours: {}",
            arg(0),
            quoted(&arg(1))
        ),
        "refuse" => format!("the change is refused: {}", quoted(&arg(0))),
        other => other.to_string(),
    }
}

/// Whose owner `owner` is for a trigger: the lead's, the customer's account owner (commerce documents), or the
/// campaign's.
pub fn owner_words(trigger: &str) -> &'static str {
    match trigger {
        "invoice_recorded"
        | "invoice_issued"
        | "payment_recorded"
        | "payment_received"
        | "open_item_overdue"
        | "contract_renewal_due"
        | "partner_created"
        | "partner_updated"
        | "campaign_message_reported" => "the account owner",
        "campaign_created"
        | "campaign_launched"
        | "campaign_closed"
        | "campaign_cost_added"
        | "campaign_message_set"
        | "campaign_messages_queued"
        | "budget_exceeded"
        | "budget_threshold_passed" => "the campaign's owner",
        _ => "the lead's owner",
    }
}

/// Whether a recipient goes through `owner`.
fn names_owner(r: &Recipient) -> bool {
    match r {
        Recipient::Owner => true,
        Recipient::ManagerOf(inner) => names_owner(inner),
        Recipient::FirstOf(all) => all.iter().any(names_owner),
        _ => false,
    }
}

/// Whom a recipient reaches when `trigger` happens, in plain words (with the people of a role).
pub fn who_words(r: &Recipient, org: &Org, trigger: &str) -> String {
    let name_of = |key: &str| {
        org.users
            .iter()
            .find(|u| u.key == key)
            .map(|u| u.name.clone())
            .unwrap_or_else(|| key.to_string())
    };
    match r {
        Recipient::Role(role) => {
            let people: Vec<String> = org.members(role).into_iter().map(name_of).collect();
            if people.is_empty() {
                format!("{role} (nobody yet)")
            } else {
                format!("{role} ({})", people.join(", "))
            }
        }
        Recipient::Owner => owner_words(trigger).into(),
        Recipient::Assignee => "the request's assignee".into(),
        Recipient::ManagerOf(inner) => match &**inner {
            Recipient::Owner => "the owner's manager".into(),
            Recipient::Assignee => "the assignee's manager".into(),
            other => format!("the manager of {}", who_words(other, org, trigger)),
        },
        Recipient::PartnerContact(role) => format!("the customer's {role} contact"),
        Recipient::UserKey(k) => name_of(k),
        Recipient::Person(_) => "one user".into(),
        Recipient::Email(e) => e.clone(),
        Recipient::FirstOf(all) => all
            .iter()
            .map(|a| who_words(a, org, trigger))
            .collect::<Vec<_>>()
            .join(", or if nobody: "),
    }
}

/// Every decision of the rule set, from its scripts.
pub fn edges(set: &RuleSet) -> Vec<Edge> {
    let mut out = Vec::new();
    for rule in set.rules() {
        for c in rule.calls() {
            let trigger = c
                .entry_point
                .strip_prefix("on_")
                .or_else(|| c.entry_point.strip_prefix("guard_"))
                .unwrap_or(&c.entry_point)
                .to_string();
            let timers: Vec<TimerTrigger> = rule
                .timers()
                .iter()
                .filter(|t| t.name() == trigger)
                .copied()
                .collect();
            let first = c.args.first();
            let literal = first.and_then(|a| a.literal()).map(Recipient::parse);
            let (recipient, recipient_text) = match c.function.as_str() {
                "refuse" => (None, String::new()),
                "add_tag" | "follow_up" => (Some(Recipient::Owner), "owner".to_string()),
                "escalate" => match literal {
                    Some(Ok(r)) => {
                        let m = Recipient::ManagerOf(Box::new(r));
                        let text = m.to_string();
                        (Some(m), text)
                    }
                    _ => (
                        None,
                        first.map(|a| a.words().to_string()).unwrap_or_default(),
                    ),
                },
                _ => match literal {
                    Some(Ok(r)) => {
                        let text = r.to_string();
                        (Some(r), text)
                    }
                    _ => (
                        None,
                        first.map(|a| a.words().to_string()).unwrap_or_default(),
                    ),
                },
            };
            out.push(Edge {
                rule: rule.name().to_string(),
                when: when_words(&trigger, &timers),
                trigger,
                timers,
                conditions: c.conditions.clone(),
                function: c.function.clone(),
                what: what_words(c),
                recipient,
                recipient_text,
            });
        }
    }
    out
}

fn id(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// The node a trigger is drawn as: one per trigger and set of timer amounts.
fn trigger_node(e: &Edge) -> String {
    let mut n = format!("trigger_{}", id(&e.trigger));
    for t in &e.timers {
        let _ = write!(n, "_{}", t.amount());
    }
    n
}

/// The node an edge points at: a role or person of the organisation, the refusal, or a relative recipient.
fn target_node(e: &Edge, org: &Org) -> (String, Option<String>) {
    if e.is_refusal() {
        return (format!("refused_{}", id(&e.trigger)), None);
    }
    match &e.recipient {
        Some(Recipient::Role(r)) if org.roles.contains(r) => (format!("role_{}", id(r)), None),
        Some(Recipient::UserKey(k)) if org.users.iter().any(|u| &u.key == k) => {
            (format!("user_{}", id(k)), None)
        }
        Some(r) => {
            // `owner` is the lead's, the account's or the campaign's owner, depending on the trigger.
            let mut node = format!("who_{}", id(&r.to_string()));
            let whose = owner_words(&e.trigger);
            if names_owner(r) && whose != owner_words("") {
                let _ = write!(node, "_{}", id(whose));
            }
            (node, Some(who_words(r, org, &e.trigger)))
        }
        None => (
            format!("who_{}", id(&e.recipient_text)),
            Some(e.recipient_text.clone()),
        ),
    }
}

fn edge_label(e: &Edge) -> Vec<String> {
    let mut lines = vec![e.what.clone()];
    let cond = e.condition_words();
    if !cond.is_empty() {
        lines.push(cond);
    }
    lines.push(format!("(rule {})", e.rule));
    lines
}

/// How one diagram language writes the statements of the schema graph; [`render`] walks the graph once for all.
/// Names and labels arrive escaped with [`Diagram::text`], node ids as they are.
trait Diagram {
    /// What opens the diagram and its organisation part.
    const HEAD: &'static str;
    /// What closes the organisation part.
    const ORG_END: &'static str;
    /// What closes the diagram.
    const TAIL: &'static str;
    /// A line break inside a label.
    const BREAK: &'static str;
    /// `s` escaped for a quoted label.
    fn text(s: &str) -> String;
    /// A role with its members.
    fn role(s: &mut String, role: &str, name: &str, members: &str);
    /// A user.
    fn user(s: &mut String, user: &str, name: &str);
    /// A user holding a role.
    fn holds(s: &mut String, user: &str, role: &str);
    /// A user reporting to a manager.
    fn reports_to(s: &mut String, user: &str, manager: &str);
    /// A trigger, `when` it fires.
    fn trigger(s: &mut String, node: &str, when: &str);
    /// The refusal of a change.
    fn refusal(s: &mut String, node: &str);
    /// What a rule does.
    fn target(s: &mut String, node: &str, label: &str);
    /// A rule's edge from its trigger to its target.
    fn edge(s: &mut String, from: &str, to: &str, label: &str, refusal: bool);
}

/// The graph in diagram language `D`: the organisation (roles with their members, users, reporting lines), then
/// each rule from its trigger to its target, every node declared once.
fn render<D: Diagram>(org: &Org, edges: &[Edge]) -> String {
    let mut s = String::from(D::HEAD);
    for r in &org.roles {
        let members: Vec<_> = org
            .users
            .iter()
            .filter(|u| u.roles.contains(r))
            .map(|u| u.name.as_str())
            .collect();
        D::role(&mut s, &id(r), &D::text(r), &D::text(&members.join(", ")));
    }
    for u in &org.users {
        D::user(&mut s, &id(&u.key), &D::text(&u.name));
        for r in &u.roles {
            D::holds(&mut s, &id(&u.key), &id(r));
        }
        if let Some(m) = &u.manager {
            D::reports_to(&mut s, &id(&u.key), &id(m));
        }
    }
    s.push_str(D::ORG_END);
    let mut declared = BTreeSet::new();
    for e in edges {
        if declared.insert(trigger_node(e)) {
            D::trigger(&mut s, &trigger_node(e), &D::text(&e.when));
        }
        let (node, label) = target_node(e, org);
        if declared.insert(node.clone()) {
            if e.is_refusal() {
                D::refusal(&mut s, &node);
            } else if let Some(l) = label {
                D::target(&mut s, &node, &D::text(&l));
            }
        }
        let label: Vec<String> = edge_label(e).iter().map(|l| D::text(l)).collect();
        D::edge(
            &mut s,
            &trigger_node(e),
            &node,
            &label.join(D::BREAK),
            e.is_refusal(),
        );
    }
    s.push_str(D::TAIL);
    s
}

/// Graphviz DOT.
struct Dot;

impl Diagram for Dot {
    const HEAD: &'static str = "digraph schema {\n  rankdir=LR;\n  node [fontname=\"Helvetica\"];\n  edge [fontname=\"Helvetica\", fontsize=10];\n  subgraph cluster_org {\n    label=\"organisation\";\n";
    const ORG_END: &'static str = "  }\n";
    const TAIL: &'static str = "}\n";
    const BREAK: &'static str = "\\n";
    fn text(s: &str) -> String {
        s.replace('\\', "\\\\").replace('"', "\\\"")
    }
    fn role(s: &mut String, role: &str, name: &str, members: &str) {
        let _ = writeln!(
            s,
            "    \"role_{role}\" [shape=box, style=rounded, label=\"{name}\\n{members}\"];"
        );
    }
    fn user(s: &mut String, user: &str, name: &str) {
        let _ = writeln!(s, "    \"user_{user}\" [shape=ellipse, label=\"{name}\"];");
    }
    fn holds(s: &mut String, user: &str, role: &str) {
        let _ = writeln!(
            s,
            "    \"user_{user}\" -> \"role_{role}\" [style=dotted, arrowhead=none];"
        );
    }
    fn reports_to(s: &mut String, user: &str, manager: &str) {
        let _ = writeln!(
            s,
            "    \"user_{user}\" -> \"user_{manager}\" [label=\"reports to\"];"
        );
    }
    fn trigger(s: &mut String, node: &str, when: &str) {
        let _ = writeln!(
            s,
            "  \"{node}\" [shape=cds, style=filled, fillcolor=\"#eef3ff\", label=\"when {when}\"];"
        );
    }
    fn refusal(s: &mut String, node: &str) {
        let _ = writeln!(
            s,
            "  \"{node}\" [shape=octagon, style=filled, fillcolor=\"#ffe0e0\", label=\"the change is refused\"];"
        );
    }
    fn target(s: &mut String, node: &str, label: &str) {
        let _ = writeln!(s, "  \"{node}\" [shape=note, label=\"{label}\"];");
    }
    fn edge(s: &mut String, from: &str, to: &str, label: &str, refusal: bool) {
        let color = if refusal { ", color=red" } else { "" };
        let _ = writeln!(s, "  \"{from}\" -> \"{to}\" [label=\"{label}\"{color}];");
    }
}

/// Mermaid flowchart.
struct Mermaid;

impl Diagram for Mermaid {
    const HEAD: &'static str = "flowchart LR\n  subgraph organisation\n";
    const ORG_END: &'static str = "  end\n";
    const TAIL: &'static str = "";
    const BREAK: &'static str = "<br/>";
    fn text(s: &str) -> String {
        s.replace('"', "#quot;")
    }
    fn role(s: &mut String, role: &str, name: &str, members: &str) {
        let _ = writeln!(s, "    role_{role}[\"{name}<br/>{members}\"]");
    }
    fn user(s: &mut String, user: &str, name: &str) {
        let _ = writeln!(s, "    user_{user}([\"{name}\"])");
    }
    fn holds(s: &mut String, user: &str, role: &str) {
        let _ = writeln!(s, "    user_{user} -.- role_{role}");
    }
    fn reports_to(s: &mut String, user: &str, manager: &str) {
        let _ = writeln!(s, "    user_{user} -->|reports to| user_{manager}");
    }
    fn trigger(s: &mut String, node: &str, when: &str) {
        let _ = writeln!(s, "  {node}{{{{\"when {when}\"}}}}");
    }
    fn refusal(s: &mut String, node: &str) {
        let _ = writeln!(s, "  {node}[[\"the change is refused\"]]");
    }
    fn target(s: &mut String, node: &str, label: &str) {
        let _ = writeln!(s, "  {node}[/\"{label}\"/]");
    }
    fn edge(s: &mut String, from: &str, to: &str, label: &str, _refusal: bool) {
        let _ = writeln!(s, "  {from} -->|\"{label}\"| {to}");
    }
}

/// Graphviz DOT.
pub fn to_dot(org: &Org, edges: &[Edge]) -> String {
    render::<Dot>(org, edges)
}

/// Mermaid flowchart.
pub fn to_mermaid(org: &Org, edges: &[Edge]) -> String {
    render::<Mermaid>(org, edges)
}

// ---------------------------------------------------------------------------------------------------- the table

/// Why a recipient reaches the user `key`, in plain words, if it does.
fn reaches(r: &Recipient, key: &str, org: &Org, trigger: &str) -> Option<String> {
    match r {
        Recipient::Role(role) => org
            .members(role)
            .contains(&key)
            .then(|| format!("as {role}")),
        Recipient::UserKey(k) => (k == key).then(|| "named in the rule".to_string()),
        Recipient::ManagerOf(inner) => {
            let reports: Vec<&str> = org
                .users
                .iter()
                .filter(|u| u.manager.as_deref() == Some(key))
                .filter(|u| match &**inner {
                    Recipient::Owner | Recipient::Assignee => true,
                    other => reaches(other, &u.key, org, trigger).is_some(),
                })
                .map(|u| u.name.as_str())
                .collect();
            if reports.is_empty() {
                return None;
            }
            let whose = match &**inner {
                Recipient::Owner => owner_words(trigger),
                Recipient::Assignee => "the request's assignee",
                _ => "it",
            };
            Some(format!(
                "when {whose} reports to them ({})",
                reports.join(", ")
            ))
        }
        Recipient::FirstOf(all) => {
            for (i, a) in all.iter().enumerate() {
                if let Some(why) = reaches(a, key, org, trigger) {
                    if i == 0 {
                        return Some(why);
                    }
                    let before: Vec<String> = all[..i]
                        .iter()
                        .map(|b| who_words(b, org, trigger))
                        .collect();
                    return Some(format!("{why}, when {} is nobody", before.join(" and ")));
                }
            }
            None
        }
        _ => None,
    }
}

fn md(s: &str) -> String {
    s.replace('|', "\\|")
}

fn when_cell(e: &Edge) -> String {
    let cond = e.condition_words();
    if cond.is_empty() {
        md(&e.when)
    } else {
        md(&format!("{}, {cond}", e.when))
    }
}

/// "Who gets what, when": one table per person of the organisation, then what reaches people relative to a
/// record (the owner, the assignee, the customer's contacts), then the changes the rules refuse. Markdown.
pub fn to_table(org: &Org, edges: &[Edge]) -> String {
    let mut s = String::from("# Who gets what, when\n\n");
    s.push_str(
        "Drawn from the rules themselves: each row is one action a rule takes, when it takes it, and why it reaches \
         that person.\n",
    );
    let header = "\n| when | what | why them | rule |\n| --- | --- | --- | --- |\n";
    for u in &org.users {
        let _ = write!(s, "\n## {} (`{}`)", md(&u.name), u.key);
        if !u.roles.is_empty() {
            let _ = write!(s, " — {}", u.roles.join(", "));
        }
        s.push('\n');
        let rows: Vec<String> = edges
            .iter()
            .filter_map(|e| {
                let why = reaches(e.recipient.as_ref()?, &u.key, org, &e.trigger)?;
                Some(format!(
                    "| {} | {} | {} | {} |\n",
                    when_cell(e),
                    md(&e.what),
                    md(&why),
                    e.rule
                ))
            })
            .collect();
        if rows.is_empty() {
            s.push_str("\nNothing, by name or role.\n");
        } else {
            s.push_str(header);
            rows.iter().for_each(|r| s.push_str(r));
        }
    }
    let relative: Vec<&Edge> = edges
        .iter()
        .filter(|e| {
            !e.is_refusal()
                && !org.users.iter().any(|u| {
                    e.recipient
                        .as_ref()
                        .and_then(|r| reaches(r, &u.key, org, &e.trigger))
                        .is_some()
                })
        })
        .collect();
    if !relative.is_empty() {
        s.push_str(
            "\n## Whoever the record names\n\nThe lead's owner, the customer's account owner, the campaign's owner, \
             the request's assignee, the customer's contacts.\n",
        );
        s.push_str("\n| when | what | who | rule |\n| --- | --- | --- | --- |\n");
        for e in relative {
            let who = e
                .recipient
                .as_ref()
                .map(|r| who_words(r, org, &e.trigger))
                .unwrap_or_else(|| e.recipient_text.clone());
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} |",
                when_cell(e),
                md(&e.what),
                md(&who),
                e.rule
            );
        }
    }
    let refusals: Vec<&Edge> = edges.iter().filter(|e| e.is_refusal()).collect();
    if !refusals.is_empty() {
        s.push_str(
            "\n## Changes the rules refuse\n\n| when | refused | rule |\n| --- | --- | --- |\n",
        );
        for e in refusals {
            let _ = writeln!(s, "| {} | {} | {} |", when_cell(e), md(&e.what), e.rule);
        }
    }
    s
}
