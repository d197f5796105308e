//! The transactional outbox: what the rules decided, delivered *at least once*, and once per idempotency key where
//! the receiver drops repeats by that key.
//!
//! A rule's actions become [`OutboxMessage`]s written by [`Write::EnqueueOutbox`](crate::store::Write) in the same
//! storage transaction as the change that triggered them. A dispatcher (`crm_delivery::Dispatcher`) then claims due
//! messages with a lease, hands each to a [`Notifier`] and records the outcome: delivered, retried later with
//! exponential back-off ([`RetryPolicy`]), or dead after too many attempts, where an operator can see it and retry
//! it.
//!
//! # Delivery guarantees
//!
//! - **Decided with the change, or not at all.** A crash can neither lose a decided message nor leave one for a
//!   change that did not commit.
//! - **At least once to the notifier, not exactly once.** The outcome is recorded after the notifier returns, in
//!   another system than the one the message went to. A crash between the hand-over and that record (the process
//!   killed, the machine lost, the database unreachable) leaves the message claimed without an outcome; when its
//!   lease ends, a dispatcher hands it over again. The engine cannot prevent that repeat; it keeps it rare (one
//!   message per crash at most, per dispatcher delivering one message at a time).
//! - **Exactly once only where the receiver drops repeats by key.** Every attempt at a message carries the same
//!   [`idempotency_key`](OutboxMessage::idempotency_key). The in-app inbox keeps one item per message, the task
//!   notifier marks the request it opens with the key, and the SMTP notifier derives the e-mail's `Message-ID` from
//!   it (mail stores and clients that drop repeats by `Message-ID` show one copy; one that does not shows two). A
//!   notifier of the host's own should deduplicate on the key where its medium allows.
//!
//! `crm-rules/tests/crash.rs` shows this on SQLite and PostgreSQL: it SIGKILLs a worker (rules, outbox, invoices, a
//! dispatcher) many times, then checks that every committed change has exactly its messages and that a receiver
//! dropping repeats by key got each once, and counts the engine's repeats (kills between hand-over and record).
//! `scripts/crash` runs it with at least 100 kills per store.

use crate::error::{Error, Result};
use crate::id::{InboxItemId, OutboxId, TenantId, UserId};
use crate::page::{Page, PageRequest};
use crate::time::Timestamp;
use async_trait::async_trait;
use chrono::Duration;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

pub use crate::comms::{
    Channel, DeliveryError, InboxItem, NextStep, Notifier, OutboxMessage, OutboxStatus, Payload,
    ResolvedRecipient, RetryPolicy,
};

/// How a claimed (or dead) message is settled: [`OutboxStore::settle`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Settlement {
    /// Delivered at this time (a no-op when already delivered).
    Delivered {
        /// When.
        at: Timestamp,
    },
    /// A failed attempt, to be retried at `at`.
    Retry {
        /// Why it failed.
        error: String,
        /// When to try again.
        at: Timestamp,
    },
    /// A dead letter: it will never be delivered.
    Dead {
        /// Why.
        error: String,
    },
    /// An operator's retry of a dead message: pending again, due at `now`, with zero attempts.
    Revive {
        /// Now.
        now: Timestamp,
    },
}

/// How [`OutboxStore::find_outbox`] finds a message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OutboxRef {
    /// By id.
    Id(OutboxId),
    /// By idempotency key.
    Key(String),
}

/// A change of a person's inbox: [`OutboxStore::inbox_write`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InboxWrite {
    /// Put an item (idempotent per outbox message).
    Put(InboxItem),
    /// Mark an item read (`Some(at)`) or unread (`None`).
    SetRead {
        /// The tenant.
        tenant: TenantId,
        /// The person.
        user: UserId,
        /// The item.
        item: InboxItemId,
        /// When it was read.
        read_at: Option<Timestamp>,
    },
}

storage_trait! {
    /// Storage of the outbox and the in-app inboxes: the methods an adapter writes. The typed helpers
    /// (`mark_delivered`, `retry_dead`, `outbox_by_key`, `inbox_put`, …) are in [`OutboxStoreExt`].
    ///
    /// # Contract
    ///
    /// - **Enqueue only through the change set.** Messages are written by [`Write::EnqueueOutbox`](crate::store::Write)
    ///   inside [`Store::commit`](crate::store::Store::commit), atomically with the change that decided them; there is
    ///   no other way in. The idempotency key is unique per tenant: enqueueing a second message with an existing key
    ///   writes nothing and is not an error (the rest of the change set commits).
    /// - **Claim with a lease.** [`OutboxStore::claim_due`] returns pending messages whose `next_attempt_at` is at or
    ///   before `now`, oldest due first, at most `limit`; in the same transaction it adds one to `attempts` and moves
    ///   `next_attempt_at` to `now + lease`, so no other claim returns them until the lease ends (a crashed
    ///   dispatcher's messages come back then). It is the one cross-tenant read: the dispatcher serves every tenant.
    /// - **Outcomes.** [`Settlement::Delivered`], [`Settlement::Retry`] and [`Settlement::Dead`] change only a pending
    ///   message of that tenant (another tenant's id is [`Error::NotFound`]); settling an already delivered message
    ///   delivered is a no-op.
    /// - **Operator retry.** [`Settlement::Revive`] turns a dead message back into a pending one due at `now` with zero
    ///   attempts; other statuses are [`Error::Invalid`] on field `status`.
    /// - **Inbox.** [`InboxWrite::Put`] is idempotent per outbox message (`false` when it was already there); items
    ///   are listed newest first, keyset-paginated; read state is per item and person.
    /// - **Tenancy.** Every method but `claim_due` takes the tenant and sees only its rows.
    pub trait OutboxStore: Send + Sync + Debug {
        /// Claims due messages of every tenant (see the contract).
        fn claim_due(now: Timestamp, lease: Duration, limit: u32) -> Result<Vec<OutboxMessage>>;
        /// Records the outcome of an attempt, or an operator's retry (see the contract).
        fn settle(tenant: TenantId, id: OutboxId, how: &Settlement) -> Result<()>;
        /// A message by id or idempotency key; [`Error::NotFound`] when the tenant has none.
        fn find_outbox(tenant: TenantId, by: &OutboxRef) -> Result<OutboxMessage>;
        /// Messages with a status, oldest first, keyset-paginated.
        fn list_outbox(tenant: TenantId, status: OutboxStatus, page: &PageRequest) -> Result<Page<OutboxMessage>>;
        /// Changes an inbox; `false` when a put found the message already there.
        fn inbox_write(write: &InboxWrite) -> Result<bool>;
        /// A person's inbox, newest first.
        fn inbox(tenant: TenantId, user: UserId, unread_only: bool, page: &PageRequest) -> Result<Page<InboxItem>>;
        /// How many unread items a person has.
        fn unread_count(tenant: TenantId, user: UserId) -> Result<u64>;
    }
}

/// The typed outbox helpers over [`OutboxStore`]. Implemented for every outbox store; adapters never implement it.
#[async_trait]
pub trait OutboxStoreExt: OutboxStore {
    /// Records a delivery.
    async fn mark_delivered(&self, tenant: TenantId, id: OutboxId, at: Timestamp) -> Result<()> {
        self.settle(tenant, id, &Settlement::Delivered { at }).await
    }
    /// Records a failed attempt to retry at `retry_at`.
    async fn mark_retry(
        &self,
        tenant: TenantId,
        id: OutboxId,
        error: &str,
        retry_at: Timestamp,
    ) -> Result<()> {
        let how = Settlement::Retry {
            error: error.to_string(),
            at: retry_at,
        };
        self.settle(tenant, id, &how).await
    }
    /// Records a dead letter.
    async fn mark_dead(&self, tenant: TenantId, id: OutboxId, error: &str) -> Result<()> {
        let how = Settlement::Dead {
            error: error.to_string(),
        };
        self.settle(tenant, id, &how).await
    }
    /// Turns a dead message back into a pending one (operator action) and returns it.
    async fn retry_dead(
        &self,
        tenant: TenantId,
        id: OutboxId,
        now: Timestamp,
    ) -> Result<OutboxMessage> {
        self.settle(tenant, id, &Settlement::Revive { now }).await?;
        self.find_outbox(tenant, &OutboxRef::Id(id)).await
    }
    /// A message.
    async fn outbox_message(&self, tenant: TenantId, id: OutboxId) -> Result<OutboxMessage> {
        self.find_outbox(tenant, &OutboxRef::Id(id)).await
    }
    /// The message with this idempotency key.
    async fn outbox_by_key(&self, tenant: TenantId, key: &str) -> Result<OutboxMessage> {
        self.find_outbox(tenant, &OutboxRef::Key(key.to_string()))
            .await
    }
    /// Puts an item into a person's inbox; `false` when the message was already there.
    async fn inbox_put(&self, item: InboxItem) -> Result<bool> {
        self.inbox_write(&InboxWrite::Put(item)).await
    }
    /// Marks an item read (`Some(at)`) or unread (`None`).
    async fn set_read(
        &self,
        tenant: TenantId,
        user: UserId,
        item: InboxItemId,
        read_at: Option<Timestamp>,
    ) -> Result<()> {
        let w = InboxWrite::SetRead {
            tenant,
            user,
            item,
            read_at,
        };
        self.inbox_write(&w).await.map(|_| ())
    }
}

impl<S: OutboxStore + ?Sized> OutboxStoreExt for S {}

// ---------------------------------------------------------------------------------------------------- in memory

#[derive(Debug, Default)]
struct MemoryState {
    messages: BTreeMap<OutboxId, OutboxMessage>,
    inbox: BTreeMap<InboxItemId, InboxItem>,
}

impl MemoryState {
    /// The person's inbox items.
    fn inbox_of(&self, tenant: TenantId, user: UserId) -> impl Iterator<Item = &InboxItem> {
        self.inbox
            .values()
            .filter(move |i| i.tenant == tenant && i.user == user)
    }

    /// The person's inbox item `id`; [`Error::NotFound`] when it is not theirs.
    fn inbox_item(
        &mut self,
        tenant: TenantId,
        user: UserId,
        id: InboxItemId,
    ) -> Result<&mut InboxItem> {
        self.inbox
            .get_mut(&id)
            .filter(|i| i.tenant == tenant && i.user == user)
            .ok_or_else(|| Error::not_found(InboxItemId::ENTITY, id))
    }
}

/// An in-memory outbox: the reference model of the conformance suite and a store for tests.
///
/// Enqueue with [`MemoryOutbox::enqueue`] (what an adapter's `commit` does for
/// [`Write::EnqueueOutbox`](crate::store::Write)).
#[derive(Debug, Default, Clone)]
pub struct MemoryOutbox {
    state: Arc<Mutex<MemoryState>>,
}

impl MemoryOutbox {
    /// An empty outbox.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces each value of `scrub` in `tenant`'s messages and inbox items (an erasure,
    /// [`Write::Erase`](crate::store::Write::Erase)).
    pub fn scrub(&self, tenant: TenantId, scrub: &[(String, String)]) {
        fn swap<T: serde::Serialize + serde::de::DeserializeOwned>(
            x: &mut T,
            scrub: &[(String, String)],
        ) {
            if let Ok(y) = crate::erasure::scrubbed(&*x, scrub) {
                *x = y;
            }
        }
        let mut state = self.lock();
        for m in state.messages.values_mut().filter(|m| m.tenant == tenant) {
            swap(m, scrub);
        }
        for i in state.inbox.values_mut().filter(|i| i.tenant == tenant) {
            swap(i, scrub);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Enqueues a message unless its (tenant, idempotency key) exists; returns whether it was added.
    pub fn enqueue(&self, m: OutboxMessage) -> bool {
        let mut s = self.lock();
        if s.messages
            .values()
            .any(|o| o.tenant == m.tenant && o.idempotency_key == m.idempotency_key)
        {
            return false;
        }
        s.messages.insert(m.id, m);
        true
    }

    /// Every message, in id order (for tests).
    pub fn all(&self) -> Vec<OutboxMessage> {
        self.lock().messages.values().cloned().collect()
    }

    /// Changes the tenant's message `id` with `f` when its status is `status`; [`Error::Invalid`] on field `status`
    /// (the message's status, then `refusal`) otherwise.
    fn with_status<T>(
        &self,
        tenant: TenantId,
        id: OutboxId,
        status: OutboxStatus,
        refusal: &str,
        f: impl FnOnce(&mut OutboxMessage) -> T,
    ) -> Result<T> {
        let mut s = self.lock();
        let m = s
            .messages
            .get_mut(&id)
            .filter(|m| m.tenant == tenant)
            .ok_or_else(|| Error::not_found(OutboxId::ENTITY, id))?;
        if m.status != status {
            return Err(Error::invalid(
                "status",
                format!("message {id} is {}{refusal}", m.status.as_str()),
            ));
        }
        Ok(f(m))
    }
}

/// The page of `items` (taken in `key` order) after `page.after`.
fn page_of<'a, T: Clone + 'a>(
    items: impl Iterator<Item = &'a T>,
    page: &PageRequest,
    key: impl Fn(&T) -> (i64, uuid::Uuid),
) -> Result<Page<T>> {
    page.validate()?;
    let after = page.after.as_ref().map(|c| c.decode()).transpose()?;
    let mut rest: Vec<T> = items
        .filter(|i| after.is_none_or(|a| key(i) > a))
        .cloned()
        .collect();
    rest.sort_by_key(&key);
    Ok(Page::cut(rest, page.limit, key))
}

/// What settling a pending message says when it is not pending.
const NOT_PENDING: &str = ", not pending";

#[async_trait]
impl OutboxStore for MemoryOutbox {
    async fn settle(&self, tenant: TenantId, id: OutboxId, how: &Settlement) -> Result<()> {
        let pending = OutboxStatus::Pending;
        match how {
            Settlement::Delivered { at } => {
                let stored = self.find_outbox(tenant, &OutboxRef::Id(id)).await;
                if stored.is_ok_and(|m| m.status == OutboxStatus::Delivered) {
                    return Ok(());
                }
                self.with_status(tenant, id, pending, NOT_PENDING, |m| {
                    m.status = OutboxStatus::Delivered;
                    m.delivered_at = Some(*at);
                })
            }
            Settlement::Retry { error, at } => {
                self.with_status(tenant, id, pending, NOT_PENDING, |m| {
                    m.last_error = Some(error.clone());
                    m.next_attempt_at = *at;
                })
            }
            Settlement::Dead { error } => self.with_status(tenant, id, pending, NOT_PENDING, |m| {
                m.last_error = Some(error.clone());
                m.status = OutboxStatus::Dead;
            }),
            Settlement::Revive { now } => self.with_status(
                tenant,
                id,
                OutboxStatus::Dead,
                ": only dead messages can be retried",
                |m| {
                    m.status = pending;
                    m.attempts = 0;
                    m.next_attempt_at = *now;
                },
            ),
        }
    }

    async fn find_outbox(&self, tenant: TenantId, by: &OutboxRef) -> Result<OutboxMessage> {
        let s = self.lock();
        let (found, shown) = match by {
            OutboxRef::Id(id) => (s.messages.get(id), id.to_string()),
            OutboxRef::Key(key) => (
                s.messages
                    .values()
                    .find(|m| m.tenant == tenant && m.idempotency_key == *key),
                key.clone(),
            ),
        };
        found
            .filter(|m| m.tenant == tenant)
            .cloned()
            .ok_or_else(|| Error::not_found(OutboxId::ENTITY, shown))
    }

    async fn inbox_write(&self, write: &InboxWrite) -> Result<bool> {
        let mut s = self.lock();
        match write {
            InboxWrite::Put(item) => {
                if s.inbox
                    .values()
                    .any(|i| i.tenant == item.tenant && i.message == item.message)
                {
                    return Ok(false);
                }
                s.inbox.insert(item.id, item.clone());
            }
            InboxWrite::SetRead {
                tenant,
                user,
                item,
                read_at,
            } => s.inbox_item(*tenant, *user, *item)?.read_at = *read_at,
        }
        Ok(true)
    }

    async fn claim_due(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<OutboxMessage>> {
        let mut s = self.lock();
        let mut due: Vec<&mut OutboxMessage> = s
            .messages
            .values_mut()
            .filter(|m| m.status == OutboxStatus::Pending && m.next_attempt_at <= now)
            .collect();
        due.sort_by_key(|m| (m.next_attempt_at, m.id));
        Ok(due
            .into_iter()
            .take(limit as usize)
            .map(|m| {
                m.attempts += 1;
                m.next_attempt_at = now + lease;
                m.clone()
            })
            .collect())
    }

    async fn list_outbox(
        &self,
        tenant: TenantId,
        status: OutboxStatus,
        page: &PageRequest,
    ) -> Result<Page<OutboxMessage>> {
        let s = self.lock();
        let items = s.messages.values();
        let key = |m: &OutboxMessage| (m.created_at.timestamp_micros(), *m.id.as_uuid());
        page_of(
            items.filter(|m| m.tenant == tenant && m.status == status),
            page,
            key,
        )
    }

    async fn inbox(
        &self,
        tenant: TenantId,
        user: UserId,
        unread_only: bool,
        page: &PageRequest,
    ) -> Result<Page<InboxItem>> {
        // Newest first: the key is negated so the shared ascending keyset logic applies.
        let key = |i: &InboxItem| (-i.created_at.timestamp_micros(), invert(*i.id.as_uuid()));
        page_of(
            self.lock()
                .inbox_of(tenant, user)
                .filter(|i| !unread_only || i.read_at.is_none()),
            page,
            key,
        )
    }

    async fn unread_count(&self, tenant: TenantId, user: UserId) -> Result<u64> {
        Ok(self
            .lock()
            .inbox_of(tenant, user)
            .filter(|i| i.read_at.is_none())
            .count() as u64)
    }
}

/// Reverses a UUID's order (for newest-first keysets over ascending comparisons).
fn invert(u: uuid::Uuid) -> uuid::Uuid {
    uuid::Uuid::from_u128(u128::MAX - u.as_u128())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t0() -> Timestamp {
        chrono::Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap()
    }

    #[test]
    fn backoff_doubles_then_caps_and_permanent_is_dead() {
        let p = RetryPolicy {
            max_attempts: 3,
            base_seconds: 5,
            cap_seconds: 12,
            lease_seconds: 1,
        };
        let now = t0();
        let transient = DeliveryError::Transient("x".into());
        assert_eq!(
            p.after_failure(1, &transient, now),
            NextStep::RetryAt(now + Duration::seconds(5))
        );
        assert_eq!(
            p.after_failure(2, &transient, now),
            NextStep::RetryAt(now + Duration::seconds(10))
        );
        assert_eq!(p.after_failure(3, &transient, now), NextStep::Dead);
        assert_eq!(
            p.after_failure(1, &DeliveryError::Permanent("no".into()), now),
            NextStep::Dead
        );
        assert_eq!(p.backoff(10), Duration::seconds(12));
    }
}
