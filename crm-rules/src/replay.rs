//! A dry run on real data: what a scheme would have decided for the events a store holds, changing nothing.
//!
//! [`replay`] reads a tenant's stored events (the activity log) in commit order, shows each one since a given
//! instant to the rule engine with the records it names as they are *now* in the store (an event keeps no copy of
//! the records as they were), and reports the actions, refusals and failures the rules decide, with the people
//! each action would reach. It only reads: nothing is written to the store, and no message is enqueued or sent.
//! Timers are not replayed (they depend on what the records looked like on each past day), and a `rule_failed`
//! event is not shown to the rules, as in production.

use crate::fixtures::{action_view, people_of, Org};
use crm_core::commerce::{CommerceStore, CommerceStoreExt};
use crm_core::comms::{Decision, Directory, RuleEngine, Trigger, Views};
use crm_core::event::{DomainEvent, EventKind};
use crm_core::id::TenantId;
use crm_core::store::{Store, StoreExt};
use crm_core::time::Timestamp;
use crm_core::{Error, Result};

/// How many events one read of the feed returns.
const PAGE: u32 = 500;

/// What the scheme decides for one stored event.
#[derive(Debug, Clone)]
pub struct Replayed {
    /// The event's position in the tenant's commit order.
    pub position: u64,
    /// The event.
    pub event: DomainEvent,
    /// The rules' decision (actions, refusal, failures, trace).
    pub decision: Decision,
    /// Each decided action as fixtures show it: its name, recipient as written, fields, `rule` and the `people`
    /// it reaches (user keys of the organisation, e-mail addresses, else `user <id>`).
    pub actions: Vec<serde_json::Map<String, serde_json::Value>>,
}

impl Replayed {
    /// Whether the rules decided anything (an action, a refusal or a failure).
    pub fn decided(&self) -> bool {
        !self.decision.actions.is_empty()
            || self.decision.refusal.is_some()
            || !self.decision.failures.is_empty()
    }
}

/// The records an event names, as the store holds them now (missing ones left out).
async fn views_of<S: Store + CommerceStore + ?Sized>(
    store: &S,
    tenant: TenantId,
    e: &DomainEvent,
) -> Result<Views> {
    /// The record `read` reads for `id`, if any (a missing one left out).
    async fn read<I, T, F>(id: Option<I>, read: impl FnOnce(I) -> F) -> Result<Option<T>>
    where
        F: std::future::Future<Output = Result<T>>,
    {
        match id {
            None => Ok(None),
            Some(id) => match read(id).await {
                Ok(v) => Ok(Some(v)),
                Err(Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            },
        }
    }
    let (s, k) = (e.subject, &e.kind);
    Ok(Views {
        lead: read(s.lead, |id| store.lead(tenant, id)).await?,
        partner: read(s.partner, |id| store.partner(tenant, id)).await?,
        request: read(s.request, |id| store.request(tenant, id)).await?,
        document: read(k.document(), |id| store.document(tenant, id)).await?,
        campaign: read(k.campaign(), |id| store.campaign(tenant, id)).await?,
        open_item: None,
        contract: read(k.contract(), |id| store.contract(tenant, id)).await?,
        meeting: read(k.meeting(), |id| store.meeting(tenant, id)).await?,
    })
}

/// Runs `engine` over `tenant`'s events stored at or after `since`, in commit order, and returns what it decides
/// for each (events for which it decides nothing included), resolving people through `directory` and naming them
/// by the keys of `org`. Reads only.
///
/// # Errors
///
/// [`Error::Storage`] when the store cannot be read.
pub async fn replay<S: Store + CommerceStore + ?Sized>(
    store: &S,
    tenant: TenantId,
    since: Timestamp,
    engine: &dyn RuleEngine,
    directory: &dyn Directory,
    org: &Org,
) -> Result<Vec<Replayed>> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        // Opened: the rules see each event's payload, or `erased` where a person it named was erased.
        let page = store.events_since(tenant, after, PAGE).await?;
        let page = crm_core::service::open_feed(store, tenant, page).await?;
        let Some((last, _)) = page.last() else {
            return Ok(out);
        };
        after = *last;
        for (position, event) in page {
            if event.at < since || matches!(event.kind, EventKind::RuleFailed { .. }) {
                continue;
            }
            let views = views_of(store, tenant, &event).await?;
            let trigger = Trigger::Event(event);
            let decision = engine.evaluate(&trigger, &views);
            let actions = decision
                .actions
                .iter()
                .map(|d| {
                    let people = people_of(&d.action, &trigger, &views, org, directory);
                    action_view(&d.action, &d.rule, Some(people))
                })
                .collect();
            let Trigger::Event(event) = trigger else {
                continue;
            };
            out.push(Replayed {
                position,
                event,
                decision,
                actions,
            });
        }
    }
}
