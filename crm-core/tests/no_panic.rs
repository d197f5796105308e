//! No input makes a public parse or constructor entry point panic: arbitrary strings, numbers and dates give a
//! value or a typed error (#16). `PROPTEST_CASES` raises the cases for a soak run.

use chrono::NaiveDate;
use crm_core::commerce::{
    AppliedRate, Criteria, DocumentFacts, NewDocument, NewLine, NewProduct, Period,
};
use crm_core::comms::{Recipient, TimerTrigger};
use crm_core::id::TenantId;
use crm_core::money::{Currency, Money};
use crm_core::partner::NewPartner;
use proptest::prelude::*;
use rust_decimal::Decimal;
use std::collections::BTreeMap;

fn any_date() -> impl Strategy<Value = NaiveDate> {
    (i32::MIN..i32::MAX).prop_map(|n| {
        NaiveDate::from_num_days_from_ce_opt(n % 100_000_000).unwrap_or(NaiveDate::MIN)
    })
}

fn any_decimal() -> impl Strategy<Value = Decimal> {
    (any::<i64>(), 0u32..29).prop_map(|(m, s)| Decimal::new(m, s))
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000),
        ..ProptestConfig::default()
    })]

    #[test]
    fn money_and_currencies_parse_or_refuse(amount in ".{0,40}", code in ".{0,6}") {
        let _ = Money::parse(&amount, &code);
        let _ = Currency::parse(&code);
    }

    #[test]
    fn periods_build_or_refuse_whatever_the_dates(from in any_date(), to in any_date()) {
        if let Ok(p) = Period::new(from, to) {
            let _ = p.previous();
            prop_assert!(p.days() >= 1);
        }
        let json = format!(r#"{{"from":"{from}","to":"{to}"}}"#);
        let _ = serde_json::from_str::<Period>(&json);
    }

    #[test]
    fn timers_and_recipients_parse_or_refuse(s in ".{0,60}", n in any::<u64>()) {
        let _ = TimerTrigger::parse(&s);
        let _ = TimerTrigger::parse(&format!("lead_idle:{n}"));
        let _ = TimerTrigger::parse(&format!("request_due_soon:{n}"));
        let _ = TimerTrigger::parse(&format!("open_item_overdue:{n}"));
        let _ = TimerTrigger::parse(&format!("contract_renewal_due:{n}"));
        let _ = Recipient::parse(&s);
    }

    #[test]
    fn attachment_names_hashes_and_contents_are_checked_or_refused(
        s in ".{0,300}",
        head in proptest::collection::vec(any::<u8>(), 0..600),
        size in any::<u64>(),
    ) {
        use crm_core::sales::{file_name, sniff, AttachmentPolicy, ContentDigest, ContentHash};
        let _ = file_name(&s);
        let _ = s.parse::<ContentHash>();
        let _ = serde_json::from_str::<ContentHash>(&format!("{s:?}"));
        let media = sniff(&head, &s);
        let _ = AttachmentPolicy::default().check(&media);
        let mut d = ContentDigest::new(size);
        let _ = d.update(&head);
        prop_assert!(d.size() <= size);
    }

    #[test]
    fn criteria_json_parses_and_checks_or_refuses(s in ".{0,200}", n in any::<i64>(), d in any_date()) {
        if let Ok(c) = serde_json::from_str::<Criteria>(&s) {
            let _ = c.check();
        }
        let shaped = format!(
            r#"{{"type":"and","all":[{{"type":"last_sale","when":{{"type":"within_days","days":{n}}}}},{{"type":"last_sale","when":{{"type":"before","date":"{d}"}}}}]}}"#
        );
        if let Ok(c) = serde_json::from_str::<Criteria>(&shaped) {
            let _ = c.check();
        }
    }

    #[test]
    fn documents_build_or_refuse_at_the_extremes(
        number in prop_oneof!["[A-Z0-9-]{1,12}", ".{0,40}"],
        day in prop_oneof![any_date(), (0i64..146_000).prop_map(|d| NaiveDate::from_ymd_opt(1900, 1, 1).unwrap() + chrono::Duration::days(d))],
        currency in prop_oneof!["RON", "EUR", "JPY", ".{0,4}"],
        qty in any_decimal(),
        price in any_decimal(),
        cost in any_decimal(),
        renews in prop_oneof![Just(None), any_date().prop_map(Some)],
    ) {
        // A real partner and product, so the document reaches its arithmetic (totals, conversion, units).
        let tenant = TenantId::new();
        let now = chrono::Utc::now();
        let partner = NewPartner::company("Customer SRL").build(tenant, now).expect("a partner");
        let product = NewProduct { code: "P".into(), name: "Product".into(), category: None }
            .record(tenant, None, None, now)
            .expect("a product")
            .record()
            .clone();
        let products = BTreeMap::from([(product.id(), product.clone())]);
        let settled = BTreeMap::new();
        let ron = Currency::parse("RON").expect("RON");
        let line = NewLine::new(product.id(), qty, price, cost);
        let mut doc = NewDocument::invoice(&number, partner.id(), day, &currency, vec![line]);
        doc.renews_on = renews;
        let facts = DocumentFacts {
            partner: &partner,
            products: &products,
            rate: AppliedRate::identity(ron),
            existing: None,
            corrected: None,
            campaign_exists: false,
            settled: &settled,
        };
        match doc.record(tenant, facts, now) {
            Ok(r) => prop_assert!(r.record().total_units() != i64::MIN),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }
}
