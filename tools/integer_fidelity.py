"""Float -> fake-quant twin -> integer graph on real data: per-layer fidelity, MAE in mmHg, bit-exact exports.

  python tools/integer_fidelity.py --data-dir ../shared/data --rotation 0 --out runs/integer_ppgbp
  python tools/integer_fidelity.py --data-dir ../shared/data --dataset mimic_sample --mixed --float-epochs 20 \
      --out runs/integer_unet_mimic

Trains the dataset's seed (PPGBP: ResNet1d regressor; mimic_sample: the UNet1d sig2sig net) on one fold rotation
(the benchmark's protocol; mimic_sample is one fold used as train/val/test: a smoke run), builds its quantized
twin (int8: PACT activations, per-channel min-max weights, BN folded; --mixed: hand-set Bayesian-Bits gates,
8-bit first/last layer, 4-bit activations, 2/4-bit weights elsewhere), calibrates it on the training windows,
optionally fine-tunes it (--qat-epochs), integerizes it, and on the test fold reports:
  * per-layer fidelity (integer vs twin, in output quanta; end-to-end and layer-local; the worst layer),
  * SBP/DBP MAE in mmHg (sig2sig: through the ABP peak rule, plus the ABP MAE) of the float model, the twin
    and the integer model, and their differences,
  * interpreter == C (gcc) == onnxruntime == DORY-graph evaluation on the real test inputs.
Writes OUT/quant_model (for tools/export.py), OUT/graph (the integer graph), OUT/fidelity.json, and caches
the trained float model in OUT (reused by later runs with the same rotation/seed/epochs).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

import jax
import numpy as np

from jaxbp import integerize, models, runtime
from jaxbp.data import source
from jaxbp.data.protocol import Scalers, make_rotation
from jaxbp.export.bundle import cross_check
from jaxbp.integerize import from_quant
from jaxbp.metrics import regression
from jaxbp.quant import BBConfig, QuantConfig, calibrate, from_float, twin
from jaxbp.quant.bayesian_bits import mixed_bits, set_gate_bits
from jaxbp.train.crossval import to_mmhg
from jaxbp.train.fit import FitConfig, fit, predict

SEEDS = {"ppgbp": "resnet1d", "mimic_sample": "unet1d"}
FIRST_LAST = {"resnet1d": ("stem_conv", "head"), "unet1d": ("conv_first", "conv_final")}


def mae(pred: np.ndarray, split: dict, scalers: Scalers, task: str) -> dict[str, float]:
  """Test MAE in mmHg: SBP, DBP (and ABP for sig2sig)."""
  sbp, dbp, extra = to_mmhg(np.asarray(pred, np.float64), split, scalers, task)
  out = {k: regression.error_stats(v, split[k])["mae"] for k, v in (("sbp", sbp), ("dbp", dbp))}
  if "abp_mae_mmhg" in extra:
    out.update(abp=extra["abp_mae_mmhg"], windows_without_beats=extra["windows_without_beats"])
  return out


def main(argv: list[str] | None = None) -> int:
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--data-dir", required=True)
  ap.add_argument("--dataset", default="ppgbp", choices=sorted(SEEDS))
  ap.add_argument("--rotation", type=int, default=0)
  ap.add_argument("--float-epochs", type=int, default=100)
  ap.add_argument("--qat-epochs", type=int, default=0)
  ap.add_argument("--mixed", action="store_true")
  ap.add_argument("--qat-rotation", type=pathlib.Path,
                  help="use this experiments/qat.py rotation directory's int8 twin (and float.msgpack) instead of "
                       "training and quantizing here; --rotation must match it")
  ap.add_argument("--seed", type=int, default=0)
  ap.add_argument("--out", type=pathlib.Path, required=True)
  runtime.add_flags(ap)
  args = ap.parse_args(argv)
  runtime.setup(args)  # persistent compilation cache
  args.out.mkdir(parents=True, exist_ok=True)
  t0 = time.perf_counter()

  spec, folds = source.load_folds(args.dataset, args.data_dir)
  scalers = Scalers.fit(folds)
  split = make_rotation(folds, spec, args.rotation, scalers)
  model_name = SEEDS[args.dataset]
  task = models.TASKS[model_name]
  cfg = models.MODELS[model_name][1][args.dataset]
  window = spec.window
  net = models.build(cfg)
  fit_cfg = FitConfig(max_epochs=args.float_epochs, batch_size=models.batch_size(model_name, args.dataset),
                      progress=False)
  cache = args.out / f"float_rotation{args.rotation}_seed{args.seed}_epochs{args.float_epochs}.npz"
  if args.qat_rotation is not None:
    from jaxbp.quant import pipeline  # pylint: disable=import-outside-toplevel
    float_vars, best_epoch = pipeline.load_variables(args.qat_rotation / "float.msgpack"), -1
  elif cache.is_file():  # the trained float model of an earlier run with the same settings
    float_vars, best_epoch = from_quant.load_variables(cache), -1
  else:
    res = fit(net, models.init_variables(net, jax.random.key(args.seed), window), split["train"], split["val"],
              fit_cfg, task=task, seed=args.seed)
    float_vars, best_epoch = res.variables, res.best_epoch
    from_quant.save_variables(cache, float_vars)
  float_pred = predict(net, float_vars, split["test"], task=task)
  print(f"float model: best epoch {best_epoch}, {time.perf_counter() - t0:.0f} s")

  if args.qat_rotation is not None:
    tw, variables, _, _ = from_quant.load_qat_rotation(args.qat_rotation)
    policy = tw.policy
  else:
    policy = QuantConfig(bayesian_bits=BBConfig()) if args.mixed else QuantConfig()
    tw = twin(cfg, policy)
    variables = from_float(tw, float_vars, window)
    if args.mixed:
      bits = mixed_bits(variables["gates"], FIRST_LAST[model_name])
      variables = {**variables, "gates": set_gate_bits(variables["gates"], policy.bayesian_bits, bits)}
    x_train = split["train"]["x"]
    variables = calibrate(tw, variables, [x_train[i:i + 64] for i in range(0, len(x_train), 64)])
  if args.qat_epochs:
    qres = fit(tw, variables, split["train"], split["val"],
               FitConfig(learning_rate=1e-4, max_epochs=args.qat_epochs, batch_size=fit_cfg.batch_size,
                         val_every=1, patience=args.qat_epochs, progress=False),
               task=task, seed=args.seed)
    variables = {**qres.variables, **({"gates": variables["gates"]} if "gates" in variables else {})}
  twin_pred = predict(tw, variables, split["test"], task=task)
  meta = {"dataset": args.dataset, "rotation": args.rotation, "mixed": args.mixed}
  from_quant.save_quant_model(args.out / "quant_model", cfg, policy, variables, window, meta=meta)

  graph = from_quant.integerize_twin(tw, variables, window, meta={"dataset": args.dataset, "rotation": args.rotation})
  integerize.save(graph, args.out / "graph")
  report, outs = from_quant.twin_fidelity(graph, tw, variables, split["test"]["x"])
  print(report.table())

  maes = {"float": mae(float_pred, split["test"], scalers, task), "twin": mae(twin_pred, split["test"], scalers, task),
          "integer": mae(outs["integer"], split["test"], scalers, task)}
  # Largest |Δ| per output in mmHg (the label scalers are affine: a difference scales by hi - lo).
  outputs = (("sbp", scalers.sbp), ("dbp", scalers.dbp)) if task == "regression" else (("abp", scalers.abp),)
  max_mmhg = lambda delta: {k: float(np.abs(delta[..., i]).max() * (m.hi - m.lo)) for i, (k, m) in enumerate(outputs)}
  diff_mmhg = max_mmhg(outs["integer"] - np.asarray(outs["twin"], np.float64))
  # Baseline: the twin's own output change when one-quantum input differences as rare as the worst layer's
  # local mismatch (at least 0.01 %) are injected.
  frac = max(max(r.local_mismatch for r in report.layers), 1e-4)
  sens_mmhg = max_mmhg(from_quant.twin_sensitivity(tw, variables, split["test"]["x"],
                                                   graph.tensors[graph.inputs[0]].scale, frac))
  check = cross_check(graph, {"input": outs["input_codes"]}, c_dir=args.out / "c_check")
  bits = {n.name: [graph.tensors[n.inputs[0]].bits, n.attrs["w_bits"], graph.tensors[n.output].bits]
          for n in graph.nodes if n.op in ("conv", "linear")}
  summary = {
      "dataset": args.dataset, "model": model_name,
      "rotation": args.rotation, "n_test": len(split["test"]["x"]), "mixed": args.mixed,
      "qat_rotation": str(args.qat_rotation) if args.qat_rotation else None,
      "qat_epochs": args.qat_epochs, "float_best_epoch": best_epoch,
      "mae_mmhg": maes,
      "mae_difference_integer_minus_twin": {k: maes["integer"][k] - maes["twin"][k] for k in ("sbp", "dbp")},
      "mae_difference_integer_minus_float": {k: maes["integer"][k] - maes["float"][k] for k in ("sbp", "dbp")},
      "max_abs_prediction_difference_integer_vs_twin_mmhg": diff_mmhg,
      "twin_sensitivity": {"input_fraction_moved_by_one_quantum": frac, "max_abs_prediction_change_mmhg": sens_mmhg},
      "fidelity": report.to_json(),
      "all_layers_within_one_quantum_end_to_end": report.within(1.0),
      "all_layers_within_one_quantum_local": report.within(1.0, local=True),
      "bits_in_w_out": bits,
      "export_check": check,
      "seconds": round(time.perf_counter() - t0, 1),
  }
  (args.out / "fidelity.json").write_text(json.dumps(summary, indent=1))
  print(json.dumps({k: v for k, v in summary.items() if k not in ("fidelity", "bits_in_w_out")}, indent=1))
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
