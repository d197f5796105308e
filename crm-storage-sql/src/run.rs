//! What an adapter gives the shared reads: a [`Runner`] that runs a [`Sql`] and returns its rows as neutral
//! [`Cell`]s. The reads themselves (building the statement, decoding the rows, folding them into report types) are
//! written once over it.

use crate::{Dialect, Sql};
use crm_core::{Error, Result, StorageErrorKind};
use uuid::Uuid;

/// One value of a result row, whatever the driver's type.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cell {
    /// NULL.
    Null,
    /// An integer (counts, codes, units; PostgreSQL's exact integral numerics too).
    Int(i128),
    /// Text.
    Text(String),
    /// An id (PostgreSQL's `uuid`, SQLite's 16-byte blob).
    Uuid(Uuid),
}

/// A stored value that does not decode as the statement promised.
pub fn corrupt(what: &str, e: impl std::fmt::Display) -> Error {
    Error::storage(
        StorageErrorKind::Corrupt,
        format!("stored {what} does not decode: {e}"),
    )
}

impl Cell {
    /// The value `pick` takes out of this cell; NULL is `None`, a cell it does not take is corrupt (not `a`).
    fn opt<T>(
        &self,
        what: &str,
        a: &str,
        pick: impl FnOnce(&Self) -> Option<T>,
    ) -> Result<Option<T>> {
        match self {
            Self::Null => Ok(None),
            other => pick(other)
                .map(Some)
                .ok_or_else(|| corrupt(what, format!("{other:?} is not {a}"))),
        }
    }

    /// An integer; NULL is `None`.
    pub fn opt_int(&self, what: &str) -> Result<Option<i128>> {
        self.opt(what, "an integer", |c| match c {
            Self::Int(i) => Some(*i),
            _ => None,
        })
    }

    /// An integer; NULL (an empty sum) is 0.
    pub fn int(&self, what: &str) -> Result<i128> {
        Ok(self.opt_int(what)?.unwrap_or(0))
    }

    /// A count.
    pub fn count(&self, what: &str) -> Result<u64> {
        u64::try_from(self.int(what)?).map_err(|e| corrupt(what, e))
    }

    /// Text (ids and integers as their text); NULL is `None`.
    pub fn opt_text(&self) -> Option<String> {
        match self {
            Self::Null => None,
            Self::Int(i) => Some(i.to_string()),
            Self::Text(t) => Some(t.clone()),
            // The encoder, not `Display`: a report of 283k customers formats every key.
            Self::Uuid(u) => Some(
                u.hyphenated()
                    .encode_lower(&mut Uuid::encode_buffer())
                    .to_owned(),
            ),
        }
    }

    /// Text.
    pub fn text(&self, what: &str) -> Result<&str> {
        match self {
            Self::Text(t) => Ok(t),
            other => Err(corrupt(what, format!("{other:?} is not text"))),
        }
    }

    /// An id; NULL is `None`.
    pub fn opt_uuid(&self, what: &str) -> Result<Option<Uuid>> {
        self.opt(what, "an id", |c| match c {
            Self::Uuid(u) => Some(*u),
            _ => None,
        })
    }

    /// An id.
    pub fn uuid(&self, what: &str) -> Result<Uuid> {
        self.opt_uuid(what)?
            .ok_or_else(|| corrupt(what, "NULL is not an id"))
    }
}

/// The groups of [`merge_sums`] in key order, flat (two allocations, however many groups): group `i`'s key is
/// `keys[i * key_width..][..key_width]`, its sums `sums[i * sum_width..][..sum_width]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Merged {
    /// Cells per key.
    pub key_width: usize,
    /// Sums per group.
    pub sum_width: usize,
    /// The keys, one after the other.
    pub keys: Vec<Cell>,
    /// The sums, one group's after the other's.
    pub sums: Vec<i128>,
}

impl Merged {
    /// How many groups.
    pub fn len(&self) -> usize {
        self.keys.len().checked_div(self.key_width).unwrap_or(0)
    }

    /// Whether there is no group.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Each group's key and sums, in key order.
    pub fn groups(&self) -> impl Iterator<Item = (&[Cell], &[i128])> + '_ {
        (0..self.len()).map(|i| {
            (
                &self.keys[i * self.key_width..][..self.key_width],
                &self.sums[i * self.sum_width..][..self.sum_width],
            )
        })
    }
}

/// A statement's rows, one at a time, into a buffer the caller reuses ([`merge_sums`] reads each source this way,
/// so a row costs no allocation).
pub trait RowSource {
    /// Replaces `row` with the next row; `false` (and `row` unspecified) when there is none.
    ///
    /// # Errors
    ///
    /// What reading the row fails with.
    fn next_row(&mut self, row: &mut Vec<Cell>) -> Result<bool>;
}

/// Rows already collected, as a [`RowSource`].
#[derive(Debug)]
pub struct Collected(pub std::vec::IntoIter<Vec<Cell>>);

impl RowSource for Collected {
    fn next_row(&mut self, row: &mut Vec<Cell>) -> Result<bool> {
        Ok(self.0.next().map(|next| *row = next).is_some())
    }
}

/// A source's current row in the merge's heap, least key on top.
struct Head {
    row: Vec<Cell>,
    source: usize,
    keys: usize,
}

impl Head {
    fn key(&self) -> &[Cell] {
        &self.row[..self.keys]
    }
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}

impl Eq for Head {}

impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Head {
    // Reversed: `BinaryHeap` is a max-heap.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other
            .key()
            .cmp(self.key())
            .then(other.source.cmp(&self.source))
    }
}

/// Merges sources whose rows each come in key order (their first `keys` cells, in [`Cell`]'s order: NULL, integers,
/// text by bytes, ids by bytes, which is SQLite's order of values) and sums the integer columns after the key (NULL
/// adds nothing) of the rows with equal keys: one group per key, in key order, without a sort or a hash table.
/// Memory holds one row per source and the groups.
///
/// ```
/// use crm_storage_sql::{merge_sums, Cell, Collected};
/// let t = |s: &str| Cell::Text(s.to_string());
/// let a = vec![vec![t("a"), Cell::Int(2)], vec![t("c"), Cell::Int(1)]];
/// let b = vec![vec![t("a"), Cell::Int(3)], vec![t("b"), Cell::Null]];
/// let mut sources = [Collected(a.into_iter()), Collected(b.into_iter())];
/// let merged = merge_sums(&mut sources, 1).unwrap();
/// let groups: Vec<_> = merged.groups().collect();
/// assert_eq!(groups, [
///     (&[t("a")][..], &[5][..]),
///     (&[t("b")][..], &[0][..]),
///     (&[t("c")][..], &[1][..]),
/// ]);
/// ```
///
/// # Errors
///
/// [`Error::Invalid`] when `keys` is 0; what a source fails with; a corrupt-storage error when a source's rows are not
/// in key order, a row is shorter
/// than its key or of another width than the first of its group, a cell after the key is not an integer, or a sum
/// leaves `i128`.
pub fn merge_sums<S: RowSource>(sources: &mut [S], keys: usize) -> Result<Merged> {
    use std::collections::binary_heap::PeekMut;
    if keys == 0 {
        return Err(Error::invalid(
            "keys",
            "a merge needs at least one key cell",
        ));
    }
    let short = || corrupt("merged row", "shorter than its key");
    let mut heap = std::collections::BinaryHeap::with_capacity(sources.len());
    for (source, s) in sources.iter_mut().enumerate() {
        let mut row = Vec::new();
        if s.next_row(&mut row)? {
            if row.len() < keys {
                return Err(short());
            }
            heap.push(Head { row, source, keys });
        }
    }
    let mut out = Merged {
        key_width: keys,
        sum_width: heap.peek().map_or(0, |h| h.row.len() - keys),
        ..Merged::default()
    };
    // Sized as the last merge was: growing two vectors of tens of megabytes by doubling copied them and faulted
    // fresh pages in, about a fifth of the report of 283k groups at M (a reservation past what is written costs
    // only address space).
    let hint = LAST_GROUPS.load(std::sync::atomic::Ordering::Relaxed);
    out.keys.reserve(hint.saturating_mul(keys));
    out.sums.reserve(hint.saturating_mul(out.sum_width));
    while let Some(mut top) = heap.peek_mut() {
        let (key, values) = top.row.split_at(keys);
        if values.len() != out.sum_width {
            return Err(corrupt("merged row", "a row of another width"));
        }
        let last = out.keys.len().checked_sub(keys).map(|at| &out.keys[at..]);
        match last {
            Some(k) if k == key => {
                let at = out.sums.len() - out.sum_width;
                for (sum, cell) in out.sums[at..].iter_mut().zip(values) {
                    *sum = sum
                        .checked_add(cell.int("summed column")?)
                        .ok_or_else(|| corrupt("summed column", "the sum leaves i128"))?;
                }
            }
            Some(k) if k > key => {
                return Err(corrupt(
                    "merged rows",
                    "a statement's rows are not in key order",
                ))
            }
            _ => {
                out.keys.extend_from_slice(key);
                for cell in values {
                    out.sums.push(cell.int("summed column")?);
                }
            }
        }
        let source = top.source;
        if sources[source].next_row(&mut top.row)? {
            if top.row.len() < keys {
                return Err(short());
            }
            // Dropping `top` moves it down to its place.
        } else {
            PeekMut::pop(top);
        }
    }
    LAST_GROUPS.store(
        out.len().min(MAX_GROUPS_HINT),
        std::sync::atomic::Ordering::Relaxed,
    );
    Ok(out)
}

/// How many groups the last [`merge_sums`] of this process produced (at most [`MAX_GROUPS_HINT`]): the next one
/// reserves that many.
static LAST_GROUPS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The most groups a merge reserves room for before it has seen them.
const MAX_GROUPS_HINT: usize = 1 << 20;

/// Runs shared read statements on an adapter's connections.
#[async_trait::async_trait]
pub trait Runner: Send + Sync {
    /// The dialect the adapter speaks.
    fn dialect(&self) -> Dialect;

    /// Runs `sql` and returns its rows; `once` marks a statement built for one call (not worth caching).
    async fn rows(&self, sql: Sql, once: bool) -> Result<Vec<Vec<Cell>>>;

    /// Runs several reads and returns each one's rows, in order. An adapter whose reads hop to a connection thread
    /// (SQLite) runs them in one hop, on one connection; the default runs them one after the other.
    async fn rows_batch(&self, sqls: Vec<Sql>) -> Result<Vec<Vec<Vec<Cell>>>> {
        let mut out = Vec::with_capacity(sqls.len());
        for sql in sqls {
            out.push(self.rows(sql, false).await?);
        }
        Ok(out)
    }

    /// Runs short reads (a page, a few records by key: tens of microseconds) as [`Runner::rows_batch`] does. An
    /// adapter may run them without handing them to another thread (SQLite does); the default is `rows_batch`.
    async fn rows_short(&self, sqls: Vec<Sql>) -> Result<Vec<Vec<Vec<Cell>>>> {
        self.rows_batch(sqls).await
    }

    /// Runs statements whose rows each come in key order (their first `keys` cells, in [`Cell`]'s order) and sums
    /// the rows with equal keys across them ([`merge_sums`]), in key order. An adapter may step the statements side
    /// by side without collecting their rows (SQLite does, on one connection in one snapshot: a merge of sorted
    /// streams is what SQLite's planner has no join or grouping for); the default collects
    /// [`Runner::rows_batch`] and merges.
    async fn rows_merged(&self, sqls: Vec<Sql>, keys: usize) -> Result<Merged> {
        let mut sources: Vec<Collected> = self
            .rows_batch(sqls)
            .await?
            .into_iter()
            .map(|rows| Collected(rows.into_iter()))
            .collect();
        merge_sums(&mut sources, keys)
    }

    /// Runs a statement that writes (on the writer, in its own transaction) and returns the rows it returns.
    async fn write_rows(&self, sql: Sql) -> Result<Vec<Vec<Cell>>>;

    /// Runs a statement that writes (on the writer, in its own transaction) and returns how many rows it changed.
    async fn execute(&self, sql: Sql) -> Result<u64>;

    /// Runs statements that write in one transaction (all of them or none), and returns how many rows each
    /// changed.
    async fn execute_all(&self, sqls: Vec<Sql>) -> Result<Vec<u64>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(rows: &[(&str, i128)]) -> Collected {
        let rows: Vec<Vec<Cell>> = rows
            .iter()
            .map(|(k, v)| vec![Cell::Text((*k).to_string()), Cell::Int(*v)])
            .collect();
        Collected(rows.into_iter())
    }

    #[test]
    fn equal_keys_of_one_source_and_of_several_make_one_group_in_key_order() {
        let mut sources = [
            source(&[("a", 1), ("a", 2), ("d", 4)]),
            source(&[]),
            source(&[("b", 8), ("d", 16)]),
        ];
        let got = merge_sums(&mut sources, 1).unwrap();
        assert_eq!(got.len(), 3);
        let keys: Vec<&Cell> = got.groups().map(|(k, _)| &k[0]).collect();
        assert_eq!(
            keys,
            [
                &Cell::Text("a".into()),
                &Cell::Text("b".into()),
                &Cell::Text("d".into())
            ]
        );
        let sums: Vec<i128> = got.groups().map(|(_, s)| s[0]).collect();
        assert_eq!(sums, [3, 8, 20]);
        assert!(merge_sums::<Collected>(&mut [], 1).unwrap().is_empty());
        assert!(merge_sums(&mut [source(&[("a", 1)])], 0).is_err());
    }

    #[test]
    fn a_source_out_of_key_order_or_a_cell_that_is_no_integer_is_refused() {
        let mut sources = [source(&[("b", 1), ("a", 2)])];
        assert!(merge_sums(&mut sources, 1).is_err());
        let text = vec![vec![Cell::Text("a".into()), Cell::Text("x".into())]];
        assert!(merge_sums(&mut [Collected(text.into_iter())], 1).is_err());
        let short = vec![vec![Cell::Int(1)]];
        assert!(merge_sums(&mut [Collected(short.into_iter())], 2).is_err());
        let big = vec![
            vec![Cell::Int(1), Cell::Int(i128::MAX)],
            vec![Cell::Int(1), Cell::Int(1)],
        ];
        assert!(merge_sums(&mut [Collected(big.into_iter())], 1).is_err());
    }
}
