//! What a script sees: the trigger and read-only views of its records, as an object map.
//!
//! Scripts receive copies: changing `ev.lead.title` in a script changes nothing outside it.

use crm_core::rules::{TimerTrigger, Trigger, Views};
use rhai::{Dynamic, Map};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use std::str::FromStr;

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

/// Adds `revenue` (a Decimal) and `currency` next to a map's `expected_revenue` `{amount, currency}`.
fn add_money(map: &mut Map) {
    let money = map
        .get("expected_revenue")
        .and_then(|v| v.read_lock::<Map>().map(|m| m.clone()));
    let (revenue, currency) = match money {
        Some(m) => {
            let amount = m
                .get("amount")
                .and_then(|a| a.clone().into_string().ok())
                .and_then(|s| Decimal::from_str(&s).ok());
            let currency = m.get("currency").cloned().unwrap_or(Dynamic::UNIT);
            (
                amount.map(Dynamic::from_decimal).unwrap_or(Dynamic::UNIT),
                currency,
            )
        }
        None => (Dynamic::UNIT, Dynamic::UNIT),
    };
    map.insert("revenue".into(), revenue);
    map.insert("currency".into(), currency);
}

/// The trigger and views as the one argument every entry point receives.
pub fn trigger_to_dynamic(trigger: &Trigger, views: &Views) -> Dynamic {
    let value = trigger_json(trigger, views);
    let d = rhai::serde::to_dynamic(&value).unwrap_or(Dynamic::UNIT);
    let Some(mut map) = d.try_cast::<Map>() else {
        return Dynamic::UNIT;
    };
    if map.contains_key("expected_revenue") {
        add_money(&mut map);
    }
    if let Some(lead) = map.get_mut("lead") {
        if let Some(mut l) = lead.clone().try_cast::<Map>() {
            add_money(&mut l);
            *lead = Dynamic::from_map(l);
        }
    }
    Dynamic::from_map(map)
}
