//! Conformance checks of the transactional outbox and in-app inboxes ([`OutboxStore`] and
//! [`Write::EnqueueOutbox`]), plus a property test comparing an adapter with [`MemoryOutbox`].
//!
//! Every adapter runs them with [`backend_conformance_tests!`](crate::backend_conformance_tests). Each check works
//! in a fresh tenant and at instants of its own year (claims read every tenant, so checks sharing one database must
//! not see each other's due messages).

use crate::error::Error;
use crate::event::{DomainEvent, EventKind, Subject};
use crate::id::{OutboxId, TenantId, UserId};
use crate::outbox::OutboxStoreExt;
use crate::outbox::{
    Channel, InboxItem, MemoryOutbox, OutboxMessage, OutboxStatus, OutboxStore, Payload,
    ResolvedRecipient,
};
use crate::partner::NewPartner;
use crate::store::{ChangeSet, PageRequest, Store, Write};
use crate::time::Timestamp;
use chrono::{Duration, TimeZone, Utc};
use proptest::prelude::*;
use std::sync::Arc;

/// A base instant in `year` with a random minute, so concurrent checks do not claim each other's messages.
fn base(year: i32) -> Timestamp {
    let minutes = (uuid::Uuid::now_v7().as_u128() % (300 * 24 * 60)) as i64;
    Utc.with_ymd_and_hms(year, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default()
        + Duration::minutes(minutes)
}

/// A pending message due at `at`.
pub fn message(tenant: TenantId, key: &str, at: Timestamp, user: Option<UserId>) -> OutboxMessage {
    OutboxMessage::pending(
        tenant,
        key,
        "conformance",
        Channel::InApp,
        ResolvedRecipient {
            phone: None,
            user,
            name: Some("Ana".into()),
            email: Some("ana@example.com".into()),
        },
        Payload {
            subject: format!("subject {key}"),
            body: "body".into(),
            template: None,
            vars: serde_json::json!({"deal": "Solar roof", "amount": "1234.5600"}),
            action: None,
        },
        at,
    )
}

async fn enqueue(store: &Arc<dyn Store>, msgs: &[OutboxMessage]) {
    let Some(first) = msgs.first() else { return };
    let mut cs = ChangeSet::new();
    for m in msgs {
        cs.push(Write::EnqueueOutbox(m.clone()));
    }
    store
        .commit(first.tenant, cs)
        .await
        .expect("enqueue commits");
}

/// A fresh tenant and a base instant in `year` (see [`base`]).
fn fresh(year: i32) -> (TenantId, Timestamp) {
    (TenantId::new(), base(year))
}

/// The page after `page`, of `limit` items.
fn after<T>(page: &crate::store::Page<T>, limit: u32) -> PageRequest {
    PageRequest {
        limit,
        after: page.next.clone(),
    }
}

/// Asserts that `r` is a not-found error.
#[track_caller]
fn assert_not_found<T: std::fmt::Debug>(r: crate::Result<T>) {
    assert!(matches!(r, Err(Error::NotFound { .. })), "{r:?}");
}

/// `tenant`'s pending messages (the first page).
async fn pending(outbox: &Arc<dyn OutboxStore>, tenant: TenantId) -> Vec<OutboxMessage> {
    let page = PageRequest::default();
    let listed = outbox
        .list_outbox(tenant, OutboxStatus::Pending, &page)
        .await;
    listed.expect("list").items
}

/// Enqueues `m` alone in a change set and returns it.
async fn enqueued(store: &Arc<dyn Store>, m: OutboxMessage) -> OutboxMessage {
    enqueue(store, std::slice::from_ref(&m)).await;
    m
}

/// A message as stored.
async fn stored(outbox: &Arc<dyn OutboxStore>, tenant: TenantId, id: OutboxId) -> OutboxMessage {
    outbox.outbox_message(tenant, id).await.expect("read")
}

/// Claims up to `limit` due messages at `at` with a `lease`, and keeps `tenant`'s (claims read every tenant).
async fn claim(
    outbox: &Arc<dyn OutboxStore>,
    tenant: TenantId,
    at: Timestamp,
    lease: Duration,
    limit: u32,
) -> Vec<OutboxMessage> {
    let claimed = outbox.claim_due(at, lease, limit).await.expect("claim");
    claimed.into_iter().filter(|m| m.tenant == tenant).collect()
}

/// The ids of `items` (as `id` reads them), in order.
fn ids<T, I>(items: &[T], id: impl Fn(&T) -> I) -> Vec<I> {
    items.iter().map(id).collect()
}

/// `n` pending messages keyed `{prefix}-0` … due a second apart from `t0`.
fn numbered(tenant: TenantId, prefix: &str, t0: Timestamp, n: i64) -> Vec<OutboxMessage> {
    (0..n)
        .map(|i| {
            message(
                tenant,
                &format!("{prefix}-{i}"),
                t0 + Duration::seconds(i),
                None,
            )
        })
        .collect()
}

/// A message enqueued in a change set commits with it, or not at all.
pub async fn check_outbox_enqueue_is_atomic_with_the_change(
    store: &Arc<dyn Store>,
    outbox: &Arc<dyn OutboxStore>,
) {
    let (tenant, at) = fresh(2001);
    let p = NewPartner::company("Outbox Ltd")
        .build(tenant, at)
        .expect("valid partner");
    let m = message(tenant, "atomic-1", at, None);
    let mut cs = ChangeSet::new();
    cs.push(Write::InsertPartner {
        partner: p.clone(),
        keys: Vec::new(),
    });
    cs.push(Write::EnqueueOutbox(m.clone()));
    store.commit(tenant, cs).await.expect("commit");
    let back = outbox
        .outbox_message(tenant, m.id)
        .await
        .expect("enqueued with the change");
    assert_eq!(back, m, "a message round-trips exactly");
    // A change set that fails (the partner exists already) leaves no message behind.
    let m2 = message(tenant, "atomic-2", at, None);
    let mut cs = ChangeSet::new();
    cs.push(Write::EnqueueOutbox(m2.clone()));
    cs.push(Write::InsertPartner {
        partner: p,
        keys: Vec::new(),
    });
    assert!(store.commit(tenant, cs).await.is_err());
    assert_not_found(outbox.outbox_message(tenant, m2.id).await);
    assert_not_found(outbox.outbox_by_key(tenant, "atomic-2").await);
    // A message of another tenant in the change set is refused like any other write.
    let mut cs = ChangeSet::new();
    cs.push(Write::EnqueueOutbox(message(
        TenantId::new(),
        "foreign",
        at,
        None,
    )));
    assert_eq!(
        store.commit(tenant, cs).await.unwrap_err().field(),
        Some("tenant")
    );
}

/// A second message with an existing key is ignored and the rest of its change set commits.
pub async fn check_outbox_idempotency_key_is_unique(
    store: &Arc<dyn Store>,
    outbox: &Arc<dyn OutboxStore>,
) {
    let (tenant, at) = fresh(2002);
    let first = enqueued(store, message(tenant, "same-key", at, None)).await;
    let again = message(tenant, "same-key", at + Duration::seconds(1), None);
    let ev = DomainEvent {
        id: crate::id::EventId::new(),
        tenant,
        at,
        actor: crate::actor::Actor::System,
        source: crate::actor::Source::Api,
        subject: Subject::default(),
        kind: EventKind::PartnerCreated { name: "x".into() },
    };
    let mut cs = ChangeSet::new();
    cs.push(Write::EnqueueOutbox(again.clone()));
    cs.push(Write::AppendEvent(ev.clone()));
    store
        .commit(tenant, cs)
        .await
        .expect("a duplicate key is not an error");
    assert_eq!(
        outbox
            .outbox_by_key(tenant, "same-key")
            .await
            .expect("kept")
            .id,
        first.id
    );
    assert_not_found(outbox.outbox_message(tenant, again.id).await);
    let events = store.events_since(tenant, 0, 10).await.expect("events");
    assert!(
        events.iter().any(|(_, e)| e.id == ev.id),
        "the rest of the change set committed"
    );
    // The same key in another tenant is another message.
    let other = enqueued(store, message(TenantId::new(), "same-key", at, None)).await;
    assert_eq!(
        outbox
            .outbox_by_key(other.tenant, "same-key")
            .await
            .expect("other")
            .id,
        other.id
    );
}

/// Claims return due messages oldest first, count an attempt and hide them until the lease ends.
pub async fn check_outbox_claim_takes_a_lease(
    store: &Arc<dyn Store>,
    outbox: &Arc<dyn OutboxStore>,
) {
    let (tenant, t0) = fresh(2003);
    let msgs = numbered(tenant, "lease", t0, 3);
    let later = message(tenant, "lease-later", t0 + Duration::hours(1), None);
    enqueue(store, &msgs).await;
    enqueue(store, std::slice::from_ref(&later)).await;
    let now = t0 + Duration::seconds(10);
    let lease = Duration::seconds(60);
    let first = claim(outbox, tenant, now, lease, 2).await;
    assert_eq!(ids(&first, |m| m.id), vec![msgs[0].id, msgs[1].id]);
    assert!(first
        .iter()
        .all(|m| m.attempts == 1 && m.next_attempt_at == now + lease));
    let second = claim(outbox, tenant, now, lease, 10).await;
    assert_eq!(
        ids(&second, |m| m.id),
        vec![msgs[2].id],
        "not the claimed, not the later"
    );
    assert!(
        claim(outbox, tenant, now + Duration::seconds(59), lease, 10)
            .await
            .is_empty()
    );
    let expired = claim(outbox, tenant, now + lease, lease, 10).await;
    assert_eq!(
        expired.len(),
        3,
        "a crashed dispatcher's claims come back after the lease"
    );
    assert!(expired.iter().all(|m| m.attempts == 2));
    for m in expired {
        outbox
            .mark_delivered(tenant, m.id, now)
            .await
            .expect("delivered");
    }
    let d = stored(outbox, tenant, msgs[0].id).await;
    assert_eq!(
        (d.status, d.delivered_at),
        (OutboxStatus::Delivered, Some(now))
    );
    outbox
        .mark_delivered(tenant, msgs[0].id, now)
        .await
        .expect("marking delivered twice is a no-op");
    assert!(claim(outbox, tenant, now + Duration::days(1), lease, 10)
        .await
        .iter()
        .all(|m| m.id == later.id));
    // Leave nothing due behind: claims read every tenant, and each check runs twice on one store.
    outbox
        .mark_delivered(tenant, later.id, now)
        .await
        .expect("delivered");
}

/// A failed attempt records its error and waits for its retry time.
pub async fn check_outbox_retry_waits_for_the_back_off(
    store: &Arc<dyn Store>,
    outbox: &Arc<dyn OutboxStore>,
) {
    let (tenant, t0) = fresh(2004);
    let m = enqueued(store, message(tenant, "retry", t0, None)).await;
    let c = claim(outbox, tenant, t0, Duration::seconds(60), 10).await;
    assert_eq!(c.len(), 1);
    let retry_at = t0 + Duration::seconds(30);
    outbox
        .mark_retry(tenant, m.id, "server busy", retry_at)
        .await
        .expect("retry");
    let r = stored(outbox, tenant, m.id).await;
    assert_eq!(
        (
            r.status,
            r.attempts,
            r.next_attempt_at,
            r.last_error.as_deref()
        ),
        (OutboxStatus::Pending, 1, retry_at, Some("server busy"))
    );
    assert!(claim(
        outbox,
        tenant,
        retry_at - Duration::seconds(1),
        Duration::seconds(60),
        10
    )
    .await
    .is_empty());
    let again = claim(outbox, tenant, retry_at, Duration::seconds(60), 10).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 2);
}

/// A dead letter is listed, never claimed, and cannot be marked again.
pub async fn check_outbox_dead_letter(store: &Arc<dyn Store>, outbox: &Arc<dyn OutboxStore>) {
    let (tenant, t0) = fresh(2005);
    let msgs = numbered(tenant, "dead", t0, 3);
    enqueue(store, &msgs).await;
    claim(
        outbox,
        tenant,
        t0 + Duration::seconds(5),
        Duration::seconds(60),
        10,
    )
    .await;
    for m in &msgs {
        outbox
            .mark_dead(tenant, m.id, "recipient refused")
            .await
            .expect("dead");
    }
    let d = stored(outbox, tenant, msgs[0].id).await;
    assert_eq!(
        (d.status, d.last_error.as_deref()),
        (OutboxStatus::Dead, Some("recipient refused"))
    );
    assert!(claim(
        outbox,
        tenant,
        t0 + Duration::days(2),
        Duration::seconds(60),
        10
    )
    .await
    .is_empty());
    assert_eq!(
        outbox
            .mark_delivered(tenant, msgs[0].id, t0)
            .await
            .unwrap_err()
            .field(),
        Some("status")
    );
    assert_eq!(
        outbox
            .mark_dead(tenant, msgs[0].id, "again")
            .await
            .unwrap_err()
            .field(),
        Some("status")
    );
    // Listed oldest first, keyset-paginated.
    let p1 = outbox
        .list_outbox(tenant, OutboxStatus::Dead, &PageRequest::first(2))
        .await
        .expect("list");
    assert_eq!(ids(&p1.items, |m| m.id), vec![msgs[0].id, msgs[1].id]);
    let p2 = outbox
        .list_outbox(tenant, OutboxStatus::Dead, &after(&p1, 2))
        .await
        .expect("list");
    assert_eq!(ids(&p2.items, |m| m.id), vec![msgs[2].id]);
    assert!(p2.next.is_none());
    assert!(pending(outbox, tenant).await.is_empty());
}

/// An operator turns a dead letter back into a pending message with zero attempts.
pub async fn check_outbox_operator_retry(store: &Arc<dyn Store>, outbox: &Arc<dyn OutboxStore>) {
    let (tenant, t0) = fresh(2006);
    let m = enqueued(store, message(tenant, "operator", t0, None)).await;
    assert_eq!(
        outbox
            .retry_dead(tenant, m.id, t0)
            .await
            .unwrap_err()
            .field(),
        Some("status"),
        "pending is not dead"
    );
    claim(outbox, tenant, t0, Duration::seconds(60), 10).await;
    outbox
        .mark_dead(tenant, m.id, "gave up")
        .await
        .expect("dead");
    let later = t0 + Duration::days(3);
    let back = outbox.retry_dead(tenant, m.id, later).await.expect("retry");
    assert_eq!(
        (back.status, back.attempts, back.next_attempt_at),
        (OutboxStatus::Pending, 0, later)
    );
    let c = claim(outbox, tenant, later, Duration::seconds(60), 10).await;
    assert_eq!(
        c.iter().map(|x| (x.id, x.attempts)).collect::<Vec<_>>(),
        vec![(m.id, 1)]
    );
}

/// Inbox items are idempotent per message, newest first, with read state per item.
pub async fn check_outbox_inbox_read_unread(
    _store: &Arc<dyn Store>,
    outbox: &Arc<dyn OutboxStore>,
) {
    let tenant = TenantId::new();
    let (ana, dan) = (UserId::new(), UserId::new());
    let t0 = base(2007);
    let mut items = Vec::new();
    for i in 0..3 {
        let m = message(tenant, &format!("inbox-{i}"), t0, Some(ana));
        let item =
            InboxItem::from_message(&m, t0 + Duration::seconds(i)).expect("an in-app message");
        assert!(outbox.inbox_put(item.clone()).await.expect("put"));
        let mut dup = item.clone();
        dup.id = crate::id::InboxItemId::new();
        assert!(
            !outbox.inbox_put(dup).await.expect("put again"),
            "one item per message"
        );
        items.push(item);
    }
    assert_eq!(outbox.unread_count(tenant, ana).await.expect("count"), 3);
    assert_eq!(outbox.unread_count(tenant, dan).await.expect("count"), 0);
    let p1 = outbox
        .inbox(tenant, ana, false, &PageRequest::first(2))
        .await
        .expect("inbox");
    assert_eq!(
        ids(&p1.items, |i| i.id),
        vec![items[2].id, items[1].id],
        "newest first"
    );
    let p2 = outbox
        .inbox(tenant, ana, false, &after(&p1, 2))
        .await
        .expect("inbox");
    assert_eq!(ids(&p2.items, |i| i.id), vec![items[0].id]);
    assert!(p2.next.is_none());
    let read_at = t0 + Duration::minutes(5);
    outbox
        .set_read(tenant, ana, items[1].id, Some(read_at))
        .await
        .expect("read");
    assert_eq!(outbox.unread_count(tenant, ana).await.expect("count"), 2);
    let unread = outbox
        .inbox(tenant, ana, true, &PageRequest::default())
        .await
        .expect("inbox");
    assert_eq!(ids(&unread.items, |i| i.id), vec![items[2].id, items[0].id]);
    let all = outbox
        .inbox(tenant, ana, false, &PageRequest::default())
        .await
        .expect("inbox");
    assert_eq!(all.items[1].read_at, Some(read_at));
    assert_eq!(all.items[1].subject, "subject inbox-1");
    outbox
        .set_read(tenant, ana, items[1].id, None)
        .await
        .expect("unread again");
    assert_eq!(outbox.unread_count(tenant, ana).await.expect("count"), 3);
    assert!(
        matches!(
            outbox
                .set_read(tenant, dan, items[0].id, Some(read_at))
                .await,
            Err(Error::NotFound { .. })
        ),
        "someone else's item"
    );
}

/// Another tenant's messages and inbox items read as not found and cannot be changed.
pub async fn check_outbox_tenant_isolation(store: &Arc<dyn Store>, outbox: &Arc<dyn OutboxStore>) {
    let tenant = TenantId::new();
    let other = TenantId::new();
    let ana = UserId::new();
    let t0 = base(2008);
    let m = enqueued(store, message(tenant, "mine", t0, Some(ana))).await;
    assert_not_found(outbox.outbox_message(other, m.id).await);
    assert_not_found(outbox.outbox_by_key(other, "mine").await);
    assert_not_found(outbox.mark_delivered(other, m.id, t0).await);
    assert_not_found(outbox.mark_retry(other, m.id, "x", t0).await);
    assert_not_found(outbox.mark_dead(other, m.id, "x").await);
    assert_not_found(outbox.retry_dead(other, m.id, t0).await);
    assert!(pending(outbox, other).await.is_empty());
    let item = InboxItem::from_message(&m, t0).expect("item");
    outbox.inbox_put(item.clone()).await.expect("put");
    assert!(outbox
        .inbox(other, ana, false, &PageRequest::default())
        .await
        .expect("inbox")
        .items
        .is_empty());
    assert_eq!(outbox.unread_count(other, ana).await.expect("count"), 0);
    assert_not_found(outbox.set_read(other, ana, item.id, Some(t0)).await);
    assert_eq!(
        outbox
            .outbox_message(tenant, m.id)
            .await
            .expect("still mine")
            .status,
        OutboxStatus::Pending
    );
}

// ---------------------------------------------------------------------------------------------------- model

/// One step of the outbox property test.
#[derive(Debug, Clone)]
pub enum OutboxOp {
    /// Enqueue a message with key number `n` (a repeated key is ignored).
    Enqueue(u8),
    /// Claim up to `n` due messages with a 60-second lease.
    Claim(u8),
    /// Mark the `n`-th known message delivered.
    Deliver(u8),
    /// Mark the `n`-th known message for a retry after `s` seconds.
    Retry(u8, u8),
    /// Dead-letter the `n`-th known message.
    Dead(u8),
    /// Operator retry of the `n`-th known message.
    OperatorRetry(u8),
    /// Move the clock forward `s` seconds.
    Advance(u8),
}

/// Random operation sequences.
pub fn outbox_ops() -> impl Strategy<Value = Vec<OutboxOp>> {
    let op = prop_oneof![
        3 => (0u8..6).prop_map(OutboxOp::Enqueue),
        3 => (1u8..4).prop_map(OutboxOp::Claim),
        2 => (0u8..6).prop_map(OutboxOp::Deliver),
        2 => (0u8..6, 0u8..90).prop_map(|(n, s)| OutboxOp::Retry(n, s)),
        1 => (0u8..6).prop_map(OutboxOp::Dead),
        1 => (0u8..6).prop_map(OutboxOp::OperatorRetry),
        2 => (0u8..120).prop_map(OutboxOp::Advance),
    ];
    proptest::collection::vec(op, 1..40)
}

/// Runs `ops` on the adapter and on [`MemoryOutbox`] in a fresh tenant; fails on the first difference.
pub async fn run_outbox_model_case(
    store: &Arc<dyn Store>,
    outbox: &Arc<dyn OutboxStore>,
    ops: &[OutboxOp],
) {
    let tenant = TenantId::new();
    let model = MemoryOutbox::new();
    let mut now = base(2040);
    let lease = Duration::seconds(60);
    let mut known: Vec<OutboxId> = Vec::new();
    let pick =
        |known: &Vec<OutboxId>, n: u8| (!known.is_empty()).then(|| known[n as usize % known.len()]);
    let same = |a: &crate::Result<()>, b: &crate::Result<()>, what: &str| {
        assert_eq!(a.is_ok(), b.is_ok(), "{what}: adapter {a:?}, model {b:?}");
    };
    for (step, op) in ops.iter().enumerate() {
        match op {
            OutboxOp::Enqueue(k) => {
                let m = message(tenant, &format!("k{k}"), now, None);
                let added = model.enqueue(m.clone());
                enqueue(store, std::slice::from_ref(&m)).await;
                if added {
                    known.push(m.id);
                }
            }
            OutboxOp::Claim(n) => {
                let mut a: Vec<_> = claim(outbox, tenant, now, lease, *n as u32)
                    .await
                    .into_iter()
                    .map(|m| (m.id, m.attempts))
                    .collect();
                let mut b: Vec<_> = model
                    .claim_due(now, lease, *n as u32)
                    .await
                    .expect("model claim")
                    .into_iter()
                    .map(|m| (m.id, m.attempts))
                    .collect();
                a.sort();
                b.sort();
                assert_eq!(a, b, "step {step}: claim {n}");
            }
            OutboxOp::Deliver(n) => {
                if let Some(id) = pick(&known, *n) {
                    let a = outbox.mark_delivered(tenant, id, now).await;
                    let b = model.mark_delivered(tenant, id, now).await;
                    same(&a, &b, "deliver");
                }
            }
            OutboxOp::Retry(n, s) => {
                if let Some(id) = pick(&known, *n) {
                    let at = now + Duration::seconds(*s as i64);
                    let a = outbox.mark_retry(tenant, id, "busy", at).await;
                    let b = model.mark_retry(tenant, id, "busy", at).await;
                    same(&a, &b, "retry");
                }
            }
            OutboxOp::Dead(n) => {
                if let Some(id) = pick(&known, *n) {
                    let a = outbox.mark_dead(tenant, id, "gone").await;
                    let b = model.mark_dead(tenant, id, "gone").await;
                    same(&a, &b, "dead");
                }
            }
            OutboxOp::OperatorRetry(n) => {
                if let Some(id) = pick(&known, *n) {
                    let a = outbox.retry_dead(tenant, id, now).await.map(|_| ());
                    let b = model.retry_dead(tenant, id, now).await.map(|_| ());
                    same(&a, &b, "operator retry");
                }
            }
            OutboxOp::Advance(s) => now += Duration::seconds(*s as i64),
        }
        for id in &known {
            let a = outbox
                .outbox_message(tenant, *id)
                .await
                .expect("adapter message");
            let b = model
                .outbox_message(tenant, *id)
                .await
                .expect("model message");
            assert_eq!(
                (
                    a.status,
                    a.attempts,
                    a.next_attempt_at,
                    &a.last_error,
                    a.delivered_at
                ),
                (
                    b.status,
                    b.attempts,
                    b.next_attempt_at,
                    &b.last_error,
                    b.delivered_at
                ),
                "step {step} ({op:?}): message {id}"
            );
        }
    }
    // Leave nothing due behind for later cases (claims read every tenant).
    for id in known {
        let _ = outbox.mark_dead(tenant, id, "end of case").await;
    }
}

/// The outbox model property test's cases per store in CI (`CRM_PROPTEST_CASES` or `PROPTEST_CASES` raise it).
pub const OUTBOX_CASES: u32 = 64;

/// Runs the property test with `cases` random sequences, blocking on `block_on` (the adapter's runtime).
pub fn run_outbox_model(
    store: Arc<dyn Store>,
    outbox: Arc<dyn OutboxStore>,
    block_on: &super::BlockOn<'_>,
    cases: u32,
) {
    let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
        cases,
        failure_persistence: None,
        ..Default::default()
    });
    let result = runner.run(&outbox_ops(), |ops| {
        let (store, outbox) = (store.clone(), outbox.clone());
        super::block_on_case(
            block_on,
            Box::pin(async move { run_outbox_model_case(&store, &outbox, &ops).await }),
        )
    });
    if let Err(e) = result {
        panic!("the outbox differs from the model: {e}");
    }
}
