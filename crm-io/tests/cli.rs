//! The `crm` command-line tool on an SQLite file: import (with its rejects file and exit status), dry run,
//! export, and its usage errors.

use std::path::Path;
use std::process::{Command, Output};

const TENANT: &str = "0192f000-0000-7000-8000-0000000000aa";

fn crm(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_crm"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("crm runs")
}

/// `crm` with the words of `line` (`$T` is the tenant).
fn crm_line(dir: &Path, line: &str) -> Output {
    let words: Vec<&str> = line
        .split_whitespace()
        .map(|w| if w == "$T" { TENANT } else { w })
        .collect();
    crm(dir, &words)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn import_then_export_on_an_sqlite_file() {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    // Windows-1250 with semicolons, as a Romanian spreadsheet saves it, and a mapping file.
    std::fs::write(
        d.join("p.csv"),
        b"Cod;Denumire;Oras;Tara\nC-1;Mobil\xe3 SRL;Bra\xbaov;RO\nC-2;;Cluj;RO\n",
    )
    .unwrap();
    std::fs::write(
        d.join("map.json"),
        r#"{"ref": "Cod", "name": "Denumire", "city": "Oras", "country": "Tara"}"#,
    )
    .unwrap();
    let common = [
        "--db",
        "crm.sqlite",
        "--tenant",
        TENANT,
        "--mapping",
        "map.json",
        "--quiet",
    ];
    let dry = crm(
        d,
        &[&["import", "partners", "p.csv", "--dry-run"][..], &common].concat(),
    );
    assert_eq!(dry.status.code(), Some(3), "{}", text(&dry.stderr));
    assert!(
        text(&dry.stdout).contains("dry run, nothing written: 2 rows"),
        "{}",
        text(&dry.stdout)
    );
    let out = crm(d, &[&["import", "partners", "p.csv"][..], &common].concat());
    assert_eq!(
        out.status.code(),
        Some(3),
        "rows were refused: {}",
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("1 created, 0 updated, 0 unchanged, 1 refused"),
        "{stdout}"
    );
    assert!(stdout.contains("windows-1250, delimiter ';'"), "{stdout}");
    let rejects = std::fs::read_to_string(d.join("p.csv.rejects.csv")).expect("rejects file");
    assert!(
        rejects.contains("3,Denumire,must not be empty,C-2,,Cluj,RO"),
        "{rejects}"
    );
    let json = crm_line(
        d,
        "export partners --db crm.sqlite --tenant $T --format json",
    );
    assert!(json.status.success(), "{}", text(&json.stderr));
    let record: serde_json::Value =
        serde_json::from_str(text(&json.stdout).trim()).expect("one JSON line");
    assert_eq!(
        (record["name"].as_str(), record["host_ref"].as_str()),
        (Some("Mobilă SRL"), Some("C-1"))
    );
    let file = crm_line(
        d,
        "export activities --db crm.sqlite --tenant $T --out log.csv",
    );
    assert!(file.status.success(), "{}", text(&file.stderr));
    assert!(std::fs::read_to_string(d.join("log.csv"))
        .unwrap()
        .contains("partner_created"));
    // An access request for the imported partner's contact-less record, by id, to a file.
    let id = record["id"].as_str().expect("an id").to_string();
    let access = crm_line(
        d,
        &format!("access-request --db crm.sqlite --tenant $T --partner {id} --out ana.json"),
    );
    assert!(access.status.success(), "{}", text(&access.stderr));
    let held: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("ana.json")).unwrap()).unwrap();
    assert_eq!(held["subject"]["partner"]["name"], "Mobilă SRL");
    assert!(
        text(&access.stdout).contains("1 activity"),
        "{}",
        text(&access.stdout)
    );
    let nobody = crm_line(
        d,
        "access-request --db crm.sqlite --tenant $T --contact-ref P-404",
    );
    assert_eq!(nobody.status.code(), Some(1));
    let neither = crm_line(d, "access-request --db crm.sqlite --tenant $T");
    assert_eq!(neither.status.code(), Some(2));
    // The mapping kept under a name for the tenant's next file of the same layout.
    std::fs::write(
        d.join("p2.csv"),
        "Cod;Denumire;Oras;Tara\nC-5;Birou SRL;Iasi;RO\n",
    )
    .unwrap();
    let saved = crm_line(d, "import partners p2.csv --db crm.sqlite --tenant $T -q --mapping map.json --save-mapping erp");
    assert!(saved.status.success(), "{}", text(&saved.stderr));
    std::fs::write(
        d.join("p3.csv"),
        "Cod;Denumire;Oras;Tara\nC-6;Depozit SRL;Arad;RO\n",
    )
    .unwrap();
    let reused = crm_line(
        d,
        "import partners p3.csv --db crm.sqlite --tenant $T -q --mapping-name erp",
    );
    assert!(reused.status.success(), "{}", text(&reused.stderr));
    assert!(
        text(&reused.stdout).contains("1 created"),
        "{}",
        text(&reused.stdout)
    );
    let unknown = crm_line(
        d,
        "import partners p3.csv --db crm.sqlite --tenant $T -q --mapping-name nope",
    );
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        text(&unknown.stderr).contains("saved no such mapping"),
        "{}",
        text(&unknown.stderr)
    );
    // Documents: none recorded here, so the header alone; the filters parse.
    let docs = crm_line(
        d,
        "export documents --db crm.sqlite --tenant $T --kind credit-note --from 2026-01-01 --before 2027-01-01",
    );
    assert!(docs.status.success(), "{}", text(&docs.stderr));
    assert!(
        text(&docs.stdout).starts_with("number,kind,partner_id,"),
        "{}",
        text(&docs.stdout)
    );
    let bad_day = crm_line(
        d,
        "export documents --db crm.sqlite --tenant $T --from 2026-13-01",
    );
    assert_eq!(bad_day.status.code(), Some(2), "{}", text(&bad_day.stderr));
    // A file with nothing to refuse: exit 0, and no rejects file left behind.
    std::fs::write(d.join("ok.csv"), "ref,name\nC-9,Globex\n").unwrap();
    let ok = crm_line(d, "import partners ok.csv --db crm.sqlite --tenant $T -q");
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert!(!d.join("ok.csv.rejects.csv").exists());
}

#[test]
fn usage_and_setup_errors_exit_non_zero_with_a_message() {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    let usage = crm_line(d, "import widgets x.csv --db x --tenant $T");
    assert_eq!(usage.status.code(), Some(2));
    assert!(text(&usage.stderr).contains("widgets"));
    let tenant = crm_line(d, "export partners --db x.sqlite --tenant not-a-uuid");
    assert_eq!(tenant.status.code(), Some(2));
    let missing = crm_line(d, "export partners --db nowhere.sqlite --tenant $T");
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        text(&missing.stderr).contains("nowhere.sqlite: no such SQLite file"),
        "{}",
        text(&missing.stderr)
    );
    std::fs::write(d.join("bad.csv"), "ref;city\nC-1;Cluj\n").unwrap();
    let column = crm_line(d, "import partners bad.csv --db crm.sqlite --tenant $T");
    assert_eq!(column.status.code(), Some(1));
    assert!(
        text(&column.stderr).contains("column for `name`"),
        "{}",
        text(&column.stderr)
    );
    let encoding = crm_line(
        d,
        "import partners bad.csv --db crm.sqlite --tenant $T --encoding klingon",
    );
    assert_eq!(encoding.status.code(), Some(1));
}
