//! Replays the steps of one scenario through the services over a backend.

use super::format::{Amount, OutcomeSpec, RecordedSpec, Step};
use super::format::{LineSpec, Op};
use crate::actor::Context;
use crate::commerce::{
    Allocation, CallOutcome, CampaignStatus, CommerceStore, CommerceStoreExt, NewCampaign,
    NewCategory, NewDocument, NewLine, NewProduct, Period, ProfitQuery, Rank, RankOrder, Recorded,
};
use crate::error::{Error, Result};
use crate::event::CommentTarget;
use crate::id::{
    CampaignId, CategoryId, LeadId, LostReasonId, PartnerId, PipelineId, ProductId, RequestId,
    StageId, TenantId, UserId,
};
use crate::lead::{Lead, LeadCommand, LeadPatch, LeadStatus, NewLead};
use crate::money::{Currency, Money};
use crate::partner::{LocationKind, NewLocation, NewPartner, PartnerPatch, PartnerRole};
use crate::pipeline::{NewPipeline, NewStage, Pipeline};
use crate::request::{NewRequest, RequestCommand};
use crate::service::{CommerceService, CrmService};
use crate::store::{Backend, LeadQuery, PageRequest, Store, StoreExt, TimelineOf};
use crate::time::{Clock, FixedClock, Timestamp};
use chrono::Duration;
use rust_decimal::Decimal;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::sync::Arc;

/// What a step did: `Err` is a broken scenario (an unknown label or a read that differs from the expectation),
/// `Ok` holds what the service returned.
pub(super) type Done = std::result::Result<Result<()>, String>;

/// Returns the service's error as the step's outcome.
macro_rules! api {
    ($e:expr) => {
        match $e {
            Ok(x) => x,
            Err(e) => return Ok(Err(e)),
        }
    };
}

/// Labels of records, with the tenant each was created in.
type Labels<T> = BTreeMap<String, (TenantId, T)>;

/// The id of a label, with the tenant it was created in.
fn home<T: Copy>(
    m: &Labels<T>,
    what: &str,
    label: &str,
) -> std::result::Result<(TenantId, T), String> {
    m.get(label)
        .copied()
        .ok_or_else(|| format!("no {what} labelled `{label}` was created before this step"))
}

/// The id of a label.
fn find<T: Copy>(m: &Labels<T>, what: &str, label: &str) -> std::result::Result<T, String> {
    home(m, what, label).map(|(_, id)| id)
}

/// The id of an optional label.
fn find_opt<T: Copy>(
    m: &Labels<T>,
    what: &str,
    label: &Option<String>,
) -> std::result::Result<Option<T>, String> {
    label.as_deref().map(|l| find(m, what, l)).transpose()
}

/// The ids of labels, as a set.
fn find_all<T: Copy + Ord>(
    m: &Labels<T>,
    what: &str,
    labels: &[String],
) -> std::result::Result<BTreeSet<T>, String> {
    labels.iter().map(|l| find(m, what, l)).collect()
}

/// Compares a read value with an expected one, when one is given.
fn same<T: PartialEq + Debug>(
    what: &str,
    got: T,
    want: Option<T>,
) -> std::result::Result<(), String> {
    match want {
        Some(w) if w != got => Err(format!("{what}: expected {w:?}, got {got:?}")),
        _ => Ok(()),
    }
}

/// `"12000 EUR"` as money (an amount and an ISO code).
fn money(s: &str) -> Result<Money> {
    let mut parts = s.split_whitespace();
    match (parts.next(), parts.next(), parts.next()) {
        (Some(a), Some(c), None) => Money::parse(a, c),
        _ => Err(Error::invalid(
            "amount",
            format!("`{s}` is not `<amount> <currency>`"),
        )),
    }
}

fn dec(a: Option<Amount>) -> Decimal {
    a.map_or(Decimal::ZERO, |a| a.0)
}

/// A record whose version a step may claim.
enum Versioned {
    Lead(LeadId),
    Partner(PartnerId),
    Request(RequestId),
    Campaign(CampaignId),
}

/// The state of one replay: the services over the backend, the clock, and the labels given so far.
pub(super) struct Replay {
    clock: Arc<FixedClock>,
    crm: CrmService,
    commerce: CommerceService,
    tenants: BTreeMap<String, TenantId>,
    users: BTreeMap<String, UserId>,
    partners: Labels<PartnerId>,
    leads: Labels<LeadId>,
    requests: Labels<RequestId>,
    categories: Labels<CategoryId>,
    products: Labels<ProductId>,
    campaigns: Labels<CampaignId>,
}

impl Replay {
    /// Services over `backend` with a fixed clock at `start`, reporting in `reporting`.
    pub(super) fn new(
        backend: &Arc<dyn Backend>,
        start: Timestamp,
        reporting: Currency,
    ) -> Result<Replay> {
        let clock = Arc::new(FixedClock::new(start));
        let store: Arc<dyn Store> = backend.clone();
        let commerce_store: Arc<dyn CommerceStore> = backend.clone();
        let crm = CrmService::builder()
            .store(store)
            .clock(clock.clone())
            .build()?;
        let commerce = CommerceService::new(crm.clone(), commerce_store, reporting);
        Ok(Replay {
            clock,
            crm,
            commerce,
            tenants: BTreeMap::new(),
            users: BTreeMap::new(),
            partners: Labels::new(),
            leads: Labels::new(),
            requests: Labels::new(),
            categories: Labels::new(),
            products: Labels::new(),
            campaigns: Labels::new(),
        })
    }

    /// The version a step claims, or else the record's current one.
    async fn version(&self, tenant: TenantId, claimed: Option<u64>, of: Versioned) -> Result<u64> {
        if let Some(v) = claimed {
            return Ok(v);
        }
        Ok(match of {
            Versioned::Lead(id) => self.crm.lead(tenant, id).await?.version,
            Versioned::Partner(id) => self.crm.partner(tenant, id).await?.version,
            Versioned::Request(id) => self.crm.request(tenant, id).await?.version,
            Versioned::Campaign(id) => self.commerce.campaign(tenant, id).await?.version,
        })
    }

    fn user(&mut self, label: &str) -> UserId {
        *self.users.entry(label.to_string()).or_default()
    }

    fn opt_user(&mut self, label: Option<&str>) -> Option<UserId> {
        label.filter(|l| !l.is_empty()).map(|l| self.user(l))
    }

    /// The tenant of a label, set up (seed pipeline and lost reasons) on first use.
    async fn tenant(&mut self, label: &str, user: UserId) -> Result<TenantId> {
        if let Some(t) = self.tenants.get(label) {
            return Ok(*t);
        }
        let t = TenantId::new();
        self.crm.setup_tenant(&Context::user(t, user)).await?;
        self.tenants.insert(label.to_string(), t);
        Ok(t)
    }

    async fn pipeline_named(
        &self,
        tenant: TenantId,
        name: Option<&str>,
    ) -> std::result::Result<Result<Pipeline>, String> {
        let all = api!(self.crm.pipelines(tenant).await);
        let found = match name {
            Some(n) => all.into_iter().find(|p| p.name == n),
            None => all.into_iter().find(|p| p.is_default),
        };
        found
            .map(Ok)
            .ok_or_else(|| format!("the tenant has no pipeline {name:?}"))
    }

    /// A lead as stored in its own tenant, and the id of a stage of its pipeline by name (a fresh id, which no
    /// pipeline has, for a name the pipeline lacks).
    async fn lead_and_stage(&self, label: &str, stage: Option<&str>) -> Result<(Lead, StageId)> {
        let (t, id) = self.leads[label];
        let lead = self.crm.lead(t, id).await?;
        let pipeline = self.crm.store().pipeline(t, lead.pipeline).await?;
        let stage = stage
            .map(|n| pipeline.stage_named(n).map_or_else(StageId::new, |s| s.id))
            .unwrap_or(lead.stage);
        Ok((lead, stage))
    }

    /// The name of a stage of a pipeline.
    async fn stage_name(&self, tenant: TenantId, pipeline: PipelineId, stage: StageId) -> String {
        match self.crm.store().pipeline(tenant, pipeline).await {
            Ok(p) => p
                .stage(stage)
                .map_or_else(|_| stage.to_string(), |s| s.name.clone()),
            Err(e) => format!("{stage} (pipeline unreadable: {e})"),
        }
    }

    fn comment_target(
        &self,
        lead: &Option<String>,
        partner: &Option<String>,
        request: &Option<String>,
    ) -> std::result::Result<CommentTarget, String> {
        match (lead, partner, request) {
            (Some(l), None, None) => Ok(CommentTarget::Lead(find(&self.leads, "lead", l)?)),
            (None, Some(p), None) => {
                Ok(CommentTarget::Partner(find(&self.partners, "partner", p)?))
            }
            (None, None, Some(r)) => {
                Ok(CommentTarget::Request(find(&self.requests, "request", r)?))
            }
            _ => Err("name exactly one of `lead`, `partner` and `request`".into()),
        }
    }

    /// A label's id as the key of a profitability row: a partner's, campaign's or user's id, or the label itself.
    fn key_of(&self, label: &str) -> String {
        if let Some((_, p)) = self.partners.get(label) {
            p.to_string()
        } else if let Some((_, c)) = self.campaigns.get(label) {
            c.to_string()
        } else if let Some(u) = self.users.get(label) {
            u.to_string()
        } else {
            label.to_string()
        }
    }

    /// Runs one step in its tenant as its user.
    pub(super) async fn step(&mut self, step: &Step) -> Done {
        let user = self.user(&step.user);
        let tenant = api!(self.tenant(&step.tenant, user).await);
        let ctx = Context::user(tenant, user);
        let op = &step.op;
        match op {
            Op::Partner { .. } | Op::EditPartner { .. } => self.partner_op(&ctx, op).await,
            Op::Lead { .. }
            | Op::Move { .. }
            | Op::Win { .. }
            | Op::Lose { .. }
            | Op::Reopen { .. }
            | Op::EditLead { .. } => self.lead_command(&ctx, op).await,
            Op::Tick { .. }
            | Op::Pipeline { .. }
            | Op::LostReason { .. }
            | Op::Request { .. }
            | Op::RequestStatus { .. }
            | Op::Comment { .. } => self.lead_op(&ctx, op).await,
            Op::Category { .. } | Op::Product { .. } | Op::Rate { .. } => {
                self.commerce_op(&ctx, op).await
            }
            Op::Document { .. } => self.document(&ctx, op).await,
            Op::Campaign { .. }
            | Op::CampaignCost { .. }
            | Op::Launch { .. }
            | Op::CallOutcome { .. }
            | Op::CloseCampaign { .. } => self.campaign_op(&ctx, op).await,
            Op::CheckLead { .. } => self.check_lead(tenant, op).await,
            Op::CheckPartner { .. }
            | Op::CheckRequest { .. }
            | Op::CheckTimeline { .. }
            | Op::CheckComments { .. }
            | Op::CheckHistory { .. }
            | Op::CheckFunnel { .. }
            | Op::CheckBoard { .. }
            | Op::CheckLeads { .. } => self.check_lead_side(tenant, op).await,
            Op::CheckDocument { .. }
            | Op::CheckOpenItems { .. }
            | Op::CheckBalances { .. }
            | Op::CheckProfit { .. }
            | Op::CheckSegment { .. }
            | Op::CheckProgress { .. } => self.check_commerce(tenant, op).await,
            Op::CheckCampaign { .. } => self.check_campaign(tenant, op).await,
        }
    }

    /// The clock, pipelines, lost reasons, requests and comments.
    async fn lead_op(&mut self, ctx: &Context, op: &Op) -> Done {
        match op {
            Op::Tick {
                minutes,
                hours,
                days,
            } => {
                let by =
                    Duration::minutes(*minutes) + Duration::hours(*hours) + Duration::days(*days);
                self.clock.advance(by);
                Ok(Ok(()))
            }
            Op::Pipeline {
                pipeline,
                stages,
                policy,
            } => {
                let stages = stages
                    .iter()
                    .map(|s| {
                        let st = if s.won {
                            NewStage::won(&s.name)
                        } else {
                            NewStage::open(&s.name, s.probability)
                        };
                        s.requires.iter().cloned().fold(st, NewStage::requiring)
                    })
                    .collect();
                let input = NewPipeline {
                    name: pipeline.clone(),
                    stages,
                    policy: *policy,
                    is_default: false,
                };
                Ok(self.crm.create_pipeline(ctx, input).await.map(drop))
            }
            Op::LostReason { name } => Ok(self.crm.add_lost_reason(ctx, name).await.map(drop)),
            Op::Request {
                request,
                lead,
                partner,
                title,
                kind,
                assignee,
                due_in_hours,
            } => {
                let lead = find_opt(&self.leads, "lead", lead);
                let partner = find_opt(&self.partners, "partner", partner);
                let (lead, partner) = (lead?, partner?);
                let assignee = match assignee {
                    Some(a) => self.opt_user(Some(a)),
                    None => ctx.actor.user_id(),
                };
                let input = NewRequest {
                    lead,
                    partner,
                    title: title.clone().unwrap_or_else(|| request.clone()),
                    description: None,
                    kind: kind.clone(),
                    assignee,
                    due: due_in_hours.map(|h| self.clock.now() + Duration::hours(h)),
                    priority: Default::default(),
                };
                let r = api!(self.crm.open_request(ctx, input).await).record;
                self.requests.insert(request.clone(), (ctx.tenant, r.id));
                Ok(Ok(()))
            }
            Op::RequestStatus {
                request,
                status,
                version,
            } => {
                let (t, id) = home(&self.requests, "request", request)?;
                let v = api!(self.version(t, *version, Versioned::Request(id)).await);
                let cmd = RequestCommand::SetStatus { status: *status };
                Ok(self.crm.change_request(ctx, id, v, cmd).await.map(drop))
            }
            Op::Comment {
                lead,
                partner,
                request,
                body,
            } => {
                let target = self.comment_target(lead, partner, request)?;
                Ok(self.crm.comment(ctx, target, body).await.map(drop))
            }
            _ => unreachable!("lead_op is called with its operations only"),
        }
    }

    async fn partner_op(&mut self, ctx: &Context, op: &Op) -> Done {
        match op {
            Op::Partner {
                partner,
                name,
                tax_id,
                email,
                group,
                industry,
                city,
                country,
                owner,
                role,
                duplicates,
            } => {
                let mut p = NewPartner::company(name.clone().unwrap_or_else(|| partner.clone()))
                    .with_role(PartnerRole::Customer);
                if let Some(r) = role {
                    p = p.with_role(*r);
                }
                if let Some(t) = tax_id {
                    p = p.with_tax_id(t);
                }
                if let Some(e) = email {
                    p = p.with_contact("Contact", Some(e), None);
                }
                if let Some(g) = group {
                    p = p.with_group(g);
                }
                if let Some(i) = industry {
                    p = p.with_industry(i, None);
                }
                if let Some(c) = country {
                    p = p.with_location(NewLocation {
                        kind: LocationKind::Billing,
                        street: None,
                        city: city.clone(),
                        region: None,
                        postal_code: None,
                        country: c.clone(),
                    });
                }
                if let Some(o) = self.opt_user(owner.as_deref()) {
                    p = p.with_owner(o);
                }
                let entered = api!(self.crm.create_partner(ctx, p).await);
                self.partners
                    .insert(partner.clone(), (ctx.tenant, entered.record.id));
                if let Some(want) = duplicates {
                    let want = find_all(&self.partners, "partner", want)?;
                    let got: BTreeSet<_> = entered.duplicates.iter().map(|d| d.partner).collect();
                    same("duplicates", got, Some(want))?;
                }
                Ok(Ok(()))
            }
            Op::EditPartner {
                partner,
                name,
                group,
                tax_id,
                version,
            } => {
                let (t, id) = home(&self.partners, "partner", partner)?;
                let v = api!(self.version(t, *version, Versioned::Partner(id)).await);
                let patch = PartnerPatch {
                    name: name.clone(),
                    group: group.clone().map(Some),
                    tax_id: tax_id.clone().map(Some),
                    ..Default::default()
                };
                Ok(self.crm.update_partner(ctx, id, v, patch).await.map(drop))
            }
            _ => unreachable!("partner_op is called with partner operations only"),
        }
    }

    async fn lead_command(&mut self, ctx: &Context, op: &Op) -> Done {
        let (label, cmd, version) = match op {
            Op::Lead {
                lead,
                partner,
                title,
                revenue,
                probability,
                pipeline,
                stage,
                owner,
                tags,
            } => {
                let p = find(&self.partners, "partner", partner)?;
                let mut n = NewLead::for_partner(p, title.clone().unwrap_or_else(|| lead.clone()));
                if pipeline.is_some() || stage.is_some() {
                    let pl = api!(self.pipeline_named(ctx.tenant, pipeline.as_deref()).await?);
                    n.pipeline = Some(pl.id);
                    n.stage = stage
                        .as_deref()
                        .map(|s| pl.stage_named(s).map_or_else(StageId::new, |s| s.id));
                }
                n.expected_revenue = match revenue {
                    Some(r) => Some(api!(money(r))),
                    None => None,
                };
                n.probability = *probability;
                n.owner = self.opt_user(owner.as_deref());
                n.tags = tags.iter().cloned().collect();
                let entered = api!(self.crm.enter_lead(ctx, n).await);
                self.leads
                    .insert(lead.clone(), (ctx.tenant, entered.record.id));
                return Ok(Ok(()));
            }
            Op::Move {
                lead,
                stage,
                version,
            } => {
                find(&self.leads, "lead", lead)?;
                let (_, stage) = api!(self.lead_and_stage(lead, Some(stage)).await);
                (lead, LeadCommand::MoveTo { stage }, version)
            }
            Op::Win { lead, version } => (lead, LeadCommand::Win, version),
            Op::Lose {
                lead,
                reason,
                competitor,
                note,
                version,
            } => {
                let reason = match reason {
                    Some(name) => Some(
                        api!(self.crm.lost_reasons(ctx.tenant).await)
                            .into_iter()
                            .find(|r| r.name == *name)
                            .map_or_else(LostReasonId::new, |r| r.id),
                    ),
                    None => None,
                };
                let cmd = LeadCommand::Lose {
                    reason,
                    competitor: competitor.clone(),
                    note: note.clone(),
                };
                (lead, cmd, version)
            }
            Op::Reopen {
                lead,
                stage,
                version,
            } => {
                find(&self.leads, "lead", lead)?;
                let stage = match stage {
                    Some(s) => Some(api!(self.lead_and_stage(lead, Some(s)).await).1),
                    None => None,
                };
                (lead, LeadCommand::Reopen { stage }, version)
            }
            Op::EditLead {
                lead,
                title,
                revenue,
                probability,
                tags,
                version,
            } => {
                let expected_revenue = match revenue.as_deref() {
                    Some("") => Some(None),
                    Some(r) => Some(Some(api!(money(r)))),
                    None => None,
                };
                let patch = LeadPatch {
                    title: title.clone(),
                    expected_revenue,
                    probability: probability.map(Some),
                    tags: tags.as_ref().map(|t| t.iter().cloned().collect()),
                    ..Default::default()
                };
                (lead, LeadCommand::Update(patch), version)
            }
            _ => unreachable!("lead_command is called with lead operations only"),
        };
        let (t, id) = home(&self.leads, "lead", label)?;
        let v = api!(self.version(t, *version, Versioned::Lead(id)).await);
        Ok(self.crm.transition(ctx, id, v, cmd).await.map(drop))
    }

    /// Categories, products and rates.
    async fn commerce_op(&mut self, ctx: &Context, op: &Op) -> Done {
        match op {
            Op::Category { category, name } => {
                let input = NewCategory {
                    code: category.clone(),
                    name: name.clone().unwrap_or_else(|| category.clone()),
                };
                let c = api!(self.commerce.record_category(ctx, input, None).await);
                self.categories
                    .insert(category.clone(), (ctx.tenant, c.record().id));
                Ok(Ok(()))
            }
            Op::Product {
                product,
                name,
                category,
            } => {
                let category = find_opt(&self.categories, "category", category)?;
                let input = NewProduct {
                    code: product.clone(),
                    name: name.clone().unwrap_or_else(|| product.clone()),
                    category,
                };
                let p = api!(self.commerce.record_product(ctx, input, None).await);
                self.products
                    .insert(product.clone(), (ctx.tenant, p.record().id));
                Ok(Ok(()))
            }
            Op::Rate { from, to, on, rate } => Ok(self
                .commerce
                .record_rate(ctx, from, to, on.0, rate.0)
                .await
                .map(drop)),
            _ => unreachable!("commerce_op is called with its operations only"),
        }
    }

    fn lines(&self, lines: &[LineSpec]) -> std::result::Result<Vec<NewLine>, String> {
        lines
            .iter()
            .map(|l| {
                let mut n = NewLine::new(
                    find(&self.products, "product", &l.product)?,
                    l.qty.0,
                    l.price.0,
                    dec(l.cost),
                );
                n.discount_pct = dec(l.discount);
                Ok(n)
            })
            .collect()
    }

    async fn document(&mut self, ctx: &Context, op: &Op) -> Done {
        let Op::Document {
            kind,
            number,
            partner,
            date,
            due,
            currency,
            lines,
            campaign,
            corrects,
            direction,
            amount,
            allocations,
            version,
            recorded,
        } = op
        else {
            unreachable!("document is called with documents only")
        };
        let input = NewDocument {
            kind: *kind,
            number: number.clone(),
            partner: find(&self.partners, "partner", partner)?,
            issue_date: date.0,
            due_date: due.map(|d| d.0),
            currency: currency.clone(),
            lines: self.lines(lines)?,
            campaign: find_opt(&self.campaigns, "campaign", campaign)?,
            corrects: corrects.clone(),
            renews_on: None,
            direction: *direction,
            amount: amount.map(|a| a.0),
            allocations: allocations
                .iter()
                .map(|a| Allocation {
                    number: a.number.clone(),
                    amount: a.amount.0,
                })
                .collect(),
            version: *version,
        };
        let got = api!(self.commerce.record_document(ctx, input).await).recorded;
        let how = match got {
            Recorded::Inserted(_) => RecordedSpec::Inserted,
            Recorded::Replaced { .. } => RecordedSpec::Replaced,
            Recorded::Unchanged(_) => RecordedSpec::Unchanged,
        };
        same("recorded", how, *recorded)?;
        Ok(Ok(()))
    }

    async fn campaign_op(&mut self, ctx: &Context, op: &Op) -> Done {
        match op {
            Op::Campaign {
                campaign,
                name,
                channel,
                from,
                to,
                owner,
                agents,
                budget,
                script,
                criteria,
            } => {
                let owner = match owner {
                    Some(o) => self.user(o),
                    None => ctx.actor.user_id().unwrap_or_default(),
                };
                let input = NewCampaign {
                    name: name.clone().unwrap_or_else(|| campaign.clone()),
                    channel: *channel,
                    period: api!(Period::new(from.0, to.0)),
                    owner,
                    agents: agents.iter().map(|a| self.user(a)).collect(),
                    script: script.clone(),
                    budget: match budget {
                        Some(b) => Some(api!(money(b))),
                        None => None,
                    },
                    criteria: criteria.clone(),
                };
                let c = api!(self.commerce.create_campaign(ctx, input).await);
                self.campaigns.insert(campaign.clone(), (ctx.tenant, c.id));
                Ok(Ok(()))
            }
            Op::CampaignCost {
                campaign,
                date,
                amount,
                note,
            } => {
                let id = find(&self.campaigns, "campaign", campaign)?;
                let amount = api!(money(amount));
                Ok(self
                    .commerce
                    .add_campaign_cost(ctx, id, date.0, amount, note.as_deref())
                    .await
                    .map(drop))
            }
            Op::Launch {
                campaign,
                targets,
                version,
            } => {
                let (t, id) = home(&self.campaigns, "campaign", campaign)?;
                let v = api!(self.version(t, *version, Versioned::Campaign(id)).await);
                let launch = api!(self.commerce.launch_campaign(ctx, id, v).await);
                same("targets launched", launch.targets.len(), *targets)?;
                Ok(Ok(()))
            }
            Op::CallOutcome {
                campaign,
                partner,
                outcome,
                call_back_in_hours,
                lead,
            } => {
                let (t, id) = home(&self.campaigns, "campaign", campaign)?;
                let p = find(&self.partners, "partner", partner)?;
                let targets = api!(
                    self.commerce
                        .store()
                        .campaign_targets(t, id, &PageRequest::first(PageRequest::MAX))
                        .await
                );
                let target = targets
                    .items
                    .into_iter()
                    .find(|x| x.partner == p)
                    .ok_or_else(|| format!("`{partner}` is not a target of `{campaign}`"))?;
                let request = target
                    .request
                    .ok_or_else(|| format!("the target `{partner}` has no call"))?;
                let outcome = match outcome {
                    OutcomeSpec::NoAnswer => CallOutcome::NoAnswer,
                    OutcomeSpec::CallBack => CallOutcome::CallBack {
                        at: self.clock.now() + Duration::hours(call_back_in_hours.unwrap_or(24)),
                    },
                    OutcomeSpec::Interested => CallOutcome::Interested,
                    OutcomeSpec::NotInterested => CallOutcome::NotInterested,
                    OutcomeSpec::WrongContact => CallOutcome::WrongContact,
                };
                let agent_ctx = match target.agent {
                    Some(a) => Context::user(ctx.tenant, a),
                    None => ctx.clone(),
                };
                let done = api!(
                    self.commerce
                        .record_call_outcome(&agent_ctx, request, outcome)
                        .await
                );
                match (lead, done.lead) {
                    (Some(label), Some(l)) => {
                        self.leads.insert(label.clone(), (ctx.tenant, l.id));
                    }
                    (Some(label), None) => {
                        return Err(format!("no lead was entered to label `{label}`"))
                    }
                    (None, _) => {}
                }
                Ok(Ok(()))
            }
            Op::CloseCampaign { campaign, version } => {
                let (t, id) = home(&self.campaigns, "campaign", campaign)?;
                let v = api!(self.version(t, *version, Versioned::Campaign(id)).await);
                Ok(self.commerce.close_campaign(ctx, id, v).await.map(drop))
            }
            _ => unreachable!("campaign_op is called with campaign operations only"),
        }
    }

    /// The reads of partners, requests, timelines, comments, stage history and pipelines.
    async fn check_lead_side(&self, tenant: TenantId, op: &Op) -> Done {
        match op {
            Op::CheckPartner {
                partner,
                name,
                group,
                version,
            } => {
                let id = find(&self.partners, "partner", partner)?;
                let p = api!(self.crm.partner(tenant, id).await);
                let checks = same("name", &p.name, name.as_ref())
                    .and(same("group", p.group.as_ref(), group.as_ref().map(Some)))
                    .and(same("version", p.version, *version));
                checks.map(Ok)
            }
            Op::CheckRequest {
                request,
                status,
                version,
                assignee,
            } => {
                let id = find(&self.requests, "request", request)?;
                let r = api!(self.crm.request(tenant, id).await);
                let assignee = match assignee {
                    Some(a) => Some(*self.users.get(a).ok_or_else(|| format!("no user `{a}`"))?),
                    None => None,
                };
                let checks = same("status", r.status, *status)
                    .and(same("version", r.version, *version))
                    .and(same("assignee", r.assignee, assignee));
                checks.map(Ok)
            }
            Op::CheckTimeline {
                lead,
                partner,
                request,
                kinds,
                count,
            } => {
                let of = match self.comment_target(lead, partner, request)? {
                    CommentTarget::Lead(l) => TimelineOf::Lead(l),
                    CommentTarget::Partner(p) => TimelineOf::Partner(p),
                    CommentTarget::Request(r) => TimelineOf::Request(r),
                };
                let page = PageRequest::first(PageRequest::MAX);
                let events = api!(self.crm.timeline(tenant, of, &page).await).items;
                let got: Vec<&str> = events.iter().map(|e| e.kind.name()).collect();
                let want: Option<Vec<&str>> = kinds
                    .as_ref()
                    .map(|k| k.iter().map(String::as_str).collect());
                same("events", got.len(), *count)
                    .and(same("event kinds (newest first)", got, want))
                    .map(Ok)
            }
            Op::CheckComments {
                lead,
                partner,
                request,
                bodies,
            } => {
                let target = self.comment_target(lead, partner, request)?;
                let page = PageRequest::first(PageRequest::MAX);
                let got = api!(self.crm.comments(tenant, target, &page).await).items;
                let got: Vec<&str> = got.iter().map(|c| c.body.as_str()).collect();
                let want: Vec<&str> = bodies.iter().map(String::as_str).collect();
                same("comments (newest first)", got, Some(want)).map(Ok)
            }
            Op::CheckHistory { lead, steps } => {
                let id = find(&self.leads, "lead", lead)?;
                let h = api!(self.crm.stage_history(tenant, id).await);
                let mut got = Vec::new();
                for s in &h {
                    got.push((self.stage_name(tenant, s.pipeline, s.to).await, s.status));
                }
                same("stage history", got, Some(steps.clone())).map(Ok)
            }
            Op::CheckFunnel {
                pipeline,
                reached,
                won,
                lost,
            } => {
                let p = api!(self.pipeline_named(tenant, pipeline.as_deref()).await?);
                let f = api!(self.crm.funnel(tenant, p.id, None).await);
                let got: Vec<u64> = f.steps.iter().map(|s| s.2).collect();
                same("reached per stage", got, Some(reached.clone()))
                    .and(same("won, lost", (f.won, f.lost), Some((*won, *lost))))
                    .map(Ok)
            }
            Op::CheckBoard { pipeline, counts } => {
                let p = api!(self.pipeline_named(tenant, pipeline.as_deref()).await?);
                let b = api!(self.crm.board(tenant, p.id).await);
                let got: Vec<u64> = b.columns.iter().map(|c| c.count).collect();
                same("leads per column", got, Some(counts.clone())).map(Ok)
            }
            Op::CheckLeads {
                status,
                partner,
                tag,
                text,
                titles,
            } => {
                let partner = find_opt(&self.partners, "partner", partner)?;
                let q = LeadQuery {
                    status: *status,
                    partner,
                    tag: tag.clone(),
                    text: text.clone(),
                    page: PageRequest::first(PageRequest::MAX),
                    ..Default::default()
                };
                let got = api!(self.crm.query_leads(tenant, &q).await).items;
                let got: Vec<&str> = got.iter().map(|l| l.title.as_str()).collect();
                let want: Vec<&str> = titles.iter().map(String::as_str).collect();
                same("lead titles (newest first)", got, Some(want)).map(Ok)
            }
            _ => unreachable!("check_lead_side is called with its reads only"),
        }
    }

    async fn check_lead(&self, tenant: TenantId, op: &Op) -> Done {
        let Op::CheckLead {
            lead: label,
            status,
            stage,
            probability,
            version,
            title,
            revenue,
            lost_reason,
            campaign,
        } = op
        else {
            unreachable!("check_lead is called with check_lead only")
        };
        let id = find(&self.leads, "lead", label)?;
        let l = api!(self.crm.lead(tenant, id).await);
        same("status", l.status.kind(), *status)?;
        if stage.is_some() {
            let name = self.stage_name(tenant, l.pipeline, l.stage).await;
            same("stage", Some(name), Some(stage.clone()))?;
        }
        same("probability", l.probability, *probability)?;
        same("version", l.version, *version)?;
        same("title", &l.title, title.as_ref())?;
        if let Some(r) = revenue {
            let want = match r.as_str() {
                "" => None,
                r => Some(money(r).map_err(|e| e.to_string())?),
            };
            same("expected revenue", l.expected_revenue, Some(want))?;
        }
        if let Some(name) = lost_reason {
            let got = match &l.status {
                LeadStatus::Lost { reason, .. } => api!(self.crm.lost_reasons(tenant).await)
                    .into_iter()
                    .find(|r| r.id == *reason)
                    .map(|r| r.name),
                _ => None,
            };
            same("lost reason", got, Some(Some(name.clone())))?;
        }
        if let Some(c) = campaign {
            let want = find(&self.campaigns, "campaign", c)?;
            same("source campaign", l.source.campaign, Some(Some(want)))?;
        }
        Ok(Ok(()))
    }

    /// The commerce reads.
    async fn check_commerce(&self, tenant: TenantId, op: &Op) -> Done {
        match op {
            Op::CheckDocument {
                kind,
                number,
                version,
                total,
                campaign,
                lines,
            } => {
                let Some(d) = api!(
                    self.commerce
                        .store()
                        .document_by_number(tenant, *kind, number)
                        .await
                ) else {
                    return Ok(Err(Error::not_found("document", number)));
                };
                let campaign = match campaign.as_deref() {
                    Some("") => Some(None),
                    Some(c) => Some(Some(find(&self.campaigns, "campaign", c)?)),
                    None => None,
                };
                same("version", d.version, *version)?;
                same("total", d.total, total.map(|t| t.0))?;
                same("campaign", d.campaign, campaign)?;
                same("lines", d.lines.len(), *lines)?;
                Ok(Ok(()))
            }
            Op::CheckOpenItems {
                partner,
                as_of,
                items,
            } => {
                let p = find(&self.partners, "partner", partner)?;
                let got = api!(
                    self.commerce
                        .open_items(tenant, p, as_of.map(|d| d.0))
                        .await
                );
                let got: Vec<(String, Decimal, Option<i64>)> = got
                    .iter()
                    .zip(items.iter().map(Some).chain(std::iter::repeat(None)))
                    .map(|(i, w)| {
                        let overdue = w.and_then(|w| w.days_overdue).map(|_| i.days_overdue);
                        (i.number.clone(), i.open, overdue)
                    })
                    .collect();
                let want: Vec<(String, Decimal, Option<i64>)> = items
                    .iter()
                    .map(|i| (i.number.clone(), i.open.0, i.days_overdue))
                    .collect();
                same("open items (number, open, days overdue)", got, Some(want)).map(Ok)
            }
            Op::CheckBalances {
                partner,
                as_of,
                balances,
            } => {
                let p = find(&self.partners, "partner", partner)?;
                let got = api!(self.commerce.balances(tenant, p, as_of.map(|d| d.0)).await);
                let got: Vec<(String, Decimal, Decimal, Decimal)> = got
                    .iter()
                    .map(|b| {
                        let code = b.currency.code().to_string();
                        (code, b.receivable, b.payable, b.overdue)
                    })
                    .collect();
                let want: Vec<(String, Decimal, Decimal, Decimal)> = balances
                    .iter()
                    .map(|b| (b.currency.clone(), b.receivable.0, b.payable.0, b.overdue.0))
                    .collect();
                same(
                    "balances (currency, receivable, payable, overdue)",
                    got,
                    Some(want),
                )
                .map(Ok)
            }
            Op::CheckProfit {
                from,
                to,
                group_by,
                top,
                rows,
            } => {
                let mut q = ProfitQuery::by(*group_by, api!(Period::new(from.0, to.0)));
                q.rank = top.map(|n| Rank {
                    order: RankOrder::Top,
                    n,
                });
                let got = api!(self.commerce.profitability(tenant, &q).await).rows;
                let got: Vec<_> = got
                    .iter()
                    .map(|r| (r.key.clone(), r.revenue, r.cost, r.gross_profit, r.invoices))
                    .collect();
                let want: Vec<_> = rows
                    .iter()
                    .map(|r| {
                        let key = r.key.as_deref().map(|k| self.key_of(k));
                        (key, r.revenue.0, r.cost.0, r.gross_profit.0, r.invoices)
                    })
                    .collect();
                same(
                    "rows (key, revenue, cost, gross profit, invoices)",
                    got,
                    Some(want),
                )
                .map(Ok)
            }
            Op::CheckSegment { criteria, partners } => {
                let got = api!(self.commerce.segment(tenant, criteria).await);
                let got: BTreeSet<PartnerId> = got.iter().map(|m| m.partner).collect();
                let want = find_all(&self.partners, "partner", partners)?;
                same("segment members", got, Some(want)).map(Ok)
            }
            Op::CheckProgress {
                campaign,
                targets,
                done,
                remaining,
            } => {
                let id = find(&self.campaigns, "campaign", campaign)?;
                let p = api!(self.commerce.progress(tenant, id).await);
                let total = p.first().cloned().unwrap_or_default();
                same(
                    "targets, done, remaining",
                    (total.targets, total.done, total.remaining),
                    Some((*targets, *done, *remaining)),
                )
                .map(Ok)
            }
            _ => unreachable!("check_commerce is called with its reads only"),
        }
    }

    async fn check_campaign(&self, tenant: TenantId, op: &Op) -> Done {
        let Op::CheckCampaign {
            campaign,
            from,
            to,
            status,
            targets,
            reached,
            interested,
            leads,
            won,
            invoiced_customers,
            revenue,
            cost_of_goods,
            gross_profit,
            campaign_cost,
            net_profit,
            roi_pct,
        } = op
        else {
            unreachable!("check_campaign is called with check_campaign only")
        };
        let id = find(&self.campaigns, "campaign", campaign)?;
        let c = api!(self.commerce.campaign(tenant, id).await);
        let status_name = match c.status {
            CampaignStatus::Draft => "draft",
            CampaignStatus::Active => "active",
            CampaignStatus::Closed => "closed",
        };
        same("status", status_name, status.as_deref())?;
        let period = match (from, to) {
            (Some(f), Some(t)) => Some(api!(Period::new(f.0, t.0))),
            (None, None) => None,
            _ => return Err("give both `from` and `to`, or neither".into()),
        };
        let r = api!(self.commerce.campaign_report(tenant, id, period).await);
        let amount = |a: &Option<Amount>| a.map(|a| a.0);
        same("targets", r.targets, *targets)?;
        same("reached", r.reached, *reached)?;
        same("interested", r.interested, *interested)?;
        same("leads", r.leads, *leads)?;
        same("won", r.won, *won)?;
        same(
            "invoiced customers",
            r.invoiced_customers,
            *invoiced_customers,
        )?;
        same("revenue", r.revenue, amount(revenue))?;
        same("cost of goods", r.cost_of_goods, amount(cost_of_goods))?;
        same("gross profit", r.gross_profit, amount(gross_profit))?;
        same("campaign cost", r.campaign_cost, amount(campaign_cost))?;
        same("net profit", r.net_profit, amount(net_profit))?;
        if let Some(roi) = roi_pct {
            let want = match roi.as_str() {
                "" => None,
                s => Some(
                    s.parse::<Decimal>()
                        .map_err(|e| format!("roi_pct `{s}`: {e}"))?,
                ),
            };
            same("roi %", r.roi_pct, Some(want))?;
        }
        Ok(Ok(()))
    }
}
