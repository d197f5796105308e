//! Bad scripts and templates: each gives a clear error naming the rule (file:line:column) or template, and the
//! engine keeps working for the other rules and the next trigger.

use crm_core::comms::{Action, RuleEngine, Trigger, Views};
use crm_rules::fixtures::{build_case, Case};
use crm_rules::notify::Templates;
use crm_rules::{Limits, RhaiRuleEngine, RuleSet, RuleSource, RulesError};

/// A rule that always works, next to the bad one.
const GOOD: &str = r#"fn on_lead_entered(ev) { notify("owner", "hello", "world"); }"#;

fn lead_entered() -> (Trigger, Views) {
    let case: Case = toml::from_str(
        r#"
        name = "bad input"
        event = "lead_entered"
        fields = { title = "T", owner = "@ana" }
        lead = { title = "T", owner = "@ana" }
        "#,
    )
    .unwrap();
    build_case(&case).unwrap()
}

fn engine(bad: &str, limits: Limits) -> RhaiRuleEngine {
    let set = RuleSet::compile(
        [RuleSource::new("bad", bad), RuleSource::new("good", GOOD)],
        limits,
    )
    .unwrap();
    RhaiRuleEngine::new(set).with_known_roles(["accounting".to_string(), "management".to_string()])
}

/// Evaluates twice (the second time shows the engine still works) and returns the bad rule's failure message.
fn failure_of(bad: &str, limits: Limits) -> String {
    let e = engine(bad, limits);
    let (t, v) = lead_entered();
    let mut last = String::new();
    for _ in 0..2 {
        let d = e.evaluate(&t, &v);
        assert_eq!(d.failures.len(), 1, "{d:?}");
        assert_eq!(d.failures[0].rule, "bad");
        assert!(
            d.actions.iter().all(|a| a.rule == "good"),
            "a failing rule decides nothing"
        );
        assert!(
            matches!(d.actions.as_slice(), [a] if matches!(a.action, Action::Notify { .. })),
            "the good rule still decides: {d:?}"
        );
        last = d.failures[0].message.clone();
    }
    last
}

/// [`failure_of`] with the default limits.
fn failure(bad: &str) -> String {
    failure_of(bad, Limits::default())
}

/// The default limits with a clock generous enough that a size limit is what stops a script, not the clock of a
/// loaded debug build.
fn roomy_clock() -> Limits {
    Limits {
        wall_clock_ms: 10_000,
        ..Limits::default()
    }
}

/// Compiles the one rule `name` with the default limits.
fn compile_one(name: &str, code: &str) -> Result<RuleSet, RulesError> {
    RuleSet::compile([RuleSource::new(name, code)], Limits::default())
}

#[test]
fn a_script_that_does_not_compile_names_file_line_and_column() {
    let err = compile_one("broken", "fn on_lead_entered(ev) {\n    let x = ;\n}\n").unwrap_err();
    match &err {
        RulesError::Compile { rule, at, .. } => {
            assert_eq!(rule, "broken");
            assert_eq!((at.file.as_str(), at.line), ("broken.rhai", 2));
            assert!(at.column > 0);
        }
        other => panic!("expected a compile error, got {other:?}"),
    }
    assert!(err.to_string().starts_with("broken.rhai:2:"), "{err}");
}

#[test]
fn every_compile_error_is_reported_together() {
    let err = RuleSet::compile(
        [
            RuleSource::new("a", "fn on_x(ev) { ( }"),
            RuleSource::new("b", "let no_entry_point = 1;"),
        ],
        Limits::default(),
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("a.rhai:1:"), "{text}");
    assert!(
        text.contains("rule `b`") && text.contains("no entry point"),
        "{text}"
    );
}

#[test]
fn an_endless_loop_is_stopped_by_the_operation_limit() {
    // A generous clock so that only the operation count can stop it, even in a debug build on a busy machine.
    let limits = Limits {
        wall_clock_ms: 60_000,
        ..Limits::default()
    };
    let m = failure_of("fn on_lead_entered(ev) {\n  loop { }\n}", limits);
    assert!(m.starts_with("bad.rhai:1:1: in `on_lead_entered`"), "{m}");
    assert!(m.contains("limit of 100000 operations"), "{m}");
}

#[test]
fn an_endless_loop_is_stopped_by_the_wall_clock_budget() {
    let limits = Limits {
        max_operations: 0, // unlimited: only the clock stops it
        wall_clock_ms: 30,
        ..Limits::default()
    };
    let started = std::time::Instant::now();
    let m = failure_of(
        "fn on_lead_entered(ev) {\n  let i = 0;\n  loop { i += 1; }\n}",
        limits,
    );
    assert!(m.contains("wall-clock budget of 30 ms"), "{m}");
    assert!(m.starts_with("bad.rhai:"), "{m}");
    assert!(started.elapsed().as_secs() < 5);
}

#[test]
fn endless_recursion_is_stopped_by_the_call_depth_limit() {
    let m = failure("fn down(n) { down(n + 1) }\nfn on_lead_entered(ev) { down(0); }");
    assert!(m.contains("nested deeper than 16 levels"), "{m}");
    assert!(m.starts_with("bad.rhai:"), "{m}");
}

#[test]
fn a_huge_string_is_stopped_by_the_size_limit() {
    let m = failure_of(
        "fn on_lead_entered(ev) {\n  let s = \"xxxxxxxx\";\n  loop { s += s; }\n}",
        roomy_clock(),
    );
    assert!(m.contains("over its limit"), "{m}");
    assert!(m.starts_with("bad.rhai:1:1: in `on_lead_entered`"), "{m}");
}

#[test]
fn a_huge_array_is_stopped_by_the_size_limit() {
    let m = failure_of(
        "fn on_lead_entered(ev) {\n  let a = [];\n  loop { a.push(1); }\n}",
        roomy_clock(),
    );
    assert!(
        m.contains("over its limit") && m.contains("arrays 1000 items"),
        "{m}"
    );
}

#[test]
fn an_unknown_function_is_named() {
    let m = failure("fn on_lead_entered(ev) {\n  send_sms(\"0722\", ev.title);\n}");
    assert!(m.starts_with("bad.rhai:2:3"), "{m}");
    assert!(m.contains("unknown function `send_sms"), "{m}");
}

#[test]
fn returning_a_value_is_an_error_naming_the_type() {
    let m = failure("fn on_lead_entered(ev) { 42 }");
    assert!(
        m.contains("must not return a value") && m.contains("i64"),
        "{m}"
    );
}

#[test]
fn an_unknown_role_is_an_error_at_the_line_that_names_it() {
    let m = failure("fn on_lead_entered(ev) {\n  notify(\"acounting\", \"s\", \"b\");\n}");
    assert!(m.starts_with("bad.rhai:2:"), "{m}");
    assert!(
        m.contains("unknown role `acounting`") && m.contains("accounting, management"),
        "{m}"
    );
}

#[test]
fn a_task_due_beyond_the_longest_timer_is_a_rule_failure() {
    for call in [
        "follow_up(4294967295, \"x\")",
        "open_request(\"owner\", \"t\", \"call\", 87601)",
    ] {
        let m = failure(&format!("fn on_lead_entered(ev) {{ {call}; }}"));
        assert!(m.contains("at most 87600 hours"), "{call}: {m}");
    }
}

#[test]
fn too_many_actions_are_refused() {
    let limits = Limits {
        max_actions: 3,
        ..Limits::default()
    };
    let m = failure_of(
        "fn on_lead_entered(ev) { for i in 0..10 { notify(\"owner\", \"s\", \"b\"); } }",
        limits,
    );
    assert!(m.contains("at most 3 actions"), "{m}");
}

#[test]
fn a_bad_timer_declaration_does_not_compile() {
    let err = compile_one(
        "t",
        "fn timers() { [\"lead_idel:3\"] }\nfn on_lead_idle(t) { }",
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("unknown timer `lead_idel`"),
        "{err}"
    );
    let err = compile_one(
        "t",
        "fn timers() { [\"lead_idle:3\"] }\nfn on_lead_won(ev) { }",
    )
    .unwrap_err();
    assert!(err.to_string().contains("no `fn on_lead_idle(t)`"), "{err}");
}

#[test]
fn an_absurd_timer_amount_does_not_compile() {
    for (timer, handler) in [
        ("lead_idle:4294967295", "lead_idle"),
        ("request_due_soon:4294967295", "request_due_soon"),
        ("request_overdue:200000000", "request_overdue"),
    ] {
        let err = compile_one(
            "t",
            &format!("fn timers() {{ [\"{timer}\"] }}\nfn on_{handler}(t) {{ }}"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("3650 days"), "{timer}: {err}");
    }
}

#[test]
fn scripts_cannot_reach_time_eval_or_modules() {
    for (code, what) in [
        (
            "fn on_lead_entered(ev) { let t = timestamp(); }",
            "timestamp",
        ),
        ("fn on_lead_entered(ev) { eval(\"1\"); }", "eval"),
    ] {
        let e = RuleSet::compile(
            [RuleSource::new("bad", code), RuleSource::new("good", GOOD)],
            Limits::default(),
        );
        match e {
            Err(err) => assert!(err.to_string().contains("bad.rhai"), "{what}: {err}"),
            Ok(set) => {
                let (t, v) = lead_entered();
                let d = RhaiRuleEngine::new(set).evaluate(&t, &v);
                assert_eq!(d.failures.len(), 1, "{what}: {d:?}");
            }
        }
    }
    let err = compile_one("m", "import \"fs\" as fs;\nfn on_lead_entered(ev) {}");
    if let Ok(set) = err {
        // Top-level statements never run (entry points are called without evaluating the script body), and no
        // module resolver exists, so an import cannot load anything.
        let (t, v) = lead_entered();
        let d = RhaiRuleEngine::new(set).evaluate(&t, &v);
        assert!(d.actions.is_empty());
    }
}

#[test]
fn a_template_with_an_unknown_variable_names_the_template() {
    let mut t = Templates::new();
    t.add(
        "welcome",
        "Hi {{ name }}",
        "Dear {{ nmae }},\nwelcome.",
        None,
    )
    .unwrap();
    let err = t
        .render("welcome", &serde_json::json!({"name": "Maria"}))
        .unwrap_err();
    match &err {
        RulesError::Template { template, message } => {
            assert_eq!(template, "welcome.txt");
            assert!(message.contains("undefined"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // The same templates still render with the right variables.
    t.add(
        "ok",
        "Hi {{ name }}",
        "Dear {{ name }}",
        Some("<p>{{ name }}</p>"),
    )
    .unwrap();
    let r = t
        .render("ok", &serde_json::json!({"name": "<Maria>"}))
        .unwrap();
    assert_eq!(r.subject, "Hi <Maria>");
    assert_eq!(
        r.html.as_deref(),
        Some("<p>&lt;Maria&gt;</p>"),
        "HTML is escaped"
    );
    let err = t.render("nope", &serde_json::json!({})).unwrap_err();
    assert!(err.to_string().contains("template `nope`"), "{err}");
}

#[test]
fn a_template_that_does_not_parse_or_runs_out_of_fuel_is_an_error() {
    let mut t = Templates::new();
    let err = t.add("bad", "{{ x", "", None).unwrap_err();
    assert!(err.to_string().contains("bad.subject"), "{err}");
    t.add(
        "spin",
        "s",
        "{% for a in range(1000) %}{% for b in range(1000) %}x{% endfor %}{% endfor %}",
        None,
    )
    .unwrap();
    let err = t.render("spin", &serde_json::json!({})).unwrap_err();
    assert!(
        err.to_string().contains("spin.txt") && err.to_string().contains("fuel"),
        "{err}"
    );
}

#[test]
fn a_script_over_the_size_limit_is_refused_before_it_is_compiled() {
    // 10 MB of statements: compiling it took 15 s and 640 MB.
    let body = "let x = 1 + 2 * 3;\n".repeat(10 * 1024 * 1024 / 19);
    let code = format!("fn on_lead_entered(ev) {{\n{body}}}");
    let started = std::time::Instant::now();
    let err = compile_one("huge", &code).unwrap_err();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "refused at once, not after compiling: {:?}",
        started.elapsed()
    );
    let m = err.to_string();
    assert!(
        m.contains("huge.rhai") && m.contains("262144 bytes (256 KiB)"),
        "{m}"
    );
    // The limit is a setting, and a script under it compiles.
    let small = Limits {
        max_script_bytes: 1024,
        ..Limits::default()
    };
    let err = RuleSet::compile([RuleSource::new("huge", &code[..4096])], small).unwrap_err();
    assert!(err.to_string().contains("1024 bytes"), "{err}");
    assert!(RuleSet::compile([RuleSource::new("good", GOOD)], small).is_ok());
    // A script just under the limit compiles, in bounded time.
    let n = (Limits::default().max_script_bytes - 100) / 19;
    let code = format!(
        "fn on_lead_entered(ev) {{\n{}}}",
        "let x = 1 + 2 * 3;\n".repeat(n)
    );
    let started = std::time::Instant::now();
    compile_one("big", &code).unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

#[test]
fn deep_nesting_under_the_size_limit_is_stopped_by_the_expression_depth_limit() {
    let depth = 20_000;
    let code = format!(
        "fn on_lead_entered(ev) {{ let x = {}1{}; }}",
        "(".repeat(depth),
        ")".repeat(depth)
    );
    assert!(code.len() < Limits::default().max_script_bytes);
    let started = std::time::Instant::now();
    let err = compile_one("deep", &code).unwrap_err();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(err.to_string().contains("deep.rhai"), "{err}");
}

#[test]
fn a_fail_closed_guard_that_fails_refuses_the_change_and_an_open_one_lets_it_through() {
    // `ev.title.len() / 0` fails at run time: the guard cannot judge the change.
    let failing = |closed: bool| {
        let declared = if closed {
            "fn fail_closed() { true }\n"
        } else {
            ""
        };
        format!("{declared}fn guard_lead_entered(ev) {{ let n = ev.title.len() / 0; }}")
    };
    let (t, v) = lead_entered();
    let closed = engine(&failing(true), Limits::default()).evaluate(&t, &v);
    let refusal = closed
        .refusal
        .expect("a fail-closed guard that fails refuses");
    assert_eq!(refusal.rule, "bad");
    assert!(
        refusal.reason.contains("could not decide"),
        "{}",
        refusal.reason
    );
    assert_eq!(closed.failures.len(), 1, "the failure is still reported");
    let open = engine(&failing(false), Limits::default()).evaluate(&t, &v);
    assert!(
        open.refusal.is_none(),
        "a guard fails open unless declared closed"
    );
    assert_eq!(open.failures.len(), 1);
    // Only a rule with a guard may declare it, and it must say true or false.
    let no_guard = compile_one(
        "bad",
        "fn fail_closed() { true }\nfn on_lead_entered(ev) { }",
    )
    .unwrap_err();
    assert!(
        no_guard.to_string().contains("rules with a guard"),
        "{no_guard}"
    );
    let not_bool = compile_one(
        "bad",
        "fn fail_closed() { 1 }\nfn guard_lead_entered(ev) { }",
    )
    .unwrap_err();
    assert!(not_bool.to_string().contains("true or false"), "{not_bool}");
}

#[test]
fn marketing_email_decides_a_marketing_message_and_email_a_service_one() {
    use crm_core::consent::Purpose;
    let set = RuleSet::compile(
        [RuleSource::new(
            "offers",
            r#"fn on_lead_entered(ev) {
                marketing_email("contact:primary", "offer", #{ code: "SPRING" });
                marketing_email("contact:primary", "offer_plain");
                email("contact:primary", "welcome");
            }"#,
        )],
        Limits::default(),
    )
    .unwrap();
    let (t, v) = lead_entered();
    let d = RhaiRuleEngine::new(set).evaluate(&t, &v);
    let purposes: Vec<(String, Purpose)> = d
        .actions
        .iter()
        .map(|a| match &a.action {
            Action::SendEmail {
                template, purpose, ..
            } => (template.clone(), *purpose),
            other => panic!("expected e-mails, got {other:?}"),
        })
        .collect();
    assert_eq!(
        purposes,
        vec![
            ("offer".to_string(), Purpose::Marketing),
            ("offer_plain".to_string(), Purpose::Marketing),
            ("welcome".to_string(), Purpose::Service),
        ]
    );
}
