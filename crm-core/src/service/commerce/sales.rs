//! Quotations through the commerce service: numbering, the state machine of [`crate::sales`], one change set per
//! step (the revision, its event about the lead and partner, the rules' actions), and the reads.

use super::CommerceService;
use crate::actor::Context;
use crate::commerce::{CommerceStoreExt, CommerceWrite};
use crate::comms::{Channel, OutboxMessage, Payload, ResolvedRecipient};
use crate::error::{Error, Result};
use crate::event::{DomainEvent, EventKind, Subject};
use crate::id::{ContractId, LeadId, MeetingId, PartnerId, QuotationId, TenantId};
use crate::sales::{
    self, NewQuotation, Quotation, QuotationCommand, QuotationNumber, QuotationTerms, TaxTable,
};
use crate::sales::{Contract, Term};
use crate::sales::{Meeting, MeetingCommand, MeetingStatus, NewMeeting, Participant};
use crate::store::{ChangeSet, StoreExt, Write};
use chrono::Datelike;
use std::collections::HashMap;
use std::sync::Arc;

/// The tax tables quotations are priced with: one per tenant that has its own, else the default.
#[derive(Debug, Clone, Default)]
pub(crate) struct TaxTables {
    default: TaxTable,
    tenants: HashMap<TenantId, TaxTable>,
}

/// How many times a new quotation takes the next number when a concurrent one took it first.
const NUMBER_ATTEMPTS: usize = 5;

/// A quotation's records: its partner and lead.
pub(super) fn subject(q: &Quotation) -> Subject {
    Subject {
        partner: Some(q.partner()),
        lead: q.lead(),
        request: None,
    }
}

fn stale(q: &Quotation, expected: u64) -> Result<()> {
    crate::service::check_version("quotation", q.id(), expected, q.version())
}

impl CommerceService {
    /// Commits quotation writes with one event about `about` (its lead and partner), through the hooks.
    async fn commit_quotations(
        &self,
        ctx: &Context,
        now: crate::time::Timestamp,
        writes: Vec<CommerceWrite>,
        about: &Quotation,
        event: EventKind,
    ) -> Result<()> {
        let mut cs: ChangeSet = writes.into_iter().map(Write::from).collect();
        cs.push(Write::AppendEvent(DomainEvent::new(
            ctx,
            now,
            subject(about),
            event,
        )));
        self.commit_about(ctx, cs, Vec::new(), Vec::new())
            .await
            .map(|_| ())
    }

    /// Loads a quotation revision, checks its version and applies `cmd`: the new state and the change set that
    /// records it (the update and its event), not yet committed.
    async fn decide(
        &self,
        ctx: &Context,
        id: QuotationId,
        expected_version: u64,
        cmd: QuotationCommand,
        now: crate::time::Timestamp,
    ) -> Result<(Quotation, ChangeSet)> {
        let q = self.store.quotation(ctx.tenant, id).await?;
        stale(&q, expected_version)?;
        let edit = matches!(cmd, QuotationCommand::Edit(_));
        let next = sales::apply(
            &q,
            cmd,
            self.tax_table(ctx.tenant),
            &ctx.actor,
            self.today(),
            now,
        )?;
        let number = next.number().to_string();
        let event = if edit {
            let total = next.totals().total;
            EventKind::QuotationEdited {
                quotation: id,
                number,
                total,
            }
        } else {
            EventKind::QuotationStatusChanged {
                quotation: id,
                number,
                status: next.status(),
            }
        };
        let update = CommerceWrite::UpdateQuotation {
            quotation: next.clone(),
            expected_version,
        };
        let mut cs: ChangeSet = [Write::from(update)].into_iter().collect();
        cs.push(Write::AppendEvent(DomainEvent::new(
            ctx,
            now,
            subject(&next),
            event,
        )));
        Ok((next, cs))
    }

    /// Prices every tenant's quotations with `table` (the default is [`TaxTable::romania`]).
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (crm, store, commerce, ctx) = crm_core::conformance::model::example_commerce().await?;
    /// use crm_core::sales::{TaxRate, TaxTable};
    /// let day = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap();
    /// let table = TaxTable::new(vec![TaxRate::new("S", "VAT 20%", 20.into(), day)])?;
    /// let commerce = commerce.with_tax_table(table.clone());
    /// assert_eq!(commerce.tax_table(ctx.tenant), &table);
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    pub fn with_tax_table(mut self, table: TaxTable) -> Self {
        Arc::make_mut(&mut self.taxes).default = table;
        self
    }

    /// Prices `tenant`'s quotations with `table`, whatever the default.
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (crm, store, commerce, ctx) = crm_core::conformance::model::example_commerce().await?;
    /// use crm_core::sales::{TaxRate, TaxTable};
    /// let day = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap();
    /// let table = TaxTable::new(vec![TaxRate::new("S", "MwSt 19%", 19.into(), day)])?;
    /// let commerce = commerce.with_tenant_tax_table(ctx.tenant, table.clone());
    /// assert_eq!(commerce.tax_table(ctx.tenant), &table);
    /// assert_eq!(commerce.tax_table(TenantId::new()), &TaxTable::romania());
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    pub fn with_tenant_tax_table(mut self, tenant: TenantId, table: TaxTable) -> Self {
        Arc::make_mut(&mut self.taxes).tenants.insert(tenant, table);
        self
    }

    /// The tax table `tenant`'s quotations are priced with.
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (crm, store, commerce, ctx) = crm_core::conformance::model::example_commerce().await?;
    /// assert_eq!(commerce.tax_table(ctx.tenant), &crm_core::sales::TaxTable::romania());
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    pub fn tax_table(&self, tenant: TenantId) -> &TaxTable {
        self.taxes
            .tenants
            .get(&tenant)
            .unwrap_or(&self.taxes.default)
    }

    /// Makes a quotation (revision 1, a draft issued today) for a partner, and for one of its leads when given: the
    /// next number of the year (`Q-2026-0042/1`), the lines priced at today's tax rates, and a `quotation_created`
    /// event on the lead's and partner's timelines.
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (commerce, ctx) = crm_core::conformance::model::example_sales().await?;
    /// use crm_core::money::Money;
    /// use crm_core::sales::{NewQuotation, QuotationLine, QuotationTerms};
    /// use crm_core::partner::NewPartner;
    /// let acme = commerce.crm().create_partner(&ctx, NewPartner::company("Acme SRL")).await?.record;
    /// let terms = QuotationTerms {
    ///     lines: vec![QuotationLine::new("Audit", 2.into(), Money::parse("500", "RON")?, "S")],
    ///     valid_until: NaiveDate::from_ymd_opt(2200, 1, 1).unwrap(),
    ///     terms: None,
    /// };
    /// let new = NewQuotation { lead: None, partner: acme.id(), currency: Currency::parse("RON")?, terms };
    /// let q = commerce.create_quotation(&ctx, new.clone()).await?;
    /// assert_eq!((q.number().sequence, q.number().revision), (1, 1));
    /// assert_eq!(q.totals().total, Money::parse("1210", "RON")?); // 1000 + 21 % VAT
    /// assert_eq!(commerce.create_quotation(&ctx, new).await?.number().sequence, 2);
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] naming the field: `partner` or `lead` not the tenant's (or the lead of another partner),
    /// and every check of [`NewQuotation::build`] (lines, taxes, currency, validity); [`Error::Storage`] when the
    /// store cannot be read or the change cannot be committed (nothing is then written), and whatever a
    /// [`CommitHook`](crate::service::CommitHook) returns.
    pub async fn create_quotation(
        &self,
        ctx: &Context,
        mut input: NewQuotation,
    ) -> Result<Quotation> {
        let store = self.crm.store();
        if let Some(lead) = input.lead {
            // A merged lead's id names its survivor.
            input.lead = Some(self.crm.lead_for_new(ctx.tenant, lead).await);
        }
        store
            .partner(ctx.tenant, input.partner)
            .await
            .map_err(|e| super::partner_field(e, input.partner))?;
        if let Some(lead) = input.lead {
            let l =
                crate::service::found(store.lead(ctx.tenant, lead).await)?.ok_or_else(|| {
                    Error::invalid("lead", format!("lead {lead} is not a lead of this tenant"))
                })?;
            if l.partner() != input.partner {
                return Err(Error::invalid(
                    "lead",
                    format!("lead {lead} belongs to another partner"),
                ));
            }
        }
        let today = self.today();
        let table = self.tax_table(ctx.tenant);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let sequence = match self
                .store
                .last_quotation_of_year(ctx.tenant, today.year())
                .await?
            {
                Some(last) => last.number().sequence.checked_add(1).ok_or_else(|| {
                    Error::invalid(
                        "number",
                        format!("the quotation numbers of {} are used up", today.year()),
                    )
                })?,
                None => 1,
            };
            let number = QuotationNumber::first(today.year(), sequence);
            let now = self.crm.clock().now();
            let q = input.clone().build(
                ctx.tenant,
                QuotationId::new(),
                number,
                today,
                table,
                ctx.actor.clone(),
                now,
            )?;
            let event = EventKind::QuotationCreated {
                quotation: q.id(),
                number: number.to_string(),
                total: q.totals().total,
            };
            let writes = vec![CommerceWrite::InsertQuotation(q.clone())];
            match self.commit_quotations(ctx, now, writes, &q, event).await {
                Ok(_) => return Ok(q),
                // Another quotation took the number between the read and the commit: take the next one.
                Err(Error::AlreadyExists { .. }) if attempt < NUMBER_ATTEMPTS => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Applies a command to a quotation revision whose stored version is `expected_version`: edit a draft, send
    /// it, the partner's acceptance or refusal, or expiry after its validity date (see [`sales::apply`]). Commits
    /// the new state with a `quotation_edited` or `quotation_sent` / `_accepted` / `_declined` / `_expired` event.
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (commerce, ctx) = crm_core::conformance::model::example_sales().await?;
    /// use crm_core::money::Money;
    /// use crm_core::sales::{NewQuotation, QuotationCommand, QuotationLine, QuotationStatus, QuotationTerms};
    /// use crm_core::partner::NewPartner;
    /// let acme = commerce.crm().create_partner(&ctx, NewPartner::company("Acme SRL")).await?.record;
    /// let terms = QuotationTerms {
    ///     lines: vec![QuotationLine::new("Audit", 1.into(), Money::parse("500", "RON")?, "S")],
    ///     valid_until: NaiveDate::from_ymd_opt(2200, 1, 1).unwrap(),
    ///     terms: None,
    /// };
    /// let new = NewQuotation { lead: None, partner: acme.id(), currency: Currency::parse("RON")?, terms };
    /// let q = commerce.create_quotation(&ctx, new).await?;
    /// let sent = commerce.quotation_command(&ctx, q.id(), 1, QuotationCommand::Send).await?;
    /// assert_eq!((sent.status(), sent.version()), (QuotationStatus::Sent, 2));
    /// let stale = commerce.quotation_command(&ctx, q.id(), 1, QuotationCommand::Accept).await.unwrap_err();
    /// assert!(matches!(stale, Error::Conflict { .. }));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the quotation is not the tenant's (or, for a partner's representative, not their
    /// partner's); [`Error::Conflict`] when `expected_version` is not the stored one; [`Error::Invalid`] as in
    /// [`sales::apply`]; [`Error::Storage`] when the store cannot be read or the change cannot be committed.
    pub async fn quotation_command(
        &self,
        ctx: &Context,
        id: QuotationId,
        expected_version: u64,
        cmd: QuotationCommand,
    ) -> Result<Quotation> {
        let now = self.crm.clock().now();
        let (next, cs) = self.decide(ctx, id, expected_version, cmd, now).await?;
        self.commit_about(ctx, cs, Vec::new(), Vec::new()).await?;
        Ok(next)
    }

    /// The expiry time rule: every sent quotation of the tenant whose validity ended before today (by the
    /// service's clock) becomes expired, each in its own change with its `quotation_expired` event (so the rules
    /// react to it), up to `limit` per call, oldest validity first. A quotation changed meanwhile (accepted at the
    /// last moment, say) is left as it is. Returns the expired revisions. `Crm::tick` runs it for a tenant; a host
    /// without rules calls it from its own scheduler.
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (commerce, ctx) = crm_core::conformance::model::example_sales().await?;
    /// use crm_core::money::Money;
    /// use crm_core::partner::NewPartner;
    /// use crm_core::sales::{NewQuotation, QuotationCommand, QuotationLine, QuotationStatus, QuotationTerms};
    /// let acme = commerce.crm().create_partner(&ctx, NewPartner::company("Acme SRL")).await?.record;
    /// let today = commerce.crm().clock().now().date_naive();
    /// let terms = QuotationTerms {
    ///     lines: vec![QuotationLine::new("Audit", 1.into(), Money::parse("500", "RON")?, "S")],
    ///     valid_until: today,
    ///     terms: None,
    /// };
    /// let new = NewQuotation { lead: None, partner: acme.id(), currency: Currency::parse("RON")?, terms };
    /// let q = commerce.create_quotation(&ctx, new).await?;
    /// commerce.quotation_command(&ctx, q.id(), 1, QuotationCommand::Send).await?;
    /// // Valid through today: nothing expires yet.
    /// assert!(commerce.expire_quotations(&ctx, 100).await?.is_empty());
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `limit` when it is 0; [`Error::Storage`] when the store cannot be read or a change
    /// cannot be committed (the quotations expired before it stay expired), and whatever a hook returns.
    pub async fn expire_quotations(&self, ctx: &Context, limit: u32) -> Result<Vec<Quotation>> {
        if limit == 0 {
            return Err(Error::invalid("limit", "must be at least 1"));
        }
        let today = self.crm.clock().now().date_naive();
        let due = self.store.quotations_expiring(ctx.tenant, today).await?;
        let mut expired = Vec::new();
        for q in due.into_iter().take(limit as usize) {
            match self
                .quotation_command(ctx, q.id(), q.version(), QuotationCommand::Expire)
                .await
            {
                Ok(e) => expired.push(e),
                // Changed since it was read (accepted, revised, declined): no longer for the rule to expire.
                Err(Error::Conflict { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(expired)
    }

    /// Revises a sent or declined quotation whose stored version is `expected_version`: it becomes superseded and
    /// the new revision (same number, revision + 1, a draft issued today with `terms`) is returned. Both commit in
    /// one change with a `quotation_revised` event; the history stays readable through
    /// [`CommerceStoreExt::quotation_revisions`].
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (commerce, ctx) = crm_core::conformance::model::example_sales().await?;
    /// use crm_core::money::Money;
    /// use crm_core::sales::{NewQuotation, QuotationCommand, QuotationLine, QuotationStatus, QuotationTerms};
    /// use crm_core::partner::NewPartner;
    /// let acme = commerce.crm().create_partner(&ctx, NewPartner::company("Acme SRL")).await?.record;
    /// let mut terms = QuotationTerms {
    ///     lines: vec![QuotationLine::new("Audit", 1.into(), Money::parse("500", "RON")?, "S")],
    ///     valid_until: NaiveDate::from_ymd_opt(2200, 1, 1).unwrap(),
    ///     terms: None,
    /// };
    /// let new = NewQuotation { lead: None, partner: acme.id(), currency: Currency::parse("RON")?, terms: terms.clone() };
    /// let q = commerce.create_quotation(&ctx, new).await?;
    /// commerce.quotation_command(&ctx, q.id(), 1, QuotationCommand::Send).await?;
    /// terms.lines[0].unit_price = Money::parse("450", "RON")?;
    /// let v2 = commerce.revise_quotation(&ctx, q.id(), 2, terms).await?;
    /// assert_eq!(v2.number().revision, 2);
    /// let old = commerce.store().quotation(ctx.tenant, q.id()).await?;
    /// assert_eq!((old.status(), old.superseded_by()), (QuotationStatus::Superseded, Some(v2.id())));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the quotation is not the tenant's; [`Error::Conflict`] when `expected_version` is
    /// not the stored one; [`Error::Invalid`] as in [`sales::revise`]; [`Error::Storage`] when the store cannot be
    /// read or the change cannot be committed.
    pub async fn revise_quotation(
        &self,
        ctx: &Context,
        id: QuotationId,
        expected_version: u64,
        terms: QuotationTerms,
    ) -> Result<Quotation> {
        let q = self.store.quotation(ctx.tenant, id).await?;
        stale(&q, expected_version)?;
        let now = self.crm.clock().now();
        let table = self.tax_table(ctx.tenant);
        let (old, new) = sales::revise(
            &q,
            &terms,
            QuotationId::new(),
            table,
            ctx.actor.clone(),
            self.today(),
            now,
        )?;
        let event = EventKind::QuotationRevised {
            quotation: new.id(),
            supersedes: id,
            number: new.number().to_string(),
            total: new.totals().total,
        };
        let writes = vec![
            CommerceWrite::UpdateQuotation {
                quotation: old,
                expected_version,
            },
            CommerceWrite::InsertQuotation(new.clone()),
        ];
        self.commit_quotations(ctx, now, writes, &new, event)
            .await?;
        Ok(new)
    }

    /// Every revision of every quotation made for a lead, by number.
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (crm, store, commerce, ctx) = crm_core::conformance::model::example_commerce().await?;
    /// assert!(commerce.quotations_of_lead(ctx.tenant, LeadId::new()).await?.is_empty());
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] when the store cannot be read.
    pub async fn quotations_of_lead(
        &self,
        tenant: TenantId,
        lead: LeadId,
    ) -> Result<Vec<Quotation>> {
        self.store.quotations_of_lead(tenant, lead).await
    }
}

/// The invitation e-mails of a meeting's current state: one per attendee, keyed by meeting, sequence and address
/// (so a retried commit enqueues nothing twice), carrying the iCalendar object for the SMTP notifier to send as
/// iMIP (`vars.ics`, `vars.method`).
fn invitations(m: &Meeting, now: crate::time::Timestamp) -> Vec<Write> {
    let cancelled = m.status() == MeetingStatus::Cancelled;
    let (method, verb) = if cancelled {
        ("CANCEL", "Cancelled")
    } else if m.sequence() > 0 {
        ("REQUEST", "Updated")
    } else {
        ("REQUEST", "Invitation")
    };
    let ics = m.to_ics();
    m.attendees()
        .iter()
        .map(|a| {
            let recipient = ResolvedRecipient {
                phone: None,
                user: match a.who {
                    Participant::User { id } => Some(id),
                    Participant::Contact { .. } => None,
                },
                name: Some(a.name.clone()),
                email: Some(a.email.clone()),
            };
            let payload = Payload {
                subject: format!("{verb}: {}", m.title()),
                body: format!(
                    "{verb}: {} — {} ({})",
                    m.title(),
                    m.starts_at().format("%Y-%m-%d %H:%M UTC"),
                    m.time_zone()
                ),
                template: None,
                vars: serde_json::json!({ "ics": ics, "method": method, "meeting": m.id() }),
                action: None,
            };
            let key = format!(
                "meeting/{}/{}/{}/{}",
                m.id(),
                m.sequence(),
                method,
                a.email.to_lowercase()
            );
            Write::EnqueueOutbox(
                OutboxMessage::pending(
                    m.tenant(),
                    key,
                    "meeting_invitation",
                    Channel::Email,
                    recipient,
                    payload,
                    now,
                )
                .about(meeting_subject(m)),
            )
        })
        .collect()
}

/// A contract's records: its partner and lead.
pub(super) fn contract_subject(c: &Contract) -> Subject {
    Subject {
        partner: Some(c.partner()),
        lead: c.lead(),
        request: None,
    }
}

fn meeting_subject(m: &Meeting) -> Subject {
    Subject {
        partner: m.partner(),
        lead: m.lead(),
        request: None,
    }
}

impl CommerceService {
    /// Checks that a meeting's lead, partner and contact attendees are the tenant's (and agree with each other).
    async fn check_meeting_parties(
        &self,
        tenant: TenantId,
        m: &NewMeeting,
    ) -> Result<Option<PartnerId>> {
        let store = self.crm.store();
        let mut partner = m.partner;
        if let Some(lead) = m.lead {
            let l = crate::service::found(store.lead(tenant, lead).await)?.ok_or_else(|| {
                Error::invalid("lead", format!("lead {lead} is not a lead of this tenant"))
            })?;
            if partner.is_some_and(|p| p != l.partner()) {
                return Err(Error::invalid(
                    "lead",
                    format!("lead {lead} belongs to another partner"),
                ));
            }
            partner = Some(l.partner());
        }
        if let Some(p) = partner {
            store
                .partner(tenant, p)
                .await
                .map_err(|e| super::partner_field(e, p))?;
        }
        // Each partner the attendees name is read once, however many of its contacts are invited.
        let mut partners: HashMap<PartnerId, Option<crate::partner::Partner>> = HashMap::new();
        for (i, a) in m.attendees.iter().enumerate() {
            if let Participant::Contact {
                partner: p,
                contact,
            } = a.who
            {
                if let std::collections::hash_map::Entry::Vacant(slot) = partners.entry(p) {
                    slot.insert(crate::service::found(store.partner(tenant, p).await)?);
                }
                let known = partners[&p]
                    .as_ref()
                    .is_some_and(|p| p.has_contact(contact));
                if !known {
                    return Err(Error::invalid(
                        format!("attendees[{i}].who"),
                        format!("contact {contact} is not a contact of a partner of this tenant"),
                    ));
                }
            }
        }
        Ok(partner)
    }

    /// Schedules a meeting: stored in UTC, on the lead's and partner's timelines (`meeting_scheduled`), and an
    /// invitation (`METHOD:REQUEST`, iCalendar) enqueued in the outbox for each attendee, all in one change.
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (commerce, ctx) = crm_core::conformance::model::example_sales().await?;
    /// use crm_core::sales::{Attendee, NewMeeting, Organiser, Participant, Reply, Slot};
    /// let at = |h| NaiveDate::from_ymd_opt(2026, 5, 4).unwrap().and_hms_opt(h, 0, 0).unwrap();
    /// let boss = UserId::new();
    /// let new = NewMeeting {
    ///     title: "Kick-off".into(), lead: None, partner: None, organiser: Organiser::new(boss, "Ana", "ana@example.ro"),
    ///     attendees: vec![Attendee { who: Participant::User { id: UserId::new() }, name: "Dan".into(),
    ///         email: "dan@example.ro".into(), reply: Reply::NeedsAction }],
    ///     slot: Slot { start: at(10), end: at(11), time_zone: "Europe/Bucharest".into(), place: None, online_link: None },
    ///     agenda: None,
    /// };
    /// let m = commerce.schedule_meeting(&ctx, new).await?;
    /// let day = m.starts_at().date_naive().and_hms_opt(0, 0, 0).unwrap().and_utc();
    /// let agenda = commerce.store().agenda(ctx.tenant, boss, day, day + chrono::Duration::days(1)).await?;
    /// assert_eq!(agenda, vec![m]);
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] naming the field: `lead` or `partner` not the tenant's, `attendees[i].who` a contact of
    /// no partner of the tenant, and every check of [`NewMeeting::build`]; [`Error::Storage`] when the store cannot
    /// be read or the change cannot be committed (nothing is then written, no invitation either).
    pub async fn schedule_meeting(&self, ctx: &Context, mut input: NewMeeting) -> Result<Meeting> {
        if let Some(lead) = input.lead {
            // A merged lead's id names its survivor.
            input.lead = Some(self.crm.lead_for_new(ctx.tenant, lead).await);
        }
        let partner = self.check_meeting_parties(ctx.tenant, &input).await?;
        let now = self.crm.clock().now();
        let m = NewMeeting { partner, ..input }.build(ctx.tenant, MeetingId::new(), now)?;
        let event = EventKind::MeetingScheduled {
            meeting: m.id(),
            title: m.title().to_string(),
            starts_at: m.starts_at(),
        };
        let mut cs = ChangeSet::from_iter([Write::from(CommerceWrite::InsertMeeting(m.clone()))]);
        cs.push(Write::AppendEvent(DomainEvent::new(
            ctx,
            now,
            meeting_subject(&m),
            event,
        )));
        cs.extend(invitations(&m, now));
        self.commit_about(ctx, cs, Vec::new(), Vec::new()).await?;
        Ok(m)
    }

    /// Applies a command to a meeting whose stored version is `expected_version` (see [`crate::sales::meeting::apply`]):
    /// a reschedule or a cancellation enqueues the updated invitations (`SEQUENCE` + 1; `METHOD:CANCEL`), a reply
    /// records the attendee's answer, `Held` the outcome notes; each with its event on the timelines.
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (commerce, ctx) = crm_core::conformance::model::example_sales().await?;
    /// use crm_core::sales::{MeetingCommand, MeetingStatus, NewMeeting, Organiser, Slot};
    /// let at = |h| NaiveDate::from_ymd_opt(2026, 5, 4).unwrap().and_hms_opt(h, 0, 0).unwrap();
    /// let new = NewMeeting {
    ///     title: "Kick-off".into(), lead: None, partner: None, organiser: Organiser::new(UserId::new(), "Ana", "ana@example.ro"), attendees: vec![],
    ///     slot: Slot { start: at(10), end: at(11), time_zone: "Europe/Bucharest".into(), place: None, online_link: None },
    ///     agenda: None,
    /// };
    /// let m = commerce.schedule_meeting(&ctx, new).await?;
    /// let off = commerce.meeting_command(&ctx, m.id(), 1, MeetingCommand::Cancel).await?;
    /// assert_eq!((off.status(), off.sequence()), (MeetingStatus::Cancelled, 1));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the meeting is not the tenant's; [`Error::Conflict`] when `expected_version` is not
    /// the stored one; [`Error::Invalid`] as in [`crate::sales::meeting::apply`]; [`Error::Storage`] when the store
    /// cannot be read or the change cannot be committed.
    pub async fn meeting_command(
        &self,
        ctx: &Context,
        id: MeetingId,
        expected_version: u64,
        cmd: MeetingCommand,
    ) -> Result<Meeting> {
        let m = self.store.meeting(ctx.tenant, id).await?;
        crate::service::check_version("meeting", id, expected_version, m.version())?;
        let now = self.crm.clock().now();
        let event = match &cmd {
            MeetingCommand::Cancel => Some(EventKind::MeetingCancelled { meeting: id }),
            MeetingCommand::Reply { email, reply } => Some(EventKind::MeetingReplied {
                meeting: id,
                email: email.trim().to_lowercase(),
                reply: *reply,
            }),
            MeetingCommand::Held { .. } => Some(EventKind::MeetingHeld { meeting: id }),
            _ => None,
        };
        let next = crate::sales::meeting::apply(&m, cmd, now)?;
        let event = event.unwrap_or(EventKind::MeetingRescheduled {
            meeting: id,
            starts_at: next.starts_at(),
            sequence: next.sequence(),
        });
        let mut cs = ChangeSet::from_iter([Write::from(CommerceWrite::UpdateMeeting {
            meeting: next.clone(),
            expected_version,
        })]);
        cs.push(Write::AppendEvent(DomainEvent::new(
            ctx,
            now,
            meeting_subject(&next),
            event,
        )));
        if next.sequence() != m.sequence() {
            cs.extend(invitations(&next, now));
        }
        self.commit_about(ctx, cs, Vec::new(), Vec::new()).await?;
        Ok(next)
    }
}

impl CommerceService {
    /// Makes the contract an accepted quotation revision becomes (its partner, lead and total), numbered `number`
    /// (unique per tenant) with the agreed `term`; a `contract_created` event on the lead's and partner's timelines.
    /// A quotation becomes at most one contract.
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (commerce, ctx) = crm_core::conformance::model::example_sales().await?;
    /// use crm_core::money::Money;
    /// use crm_core::partner::NewPartner;
    /// use crm_core::sales::{NewQuotation, QuotationCommand, QuotationLine, QuotationTerms, Term};
    /// let acme = commerce.crm().create_partner(&ctx, NewPartner::company("Acme SRL")).await?.record;
    /// let terms = QuotationTerms {
    ///     lines: vec![QuotationLine::new("Support", 12.into(), Money::parse("100", "RON")?, "S")],
    ///     valid_until: NaiveDate::from_ymd_opt(2200, 1, 1).unwrap(),
    ///     terms: None,
    /// };
    /// let q = commerce
    ///     .create_quotation(&ctx, NewQuotation { lead: None, partner: acme.id(), currency: Currency::parse("RON")?, terms })
    ///     .await?;
    /// commerce.quotation_command(&ctx, q.id(), 1, QuotationCommand::Send).await?;
    /// commerce.quotation_command(&ctx, q.id(), 2, QuotationCommand::Accept).await?;
    /// let day = |m| NaiveDate::from_ymd_opt(2027, m, 1).unwrap();
    /// let term = Term { starts_on: day(1), ends_on: Some(day(12)), renews_on: Some(day(10)) };
    /// let c = commerce.create_contract(&ctx, q.id(), "C-2027-0001", term).await?;
    /// assert_eq!(c.value(), Money::parse("1452", "RON")?); // 1200 + 21 % VAT
    /// let signed = commerce.sign_contract(&ctx, c.id(), 1).await?;
    /// assert!(signed.signature().is_some());
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the quotation is not the tenant's; [`Error::Invalid`] as in
    /// [`Contract::from_quotation`] (not accepted, bad dates, bad number); [`Error::AlreadyExists`] when the number is
    /// taken or the quotation already became a contract; [`Error::Storage`] when the store cannot be read or the
    /// change cannot be committed.
    pub async fn create_contract(
        &self,
        ctx: &Context,
        quotation: QuotationId,
        number: &str,
        term: Term,
    ) -> Result<Contract> {
        let q = self.store.quotation(ctx.tenant, quotation).await?;
        let now = self.crm.clock().now();
        let c = Contract::from_quotation(&q, ContractId::new(), number, term, now)?;
        let event = EventKind::ContractCreated {
            contract: c.id(),
            number: c.number().to_string(),
            value: c.value(),
        };
        self.commit_contract(
            ctx,
            now,
            CommerceWrite::InsertContract(c.clone()),
            &c,
            event,
        )
        .await?;
        Ok(c)
    }

    /// Records the signature of a contract whose stored version is `expected_version`, by the context's actor (a
    /// user, or the partner's representative in the portal), with a `contract_signed` event.
    ///
    /// # Examples
    ///
    /// See [`CommerceService::create_contract`].
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (commerce, ctx) = crm_core::conformance::model::example_sales().await?;
    /// let missing = commerce.sign_contract(&ctx, crm_core::id::ContractId::new(), 1).await.unwrap_err();
    /// assert!(matches!(missing, Error::NotFound { entity: "contract", .. }));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the contract is not the tenant's (or a representative's partner's);
    /// [`Error::Conflict`] when `expected_version` is not the stored one; [`Error::Invalid`] on `signature` when
    /// it is signed already; [`Error::Storage`] when the store cannot be read or the change cannot be committed.
    pub async fn sign_contract(
        &self,
        ctx: &Context,
        id: ContractId,
        expected_version: u64,
    ) -> Result<Contract> {
        let c = self.store.contract(ctx.tenant, id).await?;
        crate::service::check_version("contract", id, expected_version, c.version())?;
        let now = self.crm.clock().now();
        let signed = c.sign(ctx.actor.clone(), now)?;
        let event = EventKind::ContractSigned {
            contract: id,
            number: signed.number().to_string(),
        };
        let update = CommerceWrite::UpdateContract {
            contract: signed.clone(),
            expected_version,
        };
        self.commit_contract(ctx, now, update, &signed, event)
            .await?;
        Ok(signed)
    }

    async fn commit_contract(
        &self,
        ctx: &Context,
        now: crate::time::Timestamp,
        write: CommerceWrite,
        about: &Contract,
        event: EventKind,
    ) -> Result<()> {
        self.commit_one(ctx, now, contract_subject(about), write, event)
            .await
    }
}

impl CommerceService {
    /// The partner accepts a sent quotation (as [`QuotationCommand::Accept`]) and, when `win_lead` is set and the
    /// quotation's lead is still open, the lead is won in the same change: the quotation's acceptance, the lead's
    /// move to its won stage and both events commit together or not at all.
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (commerce, ctx) = crm_core::conformance::model::example_sales().await?;
    /// use crm_core::lead::NewLead;
    /// use crm_core::money::Money;
    /// use crm_core::partner::NewPartner;
    /// use crm_core::sales::{NewQuotation, QuotationCommand, QuotationLine, QuotationTerms};
    /// let acme = commerce.crm().create_partner(&ctx, NewPartner::company("Acme SRL")).await?.record;
    /// let lead = commerce.crm().enter_lead(&ctx, NewLead::for_partner(acme.id(), "Audit")).await?.record;
    /// let terms = QuotationTerms {
    ///     lines: vec![QuotationLine::new("Audit", 1.into(), Money::parse("500", "RON")?, "S")],
    ///     valid_until: NaiveDate::from_ymd_opt(2200, 1, 1).unwrap(),
    ///     terms: None,
    /// };
    /// let new = NewQuotation { lead: Some(lead.id()), partner: acme.id(), currency: Currency::parse("RON")?, terms };
    /// let q = commerce.create_quotation(&ctx, new).await?;
    /// commerce.quotation_command(&ctx, q.id(), 1, QuotationCommand::Send).await?;
    /// commerce.accept_quotation(&ctx, q.id(), 2, true).await?;
    /// let won = commerce.crm().lead(ctx.tenant, lead.id()).await?;
    /// assert_eq!(won.probability(), 100);
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// As [`CommerceService::quotation_command`] with [`QuotationCommand::Accept`], and whatever winning the lead
    /// refuses (a won stage's unmet requirement, a rule's guard): then nothing is written, the quotation stays sent.
    pub async fn accept_quotation(
        &self,
        ctx: &Context,
        id: QuotationId,
        expected_version: u64,
        win_lead: bool,
    ) -> Result<Quotation> {
        let now = self.crm.clock().now();
        let (accepted, mut cs) = self
            .decide(ctx, id, expected_version, QuotationCommand::Accept, now)
            .await?;
        if let (true, Some(lead)) = (win_lead, accepted.lead()) {
            let l = self.crm.store().lead(ctx.tenant, lead).await?;
            if l.status().kind() == crate::lead::StatusKind::Open {
                if let Ok((writes, _)) = self
                    .crm
                    .transition_writes(ctx, lead, l.version(), crate::lead::LeadCommand::Win)
                    .await?
                {
                    cs.extend(writes.into_writes());
                }
            }
        }
        self.commit_about(ctx, cs, Vec::new(), Vec::new()).await?;
        Ok(accepted)
    }
}

impl CommerceService {
    /// Sends a draft quotation by e-mail: the quotation becomes sent and one e-mail carrying its PDF is enqueued in
    /// the outbox, in the same change (key `quotation/<id>/sent/<address>`, so it goes out exactly once however
    /// often the host retries the call after a crash).
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (commerce, ctx) = crm_core::conformance::model::example_sales().await?;
    /// use crm_core::money::Money;
    /// use crm_core::partner::NewPartner;
    /// use crm_core::sales::{NewQuotation, QuotationLine, QuotationMail, QuotationStatus, QuotationTerms};
    /// let acme = commerce.crm().create_partner(&ctx, NewPartner::company("Acme SRL")).await?.record;
    /// let terms = QuotationTerms {
    ///     lines: vec![QuotationLine::new("Audit", 1.into(), Money::parse("500", "RON")?, "S")],
    ///     valid_until: NaiveDate::from_ymd_opt(2200, 1, 1).unwrap(),
    ///     terms: None,
    /// };
    /// let new = NewQuotation { lead: None, partner: acme.id(), currency: Currency::parse("RON")?, terms };
    /// let q = commerce.create_quotation(&ctx, new).await?;
    /// let mail = QuotationMail {
    ///     to_name: "Maria".into(), to_email: "maria@acme.ro".into(), subject: "Oferta noastră".into(),
    ///     body: "Găsiți oferta atașată.".into(), pdf: b"%PDF-1.7 ...".to_vec(),
    /// };
    /// let sent = commerce.send_quotation(&ctx, q.id(), 1, mail).await?;
    /// assert_eq!(sent.status(), QuotationStatus::Sent);
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] naming the mail's field ([`crate::sales::QuotationMail::check`]) or as
    /// [`QuotationCommand::Send`] in [`sales::apply`]; [`Error::NotFound`] and [`Error::Conflict`] as in
    /// [`CommerceService::quotation_command`];
    /// [`Error::Storage`] when the store cannot be read or the change cannot be committed (then no e-mail either).
    pub async fn send_quotation(
        &self,
        ctx: &Context,
        id: QuotationId,
        expected_version: u64,
        mail: crate::sales::QuotationMail,
    ) -> Result<Quotation> {
        mail.check()?;
        let now = self.crm.clock().now();
        let (sent, mut cs) = self
            .decide(ctx, id, expected_version, QuotationCommand::Send, now)
            .await?;
        let file = format!("{}.pdf", sent.number().to_string().replace('/', "-"));
        let payload = Payload {
            subject: mail.subject.trim().to_string(),
            body: mail.body.trim().to_string(),
            template: None,
            vars: serde_json::json!({
                "quotation": id,
                "attachments": crate::comms::attachment_var(&[(&file, "application/pdf", &mail.pdf)]),
            }),
            action: None,
        };
        let recipient = ResolvedRecipient {
            phone: None,
            user: None,
            name: Some(mail.to_name.trim().to_string()),
            email: Some(mail.to_email.trim().to_string()),
        };
        let key = format!(
            "quotation/{id}/sent/{}",
            mail.to_email.trim().to_lowercase()
        );
        let message = OutboxMessage::pending(
            ctx.tenant,
            key,
            "quotation_sent",
            Channel::Email,
            recipient,
            payload,
            now,
        )
        .about(subject(&sent));
        cs.push(Write::EnqueueOutbox(message));
        self.commit_about(ctx, cs, Vec::new(), Vec::new()).await?;
        Ok(sent)
    }
}
