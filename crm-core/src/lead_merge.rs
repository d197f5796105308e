//! Merging leads, and undoing it: the pure part.
//!
//! Two leads of one partner are often the same opportunity entered twice (by two agents, by an import and a web
//! form). [`LeadMergePlan::of`] decides, field by field, what the surviving lead holds (the value the user picked,
//! else the one value the leads agree on or the only one given, else the newest lead's; tags are the union) and
//! lists every record that moves from a merged lead to the survivor ([`Link`]s: requests, comments, quotations,
//! contracts, meetings, attachments, campaign targets). The survivor keeps its own pipeline, stage and status.
//! The merged leads become tombstones ([`LeadStatus::Merged`]): out of every board, list, funnel and report, their
//! own stage history and host reference kept (the host's old code still finds the survivor), and every read of one
//! through the service resolves to the survivor. The applied merge is journaled as a [`LeadMerge`] (the leads as
//! they were and every moved record's version after the move), which undoes it while nothing it touched has
//! changed since.
//!
//! Leads of different partners are not merged (merge the partners first: their leads then share one), and a won
//! lead is merged only into a won survivor (its revenue stays counted once, on the survivor).

use crate::error::{Error, Result};
use crate::id::{LeadId, MergeId, TenantId, UserId};
use crate::lead::{effective_probability, Lead, LeadStatus, StatusKind};
use crate::merge::{check_ids, choose_among, Link, LinkKind, Reason};
use crate::pipeline::Pipeline;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The kinds of record that point at a lead and move to the survivor of a lead merge.
pub const LEAD_LINKS: [LinkKind; 7] = [
    LinkKind::Request,
    LinkKind::Comment,
    LinkKind::Quotation,
    LinkKind::Contract,
    LinkKind::Meeting,
    LinkKind::Attachment,
    LinkKind::CampaignTarget,
];

/// The fields a lead merge chooses one value of, in plan order (`probability` is the probability set by hand).
/// Tags are the union of all leads'; pipeline, stage and status stay the survivor's; the host reference stays each
/// lead's own.
pub const LEAD_FIELDS: [&str; 9] = [
    "title",
    "description",
    "contact",
    "expected_revenue",
    "probability",
    "owner",
    "expected_close",
    "priority",
    "source",
];

fn field_value(l: &Lead, field: &str) -> serde_json::Value {
    let v = match field {
        "title" => serde_json::to_value(&l.title),
        "description" => serde_json::to_value(&l.description),
        "contact" => serde_json::to_value(l.contact),
        "expected_revenue" => serde_json::to_value(l.expected_revenue),
        "probability" => serde_json::to_value(l.probability_override),
        "owner" => serde_json::to_value(l.owner),
        "expected_close" => serde_json::to_value(l.expected_close),
        // Every lead has a priority: `normal` is "not given".
        "priority" if l.priority == crate::lead::Priority::Normal => Ok(serde_json::Value::Null),
        "priority" => serde_json::to_value(l.priority),
        // An empty source is "not given".
        _ if l.source == crate::lead::LeadSource::default() => Ok(serde_json::Value::Null),
        _ => serde_json::to_value(&l.source),
    };
    v.unwrap_or(serde_json::Value::Null)
}

fn set_field(to: &mut Lead, from: &Lead, field: &str) {
    match field {
        "title" => to.title = from.title.clone(),
        "description" => to.description = from.description.clone(),
        "contact" => to.contact = from.contact,
        "expected_revenue" => to.expected_revenue = from.expected_revenue,
        "probability" => to.probability_override = from.probability_override,
        "owner" => to.owner = from.owner,
        "expected_close" => to.expected_close = from.expected_close,
        "priority" => to.priority = from.priority,
        _ => to.source = from.source.clone(),
    }
}

/// What one field of the surviving lead holds after the merge, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadChoice {
    /// The field (one of [`LEAD_FIELDS`]).
    pub field: String,
    /// The lead whose value it is.
    pub from: LeadId,
    /// The value, as JSON (`null` when empty).
    pub value: serde_json::Value,
    /// Why.
    pub reason: Reason,
}

/// A record moving from one lead to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadMove {
    /// The lead it points at before.
    pub from: LeadId,
    /// The lead it points at after.
    pub to: LeadId,
    /// The record, at the version the move expects.
    pub link: Link,
}

record! {
    /// A lead merge decided and not yet applied: the survivor as it will be, the tombstones, every field's choice
    /// and every record that moves. Made by [`LeadMergePlan::of`] (through
    /// [`CrmService::plan_lead_merge`](crate::service::CrmService::plan_lead_merge)); applied by
    /// [`CrmService::merge_leads`](crate::service::CrmService::merge_leads) in one transaction, every record's
    /// version checked.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct LeadMergePlan {
        /// The id the merge's journal will have (the tombstones name it).
        merge: MergeId,
        /// The surviving lead, as read.
        survivor: Lead => &Lead = borrow,
        /// The leads merged into it, as read.
        merged: Vec<Lead> => &[Lead] = borrow,
        /// The survivor after the merge.
        result: Lead => &Lead = borrow,
        /// The merged leads after the merge: tombstones pointing at the survivor.
        tombstones: Vec<Lead> => &[Lead] = borrow,
        /// Each chosen field, with its value and why.
        fields: Vec<LeadChoice> => &[LeadChoice] = borrow,
        /// Every record that moves to the survivor.
        moves: Vec<LeadMove> => &[LeadMove] = borrow,
    }
}

impl LeadMergePlan {
    /// Plans merging `merged` into `survivor` (all read from one tenant), with the survivor's `pipeline`, the
    /// records that point at each merged lead (`links`, by lead), the user's `picks` (field → the lead whose value
    /// wins) and the time `now`.
    ///
    /// # Examples
    ///
    /// ```
    /// use crm_core::{id::{PartnerId, TenantId}, lead::NewLead, lead_merge::LeadMergePlan};
    /// use crm_core::{merge::Reason, pipeline::NewPipeline};
    /// let (tenant, acme, now) = (TenantId::new(), PartnerId::new(), chrono::Utc::now());
    /// let pipeline = NewPipeline::seed_default().build(tenant, now)?;
    /// let (a, _) = NewLead::for_partner(acme, "Forklifts").build(tenant, acme, &pipeline, now)?;
    /// let mut twin = NewLead::for_partner(acme, "Forklifts x3");
    /// twin.description = Some("Three, electric".into());
    /// let (b, _) = twin.build(tenant, acme, &pipeline, now)?;
    /// let plan = LeadMergePlan::of(&a, &[b.clone()], &pipeline, &Default::default(), &Default::default(), now)?;
    /// let d = plan.fields().iter().find(|f| f.field == "description").unwrap();
    /// assert_eq!((d.from, d.reason), (b.id(), Reason::OnlyValue));
    /// assert_eq!(plan.result().description(), Some("Three, electric"));
    /// assert_eq!(plan.tombstones()[0].status().kind(), crm_core::lead::StatusKind::Merged);
    /// # Ok::<(), crm_core::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `merged` (empty, more than [`MAX_MERGED`](crate::merge::MAX_MERGED), naming the
    /// survivor or a lead twice), `survivor` (a tombstone), `merged[i]` (a tombstone, another partner's lead, a
    /// won lead while the survivor is not won), `pipeline` (not the survivor's), `picks` (an unknown field) or
    /// `picks.<field>` (a lead that is not in the merge).
    pub fn of(
        survivor: &Lead,
        merged: &[Lead],
        pipeline: &Pipeline,
        links: &BTreeMap<LeadId, Vec<Link>>,
        picks: &BTreeMap<String, LeadId>,
        now: Timestamp,
    ) -> Result<LeadMergePlan> {
        check_ids(
            "lead",
            survivor.id,
            &merged.iter().map(|l| l.id).collect::<Vec<_>>(),
        )?;
        if let LeadStatus::Merged { into, .. } = survivor.status {
            return Err(Error::invalid(
                "survivor",
                format!("lead {} was merged into {into} already", survivor.id),
            ));
        }
        if pipeline.id != survivor.pipeline {
            return Err(Error::invalid("pipeline", "not the survivor's pipeline"));
        }
        for (i, l) in merged.iter().enumerate() {
            let field = || format!("merged[{i}]");
            if let LeadStatus::Merged { into, .. } = l.status {
                return Err(Error::invalid(
                    field(),
                    format!("lead {} was merged into {into} already", l.id),
                ));
            }
            if l.partner != survivor.partner {
                return Err(Error::invalid(
                    field(),
                    format!(
                        "lead {} is partner {}'s and the survivor partner {}'s: merge the partners first",
                        l.id, l.partner, survivor.partner
                    ),
                ));
            }
            if l.status.kind() == StatusKind::Won && survivor.status.kind() != StatusKind::Won {
                return Err(Error::invalid(
                    field(),
                    format!(
                        "lead {} is won and the survivor is not: make the won lead the survivor",
                        l.id
                    ),
                ));
            }
        }
        let all: Vec<&Lead> = std::iter::once(survivor).chain(merged).collect();
        for (field, who) in picks {
            if !LEAD_FIELDS.contains(&field.as_str()) {
                return Err(Error::invalid(
                    "picks",
                    format!("unknown field {field:?}; one of {}", LEAD_FIELDS.join(", ")),
                ));
            }
            if !all.iter().any(|l| l.id == *who) {
                return Err(Error::invalid(
                    format!("picks.{field}"),
                    format!("lead {who} is not in this merge"),
                ));
            }
        }
        let mut result = survivor.clone();
        let mut fields = Vec::with_capacity(LEAD_FIELDS.len());
        for field in LEAD_FIELDS {
            let picked = picks
                .get(field)
                .and_then(|id| all.iter().copied().find(|l| l.id == *id));
            let (from, reason) =
                choose_among(&all, picked, |l| field_value(l, field), |l| l.updated_at);
            set_field(&mut result, from, field);
            fields.push(LeadChoice {
                field: field.to_string(),
                from: from.id,
                value: field_value(from, field),
                reason,
            });
        }
        for l in merged {
            result.tags.extend(l.tags.iter().cloned());
        }
        result.probability = effective_probability(&result, pipeline)?;
        result.version += 1;
        result.updated_at = now;
        let merge = MergeId::new();
        let tombstones = merged
            .iter()
            .map(|l| {
                let mut t = l.clone();
                t.status = LeadStatus::Merged {
                    into: survivor.id,
                    merge,
                    at: now,
                };
                t.probability = 0;
                t.version += 1;
                t.updated_at = now;
                t
            })
            .collect();
        let mut moves = Vec::new();
        for l in merged {
            let mut of: Vec<Link> = links.get(&l.id).cloned().unwrap_or_default();
            of.sort();
            moves.extend(of.into_iter().map(|link| LeadMove {
                from: l.id,
                to: survivor.id,
                link,
            }));
        }
        Ok(LeadMergePlan {
            merge,
            survivor: survivor.clone(),
            merged: merged.to_vec(),
            result,
            tombstones,
            fields,
            moves,
        })
    }
}

record! {
    /// The journal of an applied lead merge: what it changed, so that it can be undone.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct LeadMerge {
        /// Its id.
        id: MergeId,
        /// The tenant.
        tenant: TenantId,
        /// The surviving lead.
        survivor: LeadId,
        /// The leads merged into it.
        merged: Vec<LeadId> => &[LeadId] = borrow,
        /// The survivor and then each merged lead, as they were before the merge.
        before: Vec<Lead> => &[Lead] = borrow,
        /// Their versions right after the merge, in the same order.
        after_versions: Vec<u64> => &[u64] = borrow,
        /// Each field's choice.
        fields: Vec<LeadChoice> => &[LeadChoice] = borrow,
        /// Every record moved, at the version the move gave it.
        moved: Vec<LeadMove> => &[LeadMove] = borrow,
        /// When it was applied.
        at: Timestamp,
        /// Who applied it (`None` for the system).
        by: Option<UserId>,
        /// When it was undone, if it was.
        undone_at: Option<Timestamp>,
        /// Optimistic-concurrency version, 1 on creation.
        version: u64,
    }
}

impl LeadMerge {
    /// The journal of `plan` applied at `at` by `by`.
    pub fn of(tenant: TenantId, plan: &LeadMergePlan, at: Timestamp, by: Option<UserId>) -> Self {
        LeadMerge {
            id: plan.merge,
            tenant,
            survivor: plan.survivor.id,
            merged: plan.merged.iter().map(|l| l.id).collect(),
            before: std::iter::once(plan.survivor.clone())
                .chain(plan.merged.iter().cloned())
                .collect(),
            after_versions: std::iter::once(plan.result.version)
                .chain(plan.tombstones.iter().map(|t| t.version))
                .collect(),
            fields: plan.fields.clone(),
            moved: plan
                .moves
                .iter()
                .map(|m| LeadMove {
                    link: m.link.moved(),
                    ..*m
                })
                .collect(),
            at,
            by,
            undone_at: None,
            version: 1,
        }
    }

    /// The journal once undone at `at` (version bumped).
    pub fn undone(&self, at: Timestamp) -> Self {
        LeadMerge {
            undone_at: Some(at),
            version: self.version + 1,
            ..self.clone()
        }
    }

    /// The leads as the undo writes them: each as it was before the merge, at the next version after `current`
    /// (the versions read now, in [`LeadMerge::before`]'s order), changed at `now`.
    pub fn restored(&self, current: &[u64], now: Timestamp) -> Vec<Lead> {
        self.before
            .iter()
            .zip(current)
            .map(|(l, v)| {
                let mut l = l.clone();
                l.version = v + 1;
                l.updated_at = now;
                l
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::PartnerId;
    use crate::lead::NewLead;
    use crate::pipeline::NewPipeline;

    fn setup() -> (Pipeline, Lead, Lead, Timestamp) {
        let (tenant, p, now) = (TenantId::new(), PartnerId::new(), chrono::Utc::now());
        let pipeline = NewPipeline::seed_default().build(tenant, now).unwrap();
        let (a, _) = NewLead::for_partner(p, "A")
            .build(tenant, p, &pipeline, now)
            .unwrap();
        let (b, _) = NewLead::for_partner(p, "B")
            .build(tenant, p, &pipeline, now + chrono::Duration::seconds(1))
            .unwrap();
        (pipeline, a, b, now)
    }

    #[test]
    fn the_newest_title_wins_unless_one_is_picked_and_tags_are_the_union() {
        let (pipeline, mut a, mut b, now) = setup();
        a.tags.insert("x".into());
        b.tags.insert("y".into());
        b.updated_at = now + chrono::Duration::hours(1);
        let (none, no) = (BTreeMap::new(), BTreeMap::new());
        let plan = LeadMergePlan::of(&a, &[b.clone()], &pipeline, &none, &no, now).unwrap();
        assert_eq!(plan.result().title(), "B");
        assert_eq!(plan.fields()[0].reason, Reason::Newest);
        assert_eq!(plan.result().tags().len(), 2);
        let picks = BTreeMap::from([("title".to_string(), a.id)]);
        let plan = LeadMergePlan::of(&a, &[b], &pipeline, &none, &picks, now).unwrap();
        assert_eq!(
            (plan.result().title(), plan.fields()[0].reason),
            ("A", Reason::Picked)
        );
    }

    #[test]
    fn another_partners_lead_a_tombstone_and_a_won_lead_are_refused() {
        let (pipeline, a, mut b, now) = setup();
        let (none, no) = (BTreeMap::new(), BTreeMap::new());
        let mut other = b.clone();
        other.partner = PartnerId::new();
        let err = LeadMergePlan::of(&a, &[other], &pipeline, &none, &no, now).unwrap_err();
        assert_eq!(err.field(), Some("merged[0]"));
        let err = LeadMergePlan::of(&a, std::slice::from_ref(&a), &pipeline, &none, &no, now)
            .unwrap_err();
        assert_eq!(err.field(), Some("merged"));
        b.status = LeadStatus::Won { at: now };
        let err = LeadMergePlan::of(&a, &[b.clone()], &pipeline, &none, &no, now).unwrap_err();
        assert!(err.to_string().contains("won"), "{err}");
        // A won lead merges into a won survivor.
        let mut won = a.clone();
        won.status = LeadStatus::Won { at: now };
        assert!(LeadMergePlan::of(&won, &[b.clone()], &pipeline, &none, &no, now).is_ok());
        let plan =
            LeadMergePlan::of(&b, std::slice::from_ref(&a), &pipeline, &none, &no, now).unwrap();
        let tomb = plan.tombstones()[0].clone();
        let err = LeadMergePlan::of(&tomb, &[b.clone()], &pipeline, &none, &no, now);
        assert_eq!(err.unwrap_err().field(), Some("survivor"));
        let err = LeadMergePlan::of(&b, &[tomb], &pipeline, &none, &no, now);
        assert_eq!(err.unwrap_err().field(), Some("merged[0]"));
    }
}
