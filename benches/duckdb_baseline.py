#!/usr/bin/env python3
"""The analytical-engine baseline of the benchmark suite: segmentation and profitability in DuckDB.

Run by the report runner (benches/report.rs) as
    python3 benches/duckdb_baseline.py DB MANIFEST REPS
It copies the main tenant's partners, documents and document lines out of the SQLite file (python's sqlite3 module,
read-only) into CSV files, loads them into an in-memory DuckDB database (the load is timed apart; ids are typed
UUID, not text), and runs each workload once untimed (warm-up) and then REPS times, first on all cores and then on
one thread. A run's time covers the query and fetching its rows into columns (NumPy arrays when numpy is installed:
no Python object per row), not building the digest. It prints one JSON object: per workload the seconds of each run,
the rows covered and a digest built exactly like the Rust side's (FNV-1a over the sorted result lines), so the
runner can check the results equal; `workloads` on all cores, `workloads_1t` on one thread.
"""

import csv
import json
import os
import resource
import sqlite3
import sys
import tempfile
import time
import uuid
from datetime import date

import duckdb

try:
    import numpy  # noqa: F401  (fetchnumpy needs it)

    COLUMNAR = True
except ImportError:
    COLUMNAR = False


def fetch(cur):
    """The result's rows, fetched column-wise when numpy is there (timed); turned into tuples by `rows_of` (untimed)."""
    return cur.fetchnumpy() if COLUMNAR else cur.fetchall()


def rows_of(fetched):
    if not COLUMNAR:
        return fetched
    cols = list(fetched.values())
    return list(zip(*(c.tolist() for c in cols)))

FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3


def fnv(lines):
    h = FNV_OFFSET
    for line in lines:
        for b in line.encode() + b"\n":
            h ^= b
            h = (h * FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def day_number(d):
    """chrono's num_days_from_ce: 0001-01-01 is day 1."""
    return d.toordinal()


def u(b):
    return str(uuid.UUID(bytes=bytes(b))) if b is not None else ""


def export(src, tenant, out):
    """Streams the tables the workloads read into CSV files; returns their paths."""
    paths = {}
    queries = {
        "partners": ("SELECT id, name FROM partners WHERE tenant = ?", lambda r: (u(r[0]), r[1])),
        "documents": (
            "SELECT partner, kind, issue_day, reporting, revenue_units, cost_units, grp, campaign FROM documents "
            "WHERE tenant = ?",
            lambda r: (u(r[0]), r[1], r[2], r[3], r[4], r[5], r[6] if r[6] is not None else "", u(r[7])),
        ),
        "targets": (
            "SELECT campaign, reached_at FROM campaign_targets WHERE tenant = ?",
            lambda r: (u(r[0]), r[1]),
        ),
        "leads": (
            "SELECT json_extract(doc, '$.source.campaign'), status, created_at FROM leads "
            "WHERE tenant = ? AND json_extract(doc, '$.source.campaign') IS NOT NULL",
            lambda r: (r[0], r[1], r[2]),
        ),
        "costs": (
            "SELECT campaign, amount_units, day FROM campaign_costs WHERE tenant = ? AND reporting = 'EUR'",
            lambda r: (u(r[0]), r[1], r[2]),
        ),
        "lines": (
            "SELECT partner, category, issue_day, quantity_units, kind FROM document_lines WHERE tenant = ?",
            lambda r: (u(r[0]), u(r[1]), r[2], r[3], r[4]),
        ),
    }
    for name, (sql, conv) in queries.items():
        path = os.path.join(out, f"{name}.csv")
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            cur = src.execute(sql, (tenant,))
            while True:
                rows = cur.fetchmany(10000)
                if not rows:
                    break
                w.writerows(conv(r) for r in rows)
        paths[name] = path
    return paths


def main():
    db, manifest_path, reps = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open(manifest_path) as f:
        m = json.load(f)
    tenant = uuid.UUID(m["tenant"]).bytes
    c = m["commerce"]
    year = c["year"]
    y_from, y_to = day_number(date(year, 1, 1)), day_number(date(year, 12, 31))
    as_of = day_number(date.fromisoformat(c["as_of"]))
    category = c["category"]
    threshold = c["threshold_units"]

    started = time.perf_counter()
    src = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    con = duckdb.connect()
    with tempfile.TemporaryDirectory() as tmp:
        p = export(src, tenant, tmp)
        tables = {
            "partners": {"id": "UUID", "name": "VARCHAR"},
            "documents": {
                "partner": "UUID", "kind": "INTEGER", "issue_day": "INTEGER", "reporting": "VARCHAR",
                "revenue_units": "BIGINT", "cost_units": "BIGINT", "grp": "VARCHAR", "campaign": "UUID",
            },
            "lines": {
                "partner": "UUID", "category": "UUID", "issue_day": "INTEGER", "quantity_units": "BIGINT",
                "kind": "INTEGER",
            },
            "targets": {"campaign": "UUID", "reached_at": "BIGINT"},
            "leads": {"campaign": "UUID", "status": "INTEGER", "created_at": "BIGINT"},
            "costs": {"campaign": "UUID", "amount_units": "BIGINT", "day": "INTEGER"},
        }
        for name, cols in tables.items():
            if os.path.getsize(p[name]) == 0:
                # An empty file cannot be sniffed: the table is created empty.
                con.execute(f"CREATE TABLE {name} ({', '.join(f'{c} {t}' for c, t in cols.items())})")
            else:
                spec = "{" + ", ".join(f"'{c}': '{t}'" for c, t in cols.items()) + "}"
                con.execute(
                    f"CREATE TABLE {name} AS SELECT * FROM read_csv('{p[name]}', header = false, delim = ',', "
                    f"columns = {spec})"
                )
    src.close()
    load_secs = time.perf_counter() - started

    # 15 February to 14 November: partial months at both ends (benches/suite/work.rs, `Env::mid`).
    m_from, m_to = day_number(date(year, 2, 15)), day_number(date(year, 11, 14))

    def lines_in(f, t):
        return con.execute(
            "SELECT count(*) FROM lines WHERE issue_day BETWEEN ? AND ? AND kind IN (0, 1)", [f, t]
        ).fetchone()[0]

    lines_in_year, lines_in_mid = lines_in(y_from, y_to), lines_in(m_from, m_to)
    # The year's bounds in microseconds (leads' creation, targets' reach), `[from, to)`.
    epoch = date(1970, 1, 1).toordinal()
    us_from = (date(year, 1, 1).toordinal() - epoch) * 86_400_000_000
    us_to = (date(year + 1, 1, 1).toordinal() - epoch) * 86_400_000_000

    def segment():
        t0 = time.perf_counter()
        rows = con.execute(
            """
            WITH s AS (SELECT partner, MAX(CASE WHEN kind = 0 THEN issue_day END) AS last,
                         SUM(CASE WHEN issue_day BETWEEN $f AND $t THEN revenue_units ELSE 0 END) AS vol
                       FROM documents WHERE kind IN (0, 1) AND reporting = 'EUR' GROUP BY partner),
                 b AS (SELECT partner FROM lines WHERE category = CAST($c AS UUID) AND issue_day BETWEEN $f AND $t
                       GROUP BY partner HAVING SUM(quantity_units) > 0)
            SELECT p.id, p.name FROM s JOIN b ON b.partner = s.partner JOIN partners p ON p.id = s.partner
            WHERE s.last IS NOT NULL AND s.last < $a AND s.vol > $v
            """,
            {"f": y_from, "t": y_to, "c": category, "a": as_of - 90, "v": threshold},
        )
        rows = fetch(rows)
        secs = time.perf_counter() - t0
        out = sorted(f"{i} {n}" for i, n in rows_of(rows))
        return secs, m["partners"], f"{len(out)} members, {fnv(out)}"

    def profit(col, f=y_from, t=y_to, lines=None):
        lines = lines_in_year if lines is None else lines

        def run():
            t0 = time.perf_counter()
            rows = con.execute(
                # Sums cast to BIGINT: a HUGEINT comes out of fetchnumpy as a float.
                f"""SELECT {col}, CAST(SUM(revenue_units) AS BIGINT), CAST(SUM(cost_units) AS BIGINT),
                           CAST(SUM(CASE WHEN kind = 0 THEN 1 ELSE 0 END) AS BIGINT)
                    FROM documents WHERE reporting = 'EUR' AND issue_day BETWEEN ? AND ? AND kind IN (0, 1)
                    GROUP BY {col}""",
                [f, t],
            )
            rows = fetch(rows)
            secs = time.perf_counter() - t0
            rows = rows_of(rows)
            out = sorted(f"{k if k not in (None, '') else '-'} {r} {c} {n}" for k, r, c, n in rows)
            revenue = sum(int(r[1]) for r in rows)
            return secs, lines, f"{len(rows)} groups, revenue {revenue}, {fnv(out)}"

        return run

    campaigns = [str(uuid.UUID(x)) for x in c.get("campaigns", [])]

    def campaign_roi():
        """The campaign report's sums for every campaign of the year: one grouped query per table, as a column store
        is best used, assembled per campaign in the manifest's order (as `Env::campaign_roi` prints them)."""
        t0 = time.perf_counter()
        sales = (
            "FROM documents WHERE campaign IS NOT NULL AND kind IN (0, 1) AND reporting = 'EUR' "
            "AND issue_day BETWEEN $f AND $t"
        )
        days = {"f": y_from, "t": y_to}
        micros = {"f": us_from, "t": us_to}
        q = {
            "money": (
                f"SELECT campaign, CAST(SUM(revenue_units) AS BIGINT), CAST(SUM(cost_units) AS BIGINT) {sales} "
                "GROUP BY campaign",
                days,
            ),
            "invoiced": (
                f"SELECT campaign, COUNT(*) FROM (SELECT campaign, partner {sales} GROUP BY campaign, partner "
                "HAVING SUM(revenue_units) > 0) GROUP BY campaign",
                days,
            ),
            "targets": (
                "SELECT campaign, COUNT(*), CAST(SUM(CASE WHEN reached_at >= $f AND reached_at < $t THEN 1 ELSE 0 END) "
                "AS BIGINT) FROM targets GROUP BY campaign",
                micros,
            ),
            "leads": (
                "SELECT campaign, COUNT(*), CAST(SUM(CASE WHEN status = 1 THEN 1 ELSE 0 END) AS BIGINT) FROM leads "
                "WHERE created_at >= $f AND created_at < $t GROUP BY campaign",
                micros,
            ),
            "costs": (
                "SELECT campaign, CAST(SUM(amount_units) AS BIGINT) FROM costs WHERE day BETWEEN $f AND $t "
                "GROUP BY campaign",
                days,
            ),
        }
        fetched = {k: fetch(con.execute(sql, params)) for k, (sql, params) in q.items()}
        secs = time.perf_counter() - t0
        got = {k: {str(r[0]): r[1:] for r in rows_of(v)} for k, v in fetched.items()}
        out = []
        for cid in campaigns:
            tg = got["targets"].get(cid, (0, 0))
            ld = got["leads"].get(cid, (0, 0))
            mo = got["money"].get(cid, (0, 0))
            inv = got["invoiced"].get(cid, (0,))
            co = got["costs"].get(cid, (0,))
            vals = [tg[0], tg[1], ld[0], ld[1], inv[0], mo[0], mo[1], co[0]]
            out.append("[" + ", ".join(str(int(x)) for x in vals) + "]")
        return secs, len(campaigns), "[" + ", ".join(out) + "]"

    result = {"load_secs": load_secs, "columnar_fetch": COLUMNAR, "threads": None}
    result["threads"] = con.execute("SELECT current_setting('threads')").fetchone()[0]
    workloads = [
        ("segment", segment),
        ("profit_customer", profit("partner")),
        ("profit_group", profit("grp")),
        ("profit_customer_mid", profit("partner", m_from, m_to, lines_in_mid)),
        ("profit_group_mid", profit("grp", m_from, m_to, lines_in_mid)),
        ("campaign_roi", campaign_roi),
    ]
    for key, threads in [("workloads", None), ("workloads_1t", 1)]:
        if threads is not None:
            con.execute(f"SET threads TO {threads}")
        result[key] = {}
        for name, fn in workloads:
            fn()  # warm-up, untimed
            secs, rows, digest = [], 0, ""
            for _ in range(reps):
                took, rows, digest = fn()  # the query and fetching its rows; the digest is not timed
                secs.append(took)
            result[key][name] = {"secs": secs, "rows": rows, "digest": digest}
    result["peak_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(result))


if __name__ == "__main__":
    main()
