//! Actions as data: who a rule tells ([`Recipient`]) and what it decides ([`Action`], [`Decision`]), and the
//! [`RuleEngine`] port.

use super::*;

/// Who an action is for, before the [`Directory`] resolves it to people.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum Recipient {
    /// One user.
    Person(UserId),
    /// Every member of a role (`sales_manager`, `accounting`, …).
    Role(String),
    /// The owner of the lead (or, without a lead, the partner's account owner; without either, the campaign's
    /// owner).
    Owner,
    /// The assignee of the request.
    Assignee,
    /// The manager of whoever the inner recipient resolves to (one step up the reporting line).
    ManagerOf(Box<Recipient>),
    /// The partner's contacts with this role (`primary` = every contact with an e-mail address).
    PartnerContact(String),
    /// An e-mail address.
    Email(String),
    /// One user named by the host's key for them (`user:ana`), resolved through [`Directory::user_by_key`].
    UserKey(String),
    /// The first alternative that reaches somebody (`manager:owner or role:management`): a fallback for when
    /// nobody is above in the reporting line, a role is empty, a record has no owner.
    FirstOf(Vec<Recipient>),
}

impl Recipient {
    /// Parses the compact form scripts use: `owner`, `assignee`, `manager:owner`, `role:accounting`,
    /// `contact:purchasing`, `user:<uuid>`, `user:<key>`, an e-mail address, or a bare role name; alternatives
    /// joined by ` or ` are tried in order (`manager:owner or management`).
    pub fn parse(s: &str) -> Result<Self> {
        let s = s.trim();
        if s.split_whitespace().any(|w| w == "or") {
            let words: Vec<&str> = s.split_whitespace().collect();
            let alternatives = words
                .split(|w| *w == "or")
                .map(|alt| {
                    if alt.is_empty() {
                        return Err(Error::invalid(
                            "recipient",
                            format!("`{s}`: name a recipient on each side of `or`"),
                        ));
                    }
                    Self::parse(&alt.join(" "))
                })
                .collect::<Result<Vec<_>>>()?;
            return Ok(Self::FirstOf(alternatives));
        }
        if s.is_empty() {
            return Err(Error::invalid(
                "recipient",
                "empty: name a role, a person or `owner`",
            ));
        }
        if let Some(rest) = s.strip_prefix("manager:") {
            return Ok(Self::ManagerOf(Box::new(Self::parse(rest)?)));
        }
        if let Some(rest) = s.strip_prefix("role:") {
            return Ok(Self::Role(rest.trim().to_string()));
        }
        if let Some(rest) = s.strip_prefix("contact:") {
            return Ok(Self::PartnerContact(rest.trim().to_string()));
        }
        if let Some(rest) = s.strip_prefix("user:") {
            let rest = rest.trim();
            if let Ok(id) = rest.parse() {
                return Ok(Self::Person(id));
            }
            if rest.is_empty()
                || !rest
                    .chars()
                    .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
            {
                return Err(Error::invalid(
                    "recipient",
                    format!("`{s}`: name a user by their key (`user:ana`)"),
                ));
            }
            return Ok(Self::UserKey(rest.to_string()));
        }
        Ok(match s {
            "owner" => Self::Owner,
            "assignee" => Self::Assignee,
            _ if s.contains('@') => {
                if !email_address::EmailAddress::is_valid(s) {
                    return Err(Error::invalid(
                        "recipient",
                        format!("`{s}` is not a valid e-mail address"),
                    ));
                }
                Self::Email(s.to_string())
            }
            _ => Self::Role(s.to_string()),
        })
    }
}

impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Person(u) => write!(f, "user:{u}"),
            Self::Role(r) => write!(f, "role:{r}"),
            Self::Owner => f.write_str("owner"),
            Self::Assignee => f.write_str("assignee"),
            Self::ManagerOf(r) => write!(f, "manager:{r}"),
            Self::PartnerContact(r) => write!(f, "contact:{r}"),
            Self::Email(e) => f.write_str(e),
            Self::UserKey(k) => write!(f, "user:{k}"),
            Self::FirstOf(all) => {
                for (i, r) in all.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" or ")?;
                    }
                    write!(f, "{r}")?;
                }
                Ok(())
            }
        }
    }
}

/// What a rule decided, as data. Nothing happens until the dispatcher delivers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// An in-app notification.
    Notify {
        /// To whom.
        to: Recipient,
        /// Subject line.
        subject: String,
        /// Text.
        body: String,
    },
    /// An e-mail rendered from a template.
    SendEmail {
        /// To whom.
        to: Recipient,
        /// The template's name.
        template: String,
        /// The template's variables (the trigger's views are added as `lead`, `partner`, `request`).
        vars: serde_json::Value,
        /// Why: a marketing e-mail goes only to contacts who consent to it.
        #[serde(default, skip_serializing_if = "crate::consent::Purpose::is_service")]
        purpose: crate::consent::Purpose,
    },
    /// Open a request (task) for someone.
    OpenRequest {
        /// Who must do it.
        assignee: Recipient,
        /// Title.
        title: String,
        /// Kind (`quotation`, `call`, …).
        kind: Option<String>,
        /// Due this many hours after the trigger.
        due_in_hours: Option<u32>,
    },
    /// Give the lead to someone else.
    Reassign {
        /// The new owner.
        to: Recipient,
    },
    /// Tag the lead.
    AddTag {
        /// The tag.
        tag: String,
    },
    /// Remind the owner to follow up later.
    ScheduleFollowUp {
        /// In this many hours.
        in_hours: u32,
        /// What to do.
        note: String,
    },
    /// Notify the manager of `from` (one step up the reporting line).
    Escalate {
        /// Whose manager.
        from: Recipient,
        /// Subject line.
        subject: String,
        /// Text.
        body: String,
    },
}

variant_names! {
    /// The action's name (`notify`, `send_email`, …).
    pub fn name for Action {
        Notify => "notify",
        SendEmail => "send_email",
        OpenRequest => "open_request",
        Reassign => "reassign",
        AddTag => "add_tag",
        ScheduleFollowUp => "schedule_follow_up",
        Escalate => "escalate",
    }
}

impl Action {
    /// Who the action is for, unresolved.
    pub fn recipient(&self) -> Recipient {
        match self {
            Self::Notify { to, .. } | Self::SendEmail { to, .. } | Self::Reassign { to } => {
                to.clone()
            }
            Self::OpenRequest { assignee, .. } => assignee.clone(),
            Self::AddTag { .. } | Self::ScheduleFollowUp { .. } => Recipient::Owner,
            Self::Escalate { from, .. } => Recipient::ManagerOf(Box::new(from.clone())),
        }
    }
}

/// An action with the rule that decided it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecidedAction {
    /// The rule's name.
    pub rule: String,
    /// The action.
    pub action: Action,
}

/// A guard's refusal of the triggering change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// The rule's name.
    pub rule: String,
    /// Its reason, for the user.
    pub reason: String,
}

/// A rule that failed while evaluating (script error, over a limit, unknown role).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleFailure {
    /// The rule's name.
    pub rule: String,
    /// Where (file:line:column) and why.
    pub message: String,
}

/// What one rule did with one trigger: for `explain`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleTrace {
    /// The rule's name.
    pub rule: String,
    /// The entry point called, or `None` when the rule has none for this trigger.
    pub entry_point: Option<String>,
    /// Whether it decided anything (actions or a refusal).
    pub matched: bool,
    /// How many actions it decided.
    pub actions: usize,
    /// Its refusal reason or failure message, if any.
    pub note: Option<String>,
    /// Evaluation time in microseconds.
    pub micros: u64,
}

/// The engine's answer for one trigger.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// The actions, in rule order then decision order.
    pub actions: Vec<DecidedAction>,
    /// The first refusal, if a guard refused (only meaningful for events of a change being made).
    pub refusal: Option<Refusal>,
    /// Rules that failed; the others still decided.
    pub failures: Vec<RuleFailure>,
    /// One entry per rule consulted.
    pub trace: Vec<RuleTrace>,
}

/// Evaluates the communication rules. Implementations must be pure: no I/O, no store handle, the same trigger and
/// views always give the same decision.
pub trait RuleEngine: Send + Sync + Debug {
    /// Decides what to do about `trigger`. Never fails as a whole: a failing rule is reported in
    /// [`Decision::failures`] and the other rules still run.
    fn evaluate(&self, trigger: &Trigger, views: &Views) -> Decision;

    /// The timers the rule set reacts to (the scheduler looks for candidates of these only).
    fn timers(&self) -> Vec<TimerTrigger> {
        Vec::new()
    }

    /// The timers `tenant`'s rules react to: an engine with one scheme per tenant answers for that tenant's
    /// scheme; by default, [`RuleEngine::timers`].
    fn timers_for(&self, tenant: TenantId) -> Vec<TimerTrigger> {
        let _ = tenant;
        self.timers()
    }
}
