"""Deploy a λ sweep's models: int8 QAT, integerize, check, simulate on a platform, export C / DORY ONNX, table.

  python experiments/deploy.py runs/sweep/resnet1d_synthetic --platform gap8
  python experiments/deploy.py experiments/results/sweep_ppgbp_convdw --platform gap8 --freq-mhz 100 \
      --data-dir ../shared/data --models front --out runs/deploy_ppgbp
  python experiments/deploy.py RUN_DIR --models seed --seed 1 --no-export --no-baselines --out RUN_DIR/deploy_seed1

For a sweep run directory (ResNet1d or UNet1d seed) it picks the seed and the front's models (both extremes
and the knee of the SBP and DBP fronts; or --models all / ids such as "seed 1 c03"), and for each model and
fold rotation: rebuilds the exported config from the choice stored for that rotation, trains it in float under
the benchmark's protocol (the sweep keeps no weights), quantizes it (BN folding, PTQ) and QAT fine-tunes it to
int8, integerizes it, runs the integer network on the test fold against its fake-quantized twin, simulates it on
the platform (L2 only unless --l3: "o.o.m." where it does not fit), and exports C and DORY ONNX checked bit for
bit against the integer interpreter. Random Forest and SVR baselines run on the benchmark's feat_fold_<i>.csv
where present, otherwise on jaxbp's PPG features (jaxbp.data.features). Writes OUT/table.json, OUT/table.md,
OUT/config.json and per model OUT/<id>/rotation_<k>/ (OUT defaults to RUN_DIR/deploy). Resumable per model and
rotation: rerun the same command.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without installing.

import jax  # noqa: E402
import numpy as np  # noqa: E402

from jaxbp import models  # noqa: E402
from jaxbp.data.features import FeatureFileError, load_feature_folds  # noqa: E402
from jaxbp.data.protocol import Scalers, make_rotation  # noqa: E402
from jaxbp.data.source import load_folds  # noqa: E402
from jaxbp.deploy import study  # noqa: E402
from jaxbp.deploy.platforms import get_platform  # noqa: E402
from jaxbp.integerize.graph import GraphError  # noqa: E402
from jaxbp.models.classic import CLASSIC_MODELS  # noqa: E402
from jaxbp.quant import QuantConfig  # noqa: E402
from jaxbp.train import FitConfig  # noqa: E402
from jaxbp.train.crossval import RotationResult  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("run_dir", type=Path, help="an experiments/sweep.py output directory")
  p.add_argument("--platform", default="gap8", help="gap8 | xpulpv2 | xpulpnn-v1 | xpulpnn-v2")
  p.add_argument("--freq-mhz", type=float, default=None, help="cluster clock (default: the platform's)")
  p.add_argument("--models", nargs="+", default=["front"],
                 help="front | all | ids ('seed', candidate indices such as 3 or c03)")
  p.add_argument("--data-dir", default=None, help="override the sweep's --data-dir (default: the run's config.json)")
  p.add_argument("--rotations", type=int, nargs="*", default=None, help="subset of the sweep's rotations")
  p.add_argument("--float-epochs", type=int, default=None, help="max float epochs (default 100; 30 synthetic)")
  p.add_argument("--patience", type=int, default=10, help="float early-stopping patience (validations)")
  p.add_argument("--qat-epochs", type=int, default=None, help="max QAT epochs (default 30; 6 synthetic)")
  p.add_argument("--qat-patience", type=int, default=5)
  p.add_argument("--qat-lr", type=float, default=1e-4)
  p.add_argument("--seed", type=int, default=0,
                 help="training seed: float init, dropout, shuffling, PTQ calibration batches and QAT (per rotation "
                      "fold_in(seed, rotation), as experiments/train_seed.py); another seed needs another --out")
  p.add_argument("--l3", action="store_true", help="allow L3 (external RAM) instead of reporting o.o.m.")
  p.add_argument("--check", type=int, default=8, help="test windows run through C/ONNX/DORY for the bit-exact check")
  p.add_argument("--no-export", action="store_true", help="skip the C / DORY ONNX export")
  p.add_argument("--redo-export", action="store_true",
                 help="rerun the export and its bit-exact check on finished rotations (after an exporter fix)")
  p.add_argument("--export-all-rotations", action="store_true",
                 help="export every rotation's network (default: each model's first rotation)")
  p.add_argument("--compile-cache", default=None,
                 help="JAX persistent compilation cache dir (default OUT/.jax_cache; '' disables): rotations "
                      "of the same architecture reuse the compiled steps")
  p.add_argument("--no-baselines", action="store_true", help="skip the Random Forest / SVR baselines")
  p.add_argument("--out", type=Path, default=None, help="output dir (default RUN_DIR/deploy)")
  p.add_argument("--seed-tables", type=Path, nargs="+", default=(),
                 help="other out dirs of this run deployed with other --seed values under the same protocol: the "
                      "table gains each model's seed-to-seed spread (over the tables that hold it, two at least)")
  return p.parse_args(argv)


def study_config(args: argparse.Namespace, dataset: str, seed_model: models.ModelConfig) -> study.StudyConfig:
  """The deployment protocol of the flags (the budget defaults depend on the dataset: smaller for smoke sets)."""
  small = dataset in ("synthetic", "mimic_sample")
  batch = models.batch_size(models.model_name(seed_model), dataset)
  return study.StudyConfig(
      platform=args.platform, freq_mhz=args.freq_mhz,
      float_fit=FitConfig(max_epochs=args.float_epochs or (30 if small else 100), patience=args.patience,
                          batch_size=batch, progress=False),
      qat_fit=FitConfig(learning_rate=args.qat_lr, max_epochs=args.qat_epochs or (6 if small else 30),
                        patience=args.qat_patience, batch_size=batch, progress=False),
      policy=QuantConfig(), seed=args.seed, l3=args.l3)


def _export_hook(n_check: int):
  from jaxbp.export.bundle import cross_check, export_graph  # pylint: disable=import-outside-toplevel

  def hook(graph, codes: np.ndarray, rdir: Path) -> dict:
    out = rdir / "export"
    summary = export_graph(graph, out, "both")
    report = cross_check(graph, {graph.inputs[0]: codes[:n_check]}, c_dir=out / "c_check")
    ok = all(r.get("bit_exact", True) for r in report.values() if isinstance(r, dict))
    return {"directory": str(out), "c_weight_bytes": summary.get("c", {}).get("weight_bytes"),
            "bit_exact": ok, "check": report}
  return hook


def _classic(kind: str, folds, spec, data_dir, out: Path, rotations, seed: int):
  """Per-rotation results of a classic baseline (resumable) and the feature source's name."""
  feats = load_feature_folds(data_dir, spec) if data_dir is not None else None
  if feats is not None:
    xs, ys, source = [f["x"] for f in feats], [np.column_stack([f["sbp"], f["dbp"]]) for f in feats], "benchmark"
  else:
    xs, source = None, "jaxbp PPG"
    ys = [np.column_stack([f.sbp, f.dbp]).astype(np.float64) for f in folds]
  d = out / "classic" / kind
  d.mkdir(parents=True, exist_ok=True)
  results, sizes = [], []
  for k in rotations:
    res = RotationResult.load(d, k)
    if res is None:
      if xs is None:
        xs = study.fold_features([f.ppg for f in folds])
      res, _ = study.classic_rotation(kind, xs, ys, spec, k, seed=seed)
      res.save(d)
    results.append(res)
    sizes.append({"params": res.info["params"], "bytes": res.info["bytes"]})
  return results, sizes, source


def _seed_table(out_dir: Path, protocol: dict) -> dict:
  """The table.json of another seed's deployment (--seed-tables), checked to share this protocol but the seed."""
  other = study._read_json(out_dir / "config.json")["study"]
  strip = lambda d: {k: v for k, v in d.items() if k != "seed"}
  if strip(other) != strip(protocol):
    raise study.StudyError(f"{out_dir / 'config.json'}: another protocol than this deployment's (beyond the seed)")
  table = study._read_json(out_dir / "table.json")
  return {**table, "seed": table.get("seed", other.get("seed"))}


def _git_commit() -> str | None:
  """HEAD's short commit ("+dirty": uncommitted changes under jaxbp/deploy/, the simulator's package); None
  outside a git checkout."""
  import subprocess  # pylint: disable=import-outside-toplevel
  root = Path(__file__).resolve().parents[1]
  try:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                          check=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "jaxbp/deploy"], cwd=root,
                           capture_output=True, text=True, check=True).stdout.strip()
  except (OSError, subprocess.CalledProcessError):
    return None
  return head + ("+dirty" if dirty else "")


def main(argv=None) -> int:
  args = parse_args(argv)
  t0 = time.perf_counter()
  run_dir = args.run_dir
  run_cfg = study._read_json(run_dir / "config.json") if (run_dir / "config.json").exists() else {"args": {}}
  results = study._read_json(run_dir / "results.json")
  dataset = results.get("dataset") or run_cfg["args"].get("dataset")
  data_dir = args.data_dir or run_cfg["args"].get("data_dir")
  spec, folds = load_folds(dataset if data_dir else None, data_dir)
  select = args.models[0] if args.models in (["front"], ["all"]) else args.models
  chosen = study.study_models(run_dir, select)
  rotations = [int(r) for r in results["rotations"]]
  if args.rotations is not None:
    bad = set(args.rotations) - set(rotations)
    if bad:
      raise study.StudyError(f"--rotations {sorted(bad)}: the sweep ran rotations {rotations}")
    rotations = list(args.rotations)
  config = study_config(args, spec.name, models.config_from_dict(results["seed_model"]))
  out = args.out or run_dir / "deploy"
  out.mkdir(parents=True, exist_ok=True)
  cache = out / ".jax_cache" if args.compile_cache is None else args.compile_cache
  if cache:
    jax.config.update("jax_compilation_cache_dir", str(cache))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
  stored = out / "config.json"
  cfg_doc = {"run_dir": str(run_dir), "dataset": dataclasses.asdict(spec), "study": config.to_dict()}
  if stored.exists():
    old = json.loads(stored.read_text())
    if {k: old.get(k) for k in ("dataset", "study")} != {k: cfg_doc[k] for k in ("dataset", "study")}:
      raise study.StudyError(f"{out} holds a deployment with another configuration ({stored}); use another --out")
  stored.write_text(json.dumps({**cfg_doc, "args": {k: str(v) for k, v in vars(args).items()},
                                "models": [{"id": m.id, "label": m.label, "reasons": m.reasons} for m in chosen],
                                "jax": jax.__version__, "backend": jax.default_backend()}, indent=1))
  scalers = Scalers.fit(folds)
  hook = None if args.no_export else _export_hook(args.check)
  timings, rows = {}, [study.naive_row(results["naive"])]
  if not args.no_baselines and spec.name != "mimic_sample":
    for kind in CLASSIC_MODELS:
      t = time.perf_counter()
      res, sizes, source = _classic(kind, folds, spec, data_dir, out, rotations, seed=0)
      rows += study.classic_rows(kind, res, sizes, source)
      timings[f"{kind}_s"] = time.perf_counter() - t
  failures = []
  for m in chosen:
    t = time.perf_counter()
    summaries, dirs = [], []
    for k in rotations:
      rdir = out / m.id / f"rotation_{k}"
      split = make_rotation(folds, spec, k, scalers)
      export = hook if (args.export_all_rotations or k == rotations[0]) else None
      finished = (rdir / "deploy.json").exists()
      try:
        s = study.deploy_rotation(m, k, split, scalers, spec.window, config, rdir, on_graph=export)
        if args.redo_export and finished and export is not None:
          s = study.redo_export(rdir, split, config, export)
      except (GraphError, ValueError) as e:  # e.g. a requant the integer kernels cannot express
        failures.append(f"{m.id} rotation {k} not deployed: {e}")
        print(f"error: {failures[-1]}", file=sys.stderr, flush=True)
        break
      print(f"{m.id} rotation {k}: float {s['mae']['float']['sbp']:.2f}/{s['mae']['float']['dbp']:.2f}, "
            f"int8 {s['mae']['int8']['sbp']:.2f}/{s['mae']['int8']['dbp']:.2f} mmHg, {s['int8_bytes']['total']} B, "
            f"{'fits' if s['deploy']['fits'] else 'o.o.m.'} {s['deploy']['latency_ms']:.3f} ms "
            f"{s['deploy']['energy_mj']:.4f} mJ" + ("" if "export" not in s else
                                                    f", export bit-exact {s['export']['bit_exact']}"), flush=True)
      summaries.append(s)
      dirs.append(rdir)
    if len(summaries) < len(rotations):
      continue
    stage = {st: study.load_results(dirs, rotations, st) for st in ("float", "int8")}
    rows += study.model_rows(m, summaries, stage)
    timings[f"{m.id}_s"] = time.perf_counter() - t
    # What the rotations took when they ran (this invocation may only have resumed them): deploy.json's totals;
    # a rotation resumed from saved weights counts only the stages of its last run.
    timings[f"{m.id}_rotations_s"] = sum(s.get("timings", {}).get("total_s", 0.0) for s in summaries)
  p = get_platform(args.platform)
  commit = _git_commit()
  notes = [f"rotations {rotations}; float: max {config.float_fit.max_epochs} epochs (patience "
           f"{config.float_fit.patience}); QAT: max {config.qat_fit.max_epochs} epochs (patience "
           f"{config.qat_fit.patience}, lr {config.qat_fit.learning_rate:g})",
           "int8 size: weights at 8 bit + int32 biases; latency/energy: mean over rotations (a NAS model's "
           "ops may differ per rotation); " + ("L2 + L3" if args.l3 else "L2 only: o.o.m. = does not fit L2"),
           f"every rotation (re)simulated by jaxbp at commit {commit or 'unknown'} (finished rotations are "
           "re-simulated on a rerun, so the cycle model is the same for all rows)"] + failures
  table = study.study_table(rows, dataset=spec.name, platform=p.name, freq_mhz=args.freq_mhz or p.freq_mhz,
                            notes=notes, seed=config.seed)
  if args.seed_tables:
    table["seed_spread"] = study.seed_spread([table] + [_seed_table(d, cfg_doc["study"]) for d in args.seed_tables])
  table["timings"] = {**timings, "wall_s": time.perf_counter() - t0}
  table["code"] = {"commit": commit, "jax": jax.__version__, "backend": jax.default_backend()}
  (out / "table.json").write_text(json.dumps(table, indent=1))
  md = study.markdown(table) + ("\n" + study.seed_markdown(table["seed_spread"]) if args.seed_tables else "")
  (out / "table.md").write_text(md)
  print(md)
  return 0


if __name__ == "__main__":
  try:
    sys.exit(main())
  except (study.StudyError, FeatureFileError, GraphError, FileNotFoundError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
