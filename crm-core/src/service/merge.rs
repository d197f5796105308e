//! Merging partners and undoing it: reads, the pure plan of [`crate::merge`], one change set.

use super::{CrmService, Outcome};
use crate::actor::{Actor, Context};
use crate::dedupe;
use crate::error::{Error, Result};
use crate::event::{EventKind, Subject};
use crate::id::{MergeId, PartnerId, TenantId};
use crate::merge::{check_parties, Link, MergePlan, Move, PartnerMerge};
use crate::partner::Partner;
use crate::store::{ChangeSet, Key, Record, StoreExt, Write};
use std::collections::BTreeMap;

/// How many tombstones a read follows to the survivor (a survivor merged in turn makes a chain).
const MAX_HOPS: usize = 16;

impl CrmService {
    /// The partner `p` resolves to: itself, or, for a merge's tombstone, the partner it was merged into (followed
    /// through later merges).
    pub(crate) async fn live(&self, tenant: TenantId, mut p: Partner) -> Result<Partner> {
        for _ in 0..MAX_HOPS {
            match p.merged_into {
                None => return Ok(p),
                Some(to) => p = self.store.partner(tenant, to).await?,
            }
        }
        Err(Error::invalid(
            "partner",
            format!("more than {MAX_HOPS} merges chained from partner {}", p.id),
        ))
    }

    /// Every record pointing at `partner`.
    async fn links(&self, tenant: TenantId, partner: PartnerId) -> Result<Vec<Link>> {
        Ok(self
            .store
            .fetch(tenant, &Key::PartnerLinks(partner))
            .await?
            .into_iter()
            .filter_map(|r| match r {
                Record::Link(l) => Some(l),
                _ => None,
            })
            .collect())
    }

    /// Plans merging the partners `merged` into `survivor`: field by field, which value the survivor keeps and
    /// why (the partner named in `picks` for the field, else the value all give, else the only value given, else
    /// the newest partner's), the union of roles, tags, contacts (with their ids) and locations, and every record
    /// that moves (leads, requests, comments, documents with their lines, quotations, contracts, meetings,
    /// attachments, portal representatives and payments, campaign targets). Nothing is written: show the plan,
    /// then apply it with [`CrmService::merge_partners`].
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
    /// use crm_core::{lead::NewLead, merge::Reason, partner::NewPartner};
    /// let acme = crm.create_partner(&ctx, NewPartner::company("Acme SRL")).await?.record;
    /// let mut twin = NewPartner::company("ACME S.R.L.");
    /// twin.website = Some("acme.ro".into());
    /// let twin = crm.create_partner(&ctx, twin).await?.record;
    /// crm.enter_lead(&ctx, NewLead::for_partner(twin.id(), "Forklifts")).await?;
    /// let plan = crm.plan_partner_merge(ctx.tenant, acme.id(), &[twin.id()], &Default::default()).await?;
    /// let website = plan.fields().iter().find(|f| f.field == "website").unwrap();
    /// assert_eq!((website.from, website.reason), (twin.id(), Reason::OnlyValue));
    /// assert_eq!(plan.moves().len(), 1); // the lead
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when a partner is not the tenant's (another tenant's reads as not found);
    /// [`Error::Invalid`] on `merged` (empty, more than [`MAX_MERGED`](crate::merge::MAX_MERGED), the survivor
    /// itself, a partner twice), `survivor` or `merged[i]` (a tombstone: merged already), `picks` (an unknown
    /// field) or `picks.<field>` (a partner not in the merge); [`Error::Storage`] when the store cannot be read.
    pub async fn plan_partner_merge(
        &self,
        tenant: TenantId,
        survivor: PartnerId,
        merged: &[PartnerId],
        picks: &BTreeMap<String, PartnerId>,
    ) -> Result<MergePlan> {
        check_parties(survivor, merged)?;
        let keep = self.store.partner(tenant, survivor).await?;
        let mut others = Vec::with_capacity(merged.len());
        let mut links = BTreeMap::new();
        links.insert(survivor, self.links(tenant, survivor).await?);
        for id in merged {
            others.push(self.store.partner(tenant, *id).await?);
            links.insert(*id, self.links(tenant, *id).await?);
        }
        MergePlan::of(&keep, &others, &links, picks, self.clock.now())
    }

    /// Applies a merge planned by [`CrmService::plan_partner_merge`] in one transaction: the merged partners become
    /// tombstones resolving to the survivor, the survivor takes the planned fields, contacts and locations, every
    /// planned record moves to it (each at the version the plan read), the journal is written and a
    /// `partners_merged` event goes to each partner's timeline. Undo it with [`CrmService::undo_merge`].
    ///
    /// Afterwards a merged partner's id still works: reads ([`CrmService::partner`],
    /// [`CrmService::partner_by_ref`]) give the survivor, and a document, lead or request recorded for it is the
    /// survivor's.
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
    /// use crm_core::{lead::NewLead, partner::NewPartner};
    /// let acme = crm.create_partner(&ctx, NewPartner::company("Acme SRL")).await?.record;
    /// let twin = crm.create_partner(&ctx, NewPartner::company("ACME S.R.L.")).await?.record;
    /// let lead = crm.enter_lead(&ctx, NewLead::for_partner(twin.id(), "Forklifts")).await?.record;
    /// let plan = crm.plan_partner_merge(ctx.tenant, acme.id(), &[twin.id()], &Default::default()).await?;
    /// let merge = crm.merge_partners(&ctx, &plan).await?.record;
    /// assert_eq!(crm.lead(ctx.tenant, lead.id()).await?.partner(), acme.id());
    /// assert_eq!(crm.partner(ctx.tenant, twin.id()).await?.id(), acme.id()); // the old id finds the survivor
    /// crm.undo_merge(&ctx, merge.id()).await?;
    /// assert_eq!(crm.lead(ctx.tenant, lead.id()).await?.partner(), twin.id());
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the plan is another tenant's; [`Error::Conflict`] naming the partner or record
    /// that changed since the plan was read (nothing is then written: plan again); [`Error::AlreadyExists`] when
    /// a record was written meanwhile that collides (a campaign newly targeting both); [`Error::Storage`] when
    /// the change cannot be committed, and whatever a [`CommitHook`](super::CommitHook) returns.
    pub async fn merge_partners(
        &self,
        ctx: &Context,
        plan: &MergePlan,
    ) -> Result<Outcome<PartnerMerge>> {
        let survivor = plan.survivor();
        if survivor.tenant != ctx.tenant {
            return Err(Error::not_found("partner", survivor.id));
        }
        let now = self.clock.now();
        let journal = PartnerMerge::of(ctx.tenant, plan, now, user(ctx));
        let mut cs = ChangeSet::new();
        // Tombstones first: their contacts' codes are freed before the survivor takes the contacts.
        for (before, after) in plan.merged().iter().zip(plan.tombstones()) {
            cs.push(Write::UpdatePartner {
                partner: after.clone(),
                expected_version: before.version,
                keys: Vec::new(),
            });
        }
        cs.push(Write::UpdatePartner {
            partner: plan.result().clone(),
            expected_version: survivor.version,
            keys: dedupe::keys_of(plan.result()),
        });
        for m in plan.moves() {
            cs.push(Write::Repoint {
                tenant: ctx.tenant,
                moved: *m,
            });
        }
        cs.push(Write::InsertMerge(journal.clone()));
        let kind = EventKind::PartnersMerged {
            merge: journal.id,
            survivor: survivor.id,
            merged: journal.merged.clone(),
            moved: plan.moves().len() as u64,
        };
        self.journal_events(ctx, now, &mut cs, &journal, kind);
        self.commit_outcome(ctx, cs, journal).await
    }

    /// Undoes a merge: each partner back as it was before it (at its next version), every moved record back to
    /// the partner it came from, the journal marked undone, a `merge_undone` event on each partner's timeline. It
    /// is refused while anything the merge wrote has changed since (the survivor, a tombstone, a moved record),
    /// naming what changed.
    ///
    /// # Examples
    ///
    /// See [`CrmService::merge_partners`].
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the tenant has no such merge; [`Error::Invalid`] on `merge` when it was undone
    /// already; [`Error::Conflict`] naming the partner or record changed since the merge (its version then and
    /// now; a record that no longer belongs to the survivor reads as version 0); [`Error::Storage`] when the store
    /// cannot be read or the change cannot be committed, and whatever a [`CommitHook`](super::CommitHook) returns.
    pub async fn undo_merge(&self, ctx: &Context, id: MergeId) -> Result<Outcome<PartnerMerge>> {
        let journal = self.merge_journal(ctx.tenant, id).await?;
        if let Some(at) = journal.undone_at {
            return Err(Error::invalid(
                "merge",
                format!("merge {id} was undone already, at {at}"),
            ));
        }
        let mut current = Vec::with_capacity(journal.before.len());
        for (p, after) in journal.before.iter().zip(&journal.after_versions) {
            let now = self.store.partner(ctx.tenant, p.id).await?;
            if now.version != *after {
                return Err(Error::Conflict {
                    entity: "partner",
                    id: p.id.to_string(),
                    expected: *after,
                    actual: now.version,
                });
            }
            current.push(now.version);
        }
        let held = self.links(ctx.tenant, journal.survivor).await?;
        still_held(&held, journal.moved.iter().map(|m| m.link))?;
        let now = self.clock.now();
        let restored = journal.restored(&current, now);
        let mut cs = ChangeSet::new();
        // The survivor first: it gives the moved contacts' codes back before their partners take them again.
        for (p, v) in restored.iter().zip(&current) {
            cs.push(Write::UpdatePartner {
                keys: dedupe::keys_of(p),
                partner: p.clone(),
                expected_version: *v,
            });
        }
        for m in &journal.moved {
            cs.push(Write::Repoint {
                tenant: ctx.tenant,
                moved: Move {
                    from: m.to,
                    to: m.from,
                    link: m.link,
                },
            });
        }
        let undone = journal.undone(now);
        cs.push(Write::UpdateMerge {
            merge: undone.clone(),
            expected_version: journal.version,
        });
        let kind = EventKind::MergeUndone {
            merge: id,
            survivor: journal.survivor,
            merged: journal.merged.clone(),
        };
        self.journal_events(ctx, now, &mut cs, &journal, kind);
        self.commit_outcome(ctx, cs, undone).await
    }

    /// A merge's journal.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm_core::{actor::Context, conformance::model::MemStore, id::{MergeId, TenantId, UserId}};
    /// # use crm_core::{service::CrmService, Error};
    /// # futures::executor::block_on(async {
    /// # let crm = CrmService::builder().store(Arc::new(MemStore::new())).build()?;
    /// let err = crm.merge_journal(TenantId::new(), MergeId::new()).await.unwrap_err();
    /// assert!(matches!(err, Error::NotFound { entity: "merge", .. }));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the tenant has no such merge; [`Error::Storage`] when the store cannot be read.
    pub async fn merge_journal(&self, tenant: TenantId, id: MergeId) -> Result<PartnerMerge> {
        self.store
            .fetch(tenant, &Key::Merge(id))
            .await?
            .into_iter()
            .find_map(|r| match r {
                Record::Merge(m) => Some(m),
                _ => None,
            })
            .ok_or_else(|| Error::not_found("merge", id))
    }

    /// One event of `kind` on the timeline of the survivor and of each merged partner.
    fn journal_events(
        &self,
        ctx: &Context,
        now: crate::time::Timestamp,
        cs: &mut ChangeSet,
        journal: &PartnerMerge,
        kind: EventKind,
    ) {
        for p in std::iter::once(journal.survivor).chain(journal.merged.iter().copied()) {
            let subject = Subject {
                partner: Some(p),
                ..Default::default()
            };
            cs.push(Write::AppendEvent(self.event(
                ctx,
                now,
                subject,
                kind.clone(),
            )));
        }
    }
}

/// Refuses an undo while a record the merge moved is no longer among the survivor's `held` records at the version
/// the merge gave it: [`Error::Conflict`] naming it (version 0 when it is gone).
pub(crate) fn still_held(held: &[Link], moved: impl Iterator<Item = Link>) -> Result<()> {
    let held: BTreeMap<_, u64> = held.iter().map(|l| ((l.kind, l.id), l.version)).collect();
    for link in moved {
        let now = held.get(&(link.kind, link.id)).copied();
        if now != Some(link.version) {
            return Err(Error::Conflict {
                entity: link.kind.entity(),
                id: link.id.to_string(),
                expected: link.version,
                actual: now.unwrap_or(0),
            });
        }
    }
    Ok(())
}

/// The user who acts in `ctx`, if a user does.
pub(crate) fn user(ctx: &Context) -> Option<crate::id::UserId> {
    match &ctx.actor {
        Actor::User { id } => Some(*id),
        _ => None,
    }
}
