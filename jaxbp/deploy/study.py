"""The PPG study's deployment flow and table: from a sweep run to per-model float / int8 rows on a platform.

  models = study_models(run_dir, "front")                 # the seed + the fronts' extremes and knees
  summary = deploy_rotation(model, k, split, scalers, window, StudyConfig(), workdir)   # resumable
  rows = model_rows(model, [summary per rotation], [RotationResults])
  table = study_table(rows); markdown(table)

Per model and fold rotation (`deploy_rotation`): the model's config for that rotation (a NAS candidate's
choice is stored per rotation) is trained in float under the benchmark's protocol, quantized (BN folded,
PTQ calibration) and QAT fine-tuned to int8, integerized, the integer network run on the test fold and
compared with its fake-quantized twin, and simulated on the platform (L2 only by default: "o.o.m." when it
does not fit). Everything is saved as it finishes; a rerun skips finished rotations and reuses the float
and int8 variables of an interrupted one. Export (C, DORY ONNX) is wired by the caller (`on_graph`), so
this module does not import `jaxbp.export`.

Table rows: one "float" row per model (MAE SBP/DBP pooled over the rotations, params, float32 bytes) and
one "int8" row per deployed model (MAE of the *integer* network, deployed bytes, latency ms, energy mJ;
mean over rotations where the architecture differs per rotation; "o.o.m." where a rotation does not fit).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from jaxbp import integerize
from jaxbp.data.features import ppg_features
from jaxbp.data.protocol import Scalers, fold_roles
from jaxbp.data.specs import DatasetSpec
from jaxbp.deploy import zoo
from jaxbp.deploy.layers import with_uniform_bits
from jaxbp.deploy.platforms import get_platform
from jaxbp.deploy.simulator import Report, simulate
from jaxbp.integerize import from_quant
from jaxbp.models import ModelConfig, config_from_dict, config_to_dict, count_params
from jaxbp.models.classic import fit_classic
from jaxbp.nas.pareto import pick_models
from jaxbp.nas.supernet import exported_config
from jaxbp.quant import QuantConfig, model_bytes, pipeline, read_off, twin
from jaxbp.train.crossval import RotationResult, pooled_report, to_mmhg
from jaxbp.train.fit import FitConfig


class StudyError(ValueError):
  """A sweep run directory or model selection the study cannot use (names the file/field)."""


@dataclasses.dataclass(frozen=True)
class StudyConfig:
  """How each picked model is deployed.

  Attributes:
    platform: platform name (`jaxbp.deploy.platforms`).
    freq_mhz: cluster clock (None: the platform's).
    float_fit: the float training protocol.
    qat_fit: the QAT fine-tuning protocol (Adam 1e-4, early stopping on the validation MSE).
    policy: the quantization policy (int8: PACT activations, per-channel min-max weights).
    seed: training seed (per rotation: fold_in(seed, rotation), as everywhere in jaxbp).
    l3: allow L3 (external RAM); False deploys from L2 only and reports "o.o.m." when it does not fit.
  """

  platform: str = "gap8"
  freq_mhz: float | None = None
  float_fit: FitConfig = FitConfig(batch_size=32, progress=False)
  qat_fit: FitConfig = FitConfig(learning_rate=1e-4, max_epochs=30, patience=5, batch_size=32, progress=False)
  policy: QuantConfig = QuantConfig()
  seed: int = 0
  l3: bool = False

  def to_dict(self) -> dict[str, Any]:
    return json.loads(json.dumps(dataclasses.asdict(self)))


@dataclasses.dataclass(frozen=True)
class StudyModel:
  """A model of the study: its id ("seed", "c03"), a label, why it was picked and its config per rotation."""

  id: str
  label: str
  reasons: tuple[str, ...]
  configs: Mapping[int, ModelConfig]
  lam: float | None = None


def _read_json(path: Path) -> Any:
  try:
    return json.loads(path.read_text())
  except (OSError, json.JSONDecodeError) as e:
    raise StudyError(f"cannot read {path}: {e}") from None


def candidate_configs(seed: ModelConfig, candidate: Mapping[str, Any], where: str) -> dict[int, ModelConfig]:
  """{rotation: exported config} of a sweep candidate JSON (its per-rotation choices of ops)."""
  if "per_rotation" not in candidate:
    raise StudyError(f"{where}: no 'per_rotation' (not a sweep candidate file)")
  out = {}
  for r in candidate["per_rotation"]:
    try:
      out[int(r["rotation"])] = exported_config(seed, r["ops"])
    except (KeyError, ValueError) as e:
      raise StudyError(f"{where}: rotation {r.get('rotation')}: cannot rebuild the exported config: {e}") from None
  return out


def study_models(run_dir: str | Path, select: str | Sequence[str] = "front") -> list[StudyModel]:
  """The seed and the selected candidates of a sweep run directory.

  Args:
    run_dir: a `experiments/sweep.py` output (results.json, candidates/candidate_XX.json).
    select: "front" (both extremes and the knee of the SBP and DBP fronts), "all", or ids
      ("seed", "3", "c03").
  """
  run = Path(run_dir)
  results = _read_json(run / "results.json")
  for field in ("seed_model", "candidates", "rotations"):
    if field not in results:
      raise StudyError(f"{run / 'results.json'}: missing field {field!r} (not a sweep run?)")
  seed = config_from_dict(results["seed_model"])
  rotations = [int(r) for r in results["rotations"]]
  by_index = {int(c["index"]): c for c in results["candidates"]}
  if select == "front":
    picks = {p.index: p.reasons for p in pick_models(results["candidates"])}
    want_seed = True
  elif select == "all":
    picks, want_seed = {i: () for i in by_index}, True
  else:
    picks, want_seed = {}, False
    for s in select:
      if s == "seed":
        want_seed = True
        continue
      try:
        i = int(s.lstrip("c"))
      except ValueError:
        raise StudyError(f"model id {s!r}: expected 'seed' or a candidate index (e.g. 3 or c03)") from None
      if i not in by_index:
        raise StudyError(f"model id {s!r}: {run} has candidates {sorted(by_index)}")
      picks[i] = ("named",)
  models = [StudyModel("seed", "seed", ("seed",), {k: seed for k in rotations})] if want_seed else []
  for i, reasons in sorted(picks.items()):
    path = run / "candidates" / f"candidate_{i:02d}.json"
    cand = _read_json(path)
    configs = candidate_configs(seed, cand, str(path))
    missing = set(rotations) - set(configs)
    if missing:
      raise StudyError(f"{path}: no choice stored for rotations {sorted(missing)}")
    lam = float(by_index[i]["lambda"])
    models.append(StudyModel(f"c{i:02d}", f"NAS c{i:02d} (λ={lam:.1e})", tuple(reasons), configs, lam))
  return models


def _atomic_json(path: Path, obj: Any) -> None:
  tmp = path.with_suffix(path.suffix + ".tmp")
  tmp.write_text(json.dumps(obj, indent=1))
  os.replace(tmp, path)


def _max_abs_mmhg(delta: np.ndarray, scalers: Scalers, task: str) -> dict[str, float]:
  """Largest |Δ| per output of normalized network outputs, in mmHg (the scalers are affine)."""
  outs = (("sbp", scalers.sbp), ("dbp", scalers.dbp)) if task == "regression" else (("abp", scalers.abp),)
  return {k: float(np.abs(delta[..., i]).max() * (m.hi - m.lo)) for i, (k, m) in enumerate(outs)}


def deploy_rotation(model: StudyModel, rotation: int, split: Mapping[str, Any], scalers: Scalers, window: int,
                    config: StudyConfig, workdir: str | Path,
                    on_graph: Callable[[integerize.Graph, np.ndarray, Path], dict[str, Any]] | None = None,
                    ) -> dict[str, Any]:
  """float → PTQ → int8 QAT → integer graph → twin check → simulation of `model` on `rotation`. Resumable.

  Writes under `workdir`: float.msgpack, int8.msgpack, float/ int8_twin/ int8/ (test predictions as
  `RotationResult`s; "int8" is the integer network's), graph/ (the integer graph), deploy.json (this
  summary; its presence marks the rotation done; a rerun only redoes its simulation, `resimulate`).
  `on_graph(graph, test input codes, workdir)` (e.g. the C / DORY ONNX export and its bit-exact check) adds
  its dict under "export".
  """
  rdir = Path(workdir)
  rdir.mkdir(parents=True, exist_ok=True)
  done = rdir / "deploy.json"
  if done.exists():
    return resimulate(_read_json(done), window, config, done)
  cfg = model.configs[rotation]
  task = pipeline.task_of(cfg)
  t0 = time.perf_counter()
  timings: dict[str, float] = {}
  fpath = rdir / "float.msgpack"
  if fpath.exists():
    fvars = pipeline.load_variables(fpath)
  else:
    fvars, fres = pipeline.train_float(cfg, split, config.float_fit, seed=config.seed, rotation=rotation)
    pipeline.save_variables(fpath, fvars)
    timings["float_train_s"] = fres.seconds
  from jaxbp.models import build  # pylint: disable=import-outside-toplevel
  res_float = pipeline.rotation_result(build(cfg), fvars, split, scalers, task=task, rotation=rotation,
                                       batch_size=config.float_fit.batch_size, info={"stage": "float"})
  _save_result(rdir / "float", res_float)
  tw = twin(cfg, config.policy)
  qpath = rdir / "int8.msgpack"
  if qpath.exists():
    qvars = pipeline.floor_ranges(pipeline.load_variables(qpath))
  else:
    t = time.perf_counter()
    tw, qvars = pipeline.quantize(cfg, fvars, split["train"], config.policy, batch_size=config.qat_fit.batch_size,
                                  seed=config.seed)
    qvars, _ = pipeline.qat(tw, qvars, split, config.qat_fit, task=task, seed=config.seed, rotation=rotation)
    qvars = {k: v for k, v in qvars.items() if k in ("params", "gates")}
    pipeline.save_variables(qpath, qvars)
    timings["qat_s"] = time.perf_counter() - t
  res_twin = pipeline.rotation_result(tw, qvars, split, scalers, task=task, rotation=rotation,
                                      batch_size=config.qat_fit.batch_size, info={"stage": "int8 twin"})
  _save_result(rdir / "int8_twin", res_twin)
  # The integer network on the test fold, fed the twin's own input codes.
  graph = from_quant.integerize_twin(tw, qvars, window, meta={"model": model.id, "rotation": rotation})
  integerize.save(graph, rdir / "graph")
  fid, outs = from_quant.twin_fidelity(graph, tw, qvars, np.asarray(split["test"]["x"]))
  integer_out = np.asarray(outs["integer"], np.float64)
  sbp, dbp, extra = to_mmhg(integer_out, split["test"], scalers, task)
  test = split["test"]
  n = len(sbp)
  res_int = RotationResult(rotation, sbp, dbp, test["sbp"], test["dbp"], np.full(n, split["train"]["sbp"].mean()),
                           np.full(n, split["train"]["dbp"].mean()), {"stage": "int8 integer", **extra})
  _save_result(rdir / "int8", res_int)
  sim = simulate_config(cfg, window, f"{model.id}_r{rotation}", config)
  n_params = count_params(fvars["params"])
  summary = {
      "model": model.id, "rotation": rotation, "config": config_to_dict(cfg), "task": task,
      "params": n_params, "float_bytes": 4 * n_params, "int8_bytes": model_bytes(read_off(tw, qvars, window)),
      "mae": {stage: {t: pooled_report([r])[t]["mae"] for t in ("sbp", "dbp")}
              for stage, r in (("float", res_float), ("int8_twin", res_twin), ("int8", res_int))},
      "windows_without_beats": {stage: int(r.info.get("windows_without_beats", 0))
                                for stage, r in (("float", res_float), ("int8_twin", res_twin), ("int8", res_int))},
      "integer_vs_twin": {"max_abs_diff_mmhg": _max_abs_mmhg(integer_out - np.asarray(outs["twin"], np.float64),
                                                             scalers, task),
                          "worst_layer": fid.worst.to_json(), "n_examples": fid.n_examples},
      "deploy": simulation_summary(sim),
      "timings": timings,
  }
  if on_graph is not None:
    summary["export"] = on_graph(graph, np.asarray(outs["input_codes"]), rdir)
  summary["timings"]["total_s"] = time.perf_counter() - t0
  _atomic_json(done, summary)
  return summary


def redo_export(workdir: str | Path, split: Mapping[str, Any], config: StudyConfig,
                on_graph: Callable[[integerize.Graph, np.ndarray, Path], dict[str, Any]]) -> dict[str, Any]:
  """Reruns `on_graph` (export + bit-exact check) on a finished rotation's saved integer graph; updates deploy.json.

  For a rotation exported by an older exporter: the graph is loaded from `workdir/graph` and the test inputs'
  codes are recomputed from the saved int8 twin (`int8.msgpack`). The old record is kept as "export_before".
  """
  rdir = Path(workdir)
  done = rdir / "deploy.json"
  summary = _read_json(done)
  cfg = config_from_dict(summary["config"])
  tw = twin(cfg, config.policy)
  qvars = pipeline.floor_ranges(pipeline.load_variables(rdir / "int8.msgpack"))
  graph = integerize.load(rdir / "graph")
  _, outs = from_quant.twin_fidelity(graph, tw, qvars, np.asarray(split["test"]["x"]))
  out = {**summary, "export": on_graph(graph, np.asarray(outs["input_codes"]), rdir),
         "export_before": summary.get("export")}
  _atomic_json(done, out)
  return out


def simulate_config(cfg: ModelConfig, window: int, name: str, config: StudyConfig) -> Report:
  """The config's layer graph, int8 everywhere, simulated on the study's platform (L2 only unless config.l3)."""
  net = with_uniform_bits(zoo.from_config(cfg, window, name), 8)
  return simulate(net, get_platform(config.platform), freq_mhz=config.freq_mhz, l3=config.l3)


def resimulate(summary: dict[str, Any], window: int, config: StudyConfig,
               path: Path | None = None) -> dict[str, Any]:
  """A finished rotation's summary with its simulation redone by the current simulator (cheap: no training).

  A table then reads one cycle model for every rotation, even when the simulator changed between the
  rotations' runs. The old simulation, when different, is kept under "deploy_before"; `path` is rewritten.
  """
  cfg = config_from_dict(summary["config"])
  sim = simulation_summary(simulate_config(cfg, window, f"{summary['model']}_r{summary['rotation']}", config))
  if sim == summary.get("deploy"):
    return summary
  out = {**summary, "deploy": sim, "deploy_before": summary.get("deploy")}
  if path is not None:
    _atomic_json(path, out)
  return out


def simulation_summary(sim: Report) -> dict[str, Any]:
  """The JSON summary of a simulation that a table row reads (fits, reasons, latency, energy, memory)."""
  return {"platform": sim.platform, "freq_mhz": sim.freq_mhz, "fits": sim.fits, "reasons": list(sim.reasons),
          "uses_l3": sim.uses_l3, "latency_ms": sim.latency_ms, "energy_mj": sim.energy_mj, "macs": sim.macs,
          "weight_bytes": sim.weight_bytes, "peak_l2_bytes": sim.peak_l2_bytes}


def _save_result(directory: Path, res: RotationResult) -> None:
  directory.mkdir(parents=True, exist_ok=True)
  res.save(directory)


def load_results(workdirs: Sequence[Path], rotations: Sequence[int], stage: str) -> list[RotationResult]:
  """The saved `RotationResult`s of `stage` ("float", "int8_twin", "int8") of finished rotations."""
  out = []
  for d, k in zip(workdirs, rotations):
    r = RotationResult.load(Path(d) / stage, k)
    if r is None:
      raise StudyError(f"{Path(d) / stage}: no rotation_{k} results (rotation not deployed?)")
    out.append(r)
  return out


def _mean(xs: Sequence[float]) -> float:
  return float(np.mean(xs))


def model_rows(model: StudyModel, summaries: Sequence[Mapping[str, Any]],
               results: Mapping[str, Sequence[RotationResult]]) -> list[dict[str, Any]]:
  """A model's float and int8 table rows from its per-rotation summaries and saved results."""
  rep = {stage: pooled_report(results[stage]) for stage in ("float", "int8")}
  dep = [s["deploy"] for s in summaries]
  fits = all(d["fits"] for d in dep)
  common = {"id": model.id, "model": model.label, "reasons": list(model.reasons), "lambda": model.lam,
            "rotations": [s["rotation"] for s in summaries], "params": _mean([s["params"] for s in summaries])}
  no_beats = lambda r: r["n_excluded_no_beats"]
  float_row = {**common, "precision": "float32", "size_bytes": _mean([s["float_bytes"] for s in summaries]),
               "mae_sbp": rep["float"]["sbp"]["mae"], "mae_dbp": rep["float"]["dbp"]["mae"],
               "windows_without_beats": no_beats(rep["float"]), "latency_ms": None, "energy_mj": None, "fits": None}
  int_row = {**common, "precision": "int8", "size_bytes": _mean([s["int8_bytes"]["total"] for s in summaries]),
             "mae_sbp": rep["int8"]["sbp"]["mae"], "mae_dbp": rep["int8"]["dbp"]["mae"],
             "windows_without_beats": no_beats(rep["int8"]),
             "latency_ms": _mean([d["latency_ms"] for d in dep]), "energy_mj": _mean([d["energy_mj"] for d in dep]),
             "fits": fits, "oom_reasons": sorted({r for d in dep for r in d["reasons"]}),
             "max_integer_vs_twin_mmhg": max(max(s["integer_vs_twin"]["max_abs_diff_mmhg"].values())
                                             for s in summaries)}
  return [float_row, int_row]


def classic_rows(kind: str, results: Sequence[RotationResult], sizes: Sequence[Mapping[str, int]],
                 features: str) -> list[dict[str, Any]]:
  """The float row of a classic baseline ("rf" | "svr") from its per-rotation results and sizes."""
  rep = pooled_report(results)
  label = {"rf": "Random Forest", "svr": "SVR"}[kind]
  return [{"id": kind, "model": label, "reasons": [f"classic baseline on {features} features"], "lambda": None,
           "rotations": [r.rotation for r in results], "precision": "float32",
           "params": _mean([s["params"] for s in sizes]), "size_bytes": _mean([s["bytes"] for s in sizes]),
           "mae_sbp": rep["sbp"]["mae"], "mae_dbp": rep["dbp"]["mae"], "windows_without_beats": 0,
           "latency_ms": None, "energy_mj": None, "fits": None}]


def classic_rotation(kind: str, features: Sequence[np.ndarray], labels: Sequence[np.ndarray], spec: DatasetSpec,
                     rotation: int, *, seed: int = 0) -> tuple[RotationResult, dict[str, int]]:
  """A classic baseline on one rotation (test k, val k+1, train rest) of per-fold features and (N, 2) labels."""
  train, val, test = fold_roles(spec, rotation)
  xt = np.concatenate([features[i] for i in train])
  yt = np.concatenate([labels[i] for i in train])
  m = fit_classic(kind, xt, yt, features[val], labels[val], seed=seed)
  pred, y = m.predict(features[test]), labels[test]
  n = len(y)
  res = RotationResult(rotation, pred[:, 0], pred[:, 1], y[:, 0], y[:, 1], np.full(n, yt[:, 0].mean()),
                       np.full(n, yt[:, 1].mean()), {"kind": kind, "hyper": m.hyper, **m.size})
  return res, m.size


def fold_features(ppg_folds: Sequence[np.ndarray]) -> list[np.ndarray]:
  """jaxbp's PPG features (`jaxbp.data.features`) per fold of raw PPG windows."""
  return [ppg_features(x) for x in ppg_folds]


def naive_row(naive: Mapping[str, float]) -> dict[str, Any]:
  return {"id": "naive", "model": "naive (train-fold mean)", "reasons": [], "lambda": None, "rotations": [],
          "precision": "–", "params": 0, "size_bytes": 0, "mae_sbp": naive["sbp"], "mae_dbp": naive["dbp"],
          "windows_without_beats": 0, "latency_ms": None, "energy_mj": None, "fits": None}


def study_table(rows: Sequence[Mapping[str, Any]], *, dataset: str, platform: str, freq_mhz: float,
                notes: Sequence[str] = (), seed: int | None = None) -> dict[str, Any]:
  """The table document (table.json): rows in order, with the context they need to be read (`seed`: training seed)."""
  return {"dataset": dataset, "platform": platform, "freq_mhz": freq_mhz, "seed": seed,
          "columns": ["model", "precision", "params", "size_bytes", "mae_sbp", "mae_dbp", "latency_ms", "energy_mj"],
          "rows": [dict(r) for r in rows], "notes": list(notes)}


def seed_spread(tables: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
  """Seed-to-seed spread of the models of `tables[0]` deployed in at least one other of `tables` (table.json
  documents of the same run and protocol, one per training seed): per (model id, precision) the pooled MAE
  SBP/DBP of each table holding it, their mean, sample std (ddof 1), min and max; "seeds" names the tables'
  seeds used. A model whose rotations differ between tables is an error (the tables would not be comparable)."""
  if not tables:
    return []
  key = lambda r: (r["id"], r["precision"])
  by_table = [{key(r): r for r in t["rows"] if r.get("precision") in ("float32", "int8") and r["id"] not in
               ("rf", "svr", "naive")} for t in tables]
  out = []
  for k, first in by_table[0].items():
    held = [(t, bt[k]) for t, bt in zip(tables, by_table) if k in bt]
    if len(held) < 2:
      continue
    rows = [r for _, r in held]
    if any(list(r["rotations"]) != list(first["rotations"]) for r in rows):
      raise StudyError(f"model {k[0]} ({k[1]}): rotations differ between tables "
                       f"({[list(r['rotations']) for r in rows]}); deploy the same rotations for every seed")
    entry: dict[str, Any] = {"id": k[0], "model": first["model"], "precision": k[1],
                             "seeds": [t.get("seed") for t, _ in held], "rotations": list(first["rotations"])}
    for target in ("sbp", "dbp"):
      v = np.array([float(r[f"mae_{target}"]) for r in rows])
      entry[f"mae_{target}"] = v.tolist()
      entry[f"mean_{target}"] = float(v.mean())
      entry[f"std_{target}"] = float(v.std(ddof=1)) if len(v) > 1 else 0.0
      entry[f"min_{target}"], entry[f"max_{target}"] = float(v.min()), float(v.max())
    out.append(entry)
  return out


def seed_markdown(spread: Sequence[Mapping[str, Any]]) -> str:
  """The seed spread (`seed_spread`) as a markdown table: mean ± std [min–max] over training seeds."""
  if not spread:
    return ""
  cell = lambda e, t: (f"{e[f'mean_{t}']:.2f} ± {e[f'std_{t}']:.2f} [{e[f'min_{t}']:.2f}–{e[f'max_{t}']:.2f}]")
  lines = ["Seed-to-seed spread (same protocol, pooled 5-fold MAE in mmHg: mean ± sample std [min–max] over "
           "training seeds)", "", "| model | precision | seeds | MAE SBP | MAE DBP |", "|---|---|---|---|---|"]
  for e in spread:
    seeds = ", ".join("?" if s is None else str(s) for s in e["seeds"])
    lines.append(f"| {e['model']} | {e['precision']} | {seeds} | {cell(e, 'sbp')} | {cell(e, 'dbp')} |")
  return "\n".join(lines) + "\n"


def _cell(row: Mapping[str, Any], key: str) -> str:
  v = row.get(key)
  if key in ("latency_ms", "energy_mj"):
    if row.get("fits") is False:
      return "o.o.m."
    if v is None:
      return "–"
    return f"{v:.3f}" if key == "latency_ms" else f"{v:.4f}"
  if v is None or (isinstance(v, float) and not math.isfinite(v)):
    return "–"
  if key in ("params", "size_bytes"):
    return f"{v:,.0f}"
  if key.startswith("mae"):
    return f"{v:.2f}"
  return str(v)


def markdown(table: Mapping[str, Any]) -> str:
  """The table as markdown: one row per (model, precision); "o.o.m." where a model does not fit the memory."""
  head = ["model", "precision", "params", "size [B]", "MAE SBP", "MAE DBP", "latency [ms]", "energy [mJ]"]
  keys = ["model", "precision", "params", "size_bytes", "mae_sbp", "mae_dbp", "latency_ms", "energy_mj"]
  lines = [f"Deployment table: {table['dataset']}, int8 on {table['platform']} @ {table['freq_mhz']:g} MHz "
           "(MAE in mmHg pooled over the test folds; int8 MAE is the integer network's)", "",
           "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
  for r in table["rows"]:
    cells = [_cell(r, k) for k in keys]
    if r.get("reasons") and r.get("id") not in ("seed", "rf", "svr", "naive"):
      cells[0] += f" [{', '.join(r['reasons'])}]"
    lines.append("| " + " | ".join(cells) + " |")
  lines += [""] + [f"- {n}" for n in table.get("notes", ())]
  return "\n".join(lines) + "\n"
