"""pareto.png: accuracy against latency of every trial, the Pareto front and the best."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mobile_nas.atomic import atomic_path
from mobile_nas.report.run import load_run
from mobile_nas.search.pareto import non_dominated


def plot_pareto(records: Sequence[dict[str, Any]], pareto: Sequence[dict[str, Any]],
                path: str | Path, *, best: dict[str, Any] | None = None,
                latency_target_ms: float | None = None, title: str | None = None) -> None:
    """Writes the plot atomically to ``path`` (PNG, matplotlib's Agg backend). The line is
    the (accuracy, latency) front of ``records``; ``pareto`` (3-D, with MACs) is not drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    feas = [r for r in records if r["feasible"]]
    infeas = [r for r in records if not r["feasible"]]
    for group, color, label in ((feas, "tab:blue", "feasible"),
                                (infeas, "tab:gray", "over target")):
        if group:
            ax.scatter([r["latency_ms"] for r in group], [100 * r["accuracy"] for r in group],
                       s=14, alpha=0.6, color=color, label=f"{label} ({len(group)})")
    idx = non_dominated([(r["accuracy"], r["latency_ms"]) for r in records], (True, False))
    front = sorted((records[i] for i in idx), key=lambda r: r["latency_ms"])
    if front:  # the 2-D (accuracy, latency) front; pareto.json also weighs MACs
        ax.step([r["latency_ms"] for r in front], [100 * r["accuracy"] for r in front],
                where="post", color="tab:red", lw=1.2, label="Pareto front")
    if latency_target_ms:
        ax.axvline(latency_target_ms, color="tab:orange", ls="--", lw=1,
                   label=f"target {latency_target_ms:g} ms")
    if best is not None:
        ax.scatter([best["latency_ms"]], [100 * best["accuracy"]], marker="*", s=160,
                   color="gold", edgecolor="black", zorder=5, label="best")
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title(title or f"{len(records)} trials")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def plot_run_pareto(run_dir: str | Path, path: str | Path | None = None) -> Path | None:
    """Draws the pareto.png of search folder ``run_dir`` (default ``RUN_DIR/pareto.png``) from
    its trials.csv and best.json, the latency target marked; None when it has no trials."""
    run = load_run(run_dir)
    if not run.trials:
        return None
    out = Path(path) if path is not None else run.path / "pareto.png"
    plot_pareto(run.trials, run.pareto, out, best=run.best_trial,
                latency_target_ms=run.targets.get("latency_ms"))
    return out
