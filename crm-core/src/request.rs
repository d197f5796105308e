//! Requests (the seed's "sesizări"): tracked tasks or tickets, and comments.

use crate::actor::Actor;
use crate::error::{Error, Result};
use crate::event::{CommentTarget, EventKind, FieldChange, RequestStatus};
use crate::id::{CommentId, LeadId, PartnerId, RequestId, TenantId, UserId};
use crate::lead::Priority;
use crate::time::Timestamp;
use crate::validate;
use serde::{Deserialize, Serialize};

record! {
    /// A tracked request: something someone must do, by a date, about a lead or partner.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Request {
        /// The request's id.
        id: RequestId,
        /// The tenant.
        tenant: TenantId,
        /// The lead it is about.
        lead: Option<LeadId>,
        /// The partner it is about.
        partner: Option<PartnerId>,
        /// Title.
        title: String => &str = borrow,
        /// Description.
        description: Option<String> => Option<&str> = deref,
        /// A kind that stage requirements can name ("quotation", "call", "visit").
        kind: Option<String> => Option<&str> = deref,
        /// Who must do it.
        assignee: UserId,
        /// When it is due.
        due: Option<Timestamp>,
        /// Priority.
        priority: Priority,
        /// Status.
        status: RequestStatus,
        /// Who opened it.
        opened_by: Actor => &Actor = borrow,
        /// Optimistic-concurrency version.
        version: u64,
        /// When it was opened.
        created_at: Timestamp,
        /// When it last changed.
        updated_at: Timestamp,
        /// When it was done or cancelled.
        closed_at: Option<Timestamp>,
    }
}

/// Input for a new request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewRequest {
    /// The lead it is about.
    pub lead: Option<LeadId>,
    /// The partner it is about (taken from the lead when only the lead is given).
    pub partner: Option<PartnerId>,
    /// Title (required).
    pub title: String,
    /// Description.
    pub description: Option<String>,
    /// Kind.
    pub kind: Option<String>,
    /// Who must do it (required).
    pub assignee: Option<UserId>,
    /// When it is due (not in the past).
    pub due: Option<Timestamp>,
    /// Priority.
    pub priority: Priority,
}

impl NewRequest {
    /// A request on a lead, with a title and an assignee.
    pub fn on_lead(lead: LeadId, title: &str, assignee: UserId) -> Self {
        Self {
            lead: Some(lead),
            partner: None,
            title: title.into(),
            description: None,
            kind: None,
            assignee: Some(assignee),
            due: None,
            priority: Priority::Normal,
        }
    }

    /// Sets the kind.
    pub fn of_kind(mut self, kind: &str) -> Self {
        self.kind = Some(kind.into());
        self
    }

    /// Sets the due time.
    pub fn due(mut self, at: Timestamp) -> Self {
        self.due = Some(at);
        self
    }

    /// Validates and builds the request. `partner` is the resolved partner (from the lead when not given).
    pub fn build(
        self,
        tenant: TenantId,
        partner: Option<PartnerId>,
        opened_by: Actor,
        now: Timestamp,
    ) -> Result<(Request, EventKind)> {
        if self.lead.is_none() && partner.is_none() {
            return Err(Error::invalid(
                "lead",
                "a request is about a lead or a partner; give one",
            ));
        }
        let title = validate::name("title", &self.title)?;
        let assignee = self
            .assignee
            .ok_or_else(|| Error::invalid("assignee", "a request needs someone to do it"))?;
        if let Some(due) = self.due {
            if due < now {
                return Err(Error::invalid("due", format!("{due} is in the past")));
            }
        }
        let kind = self
            .kind
            .as_deref()
            .map(|k| validate::tag("kind", k))
            .transpose()?;
        let request = Request {
            id: RequestId::new(),
            tenant,
            lead: self.lead,
            partner,
            title,
            description: validate::optional(
                "description",
                self.description.as_deref(),
                validate::MAX_TEXT,
            )?,
            kind,
            assignee,
            due: self.due,
            priority: self.priority,
            status: RequestStatus::Open,
            opened_by,
            version: 1,
            created_at: now,
            updated_at: now,
            closed_at: None,
        };
        let event = EventKind::RequestOpened {
            title: request.title.clone(),
            kind: request.kind.clone(),
            assignee,
            due: request.due,
        };
        Ok((request, event))
    }
}

/// What to do to a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RequestCommand {
    /// Change status (see [`Request::can_move`] for the allowed moves).
    SetStatus {
        /// The new status.
        status: RequestStatus,
    },
    /// Hand to someone else.
    Reassign {
        /// The new assignee.
        assignee: UserId,
    },
    /// Move the due time (not into the past).
    Reschedule {
        /// The new due time.
        due: Option<Timestamp>,
    },
}

impl Request {
    /// The request state machine: open ⇄ in progress → done | cancelled, and done or cancelled can be reopened.
    pub fn can_move(from: RequestStatus, to: RequestStatus) -> bool {
        use RequestStatus::*;
        matches!(
            (from, to),
            (Open, InProgress)
                | (Open, Done)
                | (Open, Cancelled)
                | (InProgress, Open)
                | (InProgress, Done)
                | (InProgress, Cancelled)
                | (Done, Open)
                | (Cancelled, Open)
        )
    }

    /// Whether it is past due and still active at `now`.
    pub fn is_overdue(&self, now: Timestamp) -> bool {
        self.status.is_active() && self.due.is_some_and(|d| d < now)
    }

    /// Applies a command: the new request and its event, or a typed error.
    pub fn apply(&self, cmd: RequestCommand, now: Timestamp) -> Result<(Request, EventKind)> {
        let mut next = self.clone();
        let event = match cmd {
            RequestCommand::SetStatus { status } => {
                if !Self::can_move(self.status, status) {
                    return Err(Error::invalid(
                        "status",
                        format!(
                            "a request cannot go from {} to {}",
                            self.status.as_str(),
                            status.as_str()
                        ),
                    ));
                }
                next.status = status;
                next.closed_at = if status.is_active() { None } else { Some(now) };
                EventKind::RequestStatusChanged {
                    from: self.status,
                    to: status,
                }
            }
            RequestCommand::Reassign { assignee } => {
                if assignee == self.assignee {
                    return Err(Error::invalid(
                        "assignee",
                        "the request is already assigned to that user",
                    ));
                }
                next.assignee = assignee;
                EventKind::RequestUpdated {
                    changes: vec![FieldChange::new("assignee", &self.assignee, &assignee)],
                }
            }
            RequestCommand::Reschedule { due } => {
                if let Some(d) = due {
                    if d < now {
                        return Err(Error::invalid("due", format!("{d} is in the past")));
                    }
                }
                next.due = due;
                EventKind::RequestUpdated {
                    changes: vec![FieldChange::new("due", &self.due, &due)],
                }
            }
        };
        next.version += 1;
        next.updated_at = now;
        Ok((next, event))
    }
}

record! {
    /// A comment on a lead, partner or request. Comments are append-only.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Comment {
        /// The comment's id.
        id: CommentId,
        /// The tenant.
        tenant: TenantId,
        /// What it is on.
        target: CommentTarget,
        /// Who wrote it.
        author: Actor => &Actor = borrow,
        /// The text.
        body: String => &str = borrow,
        /// When.
        created_at: Timestamp,
    }
}

impl Comment {
    /// Validates and builds a comment.
    pub fn new(
        tenant: TenantId,
        target: CommentTarget,
        author: Actor,
        body: &str,
        now: Timestamp,
    ) -> Result<(Comment, EventKind)> {
        let body = validate::bounded("body", body, validate::MAX_TEXT, true)?;
        let excerpt: String = body.chars().take(140).collect();
        let c = Comment {
            id: CommentId::new(),
            tenant,
            target,
            author,
            body,
            created_at: now,
        };
        let e = EventKind::CommentAdded {
            comment: c.id,
            target,
            excerpt,
        };
        Ok((c, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, Utc};

    fn req(now: Timestamp) -> Request {
        NewRequest::on_lead(LeadId::new(), "Call back", UserId::new())
            .build(TenantId::new(), Some(PartnerId::new()), Actor::System, now)
            .unwrap()
            .0
    }

    #[test]
    fn state_machine() {
        let now = Utc::now();
        let r = req(now);
        let (r2, _) = r
            .apply(
                RequestCommand::SetStatus {
                    status: RequestStatus::Done,
                },
                now,
            )
            .unwrap();
        assert_eq!(r2.closed_at, Some(now));
        assert_eq!(r2.version, 2);
        let err = r2
            .apply(
                RequestCommand::SetStatus {
                    status: RequestStatus::Cancelled,
                },
                now,
            )
            .unwrap_err();
        assert_eq!(err.field(), Some("status"));
        let (r3, _) = r2
            .apply(
                RequestCommand::SetStatus {
                    status: RequestStatus::Open,
                },
                now,
            )
            .unwrap();
        assert_eq!(r3.closed_at, None);
    }

    #[test]
    fn unassigned_and_past_due_refused() {
        let now = Utc::now();
        let mut n = NewRequest::on_lead(LeadId::new(), "x", UserId::new());
        n.assignee = None;
        n.due = Some(now - Duration::days(1));
        let e = n
            .clone()
            .build(TenantId::new(), None, Actor::System, now)
            .unwrap_err();
        assert_eq!(e.field(), Some("assignee"));
        n.assignee = Some(UserId::new());
        let e = n
            .build(TenantId::new(), None, Actor::System, now)
            .unwrap_err();
        assert_eq!(e.field(), Some("due"));
    }

    #[test]
    fn overdue() {
        let now = Utc::now();
        let r = NewRequest::on_lead(LeadId::new(), "x", UserId::new())
            .due(now + Duration::hours(1))
            .build(TenantId::new(), None, Actor::System, now)
            .unwrap()
            .0;
        assert!(!r.is_overdue(now));
        assert!(r.is_overdue(now + Duration::hours(2)));
    }
}
