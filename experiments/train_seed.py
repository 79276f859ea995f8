"""Trains a seed network under the benchmark's full protocol and writes a results JSON.

  python experiments/train_seed.py --dataset ppgbp --data-dir ../shared/data --model resnet1d --seeds 0 1 2

Writes <out>/config.json, <out>/results.json (per-seed pooled and per-rotation metrics, parameter count,
timings, and the mean/std over seeds) and resumable per-rotation files under <out>/seed_<s>/.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without installing.

from jaxbp import models, runtime  # noqa: E402
from jaxbp.data.source import LOADERS, load_folds  # noqa: E402
from jaxbp.train import FitConfig  # noqa: E402
from jaxbp.train.crossval import run_crossval  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--dataset", default=None, help="ppgbp | bcg | sensors | uci | mimic_sample (default: synthetic)")
  p.add_argument("--data-dir", default=None, help="folder holding <dataset>_dataset/ (default: synthetic data)")
  p.add_argument("--model", default="resnet1d", choices=sorted(models.MODELS))
  p.add_argument("--seeds", type=int, nargs="+", default=[0])
  p.add_argument("--rotations", type=int, nargs="*", default=None, help="subset of fold rotations (default: all)")
  p.add_argument("--max-epochs", type=int, default=100)
  p.add_argument("--patience", type=int, default=10)
  p.add_argument("--batch-size", type=int, default=None, help="default: the benchmark's for model/dataset")
  p.add_argument("--dropout", type=float, default=None, help="override the seed's dropout rate (ResNet1d: 0.5)")
  p.add_argument("--loader", default="mat", choices=LOADERS)
  p.add_argument("--drop-nan", action="store_true", help="drop NaN/inf windows (with a warning) instead of failing")
  p.add_argument("--out", default=None, help="output dir (default runs/train_seed/<model>_<dataset>)")
  p.add_argument("--no-progress", action="store_true")
  runtime.add_flags(p)
  return p.parse_args(argv)


def main(argv=None) -> dict:
  args = parse_args(argv)
  runtime.setup(args)  # persistent compilation cache
  spec, folds = load_folds(args.dataset, args.data_dir, loader=args.loader, drop_nan=args.drop_nan)
  config = models.seed_config(args.model, spec.name)
  if args.dropout is not None:
    if not hasattr(config, "dropout"):
      raise ValueError(f"--dropout: {args.model} has no dropout")
    config = dataclasses.replace(config, dropout=args.dropout)
  fit_config = FitConfig(max_epochs=args.max_epochs, patience=args.patience,
                         batch_size=args.batch_size or models.batch_size(args.model, spec.name),
                         progress=not args.no_progress)
  out = Path(args.out or f"runs/train_seed/{args.model}_{spec.name}")
  out.mkdir(parents=True, exist_ok=True)
  run_config = {"args": vars(args), "dataset": dataclasses.asdict(spec), "model": models.config_to_dict(config),
                "fit": dataclasses.asdict(fit_config), "jax": jax.__version__, "backend": jax.default_backend(),
                "host": platform.node()}
  (out / "config.json").write_text(json.dumps(run_config, indent=2))
  per_seed, t0 = {}, time.perf_counter()
  for seed in args.seeds:
    ts = time.perf_counter()
    res = run_crossval(folds, spec, config, fit_config, seed=seed, rotations=args.rotations,
                       workdir=out / f"seed_{seed}")
    res["wall_seconds"] = time.perf_counter() - ts
    per_seed[str(seed)] = res
    p = res["pooled"]
    print(f"seed {seed}: SBP MAE {p['sbp']['mae']:.2f} (naive {p['sbp']['mae_naive']:.2f}), "
          f"DBP MAE {p['dbp']['mae']:.2f} (naive {p['dbp']['mae_naive']:.2f}) mmHg, "
          f"{res['wall_seconds']:.0f} s", flush=True)
  summary = {}
  for target in ("sbp", "dbp"):
    for metric in ("mae", "me", "sd", "mase"):
      vals = [r["pooled"][target][metric] for r in per_seed.values()]
      summary[f"{target}_{metric}"] = {"mean": float(np.mean(vals)), "std": float(np.std(vals)), "values": vals}
  results = {"config": run_config, "params": next(iter(per_seed.values()))["params"],
             "naive": {t: next(iter(per_seed.values()))["pooled"][t]["mae_naive"] for t in ("sbp", "dbp")},
             "summary": summary, "per_seed": per_seed, "wall_seconds": time.perf_counter() - t0}
  (out / "results.json").write_text(json.dumps(results, indent=2))
  print(json.dumps({"out": str(out), "params": results["params"],
                    "sbp_mae": summary["sbp_mae"], "dbp_mae": summary["dbp_mae"],
                    "wall_seconds": round(results["wall_seconds"], 1)}))
  return results


if __name__ == "__main__":
  main()
