//! # crm-pdf: printable documents typeset with Typst
//!
//! A quotation becomes a PDF through a **Typst template the organisation edits** (the built-in one is
//! `templates/quotation.typ`): crm-pdf writes the quotation, the company's and the partner's details and the
//! translated labels into a virtual `data.json`, and Typst (as a library, fonts embedded: Libertinus Serif, which
//! carries Romanian's ș and ț with the comma below) lays it out. Nothing is read from the file system or the network
//! while rendering, so a template can only print the data it is given.
//!
//! Why Typst rather than krilla or printpdf: a template is a text file a consultant edits and previews in the Typst
//! app without Rust, tables break across pages by themselves, and its text shaping is the same engine krilla
//! uses underneath. Its cost is build time (measured in ARCHITECTURE.md), which is why it lives in its own crate:
//! a host that prints nothing does not build it.
//!
//! ```
//! use crm_pdf::{Language, Party, QuotationPdf};
//! # use crm_core::{actor::Actor, id::*, money::{Currency, Money}, sales::*};
//! # use chrono::{NaiveDate, Utc};
//! # use rust_decimal::Decimal;
//! # let day = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
//! # let terms = QuotationTerms {
//! #     lines: vec![QuotationLine::new("Mentenanță", Decimal::ONE, Money::parse("1500", "RON").unwrap(), "S")],
//! #     valid_until: NaiveDate::from_ymd_opt(2026, 4, 1).unwrap(),
//! #     terms: None,
//! # };
//! # let quotation = NewQuotation { lead: None, partner: PartnerId::new(), currency: Currency::parse("RON").unwrap(), terms }
//! #     .build(TenantId::new(), QuotationId::new(), QuotationNumber::first(2026, 1), day, &TaxTable::romania(),
//! #            Actor::System, Utc::now()).unwrap();
//! let company = Party::new("Exemplu SRL").line("Str. Lungă 1, Brașov").line("CUI RO123456");
//! let partner = Party::new("Client SA").line("Bd. Unirii 2, București");
//! let pdf = QuotationPdf::new().render(&quotation, &company, &partner, Language::Romanian).unwrap();
//! assert!(pdf.starts_with(b"%PDF-"));
//! ```

use chrono::{Datelike, NaiveDate};
use crm_core::error::{Error, Result};
use crm_core::money::Money;
use crm_core::sales::Quotation;
use rust_decimal::Decimal;
use serde::Serialize;
use std::sync::{Arc, OnceLock};
use typst::diag::{FileError, FileResult};
use typst::foundations::{Bytes, Datetime};
use typst::syntax::{FileId, RootedPath, Source, VirtualPath, VirtualRoot};
use typst::text::{Font, FontBook};
use typst::utils::LazyHash;
use typst::{Library, LibraryExt, World};
use typst_layout::PagedDocument;

/// The built-in quotation template.
pub const QUOTATION_TEMPLATE: &str = include_str!("../templates/quotation.typ");

/// The language a document is printed in: its labels and how amounts and dates are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Language {
    /// Romanian: `1.234,56`, `02.03.2026`.
    #[default]
    Romanian,
    /// English: `1,234.56`, `2026-03-02`.
    English,
}

impl Language {
    fn code(self) -> &'static str {
        match self {
            Self::Romanian => "ro",
            Self::English => "en",
        }
    }

    /// `amount` with the currency's minor digits, grouped by thousands, and the currency code.
    fn money(self, m: &Money) -> String {
        let (group, point) = match self {
            Self::Romanian => ('.', ','),
            Self::English => (',', '.'),
        };
        let places = m.currency().minor_digits().min(4);
        let text = m.amount().round_dp(places).abs().to_string();
        let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
        let mut grouped = String::new();
        for (i, c) in int.chars().enumerate() {
            if i > 0 && (int.len() - i) % 3 == 0 {
                grouped.push(group);
            }
            grouped.push(c);
        }
        let sign = if m.is_negative() { "-" } else { "" };
        let frac = format!("{frac:0<width$}", width = places as usize);
        let sep = if places > 0 {
            point.to_string()
        } else {
            String::new()
        };
        format!("{sign}{grouped}{sep}{frac} {}", m.currency().code())
    }

    fn number(self, v: Decimal) -> String {
        let text = v.normalize().to_string();
        match self {
            Self::Romanian => text.replace('.', ","),
            Self::English => text,
        }
    }

    fn date(self, d: NaiveDate) -> String {
        match self {
            Self::Romanian => d.format("%d.%m.%Y").to_string(),
            Self::English => d.format("%Y-%m-%d").to_string(),
        }
    }

    fn labels(self) -> Labels {
        let ro = self == Self::Romanian;
        let pick = |r: &'static str, e: &'static str| if ro { r } else { e };
        Labels {
            quotation: pick("Ofertă", "Quotation"),
            issued_on: pick("Data", "Date"),
            valid_until: pick("Valabilă până la", "Valid until"),
            to: pick("Către", "To"),
            no: pick("Nr.", "No."),
            description: pick("Descriere", "Description"),
            quantity: pick("Cant.", "Qty"),
            unit: pick("U.M.", "Unit"),
            unit_price: pick("Preț unitar", "Unit price"),
            discount: pick("Reducere", "Discount"),
            tax: pick("TVA", "Tax"),
            net: pick("Valoare", "Amount"),
            tax_rate: pick("Cota TVA", "Tax rate"),
            base: pick("Bază", "Base"),
            tax_amount: pick("TVA", "Tax"),
            net_total: pick("Total fără TVA", "Net total"),
            tax_total: pick("Total TVA", "Tax total"),
            total: pick("Total de plată", "Total"),
            in_words: pick("Adică", "In words"),
            terms: pick("Condiții", "Terms"),
            page: pick("Pagina", "Page"),
        }
    }
}

#[derive(Serialize)]
struct Labels {
    quotation: &'static str,
    issued_on: &'static str,
    valid_until: &'static str,
    to: &'static str,
    no: &'static str,
    description: &'static str,
    quantity: &'static str,
    unit: &'static str,
    unit_price: &'static str,
    discount: &'static str,
    tax: &'static str,
    net: &'static str,
    tax_rate: &'static str,
    base: &'static str,
    tax_amount: &'static str,
    net_total: &'static str,
    tax_total: &'static str,
    total: &'static str,
    in_words: &'static str,
    terms: &'static str,
    page: &'static str,
}

/// A party's printed details: its name and the lines under it (address, tax id, trade register, bank account).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Party {
    /// The name.
    pub name: String,
    /// The lines printed under the name.
    pub lines: Vec<String>,
}

impl Party {
    /// A party with a name and no lines.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            lines: Vec::new(),
        }
    }

    /// Adds a line.
    pub fn line(mut self, line: &str) -> Self {
        self.lines.push(line.into());
        self
    }
}

#[derive(Serialize)]
struct LineData {
    description: String,
    quantity: String,
    unit: String,
    unit_price: String,
    discount: String,
    tax: String,
    net: String,
}

#[derive(Serialize)]
struct TaxData {
    label: String,
    base: String,
    tax: String,
}

#[derive(Serialize)]
struct QuotationData<'a> {
    title: String,
    lang: &'static str,
    labels: Labels,
    number: String,
    issued_on: String,
    valid_until: String,
    company: &'a Party,
    partner: &'a Party,
    lines: Vec<LineData>,
    taxes: Vec<TaxData>,
    net: String,
    tax: String,
    total: String,
    total_in_words: Option<&'a str>,
    terms: Option<&'a str>,
}

/// The fonts every render uses, parsed once per process.
struct Fonts {
    book: LazyHash<FontBook>,
    fonts: Vec<Font>,
}

fn fonts() -> &'static Fonts {
    static FONTS: OnceLock<Fonts> = OnceLock::new();
    FONTS.get_or_init(|| {
        let fonts: Vec<Font> = typst_assets::fonts()
            .flat_map(|data| Font::iter(Bytes::new(data)))
            .collect();
        Fonts {
            book: LazyHash::new(FontBook::from_fonts(&fonts)),
            fonts,
        }
    })
}

fn library() -> &'static LazyHash<Library> {
    static LIBRARY: OnceLock<LazyHash<Library>> = OnceLock::new();
    LIBRARY.get_or_init(|| LazyHash::new(Library::builder().build()))
}

fn file_id(path: &str) -> FileId {
    let vpath = VirtualPath::new(path).expect("a valid virtual path");
    RootedPath::new(VirtualRoot::Project, vpath).intern()
}

/// The world one render sees: the template as `main.typ`, the data as `data.json`, the embedded fonts, and a
/// fixed "today" (the quotation's issue day), so the same input always gives the same document.
struct RenderWorld {
    main: Source,
    data: Bytes,
    data_id: FileId,
    today: NaiveDate,
}

impl World for RenderWorld {
    fn library(&self) -> &LazyHash<Library> {
        library()
    }

    fn book(&self) -> &LazyHash<FontBook> {
        &fonts().book
    }

    fn main(&self) -> FileId {
        self.main.id()
    }

    fn source(&self, id: FileId) -> FileResult<Source> {
        if id == self.main.id() {
            Ok(self.main.clone())
        } else {
            Err(FileError::AccessDenied)
        }
    }

    fn file(&self, id: FileId) -> FileResult<Bytes> {
        if id == self.data_id {
            Ok(self.data.clone())
        } else if id == self.main.id() {
            Ok(Bytes::from_string(self.main.text().to_string()))
        } else {
            Err(FileError::AccessDenied)
        }
    }

    fn font(&self, index: usize) -> Option<Font> {
        fonts().fonts.get(index).cloned()
    }

    fn today(&self, _offset: Option<typst::foundations::Duration>) -> Option<Datetime> {
        Datetime::from_ymd(
            self.today.year(),
            self.today.month() as u8,
            self.today.day() as u8,
        )
    }
}

/// Renders quotations to PDF from a Typst template.
#[derive(Debug, Clone)]
pub struct QuotationPdf {
    template: Arc<str>,
}

impl Default for QuotationPdf {
    fn default() -> Self {
        Self::new()
    }
}

impl QuotationPdf {
    /// The built-in template ([`QUOTATION_TEMPLATE`]).
    pub fn new() -> Self {
        Self::with_template(QUOTATION_TEMPLATE)
    }

    /// An organisation's own template: Typst source that reads `json("data.json")` (see the built-in one for the
    /// fields). It can read no other file.
    pub fn with_template(source: &str) -> Self {
        Self {
            template: source.into(),
        }
    }

    /// Renders `quotation` for `partner` on `company`'s letterhead in `language`.
    ///
    /// # Errors
    /// [`Error::Invalid`] on field `template` with Typst's messages when the template does not compile or export.
    pub fn render(
        &self,
        quotation: &Quotation,
        company: &Party,
        partner: &Party,
        language: Language,
    ) -> Result<Vec<u8>> {
        self.render_with(quotation, company, partner, language, None)
    }

    /// Like [`render`](Self::render), with the total written in words under the totals (the host writes it: the
    /// words of an amount depend on its language's grammar).
    ///
    /// # Errors
    /// As [`render`](Self::render).
    pub fn render_with(
        &self,
        quotation: &Quotation,
        company: &Party,
        partner: &Party,
        language: Language,
        total_in_words: Option<&str>,
    ) -> Result<Vec<u8>> {
        let l = language;
        let totals = quotation.totals();
        let data = QuotationData {
            title: format!("{} {}", l.labels().quotation, quotation.number()),
            lang: l.code(),
            labels: l.labels(),
            number: quotation.number().to_string(),
            issued_on: l.date(quotation.issued_on()),
            valid_until: l.date(quotation.valid_until()),
            company,
            partner,
            lines: quotation
                .lines()
                .iter()
                .map(|p| LineData {
                    description: p.line.description.clone(),
                    quantity: l.number(p.line.quantity),
                    unit: p.line.unit.clone(),
                    unit_price: l.money(&p.line.unit_price),
                    discount: if p.line.discount_percent.is_zero() {
                        String::new()
                    } else {
                        format!("{} %", l.number(p.line.discount_percent))
                    },
                    tax: format!("{} %", l.number(p.tax_percent)),
                    net: l.money(&p.net),
                })
                .collect(),
            taxes: totals
                .taxes
                .iter()
                .map(|t| TaxData {
                    label: t.label.clone(),
                    base: l.money(&t.base),
                    tax: l.money(&t.tax),
                })
                .collect(),
            net: l.money(&totals.net),
            tax: l.money(&totals.tax),
            total: l.money(&totals.total),
            total_in_words,
            terms: quotation.terms(),
        };
        let json =
            serde_json::to_vec(&data).map_err(|e| Error::invalid("quotation", e.to_string()))?;
        let world = RenderWorld {
            main: Source::new(file_id("/main.typ"), self.template.to_string()),
            data: Bytes::new(json),
            data_id: file_id("/data.json"),
            today: quotation.issued_on(),
        };
        let document: PagedDocument = typst::compile(&world)
            .output
            .map_err(|errors| template_error(&errors))?;
        typst_pdf::pdf(&document, &typst_pdf::PdfOptions::default())
            .map_err(|errors| template_error(&errors))
    }
}

fn template_error(errors: &[typst::diag::SourceDiagnostic]) -> Error {
    let messages: Vec<String> = errors.iter().map(|e| e.message.to_string()).collect();
    Error::invalid("template", messages.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_core::money::Currency;

    #[test]
    fn amounts_are_written_the_way_each_language_writes_them() {
        let ron = |a: &str| Money::parse(a, "RON").unwrap();
        assert_eq!(
            Language::Romanian.money(&ron("1234567.5")),
            "1.234.567,50 RON"
        );
        assert_eq!(
            Language::English.money(&ron("1234567.5")),
            "1,234,567.50 RON"
        );
        assert_eq!(Language::Romanian.money(&ron("-12")), "-12,00 RON");
        assert_eq!(Language::Romanian.money(&ron("999")), "999,00 RON");
        let jpy = Money::new(Decimal::from(1500), Currency::parse("JPY").unwrap()).unwrap();
        assert_eq!(Language::English.money(&jpy), "1,500 JPY");
        assert_eq!(Language::Romanian.number(Decimal::new(25, 1)), "2,5");
    }
}
