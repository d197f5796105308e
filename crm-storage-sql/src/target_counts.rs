//! The campaign targets' counts: what the campaign report counts of a campaign's targets (all of them, those reached
//! in a period, those whose latest outcome of each kind was recorded in it), kept per campaign and day in the
//! transaction that writes a target.
//!
//! `campaign_target_counts` holds, per tenant, campaign, `kind` and `day`, the number `n` of the campaign's targets
//! (held-out ones left out) that kind counts: `kind` 0 every target (`day` 0), 1 those first reached on the day, and
//! 2 + an outcome's code those whose latest outcome, of that kind, was recorded on the day. A day is the UTC date of
//! the timestamp as a [`day_number`](crm_core::commerce::day_number), so a report's period is a range of days, and a
//! timestamp is in a period exactly when its day is.
//!
//! A campaign's report then reads a few rows per campaign and day it covers, where it counted the targets' rows: at
//! 20k targets a campaign, two scans of their wide rows were most of its time. Only two writes change a target:
//! inserting one adds it ([`apply`] with 1 after the insert), and updating one (a call's outcome, a send) subtracts
//! it as stored and adds it as updated (-1 before, 1 after), in the write's transaction. A partner merge repoints a
//! target to another partner and changes none of what is counted (a campaign targeting both partners refuses the
//! merge); an erasure blanks its document only. An ingest adds its targets per campaign, a few hundred per
//! statement, and a bulk load's finish rebuilds the counts with the other roll-ups
//! ([`crate::rollup::rollups`] checks and rebuilds them too).

use crate::run::{corrupt, Cell};
use crate::{Dialect, Sql};
use crm_core::commerce::{OutcomeKind, TargetCountDifference, TargetMeasure};
use crm_core::id::{CampaignId, TenantId};
use crm_core::Result;
use uuid::Uuid;

/// The table of the counts.
pub const TABLE: &str = "campaign_target_counts";

/// Microseconds in a day.
const DAY_MICROS: i64 = 86_400_000_000;

/// The day number of 1970-01-01 (`day_number` counts from 0001-01-01).
const EPOCH_DAY: i64 = 719_163;

/// The day number of the UTC date of the microsecond timestamp in `column` (floored, so a timestamp before 1970
/// falls on its own day too).
fn day_of(column: &str) -> String {
    format!(
        "CAST(({column} - ((({column} % {DAY_MICROS}) + {DAY_MICROS}) % {DAY_MICROS})) / {DAY_MICROS} + {EPOCH_DAY} \
         AS integer)"
    )
}

/// `SELECT tenant, campaign, kind, day, n` of the targets matching `filter` (a condition on `campaign_targets`):
/// each count they make, multiplied by `sign`.
fn counted(dialect: Dialect, filter: &str, sign: i64) -> String {
    let (kind, n) = match dialect {
        Dialect::Sqlite => (
            "CASE m.m WHEN 2 THEN 2 + outcome ELSE m.m END".to_string(),
            format!("{sign} * count(*)"),
        ),
        Dialect::Postgres => (
            "CAST(CASE m.m WHEN 2 THEN 2 + outcome ELSE m.m END AS smallint)".to_string(),
            format!("CAST({sign} * count(*) AS bigint)"),
        ),
    };
    format!(
        "SELECT tenant, campaign, kind, day, {n} AS n FROM (SELECT tenant, campaign, {kind} AS kind, \
         CASE m.m WHEN 0 THEN 0 WHEN 1 THEN {reached} ELSE {outcome} END AS day \
         FROM campaign_targets CROSS JOIN (SELECT 0 AS m UNION ALL SELECT 1 AS m UNION ALL SELECT 2 AS m) AS m \
         WHERE {filter} AND holdout = 0 AND (m.m = 0 OR (m.m = 1 AND reached_at IS NOT NULL) \
         OR (m.m = 2 AND outcome IS NOT NULL AND outcome_at IS NOT NULL))) AS x \
         GROUP BY tenant, campaign, kind, day",
        reached = day_of("reached_at"),
        outcome = day_of("outcome_at"),
    )
}

/// The statement adding `sign` (1 or -1) times the stored targets of `tenant`'s `campaign` whose partners are
/// `partners` to the counts: run it after inserting targets, and around an update of one (-1 before, 1 after), in
/// the same transaction.
pub fn apply(
    dialect: Dialect,
    tenant: TenantId,
    campaign: CampaignId,
    partners: &[Uuid],
    sign: i64,
) -> Sql {
    let (mut sql, t) = Sql::for_tenant(dialect, tenant);
    let c = sql.bind(*campaign.as_uuid());
    let among = crate::rollup::among(&mut sql, "partner", partners);
    sql.text = format!(
        "INSERT INTO {TABLE} (tenant, campaign, kind, day, n) {} \
         ON CONFLICT (tenant, campaign, kind, day) DO UPDATE SET n = {TABLE}.n + excluded.n",
        counted(
            dialect,
            &format!("tenant = {t} AND campaign = {c} AND {among}"),
            sign
        )
    );
    sql
}

/// The statements adding the targets `(campaign, partner)` of `tenant`, just ingested, to the counts: one per
/// campaign and [`crate::rollup::IDS_PER_STATEMENT`] partners.
pub fn apply_ingested(dialect: Dialect, tenant: TenantId, targets: &[(Uuid, Uuid)]) -> Vec<Sql> {
    let mut by: std::collections::BTreeMap<Uuid, Vec<Uuid>> = Default::default();
    for (campaign, partner) in targets {
        by.entry(*campaign).or_default().push(*partner);
    }
    let mut out = Vec::new();
    for (campaign, partners) in by {
        for chunk in partners.chunks(crate::rollup::IDS_PER_STATEMENT) {
            out.push(apply(
                dialect,
                tenant,
                CampaignId::from_uuid(campaign),
                chunk,
                1,
            ));
        }
    }
    out
}

/// The table's definition.
fn create(dialect: Dialect) -> String {
    let (uuid, without_rowid) = match dialect {
        Dialect::Sqlite => ("BLOB", " WITHOUT ROWID"),
        Dialect::Postgres => ("uuid", ""),
    };
    format!(
        "CREATE TABLE {TABLE} (tenant {uuid} NOT NULL, campaign {uuid} NOT NULL, kind smallint NOT NULL, \
         day integer NOT NULL, n bigint NOT NULL, PRIMARY KEY (tenant, campaign, kind, day)){without_rowid};\n"
    )
}

/// Migration (SQLite's 32, PostgreSQL's 29): the counts' table, filled from the targets already stored.
pub fn schema(dialect: Dialect) -> String {
    format!(
        "{}INSERT INTO {TABLE} (tenant, campaign, kind, day, n) {};\n",
        create(dialect),
        counted(dialect, "true", 1)
    )
}

/// The statements replacing `tenant`'s counts by those of its targets (in the rebuild's transaction).
pub(crate) fn rebuild_sql(dialect: Dialect, tenant: TenantId) -> Vec<Sql> {
    let (mut drop, t) = Sql::for_tenant(dialect, tenant);
    drop.text = format!("DELETE FROM {TABLE} WHERE tenant = {t}");
    let (mut fill, t) = Sql::for_tenant(dialect, tenant);
    fill.text = format!(
        "INSERT INTO {TABLE} (tenant, campaign, kind, day, n) {}",
        counted(dialect, &format!("tenant = {t}"), 1)
    );
    vec![drop, fill]
}

/// The statement listing `tenant`'s counts that differ from its targets: `(side, campaign, kind, day, n)`, side 0
/// what the targets give, 1 what is stored (a stored zero counts as none); at most `limit` rows, the two sides of a
/// count adjacent.
pub(crate) fn differences_sql(dialect: Dialect, tenant: TenantId, limit: usize) -> Sql {
    let (mut sql, t) = Sql::for_tenant(dialect, tenant);
    let n = sql.bind(limit as i64);
    sql.text = format!(
        "WITH l AS (SELECT campaign, kind, day, n FROM ({rows}) AS r), \
         s AS (SELECT campaign, kind, day, n FROM {TABLE} WHERE tenant = {t} AND n <> 0) \
         SELECT 0 AS side, campaign, kind, day, n FROM (SELECT * FROM l EXCEPT SELECT * FROM s) AS a \
         UNION ALL SELECT 1, campaign, kind, day, n FROM (SELECT * FROM s EXCEPT SELECT * FROM l) AS b \
         ORDER BY 2, 3, 4, 1 LIMIT {n}",
        rows = counted(dialect, &format!("tenant = {t}"), 1),
    );
    sql
}

/// The counts that differ, from [`differences_sql`]'s rows.
///
/// # Errors
///
/// [`crm_core::Error::Storage`] of kind `Corrupt` on a kind, day or count that does not decode.
pub(crate) fn differences(rows: &[Vec<Cell>]) -> Result<Vec<TargetCountDifference>> {
    let mut out: Vec<TargetCountDifference> = Vec::new();
    for row in rows {
        let side = row[0].int("side")?;
        let campaign = CampaignId::from_uuid(row[1].uuid("campaign")?);
        let kind = row[2].int("target count kind")?;
        let measure = match kind {
            0 => TargetMeasure::Targets,
            1 => TargetMeasure::Reached,
            k => i16::try_from(k - 2)
                .ok()
                .and_then(OutcomeKind::from_code)
                .map(TargetMeasure::Outcome)
                .ok_or_else(|| corrupt("target count kind", k))?,
        };
        let day = match measure {
            TargetMeasure::Targets => None,
            _ => {
                let d = row[3].int("day")?;
                Some(
                    i32::try_from(d)
                        .ok()
                        .and_then(crm_core::commerce::from_day_number)
                        .ok_or_else(|| corrupt("day", d))?,
                )
            }
        };
        let value = row[4].count("target count")?;
        let same =
            |x: &TargetCountDifference| (x.campaign, x.measure, x.day) == (campaign, measure, day);
        if !out.last().is_some_and(same) {
            out.push(TargetCountDifference {
                campaign,
                measure,
                day,
                stored: None,
                targets: None,
            });
        }
        if let Some(last) = out.last_mut() {
            if side == 0 {
                last.targets = Some(value);
            } else {
                last.stored = Some(value);
            }
        }
    }
    Ok(out)
}

/// The statements of the campaign report's target counts of `tenant` over days `days` (inclusive). With
/// `campaign`, that campaign's: `(targets, reached)` (one row), and `(outcome code, count)`. Without, every campaign's
/// of the tenant's `campaigns`, each row led by its campaign, driven from them so each campaign's counts are one range
/// of the key.
pub(crate) fn report_sql(
    dialect: Dialect,
    tenant: TenantId,
    campaign: Option<CampaignId>,
    (from, to): (i32, i32),
) -> [Sql; 2] {
    let sum = |e: &str| match dialect {
        Dialect::Sqlite => format!("COALESCE(sum({e}), 0)"),
        Dialect::Postgres => format!("CAST(COALESCE(sum({e}), 0) AS bigint)"),
    };
    // `SELECT <lead><what> FROM <source> WHERE <cond> AND <filter> <grouped by the lead and `by`>`, the days bound
    // as `{from}` and `{to}` in `filter`.
    let statement = |what: &str, filter: &str, by: Option<&str>, having: &str| {
        let (mut sql, t) = Sql::for_tenant(dialect, tenant);
        let (source, cond, lead) = match campaign {
            Some(c) => {
                let c = sql.bind(*c.as_uuid());
                (
                    format!("{TABLE} k"),
                    format!("k.tenant = {t} AND k.campaign = {c}"),
                    None,
                )
            }
            None => (
                format!("campaigns c CROSS JOIN {TABLE} k"),
                format!("c.tenant = {t} AND k.tenant = c.tenant AND k.campaign = c.id"),
                Some("c.id"),
            ),
        };
        let f = sql.bind(crate::Param::Day(from));
        let to = sql.bind(crate::Param::Day(to));
        let filter = filter.replace("{from}", &f).replace("{to}", &to);
        let keys: Vec<&str> = lead.into_iter().chain(by).collect();
        let group = if keys.is_empty() {
            String::new()
        } else {
            format!(" GROUP BY {}{having}", keys.join(", "))
        };
        let lead = lead.map(|l| format!("{l}, ")).unwrap_or_default();
        sql.text = format!("SELECT {lead}{what} FROM {source} WHERE {cond} AND {filter}{group}");
        sql
    };
    [
        statement(
            &format!(
                "{}, {}",
                sum("CASE WHEN k.kind = 0 THEN k.n ELSE 0 END"),
                sum("CASE WHEN k.kind = 1 THEN k.n ELSE 0 END")
            ),
            "k.kind IN (0, 1) AND (k.kind = 0 OR k.day BETWEEN {from} AND {to})",
            None,
            "",
        ),
        statement(
            &format!("k.kind - 2, {}", sum("k.n")),
            "k.kind >= 2 AND k.day BETWEEN {from} AND {to}",
            Some("k.kind"),
            " HAVING sum(k.n) <> 0",
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timestamp_falls_on_its_utc_day() {
        // The expression, evaluated the way SQL does (`%` keeps the dividend's sign, `/` truncates), equals
        // chrono's date for timestamps either side of the epoch and of midnight.
        let eval = |us: i64| {
            (us - (((us % DAY_MICROS) + DAY_MICROS) % DAY_MICROS)) / DAY_MICROS + EPOCH_DAY
        };
        for us in [
            0,
            -1,
            1,
            DAY_MICROS - 1,
            DAY_MICROS,
            -DAY_MICROS,
            -DAY_MICROS - 1,
            1_767_225_599_999_999,
            chrono::DateTime::<chrono::Utc>::MIN_UTC.timestamp_micros(),
            chrono::DateTime::<chrono::Utc>::MAX_UTC.timestamp_micros(),
        ] {
            let date = chrono::DateTime::from_timestamp_micros(us)
                .expect("in range")
                .date_naive();
            assert_eq!(
                eval(us),
                i64::from(crm_core::commerce::day_number(date)),
                "{us}"
            );
        }
        assert!(day_of("reached_at").contains("reached_at % 86400000000"));
    }

    #[test]
    fn one_campaigns_report_binds_its_campaign_and_days() {
        let c = CampaignId::new();
        let [targets, outcomes] = report_sql(Dialect::Postgres, TenantId::new(), Some(c), (5, 9));
        assert!(
            targets.text.contains("k.campaign = $2") && targets.text.contains("BETWEEN $3 AND $4")
        );
        assert!(outcomes.text.contains("k.kind >= 2"));
        assert_eq!(targets.params.len(), 4);
    }
}
