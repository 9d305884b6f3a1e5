"""Report plots (matplotlib, Agg): reward curve, architecture by stage, latency breakdown."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mobile_nas.atomic import atomic_path


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    _plt().close(fig)


def plot_reward_curve(trials: Sequence[dict[str, Any]], path: str | Path) -> None:
    """Reward of every trial (dots, feasible in blue) and the best-so-far line, by trial."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=120)
    xs = [t["number"] for t in trials]
    rewards = [t["reward"] for t in trials]
    colors = ["tab:blue" if t["feasible"] else "tab:gray" for t in trials]
    ax.scatter(xs, rewards, s=12, c=colors, alpha=0.7, label="trial reward (gray: over target)")
    best, running = -math.inf, []
    for r in rewards:
        best = max(best, r)
        running.append(best)
    ax.step(xs, running, where="post", color="tab:red", lw=1.4, label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel("reward")
    ax.set_title(f"reward over {len(trials)} trials")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    _save(fig, path)


def stage_rows(arch) -> list[dict[str, Any]]:
    """The architecture as rows (stem, stages, head) with what each chose and its size."""
    space = arch.search_space
    keys = space.layers(arch)
    if not space.has_stages:
        return [{"name": f"layer {i}", "what": k.op, "layers": 1, "cout": k.cout,
                 "hw": f"{k.h}x{k.w}", "keys": [k]} for i, k in enumerate(keys)]
    rows = [{"name": "stem", "what": f"conv k{keys[0].kernel} s{keys[0].stride} {keys[0].act}",
             "layers": 1, "cout": keys[0].cout, "hw": f"{keys[0].h}x{keys[0].w}",
             "keys": [keys[0]]}]
    i = 1
    for s, c in enumerate(space.stage_configs(arch)):
        ks = keys[i:i + c.layers]
        i += c.layers
        se = f" se{c.se:g}" if c.se else ""
        rows.append({"name": f"stage {s + 1}", "layers": c.layers, "cout": c.channels,
                     "what": f"{c.op} k{c.kernel} x{c.layers} {c.act}{se} s{ks[0].stride}",
                     "hw": f"{ks[0].h}x{ks[0].w}", "keys": ks})
    for k in keys[i:]:
        rows.append({"name": k.op, "what": f"{k.op} {k.cin}->{k.cout} {k.act or ''}".strip(),
                     "layers": 1, "cout": k.cout, "hw": f"{k.h}x{k.w}", "keys": [k]})
    return rows


def plot_architecture(arch, path: str | Path) -> None:
    """The chosen architecture stage by stage: one box per stage, height ~ output width."""
    plt = _plt()
    from matplotlib.patches import FancyBboxPatch

    rows = stage_rows(arch)
    n = len(rows)
    fig, ax = plt.subplots(figsize=(max(6.4, 1.45 * n), 3.4), dpi=120)
    widest = max(r["cout"] for r in rows) or 1
    cmap = plt.get_cmap("tab10")
    for i, r in enumerate(rows):
        h = 0.35 + 0.55 * math.sqrt(r["cout"] / widest)
        ax.add_patch(FancyBboxPatch((i + 0.06, 0.5 - h / 2), 0.88, h,
                                    boxstyle="round,pad=0.02", fc=cmap(i % 10), alpha=0.35,
                                    ec="black", lw=0.8))
        ax.text(i + 0.5, 0.5 + h / 2 + 0.06, r["name"], ha="center", fontsize=8,
                weight="bold")
        label = r["what"].replace(" ", "\n", 2) if len(r["what"]) > 14 else r["what"]
        ax.text(i + 0.5, 0.5, f"{label}\nc{r['cout']} @ {r['hw']}", ha="center",
                va="center", fontsize=6.5)
        if i < n - 1:
            ax.annotate("", xy=(i + 1.06, 0.5), xytext=(i + 0.94, 0.5),
                        arrowprops={"arrowstyle": "->", "lw": 0.8})
    ax.set_xlim(0, n)
    ax.set_ylim(-0.15, 1.2)
    ax.axis("off")
    ax.set_title(f"{arch.space}: {arch.to_string()}", fontsize=7)
    fig.tight_layout()
    _save(fig, path)


def plot_latency_breakdown(arch, per_layer: Sequence[tuple[Any, float]], path: str | Path, *,
                           total_ms: float | None = None, source: str = "") -> None:
    """Horizontal bars: each layer's table latency (ms), coloured by stage."""
    plt = _plt()
    rows = stage_rows(arch)
    stage_of: dict[int, tuple[int, str]] = {}
    for s, r in enumerate(rows):
        for j, k in enumerate(r["keys"]):
            stage_of.setdefault(id(k), (s, f"{r['name']}" + (f".{j + 1}" if len(r["keys"]) > 1
                                                              else "")))
    keys = [k for r in rows for k in r["keys"]]
    ms = dict(zip((k.id for k, _ in per_layer), (v for _, v in per_layer), strict=True))
    labels, values, colors = [], [], []
    cmap = plt.get_cmap("tab10")
    for k in keys:
        s, name = stage_of[id(k)]
        op = "" if name.startswith(k.op) else f" {k.op}"
        labels.append(f"{name}{op} k{k.kernel} {k.cin}->{k.cout} @{k.h}")
        values.append(ms.get(k.id, 0.0))
        colors.append(cmap(s % 10))
    fig, ax = plt.subplots(figsize=(6.4, 0.8 + 0.22 * len(keys)), dpi=120)
    ypos = list(range(len(keys)))[::-1]
    ax.barh(ypos, values, color=colors, alpha=0.8)
    ax.set_yticks(ypos)
    ax.set_yticklabels(labels, fontsize=6.5)
    ax.set_xlabel("table latency (ms)")
    total = f"; predicted total {total_ms:.3f} ms" if total_ms is not None else ""
    ax.set_title(f"per-layer latency, sum {sum(values):.3f} ms{total}", fontsize=9)
    if source:
        ax.text(1.0, -0.9 / max(1, len(keys)), source, transform=ax.transAxes, fontsize=6,
                ha="right", va="top", color="gray")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    _save(fig, path)
