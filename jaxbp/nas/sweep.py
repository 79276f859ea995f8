"""λ sweeps: search N supernets (one per λ) at once, export, fine-tune, evaluate, Pareto fronts.

Per fold rotation k (test k, val k+1, train rest):
  1. bi-level search of all candidates together with the `Engine` (checkpointed every epoch);
  2. export each candidate (argmax α) with the weights of its chosen branches;
  3. fine-tune each exported network under the benchmark's protocol on rotation k, predict its test fold.
A candidate's metrics pool its test predictions over the rotations, as the benchmark does. Everything
is written under `out_dir` as it finishes, and a rerun resumes from what is there.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any, Sequence

import flax.serialization
import jax
import numpy as np
from tqdm.auto import tqdm

from jaxbp import cost as costs
from jaxbp.data.batching import batches
from jaxbp.data.benchmark_files import Fold
from jaxbp.data.protocol import Scalers, make_rotation, n_rotations
from jaxbp.data.specs import DatasetSpec
from jaxbp.models import ModelConfig, build, config_to_dict
from jaxbp.models.configs import TASKS, model_name
from jaxbp.nas import search as search_lib
from jaxbp.nas.supernet import export, supernet
from jaxbp.train.crossval import RotationResult, pooled_report, run_rotation
from jaxbp.train.engine import Engine, EngineConfig, resolve_auto
from jaxbp.train.fit import FitConfig

DEFAULT_LAMBDAS = tuple(float(x) for x in np.logspace(-11, -7, 18))


@dataclasses.dataclass(frozen=True)
class SweepConfig:
  """A λ sweep.

  Attributes:
    lambdas: the cost weights, one candidate each.
    cost: "params", "macs" or "bytes" (weights at 8 bit).
    search_epochs: epochs of bi-level search per rotation.
    batch_size: search batch size (train and validation batches).
    search: optimizer / temperature / choice-mode settings.
    finetune: the protocol for fine-tuning exported networks (and the seed).
    engine: how the candidates are batched/sharded.
    seed: base seed (per-candidate keys are fold_in(seed, candidate)).
    rotations: fold rotations to run (None: all of the dataset's protocol).
    train_seed: also train the seed network under the same protocol, as the reference point.
  """

  lambdas: tuple[float, ...] = DEFAULT_LAMBDAS
  cost: str = "params"
  search_epochs: int = 20
  batch_size: int = 32
  search: search_lib.SearchConfig = search_lib.SearchConfig()
  finetune: FitConfig = FitConfig(batch_size=32)
  engine: EngineConfig = EngineConfig()
  seed: int = 0
  rotations: tuple[int, ...] | None = None
  train_seed: bool = True

  def to_dict(self) -> dict[str, Any]:
    return json.loads(json.dumps(dataclasses.asdict(self)))


def make_cost(name: str) -> costs.Cost:
  if name not in costs.COSTS:
    raise ValueError(f"unknown cost {name!r}; expected one of {sorted(costs.COSTS)}")
  return costs.COSTS[name]()


def _atomic_write(path: Path, data: bytes) -> None:
  tmp = path.with_suffix(path.suffix + ".tmp")
  tmp.write_bytes(data)
  os.replace(tmp, path)


def _write_json(path: Path, obj: Any) -> None:
  _atomic_write(path, json.dumps(obj, indent=2).encode())


def search_rotation(model, shapes, split, spec: DatasetSpec, config: SweepConfig, rotation: int, workdir: Path,
                    progress: bool = True) -> dict[str, Any]:
  """Bi-level search of every candidate on one rotation; returns stacked final variables (host numpy).

  Checkpoints `workdir/search.ckpt` after every epoch; resumes from it.
  """
  task = TASKS[model_name(model.config)]
  n = len(config.lambdas)
  step = search_lib.make_search_step(model, shapes, make_cost(config.cost), config.search, task)
  base = jax.random.fold_in(jax.random.key(config.seed), rotation)
  keys = jax.vmap(lambda i: jax.random.fold_in(base, i))(np.arange(n))
  init = jax.jit(jax.vmap(lambda k: search_lib.init_state(model, k, spec.window, config.search)))
  state = jax.device_get(init(keys))
  ckpt, start_epoch = workdir / "search.ckpt", 0
  if ckpt.exists():
    restored = flax.serialization.msgpack_restore(ckpt.read_bytes())
    state = flax.serialization.from_state_dict(state, restored["state"])
    start_epoch = int(restored["epoch"])
  lams = np.asarray(config.lambdas, np.float32)
  chosen = workdir / "engine.json"
  if chosen.exists():  # a resumed rotation continues with the strategy it started with
    engine_config = dataclasses.replace(config.engine, strategy=json.loads(chosen.read_text())["strategy"])
  else:  # "auto": time both strategies on this rotation's own state and data
    probe = (next(batches(split["train"], config.batch_size, seed=0)), next(batches(split["val"], config.batch_size)))
    engine_config, why = resolve_auto(step, n, state, probe, (lams, keys), config.engine, n_shared=2)
    _write_json(chosen, why)
  engine = Engine(step, n, engine_config, n_shared=2)
  groups = engine.groups(state)
  history = json.loads((workdir / "search_history.json").read_text()) if start_epoch else []
  bar = tqdm(range(start_epoch, config.search_epochs), desc=f"search rotation {rotation} ({n} candidates)",
             disable=not progress, initial=start_epoch, total=config.search_epochs, leave=False)
  for epoch in bar:
    temperature = config.search.temperature_at(epoch, config.search_epochs)
    groups = [search_lib.set_temperature(g, temperature) for g in groups]
    ep_seed = (config.seed * 1000 + rotation) * 10_000 + epoch
    val_iter = _cycle(split["val"], config.batch_size, ep_seed + 1)
    metrics = []
    for tb in batches(split["train"], config.batch_size, seed=ep_seed):
      vb = next(val_iter)
      groups, m = engine.step(groups, (tb, vb), (lams, keys))
      metrics.append(m)
    m = jax.device_get(jax.tree.map(lambda *xs: np.mean(np.stack(xs), axis=0), *metrics))
    history.append({"epoch": epoch + 1, "temperature": temperature,
                    **{k: np.asarray(v).tolist() for k, v in m.items()}})
    bar.set_postfix(val=f"{np.mean(m['val_mse']):.4f}")
    state = engine.stacked(groups)
    _write_json(workdir / "search_history.json", history)
    _atomic_write(ckpt, flax.serialization.msgpack_serialize(
        {"epoch": epoch + 1, "state": flax.serialization.to_state_dict(state)}))
  bar.close()
  state = engine.stacked(groups)
  return {"params": state.params, "arch": state.arch, "nas_state": state.nas_state, **state.model_state}


def _cycle(split, batch_size: int, seed: int):
  while True:
    yield from batches(split, batch_size, seed=seed)
    seed += 1


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
  """Indices of the points not dominated in (cost, error), both minimized, sorted by cost."""
  order = sorted(range(len(points)), key=lambda i: (points[i][0], points[i][1]))
  front, best = [], np.inf
  for i in order:
    if points[i][1] < best:
      front.append(i)
      best = points[i][1]
  return front


def run_sweep(folds: Sequence[Fold], spec: DatasetSpec, seed_config: ModelConfig, config: SweepConfig,
              out_dir: str | Path, progress: bool = True) -> dict[str, Any]:
  """Runs (or resumes) the whole sweep; writes per-candidate JSON, results.json and pareto.json."""
  out = Path(out_dir)
  out.mkdir(parents=True, exist_ok=True)
  (out / "candidates").mkdir(exist_ok=True)
  stored = out / "sweep_config.json"
  # Which rotations to run is not part of a sweep's identity: finished rotations are reused by any rerun.
  sweep_dict = {k: v for k, v in config.to_dict().items() if k != "rotations"}
  cfg_dict = {"sweep": sweep_dict, "dataset": dataclasses.asdict(spec), "seed_model": config_to_dict(seed_config)}
  if stored.exists():
    old = json.loads(stored.read_text())
    old.get("sweep", {}).pop("rotations", None)
    if old != cfg_dict:
      raise ValueError(f"{out} holds a sweep with a different configuration ({stored}); "
                       "use another --out or delete it")
  _write_json(stored, cfg_dict)
  scalers = Scalers.fit(folds)
  rotations = list(range(n_rotations(spec))) if config.rotations is None else list(config.rotations)
  model = supernet(seed_config, config.search.mode, config.search.ops)
  shapes = costs.trace(model, spec.window)
  timings: dict[str, float] = {}
  cand_results: dict[int, list[RotationResult]] = {i: [] for i in range(len(config.lambdas))}
  cand_info: dict[int, list[dict[str, Any]]] = {i: [] for i in range(len(config.lambdas))}
  seed_results: list[RotationResult] = []
  for k in rotations:
    rdir = out / f"rotation_{k}"
    rdir.mkdir(exist_ok=True)
    split = make_rotation(folds, spec, k, scalers)
    t0 = time.perf_counter()
    pending = [i for i in range(len(config.lambdas))
               if RotationResult.load(rdir / f"candidate_{i:02d}", k) is None]
    if pending:
      final = search_rotation(model, shapes, split, spec, config, k, rdir, progress)
      timings[f"search_rotation_{k}_s"] = time.perf_counter() - t0
      t0 = time.perf_counter()
      _finetune_all(pending, final, folds, spec, seed_config, shapes, config, k, scalers, rdir, progress)
      timings[f"finetune_rotation_{k}_s"] = time.perf_counter() - t0
    for i in range(len(config.lambdas)):
      res = RotationResult.load(rdir / f"candidate_{i:02d}", k)
      cand_results[i].append(res)
      cand_info[i].append(res.info)
    if config.train_seed:
      sdir = rdir / "seed_network"
      res = RotationResult.load(sdir, k) if sdir.exists() else None
      if res is None:
        res = run_rotation(folds, spec, seed_config, config.finetune, k, scalers, seed=config.seed)
        sdir.mkdir(exist_ok=True)
        res.save(sdir)
      seed_results.append(res)
  return _summarize(out, config, seed_config, spec, rotations, cand_results, cand_info, seed_results, timings)


def _finetune_all(pending, final, folds, spec, seed_config, shapes, config, rotation, scalers, rdir, progress):
  """Exports and fine-tunes the `pending` candidates, one per device at a time (threads), saving each."""
  devices = jax.devices()
  cost_fn = make_cost(config.cost)
  finetune = dataclasses.replace(config.finetune, progress=False)

  def one(job: int, i: int) -> int:
    with jax.default_device(devices[job % len(devices)]):
      variables = jax.tree.map(lambda x: x[i], final)
      exp_cfg, exp_vars, choice = export(seed_config, variables, shapes)
      res = run_rotation(folds, spec, exp_cfg, finetune, rotation, scalers, seed=config.seed,
                         init_fn=lambda _, __: exp_vars)
      res.info.update(ops=list(exp_cfg.ops), choice=choice, lam=config.lambdas[i],
                      **_exact_counts(exp_cfg, spec.window),
                      expected_cost=float(cost_fn(variables["arch"], shapes)))
      cdir = rdir / f"candidate_{i:02d}"
      cdir.mkdir(exist_ok=True)
      res.save(cdir)
    return i

  bar = tqdm(total=len(pending), desc=f"fine-tune rotation {rotation}", disable=not progress, leave=False)
  with concurrent.futures.ThreadPoolExecutor(max_workers=len(devices)) as pool:
    for fut in concurrent.futures.as_completed([pool.submit(one, j, i) for j, i in enumerate(pending)]):
      fut.result()
      bar.update()
  bar.close()


def _exact_counts(config: ModelConfig, window: int) -> dict[str, int]:
  return costs.exact_counts(costs.trace(build(config), window))


def _summarize(out, config, seed_config, spec, rotations, cand_results, cand_info, seed_results, timings):
  candidates = []
  for i, lam in enumerate(config.lambdas):
    infos = cand_info[i]
    rep = pooled_report(cand_results[i])
    c = {"index": i, "lambda": lam, "cost": config.cost,
         "params": float(np.mean([x["params"] for x in infos])),
         "macs": float(np.mean([x["macs"] for x in infos])),
         "per_rotation": [{"rotation": x["rotation"], "ops": x["choice"], "params": x["params"], "macs": x["macs"],
                           "best_epoch": x["best_epoch"], "expected_cost": x["expected_cost"]} for x in infos],
         "mae_sbp": rep["sbp"]["mae"], "mae_dbp": rep["dbp"]["mae"], "metrics": rep}
    _write_json(out / "candidates" / f"candidate_{i:02d}.json", c)
    candidates.append(c)
  seed = None
  if seed_results:
    rep = pooled_report(seed_results)
    seed = {**_exact_counts(seed_config, spec.window),
            "mae_sbp": rep["sbp"]["mae"], "mae_dbp": rep["dbp"]["mae"], "metrics": rep}
  pareto = {}
  for target in ("sbp", "dbp"):
    pts = [(c["params"], c[f"mae_{target}"]) for c in candidates]
    pareto[target] = [candidates[j]["index"] for j in pareto_front(pts)]
  naive = {t: candidates[0]["metrics"][t]["mae_naive"] for t in ("sbp", "dbp")}
  result = {"dataset": spec.name, "seed_model": config_to_dict(seed_config), "rotations": rotations,
            "cost": config.cost, "seed": seed, "naive": naive, "candidates": [
                {k: v for k, v in c.items() if k not in ("metrics", "per_rotation")} for c in candidates],
            "pareto": pareto, "timings": timings}
  _write_json(out / "pareto.json", {"seed": seed, "front": {
      t: [{k: candidates[j][k] for k in ("index", "lambda", "params", "macs", "mae_sbp", "mae_dbp")}
          for j in idx] for t, idx in pareto.items()}})
  _write_json(out / "results.json", result)
  return result
