//! The consultant's command-line tool on the example scheme and on broken copies of it.

use common::{assert_has, example_dir, failed_with, passed_with, run};
use std::path::Path;
use std::process::Command;

mod common;

fn copy_of_example() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let p = e.unwrap().path();
            let target = to.join(p.file_name().unwrap());
            if p.is_dir() {
                copy(&p, &target);
            } else {
                std::fs::copy(&p, &target).unwrap();
            }
        }
    }
    copy(&example_dir(), tmp.path());
    tmp
}

/// A copy of the example with `text` written as `file`.
fn example_with(file: &str, text: &str) -> tempfile::TempDir {
    let tmp = copy_of_example();
    std::fs::write(tmp.path().join(file), text).unwrap();
    tmp
}

/// Writes `text` as `file` into a copy of the example and runs `cmd` on it.
fn run_with_file(cmd: &str, file: &str, text: &str) -> (bool, String) {
    let tmp = example_with(file, text);
    run(&[cmd, tmp.path().to_str().unwrap()])
}

/// A copy of the example with the first `n` occurrences of `from` (which must be there) replaced by `to` in fixture
/// `file`, and the output of `cmd` on it.
fn run_with_fixture_edit(cmd: &str, file: &str, from: &str, to: &str, n: usize) -> (bool, String) {
    let tmp = copy_of_example();
    let f = tmp.path().join("fixtures").join(file);
    let text = std::fs::read_to_string(&f).unwrap();
    assert!(text.contains(from), "{from}");
    std::fs::write(&f, text.replacen(from, to, n)).unwrap();
    run(&[cmd, tmp.path().to_str().unwrap()])
}

#[test]
fn check_and_test_pass_on_the_example_scheme() {
    let dir = example_dir();
    let dir = dir.to_str().unwrap();
    passed_with(
        run(&["check", dir]),
        &[
            "12 rules compile",
            "timers: lead_idle:3, lead_idle:7, request_overdue:0, request_overdue:2",
        ],
    );
    passed_with(run(&["test", dir]), &["34 passed, 0 failed"]);
}

#[test]
fn check_reports_a_compile_error_with_file_line_and_column() {
    failed_with(check_with_rule(
        "offer",
        "fn on_lead_stage_moved(ev) {\n    if ev.to_name == \"Offer\" {\n        notify(\"accounting\" \"x\");\n    }\n}\n",
    ), &["offer.rhai:3:", "rule `offer` does not compile"]);
}

#[test]
fn a_failing_case_shows_the_difference() {
    failed_with(
        run_with_fixture_edit(
            "test",
            "leads.toml",
            "people = [\"elena\"]",
            "people = [\"mihai\"]",
            usize::MAX,
        ),
        &[
            "FAIL",
            "negotiation above the threshold informs management",
            "\"people\":[\"mihai\"]",
            "\"people\":[\"elena\"]",
            "33 passed, 1 failed",
        ],
    );
}

#[test]
fn test_renders_the_templates_of_e_mails_and_names_an_unknown_variable() {
    failed_with(
        run_with_file(
            "test",
            "templates/welcome.txt",
            "Hello {{ customer_name }}\n",
        ),
        &["template `welcome.txt`", "undefined"],
    );
}

#[test]
fn test_and_check_report_an_unknown_role_at_its_line() {
    let tmp = example_with(
        "won.rhai",
        "fn on_lead_won(ev) {\n    notify(\"acountants\", \"s\", \"b\");\n}\n",
    );
    failed_with(
        run(&["test", tmp.path().to_str().unwrap()]),
        &["won.rhai:2:12", "unknown role `acountants`"],
    );
    // `check` finds it too, before any event runs, at the literal's position.
    failed_with(
        run(&["check", tmp.path().to_str().unwrap()]),
        &["won.rhai:2:12: rule `won` does not compile: unknown role `acountants`"],
    );
}

#[test]
fn explain_lists_rules_actions_and_people() {
    let dir = example_dir();
    passed_with(
        run(&[
            "explain",
            dir.to_str().unwrap(),
            "entering Offer asks accounting for a quotation",
        ]),
        &[
            "trigger: lead_stage_moved",
            "offer",
            "decided",
            "negotiation",
            "no match",
            "\"people\":[\"ioana\"]",
        ],
    );
    // An event written in its own file.
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("event.json");
    std::fs::write(
        &f,
        r#"{"case": [{"name": "ad hoc", "event": "lead_won", "lead": {"title": "Barn roof", "owner": "@dan"}}]}"#,
    )
    .unwrap();
    passed_with(
        run(&["explain", dir.to_str().unwrap(), f.to_str().unwrap()]),
        &[
            "trigger: lead_won",
            "Contract won: Barn roof",
            "\"people\":[\"radu\"]",
        ],
    );
    failed_with(
        run(&["explain", dir.to_str().unwrap(), "no such case"]),
        &["no case named"],
    );
}

#[test]
fn graph_shows_conditions_timer_days_subjects_and_refusals_in_plain_words() {
    let dir = example_dir();
    let dot = passed_with(
        run(&["graph", dir.to_str().unwrap()]),
        &["\"user_ana\" -> \"user_mihai\" [label=\"reports to\"]"],
    );
    assert!(dot.starts_with("digraph schema {"), "{dot}");
    for words in [
        "when a lead has had no activity for 3 or 7 days",
        "when a request is 0 or 2 days overdue",
        "notification “Large negotiation: [lead's title]”",
        "if the new stage is “Negotiation” and the lead's expected revenue is set and the lead's expected revenue is at least 50000",
        "the change is refused: “set the expected revenue before negotiating”",
        "task “Quotation for [lead's title]” due in 48 hours",
        "e-mail “welcome”",
        "(rule negotiation)",
    ] {
        assert!(dot.contains(words), "{words}: {dot}");
    }
    assert_eq!(
        dot.matches("Large negotiation").count(),
        1,
        "each decision once: {dot}"
    );
    assert_has(
        &dot,
        &[
            "\"trigger_lead_won\" -> \"role_delivery\"",
            "\"trigger_lead_idle_3_7\" -> \"who_manager_owner\"",
        ],
    );
    let mmd = passed_with(run(&["graph", dir.to_str().unwrap(), "--mermaid"]), &["trigger_lead_stage_moved -->|\"notification “Large negotiation: [lead's title]”<br/>if the new stage is “Negotiation”", "the change is refused"]);
    assert!(mmd.starts_with("flowchart LR"), "{mmd}");
    let (ok, _) = run(&["graph", dir.to_str().unwrap(), "--mermaid", "--table"]);
    assert!(!ok, "one format at a time");
}

#[test]
fn graph_table_says_who_gets_what_when_per_person() {
    let dir = example_dir();
    let (ok, md) = run(&["graph", dir.to_str().unwrap(), "--table"]);
    assert!(ok, "{md}");
    assert!(md.starts_with("# Who gets what, when"), "{md}");
    let section = |who: &str| -> String {
        let start = md
            .find(&format!("## {who}"))
            .unwrap_or_else(|| panic!("{who}: {md}"));
        let rest = &md[start + 3..];
        rest[..rest.find("\n## ").unwrap_or(rest.len())].to_string()
    };
    let mihai = section("Mihai Stan (`mihai`) — sales_manager");
    assert_has(&mihai, &["| a lead has had no activity for 3 or 7 days, if the lead's owner is set and the timer's days is below 7 | escalation “No contact for [days without activity] days: [title]” | when the lead's owner reports to them (Ana Pop, Dan Ionescu, Sorina Neagu) | no_contact |", "| a lead is entered, if the owner is not set | notification “Unassigned lead: [title]” | as sales_manager | new_lead |"]);
    for (who, part) in [
        ("Elena Vasile", "Large negotiation"),
        ("Ana Pop", "Unassigned for a week: [title]"),
        ("Whoever the record names", "the customer's primary contact"),
        (
            "Changes the rules refuse",
            "set the expected revenue before negotiating",
        ),
    ] {
        assert!(section(who).contains(part), "{who}: {md}");
    }
    // The table committed beside the example scheme is the current one.
    let committed = std::fs::read_to_string(dir.join("who-gets-what.md")).unwrap();
    assert_eq!(
        committed, md,
        "regenerate with: crm-rules graph examples/rules --table > examples/rules/who-gets-what.md"
    );
}

#[test]
fn graph_renders_svg_with_graphviz() {
    let dot_installed = Command::new("dot").arg("-V").output().is_ok();
    if !dot_installed && std::env::var_os("CRM_REQUIRE_GRAPHVIZ").is_none() {
        eprintln!(
            "SKIPPED graph_renders_svg_with_graphviz: Graphviz's `dot` is not installed \
             (apt-get install graphviz; set CRM_REQUIRE_GRAPHVIZ=1 to make this a failure)"
        );
        return;
    }
    let dir = example_dir();
    passed_with(
        run(&["graph", dir.to_str().unwrap(), "--svg"]),
        &["<svg", "Large negotiation"],
    );
    let committed = std::fs::read_to_string(dir.join("scheme.svg")).unwrap();
    assert!(committed.contains("<svg") && committed.contains("Large negotiation"));
}

/// Writes `code` as rule `name` into a copy of the example and runs `check` on it.
fn check_with_rule(name: &str, code: &str) -> (bool, String) {
    run_with_file("check", &format!("{name}.rhai"), code)
}

#[test]
fn check_refuses_a_misspelt_entry_point_and_suggests_the_event() {
    let out = failed_with(
        check_with_rule(
            "won",
            "fn on_lead_wom(ev) {\n    notify(\"accounting\", \"s\", \"b\");\n}\n",
        ),
        &[
            "won.rhai:1:",
            "`on_lead_wom`",
            "did you mean `on_lead_won`?",
        ],
    );
    assert!(!out.contains("reacts to: lead_wom"), "{out}");
    // A guard on a timer can refuse nothing.
    failed_with(
        check_with_rule(
            "idle",
            "fn timers() { [\"lead_idle:3\"] }\nfn on_lead_idle(t) {}\nfn guard_lead_idle(t) {}\n",
        ),
        &["`guard_lead_idle`"],
    );
}

#[test]
fn check_refuses_an_unknown_event_field_at_its_position() {
    let out = failed_with(check_with_rule(
        "offer",
        "fn on_lead_stage_moved(ev) {\n    if ev.to_nme == \"Offer\" {\n        notify(\"accounting\", \"s\", \"b\");\n    }\n}\n",
    ), &["offer.rhai:2:", "`to_nme`", "did you mean `to_name`?"]);
    // The message after the file's path (a temporary directory's random name may hold any letters).
    let message = out.split("offer.rhai").skip(1).collect::<String>();
    assert!(
        !message.contains("Map") && !message.contains("Dynamic"),
        "{out}"
    );
}

#[test]
fn check_refuses_an_unknown_field_of_the_lead_partner_or_request() {
    let out = failed_with(check_with_rule(
        "negotiation",
        "fn on_lead_stage_moved(ev) {\n    if ev.lead.revenu != () {\n        notify(\"management\", ev.partner.nme, ev.request.titel);\n    }\n}\n",
    ), &[
            "negotiation.rhai:2:",
            "the lead has no field `revenu`",
            "did you mean `revenue`?",
            "the partner has no field `nme`",
            "did you mean `name`?",
            "the request has no field `titel`",
            "did you mean `title`?",
        ]);
    assert!(!out.contains("getter"), "{out}");
    // Through a variable holding the lead, and in a timer's argument, too.
    failed_with(check_with_rule(
        "no_contact",
        "fn timers() { [\"lead_idle:3\"] }\nfn on_lead_idle(t) {\n    let l = t.lead;\n    notify(\"management\", `${l.titl}`, `${t.days_idel}`);\n}\n",
    ), &["did you mean `title`?", "did you mean `days_idle`?"]);
}

#[test]
fn check_refuses_an_unknown_template() {
    failed_with(check_with_rule(
        "won",
        "fn on_lead_won(ev) {\n    email(\"contact:primary\", \"welcom\", #{ deal: ev.lead.title });\n}\n",
    ), &[
            "won.rhai:2:",
            "unknown template `welcom`",
            "did you mean `welcome`?",
        ]);
}

#[test]
fn check_refuses_an_unknown_event_in_a_fixture() {
    failed_with(
        run_with_fixture_edit(
            "check",
            "leads.toml",
            "event = \"lead_won\"",
            "event = \"lead_wom\"",
            usize::MAX,
        ),
        &[
            "leads.toml",
            "unknown event `lead_wom`",
            "did you mean `lead_won`?",
        ],
    );
}

#[test]
fn the_example_scheme_passes_check_without_findings() {
    let (ok, out) = run(&["check", example_dir().to_str().unwrap()]);
    assert!(ok, "{out}");
    assert!(!out.contains("did you mean"), "{out}");
}

#[test]
fn a_fixture_timer_that_no_rule_declares_fails_its_case() {
    failed_with(
        run_with_fixture_edit(
            "test",
            "timers.toml",
            "timer = \"lead_idle:3\"",
            "timer = \"lead_idle:5\"",
            usize::MAX,
        ),
        &[
            "no rule declares the timer `lead_idle:5`",
            "declared: lead_idle:3, lead_idle:7, request_overdue:0, request_overdue:2",
        ],
    );
}

/// A copy of the example with `from` replaced by `to` in fixture `file`, and the output of `test` on it.
fn test_with_fixture_edit(file: &str, from: &str, to: &str) -> (bool, String) {
    run_with_fixture_edit("test", file, from, to, 1)
}

#[test]
fn unknown_keys_in_a_fixture_are_errors_naming_the_file_and_the_key() {
    for (from, to, key, hint) in [
        ("expect = [", "expct = [", "expct", "did you mean `expect`?"),
        (
            "name = \"a new lead notifies its owner\"",
            "name = \"a new lead notifies its owner\"\nsource = \"portal\"",
            "source",
            "actor = \"portal\"",
        ),
        (
            "subject = \"New lead: Solar roof\"",
            "subjct = \"New lead: Solar roof\"",
            "subjct",
            "did you mean `subject`?",
        ),
        (
            "lead = { title = \"Solar roof\", owner",
            "lead = { titel = \"Solar roof\", owner",
            "titel",
            "did you mean `title`?",
        ),
        (
            "fields = { title = \"Solar roof\"",
            "fields = { titl = \"Solar roof\"",
            "titl",
            "did you mean `title`?",
        ),
    ] {
        let (ok, out) = test_with_fixture_edit("leads.toml", from, to);
        assert!(!ok, "{key}: {out}");
        assert!(out.contains("leads.toml"), "{key}: {out}");
        assert!(
            out.contains(&format!("unknown key `{key}`")),
            "{key}: {out}"
        );
        assert!(out.contains(hint), "{key}: {out}");
        assert!(!out.contains("passed"), "nothing runs: {out}");
    }
    // `check` reports them too.
    let (ok, out) = run_with_fixture_edit("check", "timers.toml", "expect = [", "expct = [", 1);
    assert!(
        !ok && out.contains("timers.toml") && out.contains("unknown key `expct`"),
        "{out}"
    );
}

#[test]
fn unknown_people_in_a_fixture_are_errors() {
    failed_with(
        test_with_fixture_edit("leads.toml", "owner = \"@ana\" }", "owner = \"@anna\" }"),
        &[
            "leads.toml",
            "unknown person `@anna`",
            "did you mean `@ana`?",
        ],
    );
    failed_with(
        test_with_fixture_edit("leads.toml", "people = [\"ana\"]", "people = [\"anna\"]"),
        &["unknown person `anna`", "did you mean `ana`?"],
    );
    failed_with(
        test_with_fixture_edit("timers.toml", "actor = \"@dan\"", "actor = \"@dna\""),
        &["unknown person `@dna`"],
    );
}

#[test]
fn a_case_can_target_one_rule() {
    // Entering Offer: the offer rule decides two actions; a case about the negotiation rule ignores them.
    let (ok, out) = test_with_fixture_edit(
        "leads.toml",
        "name = \"moving to Qualification decides nothing\"\nevent = \"lead_stage_moved\"\nfields = { from_name = \"Contact\", to_name = \"Qualification\" }",
        "name = \"moving to Qualification decides nothing\"\nrule = \"negotiation\"\nevent = \"lead_stage_moved\"\nfields = { from_name = \"Contact\", to_name = \"Offer\" }",
    );
    assert!(ok, "{out}");
    let (ok, out) = test_with_fixture_edit(
        "leads.toml",
        "name = \"moving to Qualification decides nothing\"\nevent = \"lead_stage_moved\"\nfields = { from_name = \"Contact\", to_name = \"Qualification\" }",
        "name = \"moving to Qualification decides nothing\"\nevent = \"lead_stage_moved\"\nfields = { from_name = \"Contact\", to_name = \"Offer\" }",
    );
    assert!(!ok, "without `rule`, every rule counts: {out}");
    failed_with(
        test_with_fixture_edit(
            "leads.toml",
            "name = \"moving to Qualification decides nothing\"",
            "name = \"moving to Qualification decides nothing\"\nrule = \"negotiaton\"",
        ),
        &["unknown rule `negotiaton`", "did you mean `negotiation`?"],
    );
}

#[test]
fn differences_are_shown_per_rule_and_a_missing_action_shifts_nothing() {
    let tmp = copy_of_example();
    // The won rule forgets accounting: one action is missing, the two after it still match.
    let won = tmp.path().join("won.rhai");
    let text = std::fs::read_to_string(&won).unwrap();
    let text: String = text
        .lines()
        .filter(|l| !l.contains("notify(\"accounting\""))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&won, text).unwrap();
    let (ok, out) = run(&["test", tmp.path().to_str().unwrap()]);
    assert!(!ok, "{out}");
    let diff: Vec<_> = out
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("- ") || l.starts_with("+ "))
        .collect();
    assert_eq!(diff.len(), 1, "{out}");
    assert!(
        diff[0].contains("Contract won: Solar roof") && diff[0].contains("missing"),
        "{out}"
    );
    assert_has(&out, &["rule `won`:"]);
}

#[test]
fn check_refuses_an_unknown_person_named_by_key() {
    failed_with(
        check_with_rule(
            "won",
            "fn on_lead_won(ev) {\n    notify(\"user:anna\", \"s\", \"b\");\n}\n",
        ),
        &[
            "won.rhai:2:12",
            "unknown person `anna`",
            "did you mean `ana`?",
        ],
    );
    failed_with(
        check_with_rule(
            "won",
            "fn on_lead_won(ev) {\n    notify(\"manager:owner or managment\", \"s\", \"b\");\n}\n",
        ),
        &["unknown role `managment`"],
    );
}

#[test]
fn handing_a_lead_to_a_role_of_several_people_is_a_warning() {
    let tmp = example_with(
        "handover.rhai",
        "fn on_lead_lost(ev) {\n    reassign(\"sales_agent\");\n}\n",
    );
    let dir = tmp.path().to_str().unwrap();
    let (ok, out) = run(&["check", dir]);
    assert!(ok, "a warning does not fail check: {out}");
    assert_has(
        &out,
        &[
            "warning: ",
            "handover.rhai:2:",
            "role `sales_agent`, which has 2 people (ana, dan)",
        ],
    );
    let f = tmp.path().join("lost.json");
    std::fs::write(
        &f,
        r#"{"case": [{"name": "lost", "event": "lead_lost", "lead": {"owner": "@dan"}}]}"#,
    )
    .unwrap();
    passed_with(
        run(&["explain", dir, f.to_str().unwrap()]),
        &["warning: ", "the lead is handed to 2 people (ana, dan)"],
    );
    // One person by key: no warning.
    std::fs::write(
        tmp.path().join("handover.rhai"),
        "fn on_lead_lost(ev) {\n    reassign(\"user:ana\");\n}\n",
    )
    .unwrap();
    let (ok, out) = run(&["check", dir]);
    assert!(ok && !out.contains("warning"), "{out}");
}

#[test]
fn every_subcommand_has_help() {
    let (ok, out) = run(&["--help"]);
    assert!(ok, "{out}");
    for sub in ["check", "test", "explain", "graph", "completions"] {
        assert!(out.contains(sub), "{sub}: {out}");
        let (ok, help) = run(&[sub, "--help"]);
        assert!(ok, "{sub}: {help}");
        assert!(
            help.contains(&format!("Usage: crm-rules {sub}")),
            "{sub}: {help}"
        );
    }
    let (_, help) = run(&["test", "--help"]);
    assert_has(&help, &["FIXTURES", "fixtures/"]);
}

#[test]
fn argument_mistakes_are_errors_that_say_what_to_do() {
    let dir = example_dir();
    failed_with(
        run(&["explain", dir.to_str().unwrap()]),
        &["required", "<CASE>"],
    );
    let (ok, out) = run(&["tset", dir.to_str().unwrap()]);
    assert!(!ok);
    assert!(out.contains("'test'"), "a suggestion: {out}");
    failed_with(run(&[]), &["Usage"]);
    failed_with(
        run(&["graph", dir.to_str().unwrap(), "--mermiad"]),
        &["--mermaid"],
    );
}

#[test]
fn completions_are_generated_for_each_shell() {
    passed_with(run(&["completions", "bash"]), &["crm-rules", "complete"]);
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let (ok, out) = run(&["completions", shell]);
        assert!(ok && out.contains("explain"), "{shell}: {out}");
    }
    let (ok, out) = run(&["completions", "tcsh"]);
    assert!(!ok && out.contains("possible values"), "{out}");
}

#[test]
fn each_entry_point_is_checked_against_its_own_trigger() {
    let (ok, out) = check_with_rule(
        "mixed",
        "fn timers() { [\"lead_idle:3\"] }\n\
         fn on_lead_idle(ev) { notify(\"owner\", `${ev.days_idle}`, \"\"); }\n\
         fn on_lead_stage_moved(ev) { notify(\"owner\", ev.to_name, \"\"); }\n",
    );
    assert!(ok, "{out}");
}
