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
from typing import Any, Callable, Sequence

import flax.serialization
import jax
import numpy as np
from tqdm.auto import tqdm

from jaxbp import cost as costs
from jaxbp.data.batching import num_batches, padded_batches
from jaxbp.data.benchmark_files import Fold
from jaxbp.data.protocol import Scalers, make_rotation, n_rotations
from jaxbp.data.specs import DatasetSpec
from jaxbp.models import ModelConfig, build, config_to_dict
from jaxbp.models.configs import TASKS, model_name
from jaxbp.nas import search as search_lib
from jaxbp.nas.pareto import pareto_front
from jaxbp.nas.supernet import choices, exported_config, inherit, supernet
from jaxbp.train.crossval import (RotationResult, fit_seed, pooled_report, precompile_rotation, rotation_result,
                                  run_rotation)
from jaxbp.train.engine import Engine, EngineConfig, resolve_auto, stack, step_chunks, valid_steps
from jaxbp.train import precompile, programs
from jaxbp.train.fit_many import fit_many, precompile_many, predict_many
from jaxbp.train.memory import peak_rss
from jaxbp.train.programs import compile_seconds
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


def make_cost(name: str, cost: costs.Cost | None = None) -> costs.Cost:
  """The named architecture cost, or `cost` itself when the caller built one (e.g. a platform's expected
  latency, `jaxbp.freebits.latency_cost.supernet_latency_cost`; then `name` only records it)."""
  if cost is not None:
    return cost
  if name not in costs.COSTS:
    raise ValueError(f"unknown cost {name!r}; expected one of {sorted(costs.COSTS)} (a latency cost is built "
                     "by the caller and passed as `cost`)")
  return costs.COSTS[name]()


def _atomic_write(path: Path, data: bytes) -> None:
  tmp = path.with_suffix(path.suffix + ".tmp")
  tmp.write_bytes(data)
  os.replace(tmp, path)


def _write_json(path: Path, obj: Any) -> None:
  _atomic_write(path, json.dumps(obj, indent=2).encode())


def search_rotation(model, shapes, split, spec: DatasetSpec, config: SweepConfig, rotation: int, workdir: Path,
                    progress: bool = True, *, step=None, candidates: Sequence[int] | None = None,
                    tag: str = "", ahead: concurrent.futures.Future | None = None
                    ) -> tuple[dict[str, Any], dict[str, Any]]:
  """Bi-level search of the `candidates` (default all) on one rotation; returns (stacked final variables as
  host numpy, the engine record).

  `step` is the search step (build it once per sweep: its compiled program is then reused by every rotation).
  Candidate i keeps its global key fold_in(key(seed, rotation), i) and λ_i whatever subset runs. Checkpoints
  `workdir/search{tag}.ckpt` after every epoch; resumes from it. `ahead`: the background compilation of the
  search program (`precompile_search`), awaited before the program is first needed (not compiled twice).
  """
  task = TASKS[model_name(model.config)]
  idx = np.arange(len(config.lambdas)) if candidates is None else np.asarray(candidates)
  n = len(idx)
  if step is None:
    step = search_step(model, shapes, config, task)
  lams, keys = _per_candidate(config, rotation, idx)
  state = _initial_states(model, spec, config, keys)
  ckpt, start_epoch = workdir / f"search{tag}.ckpt", 0
  if ckpt.exists():
    restored = flax.serialization.msgpack_restore(ckpt.read_bytes())
    try:
      state = flax.serialization.from_state_dict(state, restored["state"])
    except (ValueError, KeyError, TypeError) as e:  # e.g. written by a version with another optimizer state
      raise ValueError(f"{ckpt}: this search checkpoint does not match the search state of this version "
                       f"({type(e).__name__}: {e}); delete it to restart rotation {rotation}'s search") from None
    start_epoch = int(restored["epoch"])
  k = _search_steps_per_call(split, config)
  if ahead is not None:
    ahead.result()
  chosen = workdir / f"engine{tag}.json"
  if chosen.exists():  # a resumed rotation continues with the strategy (and chunking) it started with
    why = json.loads(chosen.read_text())
    engine_config = dataclasses.replace(config.engine, strategy=why["strategy"],
                                        chunk_size=why.get("chunk_size", config.engine.chunk_size),
                                        threads=why.get("threads", config.engine.threads))
  else:  # "auto": time both strategies on this rotation's own state and data, within the memory budget
    engine_config, why = _search_engine(step, state, split, config, (lams, keys), k)
    _write_json(chosen, why)
  engine = Engine(step, n, engine_config, n_shared=2)
  groups = engine.groups(state)
  history = json.loads((workdir / f"search_history{tag}.json").read_text()) if start_epoch else []
  bar = tqdm(range(start_epoch, config.search_epochs), desc=f"search rotation {rotation} ({n} candidates)",
             disable=not progress, initial=start_epoch, total=config.search_epochs, leave=False)
  for epoch in bar:
    temperature = config.search.temperature_at(epoch, config.search_epochs)
    groups = [search_lib.set_temperature(g, temperature) for g in groups]
    ep_seed = (config.seed * 1000 + rotation) * 10_000 + epoch
    val_iter = _cycle(split["val"], config.batch_size, ep_seed + 1)
    metrics, valids = [], []
    for args in step_chunks(((tb, next(val_iter)) for tb in padded_batches(
        split["train"], config.batch_size, seed=ep_seed)), k):
      groups, m = engine.run(groups, args, (lams, keys))
      metrics.append(m)
      valids.append(args[0])
    m = jax.tree.map(lambda x: np.mean(x, axis=1), valid_steps(metrics, valids))
    history.append({"epoch": epoch + 1, "temperature": temperature,
                    **{k: np.asarray(v).tolist() for k, v in m.items()}})
    bar.set_postfix(val=f"{np.mean(m['val_mse']):.4f}")
    state = engine.stacked(groups)
    _write_json(workdir / f"search_history{tag}.json", history)
    _atomic_write(ckpt, flax.serialization.msgpack_serialize(
        {"epoch": epoch + 1, "state": flax.serialization.to_state_dict(state)}))
  bar.close()
  state = engine.stacked(groups)
  return state.variables, why


def _candidate_keys(config: SweepConfig, rotation: int, idx: np.ndarray) -> jax.Array:
  """Candidate i's key fold_in(key(seed, rotation), i), (n,) typed keys."""
  base = jax.random.fold_in(jax.random.key(config.seed), rotation)
  return jax.vmap(lambda i: jax.random.fold_in(base, i))(idx)


def _per_candidate(config: SweepConfig, rotation: int, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """The search step's per-candidate arguments: (λ (n,), key data (n, 2) uint32 on the host, the same bits as
  the typed keys: the engine slices host arrays without compiling an indexing program)."""
  keys = np.asarray(jax.random.key_data(_candidate_keys(config, rotation, idx)))
  return np.asarray(config.lambdas, np.float32)[idx], keys


def _initial_states(model, spec: DatasetSpec, config: SweepConfig, keys: np.ndarray) -> search_lib.SearchState:
  """Stacked host initial search states of the candidates with key data `keys` (n, 2): one compiled
  single-candidate program called per candidate (its vmapped twin compiled 2x longer: 3.2 vs 1.6 s)."""
  init = programs.cached_jit(("search_init", model, spec.window, config.search), lambda: lambda raw: (
      search_lib.init_state(model, jax.random.wrap_key_data(raw), spec.window, config.search)))
  return stack([init(raw) for raw in keys])


def _search_steps_per_call(split, config: SweepConfig) -> int:
  return config.engine.steps_for(num_batches(len(split["train"]["x"]), config.batch_size))


def _search_engine(step, state, split, config: SweepConfig, per, k: int) -> tuple[EngineConfig, dict[str, Any]]:
  """The search's resolved engine config and its record (strategy, chunking, threads, memory plan)."""
  engine_config, why = resolve_auto(step, len(per[0]), state, _search_probe(split, config), per, config.engine,
                                    n_shared=2, scan_steps=k)
  return engine_config, {**why, "chunk_size": engine_config.chunk_size, "threads": engine_config.threads}


def _search_probe(split, config: SweepConfig) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
  """One step's shared arguments (train batch, validation batch): shapes for planning and compiling."""
  return (next(padded_batches(split["train"], config.batch_size, seed=0)),
          next(padded_batches(split["val"], config.batch_size)))


def precompile_search(model, split, spec: DatasetSpec, config: SweepConfig, rotation: int, step,
                      candidates: Sequence[int]) -> None:
  """Compiles the program `search_rotation` will run for these arguments (no training; for
  `jaxbp.train.precompile.ahead`, while the initial states are computed)."""
  idx = np.asarray(candidates)
  like = jax.eval_shape(jax.vmap(lambda k: search_lib.init_state(model, k, spec.window, config.search)),
                        _candidate_keys(config, rotation, idx))
  state = jax.tree.map(lambda a: np.zeros(a.shape, a.dtype), like)
  per = _per_candidate(config, rotation, idx)
  k = _search_steps_per_call(split, config)
  engine_config, _ = _search_engine(step, state, split, config, per, k)
  Engine(step, len(idx), engine_config, n_shared=2).lower(state, _search_probe(split, config), per, k).compile()


def search_step(model, shapes, config: SweepConfig, task: str, cost: costs.Cost | None = None):
  """The sweep's search step for `model` (a stable function object: one compiled program per sweep)."""
  return search_lib.make_search_step(model, shapes, make_cost(config.cost, cost), config.search, task)


def _cycle(split, batch_size: int, seed: int):
  while True:
    yield from padded_batches(split, batch_size, seed=seed)
    seed += 1


def run_sweep(folds: Sequence[Fold], spec: DatasetSpec, seed_config: ModelConfig, config: SweepConfig,
              out_dir: str | Path, progress: bool = True, *, process_index: int = 0, process_count: int = 1,
              barrier: Callable[[str], None] | None = None, cost: costs.Cost | None = None
              ) -> dict[str, Any] | None:
  """Runs (or resumes) the whole sweep; writes per-candidate JSON, results.json and pareto.json.

  Several processes (e.g. `jax.distributed`, one per host) share a sweep: process p searches and fine-tunes
  candidates i with i % process_count == p into the same `out_dir` (a shared file system), trains the seed
  network if it is process 0, waits at `barrier(name)` for the others, and process 0 writes the summary (the
  others return None). Each candidate's result is the same whichever process ran it. `cost` replaces the named
  `config.cost` (which then only labels it, e.g. "latency:gap8").
  """
  if not 0 <= process_index < process_count:
    raise ValueError(f"process index {process_index} outside [0, {process_count})")
  out = Path(out_dir)
  out.mkdir(parents=True, exist_ok=True)
  (out / "candidates").mkdir(exist_ok=True)
  stored = out / "sweep_config.json"
  # Which rotations to run is not part of a sweep's identity: finished rotations are reused by any rerun.
  sweep_dict = {k: v for k, v in config.to_dict().items() if k != "rotations"}
  sweep_dict["engine"] = {k: v for k, v in sweep_dict["engine"].items() if k == "strategy"}  # how, not what
  cfg_dict = {"sweep": sweep_dict, "dataset": dataclasses.asdict(spec), "seed_model": config_to_dict(seed_config)}
  if stored.exists():
    old = json.loads(stored.read_text())
    old.get("sweep", {}).pop("rotations", None)
    old_engine = old.get("sweep", {}).get("engine", {})
    old.get("sweep", {})["engine"] = {k: v for k, v in old_engine.items() if k == "strategy"}
    if old != cfg_dict:
      raise ValueError(f"{out} holds a sweep with a different configuration ({stored}); "
                       "use another --out or delete it")
  if process_index == 0:
    _write_json(stored, cfg_dict)
  scalers = Scalers.fit(folds)
  rotations = list(range(n_rotations(spec))) if config.rotations is None else list(config.rotations)
  model = supernet(seed_config, config.search.mode, config.search.ops)
  shapes = costs.trace(model, spec.window)
  task = TASKS[model_name(seed_config)]
  step = search_step(model, shapes, config, task, cost)  # one program for every rotation
  n = len(config.lambdas)
  mine = [i for i in range(n) if i % process_count == process_index]
  tag = "" if process_count == 1 else f"_p{process_index}"
  timings: dict[str, float] = {}
  engines: dict[str, Any] = {}
  ahead = {"search": False, "finetune": False, "seed": False}  # programs already compiling in the background
  for k in rotations:
    rdir = out / f"rotation_{k}"
    rdir.mkdir(exist_ok=True)
    split = make_rotation(folds, spec, k, scalers)
    t0, c0 = time.perf_counter(), compile_seconds()
    pending = [i for i in mine if RotationResult.load(rdir / f"candidate_{i:02d}", k) is None]
    sdir = rdir / "seed_network"
    seed_pending = config.train_seed and process_index == 0 and RotationResult.load(sdir, k) is None
    # Each kind of program once: every rotation reuses them.
    n_ahead, seed_ahead = (0 if ahead["finetune"] else len(pending)), seed_pending and not ahead["seed"]
    search_ahead = None
    if pending and not ahead["search"]:  # the search program first: the search waits for it
      search_ahead = precompile.ahead("the search program", lambda: precompile_search(
          model, split, spec, config, k, step, mine))
      ahead["search"] = True
    if n_ahead or seed_ahead:
      _precompile_ahead(model, seed_config, spec, split, config, k, n_ahead, seed_network=seed_ahead)
      ahead.update(finetune=ahead["finetune"] or bool(n_ahead), seed=ahead["seed"] or seed_ahead)
    if pending:
      final, why = search_rotation(model, shapes, split, spec, config, k, rdir, progress, step=step,
                                   candidates=mine, tag=tag, ahead=search_ahead)
      engines[f"search_rotation_{k}"] = why
      timings[f"search_rotation_{k}_s"] = time.perf_counter() - t0
      timings[f"search_rotation_{k}_compile_s"] = compile_seconds() - c0
      t0, c0 = time.perf_counter(), compile_seconds()
      sel = [mine.index(i) for i in pending]
      engines[f"finetune_rotation_{k}"] = _finetune_all(
          pending, jax.tree.map(lambda x: x[sel], final), split, spec, seed_config, shapes, config, k, scalers,
          rdir, progress, cost)
      timings[f"finetune_rotation_{k}_s"] = time.perf_counter() - t0
      timings[f"finetune_rotation_{k}_compile_s"] = compile_seconds() - c0
    if seed_pending:
      t0, c0 = time.perf_counter(), compile_seconds()
      res = run_rotation(folds, spec, seed_config, config.finetune, k, scalers, seed=config.seed)
      sdir.mkdir(exist_ok=True)
      res.save(sdir)
      timings[f"seed_rotation_{k}_s"] = time.perf_counter() - t0
      timings[f"seed_rotation_{k}_compile_s"] = compile_seconds() - c0
  if barrier is not None:
    barrier("jaxbp-sweep-finished")
  if process_index != 0:
    return None
  cand_results: dict[int, list[RotationResult]] = {i: [] for i in range(n)}
  seed_results: list[RotationResult] = []
  for k in rotations:
    rdir = out / f"rotation_{k}"
    for i in range(n):
      res = RotationResult.load(rdir / f"candidate_{i:02d}", k)
      if res is None:
        raise RuntimeError(f"{rdir / f'candidate_{i:02d}'}: no result for rotation {k} (did every process run?)")
      cand_results[i].append(res)
    if config.train_seed:
      seed_results.append(RotationResult.load(rdir / "seed_network", k))
  cand_info = {i: [r.info for r in rs] for i, rs in cand_results.items()}
  return _summarize(out, config, seed_config, spec, rotations, cand_results, cand_info, seed_results, timings,
                    engines)


def _precompile_ahead(model, seed_config: ModelConfig, spec: DatasetSpec, split, config: SweepConfig, rotation: int,
                      n: int, *, seed_network: bool) -> None:
  """Starts compiling the fine-tune (and seed network) programs in the background while the search compiles
  and runs (`jaxbp.train.precompile`): same structures, shapes and settings as `_finetune_all` and
  `run_rotation` will use; every rotation reuses them."""
  if n:
    state = jax.eval_shape(lambda k: search_lib.init_state(model, k, spec.window, config.search), jax.random.key(0))
    like = jax.tree.map(lambda a: np.zeros((n, *a.shape), a.dtype), state.variables)  # `final`'s structure
    frozen = supernet(seed_config, "frozen", config.search.ops)
    finetune = dataclasses.replace(config.finetune, progress=False)
    precompile.ahead("the fine-tune programs", lambda: precompile_many(
        frozen, like, split["train"], split["val"], finetune, task=TASKS[model_name(seed_config)],
        seed=fit_seed(config.seed, rotation), engine=config.engine))
  if seed_network:
    precompile.ahead("the seed network's programs", lambda: precompile_rotation(
        split, spec, seed_config, config.finetune, rotation, seed=config.seed))


def _finetune_all(pending, final, split, spec, seed_config, shapes, config, rotation, scalers, rdir, progress,
                  cost=None):
  """Fine-tunes the `pending` candidates together (`fit_many` over the supernet with frozen choices: one
  program for every architecture), predicts their test fold, and saves each with its exported network (the
  real, smaller config and the weights of its chosen branches). Returns the engine record."""
  task = TASKS[model_name(seed_config)]
  cost_fn = make_cost(config.cost, cost)
  finetune = dataclasses.replace(config.finetune, progress=progress)
  frozen = supernet(seed_config, "frozen", config.search.ops)
  results, why = fit_many(frozen, final, split["train"], split["val"], finetune, task=task,
                          seed=fit_seed(config.seed, rotation), engine=config.engine,
                          desc=f"fine-tune rotation {rotation} ({len(pending)} candidates)")
  t0 = time.perf_counter()
  best = stack([r.variables for r in results])
  preds = predict_many(frozen, best, split["test"], finetune.batch_size, task,
                       dataclasses.replace(config.engine, strategy=why["strategy"], chunk_size=why.get("chunk_size")))
  predict_s = (time.perf_counter() - t0) / len(pending)
  expected = np.asarray(jax.jit(jax.vmap(lambda arch: cost_fn(arch, shapes)))(final["arch"]))  # one program
  for j, i in enumerate(pending):
    variables = results[j].variables
    choice = choices(variables["arch"], shapes)
    exp_cfg = exported_config(seed_config, choice)
    exp_vars = jax.device_get(inherit(variables, shapes, choice))
    res = rotation_result(preds[j], split, scalers, task, rotation, results[j], predict_seconds=predict_s)
    res.info.update(ops=list(exp_cfg.ops), choice=choice, lam=config.lambdas[i],
                    **costs.exact_counts(shapes, choice),
                    expected_cost=float(expected[j]),
                    model_config=config_to_dict(exp_cfg))
    cdir = rdir / f"candidate_{i:02d}"
    cdir.mkdir(exist_ok=True)
    _atomic_write(cdir / f"rotation_{rotation}.variables.msgpack", flax.serialization.msgpack_serialize(
        jax.tree.map(np.asarray, exp_vars)))
    res.save(cdir)
  return {k: v for k, v in why.items()}


def _exact_counts(config: ModelConfig, window: int) -> dict[str, int]:  # the seed's (a plain network)
  return costs.exact_counts(costs.trace(build(config), window))


def _summarize(out, config, seed_config, spec, rotations, cand_results, cand_info, seed_results, timings,
               engines=None):
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
            "pareto": pareto, "timings": timings, "engines": engines or {},
            "peak_rss_bytes": peak_rss(), "compile_seconds": compile_seconds()}
  _write_json(out / "pareto.json", {"seed": seed, "front": {
      t: [{k: candidates[j][k] for k in ("index", "lambda", "params", "macs", "mae_sbp", "mae_dbp")}
          for j in idx] for t, idx in pareto.items()}})
  _write_json(out / "results.json", result)
  return result
