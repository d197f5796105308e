//! What a script sees: the trigger and read-only views of its records, as an object map.
//!
//! The records are read-only views: a script reading `ev.lead.title` gets the value, converted when read; a script
//! assigning to it fails (there is no setter).

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
                TimerTrigger::LeadIdle { days } | TimerTrigger::RequestOverdue { days } => {
                    m.insert("days".into(), json!(days));
                }
                TimerTrigger::RequestDueSoon { hours } => {
                    m.insert("hours".into(), json!(hours));
                }
                TimerTrigger::CloseDatePassed => {}
            }
            m.insert("at".into(), json!(t.at));
            m.insert("key".into(), json!(t.key));
            if let Some(l) = &views.lead {
                m.insert("days_idle".into(), json!((t.at - l.updated_at).num_days()));
            }
            if let Some(due) = views.request.as_ref().and_then(|r| r.due) {
                m.insert("days_overdue".into(), json!((t.at - due).num_days()));
                m.insert("hours_to_due".into(), json!((due - t.at).num_hours()));
            }
        }
    }
    m.insert("lead".into(), json!(views.lead));
    m.insert("partner".into(), json!(views.partner));
    m.insert("request".into(), json!(views.request));
    Value::Object(m)
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

macro_rules! getters {
    ($engine:ident, $ty:ty, [$($field:ident),* $(,)?]) => {
        $( $engine.register_get(stringify!($field), |v: &mut $ty| to_dyn(&v.0.$field)); )*
    };
}

/// Registers the view types and their read-only properties.
pub fn register(engine: &mut rhai::Engine) {
    engine.register_type_with_name::<LeadView>("Lead");
    engine.register_type_with_name::<PartnerView>("Partner");
    engine.register_type_with_name::<RequestView>("Request");
    getters!(
        engine,
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
        ]
    );
    engine.register_get("status", |v: &mut LeadView| {
        Dynamic::from(v.0.status.kind().as_str().to_string())
    });
    engine.register_get("revenue", |v: &mut LeadView| {
        revenue(v.0.expected_revenue.as_ref())
    });
    engine.register_get("currency", |v: &mut LeadView| {
        currency(v.0.expected_revenue.as_ref())
    });
    getters!(
        engine,
        PartnerView,
        [
            id, kind, name, roles, contacts, locations, industry, turnover, tax_id, website, group,
            owner, tags, version, created_at, updated_at,
        ]
    );
    getters!(
        engine,
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
        ]
    );
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
                    if !matches!(k.as_str(), "lead" | "partner" | "request") {
                        map.insert(k.into(), to_dyn(&v));
                    }
                }
            }
            let at = trigger.at();
            if let Some(l) = &views.lead {
                map.insert(
                    "days_idle".into(),
                    Dynamic::from((at - l.updated_at).num_days()),
                );
            }
            if let Some(due) = views.request.as_ref().and_then(|r| r.due) {
                map.insert("days_overdue".into(), Dynamic::from((at - due).num_days()));
                map.insert("hours_to_due".into(), Dynamic::from((due - at).num_hours()));
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
    Dynamic::from_map(map)
}
