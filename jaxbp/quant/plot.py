"""Error-vs-BOPs plot of a Bayesian-Bits λ sweep (SBP and DBP panels, λ as colour, references marked)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jaxbp.nas.plot import save_mae_panels


def plot_bits(result: dict[str, Any], path: str | Path) -> Path:
  """Writes the PNG and returns its path. `result` is the results dict of experiments/bayesian_bits.py."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  cands = result["candidates"]
  fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
  sc = None
  for ax, target in zip(axes, ("sbp", "dbp")):
    lams = [max(c["lambda"], 1e-6) for c in cands]
    sc = ax.scatter([c["bops"] for c in cands], [c[f"mae_{target}"] for c in cands], c=lams, cmap="viridis",
                    norm=matplotlib.colors.LogNorm(), zorder=3, label="Bayesian Bits (λ)")
    for name in ("int8", "float"):
      ref = result.get("reference", {}).get(name)
      if ref:
        ax.axhline(ref[f"mae_{target}"], color="k" if name == "int8" else "gray", ls=":" if name == "int8" else "--",
                   label=f"{name} ({ref['bops']:.3g} BOPs)" if name == "int8" else name)
    if result.get("naive"):
      ax.axhline(result["naive"][target], color="r", ls="--", alpha=0.5, label="naive (train mean)")
  return save_mae_panels(fig, axes, sc, result["dataset"], "BOPs per inference (read-off configuration)", path,
                         minor_labels=False)
