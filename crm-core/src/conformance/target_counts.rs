//! The campaign report's counts of a campaign's targets (every target, those reached, the outcomes of each kind in
//! a period), which adapters may keep in a roll-up of their own: a property test of random calls against the
//! targets as stored, and a check that `verify_rollups` finds tampered counts and `rebuild_rollups` repairs them.

use super::commerce::Shop;
use super::uplift::all_targets;
use crate::actor::Context;
use crate::commerce::reference::{self, CampaignFacts, Facts};
use crate::commerce::CampaignMeasuresExt as _;
use crate::commerce::{
    CallOutcome, Campaign, CampaignSums, CampaignTarget, Channel, CommerceStore, Criteria, Holdout,
    OutcomeKind, Period, TargetMeasure,
};
use crate::error::Error;
use crate::id::TenantId;
use crate::partner::Partner;
use crate::store::Store;
use crate::time::Clock;
use chrono::{Duration, NaiveDate};
use proptest::prelude::*;
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The target-count property test's cases per run (`CRM_PROPTEST_CASES` or `PROPTEST_CASES` raise it).
pub const TARGET_COUNT_CASES: u32 = 64;

fn ron() -> crate::money::Currency {
    crate::money::Currency::parse("RON").expect("RON")
}

/// The counts of the targets in `sums`: every target, those reached, the outcomes by kind.
fn counts_of(sums: &CampaignSums) -> (u64, u64, BTreeMap<OutcomeKind, u64>) {
    (sums.targets, sums.reached, sums.outcomes.clone())
}

/// What the reference ([`reference::campaign_sums`]) counts of the campaign's `targets` over `period` (all time
/// when `None`), computed from the targets as stored.
fn reference_counts(
    campaign: &Campaign,
    targets: &[CampaignTarget],
    period: Option<Period>,
) -> (u64, u64, BTreeMap<OutcomeKind, u64>) {
    let facts = Facts {
        partners: &[],
        documents: &[],
    };
    let cf = CampaignFacts {
        targets,
        leads: &[],
        costs: &[],
    };
    counts_of(&reference::campaign_sums(
        facts,
        cf,
        campaign.id,
        period,
        ron(),
    ))
}

/// The campaign's counts over each of `periods`, read for the campaign alone and among every campaign of the
/// tenant, equal [`reference_counts`] of its targets as stored.
async fn assert_counts_match(s: &Shop, campaign: &Campaign, periods: &[Option<Period>]) {
    let targets = all_targets(s, campaign).await;
    for period in periods {
        let want = reference_counts(campaign, &targets, *period);
        let one =
            s.cs.store()
                .campaign_sums(s.w.tenant, campaign.id, *period, ron())
                .await
                .expect("campaign sums");
        assert_eq!(counts_of(&one), want, "{} over {period:?}", campaign.name);
        let all =
            s.cs.store()
                .campaigns_sums(s.w.tenant, *period, ron())
                .await
                .expect("campaigns sums");
        let mine = all
            .iter()
            .find(|t| t.campaign == campaign.id)
            .expect("the campaign among all");
        assert_eq!(
            counts_of(&mine.sums),
            want,
            "{} among all over {period:?}",
            campaign.name
        );
    }
}

/// Launches a telemarketing campaign over every partner of the shop (each a customer), with `holdout`, worked by
/// the shop's agent.
async fn launch_calls(s: &Shop, name: &str, holdout: Option<Holdout>) -> crate::commerce::Launch {
    let mut n = s.year_campaign(name, Channel::Telemarketing);
    n.criteria = Some(Criteria::Not {
        not: Box::new(Criteria::Tag {
            tag: "nobody".into(),
        }),
    });
    let c = s.cs.create_campaign(&s.w.ctx, n).await.expect("campaign");
    s.cs.launch_campaign_with(&s.w.ctx, c.id, c.version, holdout)
        .await
        .expect("launch")
}

/// The outcome of code `code` (0 to 4, as [`OutcomeKind::code`]), a call back due a day after `now`.
fn outcome(code: u8, now: crate::time::Timestamp) -> CallOutcome {
    match code % 5 {
        0 => CallOutcome::NoAnswer,
        1 => CallOutcome::CallBack {
            at: now + Duration::days(1),
        },
        2 => CallOutcome::Interested,
        3 => CallOutcome::NotInterested,
        _ => CallOutcome::WrongContact,
    }
}

/// A random case: partners, a holdout share and seed, calls (the call's index, the outcome's code, minutes the
/// clock moves first), and periods (days from the launch day to the first, and length).
#[derive(Debug, Clone)]
struct Spec {
    partners: usize,
    holdout: (u8, u64),
    calls: Vec<(usize, u8, i64)>,
    periods: Vec<(i64, i64)>,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        1..7usize,
        (0..=50u8, any::<u64>()),
        prop::collection::vec((0..8usize, 0..5u8, 0..4000i64), 0..14),
        prop::collection::vec((-2..7i64, 0..6i64), 1..4),
    )
        .prop_map(|(partners, holdout, calls, periods)| Spec {
            partners,
            holdout,
            calls,
            periods,
        })
}

/// One case: a telemarketing campaign over the partners, launched with the holdout; each call's outcome recorded
/// by its agent after the clock moves (minutes to days, so outcomes and first reaches fall on several days, some
/// on the same); a call already finished is refused and writes nothing. The counts over all time and over each
/// period equal the reference's from the targets as stored, read alone and among all, and `verify_rollups` finds
/// nothing.
async fn run_case(store: Arc<dyn Store>, commerce: Arc<dyn CommerceStore>, spec: Spec) {
    let s = Shop::new(&store, &commerce).await;
    for i in 0..spec.partners {
        s.customer(&format!("Customer {i}")).await;
    }
    let (share, seed) = spec.holdout;
    let holdout = Holdout::new(Decimal::from(share), seed).expect("a share");
    let launch = launch_calls(&s, "Calls", Some(holdout)).await;
    let launched = s.w.clock.now().date_naive();
    let agent = Context::user(s.w.tenant, s.w.agent);
    for (i, code, minutes) in &spec.calls {
        let Some(call) = launch.calls.get(i % launch.calls.len().max(1)) else {
            break;
        };
        s.w.clock.advance(Duration::minutes(*minutes));
        let now = s.w.clock.now();
        match s
            .cs
            .record_call_outcome(&agent, call.id, outcome(*code, now))
            .await
        {
            Ok(_) => {}
            // A finished call is refused before anything is written.
            Err(Error::Invalid { field, .. }) => assert_eq!(field, "request"),
            Err(e) => panic!("recording a call's outcome: {e}"),
        }
    }
    let mut periods = vec![None];
    for (from, len) in &spec.periods {
        let first = launched + Duration::days(*from);
        periods.push(Some(
            Period::new(first, first + Duration::days(*len)).expect("a period"),
        ));
    }
    assert_counts_match(&s, &launch.campaign, &periods).await;
    let check = s.cs.verify_rollups(s.w.tenant).await.expect("verify");
    assert!(check.is_clean(), "{check:?}");
}

/// The target-count property test: in each case a telemarketing campaign over random partners, launched with a
/// random holdout, and random calls' outcomes recorded as the clock moves (minutes to days); the counts over all
/// time and over random periods around the calls equal the reference's from the targets as stored, read alone
/// and among all, and `verify_rollups` finds nothing.
pub fn run_target_count_properties(
    store: Arc<dyn Store>,
    commerce: Arc<dyn CommerceStore>,
    block_on: &super::differential::BlockOn<'_>,
    cases: u32,
) {
    super::differential::run_cases("target count", &spec(), cases, block_on, |spec| {
        let (store, commerce) = (store.clone(), commerce.clone());
        Box::pin(async move { run_case(store, commerce, spec).await })
    });
}

/// Three customers targeted by a telemarketing campaign (none held out): the first reached on the launch day, 2
/// March 2026, and asked to call back, then interested a day later; the second not interested on the launch day; the third
/// never called. Then `tamper` (the adapter's own statements, on the tenant) adds 2 to the stored count of targets
/// and deletes the stored counts of the targets reached. The report then says 5 targets and none reached (so it
/// reads the counts); `verify_rollups` lists the two differences with both sides (the targets' count, 5 stored
/// and 3 from the targets; the reached on the launch day, none stored and 2 from the targets); a rebuild repairs
/// them and reports what it repaired, and the counts equal the reference again.
pub async fn check_target_count_repair<F>(
    store: &Arc<dyn Store>,
    commerce: &Arc<dyn CommerceStore>,
    tamper: F,
) where
    F: Fn(TenantId) -> futures::future::BoxFuture<'static, ()>,
{
    let s = Shop::new(store, commerce).await;
    let partners: Vec<Partner> = {
        let mut out = Vec::new();
        for name in ["Acme", "Beta", "Gamma"] {
            out.push(s.customer(name).await);
        }
        out
    };
    let launch = launch_calls(&s, "Calls", None).await;
    assert_eq!(launch.calls.len(), partners.len());
    let launched = s.w.clock.now().date_naive();
    assert_eq!(
        launched,
        NaiveDate::from_ymd_opt(2026, 3, 2).expect("a day")
    );
    let agent = Context::user(s.w.tenant, s.w.agent);
    let call = |i: usize| launch.calls[i].id;
    let back = s.w.clock.now() + Duration::days(1);
    for (i, o) in [
        (0, CallOutcome::CallBack { at: back }),
        (1, CallOutcome::NotInterested),
    ] {
        s.cs.record_call_outcome(&agent, call(i), o)
            .await
            .expect("outcome");
    }
    s.w.clock.advance(Duration::days(1));
    s.cs.record_call_outcome(&agent, call(0), CallOutcome::Interested)
        .await
        .expect("interested");
    let day = |d: NaiveDate| Some(Period::new(d, d).expect("a day"));
    let next = launched + Duration::days(1);
    let periods = [None, day(launched), day(next)];
    assert_counts_match(&s, &launch.campaign, &periods).await;
    let sums = |period| {
        let (cs, tenant, id) = (s.cs.clone(), s.w.tenant, launch.campaign.id);
        async move {
            let got = cs
                .store()
                .campaign_sums(tenant, id, period, ron())
                .await
                .expect("sums");
            counts_of(&got)
        }
    };
    let outcomes = |pairs: &[(OutcomeKind, u64)]| pairs.iter().copied().collect::<BTreeMap<_, _>>();
    assert_eq!(
        sums(day(launched)).await,
        (3, 2, outcomes(&[(OutcomeKind::NotInterested, 1)])),
        "the first is reached on the launch day, its latest outcome the next"
    );
    assert_eq!(
        sums(day(next)).await,
        (3, 0, outcomes(&[(OutcomeKind::Interested, 1)]))
    );
    assert!(s.cs.verify_rollups(s.w.tenant).await.unwrap().is_clean());

    tamper(s.w.tenant).await;
    assert_eq!(
        sums(None).await.0,
        5,
        "the targets' count is read from the roll-up"
    );
    assert_eq!(sums(None).await.1, 0, "so is the count of those reached");
    let check = s.cs.verify_rollups(s.w.tenant).await.expect("verify");
    assert!(!check.rebuilt && !check.more);
    assert!(
        check.differences.is_empty() && check.campaigns.is_empty() && check.documents.is_empty(),
        "{check:?}"
    );
    let got: Vec<_> = check
        .targets
        .iter()
        .map(|d| (d.campaign, d.measure, d.day, d.stored, d.targets))
        .collect();
    let c = launch.campaign.id;
    assert_eq!(
        got,
        vec![
            (c, TargetMeasure::Targets, None, Some(5), Some(3)),
            (c, TargetMeasure::Reached, Some(launched), None, Some(2)),
        ],
        "{check:?}"
    );
    let rebuilt = s.cs.rebuild_rollups(s.w.tenant).await.expect("rebuild");
    assert!(rebuilt.rebuilt);
    assert_eq!(
        rebuilt.targets, check.targets,
        "a rebuild reports what it repaired"
    );
    assert!(s.cs.verify_rollups(s.w.tenant).await.unwrap().is_clean());
    assert_counts_match(&s, &launch.campaign, &periods).await;
}
