//! The scorer on generated leads with a planted signal: the held-out AUC finds it, the reasons name it, the fit is
//! deterministic, and too short a history is refused.

use crm_scoring::{auc, evaluate, Facts, Scorer, ScoringError, MIN_CLOSED};
use proptest::prelude::*;

/// SplitMix64: the same leads on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The planted log-odds of winning: wholesale customers, customers who bought before, and leads contacted lately
/// win more often.
fn planted_logit(f: &Facts) -> f64 {
    -1.2 + if f.industry.as_deref() == Some("Wholesale") {
        1.6
    } else {
        0.0
    } + 0.18 * f.past_purchases.ln_1p()
        + match f.days_since_contact {
            Some(d) if d <= 14 => 1.0,
            Some(_) => 0.0,
            None => -0.8,
        }
}

/// `n` closed leads. Planted: wholesale customers, customers who bought before, and leads contacted lately win more
/// often; the medium, the turnover, the age and the activity are noise.
fn leads(n: usize, seed: u64) -> Vec<(u64, Facts, bool)> {
    let mut r = Rng(seed);
    (0..n)
        .map(|i| {
            let wholesale = r.below(3) == 0;
            let bought = r.below(2) == 0;
            let past = if bought {
                (r.unit() * 10.0).exp() * 100.0
            } else {
                0.0
            };
            let contact = if r.below(5) == 0 {
                None
            } else {
                Some(r.below(90) as u32)
            };
            let f = Facts {
                from_campaign: r.below(2) == 0,
                medium: Some(["phone", "web", "referral"][r.below(3) as usize].to_string()),
                industry: Some(
                    if wholesale {
                        "Wholesale"
                    } else {
                        ["Retail", "Services"][r.below(2) as usize]
                    }
                    .to_string(),
                ),
                turnover: (r.below(4) != 0).then(|| r.unit() * 1e7),
                age_days: r.below(200) as u32,
                activities: r.below(30) as u32,
                days_since_contact: contact,
                past_purchases: past,
                // Noise: the stage it closed in says nothing here.
                stage: Some(["Contact", "Offer", "Negotiation"][r.below(3) as usize].to_string()),
            };
            let won = r.unit() < 1.0 / (1.0 + (-planted_logit(&f)).exp());
            (i as u64, f, won)
        })
        .collect()
}

#[test]
fn the_held_out_auc_finds_the_planted_signal_and_the_reasons_name_it() {
    let history = leads(1_200, 20_261_203);
    let held_out = evaluate(&history, 4).expect("enough history");
    // The ceiling: the planted log-odds themselves, on the same held-out leads (every 4th by key).
    let oracle = auc(&history
        .iter()
        .filter(|(k, _, _)| k % 4 == 0)
        .map(|(_, f, won)| (planted_logit(f), *won))
        .collect::<Vec<_>>())
    .unwrap();
    println!("held-out AUC on the planted signal: {held_out:.3} (the planted odds themselves: {oracle:.3})");
    assert!(held_out > 0.72, "held-out AUC {held_out}");
    assert!(
        held_out > oracle - 0.05,
        "AUC {held_out} against the ceiling {oracle}"
    );
    // Noise alone: the AUC of a scorer fitted on shuffled outcomes is near one half.
    let mut r = Rng(7);
    let shuffled: Vec<(u64, Facts, bool)> = history
        .iter()
        .map(|(k, f, _)| (*k, f.clone(), r.below(3) == 0))
        .collect();
    let noise = evaluate(&shuffled, 4).expect("enough history");
    assert!((noise - 0.5).abs() < 0.08, "AUC on noise {noise}");

    let scorer = Scorer::fit(&history).expect("fitted");
    let weight = |name: &str| {
        scorer
            .weights()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, w)| w)
            .expect(name)
    };
    assert!(weight("industry: wholesale") > 0.3);
    assert!(weight("past purchases") > 0.3);
    assert!(weight("never contacted") < -0.1);
    // The noise at its typical values, so only the planted facts differ.
    let typical = Facts {
        from_campaign: false,
        medium: Some("web".into()),
        industry: None,
        stage: None,
        turnover: Some(5e6),
        age_days: 60,
        activities: 10,
        days_since_contact: None,
        past_purchases: 0.0,
    };
    let best = Facts {
        industry: Some("Wholesale".into()),
        stage: None,
        past_purchases: 500_000.0,
        days_since_contact: Some(3),
        ..typical.clone()
    };
    let worst = Facts {
        industry: Some("Retail".into()),
        stage: None,
        past_purchases: 0.0,
        days_since_contact: None,
        ..typical.clone()
    };
    let (b, w) = (scorer.score(&best).unwrap(), scorer.score(&worst).unwrap());
    assert!(b.value > 70 && w.value < 30, "{b:?} {w:?}");
    let named: Vec<&str> = b.reasons.iter().map(|r| r.feature.as_str()).collect();
    assert!(
        named.contains(&"past purchases") && named.contains(&"industry: wholesale"),
        "{named:?}"
    );
    assert!(b.reasons.iter().all(|r| r.contribution > 0.0), "{b:?}");
    assert!(
        w.reasons
            .iter()
            .any(|r| r.feature == "never contacted" && r.contribution < 0.0),
        "{w:?}"
    );
}

#[test]
fn the_same_history_in_any_order_fits_the_same_scorer() {
    let history = leads(300, 11);
    let mut reversed = history.clone();
    reversed.reverse();
    assert_eq!(
        Scorer::fit(&history).unwrap(),
        Scorer::fit(&reversed).unwrap()
    );
}

#[test]
fn too_short_a_history_is_not_enough_and_bad_facts_are_named() {
    let history = leads(200, 3);
    let short = &history[..MIN_CLOSED - 1];
    assert!(matches!(
        Scorer::fit(short),
        Err(ScoringError::NotEnoughHistory { closed, .. }) if closed == MIN_CLOSED - 1
    ));
    let all_won: Vec<_> = history
        .iter()
        .map(|(k, f, _)| (*k, f.clone(), true))
        .collect();
    assert_eq!(
        Scorer::fit(&all_won).unwrap_err(),
        ScoringError::NotEnoughHistory {
            closed: 200,
            won: 200,
            lost: 0
        }
    );
    let mut bad = history.clone();
    bad[5].1.turnover = Some(f64::NAN);
    assert!(matches!(
        Scorer::fit(&bad),
        Err(ScoringError::Invalid {
            field: "turnover",
            ..
        })
    ));
    let scorer = Scorer::fit(&history).unwrap();
    let inf = Facts {
        past_purchases: f64::INFINITY,
        ..Facts::default()
    };
    assert!(matches!(
        scorer.score(&inf),
        Err(ScoringError::Invalid {
            field: "past_purchases",
            ..
        })
    ));
    assert_eq!(auc(&[]), None);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    /// Any facts score within 0–100, with at most three reasons, largest first, and extreme values do not panic.
    #[test]
    fn scores_are_percentages_with_their_largest_reasons(
        campaign in any::<bool>(),
        turnover in proptest::option::of(0.0f64..1e15),
        age in any::<u32>(),
        activities in any::<u32>(),
        contact in proptest::option::of(any::<u32>()),
        past in -1e12f64..1e15,
    ) {
        static SCORER: std::sync::OnceLock<Scorer> = std::sync::OnceLock::new();
        let scorer = SCORER.get_or_init(|| Scorer::fit(&leads(300, 5)).unwrap());
        let f = Facts {
            from_campaign: campaign,
            medium: Some("web".into()),
            industry: None,
            stage: None,
            turnover,
            age_days: age,
            activities,
            days_since_contact: contact,
            past_purchases: past,
        };
        let s = scorer.score(&f).unwrap();
        prop_assert!(s.value <= 100);
        prop_assert!((0.0..=1.0).contains(&s.probability));
        prop_assert!(s.reasons.len() <= 3);
        for w in s.reasons.windows(2) {
            prop_assert!(w[0].contribution.abs() >= w[1].contribution.abs());
        }
    }
}
