//! Merges of partners in SQL: the records that point at a partner ([`Key::PartnerLinks`](crm_core::store::Key)),
//! moving one of them to another partner ([`Write::Repoint`](crm_core::store::Write)) and the merges' journal, for
//! both adapters. A move is one version-checked `UPDATE` of the record's partner column and of the same field in
//! its JSON document (`json_set` on SQLite, `jsonb_set` on PostgreSQL), its version one on; a document's lines and
//! allocations follow it.

use crate::commerce::{self, Exec};
use crate::schema::MERGES;
use crate::{Dialect, Param, Runner, Sql};
use crm_core::error::{Error, Result};
use crm_core::id::{PartnerId, TenantId};
use crm_core::merge::{Link, LinkKind, Move, PartnerMerge};
use crm_core::store::Record;

/// Where a kind of record keeps its partner.
struct Place {
    table: &'static str,
    /// The column the record is found by (a campaign target's is its campaign).
    id: &'static str,
    /// The column holding the partner, if the table has one (a meeting's is only in its document).
    column: Option<&'static str>,
    /// The field of the document holding the partner.
    path: &'static [&'static str],
    /// An extra condition (without placeholders).
    only: &'static str,
}

fn place(kind: LinkKind, dialect: Dialect) -> Place {
    let p = |table, column: Option<&'static str>, path: &'static [&'static str]| Place {
        table,
        id: "id",
        column,
        path,
        only: "",
    };
    match kind {
        LinkKind::Lead => p("leads", Some("partner"), &["partner"]),
        LinkKind::Request => p("requests", Some("partner"), &["partner"]),
        LinkKind::Comment => Place {
            only: match dialect {
                Dialect::Sqlite => "",
                Dialect::Postgres => " AND target_kind = 1",
            },
            ..p("comments", Some("target"), &["target", "id"])
        },
        LinkKind::Document => p("documents", Some("partner"), &["partner"]),
        LinkKind::Quotation => p("quotations", Some("partner"), &["partner"]),
        LinkKind::Contract => p("contracts", Some("partner"), &["partner"]),
        LinkKind::Meeting => p("meetings", None, &["partner"]),
        LinkKind::Attachment => Place {
            only: " AND target_kind = 2",
            ..p("attachments", Some("partner"), &["target", "id"])
        },
        LinkKind::Representative => p("representatives", Some("partner"), &["partner"]),
        LinkKind::PaymentAttempt => p("payment_attempts", Some("partner"), &["partner"]),
        // The campaign targets (`LinkKind` is non-exhaustive: a kind crm-core adds needs its own arm here, and
        // `check_partner_merge` gives a partner a record of every kind, so a missing one fails it).
        _ => Place {
            id: "campaign",
            ..p("campaign_targets", Some("partner"), &["partner"])
        },
    }
}

/// `<where the record points at partner {p}>`: its column, or (a meeting) its document's field.
fn points_at(dialect: Dialect, at: &Place, p: &str) -> String {
    match (at.column, dialect) {
        (Some(c), _) => format!("{c} = {p}{}", at.only),
        (None, Dialect::Sqlite) => format!("json_extract(doc, '$.{}') = {p}", at.path.join(".")),
        (None, Dialect::Postgres) => format!("doc #>> '{{{}}}' = {p}", at.path.join(",")),
    }
}

/// The statement reading `(kind, id, version)` of every record of `tenant` that points at `partner`.
pub fn links_sql(dialect: Dialect, tenant: TenantId, partner: PartnerId) -> Sql {
    let (mut sql, t) = Sql::for_tenant(dialect, tenant);
    let p = sql.bind(*partner.as_uuid());
    let text = sql.bind(partner.as_uuid().to_string());
    let selects: Vec<String> = LinkKind::ALL
        .iter()
        .map(|kind| {
            let at = place(*kind, dialect);
            let version = if kind.versioned() { "version" } else { "0" };
            let cond = points_at(dialect, &at, if at.column.is_some() { &p } else { &text });
            format!(
                "SELECT CAST({} AS integer) AS kind, {} AS id, {version} AS version FROM {} \
                 WHERE tenant = {t} AND {cond}",
                kind.code(),
                at.id,
                at.table
            )
        })
        .collect();
    sql.text = selects.join(" UNION ALL ");
    sql
}

/// `Store::fetch(Key::PartnerLinks(partner))` on a [`Runner`].
///
/// # Errors
///
/// The adapter's; [`Error::Storage`] of kind `Corrupt` on a row that does not decode.
pub async fn links<R: Runner + ?Sized>(
    r: &R,
    tenant: TenantId,
    partner: PartnerId,
) -> Result<Vec<Record>> {
    r.rows(links_sql(r.dialect(), tenant, partner), false)
        .await?
        .iter()
        .map(|row| {
            let code = row[0].int("link kind")?;
            let kind = LinkKind::from_code(code as i64)
                .ok_or_else(|| crate::corrupt("link kind", code))?;
            Ok(Record::Link(Link {
                kind,
                id: row[1].uuid("link id")?,
                version: row[2].count("link version")?,
            }))
        })
        .collect()
}

/// `json_set(doc, <path>, <partner>, '$.version', <version>)` and its PostgreSQL twin: the document with the
/// partner at `path` and, when given, the version.
fn set_doc(dialect: Dialect, path: &[&str], partner: &str, version: Option<&str>) -> String {
    match dialect {
        Dialect::Sqlite => {
            let v = version.map_or(String::new(), |v| format!(", '$.version', {v}"));
            format!("json_set(doc, '$.{}', {partner}{v})", path.join("."))
        }
        Dialect::Postgres => {
            let set = format!(
                "jsonb_set(doc, '{{{}}}', to_jsonb(CAST({partner} AS text)))",
                path.join(",")
            );
            match version {
                Some(v) => {
                    format!("jsonb_set({set}, '{{version}}', to_jsonb(CAST({v} AS bigint)))")
                }
                None => set,
            }
        }
    }
}

/// Applies [`Write::Repoint`](crm_core::store::Write::Repoint) in the commit's transaction.
///
/// # Errors
///
/// [`Error::Conflict`] naming the record when it does not point at `m.from` at the expected version (its stored
/// version, or 0 when it is gone); [`Error::AlreadyExists`] when a campaign targets both partners; the adapter's.
pub async fn repoint<E: Exec>(tx: &E, dialect: Dialect, tenant: TenantId, m: &Move) -> Result<()> {
    let at = place(m.link.kind, dialect);
    let (mut sql, t) = Sql::for_tenant(dialect, tenant);
    let id = sql.bind(m.link.id);
    // PostgreSQL types every placeholder from its use: a meeting's move names no partner column.
    let to = match at.column {
        Some(_) => sql.bind(*m.to.as_uuid()),
        None => String::new(),
    };
    let to_text = sql.bind(m.to.as_uuid().to_string());
    let from = match at.column {
        Some(_) => sql.bind(*m.from.as_uuid()),
        None => sql.bind(m.from.as_uuid().to_string()),
    };
    let versioned = m.link.kind.versioned();
    let (version_set, version_cond, next) = if versioned {
        let next = sql.bind(m.link.version as i64 + 1);
        let expected = sql.bind(m.link.version as i64);
        (
            "version = version + 1, ".to_string(),
            format!(" AND version = {expected}"),
            Some(next),
        )
    } else {
        (String::new(), String::new(), None)
    };
    let mut sets = String::new();
    if let Some(c) = at.column {
        sets.push_str(&format!("{c} = {to}, "));
    }
    if m.link.kind == LinkKind::Attachment {
        sets.push_str(&format!("target = {to}, "));
    }
    sql.text = format!(
        "UPDATE {} SET {sets}{version_set}doc = {} WHERE tenant = {t} AND {} = {id} AND {}{version_cond}",
        at.table,
        set_doc(dialect, at.path, &to_text, next.as_deref()),
        at.id,
        points_at(dialect, &at, &from),
    );
    let changed = tx.execute(sql).await.map_err(|e| match e {
        Error::AlreadyExists { .. } => Error::AlreadyExists {
            entity: m.link.kind.entity(),
            key: m.to.to_string(),
        },
        other => other,
    })?;
    if changed == 0 {
        let (mut current, t) = Sql::for_tenant(dialect, tenant);
        let id = current.bind(m.link.id);
        let from = match at.column {
            Some(_) => current.bind(*m.from.as_uuid()),
            None => current.bind(m.from.as_uuid().to_string()),
        };
        let version = if versioned { "version" } else { "0" };
        current.text = format!(
            "SELECT {version} FROM {} WHERE tenant = {t} AND {} = {id} AND {}",
            at.table,
            at.id,
            points_at(dialect, &at, &from)
        );
        let stored = tx.first_int(current).await?;
        return Err(Error::Conflict {
            entity: m.link.kind.entity(),
            id: m.link.id.to_string(),
            expected: m.link.version,
            actual: stored.map_or(0, |v| v.max(0) as u64),
        });
    }
    if m.link.kind == LinkKind::Document {
        for table in ["document_lines", "allocations"] {
            let (mut sql, t) = Sql::for_tenant(dialect, tenant);
            let to = sql.bind(*m.to.as_uuid());
            let id = sql.bind(m.link.id);
            sql.text =
                format!("UPDATE {table} SET partner = {to} WHERE tenant = {t} AND document = {id}");
            tx.execute(sql).await?;
        }
    }
    Ok(())
}

/// The row of a merge's journal.
///
/// # Errors
///
/// [`Error::Invalid`] when it cannot be serialised.
pub fn merge_row(m: &PartnerMerge) -> Result<Vec<Param>> {
    Ok(vec![
        (*m.tenant().as_uuid()).into(),
        (*m.id().as_uuid()).into(),
        (*m.survivor().as_uuid()).into(),
        Param::I64(m.version() as i64),
        Param::json(m)?,
    ])
}

/// Applies [`Write::InsertMerge`](crm_core::store::Write::InsertMerge) or, with `expected`,
/// [`Write::UpdateMerge`](crm_core::store::Write::UpdateMerge).
///
/// # Errors
///
/// [`Error::AlreadyExists`], [`Error::Conflict`] or [`Error::NotFound`] as for any record; the adapter's.
pub async fn put_merge<E: Exec>(
    tx: &E,
    dialect: Dialect,
    m: &PartnerMerge,
    expected: Option<u64>,
) -> Result<()> {
    let step = match expected {
        None => commerce::insert(dialect, &MERGES, merge_row(m)?, "merge", m.id().to_string()),
        Some(e) => commerce::update(
            dialect,
            &MERGES,
            2,
            merge_row(m)?,
            ("merge", m.id().to_string(), e),
            m.version(),
        )?,
    };
    commerce::run_step(tx, step).await
}

/// The statement reading a merge's journal by id.
pub fn merge_sql(dialect: Dialect, tenant: TenantId, id: crm_core::id::MergeId) -> Sql {
    let (mut sql, t) = Sql::for_tenant(dialect, tenant);
    let i = sql.bind(*id.as_uuid());
    sql.text = format!(
        "SELECT {} FROM merges WHERE tenant = {t} AND id = {i}",
        dialect.doc()
    );
    sql
}

/// `Store::fetch(Key::Merge(id))` on a [`Runner`].
///
/// # Errors
///
/// The adapter's; [`Error::Storage`] of kind `Corrupt` when the journal does not decode.
pub async fn merge<R: Runner + ?Sized>(
    r: &R,
    tenant: TenantId,
    id: crm_core::id::MergeId,
) -> Result<Vec<Record>> {
    r.rows(merge_sql(r.dialect(), tenant, id), false)
        .await?
        .iter()
        .map(|row| {
            Ok(Record::Merge(crate::fetch::Doc::parse_as(
                row[0].text("merge")?,
                "merge",
            )?))
        })
        .collect()
}
