//! No rule source makes compiling panic: arbitrary text, and text shaped like the scheme's scripts with arbitrary
//! names, numbers and strings, compiles or gives a named error (#16). `PROPTEST_CASES` raises the cases.

use crm_rules::{Limits, RuleSet, RuleSource};
use proptest::prelude::*;

fn compile(code: String) -> Result<RuleSet, crm_rules::RulesError> {
    RuleSet::compile(
        [RuleSource {
            name: "probe".into(),
            file: "probe.rhai".into(),
            code,
        }],
        Limits::default(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(500),
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_text_compiles_or_is_a_named_error(code in ".{0,400}") {
        if let Err(e) = compile(code) {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn script_shaped_text_compiles_or_is_a_named_error(
        entry in "[a-z_]{1,20}",
        field in "[a-z_]{1,12}",
        timer in "[a-z_]{1,20}",
        n in any::<u64>(),
        text in "[^`\"\\\\]{0,40}",
    ) {
        let code = format!(
            "const TIMERS = [\"{timer}:{n}\"];\n\
             fn on_{entry}(ev) {{\n  if ev.{field} != () && ev.lead.revenue >= {n} {{\n    \
             notify(\"owner\", `{text}`, \"{text}\");\n    follow_up({n}, \"{text}\");\n  }}\n}}\n"
        );
        if let Err(e) = compile(code) {
            prop_assert!(!e.to_string().is_empty());
        }
    }
}
