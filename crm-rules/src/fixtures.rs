//! Rule fixtures: an event (or timer) in, the expected actions out, written by consultants in TOML or JSON.
//!
//! ```toml
//! [[case]]
//! name = "a new lead notifies its owner"
//! event = "lead_entered"                 # or: timer = "lead_idle:3"
//! fields = { title = "Solar roof", owner = "@ana" }   # the event's own fields
//! lead = { title = "Solar roof", owner = "@ana" }     # the lead as it is after the change (defaults fill the rest)
//! expect = [ { action = "notify", to = "owner", subject = "New lead: Solar roof", people = ["ana"] } ]
//! ```
//!
//! `@key` names a user (or partner) of the organisation file; `people` lists who the action resolves to. An
//! expected action compares only the keys it gives. A case may expect `refused = "reason"` (a guard) or
//! `failed = "text"` (a rule failure containing the text) instead of, or besides, actions. Commerce triggers take
//! `document = { … }` (an invoice or payment, or the document of a commerce timer) and `campaign = { … }`.

use crate::engine::RhaiRuleEngine;
use crate::error::RulesError;
use chrono::Datelike;
use chrono::{TimeZone, Utc};
use crm_core::actor::{Actor, Source};
use crm_core::commerce::{CampaignStatus, Channel, Document, DocumentKind, Period};
use crm_core::comms::{
    resolve, Action, Decision, Directory, DirectoryContact, DirectoryUser, RuleEngine,
    StaticDirectory, TimerFiring, TimerTrigger, Trigger, Views,
};
use crm_core::event::{DomainEvent, EventKind, RequestStatus, Subject};
use crm_core::id::{
    CampaignId, DocumentId, EventId, LeadId, PartnerId, PipelineId, RequestId, StageId, TenantId,
    UserId,
};
use crm_core::lead::{Lead, LeadSource, LeadStatus, Priority};
use crm_core::partner::NewPartner;
use crm_core::request::Request;
use crm_core::time::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::path::Path;
use uuid::Uuid;

/// A stable UUID for a key (the same key always names the same record in fixtures).
pub fn key_uuid(kind: &str, key: &str) -> Uuid {
    // FNV-1a over the kind and key, twice with different offsets, then marked as a v7-shaped UUID.
    let h = |seed: u64| {
        let mut x = seed;
        for b in kind.bytes().chain([0u8]).chain(key.bytes()) {
            x ^= b as u64;
            x = x.wrapping_mul(0x100000001b3);
        }
        x
    };
    let v = ((h(0xcbf29ce484222325) as u128) << 64) | h(0x84222325cbf29ce4) as u128;
    let v = (v & !(0xF000u128 << 64)) | (0x7000u128 << 64);
    let v = (v & !(0xC000_0000_0000_0000u128)) | 0x8000_0000_0000_0000u128;
    Uuid::from_u128(v)
}

// ---------------------------------------------------------------------------------------------------- org

/// A user in an organisation file.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct OrgUser {
    /// Short key (`ana`), used as `@ana` in fixtures.
    pub key: String,
    /// Display name.
    pub name: String,
    /// E-mail.
    pub email: Option<String>,
    /// Roles.
    #[serde(default)]
    pub roles: Vec<String>,
    /// The manager's key.
    pub manager: Option<String>,
}

/// A partner contact in an organisation file.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct OrgContact {
    /// The partner's key.
    pub partner: String,
    /// The contact's role.
    pub role: String,
    /// Name.
    pub name: String,
    /// E-mail.
    pub email: String,
}

/// The organisation a rule set is written for: roles, people, reporting lines, partner contacts.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Org {
    /// Roles (in diagram order).
    #[serde(default)]
    pub roles: Vec<String>,
    /// Users.
    #[serde(default)]
    pub users: Vec<OrgUser>,
    /// Partner contacts.
    #[serde(default)]
    pub contacts: Vec<OrgContact>,
}

impl Org {
    /// The fixtures' tenant.
    pub fn tenant() -> TenantId {
        TenantId::from_uuid(key_uuid("tenant", "fixtures"))
    }

    /// Reads an organisation file (TOML or JSON by extension).
    pub fn load(path: &Path) -> Result<Self, RulesError> {
        let text = std::fs::read_to_string(path).map_err(|e| RulesError::io(path, e))?;
        let org: Org = parse(path, &text)?;
        for u in &org.users {
            if let Some(m) = &u.manager {
                if !org.users.iter().any(|o| &o.key == m) {
                    return Err(RulesError::Fixture {
                        file: path.display().to_string(),
                        message: format!("user `{}` has manager `{m}`, who is not a user", u.key),
                    });
                }
            }
            if let Some(r) = u.roles.iter().find(|r| !org.roles.contains(r)) {
                return Err(RulesError::Fixture {
                    file: path.display().to_string(),
                    message: format!("user `{}` has role `{r}`, which is not in `roles`", u.key),
                });
            }
        }
        Ok(org)
    }

    /// The keys of the users with `role`.
    pub fn members(&self, role: &str) -> Vec<&str> {
        self.users
            .iter()
            .filter(|u| u.roles.iter().any(|r| r == role))
            .map(|u| u.key.as_str())
            .collect()
    }

    /// The user id of a key.
    pub fn user_id(key: &str) -> UserId {
        UserId::from_uuid(key_uuid("user", key))
    }

    /// The partner id of a key.
    pub fn partner_id(key: &str) -> PartnerId {
        PartnerId::from_uuid(key_uuid("partner", key))
    }

    /// The key of a user id, if it is one of ours.
    pub fn key_of(&self, id: UserId) -> Option<&str> {
        self.users
            .iter()
            .find(|u| Self::user_id(&u.key) == id)
            .map(|u| u.key.as_str())
    }

    /// The organisation as a directory.
    pub fn directory(&self) -> StaticDirectory {
        let mut d = StaticDirectory::new(Self::tenant());
        d.roles = self.roles.iter().cloned().collect();
        for u in &self.users {
            let id = Self::user_id(&u.key);
            d.keys.insert(u.key.clone(), id);
            d.users.push(DirectoryUser {
                id,
                name: u.name.clone(),
                email: u.email.clone(),
                roles: u.roles.iter().cloned().collect(),
                manager: u.manager.as_deref().map(Self::user_id),
            });
        }
        d.contacts = self
            .contacts
            .iter()
            .map(|c| DirectoryContact {
                partner: Self::partner_id(&c.partner),
                role: c.role.clone(),
                name: c.name.clone(),
                email: Some(c.email.clone()),
            })
            .collect();
        d
    }
}

fn parse<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T, RulesError> {
    let file = path.display().to_string();
    if path.extension().and_then(|e| e.to_str()) == Some("json") {
        serde_json::from_str(text).map_err(|e| RulesError::Fixture {
            file,
            message: e.to_string(),
        })
    } else {
        toml::from_str(text).map_err(|e| RulesError::Fixture {
            file,
            message: e.to_string(),
        })
    }
}

// ---------------------------------------------------------------------------------------------------- cases

/// One fixture case.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Case {
    /// What the case shows.
    pub name: String,
    /// The event kind (`lead_entered`, `lead_stage_moved`, …).
    pub event: Option<String>,
    /// Or a timer (`lead_idle:3`).
    pub timer: Option<String>,
    /// The event's own fields.
    #[serde(default)]
    pub fields: serde_json::Map<String, Value>,
    /// Who acted (`@key` for a user, `portal`, `system`); a user by default.
    pub actor: Option<String>,
    /// The lead after the change (fields over defaults).
    pub lead: Option<serde_json::Map<String, Value>>,
    /// The partner (fields over defaults; `key` names it).
    pub partner: Option<serde_json::Map<String, Value>>,
    /// The request (fields over defaults).
    pub request: Option<serde_json::Map<String, Value>>,
    /// The document (fields over defaults: an invoice of the partner; for `open_item_overdue` its whole total is
    /// still owed).
    #[serde(default)]
    pub document: Option<serde_json::Map<String, Value>>,
    /// The campaign (fields over defaults).
    #[serde(default)]
    pub campaign: Option<serde_json::Map<String, Value>>,
    /// The contract (fields over defaults: a contract of the partner worth 100 EUR, starting on the test day,
    /// open-ended; set `term` to give it a renewal date).
    #[serde(default)]
    pub contract: Option<serde_json::Map<String, Value>>,
    /// The meeting (fields over defaults: the partner's, organised by the test's sample user, starting an hour
    /// after the test's instant, scheduled, without attendees).
    #[serde(default)]
    pub meeting: Option<serde_json::Map<String, Value>>,
    /// Expected actions, in order.
    #[serde(default)]
    pub expect: Vec<serde_json::Map<String, Value>>,
    /// Expected refusal reason.
    pub refused: Option<String>,
    /// Expected failure text.
    pub failed: Option<String>,
    /// Only this rule's decisions count (the other rules still run, but their actions are not compared).
    pub rule: Option<String>,
}

/// The keys a case may have.
pub const CASE_KEYS: &[&str] = &[
    "name", "event", "timer", "fields", "actor", "lead", "partner", "request", "document",
    "campaign", "contract", "meeting", "expect", "refused", "failed", "rule",
];

/// The keys an expected action may have: `action`, `rule`, `people` and the fields of the actions.
pub const EXPECT_KEYS: &[&str] = &[
    "action",
    "rule",
    "people",
    "to",
    "subject",
    "body",
    "template",
    "vars",
    "assignee",
    "title",
    "kind",
    "due_in_hours",
    "tag",
    "in_hours",
    "note",
    "from",
];

/// The action names fixtures and `explain` show, and the script function that decides each.
pub const ACTION_NAMES: &[(&str, &str)] = &[
    ("notify", "notify()"),
    ("send_email", "email() or marketing_email()"),
    ("open_request", "open_request()"),
    ("escalate", "escalate()"),
    ("reassign", "reassign()"),
    ("add_tag", "add_tag()"),
    ("schedule_follow_up", "follow_up()"),
];

/// A fixture file: `[[case]]` entries.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct FixtureFile {
    /// The cases.
    #[serde(default, rename = "case")]
    pub cases: Vec<Case>,
}

/// Reads a fixture file (TOML or JSON).
///
/// A key the format does not know (at the top, in a case, in `fields`, `lead`, `partner`, `request` or an expected
/// action) is an error naming the file, the case and the key, with the likely one: a misspelt `expct` would
/// otherwise make a case that expects nothing and always passes.
pub fn load_fixtures(path: &Path) -> Result<FixtureFile, RulesError> {
    let text = std::fs::read_to_string(path).map_err(|e| RulesError::io(path, e))?;
    let raw: Value = parse(path, &text)?;
    let mut problems = unknown_keys(path, &raw);
    let file = serde_json::from_value::<FixtureFile>(raw).map_err(|e| RulesError::Fixture {
        file: path.display().to_string(),
        message: e.to_string(),
    });
    match (problems.len(), file) {
        (0, f) => f,
        (1, _) => Err(problems.remove(0)),
        _ => Err(RulesError::Many(problems)),
    }
}

/// The keys of a lead, partner, request, document, campaign and contract as fixtures write them (`key` names a
/// partner).
fn record_keys() -> [(&'static str, Vec<String>); 7] {
    let keys = |v: Value| -> Vec<String> {
        match v {
            Value::Object(m) => m.keys().cloned().collect(),
            _ => Vec::new(),
        }
    };
    let case = Case {
        name: "keys".into(),
        event: Some("lead_won".into()),
        timer: None,
        fields: Default::default(),
        actor: None,
        lead: Some(Default::default()),
        partner: Some(Default::default()),
        request: Some(Default::default()),
        document: Some(Default::default()),
        campaign: Some(Default::default()),
        contract: Some(Default::default()),
        meeting: Some(Default::default()),
        expect: Vec::new(),
        refused: None,
        failed: None,
        rule: None,
    };
    let views = build_case(&case).map(|(_, v)| v).unwrap_or_default();
    let mut partner = keys(json!(views.partner));
    partner.push("key".into());
    [
        ("lead", keys(json!(views.lead))),
        ("partner", partner),
        ("request", keys(json!(views.request))),
        ("document", keys(json!(views.document))),
        ("campaign", keys(json!(views.campaign))),
        ("contract", keys(json!(views.contract))),
        ("meeting", keys(json!(views.meeting))),
    ]
}

fn unknown_keys(path: &Path, raw: &Value) -> Vec<RulesError> {
    let mut out = Vec::new();
    let mut bad = |case: Option<&str>, message: String| {
        out.push(RulesError::Fixture {
            file: path.display().to_string(),
            message: match case {
                Some(c) => format!("case \"{c}\": {message}"),
                None => message,
            },
        })
    };
    let unknown = |key: &str, known: &[&str], what: &str| -> String {
        format!(
            "unknown key `{key}`{}{}",
            if what.is_empty() {
                String::new()
            } else {
                format!(" in `{what}`")
            },
            crate::suggest::did_you_mean(key, known.iter().copied())
        )
    };
    let Value::Object(top) = raw else {
        bad(None, "a fixture file holds `[[case]]` entries".into());
        return out;
    };
    for k in top.keys().filter(|k| *k != "case") {
        bad(None, unknown(k, &["case"], ""));
    }
    let records = record_keys();
    let cases = match top.get("case") {
        Some(Value::Array(a)) => a.as_slice(),
        _ => &[],
    };
    for (i, c) in cases.iter().enumerate() {
        let Value::Object(c) = c else { continue };
        let name = c
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("#{}", i + 1));
        let name = Some(name.as_str());
        for k in c.keys().filter(|k| !CASE_KEYS.contains(&k.as_str())) {
            let mut m = unknown(k, CASE_KEYS, "");
            if k == "source" {
                m.push_str(
                    " (the channel follows the actor: write `actor = \"portal\"` for self-service, \
                     `actor = \"@key\"` for a user or `actor = \"system\"`)",
                );
            }
            bad(name, m);
        }
        for (what, known) in &records {
            if let Some(Value::Object(m)) = c.get(*what) {
                let known: Vec<&str> = known.iter().map(String::as_str).collect();
                for k in m.keys().filter(|k| !known.contains(&k.as_str())) {
                    bad(name, unknown(k, &known, what));
                }
            }
        }
        if let Some(Value::Object(fields)) = c.get("fields") {
            match c.get("event").and_then(Value::as_str) {
                Some(event) => {
                    let stage = StageId::from_uuid(key_uuid("stage", "current"));
                    if let Some(Value::Object(own)) =
                        crate::views::sample_event(event, stage).map(|k| json!(k))
                    {
                        let known: Vec<&str> = own
                            .keys()
                            .map(String::as_str)
                            .filter(|k| *k != "type")
                            .collect();
                        for k in fields.keys().filter(|k| !known.contains(&k.as_str())) {
                            bad(name, unknown(k, &known, "fields"));
                        }
                    }
                }
                None if !fields.is_empty() => bad(
                    name,
                    "a timer has no `fields`: give the records (`lead`, `request`) instead".into(),
                ),
                None => {}
            }
        }
        if let Some(Value::Array(expect)) = c.get("expect") {
            for e in expect {
                let Value::Object(e) = e else { continue };
                for k in e.keys().filter(|k| !EXPECT_KEYS.contains(&k.as_str())) {
                    bad(name, unknown(k, EXPECT_KEYS, "expect"));
                }
                if let Some(a) = e.get("action").and_then(Value::as_str) {
                    if !ACTION_NAMES.iter().any(|(n, _)| *n == a) {
                        let by_function = ACTION_NAMES
                            .iter()
                            .find(|(_, f)| f.trim_end_matches("()") == a)
                            .map(|(n, f)| format!(" (`{f}` shows as `{n}`)"));
                        let hint = by_function.unwrap_or_else(|| {
                            crate::suggest::did_you_mean(a, ACTION_NAMES.iter().map(|(n, _)| *n))
                        });
                        bad(name, format!("unknown action `{a}`{hint}"));
                    }
                }
            }
        }
    }
    out
}

/// What is wrong with the cases of a fixture file, each naming the file and the case: an unknown event or timer
/// (with the likely name).
///
/// With the organisation, every `@key` and every name in `people` must be one of its users; with the rule names, a
/// case's `rule` must be one of them.
pub fn check_fixtures(
    path: &Path,
    file: &FixtureFile,
    org: Option<&Org>,
    rules: Option<&[String]>,
) -> Vec<RulesError> {
    let mut out = Vec::new();
    for case in &file.cases {
        let mut bad = |message: String| {
            out.push(RulesError::Fixture {
                file: path.display().to_string(),
                message: format!("case \"{}\": {message}", case.name),
            })
        };
        if let (Some(rule), Some(rules)) = (&case.rule, rules) {
            if !rules.contains(rule) {
                let hint = crate::suggest::did_you_mean(rule, rules.iter().map(String::as_str));
                bad(format!(
                    "unknown rule `{rule}`{hint}; the rules are: {}",
                    rules.join(", ")
                ));
            }
        }
        if let Some(org) = org {
            let users: Vec<&str> = org.users.iter().map(|u| u.key.as_str()).collect();
            let mut refs = Vec::new();
            if let Some(a) = case.actor.as_deref().filter(|a| a.starts_with('@')) {
                refs.push(a.to_string());
            }
            for m in [
                Some(&case.fields),
                case.lead.as_ref(),
                case.request.as_ref(),
                case.partner.as_ref(),
                case.document.as_ref(),
                case.campaign.as_ref(),
            ]
            .into_iter()
            .flatten()
            {
                user_refs(&Value::Object(m.clone()), "", &mut refs);
            }
            for r in refs {
                let key = &r[1..];
                if !users.contains(&key) {
                    let hint = crate::suggest::closest(key, users.iter().copied())
                        .map(|k| format!(" (did you mean `@{k}`?)"))
                        .unwrap_or_default();
                    bad(format!(
                        "unknown person `{r}`{hint}; the people of org.toml are: {}",
                        users.join(", ")
                    ));
                }
            }
            for e in &case.expect {
                let Some(Value::Array(people)) = e.get("people") else {
                    continue;
                };
                for p in people.iter().filter_map(Value::as_str) {
                    if p.contains('@') || p.starts_with("error:") || users.contains(&p) {
                        continue;
                    }
                    let hint = crate::suggest::did_you_mean(p, users.iter().copied());
                    bad(format!(
                        "unknown person `{p}` in `people`{hint}; the people of org.toml are: {}",
                        users.join(", ")
                    ));
                }
            }
        }
        match (&case.event, &case.timer) {
            (Some(e), None) => {
                if let Err(m) = check_event_name(e) {
                    bad(m);
                }
            }
            (None, Some(t)) => {
                if let Err(e) = TimerTrigger::parse(t) {
                    let name = t.split(':').next().unwrap_or_default().trim();
                    let hint = if crate::views::TIMERS.contains(&name) {
                        String::new()
                    } else {
                        crate::suggest::did_you_mean(name, crate::views::TIMERS.iter().copied())
                    };
                    bad(format!("{}{hint}", crm_core_reason(&e)));
                }
            }
            _ => bad("give exactly one of `event` and `timer`".into()),
        }
    }
    out
}

/// The `@key` strings naming users (not partners: a `partner` field names a partner) in a fixture value.
fn user_refs(v: &Value, field: &str, out: &mut Vec<String>) {
    match v {
        Value::String(s) if s.starts_with('@') && field != "partner" => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| user_refs(x, field, out)),
        Value::Object(o) => o.iter().for_each(|(k, x)| user_refs(x, k, out)),
        _ => {}
    }
}

/// The reason of a core validation error, without its field prefix.
fn crm_core_reason(e: &crm_core::error::Error) -> String {
    match e {
        crm_core::error::Error::Invalid { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}

fn check_event_name(name: &str) -> Result<(), String> {
    if crate::views::EVENTS.contains(&name) {
        return Ok(());
    }
    let hint = crate::suggest::did_you_mean(name, crate::views::EVENTS.iter().copied());
    let timer = if crate::views::TIMERS.contains(&name) {
        format!(" (`{name}` is a timer: write `timer = \"{name}:N\"`)")
    } else {
        String::new()
    };
    Err(format!("unknown event `{name}`{hint}{timer}"))
}

/// The instant fixtures happen at.
pub fn fixture_now() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0)
        .single()
        .unwrap_or_default()
}

/// Replaces `"@key"` strings by the key's user id (or partner id for `partner` fields).
fn resolve_refs(v: &mut Value, field: &str) {
    match v {
        Value::String(s) if s.starts_with('@') => {
            let key = &s[1..];
            *s = if field == "partner" {
                Org::partner_id(key).to_string()
            } else {
                Org::user_id(key).to_string()
            };
        }
        Value::Array(a) => a.iter_mut().for_each(|x| resolve_refs(x, field)),
        Value::Object(o) => o.iter_mut().for_each(|(k, x)| resolve_refs(x, k)),
        _ => {}
    }
}

/// `base` (a record's serialised form) with the fixture's `patch` over it, read back as the record: the fixtures build
/// records the way a store reads them, never field by field.
fn merged<T: serde::de::DeserializeOwned>(
    mut v: Value,
    patch: &serde_json::Map<String, Value>,
    what: &str,
) -> Result<T, String> {
    let mut patch = Value::Object(patch.clone());
    resolve_refs(&mut patch, "");
    if let (Value::Object(b), Value::Object(p)) = (&mut v, patch) {
        for (k, x) in p {
            if k == "key" {
                continue;
            }
            b.insert(k, x);
        }
    }
    serde_json::from_value(v).map_err(|e| format!("{what}: {e}"))
}

/// The document a case starts from (its serialised form): invoice `1` of the partner, issued on the test day,
/// 100 EUR, no due date.
fn base_document(case: &str, partner: PartnerId, now: Timestamp) -> Result<Value, String> {
    let eur = crm_core::money::Currency::parse("EUR").map_err(|e| e.to_string())?;
    Ok(json!({
        "id": DocumentId::from_uuid(key_uuid("document", case)),
        "tenant": Org::tenant(),
        "kind": DocumentKind::Invoice,
        "number": "1",
        "partner": partner,
        "issue_date": now.date_naive(),
        "due_date": null,
        "currency": eur,
        "lines": [],
        "campaign": null,
        "corrects": null,
        "direction": null,
        "allocations": [],
        "total": rust_decimal::Decimal::ONE_HUNDRED,
        "rate": crm_core::commerce::AppliedRate::identity(eur),
        "revenue_units": 0,
        "cost_units": 0,
        "attrs": crm_core::commerce::PartnerAttrs::default(),
        "version": 1,
        "recorded_at": now,
        "updated_at": now,
        "renews_on": null,
    }))
}

/// The contract a case starts from (its serialised form): the partner's, worth 100 EUR, starting on the test
/// day, open-ended, unsigned.
fn base_contract(case: &str, partner: PartnerId, now: Timestamp) -> Result<Value, String> {
    let value = crm_core::money::Money::parse("100", "EUR").map_err(|e| e.to_string())?;
    Ok(json!({
        "id": crm_core::id::ContractId::from_uuid(key_uuid("contract", case)),
        "tenant": Org::tenant(),
        "number": "C-1",
        "partner": partner,
        "lead": null,
        "quotation": null,
        "value": value,
        "term": {"starts_on": now.date_naive(), "ends_on": null, "renews_on": null},
        "signature": null,
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }))
}

/// The meeting a case starts from (its serialised form): the partner's, organised by the sample user, an hour
/// long starting an hour after `now`, scheduled, without attendees.
fn base_meeting(case: &str, partner: PartnerId, now: Timestamp) -> Result<Value, String> {
    let sample = UserId::from_uuid(key_uuid("sample", "user"));
    let starts = now + chrono::Duration::hours(1);
    Ok(json!({
        "id": crm_core::id::MeetingId::from_uuid(key_uuid("meeting", case)),
        "tenant": Org::tenant(),
        "title": "Meeting",
        "lead": null,
        "partner": partner,
        "organiser": {"id": sample, "name": "Sample", "email": "sample@example.com"},
        "attendees": [],
        "starts_at": starts,
        "ends_at": starts + chrono::Duration::hours(1),
        "time_zone": "Europe/Bucharest",
        "place": null,
        "online_link": null,
        "agenda": null,
        "outcome": null,
        "status": "scheduled",
        "sequence": 0,
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }))
}

/// The campaign a case starts from (its serialised form): a telemarketing campaign of the test year, active, no
/// budget.
fn base_campaign(case: &str, now: Timestamp) -> Result<Value, String> {
    let sample = UserId::from_uuid(key_uuid("sample", "user"));
    Ok(json!({
        "id": CampaignId::from_uuid(key_uuid("campaign", case)),
        "tenant": Org::tenant(),
        "name": "Campaign",
        "channel": Channel::Telemarketing,
        "period": Period::year(now.year()).map_err(|e| e.to_string())?,
        "owner": sample,
        "agents": [sample],
        "script": null,
        "status": CampaignStatus::Active,
        "budget": null,
        "criteria": null,
        "target_count": 0,
        "version": 1,
        "created_at": now,
        "updated_at": now,
        "launched_at": now,
    }))
}

/// Builds the trigger and views of a case.
pub fn build_case(case: &Case) -> Result<(Trigger, Views), String> {
    let tenant = Org::tenant();
    let now = fixture_now();
    let lead_id = LeadId::from_uuid(key_uuid("lead", &case.name));
    let partner_key = case
        .partner
        .as_ref()
        .and_then(|p| p.get("key"))
        .and_then(|k| k.as_str())
        .unwrap_or("customer")
        .to_string();
    let partner_id = Org::partner_id(&partner_key);
    let stage = StageId::from_uuid(key_uuid("stage", "current"));
    let base_lead = serde_json::json!({
        "id": lead_id,
        "tenant": tenant,
        "partner": partner_id,
        "contact": null,
        "title": "Lead",
        "description": null,
        "pipeline": PipelineId::from_uuid(key_uuid("sample", "pipeline")),
        "stage": stage,
        "status": LeadStatus::Open,
        "expected_revenue": null,
        "probability": 10,
        "probability_override": null,
        "owner": null,
        "expected_close": null,
        "source": LeadSource::default(),
        "priority": Priority::default(),
        "tags": [],
        "version": 1,
        "created_at": now,
        "updated_at": now,
        "stage_entered_at": now,
    });
    let lead = case
        .lead
        .as_ref()
        .map(|p| merged::<Lead>(base_lead.clone(), p, "lead"))
        .transpose()?;
    let partner = match &case.partner {
        Some(p) => {
            let base = NewPartner::company(partner_key.clone())
                .build(tenant, now)
                .map_err(|e| e.to_string())?;
            let mut base = serde_json::to_value(base).map_err(|e| e.to_string())?;
            base["id"] = serde_json::json!(partner_id);
            Some(merged(base, p, "partner")?)
        }
        None => None,
    };
    let request = match &case.request {
        Some(p) => {
            let base = serde_json::json!({
                "id": RequestId::from_uuid(key_uuid("request", &case.name)),
                "tenant": tenant,
                "lead": lead.as_ref().map(|l| l.id()),
                "partner": Some(partner_id),
                "title": "Request",
                "description": null,
                "kind": null,
                "assignee": UserId::from_uuid(key_uuid("sample", "user")),
                "due": null,
                "priority": Priority::default(),
                "status": RequestStatus::Open,
                "opened_by": Actor::System,
                "version": 1,
                "created_at": now,
                "updated_at": now,
                "closed_at": null,
            });
            Some(merged::<Request>(base, p, "request")?)
        }
        None => None,
    };
    let subject = Subject {
        partner: Some(partner_id),
        lead: lead.as_ref().map(|l| l.id()),
        request: request.as_ref().map(|r| r.id()),
    };
    // Each record the case gives: its fields over the record's defaults.
    fn given<T: serde::de::DeserializeOwned>(
        part: &Option<serde_json::Map<String, Value>>,
        base: impl FnOnce() -> Result<Value, String>,
        what: &str,
    ) -> Result<Option<T>, String> {
        part.as_ref()
            .map(|p| merged::<T>(base()?, p, what))
            .transpose()
    }
    let name = case.name.as_str();
    let document: Option<Document> = given(
        &case.document,
        || base_document(name, partner_id, now),
        "document",
    )?;
    let campaign = given(&case.campaign, || base_campaign(name, now), "campaign")?;
    // The open_item_overdue timer's open item: the whole total is still owed.
    let open_item = match (&case.timer, &document) {
        (Some(_), Some(d))
            if matches!(d.kind(), DocumentKind::Invoice | DocumentKind::VendorBill) =>
        {
            Some(crm_core::commerce::OpenItem::of(
                d,
                i128::from(d.total_units()),
                now.date_naive(),
            ))
        }
        _ => None,
    };
    let contract = given(
        &case.contract,
        || base_contract(name, partner_id, now),
        "contract",
    )?;
    let meeting = given(
        &case.meeting,
        || base_meeting(name, partner_id, now),
        "meeting",
    )?;
    let views = Views {
        lead,
        partner,
        request,
        document,
        campaign,
        open_item,
        contract,
        meeting,
    };
    let trigger = match (&case.event, &case.timer) {
        (Some(name), None) => {
            check_event_name(name)?;
            let base = crate::views::sample_event(name, stage)
                .ok_or_else(|| format!("unknown event `{name}`"))?;
            let kind: EventKind = merged(
                serde_json::to_value(&base).map_err(|e| e.to_string())?,
                &case.fields,
                "fields",
            )?;
            let (actor, source) = match case.actor.as_deref() {
                Some("portal") => (
                    Actor::PartnerRepresentative {
                        partner: partner_id,
                        contact: crm_core::id::ContactId::from_uuid(key_uuid("contact", "rep")),
                    },
                    Source::Portal,
                ),
                Some("system") => (Actor::System, Source::Api),
                Some(u) => (
                    Actor::user(Org::user_id(u.trim_start_matches('@'))),
                    Source::Api,
                ),
                None => (Actor::user(Org::user_id("someone")), Source::Api),
            };
            Trigger::Event(DomainEvent {
                id: EventId::from_uuid(key_uuid("event", &case.name)),
                tenant,
                at: now,
                actor,
                source,
                subject,
                kind,
            })
        }
        (None, Some(t)) => {
            let timer = TimerTrigger::parse(t).map_err(|e| e.to_string())?;
            Trigger::Timer(TimerFiring {
                tenant,
                at: now,
                timer,
                subject,
                key: format!("{timer}:{}", case.name),
            })
        }
        _ => return Err("give exactly one of `event` and `timer`".into()),
    };
    Ok((trigger, views))
}

/// An action as fixtures and `explain` show it: recipients as text, plus the people they resolve to.
pub fn action_view(
    action: &Action,
    rule: &str,
    people: Option<Vec<String>>,
) -> serde_json::Map<String, Value> {
    let mut v = match serde_json::to_value(action) {
        Ok(Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    for k in ["to", "assignee", "from"] {
        if v.contains_key(k) {
            let text = match (k, action) {
                ("to", Action::Notify { to, .. })
                | ("to", Action::SendEmail { to, .. })
                | ("to", Action::Reassign { to }) => to.to_string(),
                ("assignee", Action::OpenRequest { assignee, .. }) => assignee.to_string(),
                ("from", Action::Escalate { from, .. }) => from.to_string(),
                _ => continue,
            };
            v.insert(k.into(), Value::String(text));
        }
    }
    v.insert("rule".into(), json!(rule));
    if let Some(p) = people {
        v.insert("people".into(), json!(p));
    }
    v
}

/// The [`action_view`] of every action `decision` holds, with the people each reaches.
fn decided_views(
    decision: &Decision,
    trigger: &Trigger,
    views: &Views,
    org: &Org,
    dir: &dyn Directory,
) -> Vec<serde_json::Map<String, Value>> {
    decision
        .actions
        .iter()
        .map(|d| {
            let people = people_of(&d.action, trigger, views, org, dir);
            action_view(&d.action, &d.rule, Some(people))
        })
        .collect()
}

/// The people an action resolves to, as user keys (or e-mail addresses, else `user <id>` for a user the
/// organisation file does not know), or the resolution error.
pub fn people_of(
    action: &Action,
    trigger: &Trigger,
    views: &Views,
    org: &Org,
    dir: &dyn Directory,
) -> Vec<String> {
    match resolve(&action.recipient(), trigger.tenant(), views, dir) {
        Ok(list) => list
            .into_iter()
            .map(|r| {
                r.user
                    .and_then(|u| org.key_of(u).map(str::to_string))
                    .or(r.email)
                    .or_else(|| r.user.map(|u| format!("user {u}")))
                    .unwrap_or_else(|| "?".into())
            })
            .collect(),
        Err(e) => vec![format!("error: {e}")],
    }
}

/// The outcome of one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseResult {
    /// The case's name.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// The differences, one line each (`- expected`, `+ actual`).
    pub diff: Vec<String>,
}

/// Runs one case.
pub fn run_case(engine: &RhaiRuleEngine, org: &Org, case: &Case) -> CaseResult {
    let dir = org.directory();
    let mut diff = Vec::new();
    let (trigger, views) = match build_case(case) {
        Ok(x) => x,
        Err(e) => {
            return CaseResult {
                name: case.name.clone(),
                passed: false,
                diff: vec![format!("! the case is malformed: {e}")],
            }
        }
    };
    if let Trigger::Timer(f) = &trigger {
        let declared = engine.rules().timers();
        if !declared.contains(&f.timer) {
            let list: Vec<_> = declared.iter().map(|t| t.to_string()).collect();
            diff.push(format!(
                "! no rule declares the timer `{}`, so no rule would receive it; declared: {}",
                f.timer,
                if list.is_empty() {
                    "none".to_string()
                } else {
                    list.join(", ")
                }
            ));
        }
    }
    let mut decision = engine.evaluate(&trigger, &views);
    if let Some(rule) = &case.rule {
        // The case is about one rule: the others' decisions are not compared.
        decision.actions.retain(|a| &a.rule == rule);
        decision.failures.retain(|f| &f.rule == rule);
        decision.refusal = decision.refusal.filter(|r| &r.rule == rule);
    }
    let actual = decided_views(&decision, &trigger, &views, org, &dir);
    diff.extend(action_diff(&case.expect, &actual, case.rule.as_deref()));
    let refused = decision.refusal.as_ref().map(|r| r.reason.clone());
    if refused != case.refused {
        diff.push(format!("- refused: {:?}", case.refused));
        diff.push(format!("+ refused: {refused:?}"));
    }
    match &case.failed {
        Some(text) => {
            if !decision
                .failures
                .iter()
                .any(|f| f.message.contains(text.as_str()))
            {
                diff.push(format!("- a failure containing {text:?}"));
                diff.push(format!("+ failures: {:?}", decision.failures));
            }
        }
        None => {
            for f in &decision.failures {
                diff.push(format!("+ rule `{}` failed: {}", f.rule, f.message));
            }
        }
    }
    CaseResult {
        name: case.name.clone(),
        passed: diff.is_empty(),
        diff,
    }
}

/// One step of aligning expected with actual actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Same(usize, usize),
    Changed(usize, usize),
    Missing(usize),
    Extra(usize),
}

/// Whether an actual action has every key an expected one gives, with the same value.
fn matches(
    expected: &serde_json::Map<String, Value>,
    actual: &serde_json::Map<String, Value>,
) -> bool {
    expected.iter().all(|(k, v)| actual.get(k) == Some(v))
}

/// The differences between expected and actual actions, grouped by rule: the lists are aligned on their longest
/// common subsequence, so a missing or extra action is one line and the actions after it still match.
fn action_diff(
    expected: &[serde_json::Map<String, Value>],
    actual: &[serde_json::Map<String, Value>],
    case_rule: Option<&str>,
) -> Vec<String> {
    let (n, m) = (expected.len(), actual.len());
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if matches(&expected[i], &actual[j]) {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut steps = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && matches(&expected[i], &actual[j]) && lcs[i][j] == lcs[i + 1][j + 1] + 1
        {
            steps.push(Step::Same(i, j));
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            steps.push(Step::Missing(i));
            i += 1;
        } else {
            steps.push(Step::Extra(j));
            j += 1;
        }
    }
    // Between two matches, a missing and an extra action of the same kind are one action that differs.
    let mut paired = Vec::new();
    for run in steps.split_inclusive(|s| matches!(s, Step::Same(..))) {
        let missing: Vec<usize> = run
            .iter()
            .filter_map(|s| match s {
                Step::Missing(i) => Some(*i),
                _ => None,
            })
            .collect();
        let mut extra: Vec<usize> = run
            .iter()
            .filter_map(|s| match s {
                Step::Extra(j) => Some(*j),
                _ => None,
            })
            .collect();
        for i in missing {
            let same_kind = extra.iter().position(|j| {
                expected[i]
                    .get("action")
                    .is_none_or(|a| actual[*j].get("action") == Some(a))
            });
            match same_kind {
                Some(k) => paired.push(Step::Changed(i, extra.remove(k))),
                None => paired.push(Step::Missing(i)),
            }
        }
        paired.extend(extra.into_iter().map(Step::Extra));
        paired.extend(run.iter().filter(|s| matches!(s, Step::Same(..))).copied());
    }
    let rule_of_actual = |j: usize| {
        actual[j]
            .get("rule")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string()
    };
    // A missing action belongs to the rule it names, or the case's rule, or the rule of the action next to it.
    let rule_of_missing = |i: usize| -> String {
        if let Some(r) = expected[i]
            .get("rule")
            .and_then(Value::as_str)
            .or(case_rule)
        {
            return r.to_string();
        }
        let near = steps
            .iter()
            .filter_map(|s| match s {
                Step::Same(e, a) => Some((e.abs_diff(i), *a)),
                _ => None,
            })
            .min();
        near.map(|(_, a)| rule_of_actual(a))
            .unwrap_or_else(|| "(no rule decided it)".to_string())
    };
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    let mut push = |rule: String, line: String| match groups.iter_mut().find(|(r, _)| *r == rule) {
        Some((_, lines)) => lines.push(line),
        None => groups.push((rule, vec![line])),
    };
    let obj = |m: &serde_json::Map<String, Value>| Value::Object(m.clone());
    for s in paired {
        match s {
            Step::Same(..) => {}
            Step::Changed(i, j) => {
                push(
                    rule_of_actual(j),
                    format!("  - action {i}: {}", obj(&expected[i])),
                );
                push(
                    rule_of_actual(j),
                    format!("  + action {j}: {}", obj(&actual[j])),
                );
            }
            Step::Missing(i) => push(
                rule_of_missing(i),
                format!("  - action {i}: {} (missing)", obj(&expected[i])),
            ),
            Step::Extra(j) => push(
                rule_of_actual(j),
                format!("  + action {j}: {} (unexpected)", obj(&actual[j])),
            ),
        }
    }
    groups
        .into_iter()
        .flat_map(|(rule, lines)| std::iter::once(format!("rule `{rule}`:")).chain(lines))
        .collect()
}

/// Everything `explain` shows for one case.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    /// What the scripts received.
    pub input: Value,
    /// The decision.
    pub decision: Decision,
    /// The actions with the people they resolve to.
    pub actions: Vec<serde_json::Map<String, Value>>,
}

/// Explains one case: what the scripts saw, which rules ran, what they decided and for whom.
pub fn explain_case(
    engine: &RhaiRuleEngine,
    org: &Org,
    case: &Case,
) -> Result<Explanation, String> {
    let dir = org.directory();
    let (trigger, views) = build_case(case)?;
    let decision = engine.evaluate(&trigger, &views);
    let actions = decided_views(&decision, &trigger, &views, org, &dir);
    Ok(Explanation {
        input: crate::views::trigger_json(&trigger, &views),
        decision,
        actions,
    })
}
