//! Merges of partners in SQL: the records that point at a partner ([`Key::PartnerLinks`](crm_core::store::Key)),
//! moving one of them to another partner ([`Write::Repoint`](crm_core::store::Write)) and the merges' journal, for
//! both adapters. A move is one version-checked `UPDATE` of the record's partner column and of the same field in
//! its JSON document (`json_set` on SQLite, `jsonb_set` on PostgreSQL), its version one on; a document's lines and
//! allocations follow it.

use crate::commerce::{self, Exec};
use crate::schema::{LEAD_MERGES, MERGES};
use crate::{Dialect, Param, Runner, Sql, Table};
use crm_core::error::{Error, Result};
use crm_core::id::{LeadId, PartnerId, TenantId};
use crm_core::lead_merge::{LeadMerge, LEAD_LINKS};
use crm_core::merge::{Link, LinkKind, Move, PartnerMerge};
use crm_core::store::{Record, Write};

/// What a record points at and moves between in a merge: a partner or a lead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    Partner,
    Lead,
}

/// Where a kind of record keeps its partner (or its lead).
struct Place {
    table: &'static str,
    /// The column the record is found by (a campaign target's is its campaign).
    id: &'static str,
    /// The column holding the partner or lead, if the table has one (a meeting's partner, a contract's lead and a
    /// campaign target's lead are only in the document).
    column: Option<&'static str>,
    /// Another column holding the same id, set along (an attachment's `target` and its kind's own column).
    also: Option<&'static str>,
    /// The field of the document holding it.
    path: &'static [&'static str],
    /// An extra condition (without placeholders).
    only: &'static str,
}

fn place(kind: LinkKind, owner: Owner, dialect: Dialect) -> Place {
    let p = |table, column: Option<&'static str>, path: &'static [&'static str]| Place {
        table,
        id: "id",
        column,
        also: None,
        path,
        only: "",
    };
    // Comments carry their target's kind in a column on PostgreSQL only (0 lead, 1 partner).
    let comment_kind = |code: &'static str| match dialect {
        Dialect::Sqlite => "",
        Dialect::Postgres => code,
    };
    match (owner, kind) {
        (Owner::Lead, LinkKind::Request) => p("requests", Some("lead"), &["lead"]),
        (Owner::Lead, LinkKind::Comment) => Place {
            only: comment_kind(" AND target_kind = 0"),
            ..p("comments", Some("target"), &["target", "id"])
        },
        (Owner::Lead, LinkKind::Quotation) => p("quotations", Some("lead"), &["lead"]),
        (Owner::Lead, LinkKind::Contract) => p("contracts", None, &["lead"]),
        (Owner::Lead, LinkKind::Meeting) => p("meetings", Some("lead"), &["lead"]),
        (Owner::Lead, LinkKind::Attachment) => Place {
            also: Some("lead"),
            only: " AND target_kind = 1",
            ..p("attachments", Some("target"), &["target", "id"])
        },
        (Owner::Lead, _) => Place {
            id: "campaign",
            ..p("campaign_targets", None, &["lead"])
        },
        (_, LinkKind::Lead) => p("leads", Some("partner"), &["partner"]),
        (_, LinkKind::Request) => p("requests", Some("partner"), &["partner"]),
        (_, LinkKind::Comment) => Place {
            only: comment_kind(" AND target_kind = 1"),
            ..p("comments", Some("target"), &["target", "id"])
        },
        // A document's stored JSON holds neither its partner nor its version (its columns do): no path.
        (_, LinkKind::Document) => p("documents", Some("partner"), &[]),
        (_, LinkKind::Quotation) => p("quotations", Some("partner"), &["partner"]),
        (_, LinkKind::Contract) => p("contracts", Some("partner"), &["partner"]),
        (_, LinkKind::Meeting) => p("meetings", None, &["partner"]),
        (_, LinkKind::Attachment) => Place {
            also: Some("target"),
            only: " AND target_kind = 2",
            ..p("attachments", Some("partner"), &["target", "id"])
        },
        (_, LinkKind::Representative) => p("representatives", Some("partner"), &["partner"]),
        (_, LinkKind::PaymentAttempt) => p("payment_attempts", Some("partner"), &["partner"]),
        // The campaign targets (`LinkKind` is non-exhaustive: a kind crm-core adds needs its own arm here, and
        // `check_partner_merge` gives a partner a record of every kind, so a missing one fails it).
        _ => Place {
            id: "campaign",
            ..p("campaign_targets", Some("partner"), &["partner"])
        },
    }
}

/// `<where the record points at {p}>`: its column, or its document's field.
fn points_at(dialect: Dialect, at: &Place, p: &str) -> String {
    match (at.column, dialect) {
        (Some(c), _) => format!("{c} = {p}{}", at.only),
        (None, Dialect::Sqlite) => format!("json_extract(doc, '$.{}') = {p}", at.path.join(".")),
        (None, Dialect::Postgres) => format!("doc #>> '{{{}}}' = {p}", at.path.join(",")),
    }
}

/// The statement reading `(kind, id, version)` of every record of `tenant` that points at `owner` `id`.
fn links_of_sql(dialect: Dialect, tenant: TenantId, owner: Owner, id: uuid::Uuid) -> Sql {
    let (mut sql, t) = Sql::for_tenant(dialect, tenant);
    let p = sql.bind(id);
    let text = sql.bind(id.to_string());
    let kinds: &[LinkKind] = match owner {
        Owner::Partner => &LinkKind::ALL,
        Owner::Lead => &LEAD_LINKS,
    };
    let selects: Vec<String> = kinds
        .iter()
        .map(|kind| {
            let at = place(*kind, owner, dialect);
            let version = if kind.versioned() { "version" } else { "0" };
            let mut cond = points_at(dialect, &at, if at.column.is_some() { &p } else { &text });
            if owner == Owner::Lead && at.column.is_none() {
                // Only in the document: the lead's partner narrows the scan to an index range.
                cond.push_str(&format!(
                    " AND partner = (SELECT partner FROM leads WHERE tenant = {t} AND id = {p})"
                ));
            }
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

/// The statement reading `(kind, id, version)` of every record of `tenant` that points at `partner`.
pub fn links_sql(dialect: Dialect, tenant: TenantId, partner: PartnerId) -> Sql {
    links_of_sql(dialect, tenant, Owner::Partner, *partner.as_uuid())
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
    read_links(r, links_sql(r.dialect(), tenant, partner)).await
}

/// `Store::fetch(Key::LeadLinks(lead))` on a [`Runner`].
///
/// # Errors
///
/// The adapter's; [`Error::Storage`] of kind `Corrupt` on a row that does not decode.
pub async fn lead_links<R: Runner + ?Sized>(
    r: &R,
    tenant: TenantId,
    lead: LeadId,
) -> Result<Vec<Record>> {
    let sql = links_of_sql(r.dialect(), tenant, Owner::Lead, *lead.as_uuid());
    read_links(r, sql).await
}

async fn read_links<R: Runner + ?Sized>(r: &R, sql: Sql) -> Result<Vec<Record>> {
    r.rows(sql, false)
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

/// `json_set(doc, <path>, <id>, '$.version', <version>)` and its PostgreSQL twin: the document with the
/// partner or lead at `path` and, when given, the version.
fn set_doc(dialect: Dialect, path: &[&str], to: &str, version: Option<&str>) -> String {
    match dialect {
        Dialect::Sqlite => {
            let v = version.map_or(String::new(), |v| format!(", '$.version', {v}"));
            format!("json_set(doc, '$.{}', {to}{v})", path.join("."))
        }
        Dialect::Postgres => {
            let set = format!(
                "jsonb_set(doc, '{{{}}}', to_jsonb(CAST({to} AS text)))",
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

/// Applies a merge's writes in the commit's transaction: [`Write::Repoint`], [`Write::RepointLead`], and the
/// journals ([`Write::InsertMerge`], [`Write::UpdateMerge`], [`Write::InsertLeadMerge`],
/// [`Write::UpdateLeadMerge`]).
///
/// # Errors
///
/// As [`repoint`] and [`put_merge`]; [`Error::Invalid`] on `writes` for any other write.
pub async fn apply<E: Exec>(tx: &E, dialect: Dialect, w: &Write) -> Result<()> {
    match w {
        Write::Repoint { tenant, moved } => repoint(tx, dialect, *tenant, moved).await,
        Write::RepointLead { tenant, moved } => {
            let (from, to) = (*moved.from.as_uuid(), *moved.to.as_uuid());
            repoint_in(tx, dialect, *tenant, Owner::Lead, (from, to), moved.link).await
        }
        Write::InsertMerge(m) => put_merge(tx, dialect, m, None).await,
        Write::UpdateMerge {
            merge,
            expected_version,
        } => put_merge(tx, dialect, merge, Some(*expected_version)).await,
        Write::InsertLeadMerge(m) => put_lead_merge(tx, dialect, m, None).await,
        Write::UpdateLeadMerge {
            merge,
            expected_version,
        } => put_lead_merge(tx, dialect, merge, Some(*expected_version)).await,
        _ => Err(Error::invalid("writes", "not a merge's write")),
    }
}

/// Applies [`Write::Repoint`] in the commit's transaction.
///
/// # Errors
///
/// [`Error::Conflict`] naming the record when it does not point at `m.from` at the expected version (its stored
/// version, or 0 when it is gone); [`Error::AlreadyExists`] when a campaign targets both partners; the adapter's.
pub async fn repoint<E: Exec>(tx: &E, dialect: Dialect, tenant: TenantId, m: &Move) -> Result<()> {
    let (from, to) = (*m.from.as_uuid(), *m.to.as_uuid());
    let document = m.link.kind == LinkKind::Document;
    // A document's roll-ups by customer move with it: subtracted as it points now, added as it points after.
    if document {
        for sql in crate::rollup::apply_documents(dialect, tenant, &[m.link.id], -1) {
            tx.execute(sql).await?;
        }
    }
    repoint_in(tx, dialect, tenant, Owner::Partner, (from, to), m.link).await?;
    if document {
        for sql in crate::rollup::apply_documents(dialect, tenant, &[m.link.id], 1) {
            tx.execute(sql).await?;
        }
        for table in ["document_lines", "allocations"] {
            let (mut sql, t) = Sql::for_tenant(dialect, tenant);
            let to = sql.bind(to);
            let id = sql.bind(m.link.id);
            sql.text =
                format!("UPDATE {table} SET partner = {to} WHERE tenant = {t} AND document = {id}");
            tx.execute(sql).await?;
        }
    }
    Ok(())
}

/// Moves the record `link` of `tenant` from the `owner` `from` to `to`: one version-checked `UPDATE`.
async fn repoint_in<E: Exec>(
    tx: &E,
    dialect: Dialect,
    tenant: TenantId,
    owner: Owner,
    (from, to): (uuid::Uuid, uuid::Uuid),
    link: Link,
) -> Result<()> {
    let at = place(link.kind, owner, dialect);
    let (mut sql, t) = Sql::for_tenant(dialect, tenant);
    let id = sql.bind(link.id);
    // PostgreSQL types every placeholder from its use: a move that names no column binds no uuid.
    let to_uuid = match at.column {
        Some(_) => sql.bind(to),
        None => String::new(),
    };
    // A record whose JSON holds no pointer (a document's: its columns hold it, and its reads put it back) has no
    // path, and its `doc` is left alone. Nothing is bound that the statement does not use.
    let in_doc = !at.path.is_empty();
    let to_text = if in_doc {
        sql.bind(to.to_string())
    } else {
        String::new()
    };
    let from_p = match at.column {
        Some(_) => sql.bind(from),
        None => sql.bind(from.to_string()),
    };
    let versioned = link.kind.versioned();
    let (version_cond, next) = if versioned {
        let next = in_doc.then(|| sql.bind(link.version as i64 + 1));
        let expected = sql.bind(link.version as i64);
        (format!(" AND version = {expected}"), next)
    } else {
        (String::new(), None)
    };
    let mut sets: Vec<String> = at
        .column
        .iter()
        .chain(at.also.iter())
        .map(|c| format!("{c} = {to_uuid}"))
        .collect();
    if versioned {
        sets.push("version = version + 1".into());
    }
    if in_doc {
        sets.push(format!(
            "doc = {}",
            set_doc(dialect, at.path, &to_text, next.as_deref())
        ));
    }
    sql.text = format!(
        "UPDATE {} SET {} WHERE tenant = {t} AND {} = {id} AND {}{version_cond}",
        at.table,
        sets.join(", "),
        at.id,
        points_at(dialect, &at, &from_p),
    );
    let changed = tx.execute(sql).await.map_err(|e| match e {
        Error::AlreadyExists { .. } => Error::AlreadyExists {
            entity: link.kind.entity(),
            key: to.to_string(),
        },
        other => other,
    })?;
    if changed == 0 {
        let (mut current, t) = Sql::for_tenant(dialect, tenant);
        let id = current.bind(link.id);
        let from = match at.column {
            Some(_) => current.bind(from),
            None => current.bind(from.to_string()),
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
            entity: link.kind.entity(),
            id: link.id.to_string(),
            expected: link.version,
            actual: stored.map_or(0, |v| v.max(0) as u64),
        });
    }
    Ok(())
}

/// The row of a journal: tenant, id, survivor, version, document.
fn journal_row<J: serde::Serialize>(
    tenant: TenantId,
    id: uuid::Uuid,
    survivor: uuid::Uuid,
    version: u64,
    j: &J,
) -> Result<Vec<Param>> {
    Ok(vec![
        (*tenant.as_uuid()).into(),
        id.into(),
        survivor.into(),
        Param::I64(version as i64),
        Param::json(j)?,
    ])
}

/// The row of a merge's journal.
///
/// # Errors
///
/// [`Error::Invalid`] when it cannot be serialised.
pub fn merge_row(m: &PartnerMerge) -> Result<Vec<Param>> {
    journal_row(
        m.tenant(),
        *m.id().as_uuid(),
        *m.survivor().as_uuid(),
        m.version(),
        m,
    )
}

/// Inserts a journal of `table` (`expected` none) or replaces the one stored at version `expected`.
async fn put_journal<E: Exec>(
    tx: &E,
    dialect: Dialect,
    (table, entity): (&Table, &'static str),
    (id, version): (String, u64),
    row: Vec<Param>,
    expected: Option<u64>,
) -> Result<()> {
    let step = match expected {
        None => commerce::insert(dialect, table, row, entity, id),
        Some(e) => commerce::update(dialect, table, 2, row, (entity, id, e), version)?,
    };
    commerce::run_step(tx, step).await
}

/// Applies [`Write::InsertMerge`] or, with `expected`,
/// [`Write::UpdateMerge`].
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
    let key = (m.id().to_string(), m.version());
    put_journal(
        tx,
        dialect,
        (&MERGES, "merge"),
        key,
        merge_row(m)?,
        expected,
    )
    .await
}

/// Applies [`Write::InsertLeadMerge`] or, with `expected`, [`Write::UpdateLeadMerge`].
///
/// # Errors
///
/// [`Error::AlreadyExists`], [`Error::Conflict`] or [`Error::NotFound`] (entity `lead merge`) as for any record;
/// the adapter's.
pub async fn put_lead_merge<E: Exec>(
    tx: &E,
    dialect: Dialect,
    m: &LeadMerge,
    expected: Option<u64>,
) -> Result<()> {
    let row = journal_row(
        m.tenant(),
        *m.id().as_uuid(),
        *m.survivor().as_uuid(),
        m.version(),
        m,
    )?;
    let key = (m.id().to_string(), m.version());
    put_journal(
        tx,
        dialect,
        (&LEAD_MERGES, "lead merge"),
        key,
        row,
        expected,
    )
    .await
}

/// The statement reading a journal of `table` by id.
fn journal_sql(dialect: Dialect, table: &str, tenant: TenantId, id: crm_core::id::MergeId) -> Sql {
    let (mut sql, t) = Sql::for_tenant(dialect, tenant);
    let i = sql.bind(*id.as_uuid());
    sql.text = format!(
        "SELECT {} FROM {table} WHERE tenant = {t} AND id = {i}",
        dialect.doc()
    );
    sql
}

/// The statement reading a merge's journal by id.
pub fn merge_sql(dialect: Dialect, tenant: TenantId, id: crm_core::id::MergeId) -> Sql {
    journal_sql(dialect, "merges", tenant, id)
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
    read_journal(
        r,
        merge_sql(r.dialect(), tenant, id),
        "merge",
        Record::Merge,
    )
    .await
}

/// `Store::fetch(Key::LeadMerge(id))` on a [`Runner`].
///
/// # Errors
///
/// The adapter's; [`Error::Storage`] of kind `Corrupt` when the journal does not decode.
pub async fn lead_merge<R: Runner + ?Sized>(
    r: &R,
    tenant: TenantId,
    id: crm_core::id::MergeId,
) -> Result<Vec<Record>> {
    let sql = journal_sql(r.dialect(), "lead_merges", tenant, id);
    read_journal(r, sql, "lead merge", Record::LeadMerge).await
}

async fn read_journal<R: Runner + ?Sized, J: serde::de::DeserializeOwned>(
    r: &R,
    sql: Sql,
    what: &'static str,
    record: fn(J) -> Record,
) -> Result<Vec<Record>> {
    r.rows(sql, false)
        .await?
        .iter()
        .map(|row| {
            Ok(record(crate::fetch::Doc::parse_as(
                row[0].text(what)?,
                what,
            )?))
        })
        .collect()
}
