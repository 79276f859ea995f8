"""Pareto plot of a sweep: MAE vs parameters, SBP and DBP panels, seed marked, front highlighted."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_pareto(result: dict[str, Any], path: str | Path) -> Path:
  """Writes the PNG and returns its path. `result` is `run_sweep`'s return value."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  cands = result["candidates"]
  fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
  for ax, target in zip(axes, ("sbp", "dbp")):
    xs = [c["params"] for c in cands]
    ys = [c[f"mae_{target}"] for c in cands]
    sc = ax.scatter(xs, ys, c=[c["lambda"] for c in cands], cmap="viridis", norm=matplotlib.colors.LogNorm(),
                    label="candidates", zorder=2)
    front = sorted((c for c in cands if c["index"] in result["pareto"][target]), key=lambda c: c["params"])
    ax.plot([c["params"] for c in front], [c[f"mae_{target}"] for c in front], "r-o", mfc="none", ms=10,
            label="Pareto front", zorder=3)
    if result.get("seed"):
      ax.scatter([result["seed"]["params"]], [result["seed"][f"mae_{target}"]], marker="*", s=250, c="k",
                 label="seed", zorder=4)
    if result.get("naive"):
      ax.axhline(result["naive"][target], color="gray", ls="--", label="naive (train mean)")
  return save_mae_panels(fig, axes, sc, result["dataset"], "parameters", path)


def save_mae_panels(fig, axes, colored, dataset: str, xlabel: str, path: str | Path, *,
                    minor_labels: bool = True) -> Path:
  """Finishes a (SBP, DBP) pair of MAE panels (log x, labels, grid, λ colour bar, legend) and writes the PNG."""
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  import matplotlib.ticker  # pylint: disable=g-import-not-at-top

  for ax, target in zip(axes, ("sbp", "dbp")):
    ax.set_xscale("log")
    if not minor_labels:
      ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"MAE {target.upper()} [mmHg]")
    ax.set_title(f"{dataset}: {target.upper()}")
    ax.grid(alpha=0.3)
  fig.colorbar(colored, ax=axes, label="λ")
  axes[0].legend(fontsize=8)
  path = Path(path)
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return path
