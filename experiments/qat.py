"""int8 quantization-aware training of a trained float network: float vs int8 MAE and size in bytes.

  python experiments/qat.py                                   # synthetic data, rotation 0, a few minutes
  python experiments/qat.py --dataset ppgbp --data-dir ../shared/data --rotations 0 1 2 3 4

Per fold rotation: train the float network under the benchmark's protocol (or reuse <out>/rotation_<k>/
float.msgpack), fold BatchNorm and convert to the quantized twin, calibrate activation ranges on training
batches (post-training quantization, "ptq"), then QAT fine-tune with the same protocol (Adam --qat-lr,
validation every 2 epochs, early stopping, best restored). Test predictions of all three are pooled over
the rotations as the benchmark does. Writes <out>/config.json, <out>/results.json and per rotation the
float and int8 variables (msgpack), the read-off of the int8 network (readoff.json) and the predictions.
Rerunning with the same --out resumes.
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
from jaxbp.data.protocol import Scalers, make_rotation, n_rotations  # noqa: E402
from jaxbp.data.source import load_folds  # noqa: E402
from jaxbp.models import count_params  # noqa: E402
from jaxbp.quant import (  # noqa: E402
  QuantConfig,
  bit_config,
  model_bytes,
  pipeline,  # noqa: E402
  read_off,
)
from jaxbp.quant.policy import ACT_METHODS  # noqa: E402
from jaxbp.train import FitConfig  # noqa: E402
from jaxbp.train.crossval import RotationResult, pooled_report  # noqa: E402

STAGES = ("float", "ptq", "qat")


def parse_args(argv=None) -> argparse.Namespace:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--dataset", default=None, help="ppgbp | bcg | sensors | uci | mimic_sample (default: synthetic)")
  p.add_argument("--data-dir", default=None, help="folder holding <dataset>_dataset/ (default: synthetic data)")
  p.add_argument("--model", default="resnet1d", choices=sorted(models.MODELS))
  p.add_argument("--config", default=None, help="JSON network config (e.g. an exported NAS candidate) "
                 "instead of the seed")
  p.add_argument("--rotations", type=int, nargs="*", default=None,
                 help="fold rotations (default: all; rotation 0 only on the synthetic default)")
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--float-epochs", type=int, default=None, help="max float epochs (default 100; 20 synthetic)")
  p.add_argument("--qat-epochs", type=int, default=None, help="max QAT epochs (default 30; 6 synthetic)")
  p.add_argument("--qat-lr", type=float, default=1e-4)
  p.add_argument("--patience", type=int, default=10, help="float early-stopping patience (validations)")
  p.add_argument("--qat-patience", type=int, default=5)
  p.add_argument("--batch-size", type=int, default=None, help="default: the benchmark's for model/dataset")
  p.add_argument("--act-bits", type=int, default=8)
  p.add_argument("--weight-bits", type=int, default=8)
  p.add_argument("--act-method", default="pact", choices=ACT_METHODS)
  p.add_argument("--threshold-lr", type=float, default=1e-3,
                 help="TQT: step bound of the normalized log2-threshold update (tanh-normed, per step)")
  p.add_argument("--rounding", default="half_up", choices=("half_up", "floor"))
  p.add_argument("--out", default=None, help="output dir (default runs/qat/<model>_<dataset>)")
  p.add_argument("--no-progress", action="store_true")
  runtime.add_flags(p)
  return p.parse_args(argv)


def _load(rdir: Path, stage: str, k: int) -> RotationResult | None:
  return RotationResult.load(rdir / stage, k) if (rdir / stage).exists() else None


def _save(rdir: Path, stage: str, res: RotationResult) -> None:
  (rdir / stage).mkdir(parents=True, exist_ok=True)
  res.save(rdir / stage)


def run_rotation(k, folds, spec, config, scalers, args, float_fit, qat_fit, policy, out: Path) -> dict:
  """Float → PTQ → QAT on rotation k; every stage is saved and reused on a rerun."""
  rdir = out / f"rotation_{k}"
  rdir.mkdir(parents=True, exist_ok=True)
  task = pipeline.task_of(config)
  split = make_rotation(folds, spec, k, scalers)
  done = {s: _load(rdir, s, k) for s in STAGES}
  if all(done.values()) and (rdir / "int8.msgpack").exists():
    return done
  timings = {}
  fpath = rdir / "float.msgpack"
  if fpath.exists():
    fvars = pipeline.load_variables(fpath)
  else:
    fvars, fres = pipeline.train_float(config, split, float_fit, seed=args.seed, rotation=k)
    pipeline.save_variables(fpath, fvars)
    timings["float_train_s"] = fres.seconds
    done["float"] = None
  if done["float"] is None:
    done["float"] = pipeline.rotation_result(models.build(config), fvars, split, scalers, task=task, rotation=k,
                                             batch_size=float_fit.batch_size, info={"stage": "float", **timings})
    _save(rdir, "float", done["float"])
  tw, qvars = pipeline.quantize(config, fvars, split["train"], policy, batch_size=qat_fit.batch_size, seed=args.seed)
  done["ptq"] = pipeline.rotation_result(tw, qvars, split, scalers, task=task, rotation=k,
                                         batch_size=qat_fit.batch_size, info={"stage": "ptq"})
  _save(rdir, "ptq", done["ptq"])
  qvars, qres = pipeline.qat(tw, qvars, split, qat_fit, task=task, seed=args.seed, rotation=k,
                             threshold_lr=args.threshold_lr if policy.act_method == "tqt" else None)
  info = {"stage": "qat", "qat_seconds": qres.seconds, "best_epoch": qres.best_epoch, "epochs_run": qres.epochs_run,
          "best_val_mse": qres.best_val_mse, "history": qres.history}
  done["qat"] = pipeline.rotation_result(tw, qvars, split, scalers, task=task, rotation=k,
                                         batch_size=qat_fit.batch_size, info=info)
  _save(rdir, "qat", done["qat"])
  pipeline.save_variables(rdir / "int8.msgpack", qvars)
  recs = read_off(tw, qvars, spec.window)
  (rdir / "readoff.json").write_text(json.dumps(recs, default=lambda a: np.asarray(a).tolist()))
  print(f"rotation {k}: " + ", ".join(
      f"{s} {pooled_report([done[s]])['sbp']['mae']:.2f}/{pooled_report([done[s]])['dbp']['mae']:.2f}"
      for s in STAGES) + " mmHg (SBP/DBP MAE)", flush=True)
  return done


def main(argv=None) -> dict:
  args = parse_args(argv)
  runtime.setup(args)  # persistent compilation cache
  t_start = time.perf_counter()
  spec, folds = load_folds(args.dataset, args.data_dir)
  small = spec.name == "synthetic"
  if args.config:
    config = models.config_from_dict(json.loads(Path(args.config).read_text()))
  else:
    config = models.seed_config(args.model, spec.name)
  batch = args.batch_size or models.batch_size(models.model_name(config), spec.name)
  float_fit = FitConfig(max_epochs=args.float_epochs or (20 if small else 100), patience=args.patience,
                        batch_size=batch, progress=not args.no_progress)
  qat_fit = FitConfig(learning_rate=args.qat_lr, max_epochs=args.qat_epochs or (6 if small else 30),
                      patience=args.qat_patience, batch_size=batch, progress=not args.no_progress)
  policy = QuantConfig(act_bits=args.act_bits, weight_bits=args.weight_bits, act_method=args.act_method,
                       rounding=args.rounding)
  rotations = args.rotations if args.rotations is not None else ([0] if small else list(range(n_rotations(spec))))
  out = Path(args.out or f"runs/qat/{models.model_name(config)}_{spec.name}")
  out.mkdir(parents=True, exist_ok=True)
  run_config = {"args": vars(args), "dataset": dataclasses.asdict(spec), "model": models.config_to_dict(config),
                "float_fit": dataclasses.asdict(float_fit), "qat_fit": dataclasses.asdict(qat_fit),
                "policy": dataclasses.asdict(policy), "rotations": rotations, "jax": jax.__version__,
                "backend": jax.default_backend(), "host": platform.node()}
  (out / "config.json").write_text(json.dumps(run_config, indent=2))
  scalers = Scalers.fit(folds)
  per_rot = [run_rotation(k, folds, spec, config, scalers, args, float_fit, qat_fit, policy, out) for k in rotations]
  reports = {s: pooled_report([r[s] for r in per_rot]) for s in STAGES}
  mae = {s: {t: reports[s][t]["mae"] for t in ("sbp", "dbp")} for s in STAGES}
  recs = json.loads((out / f"rotation_{rotations[0]}" / "readoff.json").read_text())
  for r in recs:  # back to arrays for the size count
    for key in ("kernel_int", "bias_int", "scale", "shift"):
      if r.get(key) is not None:
        r[key] = np.asarray(r[key])
  n_params = count_params(jax.eval_shape(
      lambda: models.init_variables(models.build(config), jax.random.key(0), spec.window))["params"])
  size = {"float32_bytes": 4 * n_params, "params": n_params, "int8": model_bytes(recs)}
  results = {
      "dataset": spec.name, "model": models.config_to_dict(config), "rotations": rotations,
      "mae": mae, "naive": {t: reports["float"][t]["mae_naive"] for t in ("sbp", "dbp")},
      "qat_vs_float_pct": {t: 100 * (mae["qat"][t] / mae["float"][t] - 1) for t in ("sbp", "dbp")},
      "ptq_vs_float_pct": {t: 100 * (mae["ptq"][t] / mae["float"][t] - 1) for t in ("sbp", "dbp")},
      "size": size, "bit_config": bit_config(recs), "metrics": reports,
      "per_rotation": [{s: {**{k: v for k, v in r[s].info.items() if k != "history"},
                            "mae": {t: pooled_report([r[s]])[t]["mae"] for t in ("sbp", "dbp")}} for s in STAGES}
                       for r in per_rot],
      "wall_seconds": time.perf_counter() - t_start,
  }
  (out / "results.json").write_text(json.dumps(results, indent=2))
  print(json.dumps({"out": str(out), "mae": mae, "qat_vs_float_pct": results["qat_vs_float_pct"],
                    "float32_bytes": size["float32_bytes"], "int8_bytes": size["int8"]["total"],
                    "wall_seconds": round(results["wall_seconds"], 1)}))
  return results


if __name__ == "__main__":
  main()
