//! CSV import and export on an SQLite store, with every bad input the data-quality issue lists.

use crm_core::actor::Context;
use crm_core::id::{TenantId, UserId};
use crm_core::service::{CrmService, ImportMode};
use crm_core::store::{LeadQuery, StoreExt};
use crm_io::{
    export, import_csv, Encoding, Export, Format, ImportOptions, ImportReport, IoError, Mapping,
};
use crm_io::{Sinks, Table};
use crm_storage_sqlite::SqliteStore;
use std::sync::Arc;

struct Fixture {
    crm: CrmService,
    ctx: Context,
}

async fn fixture() -> Fixture {
    let store = SqliteStore::open_in_memory().expect("store");
    let crm = CrmService::builder()
        .store(Arc::new(store))
        .build()
        .expect("service");
    let ctx = Context::user(TenantId::new(), UserId::new());
    crm.setup_tenant(&ctx).await.expect("tenant");
    Fixture { crm, ctx }
}

/// An import's report, its rejects and its outcomes as text.
async fn run(
    f: &Fixture,
    bytes: &[u8],
    options: &ImportOptions,
) -> Result<(ImportReport, String, String), IoError> {
    let (mut rejects, mut outcomes) = (Vec::new(), Vec::new());
    let sinks = Sinks {
        rejects: Some(&mut rejects),
        outcomes: Some(&mut outcomes),
    };
    let report = import_csv(&f.crm, &f.ctx, bytes, options, sinks, |_| {}).await?;
    let text = |b: Vec<u8>| String::from_utf8(b).expect("utf-8");
    Ok((report, text(rejects), text(outcomes)))
}

/// Asserts that the rejects file has `row`.
fn has(rejects: &str, row: &str) {
    assert!(rejects.contains(row), "no `{row}` in:\n{rejects}");
}

/// Imports [`PARTNERS`].
async fn import_partners(f: &Fixture) {
    let options = ImportOptions::new(Table::Partners);
    run(f, PARTNERS.as_bytes(), &options)
        .await
        .expect("partners");
}

async fn partners(f: &Fixture) -> Vec<crm_core::partner::Partner> {
    f.crm
        .store()
        .partners_after(f.ctx.tenant, None, 1000)
        .await
        .expect("partners")
}

const PARTNERS: &str = "\
ref,name,roles,tax_id,email,phone,contact_ref,street,city,country,tags
C-1,Acme SRL,customer,RO 123 456 78,ana@acme.example,+40 721 234 567,P-1,Str. Lungă 1,Brașov,RO,vip;north
C-2,Globex SA,customer;vendor,,ion@globex.example,,P-2,,Cluj,RO,
C-3,,customer,,,,,,,,
C-4,Initech,boss,,,,,,,,
";

#[tokio::test]
async fn partners_import_once_and_again_changes_nothing() {
    let f = fixture().await;
    let options = ImportOptions::new(Table::Partners);
    let (report, rejects, _) = run(&f, PARTNERS.as_bytes(), &options)
        .await
        .expect("import");
    let t = report.totals;
    assert_eq!((t.rows, t.created, t.failed), (4, 2, 2), "{report:?}");
    assert_eq!((report.delimiter, report.encoding), (',', "UTF-8"));
    let lines: Vec<&str> = rejects.lines().collect();
    assert_eq!(
        lines[0],
        "line,column,reason,ref,name,roles,tax_id,email,phone,contact_ref,street,city,country,tags"
    );
    assert_eq!(lines[1], "4,name,must not be empty,C-3,,customer,,,,,,,,");
    assert!(
        lines[2].starts_with("5,roles,\"`boss` is not customer"),
        "{rejects}"
    );
    let (acme, ana) = f
        .crm
        .contact_by_ref(f.ctx.tenant, "P-1")
        .await
        .expect("contact");
    assert_eq!(
        (acme.host_ref(), ana.phone.as_deref()),
        (Some("C-1"), Some("+40 721 234 567"))
    );
    assert_eq!(acme.locations()[0].city.as_deref(), Some("Brașov"));
    assert_eq!(acme.tags().len(), 2);
    let before = partners(&f).await;
    let (again, _, outcomes) = run(&f, PARTNERS.as_bytes(), &options).await.expect("again");
    assert_eq!(
        (
            again.totals.unchanged,
            again.totals.created,
            again.totals.updated
        ),
        (2, 0, 0)
    );
    assert!(
        outcomes
            .lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("2,unchanged,")),
        "{outcomes}"
    );
    assert_eq!(
        partners(&f).await,
        before,
        "the same file twice changes nothing"
    );
}

#[tokio::test]
async fn a_dry_run_writes_nothing_and_reports_duplicates() {
    let f = fixture().await;
    import_partners(&f).await;
    let file = "ref,name,email\nC-9,ACME S.R.L.,sales@acme.example\nC-10,New One,\n";
    let mut options = ImportOptions::new(Table::Partners);
    options.mode = ImportMode::DryRun;
    let (report, _, outcomes) = run(&f, file.as_bytes(), &options).await.expect("dry run");
    assert!(report.dry_run);
    assert_eq!(report.totals.created, 2);
    let acme = f
        .crm
        .partner_by_ref(f.ctx.tenant, "C-1")
        .await
        .expect("acme");
    let row = outcomes.lines().nth(1).expect("row");
    assert!(
        row.contains(&acme.id().to_string()) && row.contains("same name acme"),
        "{outcomes}"
    );
    assert!(
        f.crm.partner_by_ref(f.ctx.tenant, "C-9").await.is_err(),
        "nothing written"
    );
    assert_eq!(partners(&f).await.len(), 2);
}

#[tokio::test]
async fn a_mapping_names_the_columns_and_windows_1250_is_read() {
    let f = fixture().await;
    // Exported from a Romanian spreadsheet: semicolons, Windows-1250 (ş is 0xBA, ă is 0xE3).
    let file = b"Cod;Denumire;Localitate;Tara\nC-1;Fabrica de Mobil\xe3 Bra\xbaov;Bra\xbaov;RO\n";
    let mut options = ImportOptions::new(Table::Partners);
    options.mapping = Mapping::default()
        .with("ref", "Cod")
        .with("name", "Denumire")
        .with("city", "Localitate")
        .with("country", "Tara");
    let (report, rejects, _) = run(&f, file, &options).await.expect("import");
    assert_eq!(
        (report.totals.created, report.encoding, report.delimiter),
        (1, "windows-1250", ';'),
        "{rejects}"
    );
    let p = f
        .crm
        .partner_by_ref(f.ctx.tenant, "C-1")
        .await
        .expect("imported");
    assert_eq!(p.name(), "Fabrica de Mobilă Braşov");
    // Read as UTF-8 on purpose, the same bytes are refused row by row, naming the column.
    options.encoding = Encoding::Utf8;
    let (report, rejects, _) = run(&f, file, &options).await.expect("read");
    assert_eq!(report.totals.failed, 1);
    has(&rejects, "2,Denumire,not text in the file's encoding");
}

#[tokio::test]
async fn a_missing_column_a_wrong_delimiter_and_a_bad_mapping_are_refused_whole() {
    let f = fixture().await;
    let options = ImportOptions::new(Table::Partners);
    let e = run(&f, b"ref,city\nC-1,Cluj\n", &options)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, IoError::Column { field, .. } if field == "name"),
        "{e}"
    );
    let mut forced = ImportOptions::new(Table::Partners);
    forced.delimiter = Some(b',');
    let e = run(&f, b"ref;name\nC-1;Acme\n", &forced).await.unwrap_err();
    assert!(
        e.to_string().contains("delimiter `,`") && e.to_string().contains("ref;name"),
        "{e}"
    );
    let mut mapped = ImportOptions::new(Table::Partners);
    mapped.mapping = Mapping::default().with("colour", "Culoare");
    let e = run(&f, b"ref,name\n", &mapped).await.unwrap_err();
    assert!(
        matches!(&e, IoError::Column { field, .. } if field == "colour"),
        "{e}"
    );
    let e = run(&f, b"", &options).await.unwrap_err();
    assert!(matches!(e, IoError::Column { .. }), "{e}");
    let mut batch = ImportOptions::new(Table::Partners);
    batch.batch = 0;
    assert!(matches!(
        run(&f, b"ref,name\n", &batch).await.unwrap_err(),
        IoError::Option { name: "batch", .. }
    ));
    assert!(partners(&f).await.is_empty());
}

#[tokio::test]
async fn broken_quotes_a_huge_cell_and_a_repeated_reference_fail_their_rows_only() {
    let f = fixture().await;
    let huge = "x".repeat(10 * 1024 * 1024);
    let file = format!(
        "ref,name,city,country\nC-1,Acme,Cluj,RO\nC-2,{huge},Cluj,RO\nC-1,Acme again,Iași,RO\nC-3,Good,Iași,RO\nC-4,\"Open quote,Cluj,RO\nC-5,Lost,Cluj,RO\n"
    );
    let mut options = ImportOptions::new(Table::Partners);
    options.batch = 1; // the repeated reference is in another batch than the first
    let (report, rejects, _) = run(&f, file.as_bytes(), &options).await.expect("import");
    let t = report.totals;
    assert_eq!(
        (t.created, t.failed),
        (2, 3),
        "{report:?}\n{}",
        &rejects[..rejects.len().min(2000)]
    );
    let lines: Vec<&str> = rejects.lines().collect();
    assert!(
        lines[1].starts_with("3,name,\"10485760 bytes, more than the 65536 a cell may have\""),
        "{}",
        &lines[1][..100]
    );
    assert!(lines[1].len() < 1000, "the rejects file keeps a cut cell");
    assert!(
        lines[2].starts_with("4,ref,line 2 has the same reference `C-1`"),
        "{}",
        lines[2]
    );
    // The open quote swallows the rest of the file into one cell: that row is refused, the rows before it stay.
    assert!(
        lines[3].starts_with("6,,\"2 cells where the header has 4"),
        "{}",
        lines[3]
    );
    let names: Vec<String> = partners(&f)
        .await
        .iter()
        .map(|p| p.name().to_string())
        .collect();
    assert_eq!(names, ["Acme", "Good"]);
}

#[tokio::test]
async fn contacts_and_leads_import_by_their_references() {
    let f = fixture().await;
    import_partners(&f).await;
    let contacts = "partner_ref,name,email,ref\nC-1,Maria Pop,maria@acme.example,P-7\nC-404,Nobody,,P-8\nC-1,Maria Popescu,,P-7\n";
    let (report, rejects, _) = run(
        &f,
        contacts.as_bytes(),
        &ImportOptions::new(Table::Contacts),
    )
    .await
    .expect("contacts");
    assert_eq!(
        (report.totals.updated, report.totals.failed),
        (1, 2),
        "{rejects}"
    );
    has(
        &rejects,
        "3,partner_ref,no partner has the reference `C-404`",
    );
    has(&rejects, "4,ref,line 2 has the same reference `P-7`");
    let (_, maria) = f
        .crm
        .contact_by_ref(f.ctx.tenant, "P-7")
        .await
        .expect("maria");
    assert_eq!(maria.email.as_deref(), Some("maria@acme.example"));
    let leads = "\
ref,title,partner_ref,partner_name,value,currency,stage,expected_close,tags
OPP-1,Forklifts,C-1,,25000,EUR,Offer,2026-06-30,big
OPP-2,Pallets,C-77,Newco SRL,abc,EUR,,,
OPP-3,Racks,C-77,Newco SRL,900,RON,Nowhere,,
OPP-4,Shelves,C-77,Newco SRL,1200.50,RON,,2026-13-01,
OPP-5,Bins,C-78,Binco SRL,10,RON,,,
";
    let (report, rejects, _) = run(&f, leads.as_bytes(), &ImportOptions::new(Table::Leads))
        .await
        .expect("leads");
    assert_eq!(
        (report.totals.created, report.totals.failed),
        (2, 3),
        "{rejects}"
    );
    has(&rejects, "3,value,`abc` is not a decimal number");
    has(&rejects, "4,stage,no stage `Nowhere`");
    has(&rejects, "5,expected_close,`2026-13-01` is not YYYY-MM-DD");
    let opp = f
        .crm
        .lead_by_ref(f.ctx.tenant, "OPP-1")
        .await
        .expect("lead");
    let acme = f
        .crm
        .partner_by_ref(f.ctx.tenant, "C-1")
        .await
        .expect("acme");
    assert_eq!(opp.partner(), acme.id());
    assert_eq!(
        f.crm
            .partner_by_ref(f.ctx.tenant, "C-78")
            .await
            .expect("created")
            .name(),
        "Binco SRL"
    );
    let (again, _, _) = run(&f, leads.as_bytes(), &ImportOptions::new(Table::Leads))
        .await
        .expect("again");
    assert_eq!((again.totals.unchanged, again.totals.created), (2, 0));
}

#[tokio::test]
async fn exports_escape_formulas_and_import_again_elsewhere() {
    let f = fixture().await;
    let file = "ref,name,email,phone,city,country\nC-1,=cmd|' /C calc'!A0,ana@acme.example,+40 721 234 567,Cluj,RO\nC-2,Globex,,,,\n";
    run(&f, file.as_bytes(), &ImportOptions::new(Table::Partners))
        .await
        .expect("import");
    let mut out = Vec::new();
    let mut pages = 0;
    let n = export(
        &f.crm,
        f.ctx.tenant,
        &Export::Partners,
        Format::Csv,
        &mut out,
        |_| pages += 1,
    )
    .await
    .expect("export");
    let csv = String::from_utf8(out).expect("utf-8");
    assert_eq!((n, pages), (2, 1));
    assert!(csv.contains("C-1,'=cmd|' /C calc'!A0,"), "{csv}");
    assert!(csv.contains(",'+40 721 234 567,"), "{csv}");
    // The export is an import file: into another tenant, the same partners (the escapes come off again).
    let g = Fixture {
        crm: f.crm.clone(),
        ctx: Context::user(TenantId::new(), UserId::new()),
    };
    let (report, rejects, _) = run(&g, csv.as_bytes(), &ImportOptions::new(Table::Partners))
        .await
        .expect("re-import");
    assert_eq!(report.totals.created, 2, "{rejects}");
    let theirs = g
        .crm
        .partner_by_ref(g.ctx.tenant, "C-1")
        .await
        .expect("copied");
    assert_eq!(
        theirs.contacts()[0].email.as_deref(),
        Some("ana@acme.example")
    );
    // JSON Lines: one record per line, as the engine serialises it.
    let mut out = Vec::new();
    export(
        &f.crm,
        f.ctx.tenant,
        &Export::Contacts,
        Format::JsonLines,
        &mut out,
        |_| {},
    )
    .await
    .expect("json");
    let lines: Vec<serde_json::Value> = String::from_utf8(out)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["email"], "ana@acme.example");
    // Leads filtered like the lead query, and the activity log.
    let mut out = Vec::new();
    let won = LeadQuery {
        status: Some(crm_core::lead::StatusKind::Won),
        ..LeadQuery::default()
    };
    assert_eq!(
        export(
            &f.crm,
            f.ctx.tenant,
            &Export::Leads(won),
            Format::Csv,
            &mut out,
            |_| {}
        )
        .await
        .expect("leads"),
        0
    );
    let mut out = Vec::new();
    let n = export(
        &f.crm,
        f.ctx.tenant,
        &Export::Activities { after: 0 },
        Format::Csv,
        &mut out,
        |_| {},
    )
    .await;
    assert_eq!(n.expect("activities"), 2);
    assert!(String::from_utf8(out)
        .expect("utf-8")
        .contains("partner_created"));
}

#[tokio::test]
async fn a_long_file_streams_in_batches_with_progress() {
    let f = fixture().await;
    let mut file = String::from("ref,name,email\n");
    for i in 0..2500 {
        file.push_str(&format!("C-{i},Partner {i},p{i}@firm{i}.example\n"));
    }
    let mut options = ImportOptions::new(Table::Partners);
    options.batch = 500;
    let mut seen = Vec::new();
    let sinks = Sinks::default();
    let report = import_csv(&f.crm, &f.ctx, file.as_bytes(), &options, sinks, |p| {
        seen.push(p.rows)
    })
    .await
    .expect("import");
    assert_eq!(report.totals.created, 2500);
    assert_eq!(seen, [500, 1000, 1500, 2000, 2500]);
    let mut n = 0;
    let mut after = None;
    loop {
        let page = f
            .crm
            .store()
            .partners_after(f.ctx.tenant, after, 1000)
            .await
            .expect("page");
        let Some(last) = page.last() else { break };
        after = Some(last.id());
        n += page.len();
    }
    assert_eq!(n, 2500);
}

#[tokio::test]
async fn documents_export_by_kind_partner_and_dates_with_formulas_escaped() {
    use crm_core::commerce::{CommerceStore, DocumentKind, NewDocument};
    use crm_core::conformance::commerce::Shop;
    use crm_io::{export_documents, DocumentFilter};
    let backend = Arc::new(SqliteStore::open_in_memory().expect("store"));
    let store: Arc<dyn crm_core::store::Store> = backend.clone();
    let commerce: Arc<dyn CommerceStore> = backend.clone();
    let shop = Shop::new(&store, &commerce).await;
    let (a, b) = (shop.customer("Alpha").await, shop.customer("Beta").await);
    let day = |d| chrono::NaiveDate::from_ymd_opt(2026, 3, d).expect("a day");
    for (number, who, on) in [("F-1", &a, 2), ("=1+1", &a, 9), ("F-3", &b, 9)] {
        let line = vec![shop.line(0, "1", "100", "10")];
        shop.record(NewDocument::invoice(number, who.id(), day(on), "RON", line))
            .await;
    }
    let run = |filter: DocumentFilter, format| {
        let commerce = commerce.clone();
        let tenant = shop.w.tenant;
        async move {
            let mut out = Vec::new();
            let n = export_documents(&commerce, tenant, &filter, format, &mut out, |_| {})
                .await
                .expect("export");
            (n, String::from_utf8(out).expect("utf-8"))
        }
    };
    let (n, all) = run(DocumentFilter::default(), Format::Csv).await;
    assert_eq!(n, 3);
    assert!(
        all.starts_with("number,kind,partner_id,issue_date,"),
        "{all}"
    );
    assert!(
        all.contains("\n'=1+1,invoice,"),
        "a formula-like number is escaped: {all}"
    );
    assert!(
        all.contains(&format!("F-3,invoice,{},2026-03-09,", b.id())),
        "{all}"
    );
    let alpha_late = DocumentFilter {
        kind: Some(DocumentKind::Invoice),
        partner: Some(a.id()),
        from: Some(day(5)),
        before: Some(day(10)),
    };
    let (n, json) = run(alpha_late, Format::JsonLines).await;
    assert_eq!(n, 1);
    let doc: serde_json::Value =
        serde_json::from_str(json.lines().next().expect("a line")).expect("json");
    assert_eq!(doc["number"], "=1+1", "JSON Lines keep the record as it is");
    let bills = DocumentFilter {
        kind: Some(DocumentKind::VendorBill),
        ..DocumentFilter::default()
    };
    assert_eq!(run(bills, Format::Csv).await.0, 0);
}
