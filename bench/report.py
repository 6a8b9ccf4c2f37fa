"""bench/report.py: turns a run's results.jsonl into the summary table.

Owns: what the benchmark reports and what counts as a broken run. Prints
Markdown: the write path per backend and connection count (Leeway spends/s,
p50/p99, the raw rate measured in the same run, the ratio), then the hot
problem, history flatness and export cases, each beside the issue's target.

Exits 1, after printing, when the run cannot be trusted: any response other
than 201 (or a socket error) in any wrk run, warm-up and history building
included; a zero rate; a failed raw transaction; an export that did not
answer 200 with rows. Missing a target is a finding, not a failure.

Usage: report.py RESULTS_JSONL
"""

import json
import sys

MIB = 1024


def main():
    rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    by_label = {row["label"]: row for row in rows}
    problems = []

    for row in rows:
        label = row["label"]
        if "not_created" in row:  # a wrk run
            sockets = sum(row["socket_errors"].values())
            if row["not_created"] or sockets or row["created"] == 0:
                problems.append(f"{label}: {row['created']} created, statuses {row['statuses']}, "
                                f"socket errors {row['socket_errors']}, first error: {row['first_error']}")
        elif "/raw/" in label:
            if row["rate"] <= 0 or row.get("failed", 0):
                problems.append(f"{label}: rate {row['rate']}, failed {row.get('failed', 0)}")
        elif "/export/" in label:
            if row["status"] != 200 or row["rows"] <= 0 or row["rows_per_s"] <= 0:
                problems.append(f"{label}: status {row['status']}, {row['rows']} rows")

    run = by_label.get("run", {})
    print(f"# Leeway benchmark ({'smoke' if run.get('smoke') else 'full run'}, commit "
          f"{run.get('commit', '?')}, {run.get('secs', '?')} s per case, {run.get('seconds', '?')} s in all)\n")

    print("## Write path: POST /v1/problems/{id}/spends, spread over all problems\n")
    print("| backend | connections | Leeway spends/s | p50 ms | p99 ms | raw commits/s | Leeway / raw | target |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for backend in ("sqlite", "postgres"):
        spreads = sorted((row for row in rows if row["label"].startswith(f"{backend}/spread/")),
                         key=lambda row: int(row["label"].rsplit("/", 1)[1]))
        for row in spreads:
            connections = int(row["label"].rsplit("/", 1)[1])
            # Measured right before this row; for SQLite always one writer.
            raw = by_label.get(f"{backend}/raw/{connections}")
            raw_rate = raw["rate"] if raw else None
            ratio = f"{row['rate'] / raw_rate:.2f}×" if raw_rate else "n/a"
            targets = []
            if connections == 4:
                targets.append("p99 ≤ 10 ms")
            if connections == 32:
                targets.append("≥ 0.8× raw (group commit off), ≥ 3× (on)" if backend == "sqlite" else "≥ 0.8× pgbench")
            print(f"| {backend} | {connections} | {row['rate']:.0f} | {row['p50_ms']:.1f} | {row['p99_ms']:.1f} | "
                  f"{raw_rate if raw_rate is not None else 'n/a'} | {ratio} | {'; '.join(targets)} |")
    print()
    print("Raw, measured right before each row: SQLite = bench/raw_sqlite.py, one writer, WAL, "
          "synchronous=FULL; PostgreSQL = pgbench with bench/raw_pg_spend.sql at the same client count.\n")

    print("## Other cases\n")
    print("| backend | case | figure | compared with | ratio | target |")
    print("| --- | --- | --- | --- | ---: | --- |")
    for backend in ("sqlite", "postgres"):
        hot = next((row for row in rows if row["label"].startswith(f"{backend}/hot/")), None)
        if hot:
            connections = hot["label"].rsplit("/", 1)[1]
            spread = by_label.get(f"{backend}/spread/{connections}")
            ratio = f"{hot['rate'] / spread['rate']:.2f}×" if spread and spread["rate"] else "n/a"
            spread_rate = f"{spread['rate']:.0f}" if spread else "n/a"
            print(f"| {backend} | one hot problem, {connections} conn | {hot['rate']:.0f} spends/s "
                  f"(p99 {hot['p99_ms']:.1f} ms) | spread {spread_rate} spends/s "
                  f"| {ratio} | ≥ 0.5× |")
        fresh = next((row for row in rows if row["label"].startswith(f"{backend}/history-fresh/")), None)
        after = next((row for row in rows if row["label"].startswith(f"{backend}/history-after/")), None)
        control = next((row for row in rows if row["label"].startswith(f"{backend}/history-control/")), None)
        fill = by_label.get(f"{backend}/history-fill")
        if fresh and after:
            connections = fresh["label"].rsplit("/", 1)[1]
            prior = fill["prior_spends"] if fill else "?"
            built = f", built in {fill['seconds']} s" if fill else ""
            # Fresh = the history problem before its history, and a fresh
            # control problem measured right after it (when there is one):
            # their mean cancels some of a shared machine's drift.
            fresh_rates = [fresh["rate"]] + ([control["rate"]] if control else [])
            fresh_mean = sum(fresh_rates) / len(fresh_rates)
            fresh_text = f"fresh {fresh['rate']:.0f} spends/s (p99 {fresh['p99_ms']:.1f} ms)"
            if control:
                fresh_text += (f"; control problem right after {control['rate']:.0f} spends/s "
                               f"(p99 {control['p99_ms']:.1f} ms); mean {fresh_mean:.0f}")
            print(f"| {backend} | one problem after {prior} prior spends{built}, {connections} conn | "
                  f"{after['rate']:.0f} spends/s (p99 {after['p99_ms']:.1f} ms) | {fresh_text} "
                  f"| {after['rate'] / fresh_mean:.2f}× | within ±10% after 100k |")
        for fmt in ("csv", "jsonl"):
            export = by_label.get(f"{backend}/export/{fmt}")
            if export:
                print(f"| {backend} | export spends.{fmt}, {export['rows']} rows, {export['bytes'] / MIB / MIB:.1f} MiB | "
                      f"{export['rows_per_s']:.0f} rows/s | RSS {export['rss_before_kib'] / MIB:.1f} MiB before, "
                      f"peak {export['rss_peak_kib'] / MIB:.1f} MiB | +{export['rss_growth_kib'] / MIB:.1f} MiB | "
                      f"≥ 250k rows/s; ≤ 16 MiB growth over 1M rows |")
    print()

    total_created = sum(row.get("created", 0) for row in rows)
    print(f"Requests: {total_created} spends created, all answered 201." if not problems
          else "## The run is NOT valid\n")
    for problem in problems:
        print(f"- {problem}")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
