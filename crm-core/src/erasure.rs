//! Erasure of a person: the activity log stays append-only because personal data in it is sealed.
//!
//! Every event about a partner is stored **sealed**: its payload ([`EventKind`]) is encrypted with
//! XChaCha20-Poly1305 under a key derived (HKDF-SHA-256) from the [`SubjectKey`]s of the partner and of each of
//! its contacts the payload names (by name, e-mail address, phone number or id; see [`people`]). The stored row
//! keeps in clear only what is not personal: its id, time, actor, subject ids and type name. Reading the log opens
//! each event with the keys still held ([`open`]); erasing a person deletes their key, so every event that named
//! them reads as [`EventKind::Erased`] (type and time kept, payload gone) in every query, export and backup made
//! afterwards, while no stored entry is rewritten. The mutable rows (the partner's document, comments, leads,
//! documents, the outbox, …) are pseudonymised in place by the erasure itself
//! ([`Write::Erase`](crate::store::Write::Erase)).
//!
//! Why encryption rather than references: the log's payloads are written by many services and read by rules,
//! exports and replays; sealing them at the one commit path keeps every writer unchanged and makes forgetting a
//! personal field impossible (the whole payload is sealed), where references would need every event type to be
//! split into a personal and an impersonal part and every reader to join them back.

use crate::error::{Error, Result, StorageErrorKind};
use crate::event::{DomainEvent, EventKind};
use crate::id::TenantId;
use crate::partner::Contact;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// What keys are derived with (HKDF's salt): a sealed event names its format through it.
const SEAL_SALT: &[u8] = b"crm-core event seal v1";

/// A data subject's key: a partner's or a contact's, 256 random bits. Deleting it erases every event sealed under
/// it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectKey {
    /// The tenant.
    pub tenant: TenantId,
    /// The partner or contact it belongs to.
    pub subject: Uuid,
    /// The key, base64.
    key: String,
}

impl std::fmt::Debug for SubjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubjectKey")
            .field("tenant", &self.tenant)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

impl SubjectKey {
    /// A new random key for `subject`.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] when the operating system gives no random bytes.
    pub fn generate(tenant: TenantId, subject: Uuid) -> Result<Self> {
        let mut bytes = [0u8; 32];
        random(&mut bytes)?;
        Ok(Self {
            tenant,
            subject,
            key: base64::engine::general_purpose::STANDARD.encode(bytes),
        })
    }

    fn bytes(&self) -> Result<[u8; 32]> {
        base64::engine::general_purpose::STANDARD
            .decode(&self.key)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
            .ok_or_else(|| corrupt(format!("the key of {} is not 32 bytes", self.subject)))
    }
}

fn random(bytes: &mut [u8]) -> Result<()> {
    getrandom::fill(bytes).map_err(|e| {
        Error::storage(
            StorageErrorKind::Other,
            format!("no random bytes for a seal: {e}"),
        )
    })
}

fn corrupt(message: String) -> Error {
    Error::storage(StorageErrorKind::Other, message)
}

/// The keys at hand, by subject.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    keys: BTreeMap<Uuid, SubjectKey>,
}

impl Keyring {
    /// The ring of `keys`.
    pub fn of(keys: impl IntoIterator<Item = SubjectKey>) -> Self {
        Self {
            keys: keys.into_iter().map(|k| (k.subject, k)).collect(),
        }
    }

    /// Adds a key.
    pub fn add(&mut self, key: SubjectKey) {
        self.keys.insert(key.subject, key);
    }

    /// Whether the ring holds `subject`'s key.
    pub fn has(&self, subject: &Uuid) -> bool {
        self.keys.contains_key(subject)
    }

    /// The cipher of the key derived from `subjects`' keys, or `None` when one of them is missing (erased).
    fn cipher(&self, subjects: &[Uuid]) -> Result<Option<chacha20poly1305::XChaCha20Poly1305>> {
        let mut ikm = Vec::with_capacity(subjects.len() * 32);
        for s in subjects {
            let Some(k) = self.keys.get(s) else {
                return Ok(None);
            };
            ikm.extend_from_slice(&k.bytes()?);
        }
        let mut okm = [0u8; 32];
        hkdf::Hkdf::<sha2::Sha256>::new(Some(SEAL_SALT), &ikm)
            .expand(b"event", &mut okm)
            .map_err(|e| corrupt(format!("cannot derive a seal key: {e}")))?;
        Ok(Some(
            chacha20poly1305::XChaCha20Poly1305::new_from_slice(&okm)
                .map_err(|e| corrupt(format!("cannot use a seal key: {e}")))?,
        ))
    }
}

/// The bytes a seal is bound to: the event's tenant and id (a sealed payload moved to another row does not open).
fn aad(e: &DomainEvent) -> Vec<u8> {
    let mut a = Vec::with_capacity(32);
    a.extend_from_slice(e.tenant.as_uuid().as_bytes());
    a.extend_from_slice(e.id.as_uuid().as_bytes());
    a
}

/// `event` with its payload sealed under the keys of `subjects` (sorted, deduplicated), all of which `ring` must
/// hold. An already sealed or erased event is returned as it is.
///
/// # Errors
///
/// [`Error::Storage`] when a key is missing or the payload cannot be encrypted.
pub fn seal(
    mut event: DomainEvent,
    subjects: &BTreeSet<Uuid>,
    ring: &Keyring,
) -> Result<DomainEvent> {
    if matches!(
        event.kind,
        EventKind::Sealed { .. } | EventKind::Erased { .. }
    ) {
        return Ok(event);
    }
    let keys: Vec<Uuid> = subjects.iter().copied().collect();
    let cipher = ring
        .cipher(&keys)?
        .ok_or_else(|| corrupt("a subject's key is missing while sealing".to_string()))?;
    let plain = serde_json::to_vec(&event.kind)
        .map_err(|e| corrupt(format!("cannot serialise an event: {e}")))?;
    let mut nonce = [0u8; 24];
    random(&mut nonce)?;
    let data = cipher
        .encrypt(
            (&nonce).into(),
            Payload {
                msg: &plain,
                aad: &aad(&event),
            },
        )
        .map_err(|e| corrupt(format!("cannot seal an event: {e}")))?;
    let b64 = base64::engine::general_purpose::STANDARD;
    event.kind = EventKind::Sealed {
        kind: event.kind.name().to_string(),
        keys,
        nonce: b64.encode(nonce),
        data: b64.encode(data),
    };
    Ok(event)
}

/// The subjects whose keys `event` was sealed under (none when it is not sealed).
pub fn sealed_under(event: &DomainEvent) -> &[Uuid] {
    match &event.kind {
        EventKind::Sealed { keys, .. } => keys,
        _ => &[],
    }
}

/// `event` opened: its payload back when `ring` holds every key it was sealed under, else
/// [`EventKind::Erased`] with its type name. An event that is not sealed is returned as it is.
///
/// # Errors
///
/// [`Error::Storage`] when the keys are held but the payload does not open (it was altered or moved).
pub fn open(mut event: DomainEvent, ring: &Keyring) -> Result<DomainEvent> {
    let EventKind::Sealed {
        kind,
        keys,
        nonce,
        data,
    } = &event.kind
    else {
        return Ok(event);
    };
    let Some(cipher) = ring.cipher(keys)? else {
        event.kind = EventKind::Erased { kind: kind.clone() };
        return Ok(event);
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    let bad = |what: &str| corrupt(format!("event {}: {what}", event.id));
    let nonce: [u8; 24] = b64
        .decode(nonce)
        .ok()
        .and_then(|n| <[u8; 24]>::try_from(n.as_slice()).ok())
        .ok_or_else(|| bad("its seal's nonce is not 24 bytes"))?;
    let data = b64
        .decode(data)
        .map_err(|_| bad("its seal is not base64"))?;
    let plain = cipher
        .decrypt(
            (&nonce).into(),
            Payload {
                msg: &data,
                aad: &aad(&event),
            },
        )
        .map_err(|_| bad("its seal does not open with its keys"))?;
    event.kind = serde_json::from_slice(&plain).map_err(|_| bad("its payload does not parse"))?;
    Ok(event)
}

/// The contacts among `contacts` that `kind` names: by id, or by a name, e-mail address or phone number of at
/// least three characters (compared without case), plus any contact object the payload carries (a contact removed
/// in a [`EventKind::PartnerUpdated`] is named by its old value).
pub fn people<'a>(
    kind: &EventKind,
    contacts: impl IntoIterator<Item = &'a Contact>,
) -> BTreeSet<Uuid> {
    let mut found = BTreeSet::new();
    let Ok(value) = serde_json::to_value(kind) else {
        return found;
    };
    contact_objects(&value, &mut found);
    let text = value.to_string().to_lowercase();
    for c in contacts {
        let named = std::iter::once(c.id.to_string())
            .chain(personal_values(c))
            .any(|v| text.contains(&json_escaped(&v.to_lowercase())));
        if named {
            found.insert(*c.id.as_uuid());
        }
    }
    found
}

/// A contact's values that identify the person: name, e-mail address, phone (each of at least three characters).
pub fn personal_values(c: &Contact) -> Vec<String> {
    [
        Some(c.name.as_str()),
        c.email.as_deref(),
        c.phone.as_deref(),
    ]
    .into_iter()
    .flatten()
    .map(str::trim)
    .filter(|v| v.chars().count() >= 3)
    .map(str::to_string)
    .collect()
}

/// Collects the ids of the JSON objects shaped like a contact (an `id`, a `name` and an `email` or `phone` field).
fn contact_objects(v: &serde_json::Value, found: &mut BTreeSet<Uuid>) {
    match v {
        serde_json::Value::Object(m) => {
            if m.contains_key("name") && (m.contains_key("email") || m.contains_key("phone")) {
                if let Some(id) = m
                    .get("id")
                    .and_then(|i| i.as_str())
                    .and_then(|i| Uuid::parse_str(i).ok())
                {
                    found.insert(id);
                }
            }
            m.values().for_each(|x| contact_objects(x, found));
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| contact_objects(x, found)),
        _ => {}
    }
}

/// `value` as it appears inside a JSON string (escaped, without the quotes): what an erasure looks for in stored
/// documents.
pub fn json_escaped(value: &str) -> String {
    let quoted = serde_json::Value::String(value.to_string()).to_string();
    quoted[1..quoted.len() - 1].to_string()
}

/// `record` with each value of `scrub` replaced in its JSON text, as the SQL adapters replace it in a stored
/// document ([`Write::Erase`](crate::store::Write::Erase)).
///
/// # Errors
///
/// [`Error::Invalid`] on `record` when it does not serialise or no longer parses after the replacements.
pub fn scrubbed<T: Serialize + serde::de::DeserializeOwned>(
    record: &T,
    scrub: &[(String, String)],
) -> Result<T> {
    let mut text =
        serde_json::to_string(record).map_err(|e| Error::invalid("record", e.to_string()))?;
    for (value, replacement) in scrub.iter().filter(|(v, _)| !v.is_empty()) {
        text = text.replace(&json_escaped(value), &json_escaped(replacement));
    }
    serde_json::from_str(&text).map_err(|e| Error::invalid("record", e.to_string()))
}

/// The stable pseudonym an erased person's name is replaced by: derived from their id (not from anything
/// personal), the same in every table.
pub fn pseudonym(subject: Uuid) -> String {
    format!("Erased person {}", tag(subject).to_uppercase())
}

/// What replaces an erased person's e-mail address, phone number and other identifiers: `erased-` and the same tag
/// as their [`pseudonym`], so two erased people's values stay distinct (an outbox key naming the address stays
/// unique).
pub fn erased_value(subject: Uuid) -> String {
    format!("erased-{}", tag(subject))
}

fn tag(subject: Uuid) -> String {
    let simple = subject.simple().to_string();
    simple[simple.len() - 8..].to_string()
}

/// What an erasure removes, handed to the store as one write
/// ([`Write::Erase`](crate::store::Write::Erase)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Erasure {
    /// The tenant.
    pub tenant: TenantId,
    /// The partner whose records are scrubbed (the person, or the company the contact works for).
    pub partner: crate::id::PartnerId,
    /// The keys to delete: the person's (and, for a partner, every contact's).
    pub keys: Vec<Uuid>,
    /// Whether the keys of the partners merged into `partner` (their tombstones, through any chain of merges) go
    /// too: a partner's erasure; a contact's leaves them.
    pub tombstones: bool,
    /// Each personal value and what replaces it, in the partner's records and in the outbox.
    pub scrub: Vec<(String, String)>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actor::{Actor, Context, Source};
    use crate::event::Subject;

    fn event(tenant: TenantId) -> DomainEvent {
        let ctx = Context {
            tenant,
            actor: Actor::System,
            source: Source::Api,
        };
        DomainEvent::new(
            &ctx,
            chrono::DateTime::UNIX_EPOCH,
            Subject::default(),
            EventKind::PartnerCreated {
                name: "Ilinca Vasilescu".into(),
            },
        )
    }

    #[test]
    fn a_sealed_event_opens_with_its_keys_and_reads_as_erased_without_one() {
        let tenant = TenantId::new();
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let ring = Keyring::of([
            SubjectKey::generate(tenant, a).unwrap(),
            SubjectKey::generate(tenant, b).unwrap(),
        ]);
        let plain = event(tenant);
        let sealed = seal(plain.clone(), &[a, b].into(), &ring).unwrap();
        let stored = serde_json::to_string(&sealed).unwrap();
        assert!(!stored.contains("Ilinca"), "{stored}");
        assert_eq!(sealed_under(&sealed), &[a.min(b), a.max(b)]);
        assert_eq!(open(sealed.clone(), &ring).unwrap(), plain);
        let without_b = Keyring::of(ring.keys.get(&a).cloned());
        let erased = open(sealed.clone(), &without_b).unwrap();
        assert_eq!(
            erased.kind,
            EventKind::Erased {
                kind: "partner_created".into()
            }
        );
        // Bound to its row: the same payload under another id does not open.
        let mut moved = sealed;
        moved.id = crate::id::EventId::new();
        assert!(open(moved, &ring).is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(
            std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(1000)
        ))]
        /// Any payload, sealed under any set of subjects, opens to itself with every key, reads as erased without
        /// any one of them, and never shows its text while sealed.
        #[test]
        fn sealing_round_trips_and_any_missing_key_erases(
            name in "\\PC{4,60}",
            subjects in 1usize..5,
            missing in 0usize..5,
        ) {
            let tenant = TenantId::new();
            let ids: Vec<Uuid> = (0..subjects).map(|_| Uuid::now_v7()).collect();
            let ring = Keyring::of(ids.iter().map(|s| SubjectKey::generate(tenant, *s).unwrap()));
            let mut plain = event(tenant);
            // Ω is in no base64 text and no clear field, so finding it means the name leaked.
            let name = format!("Ω{name}");
            plain.kind = EventKind::PartnerCreated { name: name.clone() };
            let set: BTreeSet<Uuid> = ids.iter().copied().collect();
            let sealed = seal(plain.clone(), &set, &ring).unwrap();
            let stored = serde_json::to_string(&sealed).unwrap();
            let escaped = serde_json::Value::String(name.clone()).to_string();
            proptest::prop_assert!(!stored.contains(&escaped[1..escaped.len() - 1]));
            proptest::prop_assert_eq!(open(sealed.clone(), &ring).unwrap(), plain);
            if missing < subjects {
                let partial = Keyring::of(
                    ids.iter().enumerate().filter(|(i, _)| *i != missing).map(|(_, s)| ring.keys[s].clone()),
                );
                let erased = open(sealed, &partial).unwrap();
                proptest::prop_assert_eq!(erased.kind, EventKind::Erased { kind: "partner_created".into() });
            }
        }
    }

    #[test]
    fn people_finds_contacts_by_value_id_or_shape() {
        let c = |name: &str, email: Option<&str>| {
            serde_json::from_value::<Contact>(serde_json::json!({
                "id": Uuid::now_v7(), "name": name, "email": email, "phone": null, "role": null,
            }))
            .unwrap()
        };
        let maria = c("Maria Ionescu", Some("maria@example.ro"));
        let ion = c("Io", None);
        let kind = EventKind::EmailSent {
            message: crate::id::OutboxId::new(),
            to: "MARIA@example.ro".into(),
            template: None,
            by: "rule".into(),
        };
        assert_eq!(people(&kind, [&maria, &ion]), [*maria.id.as_uuid()].into());
        let gone = Uuid::now_v7();
        let changed = EventKind::PartnerUpdated {
            changes: vec![crate::event::FieldChange::new(
                "contacts",
                &serde_json::json!([{ "id": gone, "name": "X Y", "email": null }]),
                &serde_json::json!([]),
            )],
        };
        assert_eq!(people(&changed, [&maria]), [gone].into());
    }
}
