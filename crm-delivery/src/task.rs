//! The task notifier: a rule's `follow_up` or `open_request` becomes a tracked request, opened through the service.

use async_trait::async_trait;
use chrono::Duration;
use crm_core::actor::Context;
use crm_core::comms::{Action, MAX_TIMER_DAYS, MAX_TIMER_HOURS};
use crm_core::error::{Error, Result};
use crm_core::id::UserId;
use crm_core::outbox::OutboxMessage;
use crm_core::time::Timestamp;

/// Carries out task-channel messages (open a request, reassign, tag, follow up) through the service, as the rule
/// that decided them (`Actor::Rule`, source `rules`).
///
/// Exactly once per idempotency key: an opened request carries the key in its description, and a redelivered
/// message whose request exists is acknowledged without opening another. Reassigning and tagging are idempotent by
/// nature. A missing lead or an invalid assignee is permanent; a storage error that can be retried is transient.
#[derive(Debug, Clone)]
pub struct TaskNotifier {
    service: crm_core::service::CrmService,
}

impl TaskNotifier {
    /// A notifier acting through `service` (build it without the rules hook, or with it: task changes are events
    /// like any other and rules see them).
    pub fn new(service: crm_core::service::CrmService) -> Self {
        Self { service }
    }

    fn marker(key: &str) -> String {
        format!("[outbox:{key}]")
    }

    async fn run(&self, m: &OutboxMessage) -> Result<()> {
        let action =
            m.payload.action.as_ref().ok_or_else(|| {
                Error::invalid("payload.action", "a task message carries its action")
            })?;
        let ctx = Context {
            tenant: m.tenant,
            actor: crm_core::actor::Actor::Rule {
                name: m.rule.clone(),
            },
            source: crm_core::actor::Source::Rules,
        };
        let lead_id: Option<crm_core::id::LeadId> = m
            .payload
            .vars
            .get("lead")
            .cloned()
            .and_then(|v| serde_json::from_value(v).ok());
        let now = self.service.clock().now();
        let ctx_ref = &ctx;
        let open = |title: String,
                    kind: Option<String>,
                    due_in: Option<(&'static str, u32)>,
                    assignee: Option<UserId>| {
            let lead = lead_id;
            let marker = Self::marker(&m.idempotency_key);
            let ctx = ctx_ref;
            async move {
                let due = match due_in {
                    None => None,
                    Some((field, hours)) => Some(task_due(now, field, hours)?),
                };
                let lead =
                    lead.ok_or_else(|| Error::invalid("lead", "the task concerns no lead"))?;
                let assignee = assignee
                    .ok_or_else(|| Error::invalid("assignee", "the task has no user to assign"))?;
                let existing = self.service.requests_of_lead(ctx.tenant, lead).await?;
                if existing
                    .iter()
                    .any(|r| r.description().is_some_and(|d| d.contains(&marker)))
                {
                    return Ok(());
                }
                let mut input = crm_core::request::NewRequest::on_lead(lead, &title, assignee);
                input.description = Some(marker);
                input.kind = kind;
                input.due = due;
                self.service.open_request(ctx, input).await.map(|_| ())
            }
        };
        match action {
            Action::OpenRequest {
                title,
                kind,
                due_in_hours,
                ..
            } => {
                open(
                    title.clone(),
                    kind.clone(),
                    due_in_hours.map(|h| ("payload.action.due_in_hours", h)),
                    m.recipient.user,
                )
                .await
            }
            Action::ScheduleFollowUp { in_hours, note } => {
                open(
                    format!("Follow up: {note}"),
                    Some("follow_up".into()),
                    Some(("payload.action.in_hours", *in_hours)),
                    m.recipient.user,
                )
                .await
            }
            Action::Reassign { .. } | Action::AddTag { .. } => {
                let id =
                    lead_id.ok_or_else(|| Error::invalid("lead", "the task concerns no lead"))?;
                let lead = self.service.lead(m.tenant, id).await?;
                let mut patch = crm_core::lead::LeadPatch::default();
                match action {
                    Action::Reassign { .. } => {
                        let to = m.recipient.user.ok_or_else(|| {
                            Error::invalid("recipient", "a lead can only be given to a user")
                        })?;
                        if lead.owner() == Some(to) {
                            return Ok(());
                        }
                        patch.owner = Some(Some(to));
                    }
                    Action::AddTag { tag } => {
                        if lead.tags().contains(tag) {
                            return Ok(());
                        }
                        let mut tags = lead.tags().clone();
                        tags.insert(tag.clone());
                        patch.tags = Some(tags);
                    }
                    _ => {}
                }
                self.service
                    .transition(
                        &ctx,
                        id,
                        lead.version(),
                        crm_core::lead::LeadCommand::Update(patch),
                    )
                    .await
                    .map(|_| ())
            }
            other => Err(Error::invalid(
                "payload.action",
                format!("`{}` is not a task", other.name()),
            )),
        }
    }
}

/// When a task decided at `now` is due `hours` later: at most [`MAX_TIMER_HOURS`] ahead, and inside the calendar.
fn task_due(now: Timestamp, field: &str, hours: u32) -> Result<Timestamp> {
    if hours > MAX_TIMER_HOURS {
        return Err(Error::invalid(
            field,
            format!("a task is due at most {MAX_TIMER_HOURS} hours ({MAX_TIMER_DAYS} days) ahead, not {hours}"),
        ));
    }
    Duration::try_hours(i64::from(hours))
        .and_then(|d| now.checked_add_signed(d))
        .ok_or_else(|| {
            Error::invalid(
                field,
                format!("{hours} hours after {now} is outside the calendar"),
            )
        })
}

#[async_trait]
impl crm_core::outbox::Notifier for TaskNotifier {
    async fn deliver(
        &self,
        m: &OutboxMessage,
    ) -> std::result::Result<(), crm_core::outbox::DeliveryError> {
        self.run(m).await.map_err(|e| {
            if e.is_retryable() {
                crm_core::outbox::DeliveryError::Transient(e.to_string())
            } else {
                crm_core::outbox::DeliveryError::Permanent(e.to_string())
            }
        })
    }
}
