//! Seeded data for the self-service portal: the portal example and the portal's browser and HTTP tests include
//! this file with `#[path]`.
//!
//! Tenant "Exemplu Utilaje SRL" with one account manager (Ana); two customers, Acme (Maria represents it, with
//! every right; Ion is a second contact) and Rival (Radu represents it); Acme has three open invoices in EUR (one
//! overdue, one half paid) and a contract; Rival has one invoice. A demo gateway confirms every payment at once.

use chrono::{Duration, NaiveDate};
use crm::commerce::{Allocation, NewDocument, NewLine, NewProduct, PaymentDirection};
use crm::id::{DocumentId, PartnerId, ProductId, RequestId, TenantId, UserId};
use crm::portal::{PaymentAttempt, PaymentProvider, ProviderAnswer, Right, Rights};
use crm::sales::{NewQuotation, Quotation, QuotationCommand, QuotationLine, QuotationTerms, Term};
use crm::{async_trait, Context, Crm, Decimal, NewContact, NewPartner, PartnerRole};
use std::sync::Arc;

/// A gateway that confirms every payment at once (a real host calls its payment provider here).
#[derive(Debug, Default)]
pub struct DemoGateway;

#[async_trait]
impl PaymentProvider for DemoGateway {
    async fn start(&self, attempt: &PaymentAttempt) -> crm::Result<ProviderAnswer> {
        Ok(ProviderAnswer::Confirmed {
            reference: format!("DEMO-{}", attempt.key()),
        })
    }
}

/// What the seed made (the example reads only the tokens; the tests read the rest).
#[allow(dead_code)]
#[derive(Debug, Clone)]
pub struct Seeded {
    /// The tenant.
    pub tenant: TenantId,
    /// The account manager's context.
    pub staff: Context,
    /// The account manager.
    pub ana: UserId,
    /// Acme.
    pub acme: PartnerId,
    /// Rival.
    pub rival: PartnerId,
    /// Maria's (Acme's) invitation token.
    pub maria_token: String,
    /// Radu's (Rival's) invitation token.
    pub radu_token: String,
    /// Rival's invoice's id.
    pub rival_invoice: DocumentId,
    /// Rival's request's id.
    pub rival_request: RequestId,
    /// The product every invoice sells.
    pub product: ProductId,
}

fn day(today: NaiveDate, back: i64) -> NaiveDate {
    today - Duration::days(back)
}

/// Seeds `crm` (built with [`DemoGateway`] as its payment provider) with the portal's example data.
pub async fn seed(crm: &Crm) -> crm::Result<Seeded> {
    let tenant = TenantId::new();
    let ana = UserId::new();
    let staff = Context::user(tenant, ana);
    crm.leads().setup_tenant(&staff).await?;
    let leads = crm.leads();
    let customer = |name: &str, contacts: &[(&str, &str)]| {
        let mut p = NewPartner::company(name)
            .with_role(PartnerRole::Customer)
            .with_owner(ana);
        for (n, e) in contacts {
            p.contacts.push(NewContact {
                name: (*n).into(),
                email: Some((*e).into()),
                ..NewContact::default()
            });
        }
        p
    };
    let acme = customer(
        "Acme SRL",
        &[
            ("Maria Pop", "maria@acme.example"),
            ("Ion Ionescu", "ion@acme.example"),
        ],
    );
    let acme = leads.create_partner(&staff, acme).await?.record;
    let rival = customer("Rival SA", &[("Radu Rus", "radu@rival.example")]);
    let rival = leads.create_partner(&staff, rival).await?.record;
    let commerce = crm.commerce();
    let product = NewProduct {
        code: "CNC-1".into(),
        name: "CNC router".into(),
        category: None,
    };
    let product = commerce.record_product(&staff, product, None).await?;
    let product = product.record().id();
    let today = crm.clock().now().date_naive();
    let line = |price: i64| {
        vec![NewLine::new(
            product,
            Decimal::ONE,
            Decimal::from(price),
            Decimal::from(price / 2),
        )]
    };
    let invoices = [
        ("F-1001", acme.id(), 60, 30, 1200),
        ("F-1002", acme.id(), 20, -10, 800),
        ("F-1003", acme.id(), 5, -25, 450),
        ("R-2001", rival.id(), 10, -20, 999),
    ];
    let mut rival_invoice = None;
    for (number, partner, issued, due, price) in invoices {
        let doc = NewDocument::invoice(number, partner, day(today, issued), "EUR", line(price))
            .due(day(today, due));
        let rec = commerce.record_document(&staff, doc).await?;
        if partner == rival.id() {
            rival_invoice = Some(rec.recorded.record().id());
        }
    }
    // Half of F-1002 paid by bank transfer.
    let mut paid = NewDocument::payment(
        "B-77",
        acme.id(),
        day(today, 3),
        "EUR",
        PaymentDirection::Received,
        Decimal::from(400),
    );
    paid.allocations = vec![Allocation {
        number: "F-1002".into(),
        amount: Decimal::from(400),
    }];
    commerce.record_document(&staff, paid).await?;
    // A quotation accepted last year became contract C-2026-7; a new one waits for Acme's answer.
    let until = day(today, -30);
    let old = sent_offer(crm, &staff, acme.id(), "Maintenance 2026", "1200", until).await?;
    commerce
        .quotation_command(&staff, old.id(), old.version(), QuotationCommand::Accept)
        .await?;
    let term = Term {
        starts_on: day(today, 300),
        ends_on: Some(day(today, -65)),
        renews_on: Some(day(today, -35)),
    };
    commerce
        .create_contract(&staff, old.id(), "C-2026-7", term)
        .await?;
    sent_offer(crm, &staff, acme.id(), "Second CNC router", "24500", until).await?;
    let rival_request = crm
        .leads()
        .open_request(
            &staff,
            crm::NewRequest {
                lead: None,
                partner: Some(rival.id()),
                title: "Rival's confidential question".into(),
                description: Some("Not for Acme's eyes.".into()),
                kind: None,
                assignee: Some(ana),
                due: None,
                priority: Default::default(),
            },
        )
        .await?
        .record;
    let portal = crm.portal();
    let maria = portal
        .invite(&staff, acme.id(), acme.contacts()[0].id, Rights::all())
        .await?;
    let statement_and_requests = Rights::none()
        .with(Right::Statement)
        .with(Right::Documents)
        .with(Right::Requests)
        .with(Right::Pay);
    let radu = portal
        .invite(
            &staff,
            rival.id(),
            rival.contacts()[0].id,
            statement_and_requests,
        )
        .await?;
    Ok(Seeded {
        tenant,
        staff,
        ana,
        acme: acme.id(),
        rival: rival.id(),
        maria_token: maria.token.as_str().to_string(),
        radu_token: radu.token.as_str().to_string(),
        rival_invoice: rival_invoice.ok_or_else(|| crm::Error::invalid("seed", "no invoice"))?,
        rival_request: rival_request.id(),
        product,
    })
}

/// What Acme owes in EUR now (the first balance's receivable).
#[allow(dead_code)] // the tests read it; the example does not
pub async fn acme_owes(crm: &Crm, seeded: &Seeded) -> crm::Result<Decimal> {
    let balances = crm
        .commerce()
        .balances(seeded.tenant, seeded.acme, None)
        .await?;
    Ok(balances.first().map_or(Decimal::ZERO, |b| b.receivable))
}

/// A quotation of one line for `partner`, sent.
async fn sent_offer(
    crm: &Crm,
    staff: &Context,
    partner: PartnerId,
    what: &str,
    price: &str,
    valid_until: NaiveDate,
) -> crm::Result<Quotation> {
    let price = crm::Money::parse(price, "EUR")?;
    let new = NewQuotation {
        lead: None,
        partner,
        currency: price.currency(),
        terms: QuotationTerms {
            lines: vec![QuotationLine::new(what, Decimal::ONE, price, "S")],
            valid_until,
            terms: None,
        },
    };
    let q = crm.commerce().create_quotation(staff, new).await?;
    let send = QuotationCommand::Send;
    crm.commerce()
        .quotation_command(staff, q.id(), q.version(), send)
        .await
}

/// The portal of the seeded tenant over `crm`, with cookies not `Secure` (it is served over plain HTTP on loopback)
/// and a fixed demo secret (a host keeps its own, random).
pub fn portal_of(crm: &Crm, seeded: &Seeded) -> crm::web::Portal {
    let secret = [42u8; 64];
    crm::web::Portal::new(crm.portal().clone(), seeded.tenant, &secret)
        .expect("a 64-byte secret")
        .secure_cookies(false)
}

/// The CRM with the demo gateway, on SQLite in memory.
#[allow(dead_code)] // the tests use a fixed clock
pub async fn demo_crm() -> crm::Result<Crm> {
    demo_crm_at(Arc::new(crm::SystemClock)).await
}

/// [`demo_crm`] on `clock`.
pub async fn demo_crm_at(clock: Arc<dyn crm::Clock>) -> crm::Result<Crm> {
    Crm::builder()
        .sqlite_in_memory()
        .clock(clock)
        .payment_provider(Arc::new(DemoGateway))
        .build()
        .await
}

/// Maria's consent to marketing by e-mail (a newsletter form), and the unsubscribe token her offers carry.
#[allow(dead_code)] // the portal tests use it; the example does not
pub async fn maria_consents(crm: &Crm, seeded: &Seeded) -> crm::Result<String> {
    use crm::consent::{ConsentChannel, NewConsent, Purpose, UnsubscribeToken};
    let acme = crm.leads().partner(seeded.tenant, seeded.acme).await?;
    let maria = acme
        .contacts()
        .iter()
        .find(|c| c.email.as_deref() == Some("maria@acme.example"))
        .map(|c| c.id)
        .ok_or_else(|| crm::Error::not_found("contact", "maria@acme.example"))?;
    let answer = NewConsent {
        channel: "email".into(),
        purpose: "marketing".into(),
        granted: true,
        source: "newsletter form".into(),
        proof: Some("form 17".into()),
    };
    let acme = crm
        .leads()
        .record_consent(&seeded.staff, acme.id(), acme.version(), maria, answer)
        .await?
        .record;
    let key = acme
        .contacts()
        .iter()
        .find(|c| c.id == maria)
        .and_then(|c| c.consent(ConsentChannel::Email, Purpose::Marketing))
        .and_then(|c| c.key.clone())
        .unwrap_or_default();
    Ok(UnsubscribeToken {
        tenant: seeded.tenant,
        partner: acme.id(),
        contact: maria,
        channel: ConsentChannel::Email,
        purpose: Purpose::Marketing,
        key,
        campaign: None,
    }
    .encode())
}

/// Whether Maria's consent to marketing by e-mail stands.
#[allow(dead_code)] // the portal tests use it; the example does not
pub async fn maria_consent_stands(crm: &Crm, seeded: &Seeded) -> crm::Result<bool> {
    use crm::consent::{ConsentChannel, Purpose};
    let acme = crm.leads().partner(seeded.tenant, seeded.acme).await?;
    Ok(acme.contacts().iter().any(|c| {
        c.email.as_deref() == Some("maria@acme.example")
            && c.consent(ConsentChannel::Email, Purpose::Marketing)
                .is_some()
    }))
}
