//! crm-core's modules form layers: no import cycles between its top-level modules (code references `crate::m`;
//! comments, doc links and tests excluded; the conformance suite, which exercises everything, is left out).
//!
//! The layers today, bottom up: `id`, `error` (with `kinds`), `time`, `money`, `validate`, `page`, `actor`; the
//! activity log `event`; the domain (`partner`, `pipeline`, `lead`, `request`, `dedupe`, `merge`, `commerce`); the rule
//! engine's ports `comms` and the storage ports `outbox`, `store`; the writer `service`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).expect("a source directory") {
        let p = e.expect("an entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Module → the modules its code names.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(&src).expect("under src");
        let first = rel.components().next().expect("a component");
        let module = first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if module == "lib" || module == "conformance" {
            continue;
        }
        let text = std::fs::read_to_string(&f).expect("readable source");
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let deps = g.entry(module.clone()).or_default();
        for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
            let mut rest = line;
            while let Some(i) = rest.find("crate::") {
                rest = &rest[i + "crate::".len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                if !name.is_empty() && name != module {
                    deps.insert(name);
                }
            }
        }
    }
    g
}

/// A cycle through `start`, if any (depth-first search over the graph).
fn cycle_from(
    g: &BTreeMap<String, BTreeSet<String>>,
    start: &str,
    at: &str,
    path: &mut Vec<String>,
    seen: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    for next in g.get(at).into_iter().flatten() {
        if next == start {
            let mut c = path.clone();
            c.push(start.to_string());
            return Some(c);
        }
        if seen.insert(next.clone()) {
            path.push(next.clone());
            if let Some(c) = cycle_from(g, start, next, path, seen) {
                return Some(c);
            }
            path.pop();
        }
    }
    None
}

#[test]
fn no_import_cycles_between_the_modules_of_crm_core() {
    let g = graph();
    for (m, deps) in &g {
        println!(
            "{m} -> {}",
            deps.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    for m in g.keys() {
        let mut path = vec![m.clone()];
        if let Some(c) = cycle_from(&g, m, m, &mut path, &mut BTreeSet::new()) {
            panic!("an import cycle: {}", c.join(" -> "));
        }
    }
}

#[test]
fn the_base_layer_depends_on_no_domain_module() {
    let g = graph();
    let base = [
        "id", "error", "kinds", "time", "money", "validate", "page", "actor",
    ];
    let domain = [
        "event", "partner", "pipeline", "lead", "request", "dedupe", "merge", "consent",
        "commerce", "comms", "outbox", "store", "service",
    ];
    for b in base {
        let deps = g.get(b).cloned().unwrap_or_default();
        for d in domain {
            assert!(!deps.contains(d), "the base module `{b}` names `{d}`");
        }
    }
    for d in domain {
        if d != "service" {
            assert!(
                !g.get(d).is_some_and(|deps| deps.contains("service")),
                "only the writer names the service: `{d}` does"
            );
        }
    }
}
