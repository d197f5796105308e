//! CSV import: a file's columns mapped to a table's fields, read as a stream in batches through the engine's
//! import ([`CrmService::import_partners`] and its siblings).

use crate::source::{decoded, Encoding};
use crate::{escape_cell, IoError};
use crm_core::actor::Context;
use crm_core::error::Error;
use crm_core::lead::{LeadPartner, NewLead, Priority};
use crm_core::money::Money;
use crm_core::partner::{
    Industry, LocationKind, NewContact, NewLocation, NewPartner, PartnerKind, PartnerRole, Turnover,
};
use crm_core::pipeline::Pipeline;
use crm_core::service::{ContactRow, CrmService, ImportMode, ImportRow, Imported, RowOutcome};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::io::{BufReader, Read, Write};

/// What a file to import holds, one record per row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Table {
    /// Partners, each with at most one contact and one location ([`PARTNER_FIELDS`]).
    Partners,
    /// Contacts of partners named by their reference ([`CONTACT_FIELDS`]).
    Contacts,
    /// Leads, with the partner they are for ([`LEAD_FIELDS`]).
    Leads,
}

impl Table {
    /// Parses `partners`, `contacts` or `leads`.
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "partners" => Some(Self::Partners),
            "contacts" => Some(Self::Contacts),
            "leads" => Some(Self::Leads),
            _ => None,
        }
    }

    /// The table's fields.
    pub fn fields(self) -> &'static [Field] {
        match self {
            Self::Partners => PARTNER_FIELDS,
            Self::Contacts => CONTACT_FIELDS,
            Self::Leads => LEAD_FIELDS,
        }
    }
}

/// A field a column can be mapped to.
#[derive(Debug)]
pub struct Field {
    /// Its name (and the header a column has by default).
    pub name: &'static str,
    /// Whether every file must have it.
    pub required: bool,
    /// What it holds.
    pub about: &'static str,
    /// The fields the engine's errors name for it (`contacts[0].email` for `email`).
    engine: &'static [&'static str],
}

macro_rules! fields {
    ($($name:literal $(= $req:literal)?: $about:literal $([$($engine:literal),*])?;)*) => {
        &[$(Field {
            name: $name,
            required: false $(|| $req)?,
            about: $about,
            engine: &[$($($engine),*)?],
        }),*]
    };
}

/// The fields of [`Table::Partners`].
pub const PARTNER_FIELDS: &[Field] = fields! {
    "ref" = true: "the host's code of the partner (makes the import repeatable)" ["host_ref"];
    "name" = true: "the partner's name" ["name"];
    "kind": "company (default) or person" [];
    "roles": "customer, vendor, employee, prospect; several separated by `;`" ["roles"];
    "tax_id": "tax id" ["tax_id"];
    "website": "web site" ["website"];
    "industry": "field of activity" ["industry.name"];
    "industry_code": "its code (NACE, CAEN)" ["industry.code"];
    "group": "reporting group" ["group"];
    "tags": "tags separated by `;`" ["tags"];
    "turnover": "turnover amount" ["turnover.amount"];
    "turnover_currency": "its ISO 4217 currency" [];
    "turnover_year": "its financial year" ["turnover.year"];
    "contact_name": "the contact's name (the e-mail when empty)" ["contacts[0].name"];
    "contact_role": "the contact's role" ["contacts[0].role"];
    "email": "the contact's e-mail" ["contacts[0].email"];
    "phone": "the contact's phone" ["contacts[0].phone"];
    "contact_ref": "the host's code of the contact" ["contacts[0].host_ref"];
    "location_kind": "billing (default), delivery or site" [];
    "street": "street and number" ["locations[0].street"];
    "city": "city" ["locations[0].city"];
    "region": "region or county" ["locations[0].region"];
    "postal_code": "postal code" ["locations[0].postal_code"];
    "country": "ISO 3166-1 alpha-2 country (required with an address)" ["locations[0].country"];
};

/// The fields of [`Table::Contacts`].
pub const CONTACT_FIELDS: &[Field] = fields! {
    "partner_ref" = true: "the host's code of the contact's partner" ["partner_ref"];
    "name" = true: "the contact's name" ["contacts[0].name"];
    "role": "role" ["contacts[0].role"];
    "email": "e-mail" ["contacts[0].email"];
    "phone": "phone" ["contacts[0].phone"];
    "ref": "the host's code of the contact (makes the import repeatable)" ["contacts[0].host_ref"];
};

/// The fields of [`Table::Leads`].
pub const LEAD_FIELDS: &[Field] = fields! {
    "ref" = true: "the host's code of the lead (makes the import repeatable)" ["host_ref"];
    "title" = true: "the lead's title" ["title"];
    "partner_ref": "the host's code of the partner (found, else created)" [];
    "partner_name": "the partner's name (when it is created)" ["name"];
    "email": "the partner contact's e-mail" ["contacts[0].email"];
    "phone": "the partner contact's phone" ["contacts[0].phone"];
    "tax_id": "the partner's tax id" ["tax_id"];
    "description": "description" ["description"];
    "value": "expected revenue" ["expected_revenue"];
    "currency": "its ISO 4217 currency" [];
    "probability": "probability 0–100" ["probability"];
    "expected_close": "expected close date (YYYY-MM-DD)" ["expected_close"];
    "stage": "stage name in the default pipeline (the first stage when empty)" ["stage"];
    "source": "source" ["source.source"];
    "medium": "medium" ["source.medium"];
    "tags": "tags separated by `;`" ["tags"];
    "priority": "low, normal, high or urgent" [];
};

/// Which column holds each field: field name → header (a field not named here is read from the column with its
/// own name, if the file has one). Serialisable, so a host can keep a mapping per tenant and per file layout.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mapping {
    /// Field name → column header.
    #[serde(flatten)]
    pub columns: BTreeMap<String, String>,
}

impl Mapping {
    /// The setting key a mapping named `name` of `table` is kept under.
    fn key(table: Table, name: &str) -> String {
        let table = match table {
            Table::Partners => "partners",
            Table::Contacts => "contacts",
            Table::Leads => "leads",
        };
        format!("import.mapping.{table}.{name}")
    }

    /// Keeps this mapping as the tenant's mapping `name` for `table` (a tenant setting), for the next file of the
    /// same layout.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use crm_core::{actor::Context, conformance::model::MemStore, id::{TenantId, UserId}, service::CrmService};
    /// # futures::executor::block_on(async {
    /// # let crm = CrmService::builder().store(Arc::new(MemStore::new())).build().unwrap();
    /// # let ctx = Context::user(TenantId::new(), UserId::new());
    /// use crm_io::{Mapping, Table};
    /// let erp = Mapping::default().with("ref", "Cod").with("name", "Denumire");
    /// erp.save(&crm, &ctx, Table::Partners, "erp").await.unwrap();
    /// assert_eq!(Mapping::load(&crm, ctx.tenant, Table::Partners, "erp").await.unwrap(), Some(erp));
    /// assert_eq!(Mapping::load(&crm, ctx.tenant, Table::Leads, "erp").await.unwrap(), None);
    /// # });
    /// ```
    ///
    /// # Errors
    ///
    /// [`IoError::Column`] when the mapping names a field `table` does not have; [`IoError::Engine`] with
    /// [`Error::Invalid`] on `key` when `name` is not 1 to 40 characters of `a-z`, `0-9`, `.`, `_`, `-`, or when
    /// the store fails.
    pub async fn save(
        &self,
        crm: &CrmService,
        ctx: &Context,
        table: Table,
        name: &str,
    ) -> Result<(), IoError> {
        self.check(table)?;
        let value = serde_json::to_value(self).map_err(|e| IoError::Io(e.into()))?;
        crm.put_setting(ctx, &Self::key(table, name), value).await?;
        Ok(())
    }

    /// The tenant's mapping `name` for `table`, if one was saved.
    ///
    /// # Errors
    ///
    /// [`IoError::Engine`] when the name cannot be a key or the store fails; [`IoError::Io`] when what is stored
    /// is not a mapping.
    pub async fn load(
        crm: &CrmService,
        tenant: crm_core::id::TenantId,
        table: Table,
        name: &str,
    ) -> Result<Option<Self>, IoError> {
        let Some(value) = crm.setting(tenant, &Self::key(table, name)).await? else {
            return Ok(None);
        };
        serde_json::from_value(value)
            .map(Some)
            .map_err(|e| IoError::Io(e.into()))
    }

    /// Refuses a field `table` does not have.
    fn check(&self, table: Table) -> Result<(), IoError> {
        let fields = table.fields();
        if let Some(unknown) = self
            .columns
            .keys()
            .find(|k| !fields.iter().any(|f| f.name == k.as_str()))
        {
            let known: Vec<&str> = fields.iter().map(|f| f.name).collect();
            let reason = format!(
                "not a field of {table:?}; the fields are {}",
                known.join(", ")
            );
            return Err(IoError::Column {
                field: unknown.clone(),
                reason,
            });
        }
        Ok(())
    }

    /// Maps `field` to the column headed `header`.
    pub fn with(mut self, field: &str, header: &str) -> Self {
        self.columns.insert(field.into(), header.into());
        self
    }
}

/// How to import a file.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// What the file holds.
    pub table: Table,
    /// Columns to fields.
    pub mapping: Mapping,
    /// Write, or only check.
    pub mode: ImportMode,
    /// Rows per batch (each batch is one transaction); 1 to 10 000.
    pub batch: usize,
    /// The delimiter; found from the header line when `None`.
    pub delimiter: Option<u8>,
    /// The text encoding.
    pub encoding: Encoding,
    /// The longest cell accepted, in bytes (a longer one fails its row).
    pub max_cell: usize,
}

impl ImportOptions {
    /// Committing `table`, columns named like the fields, batches of 1 000, delimiter and encoding found.
    pub fn new(table: Table) -> Self {
        Self {
            table,
            mapping: Mapping::default(),
            mode: ImportMode::Commit,
            batch: 1000,
            delimiter: None,
            encoding: Encoding::Auto,
            max_cell: 64 * 1024,
        }
    }
}

/// Counts of an import so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Progress {
    /// Rows read.
    pub rows: u64,
    /// Bytes of text read.
    pub bytes: u64,
    /// Records created (or, in a dry run, that would be).
    pub created: u64,
    /// Records changed.
    pub updated: u64,
    /// Records the row matched exactly.
    pub unchanged: u64,
    /// Rows refused.
    pub failed: u64,
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// The totals.
    pub totals: Progress,
    /// The encoding the file was read in.
    pub encoding: &'static str,
    /// The delimiter used.
    pub delimiter: char,
    /// Whether it was a dry run.
    pub dry_run: bool,
}

/// Where an import writes what it found besides the store.
#[derive(Default)]
pub struct Sinks<'a> {
    /// The refused rows as CSV: `line`, `column`, `reason`, then the row's own cells under the file's headers
    /// (fix them and import this file again).
    pub rejects: Option<&'a mut dyn Write>,
    /// Every row's outcome as CSV: `line`, `outcome`, `id`, `detail`, `duplicates`.
    pub outcomes: Option<&'a mut dyn Write>,
}

impl std::fmt::Debug for Sinks<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sinks")
            .field("rejects", &self.rejects.is_some())
            .field("outcomes", &self.outcomes.is_some())
            .finish()
    }
}

/// A row's cells by field.
struct Cells<'r> {
    cells: &'r [String],
    index: &'r HashMap<&'static str, usize>,
}

impl Cells<'_> {
    /// The trimmed cell of `field`; `None` when the file has no such column or the cell is empty.
    fn get(&self, field: &str) -> Option<&str> {
        let i = *self.index.get(field)?;
        let v = self.cells.get(i)?.trim();
        // The escape an export puts before a formula-like cell comes off again (see `escape_cell`).
        let v = match v.strip_prefix('\'') {
            Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r']) => rest,
            _ => v,
        };
        (!v.is_empty()).then_some(v)
    }

    fn owned(&self, field: &str) -> Option<String> {
        self.get(field).map(str::to_string)
    }

    /// Whether any of `fields` has a value.
    fn any(&self, fields: &[&str]) -> bool {
        fields.iter().any(|f| self.get(f).is_some())
    }

    /// A list separated by `;` (or `,`).
    fn list(&self, field: &str) -> Vec<String> {
        self.get(field)
            .map(|v| {
                v.split([';', ','])
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn bad(field: &str, reason: impl Into<String>) -> Error {
    Error::invalid(field, reason)
}

fn partner_row(c: &Cells<'_>) -> Result<NewPartner, Error> {
    let mut p = NewPartner::company(c.get("name").unwrap_or_default());
    p.kind = match c.get("kind").map(str::to_ascii_lowercase).as_deref() {
        None | Some("company") => PartnerKind::Company,
        Some("person") => PartnerKind::Person,
        Some(other) => return Err(bad("kind", format!("`{other}` is not company or person"))),
    };
    p.host_ref = c.owned("ref");
    for r in c.list("roles") {
        let role = match r.to_ascii_lowercase().as_str() {
            "customer" | "client" => PartnerRole::Customer,
            "vendor" | "supplier" | "furnizor" => PartnerRole::Vendor,
            "employee" | "angajat" => PartnerRole::Employee,
            "prospect" => PartnerRole::Prospect,
            _ => {
                return Err(bad(
                    "roles",
                    format!("`{r}` is not customer, vendor, employee or prospect"),
                ))
            }
        };
        p.roles.insert(role);
    }
    p.tax_id = c.owned("tax_id");
    p.website = c.owned("website");
    p.group = c.owned("group");
    p.tags = c.list("tags").into_iter().collect();
    p.industry = c.get("industry").map(|name| Industry {
        name: name.into(),
        code: c.owned("industry_code"),
    });
    if let Some(amount) = c.get("turnover") {
        let ccy = c
            .get("turnover_currency")
            .ok_or_else(|| bad("turnover_currency", "required with a turnover"))?;
        let amount = Money::parse(amount, ccy).map_err(|e| match e.field() {
            Some("currency") => bad("turnover_currency", reason(&e)),
            _ => bad("turnover", reason(&e)),
        })?;
        let year = c
            .get("turnover_year")
            .ok_or_else(|| bad("turnover_year", "required with a turnover"))?;
        let year = year
            .parse()
            .map_err(|_| bad("turnover_year", format!("`{year}` is not a year")))?;
        p.turnover = Some(Turnover { amount, year });
    }
    if c.any(&[
        "contact_name",
        "email",
        "phone",
        "contact_ref",
        "contact_role",
    ]) {
        let name = c
            .get("contact_name")
            .or(c.get("email"))
            .or(c.get("phone"))
            .unwrap_or_default();
        p.contacts.push(NewContact {
            name: name.into(),
            role: c.owned("contact_role"),
            email: c.owned("email"),
            phone: c.owned("phone"),
            host_ref: c.owned("contact_ref"),
        });
    }
    if c.any(&["street", "city", "region", "postal_code", "country"]) {
        let kind = match c
            .get("location_kind")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("billing") => LocationKind::Billing,
            Some("delivery") => LocationKind::Delivery,
            Some("site") => LocationKind::Site,
            Some(other) => {
                return Err(bad(
                    "location_kind",
                    format!("`{other}` is not billing, delivery or site"),
                ))
            }
        };
        p.locations.push(NewLocation {
            kind,
            street: c.owned("street"),
            city: c.owned("city"),
            region: c.owned("region"),
            postal_code: c.owned("postal_code"),
            country: c.owned("country").unwrap_or_default(),
        });
    }
    Ok(p)
}

fn contact_row(c: &Cells<'_>) -> ContactRow {
    ContactRow {
        partner_ref: c.owned("partner_ref").unwrap_or_default(),
        contact: NewContact {
            name: c.owned("name").unwrap_or_default(),
            role: c.owned("role"),
            email: c.owned("email"),
            phone: c.owned("phone"),
            host_ref: c.owned("ref"),
        },
    }
}

fn lead_row(c: &Cells<'_>, pipeline: Option<&Pipeline>) -> Result<NewLead, Error> {
    let mut partner = NewPartner::company(c.get("partner_name").unwrap_or_default());
    partner.host_ref = c.owned("partner_ref");
    partner.tax_id = c.owned("tax_id");
    if c.any(&["email", "phone"]) {
        let name = c.get("email").or(c.get("phone")).unwrap_or_default();
        partner = partner.with_contact(name, c.get("email"), c.get("phone"));
    }
    if partner.host_ref.is_none() && partner.name.is_empty() {
        return Err(bad(
            "partner_name",
            "a lead needs its partner: a partner_ref or a partner_name",
        ));
    }
    let mut lead = NewLead::new(
        LeadPartner::MatchOrCreate { partner },
        c.get("title").unwrap_or_default(),
    );
    lead.host_ref = c.owned("ref");
    lead.description = c.owned("description");
    if let Some(v) = c.get("value") {
        let ccy = c
            .get("currency")
            .ok_or_else(|| bad("currency", "required with a value"))?;
        lead.expected_revenue = Some(Money::parse(v, ccy).map_err(|e| match e.field() {
            Some("currency") => bad("currency", reason(&e)),
            _ => bad("value", reason(&e)),
        })?);
    }
    if let Some(p) = c.get("probability") {
        lead.probability = Some(
            p.parse()
                .map_err(|_| bad("probability", format!("`{p}` is not 0–100")))?,
        );
    }
    if let Some(d) = c.get("expected_close") {
        let day = chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d");
        lead.expected_close =
            Some(day.map_err(|_| bad("expected_close", format!("`{d}` is not YYYY-MM-DD")))?);
    }
    if let Some(s) = c.get("stage") {
        let stage = pipeline.and_then(|p| p.stage_named(s));
        lead.stage = Some(
            stage
                .ok_or_else(|| bad("stage", format!("no stage `{s}` in the default pipeline")))?
                .id,
        );
    }
    lead.source.source = c.owned("source");
    lead.source.medium = c.owned("medium");
    lead.tags = c.list("tags").into_iter().collect();
    lead.priority = match c.get("priority").map(str::to_ascii_lowercase).as_deref() {
        None | Some("normal") => Priority::Normal,
        Some("low") => Priority::Low,
        Some("high") => Priority::High,
        Some("urgent") => Priority::Urgent,
        Some(other) => {
            return Err(bad(
                "priority",
                format!("`{other}` is not low, normal, high or urgent"),
            ))
        }
    };
    Ok(lead)
}

/// An error's reason (an `Invalid`'s without its field).
fn reason(e: &Error) -> String {
    match e {
        Error::Invalid { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}

/// A row read: its line, cells, and the record (or why it has none).
struct RowRead {
    line: u64,
    cells: Vec<String>,
    record: Result<Parsed, (Option<String>, String)>,
}

enum Parsed {
    Partner(NewPartner),
    Contact(ContactRow),
    Lead(Box<NewLead>),
}

impl Parsed {
    /// The row's own reference (a second row with it is a duplicate in the file).
    fn code(&self) -> Option<&str> {
        match self {
            Parsed::Partner(p) => p.host_ref.as_deref(),
            Parsed::Contact(c) => c.contact.host_ref.as_deref(),
            Parsed::Lead(l) => l.host_ref.as_deref(),
        }
    }
}

/// A short stable hash of a reference (the duplicate check keeps 16 bytes per row, not the reference).
fn digest(code: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    code.trim().hash(&mut h);
    h.finish()
}

/// One outcome, whatever the record.
struct Done {
    line: u64,
    outcome: &'static str,
    id: String,
    detail: String,
    column: Option<String>,
    duplicates: String,
}

fn done<I: std::fmt::Display>(
    i: Imported<I>,
    column_of: &dyn Fn(&Error) -> Option<String>,
) -> Done {
    let duplicates = i
        .duplicates
        .iter()
        .map(|d| format!("{} ({})", d.partner, d.explain()))
        .collect::<Vec<_>>();
    let (outcome, id, detail, column) = match i.outcome {
        RowOutcome::Created(id) => ("created", id.to_string(), String::new(), None),
        RowOutcome::Updated(id, f) => ("updated", id.to_string(), f.join(";"), None),
        RowOutcome::Unchanged(id) => ("unchanged", id.to_string(), String::new(), None),
        RowOutcome::Failed(e) => ("failed", String::new(), reason(&e), column_of(&e)),
    };
    Done {
        line: i.line,
        outcome,
        id,
        detail,
        column,
        duplicates: duplicates.join("; "),
    }
}

/// Imports a CSV file: reads it as a stream (never more than one batch of rows in memory, and 16 bytes per row
/// for the duplicate check), hands each batch to the engine, writes the refused rows and every outcome to the
/// sinks, and calls `progress` after each batch.
///
/// A row is refused (and written to `rejects` with its line, column and reason) when a cell does not parse, is
/// longer than [`ImportOptions::max_cell`] or is not text in the file's encoding, when it has another number of
/// cells than the header (a quote left open), when an earlier row has its reference, or when the engine refuses it
/// (a typed error naming the field, mapped back to its column). The good rows of each batch commit together.
///
/// # Examples
///
/// ```
/// # use std::sync::Arc;
/// # use crm_core::{actor::Context, conformance::model::MemStore, id::{TenantId, UserId}, service::CrmService};
/// # futures::executor::block_on(async {
/// # let crm = CrmService::builder().store(Arc::new(MemStore::new())).build().unwrap();
/// # let ctx = Context::user(TenantId::new(), UserId::new());
/// use crm_io::{import_csv, ImportOptions, Sinks, Table};
/// let file = "ref;name;email\nC-1;Acme SRL;ana@acme.example\nC-2;;x@y.example\n";
/// let mut rejects = Vec::new();
/// let sinks = Sinks { rejects: Some(&mut rejects), outcomes: None };
/// let report = import_csv(&crm, &ctx, file.as_bytes(), &ImportOptions::new(Table::Partners), sinks, |_| {})
///     .await
///     .unwrap();
/// assert_eq!((report.totals.created, report.totals.failed, report.delimiter), (1, 1, ';'));
/// assert!(String::from_utf8(rejects).unwrap().contains("3,name,must not be empty"));
/// # });
/// ```
///
/// # Errors
///
/// [`IoError::Column`] when a required field has no column or the mapping names a field the table does not have
/// or a header the file does not have (the delimiter found is in the message: a wrong one shows as one column);
/// [`IoError::Io`] when the input cannot be read or a sink written; [`IoError::Engine`] when the store fails (the
/// batch being written is then not written at all; the earlier ones are).
pub async fn import_csv<R: Read>(
    crm: &CrmService,
    ctx: &Context,
    input: R,
    options: &ImportOptions,
    sinks: Sinks<'_>,
    mut progress: impl FnMut(&Progress),
) -> Result<ImportReport, IoError> {
    if !(1..=10_000).contains(&options.batch) {
        return Err(IoError::Option {
            name: "batch",
            reason: format!("{} is outside 1–10000", options.batch),
        });
    }
    let (text, encoding, sniffed) = decoded(input, &options.encoding)?;
    let text = BufReader::with_capacity(256 * 1024, text);
    let delimiter = options.delimiter.unwrap_or(sniffed);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .has_headers(false)
        .from_reader(text);
    let mut header = csv::ByteRecord::new();
    if !reader.read_byte_record(&mut header).map_err(csv_error)? {
        return Err(IoError::Column {
            field: "(header)".into(),
            reason: "the file is empty".into(),
        });
    }
    let headers: Vec<String> = header
        .iter()
        .map(|h| String::from_utf8_lossy(h).trim().to_string())
        .collect();
    let index = columns(options, &headers, delimiter)?;
    let fields = options.table.fields();
    let column_of = |e: &Error| -> Option<String> {
        let f = e.field()?;
        let field = fields
            .iter()
            .find(|d| d.name == f || d.engine.contains(&f))
            .map_or(f, |d| d.name);
        let header = options
            .mapping
            .columns
            .get(field)
            .map_or(field, String::as_str);
        Some(
            headers
                .iter()
                .find(|h| h.eq_ignore_ascii_case(header))
                .cloned()
                .unwrap_or_else(|| field.to_string()),
        )
    };
    let pipeline = match options.table {
        Table::Leads => crm.pipelines(ctx.tenant).await?.into_iter().next(),
        _ => None,
    };
    let mut rejects = sinks.rejects.map(CsvOut::new);
    let mut outcomes = sinks.outcomes.map(CsvOut::new);
    if let Some(w) = rejects.as_mut() {
        let head = ["line", "column", "reason"].into_iter().map(String::from);
        w.row(head.chain(headers.iter().cloned()))?;
    }
    if let Some(w) = outcomes.as_mut() {
        w.row(["line", "outcome", "id", "detail", "duplicates"].map(String::from))?;
    }
    let mut seen: HashMap<u64, u64> = HashMap::new();
    let mut totals = Progress::default();
    let mut record = csv::ByteRecord::new();
    let mut batch: Vec<RowRead> = Vec::with_capacity(options.batch);
    loop {
        let more = match reader.read_byte_record(&mut record) {
            Ok(more) => more,
            Err(e) => {
                // A record the reader cannot split: refused, and the reading goes on after it.
                let line = e.position().map_or(0, |p| p.line());
                batch.push(RowRead {
                    line,
                    cells: Vec::new(),
                    record: Err((None, e.to_string())),
                });
                true
            }
        };
        if more && !record.is_empty() {
            let line = record.position().map_or(0, |p| p.line());
            totals.bytes = record.position().map_or(totals.bytes, |p| p.byte());
            let row = read_row(
                &record,
                line,
                &headers,
                &index,
                options,
                pipeline.as_ref(),
                &mut seen,
            );
            batch.push(row);
        }
        if batch.len() >= options.batch || (!more && !batch.is_empty()) {
            let rows = std::mem::take(&mut batch);
            let done_rows = run_batch(crm, ctx, options, rows, &column_of).await?;
            for (d, cells) in done_rows {
                totals.rows += 1;
                match d.outcome {
                    "created" => totals.created += 1,
                    "updated" => totals.updated += 1,
                    "unchanged" => totals.unchanged += 1,
                    _ => totals.failed += 1,
                }
                write_outcome(&mut rejects, &mut outcomes, &d, cells)?;
            }
            progress(&totals);
        }
        if !more {
            break;
        }
    }
    for w in [rejects, outcomes].iter_mut().flatten() {
        w.flush()?;
    }
    Ok(ImportReport {
        totals,
        encoding,
        delimiter: char::from(delimiter),
        dry_run: options.mode == ImportMode::DryRun,
    })
}

/// Each field's column: the mapping's header, else the field's own name; a required field without one, or a
/// mapping naming what is not there, is an error.
fn columns(
    options: &ImportOptions,
    headers: &[String],
    delimiter: u8,
) -> Result<HashMap<&'static str, usize>, IoError> {
    let fields = options.table.fields();
    options.mapping.check(options.table)?;
    let mut index = HashMap::new();
    for f in fields {
        let mapped = options.mapping.columns.get(f.name);
        let header = mapped.map_or(f.name, String::as_str);
        match headers.iter().position(|h| h.eq_ignore_ascii_case(header)) {
            Some(i) => {
                index.insert(f.name, i);
            }
            None if f.required || mapped.is_some() => {
                let reason = format!(
                    "no column `{header}` among the {} read with delimiter `{}`: {}",
                    headers.len(),
                    char::from(delimiter).escape_default(),
                    headers.join(" | ")
                );
                return Err(IoError::Column {
                    field: f.name.into(),
                    reason,
                });
            }
            None => {}
        }
    }
    Ok(index)
}

/// Reads one record into a row: its cells as text, checked for length, and parsed.
fn read_row(
    record: &csv::ByteRecord,
    line: u64,
    headers: &[String],
    index: &HashMap<&'static str, usize>,
    options: &ImportOptions,
    pipeline: Option<&Pipeline>,
    seen: &mut HashMap<u64, u64>,
) -> RowRead {
    let fail = |cells: Vec<String>, column: Option<String>, reason: String| RowRead {
        line,
        cells,
        record: Err((column, reason)),
    };
    let mut cells = Vec::with_capacity(record.len());
    let mut problem = None;
    for (i, raw) in record.iter().enumerate() {
        let column = headers.get(i).cloned();
        if raw.len() > options.max_cell {
            problem.get_or_insert((
                column,
                format!(
                    "{} bytes, more than the {} a cell may have",
                    raw.len(),
                    options.max_cell
                ),
            ));
            cells.push(String::from_utf8_lossy(&raw[..options.max_cell.min(256)]).into_owned());
            continue;
        }
        match std::str::from_utf8(raw) {
            Ok(s) => cells.push(s.to_string()),
            Err(e) => {
                problem.get_or_insert((
                    column,
                    format!("not text in the file's encoding (byte {})", e.valid_up_to()),
                ));
                cells.push(String::from_utf8_lossy(raw).into_owned());
            }
        }
    }
    if let Some((column, reason)) = problem {
        return fail(cells, column, reason);
    }
    if cells.len() != headers.len() {
        let reason = format!(
            "{} cells where the header has {} (a quote left open, or a delimiter inside an unquoted cell?)",
            cells.len(),
            headers.len()
        );
        return fail(cells, None, reason);
    }
    let c = Cells {
        cells: &cells,
        index,
    };
    let parsed = match options.table {
        Table::Partners => partner_row(&c).map(Parsed::Partner),
        Table::Contacts => Ok(Parsed::Contact(contact_row(&c))),
        Table::Leads => lead_row(&c, pipeline).map(|l| Parsed::Lead(Box::new(l))),
    };
    let record = match parsed {
        Ok(p) => {
            if let Some(code) = p.code() {
                if let Some(first) = seen.get(&digest(code)) {
                    let field = "ref";
                    let header = options
                        .mapping
                        .columns
                        .get(field)
                        .cloned()
                        .unwrap_or_else(|| field.into());
                    return fail(
                        cells,
                        Some(header),
                        format!("line {first} has the same reference `{code}`"),
                    );
                }
                seen.insert(digest(code), line);
            }
            Ok(p)
        }
        Err(e) => {
            let field = e.field().unwrap_or_default().to_string();
            let header = options
                .mapping
                .columns
                .get(&field)
                .cloned()
                .unwrap_or(field);
            Err((Some(header), reason(&e)))
        }
    };
    RowRead {
        line,
        cells,
        record,
    }
}

/// Hands a batch's parsed rows to the engine; the outcomes of every row (refused ones included) in line order.
async fn run_batch(
    crm: &CrmService,
    ctx: &Context,
    options: &ImportOptions,
    rows: Vec<RowRead>,
    column_of: &dyn Fn(&Error) -> Option<String>,
) -> Result<Vec<(Done, Vec<String>)>, IoError> {
    let mut cells: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    let mut out: Vec<Done> = Vec::new();
    let (mut partners, mut contacts, mut leads) = (Vec::new(), Vec::new(), Vec::new());
    for r in rows {
        cells.insert(r.line, r.cells);
        match r.record {
            Err((column, detail)) => out.push(Done {
                line: r.line,
                outcome: "failed",
                id: String::new(),
                detail,
                column,
                duplicates: String::new(),
            }),
            Ok(Parsed::Partner(p)) => partners.push(ImportRow {
                line: r.line,
                record: p,
            }),
            Ok(Parsed::Contact(c)) => contacts.push(ImportRow {
                line: r.line,
                record: c,
            }),
            Ok(Parsed::Lead(l)) => leads.push(ImportRow {
                line: r.line,
                record: *l,
            }),
        }
    }
    let mode = options.mode;
    let done_all = |rows: Vec<Imported<_>>| rows.into_iter().map(|i| done(i, column_of));
    // A batch holds one table's rows: at most one of these calls the engine.
    if !partners.is_empty() {
        out.extend(done_all(crm.import_partners(ctx, partners, mode).await?));
    }
    if !contacts.is_empty() {
        out.extend(done_all(crm.import_contacts(ctx, contacts, mode).await?));
    }
    if !leads.is_empty() {
        let leads = crm.import_leads(ctx, leads, mode).await?;
        out.extend(leads.into_iter().map(|i| done(i, column_of)));
    }
    out.sort_by_key(|d| d.line);
    Ok(out
        .into_iter()
        .map(|d| {
            let c = cells.remove(&d.line).unwrap_or_default();
            (d, c)
        })
        .collect())
}

fn write_outcome(
    rejects: &mut Option<CsvOut<'_>>,
    outcomes: &mut Option<CsvOut<'_>>,
    d: &Done,
    cells: Vec<String>,
) -> Result<(), IoError> {
    if let Some(w) = outcomes.as_mut() {
        let detail = match &d.column {
            Some(c) => format!("{c}: {}", d.detail),
            None => d.detail.clone(),
        };
        let (line, id, dups) = (d.line.to_string(), d.id.clone(), d.duplicates.clone());
        w.row([line, d.outcome.into(), id, detail, dups])?;
    }
    if let (Some(w), "failed") = (rejects.as_mut(), d.outcome) {
        let head = [
            d.line.to_string(),
            d.column.clone().unwrap_or_default(),
            d.detail.clone(),
        ];
        w.row(head.into_iter().chain(cells))?;
    }
    Ok(())
}

/// A CSV output: one writer, and one buffer, for all its rows; cells escaped against formula injection
/// ([`escape_cell`]); rows may differ in length (a refused row that could not be split has no cells).
pub(crate) struct CsvOut<'a>(csv::Writer<&'a mut dyn Write>);

impl<'a> CsvOut<'a> {
    pub(crate) fn new(w: &'a mut dyn Write) -> Self {
        Self(csv::WriterBuilder::new().flexible(true).from_writer(w))
    }

    /// Writes one row.
    pub(crate) fn row(&mut self, cells: impl IntoIterator<Item = String>) -> Result<(), IoError> {
        let cells = cells.into_iter().map(|c| escape_cell(&c).into_owned());
        self.0.write_record(cells).map_err(csv_error)
    }

    /// Writes out what is buffered.
    pub(crate) fn flush(&mut self) -> Result<(), IoError> {
        self.0.flush()?;
        Ok(())
    }
}

fn csv_error(e: csv::Error) -> IoError {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => IoError::Io(e),
        other => IoError::Io(std::io::Error::other(format!("{other:?}"))),
    }
}
