#!/usr/bin/env python3
"""Runs the ClickHouse schema and the pipeline's SQL on a modern engine (chDB, ClickHouse 26).

Local development and CI run ClickHouse 18.16 from Debian; production runs 24+. This check
applies every migration in migrations/clickhouse/ exactly as `smo1-origin migrate` does (same
statement splitting), inserts rows in the edge's JSONEachRow shape (clicked_at as unix seconds),
and checks the queries the pipeline relies on: buffered reads, exact distinct counts with
duplicate deliveries, the per-day aggregate view, and multi-day uniques.

Then it runs the analytics API's own SQL (scripts/analytics_queries.json, rendered by the Rust
functions that build it; a unit test keeps the file current) over a known fixture.
"""
import calendar
import json
import pathlib
import sys
import tempfile

from chdb import session

ROOT = pathlib.Path(__file__).resolve().parent.parent
DB = "smo1_check"


def statements(sql: str) -> list[str]:
    """Mirror of backend/src/clickhouse/migrate.rs::statements."""
    text = "\n".join(l for l in sql.splitlines() if not l.lstrip().startswith("--"))
    parts = (p.strip().rstrip(";").strip() for p in text.split(";\n"))
    return [p for p in parts if p]


def row(click_id: str, link: str, day: int, visitor: str, is_bot: int) -> dict:
    base = 1_764_000_000 - 1_764_000_000 % 86_400
    empty = dict.fromkeys(
        "user_id slug destination country region city browser browser_version os os_version "
        "referrer referrer_domain utm_source utm_medium utm_campaign utm_term utm_content "
        "bot_reason".split(),
        "",
    )
    return {
        **empty,
        "click_id": click_id,
        "clicked_at": base + day * 86_400 + 3_600,
        "link_id": link,
        "user_id": "u1",
        "visitor_id": visitor,
        "device_type": "bot" if is_bot else "desktop",
        "method": "GET",
        "is_qr": 0,
        "is_bot": is_bot,
    }


def main() -> int:
    with tempfile.TemporaryDirectory() as path:
        s = session.Session(path)
        s.query(f"CREATE DATABASE IF NOT EXISTS {DB}")
        s.query(f"USE {DB}")
        migrations = sorted((ROOT / "migrations" / "clickhouse").glob("*.sql"))
        for migration in migrations:
            for statement in statements(migration.read_text()):
                s.query(statement)
            print(f"ok  migration {migration.name}")

        rows = [
            row("c1", "L1", 0, "v1", 0),
            row("c1", "L1", 0, "v1", 0),  # duplicate delivery of c1
            row("c2", "L1", 0, "v2", 0),
            row("c3", "L1", 1, "v1", 0),  # v1 again on day 2
            row("c4", "L1", 1, "v3", 1),  # a bot
            row("c5", "L2", 0, "v9", 0),
        ]
        body = "\n".join(json.dumps(r) for r in rows)
        s.query(f"INSERT INTO link_clicks_buffer FORMAT JSONEachRow {body}")

        def scalar(sql: str) -> str:
            return s.query(sql, "TabSeparated").bytes().decode().strip()

        checks = [
            ("buffered distinct clicks", "SELECT uniqExact(click_id) FROM link_clicks_buffer", "5"),
            ("flush the buffer", "OPTIMIZE TABLE link_clicks_buffer", ""),
            ("FINAL collapses the duplicate", "SELECT count() FROM link_clicks FINAL", "5"),
            (
                "daily view, per link, exact",
                "SELECT uniqExactMerge(clicks), uniqExactIfMerge(human_clicks), "
                "uniqExactIfMerge(bot_clicks) FROM link_clicks_daily WHERE link_id = 'L1'",
                "4\t3\t1",
            ),
            (
                "uniques across days are not the sum of daily uniques",
                "SELECT uniqExactMerge(visitors), "
                "(SELECT sum(v) FROM (SELECT uniqExactMerge(visitors) AS v FROM link_clicks_daily "
                "WHERE link_id = 'L1' GROUP BY day)) FROM link_clicks_daily WHERE link_id = 'L1'",
                "3\t4",
            ),
            (
                "human visitors",
                "SELECT uniqExactIfMerge(human_visitors) FROM link_clicks_daily WHERE link_id = 'L1'",
                "2",
            ),
            (
                "unix seconds parse as UTC",
                "SELECT toString(min(clicked_at)) FROM link_clicks",
                "2025-11-24 01:00:00",
            ),
        ]
        failed = 0
        for name, sql, expected in checks:
            got = scalar(sql)
            if got == expected:
                print(f"ok  {name}")
            else:
                failed += 1
                print(f"FAIL {name}: expected {expected!r}, got {got!r}")
        passed = len(checks) - failed
        analytics_passed, analytics_failed = check_analytics(s)
        passed += analytics_passed
        failed += analytics_failed
        print(f"{passed} passed, {failed} failed")
        return 1 if failed else 0


USER = "00000000-0000-4000-8000-0000000000a1"
LINK = "00000000-0000-4000-8000-0000000000b1"


def unix(text: str) -> int:
    return calendar.timegm(__import__("time").strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


def analytics_row(click_id, at, visitor, country, is_bot=0, is_qr=0, rule_id=None):
    r = row(click_id, LINK, 0, visitor, is_bot)
    r.update(clicked_at=unix(at), user_id=USER, country=country, is_qr=is_qr)
    if rule_id is not None:  # left out when empty, as the edge and the origin send it
        r["rule_id"] = rule_id
    return r


def check_analytics(s) -> tuple[int, int]:
    """Same fixture as backend/tests/analytics.rs (link L1)."""
    rows = [
        analytics_row("c1", "2026-11-02T10:00:00Z", "v1", "DE"),
        analytics_row("c1", "2026-11-02T10:00:00Z", "v1", "DE"),
        analytics_row("c2", "2026-11-02T10:30:00Z", "v2", "US", is_qr=1, rule_id="r-ios"),
        analytics_row("c3", "2026-11-03T00:30:00Z", "w1", "DE"),
        analytics_row("c9", "2026-11-03T12:00:00Z", "w1", "DE"),
        analytics_row("c4", "2026-11-03T23:30:00Z", "w3", "US", is_bot=1),
        analytics_row("c5", "2026-11-04T05:00:00Z", "x4", "FR", is_qr=1, rule_id="r-ios"),
    ]
    body = "\n".join(json.dumps(r) for r in rows)
    s.query(f"INSERT INTO link_clicks FORMAT JSONEachRow {body}")
    queries = json.loads((ROOT / "scripts" / "analytics_queries.json").read_text())

    def tsv(sql: str) -> str:
        return s.query(sql, "TabSeparated").bytes().decode().strip()

    def series(*points):
        return "\n".join(f"{unix(at)}\t{counts}" for at, counts in points)

    expected = {
        "summary": "5\t1\t4",
        "summary_off_hour": "5\t1\t4",
        "summary_recent": "5\t1\t4",
        "series_new_york": series(
            ("2026-11-02T05:00:00Z", "3\t0\t3"),
            ("2026-11-03T05:00:00Z", "1\t1\t1"),
            ("2026-11-04T05:00:00Z", "1\t0\t1"),
        ),
        "series_kolkata": series(
            ("2026-11-01T18:30:00Z", "2\t0\t2"),
            ("2026-11-02T18:30:00Z", "2\t0\t1"),
            ("2026-11-03T18:30:00Z", "1\t1\t1"),
        ),
        "clicks_page": "c2\nc1",
        # The page's rows by their keys: c1's duplicate delivery is one row.
        "clicks_rows": "c2\nc1",
        # Every link of the database, the earlier checks' L1 and L2 too (sorted: no ORDER BY).
        "sync_totals": f"{LINK}\t5\nL1\t3\nL2\t1",
        "escaped_literal": "x\\'); DROP TABLE t; --\\\\\\n\\0\x1b",
    }
    passed = failed = 0

    def report(name, got, want):
        nonlocal passed, failed
        if got == want:
            passed += 1
            print(f"ok  analytics {name}")
        else:
            failed += 1
            print(f"FAIL analytics {name}: expected {want!r}, got {got!r}")

    for name, want in expected.items():
        got = tsv(queries[name])
        if name in ("clicks_page", "clicks_rows"):
            got = "\n".join(line.split("\t")[0] for line in got.splitlines())
        if name == "sync_totals":
            got = "\n".join(sorted(got.splitlines()))
        report(name, got, want)

    def breakdown(name, want=(("DE", 3, 0, 2), ("FR", 1, 0, 1))):
        answer = json.loads(s.query(queries[name] + " FORMAT JSON", "JSON").bytes())
        top = [
            (r["value"], int(r["m_clicks"]), int(r["m_bot_clicks"]), int(r["m_visitors"]))
            for r in answer["data"]
        ]
        report(f"{name} top-2", top, list(want))
        totals = answer["totals"]
        report(f"{name} totals", (int(totals["m_clicks"]), int(totals["m_bot_clicks"])), (5, 1))

    breakdown("breakdown_country")

    # Roll the 2nd and the 3rd up (rows received: 3 each), then read them back.
    for statement in queries["rollup_days"].split(";\n"):
        s.query(statement)
    states = sorted(tsv(queries["rollup_day_states"]).splitlines())
    report(
        "rollup_day_states",
        states,
        [
            "arrived\t2026-11-02\t3",
            "arrived\t2026-11-03\t3",
            "arrived\t2026-11-04\t1",
            "rolled\t2026-11-02\t3",
            "rolled\t2026-11-03\t3",
        ],
    )
    # hour, clicks, bot clicks, visitors, first visitors, last visitors (humans): w1 clicked at
    # 00:30 and 12:00 on the 3rd, its first and last hours.
    hours = sorted(tsv(queries["rollup_hours"]).splitlines())
    report(
        "rollup_hours",
        hours,
        [
            f"{unix('2026-11-02T10:00:00Z')}\t2\t0\t2\t2\t2",
            f"{unix('2026-11-03T00:00:00Z')}\t1\t0\t1\t1\t0",
            f"{unix('2026-11-03T12:00:00Z')}\t1\t0\t1\t0\t1",
            f"{unix('2026-11-03T23:00:00Z')}\t0\t1\t0\t0\t0",
        ],
    )
    breakdown("breakdown_country_rolled")

    def backfilled(dimension, want, marker, migration):
        """Days rolled before `dimension` existed: `migration`'s inserts add it to them."""
        name = f"breakdown_{dimension}"
        breakdown(name, want)
        s.query(
            f"ALTER TABLE link_clicks_rollup_values DELETE WHERE dimension = '{dimension}' "
            "SETTINGS mutations_sync = 1"
        )
        # Only the open day's click is left.
        report(f"{dimension} rows deleted", tsv(queries[name]).count(marker), 1)
        sql = (ROOT / "migrations" / "clickhouse" / migration).read_text()
        for statement in statements(sql):
            if statement.startswith("INSERT"):
                s.query(statement)
        breakdown(name, want)

    # c2 (the 2nd, rolled) and c5 (the 4th, open, read from link_clicks) are QR scans, and were
    # sent by rule r-ios; the rest went to the link's own destination.
    backfilled("qr", (("link", 3, 1, 2), ("qr", 2, 0, 2)), "qr", "0007_rollup_qr.sql")
    backfilled("rule", (("", 3, 1, 2), ("r-ios", 2, 0, 2)), "r-ios", "0009_click_rule.sql")
    totals = "\n".join(sorted(tsv(queries["sync_totals_rolled"]).splitlines()))
    report("sync_totals_rolled", totals, expected["sync_totals"])
    return passed, failed


if __name__ == "__main__":
    sys.exit(main())
