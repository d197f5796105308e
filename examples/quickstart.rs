//! The main job on the embedded SQLite default: enter partners and leads, work them through the pipeline with
//! comments and requests, win one, lose one, see a duplicate warning, and print the board and a timeline.
//!
//! Run with `cargo run --example quickstart` (writes `crm-quickstart.sqlite` in the current directory).

use chrono::Duration;
use crm::id::{TenantId, UserId};
use crm::{
    CommentTarget, Context, Crm, LeadCommand, LeadPartner, Money, NewLead, NewPartner, NewRequest,
    PageRequest, PartnerRole, RequestCommand, TimelineOf,
};
use crm_core::event::RequestStatus;

#[tokio::main(flavor = "current_thread")]
async fn main() -> crm::Result<()> {
    let path = std::path::Path::new("crm-quickstart.sqlite");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let crm = Crm::builder().sqlite_path(path).build()?;
    let tenant = TenantId::new();
    let ana = UserId::new();
    let ctx = Context::user(tenant, ana);
    let pipeline = crm.setup_tenant(&ctx).await?;
    let stage = |name: &str| pipeline.stage_named(name).expect("seed stage").id;
    println!("CRM on {} — tenant {tenant}", path.display());

    // Two partners.
    let mobila = crm
        .create_partner(
            &ctx,
            NewPartner::company("Fabrica de Mobilă SRL")
                .with_role(PartnerRole::Customer)
                .with_contact(
                    "Ioana Pop",
                    Some("ioana@mobila.ro"),
                    Some("+40 721 234 567"),
                )
                .with_tax_id("RO1234567")
                .with_group("furniture")
                .with_owner(ana),
        )
        .await?
        .record;
    let transilvania = crm
        .create_partner(
            &ctx,
            NewPartner::company("Transilvania Logistic SA").with_contact(
                "Mihai Rus",
                Some("mihai@translog.ro"),
                None,
            ),
        )
        .await?
        .record;

    // Three leads, one for a new prospect that looks like an existing partner.
    let eur = |s: &str| Money::parse(s, "EUR");
    let l1 = crm
        .enter_lead(
            &ctx,
            NewLead::for_partner(mobila.id, "CNC machines for the new hall")
                .with_revenue(eur("84000")?)
                .with_owner(ana),
        )
        .await?
        .record;
    let l2 = crm
        .enter_lead(
            &ctx,
            NewLead::for_partner(transilvania.id, "Fleet telematics")
                .with_revenue(eur("23500")?)
                .with_owner(ana),
        )
        .await?
        .record;
    let entered = crm
        .enter_lead(
            &ctx,
            NewLead::new(
                LeadPartner::New {
                    partner: NewPartner::company("S.C. Fabrica de Mobila S.A.").with_contact(
                        "Ioana",
                        Some("IOANA@mobila.ro"),
                        None,
                    ),
                },
                "Showroom furniture",
            )
            .with_revenue(eur("9900")?),
        )
        .await?;
    for d in &entered.duplicates {
        println!("⚠ possible duplicate of `{}`: {}", d.name, d.explain());
    }
    let l3 = entered.record;

    // Work the first lead through the pipeline with comments and a request.
    let mut lead = l1;
    for s in ["Contact", "Qualification", "Offer"] {
        lead = crm
            .transition(
                &ctx,
                lead.id,
                lead.version,
                LeadCommand::MoveTo { stage: stage(s) },
            )
            .await?
            .record;
    }
    crm.comment(
        &ctx,
        CommentTarget::Lead(lead.id),
        "Visited the site; they need 3 machines by June.",
    )
    .await?;
    let due = crm.clock().now() + Duration::days(2);
    let quote = crm
        .open_request(
            &ctx,
            NewRequest::on_lead(lead.id, "Prepare the quotation", ana)
                .of_kind("quotation")
                .due(due),
        )
        .await?
        .record;
    crm.change_request(
        &ctx,
        quote.id,
        quote.version,
        RequestCommand::SetStatus {
            status: RequestStatus::Done,
        },
    )
    .await?;
    lead = crm
        .transition(
            &ctx,
            lead.id,
            lead.version,
            LeadCommand::MoveTo {
                stage: stage("Negotiation"),
            },
        )
        .await?
        .record;
    lead = crm
        .transition(&ctx, lead.id, lead.version, LeadCommand::Win)
        .await?
        .record;
    println!(
        "won: {} ({})",
        lead.title,
        lead.expected_revenue
            .map(|m| m.to_string())
            .unwrap_or_default()
    );

    // Lose the second with a reason; the third stays open.
    let reasons = crm.lost_reasons(tenant).await?;
    let lost = crm
        .transition(
            &ctx,
            l2.id,
            l2.version,
            LeadCommand::Lose {
                reason: Some(reasons[0].id),
                competitor: Some("CargoTrack".into()),
                note: None,
            },
        )
        .await?
        .record;
    println!("lost: {} ({})", lost.title, reasons[0].name);
    crm.transition(
        &ctx,
        l3.id,
        l3.version,
        LeadCommand::MoveTo {
            stage: stage("Contact"),
        },
    )
    .await?;

    // The board.
    println!("\nPipeline board");
    for c in crm.board(tenant, pipeline.id).await?.columns {
        let totals: Vec<String> = c
            .totals
            .iter()
            .map(|t| format!("{} {} (weighted {})", t.expected, t.currency, t.weighted))
            .collect();
        println!(
            "  {:<14} {:>3} lead(s)  {}",
            c.name,
            c.count,
            totals.join(", ")
        );
    }

    // One lead's timeline, newest first.
    println!("\nTimeline of `{}`", lead.title);
    for e in crm
        .timeline(tenant, TimelineOf::Lead(lead.id), &PageRequest::first(50))
        .await?
        .items
    {
        println!(
            "  {}  {:<24} {}",
            e.at.format("%Y-%m-%d %H:%M:%S"),
            e.actor.to_string().chars().take(24).collect::<String>(),
            e.describe()
        );
    }
    Ok(())
}
