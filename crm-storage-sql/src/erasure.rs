//! Erasure in SQL, for both adapters: the data subjects' keys ([`crm_core::erasure::SubjectKey`], table
//! `subject_keys`) and [`Write::Erase`](crm_core::store::Write::Erase): the person's keys deleted and each personal
//! value replaced in the partner's rows (one `UPDATE … SET col = replace(col, value, replacement)` per table,
//! column and value, only on the rows holding the value) and in the tenant's outbox and inbox.

use crate::commerce::{self, Exec};
use crate::schema::SUBJECT_KEYS;
use crate::{Dialect, Param, Runner, Sql};
use crm_core::erasure::{json_escaped, Erasure, SubjectKey};
use crm_core::error::Result;
use crm_core::id::TenantId;
use crm_core::store::Record;
use uuid::Uuid;

/// The statement reading the keys of `subjects` (at least one).
pub fn keys_sql(dialect: Dialect, tenant: TenantId, subjects: &[Uuid]) -> Sql {
    let (mut sql, t) = Sql::for_tenant(dialect, tenant);
    sql.text = match dialect {
        Dialect::Sqlite => {
            let marks: Vec<String> = subjects
                .iter()
                .map(|s| format!("({})", sql.bind(*s)))
                .collect();
            format!(
                "WITH s (id) AS (VALUES {}) SELECT k.doc FROM s JOIN subject_keys k ON k.tenant = {t} AND k.subject = s.id",
                marks.join(", ")
            )
        }
        Dialect::Postgres => {
            let s = sql.bind(Param::Uuids(subjects.to_vec()));
            format!("SELECT doc::text FROM subject_keys WHERE tenant = {t} AND subject = ANY({s})")
        }
    };
    sql
}

/// `Store::fetch(Key::SubjectKeys(subjects))` on a [`Runner`], 500 subjects per statement.
///
/// # Errors
///
/// The adapter's; [`Error::Storage`](crm_core::error::Error::Storage) of kind `Corrupt` when a key does not decode.
pub async fn keys<R: Runner + ?Sized>(
    r: &R,
    tenant: TenantId,
    subjects: &[Uuid],
) -> Result<Vec<Record>> {
    let mut out = Vec::new();
    for chunk in subjects.chunks(500) {
        let rows = r
            .rows_short(vec![keys_sql(r.dialect(), tenant, chunk)])
            .await?;
        for row in rows.into_iter().flatten() {
            out.push(Record::SubjectKey(crate::fetch::Doc::parse_as(
                row[0].text("subject key")?,
                "subject key",
            )?));
        }
    }
    Ok(out)
}

/// Applies [`Write::InsertSubjectKey`](crm_core::store::Write::InsertSubjectKey).
///
/// # Errors
///
/// [`Error::AlreadyExists`](crm_core::error::Error::AlreadyExists) (entity `subject key`) when the subject has a
/// key; the adapter's.
pub async fn insert_key<E: Exec>(tx: &E, dialect: Dialect, k: &SubjectKey) -> Result<()> {
    let row = vec![
        Param::from(*k.tenant.as_uuid()),
        Param::from(k.subject),
        Param::json(k)?,
    ];
    commerce::run_step(
        tx,
        commerce::insert(
            dialect,
            &SUBJECT_KEYS,
            row,
            "subject key",
            k.subject.to_string(),
        ),
    )
    .await
}

/// Where personal values are scrubbed: a table, the columns holding text, and which of its rows (`{t}` the tenant,
/// `{p}` the partner's id, `{ps}` the same as text, `{leads}` and `{requests}` the ids of the partner's).
struct Place {
    table: &'static str,
    columns: &'static [&'static str],
    rows: &'static str,
}

fn places(dialect: Dialect) -> Vec<Place> {
    let p = |table, columns, rows| Place {
        table,
        columns,
        rows,
    };
    let pg = dialect == Dialect::Postgres;
    vec![
        p(
            "partners",
            &["name", "search", "doc"],
            "(id = {p} OR id IN {tombs})",
        ),
        p(
            "leads",
            if pg {
                &["search", "doc"]
            } else {
                &["title_lc", "doc"]
            },
            "partner = {p}",
        ),
        p("requests", &["doc"], "(partner = {p} OR lead IN {leads})"),
        p(
            "comments",
            &["doc"],
            "(target = {p} OR target IN {leads} OR target IN {requests})",
        ),
        p(
            "events",
            &["doc"],
            "(partner = {p} OR lead IN {leads} OR request IN {requests})",
        ),
        p("documents", &["doc"], "partner = {p}"),
        p("quotations", &["doc"], "partner = {p}"),
        p("contracts", &["doc"], "partner = {p}"),
        p(
            "meetings",
            &["doc"],
            if pg {
                "(lead IN {leads} OR doc ->> 'partner' = {ps})"
            } else {
                "(lead IN {leads} OR json_extract(doc, '$.partner') = {ps})"
            },
        ),
        p(
            "attachments",
            &["doc"],
            "(partner = {p} OR target IN {leads} OR target IN {requests})",
        ),
        p("representatives", &["email", "doc"], "partner = {p}"),
        p("payment_attempts", &["doc"], "partner = {p}"),
        p("campaign_targets", &["doc"], "partner = {p}"),
        p("merges", &["doc"], "survivor = {p}"),
        p("lead_merges", &["doc"], "survivor IN {leads}"),
        // Messages and notifications carry names and addresses but no partner column: the whole tenant's.
        p("outbox", &["doc", "idempotency_key", "last_error"], "TRUE"),
        p("inbox", &["doc"], "TRUE"),
    ]
}

/// Applies [`Write::Erase`](crm_core::store::Write::Erase).
///
/// # Errors
///
/// The adapter's.
pub async fn erase<E: Exec>(tx: &E, dialect: Dialect, e: &Erasure) -> Result<()> {
    for k in &e.keys {
        let (mut sql, t) = Sql::for_tenant(dialect, e.tenant);
        let s = sql.bind(*k);
        sql.text = format!("DELETE FROM subject_keys WHERE tenant = {t} AND subject = {s}");
        tx.execute(sql).await?;
    }
    if e.tombstones {
        let (mut sql, t) = Sql::for_tenant(dialect, e.tenant);
        let p = sql.bind(*e.partner.as_uuid());
        sql.text = format!(
            "DELETE FROM subject_keys WHERE tenant = {t} AND subject IN {}",
            tombstones(&t, &p)
        );
        tx.execute(sql).await?;
    }
    for place in places(dialect) {
        for column in place.columns {
            let json = *column == "doc";
            for (value, replacement) in &e.scrub {
                if value.is_empty() {
                    continue;
                }
                // A document holds the value JSON-escaped.
                let (value, replacement) = if json {
                    (json_escaped(value), json_escaped(replacement))
                } else {
                    (value.clone(), replacement.clone())
                };
                let (mut sql, t) = Sql::for_tenant(dialect, e.tenant);
                // PostgreSQL types each placeholder from its use: bind only what the rows' condition names.
                let v = sql.bind(value.as_str());
                let r = sql.bind(replacement.as_str());
                let mut rows = place.rows.to_string();
                if rows.contains("{ps}") {
                    rows = rows.replace("{ps}", &sql.bind(e.partner.as_uuid().to_string()));
                }
                if rows.contains('{') {
                    let p = sql.bind(*e.partner.as_uuid());
                    let leads =
                        format!("(SELECT id FROM leads WHERE tenant = {t} AND partner = {p})");
                    let requests = format!(
                        "(SELECT id FROM requests WHERE tenant = {t} AND (partner = {p} OR lead IN {leads}))"
                    );
                    rows = rows
                        .replace("{tombs}", &tombstones(&t, &p))
                        .replace("{leads}", &leads)
                        .replace("{requests}", &requests)
                        .replace("{p}", &p);
                }
                let (text, set) = match (dialect, json) {
                    (Dialect::Postgres, true) => (
                        format!("{column}::text"),
                        format!("replace({column}::text, {v}, {r})::jsonb"),
                    ),
                    _ => (column.to_string(), format!("replace({column}, {v}, {r})")),
                };
                let found = match dialect {
                    Dialect::Sqlite => format!("instr({text}, {v}) > 0"),
                    Dialect::Postgres => format!("strpos({text}, {v}) > 0"),
                };
                sql.text = format!(
                    "UPDATE {} SET {column} = {set} WHERE tenant = {t} AND {rows} AND {found}",
                    place.table
                );
                tx.execute(sql).await?;
            }
        }
    }
    Ok(())
}

/// The ids of the partners merged into `{p}`, through any chain of merges, as a subquery.
fn tombstones(t: &str, p: &str) -> String {
    format!(
        "(WITH RECURSIVE m (id) AS (SELECT id FROM partners WHERE tenant = {t} AND merged_into = {p} \
         UNION SELECT x.id FROM partners x JOIN m ON x.tenant = {t} AND x.merged_into = m.id) SELECT id FROM m)"
    )
}
