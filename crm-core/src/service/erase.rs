//! Erasure of a person ([`crate::erasure`]): a contact, or a partner who is a natural person.

use super::CrmService;
use crate::actor::Context;
use crate::dedupe;
use crate::erasure::{self, Erasure};
use crate::error::{Error, Result};
use crate::event::{DomainEvent, EventKind, Subject};
use crate::id::{ContactId, PartnerId};
use crate::partner::{Contact, Partner, PartnerKind};
use crate::store::{ChangeSet, Write};
use uuid::Uuid;

/// What an erasure did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erased {
    /// The contact or partner erased.
    pub person: Uuid,
    /// The pseudonym that replaced the name everywhere.
    pub pseudonym: String,
    /// The partner (the person, or the company the contact worked for), with the person's data removed.
    pub partner: Partner,
}

/// Whether `value` can be replaced in stored JSON text without touching its structure: four characters or more,
/// at least one of them outside `a-z` and `_` (a key or an enum value is never such a word), and no quote or
/// backslash.
fn scrubbable(value: &str) -> bool {
    value.chars().count() >= 4
        && value.chars().any(|c| !(c.is_ascii_lowercase() || c == '_'))
        && !value.contains(['"', '\\'])
}

/// Adds `value` (and its lower-case form, as search columns hold it) with its replacement.
fn push(scrub: &mut Vec<(String, String)>, value: Option<&str>, replacement: &str) {
    let Some(value) = value.map(str::trim) else {
        return;
    };
    for (v, r) in [
        (value.to_string(), replacement.to_string()),
        (value.to_lowercase(), replacement.to_lowercase()),
    ] {
        if scrubbable(&v) && !scrub.iter().any(|(x, _)| *x == v) {
            scrub.push((v, r));
        }
    }
}

/// A contact's values and their replacements: the name by the pseudonym, the e-mail address and the phone number
/// (also in E.164) by [`erasure::erased_value`].
fn contact_scrub(c: &Contact, country: Option<&str>, scrub: &mut Vec<(String, String)>) {
    let gone = erasure::erased_value(*c.id.as_uuid());
    push(scrub, Some(&c.name), &erasure::pseudonym(*c.id.as_uuid()));
    push(scrub, c.email.as_deref(), &gone);
    push(scrub, c.phone.as_deref(), &gone);
    if let Some(phone) = c.phone.as_deref() {
        push(scrub, dedupe::e164(phone, country).as_deref(), &gone);
    }
}

/// `c` without the person: the pseudonym for a name, no role, address, phone or consents; the host's code kept
/// (the ERP's records refer to it and it names nobody).
fn pseudonymised(c: &Contact) -> Contact {
    Contact {
        name: erasure::pseudonym(*c.id.as_uuid()),
        role: None,
        email: None,
        phone: None,
        consents: Vec::new(),
        ..c.clone()
    }
}

/// Pseudonymises the snapshots of the contacts `which` names in `p`'s contact-merge journal, adding their values
/// to `scrub`.
fn forget_snapshots(
    p: &mut Partner,
    which: impl Fn(ContactId) -> bool,
    country: Option<&str>,
    scrub: &mut Vec<(String, String)>,
) {
    for m in &mut p.contact_merges {
        for c in m.before.iter_mut().chain(std::iter::once(&mut m.after)) {
            if which(c.id) {
                contact_scrub(c, country, scrub);
                *c = pseudonymised(c);
            }
        }
    }
}

/// Refuses what [`CrmService::erase_person`] cannot erase: a company, or a person erased already.
pub(crate) fn check_person(p: &Partner) -> Result<()> {
    if p.kind != PartnerKind::Person {
        return Err(Error::invalid(
            "partner",
            "a company is not a person: erase its contacts (erase_contact)",
        ));
    }
    if p.name == erasure::pseudonym(*p.id.as_uuid()) {
        return Err(Error::invalid("partner", "this partner was erased already"));
    }
    Ok(())
}

impl CrmService {
    /// Erases a contact of a partner (GDPR art. 17): their name becomes a stable pseudonym and their e-mail address
    /// and phone number go, in the partner's document and in every record of the partner that holds them (leads,
    /// requests, comments, documents, quotations, contracts, meetings, attachments' names, representatives, payment
    /// attempts, campaign targets, merge journals) and in the tenant's outbox and inbox; their key is destroyed, so
    /// every event of the activity log that named them reads as [`EventKind::Erased`] from now on, in every query,
    /// export and backup, while no entry of the log is rewritten. Amounts, numbers and every aggregate stay as
    /// they were. The log gains `person_erased` (naming the contact's id and pseudonym only).
    ///
    /// Values shorter than four characters, or made only of `a-z` and `_`, are replaced only where the engine
    /// knows their field (the partner's document): replacing such a word everywhere could change a record's
    /// structure.
    ///
    /// # Examples
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use crm_core::conformance::{model::MemStore, World};
    /// use crm_core::partner::NewPartner;
    /// use crm_core::store::{PageRequest, Store, TimelineOf};
    /// use std::sync::Arc;
    /// let store: Arc<dyn Store> = Arc::new(MemStore::new());
    /// let w = World::new(&store).await;
    /// let acme = NewPartner::company("Acme SRL").with_contact("Ilinca Vasilescu", Some("ilinca@acme.ro"), None);
    /// let acme = w.crm.create_partner(&w.ctx, acme).await.unwrap().record;
    /// let ilinca = acme.contacts()[0].id;
    /// let erased = w.crm.erase_contact(&w.ctx, acme.id(), ilinca).await.unwrap();
    /// assert_eq!(erased.partner.contacts()[0].name, erased.pseudonym);
    /// assert_eq!(erased.partner.contacts()[0].email, None);
    /// let log = w.crm.timeline(w.tenant, TimelineOf::Partner(acme.id()), &PageRequest::first(50)).await.unwrap();
    /// assert!(!serde_json::to_string(&log.items).unwrap().contains("ilinca@acme.ro"));
    /// # });
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the partner is not the tenant's or has no such contact; [`Error::Invalid`] on
    /// `contact` when it was erased already; [`Error::Conflict`] when the partner changed meanwhile;
    /// [`Error::Storage`] when the store cannot be read or written (nothing is then erased).
    pub async fn erase_contact(
        &self,
        ctx: &Context,
        partner: PartnerId,
        contact: ContactId,
    ) -> Result<Erased> {
        let current = self.partner(ctx.tenant, partner).await?;
        // A merged contact's id names its survivor.
        let c = current
            .contact(contact)
            .ok_or_else(|| Error::not_found("contact", contact))?
            .clone();
        let contact = c.id;
        let pseudonym = erasure::pseudonym(*contact.as_uuid());
        if c.name == pseudonym {
            return Err(Error::invalid("contact", "this contact was erased already"));
        }
        let country = current.locations.first().map(|l| l.country.as_str());
        let mut scrub = Vec::new();
        contact_scrub(&c, country, &mut scrub);
        let mut next = current.clone();
        for x in &mut next.contacts {
            if x.id == contact {
                *x = pseudonymised(x);
            }
        }
        // The same person merged into this contact earlier: their snapshots in the merge journal go too.
        let mut people = vec![contact];
        loop {
            let more: Vec<ContactId> = (current.contact_merges.iter())
                .filter(|m| m.undone_at.is_none() && people.contains(&m.survivor))
                .flat_map(|m| m.merged())
                .filter(|id| !people.contains(id))
                .collect();
            if more.is_empty() {
                break;
            }
            people.extend(more);
        }
        forget_snapshots(&mut next, |id| people.contains(&id), country, &mut scrub);
        let keys = people.iter().map(|c| *c.as_uuid()).collect();
        let erased = (keys, scrub, Vec::new());
        self.commit_erasure(ctx, current, next, erased, false, *contact.as_uuid())
            .await
    }

    /// Erases a partner who is a natural person ([`CommerceService::erase_partner`], which checks its open items
    /// and removes its files first), with `extra` writes (its attachments removed) in the same change.
    pub(crate) async fn erase_person(
        &self,
        ctx: &Context,
        current: Partner,
        extra: Vec<Write>,
    ) -> Result<Erased> {
        let partner = current.id;
        check_person(&current)?;
        let pseudonym = erasure::pseudonym(*current.id.as_uuid());
        let country = current.locations.first().map(|l| l.country.as_str());
        let mut scrub = Vec::new();
        push(&mut scrub, Some(&current.name), &pseudonym);
        let gone = erasure::erased_value(*current.id.as_uuid());
        push(&mut scrub, current.tax_id.as_deref(), &gone);
        push(&mut scrub, current.website.as_deref(), &gone);
        for l in &current.locations {
            push(&mut scrub, l.street.as_deref(), &gone);
        }
        for c in &current.contacts {
            contact_scrub(c, country, &mut scrub);
        }
        let mut keys = vec![*current.id.as_uuid()];
        keys.extend(current.contacts.iter().map(|c| *c.id.as_uuid()));
        let mut next = current.clone();
        next.name = pseudonym;
        next.tax_id = None;
        next.website = None;
        for l in &mut next.locations {
            l.street = None;
            l.postal_code = None;
        }
        next.contacts = next.contacts.iter().map(pseudonymised).collect();
        let mut journaled = Vec::new();
        forget_snapshots(&mut next, |_| true, country, &mut scrub);
        for m in &current.contact_merges {
            journaled.extend(m.before.iter().map(|c| *c.id.as_uuid()));
        }
        keys.extend(journaled);
        self.commit_erasure(
            ctx,
            current,
            next,
            (keys, scrub, extra),
            true,
            *partner.as_uuid(),
        )
        .await
    }

    /// Commits an erasure: the partner as `next`, the `extra` writes, the keys deleted and the values scrubbed, and
    /// `person_erased`.
    async fn commit_erasure(
        &self,
        ctx: &Context,
        current: Partner,
        mut next: Partner,
        (keys, scrub, extra): (Vec<Uuid>, Vec<(String, String)>, Vec<Write>),
        tombstones: bool,
        person: Uuid,
    ) -> Result<Erased> {
        let now = self.clock.now();
        next.version = current.version + 1;
        next.updated_at = now;
        let pseudonym = erasure::pseudonym(person);
        let mut cs = ChangeSet::new();
        cs.push(Write::UpdatePartner {
            keys: dedupe::keys_of(&next),
            partner: next.clone(),
            expected_version: current.version,
        });
        // Before the erasure, which scrubs what they write.
        cs.extend(extra);
        cs.push(Write::Erase(Erasure {
            tenant: ctx.tenant,
            partner: current.id,
            keys,
            tombstones,
            scrub,
        }));
        let subject = Subject {
            partner: Some(current.id),
            ..Default::default()
        };
        cs.push(Write::AppendEvent(DomainEvent::new(
            ctx,
            now,
            subject,
            EventKind::PersonErased {
                person,
                pseudonym: pseudonym.clone(),
            },
        )));
        self.commit(ctx, cs).await?;
        Ok(Erased {
            person,
            pseudonym,
            partner: next,
        })
    }
}
