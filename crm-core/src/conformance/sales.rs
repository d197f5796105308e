//! Quotations through the storage port: numbering, revisions and their history, versions, uniqueness of numbers,
//! all-or-nothing changes, and the events on the lead's timeline. Registered as a commerce check.

use super::commerce::Shop;
use crate::commerce::{CommerceStore, CommerceStoreExt, CommerceWrite};
use crate::error::Error;
use crate::lead::{Lead, NewLead};
use crate::money::{Currency, Money};
use crate::sales::{
    NewQuotation, Quotation, QuotationCommand, QuotationLine, QuotationStatus, QuotationTerms,
};
use crate::store::{ChangeSet, PageRequest, Store, TimelineOf, Write};
use crate::time::MAX_BUSINESS_DATE;
use rust_decimal::Decimal;
use std::sync::Arc;

/// A one-line quotation in RON (VAT `S`) for `lead`'s partner, valid to the end of the business calendar.
pub fn quotation_for(lead: &Lead, price: &str) -> NewQuotation {
    NewQuotation {
        lead: Some(lead.id),
        partner: lead.partner,
        currency: Currency::parse("RON").expect("RON"),
        terms: QuotationTerms {
            lines: vec![QuotationLine::new(
                "Audit",
                Decimal::ONE,
                Money::parse(price, "RON").expect("a price"),
                "S",
            )],
            valid_until: MAX_BUSINESS_DATE,
            terms: None,
        },
    }
}

/// Quotations round-trip, number themselves per tenant and year (also when two are made at once), keep their
/// revisions' history, refuse stale versions and duplicate numbers, write nothing when refused, and log every
/// step on the lead's timeline.
pub async fn check_commerce_quotations(store: &Arc<dyn Store>, commerce: &Arc<dyn CommerceStore>) {
    let shop = Shop::new(store, commerce).await;
    let (cs, ctx, t) = (&shop.cs, &shop.w.ctx, shop.w.tenant);
    let customer = shop.customer("Ofertare SRL").await;
    let lead = shop
        .w
        .crm
        .enter_lead(ctx, NewLead::for_partner(customer.id, "Licenses"))
        .await
        .expect("lead")
        .record;

    // Made, read back whole, numbered 1, 2, … in the year of the fixed clock.
    let first = cs
        .create_quotation(ctx, quotation_for(&lead, "100"))
        .await
        .expect("quotation");
    assert_eq!(
        commerce.quotation(t, first.id()).await.expect("read back"),
        first
    );
    assert_eq!(first.number().to_string(), "Q-2026-0001/1");
    assert_eq!(
        first.totals().total,
        Money::parse("121", "RON").expect("money")
    );
    let without_lead = NewQuotation {
        lead: None,
        ..quotation_for(&lead, "5")
    };
    let second = cs
        .create_quotation(ctx, without_lead)
        .await
        .expect("second");
    assert_eq!(second.number().sequence, 2);
    let last = commerce
        .last_quotation_of_year(t, 2026)
        .await
        .expect("last");
    assert_eq!(last.map(|q| q.id()), Some(second.id()));
    assert!(commerce
        .last_quotation_of_year(t, 2025)
        .await
        .expect("none")
        .is_none());

    // Two made at once get different numbers.
    let (a, b) = futures::future::join(
        cs.create_quotation(ctx, quotation_for(&lead, "1")),
        cs.create_quotation(ctx, quotation_for(&lead, "2")),
    )
    .await;
    let (a, b) = (a.expect("concurrent a"), b.expect("concurrent b"));
    assert_ne!(a.number(), b.number());

    // A refused create (a line in another currency) writes nothing.
    let mut bad = quotation_for(&lead, "1");
    bad.terms.lines[0].unit_price = Money::parse("1", "EUR").expect("money");
    let err = cs.create_quotation(ctx, bad).await.unwrap_err();
    assert_eq!(err.field(), Some("lines[0].unit_price"));
    assert_eq!(
        commerce
            .quotations_of_lead(t, lead.id)
            .await
            .expect("of lead")
            .len(),
        3
    );

    // Sent, then a stale command is a conflict and changes nothing.
    let sent = cs
        .quotation_command(ctx, first.id(), 1, QuotationCommand::Send)
        .await
        .expect("send");
    assert_eq!((sent.status(), sent.version()), (QuotationStatus::Sent, 2));
    let stale = cs
        .quotation_command(ctx, first.id(), 1, QuotationCommand::Accept)
        .await;
    assert!(matches!(stale, Err(Error::Conflict { .. })), "{stale:?}");
    assert_eq!(commerce.quotation(t, first.id()).await.expect("read"), sent);

    // Revised: version 1 superseded, version 2 a draft of the same number; the history reads in order.
    let mut terms = quotation_for(&lead, "90").terms;
    terms.terms = Some("Discount for a two-year contract".into());
    let v2 = cs
        .revise_quotation(ctx, first.id(), 2, terms)
        .await
        .expect("revise");
    assert_eq!(v2.number().to_string(), "Q-2026-0001/2");
    let history = commerce
        .quotation_revisions(t, 2026, 1)
        .await
        .expect("history");
    let ids: Vec<_> = history.iter().map(Quotation::id).collect();
    assert_eq!(ids, vec![first.id(), v2.id()]);
    assert_eq!(history[0].status(), QuotationStatus::Superseded);
    assert_eq!(history[0].superseded_by(), Some(v2.id()));
    assert_eq!(history[1].supersedes(), Some(first.id()));
    let of_lead: Vec<_> = commerce
        .quotations_of_lead(t, lead.id)
        .await
        .expect("of lead")
        .iter()
        .map(|q| q.number().to_string())
        .collect();
    let mut sorted = of_lead.clone();
    sorted.sort_by_key(|n| {
        n.parse::<crate::sales::QuotationNumber>()
            .expect("a number")
    });
    assert_eq!(of_lead, sorted, "by number");
    assert_eq!(of_lead.len(), 4);

    // The store refuses a second revision with a taken number, and a stale update, and commits neither.
    let mut clash = v2.clone();
    clash.id = crate::id::QuotationId::new();
    let mut cs_clash = ChangeSet::new();
    cs_clash.push(Write::Commerce(CommerceWrite::InsertQuotation(
        clash.clone(),
    )));
    let err = store.commit(t, cs_clash).await.unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err:?}");
    assert!(matches!(
        commerce.quotation(t, clash.id).await,
        Err(Error::NotFound { .. })
    ));
    let mut changed = v2.clone();
    changed.version = 8;
    let update = CommerceWrite::UpdateQuotation {
        quotation: changed,
        expected_version: 7,
    };
    let err = store
        .commit(t, ChangeSet::from_iter([Write::Commerce(update)]))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err:?}");
    assert_eq!(commerce.quotation(t, v2.id()).await.expect("read"), v2);

    // Sent and accepted; every step is on the lead's timeline.
    let v2 = cs
        .quotation_command(ctx, v2.id(), 1, QuotationCommand::Send)
        .await
        .expect("send v2");
    let won = cs
        .quotation_command(ctx, v2.id(), 2, QuotationCommand::Accept)
        .await
        .expect("accept");
    assert_eq!(won.answer().map(|a| &a.by), Some(&ctx.actor));
    let timeline = shop
        .w
        .crm
        .timeline(
            t,
            TimelineOf::Lead(lead.id),
            &PageRequest {
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .expect("timeline");
    let names: Vec<&str> = timeline
        .items
        .iter()
        .flat_map(|e| e.kind.trigger_names())
        .collect();
    for want in [
        "quotation_created",
        "quotation_sent",
        "quotation_revised",
        "quotation_accepted",
    ] {
        assert!(
            names.contains(&want),
            "{want} is not on the timeline: {names:?}"
        );
    }
}
