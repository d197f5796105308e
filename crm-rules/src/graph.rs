//! The communication schema as a diagram: roles and their people, reporting lines, and which triggers reach whom.
//!
//! The "who is told" edges come from evaluating the rules on their fixtures, so the diagram shows what the rules
//! actually decide, not what someone believes they do.

use crate::fixtures::Org;
use serde::Serialize;
use std::collections::BTreeSet;
use std::fmt::Write as _;

/// One "trigger reaches recipient" edge.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Reach {
    /// The trigger (`lead_entered`, `lead_idle`).
    pub trigger: String,
    /// The rule.
    pub rule: String,
    /// The action (`notify`, `send_email`, …).
    pub action: String,
    /// The recipient as written (`owner`, `role:accounting`, `manager:owner`).
    pub recipient: String,
}

fn id(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// The recipient node an edge points at: roles by name, people-relative recipients as themselves.
fn target(recipient: &str) -> String {
    recipient
        .strip_prefix("role:")
        .unwrap_or(recipient)
        .to_string()
}

/// Graphviz DOT.
pub fn to_dot(org: &Org, reach: &BTreeSet<Reach>) -> String {
    let mut s = String::from("digraph schema {\n  rankdir=LR;\n  node [fontname=\"Helvetica\"];\n");
    s.push_str("  subgraph cluster_org {\n    label=\"organisation\";\n");
    for r in &org.roles {
        let members: Vec<_> = org
            .users
            .iter()
            .filter(|u| u.roles.contains(r))
            .map(|u| u.name.as_str())
            .collect();
        let _ = writeln!(
            s,
            "    \"role_{}\" [shape=box, style=rounded, label=\"{}\\n{}\"];",
            id(r),
            r,
            members.join(", ")
        );
    }
    for u in &org.users {
        let _ = writeln!(
            s,
            "    \"user_{}\" [shape=ellipse, label=\"{}\"];",
            id(&u.key),
            u.name
        );
        for r in &u.roles {
            let _ = writeln!(
                s,
                "    \"user_{}\" -> \"role_{}\" [style=dotted, arrowhead=none];",
                id(&u.key),
                id(r)
            );
        }
        if let Some(m) = &u.manager {
            let _ = writeln!(
                s,
                "    \"user_{}\" -> \"user_{}\" [label=\"reports to\"];",
                id(&u.key),
                id(m)
            );
        }
    }
    s.push_str("  }\n");
    let triggers: BTreeSet<_> = reach.iter().map(|r| r.trigger.clone()).collect();
    for t in &triggers {
        let _ = writeln!(s, "  \"trigger_{}\" [shape=cds, label=\"{}\"];", id(t), t);
    }
    for r in reach {
        let t = target(&r.recipient);
        let node = if org.roles.contains(&t) {
            format!("role_{}", id(&t))
        } else {
            let _ = writeln!(s, "  \"who_{}\" [shape=note, label=\"{}\"];", id(&t), t);
            format!("who_{}", id(&t))
        };
        let _ = writeln!(
            s,
            "  \"trigger_{}\" -> \"{}\" [label=\"{} ({})\"];",
            id(&r.trigger),
            node,
            r.action,
            r.rule
        );
    }
    s.push_str("}\n");
    s
}

/// Mermaid flowchart.
pub fn to_mermaid(org: &Org, reach: &BTreeSet<Reach>) -> String {
    let mut s = String::from("flowchart LR\n  subgraph organisation\n");
    for r in &org.roles {
        let _ = writeln!(s, "    role_{}[\"{}\"]", id(r), r);
    }
    for u in &org.users {
        let _ = writeln!(s, "    user_{}([\"{}\"])", id(&u.key), u.name);
        for r in &u.roles {
            let _ = writeln!(s, "    user_{} -.- role_{}", id(&u.key), id(r));
        }
        if let Some(m) = &u.manager {
            let _ = writeln!(s, "    user_{} -->|reports to| user_{}", id(&u.key), id(m));
        }
    }
    s.push_str("  end\n");
    let triggers: BTreeSet<_> = reach.iter().map(|r| r.trigger.clone()).collect();
    for t in &triggers {
        let _ = writeln!(s, "  trigger_{}{{{{\"{}\"}}}}", id(t), t);
    }
    for r in reach {
        let t = target(&r.recipient);
        let node = if org.roles.contains(&t) {
            format!("role_{}", id(&t))
        } else {
            let _ = writeln!(s, "  who_{}[/\"{}\"/]", id(&t), t);
            format!("who_{}", id(&t))
        };
        let _ = writeln!(
            s,
            "  trigger_{} -->|\"{} ({})\"| {}",
            id(&r.trigger),
            r.action,
            r.rule,
            node
        );
    }
    s
}
