//! Data-driven tests of the pure lead transition function, and a property test that no command panics.

use chrono::{TimeZone, Utc};
use crm_core::event::RequestStatus;
use crm_core::id::{LostReasonId, PartnerId, TenantId};
use crm_core::lead::{apply, Facts, Lead, LeadCommand, LeadPatch, NewLead, StatusKind, Transition};
use crm_core::money::Money;
use crm_core::pipeline::{LostReason, MovePolicy, NewPipeline, Pipeline};
use crm_core::Error;
use proptest::prelude::*;

fn world(policy: MovePolicy) -> (Pipeline, Vec<LostReason>, Lead) {
    let t = TenantId::new();
    let now = Utc.with_ymd_and_hms(2026, 1, 5, 8, 0, 0).unwrap();
    let mut np = NewPipeline::seed_default();
    np.policy = policy;
    let p = np.build(t, now).unwrap();
    let reasons = LostReason::seed_defaults(t);
    let partner = PartnerId::new();
    let (lead, _) = NewLead::for_partner(partner, "Deal")
        .build(t, partner, &p, now)
        .unwrap();
    (p, reasons, lead)
}

/// A free-policy world in which commands apply at one instant, with no requests.
struct Free {
    p: Pipeline,
    reasons: Vec<LostReason>,
    lead: Lead,
    now: chrono::DateTime<Utc>,
}

impl Free {
    fn new() -> Self {
        let (p, reasons, lead) = world(MovePolicy::Free);
        Self {
            p,
            reasons,
            lead,
            now: Utc::now(),
        }
    }

    /// `cmd` applied to `lead`.
    fn apply(&self, lead: &Lead, cmd: LeadCommand) -> crm_core::Result<Transition> {
        let facts = Facts {
            lost_reasons: &self.reasons,
            requests: &[],
            quotations: &[],
        };
        apply(lead, cmd, &self.p, facts, self.now)
    }
}

/// Losing a lead for `reason`, with no competitor or note.
fn lose(reason: LostReasonId) -> LeadCommand {
    LeadCommand::Lose {
        reason: Some(reason),
        competitor: None,
        note: None,
    }
}

/// Runs `steps` (stage names, or `won`, `lost`, `reopen`) and returns the outcome code of each.
fn run(policy: MovePolicy, steps: &[&str]) -> Vec<String> {
    let (p, reasons, mut lead) = world(policy);
    let now = Utc.with_ymd_and_hms(2026, 1, 6, 8, 0, 0).unwrap();
    let requests: Vec<(Option<String>, RequestStatus)> = vec![];
    let facts = Facts {
        lost_reasons: &reasons,
        requests: &requests,
        quotations: &[],
    };
    steps
        .iter()
        .map(|s| {
            let cmd = match *s {
                "won" => LeadCommand::Win,
                "lost" => LeadCommand::Lose {
                    reason: Some(reasons[0].id()),
                    competitor: None,
                    note: None,
                },
                "lost?" => LeadCommand::Lose {
                    reason: None,
                    competitor: None,
                    note: None,
                },
                "reopen" => LeadCommand::Reopen { stage: None },
                name => LeadCommand::MoveTo {
                    stage: p.stage_named(name).unwrap().id,
                },
            };
            match apply(&lead, cmd, &p, facts, now) {
                Ok(t) => {
                    lead = t.lead;
                    format!(
                        "{}@{}",
                        lead.status().kind().as_str(),
                        p.stage(lead.stage()).unwrap().name
                    )
                }
                Err(Error::Transition(e)) => e.code().to_string(),
                Err(e) => format!("error:{e}"),
            }
        })
        .collect()
}

#[test]
fn transition_table() {
    use MovePolicy::*;
    let cases: &[(MovePolicy, &[&str], &[&str])] = &[
        (
            Free,
            &["Offer", "Contact", "won"],
            &["open@Offer", "open@Contact", "won@Contract"],
        ),
        (Free, &["Record"], &["same_stage"]),
        (Free, &["lost?"], &["missing_lost_reason"]),
        (
            Free,
            &["lost", "Offer", "reopen", "Offer"],
            &["lost@Record", "not_open", "open@Record", "open@Offer"],
        ),
        (
            Free,
            &["won", "won", "reopen"],
            &["won@Contract", "not_open", "open@Negotiation"],
        ),
        (Free, &["reopen"], &["already_open"]),
        (Free, &["Contract", "lost"], &["won@Contract", "not_open"]),
        (
            ForwardOnly,
            &["Offer", "Contact"],
            &["open@Offer", "illegal_move"],
        ),
        (Sequential, &["Offer"], &["illegal_move"]),
        (
            Sequential,
            &["Contact", "Qualification", "Record"],
            &["open@Contact", "open@Qualification", "open@Record"],
        ),
    ];
    for (policy, steps, expected) in cases {
        assert_eq!(run(*policy, steps), *expected, "{policy:?} {steps:?}");
    }
}

#[test]
fn unknown_lost_reason_and_foreign_stage_are_refused() {
    let w = Free::new();
    let e = w.apply(&w.lead, lose(LostReasonId::new())).unwrap_err();
    assert!(
        matches!(e, Error::Transition(ref t) if t.code() == "unknown_lost_reason"),
        "{e}"
    );
    let (other, _, _) = world(MovePolicy::Free);
    let stage = other.stages()[1].id;
    let e = w.apply(&w.lead, LeadCommand::MoveTo { stage }).unwrap_err();
    assert!(
        matches!(e, Error::Transition(ref t) if t.code() == "unknown_stage"),
        "{e}"
    );
}

#[test]
fn bad_patches_name_the_field() {
    let w = Free::new();
    let cases: Vec<(LeadPatch, &str)> = vec![
        (
            LeadPatch {
                title: Some(String::new()),
                ..Default::default()
            },
            "title",
        ),
        (
            LeadPatch {
                title: Some("x".repeat(201)),
                ..Default::default()
            },
            "title",
        ),
        (
            LeadPatch {
                probability: Some(Some(101)),
                ..Default::default()
            },
            "probability",
        ),
        (
            LeadPatch {
                expected_revenue: Some(Some(Money::parse("-5", "EUR").unwrap())),
                ..Default::default()
            },
            "expected_revenue",
        ),
        (
            LeadPatch {
                tags: Some(["".to_string()].into()),
                ..Default::default()
            },
            "tags",
        ),
        (
            LeadPatch {
                expected_close: Some(Some(chrono::NaiveDate::MAX)),
                ..Default::default()
            },
            "expected_close",
        ),
    ];
    for (patch, field) in cases {
        let e = w
            .apply(&w.lead, LeadCommand::Update(patch.clone()))
            .unwrap_err();
        assert_eq!(e.field(), Some(field), "{patch:?}");
    }
}

#[test]
fn a_new_lead_closing_outside_business_dates_is_refused() {
    let (p, _, lead) = world(MovePolicy::Free);
    let mut input = NewLead::for_partner(lead.partner(), "Deal");
    input.expected_close = Some(chrono::NaiveDate::MIN);
    let e = input
        .build(lead.tenant(), lead.partner(), &p, Utc::now())
        .unwrap_err();
    assert_eq!(e.field(), Some("expected_close"), "{e}");
}

#[test]
fn probability_override_survives_moves_and_lost_reopen() {
    let w = Free::new();
    let probability = |p: Option<u8>| {
        LeadCommand::Update(LeadPatch {
            probability: Some(p),
            ..Default::default()
        })
    };
    let t = w.apply(&w.lead, probability(Some(42))).unwrap();
    let stage = w.p.stage_named("Offer").unwrap().id;
    let t = w.apply(&t.lead, LeadCommand::MoveTo { stage }).unwrap();
    assert_eq!(t.lead.probability(), 42);
    let t = w.apply(&t.lead, lose(w.reasons[0].id())).unwrap();
    assert_eq!(t.lead.probability(), 0);
    let t = w
        .apply(&t.lead, LeadCommand::Reopen { stage: None })
        .unwrap();
    assert_eq!(
        (t.lead.probability(), t.lead.status().kind()),
        (42, StatusKind::Open)
    );
    let t = w.apply(&t.lead, probability(None)).unwrap();
    assert_eq!(t.lead.probability(), 50, "back to the stage default");
}

/// An abstract command: indices into the world's stages, mapped to a real command inside the test.
#[derive(Debug, Clone)]
enum Cmd {
    Move(usize),
    Win,
    Lose(bool),
    Reopen(Option<usize>),
    Edit(Option<u8>, String, i64),
}

fn cmd() -> impl Strategy<Value = Cmd> {
    prop_oneof![
        (0usize..6).prop_map(Cmd::Move),
        Just(Cmd::Win),
        any::<bool>().prop_map(Cmd::Lose),
        proptest::option::of(0usize..6).prop_map(Cmd::Reopen),
        (any::<Option<u8>>(), ".{0,3}", -3i64..3).prop_map(|(p, t, r)| Cmd::Edit(p, t, r)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Whatever the commands, `apply` never panics, versions grow by at most one, and the invariants hold:
    /// won ⇔ in a won stage with probability 100; lost ⇒ probability 0.
    #[test]
    fn apply_never_panics_and_keeps_invariants(cmds in proptest::collection::vec(cmd(), 1..30)) {
        let (p, reasons, mut lead) = world(MovePolicy::Free);
        let facts = Facts { lost_reasons: &reasons, requests: &[], quotations: &[] };
        for c in cmds {
            let command = match c {
                Cmd::Move(i) => LeadCommand::MoveTo { stage: p.stages()[i].id },
                Cmd::Win => LeadCommand::Win,
                Cmd::Lose(r) => LeadCommand::Lose { reason: r.then_some(reasons[0].id()), competitor: Some("Rival".into()), note: None },
                Cmd::Reopen(i) => LeadCommand::Reopen { stage: i.map(|i| p.stages()[i].id) },
                Cmd::Edit(prob, title, rev) => LeadCommand::Update(LeadPatch {
                    probability: Some(prob),
                    title: Some(title),
                    expected_revenue: Some(Some(Money::parse(&rev.to_string(), "EUR").unwrap())),
                    ..Default::default()
                }),
            };
            if let Ok(t) = apply(&lead, command, &p, facts, Utc::now()) {
                prop_assert!(t.lead.version() == lead.version() || t.lead.version() == lead.version() + 1);
                lead = t.lead;
            }
            let in_won_stage = p.stage(lead.stage()).unwrap().kind == crm_core::pipeline::StageKind::Won;
            prop_assert_eq!(lead.status().kind() == StatusKind::Won, in_won_stage);
            if lead.status().kind() == StatusKind::Won { prop_assert_eq!(lead.probability(), 100); }
            if lead.status().kind() == StatusKind::Lost { prop_assert_eq!(lead.probability(), 0); }
        }
    }
}
