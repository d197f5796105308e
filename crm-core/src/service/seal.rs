//! The commit path's sealing of the activity log ([`crate::erasure`]): every event about a partner leaves the service
//! sealed under the keys of the partner and of the contacts it names, and every read opens it again.

use super::Loaded;
use crate::erasure::{self, Keyring, SubjectKey};
use crate::error::{Error, Result};
use crate::event::{DomainEvent, EventKind};
use crate::id::{PartnerId, TenantId};
use crate::partner::Partner;
use crate::store::{ChangeSet, Key, Record, Store, StoreExt, Write};
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// Seals `changes`' events about partners in place, adding the keys the subjects do not have yet
/// ([`Write::InsertSubjectKey`]); returns the keys used, which [`unseal`] takes to undo it.
///
/// # Errors
///
/// [`Error::Storage`] when the store cannot be read or no random bytes are to be had.
pub(crate) async fn seal(
    store: &dyn Store,
    tenant: TenantId,
    changes: &mut ChangeSet,
    loaded: &Loaded,
) -> Result<Keyring> {
    let mut ring = Keyring::of(loaded.keys.iter().cloned());
    let pending = |e: &DomainEvent| {
        e.subject.partner.is_some()
            && !matches!(e.kind, EventKind::Sealed { .. } | EventKind::Erased { .. })
    };
    if !changes.events().any(pending) {
        return Ok(ring);
    }
    // The partners as this change leaves them (what it writes, else what the caller loaded, else the store's).
    let mut partners: BTreeMap<PartnerId, Option<Partner>> = BTreeMap::new();
    let mut fresh: BTreeSet<Uuid> = BTreeSet::new();
    for w in changes.writes() {
        match w {
            Write::InsertPartner { partner, .. } => {
                fresh.insert(*partner.id.as_uuid());
                fresh.extend(partner.contacts.iter().map(|c| *c.id.as_uuid()));
                partners.insert(partner.id, Some(partner.clone()));
            }
            Write::UpdatePartner { partner, .. } => {
                partners.insert(partner.id, Some(partner.clone()));
            }
            _ => {}
        }
    }
    // The keys this change erases seal nothing (its own `person_erased` names the erased person by id only).
    let erased: BTreeSet<Uuid> = changes
        .writes()
        .iter()
        .filter_map(|w| match w {
            Write::Erase(e) => Some(e.keys.iter().copied()),
            _ => None,
        })
        .flatten()
        .collect();
    // Only events that may name a person need the partner's contacts (a stage move needs none: no partner read).
    let wanted: BTreeSet<PartnerId> = changes
        .events()
        .filter(|e| pending(e) && e.kind.may_name_people())
        .filter_map(|e| e.subject.partner)
        .collect();
    for id in wanted {
        if partners.contains_key(&id) {
            continue;
        }
        let known = loaded.partners.iter().find(|p| p.id == id).cloned();
        let partner = match known {
            Some(p) => Some(p),
            None => match store.partner(tenant, id).await {
                Ok(p) => Some(p),
                Err(Error::NotFound { .. }) => None,
                Err(e) => return Err(e),
            },
        };
        partners.insert(id, partner);
    }
    // Each event's subjects.
    let mut subjects_of: Vec<Option<BTreeSet<Uuid>>> = Vec::new();
    let mut all: BTreeSet<Uuid> = BTreeSet::new();
    for w in changes.writes() {
        let Write::AppendEvent(e) = w else {
            subjects_of.push(None);
            continue;
        };
        let Some(p) = e.subject.partner.filter(|_| pending(e)) else {
            subjects_of.push(None);
            continue;
        };
        let contacts = partners
            .get(&p)
            .and_then(|x| x.as_ref())
            .filter(|_| e.kind.may_name_people())
            .map(|x| x.contacts.as_slice())
            .unwrap_or_default();
        // An event that cannot name people (a stage move) is sealed under its partner's key alone, without the
        // payload's search for contacts.
        let mut subjects = if e.kind.may_name_people() {
            erasure::people(&e.kind, contacts)
        } else {
            BTreeSet::new()
        };
        subjects.insert(*p.as_uuid());
        subjects.retain(|s| !erased.contains(s));
        if subjects.is_empty() {
            subjects_of.push(None);
            continue;
        }
        all.extend(subjects.iter().copied());
        subjects_of.push(Some(subjects));
    }
    let stored: Vec<Uuid> = all
        .difference(&fresh)
        .filter(|s| !ring.has(s))
        .copied()
        .collect();
    if !stored.is_empty() {
        for r in store.fetch(tenant, &Key::SubjectKeys(stored)).await? {
            if let Record::SubjectKey(k) = r {
                ring.add(k);
            }
        }
    }
    let mut new_keys = Vec::new();
    for s in &all {
        if !ring.has(s) {
            let k = SubjectKey::generate(tenant, *s)?;
            ring.add(k.clone());
            new_keys.push(Write::InsertSubjectKey(k));
        }
    }
    let writes = std::mem::take(&mut changes.writes);
    let mut sealed = Vec::with_capacity(writes.len() + new_keys.len());
    sealed.extend(new_keys);
    for (w, subjects) in writes.into_iter().zip(subjects_of) {
        sealed.push(match (w, subjects) {
            (Write::AppendEvent(e), Some(s)) => Write::AppendEvent(erasure::seal(e, &s, &ring)?),
            (w, _) => w,
        });
    }
    changes.writes = sealed;
    Ok(ring)
}

/// `changes` as they were before [`seal`] (its keys dropped, its events opened with `ring`).
///
/// # Errors
///
/// [`Error::Storage`] when an event does not open.
pub(crate) fn unseal(changes: ChangeSet, ring: &Keyring) -> Result<ChangeSet> {
    let mut out = ChangeSet::new();
    for w in changes.writes {
        match w {
            Write::InsertSubjectKey(_) => {}
            Write::AppendEvent(e) => {
                out.push(Write::AppendEvent(erasure::open(e, ring)?));
            }
            w => {
                out.push(w);
            }
        }
    }
    Ok(out)
}

/// `events` as stored, opened: each sealed one with its payload back, or [`EventKind::Erased`] when a person it
/// named was erased. One read of the keys for all of them.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use crm_core::conformance::model::MemStore;
/// use crm_core::service::open_events;
/// use crm_core::id::TenantId;
/// let store = MemStore::new();
/// assert!(open_events(&store, TenantId::new(), Vec::new()).await.unwrap().is_empty());
/// # });
/// ```
///
/// # Errors
///
/// [`Error::Storage`] when the keys cannot be read or an event does not open with the keys it names (it was
/// altered).
pub async fn open_events<S: Store + ?Sized>(
    store: &S,
    tenant: TenantId,
    events: Vec<DomainEvent>,
) -> Result<Vec<DomainEvent>> {
    let wanted: BTreeSet<Uuid> = events
        .iter()
        .flat_map(|e| erasure::sealed_under(e).iter().copied())
        .collect();
    if wanted.is_empty() {
        return Ok(events);
    }
    let mut ring = Keyring::default();
    for r in store
        .fetch(tenant, &Key::SubjectKeys(wanted.into_iter().collect()))
        .await?
    {
        if let Record::SubjectKey(k) = r {
            ring.add(k);
        }
    }
    events
        .into_iter()
        .map(|e| erasure::open(e, &ring))
        .collect()
}

/// A page of [`Store::events_since`] opened ([`open_events`]), positions kept.
///
/// # Errors
///
/// Those of [`open_events`].
pub async fn open_feed<S: Store + ?Sized>(
    store: &S,
    tenant: TenantId,
    rows: Vec<(u64, DomainEvent)>,
) -> Result<Vec<(u64, DomainEvent)>> {
    let (positions, events): (Vec<u64>, Vec<DomainEvent>) = rows.into_iter().unzip();
    let events = open_events(store, tenant, events).await?;
    Ok(positions.into_iter().zip(events).collect())
}
