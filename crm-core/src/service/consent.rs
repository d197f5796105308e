//! Recording a contact's consent, and withdrawing it through an unsubscribe token.

use super::{check_version, CrmService, Outcome};
use crate::actor::Context;
use crate::consent::{
    Consent, ConsentChannel, NewConsent, Purpose, UnsubscribeToken, UNSUBSCRIBE_VAR,
};
use crate::error::{Error, Result};
use crate::event::{EventKind, Subject};
use crate::id::{ContactId, PartnerId};
use crate::outbox::OutboxMessage;
use crate::partner::Partner;
use crate::store::{StoreExt, Write};

impl CrmService {
    /// Records a contact's answer to being contacted on a channel for a purpose (it replaces the contact's earlier
    /// answer for the same channel and purpose; the `consent_recorded` event on the partner's timeline keeps every
    /// answer, without the consent's key). A marketing message to the contact is enqueued only while its consent
    /// for the channel stands ([`consent_gate`]).
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
    /// use crm_core::consent::{ConsentChannel, NewConsent, Purpose};
    /// use crm_core::partner::{NewContact, NewPartner};
    /// let mut new = NewPartner::company("Acme SRL");
    /// new.contacts.push(NewContact { name: "Ana Pop".into(), email: Some("ana@acme.example".into()), ..Default::default() });
    /// let acme = crm.create_partner(&ctx, new).await?.record;
    /// let ana = acme.contacts()[0].id;
    /// let yes = NewConsent {
    ///     channel: "email".into(),
    ///     purpose: "marketing".into(),
    ///     granted: true,
    ///     source: "newsletter form".into(),
    ///     proof: Some("form 4711 from 192.0.2.7".into()),
    /// };
    /// let acme = crm.record_consent(&ctx, acme.id(), acme.version(), ana, yes.clone()).await?.record;
    /// let given = acme.contacts()[0].consent(ConsentChannel::Email, Purpose::Marketing);
    /// assert_eq!(given.map(|c| c.source.as_str()), Some("newsletter form"));
    /// let fax = NewConsent { channel: "fax".into(), ..yes };
    /// let err = crm.record_consent(&ctx, acme.id(), acme.version(), ana, fax).await.unwrap_err();
    /// assert_eq!(err.field(), Some("channel"));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the partner is not the tenant's or has no such contact; [`Error::Conflict`] when
    /// `expected_version` is stale; [`Error::Invalid`] on `channel` (not email, phone or sms), `purpose` (not
    /// marketing or service), `source` or `proof`, or on `id` for a merged partner; [`Error::Storage`] when the
    /// store cannot be read or the change cannot be committed, and whatever a [`CommitHook`](super::CommitHook)
    /// returns.
    pub async fn record_consent(
        &self,
        ctx: &Context,
        partner: PartnerId,
        expected_version: u64,
        contact: ContactId,
        answer: NewConsent,
    ) -> Result<Outcome<Partner>> {
        let now = self.clock.now();
        let consent = answer.build(now)?;
        let current = self.store.partner(ctx.tenant, partner).await?;
        if let Some(to) = current.merged_into {
            return Err(Error::invalid(
                "id",
                format!("partner {partner} was merged into {to}: record the consent there"),
            ));
        }
        check_version("partner", partner, expected_version, current.version)?;
        self.put_consent(ctx, current, contact, consent).await
    }

    /// Withdraws the consent an unsubscribe token names (the token a marketing e-mail carries in its
    /// [`UNSUBSCRIBE_VAR`]), recorded with the source `unsubscribe link`. The
    /// token is only good while the consent it was made for stands: once withdrawn (or given again, which makes
    /// a new key), the same token changes nothing more and returns the partner as it is.
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm_core::Error;
    /// # use std::sync::Arc;
    /// # use crm_core::{conformance::model::MemStore, service::CrmService};
    /// # futures::executor::block_on(async {
    /// # let crm = CrmService::builder().store(Arc::new(MemStore::new())).build()?;
    /// let err = crm.unsubscribe("not-a-token").await.unwrap_err();
    /// assert_eq!(err.field(), Some("token"));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `token` when it is not a token, or its key is not the standing consent's;
    /// [`Error::NotFound`] when its partner or contact is not there (another tenant's reads as not found);
    /// [`Error::Conflict`] when the partner changed while this ran (try again); [`Error::Storage`] as for any
    /// write.
    pub async fn unsubscribe(&self, token: &str) -> Result<Outcome<Partner>> {
        let t = UnsubscribeToken::parse(token)?;
        let ctx = Context::system(t.tenant);
        let current = self.store.partner(t.tenant, t.partner).await?;
        let current = self.live(t.tenant, current).await?;
        if !token_stands(&current, &t)? {
            return Ok(Outcome {
                record: current,
                events: Vec::new(),
            });
        }
        let withdrawn = Consent {
            channel: t.channel,
            purpose: t.purpose,
            granted: false,
            source: "unsubscribe link".into(),
            proof: None,
            at: self.clock.now(),
            key: None,
        };
        self.put_consent(&ctx, current, t.contact, withdrawn).await
    }

    /// Writes `consent` on `contact` of `current` with its event.
    async fn put_consent(
        &self,
        ctx: &Context,
        current: Partner,
        contact: ContactId,
        consent: Consent,
    ) -> Result<Outcome<Partner>> {
        let (next, writes) = self.consent_writes(ctx, &current, contact, consent)?;
        self.commit_outcome(ctx, writes.into_iter().collect(), next)
            .await
    }

    /// The partner with `consent` on `contact`, and the writes recording it (the partner, its event).
    pub(crate) fn consent_writes(
        &self,
        ctx: &Context,
        current: &Partner,
        contact: ContactId,
        consent: Consent,
    ) -> Result<(Partner, Vec<Write>)> {
        let mut next = current.clone();
        // A merged contact's id names its survivor.
        let contact = (current.contact(contact))
            .ok_or_else(|| Error::not_found("contact", contact))?
            .id;
        let c = next
            .contacts
            .iter_mut()
            .find(|c| c.id == contact)
            .ok_or_else(|| Error::not_found("contact", contact))?;
        c.consents
            .retain(|x| !(x.channel == consent.channel && x.purpose == consent.purpose));
        c.consents.push(consent.clone());
        c.consents.sort_by_key(|x| (x.channel, x.purpose));
        next.version += 1;
        next.updated_at = consent.at;
        let write = Write::UpdatePartner {
            keys: crate::dedupe::keys_of(&next),
            partner: next.clone(),
            expected_version: current.version,
        };
        let subject = Subject {
            partner: Some(next.id),
            ..Default::default()
        };
        let kind = EventKind::ConsentRecorded {
            contact,
            consent: Consent {
                key: None,
                ..consent
            },
        };
        let cs = self.change(ctx, next.updated_at, write, subject, kind);
        Ok((next, cs.writes))
    }
}

/// Whether the consent `t` names stands on `partner` with `t`'s key (`true`: withdraw it), or was withdrawn
/// already (`false`: nothing to do).
///
/// # Errors
///
/// [`Error::NotFound`] when the partner has no such contact; [`Error::Invalid`] on `token` when the key is not the
/// standing consent's.
pub(crate) fn token_stands(partner: &Partner, t: &UnsubscribeToken) -> Result<bool> {
    let contact = partner
        .contacts()
        .iter()
        .find(|c| c.id == t.contact)
        .ok_or_else(|| Error::not_found("contact", t.contact))?;
    let standing = contact
        .consents
        .iter()
        .find(|c| c.channel == t.channel && c.purpose == t.purpose);
    match standing {
        Some(c) if c.granted && c.key.as_deref() == Some(t.key.as_str()) => Ok(true),
        Some(c) if !c.granted => Ok(false),
        _ => Err(Error::invalid(
            "token",
            "not the contact's current unsubscribe link",
        )),
    }
}

/// What [`consent_gate`] decides for a message.
#[derive(Debug, Clone, PartialEq)]
pub enum Gate {
    /// Enqueue it (a marketing e-mail now carries its unsubscribe token).
    Send(Box<OutboxMessage>),
    /// Do not: why.
    Suppress(String),
}

/// The check every message passes before it is enqueued: a service message, or one to the tenant's own users,
/// passes; a marketing e-mail (or text message) to someone outside passes only when `partner` (the partner it is
/// about) has a contact at that address (phone number) who consents to marketing on that channel, and then
/// carries the token that withdraws it.
pub fn consent_gate(mut message: OutboxMessage, partner: Option<&Partner>) -> Gate {
    if message.purpose.is_service() || message.recipient.user.is_some() {
        return Gate::Send(Box::new(message));
    }
    let (channel, address, of): (_, _, fn(&crate::partner::Contact) -> Option<&str>) =
        match message.channel {
            crate::outbox::Channel::Sms => (
                ConsentChannel::Sms,
                message.recipient.phone.as_deref().map(digits),
                |c| c.phone.as_deref(),
            ),
            _ => (
                ConsentChannel::Email,
                message
                    .recipient
                    .email
                    .as_deref()
                    .map(|e| e.trim().to_lowercase()),
                |c| c.email.as_deref(),
            ),
        };
    let Some(address) = address.filter(|a| !a.is_empty()) else {
        return Gate::Suppress("a marketing message to nobody with an address".into());
    };
    let same = |a: &str| match channel {
        ConsentChannel::Sms => digits(a) == address,
        _ => a.trim().eq_ignore_ascii_case(&address),
    };
    let contact = partner.and_then(|p| {
        p.contacts()
            .iter()
            .find(|c| of(c).is_some_and(same))
            .map(|c| (p, c))
    });
    let Some((p, c)) = contact else {
        return Gate::Suppress(format!(
            "no contact of the partner has the address {address}, so no consent is on record"
        ));
    };
    match c.consent(channel, Purpose::Marketing) {
        Some(consent) => {
            let token = UnsubscribeToken {
                tenant: p.tenant(),
                partner: p.id(),
                contact: c.id,
                channel,
                purpose: Purpose::Marketing,
                key: consent.key.clone().unwrap_or_default(),
                campaign: None,
            };
            if !message.payload.vars.is_object() {
                message.payload.vars = serde_json::json!({});
            }
            if let Some(vars) = message.payload.vars.as_object_mut() {
                vars.insert(UNSUBSCRIBE_VAR.into(), token.encode().into());
            }
            Gate::Send(Box::new(message))
        }
        None => Gate::Suppress(format!(
            "{} has not consented to marketing by {}",
            c.name,
            match channel {
                ConsentChannel::Sms => "text message",
                _ => "e-mail",
            }
        )),
    }
}

/// A phone number's digits (and a leading `+`), as compared.
fn digits(phone: &str) -> String {
    phone
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '+')
        .collect()
}
