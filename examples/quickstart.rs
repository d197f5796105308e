//! The main job on the embedded SQLite default: enter partners and leads, work them through the pipeline with
//! comments and requests, win one, lose one, see a duplicate warning, print the board and a timeline — with the
//! organisation's communication scheme (`examples/rules/`, Rhai) deciding notifications, e-mails and tasks inside
//! each change's transaction, and the dispatcher delivering them from the outbox.
//!
//! One lead also gets a quotation (Romanian VAT, typeset to `crm-quickstart-quotation.pdf` and sent by e-mail with
//! the PDF attached) and a meeting (its invitation, `crm-quickstart-meeting.ics`, goes to the customer's contact);
//! the customer's acceptance wins the lead.
//!
//! Run with `cargo run --example quickstart` (writes `crm-quickstart.sqlite` in the current directory). E-mails are
//! recorded and printed; set `CRM_SMTP_ADDR=host:port` to send them through that SMTP server instead.

#[path = "common/delivery.rs"]
mod delivery;
#[path = "common/pipeline.rs"]
mod pipeline;

use chrono::Duration;
use crm::pdf::{Language, Party, QuotationPdf};
use crm::rules::fixtures::Org;
use crm::rules::notify::Templates;
use crm::rules::{Limits, RhaiRuleEngine, RuleSet};
use crm::sales::{
    Attendee, NewMeeting, NewQuotation, Organiser, Participant, QuotationLine, QuotationMail,
    QuotationTerms, Reply, Slot,
};
use crm::Currency;
use crm::Decimal;
use crm::{
    CommentTarget, Context, Crm, LeadCommand, LeadPartner, Money, NewContact, NewLead, NewPartner,
    NewRequest, OutboxStore, PageRequest, PartnerRole, RequestCommand, RequestStatus, TimelineOf,
};
use std::path::Path;
use std::sync::Arc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> crm::Result<()> {
    let path = Path::new("crm-quickstart.sqlite");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }

    // The organisation and its communication scheme, as a consultant wrote them.
    let rules_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/rules");
    let org = Org::load(&rules_dir.join("org.toml")).expect("examples/rules/org.toml");
    let rules =
        RuleSet::load_dir(&rules_dir, Limits::default()).expect("the example rules compile");
    let engine = Arc::new(RhaiRuleEngine::new(rules).with_known_roles(org.roles.clone()));
    let templates =
        Arc::new(Templates::load_dir(&rules_dir.join("templates")).expect("e-mail templates"));

    // One builder call: the SQLite file, and the scheme deciding inside every change's transaction. Partner
    // contacts the rules address ("the customer") are read from the partner itself.
    let crm = Crm::builder()
        .sqlite_path(path)
        .rules(engine, Arc::new(org.directory()))
        .build()
        .await?;
    let clock = crm.clock().clone();
    let tenant = Org::tenant();
    let ana = Org::user_id("ana");
    let ctx = Context::user(tenant, ana);
    println!("CRM on {} — tenant {tenant}", path.display());
    let leads = crm.leads();

    // Two partners.
    let mut mobila = NewPartner::company("Fabrica de Mobilă SRL")
        .with_role(PartnerRole::Customer)
        .with_tax_id("RO1234567")
        .with_group("furniture")
        .with_owner(ana);
    mobila.contacts.push(NewContact {
        name: "Ioana Pop".into(),
        role: Some("primary".into()),
        email: Some("ioana@mobila.ro".into()),
        phone: Some("+40 721 234 567".into()),
        host_ref: None,
    });
    let mobila = leads.create_partner(&ctx, mobila).await?.record;
    let transilvania = leads
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
    let pipeline = leads.setup_tenant(&ctx).await?;
    let stage = |name: &str| pipeline.stage_named(name).expect("seed stage").id;

    // Three leads, one for a new prospect that looks like an existing partner.
    let eur = |s: &str| Money::parse(s, "EUR");
    let mut known = Vec::new();
    for (partner, title, revenue) in [
        (mobila.id(), "CNC machines for the new hall", "84000"),
        (transilvania.id(), "Fleet telematics", "23500"),
    ] {
        let lead = NewLead::for_partner(partner, title)
            .with_revenue(eur(revenue)?)
            .with_owner(ana);
        known.push(leads.enter_lead(&ctx, lead).await?.record);
    }
    let [l1, l2]: [_; 2] = known.try_into().expect("two leads");
    let entered = leads
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
            .with_owner(ana),
        )
        .await?;
    for d in &entered.duplicates {
        println!("⚠ possible duplicate of `{}`: {}", d.name, d.explain());
    }
    let l3 = entered.record;

    // The scheme's guard: no negotiation without an expected revenue.
    if let Err(e) = leads
        .transition(
            &ctx,
            l3.id(),
            l3.version(),
            LeadCommand::MoveTo {
                stage: stage("Negotiation"),
            },
        )
        .await
    {
        println!("refused: {e}");
    }

    // Work the first lead through the pipeline with comments and a request.
    let mut lead = pipeline::move_through(
        leads,
        &ctx,
        &pipeline,
        l1,
        &["Contact", "Qualification", "Offer"],
    )
    .await?;
    leads
        .comment(
            &ctx,
            CommentTarget::Lead(lead.id()),
            "Visited the site; they need 3 machines by June.",
        )
        .await?;
    let due = clock.now() + Duration::days(2);
    let quote = leads
        .open_request(
            &ctx,
            NewRequest::on_lead(lead.id(), "Prepare the quotation", ana)
                .of_kind("quotation")
                .due(due),
        )
        .await?
        .record;
    leads
        .change_request(
            &ctx,
            quote.id(),
            quote.version(),
            RequestCommand::SetStatus {
                status: RequestStatus::Done,
            },
        )
        .await?;
    lead = leads
        .transition(
            &ctx,
            lead.id(),
            lead.version(),
            LeadCommand::MoveTo {
                stage: stage("Negotiation"),
            },
        )
        .await?
        .record;
    // The quotation: priced with Romanian VAT, typeset to PDF, sent by e-mail with the PDF attached; a meeting
    // to go through it, invited by iCalendar; the partner accepts, which wins the lead in the same change.
    let commerce = crm.commerce();
    let euro = |s: &str| Money::parse(s, "EUR");
    let offer_terms = QuotationTerms {
        lines: vec![
            QuotationLine::new("CNC router, 3-axis", Decimal::from(3), euro("24500")?, "S")
                .discount(Decimal::from(5))
                .unit("buc"),
            QuotationLine::new(
                "Installation and training (Brașov)",
                Decimal::from(16),
                euro("95")?,
                "S",
            )
            .unit("oră"),
        ],
        valid_until: clock.now().date_naive() + Duration::days(30),
        terms: Some("Plata în 30 de zile. Livrare în 8 săptămâni de la comandă.".into()),
    };
    let new_quotation = NewQuotation {
        lead: Some(lead.id()),
        partner: mobila.id(),
        currency: Currency::parse("EUR")?,
        terms: offer_terms,
    };
    let quotation = commerce.create_quotation(&ctx, new_quotation).await?;
    let letterhead = Party::new("Exemplu Utilaje SRL")
        .line("Str. Mureșului 14, 500000 Brașov")
        .line("CUI RO12345678 · J08/1234/2010");
    let customer = Party::new(mobila.name()).line("Zona industrială Vest, Sibiu");
    let pdf = QuotationPdf::new().render(&quotation, &letterhead, &customer, Language::Romanian)?;
    std::fs::write("crm-quickstart-quotation.pdf", &pdf).expect("write the PDF");
    let ioana = &mobila.contacts()[0];
    let mail = QuotationMail {
        to_name: ioana.name.clone(),
        to_email: ioana.email.clone().unwrap_or_default(),
        subject: format!("Oferta {}", quotation.number()),
        body: "Bună ziua, găsiți oferta noastră atașată.".into(),
        pdf,
    };
    let quotation = commerce
        .send_quotation(&ctx, quotation.id(), quotation.version(), mail)
        .await?;
    println!(
        "quotation {}: {} — crm-quickstart-quotation.pdf",
        quotation.number(),
        quotation.totals().total
    );
    let monday = (clock.now() + Duration::days(7)).date_naive();
    let at = |h| monday.and_hms_opt(h, 0, 0).expect("a time of day");
    let meeting = commerce
        .schedule_meeting(
            &ctx,
            NewMeeting {
                title: format!("Oferta {} — discuție", quotation.number()),
                lead: Some(lead.id()),
                partner: None,
                organiser: Organiser::new(ana, "Ana Pop", "ana@example.com"),
                attendees: vec![Attendee {
                    who: Participant::Contact {
                        partner: mobila.id(),
                        contact: ioana.id,
                    },
                    name: ioana.name.clone(),
                    email: ioana.email.clone().unwrap_or_default(),
                    reply: Reply::NeedsAction,
                }],
                slot: Slot::new(at(10), at(11), "Europe/Bucharest").at("Sibiu, la client"),
                agenda: Some("Configurația mașinilor; termenele de livrare.".into()),
            },
        )
        .await?;
    std::fs::write("crm-quickstart-meeting.ics", meeting.to_ics()).expect("write the invitation");
    println!(
        "meeting {} (UTC) — crm-quickstart-meeting.ics",
        meeting.starts_at().format("%Y-%m-%d %H:%M")
    );
    commerce
        .accept_quotation(&ctx, quotation.id(), quotation.version(), true)
        .await?;
    lead = leads.lead(tenant, lead.id()).await?;
    println!(
        "won: {} ({})",
        lead.title(),
        lead.expected_revenue()
            .map(|m| m.to_string())
            .unwrap_or_default()
    );

    // Lose the second with a reason; the third stays open.
    let reasons = leads.lost_reasons(tenant).await?;
    let lost = leads
        .transition(
            &ctx,
            l2.id(),
            l2.version(),
            LeadCommand::Lose {
                reason: Some(reasons[0].id()),
                competitor: Some("CargoTrack".into()),
                note: None,
            },
        )
        .await?
        .record;
    println!("lost: {} ({})", lost.title(), reasons[0].name());
    let l3 = leads.lead(tenant, l3.id()).await?;
    leads
        .transition(
            &ctx,
            l3.id(),
            l3.version(),
            LeadCommand::MoveTo {
                stage: stage("Contact"),
            },
        )
        .await?;

    // The board.
    println!("\nPipeline board");
    for c in leads.board(tenant, pipeline.id()).await?.columns {
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
    println!("\nTimeline of `{}`", lead.title());
    for e in leads
        .timeline(tenant, TimelineOf::Lead(lead.id()), &PageRequest::first(50))
        .await?
        .items
    {
        let who = match e.actor.user_id().and_then(|u| org.key_of(u)) {
            Some(k) => k.to_string(),
            None => e.actor.to_string(),
        };
        println!(
            "  {}  {:<8} {}",
            e.at.format("%Y-%m-%d %H:%M:%S"),
            who,
            e.describe()
        );
    }

    // Deliver what the rules decided: in-app inboxes, e-mails, tasks.
    let (report, emails) = delivery::deliver(&crm, templates.clone(), 100).await?;
    println!(
        "\nOutbox: {} delivered, {} to retry, {} dead",
        report.delivered, report.retried, report.dead
    );
    for (to, t) in emails {
        println!("  e-mail to {to}: {}", t.subject);
    }
    println!("Inboxes");
    for u in &org.users {
        for i in crm
            .outbox()
            .inbox(tenant, Org::user_id(&u.key), false, &PageRequest::default())
            .await?
            .items
            .iter()
            .rev()
        {
            println!("  {:<12} [{}] {}", u.name, i.rule, i.subject);
        }
    }
    Ok(())
}
