//! How long a quotation takes to typeset: one page (3 lines) and several pages (120 lines), fonts already loaded.
//!
//! `cargo bench -p crm-pdf` (release build; Typst is the largest build in the workspace).

use chrono::{NaiveDate, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use crm_core::actor::Actor;
use crm_core::id::{PartnerId, QuotationId, TenantId};
use crm_core::money::{Currency, Money};
use crm_core::sales::{
    NewQuotation, Quotation, QuotationLine, QuotationNumber, QuotationTerms, TaxTable,
};
use crm_pdf::{Language, Party, QuotationPdf};
use rust_decimal::Decimal;
use std::hint::black_box;

fn quotation(lines: usize) -> Quotation {
    let ron = |a: &str| Money::parse(a, "RON").expect("money");
    let lines = (0..lines)
        .map(|i| {
            QuotationLine::new(
                &format!("Poziția {i} — licență „Șantier”"),
                Decimal::from(3),
                ron("1299.90"),
                "S",
            )
        })
        .collect();
    let terms = QuotationTerms {
        lines,
        valid_until: NaiveDate::from_ymd_opt(2026, 12, 31).expect("day"),
        terms: Some("Plata în 30 de zile.".into()),
    };
    NewQuotation {
        lead: None,
        partner: PartnerId::new(),
        currency: Currency::parse("RON").expect("RON"),
        terms,
    }
    .build(
        TenantId::new(),
        QuotationId::new(),
        QuotationNumber::first(2026, 42),
        NaiveDate::from_ymd_opt(2026, 12, 2).expect("day"),
        &TaxTable::romania(),
        Actor::System,
        Utc::now(),
    )
    .expect("quotation")
}

fn benches(c: &mut Criterion) {
    let pdf = QuotationPdf::new();
    let company = Party::new("Țesătoria Șerban SRL").line("Str. Mureșului 14, Brașov");
    let partner = Party::new("Client SA").line("Bd. Unirii 2, București");
    for n in [3, 120] {
        let q = quotation(n);
        // Fonts load once per process; the first render pays for it.
        pdf.render(&q, &company, &partner, Language::Romanian)
            .expect("render");
        c.bench_function(&format!("quotation_pdf_{n}_lines"), |b| {
            b.iter(|| {
                black_box(
                    pdf.render(&q, &company, &partner, Language::Romanian)
                        .expect("render"),
                )
            })
        });
    }
}

criterion_group!(render, benches);
criterion_main!(render);
