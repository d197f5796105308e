//! A lead update sets only the indexed columns whose values changed: SQLite rewrites the entry of every index on a
//! column an `UPDATE` names, equal value or not, so naming all of them made a stage move write the owner's, the
//! partner's and the revenue index's pages too. `AFTER UPDATE OF column` triggers fire on exactly that (a column
//! named in the `SET` list), so they show what each update named.

use crm_core::actor::Context;
use crm_core::id::{TenantId, UserId};
use crm_core::lead::{LeadCommand, LeadPartner, LeadPatch, NewLead};
use crm_core::partner::NewPartner;
use crm_core::service::CrmService;
use crm_core::store::StoreExt;
use crm_storage_sqlite::rusqlite::Connection;
use crm_storage_sqlite::SqliteStore;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

/// The columns the updates since the last call named (and forgets them).
fn named(conn: &Mutex<Connection>) -> BTreeSet<String> {
    let c = conn.lock().unwrap();
    let out = c
        .prepare("SELECT name FROM temp.named")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    c.execute_batch("DELETE FROM temp.named").unwrap();
    out
}

#[test]
fn a_lead_update_names_only_the_columns_it_changes() {
    let conn = Arc::new(Mutex::new(Connection::open_in_memory().unwrap()));
    let store = Arc::new(SqliteStore::on_host_connection(conn.clone()).unwrap());
    {
        // A trigger on every column of the lead indexes (the expression indexes read `doc`, which every update
        // names), and one on `title_lc`.
        let c = conn.lock().unwrap();
        c.execute_batch("CREATE TEMP TABLE named (name TEXT)")
            .unwrap();
        let columns: Vec<String> = c
            .prepare(
                "SELECT DISTINCT i.name FROM pragma_index_list('leads') l, pragma_index_info(l.name) i \
                 WHERE i.name IS NOT NULL AND i.name NOT IN ('tenant', 'id', 'created_at') \
                 UNION SELECT 'title_lc'",
            )
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(columns.len() >= 12, "{columns:?}");
        // And the tag rows a write inserts or deletes.
        c.execute_batch(
            "CREATE TEMP TRIGGER tag_added AFTER INSERT ON main.lead_tags \
             BEGIN INSERT INTO temp.named VALUES ('+' || new.tag); END; \
             CREATE TEMP TRIGGER tag_removed AFTER DELETE ON main.lead_tags \
             BEGIN INSERT INTO temp.named VALUES ('-' || old.tag); END;",
        )
        .unwrap();
        for col in columns {
            c.execute_batch(&format!(
                "CREATE TEMP TRIGGER named_{col} AFTER UPDATE OF {col} ON main.leads \
                 BEGIN INSERT INTO temp.named VALUES ('{col}'); END"
            ))
            .unwrap();
        }
    }
    let crm = CrmService::builder().store(store.clone()).build().unwrap();
    let ctx = Context::user(TenantId::new(), UserId::new());
    futures::executor::block_on(async {
        let pipeline = crm.setup_tenant(&ctx).await.unwrap();
        let partner = LeadPartner::New {
            partner: NewPartner::company("Acme SRL"),
        };
        let mut new = NewLead::new(partner, "Forklifts");
        new.tags = ["fleet", "spring"].map(String::from).into();
        let lead = crm.enter_lead(&ctx, new).await.unwrap().record;
        assert_eq!(
            named(&conn),
            BTreeSet::from(["+fleet".to_string(), "+spring".to_string()]),
            "an insert names no update column, and writes its tags"
        );

        let stage = pipeline.stages()[1].id;
        let moved = crm
            .transition(
                &ctx,
                lead.id(),
                lead.version(),
                LeadCommand::MoveTo { stage },
            )
            .await
            .unwrap()
            .record;
        let set = named(&conn);
        for untouched in [
            "partner",
            "pipeline",
            "owner",
            "revenue_key",
            "title_lc",
            "host_ref",
        ] {
            assert!(
                !set.contains(untouched),
                "a stage move named {untouched}: {set:?}"
            );
        }
        assert!(
            set.contains("stage") && set.contains("updated_at"),
            "{set:?}"
        );
        assert!(
            !set.iter().any(|n| n.starts_with('+') || n.starts_with('-')),
            "a stage move writes no tag row: {set:?}"
        );

        let owner = UserId::new();
        let patch = LeadPatch {
            owner: Some(Some(owner)),
            tags: Some(["spring", "summer"].map(String::from).into()),
            ..LeadPatch::default()
        };
        let updated = crm
            .transition(
                &ctx,
                moved.id(),
                moved.version(),
                LeadCommand::Update(patch),
            )
            .await
            .unwrap()
            .record;
        let set = named(&conn);
        assert!(set.contains("owner"), "{set:?}");
        let tags: BTreeSet<&String> = set
            .iter()
            .filter(|n| n.starts_with('+') || n.starts_with('-'))
            .collect();
        assert_eq!(
            tags,
            BTreeSet::from([&"-fleet".to_string(), &"+summer".to_string()]),
            "only the tags that changed are written"
        );
        assert!(
            !set.contains("stage") && !set.contains("partner"),
            "{set:?}"
        );

        // What was named was written: the row reads back as the service returned it.
        let stored = store.lead(ctx.tenant, lead.id()).await.unwrap();
        assert_eq!(stored, updated);
        assert_eq!(stored.owner(), Some(owner));
        assert_eq!(
            stored.tags().iter().map(String::as_str).collect::<Vec<_>>(),
            vec!["spring", "summer"]
        );
        assert_eq!(stored.stage(), stage);
        let c = conn.lock().unwrap();
        let (st, ow): (Vec<u8>, Vec<u8>) = c
            .query_row(
                "SELECT stage, owner FROM leads WHERE id = ?1",
                [lead.id().as_bytes()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(st, stage.as_bytes().to_vec());
        assert_eq!(ow, owner.as_bytes().to_vec());
    });
}
