//! Campaign ROI and customer profitability on an SQLite file.
//!
//! Records a product catalogue and a year of invoices (with some credit notes and some in EUR) for a few hundred
//! customers, runs a telemarketing campaign on the lapsed ones with a fifth held out, records the agents' call
//! outcomes and the invoices that follow (and what every group buys anyway), then prints the campaign report, the
//! uplift against the holdout, the attribution models side by side and the top customers by profit; sends an e-mail
//! campaign to newsletter subscribers (one personalised message each through the outbox, consent-gated, a minute
//! apart) and prints its progress after the mail provider's reports; and writes the charts (SVG), CSV and JSON next
//! to the database file.
//!
//! ```text
//! cargo run --example campaign_roi            # writes into target/campaign_roi/
//! cargo run --example campaign_roi -- DIR     # writes into DIR
//! ```

use chrono::{Datelike, Duration, NaiveDate, TimeZone, Utc};
use crm::commerce::CommerceStoreExt;
use crm::commerce::{
    Allocation, Bucket, CallOutcome, Channel, Confidence, Criteria, DocumentKind, GroupBy, Holdout,
    Item, LastSale, Model, NewCampaign, NewCategory, NewDocument, NewLine, NewProduct,
    PaymentDirection, Period, ProfitQuery, Rank, RankOrder, SumsQuery,
};
use crm::id::{TenantId, UserId};
use crm::Decimal;
use crm::{
    Backend, Clock, CommerceService, CommerceStore, Context, Crm, FixedClock, LeadCommand, Money,
    NewPartner, PartnerRole,
};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// A small deterministic generator (xorshift64*), so every run records the same data.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
}

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).expect("a valid date")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir: PathBuf = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/campaign_roi"));
    std::fs::create_dir_all(&dir)?;
    let db = dir.join("crm.sqlite");
    for f in ["crm.sqlite", "crm.sqlite-wal", "crm.sqlite-shm"] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    let clock = Arc::new(FixedClock::new(
        Utc.with_ymd_and_hms(2025, 1, 2, 8, 0, 0)
            .single()
            .expect("a time"),
    ));
    // One builder call: the SQLite file, the example's clock, reports in lei.
    let engine = Crm::builder()
        .sqlite_path(&db)
        .clock(clock.clone())
        .reporting_currency(crm::Currency::parse("RON")?)
        .build()
        .await?;
    let crm = engine.leads();
    let shop = engine.commerce();
    let ron = shop.reporting();
    let tenant = TenantId::new();
    let manager = UserId::new();
    let ctx = Context::user(tenant, manager);
    let pipeline = crm.setup_tenant(&ctx).await?;
    let mut dice = Dice(0x5EED_CAFE_F00D_u64);

    // ------------------------------------------------------------------ catalogue
    let started = Instant::now();
    let mut products = Vec::new();
    for (c, cat) in ["Tools", "Fasteners", "Paint", "Garden"].iter().enumerate() {
        let category = shop
            .record_category(
                &ctx,
                NewCategory {
                    code: format!("C{c}"),
                    name: cat.to_string(),
                },
                None,
            )
            .await?;
        for i in 0..10 {
            let price = Decimal::new(1_000 + (dice.below(40_000) as i64), 2);
            let margin = Decimal::new(20 + dice.below(40) as i64, 2);
            let cost = (price * (Decimal::ONE - margin)).round_dp(2);
            let p = shop
                .record_product(
                    &ctx,
                    NewProduct {
                        code: format!("{cat}-{i}"),
                        name: format!("{cat} item {i}"),
                        category: Some(category.record().id()),
                    },
                    None,
                )
                .await?;
            products.push((p.record().id(), price, cost));
        }
    }

    // ------------------------------------------------------------------ customers
    let owners: Vec<UserId> = (0..4).map(|_| UserId::new()).collect();
    let groups = ["Retail", "Wholesale", "Horeca"];
    let cities = [
        ("Cluj", "Cluj-Napoca"),
        ("Bucuresti", "Bucuresti"),
        ("Timis", "Timisoara"),
        ("Iasi", "Iasi"),
    ];
    let mut customers = Vec::new();
    for i in 0..300 {
        let (region, city) = cities[dice.below(cities.len() as u64) as usize];
        let mut n = NewPartner::company(format!("Customer {i:03} SRL"))
            .with_role(PartnerRole::Customer)
            .with_group(groups[dice.below(3) as usize])
            .with_owner(owners[dice.below(4) as usize])
            .with_industry(
                if dice.chance(50) {
                    "Construction"
                } else {
                    "Hospitality"
                },
                None,
            )
            .with_contact(
                "Buyer",
                Some(&format!("buyer{i}@customer{i}.ro")),
                Some("+40 721 000 000"),
            );
        n.locations.push(crm::partner::NewLocation {
            kind: crm::partner::LocationKind::Billing,
            street: None,
            city: Some(city.into()),
            region: Some(region.into()),
            postal_code: None,
            country: "RO".into(),
        });
        customers.push(crm.create_partner(&ctx, n).await?.record);
    }

    // ------------------------------------------------------------------ a year of invoices
    for day in 0..455 {
        let on = d(2025, 1, 1) + Duration::days(day);
        shop.record_rate(&ctx, "EUR", "RON", on, Decimal::new(49_700 + (day % 40), 4))
            .await?;
    }
    let mut invoices = 0;
    let mut credit_notes = 0;
    let mut payments = 0;
    for (i, c) in customers.iter().enumerate() {
        // A third of the customers stop buying in the summer: they are the campaign's lapsed customers.
        let last_month = if i % 3 == 0 {
            3 + dice.below(5) as u32
        } else {
            12
        };
        let per_month = 1 + dice.below(2);
        for month in 1..=last_month {
            for _ in 0..per_month {
                let issue = d(2025, month, 1 + dice.below(28) as u32);
                let lines: Vec<NewLine> = (0..1 + dice.below(4))
                    .map(|_| {
                        let (p, price, cost) = products[dice.below(products.len() as u64) as usize];
                        let mut l = NewLine::new(p, Decimal::from(1 + dice.below(20)), price, cost);
                        l.discount_pct = Decimal::from(5 * dice.below(3));
                        l
                    })
                    .collect();
                invoices += 1;
                let number = format!("F-{invoices:05}");
                let currency = if dice.chance(10) { "EUR" } else { "RON" };
                let inv = NewDocument::invoice(&number, c.id(), issue, currency, lines.clone())
                    .due(issue + Duration::days(30));
                shop.record_document(&ctx, inv).await?;
                // A third of the customers pay, mostly in full, a few weeks later.
                if i % 3 == 1 && dice.chance(80) {
                    let doc = shop
                        .store()
                        .document_by_number(tenant, DocumentKind::Invoice, &number)
                        .await?
                        .ok_or("just recorded")?;
                    let paid = if dice.chance(85) {
                        doc.total()
                    } else {
                        (doc.total() / Decimal::from(2)).round_dp(2)
                    };
                    payments += 1;
                    let mut pay = NewDocument::payment(
                        &format!("P-{payments:05}"),
                        c.id(),
                        issue + Duration::days(10 + dice.below(40) as i64),
                        currency,
                        PaymentDirection::Received,
                        paid,
                    );
                    pay.allocations = vec![Allocation {
                        number: number.clone(),
                        amount: paid,
                    }];
                    shop.record_document(&ctx, pay).await?;
                }
                if dice.chance(4) {
                    credit_notes += 1;
                    let mut cn = NewDocument::credit_note(
                        &format!("C-{credit_notes:05}"),
                        c.id(),
                        issue + Duration::days(3),
                        currency,
                        vec![lines[0].clone()],
                    );
                    cn.corrects = Some(number);
                    shop.record_document(&ctx, cn).await?;
                }
            }
        }
    }
    println!(
        "recorded {} products, {} customers, {invoices} invoices, {credit_notes} credit notes and {payments} payments for 2025 in {:.1} s",
        products.len(),
        customers.len(),
        started.elapsed().as_secs_f64()
    );

    // ------------------------------------------------------------------ the campaign on lapsed customers
    clock.set(
        Utc.with_ymd_and_hms(2026, 1, 5, 8, 0, 0)
            .single()
            .expect("a time"),
    );
    let agents: Vec<UserId> = (0..3).map(|_| UserId::new()).collect();
    let lapsed = Criteria::And {
        all: vec![
            Criteria::Role {
                role: PartnerRole::Customer,
            },
            Criteria::lapsed(LastSale::WithinDays { days: 90 }),
        ],
    };
    let campaign = shop
        .create_campaign(
            &ctx,
            NewCampaign {
                name: "Winback Q1 2026".into(),
                channel: Channel::Telemarketing,
                period: Period::new(d(2026, 1, 5), d(2026, 3, 31))?,
                owner: manager,
                agents: agents.clone(),
                script: Some("We have missed you: 10% off your next order until March.".into()),
                budget: Some(Money::parse("8000", "RON")?),
                criteria: Some(lapsed),
            },
        )
        .await?;
    for (day, amount, currency, note) in [
        (d(2026, 1, 5), "4500", "RON", "call centre, January"),
        (d(2026, 2, 2), "300", "EUR", "lead list clean-up"),
    ] {
        shop.add_campaign_cost(
            &ctx,
            campaign.id(),
            day,
            Money::parse(amount, currency)?,
            Some(note),
        )
        .await?;
    }
    // A fifth of the audience is held out (seeded, so every run draws the same partners): they get no call, and
    // what they buy anyway is what the campaign did not cause.
    let holdout = Holdout::new(Decimal::from(20), 2026)?;
    let launch = shop
        .launch_campaign_with(&ctx, campaign.id(), campaign.version(), Some(holdout))
        .await?;
    println!(
        "launched `{}` on {} lapsed customers: {} calls over {} agents, {} held out",
        campaign.name(),
        launch.targets.len(),
        launch.calls.len(),
        agents.len(),
        launch.campaign.holdout_count()
    );
    // Some of every group buy anyway in February, called or not: the baseline the holdout measures.
    let mut organic = 0;
    for t in &launch.targets {
        if dice.chance(12) {
            organic += 1;
            let (p, price, cost) = products[dice.below(products.len() as u64) as usize];
            let issue = d(2026, 2, 1 + dice.below(27) as u32);
            let inv = NewDocument::invoice(
                &format!("F-26-O{organic:04}"),
                t.partner(),
                issue,
                "RON",
                vec![NewLine::new(
                    p,
                    Decimal::from(2 + dice.below(10)),
                    price,
                    cost,
                )],
            )
            .due(issue + Duration::days(30));
            shop.record_document(&ctx, inv).await?;
        }
    }

    let mut follow_ups = 0;
    for call in &launch.calls {
        let agent = Context::user(tenant, call.assignee());
        let roll = dice.below(100);
        let outcome = match roll {
            0..=34 => CallOutcome::Interested,
            35..=59 => CallOutcome::NotInterested,
            60..=69 => CallOutcome::WrongContact,
            70..=84 => CallOutcome::CallBack {
                at: clock.now() + Duration::days(3),
            },
            _ => CallOutcome::NoAnswer,
        };
        let r = shop.record_call_outcome(&agent, call.id(), outcome).await?;
        if let Some(lead) = r.lead {
            if dice.chance(70) {
                crm.transition(&ctx, lead.id(), lead.version(), LeadCommand::Win)
                    .await?;
                for k in 0..1 + dice.below(3) {
                    follow_ups += 1;
                    let (p, price, cost) = products[dice.below(products.len() as u64) as usize];
                    let mut l = NewLine::new(p, Decimal::from(5 + dice.below(30)), price, cost);
                    l.discount_pct = Decimal::from(10);
                    let issue = d(2026, 1 + k as u32, 10 + dice.below(15) as u32);
                    let inv = NewDocument::invoice(
                        &format!("F-26-{follow_ups:04}"),
                        lead.partner(),
                        issue,
                        "RON",
                        vec![l.clone()],
                    )
                    .with_campaign(campaign.id())
                    .due(issue + Duration::days(30));
                    shop.record_document(&ctx, inv).await?;
                    if follow_ups % 9 == 0 {
                        let mut cn = NewDocument::credit_note(
                            &format!("C-26-{follow_ups:04}"),
                            lead.partner(),
                            issue + Duration::days(5),
                            "RON",
                            vec![NewLine {
                                quantity: Decimal::from(2),
                                ..l
                            }],
                        );
                        cn.corrects = Some(format!("F-26-{follow_ups:04}"));
                        shop.record_document(&ctx, cn).await?;
                    }
                }
            }
        }
    }
    clock.set(
        Utc.with_ymd_and_hms(2026, 3, 31, 18, 0, 0)
            .single()
            .expect("a time"),
    );

    // ------------------------------------------------------------------ reports
    let report = shop.campaign_report(tenant, campaign.id(), None).await?;
    println!("\nCampaign report: {} ({})", report.name, report.currency);
    println!("  targets {:>6}   reached {:>5}   interested {:>4}   leads {:>4}   won {:>4}   invoiced customers {:>4}",
        report.targets, report.reached, report.interested, report.leads, report.won, report.invoiced_customers);
    println!(
        "  revenue {:>14}   cost of goods {:>14}   gross profit {:>14}",
        report.revenue, report.cost_of_goods, report.gross_profit
    );
    println!(
        "  campaign cost {:>8}   net profit {:>14}   ROI {}%",
        report.campaign_cost,
        report.net_profit,
        report
            .roi_pct
            .map(|r| r.to_string())
            .unwrap_or_else(|| "n/a".into())
    );
    let steps: Vec<String> = report
        .funnel
        .iter()
        .map(|s| match s.conversion_pct {
            Some(c) => format!("{} {} ({c}%)", s.step, s.count),
            None => format!("{} {}", s.step, s.count),
        })
        .collect();
    println!("  funnel: {}", steps.join(" → "));
    for p in shop.progress(tenant, campaign.id()).await? {
        println!(
            "  {:<38} {:>3} calls, {:>3} done, {:>3} remaining",
            p.agent
                .map(|a| format!("agent {a}"))
                .unwrap_or_else(|| "all agents".into()),
            p.targets,
            p.done,
            p.remaining
        );
    }

    // What the campaign caused: the targets against the holdout over the quarter, and which campaign earned each
    // sale's gross profit under every attribution model.
    let quarter = Period::new(d(2026, 1, 5), d(2026, 3, 31))?;
    let promoted = [Item::Product(products[0].0)];
    let uplift = shop
        .campaign_uplift(tenant, campaign.id(), quarter, &promoted, Confidence::P95)
        .await?;
    println!(
        "\nUplift over {} to {} (targets {} against a holdout of {}):",
        quarter.from(),
        quarter.to(),
        uplift.targets.partners,
        uplift.control.partners
    );
    if let Some(u) = uplift.reactivation_uplift {
        println!(
            "  reactivated {} of targets against {} of the holdout: uplift {} (95% interval {} to {})",
            uplift.targets.reactivation_rate.unwrap_or_default(),
            uplift.control.reactivation_rate.unwrap_or_default(),
            u.estimate,
            u.low,
            u.high
        );
    }
    println!(
        "  incremental gross profit {} {ron}, campaign cost {} {ron}, incremental ROI {}%",
        uplift.incremental_gross_profit.unwrap_or_default(),
        uplift.campaign_cost,
        uplift
            .incremental_roi_pct
            .map(|r| r.to_string())
            .unwrap_or_else(|| "n/a".into())
    );
    let t3 = Instant::now();
    let attribution = shop
        .attribution_report(tenant, quarter, 90, &Model::ALL)
        .await?;
    let attribution_time = t3.elapsed();
    println!(
        "\nAttributed gross profit, {} sales in the quarter ({:.1} ms):",
        attribution.sales,
        attribution_time.as_secs_f64() * 1000.0
    );
    for line in crm_reports::attribution_csv(&attribution)?.lines() {
        println!("  {}", line.replace(',', "  "));
    }

    let year = Period::year(2025)?;
    let full = ProfitQuery::by(GroupBy::Customer, year);
    let t0 = Instant::now();
    let all = shop.profitability(tenant, &full).await?;
    let all_time = t0.elapsed();
    let t2 = Instant::now();
    let sums = shop
        .store()
        .profit_sums(tenant, &SumsQuery::by(GroupBy::Customer, year, ron))
        .await?;
    let sql_time = t2.elapsed();
    let top = ProfitQuery {
        rank: Some(Rank {
            order: RankOrder::Top,
            n: 10,
        }),
        compare: true,
        ..full.clone()
    };
    let t1 = Instant::now();
    let top10 = shop.profitability(tenant, &top).await?;
    let top_time = t1.elapsed();
    println!(
        "\nTop 10 customers by gross profit in 2025 ({}):",
        top10.currency
    );
    println!(
        "  {:<22} {:>14} {:>14} {:>14} {:>8} {:>5} {:>12}",
        "customer", "revenue", "cost", "gross profit", "margin", "inv.", "avg invoice"
    );
    for r in &top10.rows {
        println!(
            "  {:<22} {:>14} {:>14} {:>14} {:>7}% {:>5} {:>12}",
            r.label.as_deref().unwrap_or("?"),
            r.revenue,
            r.cost,
            r.gross_profit,
            r.margin_pct.map(|m| m.to_string()).unwrap_or_default(),
            r.invoices,
            r.average_invoice.map(|m| m.to_string()).unwrap_or_default()
        );
    }
    let by_group = shop
        .profitability(
            tenant,
            &ProfitQuery {
                period: Period::new(d(2025, 1, 1), d(2026, 3, 31))?,
                group_by: GroupBy::Group,
                bucket: Some(Bucket::Quarter),
                compare: true,
                rank: None,
            },
        )
        .await?;
    println!("\nGross profit per customer group and quarter (change against the quarter before):");
    for r in &by_group.rows {
        println!(
            "  {:<10} {} {:>14} {:>9}",
            r.key.as_deref().unwrap_or("-"),
            r.bucket
                .map(|b| format!("{}-Q{}", b.year(), b.month0() / 3 + 1))
                .unwrap_or_default(),
            r.gross_profit,
            r.change_pct
                .map(|c| format!("{c}%"))
                .unwrap_or_else(|| "n/a".into())
        );
    }
    println!(
        "\nProfitability by customer over the {} invoices and credit notes of 2025: {} rows; the GROUP BY in SQLite took {:.1} ms, \
         the whole report (a name looked up per row) {:.1} ms, the top 10 with the previous-period comparison {:.1} ms.",
        invoices + credit_notes,
        sums.len(),
        sql_time.as_secs_f64() * 1e3,
        all_time.as_secs_f64() * 1e3,
        top_time.as_secs_f64() * 1e3
    );
    for c in &customers[..3] {
        let open = shop.open_items(tenant, c.id(), None).await?;
        let balances = shop.balances(tenant, c.id(), None).await?;
        let b: Vec<String> = balances
            .iter()
            .map(|b| {
                format!(
                    "{} {} receivable, {} overdue",
                    b.receivable, b.currency, b.overdue
                )
            })
            .collect();
        println!(
            "{}: {} open items (oldest {} days overdue); {}",
            c.name(),
            open.len(),
            open.iter().map(|i| i.days_overdue).max().unwrap_or(0),
            b.join("; ")
        );
    }
    let invoice = store_check(shop, tenant).await?;
    println!("{invoice}");

    // ------------------------------------------------------------------ an e-mail campaign
    // Forty newsletter subscribers, thirty of whom consented to marketing e-mail: the campaign sends each of those
    // one personalised message through the outbox, a minute apart, and the mail provider's reports come back.
    let email_progress = newsletter(&engine, &ctx, &mut dice).await?;

    // ------------------------------------------------------------------ files
    let funnel = crm.funnel(tenant, pipeline.id(), None).await?;
    let files = [
        (
            "profit_top10.svg",
            crm_reports::profit_chart_svg(&top10, "Top 10 customers by gross profit, 2025")?,
        ),
        (
            "campaign_roi.svg",
            crm_reports::roi_chart_svg(std::slice::from_ref(&report))?,
        ),
        (
            "campaign_funnel.svg",
            crm_reports::campaign_funnel_svg(&report)?,
        ),
        (
            "pipeline_funnel.svg",
            crm_reports::pipeline_funnel_svg(&funnel, "Pipeline funnel")?,
        ),
        (
            "profitability_2025.csv",
            crm_reports::profitability_csv(&all)?,
        ),
        ("campaign.csv", crm_reports::campaign_csv(&report)?),
        ("campaign.json", crm_reports::to_json(&report)?),
        ("uplift.csv", crm_reports::uplift_csv(&uplift)?),
        ("uplift.json", crm_reports::to_json(&uplift)?),
        (
            "attribution.csv",
            crm_reports::attribution_csv(&attribution)?,
        ),
        ("attribution.json", crm_reports::to_json(&attribution)?),
        (
            "attribution.svg",
            crm_reports::attribution_chart_svg(&attribution)?,
        ),
        ("profit_by_group.json", crm_reports::to_json(&by_group)?),
        (
            "email_progress.csv",
            crm_reports::progress_csv(&email_progress)?,
        ),
    ];
    for (name, body) in &files {
        std::fs::write(dir.join(name), body)?;
    }
    println!("\nwrote {} files into {}", files.len(), dir.display());

    if let Some(n) = std::env::var("CRM_SCALE_DOCS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        scale(engine.backend(), shop, n, &mut dice).await?;
    }
    Ok(())
}

/// `CRM_SCALE_DOCS=N`: bulk-ingests N more invoices (two lines each) for N/10 customers in a fresh tenant through
/// `Store::ingest`, then times the reports on them (run with `--release` for meaningful figures).
/// The e-mail campaign of the example: subscribers, consents, the message, the send, the provider's reports; its
/// progress.
async fn newsletter(
    engine: &Crm,
    ctx: &Context,
    dice: &mut Dice,
) -> Result<Vec<crm::commerce::Progress>, Box<dyn std::error::Error>> {
    use crm::commerce::send::{CampaignMessage, DeliveryReport, SendStatus};
    use crm::consent::NewConsent;
    use crm::outbox::OutboxStoreExt as _;
    use crm::{message_key, NewContact, SendRate};
    let shop = engine
        .commerce()
        .clone()
        .with_tenant_send_rate(ctx.tenant, SendRate::per_hour(60)?);
    let mut subscribers = Vec::new();
    for i in 0..40 {
        let mut n =
            NewPartner::company(format!("Subscriber {i:02} SRL")).with_role(PartnerRole::Customer);
        n.tags.insert("newsletter".into());
        n.contacts.push(NewContact {
            name: format!("Contact {i:02}"),
            email: Some(format!("contact{i:02}@subscriber.example")),
            ..NewContact::default()
        });
        let p = engine.leads().create_partner(ctx, n).await?.record;
        if i < 30 {
            let yes = NewConsent {
                channel: "email".into(),
                purpose: "marketing".into(),
                granted: true,
                source: "newsletter form".into(),
                proof: Some(format!("form {}", 1000 + i)),
            };
            engine
                .leads()
                .record_consent(ctx, p.id(), p.version(), p.contacts()[0].id, yes)
                .await?;
        }
        subscribers.push(p);
    }
    let campaign = shop
        .create_campaign(
            ctx,
            NewCampaign {
                name: "Spring newsletter".into(),
                channel: Channel::Email,
                period: Period::new(d(2026, 3, 1), d(2026, 3, 31))?,
                owner: ctx.actor.user_id().unwrap_or_default(),
                agents: vec![],
                script: None,
                budget: None,
                criteria: Some(Criteria::Tag {
                    tag: "newsletter".into(),
                }),
            },
        )
        .await?;
    let message = CampaignMessage {
        subject: Some("{{ campaign.name }}: {{ partner.name }}".into()),
        text: "Dear {{ contact.name }},\n\n{{ campaign.offer }}, until {{ campaign.ends }}.\n".into(),
        html: Some("<p>Dear {{ contact.name }},</p><p>{{ campaign.offer }}, until {{ campaign.ends }}.</p>".into()),
        offer: Some("Every garden tool 15% off".into()),
    };
    let campaign = shop
        .set_campaign_message(ctx, campaign.id(), campaign.version(), message)
        .await?;
    shop.launch_campaign(ctx, campaign.id(), campaign.version())
        .await?;
    let sent = shop.send_campaign(ctx, campaign.id()).await?;
    let again = shop.send_campaign(ctx, campaign.id()).await?;
    println!(
        "\nE-mail campaign `{}`: {} queued (due {} to {}), {} without consent; sent again: {} more",
        campaign.name(),
        sent.queued,
        sent.first_due
            .map(|t| t.format("%H:%M").to_string())
            .unwrap_or_default(),
        sent.last_due
            .map(|t| t.format("%H:%M").to_string())
            .unwrap_or_default(),
        sent.no_consent,
        again.queued
    );
    let first = engine
        .commerce()
        .store()
        .campaign_target_of(ctx.tenant, campaign.id(), subscribers[0].id())
        .await?
        .and_then(|t| t.send().and_then(|s| s.message));
    if let Some(id) = first {
        let m = engine.outbox().outbox_message(ctx.tenant, id).await?;
        println!(
            "  to {}: \"{}\" / {}",
            m.recipient.email.unwrap_or_default(),
            m.payload.subject,
            m.payload.body.lines().nth(2).unwrap_or_default()
        );
    }
    // What the mail provider reports: most delivered, some opened, one bounce, one unsubscribe.
    for (i, p) in subscribers.iter().take(30).enumerate() {
        let key = message_key(campaign.id(), p.id());
        let report = match i {
            0 => DeliveryReport::Bounced {
                reason: "550 5.1.1 mailbox unknown".into(),
            },
            1 => DeliveryReport::Unsubscribed,
            _ if dice.chance(40) => DeliveryReport::Opened,
            _ if dice.chance(90) => DeliveryReport::Delivered,
            _ => continue,
        };
        shop.report_campaign_message(ctx, &key, report).await?;
    }
    let progress = shop.progress(ctx.tenant, campaign.id()).await?;
    let counts: Vec<String> = SendStatus::ALL
        .iter()
        .filter_map(|s| {
            progress[0]
                .messages
                .get(s)
                .map(|n| format!("{} {n}", s.as_str().replace('_', " ")))
        })
        .collect();
    println!("  progress: {}", counts.join(", "));
    Ok(progress)
}

async fn scale(
    store: &Arc<dyn Backend>,
    shop: &CommerceService,
    n: usize,
    dice: &mut Dice,
) -> Result<(), Box<dyn std::error::Error>> {
    use crm::commerce::{AppliedRate, CommerceWrite, DocumentFacts};
    use crm::store::{ChangeSet, Store, Write};
    use std::collections::BTreeMap;
    let tenant = TenantId::new();
    let now = Utc::now();
    let ron = shop.reporting();
    let customers = (n / 10).max(100);
    let groups = ["Retail", "Wholesale", "Horeca"];
    let t = Instant::now();
    let mut partners = Vec::with_capacity(customers);
    let mut cs = ChangeSet::new();
    for i in 0..customers {
        let p = NewPartner::company(format!("Scale {i}"))
            .with_role(PartnerRole::Customer)
            .with_group(groups[i % 3])
            .build(tenant, now)?;
        cs.push(Write::InsertPartner {
            partner: p.clone(),
            keys: Vec::new(),
        });
        partners.push(p);
    }
    let mut products = BTreeMap::new();
    for i in 0..100 {
        let p = NewProduct {
            code: format!("S{i}"),
            name: format!("Scale product {i}"),
            category: None,
        }
        .record(tenant, None, None, now)?
        .record()
        .clone();
        cs.push(CommerceWrite::InsertProduct(p.clone()).into());
        products.insert(p.id(), p);
    }
    Store::ingest(store.as_ref(), tenant, cs).await?;
    let ids: Vec<_> = products.keys().copied().collect();
    let empty = BTreeMap::new();
    let mut cs = ChangeSet::new();
    for k in 0..n {
        let partner = &partners[dice.below(customers as u64) as usize];
        let issue = d(2025, 1, 1) + Duration::days(dice.below(365) as i64);
        let lines = (0..2)
            .map(|_| {
                NewLine::new(
                    ids[dice.below(100) as usize],
                    Decimal::from(1 + dice.below(9)),
                    Decimal::new(100 + dice.below(90_000) as i64, 2),
                    Decimal::new(50 + dice.below(50_000) as i64, 2),
                )
            })
            .collect();
        let facts = DocumentFacts {
            partner,
            products: &products,
            rate: AppliedRate::identity(ron),
            existing: None,
            corrected: None,
            campaign_exists: false,
            settled: &empty,
        };
        let doc = NewDocument::invoice(&format!("S-{k:08}"), partner.id(), issue, "RON", lines)
            .record(tenant, facts, now)?
            .record()
            .clone();
        cs.push(CommerceWrite::InsertDocument(doc).into());
        if cs.writes().len() == 20_000 {
            Store::ingest(store.as_ref(), tenant, std::mem::take(&mut cs)).await?;
        }
    }
    Store::ingest(store.as_ref(), tenant, cs).await?;
    println!(
        "\nscale: ingested {customers} customers and {n} invoices ({} lines) in {:.1} s",
        2 * n,
        t.elapsed().as_secs_f64()
    );
    let year = Period::year(2025)?;
    let timed = |label: &str, t: Instant, rows: usize| {
        println!(
            "scale: {label}: {rows} rows in {:.1} ms",
            t.elapsed().as_secs_f64() * 1e3
        )
    };
    let t = Instant::now();
    let sums = shop
        .store()
        .profit_sums(tenant, &SumsQuery::by(GroupBy::Customer, year, ron))
        .await?;
    timed("profitability by customer (GROUP BY)", t, sums.len());
    let t = Instant::now();
    let top = shop
        .profitability(
            tenant,
            &ProfitQuery {
                rank: Some(Rank {
                    order: RankOrder::Top,
                    n: 10,
                }),
                compare: true,
                ..ProfitQuery::by(GroupBy::Customer, year)
            },
        )
        .await?;
    timed(
        "top 10 customers with the previous-year comparison",
        t,
        top.rows.len(),
    );
    let t = Instant::now();
    let q = shop
        .profitability(
            tenant,
            &ProfitQuery {
                period: year,
                group_by: GroupBy::Group,
                bucket: Some(Bucket::Month),
                compare: true,
                rank: None,
            },
        )
        .await?;
    timed("by customer group and month, compared", t, q.rows.len());
    let lapsed = Criteria::lapsed(LastSale::After {
        date: d(2025, 10, 1),
    });
    let t = Instant::now();
    let seg = shop
        .store()
        .segment(tenant, &lapsed, d(2026, 1, 1), ron)
        .await?;
    timed("segment: lapsed since October", t, seg.len());
    Ok(())
}

/// A replayed invoice is a no-op: the numbers above count every document once.
async fn store_check(
    shop: &CommerceService,
    tenant: TenantId,
) -> Result<String, Box<dyn std::error::Error>> {
    let first = shop
        .store()
        .document_by_number(tenant, DocumentKind::Invoice, "F-00001")
        .await?
        .ok_or("F-00001 is recorded")?;
    Ok(format!(
        "F-00001: version {}, {} lines, converted at {} {}",
        first.version(),
        first.lines().len(),
        first.rate().rate,
        first.rate().reporting
    ))
}
