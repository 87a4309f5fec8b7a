"""The table ``durably bench`` prints: each figure next to the storage floor of the same run."""

from __future__ import annotations

import textwrap
from typing import Any

Row = tuple[str, str, str, str]
HEADER: Row = ("measurement", "durably", "floor, same run", "ratio")


def num(x: float, unit: str = "") -> str:
    """``x`` with a precision that suits its size, then its unit."""
    if x >= 100:
        text = f"{x:,.0f}"
    elif x >= 10:
        text = f"{x:,.1f}"
    else:
        text = f"{x:,.2f}"
    return f"{text} {unit}".rstrip()


def table(rows: list[Row]) -> list[str]:
    """Left-aligned columns: the header, a rule, then the rows."""
    widths = [max(len(r[i]) for r in [HEADER, *rows]) for i in range(4)]

    def line(cells: Row) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    rule: Row = ("-" * widths[0], "-" * widths[1], "-" * widths[2], "-" * widths[3])
    return [line(HEADER), line(rule), *(line(r) for r in rows)]


def _rows(f: dict[str, dict[str, float]]) -> list[Row]:
    commit, batch = f["floor_commit"], f["floor_batch"]
    commit_ms = num(commit["commit_ms"], "ms/commit")
    rows: list[Row] = [
        ("floor: 1-row commit", commit_ms, "(the floor)", ""),
        (
            f"floor: {batch['rows_per_batch']:.0f} rows per commit",
            num(batch["rows_per_s"], "rows/s"),
            "(the floor)",
            "",
        ),
    ]
    for key in ("throughput_1", "throughput_k"):
        if key in f:
            t = f[key]
            who = "1 process (embedded)" if key.endswith("1") else f"{t['processes']:.0f} workers"
            rows.append(
                (
                    f"throughput, {who}, {t['workflows']:,.0f} wf x 3 steps",
                    f"{num(t['workflows_per_s'], 'wf/s')}, {num(t['steps_per_s'], 'steps/s')}",
                    num(commit["commits_per_s"], "commits/s"),
                    f"{t['steps_ratio']:.2f}x",
                )
            )
    if "sequential" in f:
        s = f["sequential"]
        rows.append(
            (
                f"sequential, 1 wf x {s['steps']:,.0f} steps, per step",
                f"{num(s['step_ms'], 'ms')} mean, {num(s['p99_step_ms'], 'ms')} p99",
                f"{num(s['floor_ms'], 'ms')}/commit around it" if "floor_ms" in s else commit_ms,
                f"{s['ratio']:.2f}x",
            )
        )
    if "latency" in f:
        lat = f["latency"]
        rows.append(
            (
                "start to result, 1-step wf",
                f"{num(lat['p50_ms'], 'ms')} p50, {num(lat['p99_ms'], 'ms')} p99",
                commit_ms,
                f"{lat['ratio']:.1f}x",
            )
        )
    if "recovery" in f:
        r = f["recovery"]
        rows.append(
            (
                "recovery after SIGKILL, step restarts",
                f"{num(r['from_spawn_s'], 's')} from spawn, "
                f"{num(r['from_registration_s'], 's')} from registration",
                commit_ms,
                "",
            )
        )
    if "recovery_supervised" in f:
        r = f["recovery_supervised"]
        rows.append(
            (
                "recovery, supervised (-p 2): standby takes over",
                f"{num(r['from_kill_s'], 's')} from the kill",
                commit_ms,
                "",
            )
        )
    if "replay" in f:
        p = f["replay"]
        rows.append(
            (
                f"replay of a {p['entries']:,.0f}-entry journal",
                f"{num(p['from_claim_s'], 's')} from claim, {num(p['from_spawn_s'], 's')} "
                "from spawn",
                f"{num(p['write_floor_s'] * 1000, 'ms')} to write it",
                f"{p['ratio']:.1f}x",
            )
        )
    if "replay_check" in f:
        g = f["replay_check"]
        rows.append(
            (
                f"replay-check, {g['journals']:,.0f} wf x 20 entries",
                f"{num(g['journals_per_s'], 'journals/s')}, {num(g['entries_per_s'], 'entries/s')}",
                "",
                "",
            )
        )
    if "memory" in f:
        m = f["memory"]
        rows.append(
            (
                f"memory, {m['workflows']:,.0f} sleeping wf",
                f"{num(m['rss_mb'], 'MB')} worker RSS ({num(m['rss_idle_mb'], 'MB')} idle)",
                "",
                "",
            )
        )
    return rows


NOTES = {
    "floor_commit": "floors: rows shaped like a journal entry into a fresh table on the same "
    "database with durably's durability settings; 1 row per commit gives ms/commit (and "
    "commits/s), batches give rows/s.",
    "throughput_1": "throughput: N workflows of 3 no-op async steps started at once "
    "(start_async, gathered), from the first start to the last result (result_async, "
    "gathered); ratio = steps/s over "
    "single-row commits/s (above 1: commits are shared). 'workers': the bench process is a "
    "client and K `durably worker` processes run the workflows.",
    "sequential": "sequential: gaps between consecutive step commits in one workflow's "
    "journal; ratio = mean over one single-row commit, measured (as the floor is) just before "
    "and just after the workflow, on fresh databases: a disk's commit time drifts in a run.",
    "latency": "start to result: app.start then result(), one at a time, embedded worker; "
    "ratio = p50 over one single-row commit.",
    "recovery": "recovery: a worker is SIGKILLed half-way through a slow step; times run from "
    "the new worker process's spawn (and its registration) until a step starts again "
    "(the interrupted one). Supervised: `durably worker -p 2`; the child running the step is "
    "SIGKILLed and the supervisor's standby process (app imported, database open) replaces it; "
    "from the kill until the step starts again.",
    "replay": "replay: a fresh worker resumes a workflow parked on an event after J no-op "
    "steps; times run until the first step after the wait runs; the claim is polled every "
    "~2 ms. Floor: writing as many rows at the batch floor; ratio = from claim over it.",
    "replay_check": "replay-check: N workflows parked on an event after 19 no-op steps; "
    "`durably replay-check` reads and replays every one against unchanged code (no step runs, "
    "nothing is written); journals/s over the whole check, reads included.",
    "memory": "memory: VmRSS of a worker process with every workflow parked on a 1-day "
    "sleep, and before any was started.",
}


def render(results: dict[str, Any]) -> str:
    """The whole report: a header, the table and short notes."""
    m = results["machine"]
    figures: dict[str, dict[str, float]] = results["figures"]
    where = (
        f"SQLite {m['sqlite']} in {m['db_dir']} ({m['filesystem']}), {m['durability']}"
        if m["backend"] == "sqlite"
        else f"PostgreSQL {m['postgres']} at {m['server']} ({m['durability']}), "
        f"psycopg {m['psycopg']}"
    )
    out = [
        f"durably {m['durably']} benchmark, {m['date']}",
        f"  Python {m['python']}, {m['cpus']} CPUs, {where}",
        f"  CPU check (a 5M-step Python loop; lower is faster): "
        f"{m.get('cpu_check_before_s', 0):.2f} s before, "
        f"{m.get('cpu_check_after_s', 0):.2f} s after",
        f"  Worker processes start from durably's bytecode: {m.get('bytecode', 'unknown')}",
        *([f"  Payload codecs: {m['codecs']}"] if m.get("codecs") else []),
        "",
        *table(_rows(figures)),
        "",
    ]
    for key, note in NOTES.items():
        if key in figures:
            out.append(textwrap.fill(note, 98, initial_indent="  ", subsequent_indent="    "))
    out.append("  Timings on a shared machine are noisy; compare ratios, and runs with --json.")
    for key, error in results.get("errors", {}).items():
        out.append(textwrap.shorten(f"  FAILED {key}: {error}", 400))
    return "\n".join(out)
