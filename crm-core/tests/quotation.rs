//! Quotation totals against the plain decimal reference (`crm_core::sales::reference`), and the state machine's
//! invariants, on random quotations.

use chrono::{NaiveDate, Utc};
use crm_core::actor::Actor;
use crm_core::id::{ContactId, PartnerId, QuotationId, TenantId, UserId};
use crm_core::money::{Currency, Money};
use crm_core::sales::reference::{self, RefLine};
use crm_core::sales::*;
use crm_core::Error;
use proptest::prelude::*;
use rust_decimal::Decimal;

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn currency() -> impl Strategy<Value = Currency> {
    prop::sample::select(vec!["RON", "EUR", "JPY", "BHD", "KWD"])
        .prop_map(|c| Currency::parse(c).unwrap())
}

/// A line within the reference's exact range: quantity ≤ 10⁴ with 4 places, price ≤ 10⁷ with 4 places, discount
/// with 2 places.
fn line(c: Currency) -> impl Strategy<Value = QuotationLine> {
    (
        1i64..=100_000_000,
        0i64..=100_000_000_000,
        prop_oneof![Just(0i64), 0i64..=10_000],
        prop::sample::select(vec!["S", "R", "E"]),
    )
        .prop_map(move |(q, p, d, tax)| {
            QuotationLine::new(
                "Produs",
                Decimal::new(q, 4),
                Money::new(Decimal::new(p, 4), c).unwrap(),
                tax,
            )
            .discount(Decimal::new(d, 2))
        })
}

fn quotation() -> impl Strategy<Value = (Currency, Vec<QuotationLine>, NaiveDate)> {
    currency().prop_flat_map(|c| {
        (
            Just(c),
            prop::collection::vec(line(c), 1..12),
            prop_oneof![
                Just(day(2025, 7, 31)),
                Just(day(2025, 8, 1)),
                Just(day(2026, 12, 2))
            ],
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(4096)
    ))]

    #[test]
    fn totals_match_the_decimal_reference((c, lines, on) in quotation()) {
        let table = TaxTable::romania();
        let (priced, totals) = price(&lines, c, on, &table).unwrap();
        let refs: Vec<RefLine> = lines.iter().map(|l| RefLine {
            quantity: l.quantity,
            unit_price: l.unit_price.amount(),
            discount_percent: l.discount_percent,
            tax: l.tax.clone(),
        }).collect();
        let expected = reference::totals(&refs, c.minor_digits().min(4), |code| table.rate(code, on).unwrap().percent);
        let nets: Vec<Decimal> = priced.iter().map(|p| p.net.amount()).collect();
        prop_assert_eq!(nets, expected.nets.iter().map(|d| d.normalize()).collect::<Vec<_>>());
        prop_assert_eq!(totals.net.amount(), expected.net.normalize());
        prop_assert_eq!(totals.tax.amount(), expected.tax.normalize());
        prop_assert_eq!(totals.total.amount(), expected.total.normalize());
        let taxes: Vec<(String, Decimal, Decimal)> =
            totals.taxes.iter().map(|t| (t.code.clone(), t.base.amount(), t.tax.amount())).collect();
        let want: Vec<(String, Decimal, Decimal)> =
            expected.taxes.iter().map(|(k, (b, t))| (k.clone(), b.normalize(), t.normalize())).collect();
        prop_assert_eq!(taxes, want);
        for m in [&totals.net, &totals.tax, &totals.total] {
            prop_assert_eq!(m.currency(), c);
        }
    }

    #[test]
    fn pricing_never_panics(
        c in currency(),
        raw in prop::collection::vec(((any::<i64>(), 0u32..29), (any::<i64>(), 0u32..29), (any::<i64>(), 0u32..29), ".{0,3}"), 0..4),
        days in any::<i32>(),
        valid in any::<i32>(),
    ) {
        let lines: Vec<QuotationLine> = raw.into_iter().filter_map(|((q, qs), (p, ps), (d, ds), tax)| {
            let price = Money::new(Decimal::new(p, ps), c).ok()?;
            Some(QuotationLine::new("x", Decimal::new(q, qs), price, &tax).discount(Decimal::new(d, ds)))
        }).collect();
        let on = NaiveDate::from_num_days_from_ce_opt(days).unwrap_or(NaiveDate::MAX);
        let _ = price(&lines, c, on, &TaxTable::romania());
        let terms = QuotationTerms {
            lines,
            valid_until: NaiveDate::from_num_days_from_ce_opt(valid).unwrap_or(NaiveDate::MIN),
            terms: None,
        };
        let me = Actor::user(UserId::new());
        let _ = NewQuotation { lead: None, partner: PartnerId::new(), currency: c, terms }
            .build(TenantId::new(), QuotationId::new(), QuotationNumber::first(2026, 1), on, &TaxTable::romania(), me, Utc::now());
    }

    #[test]
    fn a_revision_supersedes_and_keeps_the_history((c, lines, on) in quotation(), more in 0usize..3) {
        let table = TaxTable::romania();
        let me = Actor::user(UserId::new());
        let terms = QuotationTerms { lines: lines.clone(), valid_until: on + chrono::Days::new(30), terms: None };
        let q = NewQuotation { lead: None, partner: PartnerId::new(), currency: c, terms: terms.clone() }
            .build(TenantId::new(), QuotationId::new(), QuotationNumber::first(2026, 7), on, &table, me.clone(), Utc::now())
            .unwrap();
        let mut current = apply(&q, QuotationCommand::Send, &table, &me, on, Utc::now()).unwrap();
        for n in 0..more {
            let (old, new) = revise(&current, &terms, QuotationId::new(), &table, me.clone(), on, Utc::now()).unwrap();
            prop_assert_eq!(old.status(), QuotationStatus::Superseded);
            prop_assert_eq!(old.superseded_by(), Some(new.id()));
            prop_assert_eq!(new.supersedes(), Some(old.id()));
            prop_assert_eq!(new.number().revision, n as u32 + 2);
            prop_assert_eq!(new.number().sequence, 7);
            prop_assert_eq!(new.totals(), old.totals());
            // A superseded revision can be neither accepted nor revised again.
            prop_assert!(apply(&old, QuotationCommand::Accept, &table, &me, on, Utc::now()).is_err());
            prop_assert!(revise(&old, &terms, QuotationId::new(), &table, me.clone(), on, Utc::now()).is_err());
            current = apply(&new, QuotationCommand::Send, &table, &me, on, Utc::now()).unwrap();
        }
        let accepted = apply(&current, QuotationCommand::Accept, &table, &me, on, Utc::now()).unwrap();
        prop_assert_eq!(accepted.status(), QuotationStatus::Accepted);
        prop_assert_eq!(accepted.answer().map(|a| &a.by), Some(&me));
    }
}

fn ron(amount: &str) -> Money {
    Money::parse(amount, "RON").unwrap()
}

fn field(r: Result<(Vec<PricedLine>, QuotationTotals), Error>) -> String {
    field_of(r.map(|_| ()))
}

#[test]
fn bad_lines_name_their_field() {
    let c = Currency::parse("RON").unwrap();
    let t = TaxTable::romania();
    let on = day(2026, 3, 1);
    let ok = QuotationLine::new("x", Decimal::ONE, ron("10"), "S");
    let cases: Vec<(QuotationLine, &str)> = vec![
        (
            QuotationLine {
                quantity: Decimal::NEGATIVE_ONE,
                ..ok.clone()
            },
            "lines[1].quantity",
        ),
        (
            QuotationLine {
                quantity: Decimal::ZERO,
                ..ok.clone()
            },
            "lines[1].quantity",
        ),
        (
            QuotationLine {
                quantity: Decimal::new(1, 5),
                ..ok.clone()
            },
            "lines[1].quantity",
        ),
        (
            QuotationLine {
                quantity: Decimal::MAX,
                ..ok.clone()
            },
            "lines[1].quantity",
        ),
        (
            ok.clone().discount(Decimal::from(101)),
            "lines[1].discount_percent",
        ),
        (
            ok.clone().discount(Decimal::NEGATIVE_ONE),
            "lines[1].discount_percent",
        ),
        (
            QuotationLine {
                tax: "X".into(),
                ..ok.clone()
            },
            "lines[1].tax",
        ),
        (
            QuotationLine {
                unit_price: Money::parse("1", "EUR").unwrap(),
                ..ok.clone()
            },
            "lines[1].unit_price",
        ),
        (
            QuotationLine {
                unit_price: ron("-1"),
                ..ok.clone()
            },
            "lines[1].unit_price",
        ),
        (
            QuotationLine {
                description: " ".into(),
                ..ok.clone()
            },
            "lines[1].description",
        ),
        (
            QuotationLine {
                unit: String::new(),
                ..ok.clone()
            },
            "lines[1].unit",
        ),
    ];
    for (bad, want) in cases {
        assert_eq!(
            field(price(&[ok.clone(), bad.clone()], c, on, &t)),
            want,
            "{bad:?}"
        );
    }
    assert_eq!(field(price(&[], c, on, &t)), "lines");
    // The largest price at the largest quantity does not fit the exact arithmetic: a typed error, not a wrong total.
    let huge = QuotationLine::new(
        "x",
        Decimal::from(1_000_000_000u64),
        Money::new(Decimal::new(i64::MAX, 4), c).unwrap(),
        "S",
    );
    assert_eq!(field(price(&[huge], c, on, &t)), "lines[0].unit_price");
}

#[test]
fn the_tax_rate_is_the_one_in_force_on_the_issue_day() {
    let c = Currency::parse("RON").unwrap();
    let t = TaxTable::romania();
    let lines = [QuotationLine::new("x", Decimal::ONE, ron("100"), "S")];
    let before = price(&lines, c, day(2025, 7, 31), &t).unwrap().1;
    let after = price(&lines, c, day(2025, 8, 1), &t).unwrap().1;
    assert_eq!(before.tax.amount(), Decimal::from(19));
    assert_eq!(after.tax.amount(), Decimal::from(21));
    assert_eq!(after.taxes[0].label, "TVA 21%");
    // The 5 % reduced rate ended with July 2025.
    let five = [QuotationLine::new("x", Decimal::ONE, ron("100"), "R5")];
    assert!(price(&five, c, day(2025, 7, 31), &t).is_ok());
    assert_eq!(field(price(&five, c, day(2025, 8, 1), &t)), "lines[0].tax");
}

/// The quotation commands on one table and actor, each returning the field its error names.
struct Desk {
    table: TaxTable,
    me: Actor,
    terms: QuotationTerms,
}

impl Desk {
    fn run(
        &self,
        q: &Quotation,
        cmd: QuotationCommand,
        by: &Actor,
        on: NaiveDate,
    ) -> Result<Quotation, Error> {
        apply(q, cmd, &self.table, by, on, Utc::now())
    }

    fn refusal(&self, q: &Quotation, cmd: QuotationCommand, on: NaiveDate) -> String {
        field_of(self.run(q, cmd, &self.me, on).map(|_| ()))
    }

    fn revise(&self, q: &Quotation) -> Result<(Quotation, Quotation), Error> {
        revise(
            q,
            &self.terms,
            QuotationId::new(),
            &self.table,
            self.me.clone(),
            day(2026, 3, 1),
            Utc::now(),
        )
    }
}

fn field_of(r: Result<(), Error>) -> String {
    r.unwrap_err().field().unwrap_or("<no field>").to_string()
}

#[test]
fn commands_that_do_not_fit_the_state_are_refused() {
    use QuotationCommand::*;
    let on = day(2026, 3, 1);
    let desk = Desk {
        table: TaxTable::romania(),
        me: Actor::user(UserId::new()),
        terms: QuotationTerms {
            lines: vec![QuotationLine::new("x", Decimal::ONE, ron("100"), "S")],
            valid_until: day(2026, 3, 31),
            terms: Some("  Plata în 30 de zile  ".into()),
        },
    };
    let partner = PartnerId::new();
    let new = NewQuotation {
        lead: None,
        partner,
        currency: Currency::parse("RON").unwrap(),
        terms: desk.terms.clone(),
    };
    let number = QuotationNumber::first(2026, 42);
    let draft = new
        .build(
            TenantId::new(),
            QuotationId::new(),
            number,
            on,
            &desk.table,
            desk.me.clone(),
            Utc::now(),
        )
        .unwrap();
    assert_eq!(draft.terms(), Some("Plata în 30 de zile"));
    assert_eq!(draft.number().to_string(), "Q-2026-0042/1");
    // A draft is edited, not revised, and cannot be answered.
    assert_eq!(field_of(desk.revise(&draft).map(|_| ())), "status");
    assert_eq!(desk.refusal(&draft, Accept, on), "status");
    let sent = desk.run(&draft, Send, &desk.me, on).unwrap();
    assert_eq!(desk.refusal(&sent, Edit(desk.terms.clone()), on), "status");
    assert_eq!(desk.refusal(&sent, Send, on), "status");
    assert_eq!(desk.refusal(&sent, Expire, on), "valid_until");
    // A representative of another partner does not see it; the partner's own may answer.
    let rep = |partner| Actor::PartnerRepresentative {
        partner,
        contact: ContactId::new(),
    };
    assert!(matches!(
        desk.run(&sent, Accept, &rep(PartnerId::new()), on),
        Err(Error::NotFound { .. })
    ));
    let own = rep(partner);
    let accepted = desk.run(&sent, Accept, &own, on).unwrap();
    assert_eq!(accepted.answer().unwrap().by, own);
    // Accepted and expired quotations are final.
    assert_eq!(field_of(desk.revise(&accepted).map(|_| ())), "status");
    let expired = desk.run(&sent, Expire, &desk.me, day(2026, 4, 1)).unwrap();
    assert_eq!(field_of(desk.revise(&expired).map(|_| ())), "status");
    assert_eq!(desk.refusal(&expired, Accept, on), "status");
    // A validity before the issue day is refused.
    let early = QuotationTerms {
        valid_until: day(2026, 2, 1),
        ..desk.terms.clone()
    };
    assert_eq!(desk.refusal(&draft, Edit(early), on), "valid_until");
}

#[test]
fn overlapping_spans_of_one_code_are_refused() {
    let err = TaxTable::new(vec![
        TaxRate::new("S", "a", Decimal::from(19), day(2020, 1, 1)),
        TaxRate::new("S", "b", Decimal::from(21), day(2025, 8, 1)),
    ])
    .unwrap_err();
    assert_eq!(err.field(), Some("rates[1].from"));
}

#[test]
fn bad_tax_rates_name_their_field() {
    let base = TaxRate::new("S", "x", Decimal::from(21), day(2025, 1, 1));
    let with = |f: fn(&mut TaxRate)| {
        let mut r = base.clone();
        f(&mut r);
        r
    };
    let cases = [
        (with(|r| r.percent = Decimal::from(101)), "rates[0].percent"),
        (
            with(|r| r.percent = Decimal::NEGATIVE_ONE),
            "rates[0].percent",
        ),
        (
            with(|r| r.percent = Decimal::new(123_456, 5)),
            "rates[0].percent",
        ),
        (base.clone().until(day(2024, 1, 1)), "rates[0].until"),
        (with(|r| r.code = " ".into()), "rates[0].code"),
        (with(|r| r.label = String::new()), "rates[0].label"),
        (with(|r| r.from = NaiveDate::MIN), "rates[0].from"),
    ];
    for (rate, want) in cases {
        assert_eq!(
            TaxTable::new(vec![rate.clone()]).unwrap_err().field(),
            Some(want),
            "{rate:?}"
        );
    }
}

#[test]
fn a_tax_table_read_back_is_validated() {
    let json =
        r#"{"rates":[{"code":"S","label":"x","percent":"150","from":"2025-01-01","until":null}]}"#;
    assert!(serde_json::from_str::<TaxTable>(json).is_err());
    let ro = serde_json::to_string(&TaxTable::romania()).unwrap();
    assert_eq!(
        serde_json::from_str::<TaxTable>(&ro).unwrap(),
        TaxTable::romania()
    );
}

#[test]
fn a_quotation_mail_names_what_is_wrong_with_it() {
    let ok = QuotationMail {
        to_name: "Maria".into(),
        to_email: "maria@client.ro".into(),
        subject: "Oferta".into(),
        body: String::new(),
        pdf: b"%PDF-1.7".to_vec(),
    };
    assert!(ok.check().is_ok());
    let mut huge = b"%PDF-".to_vec();
    huge.resize(crm_core::sales::quotation::MAX_PDF_BYTES + 1, b' ');
    let cases = [
        (
            QuotationMail {
                to_email: "maria".into(),
                ..ok.clone()
            },
            "to_email",
        ),
        (
            QuotationMail {
                to_name: " ".into(),
                ..ok.clone()
            },
            "to_name",
        ),
        (
            QuotationMail {
                subject: String::new(),
                ..ok.clone()
            },
            "subject",
        ),
        (
            QuotationMail {
                pdf: b"<html>".to_vec(),
                ..ok.clone()
            },
            "pdf",
        ),
        (
            QuotationMail {
                pdf: huge,
                ..ok.clone()
            },
            "pdf",
        ),
    ];
    for (mail, field) in cases {
        assert_eq!(field_of(mail.check()), field);
    }
}
