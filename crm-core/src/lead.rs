//! Leads and the pure transition function.
//!
//! The lead's **status** ([`LeadStatus`]: open, won, lost) is kept apart from its **stage**: "lost" is not a stage,
//! and "won" is both the status and the fact that the lead sits in a won-kind stage. Every change goes through
//! [`apply`], a pure function of the lead, the command, the pipeline and the facts it needs, which returns the new
//! lead and the events to record, or a [`TransitionError`] naming the rule that refused it.

pub use crate::error::TransitionError;
use crate::error::{Error, Result};
use crate::event::{EventKind, FieldChange, RequestStatus};
use crate::id::{
    CampaignId, ContactId, LeadId, LostReasonId, PartnerId, PipelineId, StageId, TenantId, UserId,
};
pub use crate::kinds::StatusKind;
use crate::money::Money;
use crate::pipeline::{LeadField, LostReason, MovePolicy, Pipeline, Requirement, StageKind};
use crate::time::Timestamp;
use crate::validate;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Where a lead stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum LeadStatus {
    /// Being worked.
    Open,
    /// Won.
    Won {
        /// When.
        at: Timestamp,
    },
    /// Lost.
    Lost {
        /// When.
        at: Timestamp,
        /// Why (from the tenant's list).
        reason: LostReasonId,
        /// The competitor that won, if known.
        competitor: Option<String>,
        /// A note.
        note: Option<String>,
    },
    /// Merged into another lead: a tombstone. The service reads it as the survivor; no board, list, funnel or
    /// report counts it; nothing moves it but undoing the merge.
    Merged {
        /// The lead it was merged into.
        into: LeadId,
        /// The merge ([`crate::lead_merge::LeadMerge`]).
        merge: crate::id::MergeId,
        /// When.
        at: Timestamp,
    },
}

impl std::fmt::Display for StatusKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl LeadStatus {
    /// The status without its data.
    pub fn kind(&self) -> StatusKind {
        match self {
            Self::Open => StatusKind::Open,
            Self::Won { .. } => StatusKind::Won,
            Self::Lost { .. } => StatusKind::Lost,
            Self::Merged { .. } => StatusKind::Merged,
        }
    }
}

/// How urgent a lead or request is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Low.
    Low,
    /// Normal.
    #[default]
    Normal,
    /// High.
    High,
    /// Urgent.
    Urgent,
}

/// Where a lead came from (UTM-style), including the campaign that produced it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadSource {
    /// The campaign, when the lead came from one.
    pub campaign: Option<CampaignId>,
    /// The medium ("phone", "e-mail", "web").
    pub medium: Option<String>,
    /// The source ("fair 2026", "referral").
    pub source: Option<String>,
}

record! {
    /// A sales opportunity.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Lead {
        /// The lead's id.
        id: LeadId,
        /// The tenant.
        tenant: TenantId,
        /// The partner (a prospect or customer).
        partner: PartnerId,
        /// The partner's contact person for this lead.
        contact: Option<ContactId>,
        /// Title.
        title: String => &str = borrow,
        /// Description.
        description: Option<String> => Option<&str> = deref,
        /// The pipeline.
        pipeline: PipelineId,
        /// The current stage.
        stage: StageId,
        /// Open, won or lost.
        status: LeadStatus => &LeadStatus = borrow,
        /// Expected revenue.
        expected_revenue: Option<Money>,
        /// Effective probability 0–100: 100 when won, 0 when lost, else the override or the stage default.
        probability: u8,
        /// A probability set by hand; it survives stage moves and reopening.
        probability_override: Option<u8>,
        /// The owner (sales agent).
        owner: Option<UserId>,
        /// Expected close date.
        expected_close: Option<NaiveDate>,
        /// Where it came from.
        source: LeadSource => &LeadSource = borrow,
        /// Priority.
        priority: Priority,
        /// Tags (lower case).
        tags: BTreeSet<String> => &BTreeSet<String> = borrow,
        /// The host's own code for the lead (its ERP's opportunity or enquiry number), unique in the tenant.
        #[serde(default)]
        host_ref: Option<String> => Option<&str> = deref,
        /// The score the tenant's own history gives it (`crm-scoring`): the chance of winning in percent, with its
        /// reasons. Set by [`LeadCommand::Score`]; staff only (the portal never shows leads' scores).
        #[serde(default)]
        score: Option<LeadScore> => Option<&LeadScore> = as_ref,
        /// Optimistic-concurrency version, 1 on creation.
        version: u64,
        /// When it was entered.
        created_at: Timestamp,
        /// When it last changed.
        updated_at: Timestamp,
        /// When it entered its current stage.
        stage_entered_at: Timestamp,
    }
}

impl Lead {
    /// The expected revenue weighted by the probability, rounded to 4 places.
    pub fn weighted_revenue(&self) -> Option<Money> {
        self.expected_revenue.and_then(|m| {
            m.times(rust_decimal::Decimal::new(self.probability as i64, 2))
                .ok()
        })
    }
}

/// The partner a new lead is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LeadPartner {
    /// An existing partner.
    Existing {
        /// The partner.
        id: PartnerId,
    },
    /// Create a new prospect partner (duplicate candidates are reported, not merged).
    New {
        /// The partner's data.
        partner: crate::partner::NewPartner,
    },
    /// Use the existing partner with the same host reference when the new one has one; else the one existing
    /// partner that matches strongly (same tax id or same e-mail address); else create it.
    MatchOrCreate {
        /// The partner's data.
        partner: crate::partner::NewPartner,
    },
}

/// Input for entering a lead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewLead {
    /// The partner.
    pub partner: LeadPartner,
    /// Title (required).
    pub title: String,
    /// Description.
    pub description: Option<String>,
    /// Pipeline; the tenant's default when `None`.
    pub pipeline: Option<PipelineId>,
    /// Starting stage; the pipeline's first stage when `None`. Must be an open stage.
    pub stage: Option<StageId>,
    /// The partner's contact for this lead.
    pub contact: Option<ContactId>,
    /// Expected revenue (not negative).
    pub expected_revenue: Option<Money>,
    /// Probability override (0–100).
    pub probability: Option<u8>,
    /// Owner.
    pub owner: Option<UserId>,
    /// Expected close date.
    pub expected_close: Option<NaiveDate>,
    /// Source.
    pub source: LeadSource,
    /// Priority.
    pub priority: Priority,
    /// Tags.
    pub tags: BTreeSet<String>,
    /// The host's own code for the lead (at most 64 characters, unique in the tenant).
    #[serde(default)]
    pub host_ref: Option<String>,
}

impl NewLead {
    /// A lead with a title for a partner, everything else defaulted.
    pub fn new(partner: LeadPartner, title: impl Into<String>) -> Self {
        Self {
            partner,
            title: title.into(),
            description: None,
            pipeline: None,
            stage: None,
            contact: None,
            expected_revenue: None,
            probability: None,
            owner: None,
            expected_close: None,
            source: LeadSource::default(),
            priority: Priority::Normal,
            tags: BTreeSet::new(),
            host_ref: None,
        }
    }

    /// Sets the host's own code for the lead.
    pub fn with_host_ref(mut self, host_ref: &str) -> Self {
        self.host_ref = Some(host_ref.into());
        self
    }

    /// For an existing partner.
    pub fn for_partner(partner: PartnerId, title: impl Into<String>) -> Self {
        Self::new(LeadPartner::Existing { id: partner }, title)
    }

    /// Sets the expected revenue.
    pub fn with_revenue(mut self, m: Money) -> Self {
        self.expected_revenue = Some(m);
        self
    }

    /// Sets the owner.
    pub fn with_owner(mut self, owner: UserId) -> Self {
        self.owner = Some(owner);
        self
    }

    /// Adds a tag.
    pub fn with_tag(mut self, tag: &str) -> Self {
        self.tags.insert(tag.into());
        self
    }

    /// Validates and builds the lead for a resolved partner in a pipeline.
    pub fn build(
        self,
        tenant: TenantId,
        partner: PartnerId,
        pipeline: &Pipeline,
        now: Timestamp,
    ) -> Result<(Lead, EventKind)> {
        let stage = match self.stage {
            Some(s) => {
                let st = pipeline.stage(s)?;
                if st.kind != StageKind::Open {
                    return Err(Error::invalid(
                        "stage",
                        format!(
                            "a new lead starts in an open stage; `{}` is a won stage",
                            st.name
                        ),
                    ));
                }
                st
            }
            None => pipeline.first_stage()?,
        };
        check_probability(self.probability)?;
        check_revenue(&self.expected_revenue)?;
        if let Some(d) = self.expected_close {
            crate::time::check_business_date("expected_close", d)?;
        }
        let source = LeadSource {
            campaign: self.source.campaign,
            medium: validate::optional(
                "source.medium",
                self.source.medium.as_deref(),
                validate::MAX_TAG,
            )?,
            source: validate::optional(
                "source.source",
                self.source.source.as_deref(),
                validate::MAX_NAME,
            )?,
        };
        let lead = Lead {
            id: LeadId::new(),
            tenant,
            partner,
            contact: self.contact,
            title: validate::name("title", &self.title)?,
            description: validate::optional(
                "description",
                self.description.as_deref(),
                validate::MAX_TEXT,
            )?,
            pipeline: pipeline.id,
            stage: stage.id,
            status: LeadStatus::Open,
            expected_revenue: self.expected_revenue,
            probability: self.probability.unwrap_or(stage.probability),
            probability_override: self.probability,
            owner: self.owner,
            expected_close: self.expected_close,
            source,
            priority: self.priority,
            tags: crate::partner::build_tags(self.tags)?,
            host_ref: crate::partner::host_ref(self.host_ref.as_deref())?,
            score: None,
            version: 1,
            created_at: now,
            updated_at: now,
            stage_entered_at: now,
        };
        let event = EventKind::LeadEntered {
            title: lead.title.clone(),
            pipeline: lead.pipeline,
            stage: lead.stage,
            owner: lead.owner,
            expected_revenue: lead.expected_revenue,
        };
        Ok((lead, event))
    }
}

fn check_probability(p: Option<u8>) -> Result<()> {
    match p {
        Some(p) if p > 100 => Err(Error::invalid(
            "probability",
            format!("{p} is outside 0–100"),
        )),
        _ => Ok(()),
    }
}

fn check_revenue(m: &Option<Money>) -> Result<()> {
    match m {
        Some(m) if m.is_negative() => Err(Error::invalid(
            "expected_revenue",
            format!("{m} is negative"),
        )),
        _ => Ok(()),
    }
}

/// A change to a lead's fields: every `Some` replaces the current value (`Some(None)` clears an optional one).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadPatch {
    /// New title.
    pub title: Option<String>,
    /// New description.
    pub description: Option<Option<String>>,
    /// New contact.
    pub contact: Option<Option<ContactId>>,
    /// New expected revenue.
    pub expected_revenue: Option<Option<Money>>,
    /// New probability override; `Some(None)` returns to the stage default.
    pub probability: Option<Option<u8>>,
    /// New owner.
    pub owner: Option<Option<UserId>>,
    /// New expected close date.
    pub expected_close: Option<Option<NaiveDate>>,
    /// New priority.
    pub priority: Option<Priority>,
    /// New tags (replaces the set).
    pub tags: Option<BTreeSet<String>>,
    /// New host reference (`Some(None)` clears it).
    #[serde(default)]
    pub host_ref: Option<Option<String>>,
}

/// A lead's score: the chance of winning its tenant's history gives it, in percent, and why.
///
/// Computed outside the core (the `crm-scoring` crate fits a model on the tenant's won and lost leads) and set with
/// [`LeadCommand::Score`]; the board sorts by it ([`crate::store::LeadSort::ScoreDesc`]) and the rules read it as
/// `ev.lead.score` on `lead_scored`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadScore {
    /// The chance of winning, 0–100.
    pub value: u8,
    /// The largest contributions, largest first (at most [`LeadScore::MAX_REASONS`]).
    pub reasons: Vec<ScoreReason>,
    /// When it was computed.
    pub scored_at: Timestamp,
}

/// One reason of a [`LeadScore`]: a feature and its contribution to the log-odds of winning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScoreReason {
    /// The feature, as a person reads it (`past purchases`, `industry: wholesale`, `not brought by a campaign`).
    pub feature: String,
    /// Its contribution to the log-odds of winning, to 2 places: positive raises the score.
    pub contribution: rust_decimal::Decimal,
}

impl LeadScore {
    /// The most reasons a score keeps.
    pub const MAX_REASONS: usize = 10;

    /// Checks a score: a value of at most 100, at most [`LeadScore::MAX_REASONS`] reasons with named features.
    ///
    /// ```
    /// use crm_core::lead::{LeadScore, ScoreReason};
    /// let s = LeadScore { value: 101, reasons: vec![], scored_at: chrono::Utc::now() };
    /// assert_eq!(s.validate().unwrap_err().field(), Some("score.value"));
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] naming `score.value`, `score.reasons` or `score.reasons.feature`.
    pub fn validate(&self) -> Result<()> {
        if self.value > 100 {
            return Err(Error::invalid(
                "score.value",
                format!("{} is above 100", self.value),
            ));
        }
        if self.reasons.len() > Self::MAX_REASONS {
            return Err(Error::invalid(
                "score.reasons",
                format!(
                    "{} reasons; at most {}",
                    self.reasons.len(),
                    Self::MAX_REASONS
                ),
            ));
        }
        for r in &self.reasons {
            validate::name("score.reasons.feature", &r.feature)?;
        }
        Ok(())
    }

    /// Whether two scores say the same (the value and the reasons, whenever computed).
    pub fn same_as(&self, other: &LeadScore) -> bool {
        self.value == other.value && self.reasons == other.reasons
    }
}

/// What to do to a lead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LeadCommand {
    /// Move to another stage of the pipeline (a won-kind stage wins the lead).
    MoveTo {
        /// The target stage.
        stage: StageId,
    },
    /// Win: move to the pipeline's won stage.
    Win,
    /// Lose, with a reason from the tenant's list.
    Lose {
        /// The reason; `None` is refused with [`TransitionError::MissingLostReason`].
        reason: Option<LostReasonId>,
        /// The competitor that won.
        competitor: Option<String>,
        /// A note.
        note: Option<String>,
    },
    /// Reopen a won or lost lead, optionally in a given open stage.
    Reopen {
        /// The stage to reopen in; by default a lost lead stays in its stage and a won lead returns to the last open
        /// stage.
        stage: Option<StageId>,
    },
    /// Change fields.
    Update(LeadPatch),
    /// Set the lead's score (an open lead only). A score that says the same as the current one changes nothing;
    /// another bumps the version but not `updated_at` (a nightly rescoring does not make every lead look worked on)
    /// and records [`EventKind::LeadScored`].
    Score(LeadScore),
}

/// What [`apply`] needs to know besides the lead and the pipeline.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// The tenant's lost reasons.
    pub lost_reasons: &'a [LostReason],
    /// The lead's requests: (kind, status) pairs.
    pub requests: &'a [(Option<String>, RequestStatus)],
    /// The statuses of the lead's quotation revisions (read only when a stage requires a sent quotation).
    pub quotations: &'a [crate::kinds::QuotationStatus],
}

/// The outcome of a successful [`apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The lead after the change (version bumped when anything changed).
    pub lead: Lead,
    /// What happened, in order.
    pub events: Vec<EventKind>,
    /// Whether the stage or status changed (a stage-history step is due).
    pub moved: bool,
}

/// The pure transition function: the heart of lead management.
///
/// ```
/// use crm_core::lead::{apply, Facts, LeadCommand, LeadPartner, NewLead, TransitionError};
/// use crm_core::pipeline::{LostReason, NewPipeline};
/// use crm_core::id::{PartnerId, TenantId};
/// use chrono::Utc;
/// let tenant = TenantId::new();
/// let now = Utc::now();
/// let pipeline = NewPipeline::seed_default().build(tenant, now).unwrap();
/// let reasons = LostReason::seed_defaults(tenant);
/// let facts = Facts { lost_reasons: &reasons, requests: &[], quotations: &[] };
/// let (lead, _) = NewLead::for_partner(PartnerId::new(), "Forklifts").build(tenant, PartnerId::new(), &pipeline, now).unwrap();
/// let offer = pipeline.stage_named("Offer").unwrap().id;
/// let t = apply(&lead, LeadCommand::MoveTo { stage: offer }, &pipeline, facts, now).unwrap();
/// assert_eq!(t.lead.stage(), offer);
/// assert_eq!(t.lead.probability(), 50);
/// let err = apply(&t.lead, LeadCommand::Lose { reason: None, competitor: None, note: None }, &pipeline, facts, now).unwrap_err();
/// assert!(matches!(err, crm_core::Error::Transition(TransitionError::MissingLostReason)));
/// ```
pub fn apply(
    lead: &Lead,
    cmd: LeadCommand,
    pipeline: &Pipeline,
    facts: Facts<'_>,
    now: Timestamp,
) -> Result<Transition> {
    if pipeline.id != lead.pipeline {
        return Err(Error::invalid(
            "pipeline",
            "the pipeline given is not the lead's pipeline",
        ));
    }
    if lead.status.kind() == StatusKind::Merged {
        // A tombstone does not change (the service applies commands to the survivor it resolves to).
        return Err(TransitionError::NotOpen {
            lead: lead.id,
            status: StatusKind::Merged,
        }
        .into());
    }
    let mut next = lead.clone();
    let mut events = Vec::new();
    let mut moved = false;
    match cmd {
        LeadCommand::MoveTo { stage } => {
            require_open(lead)?;
            let target = pipeline
                .stages
                .iter()
                .find(|s| s.id == stage)
                .ok_or(TransitionError::UnknownStage { stage })?;
            let current = pipeline.stage(lead.stage)?;
            if target.id == current.id {
                return Err(TransitionError::SameStage {
                    stage: target.name.clone(),
                }
                .into());
            }
            let allowed = match pipeline.policy {
                MovePolicy::Free => true,
                MovePolicy::ForwardOnly => target.sequence > current.sequence,
                MovePolicy::Sequential => {
                    target.sequence < current.sequence
                        || pipeline
                            .stages
                            .iter()
                            .find(|s| s.sequence > current.sequence)
                            .map(|s| s.id)
                            == Some(target.id)
                }
            };
            if !allowed {
                return Err(TransitionError::IllegalMove {
                    from: current.name.clone(),
                    to: target.name.clone(),
                    policy: pipeline.policy,
                }
                .into());
            }
            check_requirements(lead, target, facts)?;
            enter_stage(&mut next, pipeline, target.id, now, &mut events)?;
            if target.kind == StageKind::Won {
                next.status = LeadStatus::Won { at: now };
                events.push(EventKind::LeadWon { stage: target.id });
            }
            moved = true;
        }
        LeadCommand::Win => {
            require_open(lead)?;
            let won = pipeline
                .won_stage()
                .ok_or_else(|| TransitionError::NoWonStage {
                    pipeline: pipeline.name.clone(),
                })?;
            check_requirements(lead, won, facts)?;
            if lead.stage != won.id {
                enter_stage(&mut next, pipeline, won.id, now, &mut events)?;
            }
            next.status = LeadStatus::Won { at: now };
            events.push(EventKind::LeadWon { stage: won.id });
            moved = true;
        }
        LeadCommand::Lose {
            reason,
            competitor,
            note,
        } => {
            require_open(lead)?;
            let reason = reason.ok_or(TransitionError::MissingLostReason)?;
            let r = facts
                .lost_reasons
                .iter()
                .find(|r| r.id == reason && r.active && r.tenant == lead.tenant)
                .ok_or(TransitionError::UnknownLostReason { reason })?;
            let competitor =
                validate::optional("competitor", competitor.as_deref(), validate::MAX_NAME)?;
            let note = validate::optional("note", note.as_deref(), validate::MAX_TEXT)?;
            next.status = LeadStatus::Lost {
                at: now,
                reason,
                competitor: competitor.clone(),
                note: note.clone(),
            };
            events.push(EventKind::LeadLost {
                reason,
                reason_name: r.name.clone(),
                competitor,
                note,
            });
            moved = true;
        }
        LeadCommand::Reopen { stage } => {
            if lead.status == LeadStatus::Open {
                return Err(TransitionError::AlreadyOpen { lead: lead.id }.into());
            }
            let target = match stage {
                Some(s) => pipeline
                    .stages
                    .iter()
                    .find(|st| st.id == s)
                    .ok_or(TransitionError::UnknownStage { stage: s })?,
                None => match lead.status {
                    LeadStatus::Won { .. } => pipeline.last_open_stage()?,
                    _ => pipeline.stage(lead.stage)?,
                },
            };
            if target.kind == StageKind::Won {
                return Err(TransitionError::ReopenIntoWonStage {
                    stage: target.name.clone(),
                }
                .into());
            }
            next.status = LeadStatus::Open;
            if target.id != lead.stage {
                enter_stage(&mut next, pipeline, target.id, now, &mut events)?;
            }
            events.push(EventKind::LeadReopened { stage: target.id });
            moved = true;
        }
        LeadCommand::Update(patch) => {
            let changes = patch_fields(&mut next, patch, pipeline)?;
            if !changes.is_empty() {
                events.push(EventKind::LeadUpdated { changes });
            }
        }
        LeadCommand::Score(score) => {
            require_open(lead)?;
            score.validate()?;
            if lead.score.as_ref().is_some_and(|s| s.same_as(&score)) {
                return Ok(Transition {
                    lead: next,
                    events,
                    moved,
                });
            }
            events.push(EventKind::LeadScored {
                value: score.value,
                previous: lead.score.as_ref().map(|s| s.value),
            });
            next.score = Some(score);
            next.version = lead.version + 1;
            return Ok(Transition {
                lead: next,
                events,
                moved,
            });
        }
    }
    next.probability = effective_probability(&next, pipeline)?;
    if !events.is_empty() {
        next.version = lead.version + 1;
        next.updated_at = now;
    }
    Ok(Transition {
        lead: next,
        events,
        moved,
    })
}

/// The probability a lead has in its status and stage: 100 won, 0 lost, else its override or the stage default.
pub fn effective_probability(lead: &Lead, pipeline: &Pipeline) -> Result<u8> {
    Ok(match lead.status {
        LeadStatus::Won { .. } => 100,
        LeadStatus::Lost { .. } | LeadStatus::Merged { .. } => 0,
        LeadStatus::Open => match lead.probability_override {
            Some(p) => p,
            None => pipeline.stage(lead.stage)?.probability,
        },
    })
}

fn require_open(lead: &Lead) -> Result<()> {
    match lead.status.kind() {
        StatusKind::Open => Ok(()),
        status => Err(TransitionError::NotOpen {
            lead: lead.id,
            status,
        }
        .into()),
    }
}

fn enter_stage(
    next: &mut Lead,
    pipeline: &Pipeline,
    to: StageId,
    now: Timestamp,
    events: &mut Vec<EventKind>,
) -> Result<()> {
    let from = pipeline.stage(next.stage)?;
    let target = pipeline.stage(to)?;
    events.push(EventKind::LeadStageMoved {
        from: from.id,
        to: target.id,
        from_name: from.name.clone(),
        to_name: target.name.clone(),
    });
    next.stage = target.id;
    next.stage_entered_at = now;
    Ok(())
}

fn check_requirements(lead: &Lead, stage: &crate::pipeline::Stage, facts: Facts<'_>) -> Result<()> {
    for r in &stage.requirements {
        let met = match r {
            Requirement::Field { field } => match field {
                LeadField::ExpectedRevenue => lead.expected_revenue.is_some(),
                LeadField::ExpectedClose => lead.expected_close.is_some(),
                LeadField::Owner => lead.owner.is_some(),
                LeadField::Contact => lead.contact.is_some(),
            },
            Requirement::RequestDone { kind } => facts
                .requests
                .iter()
                .any(|(k, s)| k.as_deref() == Some(kind.as_str()) && *s == RequestStatus::Done),
            Requirement::NoOpenRequests => !facts.requests.iter().any(|(_, s)| s.is_active()),
            Requirement::QuotationSent => facts
                .quotations
                .iter()
                .any(|s| *s != crate::kinds::QuotationStatus::Draft),
        };
        if !met {
            return Err(TransitionError::UnmetRequirement {
                stage: stage.name.clone(),
                requirement: r.clone(),
            }
            .into());
        }
    }
    Ok(())
}

fn patch_fields(
    next: &mut Lead,
    patch: LeadPatch,
    pipeline: &Pipeline,
) -> Result<Vec<FieldChange>> {
    let before = next.clone();
    if let Some(t) = patch.title {
        next.title = validate::name("title", &t)?;
    }
    if let Some(d) = patch.description {
        next.description = validate::optional("description", d.as_deref(), validate::MAX_TEXT)?;
    }
    if let Some(c) = patch.contact {
        next.contact = c;
    }
    if let Some(m) = patch.expected_revenue {
        check_revenue(&m)?;
        next.expected_revenue = m;
    }
    if let Some(p) = patch.probability {
        check_probability(p)?;
        next.probability_override = p;
        next.probability = effective_probability(next, pipeline)?;
    }
    if let Some(o) = patch.owner {
        next.owner = o;
    }
    if let Some(d) = patch.expected_close {
        if let Some(day) = d {
            crate::time::check_business_date("expected_close", day)?;
        }
        next.expected_close = d;
    }
    if let Some(p) = patch.priority {
        next.priority = p;
    }
    if let Some(t) = patch.tags {
        next.tags = crate::partner::build_tags(t)?;
    }
    if let Some(r) = patch.host_ref {
        next.host_ref = crate::partner::host_ref(r.as_deref())?;
    }
    let mut changes = Vec::new();
    macro_rules! diff {
        ($($f:ident),*) => {$(
            if before.$f != next.$f {
                changes.push(FieldChange::new(stringify!($f), &before.$f, &next.$f));
            }
        )*};
    }
    diff!(
        title,
        description,
        contact,
        expected_revenue,
        probability_override,
        owner,
        expected_close,
        priority,
        tags,
        host_ref
    );
    Ok(changes)
}

/// Time spent in each stage, from a lead's stage history, up to `now` for the current stage of an open lead.
///
/// Returns `(stage, seconds)` pairs in the order stages were first entered; a stage entered twice sums both stays.
pub fn time_in_stage(
    history: &[crate::event::StageHistoryEntry],
    now: Timestamp,
) -> Vec<(StageId, i64)> {
    let mut out: Vec<(StageId, i64)> = Vec::new();
    for (i, h) in history.iter().enumerate() {
        if h.status != StatusKind::Open && h.from == Some(h.to) {
            continue;
        }
        let end = match history.get(i + 1) {
            Some(n) => n.at,
            None if h.status == StatusKind::Open => now,
            None => h.at,
        };
        if h.status != StatusKind::Open {
            continue;
        }
        let secs = (end - h.at).num_seconds().max(0);
        match out.iter_mut().find(|(s, _)| *s == h.to) {
            Some(e) => e.1 += secs,
            None => out.push((h.to, secs)),
        }
    }
    out
}
