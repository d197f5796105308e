//! The dispatcher: claims due outbox messages with a lease, delivers each through a [`Notifier`] and records the
//! outcome (delivered, retried with back-off, or a dead letter).

use crm_core::outbox::{
    DeliveryError, NextStep, Notifier, OutboxStore, OutboxStoreExt, RetryPolicy,
};
use crm_core::store::{ChangeSet, Store, Write};
use crm_core::time::Clock;
use crm_core::{Error, Result};
use std::sync::Arc;

/// What one dispatcher pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DispatchReport {
    /// Messages claimed.
    pub claimed: usize,
    /// Delivered.
    pub delivered: usize,
    /// Failed and scheduled for a retry.
    pub retried: usize,
    /// Dead-lettered.
    pub dead: usize,
}

/// Polls a delivery, turning a panic inside it into an `Err` with the panic's payload (crm-core has no runtime to
/// do it: `catch_unwind` around each poll).
struct CatchPanic<'a, T>(std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>);

impl<T> std::future::Future for CatchPanic<'_, T> {
    type Output = std::thread::Result<T>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Ok(std::task::Poll::Ready(v)) => std::task::Poll::Ready(Ok(v)),
            Err(panic) => std::task::Poll::Ready(Err(panic)),
        }
    }
}

/// The text of a panic's payload (`panic!("…")` carries a `&str` or a `String`).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_string())
}

/// Claims due messages, delivers them through a [`Notifier`] and records each outcome.
///
/// # Delivery guarantee: at least once
///
/// The outcome is recorded after the notifier returns. When the process dies between the two (a kill, a lost
/// machine, the database gone at that moment) the message stays claimed without an outcome, and once its lease
/// ([`RetryPolicy::lease_seconds`]) ends a dispatcher claims it and hands it to the notifier **again**. A pass
/// delivers one message at a time, so one crash repeats at most one message per dispatcher. End to end, a message
/// is delivered exactly once only when the receiver drops repeats by its
/// [`idempotency_key`](crm_core::outbox::OutboxMessage::idempotency_key), which every attempt carries unchanged: the
/// in-app inbox and the task notifier do, and an e-mail's `Message-ID` is derived from it. The crash test
/// (`crm-rules/tests/crash.rs`, `scripts/crash` for a long run) kills a dispatching worker with SIGKILL again and
/// again on SQLite and PostgreSQL, counts these repeats and checks that a receiver deduplicating by key saw each
/// message once.
///
/// A delivery that panics is a permanent failure: the message becomes a dead letter naming the panic and the pass
/// goes on with the other messages. A message claimed more than [`RetryPolicy::max_attempts`] times without an
/// outcome (its dispatcher crashed while delivering it) becomes a dead letter without another attempt.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    store: Arc<dyn OutboxStore>,
    notifier: Arc<dyn Notifier>,
    clock: Arc<dyn Clock>,
    policy: RetryPolicy,
    log: Option<Arc<dyn Store>>,
}

impl Dispatcher {
    /// A dispatcher with the default [`RetryPolicy`].
    pub fn new(
        store: Arc<dyn OutboxStore>,
        notifier: Arc<dyn Notifier>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            notifier,
            clock,
            policy: RetryPolicy::default(),
            log: None,
        }
    }

    /// Logs every delivered e-mail about a lead, partner or request on their timelines in `store`
    /// ([`OutboxMessage::delivery_event`](crm_core::outbox::OutboxMessage::delivery_event)), before the message is marked delivered: a crash between the two delivers the message
    /// again (at least once, as always) but logs it once.
    pub fn with_log(mut self, store: Arc<dyn Store>) -> Self {
        self.log = Some(store);
        self
    }

    /// Uses `policy`.
    pub fn with_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The policy.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// One pass: claims up to `limit` due messages and delivers them one after the other.
    pub async fn run_once(&self, limit: u32) -> Result<DispatchReport> {
        let now = self.clock.now();
        let claimed = self
            .store
            .claim_due(now, self.policy.lease(), limit)
            .await?;
        let mut report = DispatchReport {
            claimed: claimed.len(),
            ..Default::default()
        };
        for m in claimed {
            if m.attempts > self.policy.max_attempts {
                // Every earlier claim ended without an outcome: the dispatcher crashed (or aborted on a panic)
                // while delivering it. Delivering it again would crash again.
                let why = format!(
                    "claimed {} times without an outcome (more than the {} attempts allowed): the dispatcher \
                     stopped while delivering it",
                    m.attempts, self.policy.max_attempts
                );
                self.store.mark_dead(m.tenant, m.id, &why).await?;
                report.dead += 1;
                continue;
            }
            let delivered = CatchPanic(self.notifier.deliver(&m))
                .await
                .unwrap_or_else(|panic| {
                    Err(DeliveryError::Permanent(format!(
                        "the notifier panicked: {}",
                        panic_message(panic.as_ref())
                    )))
                });
            match delivered {
                Ok(()) => {
                    let at = self.clock.now();
                    if let (Some(log), Some(e)) = (&self.log, m.delivery_event(at)) {
                        let entry: ChangeSet = [Write::AppendEvent(e)].into_iter().collect();
                        match log.commit(m.tenant, entry).await {
                            Ok(()) | Err(Error::AlreadyExists { .. }) => {}
                            Err(e) => return Err(e),
                        }
                    }
                    self.store.mark_delivered(m.tenant, m.id, at).await?;
                    report.delivered += 1;
                }
                Err(e) => match self.policy.after_failure(m.attempts, &e, self.clock.now()) {
                    NextStep::RetryAt(at) => {
                        self.store
                            .mark_retry(m.tenant, m.id, &e.to_string(), at)
                            .await?;
                        report.retried += 1;
                    }
                    NextStep::Dead => {
                        self.store.mark_dead(m.tenant, m.id, &e.to_string()).await?;
                        report.dead += 1;
                    }
                },
            }
        }
        Ok(report)
    }

    /// Passes until nothing is due now (messages waiting for a back-off are left for later); returns the sum.
    pub async fn drain(&self, limit: u32) -> Result<DispatchReport> {
        let mut total = DispatchReport::default();
        loop {
            let r = self.run_once(limit).await?;
            total.claimed += r.claimed;
            total.delivered += r.delivered;
            total.retried += r.retried;
            total.dead += r.dead;
            if r.claimed == 0 {
                return Ok(total);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InboxNotifier;
    use async_trait::async_trait;
    use chrono::{Duration, TimeZone};
    use crm_core::id::{TenantId, UserId};
    use crm_core::outbox::{
        Channel, MemoryOutbox, OutboxMessage, OutboxStatus, Payload, ResolvedRecipient,
    };
    use crm_core::store::PageRequest;
    use crm_core::time::{FixedClock, Timestamp};

    fn t0() -> Timestamp {
        chrono::Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap()
    }

    fn msg(tenant: TenantId, key: &str, channel: Channel, user: Option<UserId>) -> OutboxMessage {
        OutboxMessage::pending(
            tenant,
            key,
            "r",
            channel,
            ResolvedRecipient {
                phone: None,
                user,
                name: None,
                email: None,
            },
            Payload {
                subject: "s".into(),
                body: "b".into(),
                ..Default::default()
            },
            t0(),
        )
    }

    /// A fresh outbox holding one pending message (key `k`) on `channel`: its tenant, the outbox and the
    /// message's id.
    fn one_pending(channel: Channel) -> (TenantId, MemoryOutbox, crm_core::id::OutboxId) {
        let tenant = TenantId::new();
        let store = MemoryOutbox::new();
        let m = msg(tenant, "k", channel, None);
        let id = m.id;
        assert!(store.enqueue(m));
        (tenant, store, id)
    }

    /// `max_attempts` attempts, back-off from 10 s up to 100 s, claims leased for 60 s.
    fn policy(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            base_seconds: 10,
            cap_seconds: 100,
            lease_seconds: 60,
        }
    }

    #[derive(Debug)]
    struct Failing(DeliveryError);

    #[async_trait]
    impl Notifier for Failing {
        async fn deliver(&self, _: &OutboxMessage) -> std::result::Result<(), DeliveryError> {
            Err(self.0.clone())
        }
    }

    #[test]
    fn dispatcher_retries_with_backoff_then_dead_letters_and_operator_retries() {
        futures::executor::block_on(async {
            let (tenant, store, id) = one_pending(Channel::Email);
            assert!(
                !store.enqueue(msg(tenant, "k", Channel::Email, None)),
                "same key ignored"
            );
            let clock = Arc::new(FixedClock::new(t0()));
            let policy = policy(3);
            let d = Dispatcher::new(
                Arc::new(store.clone()),
                Arc::new(Failing(DeliveryError::Transient("down".into()))),
                clock.clone(),
            )
            .with_policy(policy);
            assert_eq!(d.run_once(10).await.unwrap().retried, 1);
            assert_eq!(
                d.run_once(10).await.unwrap().claimed,
                0,
                "waiting for back-off"
            );
            clock.advance(Duration::seconds(10));
            assert_eq!(d.run_once(10).await.unwrap().retried, 1);
            clock.advance(Duration::seconds(20));
            assert_eq!(d.run_once(10).await.unwrap().dead, 1);
            let dead = store.outbox_message(tenant, id).await.unwrap();
            assert_eq!(dead.status, OutboxStatus::Dead);
            assert_eq!(dead.attempts, 3);
            assert!(dead.last_error.unwrap().contains("down"));
            let back = store.retry_dead(tenant, id, clock.now()).await.unwrap();
            assert_eq!((back.status, back.attempts), (OutboxStatus::Pending, 0));
            assert!(store.retry_dead(tenant, id, clock.now()).await.is_err());
        });
    }

    /// Panics on messages whose subject is `boom`, delivers the others.
    #[derive(Debug)]
    struct PanicsOnBoom;

    #[async_trait]
    impl Notifier for PanicsOnBoom {
        async fn deliver(&self, m: &OutboxMessage) -> std::result::Result<(), DeliveryError> {
            if m.payload.subject == "boom" {
                panic!("the notifier fell over");
            }
            Ok(())
        }
    }

    #[test]
    fn a_delivery_that_panics_is_a_dead_letter_and_the_pass_goes_on() {
        futures::executor::block_on(async {
            let tenant = TenantId::new();
            let store = MemoryOutbox::new();
            let mut boom = msg(tenant, "a", Channel::InApp, None);
            boom.payload.subject = "boom".into();
            let fine = msg(tenant, "b", Channel::InApp, None);
            let (boom_id, fine_id) = (boom.id, fine.id);
            assert!(store.enqueue(boom));
            assert!(store.enqueue(fine));
            let d = Dispatcher::new(
                Arc::new(store.clone()),
                Arc::new(PanicsOnBoom),
                Arc::new(FixedClock::new(t0())),
            );
            let r = d.run_once(10).await.unwrap();
            assert_eq!((r.claimed, r.delivered, r.dead, r.retried), (2, 1, 1, 0));
            let dead = store.outbox_message(tenant, boom_id).await.unwrap();
            assert_eq!(dead.status, OutboxStatus::Dead);
            let why = dead.last_error.unwrap();
            assert!(
                why.contains("panicked") && why.contains("the notifier fell over"),
                "{why}"
            );
            let delivered = store.outbox_message(tenant, fine_id).await.unwrap();
            assert_eq!(delivered.status, OutboxStatus::Delivered);
            assert_eq!(d.run_once(10).await.unwrap().claimed, 0, "nothing loops");
        });
    }

    #[test]
    fn a_message_claimed_more_often_than_allowed_without_an_outcome_is_dead() {
        futures::executor::block_on(async {
            let (tenant, store, id) = one_pending(Channel::InApp);
            let clock = Arc::new(FixedClock::new(t0()));
            let policy = policy(2);
            // Two dispatchers crashed (or aborted on a panic) while delivering it: claimed, no outcome recorded.
            for _ in 0..2 {
                let claimed = store.claim_due(clock.now(), policy.lease(), 10).await;
                assert_eq!(claimed.unwrap().len(), 1);
                clock.advance(Duration::seconds(61));
            }
            let d = Dispatcher::new(
                Arc::new(store.clone()),
                Arc::new(PanicsOnBoom),
                clock.clone(),
            )
            .with_policy(policy);
            let r = d.run_once(10).await.unwrap();
            assert_eq!((r.claimed, r.delivered, r.dead), (1, 0, 1));
            let dead = store.outbox_message(tenant, id).await.unwrap();
            assert_eq!((dead.status, dead.attempts), (OutboxStatus::Dead, 3));
            let why = dead.last_error.unwrap();
            assert!(why.contains("without an outcome"), "{why}");
        });
    }

    #[test]
    fn inbox_notifier_is_idempotent_and_tracks_read_state() {
        futures::executor::block_on(async {
            let tenant = TenantId::new();
            let user = UserId::new();
            let store = Arc::new(MemoryOutbox::new());
            let clock = Arc::new(FixedClock::new(t0()));
            let n = InboxNotifier::new(store.clone(), clock.clone());
            let m = msg(tenant, "a", Channel::InApp, Some(user));
            n.deliver(&m).await.unwrap();
            n.deliver(&m).await.unwrap();
            assert_eq!(store.unread_count(tenant, user).await.unwrap(), 1);
            let items = store
                .inbox(tenant, user, true, &PageRequest::default())
                .await
                .unwrap()
                .items;
            store
                .set_read(tenant, user, items[0].id, Some(t0()))
                .await
                .unwrap();
            assert_eq!(store.unread_count(tenant, user).await.unwrap(), 0);
            assert!(store
                .set_read(TenantId::new(), user, items[0].id, None)
                .await
                .is_err());
            let err = n.deliver(&msg(tenant, "b", Channel::InApp, None)).await;
            assert!(matches!(err, Err(DeliveryError::Permanent(_))));
        });
    }
}
