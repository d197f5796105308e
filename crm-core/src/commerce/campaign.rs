//! Campaigns: a segment, a period, a team of agents and a script; launched into a call list; outcomes recorded by
//! the agent who owns each call.

use super::period::Period;
use super::rate::AppliedRate;
use super::segment::Criteria;
use crate::actor::Actor;
use crate::error::{Error, Result};
use crate::event::RequestStatus;
use crate::id::{CampaignId, CostEntryId, LeadId, PartnerId, RequestId, TenantId, UserId};
pub use crate::kinds::OutcomeKind;
use crate::lead::Priority;
use crate::money::Money;
use crate::request::Request;
use crate::time::Timestamp;
use crate::validate;
use chrono::{NaiveDate, NaiveTime};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The most agents a campaign may have.
pub const MAX_AGENTS: usize = 500;

/// How a campaign reaches people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Calls by telemarketing agents: launching creates a call request per target.
    Telemarketing,
    /// E-mail.
    Email,
    /// An event (fair, seminar).
    Event,
    /// Anything else.
    Other,
    /// Text messages (SMS), delivered through the host's SMS notifier.
    Sms,
}

impl Channel {
    /// The small integer storage uses.
    pub fn code(self) -> i16 {
        match self {
            Self::Telemarketing => 0,
            Self::Email => 1,
            Self::Event => 2,
            Self::Other => 3,
            Self::Sms => 4,
        }
    }
}

/// Where a campaign is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignStatus {
    /// Being prepared; may be edited and launched.
    Draft,
    /// Launched: its audience is fixed, calls are being made.
    Active,
    /// Over.
    Closed,
}

impl CampaignStatus {
    /// The word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Active => "active",
            Self::Closed => "closed",
        }
    }
}

record! {
    /// A marketing campaign.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Campaign {
        /// The campaign's id.
        id: CampaignId,
        /// The tenant.
        tenant: TenantId,
        /// Name.
        name: String => &str = borrow,
        /// Channel.
        channel: Channel,
        /// When it runs.
        period: Period,
        /// Who is responsible.
        owner: UserId,
        /// The telemarketing agents the calls are spread over.
        agents: Vec<UserId> => &[UserId] = borrow,
        /// The message or call script.
        script: Option<String> => Option<&str> = deref,
        /// Draft, active or closed.
        status: CampaignStatus,
        /// Budget.
        budget: Option<Money>,
        /// The target segment.
        criteria: Option<Criteria> => Option<&Criteria> = as_ref,
        /// How many targets the launch snapshotted.
        target_count: u64,
        /// Optimistic-concurrency version.
        version: u64,
        /// When it was created.
        created_at: Timestamp,
        /// When it last changed.
        updated_at: Timestamp,
        /// When it was launched.
        launched_at: Option<Timestamp>,
        /// The holdout drawn at launch (share and seed), if any.
        #[serde(default)]
        holdout: Option<Holdout> => Option<&Holdout> = as_ref,
        /// How many of the audience the launch held out (they get nothing; not counted in `target_count`).
        #[serde(default)]
        holdout_count: u64,
        /// The message an e-mail or SMS campaign sends each target
        /// ([`CommerceService::set_campaign_message`](crate::service::CommerceService::set_campaign_message)).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<super::send::CampaignMessage> => Option<&super::send::CampaignMessage> = as_ref,
    }
}

/// The largest holdout share, in percent: a larger one would leave the campaign fewer targets than controls.
pub const MAX_HOLDOUT_PCT: u32 = 50;

/// A campaign's holdout: `share` percent of the audience (0 to [`MAX_HOLDOUT_PCT`]) that gets nothing, so what
/// the campaign caused can be told from what would have happened anyway.
///
/// The draw is reproducible and independent of the audience's order: each partner's rank is the first eight bytes
/// of SHA-256 over the seed (little-endian) and the partner's id, and the `round(share × audience ÷ 100)` partners
/// (half up) of lowest rank (then lowest id) are held out. The seed and share are recorded on the campaign.
///
/// ```
/// use crm_core::commerce::Holdout;
/// use crm_core::id::PartnerId;
/// use rust_decimal::Decimal;
/// let audience: Vec<PartnerId> = (0..10).map(|_| PartnerId::new()).collect();
/// let h = Holdout::new(Decimal::from(20), 7).unwrap();
/// let held = h.draw(&audience);
/// assert_eq!(held.len(), 2);
/// let mut reversed = audience.clone();
/// reversed.reverse();
/// assert_eq!(h.draw(&reversed), held);
/// assert_eq!(Holdout::new(Decimal::from(51), 7).unwrap_err().field(), Some("holdout.share"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawHoldout")]
pub struct Holdout {
    /// The share of the audience held out, in percent.
    share_pct: rust_decimal::Decimal,
    /// The seed of the draw.
    seed: u64,
}

/// A holdout as read, checked into a [`Holdout`].
#[derive(Deserialize)]
struct RawHoldout {
    share_pct: rust_decimal::Decimal,
    seed: u64,
}

impl TryFrom<RawHoldout> for Holdout {
    type Error = Error;
    fn try_from(r: RawHoldout) -> Result<Self> {
        Self::new(r.share_pct, r.seed)
    }
}

impl Holdout {
    /// A holdout of `share_pct` percent drawn with `seed`.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `holdout.share` when the share is below 0 or above [`MAX_HOLDOUT_PCT`].
    pub fn new(share_pct: rust_decimal::Decimal, seed: u64) -> Result<Self> {
        if share_pct < rust_decimal::Decimal::ZERO
            || share_pct > rust_decimal::Decimal::from(MAX_HOLDOUT_PCT)
        {
            return Err(Error::invalid(
                "holdout.share",
                format!("{share_pct}% is outside 0-{MAX_HOLDOUT_PCT}%"),
            ));
        }
        Ok(Self {
            share_pct: share_pct.normalize(),
            seed,
        })
    }

    /// The share held out, in percent.
    pub fn share_pct(&self) -> rust_decimal::Decimal {
        self.share_pct
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// How many of an audience of `n` are held out: `share × n ÷ 100`, rounded half up.
    pub fn size(&self, n: usize) -> usize {
        use rust_decimal::prelude::ToPrimitive;
        let k = (self.share_pct * rust_decimal::Decimal::from(n as u64)
            / rust_decimal::Decimal::ONE_HUNDRED)
            .round_dp_with_strategy(0, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
        k.to_usize().unwrap_or(0).min(n)
    }

    /// The partners of `audience` held out (see the type's documentation for the draw).
    pub fn draw(&self, audience: &[PartnerId]) -> BTreeSet<PartnerId> {
        use sha2::{Digest, Sha256};
        let mut ranked: Vec<(u64, PartnerId)> = audience
            .iter()
            .map(|p| {
                let mut h = Sha256::new();
                h.update(self.seed.to_le_bytes());
                h.update(p.as_uuid().as_bytes());
                let d = h.finalize();
                let mut first = [0u8; 8];
                first.copy_from_slice(&d[..8]);
                (u64::from_be_bytes(first), *p)
            })
            .collect();
        ranked.sort_unstable();
        ranked.dedup_by_key(|(_, p)| *p);
        let k = self.size(ranked.len());
        ranked.into_iter().take(k).map(|(_, p)| p).collect()
    }
}

/// Input for a new campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewCampaign {
    /// Name (required).
    pub name: String,
    /// Channel.
    pub channel: Channel,
    /// When it runs.
    pub period: Period,
    /// Who is responsible.
    pub owner: UserId,
    /// Agents (at least one for telemarketing, no duplicates).
    pub agents: Vec<UserId>,
    /// Script or message.
    pub script: Option<String>,
    /// Budget (not negative).
    pub budget: Option<Money>,
    /// Target segment (checked for shape here; the service checks the items it names exist).
    pub criteria: Option<Criteria>,
}

impl NewCampaign {
    /// Validates and builds the campaign (status draft).
    pub fn build(
        self,
        tenant: TenantId,
        now: Timestamp,
    ) -> Result<(Campaign, crate::event::EventKind)> {
        let name = validate::name("name", &self.name)?;
        check_agents(self.channel, &self.agents)?;
        if let Some(b) = &self.budget {
            if b.is_negative() {
                return Err(Error::invalid("budget", "must not be negative"));
            }
        }
        if let Some(c) = &self.criteria {
            c.check()?;
        }
        let c = Campaign {
            id: CampaignId::new(),
            tenant,
            name,
            channel: self.channel,
            period: self.period,
            owner: self.owner,
            agents: self.agents,
            script: validate::optional("script", self.script.as_deref(), validate::MAX_TEXT)?,
            status: CampaignStatus::Draft,
            budget: self.budget,
            criteria: self.criteria,
            target_count: 0,
            version: 1,
            created_at: now,
            updated_at: now,
            launched_at: None,
            holdout: None,
            holdout_count: 0,
            message: None,
        };
        let e = crate::event::EventKind::CampaignCreated {
            campaign: c.id,
            name: c.name.clone(),
        };
        Ok((c, e))
    }
}

fn check_agents(channel: Channel, agents: &[UserId]) -> Result<()> {
    if channel == Channel::Telemarketing && agents.is_empty() {
        return Err(Error::invalid(
            "agents",
            "a telemarketing campaign needs at least one agent",
        ));
    }
    if agents.len() > MAX_AGENTS {
        return Err(Error::invalid(
            "agents",
            format!("at most {MAX_AGENTS} agents are allowed"),
        ));
    }
    if agents.iter().collect::<BTreeSet<_>>().len() != agents.len() {
        return Err(Error::invalid("agents", "an agent is listed twice"));
    }
    Ok(())
}

/// What an agent's call achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CallOutcome {
    /// Nobody answered; the call stays on the list.
    NoAnswer,
    /// Call again at this time; the call stays on the list, due then.
    CallBack {
        /// When.
        at: Timestamp,
    },
    /// Interested: a lead is created with the campaign as its source.
    Interested,
    /// Not interested.
    NotInterested,
    /// The number or person was wrong.
    WrongContact,
}

impl CallOutcome {
    /// The kind.
    pub fn kind(&self) -> OutcomeKind {
        match self {
            Self::NoAnswer => OutcomeKind::NoAnswer,
            Self::CallBack { .. } => OutcomeKind::CallBack,
            Self::Interested => OutcomeKind::Interested,
            Self::NotInterested => OutcomeKind::NotInterested,
            Self::WrongContact => OutcomeKind::WrongContact,
        }
    }
}

record! {
    /// One partner of a launched campaign's audience: the snapshot, its call and its outcome.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct CampaignTarget {
        /// The tenant.
        tenant: TenantId,
        /// The campaign.
        campaign: CampaignId,
        /// The partner targeted.
        partner: PartnerId,
        /// The agent the call was given to (telemarketing).
        agent: Option<UserId>,
        /// The call request (telemarketing).
        request: Option<RequestId>,
        /// The latest outcome.
        outcome: Option<OutcomeKind>,
        /// When the latest outcome was recorded.
        outcome_at: Option<Timestamp>,
        /// When the partner was first reached.
        reached_at: Option<Timestamp>,
        /// Calls made.
        attempts: u32,
        /// The lead created when the partner was interested.
        lead: Option<LeadId>,
        /// Held out: drawn into the campaign's holdout at launch, so it gets nothing (no call, no message) and
        /// is the control group its uplift is measured against.
        #[serde(default)]
        holdout: bool,
        /// Its message (e-mail and SMS campaigns), once the campaign was sent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        send: Option<super::send::TargetSend> => Option<&super::send::TargetSend> = as_ref,
        /// Optimistic-concurrency version.
        version: u64,
    }
}

record! {
    /// A dated cost of a campaign.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct CampaignCost {
        /// The entry's id.
        id: CostEntryId,
        /// The tenant.
        tenant: TenantId,
        /// The campaign.
        campaign: CampaignId,
        /// The day the cost was incurred.
        date: NaiveDate,
        /// The amount (positive).
        amount: Money,
        /// A note.
        note: Option<String> => Option<&str> = deref,
        /// The rate into the reporting currency on that day.
        rate: AppliedRate,
        /// The amount in reporting-currency units.
        amount_units: i64,
    }
}

impl CampaignCost {
    /// Validates and builds a cost entry.
    pub fn new(
        campaign: &Campaign,
        date: NaiveDate,
        amount: Money,
        note: Option<&str>,
        rate: AppliedRate,
    ) -> Result<Self> {
        crate::time::check_business_date("date", date)?;
        if amount.is_negative() || amount.amount().is_zero() {
            return Err(Error::invalid("amount", "a cost is more than zero"));
        }
        Ok(Self {
            id: CostEntryId::new(),
            tenant: campaign.tenant,
            campaign: campaign.id,
            date,
            amount,
            note: validate::optional("note", note, validate::MAX_NAME)?,
            rate,
            amount_units: rate.to_reporting_units(amount.amount(), "amount")?,
        })
    }
}

/// What launching a campaign writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// The campaign, active, with its target count.
    pub campaign: Campaign,
    /// The audience snapshot: the targets, then those held out (`holdout` set), each by partner id.
    pub targets: Vec<CampaignTarget>,
    /// One call request per target (telemarketing).
    pub calls: Vec<Request>,
}

impl Campaign {
    /// Launches a draft campaign on an audience (partner id and name, in a stable order): draws the `holdout`
    /// (if any) and snapshots the audience; for telemarketing, it gives each target that is not held out a call
    /// request, round-robin over the agents so each gets an even share. A campaign that is not a draft is refused
    /// on field `status`.
    pub fn launch(
        &self,
        audience: &[(PartnerId, String)],
        holdout: Option<Holdout>,
        opened_by: Actor,
        now: Timestamp,
    ) -> Result<Launch> {
        self.check_launchable()?;
        let ids: Vec<PartnerId> = audience.iter().map(|(p, _)| *p).collect();
        let held = holdout.map(|h| h.draw(&ids)).unwrap_or_default();
        let mut seen = BTreeSet::new();
        let audience: Vec<&(PartnerId, String)> = audience
            .iter()
            .filter(|(p, _)| !held.contains(p) && seen.insert(*p))
            .collect();
        let due = self
            .period
            .from()
            .and_time(NaiveTime::from_hms_opt(9, 0, 0).unwrap_or_default())
            .and_utc()
            .max(now);
        let calls_on = self.channel == Channel::Telemarketing;
        let mut targets = Vec::with_capacity(audience.len());
        let mut calls = Vec::new();
        for (i, (partner, name)) in audience.iter().copied().enumerate() {
            let (agent, request) = if calls_on {
                let agent = self.agents[i % self.agents.len()];
                let title: String = format!("Call {name}: {}", self.name)
                    .chars()
                    .take(validate::MAX_NAME)
                    .collect();
                let r = Request {
                    id: RequestId::new(),
                    tenant: self.tenant,
                    lead: None,
                    partner: Some(*partner),
                    title,
                    description: self.script.clone(),
                    kind: Some("call".into()),
                    assignee: agent,
                    due: Some(due),
                    priority: Priority::Normal,
                    status: RequestStatus::Open,
                    opened_by: opened_by.clone(),
                    version: 1,
                    created_at: now,
                    updated_at: now,
                    closed_at: None,
                };
                let id = r.id;
                calls.push(r);
                (Some(agent), Some(id))
            } else {
                (None, None)
            };
            targets.push(CampaignTarget {
                tenant: self.tenant,
                campaign: self.id,
                partner: *partner,
                agent,
                request,
                outcome: None,
                outcome_at: None,
                reached_at: None,
                attempts: 0,
                lead: None,
                holdout: false,
                send: None,
                version: 1,
            });
        }
        let target_count = targets.len() as u64;
        targets.extend(held.iter().map(|partner| CampaignTarget {
            tenant: self.tenant,
            campaign: self.id,
            partner: *partner,
            agent: None,
            request: None,
            outcome: None,
            outcome_at: None,
            reached_at: None,
            attempts: 0,
            lead: None,
            holdout: true,
            send: None,
            version: 1,
        }));
        let mut campaign = self.clone();
        campaign.status = CampaignStatus::Active;
        campaign.target_count = target_count;
        campaign.holdout = holdout;
        campaign.holdout_count = held.len() as u64;
        campaign.launched_at = Some(now);
        campaign.version += 1;
        campaign.updated_at = now;
        Ok(Launch {
            campaign,
            targets,
            calls,
        })
    }

    /// The campaign with `message` as what it sends each target (e-mail and SMS campaigns), checked strictly
    /// ([`CampaignMessage::check`](super::send::CampaignMessage::check)); a draft's or an active campaign's (later
    /// sends use it).
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `status` for a closed campaign, and as [`CampaignMessage::check`](super::send::CampaignMessage::check).
    pub fn with_message(
        &self,
        message: super::send::CampaignMessage,
        now: Timestamp,
    ) -> Result<Campaign> {
        if self.status == CampaignStatus::Closed {
            return Err(Error::invalid(
                "status",
                format!("campaign `{}` is closed", self.name),
            ));
        }
        message.check(self.channel)?;
        let mut next = self.clone();
        next.message = Some(super::send::CampaignMessage {
            offer: validate::optional("message.offer", message.offer.as_deref(), 2_000)?,
            ..message
        });
        next.version += 1;
        next.updated_at = now;
        Ok(next)
    }

    /// The message of a campaign that can be sent now: an active (field `status`) e-mail or SMS campaign (field
    /// `channel`) with a message (field `message`).
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on those fields.
    pub fn sendable(&self) -> Result<&super::send::CampaignMessage> {
        self.require(CampaignStatus::Active, "; only an active campaign sends")?;
        if !matches!(self.channel, Channel::Email | Channel::Sms) {
            return Err(Error::invalid(
                "channel",
                format!("campaign `{}` is not an e-mail or SMS campaign", self.name),
            ));
        }
        self.message.as_ref().ok_or_else(|| {
            Error::invalid(
                "message",
                format!("campaign `{}` has no message yet: set one first", self.name),
            )
        })
    }

    /// Refuses on field `status` unless the campaign is `status`: "campaign `name` is <its status>" and `rule`.
    fn require(&self, status: CampaignStatus, rule: &str) -> Result<()> {
        if self.status == status {
            return Ok(());
        }
        Err(Error::invalid(
            "status",
            format!("campaign `{}` is {}{rule}", self.name, self.status.as_str()),
        ))
    }

    /// Checks the campaign can be launched: a draft (field `status`), with agents when it calls (field `agents`)
    /// and a target segment (field `criteria`).
    pub fn check_launchable(&self) -> Result<()> {
        self.require(
            CampaignStatus::Draft,
            "; only a draft campaign can be launched",
        )?;
        check_agents(self.channel, &self.agents)?;
        if self.criteria.is_none() {
            return Err(Error::invalid(
                "criteria",
                "a campaign needs a target segment to be launched",
            ));
        }
        Ok(())
    }

    /// Closes an active campaign.
    pub fn close(&self, now: Timestamp) -> Result<Campaign> {
        self.require(
            CampaignStatus::Active,
            "; only an active campaign can be closed",
        )?;
        let mut c = self.clone();
        c.status = CampaignStatus::Closed;
        c.version += 1;
        c.updated_at = now;
        Ok(c)
    }
}

/// What recording an outcome changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeChange {
    /// The target after the outcome.
    pub target: CampaignTarget,
    /// The call request after the outcome (done when final, due at the call-back time otherwise).
    pub request: Request,
}

/// Records an outcome on a target's call: only the agent the call is assigned to may (field `agent`), only while
/// the campaign is active (field `status`) and the call is still open (field `request`).
pub fn record_outcome(
    campaign: &Campaign,
    target: &CampaignTarget,
    call: &Request,
    agent: Option<UserId>,
    outcome: CallOutcome,
    now: Timestamp,
) -> Result<OutcomeChange> {
    campaign.require(
        CampaignStatus::Active,
        ": outcomes are recorded while it is active",
    )?;
    if agent != Some(call.assignee) {
        return Err(Error::invalid(
            "agent",
            "only the agent the call is assigned to can record its outcome",
        ));
    }
    if !call.status.is_active() {
        return Err(Error::invalid("request", "the call is already finished"));
    }
    let kind = outcome.kind();
    let mut t = target.clone();
    t.outcome = Some(kind);
    t.outcome_at = Some(now);
    t.attempts += 1;
    if kind.reached() && t.reached_at.is_none() {
        t.reached_at = Some(now);
    }
    t.version += 1;
    let mut r = call.clone();
    if kind.is_final() {
        r.status = RequestStatus::Done;
        r.closed_at = Some(now);
    } else if let CallOutcome::CallBack { at } = outcome {
        if at < now {
            return Err(Error::invalid("outcome.at", format!("{at} is in the past")));
        }
        r.due = Some(at);
    }
    r.version += 1;
    r.updated_at = now;
    Ok(OutcomeChange {
        target: t,
        request: r,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, Utc};

    fn campaign(agents: usize) -> Campaign {
        let d = |m, day| NaiveDate::from_ymd_opt(2026, m, day).unwrap();
        NewCampaign {
            name: "Winback".into(),
            channel: Channel::Telemarketing,
            period: Period::new(d(1, 1), d(3, 31)).unwrap(),
            owner: UserId::new(),
            agents: (0..agents).map(|_| UserId::new()).collect(),
            script: Some("Hello".into()),
            budget: None,
            criteria: Some(Criteria::Role {
                role: crate::partner::PartnerRole::Customer,
            }),
        }
        .build(TenantId::new(), Utc::now())
        .unwrap()
        .0
    }

    #[test]
    fn a_cost_outside_business_dates_is_refused() {
        let c = campaign(1);
        let ron = crate::money::Currency::parse("RON").unwrap();
        for date in [NaiveDate::MAX, NaiveDate::MIN] {
            let e = CampaignCost::new(
                &c,
                date,
                Money::parse("10", "RON").unwrap(),
                None,
                AppliedRate::identity(ron),
            )
            .unwrap_err();
            assert_eq!(e.field(), Some("date"), "{e}");
        }
    }

    #[test]
    fn launch_spreads_evenly_and_only_once() {
        let c = campaign(3);
        let audience: Vec<_> = (0..10)
            .map(|i| (PartnerId::new(), format!("P{i}")))
            .collect();
        let now = Utc::now();
        let l = c.launch(&audience, None, Actor::System, now).unwrap();
        assert_eq!(l.targets.len(), 10);
        assert_eq!(l.calls.len(), 10);
        for a in &c.agents {
            let n = l.calls.iter().filter(|r| r.assignee == *a).count();
            assert!((3..=4).contains(&n), "{n}");
        }
        assert!(l
            .calls
            .iter()
            .all(|r| r.description.as_deref() == Some("Hello")));
        assert_eq!(l.campaign.status, CampaignStatus::Active);
        let e = l
            .campaign
            .launch(&audience, None, Actor::System, now)
            .unwrap_err();
        assert_eq!(e.field(), Some("status"));
    }

    #[test]
    fn outcomes_belong_to_the_assigned_agent() {
        let c = campaign(2);
        let now = Utc::now();
        let l = c
            .launch(&[(PartnerId::new(), "A".into())], None, Actor::System, now)
            .unwrap();
        let (t, r) = (&l.targets[0], &l.calls[0]);
        let e = record_outcome(
            &l.campaign,
            t,
            r,
            Some(UserId::new()),
            CallOutcome::Interested,
            now,
        )
        .unwrap_err();
        assert_eq!(e.field(), Some("agent"));
        let later = now + Duration::days(1);
        let ch = record_outcome(
            &l.campaign,
            t,
            r,
            Some(r.assignee),
            CallOutcome::CallBack { at: later },
            now,
        )
        .unwrap();
        assert_eq!(ch.request.due, Some(later));
        assert!(ch.request.status.is_active());
        assert_eq!(ch.target.reached_at, Some(now));
        let fin = record_outcome(
            &l.campaign,
            &ch.target,
            &ch.request,
            Some(r.assignee),
            CallOutcome::NotInterested,
            now,
        )
        .unwrap();
        assert_eq!(fin.request.status, RequestStatus::Done);
        assert_eq!(fin.target.attempts, 2);
        let e = record_outcome(
            &l.campaign,
            &fin.target,
            &fin.request,
            Some(r.assignee),
            CallOutcome::Interested,
            now,
        )
        .unwrap_err();
        assert_eq!(e.field(), Some("request"));
    }

    #[test]
    fn telemarketing_needs_agents() {
        let mut c = campaign(1);
        c.agents.clear();
        assert_eq!(
            c.launch(&[], None, Actor::System, Utc::now())
                .unwrap_err()
                .field(),
            Some("agents")
        );
    }
}
