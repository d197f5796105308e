//! Explainable lead scoring: which open leads to call first.
//!
//! A [`Scorer`] is a two-class logistic regression (`linfa-logistic`) fitted on a tenant's closed leads, won or
//! lost, each described by its [`Facts`]: where it came from (a campaign, the source's medium), the partner's
//! industry and turnover, the lead's stage, its age, its activity, the days since the last contact and what the partner bought
//! in the year before the lead. A score is the fitted probability of winning in percent (0–100), and comes with its
//! **reasons**: each feature's contribution to the log-odds (its weight times the lead's standardised value), the
//! largest first, so a salesperson reads *why* ("past purchases +1.3, industry: wholesale +0.6, no contact for 40
//! days −0.8").
//!
//! # Honest by construction
//!
//! - **No leaks.** Every fact is one the lead had before it closed: a closed lead's age and activity are counted up
//!   to its close (its closing events left out), its partner's purchases before it was entered, and its stage is
//!   the open stage it was in when it closed (a won lead's stage before the won one, never the won stage itself,
//!   which is the answer). One bias remains and is the usual one of CRM scoring: a closed lead's stage is the
//!   furthest it got, while an open lead may still move on, so early-stage open leads score a little low; rank
//!   leads of one stage against each other when that matters.
//! - **Deterministic.** The history is ordered by lead id, the optimiser starts from zero and stops at a fixed
//!   tolerance, so the same history fits the same model (the test refits and compares).
//! - **Enough history or none.** Fewer than [`MIN_CLOSED`] closed leads, or fewer than [`MIN_PER_CLASS`] won or lost,
//!   is [`ScoringError::NotEnoughHistory`], never a score from noise.
//! - **Measured.** [`evaluate`] fits on one part of a history and reports the AUC on the rest; the crate's test plants
//!   a signal in generated leads and requires the held-out AUC to find it.

pub mod service;

use linfa::prelude::*;
use linfa_logistic::LogisticRegression;
use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The fewest closed leads a scorer is fitted on.
pub const MIN_CLOSED: usize = 30;

/// The fewest won, and the fewest lost, leads a scorer is fitted on.
pub const MIN_PER_CLASS: usize = 5;

/// A category (industry, medium) becomes a feature of its own once this many closed leads have it.
pub const MIN_CATEGORY: usize = 3;

/// How many reasons a score gives.
pub const REASONS: usize = 3;

/// Why a scorer could not be fitted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ScoringError {
    /// The history is too short to learn from.
    #[error("not enough history: {closed} closed leads ({won} won, {lost} lost); at least {MIN_CLOSED} closed, {MIN_PER_CLASS} of each, are needed")]
    NotEnoughHistory {
        /// Closed leads in the history.
        closed: usize,
        /// Of them won.
        won: usize,
        /// Of them lost.
        lost: usize,
    },
    /// A fact is out of range (named, with the reason).
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The fact.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The optimiser failed (it reports why).
    #[error("the model could not be fitted: {0}")]
    Fit(String),
    /// The store could not be read.
    #[error(transparent)]
    Store(crm_core::Error),
}

/// What is known of a lead when it is scored (an open lead, now) or when it closed (a closed one).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Facts {
    /// A campaign brought it.
    pub from_campaign: bool,
    /// The source's medium (`phone`, `web`, `referral`, …), if recorded.
    pub medium: Option<String>,
    /// The partner's industry (its code, else its name), if recorded.
    pub industry: Option<String>,
    /// The open stage the lead is in (an open lead) or was in when it closed (a won lead: the stage it was won
    /// from; a lost one: the stage it was lost in), by name.
    #[serde(default)]
    pub stage: Option<String>,
    /// The partner's reported turnover (in its own currency's units: a magnitude, not money), if recorded.
    pub turnover: Option<f64>,
    /// Days from entry to now (open) or to the close (closed); not negative.
    pub age_days: u32,
    /// Events on the lead's timeline (comments, requests, calls, e-mails, meetings, moves) up to now or the close.
    pub activities: u32,
    /// Days since the last contact with the customer (a call, an e-mail, a meeting), if there was one.
    pub days_since_contact: Option<u32>,
    /// The partner's net sales in the year before the lead was entered, in the reporting currency's units
    /// (negative after credit notes).
    pub past_purchases: f64,
}

/// One feature of the model: its name and how a lead's [`Facts`] give its value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Feature {
    FromCampaign,
    Medium(String),
    Industry(String),
    Stage(String),
    Turnover,
    TurnoverUnknown,
    Age,
    Activities,
    SinceContact,
    NeverContacted,
    PastPurchases,
}

impl Feature {
    fn name(&self) -> String {
        match self {
            Self::FromCampaign => "brought by a campaign".into(),
            Self::Medium(m) => format!("source: {m}"),
            Self::Industry(i) => format!("industry: {i}"),
            Self::Stage(x) => format!("stage: {x}"),
            Self::Turnover => "turnover".into(),
            Self::TurnoverUnknown => "turnover unknown".into(),
            Self::Age => "age".into(),
            Self::Activities => "activity".into(),
            Self::SinceContact => "days since the last contact".into(),
            Self::NeverContacted => "never contacted".into(),
            Self::PastPurchases => "past purchases".into(),
        }
    }

    /// The name as a reason for a lead: a yes-or-no feature the lead lacks reads `not …` (a wholesale customer's
    /// score is raised by `not industry: retail`).
    fn reason(&self, f: &Facts) -> String {
        let flag = matches!(
            self,
            Self::FromCampaign
                | Self::Medium(_)
                | Self::Industry(_)
                | Self::Stage(_)
                | Self::TurnoverUnknown
                | Self::NeverContacted
        );
        if flag && self.value(f) == 0.0 {
            format!("not {}", self.name())
        } else {
            self.name()
        }
    }

    /// The raw value (logarithms for the skewed magnitudes).
    fn value(&self, f: &Facts) -> f64 {
        let flag = |b: bool| if b { 1.0 } else { 0.0 };
        let log = |x: f64| x.max(0.0).ln_1p();
        match self {
            Self::FromCampaign => flag(f.from_campaign),
            Self::Medium(m) => flag(f.medium.as_deref().map(norm).as_deref() == Some(m.as_str())),
            Self::Industry(i) => {
                flag(f.industry.as_deref().map(norm).as_deref() == Some(i.as_str()))
            }
            Self::Stage(x) => flag(f.stage.as_deref().map(norm).as_deref() == Some(x.as_str())),
            Self::Turnover => log(f.turnover.unwrap_or(0.0)),
            Self::TurnoverUnknown => flag(f.turnover.is_none()),
            Self::Age => log(f64::from(f.age_days)),
            Self::Activities => log(f64::from(f.activities)),
            Self::SinceContact => log(f64::from(f.days_since_contact.unwrap_or(0))),
            Self::NeverContacted => flag(f.days_since_contact.is_none()),
            Self::PastPurchases => log(f.past_purchases),
        }
    }
}

/// A category as compared: trimmed, lower case.
fn norm(s: &str) -> String {
    s.trim().to_lowercase()
}

/// Checks a lead's facts: finite magnitudes.
fn check(f: &Facts) -> Result<(), ScoringError> {
    let finite = |field, x: f64| {
        if x.is_finite() {
            Ok(())
        } else {
            Err(ScoringError::Invalid {
                field,
                reason: format!("{x} is not a finite number"),
            })
        }
    };
    finite("turnover", f.turnover.unwrap_or(0.0))?;
    finite("past_purchases", f.past_purchases)
}

/// One feature's share of a score: its contribution to the log-odds of winning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    /// The feature (`past purchases`, `industry: wholesale`, …).
    pub feature: String,
    /// Its contribution to the log-odds: positive raises the score, negative lowers it.
    pub contribution: f64,
}

/// A lead's score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// The probability of winning, in percent (0–100).
    pub value: u8,
    /// The same, unrounded (0–1).
    pub probability: f64,
    /// The [`REASONS`] largest contributions, largest first by magnitude.
    pub reasons: Vec<Reason>,
}

/// A fitted scorer: the features, their standardisation, the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scorer {
    features: Vec<Feature>,
    means: Vec<f64>,
    scales: Vec<f64>,
    weights: Vec<f64>,
    intercept: f64,
    closed: usize,
    won: usize,
}

impl Scorer {
    /// Fits a scorer on `history`: closed leads (`key` orders them, so the fit does not depend on the order given),
    /// their facts, and whether each was won.
    ///
    /// # Errors
    ///
    /// [`ScoringError::NotEnoughHistory`] under [`MIN_CLOSED`] closed leads or [`MIN_PER_CLASS`] of either kind;
    /// [`ScoringError::Invalid`] for a fact that is not a finite number; [`ScoringError::Fit`] when the optimiser
    /// fails.
    pub fn fit<K: Ord>(history: &[(K, Facts, bool)]) -> Result<Self, ScoringError> {
        let won = history.iter().filter(|(_, _, w)| *w).count();
        let (closed, lost) = (history.len(), history.len() - won);
        if closed < MIN_CLOSED || won < MIN_PER_CLASS || lost < MIN_PER_CLASS {
            return Err(ScoringError::NotEnoughHistory { closed, won, lost });
        }
        let mut rows: Vec<&(K, Facts, bool)> = history.iter().collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        for (_, f, _) in &rows {
            check(f)?;
        }
        let features = features_of(rows.iter().map(|(_, f, _)| f));
        let raw: Vec<Vec<f64>> = rows
            .iter()
            .map(|(_, f, _)| features.iter().map(|x| x.value(f)).collect())
            .collect();
        let n = raw.len() as f64;
        let means: Vec<f64> = (0..features.len())
            .map(|j| raw.iter().map(|r| r[j]).sum::<f64>() / n)
            .collect();
        let scales: Vec<f64> = (0..features.len())
            .map(|j| {
                let var = raw.iter().map(|r| (r[j] - means[j]).powi(2)).sum::<f64>() / n;
                if var > 1e-12 {
                    var.sqrt()
                } else {
                    1.0
                }
            })
            .collect();
        let x = Array2::from_shape_fn((raw.len(), features.len()), |(i, j)| {
            (raw[i][j] - means[j]) / scales[j]
        });
        let y: Array1<usize> = rows.iter().map(|(_, _, w)| usize::from(*w)).collect();
        let fitted = LogisticRegression::default()
            .alpha(1.0)
            .max_iterations(200)
            .gradient_tolerance(1e-6)
            .fit(&Dataset::new(x, y))
            .map_err(|e| ScoringError::Fit(e.to_string()))?;
        // linfa's positive class is the first label it meets; the model is kept as the odds of winning.
        let sign = if fitted.labels().pos.class == 1 {
            1.0
        } else {
            -1.0
        };
        Ok(Self {
            weights: fitted.params().iter().map(|w| sign * w).collect(),
            intercept: sign * fitted.intercept(),
            features,
            means,
            scales,
            closed,
            won,
        })
    }

    /// How many closed leads it was fitted on, and how many of them were won.
    pub fn history(&self) -> (usize, usize) {
        (self.closed, self.won)
    }

    /// The features and their weights (per standard deviation of the feature), in the model's order.
    pub fn weights(&self) -> Vec<(String, f64)> {
        self.features
            .iter()
            .zip(&self.weights)
            .map(|(f, w)| (f.name(), *w))
            .collect()
    }

    /// Scores a lead.
    ///
    /// # Errors
    ///
    /// [`ScoringError::Invalid`] for a fact that is not a finite number.
    pub fn score(&self, facts: &Facts) -> Result<Score, ScoringError> {
        check(facts)?;
        let mut contributions: Vec<Reason> = self
            .features
            .iter()
            .enumerate()
            .map(|(j, f)| Reason {
                feature: f.reason(facts),
                contribution: self.weights[j] * (f.value(facts) - self.means[j]) / self.scales[j],
            })
            .collect();
        let logit = self.intercept + contributions.iter().map(|r| r.contribution).sum::<f64>();
        let probability = 1.0 / (1.0 + (-logit).exp());
        contributions.sort_by(|a, b| {
            b.contribution
                .abs()
                .total_cmp(&a.contribution.abs())
                .then_with(|| a.feature.cmp(&b.feature))
        });
        contributions.truncate(REASONS);
        Ok(Score {
            value: (probability * 100.0).round().clamp(0.0, 100.0) as u8,
            probability,
            reasons: contributions,
        })
    }
}

/// The features a history supports: every numeric one, and each category (medium, industry) at least
/// [`MIN_CATEGORY`] leads share, in a fixed order.
fn features_of<'a>(facts: impl Iterator<Item = &'a Facts>) -> Vec<Feature> {
    let mut media: BTreeMap<String, usize> = BTreeMap::new();
    let mut industries: BTreeMap<String, usize> = BTreeMap::new();
    let mut stages: BTreeMap<String, usize> = BTreeMap::new();
    for f in facts {
        if let Some(x) = f.stage.as_deref().map(norm).filter(|x| !x.is_empty()) {
            *stages.entry(x).or_default() += 1;
        }
        if let Some(m) = f.medium.as_deref().map(norm).filter(|m| !m.is_empty()) {
            *media.entry(m).or_default() += 1;
        }
        if let Some(i) = f.industry.as_deref().map(norm).filter(|i| !i.is_empty()) {
            *industries.entry(i).or_default() += 1;
        }
    }
    let mut out = vec![
        Feature::FromCampaign,
        Feature::Turnover,
        Feature::TurnoverUnknown,
        Feature::Age,
        Feature::Activities,
        Feature::SinceContact,
        Feature::NeverContacted,
        Feature::PastPurchases,
    ];
    let frequent = |m: BTreeMap<String, usize>| {
        m.into_iter()
            .filter(|(_, n)| *n >= MIN_CATEGORY)
            .map(|(k, _)| k)
            .collect::<Vec<_>>()
    };
    out.extend(frequent(media).into_iter().map(Feature::Medium));
    out.extend(frequent(industries).into_iter().map(Feature::Industry));
    out.extend(frequent(stages).into_iter().map(Feature::Stage));
    out
}

/// The area under the ROC curve of `scored` (a probability and whether the lead was won): the chance that a won lead
/// scores above a lost one (ties count half). `None` without both kinds.
///
/// ```
/// use crm_scoring::auc;
/// assert_eq!(auc(&[(0.9, true), (0.8, true), (0.3, false)]), Some(1.0));
/// assert_eq!(auc(&[(0.5, true), (0.5, false)]), Some(0.5));
/// assert_eq!(auc(&[(0.5, true)]), None);
/// ```
pub fn auc(scored: &[(f64, bool)]) -> Option<f64> {
    let won: Vec<f64> = scored.iter().filter(|s| s.1).map(|s| s.0).collect();
    let lost: Vec<f64> = scored.iter().filter(|s| !s.1).map(|s| s.0).collect();
    if won.is_empty() || lost.is_empty() {
        return None;
    }
    let mut wins = 0.0;
    for w in &won {
        for l in &lost {
            wins += if w > l {
                1.0
            } else if w == l {
                0.5
            } else {
                0.0
            };
        }
    }
    Some(wins / (won.len() * lost.len()) as f64)
}

/// An honest measure of a scorer on `history`: fitted on the leads whose position (in key order) is not a multiple
/// of `folds`, scored on those that are; the held-out AUC.
///
/// # Errors
///
/// As [`Scorer::fit`] on the training part; [`ScoringError::NotEnoughHistory`] when the held-out part lacks won or
/// lost leads.
pub fn evaluate<K: Ord + Clone>(
    history: &[(K, Facts, bool)],
    folds: usize,
) -> Result<f64, ScoringError> {
    let mut rows: Vec<&(K, Facts, bool)> = history.iter().collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let folds = folds.max(2);
    let (test, train): (Vec<_>, Vec<_>) = rows
        .into_iter()
        .enumerate()
        .partition(|(i, _)| i % folds == 0);
    let train: Vec<(K, Facts, bool)> = train.into_iter().map(|(_, r)| r.clone()).collect();
    let scorer = Scorer::fit(&train)?;
    let mut scored = Vec::with_capacity(test.len());
    for (_, (_, f, won)) in &test {
        scored.push((scorer.score(f)?.probability, *won));
    }
    auc(&scored).ok_or_else(|| {
        let won = scored.iter().filter(|s| s.1).count();
        ScoringError::NotEnoughHistory {
            closed: scored.len(),
            won,
            lost: scored.len() - won,
        }
    })
}
