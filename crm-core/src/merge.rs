//! Merging partners, and undoing it: the pure part.
//!
//! [`MergePlan::of`] decides, field by field, what the surviving partner holds (the value the user picked, else the
//! one value the partners agree on or the only one given, else the newest partner's) and lists every record that
//! moves from a merged partner to the survivor ([`Link`]s: leads, requests, comments, documents, quotations,
//! contracts, meetings, attachments, portal representatives, payment attempts, campaign targets). The merged
//! partners become tombstones ([`Partner::merged_into`]): no contacts (theirs move to the survivor with their ids,
//! so leads naming them stay right), no duplicate keys, their host references kept so the host's old codes still
//! find them, and every read of one through the service resolves to the survivor. The applied merge is journaled as
//! a [`PartnerMerge`] (the partners as they were, and every moved record's version after the move), which undoes it
//! while nothing it touched has changed since.

use crate::error::{Error, Result};
use crate::id::{MergeId, PartnerId, TenantId, UserId};
use crate::partner::Partner;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// The most partners one merge folds into a survivor.
pub const MAX_MERGED: usize = 50;

/// A kind of record that points at a partner and moves to the survivor of a merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LinkKind {
    /// A lead of the partner.
    Lead,
    /// A request about the partner.
    Request,
    /// A comment on the partner.
    Comment,
    /// A commerce document (invoice, payment, …) of the partner, with its lines and allocations.
    Document,
    /// A quotation revision for the partner.
    Quotation,
    /// A contract with the partner.
    Contract,
    /// A meeting with the partner.
    Meeting,
    /// A file attached to the partner.
    Attachment,
    /// A portal representative of the partner.
    Representative,
    /// A portal payment attempt of the partner.
    PaymentAttempt,
    /// The partner as a target of a campaign (its id is the campaign's).
    CampaignTarget,
}

impl LinkKind {
    /// Every kind, in the order plans list them.
    pub const ALL: [LinkKind; 11] = [
        Self::Lead,
        Self::Request,
        Self::Comment,
        Self::Document,
        Self::Quotation,
        Self::Contract,
        Self::Meeting,
        Self::Attachment,
        Self::Representative,
        Self::PaymentAttempt,
        Self::CampaignTarget,
    ];

    /// The kind of record, as error messages name it.
    pub fn entity(self) -> &'static str {
        match self {
            Self::Lead => "lead",
            Self::Request => "request",
            Self::Comment => "comment",
            Self::Document => "document",
            Self::Quotation => "quotation",
            Self::Contract => "contract",
            Self::Meeting => "meeting",
            Self::Attachment => "attachment",
            Self::Representative => "representative",
            Self::PaymentAttempt => "payment attempt",
            Self::CampaignTarget => "campaign target",
        }
    }

    /// Whether its records carry a version (comments do not: they never change).
    pub fn versioned(self) -> bool {
        self != Self::Comment
    }

    /// The stored code (0 lead … 10 campaign target).
    pub fn code(self) -> i16 {
        Self::ALL.iter().position(|k| *k == self).unwrap_or(0) as i16
    }

    /// The kind of a stored code.
    pub fn from_code(code: i64) -> Option<Self> {
        usize::try_from(code)
            .ok()
            .and_then(|i| Self::ALL.get(i))
            .copied()
    }
}

/// One record pointing at a partner: its kind, id (a campaign target's is its campaign's) and version (0 for a
/// comment).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Link {
    /// What it is.
    pub kind: LinkKind,
    /// Its id.
    pub id: Uuid,
    /// Its version.
    pub version: u64,
}

impl Link {
    /// The version it has once moved (one more, but for a comment).
    pub fn moved(self) -> Link {
        Link {
            version: if self.kind.versioned() {
                self.version + 1
            } else {
                0
            },
            ..self
        }
    }
}

/// A record moving from one partner to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Move {
    /// The partner it points at before.
    pub from: PartnerId,
    /// The partner it points at after.
    pub to: PartnerId,
    /// The record, at the version the move expects.
    pub link: Link,
}

/// Why a field of the survivor holds its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Every partner that gives a value gives this one (or none gives any).
    Same,
    /// Only this partner gives a value.
    OnlyValue,
    /// The partners differ; this one changed last.
    Newest,
    /// The user picked this partner's value.
    Picked,
    /// The contacts differ; the survivor's value is kept (contacts carry no time of change).
    Kept,
}

/// What one field of the survivor holds after the merge, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChoice {
    /// The field (`name`, `kind`, `industry`, `turnover`, `tax_id`, `website`, `group`, `owner`).
    pub field: String,
    /// The partner whose value it is.
    pub from: PartnerId,
    /// The value, as JSON (`null` when empty).
    pub value: serde_json::Value,
    /// Why.
    pub reason: Reason,
}

/// The fields a merge chooses one value of, in plan order. Roles, tags, contacts and locations are the union of
/// all partners'; the host reference stays each partner's own (a tombstone keeps its code, which resolves to the
/// survivor).
pub const FIELDS: [&str; 8] = [
    "name", "kind", "industry", "turnover", "tax_id", "website", "group", "owner",
];

fn field_value(p: &Partner, field: &str) -> serde_json::Value {
    let v = match field {
        "name" => serde_json::to_value(&p.name),
        "kind" => serde_json::to_value(p.kind),
        "industry" => serde_json::to_value(&p.industry),
        "turnover" => serde_json::to_value(p.turnover),
        "tax_id" => serde_json::to_value(&p.tax_id),
        "website" => serde_json::to_value(&p.website),
        "group" => serde_json::to_value(&p.group),
        _ => serde_json::to_value(p.owner),
    };
    v.unwrap_or(serde_json::Value::Null)
}

fn set_field(to: &mut Partner, from: &Partner, field: &str) {
    match field {
        "name" => to.name = from.name.clone(),
        "kind" => to.kind = from.kind,
        "industry" => to.industry = from.industry.clone(),
        "turnover" => to.turnover = from.turnover,
        "tax_id" => to.tax_id = from.tax_id.clone(),
        "website" => to.website = from.website.clone(),
        "group" => to.group = from.group.clone(),
        _ => to.owner = from.owner,
    }
}

record! {
    /// A merge decided and not yet applied: the survivor as it will be, the tombstones, every field's choice and
    /// every record that moves. Made by [`MergePlan::of`] (through
    /// [`CrmService::plan_partner_merge`](crate::service::CrmService::plan_partner_merge)); applied by
    /// [`CrmService::merge_partners`](crate::service::CrmService::merge_partners) in one transaction, every
    /// record's version checked (a record changed since the plan was made fails the merge with
    /// [`Error::Conflict`]).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct MergePlan {
        /// The surviving partner, as read.
        survivor: Partner => &Partner = borrow,
        /// The partners merged into it, as read.
        merged: Vec<Partner> => &[Partner] = borrow,
        /// The survivor after the merge.
        result: Partner => &Partner = borrow,
        /// The merged partners after the merge: tombstones pointing at the survivor.
        tombstones: Vec<Partner> => &[Partner] = borrow,
        /// Each chosen field, with its value and why.
        fields: Vec<FieldChoice> => &[FieldChoice] = borrow,
        /// Every record that moves to the survivor.
        moves: Vec<Move> => &[Move] = borrow,
        /// The records that stay with their tombstone, and why (a campaign already targeting the survivor keeps
        /// one target per partner).
        kept: Vec<(Move, String)> => &[(Move, String)] = borrow,
    }
}

impl MergePlan {
    /// Plans merging `merged` into `survivor` (all read from the same tenant), with the records that point at each
    /// merged partner (`links`, by partner), the user's `picks` (field → the partner whose value wins) and the time
    /// `now`.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `merged` (empty, more than [`MAX_MERGED`], naming the survivor or a partner twice),
    /// `survivor` or `merged[i]` (a tombstone: merged already), `picks` (an unknown field) or `picks.<field>` (a
    /// partner that is not in the merge).
    pub fn of(
        survivor: &Partner,
        merged: &[Partner],
        links: &BTreeMap<PartnerId, Vec<Link>>,
        picks: &BTreeMap<String, PartnerId>,
        now: Timestamp,
    ) -> Result<MergePlan> {
        check_parties(
            survivor.id,
            &merged.iter().map(|p| p.id).collect::<Vec<_>>(),
        )?;
        if let Some(to) = survivor.merged_into {
            return Err(Error::invalid(
                "survivor",
                format!("partner {} was merged into {to} already", survivor.id),
            ));
        }
        for (i, p) in merged.iter().enumerate() {
            if let Some(to) = p.merged_into {
                return Err(Error::invalid(
                    format!("merged[{i}]"),
                    format!("partner {} was merged into {to} already", p.id),
                ));
            }
        }
        let all: Vec<&Partner> = std::iter::once(survivor).chain(merged).collect();
        for (field, who) in picks {
            if !FIELDS.contains(&field.as_str()) {
                return Err(Error::invalid(
                    "picks",
                    format!("unknown field {field:?}; one of {}", FIELDS.join(", ")),
                ));
            }
            if !all.iter().any(|p| p.id == *who) {
                return Err(Error::invalid(
                    format!("picks.{field}"),
                    format!("partner {who} is not in this merge"),
                ));
            }
        }
        let mut result = survivor.clone();
        let mut fields = Vec::with_capacity(FIELDS.len());
        for field in FIELDS {
            let (from, reason) = choose(&all, field, picks.get(field).copied());
            set_field(&mut result, from, field);
            fields.push(FieldChoice {
                field: field.to_string(),
                from: from.id,
                value: field_value(from, field),
                reason,
            });
        }
        for p in merged {
            result.roles.extend(p.roles.iter().copied());
            result.tags.extend(p.tags.iter().cloned());
            result.contacts.extend(p.contacts.iter().cloned());
            for l in &p.locations {
                let place = |x: &crate::partner::Location| {
                    (
                        x.kind,
                        x.street.clone(),
                        x.city.clone(),
                        x.region.clone(),
                        x.postal_code.clone(),
                        x.country.clone(),
                    )
                };
                if !result.locations.iter().any(|x| place(x) == place(l)) {
                    result.locations.push(l.clone());
                }
            }
        }
        result.version += 1;
        result.updated_at = now;
        let tombstones = merged
            .iter()
            .map(|p| {
                let mut t = p.clone();
                t.contacts.clear();
                t.merged_into = Some(survivor.id);
                t.version += 1;
                t.updated_at = now;
                t
            })
            .collect();
        let mut targeted: BTreeSet<Uuid> = links
            .get(&survivor.id)
            .into_iter()
            .flatten()
            .filter(|l| l.kind == LinkKind::CampaignTarget)
            .map(|l| l.id)
            .collect();
        let (mut moves, mut kept) = (Vec::new(), Vec::new());
        for p in merged {
            let mut of: Vec<Link> = links.get(&p.id).cloned().unwrap_or_default();
            of.sort();
            for link in of {
                let m = Move {
                    from: p.id,
                    to: survivor.id,
                    link,
                };
                if link.kind == LinkKind::CampaignTarget && !targeted.insert(link.id) {
                    kept.push((
                        m,
                        "the campaign targets the survivor already; this target stays with its tombstone"
                            .to_string(),
                    ));
                } else {
                    moves.push(m);
                }
            }
        }
        Ok(MergePlan {
            survivor: survivor.clone(),
            merged: merged.to_vec(),
            result,
            tombstones,
            fields,
            moves,
            kept,
        })
    }
}

/// Refuses an empty merge, too many partners, the survivor among the merged, or a partner named twice.
///
/// # Errors
///
/// [`Error::Invalid`] on `merged`.
pub fn check_parties(survivor: PartnerId, merged: &[PartnerId]) -> Result<()> {
    check_ids("partner", survivor, merged)
}

/// [`check_parties`] for records called `noun` (partner, lead).
pub(crate) fn check_ids<T: Copy + Ord + std::fmt::Display>(
    noun: &str,
    survivor: T,
    merged: &[T],
) -> Result<()> {
    if merged.is_empty() {
        return Err(Error::invalid(
            "merged",
            format!("names no {noun} to merge"),
        ));
    }
    if merged.len() > MAX_MERGED {
        return Err(Error::invalid(
            "merged",
            format!("names {} {noun}s; at most {MAX_MERGED}", merged.len()),
        ));
    }
    if merged.contains(&survivor) {
        return Err(Error::invalid(
            "merged",
            format!("names the survivor {survivor} itself: a {noun} is not merged with itself"),
        ));
    }
    let mut seen = BTreeSet::new();
    if let Some(twice) = merged.iter().find(|p| !seen.insert(**p)) {
        return Err(Error::invalid(
            "merged",
            format!("names {noun} {twice} twice"),
        ));
    }
    Ok(())
}

/// The partner whose `field` the survivor takes, and why.
fn choose<'a>(all: &[&'a Partner], field: &str, pick: Option<PartnerId>) -> (&'a Partner, Reason) {
    let picked = pick.and_then(|id| all.iter().copied().find(|p| p.id == id));
    choose_among(all, picked, |p| field_value(p, field), |p| p.updated_at)
}

/// Which of `all` (the survivor first) gives a field its value, and why: the one `picked`, else the one value all
/// give ([`Reason::Same`]) or the only one given ([`Reason::OnlyValue`]), else the newest by `updated` that gives a
/// value (the earliest in the list on a tie). `value` is the field's value as JSON (`null` when empty).
pub(crate) fn choose_among<'a, T>(
    all: &[&'a T],
    picked: Option<&'a T>,
    value: impl Fn(&T) -> serde_json::Value,
    updated: impl Fn(&T) -> Timestamp,
) -> (&'a T, Reason) {
    if let Some(p) = picked {
        return (p, Reason::Picked);
    }
    let given: Vec<&'a T> = all
        .iter()
        .copied()
        .filter(|p| !value(p).is_null())
        .collect();
    let distinct: BTreeSet<String> = given.iter().map(|p| value(p).to_string()).collect();
    match (given.first(), distinct.len()) {
        (None, _) => (all[0], Reason::Same),
        (Some(first), 1) if given.len() == all.len() => (first, Reason::Same),
        (Some(first), 1) => (first, Reason::OnlyValue),
        _ => {
            let mut best = given[0];
            for p in &given[1..] {
                if updated(p) > updated(best) {
                    best = p;
                }
            }
            (best, Reason::Newest)
        }
    }
}

record! {
    /// The journal of an applied merge: what it changed, so that it can be undone.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct PartnerMerge {
        /// Its id.
        id: MergeId,
        /// The tenant.
        tenant: TenantId,
        /// The surviving partner.
        survivor: PartnerId,
        /// The partners merged into it.
        merged: Vec<PartnerId> => &[PartnerId] = borrow,
        /// The survivor and then each merged partner, as they were before the merge.
        before: Vec<Partner> => &[Partner] = borrow,
        /// Their versions right after the merge, in the same order.
        after_versions: Vec<u64> => &[u64] = borrow,
        /// Each field's choice.
        fields: Vec<FieldChoice> => &[FieldChoice] = borrow,
        /// Every record moved, at the version the move gave it.
        moved: Vec<Move> => &[Move] = borrow,
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

impl PartnerMerge {
    /// The journal of `plan` applied at `at` by `by`.
    pub fn of(tenant: TenantId, plan: &MergePlan, at: Timestamp, by: Option<UserId>) -> Self {
        let before: Vec<Partner> = std::iter::once(plan.survivor.clone())
            .chain(plan.merged.iter().cloned())
            .collect();
        let after_versions = std::iter::once(plan.result.version)
            .chain(plan.tombstones.iter().map(|t| t.version))
            .collect();
        PartnerMerge {
            id: MergeId::new(),
            tenant,
            survivor: plan.survivor.id,
            merged: plan.merged.iter().map(|p| p.id).collect(),
            before,
            after_versions,
            fields: plan.fields.clone(),
            moved: plan
                .moves
                .iter()
                .map(|m| Move {
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
        PartnerMerge {
            undone_at: Some(at),
            version: self.version + 1,
            ..self.clone()
        }
    }

    /// The partners as the undo writes them: each as it was before the merge, at the next version after
    /// `current` (the versions read now, in [`PartnerMerge::before`]'s order), changed at `now`.
    pub fn restored(&self, current: &[u64], now: Timestamp) -> Vec<Partner> {
        self.before
            .iter()
            .zip(current)
            .map(|(p, v)| {
                let mut p = p.clone();
                p.version = v + 1;
                p.updated_at = now;
                p
            })
            .collect()
    }
}

/// The fields a contact merge chooses, in order.
pub const CONTACT_FIELDS: [&str; 5] = ["name", "role", "email", "phone", "host_ref"];

/// What one field of the surviving contact holds after a contact merge, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactChoice {
    /// The field (one of [`CONTACT_FIELDS`]).
    pub field: String,
    /// The contact whose value it is.
    pub from: crate::id::ContactId,
    /// The value (`null` when empty).
    pub value: serde_json::Value,
    /// Why.
    pub reason: Reason,
}

/// A planned merge of contacts of one partner: each field of the surviving contact with its source and reason, its
/// consents (the latest answer per channel and purpose of all of them), and every lead, meeting and representative
/// that names a merged contact. Made by [`ContactMergePlan::of`] (through
/// [`CommerceService::plan_contact_merge`](crate::service::CommerceService::plan_contact_merge)); applied by
/// [`CommerceService::merge_contacts`](crate::service::CommerceService::merge_contacts) in one transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactMergePlan {
    /// The partner, as read.
    pub partner: Partner,
    /// The contact that stays.
    pub survivor: crate::id::ContactId,
    /// The contacts merged into it.
    pub merged: Vec<crate::id::ContactId>,
    /// Each chosen field.
    pub fields: Vec<ContactChoice>,
    /// The surviving contact after the merge.
    pub contact: crate::partner::Contact,
    /// Every record that moves to the survivor, at its version as read.
    pub moves: Vec<crate::partner::ContactMove>,
}

impl ContactMergePlan {
    /// Plans merging the contacts `merged` of `partner` into its contact `survivor`, with the records that name
    /// them (`moves`) and the user's `picks` (field → the contact whose value wins).
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `merged` (empty, more than [`MAX_MERGED`], naming the survivor or a contact twice),
    /// `survivor` or `merged[i]` (not a contact of the partner), `picks` (an unknown field) or `picks.<field>` (a
    /// contact not in the merge); on `partner` for a tombstone.
    pub fn of(
        partner: &Partner,
        survivor: crate::id::ContactId,
        merged: &[crate::id::ContactId],
        picks: &BTreeMap<String, crate::id::ContactId>,
        moves: Vec<crate::partner::ContactMove>,
    ) -> Result<ContactMergePlan> {
        if let Some(to) = partner.merged_into {
            return Err(Error::invalid(
                "partner",
                format!("partner {} was merged into {to}", partner.id),
            ));
        }
        if merged.is_empty() || merged.len() > MAX_MERGED {
            return Err(Error::invalid(
                "merged",
                format!("1 to {MAX_MERGED} contacts to merge"),
            ));
        }
        let find = |id: crate::id::ContactId, field: String| {
            partner.contacts.iter().find(|c| c.id == id).ok_or_else(|| {
                Error::invalid(field, format!("contact {id} is not one of the partner's"))
            })
        };
        let keep = find(survivor, "survivor".into())?;
        let mut all = vec![keep];
        for (i, id) in merged.iter().enumerate() {
            if *id == survivor || merged[..i].contains(id) {
                return Err(Error::invalid(
                    format!("merged[{i}]"),
                    format!("contact {id} is the survivor or named twice"),
                ));
            }
            all.push(find(*id, format!("merged[{i}]"))?);
        }
        for (field, who) in picks {
            if !CONTACT_FIELDS.contains(&field.as_str()) {
                return Err(Error::invalid(
                    "picks",
                    format!(
                        "unknown field {field:?}; one of {}",
                        CONTACT_FIELDS.join(", ")
                    ),
                ));
            }
            if !all.iter().any(|c| c.id == *who) {
                return Err(Error::invalid(
                    format!("picks.{field}"),
                    format!("contact {who} is not in this merge"),
                ));
            }
        }
        let value = |c: &crate::partner::Contact, field: &str| -> Option<String> {
            match field {
                "name" => Some(c.name.clone()),
                "role" => c.role.clone(),
                "email" => c.email.clone(),
                "phone" => c.phone.clone(),
                _ => c.host_ref.clone(),
            }
        };
        let mut contact = keep.clone();
        let mut fields = Vec::with_capacity(CONTACT_FIELDS.len());
        for field in CONTACT_FIELDS {
            let given: Vec<&crate::partner::Contact> = all
                .iter()
                .copied()
                .filter(|c| value(c, field).is_some())
                .collect();
            let (from, reason) = match picks.get(field) {
                Some(who) => (
                    all.iter().copied().find(|c| c.id == *who).unwrap_or(keep),
                    Reason::Picked,
                ),
                None => match given.as_slice() {
                    [] => (keep, Reason::Same),
                    [only] => (*only, Reason::OnlyValue),
                    [first, rest @ ..]
                        if rest.iter().all(|c| value(c, field) == value(first, field)) =>
                    {
                        (
                            given
                                .iter()
                                .copied()
                                .find(|c| c.id == survivor)
                                .unwrap_or(*first),
                            Reason::Same,
                        )
                    }
                    _ => (
                        given
                            .iter()
                            .copied()
                            .find(|c| c.id == survivor)
                            .unwrap_or(given[0]),
                        Reason::Kept,
                    ),
                },
            };
            let v = value(from, field);
            match field {
                "name" => contact.name = v.clone().unwrap_or_else(|| keep.name.clone()),
                "role" => contact.role = v.clone(),
                "email" => contact.email = v.clone(),
                "phone" => contact.phone = v.clone(),
                _ => contact.host_ref = v.clone(),
            }
            fields.push(ContactChoice {
                field: field.to_string(),
                from: from.id,
                value: v
                    .map(serde_json::Value::String)
                    .unwrap_or(serde_json::Value::Null),
                reason,
            });
        }
        // The latest answer per channel and purpose, of all of them.
        let mut consents: Vec<crate::consent::Consent> = Vec::new();
        for c in all.iter().flat_map(|c| c.consents.iter()) {
            match consents
                .iter_mut()
                .find(|x| x.channel == c.channel && x.purpose == c.purpose)
            {
                Some(x) if x.at < c.at => *x = c.clone(),
                Some(_) => {}
                None => consents.push(c.clone()),
            }
        }
        contact.consents = consents;
        Ok(ContactMergePlan {
            partner: partner.clone(),
            survivor,
            merged: merged.to_vec(),
            fields,
            contact,
            moves,
        })
    }
}
