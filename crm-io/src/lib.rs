//! CSV and JSON import and export for the CRM engine.
//!
//! - [`import_csv`] reads a CSV file of [`Table::Partners`] (with a contact and a location per row),
//!   [`Table::Contacts`] or [`Table::Leads`] as a stream: the encoding found (UTF-8, a byte-order mark, else
//!   Windows-1250) and decoded on the fly, the delimiter found from the header line, columns mapped to fields by a
//!   [`Mapping`] (by header name), rows handed to the engine's import in batches (one transaction each), refused
//!   rows written to a CSV of rejects with their line, column and reason, progress reported after each batch. A dry
//!   run ([`ImportMode::DryRun`](crm_core::service::ImportMode)) reports every row's outcome and the duplicates new
//!   partners would have, writing nothing. Imports are repeatable: the same file twice changes nothing.
//! - [`export`] writes partners, contacts, leads (filtered by a [`LeadQuery`](crm_core::store::LeadQuery)) or the
//!   activity log as CSV (cells that a spreadsheet would run as a formula are escaped) or JSON Lines, page by page.
//! - [`access_request`] writes everything the engine holds about a person (a partner, or one contact of it) as one
//!   JSON document: the answer to a data-subject access request.
//! - The `crm` command-line tool (feature `cli`) runs both on an SQLite file or a PostgreSQL database.
//!
//! This crate is apart from `crm-core` (which does no I/O) and from the facade so that a host that never imports
//! files does not build the CSV and encoding crates; the facade re-exports it as `crm::io`.

mod access;
mod export;
mod import;
mod source;

pub use access::{access_request, AccessSummary, Person};
pub use crm_core::commerce::DocumentFilter;
pub use export::{export, export_documents, Export, Format};
pub use import::{
    import_csv, Field, ImportOptions, ImportReport, Mapping, Progress, Sinks, Table,
    CONTACT_FIELDS, LEAD_FIELDS, PARTNER_FIELDS,
};
pub use source::Encoding;

use std::borrow::Cow;

/// What can go wrong in an import or export as a whole (a refused row is not an error: it is reported).
#[derive(Debug, thiserror::Error)]
pub enum IoError {
    /// The file's columns do not fit the table: a required field without a column, or a mapping naming a field
    /// or a header that is not there.
    #[error("column for `{field}`: {reason}")]
    Column {
        /// The field.
        field: String,
        /// Why.
        reason: String,
    },
    /// An option out of range.
    #[error("option `{name}`: {reason}")]
    Option {
        /// The option.
        name: &'static str,
        /// Why.
        reason: String,
    },
    /// The input cannot be read, or an output written.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The engine failed (the store): the batch being written is not written.
    #[error(transparent)]
    Engine(#[from] crm_core::Error),
}

/// A cell as a spreadsheet may safely open it: one starting with `=`, `+`, `-`, `@`, a tab or a carriage return
/// (which Excel, LibreOffice and Google Sheets run as a formula: `=cmd|' /C calc'!A0`) gets a leading `'`.
///
/// ```
/// assert_eq!(crm_io::escape_cell("=cmd|' /C calc'!A0"), "'=cmd|' /C calc'!A0");
/// assert_eq!(crm_io::escape_cell("Acme SRL"), "Acme SRL");
/// assert_eq!(crm_io::escape_cell("-12.50"), "-12.50");
/// ```
///
/// A number (`-12.50`) stays as it is, so amounts keep their sign; a phone number starting with `+` is escaped.
pub fn escape_cell(cell: &str) -> Cow<'_, str> {
    let risky = cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let number = cell.parse::<rust_decimal::Decimal>().is_ok();
    if risky && !number {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}
