//! Imports in batches: partners (with their contacts and locations), contacts of known partners, and leads.
//!
//! A batch is a slice of an import's rows. Every row is checked on its own: a row that fails (a typed error
//! naming its field) is reported and left out, and the good rows of a batch are committed together in one
//! transaction, through the store's bulk path ([`Store::ingest`](crate::store::Store::ingest)) when the batch only
//! creates, else through [`Store::commit`](crate::store::Store::commit). A storage failure fails the whole batch
//! and nothing of it is written. Imports are repeatable: a partner is found by its host reference (or, without
//! one, by the one partner matching it strongly: same tax id or e-mail), a contact by its own reference, a lead by
//! its reference; a row equal to what is stored changes nothing ([`Partner::import_patch`]). Every created or
//! changed record gets its event in the activity log; the communication rules do not run for imported rows (an
//! import is not a customer's action; the host runs its own follow-up).
//!
//! The CSV layer that reads files into rows is `crm-io`; these methods take rows already parsed.

use super::CrmService;
use crate::actor::Context;
use crate::dedupe::DuplicateCandidate;
use crate::error::{Error, Result};
use crate::event::{DomainEvent, EventKind, FieldChange, Subject};
use crate::id::{LeadId, PartnerId};
use crate::lead::{LeadCommand, LeadPartner, LeadPatch, NewLead};
use crate::partner::{host_ref, NewContact, NewPartner, Partner};
use crate::store::{ChangeSet, StoreExt, Write};
use crate::time::Timestamp;
use std::collections::{BTreeMap, HashMap};

/// One row of an import: its line in the source (for the report) and its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRow<T> {
    /// The row's line in the source (1 is the header of a CSV file).
    pub line: u64,
    /// What the row holds.
    pub record: T,
}

/// A contact to import for a partner the host names by its reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactRow {
    /// The partner's host reference.
    pub partner_ref: String,
    /// The contact (its own `host_ref` finds it again on the next import).
    pub contact: NewContact,
}

/// Whether an import writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportMode {
    /// Check every row and report what would happen (and the duplicates a new partner would have); write nothing.
    DryRun,
    /// Write the good rows.
    Commit,
}

/// What an import did (or, in a dry run, would do) with one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowOutcome<I> {
    /// A new record.
    Created(I),
    /// A stored record, changed in these fields.
    Updated(I, Vec<String>),
    /// A stored record the row matches exactly.
    Unchanged(I),
    /// The row was refused, and nothing of it written.
    Failed(Error),
}

/// One row's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported<I> {
    /// The row's line.
    pub line: u64,
    /// What happened to it.
    pub outcome: RowOutcome<I>,
    /// In a dry run, the partners a new partner looks like (with reasons); empty otherwise.
    pub duplicates: Vec<DuplicateCandidate>,
}

/// A row of a partner batch.
enum BatchRow {
    Partner(NewPartner),
    Contact(ContactRow),
}

/// A partner a batch creates or changes: its latest state, and the stored version it replaces (none when new).
struct Touched {
    partner: Partner,
    stored: Option<u64>,
}

/// What a batch of partner rows has done so far.
#[derive(Default)]
struct Batch {
    touched: BTreeMap<PartnerId, Touched>,
    /// Who holds each code: the stored partners the rows name (read at once), then the batch's own rows.
    owners: CodeOwners,
    /// The first line of the batch naming each partner code (a later row with it is a duplicate in the file).
    named: HashMap<String, u64>,
    /// The stored partners the rows name, by their code.
    stored: HashMap<String, Partner>,
    events: Vec<DomainEvent>,
}

/// Who holds a code: a partner, and the import line that took it (none when it is stored).
#[derive(Clone, Copy)]
struct Owner {
    partner: PartnerId,
    line: Option<u64>,
}

/// The holders of partner codes and contact codes, to refuse a code another partner has.
#[derive(Default)]
pub(super) struct CodeOwners {
    partners: HashMap<String, Owner>,
    contacts: HashMap<String, Owner>,
}

impl CodeOwners {
    /// Records `p`'s codes as held by it (taken on import line `line`, or stored); the first holder stays.
    pub(super) fn add(&mut self, p: &Partner, line: Option<u64>) {
        let owner = Owner {
            partner: p.id,
            line,
        };
        if let Some(r) = p.host_ref() {
            self.partners.entry(r.to_string()).or_insert(owner);
        }
        for r in p.contacts().iter().filter_map(|c| c.host_ref.clone()) {
            self.contacts.entry(r).or_insert(owner);
        }
    }

    /// The partner holding partner code `code`.
    fn holder(&self, code: &str) -> Option<PartnerId> {
        self.partners.get(code).map(|o| o.partner)
    }

    /// Refuses a code of `p` another partner holds, by field: `host_ref`, or `contacts[i].host_ref`.
    pub(super) fn check(&self, p: &Partner) -> Result<()> {
        let other = |map: &HashMap<String, Owner>, r: &str| {
            map.get(r).copied().filter(|o| o.partner != p.id)
        };
        let why = |o: Owner, what: &str| match o.line {
            Some(line) => format!("line {line} has the same {what}"),
            None => format!("partner {} has this {what}", o.partner),
        };
        if let Some(o) = p.host_ref().and_then(|r| other(&self.partners, r)) {
            return Err(Error::invalid("host_ref", why(o, "reference")));
        }
        for (i, c) in p.contacts().iter().enumerate() {
            if let Some(o) = c.host_ref.as_deref().and_then(|r| other(&self.contacts, r)) {
                return Err(Error::invalid(
                    format!("contacts[{i}].host_ref"),
                    why(o, "contact reference"),
                ));
            }
        }
        Ok(())
    }
}

impl BatchRow {
    /// The partner codes and contact codes the row names (as stored: trimmed; invalid ones are left to the row).
    fn codes(&self) -> (Vec<String>, Vec<String>) {
        let code = |r: Option<&str>| host_ref(r).ok().flatten();
        match self {
            BatchRow::Partner(p) => {
                let contacts = p
                    .contacts
                    .iter()
                    .filter_map(|c| code(c.host_ref.as_deref()));
                (
                    code(p.host_ref.as_deref()).into_iter().collect(),
                    contacts.collect(),
                )
            }
            BatchRow::Contact(c) => (
                code(Some(&c.partner_ref)).into_iter().collect(),
                code(c.contact.host_ref.as_deref()).into_iter().collect(),
            ),
        }
    }
}

/// Whether `e` is about the row (reported, the batch goes on) rather than the store (the batch fails).
fn row_error(e: &Error) -> bool {
    !matches!(e, Error::Storage { .. })
}

/// The changed fields' names.
fn names(changes: &[FieldChange]) -> Vec<String> {
    changes.iter().map(|c| c.field.clone()).collect()
}

impl CrmService {
    /// Imports partners with their contacts and locations: each row creates a partner or updates the one it
    /// names; returns every row's outcome, in order.
    ///
    /// A row names a stored partner by its host reference (or, without one, by the one partner it matches strongly:
    /// the same tax id or e-mail); that partner gets [`Partner::import_patch`] of the row (what the row leaves empty
    /// stays, so the same rows again change nothing and log nothing). A row naming a partner merged into another
    /// changes nothing (the merge decided what the survivor holds) and reports the survivor. Each row is checked on its own and a refused
    /// one is left out; the good rows commit together in one transaction (the store's bulk path when they only
    /// create), with a `partner_created` or `partner_updated` event each; the communication rules do not run for
    /// imported rows. The partners the rows name are read at once, not row by row.
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
    /// use crm_core::partner::NewPartner;
    /// use crm_core::service::{ImportMode, ImportRow, RowOutcome};
    /// let rows = vec![
    ///     ImportRow { line: 2, record: NewPartner::company("Acme SRL").with_host_ref("C-1") },
    ///     ImportRow { line: 3, record: NewPartner::company("").with_host_ref("C-2") },
    /// ];
    /// let first = crm.import_partners(&ctx, rows.clone(), ImportMode::Commit).await?;
    /// assert!(matches!(first[0].outcome, RowOutcome::Created(_)));
    /// assert!(matches!(&first[1].outcome, RowOutcome::Failed(e) if e.field() == Some("name")));
    /// // The same rows again change nothing.
    /// let again = crm.import_partners(&ctx, rows, ImportMode::Commit).await?;
    /// assert!(matches!(again[0].outcome, RowOutcome::Unchanged(_)));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// Row errors are outcomes ([`RowOutcome::Failed`]: [`Error::Invalid`] naming the field as
    /// [`CrmService::create_partner`] does, `host_ref` also when an earlier row of the batch has the reference,
    /// `contacts[i].host_ref` when another partner's contact has it). The call fails with [`Error::Storage`] when
    /// the store cannot be read or the batch cannot be committed; nothing of the batch is then written.
    pub async fn import_partners(
        &self,
        ctx: &Context,
        rows: Vec<ImportRow<NewPartner>>,
        mode: ImportMode,
    ) -> Result<Vec<Imported<PartnerId>>> {
        let rows = rows
            .into_iter()
            .map(|r| (r.line, BatchRow::Partner(r.record)));
        self.import_batch(ctx, rows.collect(), mode).await
    }

    /// Imports contacts of partners the host names by reference: a contact with a reference the partner has is
    /// updated, else one with the same e-mail or name, else it is added. Rows of one partner may follow one
    /// another; see [`CrmService::import_partners`] for batches and repeatability.
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
    /// use crm_core::partner::{NewContact, NewPartner};
    /// use crm_core::service::{ContactRow, ImportMode, ImportRow, RowOutcome};
    /// crm.create_partner(&ctx, NewPartner::company("Acme SRL").with_host_ref("C-1")).await?;
    /// let ana = NewContact { name: "Ana Pop".into(), host_ref: Some("P-1".into()), ..Default::default() };
    /// let row = ImportRow { line: 2, record: ContactRow { partner_ref: "C-1".into(), contact: ana } };
    /// let done = crm.import_contacts(&ctx, vec![row], ImportMode::Commit).await?;
    /// assert!(matches!(done[0].outcome, RowOutcome::Updated(..)));
    /// assert_eq!(crm.contact_by_ref(ctx.tenant, "P-1").await?.1.name, "Ana Pop");
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// Row errors are outcomes: [`Error::Invalid`] on `partner_ref` (empty, or no partner has it) or on the
    /// contact's fields (`contacts[i].…`). [`Error::Storage`] fails the batch as for
    /// [`CrmService::import_partners`].
    pub async fn import_contacts(
        &self,
        ctx: &Context,
        rows: Vec<ImportRow<ContactRow>>,
        mode: ImportMode,
    ) -> Result<Vec<Imported<PartnerId>>> {
        let rows = rows
            .into_iter()
            .map(|r| (r.line, BatchRow::Contact(r.record)));
        self.import_batch(ctx, rows.collect(), mode).await
    }

    /// Reads the stored partners the rows name by code, at once (not one read per row).
    async fn read_named(
        &self,
        ctx: &Context,
        batch: &mut Batch,
        rows: &[(u64, BatchRow)],
    ) -> Result<()> {
        let (mut partners, mut contacts) = (Vec::new(), Vec::new());
        for (_, row) in rows {
            let (p, c) = row.codes();
            partners.extend(p);
            contacts.extend(c);
        }
        for p in self
            .partners_by_codes(ctx.tenant, &partners, &contacts)
            .await?
        {
            batch.owners.add(&p, None);
            if let Some(r) = p.host_ref() {
                batch.stored.insert(r.to_string(), p);
            }
        }
        Ok(())
    }

    /// One batch of partner or contact rows, committed together.
    async fn import_batch(
        &self,
        ctx: &Context,
        rows: Vec<(u64, BatchRow)>,
        mode: ImportMode,
    ) -> Result<Vec<Imported<PartnerId>>> {
        let now = self.clock.now();
        let mut batch = Batch::default();
        self.read_named(ctx, &mut batch, &rows).await?;
        let mut out = Vec::with_capacity(rows.len());
        for (line, row) in rows {
            let done = match row {
                BatchRow::Partner(p) => self.partner_row(ctx, &mut batch, line, p, now, mode).await,
                BatchRow::Contact(c) => {
                    let done = self.contact_row(ctx, &mut batch, line, c, now).await;
                    done.map(|o| (o, Vec::new()))
                }
            };
            let (outcome, duplicates) = match done {
                Ok(done) => done,
                Err(e) if row_error(&e) => (RowOutcome::Failed(e), Vec::new()),
                Err(e) => return Err(e),
            };
            out.push(Imported {
                line,
                outcome,
                duplicates,
            });
        }
        if mode == ImportMode::Commit {
            self.commit_batch(ctx, batch).await?;
        }
        Ok(out)
    }

    /// Imports leads: a lead with a reference the tenant has is updated (title, description, expected revenue,
    /// probability, owner, expected close, priority; tags added), else it is entered as
    /// [`CrmService::enter_lead`] does (its partner found or created by [`LeadPartner::MatchOrCreate`]). Each
    /// lead is committed on its own (entering one also writes its partner and stage history).
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
    /// use crm_core::{lead::{LeadPartner, NewLead}, partner::NewPartner};
    /// use crm_core::service::{ImportMode, ImportRow, RowOutcome};
    /// let acme = LeadPartner::MatchOrCreate { partner: NewPartner::company("Acme SRL").with_host_ref("C-1") };
    /// let row = ImportRow { line: 2, record: NewLead::new(acme, "Forklifts").with_host_ref("OPP-1") };
    /// let first = crm.import_leads(&ctx, vec![row.clone()], ImportMode::Commit).await?;
    /// assert!(matches!(first[0].outcome, RowOutcome::Created(_)));
    /// let again = crm.import_leads(&ctx, vec![row], ImportMode::Commit).await?;
    /// assert!(matches!(again[0].outcome, RowOutcome::Unchanged(_)));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// Row errors are outcomes, naming the field as [`CrmService::enter_lead`] does (`host_ref` also when an
    /// earlier row of the call has the reference). [`Error::Storage`] fails the call; the leads committed before it
    /// stay.
    pub async fn import_leads(
        &self,
        ctx: &Context,
        rows: Vec<ImportRow<NewLead>>,
        mode: ImportMode,
    ) -> Result<Vec<Imported<LeadId>>> {
        let mut seen: HashMap<String, u64> = HashMap::new();
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let outcome = match self
                .lead_row(ctx, &mut seen, row.line, row.record, mode)
                .await
            {
                Ok(done) => done,
                Err(e) if row_error(&e) => RowOutcome::Failed(e),
                Err(e) => return Err(e),
            };
            out.push(Imported {
                line: row.line,
                outcome,
                duplicates: Vec::new(),
            });
        }
        Ok(out)
    }

    async fn lead_row(
        &self,
        ctx: &Context,
        seen: &mut HashMap<String, u64>,
        line: u64,
        new: NewLead,
        mode: ImportMode,
    ) -> Result<RowOutcome<LeadId>> {
        let code = host_ref(new.host_ref.as_deref())?;
        if let Some(c) = &code {
            if let Some(first) = seen.get(c) {
                let why = format!("line {first} has the same reference");
                return Err(Error::invalid("host_ref", why));
            }
        }
        let stored = match &code {
            Some(c) => self.store.lead_by_ref(ctx.tenant, c).await?,
            None => None,
        };
        let outcome = match stored {
            Some(lead) => {
                let mut tags = lead.tags.clone();
                tags.extend(new.tags);
                let patch = LeadPatch {
                    title: Some(new.title),
                    description: new.description.map(Some),
                    contact: None,
                    expected_revenue: new.expected_revenue.map(Some),
                    probability: new.probability.map(Some),
                    owner: new.owner.map(Some),
                    expected_close: new.expected_close.map(Some),
                    priority: Some(new.priority),
                    tags: Some(tags),
                    host_ref: None,
                };
                let cmd = LeadCommand::Update(patch);
                match self
                    .transition_writes(ctx, lead.id, lead.version, cmd)
                    .await?
                {
                    Err(_) => RowOutcome::Unchanged(lead.id),
                    Ok((cs, next)) => {
                        let fields = lead_changes(&cs);
                        if mode == ImportMode::Commit {
                            self.commit(ctx, cs).await?;
                        }
                        RowOutcome::Updated(next.id, fields)
                    }
                }
            }
            None if mode == ImportMode::DryRun => {
                // Everything entering would check, short of resolving (or creating) the partner.
                let pipeline = self.resolve_pipeline(ctx.tenant, new.pipeline).await?;
                if let LeadPartner::New { partner } | LeadPartner::MatchOrCreate { partner } =
                    &new.partner
                {
                    partner.clone().build(ctx.tenant, self.clock.now())?;
                }
                let (lead, _) =
                    new.build(ctx.tenant, PartnerId::new(), &pipeline, self.clock.now())?;
                self.lead_ref_free(&lead).await?;
                RowOutcome::Created(lead.id)
            }
            None => RowOutcome::Created(self.enter_lead(ctx, new).await?.record.id),
        };
        if let Some(c) = code {
            seen.insert(c, line);
        }
        Ok(outcome)
    }

    /// One partner row: the partner it names (in the batch or the store), patched; or a new one.
    async fn partner_row(
        &self,
        ctx: &Context,
        batch: &mut Batch,
        line: u64,
        new: NewPartner,
        now: Timestamp,
        mode: ImportMode,
    ) -> Result<(RowOutcome<PartnerId>, Vec<DuplicateCandidate>)> {
        let code = host_ref(new.host_ref.as_deref())?;
        if let Some(first) = code.as_ref().and_then(|c| batch.named.get(c)) {
            let why = format!("line {first} has the same reference");
            return Err(Error::invalid("host_ref", why));
        }
        let done = self
            .named_row(ctx, batch, (line, code.clone()), new, now, mode)
            .await;
        if let (Ok(_), Some(c)) = (&done, code) {
            batch.named.entry(c).or_insert(line);
        }
        done
    }

    /// A partner row (its line and its code, checked already) past the in-file duplicate check: the partner its code
    /// (or a strong match) names, patched; or a new one.
    async fn named_row(
        &self,
        ctx: &Context,
        batch: &mut Batch,
        (line, code): (u64, Option<String>),
        new: NewPartner,
        now: Timestamp,
        mode: ImportMode,
    ) -> Result<(RowOutcome<PartnerId>, Vec<DuplicateCandidate>)> {
        let known = match &code {
            Some(c) => batch.stored.get(c).cloned(),
            None => {
                let dups = self.find_duplicates(ctx.tenant, &new).await?;
                let strong: Vec<_> = dups.iter().filter(|d| d.is_strong()).collect();
                match strong.as_slice() {
                    [one] => self.batch_partner(ctx, batch, one.partner).await?,
                    _ => None,
                }
            }
        };
        match known {
            // A merged partner's code: the merge decided what the survivor holds, so the row changes nothing.
            Some(stored) if stored.merged_into.is_some() => {
                let survivor = self.live(ctx.tenant, stored).await?;
                Ok((RowOutcome::Unchanged(survivor.id), Vec::new()))
            }
            Some(stored) => {
                let current = batch
                    .touched
                    .get(&stored.id)
                    .map_or(stored.clone(), |t| t.partner.clone());
                let outcome = self
                    .patch_in_batch(ctx, batch, line, &current, new, now)
                    .await?;
                Ok((outcome, Vec::new()))
            }
            None => {
                let duplicates = if mode == ImportMode::DryRun {
                    self.find_duplicates(ctx.tenant, &new).await?
                } else {
                    Vec::new()
                };
                let p = new.build(ctx.tenant, now)?;
                self.refs_free(batch, line, &p)?;
                let subject = Subject {
                    partner: Some(p.id),
                    ..Default::default()
                };
                let kind = EventKind::PartnerCreated {
                    name: p.name.clone(),
                };
                batch.events.push(self.event(ctx, now, subject, kind));
                let id = p.id;
                batch.touched.insert(
                    id,
                    Touched {
                        partner: p,
                        stored: None,
                    },
                );
                Ok((RowOutcome::Created(id), duplicates))
            }
        }
    }

    /// A partner as the batch has it so far, else as stored.
    async fn batch_partner(
        &self,
        ctx: &Context,
        batch: &Batch,
        id: PartnerId,
    ) -> Result<Option<Partner>> {
        match batch.touched.get(&id) {
            Some(t) => Ok(Some(t.partner.clone())),
            None => Ok(Some(self.store.partner(ctx.tenant, id).await?)),
        }
    }

    /// One contact row: the partner it names, with the contact merged in.
    async fn contact_row(
        &self,
        ctx: &Context,
        batch: &mut Batch,
        line: u64,
        row: ContactRow,
        now: Timestamp,
    ) -> Result<RowOutcome<PartnerId>> {
        let code = host_ref(Some(&row.partner_ref))
            .map_err(|e| Error::invalid("partner_ref", e.to_string()))?
            .ok_or_else(|| Error::invalid("partner_ref", "empty"))?;
        let current = match batch.owners.holder(&code) {
            Some(id) => self.batch_partner(ctx, batch, id).await?,
            None => None,
        };
        let current = current.ok_or_else(|| {
            Error::invalid(
                "partner_ref",
                format!("no partner has the reference `{code}`"),
            )
        })?;
        // A merged partner's code names its survivor.
        let current = match current.merged_into {
            Some(_) => {
                let survivor = self.live(ctx.tenant, current).await?;
                self.batch_partner(ctx, batch, survivor.id)
                    .await?
                    .unwrap_or(survivor)
            }
            None => current,
        };
        let mut new = NewPartner::of_kind(current.kind, current.name.clone());
        new.contacts.push(row.contact);
        self.patch_in_batch(ctx, batch, line, &current, new, now)
            .await
    }

    /// Applies a row to a partner the batch or the store has; records it in the batch when it changes.
    async fn patch_in_batch(
        &self,
        ctx: &Context,
        batch: &mut Batch,
        line: u64,
        current: &Partner,
        new: NewPartner,
        now: Timestamp,
    ) -> Result<RowOutcome<PartnerId>> {
        let (next, changes) = current.patched(current.import_patch(new), now)?;
        if changes.is_empty() {
            return Ok(RowOutcome::Unchanged(current.id));
        }
        self.refs_free(batch, line, &next)?;
        let subject = Subject {
            partner: Some(next.id),
            ..Default::default()
        };
        let fields = names(&changes);
        batch
            .events
            .push(self.event(ctx, now, subject, EventKind::PartnerUpdated { changes }));
        let stored = match batch.touched.get(&next.id) {
            Some(t) => t.stored,
            None => Some(current.version),
        };
        let id = next.id;
        batch.touched.insert(
            id,
            Touched {
                partner: next,
                stored,
            },
        );
        Ok(RowOutcome::Updated(id, fields))
    }

    /// Refuses codes another partner holds (stored, or taken earlier in the batch), then takes `p`'s codes.
    fn refs_free(&self, batch: &mut Batch, line: u64, p: &Partner) -> Result<()> {
        batch.owners.check(p)?;
        batch.owners.add(p, Some(line));
        Ok(())
    }

    /// Commits a batch: its partners (inserted, or updated once from their stored version) and its events, in one
    /// transaction; through the bulk path when it only inserts.
    async fn commit_batch(&self, ctx: &Context, batch: Batch) -> Result<()> {
        let mut cs = ChangeSet::new();
        let mut updates = false;
        for (_, t) in batch.touched {
            let keys = crate::dedupe::keys_of(&t.partner);
            match t.stored {
                None => {
                    cs.push(Write::InsertPartner {
                        partner: t.partner,
                        keys,
                    });
                }
                Some(stored) => {
                    updates = true;
                    let mut partner = t.partner;
                    partner.version = stored + 1;
                    cs.push(Write::UpdatePartner {
                        partner,
                        expected_version: stored,
                        keys,
                    });
                }
            }
        }
        if cs.is_empty() {
            return Ok(());
        }
        for e in batch.events {
            cs.push(Write::AppendEvent(e));
        }
        super::seal::seal(
            self.store.as_ref(),
            ctx.tenant,
            &mut cs,
            &super::Loaded::default(),
        )
        .await?;
        if updates {
            self.store.commit(ctx.tenant, cs).await
        } else {
            self.store.ingest(ctx.tenant, cs).await.map(|_| ())
        }
    }
}

/// The fields a lead update changes, from its event.
fn lead_changes(cs: &ChangeSet) -> Vec<String> {
    cs.writes()
        .iter()
        .find_map(|w| match w {
            Write::AppendEvent(e) => match &e.kind {
                EventKind::LeadUpdated { changes } => Some(names(changes)),
                _ => None,
            },
            _ => None,
        })
        .unwrap_or_default()
}
