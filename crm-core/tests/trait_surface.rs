//! The storage traits stay small: an adapter implements at most 25 required methods over all of them, the
//! conveniences live in the blanket `*Ext` traits (written out, or declared through crm-core's `typed_reads!`), and every forwarding impl forwards every method (it carries
//! `#[deny(clippy::missing_trait_methods)]`, which `scripts/test` runs clippy with). A trait declared through
//! crm-core's `storage_trait!` gets its forwarding impl from the macro, generated from the same method list as the
//! trait and carrying that attribute.
//!
//! `scripts/test` prints the count this test reports.

/// The body of `pub trait NAME` (or of the impl whose header starts with `header`) in `src`.
fn block<'a>(src: &'a str, header: &str) -> &'a str {
    let start = src
        .find(header)
        .unwrap_or_else(|| panic!("`{header}` not found"));
    let open = start + src[start..].find('{').expect("a block");
    let mut depth = 0usize;
    for (i, ch) in src[open..].char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return &src[open + 1..open + i];
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced block after `{header}`")
}

/// (required, provided) method names of a trait block: a required method's signature ends with `;` before any
/// `{`.
fn methods(body: &str) -> (Vec<String>, Vec<String>) {
    let mut required = Vec::new();
    let mut provided = Vec::new();
    let mut rest = body;
    while let Some(i) = rest.find("fn ") {
        let after = &rest[i + 3..];
        let name: String = after
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let semi = after.find(';').unwrap_or(usize::MAX);
        let brace = after.find('{').unwrap_or(usize::MAX);
        if semi < brace {
            required.push(name);
            rest = &after[semi..];
        } else {
            provided.push(name);
            // Skip the body.
            let b = block(after, "{");
            rest = &after[after.find(b).unwrap_or(0) + b.len()..];
        }
    }
    (required, provided)
}

const TRAITS: &[(&str, &str, &str)] = &[
    (
        "Store",
        include_str!("../src/store.rs"),
        "impl<S: Store + ?Sized> Store for Arc<S>",
    ),
    (
        "CommerceStore",
        include_str!("../src/commerce/store.rs"),
        "impl<S: CommerceStore + ?Sized> CommerceStore for Arc<S>",
    ),
    (
        "OutboxStore",
        include_str!("../src/outbox.rs"),
        "impl<S: OutboxStore + ?Sized> OutboxStore for Arc<S>",
    ),
];

/// crm-core's `storage_trait!` macro, which declares a storage trait and writes its forwarding impl for `Arc<S>`.
const STORAGE_TRAIT: &str = include_str!("../src/storage_trait.rs");

/// Whether `src` declares `pub trait NAME` as the entry of a `storage_trait!` invocation (whose methods are written
/// `fn m(args) -> Result<T>;`, without `async` and `&self`).
fn declared_through_macro(src: &str, name: &str) -> bool {
    let at = src
        .find(&format!("pub trait {name}:"))
        .unwrap_or_else(|| panic!("`pub trait {name}:` not found"));
    src[..at]
        .rfind("storage_trait! {")
        .is_some_and(|m| !src[m..at].contains("\n}\n"))
}

#[test]
fn adapters_implement_at_most_25_required_methods() {
    let mut total = 0;
    for (name, src, _) in TRAITS {
        let (required, provided) = methods(block(src, &format!("pub trait {name}:")));
        assert!(
            provided.is_empty(),
            "{name} has provided methods {provided:?}: conveniences belong in {name}Ext"
        );
        println!(
            "storage trait {name}: {} required methods: {}",
            required.len(),
            required.join(", ")
        );
        total += required.len();
    }
    println!("storage traits: {total} required methods in all (at most 25)");
    assert!(
        total <= 25,
        "{total} required storage methods; keep it at most 25"
    );
}

#[test]
fn every_forwarding_impl_is_complete_and_checked_by_clippy() {
    for (name, src, header) in TRAITS {
        let (required, _) = methods(block(src, &format!("pub trait {name}:")));
        let mut want = required.clone();
        want.sort();
        if declared_through_macro(src, name) {
            // The macro writes the trait and the forwarding impl from one list: each entry `fn $method(..)` is a
            // required method of the trait and a forwarding method of the impl, in the same repetition.
            let generic = "impl<S: $name + ?Sized> $name for std::sync::Arc<S>";
            let declared = block(
                STORAGE_TRAIT,
                "pub trait $name: Send + Sync + std::fmt::Debug",
            );
            assert!(
                declared.contains(
                    "async fn $method(&self, $($arg: $ty),*) -> $crate::error::Result<$ret>;"
                ),
                "storage_trait! declares every entry as a required method"
            );
            let forwarding = block(STORAGE_TRAIT, generic);
            assert!(
                forwarding.contains(
                    "async fn $method(&self, $($arg: $ty),*) -> $crate::error::Result<$ret> {"
                ) && forwarding.contains("(**self).$method($($arg),*).await"),
                "storage_trait! forwards every entry to `**self`"
            );
            let at = STORAGE_TRAIT.find(generic).expect("the impl");
            let attrs = &STORAGE_TRAIT[STORAGE_TRAIT[..at].rfind("#[doc").expect("its docs")..at];
            assert!(
                attrs.contains("#[deny(clippy::missing_trait_methods)]"),
                "storage_trait!'s {generic} carries #[deny(clippy::missing_trait_methods)]"
            );
            println!(
                "forwarding {header}: {} of {} methods (written by storage_trait!)",
                want.len(),
                want.len()
            );
            continue;
        }
        let (forwarded, _) = {
            let (r, p) = methods(block(src, header));
            (p, r)
        };
        let mut got = forwarded.clone();
        got.sort();
        assert_eq!(
            got, want,
            "the forwarding {header} forwards exactly every method"
        );
        let at = src.find(header).expect("the impl");
        let attrs = &src[src[..at].rfind("\n\n").unwrap_or(0)..at];
        assert!(
            attrs.contains("#[deny(clippy::missing_trait_methods)]"),
            "{header} carries #[deny(clippy::missing_trait_methods)]"
        );
        println!(
            "forwarding {header}: {} of {} methods",
            got.len(),
            want.len()
        );
    }
}

/// crm-core's `typed_reads!` macro, which declares an Ext trait of typed reads: every entry `fn m(..) -> T = key;`
/// gets its body from the macro, and the macro writes the blanket impl.
const TYPED_READS: &str = include_str!("../src/typed_reads.rs");

/// (required, provided) method names of a `typed_reads!` trait block: an entry without `= key` would be required
/// (the macro does not accept one).
fn typed_reads_methods(body: &str) -> (Vec<String>, Vec<String>) {
    let mut required = Vec::new();
    let mut provided = Vec::new();
    for entry in body.split("fn ").skip(1) {
        let name: String = entry
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if entry.contains(" =") {
            provided.push(name);
        } else {
            required.push(name);
        }
    }
    (required, provided)
}

#[test]
fn the_ext_traits_are_blanket_implemented_so_adapters_never_implement_them() {
    for (name, src, _) in TRAITS {
        let macro_header = format!("pub trait {name}Ext: {name} via ");
        let (required, provided) = if src.contains(&macro_header) {
            let blanket = "impl<S: $base + ?Sized> $name for S {}";
            assert!(
                TYPED_READS.contains(blanket),
                "typed_reads! writes the blanket impl `{blanket}` for {name}Ext"
            );
            typed_reads_methods(block(src, &macro_header))
        } else {
            let blanket = format!("impl<S: {name} + ?Sized> {name}Ext for S {{}}");
            assert!(
                src.contains(&blanket),
                "{name}Ext has the blanket impl `{blanket}`"
            );
            methods(block(src, &format!("pub trait {name}Ext:")))
        };
        assert!(
            required.is_empty(),
            "{name}Ext requires nothing: {required:?}"
        );
        assert!(!provided.is_empty());
    }
}

#[test]
fn the_cross_tenant_check_calls_every_required_method() {
    let check = include_str!("../src/conformance/tenancy.rs");
    // Writes are checked by their own conformance checks; claim_due serves every tenant by contract.
    let not_reads = ["commit", "ingest", "claim_due"];
    for (name, src, _) in TRAITS {
        let (required, _) = methods(block(src, &format!("pub trait {name}:")));
        for m in required.iter().filter(|m| !not_reads.contains(&m.as_str())) {
            assert!(
                check.contains(&format!(".{m}(")),
                "conformance/tenancy.rs calls {name}::{m} with another tenant's ids"
            );
        }
    }
}
