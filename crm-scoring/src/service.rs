//! Scoring a tenant's leads from its store: the closed leads' facts as they stood when each closed, a [`Scorer`]
//! fitted on them, and the open leads ranked by score.
//!
//! The facts of one lead take three reads (its partner, its whole timeline, the partner's documents of the year
//! before the lead, each paged to the end) besides its pipeline, read once per run: fitting reads every closed
//! lead's, so it is a job for a quiet moment (refit on demand, not per request), and scoring reads every open lead's.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use crm_core::{actor::Context, id::{TenantId, UserId}, money::Currency};
//! use crm_core::lead::{LeadCommand, LeadPartner, NewLead, StatusKind};
//! use crm_core::partner::{Industry, NewPartner};
//! use crm_core::service::{CommerceService, CrmService};
//! use crm_core::store::{LeadQuery, LeadSort};
//! use crm_scoring::service::LeadScoring;
//! use std::sync::Arc;
//! let store = Arc::new(crm_storage_sqlite::SqliteStore::open_in_memory().unwrap());
//! let crm = CrmService::builder().store(store.clone()).build().unwrap();
//! let ctx = Context::user(TenantId::new(), UserId::new());
//! crm.setup_tenant(&ctx).await.unwrap();
//! let reason = crm.lost_reasons(ctx.tenant).await.unwrap()[0].id();
//! let enter = |i: usize, industry: &str| {
//!     let mut p = NewPartner::company(format!("Company {i}"));
//!     p.industry = Some(Industry { name: industry.into(), code: None });
//!     crm.enter_lead(&ctx, NewLead::new(LeadPartner::New { partner: p }, format!("Deal {i}")))
//! };
//! // The history: wholesale customers mostly buy, retail ones mostly do not.
//! for i in 0..40 {
//!     let lead = enter(i, if i % 2 == 0 { "Wholesale" } else { "Retail" }).await.unwrap().record;
//!     let cmd = if (i % 2 == 0) != (i % 10 < 2) {
//!         LeadCommand::Win
//!     } else {
//!         LeadCommand::Lose { reason: Some(reason), competitor: None, note: None }
//!     };
//!     crm.transition(&ctx, lead.id(), lead.version(), cmd).await.unwrap();
//! }
//! let retail = enter(100, "Retail").await.unwrap().record;
//! let wholesale = enter(101, "Wholesale").await.unwrap().record;
//!
//! let scoring = LeadScoring::new(CommerceService::new(crm.clone(), store.clone(), Currency::parse("EUR").unwrap()));
//! let scorer = scoring.fit(ctx.tenant).await.unwrap();
//! let ranked = scoring.rank_open(ctx.tenant, &scorer).await.unwrap();
//! assert_eq!(ranked[0].lead.id(), wholesale.id());
//! assert_eq!(scoring.score_open(&ctx, &scorer).await.unwrap().scored, 2);
//! // Stored: the board lists the open leads best first, each score with its reasons.
//! let q = LeadQuery { status: Some(StatusKind::Open), sort: LeadSort::ScoreDesc, ..LeadQuery::default() };
//! let board = crm.store().query_leads(ctx.tenant, &q).await.unwrap();
//! assert_eq!(board.items[0].id(), wholesale.id());
//! assert!(board.items[0].score().unwrap().value > board.items[1].score().unwrap().value);
//! let facts = scoring.facts(ctx.tenant, &retail).await.unwrap();
//! assert_eq!(facts.industry.as_deref(), Some("Retail"));
//! # });
//! ```

use crate::{Facts, Score, Scorer, ScoringError};
use crm_core::actor::Context;
use crm_core::commerce::{CommerceKey, CommerceRecord, DocumentFilter};
use crm_core::event::EventKind;
use crm_core::id::TenantId;
use crm_core::lead::{Lead, LeadCommand, LeadScore, LeadStatus, ScoreReason, StatusKind};
use crm_core::service::CommerceService;
use crm_core::store::{LeadQuery, PageRequest, StoreExt as _, TimelineOf};
use crm_core::time::Timestamp;
use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use rust_decimal::Decimal;

/// The pipelines read in one run, by id (a tenant has a few; its leads name them over and over).
type Pipelines = std::collections::BTreeMap<crm_core::id::PipelineId, crm_core::pipeline::Pipeline>;

impl From<crm_core::Error> for ScoringError {
    fn from(e: crm_core::Error) -> Self {
        Self::Store(e)
    }
}

/// Lead scoring over a commerce service (its lead store, clock and documents).
#[derive(Debug, Clone)]
pub struct LeadScoring {
    commerce: CommerceService,
}

/// What [`LeadScoring::score_open`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scored {
    /// Open leads whose score was stored (new or changed).
    pub scored: usize,
    /// Open leads whose score says the same as before (not written).
    pub unchanged: usize,
    /// Open leads changed by someone else twice while being scored (left for the next run).
    pub conflicts: usize,
}

/// A [`Score`] as a lead keeps it: the value, the reasons with their contributions to 2 places (a reason's name cut
/// to the longest name a lead accepts), the time.
pub fn to_lead_score(score: &Score, at: Timestamp) -> LeadScore {
    LeadScore {
        value: score.value,
        reasons: score
            .reasons
            .iter()
            .map(|r| ScoreReason {
                feature: r
                    .feature
                    .chars()
                    .take(crm_core::validate::MAX_NAME)
                    .collect(),
                contribution: Decimal::from_f64(r.contribution)
                    .unwrap_or_default()
                    .round_dp(2),
            })
            .collect(),
        scored_at: at,
    }
}

/// An open lead and its score.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    /// The lead.
    pub lead: Lead,
    /// Its score, with reasons.
    pub score: Score,
}

impl LeadScoring {
    /// Scoring over `commerce`.
    pub fn new(commerce: CommerceService) -> Self {
        Self { commerce }
    }

    /// Fits a scorer on the tenant's won and lost leads.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use crm_core::{actor::Context, id::{TenantId, UserId}, money::Currency};
    /// use crm_core::service::{CommerceService, CrmService};
    /// use crm_scoring::{service::LeadScoring, ScoringError};
    /// use std::sync::Arc;
    /// let store = Arc::new(crm_storage_sqlite::SqliteStore::open_in_memory().unwrap());
    /// let crm = CrmService::builder().store(store.clone()).build().unwrap();
    /// let ctx = Context::user(TenantId::new(), UserId::new());
    /// crm.setup_tenant(&ctx).await.unwrap();
    /// let scoring = LeadScoring::new(CommerceService::new(crm, store, Currency::parse("EUR").unwrap()));
    /// // A new tenant has no history to learn from: no score rather than a score from noise.
    /// assert_eq!(
    ///     scoring.fit(ctx.tenant).await.unwrap_err(),
    ///     ScoringError::NotEnoughHistory { closed: 0, won: 0, lost: 0 }
    /// );
    /// # });
    /// ```
    ///
    /// # Errors
    ///
    /// [`ScoringError::NotEnoughHistory`] as [`Scorer::fit`]; [`ScoringError::Store`] when the store cannot be read.
    pub async fn fit(&self, tenant: TenantId) -> Result<Scorer, ScoringError> {
        let mut history = Vec::new();
        let mut pipelines = Pipelines::new();
        for status in [StatusKind::Won, StatusKind::Lost] {
            for lead in self.leads(tenant, status).await? {
                let facts = self.facts_with(tenant, &lead, &mut pipelines).await?;
                history.push((lead.id(), facts, status == StatusKind::Won));
            }
        }
        Scorer::fit(&history)
    }

    /// The tenant's open leads scored by `scorer`, highest score first (then oldest lead first). The module's
    /// example fits, ranks and stores.
    ///
    /// # Errors
    ///
    /// [`ScoringError::Store`] when the store cannot be read.
    pub async fn rank_open(
        &self,
        tenant: TenantId,
        scorer: &Scorer,
    ) -> Result<Vec<Ranked>, ScoringError> {
        let mut out = Vec::new();
        let mut pipelines = Pipelines::new();
        for lead in self.leads(tenant, StatusKind::Open).await? {
            let facts = self.facts_with(tenant, &lead, &mut pipelines).await?;
            out.push(Ranked {
                score: scorer.score(&facts)?,
                lead,
            });
        }
        out.sort_by(|a, b| {
            b.score
                .probability
                .total_cmp(&a.score.probability)
                .then_with(|| a.lead.id().cmp(&b.lead.id()))
        });
        Ok(out)
    }

    /// Scores the tenant's open leads with `scorer` and stores each score on its lead (`LeadCommand::Score`), so the
    /// board sorts by it (`LeadSort::ScoreDesc`) and the rules hear `lead_scored`. A lead whose score says the same
    /// as before is left alone; a lead changed by someone between the read and the write is read again and scored
    /// once more (twice at most, then counted as a conflict and left for the next run). The module's example runs
    /// it.
    ///
    /// # Errors
    ///
    /// [`ScoringError::Store`] when the store cannot be read or written (a conflict is counted, not an error).
    pub async fn score_open(&self, ctx: &Context, scorer: &Scorer) -> Result<Scored, ScoringError> {
        let crm = self.commerce.crm();
        let mut out = Scored::default();
        let mut pipelines = Pipelines::new();
        for lead in self.leads(ctx.tenant, StatusKind::Open).await? {
            let mut lead = lead;
            let mut attempt = 0;
            loop {
                let score = to_lead_score(
                    &scorer.score(&self.facts_with(ctx.tenant, &lead, &mut pipelines).await?)?,
                    crm.clock().now(),
                );
                if lead.score().is_some_and(|s| s.same_as(&score)) {
                    out.unchanged += 1;
                    break;
                }
                match crm
                    .transition(ctx, lead.id(), lead.version(), LeadCommand::Score(score))
                    .await
                {
                    Ok(_) => {
                        out.scored += 1;
                        break;
                    }
                    Err(crm_core::Error::Conflict { .. }) if attempt == 0 => {
                        attempt += 1;
                        lead = crm.lead(ctx.tenant, lead.id()).await?;
                        if lead.status().kind() != StatusKind::Open {
                            break;
                        }
                    }
                    Err(crm_core::Error::Conflict { .. }) => {
                        out.conflicts += 1;
                        break;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(out)
    }

    /// Every lead of the tenant with `status`.
    async fn leads(
        &self,
        tenant: TenantId,
        status: crm_core::lead::StatusKind,
    ) -> Result<Vec<Lead>, ScoringError> {
        let store = self.commerce.crm().store();
        let mut q = LeadQuery {
            status: Some(status),
            page: PageRequest::first(PageRequest::MAX),
            ..LeadQuery::default()
        };
        let mut out = Vec::new();
        loop {
            let page = store.query_leads(tenant, &q).await?;
            out.extend(page.items);
            match page.next {
                Some(next) => q.page.after = Some(next),
                None => return Ok(out),
            }
        }
    }

    /// A lead's facts: now for an open lead, at its close for a closed one (the module's example reads one).
    ///
    /// # Errors
    ///
    /// [`ScoringError::Store`] when the store cannot be read.
    pub async fn facts(&self, tenant: TenantId, lead: &Lead) -> Result<Facts, ScoringError> {
        self.facts_with(tenant, lead, &mut Pipelines::new()).await
    }

    /// [`LeadScoring::facts`] with the pipelines read so far in this run.
    async fn facts_with(
        &self,
        tenant: TenantId,
        lead: &Lead,
        pipelines: &mut Pipelines,
    ) -> Result<Facts, ScoringError> {
        // A closed lead's facts are those before its close (the events of the close are the answer, not facts).
        let (end, closed) = match lead.status() {
            LeadStatus::Won { at } | LeadStatus::Lost { at, .. } => (*at, true),
            _ => (self.commerce.crm().clock().now(), false),
        };
        let partner = self
            .commerce
            .crm()
            .store()
            .partner(tenant, lead.partner())
            .await?;
        let mut timeline = Vec::new();
        let mut page = PageRequest::first(PageRequest::MAX);
        loop {
            let p = self
                .commerce
                .crm()
                .timeline(tenant, TimelineOf::Lead(lead.id()), &page)
                .await?;
            timeline.extend(p.items);
            match p.next {
                Some(next) => page.after = Some(next),
                None => break,
            }
        }
        let before_end = timeline.iter().filter(|e| {
            (e.at < end || (!closed && e.at == end))
                && !matches!(
                    e.kind,
                    EventKind::LeadWon { .. } | EventKind::LeadLost { .. }
                )
        });
        let activities = before_end.clone().count();
        let last_contact = before_end
            .filter(|e| {
                matches!(
                    e.kind,
                    EventKind::CallLogged { .. }
                        | EventKind::EmailSent { .. }
                        | EventKind::MeetingHeld { .. }
                        | EventKind::CallOutcomeRecorded { .. }
                )
            })
            .map(|e| e.at)
            .max();
        // The open stage it is in, or was in at its close: a won lead's stage before it moved into the won one.
        let mut stage = lead.stage();
        if matches!(lead.status(), LeadStatus::Won { .. }) {
            if let Some(from) = timeline.iter().find_map(|e| match e.kind {
                EventKind::LeadStageMoved { from, to, .. } if to == lead.stage() && e.at <= end => {
                    Some(from)
                }
                _ => None,
            }) {
                stage = from;
            }
        }
        let pipeline = match pipelines.entry(lead.pipeline()) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => e.insert(
                self.commerce
                    .crm()
                    .store()
                    .pipeline(tenant, lead.pipeline())
                    .await?,
            ),
        };
        let stage = pipeline
            .stage(stage)
            .ok()
            .filter(|s| s.kind != crm_core::pipeline::StageKind::Won)
            .map(|s| s.name.clone());
        let created = lead.created_at().date_naive();
        let filter = DocumentFilter {
            partner: Some(lead.partner()),
            from: created.checked_sub_days(chrono::Days::new(365)),
            before: Some(created),
            kind: None,
        };
        let (mut past_units, mut after) = (0i128, None);
        loop {
            let key = CommerceKey::DocumentsAfter {
                after,
                limit: PageRequest::MAX,
                filter: filter.clone(),
            };
            let page = self.commerce.store().fetch_commerce(tenant, &key).await?;
            let Some(CommerceRecord::Document(last)) = page.last() else {
                break;
            };
            after = Some(last.id());
            past_units += page
                .iter()
                .filter_map(|r| match r {
                    CommerceRecord::Document(d) => Some(i128::from(d.revenue_units())),
                    _ => None,
                })
                .sum::<i128>();
        }
        let days =
            |from: Timestamp| u32::try_from((end - from).num_days().max(0)).unwrap_or(u32::MAX);
        Ok(Facts {
            from_campaign: lead.source().campaign.is_some(),
            medium: lead.source().medium.clone(),
            industry: partner
                .industry()
                .map(|i| i.code.clone().unwrap_or_else(|| i.name.clone())),
            stage,
            turnover: partner.turnover().and_then(|t| t.amount.amount().to_f64()),
            age_days: days(lead.created_at()),
            activities: u32::try_from(activities).unwrap_or(u32::MAX),
            days_since_contact: last_contact.map(days),
            past_purchases: past_units as f64 / 10_000.0,
        })
    }
}
