//! The shared storage conformance suite.
//!
//! Every adapter runs all of it from its `tests/conformance.rs` with [`conformance_tests!`](crate::conformance_tests):
//! one test per `check_*` function (each run twice: on the adapter, and again wrapped in the forwarding `impl Store for Arc<S>`), plus the
//! differential property test [`run_differential`], which drives random operation sequences through the service over
//! a [`Differential`] store that forwards every call to the adapter *and* to the naive [`model::MemStore`] and fails
//! on the first difference.
//!
//! Checks work in a fresh random tenant, so they need no clean database and also prove tenant isolation.

mod checks;
pub mod commerce;
mod differential;
pub mod model;
pub mod outbox;

pub use checks::*;
pub use differential::{run_differential, same_error, BlockOn, Differential, DEFAULT_CASES};

/// The names of every check, in the order [`conformance_tests!`](crate::conformance_tests) runs them.
pub const CHECKS: &[&str] = &[
    "check_partner_round_trip",
    "check_tenant_isolation",
    "check_commit_refuses_foreign_tenant",
    "check_commit_refuses_raw_pipeline",
    "check_insert_existing_is_already_exists",
    "check_stale_version_is_conflict",
    "check_change_set_is_atomic",
    "check_failed_operation_writes_nothing",
    "check_lead_lifecycle",
    "check_stage_requirements",
    "check_money_is_exact",
    "check_board",
    "check_query_filters",
    "check_keyset_pagination",
    "check_requests_overdue_first",
    "check_comments_and_timelines",
    "check_duplicates",
    "check_events_since",
    "check_ingest",
];

/// Generates one test per conformance check plus the differential property test, for a store factory.
///
/// `$factory` is an expression evaluating to a future of `Option<Arc<dyn Store>>`; `None` means "skip" (for
/// example, no PostgreSQL server configured) and the factory should say why on stderr. The calling crate needs
/// `tokio` (with `rt-multi-thread` and `macros`) as a dev-dependency.
#[macro_export]
macro_rules! conformance_tests {
    ($factory:expr) => {
        $crate::conformance_tests!(@each $factory;
            check_partner_round_trip,
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
            check_requests_overdue_first,
            check_comments_and_timelines,
            check_duplicates,
            check_events_since,
            check_ingest
        );

        #[test]
        fn differential_property_test() {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a tokio runtime");
            let store: Option<std::sync::Arc<dyn $crate::store::Store>> = rt.block_on(async { $factory.await });
            let Some(store) = store else { return };
            let cases = std::env::var("CRM_PROPTEST_CASES")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or($crate::conformance::DEFAULT_CASES);
            $crate::conformance::run_differential(store, &|f| rt.block_on(f), cases);
        }
    };
    (@each $factory:expr; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let store: Option<std::sync::Arc<dyn $crate::store::Store>> = $factory.await;
                let Some(store) = store else { return };
                // Once on the adapter itself, once through the forwarding `impl Store for Arc<S>`.
                $crate::conformance::$name(&store).await;
                let wrapped: std::sync::Arc<dyn $crate::store::Store> = std::sync::Arc::new(store.clone());
                $crate::conformance::$name(&wrapped).await;
            }
        )*
    };
}
