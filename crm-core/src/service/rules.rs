//! The communication rules inside the write path: [`RulesHook`] shows every change to the rule engine before it
//! commits and turns its decisions into writes of the same transaction ([`decision_writes`]).

use super::{CommitHook, Loaded};
use crate::actor::Context;
use crate::commerce::CommerceWrite;
use crate::comms::{to_outbox, Decision, Directory, RuleEngine, RuleFailure, Trigger, Views};
use crate::error::{Error, Result};
use crate::event::{DomainEvent, EventKind, Subject};
use crate::lead::TransitionError;
use crate::store::{ChangeSet, Write};
use std::sync::Arc;

impl Views {
    /// The views a change set carries for `subject`: the last state of each record it inserts or updates.
    pub fn from_change_set(changes: &ChangeSet, subject: &Subject) -> Self {
        Self::from_change_set_loaded(changes, subject, &Loaded::default())
    }

    /// The views for `subject`: the records the service loaded as context, overridden by the last state of each
    /// record the change set inserts or updates.
    pub fn from_change_set_loaded(changes: &ChangeSet, subject: &Subject, loaded: &Loaded) -> Self {
        let mut v = Views {
            lead: loaded
                .leads
                .iter()
                .find(|l| Some(l.id) == subject.lead)
                .cloned(),
            partner: loaded
                .partners
                .iter()
                .find(|p| Some(p.id) == subject.partner)
                .cloned(),
            request: loaded
                .requests
                .iter()
                .find(|r| Some(r.id) == subject.request)
                .cloned(),
            ..Default::default()
        };
        for w in &changes.writes {
            match w {
                Write::InsertLead(l) | Write::UpdateLead { lead: l, .. }
                    if Some(l.id) == subject.lead =>
                {
                    v.lead = Some(l.clone());
                }
                Write::InsertPartner { partner: p, .. }
                | Write::UpdatePartner { partner: p, .. }
                    if Some(p.id) == subject.partner =>
                {
                    v.partner = Some(p.clone());
                }
                Write::InsertRequest(r) | Write::UpdateRequest { request: r, .. }
                    if Some(r.id) == subject.request =>
                {
                    v.request = Some(r.clone());
                }
                _ => {}
            }
        }
        v
    }

    /// The views of `event`: [`Views::from_change_set_loaded`] for its subject, plus the document and the
    /// campaign it is about (as the change set writes them, else as the service loaded them) and the contract
    /// or meeting it is about (as the change set writes it: every contract and meeting event's change does).
    pub fn for_event(changes: &ChangeSet, event: &DomainEvent, loaded: &Loaded) -> Self {
        let mut v = Self::from_change_set_loaded(changes, &event.subject, loaded);
        let (document, campaign) = (event.kind.document(), event.kind.campaign());
        v.document = document.and_then(|id| loaded.documents.iter().find(|d| d.id == id).cloned());
        v.campaign = campaign.and_then(|id| loaded.campaigns.iter().find(|c| c.id == id).cloned());
        for w in &changes.writes {
            match w {
                Write::Commerce(
                    CommerceWrite::InsertDocument(d)
                    | CommerceWrite::ReplaceDocument { document: d, .. },
                ) if Some(d.id) == document => v.document = Some(d.clone()),
                Write::Commerce(
                    CommerceWrite::InsertCampaign(c)
                    | CommerceWrite::UpdateCampaign { campaign: c, .. },
                ) if Some(c.id) == campaign => v.campaign = Some(c.clone()),
                Write::Commerce(
                    CommerceWrite::InsertContract(c)
                    | CommerceWrite::UpdateContract { contract: c, .. },
                ) if Some(c.id) == event.kind.contract() => v.contract = Some(c.clone()),
                Write::Commerce(
                    CommerceWrite::InsertMeeting(m)
                    | CommerceWrite::UpdateMeeting { meeting: m, .. },
                ) if Some(m.id) == event.kind.meeting() => v.meeting = Some(m.clone()),
                _ => {}
            }
        }
        v
    }
}

/// Turns a decision into writes: outbox messages for its actions and a [`EventKind::RuleFailed`] event for each
/// failure (including actions whose recipients cannot be resolved). Every message passes
/// [`consent_gate`](super::consent_gate) first: a marketing e-mail without its recipient's consent becomes a
/// [`EventKind::MessageSuppressed`] event instead. The refusal is the caller's to handle.
pub fn decision_writes(
    ctx: &Context,
    trigger: &Trigger,
    views: &Views,
    decision: &Decision,
    directory: &dyn Directory,
) -> Vec<Write> {
    let mut writes = Vec::new();
    let mut failures = decision.failures.clone();
    for (i, d) in decision.actions.iter().enumerate() {
        match to_outbox(trigger, views, i, d, directory) {
            Ok(msgs) => {
                // Consent is checked here, where every rule's message is enqueued, not by each rule.
                for m in msgs {
                    let recipient = m.recipient.label();
                    match super::consent_gate(m, views.partner.as_ref()) {
                        super::Gate::Send(m) => writes.push(Write::EnqueueOutbox(*m)),
                        super::Gate::Suppress(reason) => {
                            writes.push(Write::AppendEvent(DomainEvent::new(
                                ctx,
                                trigger.at(),
                                trigger.subject(),
                                EventKind::MessageSuppressed {
                                    rule: d.rule.clone(),
                                    recipient,
                                    reason,
                                },
                            )))
                        }
                    }
                }
            }
            Err(e) => failures.push(RuleFailure {
                rule: d.rule.clone(),
                message: format!("{} action {}: {e}", d.action.name(), i),
            }),
        }
    }
    for f in failures {
        writes.push(Write::AppendEvent(DomainEvent::new(
            ctx,
            trigger.at(),
            trigger.subject(),
            EventKind::RuleFailed {
                rule: f.rule,
                message: f.message,
            },
        )));
    }
    writes
}

/// The [`CommitHook`] that runs the rules inside the commit of every change.
///
/// For each event of the change set (except [`EventKind::RuleFailed`], so failures never trigger rules), it asks the
/// engine; a refusal aborts the change with [`TransitionError::RefusedByRule`], actions become outbox writes and
/// failures become `rule_failed` events, all in the same transaction.
#[derive(Debug, Clone)]
pub struct RulesHook {
    engine: Arc<dyn RuleEngine>,
    directory: Arc<dyn Directory>,
}

impl RulesHook {
    /// A hook asking `engine` and resolving people through `directory`.
    pub fn new(engine: Arc<dyn RuleEngine>, directory: Arc<dyn Directory>) -> Self {
        Self { engine, directory }
    }
}

impl CommitHook for RulesHook {
    fn before_commit(&self, ctx: &Context, changes: &mut ChangeSet, loaded: &Loaded) -> Result<()> {
        let events: Vec<DomainEvent> = changes
            .events()
            .filter(|e| !matches!(e.kind, EventKind::RuleFailed { .. }))
            .cloned()
            .collect();
        let mut extra = Vec::new();
        for e in events {
            let views = Views::for_event(changes, &e, loaded);
            let trigger = Trigger::Event(e);
            let decision = self.engine.evaluate(&trigger, &views);
            if let Some(r) = decision.refusal {
                return Err(Error::Transition(TransitionError::RefusedByRule {
                    rule: r.rule,
                    reason: r.reason,
                }));
            }
            extra.extend(decision_writes(
                ctx,
                &trigger,
                &views,
                &decision,
                self.directory.as_ref(),
            ));
        }
        changes.writes.extend(extra);
        Ok(())
    }
}
