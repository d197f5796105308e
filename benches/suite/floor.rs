//! The segment's floor on SQLite (#13): the benchmark's example segment (lapsed 90 days, the year's volume above a
//! threshold, bought a category that year) answered by the fastest plan found over the engine's roll-ups, written
//! by hand for this one question, so a report can say how far below the engine's statement any plan over these
//! tables can go on the same file.
//!
//! The plan reads three partner sets, each with one keyed range and no sorter, and combines them in Rust hash
//! tables (what SQLite's nested-loop joins have no operator for):
//!
//! 1. the customers whose volume that year is above the threshold: the year's rows of `sales_years`, filtered as
//!    stepped;
//! 2. the net quantity each partner bought of the category that year: its twelve months of `bought_months`,
//!    summed per partner in a hash map;
//! 3. the partners who bought in the last 90 days: `partner_last_sales` by its index on the day;
//!
//! then seeks the members' names (`partners_names`) in id order. It runs once on one connection and once with the
//! three reads on three connections at the same time (the machine's cores, as DuckDB uses them). Its members must
//! equal the plain-SQL baseline's ([`super::work::sql::segment`]), so the floor answers the same question.

use super::gen::Manifest;
use super::work::SegmentQuery;
use rusqlite::{params, Connection, OpenFlags};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Instant;

/// A partner id as stored (16 bytes).
type Key = [u8; 16];

/// One timed evaluation of the plan.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Seconds with every read on one connection, one after the other.
    pub sequential: f64,
    /// Seconds with the three partner sets read on three connections at once.
    pub parallel: f64,
}

/// What [`probe`] measured.
#[derive(Debug, Clone)]
pub struct Floor {
    /// The members found (equal to the baseline's).
    pub members: usize,
    /// The sizes of the three partner sets: volume above the threshold, bought the category, bought recently.
    pub sets: (usize, usize, usize),
    /// Each round's timing, the untimed warm-up excluded.
    pub rounds: Vec<Timing>,
}

impl Floor {
    /// The median of the rounds' sequential and parallel seconds.
    pub fn medians(&self) -> (f64, f64) {
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
        };
        (
            median(self.rounds.iter().map(|t| t.sequential).collect()),
            median(self.rounds.iter().map(|t| t.parallel).collect()),
        )
    }
}

fn se(e: rusqlite::Error) -> String {
    e.to_string()
}

fn key(v: rusqlite::types::ValueRef<'_>) -> Result<Key, String> {
    let b = v.as_blob().map_err(|e| e.to_string())?;
    Key::try_from(b).map_err(|_| format!("a partner id of {} bytes", b.len()))
}

/// The first column of every row, a partner id.
fn keys(mut rows: rusqlite::Rows<'_>) -> Result<HashSet<Key>, String> {
    let mut out = HashSet::new();
    while let Some(r) = rows.next().map_err(se)? {
        out.insert(key(r.get_ref(0).map_err(se)?)?);
    }
    Ok(out)
}

/// Step 1: the customers whose net sales of the year exceed the threshold.
fn volume(c: &Connection, q: &SegmentQuery, year: i32) -> Result<HashSet<Key>, String> {
    let mut s = c
        .prepare_cached(&format!(
            "SELECT key FROM {} WHERE tenant = ?1 AND reporting = 'EUR' AND dim = ?2 AND year = ?3 \
             AND revenue_units > ?4",
            crm_storage_sql::rollup::YEARS
        ))
        .map_err(se)?;
    let dim = crm_storage_sql::rollup::dim(crm_core::commerce::GroupBy::Customer);
    let rows = s
        .query(params![q.tenant.as_bytes(), dim, year, q.threshold_units])
        .map_err(se)?;
    keys(rows)
}

/// Step 2: the partners whose net quantity of the category over the year's months is above zero.
fn bought(c: &Connection, q: &SegmentQuery, year: i32) -> Result<HashSet<Key>, String> {
    let mut s = c
        .prepare_cached(&format!(
            "SELECT partner, quantity_units FROM {} WHERE tenant = ?1 AND kind = 1 AND item = ?2 \
             AND month BETWEEN ?3 AND ?4",
            crm_storage_sql::rollup::BOUGHT
        ))
        .map_err(se)?;
    let first = i64::from(year) * 12;
    let mut rows = s
        .query(params![
            q.tenant.as_bytes(),
            q.category.as_bytes(),
            first,
            first + 11
        ])
        .map_err(se)?;
    let mut sums: HashMap<Key, i64> = HashMap::new();
    while let Some(r) = rows.next().map_err(se)? {
        let k = key(r.get_ref(0).map_err(se)?)?;
        *sums.entry(k).or_default() += r.get::<_, i64>(1).map_err(se)?;
    }
    Ok(sums
        .into_iter()
        .filter(|(_, q)| *q > 0)
        .map(|(k, _)| k)
        .collect())
}

/// Step 3: the partners with a sale on or after the lapsed day.
fn recent(c: &Connection, q: &SegmentQuery) -> Result<HashSet<Key>, String> {
    let mut s = c
        .prepare_cached(&format!(
            "SELECT partner FROM {} WHERE tenant = ?1 AND last_sale >= ?2",
            crm_storage_sql::rollup::LAST_SALES
        ))
        .map_err(se)?;
    let rows = s
        .query(params![q.tenant.as_bytes(), q.lapsed])
        .map_err(se)?;
    keys(rows)
}

/// The members (in id order) with their names, as `"<id> <name>"`.
fn members(
    c: &Connection,
    q: &SegmentQuery,
    (v, b, r): (HashSet<Key>, HashSet<Key>, HashSet<Key>),
) -> Result<Vec<String>, String> {
    let mut ids: Vec<Key> = v
        .into_iter()
        .filter(|k| b.contains(k) && !r.contains(k))
        .collect();
    ids.sort_unstable();
    let mut s = c
        .prepare_cached(&format!(
            "SELECT name FROM partners INDEXED BY {} WHERE tenant = ?1 AND id = ?2 AND merged_into IS NULL",
            crm_storage_sql::segment::PARTNER_NAMES
        ))
        .map_err(se)?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let mut rows = s.query(params![q.tenant.as_bytes(), &id[..]]).map_err(se)?;
        if let Some(row) = rows.next().map_err(se)? {
            let name: String = row.get(0).map_err(se)?;
            out.push(format!("{} {name}", uuid::Uuid::from_bytes(id)));
        }
    }
    Ok(out)
}

type Sets = (HashSet<Key>, HashSet<Key>, HashSet<Key>);

fn sequential(c: &Connection, q: &SegmentQuery, year: i32) -> Result<Sets, String> {
    Ok((volume(c, q, year)?, bought(c, q, year)?, recent(c, q)?))
}

fn parallel(cs: &mut [Connection; 3], q: &SegmentQuery, year: i32) -> Result<Sets, String> {
    let [a, b, c] = cs;
    std::thread::scope(|s| {
        let v = s.spawn(move || volume(a, q, year));
        let bo = s.spawn(move || bought(b, q, year));
        let r = recent(c, q);
        let join = |h: std::thread::ScopedJoinHandle<'_, Result<HashSet<Key>, String>>| {
            h.join()
                .map_err(|_| "a probe thread panicked".to_string())?
        };
        Ok((join(v)?, join(bo)?, r?))
    })
}

/// Runs the plan on the SQLite file `db` holding the data of `manifest`: one untimed warm-up, then `rounds` timed
/// rounds, each once on one connection and once on three. Each connection keeps SQLite's default page cache, as
/// the engine's readers do.
///
/// # Errors
/// A message when the file cannot be read, the data has no commerce facts, or the plan's members differ from the
/// plain-SQL baseline's.
pub fn probe(db: &Path, manifest: &Manifest, rounds: usize) -> Result<Floor, String> {
    let as_of = manifest.commerce.as_of.ok_or("no commerce data")?;
    let year = manifest.commerce.year;
    let period = crm_core::commerce::Period::year(year).map_err(|e| e.to_string())?;
    let q = SegmentQuery::new(manifest.tenant, manifest, period, as_of)?;
    let open = || {
        Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| format!("{}: {e}", db.display()))
    };
    let mut cs = [open()?, open()?, open()?];
    let mut expected = super::work::sql::segment(&cs[0], &q)?;
    expected.sort();
    let sets = sequential(&cs[0], &q, year)?;
    let sizes = (sets.0.len(), sets.1.len(), sets.2.len());
    let got = members(&cs[0], &q, sets)?;
    if got != expected {
        return Err(format!(
            "the segment's floor found {} members, the plain-SQL baseline {}",
            got.len(),
            expected.len()
        ));
    }
    let mut timings = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        let one = members(&cs[0], &q, sequential(&cs[0], &q, year)?)?;
        let seq = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let sets = parallel(&mut cs, &q, year)?;
        let three = members(&cs[0], &q, sets)?;
        let par = started.elapsed().as_secs_f64();
        if one != expected || three != expected {
            return Err("the segment's floor changed its members between rounds".into());
        }
        timings.push(Timing {
            sequential: seq,
            parallel: par,
        });
    }
    Ok(Floor {
        members: expected.len(),
        sets: sizes,
        rounds: timings,
    })
}
