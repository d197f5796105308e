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
            "SELECT partner, kind, issue_day, reporting, revenue_units, cost_units, grp FROM documents WHERE tenant = ?",
            lambda r: (u(r[0]), r[1], r[2], r[3], r[4], r[5], r[6] if r[6] is not None else ""),
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
        con.execute(
            f"CREATE TABLE partners AS SELECT * FROM read_csv('{p['partners']}', header = false, "
            "columns = {'id': 'UUID', 'name': 'VARCHAR'})"
        )
        con.execute(
            f"CREATE TABLE documents AS SELECT * FROM read_csv('{p['documents']}', header = false, "
            "columns = {'partner': 'UUID', 'kind': 'INTEGER', 'issue_day': 'INTEGER', 'reporting': 'VARCHAR', "
            "'revenue_units': 'BIGINT', 'cost_units': 'BIGINT', 'grp': 'VARCHAR'})"
        )
        con.execute(
            f"CREATE TABLE lines AS SELECT * FROM read_csv('{p['lines']}', header = false, "
            "columns = {'partner': 'UUID', 'category': 'UUID', 'issue_day': 'INTEGER', "
            "'quantity_units': 'BIGINT', 'kind': 'INTEGER'})"
        )
    src.close()
    load_secs = time.perf_counter() - started

    lines_in_year = con.execute(
        "SELECT count(*) FROM lines WHERE issue_day BETWEEN ? AND ? AND kind IN (0, 1)", [y_from, y_to]
    ).fetchone()[0]

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

    def profit(col):
        def run():
            t0 = time.perf_counter()
            rows = con.execute(
                # Sums cast to BIGINT: a HUGEINT comes out of fetchnumpy as a float.
                f"""SELECT {col}, CAST(SUM(revenue_units) AS BIGINT), CAST(SUM(cost_units) AS BIGINT),
                           CAST(SUM(CASE WHEN kind = 0 THEN 1 ELSE 0 END) AS BIGINT)
                    FROM documents WHERE reporting = 'EUR' AND issue_day BETWEEN ? AND ? AND kind IN (0, 1)
                    GROUP BY {col}""",
                [y_from, y_to],
            )
            rows = fetch(rows)
            secs = time.perf_counter() - t0
            rows = rows_of(rows)
            out = sorted(f"{k if k not in (None, '') else '-'} {r} {c} {n}" for k, r, c, n in rows)
            revenue = sum(int(r[1]) for r in rows)
            return secs, lines_in_year, f"{len(rows)} groups, revenue {revenue}, {fnv(out)}"

        return run

    result = {"load_secs": load_secs, "columnar_fetch": COLUMNAR, "threads": None}
    result["threads"] = con.execute("SELECT current_setting('threads')").fetchone()[0]
    workloads = [("segment", segment), ("profit_customer", profit("partner")), ("profit_group", profit("grp"))]
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
