//! The log of every contact through the lead service: calls a user logs, and e-mails a user sends from a lead,
//! partner or request through the outbox (logged on the timelines once delivered, by the dispatcher).

use super::{CrmService, Outcome};
use crate::actor::{Actor, Context};
use crate::comms::{Channel, OutboxMessage, Payload, ResolvedRecipient};
use crate::contact::{Call, UserEmail};
use crate::error::{Error, Result};
use crate::event::{CommentTarget, DomainEvent, EventKind, Subject};
use crate::store::{ChangeSet, StoreExt, Write};

pub use crate::contact::SENDER_VAR;

impl CrmService {
    /// Logs a call with the customer on a lead, partner or request: a [`EventKind::CallLogged`] event on the
    /// timelines of the record (and of its lead and partner), beside the data changes.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm_core::{actor::Context, conformance::model::MemStore, id::{TenantId, UserId}};
    /// # use crm_core::{service::CrmService, Error};
    /// # futures::executor::block_on(async {
    /// # let crm = CrmService::builder().store(Arc::new(MemStore::new())).build()?;
    /// # let ctx = Context::user(TenantId::new(), UserId::new());
    /// # crm.setup_tenant(&ctx).await?;
    /// # use crm_core::{lead::{LeadPartner, NewLead}, partner::NewPartner};
    /// # let new_partner = LeadPartner::New { partner: NewPartner::company("Acme SRL") };
    /// # let lead = crm.enter_lead(&ctx, NewLead::new(new_partner, "Forklifts")).await?.record;
    /// use crm_core::contact::{Call, CallDirection, CallResult};
    /// use crm_core::event::{CommentTarget, EventKind};
    /// use crm_core::store::{PageRequest, TimelineOf};
    /// let started = crm.clock().now() - chrono::Duration::minutes(5);
    /// let call = Call::new(CallDirection::Outbound, CallResult::Connected, started, 180, Some("Ana"), "Wants a demo", crm.clock().now())?;
    /// crm.log_call(&ctx, CommentTarget::Lead(lead.id()), call).await?;
    /// let log = crm.timeline(ctx.tenant, TimelineOf::Lead(lead.id()), &PageRequest::first(1)).await?;
    /// assert!(matches!(log.items[0].kind, EventKind::CallLogged { .. }));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `started_at` when the call starts after the service's clock; [`Error::NotFound`] when
    /// the lead, partner or request is not the tenant's; [`Error::Storage`] when the store cannot be read or the
    /// change cannot be committed (nothing is then written), and whatever a [`super::CommitHook`] returns.
    pub async fn log_call(
        &self,
        ctx: &Context,
        about: CommentTarget,
        call: Call,
    ) -> Result<Outcome<Call>> {
        let now = self.clock.now();
        if call.started_at > now {
            return Err(Error::invalid(
                "started_at",
                format!("{} is in the future (now is {now})", call.started_at),
            ));
        }
        let subject = self.subject_of(ctx.tenant, about).await?;
        let kind = EventKind::CallLogged { call: call.clone() };
        let event = DomainEvent::new(ctx, now, subject, kind);
        let cs: ChangeSet = [Write::AppendEvent(event)].into_iter().collect();
        self.commit_outcome(ctx, cs, call).await
    }

    /// A user sends an e-mail from a lead, partner or request: one outbox message (the template rendered at
    /// delivery with the record's `lead`, `partner` and `request`, the given vars and the files attached), about
    /// the record, so that the dispatcher logs it on its timelines once delivered
    /// ([`EventKind::EmailSent`], by the user). Nothing is logged before delivery.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm_core::{actor::Context, conformance::model::MemStore, id::{TenantId, UserId}};
    /// # use crm_core::{service::CrmService, Error};
    /// # futures::executor::block_on(async {
    /// # let crm = CrmService::builder().store(Arc::new(MemStore::new())).build()?;
    /// # let ctx = Context::user(TenantId::new(), UserId::new());
    /// # crm.setup_tenant(&ctx).await?;
    /// # use crm_core::{lead::{LeadPartner, NewLead}, partner::NewPartner};
    /// # let new_partner = LeadPartner::New { partner: NewPartner::company("Acme SRL") };
    /// # let lead = crm.enter_lead(&ctx, NewLead::new(new_partner, "Forklifts")).await?.record;
    /// use crm_core::contact::{MailFile, UserEmail};
    /// use crm_core::event::CommentTarget;
    /// let mail = UserEmail::new("maria@acme.ro", "follow_up")
    ///     .to_name("Maria")
    ///     .var("offer", "10% off")
    ///     .attach(MailFile::new("brochure.pdf", "application/pdf", b"%PDF-1.7".to_vec()));
    /// let sent = crm.send_email(&ctx, CommentTarget::Lead(lead.id()), mail).await?;
    /// assert_eq!(sent.record.payload.template.as_deref(), Some("follow_up"));
    /// assert_eq!(sent.record.about.lead, Some(lead.id()));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `actor` when the caller is not a user, and as [`UserEmail::check`] (`to_email`,
    /// `to_name`, `template`, `vars`, `attachments`); [`Error::NotFound`] when the lead, partner or request is not
    /// the tenant's; [`Error::Storage`] when the store cannot be read or the change cannot be committed (then no
    /// e-mail either), and whatever a [`super::CommitHook`] returns.
    pub async fn send_email(
        &self,
        ctx: &Context,
        about: CommentTarget,
        mail: UserEmail,
    ) -> Result<Outcome<OutboxMessage>> {
        let Actor::User { id: sender } = ctx.actor else {
            return Err(Error::invalid(
                "actor",
                format!("only a user sends e-mail from a record, not {}", ctx.actor),
            ));
        };
        let mail = mail.check()?;
        // The record and the records it belongs to, each read once (the same subject as `subject_of` gives).
        let t = ctx.tenant;
        let request = match about {
            CommentTarget::Request(id) => Some(self.store.request(t, id).await?),
            _ => None,
        };
        let lead_id = match about {
            CommentTarget::Lead(id) => Some(id),
            _ => request.as_ref().and_then(|r| r.lead),
        };
        let lead = match lead_id {
            Some(id) => Some(self.live_lead(t, id).await?),
            None => None,
        };
        let partner_id = match (about, &request) {
            (CommentTarget::Partner(id), _) => Some(id),
            (_, Some(r)) => r.partner,
            _ => lead.as_ref().map(|l| l.partner),
        };
        let partner = match partner_id {
            Some(id) => Some(self.store.partner(t, id).await?),
            None => None,
        };
        let subject = Subject {
            partner: partner_id,
            lead: lead_id,
            request: request.as_ref().map(|r| r.id),
        };
        let mut vars = serde_json::json!({
            "lead": lead,
            "partner": partner,
            "request": request,
        });
        if let (Some(all), serde_json::Value::Object(given)) = (vars.as_object_mut(), &mail.vars) {
            all.insert(SENDER_VAR.into(), serde_json::json!(sender));
            for (k, v) in given {
                all.insert(k.clone(), v.clone());
            }
            if !mail.attachments.is_empty() {
                let files: Vec<(&str, &str, &[u8])> = mail
                    .attachments
                    .iter()
                    .map(|f| (f.name.as_str(), f.media_type.as_str(), f.bytes.as_slice()))
                    .collect();
                all.insert("attachments".into(), crate::comms::attachment_var(&files));
            }
        }
        let now = self.clock.now();
        let recipient = ResolvedRecipient {
            phone: None,
            user: None,
            name: mail.to_name.clone(),
            email: Some(mail.to_email.clone()),
        };
        let payload = Payload {
            subject: String::new(),
            body: String::new(),
            template: Some(mail.template.clone()),
            vars,
            action: None,
        };
        let mut message = OutboxMessage::pending(
            ctx.tenant,
            String::new(),
            "user_email",
            Channel::Email,
            recipient,
            payload,
            now,
        )
        .about(subject);
        message.idempotency_key = format!("email/{}", message.id);
        let cs: ChangeSet = [Write::EnqueueOutbox(message.clone())]
            .into_iter()
            .collect();
        self.commit_outcome(ctx, cs, message).await
    }
}
