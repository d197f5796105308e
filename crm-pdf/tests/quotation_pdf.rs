//! A quotation rendered to PDF, checked as a reader sees it: the text extracted back with poppler's `pdftotext`
//! (Romanian diacritics included) and page one rendered to a PNG under `target/` with `pdftoppm`.
//!
//! poppler-utils is a Debian package `scripts/test` installs; with `CRM_REQUIRE_POPPLER` set (as scripts/test sets
//! it) a missing tool fails the test instead of skipping the reading-back half.

use chrono::{NaiveDate, Utc};
use crm_core::actor::Actor;
use crm_core::id::{PartnerId, QuotationId, TenantId};
use crm_core::money::{Currency, Money};
use crm_core::sales::{
    apply, revise, NewQuotation, QuotationCommand, QuotationLine, QuotationNumber, QuotationTerms,
    TaxTable,
};
use crm_pdf::{Language, Party, QuotationPdf};
use rust_decimal::Decimal;
use std::path::{Path, PathBuf};
use std::process::Command;

fn quotation(lines: usize) -> crm_core::sales::Quotation {
    let ron = |a: &str| Money::parse(a, "RON").unwrap();
    let mut all = vec![
        QuotationLine::new(
            "Licență anuală „Șantier”",
            Decimal::from(3),
            ron("1299.90"),
            "S",
        )
        .discount(Decimal::from(10))
        .unit("buc"),
        QuotationLine::new(
            "Instruire la sediul clientului (țară)",
            Decimal::new(75, 1),
            ron("250"),
            "S",
        )
        .unit("oră"),
        QuotationLine::new("Manual tipărit", Decimal::from(2), ron("45.5"), "R"),
    ];
    for i in all.len()..lines {
        all.push(QuotationLine::new(
            &format!("Poziția {i}"),
            Decimal::ONE,
            ron("10"),
            "E",
        ));
    }
    let terms = QuotationTerms {
        lines: all,
        valid_until: NaiveDate::from_ymd_opt(2026, 12, 31).unwrap(),
        terms: Some("Plata în 30 de zile de la facturare. Prețurile nu includ transportul.".into()),
    };
    let (table, day) = (
        TaxTable::romania(),
        NaiveDate::from_ymd_opt(2026, 12, 2).unwrap(),
    );
    let first = NewQuotation {
        lead: None,
        partner: PartnerId::new(),
        currency: Currency::parse("RON").unwrap(),
        terms: terms.clone(),
    }
    .build(
        TenantId::new(),
        QuotationId::new(),
        QuotationNumber::first(2026, 42),
        day,
        &table,
        Actor::System,
        Utc::now(),
    )
    .unwrap();
    // The printed one is the second revision.
    let sent = apply(
        &first,
        QuotationCommand::Send,
        &table,
        &Actor::System,
        day,
        Utc::now(),
    )
    .unwrap();
    revise(
        &sent,
        &terms,
        QuotationId::new(),
        &table,
        Actor::System,
        day,
        Utc::now(),
    )
    .unwrap()
    .1
}

fn company() -> Party {
    Party::new("Țesătoria Șerban SRL")
        .line("Str. Mureșului 14, 500000 Brașov")
        .line("CUI RO12345678 · J08/1234/2010")
        .line("IBAN RO49 AAAA 1B31 0075 9384 0000")
}

fn out_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("crm-pdf");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs a poppler tool, or `None` when it is missing and not required.
fn poppler(tool: &str, args: &[&str]) -> Option<String> {
    match Command::new(tool).args(args).output() {
        Ok(out) => {
            assert!(
                out.status.success(),
                "{tool} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            Some(String::from_utf8(out.stdout).unwrap())
        }
        Err(e) if std::env::var_os("CRM_REQUIRE_POPPLER").is_none() => {
            eprintln!("skipping the read-back: {tool} is not installed ({e})");
            None
        }
        Err(e) => panic!("{tool} is required (CRM_REQUIRE_POPPLER is set): {e}"),
    }
}

#[test]
fn a_quotation_reads_back_with_its_lines_taxes_totals_and_diacritics() {
    let q = quotation(3);
    let partner = Party::new("Client Ștefănescu SA").line("Bd. Unirii 2, București");
    let pdf = QuotationPdf::new()
        .render(&q, &company(), &partner, Language::Romanian)
        .unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
    let dir = out_dir();
    let path = dir.join("quotation.pdf");
    std::fs::write(&path, &pdf).unwrap();
    let Some(text) = poppler("pdftotext", &["-layout", path.to_str().unwrap(), "-"]) else {
        return;
    };
    // 3 × 1299.90 × 0.9 = 3509.73; 7.5 × 250 = 1875; S base 5384.73, TVA 21 % 1130.79;
    // R: 2 × 45.50 = 91, TVA 11 % 10.01; total 5475.73 + 1140.80 = 6616.53.
    for want in [
        "Ofertă",
        "Q-2026-0042/2",
        "02.12.2026",
        "31.12.2026",
        "Țesătoria Șerban SRL",
        "Client Ștefănescu SA",
        "București",
        "Licență anuală „Șantier”",
        "Instruire la sediul clientului (țară)",
        "3.509,73 RON",
        "1.875,00 RON",
        "TVA 21%",
        "1.130,79 RON",
        "TVA 11%",
        "10,01 RON",
        "5.475,73 RON",
        "1.140,80 RON",
        "6.616,53 RON",
        "Plata în 30 de zile",
    ] {
        assert!(
            text.contains(want),
            "`{want}` is not in the PDF's text:\n{text}"
        );
    }
    let png = dir.join("quotation-page1");
    poppler(
        "pdftoppm",
        &[
            "-png",
            "-r",
            "80",
            "-f",
            "1",
            "-l",
            "1",
            "-singlefile",
            path.to_str().unwrap(),
            png.to_str().unwrap(),
        ],
    );
    let png = dir.join("quotation-page1.png");
    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.starts_with(b"\x89PNG"), "{} is a PNG", png.display());
    eprintln!("page one: {}", png.display());
}

#[test]
fn a_long_quotation_breaks_across_pages_and_english_reads_in_english() {
    let q = quotation(120);
    let pdf = QuotationPdf::new()
        .render(&q, &company(), &Party::new("Client Ltd"), Language::English)
        .unwrap();
    let path = out_dir().join("quotation-long.pdf");
    std::fs::write(&path, &pdf).unwrap();
    let Some(info) = poppler("pdfinfo", &[path.to_str().unwrap()]) else {
        return;
    };
    let pages: u32 = info
        .lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .map(|v| v.trim().parse().unwrap())
        .unwrap();
    assert!(pages >= 3, "120 lines take several pages, got {pages}");
    let text = poppler("pdftotext", &["-layout", path.to_str().unwrap(), "-"]).unwrap();
    for want in [
        "Quotation",
        "2026-12-02",
        "Unit price",
        "Poziția 119",
        "7,786.53 RON",
        "Page 3 / ",
    ] {
        assert!(text.contains(want), "`{want}` is not in the PDF's text");
    }
}

#[test]
fn a_template_that_does_not_compile_is_a_typed_error_and_cannot_read_files() {
    let q = quotation(1);
    let broken = QuotationPdf::with_template("#let x = (");
    let err = broken
        .render(&q, &company(), &Party::new("x"), Language::Romanian)
        .unwrap_err();
    assert_eq!(err.field(), Some("template"));
    let snooping = QuotationPdf::with_template("#read(\"/etc/passwd\")");
    let err = snooping
        .render(&q, &company(), &Party::new("x"), Language::Romanian)
        .unwrap_err();
    assert_eq!(err.field(), Some("template"), "{err}");
    // An organisation's own template prints the data it is given.
    let own = QuotationPdf::with_template(
        "#let d = json(\"data.json\")\nOferta noastră #d.number: #d.total",
    );
    let pdf = own
        .render(&q, &company(), &Party::new("x"), Language::Romanian)
        .unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
}
