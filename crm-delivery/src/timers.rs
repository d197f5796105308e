//! Time-driven rules: [`tick`] finds the candidates of every timer the rule engine declares (through a
//! [`TimerSource`]), asks the engine and returns the outbox writes, whose idempotency keys make a second tick over the
//! same situation a no-op.
//!
//! **Candidates come from an index of due times, never from a scan.** Each timer is one filtered, indexed query that
//! returns only its candidates: idle leads through `LeadQuery::updated_before` (newest first, so the leads that
//! just went idle are not crowded out by long-idle ones), leads past their close date through
//! `LeadQuery::close_before`, requests through a window of due times (`RequestQuery::due_after`/`due_before`:
//! due soon, or overdue within [`OVERDUE_LOOKBACK_DAYS`]) or `RequestQuery::opened_before`, unpaid invoices through
//! `CommerceKey::DocumentsDue` and renewals through `CommerceKey::DocumentsRenewing`. Both adapters answer each
//! from an index (`crm-storage-sqlite` migration 0005, `crm-storage-postgres` migration 0004; their plan tests
//! check it), so a tick's cost follows the number of candidates, not the number of leads.

use async_trait::async_trait;
use crm_core::actor::Context;
use crm_core::commerce::{CommerceStore, CommerceStoreExt, Document, DocumentKind, OpenItem};
use crm_core::comms::{Directory, RuleEngine, TimerFiring, TimerTrigger, Trigger, Views};
use crm_core::error::{Error, Result};
use crm_core::event::Subject;
use crm_core::id::{PartnerId, TenantId};
use crm_core::lead::{Lead, StatusKind};
use crm_core::partner::Partner;
use crm_core::request::Request;
use crm_core::sales::Contract;
use crm_core::service::decision_writes;
use crm_core::store::StoreExt;
use crm_core::store::{ChangeSet, LeadQuery, LeadSort, PageRequest, RequestQuery, Store};
use crm_core::time::Timestamp;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

/// How far back a tick looks for what became overdue: an invoice is an `open_item_overdue:N` candidate (a request a
/// `request_overdue:N` one) from the day it is N days overdue for this many days (a tick must run at least once in
/// that time). The window keeps a tick's read to what fell due lately, never the whole history, and the requests
/// overdue for months never crowd out the ones that just became overdue.
pub const OVERDUE_LOOKBACK_DAYS: i64 = 30;

/// A commerce timer's candidate: a document, its partner and, for `open_item_overdue`, what is still owed on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentCandidate {
    /// The document (an invoice, or a document marked with a renewal date).
    pub document: Document,
    /// Its partner.
    pub partner: Option<Partner>,
    /// What is still owed on it (`open_item_overdue` only).
    pub open_item: Option<OpenItem>,
}

/// A contract up for renewal, with its partner: a `contract_renewal_due` candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractCandidate {
    /// The contract.
    pub contract: crm_core::sales::Contract,
    /// Its partner.
    pub partner: Option<Partner>,
}

/// A scheduled meeting about to start, with its lead and partner: a `meeting_starts_in` candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeetingCandidate {
    /// The meeting.
    pub meeting: crm_core::sales::Meeting,
    /// Its lead.
    pub lead: Option<Lead>,
    /// Its partner.
    pub partner: Option<Partner>,
}

/// Where the scheduler finds the records timers may fire for. Implemented for every store that is both a
/// [`Store`] and a [`CommerceStore`] through their indexed queries (the blanket impl, so a storage adapter does not
/// implement it itself); a host may implement it for a source of its own, as the tests do with candidates in memory.
#[async_trait]
pub trait TimerSource: Send + Sync + Debug {
    /// Open leads last changed before `before`, the most recently changed first (so the leads that just went
    /// idle are never crowded out by long-idle ones), at most `limit`.
    async fn idle_leads(
        &self,
        tenant: TenantId,
        before: Timestamp,
        limit: u32,
    ) -> Result<Vec<Lead>>;
    /// Active requests due after `after` and before `before`, earliest first, at most `limit`.
    async fn requests_due_between(
        &self,
        tenant: TenantId,
        after: Timestamp,
        before: Timestamp,
        limit: u32,
    ) -> Result<Vec<Request>>;
    /// Open leads whose expected close date is before `today`, the most recently changed first, at most `limit`.
    async fn leads_past_close(
        &self,
        tenant: TenantId,
        today: chrono::NaiveDate,
        limit: u32,
    ) -> Result<Vec<Lead>>;
    /// Active requests opened before `before` (with or without a due date), at most `limit`.
    async fn requests_opened_before(
        &self,
        tenant: TenantId,
        before: Timestamp,
        limit: u32,
    ) -> Result<Vec<Request>>;
    /// Sales invoices due in `[from, before)` that are still (partly) unpaid at the end of `as_of`, by due date, at
    /// most `limit`. None by default (a source without commerce).
    async fn open_items_due(
        &self,
        tenant: TenantId,
        from: chrono::NaiveDate,
        before: chrono::NaiveDate,
        as_of: chrono::NaiveDate,
        limit: u32,
    ) -> Result<Vec<DocumentCandidate>> {
        let _ = (tenant, from, before, as_of, limit);
        Ok(Vec::new())
    }
    /// Documents whose renewal date falls in `[from, to]`, by renewal date, at most `limit`. None by default (a
    /// source without commerce).
    async fn documents_renewing(
        &self,
        tenant: TenantId,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
        limit: u32,
    ) -> Result<Vec<DocumentCandidate>> {
        let _ = (tenant, from, to, limit);
        Ok(Vec::new())
    }
    /// Scheduled meetings starting in `[from, before)`, by start, at most `limit`. None by default (a source
    /// without commerce).
    async fn meetings_starting(
        &self,
        tenant: TenantId,
        from: Timestamp,
        before: Timestamp,
        limit: u32,
    ) -> Result<Vec<MeetingCandidate>> {
        let _ = (tenant, from, before, limit);
        Ok(Vec::new())
    }
    /// Contracts whose renewal date falls in `[from, to]`, by renewal date, at most `limit`. None by default (a
    /// source without commerce).
    async fn contracts_renewing(
        &self,
        tenant: TenantId,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
        limit: u32,
    ) -> Result<Vec<ContractCandidate>> {
        let _ = (tenant, from, to, limit);
        Ok(Vec::new())
    }
}

/// The partners `ids` names, read once each (a partner gone meanwhile is left out).
async fn partners_of<S: Store + ?Sized>(
    store: &S,
    tenant: TenantId,
    ids: impl Iterator<Item = PartnerId>,
) -> Result<BTreeMap<PartnerId, Partner>> {
    let mut out = BTreeMap::new();
    for id in ids.collect::<BTreeSet<_>>() {
        match store.partner(tenant, id).await {
            Ok(p) => {
                out.insert(id, p);
            }
            Err(Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// The first `limit` of `records`, each made a candidate by `make` with its partner (read once per partner).
async fn with_partners<S: Store + ?Sized, R, C>(
    store: &S,
    tenant: TenantId,
    mut records: Vec<R>,
    limit: u32,
    partner: fn(&R) -> PartnerId,
    make: impl Fn(R, Option<Partner>) -> C,
) -> Result<Vec<C>> {
    records.truncate(limit as usize);
    let partners = partners_of(store, tenant, records.iter().map(partner)).await?;
    Ok(records
        .into_iter()
        .map(|r| {
            let p = partners.get(&partner(&r)).cloned();
            make(r, p)
        })
        .collect())
}

/// The items of the pages `page` returns, from the first on, up to `limit`. Every page holds only candidates: the
/// filters are in the query, which the adapter answers from an index.
async fn up_to<T, F, Fut>(limit: u32, mut page: F) -> Result<Vec<T>>
where
    F: FnMut(PageRequest) -> Fut + Send,
    Fut: std::future::Future<Output = Result<crm_core::store::Page<T>>> + Send,
    T: Send,
{
    let mut next = PageRequest::first(limit.clamp(1, PageRequest::MAX));
    let mut out = Vec::new();
    loop {
        let p = page(next.clone()).await?;
        out.extend(p.items);
        if out.len() >= limit as usize {
            out.truncate(limit as usize);
            return Ok(out);
        }
        match p.next {
            Some(c) => next.after = Some(c),
            None => return Ok(out),
        }
    }
}

/// Open leads matching `q`, the most recently changed first, up to `limit`.
async fn open_leads<S: Store + ?Sized>(
    store: &S,
    tenant: TenantId,
    q: LeadQuery,
    limit: u32,
) -> Result<Vec<Lead>> {
    up_to(limit, |page| {
        let q = LeadQuery {
            status: Some(StatusKind::Open),
            sort: LeadSort::UpdatedDesc,
            page,
            ..q.clone()
        };
        async move { store.query_leads(tenant, &q).await }
    })
    .await
}

/// Active requests matching `q`, earliest due first, up to `limit`.
async fn active_requests<S: Store + ?Sized>(
    store: &S,
    tenant: TenantId,
    q: RequestQuery,
    limit: u32,
) -> Result<Vec<Request>> {
    up_to(limit, |page| {
        let q = RequestQuery {
            active_only: true,
            page,
            ..q.clone()
        };
        async move { store.query_requests(tenant, &q).await }
    })
    .await
}

#[async_trait]
impl<S: Store + CommerceStore + ?Sized> TimerSource for S {
    async fn idle_leads(
        &self,
        tenant: TenantId,
        before: Timestamp,
        limit: u32,
    ) -> Result<Vec<Lead>> {
        let q = LeadQuery {
            updated_before: Some(before),
            ..Default::default()
        };
        open_leads(self, tenant, q, limit).await
    }

    async fn requests_due_between(
        &self,
        tenant: TenantId,
        after: Timestamp,
        before: Timestamp,
        limit: u32,
    ) -> Result<Vec<Request>> {
        let q = RequestQuery {
            due_after: Some(after),
            due_before: Some(before),
            ..Default::default()
        };
        active_requests(self, tenant, q, limit).await
    }

    async fn leads_past_close(
        &self,
        tenant: TenantId,
        today: chrono::NaiveDate,
        limit: u32,
    ) -> Result<Vec<Lead>> {
        let q = LeadQuery {
            close_before: Some(today),
            ..Default::default()
        };
        open_leads(self, tenant, q, limit).await
    }

    async fn requests_opened_before(
        &self,
        tenant: TenantId,
        before: Timestamp,
        limit: u32,
    ) -> Result<Vec<Request>> {
        let q = RequestQuery {
            opened_before: Some(before),
            ..Default::default()
        };
        active_requests(self, tenant, q, limit).await
    }

    async fn open_items_due(
        &self,
        tenant: TenantId,
        from: chrono::NaiveDate,
        before: chrono::NaiveDate,
        as_of: chrono::NaiveDate,
        limit: u32,
    ) -> Result<Vec<DocumentCandidate>> {
        // The invoices due in the window (an index range), then what is still open, once per partner.
        let docs = self
            .documents_due(tenant, DocumentKind::Invoice, from, before)
            .await?;
        let partners = partners_of(self, tenant, docs.iter().map(|d| d.partner())).await?;
        let mut open: BTreeMap<PartnerId, Vec<OpenItem>> = BTreeMap::new();
        for id in partners.keys() {
            open.insert(*id, self.open_items(tenant, *id, as_of).await?);
        }
        let mut out = Vec::new();
        for d in docs {
            let item = open
                .get(&d.partner())
                .and_then(|items| items.iter().find(|i| i.document == d.id()))
                .filter(|i| i.open.is_sign_positive() && !i.open.is_zero())
                .cloned();
            if let Some(item) = item {
                out.push(DocumentCandidate {
                    partner: partners.get(&d.partner()).cloned(),
                    document: d,
                    open_item: Some(item),
                });
                if out.len() >= limit as usize {
                    break;
                }
            }
        }
        Ok(out)
    }

    async fn documents_renewing(
        &self,
        tenant: TenantId,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
        limit: u32,
    ) -> Result<Vec<DocumentCandidate>> {
        let docs = CommerceStoreExt::documents_renewing(self, tenant, from, to).await?;
        with_partners(
            self,
            tenant,
            docs,
            limit,
            Document::partner,
            |d, partner| DocumentCandidate {
                partner,
                document: d,
                open_item: None,
            },
        )
        .await
    }

    async fn meetings_starting(
        &self,
        tenant: TenantId,
        from: Timestamp,
        before: Timestamp,
        limit: u32,
    ) -> Result<Vec<MeetingCandidate>> {
        let mut meetings = CommerceStoreExt::meetings_starting(self, tenant, from, before).await?;
        meetings.truncate(limit as usize);
        // Each lead once, then each partner once: a meeting's own, else its lead's.
        let mut leads = BTreeMap::new();
        for id in meetings
            .iter()
            .filter_map(|m| m.lead())
            .collect::<BTreeSet<_>>()
        {
            match self.lead(tenant, id).await {
                Ok(l) => {
                    leads.insert(id, l);
                }
                Err(Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let partner_of = |m: &crm_core::sales::Meeting| {
            m.partner()
                .or_else(|| leads.get(&m.lead()?).map(|l| l.partner()))
        };
        let partners = partners_of(self, tenant, meetings.iter().filter_map(partner_of)).await?;
        let mut out = Vec::with_capacity(meetings.len());
        for m in meetings {
            let partner = partner_of(&m).and_then(|p| partners.get(&p).cloned());
            let lead = m.lead().and_then(|id| leads.get(&id).cloned());
            out.push(MeetingCandidate {
                meeting: m,
                lead,
                partner,
            });
        }
        Ok(out)
    }

    async fn contracts_renewing(
        &self,
        tenant: TenantId,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
        limit: u32,
    ) -> Result<Vec<ContractCandidate>> {
        let contracts = CommerceStoreExt::contracts_renewing(self, tenant, from, to).await?;
        with_partners(
            self,
            tenant,
            contracts,
            limit,
            Contract::partner,
            |c, partner| ContractCandidate {
                partner,
                contract: c,
            },
        )
        .await
    }
}

/// What one scheduler tick decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    /// The firings evaluated.
    pub firings: Vec<TimerFiring>,
    /// The writes to commit (outbox messages and `rule_failed` events); commit them with
    /// [`Store::commit`] (as `Crm::tick` does). Keys are stable, so committing a repeated tick enqueues nothing
    /// new.
    pub changes: ChangeSet,
}

/// Evaluates the timers of the tenant's rules ([`RuleEngine::timers_for`]) at `now` for one tenant: finds candidates through `source` (at most `limit` per
/// timer), asks the engine and returns the writes. The host drives it (every minute, say) and commits the result.
///
/// A timer over [`MAX_TIMER_DAYS`](crm_core::comms::MAX_TIMER_DAYS) (which a host's own engine could declare) or one whose bound falls outside the
/// calendar is refused with [`Error::Invalid`](crm_core::Error::Invalid) naming `timer`; nothing panics.
pub async fn tick(
    now: Timestamp,
    tenant: TenantId,
    engine: &dyn RuleEngine,
    directory: &dyn Directory,
    source: &dyn TimerSource,
    limit: u32,
) -> Result<TickReport> {
    let ctx = Context {
        tenant,
        actor: crm_core::actor::Actor::System,
        source: crm_core::actor::Source::Scheduler,
    };
    let mut report = TickReport::default();
    for timer in engine.timers_for(tenant) {
        let bound = timer.bound(now)?;
        let fire = Firings { tenant, now, timer };
        let firings = match timer {
            TimerTrigger::LeadIdle { .. } => fire
                .each(source.idle_leads(tenant, bound, limit).await?, |l| {
                    Some(format!("{}:{}", l.id(), l.updated_at().timestamp_micros()))
                }),
            TimerTrigger::CloseDatePassed => fire.each(
                source
                    .leads_past_close(tenant, now.date_naive(), limit)
                    .await?,
                |l| Some(format!("{}:{:?}", l.id(), l.expected_close())),
            ),
            TimerTrigger::RequestDueSoon { .. } => {
                // Due in the coming hours: a window of due times, so overdue requests never crowd them out.
                let due = source.requests_due_between(tenant, now, bound, limit);
                fire.each(due.await?, request_due_stamp)
            }
            TimerTrigger::RequestAge { .. } => fire.each(
                source.requests_opened_before(tenant, bound, limit).await?,
                |r| Some(format!("{}:{}", r.id(), r.created_at().timestamp_micros())),
            ),
            TimerTrigger::RequestOverdue { .. } => {
                // Overdue by N days: due before the bound, looked for in a recent window of due times.
                let after = bound
                    .checked_sub_signed(chrono::Duration::days(OVERDUE_LOOKBACK_DAYS))
                    .ok_or_else(|| outside(timer, now))?;
                let due = source.requests_due_between(tenant, after, bound, limit);
                fire.each(due.await?, request_due_stamp)
            }
            TimerTrigger::OpenItemOverdue { .. } => {
                // Overdue by N days: due on or before the bound's day; looked for in a recent window of due dates.
                let before = next_day(bound.date_naive())?;
                let from = before
                    .checked_sub_signed(chrono::Duration::days(OVERDUE_LOOKBACK_DAYS))
                    .ok_or_else(|| outside(timer, now))?;
                let due = source.open_items_due(tenant, from, before, now.date_naive(), limit);
                fire.each(due.await?, |c| {
                    Some(format!("{}:{:?}", c.document.id(), c.document.due_date()))
                })
            }
            TimerTrigger::ContractRenewalDue { .. } => {
                // Documents the host marks with a renewal date, and the engine's own contracts.
                let (from, to) = (now.date_naive(), bound.date_naive());
                let renewing = source.documents_renewing(tenant, from, to, limit);
                let mut firings = fire.each(renewing.await?, |c| {
                    Some(format!("{}:{:?}", c.document.id(), c.document.renews_on()))
                });
                let contracts = source.contracts_renewing(tenant, from, to, limit);
                firings.extend(fire.each(contracts.await?, |c| {
                    let renews = c.contract.term().renews_on?;
                    Some(format!("{}:{renews}", c.contract.id()))
                }));
                firings
            }
            TimerTrigger::MeetingStartsIn { .. } => {
                // Starting within the coming hours; a moved meeting fires again (its start is in the stamp).
                let soon = source.meetings_starting(tenant, now, bound, limit);
                fire.each(soon.await?, |c| {
                    let starts = c.meeting.starts_at().timestamp_micros();
                    Some(format!("{}:{starts}", c.meeting.id()))
                })
            }
        };
        for (f, views) in firings {
            let trigger = Trigger::Timer(f.clone());
            let decision = engine.evaluate(&trigger, &views);
            report.changes.extend(decision_writes(
                &ctx, &trigger, &views, &decision, directory,
            ));
            report.firings.push(f);
        }
    }
    Ok(report)
}

/// One timer's firings at `now`.
struct Firings {
    tenant: TenantId,
    now: Timestamp,
    timer: TimerTrigger,
}

impl Firings {
    /// A firing for each candidate that `stamp` gives a stamp, keyed `timer:stamp`: the stamp names the candidate
    /// and what moves on when it changes (a timestamp or date), so a repeated tick fires nothing new.
    fn each<C: Candidate>(
        &self,
        candidates: Vec<C>,
        stamp: impl Fn(&C) -> Option<String>,
    ) -> Vec<(TimerFiring, Views)> {
        candidates
            .into_iter()
            .filter_map(|c| {
                let firing = TimerFiring {
                    tenant: self.tenant,
                    at: self.now,
                    timer: self.timer,
                    subject: c.subject(),
                    key: format!("{}:{}", self.timer, stamp(&c)?),
                };
                Some((firing, c.views()))
            })
            .collect()
    }
}

/// A request due-timer's stamp: the request and its due time (a request without one does not fire).
fn request_due_stamp(r: &Request) -> Option<String> {
    let due = r.due()?;
    Some(format!("{}:{}", r.id(), due.timestamp_micros()))
}

/// What a timer fires for: the subject of the firing and the views its rules see.
trait Candidate {
    fn subject(&self) -> Subject;
    fn views(self) -> Views;
}

impl Candidate for MeetingCandidate {
    fn subject(&self) -> Subject {
        Subject {
            partner: self.partner.as_ref().map(|p| p.id()),
            lead: self.meeting.lead(),
            request: None,
        }
    }
    fn views(self) -> Views {
        Views {
            lead: self.lead,
            partner: self.partner,
            meeting: Some(self.meeting),
            ..Default::default()
        }
    }
}

impl Candidate for ContractCandidate {
    fn subject(&self) -> Subject {
        Subject {
            partner: Some(self.contract.partner()),
            lead: self.contract.lead(),
            request: None,
        }
    }
    fn views(self) -> Views {
        Views {
            partner: self.partner,
            contract: Some(self.contract),
            ..Default::default()
        }
    }
}

impl Candidate for Lead {
    fn subject(&self) -> Subject {
        Subject {
            partner: Some(self.partner()),
            lead: Some(self.id()),
            request: None,
        }
    }
    fn views(self) -> Views {
        Views {
            lead: Some(self),
            ..Default::default()
        }
    }
}

impl Candidate for Request {
    fn subject(&self) -> Subject {
        Subject {
            partner: self.partner(),
            lead: self.lead(),
            request: Some(self.id()),
        }
    }
    fn views(self) -> Views {
        Views {
            request: Some(self),
            ..Default::default()
        }
    }
}

impl Candidate for DocumentCandidate {
    fn subject(&self) -> Subject {
        Subject {
            partner: Some(self.document.partner()),
            ..Default::default()
        }
    }
    fn views(self) -> Views {
        Views {
            partner: self.partner,
            document: Some(self.document),
            open_item: self.open_item,
            ..Default::default()
        }
    }
}

fn next_day(d: chrono::NaiveDate) -> Result<chrono::NaiveDate> {
    d.succ_opt()
        .ok_or_else(|| Error::invalid("timer", format!("{d} is the last day of the calendar")))
}

fn outside(timer: TimerTrigger, now: Timestamp) -> Error {
    Error::invalid(
        "timer",
        format!("`{timer}` at {now} reaches outside the calendar"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use crm_core::comms::{Decision, StaticDirectory};
    // A timer source with no candidates: an empty reference store (the tick only computes its bounds).
    use crm_core::conformance::model::MemStore;

    /// An engine declaring whatever timers it likes (a host's own engine is not parsed from text).
    #[derive(Debug)]
    struct TimersOnly(Vec<TimerTrigger>);

    impl RuleEngine for TimersOnly {
        fn evaluate(&self, _: &Trigger, _: &Views) -> Decision {
            Decision::default()
        }
        fn timers(&self) -> Vec<TimerTrigger> {
            self.0.clone()
        }
    }

    #[test]
    fn tick_refuses_absurd_timers_of_any_engine_without_panicking() {
        let tenant = TenantId::new();
        let dir = StaticDirectory::new(tenant);
        let now = chrono::Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).unwrap();
        for timer in [
            TimerTrigger::LeadIdle { days: u32::MAX },
            TimerTrigger::RequestDueSoon { hours: u32::MAX },
            TimerTrigger::RequestOverdue { days: 200_000_000 },
            TimerTrigger::RequestAge { days: u32::MAX },
            TimerTrigger::OpenItemOverdue { days: u32::MAX },
            TimerTrigger::ContractRenewalDue { days: u32::MAX },
        ] {
            let engine = TimersOnly(vec![timer]);
            let e =
                futures::executor::block_on(tick(now, tenant, &engine, &dir, &MemStore::new(), 10))
                    .unwrap_err();
            assert_eq!(e.field(), Some("timer"), "{timer}: {e}");
        }
        // At the largest instant chrono knows, even a sane timer reaches outside the calendar: an error, no panic.
        let engine = TimersOnly(vec![TimerTrigger::RequestDueSoon { hours: 24 }]);
        let e = futures::executor::block_on(tick(
            chrono::DateTime::<chrono::Utc>::MAX_UTC,
            tenant,
            &engine,
            &dir,
            &MemStore::new(),
            10,
        ))
        .unwrap_err();
        assert_eq!(e.field(), Some("timer"), "{e}");
        // The commerce timers at the ends of the calendar: an error naming the timer, no panic.
        for (timer, at) in [
            (
                TimerTrigger::ContractRenewalDue { days: 30 },
                chrono::DateTime::<chrono::Utc>::MAX_UTC,
            ),
            (
                TimerTrigger::OpenItemOverdue { days: 0 },
                chrono::DateTime::<chrono::Utc>::MIN_UTC,
            ),
            (
                TimerTrigger::OpenItemOverdue { days: 0 },
                chrono::DateTime::<chrono::Utc>::MAX_UTC,
            ),
        ] {
            let engine = TimersOnly(vec![timer]);
            let e =
                futures::executor::block_on(tick(at, tenant, &engine, &dir, &MemStore::new(), 10))
                    .unwrap_err();
            assert_eq!(e.field(), Some("timer"), "{timer} at {at}: {e}");
        }
        let engine = TimersOnly(vec![
            TimerTrigger::LeadIdle { days: 3650 },
            TimerTrigger::RequestDueSoon { hours: 87_600 },
        ]);
        let r = futures::executor::block_on(tick(now, tenant, &engine, &dir, &MemStore::new(), 10));
        assert!(r.unwrap().firings.is_empty());
    }
}

#[cfg(test)]
mod meeting_candidates {
    use super::*;
    use crm_core::commerce::CommerceStore;
    use crm_core::conformance::model::MemStore;
    use crm_core::conformance::sales::shop_with_lead;
    use crm_core::sales::{NewMeeting, Organiser, Slot};
    use crm_core::store::Store;
    use std::sync::Arc;

    #[test]
    fn a_meeting_about_a_lead_comes_with_the_lead_and_its_partner() {
        futures::executor::block_on(async {
            let mem = Arc::new(MemStore::new());
            let (store, commerce): (Arc<dyn Store>, Arc<dyn CommerceStore>) =
                (mem.clone(), mem.clone());
            let (shop, partner, lead) =
                shop_with_lead(&store, &commerce, "Acme SRL", "Forklifts").await;
            let now = crm_core::time::Clock::now(&*shop.w.clock);
            let start = (now + chrono::Duration::hours(2)).naive_utc();
            let visit = NewMeeting {
                title: "Demo".into(),
                lead: Some(lead.id()),
                partner: None,
                organiser: Organiser::new(shop.w.agent, "Ana", "ana@example.ro"),
                attendees: Vec::new(),
                slot: Slot::new(start, start + chrono::Duration::hours(1), "UTC"),
                agenda: None,
            };
            let m = shop.cs.schedule_meeting(&shop.w.ctx, visit).await.unwrap();
            let day = now + chrono::Duration::days(1);
            let soon = TimerSource::meetings_starting(mem.as_ref(), shop.w.tenant, now, day, 10)
                .await
                .unwrap();
            assert_eq!(soon.len(), 1);
            assert_eq!(soon[0].meeting.id(), m.id());
            assert_eq!(soon[0].lead.as_ref().map(|l| l.id()), Some(lead.id()));
            assert_eq!(soon[0].partner.as_ref().map(|p| p.id()), Some(partner.id()));
        });
    }
}
