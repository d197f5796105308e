//! Pipelines and stages as ordered data, not an enum.
//!
//! A stage has a kind (open or won), a default probability, a fold flag and requirements checked when a lead enters
//! it. "Lost" is not a stage: it is the lead's status (see [`crate::lead::LeadStatus`]).

use crate::error::{Error, Result};
use crate::id::{LostReasonId, PipelineId, StageId, TenantId};
pub use crate::kinds::{LeadField, MovePolicy, Requirement};
use crate::time::Timestamp;
use crate::validate;
use serde::{Deserialize, Serialize};

/// Whether leads in a stage are still being worked or have been won.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageKind {
    /// Work in progress.
    Open,
    /// Entering this stage wins the lead.
    Won,
}

/// One stage of a pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stage {
    /// The stage's id.
    pub id: StageId,
    /// Display name.
    pub name: String,
    /// Position: stages are ordered by ascending sequence.
    pub sequence: u32,
    /// Open or won.
    pub kind: StageKind,
    /// Default probability (0–100) for open leads in this stage.
    pub probability: u8,
    /// Whether boards show this column folded.
    pub fold: bool,
    /// Conditions a lead must meet to enter.
    pub requirements: Vec<Requirement>,
}

record! {
    /// A pipeline: an ordered list of stages and the policy for moving between them.
    ///
    /// Its fields are public data, so its invariants ([`Pipeline::check`]: 1 to 50 stages, at least one open, strictly
    /// increasing sequences, distinct ids and names, probabilities) are checked by [`NewPipeline::build`], by
    /// deserialisation and by every store's commit ([`crate::store::ChangeSet::check`]).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(try_from = "RawPipeline")]
    pub struct Pipeline {
        /// The pipeline's id.
        id: PipelineId,
        /// The tenant it belongs to.
        tenant: TenantId,
        /// Display name.
        name: String => &str = borrow,
        /// Stages, ordered by sequence.
        stages: Vec<Stage> => &[Stage] = borrow,
        /// How leads may move.
        policy: MovePolicy,
        /// Whether new leads go here when no pipeline is named.
        is_default: bool,
        /// Optimistic-concurrency version.
        version: u64,
        /// When it was created.
        created_at: Timestamp,
    }
}

/// The serialised form of [`Pipeline`], checked on the way in.
#[derive(Deserialize)]
struct RawPipeline {
    id: PipelineId,
    tenant: TenantId,
    name: String,
    stages: Vec<Stage>,
    policy: MovePolicy,
    is_default: bool,
    version: u64,
    created_at: Timestamp,
}

impl TryFrom<RawPipeline> for Pipeline {
    type Error = Error;

    fn try_from(r: RawPipeline) -> Result<Self> {
        let p = Pipeline {
            id: r.id,
            tenant: r.tenant,
            name: r.name,
            stages: r.stages,
            policy: r.policy,
            is_default: r.is_default,
            version: r.version,
            created_at: r.created_at,
        };
        p.check()?;
        Ok(p)
    }
}

/// The most stages a pipeline may have.
pub const MAX_STAGES: usize = 50;

/// Input for a new stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewStage {
    /// Display name.
    pub name: String,
    /// Open or won.
    pub kind: StageKind,
    /// Default probability (0–100).
    pub probability: u8,
    /// Fold flag.
    pub fold: bool,
    /// Requirements.
    pub requirements: Vec<Requirement>,
}

impl NewStage {
    /// An open stage with a probability and no requirements.
    pub fn open(name: &str, probability: u8) -> Self {
        Self {
            name: name.into(),
            kind: StageKind::Open,
            probability,
            fold: false,
            requirements: Vec::new(),
        }
    }

    /// A won stage (probability 100).
    pub fn won(name: &str) -> Self {
        Self {
            name: name.into(),
            kind: StageKind::Won,
            probability: 100,
            fold: true,
            requirements: Vec::new(),
        }
    }

    /// Adds a requirement.
    pub fn requiring(mut self, r: Requirement) -> Self {
        self.requirements.push(r);
        self
    }
}

/// Input for a new pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewPipeline {
    /// Display name.
    pub name: String,
    /// Stages in order.
    pub stages: Vec<NewStage>,
    /// Move policy.
    pub policy: MovePolicy,
    /// Whether it is the tenant's default.
    pub is_default: bool,
}

impl NewPipeline {
    /// The seed's pipeline: record, contact, qualification, offer, negotiation, contract (won).
    pub fn seed_default() -> Self {
        Self {
            name: "Sales".into(),
            stages: vec![
                NewStage::open("Record", 10),
                NewStage::open("Contact", 20),
                NewStage::open("Qualification", 30),
                NewStage::open("Offer", 50),
                NewStage::open("Negotiation", 70),
                NewStage::won("Contract"),
            ],
            policy: MovePolicy::Free,
            is_default: true,
        }
    }

    /// Validates and builds the pipeline (see [`Pipeline::check`] for what is checked).
    pub fn build(self, tenant: TenantId, now: Timestamp) -> Result<Pipeline> {
        let name = validate::name("name", &self.name)?;
        if self.stages.len() > MAX_STAGES {
            return Err(Error::invalid(
                "stages",
                format!("at most {MAX_STAGES} stages are allowed"),
            ));
        }
        let mut stages = Vec::with_capacity(self.stages.len());
        for (i, s) in self.stages.into_iter().enumerate() {
            stages.push(Stage {
                id: StageId::new(),
                name: validate::name(&format!("stages[{i}].name"), &s.name)?,
                sequence: (i as u32 + 1) * 10,
                kind: s.kind,
                probability: s.probability,
                fold: s.fold,
                requirements: s.requirements,
            });
        }
        let p = Pipeline {
            id: PipelineId::new(),
            tenant,
            name,
            stages,
            policy: self.policy,
            is_default: self.is_default,
            version: 1,
            created_at: now,
        };
        p.check()?;
        Ok(p)
    }
}

impl Pipeline {
    /// Checks the invariants every stored pipeline keeps: a name; 1 to [`MAX_STAGES`] stages, at least one of
    /// them open (where new leads start); stages in strictly increasing sequence, with distinct ids and
    /// (case-insensitively) distinct names; probabilities of at most 100, exactly 100 on won stages; request kinds
    /// that are tags. Errors name the field (`stages[2].probability`).
    pub fn check(&self) -> Result<()> {
        let name = validate::name("name", &self.name)?;
        if name != self.name {
            return Err(Error::invalid("name", "has spaces at its ends"));
        }
        if self.stages.is_empty() {
            return Err(Error::invalid(
                "stages",
                "a pipeline needs at least one stage",
            ));
        }
        if self.stages.len() > MAX_STAGES {
            return Err(Error::invalid(
                "stages",
                format!("at most {MAX_STAGES} stages are allowed"),
            ));
        }
        if !self.stages.iter().any(|s| s.kind == StageKind::Open) {
            return Err(Error::invalid(
                "stages",
                "a pipeline needs at least one open stage (where new leads start)",
            ));
        }
        for (i, s) in self.stages.iter().enumerate() {
            let field = |f: &str| format!("stages[{i}].{f}");
            let earlier = &self.stages[..i];
            if let Some(prev) = earlier.last() {
                if s.sequence <= prev.sequence {
                    return Err(Error::invalid(
                        field("sequence"),
                        format!(
                            "{} does not come after the previous stage's {}: stages are in increasing sequence",
                            s.sequence, prev.sequence
                        ),
                    ));
                }
            }
            if earlier.iter().any(|o| o.id == s.id) {
                return Err(Error::invalid(
                    field("id"),
                    format!("stage {} appears twice", s.id),
                ));
            }
            if s.probability > 100 {
                return Err(Error::invalid(
                    field("probability"),
                    format!("{} is outside 0–100", s.probability),
                ));
            }
            if s.kind == StageKind::Won && s.probability != 100 {
                return Err(Error::invalid(
                    field("probability"),
                    "a won stage has probability 100",
                ));
            }
            let sname = validate::name(&field("name"), &s.name)?;
            if sname != s.name {
                return Err(Error::invalid(field("name"), "has spaces at its ends"));
            }
            if earlier.iter().any(|o| o.name.eq_ignore_ascii_case(&sname)) {
                return Err(Error::invalid(
                    field("name"),
                    format!("stage `{sname}` appears twice"),
                ));
            }
            for r in &s.requirements {
                if let Requirement::RequestDone { kind } = r {
                    validate::tag(&field("requirements"), kind)?;
                }
            }
        }
        Ok(())
    }

    fn no_open_stage(&self) -> Error {
        Error::invalid(
            "stages",
            format!("pipeline `{}` has no open stage", self.name),
        )
    }

    /// The stage with this id, or a typed error.
    pub fn stage(&self, id: StageId) -> Result<&Stage> {
        self.stages.iter().find(|s| s.id == id).ok_or_else(|| {
            Error::invalid(
                "stage",
                format!("stage {id} is not in pipeline `{}`", self.name),
            )
        })
    }

    /// The stage with this name (case-insensitive).
    pub fn stage_named(&self, name: &str) -> Option<&Stage> {
        self.stages
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name))
    }

    /// The first open stage (where new leads start); an error naming `stages` for a pipeline without one (which
    /// [`Pipeline::check`] refuses).
    pub fn first_stage(&self) -> Result<&Stage> {
        self.stages
            .iter()
            .find(|s| s.kind == StageKind::Open)
            .ok_or_else(|| self.no_open_stage())
    }

    /// The first won stage, if the pipeline has one.
    pub fn won_stage(&self) -> Option<&Stage> {
        self.stages.iter().find(|s| s.kind == StageKind::Won)
    }

    /// The last open stage (where a reopened won lead goes back to); an error like [`Pipeline::first_stage`].
    pub fn last_open_stage(&self) -> Result<&Stage> {
        self.stages
            .iter()
            .rev()
            .find(|s| s.kind == StageKind::Open)
            .ok_or_else(|| self.no_open_stage())
    }
}

record! {
    /// A reason a lead can be lost, from the tenant's list.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct LostReason {
        /// The reason's id.
        id: LostReasonId,
        /// The tenant it belongs to.
        tenant: TenantId,
        /// Display name ("Too expensive").
        name: String => &str = borrow,
        /// Inactive reasons stay on old leads but cannot be chosen.
        active: bool,
    }
}

impl LostReason {
    /// Validates and builds a lost reason.
    pub fn new(tenant: TenantId, name: &str) -> Result<Self> {
        Ok(Self {
            id: LostReasonId::new(),
            tenant,
            name: validate::name("name", name)?,
            active: true,
        })
    }

    /// The reasons every tenant starts with.
    pub fn seed_defaults(tenant: TenantId) -> Vec<Self> {
        [
            "Too expensive",
            "Chose a competitor",
            "No budget",
            "No response",
            "Not a fit",
        ]
        .into_iter()
        .map(|n| Self::new(tenant, n).expect("seed names are valid"))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    #[test]
    fn seed_pipeline_has_the_seed_stages_in_order() {
        let p = NewPipeline::seed_default()
            .build(TenantId::new(), Utc::now())
            .unwrap();
        let names: Vec<_> = p.stages.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "Record",
                "Contact",
                "Qualification",
                "Offer",
                "Negotiation",
                "Contract"
            ]
        );
        assert!(p.stages.windows(2).all(|w| w[0].sequence < w[1].sequence));
        assert_eq!(p.won_stage().unwrap().name, "Contract");
        assert_eq!(p.first_stage().unwrap().name, "Record");
        assert_eq!(p.last_open_stage().unwrap().name, "Negotiation");
    }

    /// A pipeline written as data, bypassing [`NewPipeline::build`]: only won stages.
    fn raw_without_open_stage() -> Pipeline {
        let mut p = NewPipeline::seed_default()
            .build(TenantId::new(), Utc::now())
            .unwrap();
        p.stages.retain(|s| s.kind == StageKind::Won);
        p
    }

    #[test]
    fn a_raw_pipeline_without_an_open_stage_is_an_error_not_a_panic() {
        let p = raw_without_open_stage();
        assert_eq!(p.check().unwrap_err().field(), Some("stages"));
        assert_eq!(p.first_stage().unwrap_err().field(), Some("stages"));
        assert_eq!(p.last_open_stage().unwrap_err().field(), Some("stages"));
        let partner = crate::id::PartnerId::new();
        let e = crate::lead::NewLead::for_partner(partner, "Deal")
            .build(p.tenant, partner, &p, Utc::now())
            .unwrap_err();
        assert_eq!(e.field(), Some("stages"), "{e}");
        let json = serde_json::to_value(&p).unwrap();
        let e = serde_json::from_value::<Pipeline>(json).unwrap_err();
        assert!(e.to_string().contains("open stage"), "{e}");
        let good = NewPipeline::seed_default()
            .build(TenantId::new(), Utc::now())
            .unwrap();
        let back: Pipeline = serde_json::from_value(serde_json::to_value(&good).unwrap()).unwrap();
        assert_eq!(back, good);
    }

    #[test]
    fn raw_pipelines_break_no_invariant() {
        let good = NewPipeline::seed_default()
            .build(TenantId::new(), Utc::now())
            .unwrap();
        type Breaks = Box<dyn Fn(&mut Pipeline)>;
        let cases: Vec<(Breaks, &str)> = vec![
            (Box::new(|p| p.stages.clear()), "stages"),
            (Box::new(|p| p.stages[1].sequence = 5), "stages[1].sequence"),
            (
                Box::new(|p| p.stages[2].id = p.stages[0].id),
                "stages[2].id",
            ),
            (
                Box::new(|p| p.stages[2].name = "RECORD".into()),
                "stages[2].name",
            ),
            (
                Box::new(|p| p.stages[0].probability = 101),
                "stages[0].probability",
            ),
            (
                Box::new(|p| p.stages[5].probability = 90),
                "stages[5].probability",
            ),
            (Box::new(|p| p.name = " ".into()), "name"),
        ];
        for (break_it, field) in cases {
            let mut p = good.clone();
            break_it(&mut p);
            assert_eq!(p.check().unwrap_err().field(), Some(field));
        }
        assert!(good.check().is_ok());
    }

    #[test]
    fn bad_pipelines_are_refused_with_the_field() {
        let t = TenantId::new();
        let now = Utc::now();
        let mut p = NewPipeline::seed_default();
        p.stages[2].probability = 101;
        assert_eq!(
            p.build(t, now).unwrap_err().field(),
            Some("stages[2].probability")
        );
        let mut p = NewPipeline::seed_default();
        p.stages.clear();
        assert_eq!(p.build(t, now).unwrap_err().field(), Some("stages"));
        let mut p = NewPipeline::seed_default();
        p.stages[1].name = "record".into();
        assert_eq!(p.build(t, now).unwrap_err().field(), Some("stages[1].name"));
    }
}
