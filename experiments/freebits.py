"""The Free Bits flow in one command (methods.md sections 3-5, 8; `jaxbp.freebits.flow` does the work).

  python experiments/freebits.py                                            # synthetic data, tiny budgets
  python experiments/freebits.py --model resnet1d --dataset ppgbp --data-dir ../shared/data \
      --platform gap8 xpulpnn-v2 --search-cost bops latency
  python experiments/freebits.py --model mobilenet_v1 --dataset digits --width-mult 0.25 --resolution 32
  python experiments/freebits.py ... --joint-lambdas 0.1 0.3 1 3     # + the joint SuperNet x Bayesian-Bits search

int8 start (float -> PTQ -> QAT with TQT thresholds; or --init-from an int8 .msgpack of a TQT twin) ->
Bayesian-Bits λ sweep, original and locked, all λ at once on the engine (cost: E[BOPs], and/or the expected
latency on each platform) -> read-off -> free bits on each platform's latency dictionary -> TQT fine-tuning of
every configuration (8-bit, 4-bit, 4-bit + FB, each BB configuration before and after FB), all at once ->
integerize -> simulate -> export (C + ONNX) of the 8-bit baseline and the fastest configurations within the
--margins. Per platform under <out>/platforms/<p>/: table.md / table.json, latency_vs_error.png (arrows to the
free-bits versions), fronts.json / fronts.png, plan.json (which layers free bits raised and why). Rerunning
the same command resumes (finished searches, fine-tunings, simulations and exports are kept).
--joint-lambdas adds, per platform, the joint search (SuperNet ops {conv, dw, id} x Bayesian-Bits precisions, λ·expected
latency; `jaxbp.freebits.joint`) from the same int8 start and search epochs, its candidates fine-tuned and simulated
as the flow's, and their front against BB(BOPs)+FB and latency-aware BB: <out>/platforms/<p>/joint/;
--joint-levels single bilevel also runs it bilevel (α on validation batches, as jaxbp.nas), compared together.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without installing.
from jaxbp.hostdevices import expose_cpu_cores  # noqa: E402  (before jax is imported)

expose_cpu_cores()

from jaxbp import runtime  # noqa: E402
from jaxbp.deploy.platforms import PLATFORMS  # noqa: E402
from jaxbp.freebits import flow, joint_flow  # noqa: E402
from jaxbp.train.engine import STRATEGIES  # noqa: E402

BP_MODELS = ("resnet1d", "unet1d")
IMAGE_MODELS = ("mobilenet_v1", "mobilenet_v2")


def parse_args(argv=None) -> argparse.Namespace:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--model", default="resnet1d", choices=BP_MODELS + IMAGE_MODELS)
  p.add_argument("--dataset", default=None,
                 help="ppgbp | bcg | sensors | uci | mimic_sample (default: synthetic); MobileNets: digits")
  p.add_argument("--width-mult", type=float, default=0.25, help="MobileNet width multiplier")
  p.add_argument("--resolution", type=int, default=32, help="MobileNet input resolution (digits are resized)")
  p.add_argument("--data-dir", default=None, help="folder holding <dataset>_dataset/")
  p.add_argument("--platform", nargs="+", default=["gap8", "xpulpnn-v2"], choices=sorted(PLATFORMS))
  p.add_argument("--rotation", type=int, default=0)
  p.add_argument("--lambdas", type=float, nargs="+", default=None)
  p.add_argument("--latency-lambdas", type=float, nargs="+", default=None,
                 help="λ of the latency-cost searches (default: --lambdas; latency needs larger ones)")
  p.add_argument("--variants", nargs="+", default=list(flow.VARIANTS), choices=flow.VARIANTS)
  p.add_argument("--search-cost", nargs="+", default=["bops"], choices=flow.SEARCH_COSTS,
                 help="Bayesian-Bits regularizer(s): E[BOPs] (the paper) and/or expected latency per platform")
  p.add_argument("--float-epochs", type=int, default=None)
  p.add_argument("--qat-epochs", type=int, default=None)
  p.add_argument("--search-epochs", type=int, default=None)
  p.add_argument("--finetune-epochs", type=int, default=None)
  p.add_argument("--gate-lr", type=float, default=0.05)
  p.add_argument("--margins", type=float, nargs="+", default=[1.0, 5.0], help="%% of the 8-bit baseline's error")
  p.add_argument("--init-from", default=None, help="int8.msgpack of a TQT twin (skips the float/QAT start)")
  p.add_argument("--no-export", action="store_true")
  p.add_argument("--batch-size", type=int, default=None)
  p.add_argument("--strategy", default="auto", choices=STRATEGIES)
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--joint-lambdas", type=float, nargs="+", default=None,
                 help="run the joint SuperNet x Bayesian-Bits search per platform (λ of λ·E[latency] / the 8-bit network latency)")
  p.add_argument("--joint-ops", nargs="+", default=["conv", "dw", "id"], choices=["conv", "dw", "id"],
                 help="the joint search's slot alternatives")
  p.add_argument("--joint-warmup-epochs", type=int, default=2,
                 help="of the search epochs, how many train only the weights (the dw branches start random)")
  p.add_argument("--joint-levels", nargs="+", default=["single"], choices=["single", "bilevel"],
                 help="the joint search's training: single (α with the weights on training batches) and/or bilevel "
                      "(α on validation batches, as jaxbp.nas); all compared together")
  p.add_argument("--out", default=None, help="default runs/freebits/<model>_<dataset>")
  return p.parse_args(argv)


def main(argv=None) -> dict:
  args = parse_args(argv)
  runtime.enable_compilation_cache()  # read-offs and evaluations of many configurations compile the same programs.
  image = args.model in IMAGE_MODELS
  if image and args.dataset not in (None, "digits"):
    print(f"error: --model {args.model}: the flow's image dataset is 'digits' (scikit-learn's, resized)",
          file=sys.stderr)
    raise SystemExit(2)
  small = args.dataset is None or image
  fc = flow.FlowConfig(
      lambdas=tuple(args.lambdas or ((0.01, 0.1) if small else flow.FlowConfig.lambdas)),
      latency_lambdas=tuple(args.latency_lambdas) if args.latency_lambdas else None,
      variants=tuple(args.variants), search_costs=tuple(args.search_cost), platforms=tuple(args.platform),
      float_epochs=args.float_epochs or (4 if small else 40), qat_epochs=args.qat_epochs or (2 if small else 6),
      search_epochs=args.search_epochs or (2 if small else 6),
      finetune_epochs=args.finetune_epochs or (1 if small else 4), gate_lr=args.gate_lr,
      margins=tuple(args.margins), export=not args.no_export, seed=args.seed, strategy=args.strategy)
  try:
    if image:
      task = flow.image_task(args.model.split("_")[1], args.width_mult, args.resolution, args.batch_size or 64,
                             args.seed)
    else:
      task = flow.bp_task(args.dataset, args.data_dir, args.model, args.rotation, args.batch_size)
    out = Path(args.out or f"runs/freebits/{task.name}")
    log = lambda s: print(s, flush=True)
    init = Path(args.init_from) if args.init_from else None
    summary = flow.run(out, task, fc, init_from=init, log=log)
    if args.joint_lambdas:
      params = flow.start(out, task, fc, init)
      for p in fc.platforms:
        rows = []
        for level in args.joint_levels:
          res = joint_flow.joint_stage(out, task, params, fc, p, args.joint_lambdas, args.joint_warmup_epochs, log,
                                       tuple(args.joint_ops), bilevel=level == "bilevel")
          rows += joint_flow.joint_rows(out, task, res, fc, p)
        cmp = joint_flow.compare(out, p, rows)
        log(f"joint {p}: " + "; ".join(f"{k} {v:.2f}" for k, v in cmp["dominated_fraction"].items()))
    return summary
  except (ValueError, KeyError, TypeError, FileNotFoundError) as e:
    print(f"error: {e}", file=sys.stderr)
    raise SystemExit(2) from None


if __name__ == "__main__":
  main()
