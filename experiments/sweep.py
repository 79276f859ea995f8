"""λ sweep of the cost-aware SuperNet NAS: the main entry point of jaxbp.

  python experiments/sweep.py                      # synthetic data, small grid, a few minutes on 2 CPU cores
  python experiments/sweep.py --dataset ppgbp --data-dir ../shared/data --epochs 20

Writes <out>/config.json, candidates/candidate_XX.json (λ, ops per layer, params, MACs, MAE SBP/DBP),
pareto.json, pareto.png and results.json. Rerunning with the same --out resumes where it stopped.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without installing.
from jaxbp.hostdevices import expose_cpu_cores  # noqa: E402  (before jax is imported)

expose_cpu_cores()

import jax  # noqa: E402
import numpy as np  # noqa: E402

from jaxbp import models, runtime  # noqa: E402
from jaxbp.cost import COSTS  # noqa: E402
from jaxbp.data.source import LOADERS, load_folds  # noqa: E402
from jaxbp.nas.plot import plot_pareto  # noqa: E402
from jaxbp.nas.search import SearchConfig  # noqa: E402
from jaxbp.nas.choice import MODES  # noqa: E402
from jaxbp.nas.sweep import SweepConfig, run_sweep  # noqa: E402
from jaxbp.train import FitConfig  # noqa: E402
from jaxbp.train.engine import STRATEGIES, EngineConfig  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--dataset", default=None, help="ppgbp | bcg | sensors | uci | mimic_sample (default: synthetic)")
  p.add_argument("--data-dir", default=None, help="folder holding <dataset>_dataset/ (default: synthetic data)")
  p.add_argument("--model", default="resnet1d", choices=sorted(models.MODELS), help="seed network")
  p.add_argument("--lambdas", type=float, nargs="+", default=None,
                 help="explicit λ values (default: --n-lambdas log-spaced in [--lambda-min, --lambda-max])")
  p.add_argument("--n-lambdas", type=int, default=None, help="default 18 (4 on the synthetic default)")
  p.add_argument("--lambda-min", type=float, default=1e-11)
  p.add_argument("--lambda-max", type=float, default=1e-7)
  p.add_argument("--cost", default="params", choices=sorted(COSTS) + ["latency"],
                 help="architecture cost; latency: expected simulated latency (ms) on --platform")
  p.add_argument("--platform", default=None, help="with --cost latency: gap8 | xpulpv2 | xpulpnn-v1 | xpulpnn-v2")
  p.add_argument("--epochs", type=int, default=None, help="search epochs per rotation (default 20; 6 synthetic)")
  p.add_argument("--finetune-epochs", type=int, default=None, help="max fine-tune epochs (default 100)")
  p.add_argument("--recalibrate-bn", action=argparse.BooleanOptionalAction, default=None,
                 help="validate fine-tuned networks with BatchNorm statistics re-estimated with dropout off "
                      "(default: on for the synthetic default, off on the benchmark's datasets, as its protocol)")
  p.add_argument("--batch-size", type=int, default=None, help="default: the benchmark's for the seed/dataset")
  p.add_argument("--rotations", type=int, nargs="*", default=None,
                 help="fold rotations (default: all; rotation 0 only on the synthetic default)")
  p.add_argument("--mode", default="soft", choices=MODES, help="choice layer mode")
  p.add_argument("--ops", nargs="+", default=["conv", "dw", "id"], choices=["conv", "dw", "id"],
                 help="alternatives at every conv slot (identity only where shapes allow)")
  p.add_argument("--temperature", type=float, default=1.0)
  p.add_argument("--final-temperature", type=float, default=None, help="anneal T to this (default: no annealing)")
  p.add_argument("--strategy", default="auto", choices=STRATEGIES, help="how candidates are batched")
  p.add_argument("--chunk-size", type=int, default=None, help="candidates per vmapped call (memory bound)")
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--no-seed-network", action="store_true", help="do not train the seed network as reference")
  p.add_argument("--dory-deployable", action="store_true", help="search the DORY-deployable variant of the seed "
                 "(ResNet1dConfig.deployable(): no squeeze-excitation), so every candidate deploys with DORY")
  p.add_argument("--loader", default="mat", choices=LOADERS)
  p.add_argument("--out", default=None, help="output dir (default runs/sweep/<model>_<dataset>)")
  p.add_argument("--no-progress", action="store_true")
  runtime.add_flags(p, distributed=True)
  return p.parse_args(argv)


def main(argv=None) -> dict | None:
  args = parse_args(argv)
  try:
    return run(args)
  except (ValueError, OSError, RuntimeError) as e:  # typed library errors -> one line, non-zero exit
    print(f"error: {e}", file=sys.stderr)
    raise SystemExit(2) from None


def run(args: argparse.Namespace) -> dict | None:
  t0 = time.perf_counter()
  proc = runtime.setup(args)
  spec, folds = load_folds(args.dataset, args.data_dir, loader=args.loader)
  small = spec.name == "synthetic"
  seed_config = models.seed_config(args.model, spec.name)
  if args.dory_deployable:
    if not hasattr(seed_config, "deployable"):
      raise SystemExit(f"--dory-deployable: {args.model} has no DORY-deployable variant (ResNet1d has)")
    seed_config = seed_config.deployable()
  n_lam = args.n_lambdas or (4 if small else 18)
  lambdas = tuple(args.lambdas) if args.lambdas else tuple(
      float(x) for x in np.logspace(np.log10(args.lambda_min), np.log10(args.lambda_max), n_lam))
  batch = args.batch_size or models.batch_size(args.model, spec.name)
  rotations = tuple(args.rotations) if args.rotations is not None else ((0,) if small else None)
  cost_name, cost = args.cost, None
  if args.cost == "latency":
    if args.platform is None:
      raise ValueError("--cost latency needs --platform (gap8, xpulpv2, xpulpnn-v1 or xpulpnn-v2)")
    from jaxbp.freebits.latency_cost import supernet_latency_cost  # pylint: disable=import-outside-toplevel
    cost = supernet_latency_cost(seed_config, spec.window, args.platform, ops=tuple(args.ops))
    cost_name = f"latency:{args.platform}"
  config = SweepConfig(
      lambdas=lambdas, cost=cost_name, search_epochs=args.epochs or (6 if small else 20), batch_size=batch,
      search=SearchConfig(temperature=args.temperature, mode=args.mode, ops=tuple(args.ops),
                          final_temperature=args.final_temperature or args.temperature),
      finetune=FitConfig(max_epochs=args.finetune_epochs or 100, batch_size=batch,
                         progress=not args.no_progress,
                         recalibrate_bn=small if args.recalibrate_bn is None else args.recalibrate_bn),
      engine=EngineConfig(args.strategy, args.chunk_size, memory_limit=runtime.memory_limit(args)), seed=args.seed,
      rotations=rotations,
      train_seed=not args.no_seed_network)
  out = Path(args.out or f"runs/sweep/{args.model}_{spec.name}")
  out.mkdir(parents=True, exist_ok=True)
  if proc.index == 0:
    (out / "config.json").write_text(json.dumps(
        {"args": vars(args), "sweep": config.to_dict(), "dataset": dataclasses.asdict(spec),
         "backend": jax.default_backend(), "devices": len(jax.devices()), "processes": proc.count,
         "jax": jax.__version__}, indent=2))
  result = run_sweep(folds, spec, seed_config, config, out, progress=not args.no_progress,
                     process_index=proc.index, process_count=proc.count, barrier=proc.barrier, cost=cost)
  if result is None:  # not process 0: its candidates are written; process 0 summarizes.
    return None
  plot_pareto(result, out / "pareto.png")
  result["wall_seconds"] = time.perf_counter() - t0  # this invocation (a resumed sweep counts only its own part)
  (out / "results.json").write_text(json.dumps(result, indent=2))
  print(f"{'λ':>9} {'params':>9} {'MACs':>10} {'MAE SBP':>8} {'MAE DBP':>8}")
  for c in result["candidates"]:
    print(f"{c['lambda']:9.2e} {c['params']:9.0f} {c['macs']:10.0f} {c['mae_sbp']:8.2f} {c['mae_dbp']:8.2f}")
  if result["seed"]:
    s = result["seed"]
    print(f"{'seed':>9} {s['params']:9.0f} {s['macs']:10.0f} {s['mae_sbp']:8.2f} {s['mae_dbp']:8.2f}")
  print(json.dumps({"out": str(out), "pareto": result["pareto"], "wall_seconds": round(result["wall_seconds"], 1),
                    "compile_seconds": round(result["compile_seconds"], 1)}))
  return result


if __name__ == "__main__":
  main()
