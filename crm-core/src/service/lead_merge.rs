//! Merging leads and undoing it: reads, the pure plan of [`crate::lead_merge`], one change set.

use super::merge::user;
use super::{lead_subject, CrmService, Outcome};
use crate::actor::Context;
use crate::error::{Error, Result};
use crate::event::EventKind;
use crate::id::{LeadId, MergeId, TenantId};
use crate::lead::{Lead, LeadStatus};
use crate::lead_merge::{LeadMerge, LeadMergePlan, LeadMove};
use crate::merge::{check_ids, Link};
use crate::store::{ChangeSet, Key, Record, StoreExt, Write};
use std::collections::BTreeMap;

/// How many tombstones a read follows to the survivor.
const MAX_HOPS: usize = 16;

impl CrmService {
    /// The lead `id` resolves to: itself, or, for a merge's tombstone, the lead it was merged into (followed
    /// through later merges).
    pub(crate) async fn live_lead(&self, tenant: TenantId, id: LeadId) -> Result<Lead> {
        let mut l = self.store.lead(tenant, id).await?;
        for _ in 0..MAX_HOPS {
            match l.status {
                LeadStatus::Merged { into, .. } => l = self.store.lead(tenant, into).await?,
                _ => return Ok(l),
            }
        }
        Err(Error::invalid(
            "lead",
            format!("more than {MAX_HOPS} merges chained from lead {id}"),
        ))
    }

    /// The id a new record naming lead `id` is written with: its survivor's when it is a merge's tombstone, else
    /// `id` itself (a lead that cannot be read is left to the caller's own check to report).
    pub(crate) async fn lead_for_new(&self, tenant: TenantId, id: LeadId) -> LeadId {
        self.live_lead(tenant, id).await.map_or(id, |l| l.id)
    }

    /// Every record pointing at `lead`.
    async fn lead_links(&self, tenant: TenantId, lead: LeadId) -> Result<Vec<Link>> {
        Ok(self
            .store
            .fetch(tenant, &Key::LeadLinks(lead))
            .await?
            .into_iter()
            .filter_map(|r| match r {
                Record::Link(l) => Some(l),
                _ => None,
            })
            .collect())
    }

    /// Plans merging the leads `merged` into `survivor` (all of one partner): field by field, which value the
    /// survivor keeps and why (the lead named in `picks` for the field, else the value all give, else the only
    /// value given, else the newest lead's), the union of tags, and every record that moves (requests, comments,
    /// quotations, contracts, meetings, attachments, campaign targets). The survivor keeps its pipeline, stage and
    /// status. Nothing is written: show the plan, then apply it with [`CrmService::merge_leads`].
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
    /// use crm_core::{lead::NewLead, merge::Reason, partner::NewPartner, request::NewRequest};
    /// let acme = crm.create_partner(&ctx, NewPartner::company("Acme SRL")).await?.record;
    /// let lead = crm.enter_lead(&ctx, NewLead::for_partner(acme.id(), "Forklifts")).await?.record;
    /// let mut twin = NewLead::for_partner(acme.id(), "Forklifts (web form)");
    /// twin.description = Some("Three, electric".into());
    /// let twin = crm.enter_lead(&ctx, twin).await?.record;
    /// crm.open_request(&ctx, NewRequest::on_lead(twin.id(), "Call back", UserId::new())).await?;
    /// let plan = crm.plan_lead_merge(ctx.tenant, lead.id(), &[twin.id()], &Default::default()).await?;
    /// let description = plan.fields().iter().find(|f| f.field == "description").unwrap();
    /// assert_eq!((description.from, description.reason), (twin.id(), Reason::OnlyValue));
    /// assert_eq!(plan.moves().len(), 1); // the request
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when a lead is not the tenant's (another tenant's reads as not found);
    /// [`Error::Invalid`] on `merged` (empty, more than [`MAX_MERGED`](crate::merge::MAX_MERGED), the survivor
    /// itself, a lead twice), `survivor` (a tombstone: merged already), `merged[i]` (a tombstone, another
    /// partner's lead, a won lead while the survivor is not won), `picks` (an unknown field) or `picks.<field>`
    /// (a lead not in the merge); [`Error::Storage`] when the store cannot be read.
    pub async fn plan_lead_merge(
        &self,
        tenant: TenantId,
        survivor: LeadId,
        merged: &[LeadId],
        picks: &BTreeMap<String, LeadId>,
    ) -> Result<LeadMergePlan> {
        check_ids("lead", survivor, merged)?;
        let keep = self.store.lead(tenant, survivor).await?;
        let pipeline = self.store.pipeline(tenant, keep.pipeline).await?;
        let mut others = Vec::with_capacity(merged.len());
        let mut links = BTreeMap::new();
        for id in merged {
            others.push(self.store.lead(tenant, *id).await?);
            links.insert(*id, self.lead_links(tenant, *id).await?);
        }
        LeadMergePlan::of(&keep, &others, &pipeline, &links, picks, self.clock.now())
    }

    /// Applies a merge planned by [`CrmService::plan_lead_merge`] in one transaction: the merged leads become
    /// tombstones ([`LeadStatus::Merged`]) resolving to the survivor, the survivor takes the planned fields and
    /// tags, every planned record moves to it (each at the version the plan read), the journal is written and a
    /// `leads_merged` event goes to each lead's timeline. Undo it with [`CrmService::undo_lead_merge`].
    ///
    /// Afterwards a merged lead's id still works: [`CrmService::lead`] and [`CrmService::lead_by_ref`] give the
    /// survivor, and a command, request, comment, quotation, meeting or file for it goes to the survivor. No board,
    /// list, funnel or report counts the tombstone.
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
    /// use crm_core::{lead::NewLead, partner::NewPartner, request::NewRequest, store::LeadQuery};
    /// let acme = crm.create_partner(&ctx, NewPartner::company("Acme SRL")).await?.record;
    /// let lead = crm.enter_lead(&ctx, NewLead::for_partner(acme.id(), "Forklifts")).await?.record;
    /// let twin = crm.enter_lead(&ctx, NewLead::for_partner(acme.id(), "Forklifts")).await?.record;
    /// let call = NewRequest::on_lead(twin.id(), "Call back", UserId::new());
    /// let call = crm.open_request(&ctx, call).await?.record;
    /// let plan = crm.plan_lead_merge(ctx.tenant, lead.id(), &[twin.id()], &Default::default()).await?;
    /// let merge = crm.merge_leads(&ctx, &plan).await?.record;
    /// assert_eq!(crm.lead(ctx.tenant, twin.id()).await?.id(), lead.id()); // the old id finds the survivor
    /// assert_eq!(crm.request(ctx.tenant, call.id()).await?.lead(), Some(lead.id()));
    /// assert_eq!(crm.query_leads(ctx.tenant, &LeadQuery::default()).await?.items.len(), 1);
    /// crm.undo_lead_merge(&ctx, merge.id()).await?;
    /// assert_eq!(crm.request(ctx.tenant, call.id()).await?.lead(), Some(twin.id()));
    /// assert_eq!(crm.query_leads(ctx.tenant, &LeadQuery::default()).await?.items.len(), 2);
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the plan is another tenant's; [`Error::Conflict`] naming the lead or record that
    /// changed since the plan was read (nothing is then written: plan again); [`Error::Storage`] when the change
    /// cannot be committed, and whatever a [`CommitHook`](super::CommitHook) returns.
    pub async fn merge_leads(
        &self,
        ctx: &Context,
        plan: &LeadMergePlan,
    ) -> Result<Outcome<LeadMerge>> {
        let survivor = plan.survivor();
        if survivor.tenant != ctx.tenant {
            return Err(Error::not_found("lead", survivor.id));
        }
        let now = self.clock.now();
        let journal = LeadMerge::of(ctx.tenant, plan, now, user(ctx));
        let mut cs = ChangeSet::new();
        for (before, after) in plan.merged().iter().zip(plan.tombstones()) {
            cs.push(Write::UpdateLead {
                lead: after.clone(),
                expected_version: before.version,
            });
        }
        cs.push(Write::UpdateLead {
            lead: plan.result().clone(),
            expected_version: survivor.version,
        });
        for m in plan.moves() {
            cs.push(Write::RepointLead {
                tenant: ctx.tenant,
                moved: *m,
            });
        }
        cs.push(Write::InsertLeadMerge(journal.clone()));
        let kind = EventKind::LeadsMerged {
            merge: journal.id,
            survivor: survivor.id,
            merged: journal.merged.clone(),
            moved: plan.moves().len() as u64,
        };
        self.lead_journal_events(ctx, now, &mut cs, &journal, kind);
        self.commit_outcome(ctx, cs, journal).await
    }

    /// Undoes a lead merge: each lead back as it was before it (at its next version), every moved record back to
    /// the lead it came from, the journal marked undone, a `lead_merge_undone` event on each lead's timeline. It is
    /// refused while anything the merge wrote has changed since (the survivor, a tombstone, a moved record), naming
    /// what changed.
    ///
    /// # Examples
    ///
    /// See [`CrmService::merge_leads`].
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the tenant has no such merge; [`Error::Invalid`] on `merge` when it was undone
    /// already; [`Error::Conflict`] naming the lead or record changed since the merge (its version then and now; a
    /// record that no longer belongs to the survivor reads as version 0); [`Error::Storage`] when the store cannot
    /// be read or the change cannot be committed, and whatever a [`CommitHook`](super::CommitHook) returns.
    pub async fn undo_lead_merge(&self, ctx: &Context, id: MergeId) -> Result<Outcome<LeadMerge>> {
        let journal = self.lead_merge_journal(ctx.tenant, id).await?;
        if let Some(at) = journal.undone_at {
            return Err(Error::invalid(
                "merge",
                format!("lead merge {id} was undone already, at {at}"),
            ));
        }
        let mut current = Vec::with_capacity(journal.before.len());
        for (l, after) in journal.before.iter().zip(&journal.after_versions) {
            let now = self.store.lead(ctx.tenant, l.id).await?;
            if now.version != *after {
                return Err(Error::Conflict {
                    entity: "lead",
                    id: l.id.to_string(),
                    expected: *after,
                    actual: now.version,
                });
            }
            current.push(now.version);
        }
        let held = self.lead_links(ctx.tenant, journal.survivor).await?;
        super::merge::still_held(&held, journal.moved.iter().map(|m| m.link))?;
        let now = self.clock.now();
        let mut cs = ChangeSet::new();
        for (l, v) in journal.restored(&current, now).into_iter().zip(&current) {
            cs.push(Write::UpdateLead {
                lead: l,
                expected_version: *v,
            });
        }
        for m in &journal.moved {
            cs.push(Write::RepointLead {
                tenant: ctx.tenant,
                moved: LeadMove {
                    from: m.to,
                    to: m.from,
                    link: m.link,
                },
            });
        }
        let undone = journal.undone(now);
        cs.push(Write::UpdateLeadMerge {
            merge: undone.clone(),
            expected_version: journal.version,
        });
        let kind = EventKind::LeadMergeUndone {
            merge: id,
            survivor: journal.survivor,
            merged: journal.merged.clone(),
        };
        self.lead_journal_events(ctx, now, &mut cs, &journal, kind);
        self.commit_outcome(ctx, cs, undone).await
    }

    /// A lead merge's journal.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm_core::{actor::Context, conformance::model::MemStore, id::{MergeId, TenantId, UserId}};
    /// # use crm_core::{service::CrmService, Error};
    /// # futures::executor::block_on(async {
    /// # let crm = CrmService::builder().store(Arc::new(MemStore::new())).build()?;
    /// let err = crm.lead_merge_journal(TenantId::new(), MergeId::new()).await.unwrap_err();
    /// assert!(matches!(err, Error::NotFound { entity: "lead merge", .. }));
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the tenant has no such merge; [`Error::Storage`] when the store cannot be read.
    pub async fn lead_merge_journal(&self, tenant: TenantId, id: MergeId) -> Result<LeadMerge> {
        self.store
            .fetch(tenant, &Key::LeadMerge(id))
            .await?
            .into_iter()
            .find_map(|r| match r {
                Record::LeadMerge(m) => Some(m),
                _ => None,
            })
            .ok_or_else(|| Error::not_found("lead merge", id))
    }

    /// One event of `kind` on the timeline of the survivor and of each merged lead (and so of their partner).
    fn lead_journal_events(
        &self,
        ctx: &Context,
        now: crate::time::Timestamp,
        cs: &mut ChangeSet,
        journal: &LeadMerge,
        kind: EventKind,
    ) {
        for l in &journal.before {
            cs.push(Write::AppendEvent(self.event(
                ctx,
                now,
                lead_subject(l),
                kind.clone(),
            )));
        }
    }
}
