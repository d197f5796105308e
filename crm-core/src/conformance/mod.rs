//! The shared storage conformance suite.
//!
//! Every adapter runs all of it from its `tests/conformance.rs` with
//! [`backend_conformance_tests!`](crate::backend_conformance_tests), the one registry of checks by capability: one
//! test per `check_*` function (each run twice: on the adapter, and again through `Arc<Arc<dyn Backend>>`, so every
//! forwarding impl is exercised), plus the property tests: the differential one ([`run_differential`]) drives random
//! operation sequences through the service over a [`Differential`] store that forwards every call to the adapter
//! *and* to the naive [`model::MemStore`] and fails on the first difference; the commerce one compares reports with
//! [`crate::commerce::reference`]; the outbox one compares with [`crate::outbox::MemoryOutbox`]; the no-panic one
//! ([`no_panic::run_no_panic`]) sends arbitrary input through the services and fails on a panic. One `backend`
//! check, [`check_scenarios`], replays the lifecycle and commerce [`scenario`]s (TOML files, embedded) through the
//! services.
//!
//! The registry runs on the reference model itself ([`model::MemStore`], `crm-core/tests/conformance.rs`), on
//! each adapter, and on each adapter's store inside a host's transaction (`tests/host_conformance.rs`).
//!
//! Checks work in a fresh random tenant, so they need no clean database and also prove tenant isolation.

/// `Debug` for a fixture: its name and its tenant only (the services and stores it holds would print pages).
macro_rules! debug_tenant {
    ($fixture:ident => $($tenant:ident).+) => {
        impl std::fmt::Debug for $fixture {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($fixture))
                    .field("tenant", &self.$($tenant).+)
                    .finish()
            }
        }
    };
}

pub mod attachments;
mod checks;
pub mod commerce;
mod consent;
mod contact_merge;
mod differential;
pub mod erasure;
mod lead_merge;
mod merge;
pub mod model;
pub mod no_panic;
pub mod outbox;
pub mod portal;
mod quality;
pub mod sales;
pub mod scenario;
mod sends;
pub mod target_counts;
pub mod tenancy;
mod uplift;

pub use checks::*;
pub use consent::check_consent;
pub use contact_merge::check_contact_merge;
pub use differential::{run_differential, same_error, BlockOn, Differential, DEFAULT_CASES};
pub use erasure::check_erasure;
pub use lead_merge::check_lead_merge;
pub use merge::check_partner_merge;
pub use portal::{
    check_portal_payments, check_portal_representatives, check_portal_sessions_and_contacts,
};
pub use quality::{
    check_duplicate_matchers, check_imports, check_lead_and_contact_host_refs, check_partner_pages,
    check_settings,
};
pub use sales::{
    check_contact_log, check_meetings, check_meetings_starting, check_quotation_expiry,
    check_quotation_mail,
};
pub use scenario::check_scenarios;
pub use sends::check_campaign_sends;
pub use tenancy::check_every_read_is_tenant_scoped;

/// Runs one property-test case's future on `block_on`, turning a panic inside it (a failed assertion of a check)
/// into the case's failure, so proptest can shrink it.
pub(crate) fn block_on_case<'a>(
    block_on: &BlockOn<'a>,
    case: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + 'a>>,
) -> Result<(), proptest::test_runner::TestCaseError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| block_on(case))).map_err(|p| {
        proptest::test_runner::TestCaseError::fail(
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into()),
        )
    })
}

/// A backend's parts as the checks take them: the store, the commerce store and the outbox store.
pub trait BackendParts {
    /// The backend as its [`Store`](crate::store::Store).
    fn store(&self) -> std::sync::Arc<dyn crate::store::Store>;
    /// The backend as its [`CommerceStore`](crate::commerce::CommerceStore).
    fn commerce(&self) -> std::sync::Arc<dyn crate::commerce::CommerceStore>;
    /// The backend as its [`OutboxStore`](crate::outbox::OutboxStore).
    fn outbox(&self) -> std::sync::Arc<dyn crate::outbox::OutboxStore>;
}

impl BackendParts for std::sync::Arc<dyn crate::store::Backend> {
    fn store(&self) -> std::sync::Arc<dyn crate::store::Store> {
        self.clone()
    }
    fn commerce(&self) -> std::sync::Arc<dyn crate::commerce::CommerceStore> {
        self.clone()
    }
    fn outbox(&self) -> std::sync::Arc<dyn crate::outbox::OutboxStore> {
        self.clone()
    }
}

/// The names of every check, by capability, in the order [`backend_conformance_tests!`](crate::backend_conformance_tests)
/// runs them (taken from its registry, where each name is written once).
pub const CHECKS: &[&str] = crate::backend_conformance_tests!(@registry names);

/// The one conformance registry: every check of every capability, and the property tests, for a backend factory.
///
/// `$factory` is an expression evaluating to a future of `Option<Arc<dyn Backend>>`; `None` means "skip" (for
/// example, no PostgreSQL server configured) and the factory should say why on stderr. Each check runs twice: on the
/// adapter, and again through `Arc<Arc<dyn Backend>>`, so every forwarding impl is exercised. The calling crate
/// needs `tokio` (with `rt-multi-thread` and `macros`) as a dev-dependency.
///
/// Checks are registered by capability (the storage trait they exercise): `store` checks take the
/// [`Store`](crate::store::Store), `commerce` checks the store and the
/// [`CommerceStore`](crate::commerce::CommerceStore), `outbox` checks the store and the
/// [`OutboxStore`](crate::outbox::OutboxStore), `backend` checks the whole [`Backend`](crate::store::Backend)
/// (among them [`check_scenarios`], every scenario file). A new check is added to this list only.
#[macro_export]
macro_rules! backend_conformance_tests {
    (@registry $mode:ident $($args:tt)*) => {
        $crate::backend_conformance_tests! { @ $mode $($args)*;
            store [
                check_partner_round_trip,
                check_partner_host_refs,
                check_lead_and_contact_host_refs,
                check_imports,
                check_partner_pages,
                check_settings,
                check_tenant_isolation,
                check_commit_refuses_foreign_tenant,
                check_commit_refuses_raw_pipeline,
                check_insert_existing_is_already_exists,
                check_stale_version_is_conflict,
                check_change_set_is_atomic,
                check_failed_operation_writes_nothing,
                check_lead_lifecycle,
                check_stage_requirements,
                check_money_is_exact,
                check_board,
                check_query_filters,
                check_keyset_pagination,
                check_lead_scores,
                check_requests_overdue_first,
                check_timer_queries,
                check_comments_and_timelines,
                check_duplicates,
                check_duplicate_matchers,
                check_events_since,
                check_ingest
            ]
            commerce [
                check_commerce_documents,
                check_commerce_bad_input,
                check_commerce_balances,
                check_commerce_rate_rules,
                check_commerce_documents_due_and_renewing,
                check_commerce_campaign,
                check_campaign_uplift,
                check_campaign_attribution,
                check_campaign_budget_alerts,
                check_commerce_isolation,
                check_commerce_quotations,
                check_commerce_contracts,
                check_commerce_rollups,
                check_bulk_load,
                check_ingest_keeps_rollups,
                check_attachments,
                check_portal_reads_and_requests
            ]
            outbox [
                check_outbox_enqueue_is_atomic_with_the_change,
                check_outbox_idempotency_key_is_unique,
                check_outbox_claim_takes_a_lease,
                check_outbox_retry_waits_for_the_back_off,
                check_outbox_dead_letter,
                check_outbox_operator_retry,
                check_outbox_inbox_read_unread,
                check_outbox_tenant_isolation
            ]
            backend [
                check_every_read_is_tenant_scoped,
                check_partner_merge,
                check_contact_merge,
                check_lead_merge,
                check_erasure,
                check_consent,
                check_campaign_sends,
                check_meetings,
                check_quotation_mail,
                check_contact_log,
                check_quotation_expiry,
                check_meetings_starting,
                check_portal_representatives,
                check_portal_payments,
                check_portal_sessions_and_contacts,
                check_scenarios
            ]
        }
    };
    (@names; store [$($s:ident),*] commerce [$($c:ident),*] outbox [$($o:ident),*] backend [$($k:ident),*]) => {
        &[$(stringify!($s),)* $(stringify!($c),)* $(stringify!($o),)* $(stringify!($k),)*]
    };
    (@tests $factory:expr; store [$($s:ident),*] commerce [$($c:ident),*] outbox [$($o:ident),*] backend [$($k:ident),*]) => {
        $($crate::backend_conformance_tests!(@check $factory; $k(b) => $crate::conformance::$k(&b));)*
        $($crate::backend_conformance_tests!(@check $factory; $s(b) => $crate::conformance::$s(&b.store()));)*
        $($crate::backend_conformance_tests!(@check $factory; $c(b) => $crate::conformance::commerce::$c(&b.store(), &b.commerce()));)*
        $($crate::backend_conformance_tests!(@check $factory; $o(b) => $crate::conformance::outbox::$o(&b.store(), &b.outbox()));)*

        fn proptest_cases(default: u32) -> u32 {
            std::env::var("CRM_PROPTEST_CASES")
                .or_else(|_| std::env::var("PROPTEST_CASES"))
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        }

        fn proptest_runtime() -> tokio::runtime::Runtime {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a tokio runtime")
        }

        $crate::backend_conformance_tests!(@property $factory; differential_property_test($crate::conformance::DEFAULT_CASES)
            => |b, block, cases| $crate::conformance::run_differential(b, block, cases));
        $crate::backend_conformance_tests!(@property $factory; commerce_property_test($crate::conformance::commerce::COMMERCE_CASES)
            => |b, block, cases| $crate::conformance::commerce::run_commerce_properties(b.clone(), b, block, cases));
        $crate::backend_conformance_tests!(@property $factory; target_count_property_test($crate::conformance::target_counts::TARGET_COUNT_CASES)
            => |b, block, cases| $crate::conformance::target_counts::run_target_count_properties(b.clone(), b, block, cases));
        $crate::backend_conformance_tests!(@property $factory; no_panic_property_test($crate::conformance::no_panic::NO_PANIC_CASES)
            => |b, block, cases| $crate::conformance::no_panic::run_no_panic(b, block, cases));
        $crate::backend_conformance_tests!(@property $factory; portal_scope_property_test($crate::conformance::portal::PORTAL_CASES)
            => |b, block, cases| $crate::conformance::portal::run_portal_scope(b.clone(), b, block, cases));
        $crate::backend_conformance_tests!(@property $factory; outbox_model_property_test($crate::conformance::outbox::OUTBOX_CASES)
            => |b, block, cases| $crate::conformance::outbox::run_outbox_model(b.clone(), b, block, cases));
    };
    // One check as a test: `$run` with `$b` bound to the backend, then again to it wrapped in another `Arc`.
    (@check $factory:expr; $name:ident($b:ident) => $run:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            use $crate::conformance::BackendParts as _;
            let backend: Option<std::sync::Arc<dyn $crate::store::Backend>> = $factory.await;
            let Some(backend) = backend else { return };
            let wrapped: std::sync::Arc<dyn $crate::store::Backend> = std::sync::Arc::new(backend.clone());
            for $b in [backend, wrapped] {
                $run.await;
            }
        }
    };
    // One property test: `$run` with the backend, a way to block on its futures and the number of cases (`$default`
    // unless `CRM_PROPTEST_CASES` or `PROPTEST_CASES` says otherwise).
    (@property $factory:expr; $name:ident($default:expr) => |$b:ident, $block:ident, $cases:ident| $run:expr) => {
        #[test]
        fn $name() {
            let rt = proptest_runtime();
            let backend: Option<std::sync::Arc<dyn $crate::store::Backend>> = rt.block_on(async { $factory.await });
            let Some($b) = backend else { return };
            let $cases = proptest_cases($default);
            let $block: &$crate::conformance::BlockOn<'_> = &|f| rt.block_on(f);
            $run;
        }
    };
    ($factory:expr) => {
        $crate::backend_conformance_tests!(@registry tests $factory);
    };
}
