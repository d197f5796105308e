//! The differential property test: random operation sequences through the service, over a store that forwards
//! every call to the adapter and to the reference model and fails on the first difference.

use super::checks::World;
use super::model::MemStore;
use crate::error::{Error, Result};
use crate::event::{CommentTarget, DomainEvent, RequestStatus};
use crate::id::{LeadId, PartnerId, PipelineId, RequestId, TenantId, UserId};
use crate::lead::{Lead, LeadCommand, LeadPatch, NewLead, StatusKind};
use crate::money::Money;
use crate::partner::NewPartner;
use crate::request::{Comment, NewRequest, Request, RequestCommand};
use crate::store::StoreExt;
use crate::store::{
    Board, ChangeSet, Funnel, Key, LeadQuery, LeadSort, Page, PageRequest, Record, RequestQuery,
    Store, TimelineOf, Write,
};
use crate::time::{Clock, Timestamp};
use async_trait::async_trait;
use chrono::Duration;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Cases the differential property test runs by default (override with `CRM_PROPTEST_CASES`).
pub const DEFAULT_CASES: u32 = 48;

/// Whether two errors are the same as far as a caller can tell: same variant, same field / entity / versions.
pub fn same_error(a: &Error, b: &Error) -> bool {
    match (a, b) {
        (Error::Invalid { field: f1, .. }, Error::Invalid { field: f2, .. }) => f1 == f2,
        (Error::NotFound { entity: e1, .. }, Error::NotFound { entity: e2, .. }) => e1 == e2,
        (Error::AlreadyExists { .. }, Error::AlreadyExists { .. }) => true,
        (
            Error::Conflict {
                expected: e1,
                actual: a1,
                ..
            },
            Error::Conflict {
                expected: e2,
                actual: a2,
                ..
            },
        ) => (e1, a1) == (e2, a2),
        (Error::Transition(t1), Error::Transition(t2)) => t1 == t2,
        _ => false,
    }
}

/// A store that forwards every call to an adapter and to the reference model, and panics on any difference.
#[derive(Debug)]
pub struct Differential {
    real: Arc<dyn Store>,
    model: MemStore,
}

impl Differential {
    /// Compares `real` against a fresh reference model.
    pub fn new(real: Arc<dyn Store>) -> Self {
        Self {
            real,
            model: MemStore::new(),
        }
    }
}

fn agree<T: PartialEq + Debug>(what: &str, real: Result<T>, model: Result<T>) -> Result<T> {
    match (&real, &model) {
        (Ok(r), Ok(m)) if r == m => {}
        (Err(r), Err(m)) if same_error(r, m) => {}
        _ => panic!("adapter and reference model disagree on {what}:\n adapter: {real:?}\n model:   {model:?}"),
    }
    real
}

/// `impl Store for Differential`: the `own` methods with their bodies as written, and each `agree` method forwarded
/// to the adapter and then to the model, their answers compared by [`agree`] (named after the method, with the
/// `showing` argument). Both are declared without `async` and `Result`: the arguments (`own` ones with `&self`), then
/// the `Ok` type.
macro_rules! differential_store {
    (
        own { $(fn $own:ident(&$me:ident $(, $own_arg:ident: $own_ty:ty)*) -> $own_ret:ty $body:block)* }
        agree { $(fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty $(, showing $shown:ident)?;)* }
    ) => {
        /// Forwards every method to both stores (so it must implement every one).
        #[async_trait]
        #[deny(clippy::missing_trait_methods)]
        impl Store for Differential {
            $(
                async fn $own(&$me $(, $own_arg: $own_ty)*) -> Result<$own_ret> $body
            )*
            $(
                async fn $name(&self, $($arg: $ty),*) -> Result<$ret> {
                    let what = stringify!($name).to_string() $(+ &format!(" {:?}", $shown))?;
                    agree(
                        &what,
                        self.real.$name($($arg),*).await,
                        self.model.$name($($arg),*).await,
                    )
                }
            )*
        }
    };
}

differential_store! {
    own {
        fn commit(&self, tenant: TenantId, changes: ChangeSet) -> () {
            let m = self.model.commit(tenant, changes.clone()).await;
            let r = self.real.commit(tenant, changes).await;
            agree("commit", r, m)
        }
        fn ingest(&self, tenant: TenantId, changes: ChangeSet) -> u64 {
            let m = self.model.ingest(tenant, changes.clone()).await;
            let r = self.real.ingest(tenant, changes).await;
            agree("ingest", r, m)
        }
        fn fetch(&self, tenant: TenantId, key: &Key) -> Vec<Record> {
            // Links come in no particular order: compared as sets.
            let sorted = |r: Result<Vec<Record>>| {
                r.map(|mut v| {
                    if matches!(key, Key::LeadLinks(_) | Key::PartnerLinks(_)) {
                        v.sort_by_key(|x| match x {
                            Record::Link(l) => Some(*l),
                            _ => None,
                        });
                    }
                    v
                })
            };
            let r = sorted(self.real.fetch(tenant, key).await);
            let m = sorted(self.model.fetch(tenant, key).await);
            agree(&format!("fetch {key:?}"), r, m)
        }
        fn events_since(&self, tenant: TenantId, after: u64, limit: u32) -> Vec<(u64, DomainEvent)> {
            // Positions are adapter-specific (a global sequence); compare the events and require increasing positions.
            let r = self.real.events_since(tenant, after, limit).await;
            let m = self.model.events_since(tenant, 0, limit).await;
            if let (Ok(r), Ok(m)) = (&r, &m) {
                if after == 0 {
                    let re: Vec<_> = r.iter().map(|(_, e)| e).collect();
                    let me: Vec<_> = m.iter().map(|(_, e)| e).collect();
                    assert_eq!(
                        re, me,
                        "adapter and reference model disagree on events_since"
                    );
                }
                assert!(
                    r.windows(2).all(|w| w[0].0 < w[1].0),
                    "event positions must increase"
                );
            }
            r
        }
    }
    agree {
        fn query_leads(tenant: TenantId, q: &LeadQuery) -> Page<Lead>, showing q;
        fn board(tenant: TenantId, p: PipelineId) -> Board;
        fn funnel(tenant: TenantId, p: PipelineId, period: Option<(Timestamp, Timestamp)>) -> Funnel;
        fn query_requests(tenant: TenantId, q: &RequestQuery) -> Page<Request>, showing q;
        fn comments(tenant: TenantId, t: CommentTarget, p: &PageRequest) -> Page<Comment>;
        fn timeline(tenant: TenantId, of: TimelineOf, p: &PageRequest) -> Page<DomainEvent>;
    }
}

/// One random operation.
#[derive(Debug, Clone)]
pub enum Op {
    /// Enter a lead (for a new partner, or an existing one by index).
    Enter {
        partner: Option<usize>,
        title: u8,
        revenue: Option<(i64, bool)>,
        owner: u8,
        tag: Option<u8>,
        probability: Option<u8>,
        /// The expected close date, in days from today.
        close: Option<i8>,
    },
    /// Move a lead to a stage (by index in the pipeline).
    Move { lead: usize, stage: usize },
    /// Win.
    Win { lead: usize },
    /// Lose, with or without a valid reason.
    Lose { lead: usize, with_reason: bool },
    /// Reopen.
    Reopen { lead: usize },
    /// Edit fields, possibly from a stale version.
    Edit {
        lead: usize,
        revenue: Option<i64>,
        probability: Option<u8>,
        owner: u8,
        stale: bool,
    },
    /// Two writers change the same lead from the same version, directly on the store.
    Race { lead: usize },
    /// Comment on a lead.
    Comment { lead: usize },
    /// Open a request, due in `due_hours` (negative: in the past → refused).
    OpenRequest {
        lead: usize,
        assignee: u8,
        due_hours: Option<i64>,
        kind: bool,
    },
    /// Change a request's status.
    RequestStatus { request: usize, status: u8 },
    /// Merge one lead into another (refused unless both are live leads of one partner, the merged one not won
    /// into a survivor that is not), and maybe undo it at once.
    MergeLeads {
        survivor: usize,
        merged: usize,
        undo: bool,
    },
    /// Score a lead (above 100 is refused; an equal score changes nothing).
    Score { lead: usize, value: u8, reasons: u8 },
    /// Advance the clock.
    Tick { minutes: u16 },
    /// Read everything back through a random query (compared page by page).
    Query {
        status: Option<u8>,
        owner: Option<u8>,
        tag: Option<u8>,
        text: Option<u8>,
        sort: u8,
        page: u8,
        /// The timers' filters: leads changed and requests opened more than this many minutes ago, requests due
        /// within this many minutes of now.
        cutoff: Option<u16>,
        /// The timers' filter on the expected close date: before this many days from today.
        close: Option<i8>,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (proptest::option::of(0usize..8), 0u8..6, proptest::option::of((-5i64..2_000_000, any::<bool>())), 0u8..3, proptest::option::of(0u8..3), proptest::option::weighted(0.2, 0u8..110), proptest::option::of(-5i8..5))
            .prop_map(|(partner, title, revenue, owner, tag, probability, close)| Op::Enter { partner, title, revenue, owner, tag, probability, close }),
        3 => (0usize..16, 0usize..6).prop_map(|(lead, stage)| Op::Move { lead, stage }),
        1 => (0usize..16).prop_map(|lead| Op::Win { lead }),
        1 => (0usize..16, any::<bool>()).prop_map(|(lead, with_reason)| Op::Lose { lead, with_reason }),
        1 => (0usize..16).prop_map(|lead| Op::Reopen { lead }),
        2 => (0usize..16, proptest::option::of(0i64..1_000_000), proptest::option::of(0u8..105), 0u8..3, proptest::bool::weighted(0.2))
            .prop_map(|(lead, revenue, probability, owner, stale)| Op::Edit { lead, revenue, probability, owner, stale }),
        1 => (0usize..16).prop_map(|lead| Op::Race { lead }),
        1 => (0usize..16).prop_map(|lead| Op::Comment { lead }),
        2 => (0usize..16, 0u8..3, proptest::option::of(-2i64..96), any::<bool>())
            .prop_map(|(lead, assignee, due_hours, kind)| Op::OpenRequest { lead, assignee, due_hours, kind }),
        2 => (0usize..16, 0u8..4).prop_map(|(request, status)| Op::RequestStatus { request, status }),
        2 => (0usize..16, 0usize..16, proptest::bool::weighted(0.3))
            .prop_map(|(survivor, merged, undo)| Op::MergeLeads { survivor, merged, undo }),
        2 => (0usize..16, 0u8..104, 0u8..3).prop_map(|(lead, value, reasons)| Op::Score { lead, value, reasons }),
        2 => (0u16..600).prop_map(|minutes| Op::Tick { minutes }),
        2 => (proptest::option::of(0u8..4), proptest::option::of(0u8..3), proptest::option::of(0u8..3), proptest::option::of(0u8..4), 0u8..5, 1u8..6, proptest::option::of(0u16..900), proptest::option::of(-5i8..6))
            .prop_map(|(status, owner, tag, text, sort, page, cutoff, close)| Op::Query { status, owner, tag, text, sort, page, cutoff, close }),
    ]
}

/// Drives a future to completion on the adapter's runtime.
pub type BlockOn<'a> = dyn Fn(Pin<Box<dyn Future<Output = ()> + 'a>>) + 'a;

/// Runs `cases` cases of `strategy` through `case`, each driven by `block_on`, with no failure persistence (the
/// suite runs in the adapters' crates), and panics naming `name` and the minimal failing input on the first failure.
pub fn run_cases<S: Strategy>(
    name: &str,
    strategy: &S,
    cases: u32,
    block_on: &BlockOn<'_>,
    case: impl Fn(S::Value) -> Pin<Box<dyn Future<Output = ()>>>,
) {
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(strategy, |value| {
        block_on(case(value));
        Ok(())
    });
    if let Err(e) = result {
        panic!("{name} property test failed: {e}");
    }
    eprintln!("{name} property test: {cases} cases passed");
}

/// Runs the differential property test: `cases` random sequences of up to 40 operations.
pub fn run_differential(store: Arc<dyn Store>, block_on: &BlockOn<'_>, cases: u32) {
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&proptest::collection::vec(op(), 1..40), |ops| {
        let store = store.clone();
        block_on(Box::pin(async move { run_ops(store, ops).await }));
        Ok(())
    });
    if let Err(e) = result {
        panic!("differential property test failed: {e}");
    }
    eprintln!("differential property test: {cases} cases passed");
}

async fn all_pages<T>(
    mut page: PageRequest,
    mut f: impl FnMut(PageRequest) -> Pin<Box<dyn Future<Output = Result<Page<T>>> + Send>>,
) -> Vec<T> {
    let mut out = Vec::new();
    loop {
        let p = f(page.clone()).await.expect("query");
        out.extend(p.items);
        match p.next {
            Some(c) => page.after = Some(c),
            None => return out,
        }
    }
}

async fn run_ops(real: Arc<dyn Store>, ops: Vec<Op>) {
    let diff: Arc<dyn Store> = Arc::new(Differential::new(real));
    let w = World::new(&diff).await;
    let users = [w.agent, w.manager, UserId::new()];
    let tags = ["vip", "export", "retail"];
    let texts = ["lead 1", "partner", "SRL", "%"];
    let mut leads: Vec<LeadId> = Vec::new();
    let mut partners: Vec<PartnerId> = Vec::new();
    let mut requests: Vec<RequestId> = Vec::new();
    let pick = |v: &Vec<LeadId>, i: usize| {
        if v.is_empty() {
            None
        } else {
            Some(v[i % v.len()])
        }
    };
    for op in ops {
        match op {
            Op::Enter {
                partner,
                title,
                revenue,
                owner,
                tag,
                probability,
                close,
            } => {
                let lp = match partner.filter(|_| !partners.is_empty()) {
                    Some(i) => crate::lead::LeadPartner::Existing {
                        id: partners[i % partners.len()],
                    },
                    None => crate::lead::LeadPartner::New {
                        partner: NewPartner::company(format!("Partner {title} SRL")),
                    },
                };
                let mut n = NewLead::new(lp, format!("Lead {title}"));
                n.expected_revenue = revenue.and_then(|(units, ron)| {
                    Some(Money::from_units(
                        units,
                        crate::money::Currency::parse(if ron { "RON" } else { "EUR" }).ok()?,
                    ))
                });
                n.owner = Some(users[owner as usize]);
                n.probability = probability;
                n.expected_close =
                    close.map(|d| w.clock.now().date_naive() + Duration::days(d.into()));
                if let Some(t) = tag {
                    n.tags.insert(tags[t as usize].into());
                }
                if let Ok(e) = w.crm.enter_lead(&w.ctx, n).await {
                    leads.push(e.record.id);
                    if !partners.contains(&e.record.partner) {
                        partners.push(e.record.partner);
                    }
                }
            }
            Op::Move { lead, stage } => {
                if let Some(id) = pick(&leads, lead) {
                    let _ = w
                        .act(
                            id,
                            LeadCommand::MoveTo {
                                stage: w.pipeline.stages[stage % w.pipeline.stages.len()].id,
                            },
                        )
                        .await;
                }
            }
            Op::Win { lead } => {
                if let Some(id) = pick(&leads, lead) {
                    let _ = w.act(id, LeadCommand::Win).await;
                }
            }
            Op::Lose { lead, with_reason } => {
                if let Some(id) = pick(&leads, lead) {
                    let reason = with_reason.then(|| w.reasons[lead % w.reasons.len()].id);
                    let _ = w
                        .act(
                            id,
                            LeadCommand::Lose {
                                reason,
                                competitor: None,
                                note: Some("np".into()),
                            },
                        )
                        .await;
                }
            }
            Op::Reopen { lead } => {
                if let Some(id) = pick(&leads, lead) {
                    let _ = w.act(id, LeadCommand::Reopen { stage: None }).await;
                }
            }
            Op::Edit {
                lead,
                revenue,
                probability,
                owner,
                stale,
            } => {
                if let Some(id) = pick(&leads, lead) {
                    let l = w.crm.lead(w.tenant, id).await.expect("lead exists");
                    let patch = LeadPatch {
                        expected_revenue: revenue.map(|u| {
                            Some(Money::from_units(
                                u,
                                crate::money::Currency::parse("EUR").unwrap(),
                            ))
                        }),
                        probability: probability.map(Some),
                        owner: Some(Some(users[owner as usize])),
                        ..Default::default()
                    };
                    let version = if stale {
                        l.version.saturating_sub(1)
                    } else {
                        l.version
                    };
                    let r = w
                        .crm
                        .transition(&w.ctx, id, version, LeadCommand::Update(patch))
                        .await;
                    if stale && l.version > 1 {
                        assert!(
                            matches!(r, Err(Error::Conflict { .. })),
                            "a stale edit must conflict: {r:?}"
                        );
                    }
                }
            }
            Op::Race { lead } => {
                if let Some(id) = pick(&leads, lead) {
                    let l = w.crm.lead(w.tenant, id).await.expect("lead exists");
                    let mut a = l.clone();
                    a.title = format!("{} (a)", l.title);
                    a.version += 1;
                    let mut b = l.clone();
                    b.title = format!("{} (b)", l.title);
                    b.version += 1;
                    let mut cs = ChangeSet::new();
                    cs.push(Write::UpdateLead {
                        lead: a.clone(),
                        expected_version: l.version,
                    });
                    w.store()
                        .commit(w.tenant, cs)
                        .await
                        .expect("first writer wins");
                    let mut cs = ChangeSet::new();
                    cs.push(Write::UpdateLead {
                        lead: b,
                        expected_version: l.version,
                    });
                    let r = w.store().commit(w.tenant, cs).await;
                    assert!(
                        matches!(r, Err(Error::Conflict { .. })),
                        "second writer must conflict: {r:?}"
                    );
                    assert_eq!(w.crm.lead(w.tenant, id).await.unwrap(), a);
                }
            }
            Op::MergeLeads {
                survivor,
                merged,
                undo,
            } => {
                // The merged lead: the `merged`-th other lead of the survivor's partner, else any lead (refused).
                let mut of_partner = Vec::new();
                if let Some(s) = pick(&leads, survivor) {
                    let p = diff.lead(w.tenant, s).await.expect("survivor").partner;
                    for l in leads.iter().filter(|l| **l != s) {
                        if diff.lead(w.tenant, *l).await.expect("lead").partner == p {
                            of_partner.push(*l);
                        }
                    }
                }
                let m = pick(&of_partner, merged).or_else(|| pick(&leads, merged));
                if let (Some(s), Some(m)) = (pick(&leads, survivor), m) {
                    let none = Default::default();
                    if let Ok(plan) = w.crm.plan_lead_merge(w.tenant, s, &[m], &none).await {
                        let done = w.crm.merge_leads(&w.ctx, &plan).await;
                        let journal = done.expect("a fresh plan applies").record;
                        if undo {
                            w.crm
                                .undo_lead_merge(&w.ctx, journal.id())
                                .await
                                .expect("an undo right away applies");
                        }
                    }
                }
            }
            Op::Comment { lead } => {
                if let Some(id) = pick(&leads, lead) {
                    w.crm
                        .comment(&w.ctx, CommentTarget::Lead(id), "a comment")
                        .await
                        .expect("comment");
                }
            }
            Op::OpenRequest {
                lead,
                assignee,
                due_hours,
                kind,
            } => {
                if let Some(id) = pick(&leads, lead) {
                    let mut r = NewRequest::on_lead(id, "Follow up", users[assignee as usize]);
                    r.due = due_hours.map(|h| w.clock.now() + Duration::hours(h));
                    if kind {
                        r.kind = Some("quotation".into());
                    }
                    if let Ok(o) = w.crm.open_request(&w.ctx, r).await {
                        requests.push(o.record.id);
                    }
                }
            }
            Op::RequestStatus { request, status } => {
                if !requests.is_empty() {
                    let id = requests[request % requests.len()];
                    let r = w.crm.request(w.tenant, id).await.expect("request exists");
                    let status = [
                        RequestStatus::Open,
                        RequestStatus::InProgress,
                        RequestStatus::Done,
                        RequestStatus::Cancelled,
                    ][status as usize];
                    let _ = w
                        .crm
                        .change_request(&w.ctx, id, r.version, RequestCommand::SetStatus { status })
                        .await;
                }
            }
            Op::Score {
                lead,
                value,
                reasons,
            } => {
                if let Some(id) = pick(&leads, lead) {
                    let score = crate::lead::LeadScore {
                        value,
                        reasons: (0..reasons)
                            .map(|i| crate::lead::ScoreReason {
                                feature: format!("feature {i}"),
                                contribution: rust_decimal::Decimal::new(i64::from(value) - 50, 2),
                            })
                            .collect(),
                        scored_at: w.clock.now(),
                    };
                    let _ = w.act(id, LeadCommand::Score(score)).await;
                }
            }
            Op::Tick { minutes } => w.clock.advance(Duration::minutes(minutes as i64)),
            Op::Query {
                status,
                owner,
                tag,
                text,
                sort,
                page,
                cutoff,
                close,
            } => {
                let now = w.clock.now();
                let ago = cutoff.map(|m| now - Duration::minutes(m.into()));
                let q = LeadQuery {
                    status: status.map(|s| {
                        [
                            StatusKind::Open,
                            StatusKind::Won,
                            StatusKind::Lost,
                            StatusKind::Merged,
                        ][s as usize]
                    }),
                    owner: owner.map(|o| users[o as usize]),
                    tag: tag.map(|t| tags[t as usize].to_string()),
                    text: text.map(|t| texts[t as usize].to_string()),
                    sort: [
                        LeadSort::CreatedDesc,
                        LeadSort::CreatedAsc,
                        LeadSort::UpdatedDesc,
                        LeadSort::ExpectedRevenueDesc,
                        LeadSort::ScoreDesc,
                    ][sort as usize],
                    page: PageRequest::first(page as u32),
                    updated_before: ago,
                    close_before: close.map(|d| now.date_naive() + Duration::days(d.into())),
                    ..Default::default()
                };
                let s = diff.clone();
                let t = w.tenant;
                all_pages(q.page.clone(), move |p| {
                    let s = s.clone();
                    let mut q = q.clone();
                    q.page = p;
                    Box::pin(async move { s.query_leads(t, &q).await })
                })
                .await;
                let s = diff.clone();
                let a = users[owner.unwrap_or(0) as usize];
                all_pages(PageRequest::first(page as u32), move |p| {
                    let s = s.clone();
                    Box::pin(async move {
                        s.query_requests(
                            t,
                            &RequestQuery {
                                assignee: Some(a),
                                active_only: true,
                                page: p,
                                opened_before: ago,
                                due_after: ago,
                                due_before: cutoff.map(|m| now + Duration::minutes(m.into())),
                                ..Default::default()
                            },
                        )
                        .await
                    })
                })
                .await;
            }
        }
    }
    // Read everything back through the differential store.
    diff.board(w.tenant, w.pipeline.id).await.expect("board");
    diff.funnel(w.tenant, w.pipeline.id, None)
        .await
        .expect("funnel");
    diff.events_since(w.tenant, 0, 10_000)
        .await
        .expect("events");
    let all = PageRequest::first(1000);
    for id in &leads {
        diff.lead(w.tenant, *id).await.expect("lead");
        diff.stage_history(w.tenant, *id).await.expect("history");
        let on = CommentTarget::Lead(*id);
        diff.comments(w.tenant, on, &all).await.expect("comments");
        diff.fetch(w.tenant, &Key::LeadLinks(*id))
            .await
            .expect("links");
        let all = diff.fetch(w.tenant, &Key::LeadWithPipeline(*id)).await;
        let all = all.expect("lead, pipeline and partner");
        // The partner's subject key follows when it has one (the events about it were sealed under it).
        let key_of = |a: &crate::partner::Partner, rest: &[Record]| match rest {
            [] => true,
            [Record::SubjectKey(k)] => k.subject == *a.id.as_uuid(),
            _ => false,
        };
        let shape = match all.as_slice() {
            [Record::Lead(l), Record::Pipeline(p), Record::Partner(a), rest @ ..] => {
                l.id == *id && p.id == l.pipeline && a.id == l.partner && key_of(a, rest)
            }
            _ => false,
        };
        assert!(shape, "{all:?}");
    }
    let lead_timelines = leads.iter().map(|id| TimelineOf::Lead(*id));
    for of in lead_timelines.chain(partners.iter().map(|id| TimelineOf::Partner(*id))) {
        diff.timeline(w.tenant, of, &all).await.expect("timeline");
    }
    for id in &requests {
        diff.request(w.tenant, *id).await.expect("request");
    }
}
