//! Selling to a lead: the tenant's tax table and quotations (lines, taxes, totals, states and revisions).
//!
//! Pure like the rest of the domain: constructors validate and price, transitions return the new state, and the
//! service persists it.

pub mod quotation;
pub mod reference;
pub mod tax;

pub use quotation::{
    apply, price, revise, Answer, NewQuotation, PricedLine, Quotation, QuotationCommand,
    QuotationLine, QuotationNumber, QuotationStatus, QuotationTerms, QuotationTotals, TaxTotal,
};
pub use tax::{TaxRate, TaxTable};
