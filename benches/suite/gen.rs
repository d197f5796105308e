//! The deterministic data generator.
//!
//! Everything derives from `(size, seed)`: the random choices come from a `ChaCha8Rng` seeded with `seed`, the ids
//! are UUID v7 built from the record's logical time and a hash of `(seed, kind, index)`, and the times follow a fixed
//! calendar (leads entered over three years starting 2023-01-01). The same size and seed give the same database
//! content, so a generated file can be cached under `target/bench/data/<size>-<seed>/`.
//!
//! The data is written straight through [`Store::ingest`] in change sets of about [`BATCH`] rows, streaming: at
//! no time is more than one batch held in memory.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use crm_core::actor::Context;
use crm_core::commerce::{
    AppliedRate, Campaign, Category, Channel, CommerceStore, Document, DocumentFacts, ExchangeRate,
    NewCampaign, NewCategory, NewDocument, NewLine, NewProduct, PaymentDirection, Period, Product,
};
use crm_core::dedupe;
use crm_core::event::{DomainEvent, EventKind, StageHistoryEntry};
use crm_core::id::{
    CampaignId, CategoryId, ContactId, DocumentId, LeadId, LostReasonId, PartnerId, PipelineId,
    ProductId, StageId, TenantId, UserId,
};
use crm_core::lead::{self, Facts, Lead, LeadCommand, LeadPatch, NewLead, Priority, StatusKind};
use crm_core::money::{Currency, Money};
use crm_core::partner::{NewPartner, Partner, PartnerRole};
use crm_core::pipeline::{LostReason, NewPipeline, Pipeline};
use crm_core::service::lead_subject;
use crm_core::store::{BulkStep, ChangeSet, Store, Write};
use crm_core::time::Timestamp;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use uuid::Uuid;

/// Rows (writes) per ingested change set.
pub const BATCH: usize = 10_000;

/// A data-set size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Size {
    /// Its name (`XS`, `S`, `MID`, `M`).
    pub name: &'static str,
    /// Leads of the main tenant.
    pub leads: u64,
    /// Partners (customers) of the main tenant.
    pub partners: u64,
    /// Invoice lines of the main tenant (used once the commerce store lands).
    pub lines: u64,
}

/// The sizes, smallest first: `XS` (CI smoke), `S` (10k leads), `MID` (in between), `M` (1M leads), and `ML`
/// (M's leads and customers without the commerce data, for the lead workloads at 1M leads when generating 10M
/// invoice lines takes too long).
pub const SIZES: [Size; 5] = [
    Size {
        name: "XS",
        leads: 2_000,
        partners: 2_000,
        lines: 20_000,
    },
    Size {
        name: "S",
        leads: 10_000,
        partners: 10_000,
        lines: 100_000,
    },
    Size {
        name: "MID",
        leads: 100_000,
        partners: 100_000,
        lines: 1_000_000,
    },
    Size {
        name: "M",
        leads: 1_000_000,
        partners: 1_000_000,
        lines: 10_000_000,
    },
    Size {
        name: "ML",
        leads: 1_000_000,
        partners: 1_000_000,
        lines: 0,
    },
];

/// The size named `name` (case-insensitive).
pub fn size(name: &str) -> Option<Size> {
    SIZES
        .iter()
        .copied()
        .find(|s| s.name.eq_ignore_ascii_case(name.trim()))
}

/// What the generator wrote: the ids and counts the workloads need.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// The size's name.
    pub size: String,
    /// The seed.
    pub seed: u64,
    /// The main tenant.
    pub tenant: TenantId,
    /// A second, smaller tenant (a tenth of the main one), so every query has to filter.
    pub other_tenant: TenantId,
    /// The main tenant's pipeline.
    pub pipeline: PipelineId,
    /// Its users (lead and account owners).
    pub users: Vec<UserId>,
    /// Leads of the main tenant.
    pub leads: u64,
    /// Partners of the main tenant.
    pub partners: u64,
    /// Rows written, all tables and tenants.
    pub rows: u64,
    /// Leads with a long timeline (more than 50 entries).
    pub hot_leads: Vec<LeadId>,
    /// A uniform sample of leads.
    pub sample_leads: Vec<LeadId>,
    /// Seconds the generation took.
    pub seconds: f64,
    /// The commerce data and the parameters of the segmentation and profitability workloads.
    pub commerce: CommerceParams,
}

/// The generated commerce data (main tenant) and the workloads' parameters.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CommerceParams {
    /// Sales invoices.
    pub invoices: u64,
    /// Credit notes.
    pub credit_notes: u64,
    /// Payments.
    pub payments: u64,
    /// Invoice and credit-note lines.
    pub lines: u64,
    /// The category the segment asks about ("bought a given category").
    pub category: Option<CategoryId>,
    /// The campaigns (some invoices and leads are linked to them).
    pub campaigns: Vec<CampaignId>,
    /// The year profitability and segmentation look at.
    pub year: i32,
    /// The segment's evaluation day (the day after that year).
    pub as_of: Option<NaiveDate>,
    /// The segment's volume threshold, in 10^-4 EUR.
    pub threshold_units: i64,
}

impl Manifest {
    /// Reads a manifest written by [`generate`].
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Writes it.
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let text = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// The first instant of the generated calendar.
pub fn epoch() -> Timestamp {
    Utc.with_ymd_and_hms(2023, 1, 1, 0, 0, 0)
        .single()
        .expect("valid date")
}

/// Three years: the span over which leads are entered.
pub fn span() -> Duration {
    Duration::days(3 * 365)
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Kinds of generated ids (so that two kinds with the same index never collide).
#[derive(Debug, Clone, Copy)]
#[repr(u64)]
pub enum Kind {
    /// Tenants.
    Tenant = 1,
    /// Users.
    User,
    /// Partners.
    Partner,
    /// Contacts.
    Contact,
    /// Pipelines.
    Pipeline,
    /// Stages.
    Stage,
    /// Lost reasons.
    Reason,
    /// Leads.
    Lead,
    /// Events.
    Event,
    /// Product categories.
    Category,
    /// Products.
    Product,
    /// Campaigns.
    Campaign,
    /// Documents.
    Document,
    /// Campaign cost entries.
    CampaignCost,
    /// Campaign calls (the requests of telemarketing targets).
    Call,
}

/// A deterministic UUID v7 for record `index` of `kind`, stamped at `at`.
pub fn v7(seed: u64, kind: Kind, index: u64, at: Timestamp) -> Uuid {
    let a = mix(seed ^ mix((kind as u64).wrapping_mul(0x1000_0000_01B3) ^ mix(index)));
    let b = mix(a);
    let mut bytes = [0u8; 10];
    bytes[..8].copy_from_slice(&a.to_le_bytes());
    bytes[8..].copy_from_slice(&b.to_le_bytes()[..2]);
    uuid::Builder::from_unix_timestamp_millis(at.timestamp_millis().max(0) as u64, &bytes)
        .into_uuid()
}

/// One tenant's generated world: the ids every record of it refers to.
#[derive(Debug, Clone)]
pub struct World {
    /// The seed (mixed with the tenant number).
    pub seed: u64,
    /// The tenant.
    pub tenant: TenantId,
    /// Its pipeline.
    pub pipeline: Pipeline,
    /// Its lost reasons.
    pub reasons: Vec<LostReason>,
    /// Its users.
    pub users: Vec<UserId>,
    /// How many partners it has.
    pub partners: u64,
}

const GROUPS: usize = 20;
const USERS: u64 = 50;
const WORDS: [&str; 16] = [
    "Nord",
    "Carpat",
    "Delta",
    "Alfa",
    "Mobila",
    "Agro",
    "Trans",
    "Tehno",
    "Vest",
    "Dunarea",
    "Logistic",
    "Construct",
    "Medical",
    "Energo",
    "Textil",
    "Print",
];
const FORMS: [&str; 4] = ["SRL", "SA", "GmbH", "Ltd"];
const TITLES: [&str; 8] = [
    "Forklifts",
    "CNC machines",
    "Fleet telematics",
    "Warehouse racks",
    "Solar roof",
    "ERP licences",
    "Packaging line",
    "Service contract",
];

impl World {
    /// The world of tenant number `n` for `seed`: pipeline, lost reasons and users with deterministic ids.
    pub fn new(seed: u64, n: u64, partners: u64) -> Self {
        let seed = mix(seed ^ n.wrapping_mul(0xA24B_AED4_963E_E407));
        let at = epoch() - Duration::days(30);
        let tenant = TenantId::from_uuid(v7(seed, Kind::Tenant, n, at));
        let pipeline = NewPipeline::seed_default()
            .build(tenant, at)
            .expect("seed pipeline is valid");
        let pipeline = restamp(&pipeline, |v| {
            v["id"] = json!(PipelineId::from_uuid(v7(seed, Kind::Pipeline, 0, at)));
            for (i, s) in array(&mut v["stages"]).iter_mut().enumerate() {
                s["id"] = json!(StageId::from_uuid(v7(seed, Kind::Stage, i as u64, at)));
            }
        });
        let reasons = LostReason::seed_defaults(tenant)
            .iter()
            .enumerate()
            .map(|(i, r)| {
                restamp(r, |v| {
                    v["id"] = json!(LostReasonId::from_uuid(v7(
                        seed,
                        Kind::Reason,
                        i as u64,
                        at
                    )));
                })
            })
            .collect();
        let users = (0..USERS)
            .map(|i| UserId::from_uuid(v7(seed, Kind::User, i, at)))
            .collect();
        Self {
            seed,
            tenant,
            pipeline,
            reasons,
            users,
            partners,
        }
    }

    /// The time partner `i` was created.
    pub fn partner_created(&self, i: u64) -> Timestamp {
        epoch() - Duration::days(20) + Duration::microseconds(i as i64 * 1_000)
    }

    /// The id of partner `i`.
    pub fn partner_id(&self, i: u64) -> PartnerId {
        PartnerId::from_uuid(v7(self.seed, Kind::Partner, i, self.partner_created(i)))
    }

    /// The group of partner `i` (20 groups).
    pub fn partner_group(&self, i: u64) -> String {
        format!("group-{:02}", mix(self.seed ^ i) as usize % GROUPS)
    }

    /// Partner `i`: a customer company with one or two contacts, a tax id, a group and an owner.
    pub fn partner(&self, i: u64) -> Partner {
        let h = mix(self.seed ^ i.wrapping_mul(31));
        let name = format!(
            "{} {} {} {i}",
            WORDS[h as usize % WORDS.len()],
            WORDS[(h >> 8) as usize % WORDS.len()],
            FORMS[(h >> 16) as usize % FORMS.len()]
        );
        let domain = format!("firm{i}.example");
        let mut np = NewPartner::company(name)
            .with_role(PartnerRole::Customer)
            .with_contact(
                &format!("Contact {i}"),
                Some(&format!("office@{domain}")),
                Some(&format!("+40 7{:08}", i % 100_000_000)),
            )
            .with_tax_id(&format!("RO{}", 1_000_000 + i))
            .with_group(&self.partner_group(i))
            .with_owner(self.users[(h >> 24) as usize % self.users.len()]);
        if h.is_multiple_of(3) {
            np = np.with_contact(
                &format!("Buyer {i}"),
                Some(&format!("buyer@{domain}")),
                None,
            );
        }
        let p = np
            .build(self.tenant, self.partner_created(i))
            .expect("generated partner is valid");
        let created = p.created_at();
        restamp(&p, |v| {
            v["id"] = json!(self.partner_id(i));
            for (k, c) in array(&mut v["contacts"]).iter_mut().enumerate() {
                c["id"] = json!(ContactId::from_uuid(v7(
                    self.seed,
                    Kind::Contact,
                    i * 4 + k as u64,
                    created
                )));
            }
        })
    }

    /// The writes of partner `i` (the partner with its keys, and its creation event).
    pub fn partner_writes(&self, i: u64, out: &mut Vec<Write>) {
        let p = self.partner(i);
        let ctx = Context::user(self.tenant, p.owner().unwrap_or(self.users[0]));
        let mut e = DomainEvent::new(
            &ctx,
            p.created_at(),
            crm_core::event::Subject {
                partner: Some(p.id()),
                ..Default::default()
            },
            EventKind::PartnerCreated {
                name: p.name().to_owned(),
            },
        );
        e.id = crm_core::id::EventId::from_uuid(v7(
            self.seed,
            Kind::Event,
            u64::MAX - i,
            p.created_at(),
        ));
        out.push(Write::InsertPartner {
            keys: dedupe::keys_of(&p),
            partner: p,
        });
        out.push(Write::AppendEvent(e));
    }

    /// The set-up writes of the tenant: its pipeline and lost reasons.
    pub fn setup_writes(&self) -> Vec<Write> {
        let mut w = vec![Write::InsertPipeline(self.pipeline.clone())];
        w.extend(self.reasons.iter().cloned().map(Write::InsertLostReason));
        w
    }

    /// A new lead's input: for a random partner, with revenue (EUR mostly, some RON and USD) and an owner.
    pub fn new_lead(&self, rng: &mut ChaCha8Rng, i: u64) -> (PartnerId, NewLead) {
        let partner = self.partner_id(rng.random_range(0..self.partners.max(1)));
        let currency = match rng.random_range(0..20) {
            0..=15 => "EUR",
            16..=18 => "RON",
            _ => "USD",
        };
        let amount = Decimal::from(rng.random_range(1_000..200_000u32))
            + Decimal::new(rng.random_range(0..100), 2);
        let mut nl = NewLead::for_partner(
            partner,
            format!("{} #{i}", TITLES[rng.random_range(0..TITLES.len())]),
        )
        .with_owner(self.users[rng.random_range(0..self.users.len())]);
        if rng.random_range(0..10) != 0 {
            nl = nl.with_revenue(
                Money::new(amount, Currency::parse(currency).expect("known currency"))
                    .expect("valid money"),
            );
        }
        if rng.random_range(0..20) == 0 {
            nl.source.campaign = Some(self.campaign_id(rng.random_range(0..CAMPAIGNS)));
        }
        if rng.random_range(0..4) == 0 {
            nl = nl.with_tag(if rng.random_bool(0.5) {
                "fair"
            } else {
                "referral"
            });
        }
        (partner, nl)
    }

    /// Lead `i` entered at `at`, with its full history (moves, edits, won or lost), as writes.
    ///
    /// `hot` leads get 60 extra edits, so their timeline is longer than one page.
    pub fn lead_writes(
        &self,
        rng: &mut ChaCha8Rng,
        i: u64,
        at: Timestamp,
        hot: bool,
        out: &mut Vec<Write>,
    ) -> LeadId {
        let (partner, nl) = self.new_lead(rng, i);
        let owner = nl.owner.unwrap_or(self.users[0]);
        let ctx = Context::user(self.tenant, owner);
        let (lead, kind) = nl
            .build(self.tenant, partner, &self.pipeline, at)
            .expect("generated lead is valid");
        let mut lead = restamp(&lead, |v| {
            v["id"] = json!(LeadId::from_uuid(v7(self.seed, Kind::Lead, i, at)));
        });
        let mut ev = 0u64;
        let event = |lead: &Lead, at: Timestamp, kind: EventKind, ev: &mut u64| {
            let mut e = DomainEvent::new(&ctx, at, lead_subject(lead), kind);
            e.id =
                crm_core::id::EventId::from_uuid(v7(self.seed, Kind::Event, (i << 12) | *ev, at));
            *ev += 1;
            Write::AppendEvent(e)
        };
        let mut writes = vec![
            Write::InsertLead(lead.clone()),
            event(&lead, at, kind, &mut ev),
        ];
        writes.push(Write::AppendStageHistory(StageHistoryEntry {
            tenant: self.tenant,
            lead: lead.id(),
            pipeline: self.pipeline.id(),
            from: None,
            to: lead.stage(),
            status: StatusKind::Open,
            at,
            actor: ctx.actor.clone(),
        }));
        let facts = Facts {
            lost_reasons: &self.reasons,
            requests: &[],
            quotations: &[],
        };
        let open: Vec<StageId> = self
            .pipeline
            .stages()
            .iter()
            .filter(|s| s.kind == crm_core::pipeline::StageKind::Open)
            .map(|s| s.id)
            .collect();
        let mut cmds = Vec::new();
        let mut pos = 0usize;
        for _ in 0..rng.random_range(0..4) {
            if pos + 1 >= open.len() {
                break;
            }
            pos = rng.random_range(pos + 1..open.len());
            cmds.push(LeadCommand::MoveTo { stage: open[pos] });
        }
        if hot {
            for k in 0..60 {
                let priority = if k % 2 == 0 {
                    Priority::High
                } else {
                    Priority::Normal
                };
                cmds.push(LeadCommand::Update(LeadPatch {
                    priority: Some(priority),
                    ..Default::default()
                }));
            }
        }
        match rng.random_range(0..100) {
            0..=19 => cmds.push(LeadCommand::Win),
            20..=34 => cmds.push(LeadCommand::Lose {
                reason: Some(self.reasons[rng.random_range(0..self.reasons.len())].id()),
                competitor: None,
                note: None,
            }),
            _ => {}
        }
        let mut now = at;
        for cmd in cmds {
            now += Duration::minutes(rng.random_range(30..(60 * 24 * 20)));
            let t = lead::apply(&lead, cmd, &self.pipeline, facts, now)
                .expect("generated transition is valid");
            for k in t.events {
                writes.push(event(&t.lead, now, k, &mut ev));
            }
            if t.moved {
                writes.push(Write::AppendStageHistory(StageHistoryEntry {
                    tenant: self.tenant,
                    lead: lead.id(),
                    pipeline: self.pipeline.id(),
                    from: Some(lead.stage()),
                    to: t.lead.stage(),
                    status: t.lead.status().kind(),
                    at: now,
                    actor: ctx.actor.clone(),
                }));
            }
            lead = t.lead;
        }
        // Ingest takes inserts only: store the lead in its final state (its history is in the events).
        if let Write::InsertLead(l) = &mut writes[0] {
            *l = lead.clone();
        }
        out.extend(writes);
        lead.id()
    }
}

const CATEGORIES: u64 = 20;
const PRODUCTS: u64 = 500;
const CAMPAIGNS: u64 = 10;

impl World {
    fn commerce_at(&self) -> Timestamp {
        epoch() - Duration::days(10)
    }

    /// The id of category `i`.
    pub fn category_id(&self, i: u64) -> CategoryId {
        CategoryId::from_uuid(v7(self.seed, Kind::Category, i, self.commerce_at()))
    }

    /// The id of product `i`.
    pub fn product_id(&self, i: u64) -> ProductId {
        ProductId::from_uuid(v7(self.seed, Kind::Product, i, self.commerce_at()))
    }

    /// The id of campaign `i`.
    pub fn campaign_id(&self, i: u64) -> CampaignId {
        CampaignId::from_uuid(v7(self.seed, Kind::Campaign, i, self.commerce_at()))
    }

    /// The categories, products and campaigns (writes), and the products by id (what recording documents needs).
    pub fn commerce_setup(&self) -> (Vec<Write>, BTreeMap<ProductId, Product>, Vec<CampaignId>) {
        let at = self.commerce_at();
        let mut writes = Vec::new();
        for i in 0..CATEGORIES {
            let c: Category = NewCategory {
                code: format!("CAT-{i:02}"),
                name: format!("Category {i}"),
            }
            .record(self.tenant, None, None, at)
            .expect("generated category is valid")
            .record()
            .clone();
            let c = restamp(&c, |v| v["id"] = json!(self.category_id(i)));
            writes.push(Write::Commerce(
                crm_core::commerce::CommerceWrite::InsertCategory(c),
            ));
        }
        let mut products = BTreeMap::new();
        for i in 0..PRODUCTS {
            let p: Product = NewProduct {
                code: format!("SKU-{i:04}"),
                name: format!("Product {i}"),
                category: Some(self.category_id(i % CATEGORIES)),
            }
            .record(self.tenant, None, None, at)
            .expect("generated product is valid")
            .record()
            .clone();
            let p = restamp(&p, |v| v["id"] = json!(self.product_id(i)));
            products.insert(p.id(), p.clone());
            writes.push(Write::Commerce(
                crm_core::commerce::CommerceWrite::InsertProduct(p),
            ));
        }
        if skew() {
            // A rate per foreign currency on the first of each month of 2023-2025 (the treasury's monthly fixing).
            for (code, base) in FOREIGN {
                let from = Currency::parse(code).expect("known currency");
                let to = Currency::parse("EUR").expect("EUR");
                for m in 0..36 {
                    let on = NaiveDate::from_ymd_opt(2023 + m / 12, 1 + (m % 12) as u32, 1)
                        .expect("date");
                    let r = ExchangeRate::new(self.tenant, from, to, on, month_rate(*base, on))
                        .expect("generated rate is valid");
                    writes.push(Write::Commerce(
                        crm_core::commerce::CommerceWrite::InsertRate(r),
                    ));
                }
            }
        }
        let mut campaigns = Vec::new();
        for i in 0..CAMPAIGNS {
            // The skewed data's odd campaigns call their targets.
            let calls = skew() && i % 2 == 1;
            let (c, _): (Campaign, _) = NewCampaign {
                name: format!("Campaign {i}"),
                channel: if calls {
                    Channel::Telemarketing
                } else {
                    Channel::Email
                },
                period: Period::new(
                    NaiveDate::from_ymd_opt(2023, 1, 1).expect("date"),
                    NaiveDate::from_ymd_opt(2025, 12, 31).expect("date"),
                )
                .expect("period"),
                owner: self.users[0],
                agents: if calls {
                    vec![self.users[0]]
                } else {
                    Vec::new()
                },
                script: None,
                budget: None,
                // The skewed data launches its campaigns, which takes a segment (the audience itself is drawn
                // by `launched_campaign`).
                criteria: skew().then(|| crm_core::commerce::Criteria::Tag { tag: "vip".into() }),
            }
            .build(self.tenant, at)
            .expect("generated campaign is valid");
            let c = restamp(&c, |v| v["id"] = json!(self.campaign_id(i)));
            campaigns.push(c.id());
            if skew() {
                self.launched_campaign(i, &c, &mut writes);
            } else {
                writes.push(Write::Commerce(
                    crm_core::commerce::CommerceWrite::InsertCampaign(c),
                ));
            }
        }
        (writes, products, campaigns)
    }

    /// Campaign `i` launched (skewed data): on an audience of one customer in fifty (drawn by a hash of the
    /// customer and the campaign, so audiences overlap), on a day of 2025 (campaign `i` on 1 February plus 25·`i`
    /// days), with a cost booked on the 15th of each month from its launch to December. Its writes: the active
    /// campaign, its targets, their calls (telemarketing: [`Self::called`]) and its costs.
    fn launched_campaign(&self, i: u64, draft: &Campaign, writes: &mut Vec<Write>) {
        use crm_core::commerce::{CampaignCost, CommerceWrite};
        let launch =
            NaiveDate::from_ymd_opt(2025, 2, 1).expect("date") + Duration::days(25 * i as i64);
        let at = Utc.from_utc_datetime(&launch.and_hms_opt(9, 0, 0).expect("time"));
        let audience: Vec<(PartnerId, String)> = (0..self.partners)
            .filter(|j| mix(self.seed ^ (j << 8) ^ i).is_multiple_of(50))
            .map(|j| (self.partner_id(j), format!("Customer {j}")))
            .collect();
        let l = draft
            .launch(
                &audience,
                None,
                crm_core::actor::Actor::User { id: self.users[0] },
                at,
            )
            .expect("a generated draft launches");
        let eur = Currency::parse("EUR").expect("EUR");
        let mut costs = Vec::new();
        let mut month = NaiveDate::from_ymd_opt(2025, launch.month(), 15).expect("date");
        while month.year() == 2025 {
            let amount = Money::new(Decimal::from(1000 + 100 * i), eur).expect("amount");
            let cost =
                CampaignCost::new(&l.campaign, month, amount, None, AppliedRate::identity(eur))
                    .expect("generated cost is valid");
            // Deterministic ids, as every generated record's.
            costs.push(restamp(&cost, |v| {
                v["id"] = json!(v7(
                    self.seed,
                    Kind::CampaignCost,
                    i * 16 + u64::from(month.month()),
                    at
                ));
            }));
            month = month
                .checked_add_months(chrono::Months::new(1))
                .expect("date");
        }
        let mut targets = l.targets;
        let mut calls = Vec::new();
        for (k, call) in l.calls.into_iter().enumerate() {
            let (target, call) = self.called(i, k as u64, &l.campaign, &targets[k], call, launch);
            targets[k] = target;
            calls.push(call);
        }
        writes.push(Write::Commerce(CommerceWrite::InsertCampaign(l.campaign)));
        writes.extend(
            targets
                .into_iter()
                .map(|t| Write::Commerce(CommerceWrite::InsertCampaignTarget(t))),
        );
        writes.extend(calls.into_iter().map(Write::InsertRequest));
        writes.extend(
            costs
                .into_iter()
                .map(|c| Write::Commerce(CommerceWrite::InsertCampaignCost(c))),
        );
    }

    /// Call `k` of campaign `i` (launched on `launch`), given a deterministic id, and its target, after what the
    /// agent recorded: 45 % of the calls made within eight weeks of the launch (a day and minute drawn by a hash of
    /// the campaign and the call), with no answer (30 % of those), a call back (20 %), not interested (20 %),
    /// interested (20 %) or a wrong contact (10 %), through the domain's own [`record_outcome`]; the rest not yet
    /// made.
    ///
    /// [`record_outcome`]: crm_core::commerce::record_outcome
    fn called(
        &self,
        i: u64,
        k: u64,
        campaign: &Campaign,
        target: &crm_core::commerce::CampaignTarget,
        call: crm_core::request::Request,
        launch: NaiveDate,
    ) -> (
        crm_core::commerce::CampaignTarget,
        crm_core::request::Request,
    ) {
        use crm_core::commerce::CallOutcome;
        let at = call.created_at();
        let id = v7(self.seed, Kind::Call, (i << 32) | k, at);
        let call = restamp(&call, |v| v["id"] = json!(id));
        let target = restamp(target, |v| v["request"] = json!(id));
        let h = mix(self.seed ^ mix((i << 32) | k));
        if h % 100 >= 45 {
            return (target, call);
        }
        let day = launch + Duration::days(((h >> 8) % 56) as i64);
        let now = Utc.from_utc_datetime(&day.and_hms_opt(10, 0, 0).expect("time"))
            + Duration::minutes(((h >> 16) % 480) as i64);
        let outcome = match (h >> 32) % 10 {
            0..=2 => CallOutcome::NoAnswer,
            3 | 4 => CallOutcome::CallBack {
                at: now + Duration::days(3),
            },
            5 | 6 => CallOutcome::NotInterested,
            7 | 8 => CallOutcome::Interested,
            _ => CallOutcome::WrongContact,
        };
        let change = crm_core::commerce::record_outcome(
            campaign,
            &target,
            &call,
            Some(call.assignee()),
            outcome,
            now,
        )
        .expect("a generated call's outcome records");
        (change.target, change.request)
    }

    /// Invoice `k` issued on `day` to a generated customer (uniform, or Pareto when skewed), in EUR, with 1–19 lines
    /// (log-normal when skewed), maybe linked to one of `campaigns`: its customer and what recording it takes.
    pub fn new_invoice(
        &self,
        rng: &mut ChaCha8Rng,
        k: u64,
        day: NaiveDate,
        campaigns: &[CampaignId],
    ) -> (Partner, NewDocument) {
        let skewed = skew();
        let pi = if skewed {
            pareto_index(rng, self.partners.max(1))
        } else {
            rng.random_range(0..self.partners.max(1))
        };
        let partner = self.partner(pi);
        let n = if skewed {
            log_normal_lines(rng)
        } else {
            rng.random_range(1..20u64)
        };
        let lines: Vec<NewLine> = (0..n)
            .map(|_| {
                let pr = if skewed {
                    zipf_index(rng, PRODUCTS)
                } else {
                    rng.random_range(0..PRODUCTS)
                };
                let price = Decimal::from(10 + (pr % 100) * 5);
                let mut l = NewLine::new(
                    self.product_id(pr),
                    Decimal::from(rng.random_range(1..20u32)),
                    price,
                    price * Decimal::new(7, 1),
                );
                if rng.random_range(0..5) == 0 {
                    l.discount_pct = Decimal::from(10);
                }
                l
            })
            .collect();
        let mut nd = NewDocument::invoice(&format!("INV-{k:09}"), partner.id(), day, "EUR", lines);
        let campaign =
            (rng.random_range(0..5) == 0).then(|| campaigns[rng.random_range(0..campaigns.len())]);
        nd.campaign = campaign;
        (partner, nd)
    }

    /// Invoice `k` issued on `day`, with 1–19 lines, maybe linked to a campaign, and maybe followed by a credit
    /// note (5 %) and a payment (30 %). Returns (lines, credit notes, payments) written.
    #[allow(clippy::too_many_arguments)]
    pub fn invoice_writes(
        &self,
        rng: &mut ChaCha8Rng,
        k: u64,
        day: NaiveDate,
        products: &BTreeMap<ProductId, Product>,
        campaigns: &[CampaignId],
        out: &mut Vec<Write>,
    ) -> (u64, u64, u64) {
        let eur = Currency::parse("EUR").expect("EUR");
        let (partner, mut nd) = self.new_invoice(rng, k, day, campaigns);
        // Skewed, a fifth of the invoices (and what follows them) are in another currency, converted at the month's
        // stored rate (`commerce_setup` records them).
        let rate = if skew() {
            let i = rng.random_range(0..10);
            match FOREIGN.get(i) {
                Some((code, rate)) => {
                    nd.currency = (*code).into();
                    AppliedRate {
                        reporting: eur,
                        rate: month_rate(*rate, day),
                    }
                }
                None => AppliedRate::identity(eur),
            }
        } else {
            AppliedRate::identity(eur)
        };
        let ccy = nd.currency.clone();
        let empty = BTreeMap::new();
        let record = |nd: NewDocument,
                      corrected: Option<&Document>,
                      settled: &BTreeMap<String, Document>,
                      idx: u64| {
            let at = Utc.from_utc_datetime(&nd.issue_date.and_hms_opt(12, 0, 0).expect("time"));
            let facts = DocumentFacts {
                partner: &partner,
                products,
                rate,
                existing: None,
                corrected,
                campaign_exists: nd.campaign.is_some(),
                settled,
            };
            let d = nd
                .record(self.tenant, facts, at)
                .expect("generated document is valid");
            restamp(d.record(), |v| {
                v["id"] = json!(DocumentId::from_uuid(v7(
                    self.seed,
                    Kind::Document,
                    idx,
                    at
                )));
            })
        };
        let inv = record(nd, None, &empty, k * 4);
        let mut written = (inv.lines().len() as u64, 0, 0);
        let mut follow = Vec::new();
        if rng.random_range(0..20) == 0 {
            let l = &inv.lines()[0];
            let mut cn = NewDocument::credit_note(
                &format!("CN-{k:09}"),
                partner.id(),
                day + Duration::days(7),
                &ccy,
                vec![NewLine::new(
                    l.product,
                    Decimal::ONE,
                    l.unit_price,
                    l.unit_cost,
                )],
            );
            cn.corrects = Some(inv.number().to_owned());
            cn.campaign = inv.campaign();
            follow.push(record(cn, Some(&inv), &empty, k * 4 + 1));
            written.0 += 1;
            written.1 += 1;
        }
        if rng.random_range(0..10) < 3 {
            let mut pay = NewDocument::payment(
                &format!("PAY-{k:09}"),
                partner.id(),
                day + Duration::days(30),
                &ccy,
                PaymentDirection::Received,
                inv.total(),
            );
            pay.allocations = vec![crm_core::commerce::Allocation {
                number: inv.number().to_owned(),
                amount: inv.total(),
            }];
            let settled = BTreeMap::from([(inv.number().to_owned(), inv.clone())]);
            follow.push(record(pay, None, &settled, k * 4 + 2));
            written.2 += 1;
        }
        out.push(Write::Commerce(
            crm_core::commerce::CommerceWrite::InsertDocument(inv),
        ));
        out.extend(
            follow
                .into_iter()
                .map(|d| Write::Commerce(crm_core::commerce::CommerceWrite::InsertDocument(d))),
        );
        written
    }
}

/// The other currencies of the skewed data, with their base rate to EUR; each is drawn for one invoice in ten.
const FOREIGN: &[(&str, Decimal)] = &[
    ("RON", Decimal::from_parts(2011, 0, 0, false, 4)),
    ("USD", Decimal::from_parts(9200, 0, 0, false, 4)),
];

/// The rate of `base` in the month of `day`: the base moved by up to ±3 % in a fixed yearly pattern, to four
/// decimals.
fn month_rate(base: Decimal, day: NaiveDate) -> Decimal {
    let swing = [0i64, 1, 2, 3, 2, 1, 0, -1, -2, -3, -2, -1][day.month0() as usize];
    (base * (Decimal::ONE + Decimal::new(swing, 2))).round_dp(4)
}

/// Whether the commerce data is skewed (`CRM_BENCH_SKEW=1`; cached apart, in `<size>-<seed>-skew`): customers by
/// Zipf's law with exponent 0.86 (a fifth of the customers get about 80 % of the invoices: the Pareto principle),
/// lines per invoice log-normal (median 5, long tail to 60), products by Zipf's law (exponent 1), dates bunched at month
/// ends (30 % of invoices in a month's last three days) and in the fourth quarter (a fifth moved into it), a fifth
/// of the invoices (with their credit notes and payments) in RON or USD at the month's stored rate, the ten
/// campaigns launched in 2025 on audiences of one customer in fifty with a cost booked each month, and two more
/// tenants with leads and commerce data of their own (a tenth and a fiftieth of the lines).
pub fn skew() -> bool {
    std::env::var("CRM_BENCH_SKEW").is_ok_and(|v| v == "1")
}

/// Whether generation runs as a bulk load (`CommerceStore::rollups` with `RollupAction::Bulk`: the store's
/// non-unique indexes and the tenants' roll-ups are built once at the end): on unless `CRM_BENCH_BULK=0`, which
/// writes every row through the indexes and roll-ups as each batch is ingested, for comparison.
pub fn bulk() -> bool {
    std::env::var("CRM_BENCH_BULK").map_or(true, |v| v != "0")
}

/// Takes the bulk-load `step` for each of `tenants` in turn when [`bulk`] is on (the last `Finish` builds the
/// indexes).
pub async fn bulk_steps<S: CommerceStore + ?Sized>(
    store: &S,
    tenants: &[TenantId],
    step: BulkStep,
) -> crm_core::Result<()> {
    if !bulk() {
        return Ok(());
    }
    for t in tenants {
        store
            .rollups(*t, crm_core::commerce::RollupAction::Bulk(step))
            .await?;
    }
    Ok(())
}

/// A customer's index by Zipf's law with exponent 0.86 over `n` (index 0 the most frequent): the top fifth of the
/// customers get about 80 % of the invoices (`0.2^(1 − 0.86)`), the Pareto principle.
fn pareto_index(rng: &mut ChaCha8Rng, n: u64) -> u64 {
    zipf(rng, n, CUSTOMER_ZIPF)
}

/// The exponent of [`pareto_index`].
pub const CUSTOMER_ZIPF: f64 = 0.86;

/// A product's index by Zipf's law (exponent 1) over `n`, index 0 the most popular.
fn zipf_index(rng: &mut ChaCha8Rng, n: u64) -> u64 {
    zipf(rng, n, 1.0)
}

/// An index in `0..n` by Zipf's law with exponent `s` (`rand_distr::Zipf` draws ranks from 1).
fn zipf(rng: &mut ChaCha8Rng, n: u64, s: f64) -> u64 {
    let n = n.max(1);
    match rand_distr::Zipf::new(n as f64, s) {
        Ok(z) => (rng.sample(z) as u64).clamp(1, n) - 1,
        Err(_) => 0,
    }
}

/// A log-normal count of lines, `exp(1.6 + 0.8·z)` (`rand_distr::LogNormal`, median 5) rounded, between 1 and 60.
fn log_normal_lines(rng: &mut ChaCha8Rng) -> u64 {
    match rand_distr::LogNormal::new(1.6, 0.8) {
        Ok(d) => (rng.sample::<f64, _>(d).round() as u64).clamp(1, 60),
        Err(_) => 5,
    }
}

/// The issue day of invoice `k` of `invoices` spread over `days` from `first`; skewed, bunched at month ends and in
/// the fourth quarter of its year.
fn invoice_day(
    rng: &mut ChaCha8Rng,
    first: NaiveDate,
    k: u64,
    invoices: u64,
    days: u64,
) -> NaiveDate {
    let day = first + Duration::days((k * days / invoices) as i64);
    if !skew() {
        return day;
    }
    use chrono::Datelike;
    let r: f64 = rng.random();
    let month_end = |d: NaiveDate| {
        let next = if d.month() == 12 {
            NaiveDate::from_ymd_opt(d.year() + 1, 1, 1)
        } else {
            NaiveDate::from_ymd_opt(d.year(), d.month() + 1, 1)
        };
        next.map_or(d, |n| n - Duration::days(1 + (k % 3) as i64))
    };
    if r < 0.3 {
        month_end(day)
    } else if r < 0.5 && day.month() < 10 {
        NaiveDate::from_ymd_opt(day.year(), 10 + (k % 3) as u32, 1 + (k % 28) as u32).unwrap_or(day)
    } else {
        day
    }
}

/// Generates the main tenant's commerce data: categories, products, campaigns and about `lines` invoice lines over
/// 2023–2025 (invoices of 1–19 lines, credit notes, payments; see [`skew`] for the skewed variant).
pub async fn generate_commerce<S: Store + ?Sized>(
    store: &S,
    world: &World,
    lines: u64,
) -> crm_core::Result<(u64, CommerceParams)> {
    let mut sink = Sink::new(store, world.tenant);
    let (mut buf, products, campaigns) = world.commerce_setup();
    sink.push(&mut buf).await?;
    let mut rng = ChaCha8Rng::seed_from_u64(world.seed ^ 0xC0FFEE);
    // About 10 lines per invoice uniformly, about 7 skewed.
    let invoices = (lines / if skew() { 7 } else { 10 }).max(1);
    let first = NaiveDate::from_ymd_opt(2023, 1, 1).expect("date");
    let days = 3 * 365;
    let mut params = CommerceParams {
        category: Some(world.category_id(3)),
        campaigns: campaigns.clone(),
        year: 2025,
        as_of: NaiveDate::from_ymd_opt(2026, 1, 1),
        threshold_units: 20_000 * 10_000,
        ..Default::default()
    };
    for k in 0..invoices {
        let day = invoice_day(&mut rng, first, k, invoices, days);
        let (l, c, p) = world.invoice_writes(&mut rng, k, day, &products, &campaigns, &mut buf);
        params.invoices += 1;
        params.lines += l;
        params.credit_notes += c;
        params.payments += p;
        sink.push(&mut buf).await?;
    }
    sink.flush().await?;
    Ok((sink.rows, params))
}

/// Feeds writes to [`Store::ingest`] in change sets of about [`BATCH`] rows.
#[derive(Debug)]
pub struct Sink<'a, S: Store + ?Sized> {
    store: &'a S,
    tenant: TenantId,
    pending: Vec<Write>,
    /// Rows written so far.
    pub rows: u64,
}

impl<'a, S: Store + ?Sized> Sink<'a, S> {
    /// A sink for `tenant`.
    pub fn new(store: &'a S, tenant: TenantId) -> Self {
        Self {
            store,
            tenant,
            pending: Vec::with_capacity(BATCH + 100),
            rows: 0,
        }
    }

    /// Queues writes, ingesting a batch when one is full.
    pub async fn push(&mut self, writes: &mut Vec<Write>) -> crm_core::Result<()> {
        self.pending.append(writes);
        if self.pending.len() >= BATCH {
            self.flush().await?;
        }
        Ok(())
    }

    /// Ingests what is queued.
    pub async fn flush(&mut self) -> crm_core::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let cs = ChangeSet::from_iter(std::mem::take(&mut self.pending));
        self.rows += self.store.ingest(self.tenant, cs).await?;
        self.pending = Vec::with_capacity(BATCH + 100);
        Ok(())
    }
}

/// Generates one tenant's partners and leads into `store`; returns (rows, hot leads, sampled leads).
pub async fn generate_tenant<S: Store + ?Sized>(
    store: &S,
    world: &World,
    leads: u64,
    sample: usize,
) -> crm_core::Result<(u64, Vec<LeadId>, Vec<LeadId>)> {
    let mut sink = Sink::new(store, world.tenant);
    let mut buf = world.setup_writes();
    sink.push(&mut buf).await?;
    for i in 0..world.partners {
        world.partner_writes(i, &mut buf);
        sink.push(&mut buf).await?;
    }
    sink.flush().await?;
    let mut rng = ChaCha8Rng::seed_from_u64(world.seed);
    let step = span().num_microseconds().unwrap_or(i64::MAX) / leads.max(1) as i64;
    let every = (leads / sample.max(1) as u64).max(1);
    let mut hot = Vec::new();
    let mut sampled = Vec::new();
    for i in 0..leads {
        let at =
            epoch() + Duration::microseconds(step * i as i64 + rng.random_range(0..step.max(1)));
        let is_hot = i % 500 == 250;
        let id = world.lead_writes(&mut rng, i, at, is_hot, &mut buf);
        if is_hot && hot.len() < 200 {
            hot.push(id);
        }
        if i % every == 0 && sampled.len() < sample {
            sampled.push(id);
        }
        sink.push(&mut buf).await?;
    }
    sink.flush().await?;
    Ok((sink.rows, hot, sampled))
}

/// The other tenants' commerce data when the data is skewed: the second tenant's a tenth of the main tenant's
/// lines, the third's a fiftieth, so every commerce statement has other tenants' documents, roll-ups and rates to
/// filter out; none when uniform, which keeps the uniform data sets as they were. Returns the writes.
async fn other_commerce<S: Store + ?Sized>(
    store: &S,
    other: &World,
    third: Option<&World>,
    size: Size,
) -> crm_core::Result<u64> {
    if !skew() {
        return Ok(0);
    }
    let mut rows = generate_commerce(store, other, (size.lines / 10).max(100))
        .await?
        .0;
    if let Some(w) = third {
        rows += generate_commerce(store, w, (size.lines / 50).max(100))
            .await?
            .0;
    }
    Ok(rows)
}

/// The third tenant of the skewed data (a fiftieth of the partners and leads); none when uniform.
fn third_world(seed: u64, size: Size) -> Option<World> {
    skew().then(|| World::new(seed, 2, (size.partners / 50).max(10)))
}

/// Generates the data set of `size` for `seed` into `store` and returns its manifest.
pub async fn generate<S: Store + CommerceStore + ?Sized>(
    store: &S,
    size: Size,
    seed: u64,
) -> crm_core::Result<Manifest> {
    let started = std::time::Instant::now();
    let main = World::new(seed, 0, size.partners);
    let other = World::new(seed, 1, (size.partners / 10).max(10));
    let third = third_world(seed, size);
    let mut tenants = vec![main.tenant, other.tenant];
    tenants.extend(third.iter().map(|w| w.tenant));
    bulk_steps(store, &tenants, BulkStep::Begin).await?;
    let (rows_main, hot_leads, sample_leads) =
        generate_tenant(store, &main, size.leads, 1000).await?;
    let (mut rows_other, _, _) =
        generate_tenant(store, &other, (size.leads / 10).max(10), 0).await?;
    if let Some(w) = &third {
        rows_other += generate_tenant(store, w, (size.leads / 50).max(10), 0)
            .await?
            .0;
    }
    let (rows_commerce, commerce) = if size.lines > 0 {
        let (rows, params) = generate_commerce(store, &main, size.lines).await?;
        (
            rows + other_commerce(store, &other, third.as_ref(), size).await?,
            params,
        )
    } else {
        (0, CommerceParams::default())
    };
    bulk_steps(store, &tenants, BulkStep::Finish).await?;
    Ok(Manifest {
        size: size.name.into(),
        seed,
        tenant: main.tenant,
        other_tenant: other.tenant,
        pipeline: main.pipeline.id(),
        users: main.users.clone(),
        leads: size.leads,
        partners: size.partners,
        rows: rows_main + rows_other + rows_commerce,
        hot_leads,
        sample_leads,
        seconds: started.elapsed().as_secs_f64(),
        commerce,
    })
}

/// Adds `size`'s commerce data to a data set generated without it (`lead_only`: same seed, leads and partners,
/// no invoice lines) and returns the manifest of `size`. Its seconds are the lead-only generation's plus the
/// commerce generation's, so the figure is what generating `size` from nothing costs.
pub async fn extend_with_commerce<S: Store + CommerceStore + ?Sized>(
    store: &S,
    lead_only: Manifest,
    size: Size,
) -> crm_core::Result<Manifest> {
    let started = std::time::Instant::now();
    let main = World::new(lead_only.seed, 0, size.partners);
    let other = World::new(lead_only.seed, 1, (size.partners / 10).max(10));
    let third = third_world(lead_only.seed, size);
    let mut tenants = vec![main.tenant, other.tenant];
    tenants.extend(third.iter().map(|w| w.tenant));
    bulk_steps(store, &tenants, BulkStep::Begin).await?;
    let (rows_commerce, commerce) = generate_commerce(store, &main, size.lines).await?;
    let rows_commerce = rows_commerce + other_commerce(store, &other, third.as_ref(), size).await?;
    bulk_steps(store, &tenants, BulkStep::Finish).await?;
    Ok(Manifest {
        size: size.name.into(),
        rows: lead_only.rows + rows_commerce,
        seconds: lead_only.seconds + started.elapsed().as_secs_f64(),
        commerce,
        ..lead_only
    })
}

/// A UTC instant from a date (for the commerce calendar).
pub fn at_day(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 0, 0, 0)
        .single()
        .expect("valid date")
}

/// `rec` changed through its serialised form, the way a store reads a record back: the generator gives its records
/// deterministic ids (and moves a world to another tenant) without setters in the engine's API, where only the pure
/// transitions create and change records.
pub fn restamp<T: Serialize + DeserializeOwned>(rec: &T, change: impl FnOnce(&mut Value)) -> T {
    let mut v = serde_json::to_value(rec).expect("a record serialises");
    change(&mut v);
    serde_json::from_value(v).expect("a restamped record reads back")
}

/// The array at `v` (a record's list field).
fn array(v: &mut Value) -> &mut Vec<Value> {
    v.as_array_mut().expect("a list field")
}
