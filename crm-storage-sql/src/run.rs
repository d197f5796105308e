//! What an adapter gives the shared reads: a [`Runner`] that runs a [`Sql`] and returns its rows as neutral
//! [`Cell`]s. The reads themselves (building the statement, decoding the rows, folding them into report types) are
//! written once over it.

use crate::{Dialect, Sql};
use crm_core::{Error, Result, StorageErrorKind};
use std::collections::HashMap;
use uuid::Uuid;

/// One value of a result row, whatever the driver's type.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
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
            Self::Uuid(u) => Some(u.to_string()),
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

/// One group of [`Runner::rows_summed`]: its key cells and the sums of the columns after them.
pub type SummedRow = (Vec<Cell>, Vec<i128>);

/// Rows summed per key as they arrive: the first `keys` cells of a row are its key, the cells after it integers
/// (NULL adds nothing) summed per key. Memory follows the groups, not the rows; the groups come out in no order.
///
/// ```
/// use crm_storage_sql::{Cell, Summed};
/// let mut s = Summed::new(1);
/// s.add(&[Cell::Text("a".into()), Cell::Int(2), Cell::Int(1)]).unwrap();
/// s.add(&[Cell::Text("b".into()), Cell::Int(5), Cell::Null]).unwrap();
/// s.add(&[Cell::Text("a".into()), Cell::Int(3), Cell::Int(1)]).unwrap();
/// let mut out = s.finish();
/// out.sort();
/// assert_eq!(out, vec![
///     (vec![Cell::Text("a".into())], vec![5, 2]),
///     (vec![Cell::Text("b".into())], vec![5, 0]),
/// ]);
/// ```
#[derive(Debug, Default)]
pub struct Summed {
    keys: usize,
    groups: HashMap<Vec<Cell>, Vec<i128>>,
}

impl Summed {
    /// Sums keyed by each row's first `keys` cells.
    pub fn new(keys: usize) -> Self {
        Self {
            keys,
            groups: HashMap::new(),
        }
    }

    /// Adds one row.
    ///
    /// # Errors
    ///
    /// A corrupt-storage error when a cell after the key is not an integer, the row is shorter than the key or
    /// its width differs from the first row's, or a sum leaves `i128`.
    pub fn add(&mut self, row: &[Cell]) -> Result<()> {
        if row.len() < self.keys {
            return Err(corrupt("summed row", "shorter than its key"));
        }
        let (key, values) = row.split_at(self.keys);
        let sums = match self.groups.get_mut(key) {
            Some(sums) => sums,
            None => self
                .groups
                .entry(key.to_vec())
                .or_insert_with(|| vec![0; values.len()]),
        };
        if sums.len() != values.len() {
            return Err(corrupt("summed row", "a row of another width"));
        }
        for (sum, cell) in sums.iter_mut().zip(values) {
            *sum = sum
                .checked_add(cell.int("summed column")?)
                .ok_or_else(|| corrupt("summed column", "the sum leaves i128"))?;
        }
        Ok(())
    }

    /// The groups, in no order.
    pub fn finish(self) -> Vec<SummedRow> {
        self.groups.into_iter().collect()
    }
}

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

    /// Runs `sql` and sums its rows per key ([`Summed`]: the first `keys` cells the key, the rest integers), in no
    /// order. An adapter may sum the rows as it steps them without collecting them (SQLite does: a fold in memory
    /// proportional to the groups is cheaper than its sorter's `GROUP BY`); the default collects [`Runner::rows`]
    /// and sums them.
    async fn rows_summed(&self, sql: Sql, keys: usize) -> Result<Vec<SummedRow>> {
        let mut sums = Summed::new(keys);
        for row in self.rows(sql, false).await? {
            sums.add(&row)?;
        }
        Ok(sums.finish())
    }

    /// Runs a statement that writes (on the writer, in its own transaction) and returns the rows it returns.
    async fn write_rows(&self, sql: Sql) -> Result<Vec<Vec<Cell>>>;

    /// Runs a statement that writes (on the writer, in its own transaction) and returns how many rows it changed.
    async fn execute(&self, sql: Sql) -> Result<u64>;

    /// Runs statements that write in one transaction (all of them or none), and returns how many rows each
    /// changed.
    async fn execute_all(&self, sqls: Vec<Sql>) -> Result<Vec<u64>>;
}
