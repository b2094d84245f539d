"""Baseline vs current results for CI: a table, and exit 1 when a score drops or a baseline entry is missing."""

from __future__ import annotations

from flamingo_eval.leaderboard import KEY, collect


def compare(baseline: list[str], current: list[str], tolerance: float) -> tuple[list[dict], bool]:
    base = {tuple(r[k] for k in KEY): r for r in collect(baseline)}
    cur = {tuple(r[k] for k in KEY): r for r in collect(current)}
    rows, ok = [], True
    for key, b in sorted(base.items()):
        c = cur.get(key)
        if c is None:
            rows.append({"key": key, "baseline": b["mean"], "current": None, "delta": None, "status": "MISSING"})
            ok = False
            continue
        delta = c["mean"] - b["mean"]
        status = "FAIL" if delta < -tolerance else "ok"
        ok &= status == "ok"
        rows.append({"key": key, "baseline": b["mean"], "current": c["mean"], "delta": delta, "status": status})
    return rows, ok


def format_table(rows: list[dict]) -> str:
    lines = [f"{'model':<16} {'task':<14} {'shots':>5} {'selection':<9} {'baseline':>9} {'current':>9} {'delta':>8}  status"]
    for r in rows:
        model, task, shots, sel = r["key"]
        cur = "-" if r["current"] is None else f"{r['current']:.2f}"
        delta = "-" if r["delta"] is None else f"{r['delta']:+.2f}"
        lines.append(f"{model:<16} {task:<14} {shots:>5} {sel:<9} {r['baseline']:>9.2f} {cur:>9} {delta:>8}  {r['status']}")
    return "\n".join(lines)


def regress(baseline: list[str], current: list[str], tolerance: float) -> int:
    rows, ok = compare(baseline, current, tolerance)
    print(format_table(rows))
    print(f"{'OK' if ok else 'REGRESSION'}: {len(rows)} baseline entries, tolerance {tolerance}")
    return 0 if ok else 1

