//! # crm-storage-sql: the statements both storage adapters run, built once
//!
//! The key design decision: **one builder per statement, and the differences between SQLite and PostgreSQL in one
//! small [`Dialect`] seam** (placeholders, filtered aggregates, boolean literals, byte-order text comparison, JSON
//! access). The adapters keep only what is theirs: connections and transactions, binding [`Param`]s to their
//! driver's types, bulk loading, error mapping and migrations.
//!
//! This crate has no database driver: it turns the engine's requests (a segment's criteria tree, a record key,
//! an outbox settlement) into a [`Sql`] — text and neutral parameters — which each adapter binds and runs. The
//! conformance suite in `crm-core` runs every statement on both adapters against the reference models.
//!
//! Why not `sea-query`: evaluated (1.0.2) and not taken. Its rusqlite binder pins rusqlite 0.38 while the engine is
//! on 0.40 (one `libsqlite3-sys` per build), so its values would be bound by hand anyway; and the statements here —
//! grouped CTE plans with `FILTER`/`CASE` aggregates, keyset row comparisons, version-checked upserts — read and
//! review better as SQL text with a dialect seam than as builder chains.

pub mod attribution;
pub mod bulk;
pub mod commerce;
mod dialect;
pub mod erasure;
pub mod fetch;
pub mod merge;
pub mod outbox;
pub mod report;
pub mod rollup;
mod run;
pub mod schema;
pub mod segment;
pub mod store;
mod table;
pub mod target_counts;
pub mod uplift;

pub use dialect::{Dialect, JsonText, Kind, Param, Sql};
pub use run::{corrupt, merge_sums, Cell, Collected, Merged, RowSource, Runner};
pub use table::Table;

use chrono::NaiveTime;

/// `impl $trait for $store` whose every method forwards to a shared function taking the store first: the shape of
/// [`commerce_store!`], [`outbox_store!`] and [`store!`], written once. The names of [`__private`] are in scope.
#[doc(hidden)]
#[macro_export]
macro_rules! __forward_impl {
    ($store:ty: $trait:ident {
        $(fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty = $target:path;)*
    }) => {
        const _: () = {
            #[allow(unused_imports)]
            use $crate::__private::*;
            #[$crate::__private::async_trait]
            impl $trait for $store {
                $(async fn $name(&self, $($arg: $ty),*) -> $ret {
                    $target(self, $($arg),*).await
                })*
            }
        };
    };
}

#[doc(hidden)]
pub mod __private {
    //! What [`commerce_store!`](crate::commerce_store) names, so an adapter needs no imports for it.
    pub use async_trait::async_trait;
    pub use chrono::Duration;
    pub use chrono::NaiveDate;
    pub use crm_core::commerce::{
        Balance, CampaignMeasure, CampaignRead, CampaignSums, CampaignTarget, CommerceKey,
        CommerceRecord, CommerceStore, Criteria, OpenItem, OutcomeQuery, OutcomeSums, Period,
        ProfitSums, Progress, RollupAction, RollupCheck, SegmentMember, SumsQuery,
    };
    pub use crm_core::event::{CommentTarget, DomainEvent};
    pub use crm_core::id::PipelineId;
    pub use crm_core::id::{CampaignId, OutboxId, PartnerId, TenantId, UserId};
    pub use crm_core::lead::Lead;
    pub use crm_core::money::Currency;
    pub use crm_core::outbox::{
        InboxItem, InboxWrite, OutboxMessage, OutboxRef, OutboxStatus, OutboxStore, Settlement,
    };
    pub use crm_core::request::{Comment, Request};
    pub use crm_core::store::{
        Board, BulkLoad, BulkStep, ChangeSet, Funnel, Key, LeadQuery, Page, PageRequest, Record,
        RequestQuery, Store, TimelineOf,
    };
    pub use crm_core::time::Timestamp;
    pub use crm_core::Result;
}
use crm_core::commerce::{day_number, Period};

/// A `LIKE … ESCAPE '\'` pattern matching `needle` anywhere (`%`, `_` and `\` escaped).
///
/// ```
/// assert_eq!(crm_storage_sql::like_contains("50%_off"), "%50\\%\\_off%");
/// ```
pub fn like_contains(needle: &str) -> String {
    let mut p = String::with_capacity(needle.len() + 2);
    p.push('%');
    for c in needle.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// Day-number bounds of an optional period, both included (all days when `None`).
pub fn day_bounds(p: Option<Period>) -> (i32, i32) {
    p.map(|p| (day_number(p.from()), day_number(p.to())))
        .unwrap_or((i32::MIN, i32::MAX))
}

/// Microsecond bounds `[from, to)` of an optional period (all time when `None`).
pub fn micro_bounds(p: Option<Period>) -> (i64, i64) {
    p.map(|p| {
        let start = p
            .from()
            .and_time(NaiveTime::MIN)
            .and_utc()
            .timestamp_micros();
        // A period ends by 2200-12-31 (the business dates), so the next day exists; past chrono's last day the
        // bound is open.
        let end = p.to().succ_opt().map_or(i64::MAX, |d| {
            d.and_time(NaiveTime::MIN).and_utc().timestamp_micros()
        });
        (start, end)
    })
    .unwrap_or((i64::MIN, i64::MAX))
}

/// Checks an update carries the next version: `expected + 1`.
///
/// # Errors
///
/// [`crm_core::Error::Invalid`] on `version` otherwise.
pub fn check_next_version(entity: &str, next: u64, expected: u64) -> crm_core::Result<()> {
    if expected.checked_add(1) != Some(next) {
        return Err(crm_core::Error::invalid(
            "version",
            format!(
                "an updated {entity} must carry version {} (expected {expected} + 1), not {next}",
                expected.saturating_add(1)
            ),
        ));
    }
    Ok(())
}

/// `AND (key, id) <op> (k, i)` after (`>`) or before (`<`) a cursor's `(k, i)` (nothing without a cursor): a row
/// comparison on PostgreSQL, which uses the index; spelled out on SQLite.
pub(crate) fn keyset(
    sql: &mut Sql,
    key: &str,
    op: &str,
    after: Option<(i64, uuid::Uuid)>,
) -> String {
    let Some((k, i)) = after else {
        return String::new();
    };
    let k = sql.bind(k);
    let i = sql.bind(i);
    match sql.dialect {
        Dialect::Postgres => format!(" AND ({key}, id) {op} ({k}, {i})"),
        Dialect::Sqlite => format!(" AND ({key} {op} {k} OR ({key} = {k} AND id {op} {i}))"),
    }
}

/// The keyset after which `page` starts: the `(sort key, id)` of its cursor, if any (after validating the page).
pub fn page_after(
    page: &crm_core::store::PageRequest,
) -> crm_core::Result<Option<(i64, uuid::Uuid)>> {
    page.validate()?;
    page.after
        .as_ref()
        .map(crm_core::store::Cursor::decode)
        .transpose()
}

/// Cuts a `limit + 1` fetch into a page whose cursor points after the last item kept; `key` gives an item's
/// `(sort key, id)`.
pub fn paginate<T>(
    items: Vec<T>,
    limit: u32,
    key: impl Fn(&T) -> (i64, uuid::Uuid),
) -> crm_core::store::Page<T> {
    let keys = items.iter().map(key).collect();
    paginate_keyed(items, keys, limit)
}

/// [`paginate`] with the keys computed beside the items (`keys[i]` is the key of `items[i]`).
pub fn paginate_keyed<T>(
    items: Vec<T>,
    keys: Vec<(i64, uuid::Uuid)>,
    limit: u32,
) -> crm_core::store::Page<T> {
    let mut paired: Vec<(T, (i64, uuid::Uuid))> = items.into_iter().zip(keys).collect();
    let more = paired.len() > limit as usize;
    paired.truncate(limit as usize);
    let next = if more {
        paired
            .last()
            .map(|(_, (k, id))| crm_core::store::Cursor::encode(*k, *id))
    } else {
        None
    };
    crm_core::store::Page {
        items: paired.into_iter().map(|(t, _)| t).collect(),
        next,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn bounds_cover_whole_days_and_open_at_the_edges() {
        let d = |m, d| NaiveDate::from_ymd_opt(2026, m, d).unwrap();
        let p = Period::new(d(1, 1), d(1, 31)).unwrap();
        let (a, b) = micro_bounds(Some(p));
        assert_eq!(b - a, 31 * 86_400_000_000);
        assert_eq!(micro_bounds(None), (i64::MIN, i64::MAX));
        assert_eq!(day_bounds(Some(p)).1 - day_bounds(Some(p)).0, 30);
        assert_eq!(like_contains("a\\b"), "%a\\\\b%");
    }

    #[test]
    fn paginate_sets_next_only_when_more_follow() {
        let id = uuid::Uuid::nil();
        let p = paginate(vec![1, 2, 3], 2, |x| (*x as i64, id));
        assert_eq!(p.items, vec![1, 2]);
        assert_eq!(p.next.unwrap().decode().unwrap(), (2, id));
        let p = paginate(vec![1, 2], 2, |x| (*x as i64, id));
        assert!(p.next.is_none());
    }
}
