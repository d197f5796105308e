//! What a script sees: the trigger and read-only views of its records, as an object map.
//!
//! The records are read-only views: a script reading `ev.lead.title` gets the value, converted when read; a script
//! assigning to it fails (there is no setter).

use crm_core::commerce::{Campaign, Document};
use crm_core::comms::{TimerTrigger, Trigger, Views};
use crm_core::lead::Lead;
use crm_core::partner::Partner;
use crm_core::request::Request;
use rhai::{Dynamic, Map};
use serde_json::{json, Value};
use std::sync::Arc;

/// The trigger and views as JSON (what `crm-rules explain` prints and scripts see).
pub fn trigger_json(trigger: &Trigger, views: &Views) -> Value {
    let mut m = serde_json::Map::new();
    match trigger {
        Trigger::Event(e) => {
            if let Ok(Value::Object(kind)) = serde_json::to_value(&e.kind) {
                m.extend(kind);
            }
            m.insert("id".into(), json!(e.id));
            m.insert("at".into(), json!(e.at));
            m.insert("actor".into(), json!(e.actor.to_string()));
            m.insert("source".into(), json!(e.source));
        }
        Trigger::Timer(t) => {
            m.insert("type".into(), json!(t.timer.name()));
            m.insert("timer".into(), json!(t.timer.to_string()));
            match t.timer {
                TimerTrigger::RequestDueSoon { hours }
                | TimerTrigger::MeetingStartsIn { hours } => {
                    m.insert("hours".into(), json!(hours));
                }
                TimerTrigger::CloseDatePassed => {}
                other => {
                    m.insert("days".into(), json!(other.amount()));
                }
            }
            m.insert("at".into(), json!(t.at));
            m.insert("key".into(), json!(t.key));
            if let Some(l) = &views.lead {
                m.insert(
                    "days_idle".into(),
                    json!((t.at - l.updated_at()).num_days()),
                );
            }
            if let Some(r) = &views.request {
                m.insert(
                    "days_open".into(),
                    json!((t.at - r.created_at()).num_days()),
                );
            }
            if let Some(due) = views.request.as_ref().and_then(|r| r.due()) {
                m.insert("days_overdue".into(), json!((t.at - due).num_days()));
                m.insert("hours_to_due".into(), json!((due - t.at).num_hours()));
            }
            if let Some(item) = &views.open_item {
                m.insert("days_overdue".into(), json!(item.days_overdue));
                m.insert("open".into(), json!(item.open));
            }
            if let Some(days) = days_to_renewal(trigger, views) {
                m.insert("days_to_renewal".into(), json!(days));
            }
            if let Some(meeting) = &views.meeting {
                m.insert(
                    "hours_to_start".into(),
                    json!((meeting.starts_at() - t.at).num_hours()),
                );
            }
        }
    }
    m.insert("lead".into(), json!(views.lead));
    m.insert("partner".into(), json!(views.partner));
    m.insert("request".into(), json!(views.request));
    m.insert("document".into(), json!(views.document));
    m.insert("campaign".into(), json!(views.campaign));
    m.insert("contract".into(), json!(views.contract));
    m.insert("meeting".into(), json!(views.meeting));
    Value::Object(m)
}

/// Days from the trigger's day to the renewal date of the document or contract at hand, if it has one.
fn days_to_renewal(trigger: &Trigger, views: &Views) -> Option<i64> {
    let document = views.document.as_ref().and_then(|d| d.renews_on());
    let renews = document.or_else(|| views.contract.as_ref()?.term().renews_on)?;
    Some((renews - trigger.at().date_naive()).num_days())
}

/// A lead as scripts see it: read-only properties, converted only when a script reads them.
#[derive(Debug, Clone)]
pub struct LeadView(pub Arc<Lead>);

/// A partner as scripts see it (read-only).
#[derive(Debug, Clone)]
pub struct PartnerView(pub Arc<Partner>);

/// A request as scripts see it (read-only).
#[derive(Debug, Clone)]
pub struct RequestView(pub Arc<Request>);

/// A document as scripts see it (read-only).
#[derive(Debug, Clone)]
pub struct DocumentView(pub Arc<Document>);

/// A campaign as scripts see it (read-only).
#[derive(Debug, Clone)]
pub struct CampaignView(pub Arc<Campaign>);

/// A meeting as scripts see it (read-only).
#[derive(Debug, Clone)]
pub struct MeetingView(pub Arc<crm_core::sales::Meeting>);

/// A contract as scripts see it (read-only).
#[derive(Debug, Clone)]
pub struct ContractView(pub Arc<crm_core::sales::Contract>);

/// Any serialisable value as a script value (ids and times become text, `None` becomes `()`).
pub fn to_dyn<T: serde::Serialize + ?Sized>(v: &T) -> Dynamic {
    rhai::serde::to_dynamic(v).unwrap_or(Dynamic::UNIT)
}

fn revenue(m: Option<&crm_core::money::Money>) -> Dynamic {
    m.map(|m| Dynamic::from_decimal(m.amount()))
        .unwrap_or(Dynamic::UNIT)
}

fn currency(m: Option<&crm_core::money::Money>) -> Dynamic {
    m.map(|m| Dynamic::from(m.currency().code().to_string()))
        .unwrap_or(Dynamic::UNIT)
}

/// Declares a view's fields once: the list `check` knows them by, and the getters scripts read them through.
macro_rules! view_fields {
    ($(#[$doc:meta])* $list:ident, $register:ident, $ty:ty, [$($field:ident),* $(,)?], also [$($extra:literal),* $(,)?]) => {
        $(#[$doc])*
        pub const $list: &[&str] = &[$(stringify!($field),)* $($extra,)*];

        fn $register(engine: &mut rhai::Engine) {
            $( engine.register_get(stringify!($field), |v: &mut $ty| to_dyn(&v.0.$field())); )*
        }
    };
}

view_fields!(
    /// The fields a script reads on `ev.lead`.
    LEAD_FIELDS,
    register_lead,
    LeadView,
    [
        id,
        partner,
        contact,
        title,
        description,
        pipeline,
        stage,
        expected_revenue,
        probability,
        owner,
        expected_close,
        source,
        priority,
        tags,
        version,
        created_at,
        updated_at,
        stage_entered_at,
    ],
    also ["status", "revenue", "currency", "score", "score_reasons"]
);

view_fields!(
    /// The fields a script reads on `ev.partner`.
    PARTNER_FIELDS,
    register_partner,
    PartnerView,
    [
        id, kind, name, roles, contacts, locations, industry, turnover, tax_id, website, group,
        owner, tags, version, created_at, updated_at,
    ],
    also []
);

view_fields!(
    /// The fields a script reads on `ev.request`.
    REQUEST_FIELDS,
    register_request,
    RequestView,
    [
        id,
        lead,
        partner,
        title,
        description,
        kind,
        assignee,
        due,
        priority,
        status,
        opened_by,
        version,
        created_at,
        updated_at,
        closed_at,
    ],
    also []
);

view_fields!(
    /// The fields a script reads on `ev.document` (`total` is a decimal, in `currency`).
    DOCUMENT_FIELDS,
    register_document,
    DocumentView,
    [
        id, kind, number, partner, issue_date, due_date, currency, campaign, corrects, direction, version,
        renews_on,
    ],
    also ["total"]
);

view_fields!(
    /// The fields a script reads on `ev.contract` (`value` is a decimal, in `currency`; `signed` is whether it is
    /// signed).
    CONTRACT_FIELDS,
    register_contract,
    ContractView,
    [id, number, partner, lead, quotation, version, created_at, updated_at],
    also ["value", "currency", "starts_on", "ends_on", "renews_on", "signed"]
);

view_fields!(
    /// The fields a script reads on `ev.meeting` (`organiser` is the organising user's id, `organiser_name` and
    /// `organiser_email` theirs; `attendees` their addresses).
    MEETING_FIELDS,
    register_meeting,
    MeetingView,
    [
        id, title, lead, partner, starts_at, ends_at, time_zone, place, online_link, agenda, status, sequence,
        version, created_at, updated_at,
    ],
    also ["organiser", "organiser_name", "organiser_email", "attendees"]
);

view_fields!(
    /// The fields a script reads on `ev.campaign`.
    CAMPAIGN_FIELDS,
    register_campaign,
    CampaignView,
    [
        id,
        name,
        channel,
        period,
        owner,
        agents,
        status,
        budget,
        target_count,
        version,
        launched_at,
    ],
    also []
);

/// Registers the view types and their read-only properties.
pub fn register(engine: &mut rhai::Engine) {
    engine.register_type_with_name::<LeadView>("Lead");
    engine.register_type_with_name::<PartnerView>("Partner");
    engine.register_type_with_name::<RequestView>("Request");
    register_lead(engine);
    engine.register_get("status", |v: &mut LeadView| {
        Dynamic::from(v.0.status().kind().as_str().to_string())
    });
    engine.register_get("revenue", |v: &mut LeadView| {
        revenue(v.0.expected_revenue().as_ref())
    });
    engine.register_get("currency", |v: &mut LeadView| {
        currency(v.0.expected_revenue().as_ref())
    });
    // The score as a number a rule compares (`ev.lead.score > 80`), `()` before the first; its reasons as a list
    // of `#{feature, contribution}` (the contribution a decimal).
    engine.register_get("score", |v: &mut LeadView| {
        v.0.score()
            .map(|s| Dynamic::from_int(i64::from(s.value)))
            .unwrap_or(Dynamic::UNIT)
    });
    engine.register_get("score_reasons", |v: &mut LeadView| {
        let reasons: rhai::Array =
            v.0.score()
                .map(|s| {
                    s.reasons
                        .iter()
                        .map(|r| {
                            let mut m = rhai::Map::new();
                            m.insert("feature".into(), Dynamic::from(r.feature.clone()));
                            m.insert("contribution".into(), Dynamic::from_decimal(r.contribution));
                            Dynamic::from_map(m)
                        })
                        .collect()
                })
                .unwrap_or_default();
        Dynamic::from_array(reasons)
    });
    register_partner(engine);
    register_request(engine);
    engine.register_type_with_name::<DocumentView>("Document");
    engine.register_type_with_name::<CampaignView>("Campaign");
    register_document(engine);
    engine.register_get("total", |v: &mut DocumentView| {
        Dynamic::from_decimal(v.0.total())
    });
    register_campaign(engine);
    engine.register_type_with_name::<ContractView>("Contract");
    register_contract(engine);
    engine.register_get("value", |v: &mut ContractView| {
        Dynamic::from_decimal(v.0.value().amount())
    });
    engine.register_get("currency", |v: &mut ContractView| {
        Dynamic::from(v.0.value().currency().code().to_string())
    });
    engine.register_get("starts_on", |v: &mut ContractView| {
        to_dyn(&v.0.term().starts_on)
    });
    engine.register_get("ends_on", |v: &mut ContractView| {
        to_dyn(&v.0.term().ends_on)
    });
    engine.register_get("renews_on", |v: &mut ContractView| {
        to_dyn(&v.0.term().renews_on)
    });
    engine.register_get("signed", |v: &mut ContractView| v.0.signature().is_some());
    engine.register_type_with_name::<MeetingView>("Meeting");
    register_meeting(engine);
    engine.register_get("organiser", |v: &mut MeetingView| {
        to_dyn(&v.0.organiser().id)
    });
    engine.register_get("organiser_name", |v: &mut MeetingView| {
        Dynamic::from(v.0.organiser().name.clone())
    });
    engine.register_get("organiser_email", |v: &mut MeetingView| {
        Dynamic::from(v.0.organiser().email.clone())
    });
    engine.register_get("attendees", |v: &mut MeetingView| {
        let emails: rhai::Array =
            v.0.attendees()
                .iter()
                .map(|a| Dynamic::from(a.email.clone()))
                .collect();
        Dynamic::from_array(emails)
    });
}

// ---------------------------------------------------------------------------------------------------- names

/// The records a trigger's argument carries (`ev.lead`, …): the property that reads each, and its fields.
pub const RECORDS: &[(&str, &[&str])] = &[
    ("lead", LEAD_FIELDS),
    ("partner", PARTNER_FIELDS),
    ("request", REQUEST_FIELDS),
    ("document", DOCUMENT_FIELDS),
    ("campaign", CAMPAIGN_FIELDS),
    ("contract", CONTRACT_FIELDS),
    ("meeting", MEETING_FIELDS),
];

/// The events rules react to (`on_<event>`, `guard_<event>`): every event kind except `rule_failed`, whose rules
/// never run, and `email_sent`, which the dispatcher logs after delivery outside any change's commit; and the
/// business moments some of them are (`invoice_issued`: the first version of a sales invoice; `payment_received`:
/// the first version of a payment from a customer; `quotation_sent` / `_accepted` / `_declined` / `_expired`: a
/// quotation's status).
pub const EVENTS: &[&str] = &[
    "partner_created",
    "partner_updated",
    "lead_entered",
    "lead_updated",
    "lead_stage_moved",
    "lead_won",
    "lead_lost",
    "lead_reopened",
    "lead_scored",
    "comment_added",
    "request_opened",
    "request_updated",
    "request_status_changed",
    "invoice_recorded",
    "invoice_issued",
    "payment_recorded",
    "payment_received",
    "campaign_created",
    "campaign_launched",
    "campaign_closed",
    "campaign_cost_added",
    "budget_exceeded",
    "budget_threshold_passed",
    "campaign_message_set",
    "campaign_messages_queued",
    "campaign_message_reported",
    "call_outcome_recorded",
    "quotation_created",
    "quotation_edited",
    "quotation_revised",
    "quotation_status_changed",
    "quotation_sent",
    "quotation_accepted",
    "quotation_declined",
    "quotation_expired",
    "contract_created",
    "contract_signed",
    "meeting_scheduled",
    "meeting_rescheduled",
    "meeting_cancelled",
    "meeting_replied",
    "meeting_held",
    "call_logged",
];

/// The timers rules declare (`fn timers()`) and react to (`on_<timer>`).
pub const TIMERS: &[&str] = &[
    "lead_idle",
    "request_due_soon",
    "request_overdue",
    "close_date_passed",
    "request_age",
    "open_item_overdue",
    "contract_renewal_due",
    "meeting_starts_in",
];

/// Every trigger name: [`EVENTS`] and [`TIMERS`].
pub fn trigger_names() -> impl Iterator<Item = &'static str> {
    EVENTS.iter().chain(TIMERS.iter()).copied()
}

/// A sample event of kind `name`, with `stage` wherever the event names a stage: the defaults fixtures fill in,
/// and the fields `check` knows each event by.
pub fn sample_event(
    name: &str,
    stage: crm_core::id::StageId,
) -> Option<crm_core::event::EventKind> {
    let k = |v: Value| serde_json::from_value::<crm_core::event::EventKind>(v).ok();
    let id = |s: &str| crate::fixtures::key_uuid("sample", s).to_string();
    let eur = json!({"amount": "0", "currency": "EUR"});
    match name {
        "partner_created" => k(json!({"type": name, "name": "Acme"})),
        "partner_updated" | "lead_updated" | "request_updated" => {
            k(json!({"type": name, "changes": []}))
        }
        "lead_entered" => k(
            json!({"type": name, "title": "Lead", "pipeline": id("pipeline"), "stage": stage,
            "owner": null, "expected_revenue": null}),
        ),
        "lead_stage_moved" => k(
            json!({"type": name, "from": id("from"), "to": stage, "from_name": "Contact",
            "to_name": "Qualification"}),
        ),
        "lead_won" => k(json!({"type": name, "stage": stage})),
        "lead_lost" => k(
            json!({"type": name, "reason": id("reason"), "reason_name": "Too expensive",
            "competitor": null, "note": null}),
        ),
        "lead_reopened" => k(json!({"type": name, "stage": stage})),
        "lead_scored" => k(json!({"type": name, "value": 85, "previous": 60})),
        "comment_added" => k(json!({"type": name, "comment": id("comment"),
            "target": {"type": "lead", "id": id("lead")}, "excerpt": ""})),
        "request_opened" => k(
            json!({"type": name, "title": "Request", "kind": null, "assignee": id("user"),
            "due": null}),
        ),
        "request_status_changed" => k(json!({"type": name, "from": "open", "to": "in_progress"})),
        "invoice_recorded" | "invoice_issued" => k(
            json!({"type": "invoice_recorded", "document": id("document"), "kind": "invoice",
            "number": "1", "total": eur, "campaign": null, "version": 1}),
        ),
        "payment_recorded" | "payment_received" => k(
            json!({"type": "payment_recorded", "document": id("document"), "number": "1",
            "amount": eur, "version": 1, "direction": "received"}),
        ),
        "campaign_created" => {
            k(json!({"type": name, "campaign": id("campaign"), "name": "Campaign"}))
        }
        "campaign_launched" => {
            k(json!({"type": name, "campaign": id("campaign"), "targets": 0, "calls": []}))
        }
        "budget_exceeded" => k(
            json!({"type": name, "campaign": id("campaign"), "name": "Campaign", "budget": eur,
            "spent": eur}),
        ),
        "budget_threshold_passed" => k(
            json!({"type": name, "campaign": id("campaign"), "name": "Campaign", "percent": 80,
            "budget": eur, "spent": eur}),
        ),
        "campaign_closed" => k(json!({"type": name, "campaign": id("campaign")})),
        "campaign_cost_added" => {
            k(json!({"type": name, "campaign": id("campaign"), "amount": eur}))
        }
        "campaign_message_set" => k(json!({"type": name, "campaign": id("campaign")})),
        "campaign_messages_queued" => k(json!({"type": name, "campaign": id("campaign"),
            "queued": 0, "skipped": 0})),
        "campaign_message_reported" => k(json!({"type": name, "campaign": id("campaign"),
            "status": "bounced", "note": "550 no such user"})),
        "call_outcome_recorded" => k(json!({"type": name, "campaign": id("campaign"),
            "outcome": "interested", "lead": null})),
        "quotation_created" | "quotation_edited" => k(json!({"type": name,
            "quotation": id("quotation"), "number": "Q-2026-0001/1", "total": eur})),
        "quotation_revised" => k(json!({"type": name, "quotation": id("quotation"),
            "supersedes": id("superseded"), "number": "Q-2026-0001/2", "total": eur})),
        "quotation_status_changed"
        | "quotation_sent"
        | "quotation_accepted"
        | "quotation_declined"
        | "quotation_expired" => {
            let status = name
                .strip_prefix("quotation_")
                .filter(|s| *s != "status_changed");
            k(
                json!({"type": "quotation_status_changed", "quotation": id("quotation"),
                "number": "Q-2026-0001/1", "status": status.unwrap_or("sent")}),
            )
        }
        "contract_created" => k(json!({"type": name, "contract": id("contract"),
            "number": "C-1", "value": eur})),
        "contract_signed" => k(json!({"type": name, "contract": id("contract"), "number": "C-1"})),
        "meeting_scheduled" => k(json!({"type": name, "meeting": id("meeting"),
            "title": "Meeting", "starts_at": "2026-03-02T09:00:00Z"})),
        "meeting_rescheduled" => k(json!({"type": name, "meeting": id("meeting"),
            "starts_at": "2026-03-02T09:00:00Z", "sequence": 1})),
        "meeting_cancelled" | "meeting_held" => k(json!({"type": name, "meeting": id("meeting")})),
        "meeting_replied" => k(json!({"type": name, "meeting": id("meeting"),
            "email": "guest@example.com", "reply": "accepted"})),
        "call_logged" => k(json!({"type": name, "call": {"direction": "outbound",
            "result": "connected", "started_at": "2026-03-02T09:00:00Z", "duration_seconds": 60,
            "with": null, "notes": ""}})),
        _ => None,
    }
}

/// The fields every event has besides its own.
const EVENT_FIELDS: &[&str] = &[
    "type", "id", "at", "actor", "source", "lead", "partner", "request", "document", "campaign",
    "contract", "meeting",
];

/// The fields every timer has besides its amount (`days` or `hours`).
const TIMER_FIELDS: &[&str] = &[
    "type",
    "timer",
    "at",
    "key",
    "lead",
    "partner",
    "request",
    "document",
    "campaign",
    "contract",
    "meeting",
    "days_idle",
    "days_overdue",
    "hours_to_due",
    "days_open",
    "open",
    "days_to_renewal",
    "hours_to_start",
];

/// The fields a script reads on the argument of `on_<name>` / `guard_<name>`, or `None` for an unknown trigger.
pub fn trigger_fields(name: &str) -> Option<Vec<String>> {
    let mut out: Vec<String> = if let Some(kind) = sample_event(
        name,
        crm_core::id::StageId::from_uuid(crate::fixtures::key_uuid("stage", "current")),
    ) {
        let mut own: Vec<String> = match serde_json::to_value(&kind) {
            Ok(Value::Object(m)) => m.keys().cloned().collect(),
            _ => Vec::new(),
        };
        own.extend(EVENT_FIELDS.iter().map(|s| s.to_string()));
        if name == "lead_entered" {
            own.extend(["revenue".to_string(), "currency".to_string()]);
        }
        own
    } else {
        let timer = TimerTrigger::parse(&format!("{name}:1"))
            .or_else(|_| TimerTrigger::parse(name))
            .ok()?;
        let mut own: Vec<String> = TIMER_FIELDS.iter().map(|s| s.to_string()).collect();
        match timer {
            TimerTrigger::RequestDueSoon { .. } | TimerTrigger::MeetingStartsIn { .. } => {
                own.push("hours".into())
            }
            TimerTrigger::CloseDatePassed => {}
            _ => own.push("days".into()),
        }
        own
    };
    out.sort();
    out.dedup();
    Some(out)
}

/// The trigger and views as the one argument every entry point receives: a map of the trigger's fields, with the
/// records as read-only views (`ev.lead`, `ev.partner`, `ev.request`, or `()`).
pub fn trigger_to_dynamic(trigger: &Trigger, views: &Views) -> Dynamic {
    let mut map = Map::new();
    match trigger {
        Trigger::Event(e) => {
            if let Some(kind) = to_dyn(&e.kind).try_cast::<Map>() {
                map.extend(kind);
            }
            if let crm_core::event::EventKind::LeadEntered {
                expected_revenue, ..
            } = &e.kind
            {
                map.insert("revenue".into(), revenue(expected_revenue.as_ref()));
                map.insert("currency".into(), currency(expected_revenue.as_ref()));
            }
            map.insert("id".into(), to_dyn(&e.id));
            map.insert("at".into(), to_dyn(&e.at));
            map.insert("actor".into(), Dynamic::from(e.actor.to_string()));
            map.insert("source".into(), to_dyn(&e.source));
        }
        Trigger::Timer(_) => {
            if let Value::Object(o) = trigger_json(trigger, &Views::default()) {
                for (k, v) in o {
                    if !RECORDS.iter().any(|(name, _)| *name == k.as_str()) {
                        map.insert(k.into(), to_dyn(&v));
                    }
                }
            }
            let at = trigger.at();
            if let Some(l) = &views.lead {
                map.insert(
                    "days_idle".into(),
                    Dynamic::from((at - l.updated_at()).num_days()),
                );
            }
            if let Some(r) = &views.request {
                map.insert(
                    "days_open".into(),
                    Dynamic::from((at - r.created_at()).num_days()),
                );
            }
            if let Some(due) = views.request.as_ref().and_then(|r| r.due()) {
                map.insert("days_overdue".into(), Dynamic::from((at - due).num_days()));
                map.insert("hours_to_due".into(), Dynamic::from((due - at).num_hours()));
            }
            if let Some(item) = &views.open_item {
                map.insert("days_overdue".into(), Dynamic::from(item.days_overdue));
                map.insert("open".into(), Dynamic::from_decimal(item.open));
            }
            if let Some(days) = days_to_renewal(trigger, views) {
                map.insert("days_to_renewal".into(), Dynamic::from(days));
            }
            if let Some(meeting) = &views.meeting {
                let hours = (meeting.starts_at() - at).num_hours();
                map.insert("hours_to_start".into(), Dynamic::from(hours));
            }
        }
    }
    let view = |d: Option<Dynamic>| d.unwrap_or(Dynamic::UNIT);
    map.insert(
        "lead".into(),
        view(
            views
                .lead
                .as_ref()
                .map(|l| Dynamic::from(LeadView(Arc::new(l.clone())))),
        ),
    );
    map.insert(
        "partner".into(),
        view(
            views
                .partner
                .as_ref()
                .map(|p| Dynamic::from(PartnerView(Arc::new(p.clone())))),
        ),
    );
    map.insert(
        "request".into(),
        view(
            views
                .request
                .as_ref()
                .map(|r| Dynamic::from(RequestView(Arc::new(r.clone())))),
        ),
    );
    map.insert(
        "document".into(),
        view(
            views
                .document
                .as_ref()
                .map(|d| Dynamic::from(DocumentView(Arc::new(d.clone())))),
        ),
    );
    map.insert(
        "campaign".into(),
        view(
            views
                .campaign
                .as_ref()
                .map(|c| Dynamic::from(CampaignView(Arc::new(c.clone())))),
        ),
    );
    map.insert(
        "contract".into(),
        view(
            views
                .contract
                .as_ref()
                .map(|c| Dynamic::from(ContractView(Arc::new(c.clone())))),
        ),
    );
    map.insert(
        "meeting".into(),
        view(
            views
                .meeting
                .as_ref()
                .map(|m| Dynamic::from(MeetingView(Arc::new(m.clone())))),
        ),
    );
    Dynamic::from_map(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{build_case, Case};

    fn keys_seen_by_scripts(case: &str) -> Vec<String> {
        let case: Case = toml::from_str(case).unwrap();
        let (trigger, views) = build_case(&case).unwrap();
        let map = trigger_to_dynamic(&trigger, &views).cast::<Map>();
        let mut keys: Vec<String> = map.keys().map(|k| k.to_string()).collect();
        keys.sort();
        keys
    }

    #[test]
    fn check_knows_exactly_the_fields_scripts_see() {
        let records = r#"
            lead = { title = "L" }
            partner = { key = "customer" }
            request = { title = "R", due = "2026-03-01T00:00:00Z" }
            document = { number = "F-1", due_date = "2026-02-20", renews_on = "2026-04-01" }
            campaign = { name = "C" }
            meeting = { title = "M" }
        "#;
        for name in EVENTS {
            let seen =
                keys_seen_by_scripts(&format!("name = \"x\"\nevent = \"{name}\"\n{records}"));
            assert_eq!(Some(seen), trigger_fields(name), "{name}");
        }
        for timer in [
            "lead_idle:3",
            "request_due_soon:24",
            "request_overdue:0",
            "close_date_passed",
            "request_age:5",
            "open_item_overdue:7",
            "contract_renewal_due:30",
            "meeting_starts_in:24",
        ] {
            let seen =
                keys_seen_by_scripts(&format!("name = \"x\"\ntimer = \"{timer}\"\n{records}"));
            let name = timer.split(':').next().unwrap();
            assert_eq!(Some(seen), trigger_fields(name), "{timer}");
        }
        assert_eq!(trigger_fields("lead_wom"), None);
    }

    #[test]
    fn every_listed_record_field_is_readable_and_nothing_else() {
        let mut engine = rhai::Engine::new_raw();
        register(&mut engine);
        let case: Case = toml::from_str(
            "name = \"x\"\nevent = \"lead_won\"\nlead = {}\npartner = {}\nrequest = {}\ndocument = {}\ncampaign = {}",
        )
        .unwrap();
        let (trigger, views) = build_case(&case).unwrap();
        let ev = trigger_to_dynamic(&trigger, &views);
        for (record, fields) in [
            ("lead", LEAD_FIELDS),
            ("partner", PARTNER_FIELDS),
            ("request", REQUEST_FIELDS),
            ("document", DOCUMENT_FIELDS),
            ("campaign", CAMPAIGN_FIELDS),
        ] {
            for f in fields.iter().chain(["no_such_field"].iter()) {
                let mut scope = rhai::Scope::new();
                scope.push("ev", ev.clone());
                let r = engine.eval_with_scope::<Dynamic>(&mut scope, &format!("ev.{record}.{f}"));
                assert_eq!(r.is_ok(), *f != "no_such_field", "{record}.{f}: {r:?}");
            }
        }
    }
}
