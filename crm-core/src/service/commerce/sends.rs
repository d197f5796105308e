//! E-mail and SMS campaigns through the commerce service: the message, the send (one outbox message per target,
//! consent-gated, spaced out by the tenant's send rate, exactly once), and the delivery reports the host passes on.
//!
//! # Exactly once
//!
//! A target's message has the idempotency key `campaign:<campaign>/<partner>` ([`message_key`]): the outbox keeps one
//! message per key and tenant, and the target records its send in the same transaction, so a send repeated, resumed
//! after a crash or run twice at once enqueues each target's message once. (Delivery from the outbox to the medium
//! is at least once, deduplicated by the same key: see [`crate::outbox`].)
//!
//! # The send rate
//!
//! Each tenant sends at most [`SendRate`] messages an hour: a send gives its messages due times spaced
//! `3600 s ÷ rate` apart, starting at the tenant's next free slot (kept in the tenant setting
//! [`SEND_HORIZON_KEY`]), and the dispatcher hands over a message only once it is due. Sends of one service are
//! serialised, so two campaigns of a tenant share its rate; two processes sending for the same tenant at the same
//! moment may overlap their slots (each keeps its own pace).

use super::CommerceService;
use crate::actor::Context;
use crate::commerce::send::{
    recipient_of, DeliveryReport, Renderer, SendStatus, SendSummary, TargetSend, TemplateVars,
};
use crate::commerce::{Campaign, CampaignTarget, Channel, CommerceStoreExt, CommerceWrite};
use crate::comms::{OutboxMessage, Payload, ResolvedRecipient};
use crate::consent::{Consent, ConsentChannel, Purpose, UnsubscribeToken, UNSUBSCRIBE_VAR};
use crate::error::{Error, Result};
use crate::event::{DomainEvent, EventKind, Subject};
use crate::id::{CampaignId, PartnerId, TenantId};
use crate::page::PageRequest;
use crate::service::Outcome;
use crate::service::{consent_gate, Gate};
use crate::store::{ChangeSet, StoreExt, Write};
use crate::time::Timestamp;

/// The tenant setting holding the next free send slot (RFC 3339).
pub const SEND_HORIZON_KEY: &str = "campaign.send_horizon";

/// How many targets one transaction of a send handles.
const SEND_BATCH: u32 = 200;

/// How many messages a tenant's campaigns send an hour, at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SendRate {
    per_hour: u32,
}

impl Default for SendRate {
    /// One message a second.
    fn default() -> Self {
        Self { per_hour: 3_600 }
    }
}

impl SendRate {
    /// The most a rate may be: 1,000 messages a second.
    pub const MAX_PER_HOUR: u32 = 3_600_000;

    /// At most `per_hour` messages an hour.
    ///
    /// ```
    /// use crm_core::service::SendRate;
    /// assert_eq!(SendRate::per_hour(7_200).unwrap().spacing(), chrono::Duration::milliseconds(500));
    /// assert_eq!(SendRate::per_hour(0).unwrap_err().field(), Some("send_rate"));
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `send_rate` for 0 or more than [`SendRate::MAX_PER_HOUR`].
    pub fn per_hour(per_hour: u32) -> Result<Self> {
        if per_hour == 0 || per_hour > Self::MAX_PER_HOUR {
            return Err(Error::invalid(
                "send_rate",
                format!("{per_hour} messages an hour: 1 to {}", Self::MAX_PER_HOUR),
            ));
        }
        Ok(Self { per_hour })
    }

    /// Messages an hour.
    pub fn messages_per_hour(&self) -> u32 {
        self.per_hour
    }

    /// The time between two messages.
    pub fn spacing(&self) -> chrono::Duration {
        chrono::Duration::microseconds(3_600_000_000 / i64::from(self.per_hour.max(1)))
    }
}

/// The outbox idempotency key of `campaign`'s message to `partner`: what
/// [`CommerceService::report_campaign_message`] takes back.
pub fn message_key(campaign: CampaignId, partner: PartnerId) -> String {
    format!("campaign:{campaign}/{partner}")
}

/// The campaign and partner a [`message_key`] names.
fn parse_key(key: &str) -> Result<(CampaignId, PartnerId)> {
    let bad = || {
        Error::invalid(
            "message",
            format!("`{key}` is not a campaign message's key (campaign:<campaign>/<partner>)"),
        )
    };
    let rest = key.trim().strip_prefix("campaign:").ok_or_else(bad)?;
    let (c, p) = rest.split_once('/').ok_or_else(bad)?;
    let c: uuid::Uuid = c.parse().map_err(|_| bad())?;
    let p: uuid::Uuid = p.parse().map_err(|_| bad())?;
    Ok((CampaignId::from_uuid(c), PartnerId::from_uuid(p)))
}

impl CommerceService {
    /// Every tenant's campaigns send at most `rate` messages an hour (unless set for the tenant); one a second by
    /// default.
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (crm, store, commerce, ctx) = crm_core::conformance::model::example_commerce().await?;
    /// use crm_core::service::SendRate;
    /// let commerce = commerce.with_send_rate(SendRate::per_hour(600)?);
    /// assert_eq!(commerce.send_rate(ctx.tenant).messages_per_hour(), 600);
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    pub fn with_send_rate(mut self, rate: SendRate) -> Self {
        std::sync::Arc::make_mut(&mut self.send_rates).default = rate;
        self
    }

    /// `tenant`'s campaigns send at most `rate` messages an hour, whatever the default.
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (crm, store, commerce, ctx) = crm_core::conformance::model::example_commerce().await?;
    /// use crm_core::service::SendRate;
    /// let commerce = commerce.with_tenant_send_rate(ctx.tenant, SendRate::per_hour(60)?);
    /// assert_eq!(commerce.send_rate(ctx.tenant).messages_per_hour(), 60);
    /// assert_eq!(commerce.send_rate(TenantId::new()).messages_per_hour(), 3_600);
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    pub fn with_tenant_send_rate(mut self, tenant: TenantId, rate: SendRate) -> Self {
        std::sync::Arc::make_mut(&mut self.send_rates)
            .tenants
            .insert(tenant, rate);
        self
    }

    /// The rate `tenant`'s campaigns send at.
    ///
    /// # Examples
    ///
    /// See [`CommerceService::with_tenant_send_rate`].
    pub fn send_rate(&self, tenant: TenantId) -> SendRate {
        *self.send_rates.get(tenant)
    }

    /// Sets the message an e-mail or SMS campaign sends each target: minijinja templates of its subject (e-mail),
    /// text and HTML alternative (e-mail), over the partner's, the contact's and the campaign's fields
    /// ([`FIELDS`](crate::commerce::send::FIELDS)), checked here, so a template naming a missing field fails now and
    /// not at send time.
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (crm, store, commerce, ctx) = crm_core::conformance::model::example_commerce().await?;
    /// use crm_core::commerce::{send::CampaignMessage, Channel};
    /// let message = CampaignMessage::email("{{ campaign.name }}", "Dear {{ contact.name }}, {{ campaign.offer }}")
    ///     .with_offer("10% off every pump");
    /// assert!(message.check(Channel::Email).is_ok());
    /// let typo = CampaignMessage::email("Hi", "Dear {{ contact.fullname }}");
    /// assert_eq!(typo.check(Channel::Email).unwrap_err().field(), Some("message.text"));
    /// // Here the commerce store has no records; the conformance suite sets messages on real ones.
    /// let err = commerce.set_campaign_message(&ctx, CampaignId::new(), 1, message).await.unwrap_err();
    /// assert!(matches!(err, Error::NotFound { entity: "campaign", .. }));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the campaign is not the tenant's; [`Error::Invalid`] as
    /// [`Campaign::with_message`] (`status`, `channel`, `message.*`); [`Error::Conflict`] when `expected_version`
    /// is stale; [`Error::Storage`] when the store cannot be read or the change cannot be committed.
    pub async fn set_campaign_message(
        &self,
        ctx: &Context,
        id: CampaignId,
        expected_version: u64,
        message: crate::commerce::send::CampaignMessage,
    ) -> Result<Campaign> {
        let c = self.store.campaign(ctx.tenant, id).await?;
        crate::service::check_version("campaign", id, expected_version, c.version())?;
        let now = self.crm.clock().now();
        let next = c.with_message(message, now)?;
        let cs = ChangeSet::from_iter([
            CommerceWrite::UpdateCampaign {
                campaign: next.clone(),
                expected_version,
            }
            .into(),
            Write::AppendEvent(DomainEvent::new(
                ctx,
                now,
                Subject::default(),
                EventKind::CampaignMessageSet { campaign: id },
            )),
        ]);
        self.commit_about(ctx, cs, Vec::new(), vec![next.clone()])
            .await?;
        Ok(next)
    }

    /// Sends an active e-mail or SMS campaign: each target (those held out left out) not sent yet gets its message
    /// rendered for the first of the partner's contacts with an address for the channel who consents to
    /// marketing on it, put in the outbox (marketing purpose, so it carries the unsubscribe token) due at the
    /// tenant's next send slot; a target without such a contact is recorded as skipped (`no_address`,
    /// `no_consent`). Targets are handled in transactions of 200 (each with its outbox rows, its targets, the
    /// send horizon and a `campaign_messages_queued` event); calling it again sends what is left (targets added by
    /// nothing, sends interrupted) and never a target twice.
    ///
    /// # Examples
    ///
    /// A campaign's whole send (message, send, reports, progress) over a real store is shown in the `crm` crate's
    /// documentation of `Crm::commerce`; here the commerce store has no records.
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (crm, store, commerce, ctx) = crm_core::conformance::model::example_commerce().await?;
    /// let err = commerce.send_campaign(&ctx, CampaignId::new()).await.unwrap_err();
    /// assert!(matches!(err, Error::NotFound { entity: "campaign", .. }));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the campaign is not the tenant's; [`Error::Invalid`] on `status` (not active),
    /// `channel` (not e-mail or SMS) or `message` (none set); [`Error::Conflict`] when a target changed meanwhile
    /// (the transactions before it stand; call again); [`Error::Storage`] when the store cannot be read or a change
    /// cannot be committed, and whatever a [`CommitHook`](crate::service::CommitHook) returns.
    pub async fn send_campaign(&self, ctx: &Context, id: CampaignId) -> Result<SendSummary> {
        let tenant = ctx.tenant;
        let c = self.store.campaign(tenant, id).await?;
        let renderer = Renderer::new(c.sendable()?)?;
        let _one_send_at_a_time = self.send_lock.lock().await;
        let spacing = self.send_rate(tenant).spacing();
        let mut summary = SendSummary::default();
        let mut page = PageRequest::first(SEND_BATCH);
        loop {
            let targets = self.store.campaign_targets(tenant, id, &page).await?;
            let now = self.crm.clock().now();
            let mut slot = self.send_horizon(tenant).await?.max(now);
            let mut cs = ChangeSet::new();
            let (mut queued, mut skipped) = (0u64, 0u64);
            for t in targets.items.iter().filter(|t| !t.holdout()) {
                if t.send().is_some() {
                    summary.already += 1;
                    continue;
                }
                let partner = self.crm.store().partner(tenant, t.partner()).await?;
                let (send, message) = self.message_to(&c, &renderer, &partner, now, slot);
                match send.status {
                    SendStatus::Queued => {
                        summary.first_due.get_or_insert(slot);
                        summary.last_due = Some(slot);
                        slot += spacing;
                        queued += 1;
                    }
                    SendStatus::NoAddress => summary.no_address += 1,
                    SendStatus::NoConsent => summary.no_consent += 1,
                    _ => summary.failed += 1,
                }
                if send.status != SendStatus::Queued {
                    skipped += 1;
                }
                if let Some(m) = message {
                    cs.push(Write::EnqueueOutbox(m));
                }
                let mut next = t.clone();
                next.send = Some(send);
                next.version += 1;
                cs.push(
                    CommerceWrite::UpdateCampaignTarget {
                        target: next,
                        expected_version: t.version(),
                    }
                    .into(),
                );
            }
            if queued + skipped > 0 {
                let horizon = serde_json::Value::String(slot.to_rfc3339());
                cs.push(Write::PutSetting(crate::setting::Setting::new(
                    tenant,
                    SEND_HORIZON_KEY,
                    horizon,
                    now,
                )?));
                cs.push(Write::AppendEvent(DomainEvent::new(
                    ctx,
                    now,
                    Subject::default(),
                    EventKind::CampaignMessagesQueued {
                        campaign: id,
                        queued,
                        skipped,
                    },
                )));
                self.commit_about(ctx, cs, Vec::new(), vec![c.clone()])
                    .await?;
                summary.queued += queued;
            }
            match targets.next {
                Some(next) => page.after = Some(next),
                None => return Ok(summary),
            }
        }
    }

    /// The tenant's next free send slot (the epoch when it never sent).
    async fn send_horizon(&self, tenant: TenantId) -> Result<Timestamp> {
        let value = self.crm.setting(tenant, SEND_HORIZON_KEY).await?;
        Ok(value
            .as_ref()
            .and_then(|v| v.as_str())
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.to_utc())
            .unwrap_or_default())
    }

    /// `c`'s message to `partner` due at `due`, or why there is none.
    fn message_to(
        &self,
        c: &Campaign,
        renderer: &Renderer,
        partner: &crate::partner::Partner,
        now: Timestamp,
        due: Timestamp,
    ) -> (TargetSend, Option<OutboxMessage>) {
        let contact = match recipient_of(partner, c.channel()) {
            Ok(contact) => contact,
            Err(status) => {
                let why = match status {
                    SendStatus::NoAddress => "no contact has an address for the channel",
                    _ => "no contact with an address consents to marketing on the channel",
                };
                return (TargetSend::skipped(status, why.into(), now), None);
            }
        };
        let rendered = match renderer.render(&TemplateVars::of(c, partner, contact)) {
            Ok(r) => r,
            Err(e) => {
                return (
                    TargetSend::skipped(SendStatus::Failed, e.to_string(), now),
                    None,
                )
            }
        };
        let sms = c.channel() == Channel::Sms;
        let recipient = ResolvedRecipient {
            user: None,
            name: Some(contact.name.clone()),
            email: if sms { None } else { contact.email.clone() },
            phone: if sms { contact.phone.clone() } else { None },
        };
        let mut vars = serde_json::json!({ "campaign": c.id() });
        if let (Some(html), Some(o)) = (rendered.html, vars.as_object_mut()) {
            o.insert("html".into(), html.into());
        }
        let payload = Payload {
            subject: rendered.subject.unwrap_or_default(),
            body: rendered.text,
            template: None,
            vars,
            action: None,
        };
        let channel = if sms {
            crate::comms::Channel::Sms
        } else {
            crate::comms::Channel::Email
        };
        let mut m = OutboxMessage::pending(
            c.tenant(),
            message_key(c.id(), partner.id()),
            format!("campaign:{}", c.id()),
            channel,
            recipient,
            payload,
            now,
        )
        .for_purpose(Purpose::Marketing)
        .about(Subject {
            partner: Some(partner.id()),
            ..Subject::default()
        });
        m.next_attempt_at = due;
        match consent_gate(m, Some(partner)) {
            Gate::Send(m) => {
                let mut m = *m;
                // The campaign's own token: unsubscribing through it marks this target too.
                let token = m
                    .payload
                    .vars
                    .get(UNSUBSCRIBE_VAR)
                    .and_then(|v| v.as_str())
                    .and_then(|t| UnsubscribeToken::parse(t).ok());
                if let (Some(mut token), Some(o)) = (token, m.payload.vars.as_object_mut()) {
                    token.campaign = Some(c.id());
                    o.insert(UNSUBSCRIBE_VAR.into(), token.encode().into());
                }
                let send = TargetSend::queued(m.id, contact.id, now, due);
                (send, Some(m))
            }
            Gate::Suppress(why) => (TargetSend::skipped(SendStatus::NoConsent, why, now), None),
        }
    }

    /// Records what the host learnt of a campaign message (from its mail or SMS provider: delivered, opened,
    /// bounced; or the recipient unsubscribed), named by the message's idempotency key
    /// ([`OutboxMessage::idempotency_key`], `campaign:<campaign>/<partner>`). The target's state moves forward
    /// ([`TargetSend::report`]); a repeated report changes nothing and returns the target as it is. Unsubscribing
    /// also withdraws the contact's marketing consent for the channel, in the same transaction. The partner's
    /// timeline gets a `campaign_message_reported` event.
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (crm, store, commerce, ctx) = crm_core::conformance::model::example_commerce().await?;
    /// use crm_core::commerce::send::DeliveryReport;
    /// let bounce = DeliveryReport::Bounced { reason: "550 5.1.1 no such user".into() };
    /// let key = format!("campaign:{}/{}", CampaignId::new(), PartnerId::new());
    /// let err = commerce.report_campaign_message(&ctx, &key, bounce.clone()).await.unwrap_err();
    /// assert!(matches!(err, Error::NotFound { entity: "campaign message", .. }));
    /// let err = commerce.report_campaign_message(&ctx, "event:1/rule/0/x", bounce).await.unwrap_err();
    /// assert_eq!(err.field(), Some("message"));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `message` when the key is not a campaign message's, on `report` / `report.reason` as
    /// [`TargetSend::report`]; [`Error::NotFound`] (entity `campaign message`) when the tenant has no such message
    /// (no such campaign or target, or the target was skipped); [`Error::Conflict`] when the target or the partner
    /// changed meanwhile (try again); [`Error::Storage`] when the store cannot be read or the change cannot be
    /// committed, and whatever a [`CommitHook`](crate::service::CommitHook) returns.
    pub async fn report_campaign_message(
        &self,
        ctx: &Context,
        key: &str,
        report: DeliveryReport,
    ) -> Result<CampaignTarget> {
        let (campaign, partner) = parse_key(key)?;
        let not_found = || Error::not_found("campaign message", key.trim());
        let target = match self
            .store
            .campaign_target_of(ctx.tenant, campaign, partner)
            .await
        {
            Ok(Some(t)) => t,
            Ok(None) | Err(Error::NotFound { .. }) => return Err(not_found()),
            Err(e) => return Err(e),
        };
        let Some(send) = target.send().filter(|s| s.message.is_some()) else {
            return Err(not_found());
        };
        let now = self.crm.clock().now();
        let Some(next_send) = send.report(&report, now)? else {
            return Ok(target);
        };
        let c = self.store.campaign(ctx.tenant, campaign).await?;
        let mut next = target.clone();
        next.send = Some(next_send.clone());
        next.version += 1;
        let mut cs = ChangeSet::new();
        if report == DeliveryReport::Unsubscribed {
            if let Some(contact) = send.contact {
                cs.writes.extend(
                    self.withdrawal(ctx, &c, target.partner(), contact, now)
                        .await?,
                );
            }
        }
        cs.push(
            CommerceWrite::UpdateCampaignTarget {
                target: next.clone(),
                expected_version: target.version(),
            }
            .into(),
        );
        cs.push(Write::AppendEvent(DomainEvent::new(
            ctx,
            now,
            Subject {
                partner: Some(target.partner()),
                ..Subject::default()
            },
            EventKind::CampaignMessageReported {
                campaign,
                status: next_send.status,
                note: match &report {
                    DeliveryReport::Bounced { .. } => next_send.note.clone(),
                    _ => None,
                },
            },
        )));
        self.commit_about(ctx, cs, Vec::new(), vec![c]).await?;
        Ok(next)
    }

    /// The writes withdrawing `contact`'s marketing consent on `c`'s channel (none when not given).
    async fn withdrawal(
        &self,
        ctx: &Context,
        c: &Campaign,
        partner: PartnerId,
        contact: crate::id::ContactId,
        now: Timestamp,
    ) -> Result<Vec<Write>> {
        let channel = match c.channel() {
            Channel::Sms => ConsentChannel::Sms,
            _ => ConsentChannel::Email,
        };
        let current = self.crm.store().partner(ctx.tenant, partner).await?;
        let current = self.crm.live(ctx.tenant, current).await?;
        let stands = current
            .contact(contact)
            .is_some_and(|x| x.consent(channel, Purpose::Marketing).is_some());
        if !stands {
            return Ok(Vec::new());
        }
        let withdrawn = Consent {
            channel,
            purpose: Purpose::Marketing,
            granted: false,
            source: format!("campaign {}", c.name()),
            proof: None,
            at: now,
            key: None,
        };
        Ok(self
            .crm
            .consent_writes(ctx, &current, contact, withdrawn)?
            .1)
    }

    /// Withdraws the consent an unsubscribe token names, as
    /// [`CrmService::unsubscribe`](crate::service::CrmService::unsubscribe) does; a token a campaign's message
    /// carried also marks that campaign's target unsubscribed, in the same transaction
    /// ([`CommerceService::report_campaign_message`]).
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (crm, store, commerce, ctx) = crm_core::conformance::model::example_commerce().await?;
    /// let err = commerce.unsubscribe("not-a-token").await.unwrap_err();
    /// assert_eq!(err.field(), Some("token"));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// As [`CrmService::unsubscribe`](crate::service::CrmService::unsubscribe), and as
    /// [`CommerceService::report_campaign_message`] for a campaign's token.
    pub async fn unsubscribe(&self, token: &str) -> Result<Outcome<crate::partner::Partner>> {
        let t = UnsubscribeToken::parse(token)?;
        let Some(campaign) = t.campaign else {
            return self.crm.unsubscribe(token).await;
        };
        let ctx = Context::system(t.tenant);
        // The token must be the contact's current one, as for any unsubscribe.
        let partner = self.crm.store().partner(t.tenant, t.partner).await?;
        let partner = self.crm.live(t.tenant, partner).await?;
        if !crate::service::consent::token_stands(&partner, &t)? {
            return Ok(Outcome {
                record: partner,
                events: Vec::new(),
            });
        }
        let key = message_key(campaign, t.partner);
        match self
            .report_campaign_message(&ctx, &key, DeliveryReport::Unsubscribed)
            .await
        {
            // The target is gone (its partner merged away): the consent is withdrawn all the same.
            Err(Error::NotFound { .. }) => return self.crm.unsubscribe(token).await,
            Err(e) => return Err(e),
            Ok(_) => {}
        }
        let partner = self.crm.store().partner(t.tenant, partner.id()).await?;
        Ok(Outcome {
            record: partner,
            events: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_strangers_are_refused_by_field() {
        let (c, p) = (CampaignId::new(), PartnerId::new());
        assert_eq!(parse_key(&message_key(c, p)).unwrap(), (c, p));
        for bad in [
            "",
            "campaign:",
            "campaign:x/y",
            "event:1/2",
            &format!("campaign:{c}"),
        ] {
            assert_eq!(
                parse_key(bad).unwrap_err().field(),
                Some("message"),
                "{bad}"
            );
        }
    }
}
