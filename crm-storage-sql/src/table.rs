//! A table's written columns, and the statements that follow from them alone.

use crate::{Dialect, Kind};

/// A [`Table`] from its name and its written columns in row order, each `column: Kind`:
/// `table!("partner_keys" { tenant: Uuid, key: Text, partner: Uuid })`.
#[macro_export]
macro_rules! table {
    ($name:literal { $($column:ident: $kind:ident),* $(,)? }) => {
        $crate::Table {
            name: $name,
            columns: &[$((stringify!($column), $crate::Kind::$kind)),*],
        }
    };
}

/// A table's name and the columns every write path fills, in row order.
#[derive(Debug)]
pub struct Table {
    /// The table.
    pub name: &'static str,
    /// Its written columns and their kinds.
    pub columns: &'static [(&'static str, Kind)],
}

impl Table {
    /// The column names, comma separated.
    pub fn column_list(&self) -> String {
        let cols: Vec<&str> = self.columns.iter().map(|c| c.0).collect();
        cols.join(", ")
    }

    /// `INSERT INTO t (cols) VALUES (…), (…)` for `rows` rows.
    pub fn insert_sql(&self, dialect: Dialect, rows: usize) -> String {
        let n = self.columns.len();
        let values: Vec<String> = (0..rows)
            .map(|r| {
                let row: Vec<String> = (1..=n).map(|c| dialect.placeholder(r * n + c)).collect();
                format!("({})", row.join(", "))
            })
            .collect();
        format!(
            "INSERT INTO {} ({}) VALUES {}",
            self.name,
            self.column_list(),
            values.join(", ")
        )
    }

    /// `<key> = … AND …` over the first `key` columns (placeholders 1..=key).
    fn key_conditions(&self, dialect: Dialect, key: usize) -> String {
        let conds: Vec<String> = self.columns[..key]
            .iter()
            .enumerate()
            .map(|(i, (c, _))| format!("{c} = {}", dialect.placeholder(i + 1)))
            .collect();
        conds.join(" AND ")
    }

    /// `UPDATE t SET <columns after the key> WHERE <key> AND version = <one past the row>`: the row's values, then
    /// the expected version.
    pub fn update_sql(&self, dialect: Dialect, key: usize) -> String {
        let sets: Vec<String> = self
            .columns
            .iter()
            .enumerate()
            .skip(key)
            .map(|(i, (c, _))| format!("{c} = {}", dialect.placeholder(i + 1)))
            .collect();
        format!(
            "UPDATE {} SET {} WHERE {} AND version = {}",
            self.name,
            sets.join(", "),
            self.key_conditions(dialect, key),
            dialect.placeholder(self.columns.len() + 1)
        )
    }

    /// `SELECT version FROM t WHERE <key>`.
    pub fn version_sql(&self, dialect: Dialect, key: usize) -> String {
        format!(
            "SELECT version FROM {} WHERE {}",
            self.name,
            self.key_conditions(dialect, key)
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::{Kind, Table};

    #[test]
    fn table_lists_the_columns_in_row_order() {
        const T: Table = crate::table!("t" { tenant: Uuid, n: I64, doc: Json });
        assert_eq!(T.name, "t");
        assert_eq!(
            T.columns,
            &[
                ("tenant", Kind::Uuid),
                ("n", Kind::I64),
                ("doc", Kind::Json)
            ]
        );
        assert_eq!(T.column_list(), "tenant, n, doc");
    }
}
