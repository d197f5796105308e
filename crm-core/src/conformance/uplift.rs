//! Campaign holdouts and uplift: the launch draws a reproducible holdout that gets nothing, and the uplift report
//! compares the targets' outcomes with the holdout's over a window, on data with a planted effect.

use super::commerce::Shop;
use crate::commerce::reference::{self, Facts};
use crate::commerce::{
    Campaign, CampaignMeasuresExt as _, CampaignTarget, Channel, CommerceStore, Confidence,
    Criteria, Document, Holdout, Item, NewDocument, OutcomeQuery, Period,
};
use crate::error::Error;
use crate::event::EventKind;
use crate::money::Currency;
use crate::partner::{NewPartner, Partner, PartnerRole};
use crate::store::{PageRequest, Store};
use crate::time::Clock;
use chrono::{Duration, NaiveDate};
use rust_decimal::Decimal;
use std::collections::BTreeSet;
use std::sync::Arc;

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("a day")
}

fn ron() -> Currency {
    Currency::parse("RON").expect("RON")
}

/// SplitMix64: the planted outcomes' draws, the same on every run and adapter.
struct Draws(u64);

impl Draws {
    /// Whether the next draw falls below `per_mille` ‰.
    fn below(&mut self, per_mille: u64) -> bool {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % 1000 < per_mille
    }
}

/// Every target of a campaign, read page by page.
pub(super) async fn all_targets(s: &Shop, c: &Campaign) -> Vec<CampaignTarget> {
    let mut out = Vec::new();
    let mut page = PageRequest::first(100);
    loop {
        let p =
            s.cs.store()
                .campaign_targets(s.w.tenant, c.id(), &page)
                .await
                .expect("targets");
        out.extend(p.items);
        match p.next {
            Some(after) => page.after = Some(after),
            None => return out,
        }
    }
}

/// A holdout of 25 % is drawn reproducibly at launch (the same partners [`Holdout::draw`] picks, whatever the
/// order), gets no call, is left out of the progress and the campaign report, and is counted in the launch event.
/// Over a window starting the launch day and ending mid-June (partial months at both edges, whole months from the
/// roll-ups), with purchases planted at 60 % of the targets and 20 % of the holdout (a seeded draw per partner
/// of each group, so the realised counts are the same on every run and adapter), the adapter's sums equal the reference's, the reactivation uplift's interval holds the
/// planted 0.4 and not 0, the promoted product's uplift is measured, and the incremental gross profit is the
/// targets' less the holdout's per partner scaled to the targets. Documents before the launch, after the window,
/// credited back, or of partners outside the campaign count nowhere. A campaign launched without a holdout reports
/// no uplift. Bad input: a share over 50 %, a window before the launch, a campaign never launched, a promoted item
/// listed twice or unknown, a campaign with no targets.
pub async fn check_campaign_uplift(store: &Arc<dyn Store>, commerce: &Arc<dyn CommerceStore>) {
    let s = Shop::new(store, commerce).await;
    let ctx = s.w.ctx.clone();
    let launch_day = s.w.clock.now().date_naive();
    let mut partners: Vec<Partner> = Vec::new();
    for i in 0..200 {
        let mut n = NewPartner::company(format!("Lapsed {i:03}")).with_role(PartnerRole::Customer);
        n.tags.insert("winback".into());
        let p =
            s.w.crm
                .create_partner(&ctx, n)
                .await
                .expect("partner")
                .record;
        partners.push(p);
    }
    let outsider = s.customer("Not targeted").await;
    let winback = Criteria::Tag {
        tag: "winback".into(),
    };
    let mut input = s.year_campaign("Spring winback", Channel::Telemarketing);
    input.criteria = Some(winback.clone());
    let c = s.cs.create_campaign(&ctx, input).await.expect("campaign");
    // Refused before anything is written: a share outside 0–50 %, in code and as JSON.
    for share in [Decimal::from(51), Decimal::new(-1, 1)] {
        let e = Holdout::new(share, 1).unwrap_err();
        assert_eq!(e.field(), Some("holdout.share"), "{e}");
    }
    assert!(serde_json::from_str::<Holdout>(r#"{"share_pct":"75","seed":1}"#).is_err());
    let window = Period::new(launch_day, day(2026, 6, 15)).unwrap();
    // Never launched: no uplift.
    let e =
        s.cs.campaign_uplift(s.w.tenant, c.id(), window, &[], Confidence::P95)
            .await
            .unwrap_err();
    assert_eq!(e.field(), Some("status"), "{e}");

    let holdout = Holdout::new(Decimal::from(25), 20_261_202).unwrap();
    let launch =
        s.cs.launch_campaign_with(&ctx, c.id(), c.version(), Some(holdout))
            .await
            .expect("launch");
    let ids: Vec<_> = partners.iter().map(|p| p.id).collect();
    let mut reversed = ids.clone();
    reversed.reverse();
    let drawn = holdout.draw(&reversed);
    assert_eq!(drawn.len(), 50);
    assert_eq!(launch.campaign.target_count(), 150);
    assert_eq!(launch.campaign.holdout_count(), 50);
    assert_eq!(launch.campaign.holdout(), Some(&holdout));
    assert_eq!(launch.calls.len(), 150, "the holdout gets no call");
    let stored = all_targets(&s, &launch.campaign).await;
    assert_eq!(stored.len(), 200);
    let held: BTreeSet<_> = stored
        .iter()
        .filter(|t| t.holdout())
        .map(|t| t.partner())
        .collect();
    assert_eq!(held, drawn, "the stored holdout is the reproducible draw");
    assert!(stored.iter().all(|t| t.holdout() == t.request().is_none()));
    let progress = s.cs.progress(s.w.tenant, c.id()).await.expect("progress");
    assert_eq!(progress[0].targets, 150, "progress counts the targets only");
    let report =
        s.cs.campaign_report(s.w.tenant, c.id(), None)
            .await
            .expect("report");
    assert_eq!(report.targets, 150);
    let launched =
        s.w.store()
            .events_since(s.w.tenant, 0, 10_000)
            .await
            .expect("events")
            .into_iter()
            .find_map(|(_, e)| match e.kind {
                EventKind::CampaignLaunched {
                    targets, held_out, ..
                } => Some((targets, held_out)),
                _ => None,
            });
    assert_eq!(launched, Some((150, 50)));

    // The planted effect: 60 % of the targets buy, 20 % of the holdout; the targets' buyers buy the promoted
    // product 0, the holdout's half product 0 and half product 2 (not promoted, outside the category).
    // Two streams, one per group, each drawn in the group's own order: the realised counts depend on the seeds
    // and group sizes only, never on the random ids that decide who is held out.
    let (mut target_draws, mut holdout_draws) = (Draws(1), Draws(2));
    let mut docs: Vec<Document> = Vec::new();
    let dates = [
        day(2026, 3, 20),
        day(2026, 4, 10),
        day(2026, 5, 31),
        day(2026, 6, 15),
    ];
    let (mut targets_n, mut holdout_n) = (0u64, 0u64);
    for (i, p) in partners.iter().enumerate() {
        let in_holdout = drawn.contains(&p.id);
        let buys = if in_holdout {
            holdout_draws.below(200)
        } else {
            target_draws.below(600)
        };
        let on = dates[i % dates.len()];
        // Before the launch: never counted.
        if i % 7 == 0 {
            docs.push(
                s.record(NewDocument::invoice(
                    &format!("OLD-{i}"),
                    p.id,
                    day(2026, 2, 1),
                    "RON",
                    vec![s.line(0, "5", "100", "60")],
                ))
                .await,
            );
        }
        if buys {
            let product = if in_holdout && i % 2 == 0 { 2 } else { 0 };
            docs.push(
                s.record(NewDocument::invoice(
                    &format!("INV-{i}"),
                    p.id,
                    on,
                    "RON",
                    vec![s.line(product, "1", "100", "60")],
                ))
                .await,
            );
            if in_holdout {
                holdout_n += 1;
            } else {
                targets_n += 1;
            }
        }
    }
    // A target's invoice fully credited back nets nothing; one after the window and one of a partner outside the
    // campaign count nowhere.
    let credited = partners
        .iter()
        .find(|p| !drawn.contains(&p.id) && !docs.iter().any(|d| d.partner == p.id))
        .expect("a target without purchases");
    docs.push(
        s.record(NewDocument::invoice(
            "CR-1",
            credited.id,
            day(2026, 4, 2),
            "RON",
            vec![s.line(0, "1", "100", "60")],
        ))
        .await,
    );
    docs.push(
        s.record(s.credit_back("CN-1", credited.id, day(2026, 4, 3), "CR-1"))
            .await,
    );
    docs.push(
        s.record(NewDocument::invoice(
            "LATE-1",
            partners[1].id,
            day(2026, 6, 16),
            "RON",
            vec![s.line(0, "9", "100", "60")],
        ))
        .await,
    );
    docs.push(
        s.record(NewDocument::invoice(
            "OUT-1",
            outsider.id,
            day(2026, 4, 10),
            "RON",
            vec![s.line(0, "9", "100", "60")],
        ))
        .await,
    );

    let promoted = [Item::Product(s.products[0])];
    let q = OutcomeQuery {
        window,
        promoted: promoted.to_vec(),
        reporting: ron(),
    };
    let sums =
        s.cs.store()
            .campaign_outcomes(s.w.tenant, c.id(), &q)
            .await
            .expect("sums");
    let facts = Facts {
        partners: &partners,
        documents: &docs,
    };
    assert_eq!(
        sums,
        reference::outcome_sums(facts, &stored, c.id(), &q),
        "the adapter's sums equal the reference"
    );
    assert_eq!((sums.targets.partners, sums.holdout.partners), (150, 50));
    assert_eq!(
        (sums.targets.reactivated, sums.holdout.reactivated),
        (targets_n, holdout_n)
    );
    let r =
        s.cs.campaign_uplift(s.w.tenant, c.id(), window, &promoted, Confidence::P95)
            .await
            .expect("uplift");
    let planted = Decimal::new(4, 1);
    let re = r.reactivation_uplift.expect("a holdout gives an uplift");
    assert!(
        re.contains(planted) && !re.contains(Decimal::ZERO),
        "the interval {re:?} holds the planted 0.4 and not 0"
    );
    let estimate = Decimal::from(targets_n) / Decimal::from(150u64)
        - Decimal::from(holdout_n) / Decimal::from(50u64);
    assert_eq!(re.estimate, estimate.round_dp(6).normalize());
    let bought = r
        .bought_uplift
        .expect("promoted items give a bought uplift");
    assert!(bought.estimate > re.estimate, "{bought:?} against {re:?}");
    // Gross profit 40 per buyer: the targets' less the holdout's per partner times 150.
    let gp = |n: u64| Decimal::from(40 * n);
    assert_eq!(r.targets.gross_profit, gp(targets_n));
    assert_eq!(
        r.incremental_gross_profit,
        Some(gp(targets_n) - gp(holdout_n) * Decimal::from(3))
    );
    assert_eq!(r.holdout, Some(holdout));

    // Bad input, each a typed error naming the field.
    let before = Period::new(launch_day - Duration::days(1), day(2026, 6, 15)).unwrap();
    let e =
        s.cs.campaign_uplift(s.w.tenant, c.id(), before, &[], Confidence::P95)
            .await
            .unwrap_err();
    assert_eq!(e.field(), Some("window"), "{e}");
    let twice = [promoted[0], promoted[0]];
    let e =
        s.cs.campaign_uplift(s.w.tenant, c.id(), window, &twice, Confidence::P95)
            .await
            .unwrap_err();
    assert_eq!(e.field(), Some("promoted"), "{e}");
    let unknown = [Item::Product(crate::id::ProductId::new())];
    let e =
        s.cs.campaign_uplift(s.w.tenant, c.id(), window, &unknown, Confidence::P95)
            .await
            .unwrap_err();
    assert_eq!(e.field(), Some("promoted"), "{e}");
    let e =
        s.cs.campaign_uplift(
            crate::id::TenantId::new(),
            c.id(),
            window,
            &[],
            Confidence::P95,
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e}");

    // Without a holdout: outcomes, no uplift. With no targets: refused.
    let mut plain = s.year_campaign("No control", Channel::Email);
    plain.criteria = Some(winback);
    let plain = s.cs.create_campaign(&ctx, plain).await.expect("campaign");
    s.cs.launch_campaign(&ctx, plain.id(), plain.version())
        .await
        .expect("launch");
    let r =
        s.cs.campaign_uplift(s.w.tenant, plain.id(), window, &[], Confidence::P90)
            .await
            .expect("uplift");
    assert_eq!(r.targets.partners, 200);
    assert_eq!(r.control.partners, 0);
    assert_eq!(
        (
            r.reactivation_uplift,
            r.bought_uplift,
            r.incremental_gross_profit
        ),
        (None, None, None)
    );
    let mut empty = s.year_campaign("Nobody", Channel::Email);
    empty.criteria = Some(Criteria::Tag {
        tag: "nobody has it".into(),
    });
    let empty = s.cs.create_campaign(&ctx, empty).await.expect("campaign");
    s.cs.launch_campaign_with(&ctx, empty.id(), empty.version(), Some(holdout))
        .await
        .expect("launch");
    let e =
        s.cs.campaign_uplift(s.w.tenant, empty.id(), window, &[], Confidence::P95)
            .await
            .unwrap_err();
    assert_eq!(e.field(), Some("campaign"), "{e}");
}

/// Multi-touch attribution on a small story with hand-computed credits: campaign X targets A and B (launched
/// 2 March) and its call reaches A, who is interested (a lead, 5 March); campaign Y targets B and C (10 March).
/// A buys on 20 March (linked to X), B on 25 March, C on 1 February (before any touch) and B again in September
/// (past the 90-day lookback). Each model credits as its definition says, each model's rows sum to the year's
/// gross profit, and the report equals the reference's. Bad input: a zero or too long lookback, a zero half-life,
/// no model, a model twice.
pub async fn check_campaign_attribution(store: &Arc<dyn Store>, commerce: &Arc<dyn CommerceStore>) {
    use crate::commerce::{finish_attribution, CallOutcome, Model};
    let s = Shop::new(store, commerce).await;
    let ctx = s.w.ctx.clone();
    let tagged = |name: &str, tags: &[&str]| {
        let mut n = NewPartner::company(name).with_role(PartnerRole::Customer);
        n.tags.extend(tags.iter().map(|t| t.to_string()));
        n
    };
    let (a, b, c) = (
        tagged("Alpha", &["x"]),
        tagged("Beta", &["x", "y"]),
        tagged("Gamma", &["y"]),
    );
    let mut ps = Vec::new();
    for n in [a, b, c] {
        ps.push(
            s.w.crm
                .create_partner(&ctx, n)
                .await
                .expect("partner")
                .record,
        );
    }
    let (a, b, c) = (&ps[0], &ps[1], &ps[2]);
    let mut x = s.year_campaign("X calls", Channel::Telemarketing);
    x.criteria = Some(Criteria::Tag { tag: "x".into() });
    let x = s.cs.create_campaign(&ctx, x).await.expect("campaign");
    let launch_x =
        s.cs.launch_campaign(&ctx, x.id(), x.version())
            .await
            .expect("launch");
    s.w.clock.advance(Duration::days(3));
    let call = launch_x
        .targets
        .iter()
        .find(|t| t.partner() == a.id)
        .and_then(|t| t.request())
        .expect("A's call");
    s.cs.record_call_outcome(&ctx, call, CallOutcome::Interested)
        .await
        .expect("outcome");
    // A meeting about A's lead on 9 March, held (a touch of X); another on the 10th stays scheduled (none).
    let a_lead =
        s.w.store()
            .query_leads(s.w.tenant, &crate::store::LeadQuery::default())
            .await
            .expect("leads")
            .items
            .remove(0);
    let demo = super::sales::meeting_for(&s.w, &a_lead);
    let held =
        s.cs.schedule_meeting(&ctx, demo.clone())
            .await
            .expect("meeting");
    let mut next_day = demo;
    next_day.slot.start += Duration::days(1);
    next_day.slot.end += Duration::days(1);
    s.cs.schedule_meeting(&ctx, next_day)
        .await
        .expect("second meeting");
    s.w.clock.advance(Duration::days(5));
    s.cs.meeting_command(
        &ctx,
        held.id(),
        held.version(),
        crate::sales::MeetingCommand::Held {
            outcome: "Wants an offer".into(),
        },
    )
    .await
    .expect("held");
    let mut y = s.year_campaign("Y mail", Channel::Email);
    y.criteria = Some(Criteria::Tag { tag: "y".into() });
    let y = s.cs.create_campaign(&ctx, y).await.expect("campaign");
    s.cs.launch_campaign(&ctx, y.id(), y.version())
        .await
        .expect("launch");
    let sale = |n: &str, p: &Partner, on: NaiveDate, price: &str| {
        NewDocument::invoice(n, p.id, on, "RON", vec![s.line(0, "1", price, "60")])
    };
    let mut linked = sale("A-1", a, day(2026, 3, 20), "160");
    linked.campaign = Some(x.id());
    let mut docs = vec![s.record(linked).await];
    for n in [
        sale("B-1", b, day(2026, 3, 25), "260"),
        sale("C-1", c, day(2026, 2, 1), "110"),
        sale("B-2", b, day(2026, 9, 1), "70"),
    ] {
        docs.push(s.record(n).await);
    }
    let year = Period::year(2026).unwrap();
    let models = Model::ALL;
    let r =
        s.cs.attribution_report(s.w.tenant, year, 90, &models)
            .await
            .expect("attribution");
    assert_eq!((r.sales, r.gross_profit), (4, Decimal::from(360)));
    let credit = |model: &str, name: &str| -> Option<(u64, Decimal)> {
        r.rows
            .iter()
            .find(|row| row.model == model && row.name == name)
            .map(|row| (row.sales, row.gross_profit))
    };
    let d = Decimal::from;
    assert_eq!(credit("invoice_link", "X calls"), Some((1, d(100))));
    assert_eq!(credit("invoice_link", "unattributed"), Some((3, d(260))));
    assert_eq!(credit("first_touch", "X calls"), Some((2, d(300))));
    assert_eq!(credit("first_touch", "Y mail"), None);
    assert_eq!(credit("first_touch", "unattributed"), Some((2, d(60))));
    assert_eq!(credit("last_touch", "X calls"), Some((1, d(100))));
    assert_eq!(credit("last_touch", "Y mail"), Some((1, d(200))));
    for m in ["linear", "position_based"] {
        assert_eq!(credit(m, "X calls"), Some((2, d(200))), "{m}");
        assert_eq!(credit(m, "Y mail"), Some((1, d(100))), "{m}");
    }
    // B's 200 by time decay: X touched 23 days before, Y 15: Y weighs 2^(8/7) times X.
    let (xs, ys) = (
        credit("time_decay_7d", "X calls").unwrap().1 - d(100),
        credit("time_decay_7d", "Y mail").unwrap().1,
    );
    assert_eq!(xs + ys, d(200));
    assert!(
        ys > xs * d(2) && ys < xs * Decimal::new(23, 1),
        "{xs} / {ys}"
    );
    for m in &models {
        let sum: Decimal = r
            .rows
            .iter()
            .filter(|row| row.model == m.label())
            .map(|row| row.gross_profit)
            .sum();
        assert_eq!(sum, d(360), "{m:?} sums to the year's gross profit");
    }
    // The same report from the reference's inputs.
    let targets = [
        all_targets(&s, &launch_x.campaign).await,
        all_targets(&s, &s.cs.campaign(s.w.tenant, y.id()).await.unwrap()).await,
    ]
    .concat();
    let leads: Vec<crate::lead::Lead> =
        s.w.store()
            .query_leads(s.w.tenant, &crate::store::LeadQuery::default())
            .await
            .expect("leads")
            .items;
    assert_eq!(leads.len(), 1, "the interested call's lead");
    let campaigns = [
        s.cs.campaign(s.w.tenant, x.id()).await.unwrap(),
        s.cs.campaign(s.w.tenant, y.id()).await.unwrap(),
    ];
    let scope = crate::commerce::AttributionScope {
        period: year,
        lookback_days: 90,
        reporting: ron(),
    };
    let facts = Facts {
        partners: &ps,
        documents: &docs,
    };
    let names = campaigns
        .iter()
        .map(|c| (c.id(), c.name().to_string()))
        .collect();
    let meetings = [
        crate::commerce::CommerceStoreExt::meeting(commerce, s.w.tenant, held.id())
            .await
            .expect("held"),
    ];
    assert_eq!(meetings[0].status(), crate::sales::MeetingStatus::Held);
    // The store's touches: A's held meeting on 9 March is a touch of X; the scheduled one is none.
    let inputs = commerce
        .attribution_inputs(s.w.tenant, &scope)
        .await
        .expect("inputs");
    let meeting_touches: Vec<_> = inputs
        .touches
        .iter()
        .filter(|t| t.kind == crate::commerce::TouchKind::Meeting)
        .map(|t| (t.partner, t.on, t.campaign))
        .collect();
    assert_eq!(meeting_touches, vec![(a.id, day(2026, 3, 9), x.id())]);
    assert_eq!(
        inputs,
        reference::attribution_inputs(facts, &targets, &leads, &meetings, &campaigns, &scope)
    );
    let want = finish_attribution(
        reference::attribution_inputs(facts, &targets, &leads, &meetings, &campaigns, &scope),
        &names,
        &scope,
        &models,
    )
    .unwrap();
    assert_eq!(r, want);

    for (lookback, models, field) in [
        (0, &models[..1], "lookback_days"),
        (3_651, &models[..1], "lookback_days"),
        (90, &[][..], "models"),
        (
            90,
            &[Model::TimeDecay { half_life_days: 0 }][..],
            "models[0].half_life_days",
        ),
        (90, &[Model::Linear, Model::Linear][..], "models[1]"),
    ] {
        let e =
            s.cs.attribution_report(s.w.tenant, year, lookback, models)
                .await
                .unwrap_err();
        assert_eq!(e.field(), Some(field), "{e}");
    }
}

/// A campaign's costs against its budget (1000 RON) with the tenant's alerts at 50 % and 80 %: each alert and the
/// whole budget are announced once, when the booked costs pass them (exactly: 500 is not past 50 %, 500.01 is),
/// a cost passing several announces each, costs after the budget announce nothing more; another tenant's alerts
/// are its own; bad alerts are refused by name.
pub async fn check_campaign_budget_alerts(
    store: &Arc<dyn Store>,
    commerce: &Arc<dyn CommerceStore>,
) {
    use crate::money::Money;
    let s = Shop::new(store, commerce).await;
    let ctx = s.w.ctx.clone();
    assert_eq!(
        s.cs.budget_alerts(s.w.tenant).await.unwrap(),
        Vec::<u8>::new()
    );
    assert_eq!(
        s.cs.set_budget_alerts(&ctx, &[80, 50]).await.unwrap(),
        vec![50, 80]
    );
    for bad in [
        &[0u8][..],
        &[100],
        &[50, 255],
        &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
    ] {
        let e = s.cs.set_budget_alerts(&ctx, bad).await.unwrap_err();
        assert_eq!(e.field(), Some("budget_alerts"), "{bad:?}: {e}");
    }
    assert_eq!(s.cs.budget_alerts(s.w.tenant).await.unwrap(), vec![50, 80]);
    let mut n = s.year_campaign("Fair", Channel::Telemarketing);
    n.budget = Some(Money::parse("1000", "RON").unwrap());
    let c = s.cs.create_campaign(&ctx, n).await.expect("campaign");
    let announced = |from: u64| {
        let crm = s.w.crm.clone();
        let tenant = s.w.tenant;
        async move {
            crm.events_since(tenant, from, 10_000)
                .await
                .expect("events")
                .into_iter()
                .filter_map(|(_, e)| match e.kind {
                    EventKind::BudgetThresholdPassed { percent, spent, .. } => {
                        Some((percent, spent.amount()))
                    }
                    EventKind::BudgetExceeded { spent, .. } => Some((100, spent.amount())),
                    _ => None,
                })
                .collect::<Vec<_>>()
        }
    };
    let on = day(2026, 3, 2);
    let mut seen = 0;
    let book = |amount: &'static str| {
        let (cs, ctx, id) = (s.cs.clone(), ctx.clone(), c.id());
        async move {
            cs.add_campaign_cost(&ctx, id, on, Money::parse(amount, "RON").unwrap(), None)
                .await
                .expect("cost");
        }
    };
    let d = |x: &str| Decimal::from_str_exact(x).unwrap();
    let last = || async {
        s.w.crm
            .events_since(s.w.tenant, 0, 10_000)
            .await
            .unwrap()
            .last()
            .unwrap()
            .0
    };
    book("500").await;
    assert_eq!(
        announced(seen).await,
        vec![],
        "exactly half is not past half"
    );
    book("0.01").await;
    assert_eq!(announced(seen).await, vec![(50, d("500.01"))]);
    seen = last().await;
    book("599.99").await;
    assert_eq!(
        announced(seen).await,
        vec![(80, d("1100")), (100, d("1100"))],
        "one cost past 80 % and the whole budget announces both"
    );
    seen = last().await;
    book("10").await;
    assert_eq!(
        announced(seen).await,
        vec![],
        "past the budget, nothing more"
    );
    // Another tenant's alerts are its own.
    let other = Shop::new(store, commerce).await;
    assert_eq!(
        other.cs.budget_alerts(other.w.tenant).await.unwrap(),
        Vec::<u8>::new()
    );
}
