"""MobileNet on scikit-learn's digits (CPU-sized): float training, int8 twin, integer graph, test accuracies.

  python experiments/mobilenet_digits.py --model mobilenet_v1 --width-mult 0.25 --resolution 32 --epochs 10 \
      --out runs/mobilenet_digits

Writes <out>/results.json: float / int8-twin / integer test accuracy, twin-vs-integer agreement (argmax and logits),
and the per-layer fidelity table (fidelity.txt).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from jaxbp import models  # noqa: E402
from jaxbp.data.batching import batches  # noqa: E402
from jaxbp.data.images import load_digits_splits  # noqa: E402
from jaxbp.integerize import from_quant  # noqa: E402
from jaxbp.models.mobilenet import MobileNetConfig, init_mobilenet  # noqa: E402
from jaxbp.quant import QuantConfig, calibrate, from_float, twin  # noqa: E402
from jaxbp.train import FitConfig, fit, predict  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--model", default="mobilenet_v1", choices=("mobilenet_v1", "mobilenet_v2"))
  p.add_argument("--width-mult", type=float, default=0.25)
  p.add_argument("--resolution", type=int, default=32)
  p.add_argument("--epochs", type=int, default=10)
  p.add_argument("--qat-epochs", type=int, default=0, help="int8 QAT epochs after calibration (0: PTQ only)")
  p.add_argument("--learning-rate", type=float, default=2e-3)
  p.add_argument("--batch-size", type=int, default=64)
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--out", default="runs/mobilenet_digits")
  return p.parse_args(argv)


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
  return float(np.mean(np.argmax(logits, axis=-1) == labels))


def main(argv=None) -> dict:
  args = parse_args(argv)
  out = Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  start = time.perf_counter()
  splits = load_digits_splits(args.resolution, args.seed)
  cfg = MobileNetConfig(args.model[-2:], args.width_mult, args.resolution, n_classes=10)
  shape = (args.resolution, args.resolution, 3)
  model = models.build(cfg)
  fc = FitConfig(learning_rate=args.learning_rate, max_epochs=args.epochs, val_every=1, patience=args.epochs,
                 batch_size=args.batch_size, progress=False)
  res = fit(model, init_mobilenet(model, jax.random.key(args.seed)), splits["train"], splits["val"], fc,
            task="classification", seed=args.seed)
  test = splits["test"]
  float_acc = accuracy(predict(model, res.variables, test, 256, "classification"), test["y"])
  print(f"float: test accuracy {float_acc:.4f} (best epoch {res.best_epoch}, {res.seconds:.0f} s)", flush=True)

  tw = twin(cfg, QuantConfig())
  tv = calibrate(tw, from_float(tw, res.variables, shape),
                 [b["x"] for b in batches(splits["train"], 256, seed=args.seed)][:4])
  if args.qat_epochs:
    qfc = FitConfig(learning_rate=args.learning_rate / 10, max_epochs=args.qat_epochs, val_every=1,
                    patience=args.qat_epochs, batch_size=args.batch_size, progress=False)
    tv = fit(tw, tv, splits["train"], splits["val"], qfc, task="classification", seed=args.seed).variables
  twin_logits = predict(tw, tv, test, 256, "classification")
  graph = from_quant.integerize_twin(tw, tv, shape, meta={"dataset": "digits"})
  report, outs = from_quant.twin_fidelity(graph, tw, tv, test["x"])
  int_logits = outs["integer"]
  results = {
      "model": models.config_to_dict(cfg), "dataset": {"name": "digits", "resolution": args.resolution,
                                                       "seed": args.seed, "n_test": int(len(test["y"]))},
      "epochs": args.epochs, "best_epoch": res.best_epoch, "train_seconds": res.seconds, "qat_epochs": args.qat_epochs,
      "test_accuracy": {"float": float_acc, "int8_twin": accuracy(twin_logits, test["y"]),
                        "integer": accuracy(int_logits, test["y"])},
      "twin_vs_integer": {"argmax_agreement": float(np.mean(twin_logits.argmax(-1) == int_logits.argmax(-1))),
                          "max_logit_error_rel": float(np.abs(outs["twin"] - int_logits).max() / np.ptp(outs["twin"])),
                          "worst_layer_local": max(r.local_max_err for r in report.layers if r.bits != 32)},
      "seconds": time.perf_counter() - start,
      "cpu_seconds": (lambda r: r.ru_utime + r.ru_stime)(resource.getrusage(resource.RUSAGE_SELF)),
  }
  (out / "fidelity.txt").write_text(report.table())
  (out / "results.json").write_text(json.dumps(results, indent=1))
  print(json.dumps(results["test_accuracy"]), json.dumps(results["twin_vs_integer"]), flush=True)
  return results


if __name__ == "__main__":
  main()
