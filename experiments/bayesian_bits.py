"""Bayesian-Bits mixed-precision search: one candidate per λ, all trained at once by the engine.

  python experiments/bayesian_bits.py                          # synthetic data, a few minutes
  python experiments/bayesian_bits.py --dataset ppgbp --data-dir ../shared/data --init-from runs/qat_ppgbp

Starts from an int8 QAT network (--init-from: the output dir of experiments/qat.py, rotation --rotation; or
trains float + QAT here), adds Bayesian-Bits gates (2/4/8-bit residuals) to every weighted layer's weights
and searchable input activation, and trains weights + gates with loss = MSE + λ·E[BOPs]/BOPs(8/8). Each
candidate's configuration {layer: (b_in, b_w)} is read off with deterministic gates and evaluated as is on
the rotation's test fold. `--cost latency --platform P` replaces E[BOPs] by the expected latency on P under the
gate probabilities (the simulator's latency table of the network, `jaxbp.freebits.latency_cost`). Writes
<out>/config.json, candidates/candidate_XX.json (λ, configuration, expected
and read-off BOPs, weight bytes, MAE SBP/DBP), results.json (the error-vs-BOPs table) and bops_vs_mae.png.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without installing.
from jaxbp.hostdevices import expose_cpu_cores  # noqa: E402  (before jax is imported)

expose_cpu_cores()

import jax  # noqa: E402
import numpy as np  # noqa: E402

from jaxbp import models  # noqa: E402
from jaxbp.cost import bits as cost_bits  # noqa: E402
from jaxbp.data.protocol import Scalers, make_rotation  # noqa: E402
from jaxbp.data.source import load_folds  # noqa: E402
from jaxbp.freebits.latency_cost import bb_latency_cost  # noqa: E402
from jaxbp.quant import (  # noqa: E402
  BBConfig,
  QuantConfig,
  bit_config,
  bit_joints,
  bit_shapes,
  model_bytes,
  pipeline,  # noqa: E402
  read_off,
)
from jaxbp.quant.bb_search import BBSearchConfig, search, start_variables  # noqa: E402
from jaxbp.quant.plot import plot_bits  # noqa: E402
from jaxbp.quant.twin import twin  # noqa: E402
from jaxbp.train import FitConfig  # noqa: E402
from jaxbp.train.crossval import pooled_report  # noqa: E402
from jaxbp.train.engine import STRATEGIES, EngineConfig  # noqa: E402

DEFAULT_LAMBDAS = (0.0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)


def parse_args(argv=None) -> argparse.Namespace:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--dataset", default=None, help="ppgbp | bcg | sensors | uci | mimic_sample (default: synthetic)")
  p.add_argument("--data-dir", default=None, help="folder holding <dataset>_dataset/ (default: synthetic data)")
  p.add_argument("--model", default="resnet1d", choices=sorted(models.MODELS))
  p.add_argument("--rotation", type=int, default=0, help="fold rotation (test k, val k+1, train the rest)")
  p.add_argument("--init-from", default=None, help="experiments/qat.py output dir with rotation_<k>/int8.msgpack")
  p.add_argument("--lambdas", type=float, nargs="+", default=list(DEFAULT_LAMBDAS))
  p.add_argument("--epochs", type=int, default=None, help="search epochs (default 20; 4 synthetic)")
  p.add_argument("--weight-lr", type=float, default=1e-4)
  p.add_argument("--gate-lr", type=float, default=0.05)
  p.add_argument("--batch-size", type=int, default=None, help="default: the benchmark's for model/dataset")
  p.add_argument("--locked", action="store_true", help="one gate set per layer for weights and input (b_in = b_w)")
  p.add_argument("--prune", action="store_true", help="add a pruning (0-bit) gate")
  p.add_argument("--cost", default="bops", choices=("bops", "latency"),
                 help="regularizer: expected BOPs or expected latency on --platform (simulator's table)")
  p.add_argument("--platform", default=None, help="gap8 | xpulpv2 | xpulpnn-v1 | xpulpnn-v2 (with --cost latency)")
  p.add_argument("--float-epochs", type=int, default=None, help="without --init-from (default 100; 20 synthetic)")
  p.add_argument("--qat-epochs", type=int, default=None, help="without --init-from (default 30; 6 synthetic)")
  p.add_argument("--strategy", default="auto", choices=STRATEGIES, help="how candidates are batched")
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--out", default=None, help="output dir (default runs/bayesian_bits/<model>_<dataset>)")
  p.add_argument("--no-progress", action="store_true")
  return p.parse_args(argv)


def int8_start(args, config, split, scalers, spec, batch, out: Path) -> tuple[dict, dict]:
  """(int8 QAT params, reference metrics {"float", "int8"}) from --init-from or trained here."""
  k = args.rotation
  src = Path(args.init_from) / f"rotation_{k}" if args.init_from else out / "start"
  src.mkdir(parents=True, exist_ok=True)
  task = pipeline.task_of(config)
  small = spec.name == "synthetic"
  if not (src / "int8.msgpack").exists():
    if args.init_from:
      raise FileNotFoundError(f"--init-from: {src / 'int8.msgpack'} not found (run experiments/qat.py first)")
    fit = FitConfig(max_epochs=args.float_epochs or (20 if small else 100), batch_size=batch,
                    progress=not args.no_progress)
    fvars, _ = pipeline.train_float(config, split, fit, seed=args.seed, rotation=k)
    tw, qvars = pipeline.quantize(config, fvars, split["train"], batch_size=batch, seed=args.seed)
    qfit = FitConfig(learning_rate=1e-4, max_epochs=args.qat_epochs or (6 if small else 30), patience=5,
                     batch_size=batch, progress=not args.no_progress)
    qvars, _ = pipeline.qat(tw, qvars, split, qfit, task=task, seed=args.seed, rotation=k)
    pipeline.save_variables(src / "float.msgpack", fvars)
    pipeline.save_variables(src / "int8.msgpack", qvars)
  fvars, qvars = pipeline.load_variables(src / "float.msgpack"), pipeline.load_variables(src / "int8.msgpack")
  refs = {}
  for name, model, variables in (("float", models.build(config), fvars), ("int8", twin(config), qvars)):
    res = pipeline.rotation_result(model, variables, split, scalers, task=task, rotation=k, batch_size=batch,
                                   info={})
    rep = pooled_report([res])
    refs[name] = {"mae_sbp": rep["sbp"]["mae"], "mae_dbp": rep["dbp"]["mae"]}
  return qvars["params"], refs


def main(argv=None) -> dict:
  args = parse_args(argv)
  if args.cost == "latency" and not args.platform:
    raise SystemExit("error: --cost latency needs --platform")
  t_start = time.perf_counter()
  spec, folds = load_folds(args.dataset, args.data_dir)
  small = spec.name == "synthetic"
  config = models.seed_config(args.model, spec.name)
  batch = args.batch_size or models.batch_size(args.model, spec.name)
  bb_cfg = BBConfig(locked=args.locked, prune=args.prune)
  policy = QuantConfig(bayesian_bits=bb_cfg)
  search_cfg = BBSearchConfig(weight_lr=args.weight_lr, gate_lr=args.gate_lr, epochs=args.epochs or (4 if small else 20),
                              batch_size=batch)
  out = Path(args.out or f"runs/bayesian_bits/{args.model}_{spec.name}")
  (out / "candidates").mkdir(parents=True, exist_ok=True)
  run_config = {"args": vars(args), "dataset": dataclasses.asdict(spec), "model": models.config_to_dict(config),
                "bayesian_bits": dataclasses.asdict(bb_cfg), "search": dataclasses.asdict(search_cfg),
                "jax": jax.__version__, "backend": jax.default_backend(), "devices": len(jax.devices()),
                "host": platform.node()}
  (out / "config.json").write_text(json.dumps(run_config, indent=2))
  scalers = Scalers.fit(folds)
  split = make_rotation(folds, spec, args.rotation, scalers)
  task = pipeline.task_of(config)
  params, refs = int8_start(args, config, split, scalers, spec, batch, out)

  tw = twin(config, policy)
  shapes = bit_shapes(tw, spec.window)
  bops, wbytes = cost_bits.bops(), cost_bits.weight_bytes()
  all8 = cost_bits.one_hot_joints(shapes, {layer.name: (8, 8) for layer in shapes.layers})
  refs["int8"].update(bops=float(bops(all8, shapes)), weight_bytes=float(wbytes(all8, shapes)))
  reg = None
  if args.cost == "latency":
    reg = bb_latency_cost(config, spec.window, args.platform)
    refs["int8"]["latency_ms"] = float(reg(all8, shapes))
  start = start_variables(tw, params, spec.window)
  t0 = time.perf_counter()
  log = (lambda r: print(f"epoch {r['epoch']}: mse {np.round(r['mse'], 4).tolist()}, "
                         f"rel {args.cost} {np.round(r['rel_cost'], 3).tolist()}", flush=True)) if not args.no_progress else None
  finals, history = search(tw, start, split["train"], tuple(args.lambdas), shapes, search_cfg,
                           engine=EngineConfig(strategy=args.strategy), seed=args.seed, task=task, progress=log,
                           cost=reg)
  search_s = time.perf_counter() - t0
  candidates = []
  for i, (lam, v) in enumerate(zip(args.lambdas, finals)):
    recs = read_off(tw, v, spec.window)
    cfg = bit_config(recs)
    res = pipeline.rotation_result(tw, v, split, scalers, task=task, rotation=args.rotation, batch_size=batch, info={})
    rep = pooled_report([res])
    exact = cost_bits.one_hot_joints(shapes, cfg)
    hist = np.asarray([b for layer in cfg.values() for b in layer])
    c = {"index": i, "lambda": lam, "expected_bops": float(bops(bit_joints(tw, v["gates"]), shapes)),
         "bops": float(bops(exact, shapes)), "weight_bytes": float(wbytes(exact, shapes)),
         "deployed_bytes": model_bytes(recs)["total"], "mae_sbp": rep["sbp"]["mae"], "mae_dbp": rep["dbp"]["mae"],
         "bits_histogram": {str(b): int(np.sum(hist == b)) for b in bb_cfg.support},
         **({"expected_latency_ms": float(reg(bit_joints(tw, v["gates"]), shapes)),
             "latency_ms": float(reg(exact, shapes))} if reg is not None else {}),
         "config": {k: list(b) for k, b in cfg.items()}}
    (out / "candidates" / f"candidate_{i:02d}.json").write_text(json.dumps(c, indent=2))
    candidates.append(c)
    print(f"λ={lam:g}: E[BOPs] {c['expected_bops']:.4g}, read-off BOPs {c['bops']:.4g} "
          f"({100 * c['bops'] / refs['int8']['bops']:.0f}% of int8), {c['weight_bytes']:.0f} B, "
          f"MAE {c['mae_sbp']:.2f}/{c['mae_dbp']:.2f}, bits {c['bits_histogram']}", flush=True)
  ordered = sorted(candidates, key=lambda c: c["lambda"])
  monotone = all(a["expected_bops"] >= b["expected_bops"] * (1 - 1e-6) for a, b in itertools.pairwise(ordered))
  result = {"dataset": spec.name, "rotation": args.rotation, "model": models.config_to_dict(config),
            "locked": args.locked, "prune": args.prune, "cost": args.cost, "platform": args.platform,
            "reference": refs,
            "naive": {t: float(np.mean(np.abs(split["test"][t] - split["train"][t].mean()))) for t in ("sbp", "dbp")},
            "expected_bops_monotone_in_lambda": monotone,
            "candidates": [{k: v for k, v in c.items() if k != "config"} for c in candidates],
            "history": history, "timings": {"search_s": search_s, "total_s": time.perf_counter() - t_start}}
  (out / "results.json").write_text(json.dumps(result, indent=2))
  plot_bits(result, out / "bops_vs_mae.png")
  print(json.dumps({"out": str(out), "monotone": monotone, "search_s": round(search_s, 1)}))
  return result


if __name__ == "__main__":
  main()
