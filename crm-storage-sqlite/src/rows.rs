//! Encoding of records into rows and back.

use crate::error::corrupt;
use crm_core::Result;
use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

/// A UUID as the 16-byte blob SQLite stores.
pub(crate) fn blob(id: &Uuid) -> [u8; 16] {
    *id.as_bytes()
}

/// A blob column back into a UUID.
pub(crate) fn uuid(bytes: &[u8]) -> Result<Uuid> {
    Uuid::from_slice(bytes).map_err(|e| corrupt("id", e))
}

/// A record as JSON text for the `doc` column.
pub(crate) fn doc<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("engine records always serialise")
}

/// The `doc` column back into a record.
pub(crate) fn parse<T: DeserializeOwned>(what: &str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| corrupt(what, e))
}

/// A LIKE pattern matching `needle` anywhere, with `%`, `_` and `\` escaped (use with `ESCAPE '\'`).
pub(crate) fn contains_pattern(needle: &str) -> String {
    crm_storage_sql::like_contains(needle)
}

/// A shared statement's parameter as SQLite stores it (ids as 16-byte blobs, JSON as its text), for code that runs
/// `crm_storage_sql` rows through its own `rusqlite` connection (the benchmark's plain-SQL baselines do).
///
/// ```
/// use crm_storage_sqlite::{param_value, rusqlite::types::Value};
/// let id = uuid::Uuid::now_v7();
/// assert_eq!(param_value(&crm_storage_sql::Param::Uuid(id)), Value::Blob(id.as_bytes().to_vec()));
/// ```
pub fn bind(p: &crm_storage_sql::Param) -> rusqlite::types::Value {
    use crm_storage_sql::Param;
    use rusqlite::types::Value;
    match p {
        Param::Uuid(u) => Value::Blob(u.as_bytes().to_vec()),
        Param::Day(d) => Value::Integer(i64::from(*d)),
        Param::I64(v) => Value::Integer(*v),
        Param::I16(v) => Value::Integer(i64::from(*v)),
        Param::I32(v) => Value::Integer(i64::from(*v)),
        Param::Text(t) => Value::Text(t.clone()),
        Param::Json(v) => Value::Text(v.as_str().to_string()),
        Param::Null(_) => Value::Null,
        // Statements for SQLite bind each id of a set on its own; a set reaching here is a bug of the builder.
        Param::Uuids(_) => Value::Null,
    }
}

/// Runs a shared statement and returns its first column's text (the `doc` column of `SELECT doc …`).
pub(crate) fn docs_of(
    conn: &rusqlite::Connection,
    sql: &crm_storage_sql::Sql,
) -> Result<Vec<String>> {
    use crate::error::map;
    let mut stmt = conn.prepare_cached(&sql.text).map_err(map)?;
    let rows = stmt
        .query_map(
            rusqlite::params_from_iter(sql.params.iter().map(bind)),
            |r| r.get::<_, String>(0),
        )
        .map_err(map)?;
    rows.map(|r| r.map_err(map)).collect()
}

/// Runs a shared statement and counts its rows (an existence check).
pub(crate) fn docs_of_any(
    conn: &rusqlite::Connection,
    sql: &crm_storage_sql::Sql,
) -> Result<usize> {
    use crate::error::map;
    let mut stmt = conn.prepare_cached(&sql.text).map_err(map)?;
    let mut rows = stmt
        .query(rusqlite::params_from_iter(sql.params.iter().map(bind)))
        .map_err(map)?;
    let mut n = 0;
    while rows.next().map_err(map)?.is_some() {
        n += 1;
    }
    Ok(n)
}

/// One SQLite value as the shared reads' neutral cell (ids are 16-byte blobs).
fn cell(v: rusqlite::types::ValueRef<'_>) -> Result<crm_storage_sql::Cell> {
    use crm_storage_sql::Cell;
    use rusqlite::types::ValueRef;
    Ok(match v {
        ValueRef::Null => Cell::Null,
        ValueRef::Integer(v) => Cell::Int(i128::from(v)),
        // Valid UTF-8 (what the engine writes) is checked once by the fast path; anything else is replaced, not
        // refused.
        ValueRef::Text(t) => Cell::Text(match std::str::from_utf8(t) {
            Ok(s) => s.to_owned(),
            Err(_) => String::from_utf8_lossy(t).into_owned(),
        }),
        ValueRef::Blob(b) => Cell::Uuid(uuid(b)?),
        ValueRef::Real(r) => return Err(corrupt("column", format!("{r} is not an integer"))),
    })
}

/// Runs a shared statement and hands each row to `f` as it is stepped (nothing is collected here).
fn each_row(
    conn: &rusqlite::Connection,
    sql: &crm_storage_sql::Sql,
    once: bool,
    mut f: impl FnMut(usize, &rusqlite::Row<'_>) -> Result<()>,
) -> Result<()> {
    use crate::error::map;
    #[cfg(test)]
    crate::store::plan_tests::record(&sql.text);
    let (mut fresh, mut cached);
    let stmt: &mut rusqlite::Statement<'_> = if once {
        fresh = conn.prepare(&sql.text).map_err(map)?;
        &mut fresh
    } else {
        cached = conn.prepare_cached(&sql.text).map_err(map)?;
        &mut cached
    };
    let n = stmt.column_count();
    let mut rows = stmt
        .query(rusqlite::params_from_iter(sql.params.iter().map(bind)))
        .map_err(map)?;
    while let Some(row) = rows.next().map_err(map)? {
        f(n, row)?;
    }
    Ok(())
}

/// Runs a shared statement and returns its rows as the shared reads' neutral cells (ids are 16-byte blobs).
pub(crate) fn cells_of(
    conn: &rusqlite::Connection,
    sql: &crm_storage_sql::Sql,
    once: bool,
) -> Result<Vec<Vec<crm_storage_sql::Cell>>> {
    use crate::error::map;
    let mut out = Vec::new();
    each_row(conn, sql, once, |n, row| {
        let mut cells = Vec::with_capacity(n);
        for i in 0..n {
            cells.push(cell(row.get_ref(i).map_err(map)?)?);
        }
        out.push(cells);
        Ok(())
    })?;
    Ok(out)
}

/// A stepped statement as a [`crm_storage_sql::RowSource`].
struct Stepped<'s> {
    rows: rusqlite::Rows<'s>,
    columns: usize,
}

impl crm_storage_sql::RowSource for Stepped<'_> {
    fn next_row(&mut self, row: &mut Vec<crm_storage_sql::Cell>) -> Result<bool> {
        use crate::error::map;
        let Some(r) = self.rows.next().map_err(map)? else {
            return Ok(false);
        };
        // The slots are overwritten in place: ids and integers own nothing, so a row costs no allocation.
        row.resize(self.columns, crm_storage_sql::Cell::Null);
        for (i, slot) in row.iter_mut().enumerate() {
            *slot = cell(r.get_ref_unwrap(i))?;
        }
        Ok(true)
    }
}

/// Steps statements whose rows each come in key order side by side on one connection, in one savepoint (one
/// snapshot), and merges their sums ([`crm_storage_sql::merge_sums`]): nothing is collected but the groups.
pub(crate) fn merged_of(
    conn: &mut rusqlite::Connection,
    sqls: &[crm_storage_sql::Sql],
    keys: usize,
) -> Result<crm_storage_sql::Merged> {
    use crate::error::map;
    let sp = conn.savepoint().map_err(map)?;
    let out = {
        let mut stmts = Vec::with_capacity(sqls.len());
        for sql in sqls {
            #[cfg(test)]
            crate::store::plan_tests::record(&sql.text);
            stmts.push(sp.prepare_cached(&sql.text).map_err(map)?);
        }
        let mut sources = Vec::with_capacity(sqls.len());
        for (stmt, sql) in stmts.iter_mut().zip(sqls) {
            let columns = stmt.column_count();
            let rows = stmt
                .query(rusqlite::params_from_iter(sql.params.iter().map(bind)))
                .map_err(map)?;
            sources.push(Stepped { rows, columns });
        }
        crm_storage_sql::merge_sums(&mut sources, keys)?
    };
    sp.commit().map_err(map)?;
    Ok(out)
}

/// Runs a shared statement that writes; how many rows it changed.
pub(crate) fn execute(conn: &rusqlite::Connection, sql: &crm_storage_sql::Sql) -> Result<u64> {
    use crate::error::map;
    let mut stmt = conn.prepare_cached(&sql.text).map_err(map)?;
    let n = stmt
        .execute(rusqlite::params_from_iter(sql.params.iter().map(bind)))
        .map_err(map)?;
    Ok(n as u64)
}
