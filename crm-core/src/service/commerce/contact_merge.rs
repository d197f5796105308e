//! Merging contacts of one partner, and undoing it: the partner's document changes (the survivor updated, the
//! merged contacts gone, the merge journaled in it) and every lead, meeting and representative naming a merged
//! contact moves to the survivor, in one change set.

use super::CommerceService;
use crate::actor::Context;
use crate::commerce::{CommerceStoreExt, CommerceWrite};
use crate::dedupe;
use crate::error::{Error, Result};
use crate::event::{DomainEvent, EventKind, Subject};
use crate::id::{ContactId, LeadId, MeetingId, MergeId, PartnerId, RepresentativeId, TenantId};
use crate::merge::{ContactMergePlan, Link, LinkKind};
use crate::partner::{ContactLinkKind, ContactMerge, ContactMove, Partner};
use crate::sales::Participant;
use crate::service::Outcome;
use crate::store::{ChangeSet, Key, Record, Store, StoreExt, Write};
use std::collections::BTreeMap;

impl CommerceService {
    /// Plans merging contacts of one partner (the same person entered twice): each field of the surviving contact
    /// with the contact it comes from and why (the user's pick; the value all give; the only value; else the
    /// survivor's), the latest consent per channel and purpose of all of them, and every lead, meeting and portal
    /// representative naming a merged contact. Nothing is written.
    ///
    /// # Examples
    ///
    /// See [`CommerceService::merge_contacts`].
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the partner is not the tenant's; [`Error::Invalid`] as
    /// [`ContactMergePlan::of`]; [`Error::Storage`] when the store cannot be read.
    pub async fn plan_contact_merge(
        &self,
        tenant: TenantId,
        partner: PartnerId,
        survivor: ContactId,
        merged: &[ContactId],
        picks: &BTreeMap<String, ContactId>,
    ) -> Result<ContactMergePlan> {
        let p = self.crm.partner(tenant, partner).await?;
        let moves = self.contact_links(tenant, &p, merged).await?;
        ContactMergePlan::of(&p, survivor, merged, picks, moves)
    }

    /// Applies a contact merge plan in one transaction: the partner (its version checked against the plan's), each
    /// moved record (its version checked), the journal kept in the partner's document, `contacts_merged` on the
    /// partner's timeline. A merged contact's id keeps finding the survivor ([`Partner::contact`]).
    ///
    /// # Examples
    ///
    /// ```
    /// # use crm_core::conformance::model::prelude::*;
    /// # futures::executor::block_on(async {
    /// # let (commerce, ctx) = crm_core::conformance::model::example_sales().await?;
    /// use crm_core::partner::NewPartner;
    /// use std::collections::BTreeMap;
    /// let acme = NewPartner::company("Acme SRL")
    ///     .with_contact("Ana Pop", Some("ana@acme.ro"), None)
    ///     .with_contact("Ana Pop", None, Some("+40 722 000 111"));
    /// let acme = commerce.crm().create_partner(&ctx, acme).await?.record;
    /// let (ana, twin) = (acme.contacts()[0].id, acme.contacts()[1].id);
    /// let plan = commerce.plan_contact_merge(ctx.tenant, acme.id(), ana, &[twin], &BTreeMap::new()).await?;
    /// let merged = commerce.merge_contacts(&ctx, &plan).await?.record;
    /// assert_eq!(merged.contacts().len(), 1);
    /// assert_eq!(merged.contacts()[0].phone.as_deref(), Some("+40 722 000 111"));
    /// assert_eq!(merged.contact(twin).map(|c| c.id), Some(ana));
    /// let journal = merged.contact_merges()[0].id;
    /// let undone = commerce.undo_contact_merge(&ctx, acme.id(), journal).await?.record;
    /// assert_eq!(undone.contacts().len(), 2);
    /// # Ok::<(), Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Conflict`] when the partner or a moved record changed since the plan was made (nothing is then
    /// written); [`Error::NotFound`] when the plan is of another tenant; [`Error::Storage`] when the store cannot
    /// be read or written.
    pub async fn merge_contacts(
        &self,
        ctx: &Context,
        plan: &ContactMergePlan,
    ) -> Result<Outcome<Partner>> {
        let p = &plan.partner;
        if p.tenant != ctx.tenant {
            return Err(Error::not_found("partner", p.id));
        }
        let now = self.crm.clock().now();
        let mut next = p.clone();
        next.contacts.retain(|c| !plan.merged.contains(&c.id));
        for c in &mut next.contacts {
            if c.id == plan.survivor {
                *c = plan.contact.clone();
            }
        }
        let mut before = vec![];
        before.extend(p.contacts.iter().filter(|c| c.id == plan.survivor).cloned());
        for id in &plan.merged {
            before.extend(p.contacts.iter().filter(|c| c.id == *id).cloned());
        }
        let mut cs = ChangeSet::new();
        for group in grouped(&plan.moves) {
            cs.push(
                self.move_record(ctx.tenant, &group, |m| (m.from, plan.survivor), now)
                    .await?,
            );
        }
        let moved = (plan.moves.iter())
            .map(|m| ContactMove {
                version: m.version + 1,
                ..m.clone()
            })
            .collect();
        let merge = ContactMerge {
            id: MergeId::new(),
            survivor: plan.survivor,
            before,
            after: plan.contact.clone(),
            moved,
            at: now,
            undone_at: None,
        };
        next.contact_merges.push(merge.clone());
        let event = EventKind::ContactsMerged {
            merge: merge.id,
            survivor: plan.survivor,
            merged: plan.merged.clone(),
            moved: plan.moves.len() as u64,
        };
        self.commit_partner(ctx, p, next, cs, event, now).await
    }

    /// Undoes a contact merge while nothing has changed the records it moved: the contacts come back as they were,
    /// every moved record names its contact again, the journal is marked undone; `contact_merge_undone` on the
    /// partner's timeline.
    ///
    /// # Examples
    ///
    /// See [`CommerceService::merge_contacts`].
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the partner or the merge is not the tenant's; [`Error::Invalid`] on `merge` when it
    /// was undone already or a later merge not undone involves its survivor; [`Error::Conflict`] naming the
    /// surviving contact when it was edited since the merge (an undo would lose the edit), or the first moved record
    /// that changed since (its version then and now), or when the partner changed meanwhile;
    /// [`Error::Storage`] when the store cannot be read or written (nothing is then written).
    pub async fn undo_contact_merge(
        &self,
        ctx: &Context,
        partner: PartnerId,
        merge: MergeId,
    ) -> Result<Outcome<Partner>> {
        let p = self.crm.partner(ctx.tenant, partner).await?;
        let pos = (p.contact_merges.iter())
            .position(|m| m.id == merge)
            .ok_or_else(|| Error::not_found("merge", merge))?;
        let m = p.contact_merges[pos].clone();
        if m.undone_at.is_some() {
            return Err(Error::invalid(
                "merge",
                format!("merge {merge} was undone already"),
            ));
        }
        let later = p.contact_merges[pos + 1..]
            .iter()
            .any(|x| x.undone_at.is_none() && x.before.iter().any(|c| c.id == m.survivor));
        if later {
            return Err(Error::invalid(
                "merge",
                format!(
                    "a later merge involves contact {}: undo it first",
                    m.survivor
                ),
            ));
        }
        if p.contacts.iter().find(|c| c.id == m.survivor) != Some(&m.after) {
            return Err(Error::Conflict {
                entity: "contact",
                id: m.survivor.to_string(),
                expected: p.version,
                actual: p.version,
            });
        }
        let now = self.crm.clock().now();
        let mut cs = ChangeSet::new();
        for x in &m.moved {
            let current = self.version_of(ctx.tenant, x).await?;
            if current != x.version {
                return Err(Error::Conflict {
                    entity: match x.kind {
                        ContactLinkKind::Lead => "lead",
                        ContactLinkKind::Meeting => "meeting",
                        ContactLinkKind::Representative => "representative",
                    },
                    id: x.id.to_string(),
                    expected: x.version,
                    actual: current,
                });
            }
        }
        for group in grouped(&m.moved) {
            cs.push(
                self.move_record(ctx.tenant, &group, |x| (m.survivor, x.from), now)
                    .await?,
            );
        }
        let mut next = p.clone();
        next.contacts.retain(|c| c.id != m.survivor);
        next.contacts.extend(m.before.iter().cloned());
        next.contact_merges[pos].undone_at = Some(now);
        let event = EventKind::ContactMergeUndone {
            merge,
            survivor: m.survivor,
            merged: m.merged().collect(),
        };
        self.commit_partner(ctx, &p, next, cs, event, now).await
    }

    /// Commits `next` over `current` with the moves in `cs` and `event` on the partner's timeline.
    async fn commit_partner(
        &self,
        ctx: &Context,
        current: &Partner,
        mut next: Partner,
        mut cs: ChangeSet,
        event: EventKind,
        now: crate::time::Timestamp,
    ) -> Result<Outcome<Partner>> {
        next.version = current.version + 1;
        next.updated_at = now;
        cs.push(Write::UpdatePartner {
            keys: dedupe::keys_of(&next),
            partner: next.clone(),
            expected_version: current.version,
        });
        let subject = Subject {
            partner: Some(current.id),
            ..Default::default()
        };
        cs.push(Write::AppendEvent(DomainEvent::new(
            ctx, now, subject, event,
        )));
        let events = self.commit(ctx, cs).await?;
        Ok(Outcome {
            record: next,
            events,
        })
    }

    /// The leads, meetings and representatives of `p` that name a contact of `merged`, at their versions.
    async fn contact_links(
        &self,
        tenant: TenantId,
        p: &Partner,
        merged: &[ContactId],
    ) -> Result<Vec<ContactMove>> {
        let store: &dyn Store = self.crm.store().as_ref();
        let mut moves = Vec::new();
        for r in store.fetch(tenant, &Key::PartnerLinks(p.id)).await? {
            let Record::Link(Link { kind, id, .. }) = r else {
                continue;
            };
            let found = match kind {
                LinkKind::Lead => {
                    let l = store.lead(tenant, LeadId::from_uuid(id)).await?;
                    l.contact
                        .filter(|c| merged.contains(c))
                        .map(|c| (ContactLinkKind::Lead, c, l.version, Vec::new()))
                }
                LinkKind::Meeting => {
                    let m = self.store.meeting(tenant, MeetingId::from_uuid(id)).await?;
                    let at: Vec<(u32, ContactId)> = (m.attendees.iter().enumerate())
                        .filter_map(|(i, a)| match a.who {
                            Participant::Contact { contact, .. } if merged.contains(&contact) => {
                                Some((u32::try_from(i).unwrap_or(u32::MAX), contact))
                            }
                            _ => None,
                        })
                        .collect();
                    // One move per merged contact attending.
                    let mut by: BTreeMap<ContactId, Vec<u32>> = BTreeMap::new();
                    for (i, c) in at {
                        by.entry(c).or_default().push(i);
                    }
                    for (c, positions) in by {
                        moves.push(ContactMove {
                            kind: ContactLinkKind::Meeting,
                            id,
                            from: c,
                            version: m.version,
                            attendees: positions,
                        });
                    }
                    None
                }
                LinkKind::Representative => {
                    let r = (self.store)
                        .representative(tenant, RepresentativeId::from_uuid(id))
                        .await?;
                    merged.contains(&r.contact).then(|| {
                        (
                            ContactLinkKind::Representative,
                            r.contact,
                            r.version,
                            Vec::new(),
                        )
                    })
                }
                _ => None,
            };
            if let Some((kind, from, version, attendees)) = found {
                moves.push(ContactMove {
                    kind,
                    id,
                    from,
                    version,
                    attendees,
                });
            }
        }
        Ok(moves)
    }

    /// The stored version of a moved record.
    async fn version_of(&self, tenant: TenantId, m: &ContactMove) -> Result<u64> {
        Ok(match m.kind {
            ContactLinkKind::Lead => {
                self.crm
                    .store()
                    .lead(tenant, LeadId::from_uuid(m.id))
                    .await?
                    .version
            }
            ContactLinkKind::Meeting => {
                self.store
                    .meeting(tenant, MeetingId::from_uuid(m.id))
                    .await?
                    .version
            }
            ContactLinkKind::Representative => {
                (self.store)
                    .representative(tenant, RepresentativeId::from_uuid(m.id))
                    .await?
                    .version
            }
        })
    }

    /// The write moving one record (the `moves` of it, all of one kind and id, read once at its stored version)
    /// from each move's contact to another (`way` gives from and to), one version on.
    async fn move_record(
        &self,
        tenant: TenantId,
        moves: &[&ContactMove],
        way: impl Fn(&ContactMove) -> (ContactId, ContactId),
        now: crate::time::Timestamp,
    ) -> Result<Write> {
        let m = moves[0];
        let (from, to) = way(m);
        Ok(match m.kind {
            ContactLinkKind::Lead => {
                let mut l = self
                    .crm
                    .store()
                    .lead(tenant, LeadId::from_uuid(m.id))
                    .await?;
                let expected_version = l.version;
                if l.contact == Some(from) {
                    l.contact = Some(to);
                }
                l.version += 1;
                l.updated_at = now;
                Write::UpdateLead {
                    lead: l,
                    expected_version,
                }
            }
            ContactLinkKind::Meeting => {
                let mut meeting = self
                    .store
                    .meeting(tenant, MeetingId::from_uuid(m.id))
                    .await?;
                let expected_version = meeting.version;
                for x in moves {
                    let (from, to) = way(x);
                    for i in &x.attendees {
                        if let Some(a) = meeting.attendees.get_mut(*i as usize) {
                            if let Participant::Contact { contact, .. } = &mut a.who {
                                if *contact == from {
                                    *contact = to;
                                }
                            }
                        }
                    }
                }
                meeting.version += 1;
                meeting.updated_at = now;
                Write::Commerce(CommerceWrite::UpdateMeeting {
                    meeting,
                    expected_version,
                })
            }
            ContactLinkKind::Representative => {
                let mut r = (self.store)
                    .representative(tenant, RepresentativeId::from_uuid(m.id))
                    .await?;
                let expected_version = r.version;
                if r.contact == from {
                    r.contact = to;
                }
                r.version += 1;
                r.updated_at = now;
                Write::Commerce(CommerceWrite::UpdateRepresentative {
                    representative: r,
                    expected_version,
                })
            }
        })
    }
}

/// `moves` by record, in their order.
fn grouped(moves: &[ContactMove]) -> Vec<Vec<&ContactMove>> {
    let mut groups: Vec<Vec<&ContactMove>> = Vec::new();
    for m in moves {
        match groups
            .iter_mut()
            .find(|g| g[0].kind == m.kind && g[0].id == m.id)
        {
            Some(g) => g.push(m),
            None => groups.push(vec![m]),
        }
    }
    groups
}
