"""Result files -> one row per (model, task, shots, selection), beside the published numbers; CSV, markdown, plot.

The published numbers come from ``flamingo_eval.published`` (``published()``, re-exported here): the first
source's figure in ``published``/``published_std``/``published_source``, the other sources' in ``published_other``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

from flamingo_eval.published import others_text, published
from flamingo_eval.results import find_results, load_result

KEY = ("model", "task", "shots", "selection")  # a control run's selection is its variant: random+demo-images-none
BASELINES = ["majority", "last", "copy_rate", "copy_last_rate"]  # flamingo_eval.baselines, beside the score
COLUMNS = ["model", "task", "shots", "selection", "metric", "mean", "std", "trials", "n", *BASELINES, "published",
           "published_std", "flamingo_9b", "published_source", "published_other", "file"]
MARKDOWN_COLUMNS = ["model", "task", "shots", "selection", "metric", "mean", "std", "trials", "n", *BASELINES,
                    "published", "flamingo_9b", "published_other"]


def model_label(result: dict) -> str:
    """The preset name, or for a spec file the name its run folder has (``runner.safe_name``)."""
    from flamingo_eval.runner import safe_name

    return safe_name(result["model"]["name"])


def result_row(result: dict, path: Path) -> dict:
    return {"model": model_label(result), "task": result["task"]["name"], "shots": int(result["shots"]),
            "selection": result["selection"]["selection"], "metric": result["task"]["metric"],
            "mean": round(result["mean"], 4), "std": round(result["std"], 4), "trials": len(result["trials"]),
            "n": result["n"], **baseline_columns(result), "file": str(path), "_created": result.get("created", "")}


def baseline_columns(result: dict) -> dict:
    """The result's model-free baselines and copy rates (blank for results written before them)."""
    found = result.get("baselines") or {}
    return {k: round(found[k], 4) if k in found else "" for k in BASELINES}


def _order(row: dict) -> tuple:
    return (row["task"], row["model"], row["selection"], row["shots"])


def collect(paths: Iterable[str | Path]) -> list[dict]:
    """The newest result per key; older duplicates (re-runs) are dropped."""
    best: dict[tuple, dict] = {}
    for path in find_results(paths):
        row = result_row(load_result(path), path)
        key = tuple(row[k] for k in KEY)
        if key not in best or row["_created"] >= best[key]["_created"]:
            best[key] = row
    return sorted(best.values(), key=_order)


def with_published(rows: list[dict], table: dict[tuple, dict]) -> list[dict]:
    """Each row beside its published figure (``published()``'s first source) and, in ``published_other``, the
    figures other sources give for the same key, so a disagreement between sources stays visible."""
    out = []
    for row in rows:
        ref = table.get((row["model"], row["task"], row["shots"], row["selection"]), {})
        fl = table.get(("flamingo-9b", row["task"], row["shots"], "random"), {})
        out.append({**row, "published": ref.get("score", ""), "published_std": ref.get("std", ""),
                    "flamingo_9b": fl.get("score", ""), "published_source": ref.get("source", ""),
                    "published_other": others_text(ref)})
    return out


def published_only(rows: list[dict], table: dict[tuple, dict]) -> list[dict]:
    """Rows for the published figures nobody measured here, on the tasks the measured rows cover: the models
    only known from papers (flamingo-9b, mm1-7b) and the settings not run yet, to read beside ours."""
    metrics = {r["task"]: r["metric"] for r in rows}
    measured = {tuple(r[k] for k in KEY) for r in rows}
    extra = [{"model": m, "task": t, "shots": s, "selection": sel, "metric": metrics[t], "mean": "", "std": "",
              "trials": "", "n": "", "file": ""}
             for (m, t, s, sel) in table if t in metrics and (m, t, s, sel) not in measured]
    return with_published(extra, table)


def write_csv(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def to_markdown(rows: list[dict]) -> str:
    cols = MARKDOWN_COLUMNS
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(str(r.get(c, "")) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    """Score against shots, one panel per task, one line per measured (model, selection); published-only rows
    have no score of ours and are left to the table."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rows if r["mean"] != ""]
    tasks = sorted({r["task"] for r in rows})
    ncols = min(4, max(1, len(tasks)))
    nrows = (len(tasks) + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(4 * ncols, 3.2 * nrows), squeeze=False)
    for ax, task in zip(axes.flat, tasks, strict=False):
        series: dict[str, list[dict]] = {}
        for r in rows:
            if r["task"] == task:
                series.setdefault(f"{r['model']} ({r['selection']})", []).append(r)
        for label, pts in sorted(series.items()):
            pts.sort(key=lambda r: r["shots"])
            ax.errorbar([p["shots"] for p in pts], [p["mean"] for p in pts], yerr=[p["std"] for p in pts],
                        marker="o", capsize=3, label=label)
        ax.set_title(task)
        ax.set_xlabel("shots")
        ax.set_ylabel(next(r["metric"] for r in rows if r["task"] == task))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(tasks):]:
        ax.axis("off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def leaderboard(paths: list[str], out: Path | None, markdown: Path | None, plot_path: Path | None,
                include_published: bool = False) -> list[dict]:
    """Measured rows beside the published numbers; with ``include_published``, also the published figures on the
    same tasks that have no measured row."""
    from flamingo_eval.errors import UserError

    table = published()
    rows = with_published(collect(paths or ["results/runs"]), table)
    if not rows:
        raise UserError(f"no result files under {', '.join(paths or ['results/runs'])}")
    if include_published:
        rows = sorted(rows + published_only(rows, table), key=_order)
    if out:
        write_csv(rows, out)
    if markdown:
        markdown.write_text(to_markdown(rows))
    if plot_path:
        plot(rows, plot_path)
    return rows
