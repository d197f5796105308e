//! Erasure leaves nothing on disk: after [`erase_everywhere`] on a WAL file, no table, no byte of the database
//! file or its write-ahead log, and no backup made afterwards (`VACUUM INTO`) holds the erased people's names,
//! e-mail addresses, phone numbers, street or tax id.

use crm_core::conformance::erasure::erase_everywhere;
use crm_core::store::Backend;
use crm_storage_sqlite::{SqliteConfig, SqliteStore};
use std::path::Path;
use std::sync::Arc;

/// The values of `values` found in `bytes`, without ASCII case.
fn found_in(bytes: &[u8], values: &[&'static str]) -> Vec<&'static str> {
    let hay = bytes.to_ascii_lowercase();
    values
        .iter()
        .filter(|v| {
            let needle = v.as_bytes().to_ascii_lowercase();
            hay.windows(needle.len()).any(|w| w == needle.as_slice())
        })
        .copied()
        .collect()
}

/// Every table's every row as text, by table.
fn tables(path: &Path) -> Vec<(String, String)> {
    let c = rusqlite::Connection::open(path).expect("open");
    let names: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .expect("tables")
        .query_map([], |r| r.get(0))
        .expect("tables")
        .collect::<Result<_, _>>()
        .expect("tables");
    assert!(names.len() > 20, "the schema's tables: {names:?}");
    names
        .into_iter()
        .map(|t| {
            let mut s = c
                .prepare(&format!("SELECT * FROM \"{t}\""))
                .expect("select");
            let n = s.column_count();
            let mut text = String::new();
            let mut rows = s.query([]).expect("rows");
            while let Some(row) = rows.next().expect("row") {
                for i in 0..n {
                    match row.get_ref(i).expect("cell") {
                        rusqlite::types::ValueRef::Text(b) | rusqlite::types::ValueRef::Blob(b) => {
                            text.push_str(&String::from_utf8_lossy(b));
                        }
                        other => text.push_str(&format!("{other:?}")),
                    }
                    text.push('\t');
                }
                text.push('\n');
            }
            (t, text)
        })
        .collect()
}

#[tokio::test]
async fn an_erased_person_is_in_no_table_no_file_and_no_backup() {
    let temp = tempfile::tempdir().expect("temp dir");
    let dir = temp.path();
    let path = dir.join("crm.sqlite");
    let store = SqliteStore::open(SqliteConfig::file(&path)).expect("open file store");
    let backend: Arc<dyn Backend> = Arc::new(store);
    let (_, values) = erase_everywhere(&backend).await;

    // The query layer: every table, every column.
    for (table, text) in tables(&path) {
        assert_eq!(
            found_in(text.as_bytes(), &values),
            Vec::<&str>::new(),
            "table {table}"
        );
    }
    // The files: the database and its write-ahead log, byte by byte (secure_delete zeroes what was freed).
    for file in [path.clone(), dir.join("crm.sqlite-wal")] {
        if let Ok(bytes) = std::fs::read(&file) {
            assert_eq!(
                found_in(&bytes, &values),
                Vec::<&str>::new(),
                "{}",
                file.display()
            );
        }
    }
    // A backup made afterwards.
    let backup = dir.join("backup.sqlite");
    rusqlite::Connection::open(&path)
        .expect("open")
        .execute("VACUUM INTO ?1", [backup.to_string_lossy()])
        .expect("backup");
    let bytes = std::fs::read(&backup).expect("backup bytes");
    assert!(bytes.len() > 4096, "a real backup");
    assert_eq!(found_in(&bytes, &values), Vec::<&str>::new(), "backup");
    // The search is not blind: the namesake at another partner, who was not erased, is found.
    assert_eq!(
        found_in(&bytes, &["radu@alt.example"]),
        vec!["radu@alt.example"]
    );
    drop(backend);
}
