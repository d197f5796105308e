//! The scenario files are all listed and all read; the format refuses what it does not know; a broken
//! expectation is reported with its file, line and step.

use super::*;
use crate::conformance::model::MemStore;

#[test]
fn every_file_in_the_directory_is_listed_and_reads() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/scenarios");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .expect("the scenario directory")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = SCENARIOS.iter().map(|(n, _)| n.to_string()).collect();
    listed.sort();
    assert_eq!(listed, on_disk, "SCENARIOS lists every file of {dir:?}");
    for (name, text) in SCENARIOS {
        let s = Scenario::parse(name, text).unwrap_or_else(|e| panic!("{e}"));
        assert!(!s.steps.is_empty(), "{name} has steps");
        assert_eq!(
            std::fs::read_to_string(dir.join(name)).unwrap(),
            *text,
            "{name} is embedded as it is on disk"
        );
    }
}

const HEAD: &str = "description = \"test\"\n";

fn parse(steps: &str) -> Result<Scenario, String> {
    Scenario::parse("t.toml", &format!("{HEAD}{steps}"))
}

#[test]
fn unknown_keys_operations_and_error_kinds_are_refused() {
    let e = parse("[[step]]\nop = \"win\"\nlead = \"x\"\nverison = 2\n").unwrap_err();
    assert!(e.contains("t.toml:2") && e.contains("verison"), "{e}");
    let e = parse("[[step]]\nop = \"fly\"\n").unwrap_err();
    assert!(e.contains("fly"), "{e}");
    let e = parse("[[step]]\nop = \"win\"\nlead = \"x\"\nerror = \"oops\"\n").unwrap_err();
    assert!(e.contains("unknown error kind `oops`"), "{e}");
    let e = parse("[[step]]\nop = \"win\"\nlead = \"x\"\nerror = \"conflict\"\nfield = \"a\"\n")
        .unwrap_err();
    assert!(e.contains("`field` goes with"), "{e}");
    let e = Scenario::parse("t.toml", "description = \"x\"\nseed = 1\nstep = []\n").unwrap_err();
    assert!(e.contains("seed"), "{e}");
    let e = parse("[[step]]\nop = \"lead\"\nlead = \"x\"\n").unwrap_err();
    assert!(e.contains("partner"), "a missing key is named: {e}");
    let e = parse(
        "[[step]]\nop = \"rate\"\nfrom = \"EUR\"\nto = \"RON\"\non = 2026-01-01\nrate = 4.97\n",
    )
    .unwrap_err();
    assert!(e.contains("exact decimal"), "floats are refused: {e}");
}

#[test]
fn steps_read_their_common_keys_dates_and_amounts() {
    let s = parse(
        "[[step]]\nop = \"rate\"\nfrom = \"EUR\"\nto = \"RON\"\non = 2026-01-01\nrate = \"4.97\"\n\
         tenant = \"b\"\nuser = \"ana\"\nerror = \"invalid\"\nfield = \"rate\"\n",
    )
    .unwrap();
    let step = &s.steps[0];
    assert_eq!(
        (step.line, step.tenant.as_str(), step.user.as_str()),
        (2, "b", "ana")
    );
    assert_eq!(
        step.expect,
        Expect::Error {
            kind: "invalid".into(),
            field: Some("rate".into())
        }
    );
    assert_eq!(
        step.op,
        Op::Rate {
            from: "EUR".into(),
            to: "RON".into(),
            on: Day(chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()),
            rate: Amount("4.97".parse().unwrap()),
        }
    );
}

#[test]
fn a_broken_expectation_names_the_file_line_step_and_both_values() {
    let backend: Arc<dyn Backend> = Arc::new(MemStore::new());
    let s = parse(
        "[[step]]\nop = \"partner\"\npartner = \"p\"\n\n[[step]]\nop = \"lead\"\nlead = \"l\"\npartner = \"p\"\n\n\
         [[step]]\nop = \"check_lead\"\nlead = \"l\"\nprobability = 20\n",
    )
    .unwrap();
    let e = futures::executor::block_on(s.replay(&backend)).unwrap_err();
    assert!(
        e.starts_with("t.toml:11: step 3 (op = \"check_lead\", lead = \"l\", probability = 20)")
            && e.contains("probability: expected 20, got 10"),
        "{e}"
    );
    let s = parse("[[step]]\nop = \"win\"\nlead = \"nobody\"\n").unwrap();
    let e = futures::executor::block_on(s.replay(&backend)).unwrap_err();
    assert!(e.contains("no lead labelled `nobody`"), "{e}");
    let s =
        parse("[[step]]\nop = \"partner\"\npartner = \"p\"\nname = \"\"\nerror = \"conflict\"\n")
            .unwrap();
    let e = futures::executor::block_on(s.replay(&backend)).unwrap_err();
    assert!(
        e.contains("expected error `conflict`, got `invalid` on `name`"),
        "{e}"
    );
    let s = parse("[[step]]\nop = \"partner\"\npartner = \"p\"\nerror = \"invalid\"\n").unwrap();
    let e = futures::executor::block_on(s.replay(&backend)).unwrap_err();
    assert!(e.contains("expected error `invalid`, got success"), "{e}");
}
