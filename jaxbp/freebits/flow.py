"""The Free Bits flow (methods.md sections 3-5 and 8) as resumable stages a researcher can call one by one.

  task = bp_task("ppgbp", "../shared/data", "resnet1d", rotation=0)
  params = start(out, task, fc)                                    # float -> PTQ -> int8 QAT (TQT thresholds)
  searches = [search(out, task, params, fc, v, c) for v in fc.variants for c in fc.search_costs]  # all λ at once
  for p in fc.platforms: plans[p] = plan_platform(out, task, p, searches)   # baselines + free bits on the LD
  finetune(out, task, jobs(plans, searches), fc)                   # TQT fine-tuning, all configurations at once
  for p in fc.platforms: deploy_platform(...); report_platform(...) # integerize -> simulate -> export; tables

Every stage writes its outputs under `out` and a rerun skips finished work (searches per variant/cost, the
latency dictionary per platform, fine-tuned configurations per id, deployments per id). Configurations are
{weighted layer: (b_in, b_w)}; the twin realizes one by fixing its Bayesian-Bits gates (`set_gate_bits`).
Baselines are the paper's: every weighted layer at b bits except inputs that are the network input or a
residual add's output (8 bit). Latencies are simulated end to end on the integerized network.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import flax.struct
import jax
import numpy as np
import optax

from jaxbp import models
from jaxbp.cost import bits as cost_bits
from jaxbp.data.batching import batches
from jaxbp.data.protocol import Scalers, make_rotation
from jaxbp.data.source import load_folds
from jaxbp.data.specs import DatasetSpec
from jaxbp.deploy.latency_table import LatencyDict, load_latency_dict
from jaxbp.deploy.layers import with_layer_bits, with_uniform_bits
from jaxbp.deploy.platforms import get_platform
from jaxbp.deploy.simulator import simulate
from jaxbp.export.bundle import export_graph
from jaxbp.export.c.to_deploy import to_network
from jaxbp.freebits.heuristic import BitPair, free_bits
from jaxbp.freebits.latency_cost import bb_latency_cost, deploy_graph, homogeneous_config, model_latency_dict
from jaxbp.freebits.packing import packable
from jaxbp.freebits.study import explain, network_cost
from jaxbp.integerize.from_quant import integerize_twin
from jaxbp.integerize.graph import load as load_graph
from jaxbp.integerize.graph import save as save_graph
from jaxbp.models.configs import ModelConfig
from jaxbp.quant import BBConfig, QuantConfig, bit_config, bit_shapes, gate_layout, model_bytes, pipeline, read_off
from jaxbp.quant.bayesian_bits import log_alpha_for_bits
from jaxbp.quant.bb_search import BBSearchConfig, start_variables
from jaxbp.quant.bb_search import search as bb_search
from jaxbp.quant.twin import QuantTwin, twin
from jaxbp.quant.calibrate import calibrate
from jaxbp.quant.convert import from_float
from jaxbp.train import FitConfig
from jaxbp.train.fit import fit, predict
from jaxbp.train.crossval import pooled_report
from jaxbp.train.engine import Engine, EngineConfig, stack
from jaxbp.train.steps import target_key, task_loss

VARIANTS = ("original", "locked")
SEARCH_COSTS = ("bops", "latency")
FIXED_GATE_LOGIT = 20.0  # hard-concrete samples are exactly 0/1 at ±20: fine-tuning sees fixed bits.


@dataclasses.dataclass(frozen=True)
class FlowConfig:
  """Budgets and choices of one flow run.

  Attributes:
    lambdas: Bayesian-Bits λ, searched all at once per variant and cost.
    latency_lambdas: λ of the latency-cost searches (None: `lambdas`). The regularizer is normalized by its
      full-precision value, and latency falls much less with bits than BOPs, so it needs larger λ.
    variants: "original" (independent weight/input gates) and/or "locked" (b_in = b_w).
    search_costs: "bops" (the paper) and/or "latency" (expected latency on each platform, beyond the paper).
    platforms: where free bits, simulation and the tables are done.
    float_epochs, qat_epochs: the int8 start (float training, then QAT with TQT thresholds).
    search_epochs, finetune_epochs: Bayesian-Bits search and TQT fine-tuning epochs (no early stopping).
    learning_rate, threshold_lr: QAT / fine-tuning Adam rate and TQT's normalized log2-threshold step.
    weight_lr, gate_lr: the search's rates.
    margins: error margins (% of the 8-bit baseline's error) of the "fastest within margin" rows.
    export: write C + ONNX for the 8-bit baseline and each platform's fastest-within-margin configurations.
  """

  lambdas: tuple[float, ...] = (0.01, 0.03, 0.1, 0.3)
  latency_lambdas: tuple[float, ...] | None = None
  variants: tuple[str, ...] = VARIANTS
  search_costs: tuple[str, ...] = ("bops",)
  platforms: tuple[str, ...] = ("gap8", "xpulpnn-v2")
  float_epochs: int = 40
  qat_epochs: int = 6
  search_epochs: int = 6
  finetune_epochs: int = 4
  learning_rate: float = 1e-4
  threshold_lr: float = 1e-3
  weight_lr: float = 1e-4
  gate_lr: float = 0.05
  margins: tuple[float, ...] = (1.0, 5.0)
  export: bool = True
  seed: int = 0
  strategy: str = "auto"
  progress: bool = False

  def __post_init__(self):
    for field, allowed in (("variants", VARIANTS), ("search_costs", SEARCH_COSTS)):
      bad = set(getattr(self, field)) - set(allowed)
      if bad or not getattr(self, field):
        raise ValueError(f"FlowConfig.{field}: expected a non-empty subset of {allowed}, got {getattr(self, field)}")
    if not self.lambdas:
      raise ValueError("FlowConfig.lambdas is empty")
    for p in self.platforms:
      get_platform(p)


@dataclasses.dataclass(frozen=True)
class FlowTask:
  """The data and network of a flow: a 1-D BP task (ResNet1d / UNet1d) on one fold rotation, or an image
  classification task (MobileNet; `window` the image shape, no scalers)."""

  name: str
  config: ModelConfig
  split: dict[str, Any]
  scalers: Scalers | None
  window: int | tuple[int, ...]
  rotation: int
  batch_size: int

  @property
  def kind(self) -> str:
    return pipeline.task_of(self.config)


def bp_task(dataset: str | None, data_dir: str | None, model: str, rotation: int = 0, batch_size: int | None = None,
            config: ModelConfig | None = None) -> FlowTask:
  """The BP task of `model` (seed config unless `config`) on `dataset`'s rotation (synthetic without data)."""
  spec, folds = load_folds(dataset, data_dir)
  return task_from_folds(spec, folds, config or models.seed_config(model, spec.name), rotation,
                         batch_size or models.batch_size(model, spec.name))


def task_from_folds(spec: DatasetSpec, folds: Sequence[Any], config: ModelConfig, rotation: int, batch_size: int
                    ) -> FlowTask:
  """The task of `config` on `folds` (rotation `rotation`: test k, val k+1, train the rest)."""
  scalers = Scalers.fit(folds)
  split = make_rotation(folds, spec, rotation, scalers)
  return FlowTask(f"{models.model_name(config)}_{spec.name}", config, split, scalers, spec.window, rotation, batch_size)


def image_task(version: str = "v1", width_mult: float = 0.25, resolution: int = 32, batch_size: int = 64,
               seed: int = 0) -> FlowTask:
  """MobileNet`version` on scikit-learn's digits resized to `resolution` (70/15/15 stratified split)."""
  from jaxbp.data.images import load_digits_splits  # pylint: disable=import-outside-toplevel
  from jaxbp.models.mobilenet import MobileNetConfig  # pylint: disable=import-outside-toplevel
  config = MobileNetConfig(version=version, width_mult=width_mult, resolution=resolution, n_classes=10)
  split = load_digits_splits(resolution, seed)
  return FlowTask(f"mobilenet_{version}_{width_mult:g}_{resolution}_digits", config, split, None,
                  (resolution, resolution, 3), 0, batch_size)


def _policy(locked: bool = False) -> QuantConfig:
  return QuantConfig(act_method="tqt", bayesian_bits=BBConfig(locked=locked))


def _write(path: Path, obj: Any) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_suffix(path.suffix + ".tmp")
  tmp.write_text(json.dumps(obj, indent=1))
  tmp.replace(path)


def _read(path: Path) -> Any:
  return json.loads(path.read_text())


def _pairs(config: Mapping[str, Sequence[int]]) -> dict[str, BitPair]:
  return {k: (int(v[0]), int(v[1])) for k, v in config.items()}


def config_id(config: Mapping[str, BitPair], source: str) -> str:
  """A stable id of (start variables, configuration): "<source>-<8 hex>"."""
  h = hashlib.sha1(json.dumps(sorted((k, list(v)) for k, v in config.items())).encode()).hexdigest()[:8]
  return f"{source.replace('/', '_')}-{h}"


def evaluate(task: FlowTask, model, variables: dict[str, Any]) -> dict[str, float]:
  """The flow's test error ("error", lower is better): BP tasks, the mean of the SBP and DBP MAE (mmHg, also
  returned); classification, 100 - top-1 accuracy in % ("accuracy" also returned)."""
  if task.kind == "classification":
    logits = predict(model, variables, task.split["test"], task.batch_size, task.kind)
    acc = 100.0 * float(np.mean(np.argmax(logits, axis=-1) == task.split["test"]["y"]))
    return {"accuracy": acc, "error": 100.0 - acc, "mae_sbp": float("nan"), "mae_dbp": float("nan")}
  res = pipeline.rotation_result(model, variables, task.split, task.scalers, task=task.kind, rotation=task.rotation,
                                 batch_size=task.batch_size, info={})
  rep = pooled_report([res])
  sbp, dbp = float(rep["sbp"]["mae"]), float(rep["dbp"]["mae"])
  return {"mae_sbp": sbp, "mae_dbp": dbp, "error": (sbp + dbp) / 2}


# ---- stage 1: the int8 start ------------------------------------------------------------------------------------

def train_float(task: FlowTask, fc: FlowConfig) -> dict[str, Any]:
  """The float network trained under the protocol (Adam 1e-3, validation, early stopping, best restored)."""
  model = models.build(task.config)
  key = jax.random.fold_in(jax.random.key(fc.seed), task.rotation)
  variables = jax.jit(lambda k: models.init_variables(model, k, task.window))(key)
  cfg = FitConfig(max_epochs=fc.float_epochs, batch_size=task.batch_size, progress=fc.progress)
  return fit(model, variables, task.split["train"], task.split["val"], cfg, task=task.kind,
             seed=fc.seed * 10 + task.rotation, desc="float").variables


def start(out: Path, task: FlowTask, fc: FlowConfig, init_from: Path | None = None) -> dict[str, Any]:
  """int8 QAT params (TQT thresholds) at out/start/int8.msgpack: from `init_from` (a file) or trained here."""
  d = Path(out) / "start"
  path = d / "int8.msgpack"
  if not path.exists():
    d.mkdir(parents=True, exist_ok=True)
    if init_from is not None:
      variables = pipeline.load_variables(init_from)
    else:
      fvars = train_float(task, fc)
      tw = twin(task.config, QuantConfig(act_method="tqt"))
      xs = [b["x"] for _, b in zip(range(8), batches(task.split["train"], task.batch_size, seed=fc.seed))]
      qvars = calibrate(tw, from_float(tw, fvars, task.window), xs)
      qfit = FitConfig(learning_rate=fc.learning_rate, max_epochs=fc.qat_epochs, patience=5,
                       batch_size=task.batch_size, progress=fc.progress)
      variables, _ = pipeline.qat(tw, qvars, task.split, qfit, task=task.kind, seed=fc.seed, rotation=task.rotation,
                                  threshold_lr=fc.threshold_lr)
      pipeline.save_variables(d / "float.msgpack", fvars)
      _write(d / "float.json", evaluate(task, models.build(task.config), fvars))
    pipeline.save_variables(path, {"params": variables["params"]})
  params = pipeline.load_variables(path)["params"]
  start_variables(twin(task.config, _policy()), params, task.window)  # checks the structure (a TQT twin's params)
  return params


# ---- stage 2: Bayesian-Bits searches ----------------------------------------------------------------------------

def search_tag(variant: str, cost: str, platform: str | None = None) -> str:
  return f"{variant}_{cost}" + (f"_{platform}" if cost == "latency" else "")


def search(out: Path, task: FlowTask, params: dict[str, Any], fc: FlowConfig, variant: str, cost: str,
           platform: str | None = None) -> dict[str, Any]:
  """One Bayesian-Bits λ sweep (all λ at once); out/search/<tag>/candidates.json and candidate_XX.msgpack."""
  tag = search_tag(variant, cost, platform)
  d = Path(out) / "search" / tag
  done = d / "candidates.json"
  lambdas = tuple(fc.latency_lambdas) if cost == "latency" and fc.latency_lambdas else tuple(fc.lambdas)
  if done.exists():
    result = _read(done)
    if [c["lambda"] for c in result["candidates"]] != list(lambdas):
      raise ValueError(f"{done}: searched for λ {[c['lambda'] for c in result['candidates']]}, not {list(lambdas)}; "
                       f"use another output folder")
    return result
  tw = twin(task.config, _policy(variant == "locked"))
  shapes = bit_shapes(tw, task.window)
  reg = bb_latency_cost(task.config, task.window, platform) if cost == "latency" else None
  cfg = BBSearchConfig(weight_lr=fc.weight_lr, gate_lr=fc.gate_lr, epochs=fc.search_epochs, batch_size=task.batch_size)
  t0 = time.perf_counter()
  finals, history = bb_search(tw, start_variables(tw, params, task.window), task.split["train"], lambdas, shapes,
                              cfg, engine=EngineConfig(strategy=fc.strategy), seed=fc.seed, task=task.kind, cost=reg)
  seconds = time.perf_counter() - t0
  d.mkdir(parents=True, exist_ok=True)
  cands = []
  for i, (lam, v) in enumerate(zip(lambdas, finals)):
    pipeline.save_variables(d / f"candidate_{i:02d}.msgpack", {"params": v["params"]})
    conf = bit_config(read_off(tw, v, task.window))
    cands.append({"name": f"{tag}/{i:02d}", "lambda": lam, "index": i,
                  "bops": float(cost_bits.bops()(cost_bits.one_hot_joints(shapes, conf), shapes)),
                  "config": {k: list(b) for k, b in conf.items()}})
  result = {"tag": tag, "variant": variant, "cost": cost, "platform": platform, "search_s": seconds,
            "history": history, "candidates": cands}
  _write(done, result)
  return result


# ---- stage 3: free bits per platform ----------------------------------------------------------------------------

def latency_dict(out: Path, task: FlowTask, platform: str) -> LatencyDict:
  """The platform's latency dictionary of the network (cached at out/platforms/<p>/latency.json)."""
  path = Path(out) / "platforms" / platform / "latency.json"
  if path.exists():
    try:
      return load_latency_dict(path)
    except ValueError:  # profiled by an older jaxbp (pairs only): profile again.
      pass
  ld = model_latency_dict(task.config, task.window, platform)
  path.parent.mkdir(parents=True, exist_ok=True)
  ld.save_json(path)
  return ld


def plan_platform(out: Path, task: FlowTask, platform: str, searches: Sequence[Mapping[str, Any]]
                  ) -> list[dict[str, Any]]:
  """The configurations of one platform's table, each {name, kind, source, config, id, raised (free bits), packed}:
  8-bit, 4-bit, 4-bit + free bits, and every searched configuration before and after free bits. Layers the
  exporters could not pack are raised first (`jaxbp.freebits.packing`; listed under "packed")."""
  ld = latency_dict(out, task, platform)
  per = ld.per_layer("ms")
  net = deploy_graph(task.config, task.window)
  cost = network_cost(ld, net)

  def fb(config):
    res = free_bits(config, per, types=ld.layers, network_cost=cost)
    return dict(res.config), [explain(ld, k, a, b, net, res.config).to_json() for k, (a, b) in res.changes.items()]

  rows = []

  def add(name, kind, source, config, raised=(), of=None, packed=None):
    rows.append({"name": name, "kind": kind, "source": source, "config": {k: list(v) for k, v in config.items()},
                 "id": config_id(config, source), "raised": list(raised), "free_bits_of": of,
                 "packed": {k: [list(a), list(b)] for k, (a, b) in (packed or {}).items()}})

  add("8-bit", "baseline", "start", homogeneous_config(task.config, task.window, 8))
  four, packed = packable(homogeneous_config(task.config, task.window, 4), net)  # e.g. a 1-channel stem: 8-bit weights
  add("4-bit", "baseline", "start", four, packed=packed)
  cfg, raised = fb(four)
  add("4-bit + FB", "baseline+fb", "start", cfg, raised, "4-bit")
  for s in searches:
    if s["cost"] == "latency" and s["platform"] != platform:
      continue
    for c in s["candidates"]:
      conf, packed = packable(_pairs(c["config"]), net)
      add(c["name"], f"bb_{s['cost']}", c["name"], conf, packed=packed)
      cfg, raised = fb(conf)
      add(c["name"] + " + FB", f"bb_{s['cost']}+fb", c["name"], cfg, raised, c["name"])
  _write(Path(out) / "platforms" / platform / "plan.json", rows)
  return rows


# ---- stage 4: TQT fine-tuning of fixed configurations -----------------------------------------------------------

def fixed_gates(tw: QuantTwin, config: Mapping[str, BitPair]) -> dict[str, Any]:
  """Gate logits of an unlocked twin that realize `config` exactly (in training too: ±FIXED_GATE_LOGIT)."""
  cfg = tw.policy.bayesian_bits
  gates = {}
  for layer, g in gate_layout(tw.graph, tw.policy).items():
    if layer not in config:
      raise KeyError(f"configuration has no bit widths for layer {layer!r}")
    for name, b in ((g["act"], config[layer][0]), (g["weight"], config[layer][1])):
      if name:
        gates[name] = {"log_alpha": log_alpha_for_bits(int(b), cfg, FIXED_GATE_LOGIT)}
  return gates


@flax.struct.dataclass
class _FTState:
  step: jax.Array
  params: Any
  gates: Any
  opt: optax.OptState


def finetune_step(tw: QuantTwin, tx: optax.GradientTransformation, task_kind: str) -> Callable:
  """`step(state, batch, key) -> (state, metrics)`: one TQT fine-tuning step of the params at fixed gates."""
  target = target_key(task_kind)

  def step(state: _FTState, batch, key):
    kd, kg = jax.random.split(jax.random.fold_in(key, state.step))

    def loss_fn(params):
      out = tw.apply({"params": params, "gates": state.gates}, batch["x"], train=True,
                     rngs={"dropout": kd, "gates": kg})
      return task_loss(task_kind, out, batch[target])

    loss, g = jax.value_and_grad(loss_fn)(state.params)
    upd, opt = tx.update(g, state.opt, state.params)
    return state.replace(step=state.step + 1, params=optax.apply_updates(state.params, upd), opt=opt), {"loss": loss}

  return step


def start_params(out: Path, source: str) -> dict[str, Any]:
  """The params a configuration is fine-tuned from: the int8 start or a search candidate ("<tag>/<i>")."""
  if source == "start":
    return pipeline.load_variables(Path(out) / "start" / "int8.msgpack")["params"]
  tag, i = source.rsplit("/", 1)
  return pipeline.load_variables(Path(out) / "search" / tag / f"candidate_{int(i):02d}.msgpack")["params"]


def finetune(out: Path, task: FlowTask, rows: Sequence[Mapping[str, Any]], fc: FlowConfig) -> dict[str, dict]:
  """Fine-tunes every distinct (source, configuration) not yet done, all at once on the engine; writes
  out/finetune/<id>.msgpack and <id>.json (configuration, error, size); returns {id: json} of all rows."""
  d = Path(out) / "finetune"
  d.mkdir(parents=True, exist_ok=True)
  todo = {}
  for r in rows:
    if not (d / f"{r['id']}.json").exists():
      todo[r["id"]] = r
  if todo:
    tw = twin(task.config, _policy())
    ids = sorted(todo)
    template = start_params(out, todo[ids[0]]["source"])  # every row of one call has the task config's structure
    tx = pipeline.qat_optimizer(template, fc.learning_rate, fc.threshold_lr)
    states = []
    for i in ids:
      p = jax.tree.map(np.asarray, start_params(out, todo[i]["source"]))
      states.append(_FTState(np.zeros((), np.int32), p, fixed_gates(tw, _pairs(todo[i]["config"])), tx.init(p)))
    n = len(ids)
    engine = Engine(finetune_step(tw, tx, task.kind), n, EngineConfig(strategy=fc.strategy), n_shared=1)
    groups = engine.groups(jax.tree.map(np.asarray, stack(states)))
    keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.key(fc.seed + 1), i))(np.arange(n))
    t0 = time.perf_counter()
    for epoch in range(fc.finetune_epochs):
      for batch in batches(task.split["train"], task.batch_size, seed=fc.seed * 7919 + epoch, drop_remainder=True):
        groups, _ = engine.step(groups, (batch,), (keys,))
    seconds = time.perf_counter() - t0
    final = engine.stacked(groups)
    for k, i in enumerate(ids):
      v = {"params": jax.tree.map(lambda x, k=k: np.asarray(x[k]), final.params),
           "gates": jax.tree.map(lambda x, k=k: np.asarray(x[k]), final.gates)}
      pipeline.save_variables(d / f"{i}.msgpack", v)
      recs = read_off(tw, v, task.window)
      conf = bit_config(recs)
      if conf != _pairs(todo[i]["config"]):
        raise RuntimeError(f"fine-tuned {i}: read-off {conf} differs from the configuration set")
      _write(d / f"{i}.json", {"id": i, "source": todo[i]["source"], "config": todo[i]["config"],
                               **evaluate(task, tw, v), "bytes": model_bytes(recs)["total"],
                               "epochs": fc.finetune_epochs, "batch_seconds_all": seconds / max(fc.finetune_epochs, 1)})
  return {r["id"]: _read(d / f"{r['id']}.json") for r in rows}


# ---- stage 5: integerize -> simulate -> export ------------------------------------------------------------------

def integer_graph(out: Path, task: FlowTask, cid: str):
  """The integer graph of a fine-tuned configuration (cached in out/integer/<id>)."""
  d = Path(out) / "integer" / cid
  if (d / "graph.json").exists():
    return load_graph(d)
  tw = twin(task.config, _policy())
  v = pipeline.load_variables(Path(out) / "finetune" / f"{cid}.msgpack")
  graph = integerize_twin(tw, v, task.window, meta={"name": cid})
  save_graph(graph, d)
  return graph


def integer_network(out: Path, task: FlowTask, cid: str):
  """(integer graph, deploy network) of a fine-tuned configuration."""
  graph = integer_graph(out, task, cid)
  return graph, to_network(graph, cid)


def simulate_rows(out: Path, task: FlowTask, platform: str, rows: Sequence[Mapping[str, Any]]) -> dict[str, dict]:
  """Simulated latency of every row's integerized network on `platform` (cached per id in sim.json)."""
  path = Path(out) / "platforms" / platform / "sim.json"
  sim = _read(path) if path.exists() else {}
  p = get_platform(platform)
  for r in rows:
    if r["id"] in sim:
      continue
    try:
      _, net = integer_network(out, task, r["id"])
      source = "integer graph"
    except (ValueError, KeyError, TypeError, NotImplementedError) as e:  # e.g. no integerizer for the network
      source = f"deploy zoo graph at the configuration's bits (integerize failed: {type(e).__name__}: {e})"[:300]
      try:
        net = with_layer_bits(with_uniform_bits(deploy_graph(task.config, task.window), 8), r["config"])
      except ValueError as e2:
        net = None
        source = f"refused by the simulator: {e2}"[:300]
    if net is None:
      sim[r["id"]] = {"latency_ms": float("nan"), "cycles": float("nan"), "fits": False, "energy_mj": float("nan"),
                      "simulated": source}
      _write(path, sim)
      continue
    try:
      rep = simulate(net, p)
    except ValueError as e:  # the simulator refuses the configuration (e.g. a packing constraint): no latency.
      sim[r["id"]] = {"latency_ms": float("nan"), "cycles": float("nan"), "fits": False, "energy_mj": float("nan"),
                      "simulated": f"refused by the simulator: {e}"[:300]}
      _write(path, sim)
      continue
    sim[r["id"]] = {"latency_ms": rep.latency_ms, "cycles": rep.total_cycles, "fits": rep.fits,
                    "energy_mj": rep.energy_mj, "simulated": source}
    _write(path, sim)
  return sim


def export_rows(out: Path, task: FlowTask, ids: Sequence[str]) -> dict[str, str]:
  """C + ONNX of each id under out/export/<id> (skipped where export.json exists)."""
  done = {}
  for cid in ids:
    d = Path(out) / "export" / cid
    if not (d / "export.json").exists():
      try:
        export_graph(integer_graph(out, task, cid), d, "both")
      except (ValueError, KeyError, TypeError, NotImplementedError) as e:  # e.g. a packing constraint of the C kernels
        done[cid] = f"not exported: {type(e).__name__}: {e}"[:300]
        continue
    done[cid] = str(d)
  return done


# ---- stage 6: tables and plots ----------------------------------------------------------------------------------

def table(rows: Sequence[Mapping[str, Any]], tuned: Mapping[str, Mapping[str, Any]], sim: Mapping[str, Mapping],
          margins: Sequence[float]) -> dict[str, Any]:
  """Rows with latency (% of the 8-bit baseline), error and size, and the fastest rows within each margin."""
  base = next(r for r in rows if r["name"] == "8-bit")
  t8, e8 = sim[base["id"]]["latency_ms"], tuned[base["id"]]["error"]
  out = []
  for r in rows:
    t, f = sim[r["id"]], tuned[r["id"]]
    out.append({"name": r["name"], "kind": r["kind"], "id": r["id"], "latency_ms": t["latency_ms"],
                "latency_pct": 100.0 * (t["latency_ms"] / t8), "error": f["error"], "mae_sbp": f["mae_sbp"],
                "mae_dbp": f["mae_dbp"], "accuracy": f.get("accuracy"), "bytes": f["bytes"], "fits": t["fits"],
                "raised": len(r["raised"]), "simulated": t.get("simulated", "integer graph"),
                "free_bits_of": r["free_bits_of"]})
  best = []
  for m in margins:
    ok = [x for x in out if x["error"] <= e8 * (1 + m / 100.0) and np.isfinite(x["latency_ms"])]
    no_fb = [x for x in ok if x["free_bits_of"] is None]
    pick = lambda xs: min(xs, key=lambda x: (x["latency_ms"], x["error"]))["name"] if xs else None
    best.append({"margin_pct": m, "fastest": pick(ok), "fastest_without_free_bits": pick(no_fb)})
  return {"rows": out, "fastest_within_margin": best, "reference": {"latency_ms": t8, "error": e8}}


def markdown(platform: str, tab: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> str:
  """The per-platform table, the fastest-within-margin rows and the raised layers."""
  ref = tab["reference"]
  cls = tab["rows"][0].get("accuracy") is not None
  metric = "| error (100 - acc %) | accuracy % |" if cls else "| error (mean MAE) | MAE SBP | MAE DBP |"
  lines = [f"## {platform}", "", f"8-bit: {ref['latency_ms']:.3f} ms simulated, error {ref['error']:.2f}", "",
           f"| configuration | latency % of 8-bit | latency ms {metric} bytes | layers raised |",
           "|---|---|---|---|---|" + ("" if cls else "---|") + "---|---|"]
  for x in tab["rows"]:
    m = (f"{x['error']:.2f} | {x['accuracy']:.2f}" if cls else f"{x['error']:.2f} | {x['mae_sbp']:.2f} | "
         f"{x['mae_dbp']:.2f}")
    lines.append(f"| {x['name']} | {x['latency_pct']:.1f} | {x['latency_ms']:.3f} | {m} | {x['bytes']:,} | "
                 f"{x['raised'] if x['free_bits_of'] else ''} |")
  sims = {x["simulated"] for x in tab["rows"]}
  lines += ["", "Simulated from: " + "; ".join(sorted(sims))]
  lines += ["", "| margin (% of 8-bit error) | fastest | fastest without free bits |", "|---|---|---|"]
  for b in tab["fastest_within_margin"]:
    lines.append(f"| {b['margin_pct']:g} | {b['fastest']} | {b['fastest_without_free_bits']} |")
  lines += ["", "Layers raised by free bits (LD cycles before -> after):", ""]
  for r in rows:
    for x in r["raised"]:
      lines.append(f"- {r['name']}: {x['layer']} {x['before'][0]}/{x['before'][1]} -> {x['after'][0]}/{x['after'][1]}: "
                   f"{x['cycles_before']:,.0f} -> {x['cycles_after']:,.0f} cycles; {x['reason']}")
  return "\n".join(lines)


def finish_latency_plot(fig, ax, platform: str, ylabel: str, path: Path) -> None:
  """Axis labels (x: latency in % of 8-bit on `platform`), grid and legend; saves `fig` to `path` and closes it."""
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  ax.set_xlabel(f"simulated latency on {platform} (% of 8-bit)")
  ax.set_ylabel(ylabel)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def plot(platform: str, tab: Mapping[str, Any], path: Path) -> None:
  """Latency (% of 8-bit) vs error; an arrow from every configuration to its free-bits version."""
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  by_name = {x["name"]: x for x in tab["rows"]}
  fig, ax = plt.subplots(figsize=(7, 5))
  colors = {"baseline": "k", "bb_bops": "tab:blue", "bb_latency": "tab:orange"}
  for x in tab["rows"]:
    kind = x["kind"].split("+")[0]
    fb = x["free_bits_of"] is not None
    ax.scatter(x["latency_pct"], x["error"], c=colors.get(kind, "tab:gray"), marker="*" if fb else "o",
               s=60 if fb else 30, zorder=3)
    if not fb and x["kind"] == "baseline":
      ax.annotate(x["name"], (x["latency_pct"], x["error"]), fontsize=8, xytext=(3, 3), textcoords="offset points")
    if fb:
      a = by_name[x["free_bits_of"]]
      if (a["latency_pct"], a["error"]) != (x["latency_pct"], x["error"]):
        ax.annotate("", (x["latency_pct"], x["error"]), (a["latency_pct"], a["error"]),
                    arrowprops={"arrowstyle": "->", "color": "tab:green", "lw": 1})
  for kind, c in colors.items():
    ax.scatter([], [], c=c, label=kind)
  ax.scatter([], [], c="w", edgecolors="k", marker="*", label="+ free bits (arrow)")
  finish_latency_plot(fig, ax, platform, "test error (mean SBP/DBP MAE, mmHg; classification: 100 - accuracy %)",
                      path)


def pareto(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
  """The non-dominated points (both coordinates minimized), sorted by the first."""
  pts = sorted(set(points))
  front, best = [], float("inf")
  for x, y in pts:
    if y < best:
      front.append((x, y))
      best = y
  return front


def dominated_fraction(a: Sequence[tuple[float, float]], b: Sequence[tuple[float, float]]) -> float:
  """Fraction of front `b`'s points weakly dominated by some point of front `a` (and different from it)."""
  if not b:
    return 0.0
  dom = lambda p, q: p[0] <= q[0] and p[1] <= q[1] and p != q
  return sum(any(dom(p, q) for p in a) for q in b) / len(b)


def compare_fronts(tab: Mapping[str, Any], groups: Mapping[str, Callable[[Mapping[str, Any]], bool]]
                   ) -> dict[str, Any]:
  """Pareto fronts (latency %, error) of row groups, and how much of each front every other front dominates."""
  fronts = {k: pareto([(x["latency_pct"], x["error"]) for x in tab["rows"] if sel(x) and np.isfinite(x["latency_pct"])])
            for k, sel in groups.items()}
  cross = {f"{a} over {b}": dominated_fraction(fronts[a], fronts[b]) for a in fronts for b in fronts if a != b}
  return {"fronts": {k: [list(p) for p in v] for k, v in fronts.items()}, "dominated_fraction": cross}


def plot_fronts(platform: str, cmp: Mapping[str, Any], path: Path) -> None:
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  fig, ax = plt.subplots(figsize=(6, 4.5))
  for name, front in cmp["fronts"].items():
    if front:
      xs, ys = zip(*front)
      ax.step(xs, ys, where="post", marker="o", label=name)
  finish_latency_plot(fig, ax, platform, "test error (mean MAE, mmHg)", path)


# ---- the whole flow ---------------------------------------------------------------------------------------------

def run(out: str | Path, task: FlowTask, fc: FlowConfig, *, init_from: Path | None = None,
        log: Callable[[str], None] = print) -> dict[str, Any]:
  """start -> searches -> free bits per platform -> fine-tuning -> integerize/simulate/export -> tables."""
  out = Path(out)
  out.mkdir(parents=True, exist_ok=True)
  _write(out / "flow_config.json", {"flow": dataclasses.asdict(fc), "task": task.name, "rotation": task.rotation,
                                    "model": models.config_to_dict(task.config), "window": task.window})
  t0 = time.perf_counter()
  params = start(out, task, fc, init_from)
  log(f"start: int8 ready ({time.perf_counter() - t0:.0f} s)")
  searches = []
  for variant in fc.variants:
    for cost in fc.search_costs:
      for platform in (fc.platforms if cost == "latency" else (None,)):
        s = search(out, task, params, fc, variant, cost, platform)
        log(f"search {s['tag']}: " + ", ".join(f"λ={c['lambda']:g} {c['bops']:.3g} BOPs" for c in s["candidates"]))
        searches.append(s)
  plans = {p: plan_platform(out, task, p, searches) for p in fc.platforms}
  unique = {r["id"]: r for rows in plans.values() for r in rows}
  tuned = finetune(out, task, list(unique.values()), fc)
  log(f"fine-tuned {len(unique)} configurations ({time.perf_counter() - t0:.0f} s so far)")
  summary = {}
  for p, rows in plans.items():
    sim = simulate_rows(out, task, p, rows)
    tab = table(rows, tuned, sim, fc.margins)
    d = out / "platforms" / p
    _write(d / "table.json", tab)
    (d / "table.md").write_text(markdown(p, tab, rows) + "\n")
    plot(p, tab, d / "latency_vs_error.png")
    groups = {"BB(BOPs)": lambda x: x["kind"] == "bb_bops", "BB(BOPs) + FB": lambda x: x["kind"] == "bb_bops+fb",
              "BB(latency)": lambda x: x["kind"] == "bb_latency",
              "BB(latency) + FB": lambda x: x["kind"] == "bb_latency+fb"}
    cmp = compare_fronts(tab, {k: v for k, v in groups.items() if any(v(x) for x in tab["rows"])})
    _write(d / "fronts.json", cmp)
    plot_fronts(p, cmp, d / "fronts.png")
    if fc.export:
      picks = {b["fastest"] for b in tab["fastest_within_margin"] if b["fastest"]} | {"8-bit"}
      ids = [x["id"] for x in tab["rows"] if x["name"] in picks]
      _write(d / "exports.json", export_rows(out, task, ids))
    summary[p] = tab
    log(f"{p}: " + "; ".join(f"≤{b['margin_pct']:g}%: {b['fastest']}" for b in tab["fastest_within_margin"]))
  _write(out / "summary.json", {"platforms": summary, "seconds": time.perf_counter() - t0})
  return summary
