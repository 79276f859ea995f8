"""Joint search: SuperNet ops {conv, dw-separable, identity} × Bayesian-Bits precisions in one supernet, trained
with λ·expected latency on a platform (beyond the paper; issue 14).

    jg = joint_graph(config)                       # ResNet1d: every conv slot has all its allowed ops as branches
    jt = JointTwin(jg, policy)                     # fake-quantized, Bayesian-Bits gates on every branch
    table = joint_table(config, window, "xpulpnn-v2")
    E = expected_latency(thetas(arch), gate_probs(jt, gates), jg, table)   # ms, differentiable

The joint graph is the network's quantized graph (`jaxbp.quant.graph_resnet1d`) where each conv slot S becomes
its alternatives side by side (nodes "S/conv", "S/dw/depthwise" + "S/dw/pointwise", and for an identity "S/bn2"
when a BatchNorm followed the slot, else nothing) and a `Mix` "S/mix": θ_S = softmax(α_S) weights the branches'
fake-quantized outputs (value, quantum and bit width alike; at one-hot θ the mix is exactly the chosen branch).
Architecture logits: "arch" collection {S: (n_ops,)}. Gates: "<node>/gates_w" on every weighted node's weights and
"<q>/gates_act" on every output quantizer q whose weighted readers (through mixes and grid-preserving ops) all
belong to one slot or are one layer, i.e. the quantizer feeds one layer in every architecture of the supernet;
where an identity branch bypasses those readers the gates fade out with the readers' θ (z_eff = 1 - r·(1 - z)),
so at one-hot θ and gates the supernet computes exactly its export (tested), except after an identity conv2: its SE
pool then quantizes the θ-mix on a signed grid where the exported network's is unsigned.

Expected latency (the search's cost) = Σ_layers w_L Σ_ij P_in(i)·P_w(j)·LD(L, b_i, b_j) + Σ_branches θ·(their
weightless layers at 8 bit) + the common weightless layers at 8 bit, with w_L the θ of L's branch (1 outside
slots), P_w from L's weight gates and P_in the θ-mixture of the gate probabilities of the quantizers that can feed
L. LD entries come from the simulator's latency dictionaries of the uniform-op networks (all conv, all dw, all id
where allowed): layer latencies depend only on the layer, so at one-hot θ and gates this is the LD sum of the
exported network at its bits (tested).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxbp.deploy.platforms import Platform
from jaxbp.freebits.latency_cost import model_latency_dict
from jaxbp.models.layers import SlotSpec
from jaxbp.models.resnet1d import ResNet1dConfig
from jaxbp.nas.choice import theta as choice_theta
from jaxbp.quant import bayesian_bits as bb
from jaxbp.quant.bayesian_bits import BBConfig, BBGates
from jaxbp.quant.bb_search import run_lambdas
from jaxbp.quant.calibrate import set_ranges
from jaxbp.quant.graph import GRID_PRESERVING, GridSpec, Node
from jaxbp.quant.graph_resnet1d import _Builder, add_resnet1d_nodes
from jaxbp.quant.policy import QuantConfig
from jaxbp.quant.qlayers import QNode, QTensor
from jaxbp.quant.twin import twin
from jaxbp.models.params import example_shape
from jaxbp.train.engine import Engine, EngineConfig
from jaxbp.train.steps import mse, target_key

OPS = ("conv", "dw", "id")


@dataclasses.dataclass(frozen=True)
class Mix:
  """The θ-weighted sum of a slot's branch outputs (`inputs`, one per op of `ops`)."""

  name: str
  slot: str
  inputs: tuple[str, ...]
  ops: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class JointGraph:
  """Nodes and mixes in execution order, and which nodes belong to which slot branch.

  Attributes:
    items: `Node`s (as in `jaxbp.quant.graph`) and `Mix`es.
    branches: (node name, slot, op) of every node inside a slot's branch.
    slots: (slot name, its ops) in network order.
  """

  items: tuple[Node | Mix, ...]
  branches: tuple[tuple[str, str, str], ...]
  slots: tuple[tuple[str, tuple[str, ...]], ...]

  def __getitem__(self, name: str) -> Node | Mix:
    for it in self.items:
      if it.name == name:
        return it
    raise KeyError(f"no node or mix named {name!r} in the joint graph")

  def weighted(self) -> tuple[Node, ...]:
    return tuple(n for n in self.items if isinstance(n, Node) and n.weighted)

  def branch(self, name: str) -> tuple[str, str] | None:
    """(slot, op) of a node inside a slot branch, else None."""
    for n, s, o in self.branches:
      if n == name:
        return s, o
    return None

  def sources(self, name: str) -> tuple[tuple[str, tuple[tuple[str, int], ...]], ...]:
    """The output quantizers that can produce `name`'s value: (quantizer, ((slot, op index), ...) on the way)."""
    it = self[name]
    if isinstance(it, Mix):
      return tuple((q, ((it.slot, i),) + path) for i, x in enumerate(it.inputs) for q, path in self.sources(x))
    if it.op in GRID_PRESERVING:
      return self.sources(it.inputs[0])
    return ((name, ()),)

  def readers(self) -> dict[str, tuple[str, ...]]:
    """{output quantizer: the weighted nodes that can read it (through mixes and grid-preserving ops)}."""
    out: dict[str, list[str]] = {}
    for n in self.weighted():
      for q, _ in self.sources(n.inputs[0]):
        if n.name not in out.setdefault(q, []):
          out[q].append(n.name)
    return {q: tuple(v) for q, v in out.items()}

  def gated_quantizers(self) -> tuple[str, ...]:
    """Output quantizers with an activation gate set (module docstring)."""
    out = []
    for q, names in self.readers().items():
      g = self[q].out
      groups = {(self.branch(n) or (n,))[0] for n in names}
      if g is not None and g.searchable and g.bits is None and len(groups) == 1:
        out.append(q)
    return tuple(sorted(out))

  def plain_name(self, name: str) -> str:
    """The node's name in the exported (plain) network's graph."""
    b = self.branch(name)
    if b is None:
      return name
    slot, op = b
    if op == "conv":
      return slot
    if op == "dw":
      return slot + name[len(slot) + len("/dw"):]
    return f"{slot.rsplit('/', 1)[0]}/{name.rsplit('/', 1)[1]}"  # id: the slot's BN as a standalone affine


class _JointBuilder(_Builder):
  def __init__(self, ops: tuple[str, ...]):
    super().__init__()
    self.ops = ops
    self.branches: list[tuple[str, str, str]] = []
    self.slots: list[tuple[str, tuple[str, ...]]] = []

  def slot(self, name: str, spec: SlotSpec, op: str, x: str, *, src: tuple[str, ...], bn: tuple[str, ...],
           act: str, out: GridSpec) -> str:
    del op  # every allowed op becomes a branch.
    allowed = tuple(o for o in self.ops if o in spec.allowed_ops())
    outs = []
    for o in allowed:
      first = len(self.nodes)
      outs.append(super().slot(f"{name}/{o}", spec, o, x, src=src, bn=bn, act=act, out=out))
      self.branches += [(n.name, name, o) for n in self.nodes[first:]]
    self.slots.append((name, allowed))
    mix = Mix(f"{name}/mix", name, tuple(outs), allowed)
    self.nodes.append(mix)
    self.signed[mix.name] = any(self.signed[o] for o in outs)
    return mix.name


def joint_graph(cfg: ResNet1dConfig, ops: tuple[str, ...] = OPS) -> JointGraph:
  """The joint graph of a ResNet1d config: `resnet1d_graph`'s nodes (one builder body), every slot a choice."""
  if not isinstance(cfg, ResNet1dConfig):
    raise TypeError(f"joint search: only ResNet1d configs are supported, got {type(cfg).__name__}")
  bad = [o for o in ops if o not in OPS]
  if bad or not ops:
    raise ValueError(f"joint search ops {ops}: expected a non-empty subset of {OPS}")
  b = _JointBuilder(tuple(ops))
  add_resnet1d_nodes(b, cfg, {name: "" for name in cfg.slot_specs()})  # "": every slot is a choice
  return JointGraph(tuple(b.nodes), tuple(b.branches), tuple(b.slots))


def gate_names(jg: JointGraph) -> tuple[str, ...]:
  return tuple(f"{n.name}/gates_w" for n in jg.weighted()) + tuple(f"{q}/gates_act" for q in jg.gated_quantizers())


class JointTwin(nn.Module):
  """The fake-quantized joint supernet: (B, L, 1) -> (B, n_outputs).

  Attributes:
    graph: `joint_graph(config)`.
    policy: quantization policy with (original, not locked) Bayesian Bits.
    mode: θ in training (`jaxbp.nas.choice` modes: "soft", "gumbel", ...); evaluation runs argmax α ("frozen").
  """

  graph: JointGraph
  policy: QuantConfig
  mode: str = "soft"

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
    cfg = self.policy.bayesian_bits
    if cfg is None or cfg.locked:
      raise ValueError("JointTwin: the policy needs Bayesian Bits with independent (not locked) gates")
    jg = self.graph
    z = {name: BBGates(cfg, name=name)(train) for name in gate_names(jg)}
    mode = self.mode if train else "frozen"
    th = {}
    for slot, ops in jg.slots:
      alpha = self.variable("arch", slot, jnp.zeros, (len(ops),)).value
      th[slot] = choice_theta(alpha, 1.0, mode, self.make_rng("gumbel") if mode in ("gumbel", "hard_gumbel") else None)
    # A gated quantizer is read with probability r (its readers' θ): z_eff = 1 - r·(1 - z), i.e. the gates act only
    # where a weighted layer reads the tensor, else it stays at the top width (exact at one-hot θ).
    readers = jg.readers()
    for q in jg.gated_quantizers():
      r = sum(th[b[0]][dict(jg.slots)[b[0]].index(b[1])] if (b := jg.branch(n)) else 1.0 for n in readers[q])
      z[f"{q}/gates_act"] = 1.0 - r * (1.0 - z[f"{q}/gates_act"])
    values: dict[str, Any] = {}
    for it in jg.items:
      if isinstance(it, Mix):
        w = th[it.slot]
        ins = [values[i] for i in it.inputs]
        values[it.name] = QTensor(sum(w[k] * t.value for k, t in enumerate(ins)),
                                  sum(w[k] * t.scale for k, t in enumerate(ins)),
                                  sum(w[k] * jnp.asarray(t.bits, jnp.float32) for k, t in enumerate(ins)),
                                  any(t.signed for t in ins))
        continue
      inputs = [values[i] for i in it.inputs] if it.inputs else [x]
      values[it.name] = QNode(it, self.policy, name=it.name)(
          inputs, train=train, z_out=z.get(f"{it.name}/gates_act"), z_w=z.get(f"{it.name}/gates_w"))
    out = values[jg.items[-1].name]
    return out.value if isinstance(out, QTensor) else out


def policy() -> QuantConfig:
  """The joint search's quantization policy: TQT thresholds, original Bayesian Bits (2/4/8)."""
  return QuantConfig(act_method="tqt", bayesian_bits=BBConfig())


# ---- expected latency -------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class JointTable:
  """Latencies (ms) of the joint graph's layers on one platform.

  Attributes:
    weighted: {(weighted joint node, b_in, b_w): ms}.
    branch_fixed: {(slot, op): ms} of the branch's weightless layers at 8 bit (an identity's standalone BN).
    fixed: the weightless layers outside slots at 8 bit.
    platform: where it was simulated.
  """

  weighted: Mapping[tuple[str, int, int], float]
  branch_fixed: Mapping[tuple[str, str], float]
  fixed: float
  platform: str


def uniform_config(cfg: ResNet1dConfig, op: str) -> ResNet1dConfig:
  """`cfg` with every slot at `op` where the slot allows it, else a standard conv."""
  return dataclasses.replace(cfg, ops=tuple(op if op in s.allowed_ops() else "conv" for s in cfg.slot_specs().values()))


def joint_table(cfg: ResNet1dConfig, window: int, platform: Platform | str, jg: JointGraph | None = None
                ) -> JointTable:
  """The `JointTable` of `cfg`'s joint graph from the latency dictionaries of its uniform-op networks."""
  jg = jg or joint_graph(cfg)
  ops = sorted({o for _, os in jg.slots for o in os})
  lds = {o: model_latency_dict(uniform_config(cfg, o), window, platform) for o in ops}
  per = {o: ld.per_layer("ms") for o, ld in lds.items()}
  pairs = sorted({(a, w) for (_, a, w) in per[ops[0]]})
  weighted, branch_fixed = {}, {}
  for n in jg.weighted():
    op = (jg.branch(n.name) or ("", "conv"))[1]
    plain = jg.plain_name(n.name)
    for a, w in pairs:
      try:
        weighted[(n.name, a, w)] = per[op][(plain, a, w)]
      except KeyError:
        raise KeyError(f"joint table: the {op} network's latency dictionary has no layer {plain!r} at "
                       f"({a}, {w})") from None
  for name, slot, op in jg.branches:
    n = jg[name]
    if not n.weighted:
      branch_fixed[(slot, op)] = branch_fixed.get((slot, op), 0.0) + per[op].get((jg.plain_name(name), 8, 8), 0.0)
  weighted_plain = {jg.plain_name(n.name) for n in jg.weighted()}
  branch_plain = {jg.plain_name(name) for name, _, _ in jg.branches}
  any_op = "conv" if "conv" in per else ops[0]
  fixed = sum(v for (name, a, w), v in per[any_op].items()
              if a == 8 and w == 8 and name not in weighted_plain and name not in branch_plain)
  return JointTable(weighted, branch_fixed, float(fixed), lds[any_op].platform)


def _fixed_bits(jg: JointGraph, q: str, cfg: BBConfig, act_bits: int = 8) -> jax.Array:
  g = jg[q].out
  bits = (g.bits if g is not None and g.bits else act_bits)
  return jnp.asarray([1.0 if b == bits else 0.0 for b in cfg.support], jnp.float32)


def expected_latency(theta: Mapping[str, jax.Array], probs: Mapping[str, jax.Array], jg: JointGraph,
                     table: JointTable, cfg: BBConfig = BBConfig()) -> jax.Array:
  """E[latency] (ms) under slot probabilities `theta` {slot: (n_ops,)} and bit probabilities `probs`
  {gate set name: P over `cfg.support`} (module docstring)."""
  gated = set(jg.gated_quantizers())
  support = cfg.support
  total = jnp.asarray(table.fixed, jnp.float32)
  for (slot, op), v in table.branch_fixed.items():
    ops = dict(jg.slots)[slot]
    total = total + theta[slot][ops.index(op)] * v
  for n in jg.weighted():
    p_in = 0.0
    for q, path in jg.sources(n.inputs[0]):
      w = 1.0
      for slot, i in path:
        w = w * theta[slot][i]
      p_in = p_in + w * (probs[f"{q}/gates_act"] if q in gated else _fixed_bits(jg, q, cfg))
    p_w = probs[f"{n.name}/gates_w"]
    lat = jnp.asarray([[table.weighted[(n.name, a, b)] if a and b else 0.0 for b in support] for a in support],
                      jnp.float32)
    b = jg.branch(n.name)
    w_n = theta[b[0]][dict(jg.slots)[b[0]].index(b[1])] if b else 1.0
    total = total + w_n * jnp.sum(jnp.outer(p_in, p_w) * lat)
  return total


def thetas(arch: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
  """Soft θ = softmax(α) per slot."""
  return {k: jax.nn.softmax(v) for k, v in arch.items()}


def gate_probs(gates: Mapping[str, Any], cfg: BBConfig) -> dict[str, jax.Array]:
  return {k: bb.bit_probabilities(v["log_alpha"], cfg) for k, v in gates.items()}


# ---- read-off: the exported architecture and its bits -----------------------------------------------------------

def choice_of(arch: Mapping[str, Any], jg: JointGraph) -> dict[str, str]:
  """{slot: argmax-α op}."""
  return {slot: ops[int(np.argmax(np.asarray(arch[slot])))] for slot, ops in jg.slots}


def gate_bits(gates: Mapping[str, Any], cfg: BBConfig) -> dict[str, int]:
  """{gate set: the width its deterministic test-time gates select}."""
  return {k: int(bb.bits_from_gates(bb.eval_gates(jnp.asarray(v["log_alpha"]), cfg), cfg)) for k, v in gates.items()}


def exported(cfg: ResNet1dConfig, jg: JointGraph, variables: Mapping[str, Any], window: int
             ) -> tuple[ResNet1dConfig, dict[str, Any], dict[str, tuple[int, int]], dict[str, str]]:
  """(plain config, its params inherited from the chosen branches, {layer: (b_in, b_w)} of the plain twin,
  {slot: op}) of a trained joint supernet (argmax α, deterministic gates)."""
  from jaxbp.quant.readoff import bit_shapes  # pylint: disable=import-outside-toplevel
  from jaxbp.quant.twin import gate_layout  # pylint: disable=import-outside-toplevel
  choice = choice_of(variables["arch"], jg)
  plain_cfg = dataclasses.replace(cfg, ops=tuple(choice[s] for s in cfg.slot_specs()))
  keep = lambda name: (jg.branch(name) is None) or (choice[jg.branch(name)[0]] == jg.branch(name)[1])
  to_joint = {jg.plain_name(it.name): it.name for it in jg.items if isinstance(it, Node) and keep(it.name)}
  params = {jg.plain_name(k): v for k, v in variables["params"].items() if keep(k)}
  pol = policy()
  tw = twin(plain_cfg, pol)
  bits = gate_bits(variables["gates"], pol.bayesian_bits)
  shapes = bit_shapes(tw, window)
  gated_in = tw.graph.gated_inputs()
  config = {}
  for layer, g in gate_layout(tw.graph, pol).items():
    b_w = bits[f"{to_joint[layer]}/gates_w"]
    b_in = shapes.layer(layer).in_bits[0] if not g["act"] else bits.get(f"{to_joint[gated_in[layer]]}/gates_act", 8)
    config[layer] = (int(b_in), int(b_w))
  return plain_cfg, params, config, choice


def one_hot_inputs(jg: JointGraph, choice: Mapping[str, str], bits: Mapping[str, int], cfg: BBConfig = BBConfig()
                   ) -> tuple[dict[str, jax.Array], dict[str, jax.Array]]:
  """(θ, bit probabilities) one-hot at `choice` {slot: op} and `bits` {gate set: width}."""
  th = {s: jnp.asarray([1.0 if o == choice[s] else 0.0 for o in ops]) for s, ops in jg.slots}
  pr = {k: jnp.asarray([1.0 if b == bits[k] else 0.0 for b in cfg.support]) for k in gate_names(jg)}
  return th, pr


# ---- the search ---------------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class JointSearchConfig:
  """Joint search hyper-parameters (weights, gates and α all on the training batch, each with its own Adam).

  Attributes:
    weight_lr, gate_lr, arch_lr: Adam rates.
    epochs: passes over the training split, of which the first `warmup_epochs` train the weights only (the new
      branches start from random weights).
    batch_size: training batch size.
    bilevel: train α as `jaxbp.nas` does (DARTS, first order): weights and gates on the training batch, then α on
      a validation batch with the updated weights (each loss MSE + λ·E[latency]); else all three on the training
      batch (single level).
  """

  weight_lr: float = 1e-4
  gate_lr: float = 0.05
  arch_lr: float = 1e-2
  epochs: int = 8
  warmup_epochs: int = 2
  batch_size: int = 32
  bilevel: bool = False


@flax.struct.dataclass
class JointState:
  step: jax.Array
  params: Any
  gates: Any
  arch: Any
  opt_w: optax.OptState
  opt_g: optax.OptState
  opt_a: optax.OptState


def _txs(c: JointSearchConfig):
  return optax.adam(c.weight_lr), optax.adam(c.gate_lr), optax.adam(c.arch_lr)


def make_step(jt: JointTwin, table: JointTable, config: JointSearchConfig, warmup_steps: int, task: str = "regression"
              ) -> Callable[..., tuple[JointState, dict[str, jax.Array]]]:
  """`step(state, batch, lam, key)` (bilevel: `step(state, batch, val_batch, lam, key)`): loss = MSE +
  λ·E[latency]/latency(all conv, 8 bit); pure, not jitted."""
  target = target_key(task)
  tx_w, tx_g, tx_a = _txs(config)
  cfg = jt.policy.bayesian_bits
  jg = jt.graph
  conv = {s: ("conv" if "conv" in ops else ops[0]) for s, ops in jg.slots}
  ref = float(expected_latency(*one_hot_inputs(jg, conv, {k: 8 for k in gate_names(jg)}, cfg), jg, table, cfg))

  def loss_fn(params, gates, arch, batch, kd, kg, lam):
    out = jt.apply({"params": params, "gates": gates, "arch": arch}, batch["x"], train=True,
                   rngs={"dropout": kd, "gates": kg})
    task_loss = mse(out, batch[target])
    rel = expected_latency(thetas(arch), gate_probs(gates, cfg), jg, table, cfg) / ref
    return task_loss + lam * rel, (task_loss, rel)

  def update(state, gw, gg, ga):
    on = (state.step >= warmup_steps).astype(jnp.float32)
    uw, opt_w = tx_w.update(gw, state.opt_w, state.params)
    ug, opt_g = tx_g.update(gg, state.opt_g, state.gates)
    ua, opt_a = tx_a.update(ga, state.opt_a, state.arch)
    scale = lambda u: jax.tree.map(lambda x: on * x, u)
    return state.replace(step=state.step + 1, params=optax.apply_updates(state.params, uw),
                         gates=optax.apply_updates(state.gates, scale(ug)),
                         arch=optax.apply_updates(state.arch, scale(ua)), opt_w=opt_w, opt_g=opt_g, opt_a=opt_a)

  def step(state: JointState, batch, lam: jax.Array, key: jax.Array):
    kd, kg = jax.random.split(jax.random.fold_in(key, state.step))
    (_, (task_loss, rel)), (gw, gg, ga) = jax.value_and_grad(loss_fn, argnums=(0, 1, 2), has_aux=True)(
        state.params, state.gates, state.arch, batch, kd, kg, lam)
    return update(state, gw, gg, ga), {"mse": task_loss, "rel_latency": rel}

  def bilevel_step(state: JointState, batch, val_batch, lam: jax.Array, key: jax.Array):
    kd, kg, kd2, kg2 = jax.random.split(jax.random.fold_in(key, state.step), 4)
    (_, (task_loss, _)), (gw, gg) = jax.value_and_grad(loss_fn, argnums=(0, 1), has_aux=True)(
        state.params, state.gates, state.arch, batch, kd, kg, lam)
    uw, _ = tx_w.update(gw, state.opt_w, state.params)
    params = optax.apply_updates(state.params, uw)  # α's step sees the updated weights (first-order DARTS).
    (_, (val_loss, rel)), ga = jax.value_and_grad(loss_fn, argnums=2, has_aux=True)(
        params, state.gates, state.arch, val_batch, kd2, kg2, lam)
    return update(state, gw, gg, ga), {"mse": task_loss, "val_mse": val_loss, "rel_latency": rel}

  return bilevel_step if config.bilevel else step


def start_variables(jt: JointTwin, window: int, int8_params: Mapping[str, Any] | None, calib: Sequence[np.ndarray],
                    seed: int = 0) -> dict[str, Any]:
  """Joint variables: every node found in `int8_params` (a TQT twin of the seed; its conv slots feed the "conv"
  branches) copied from there, the rest initialized and their quantizer ranges calibrated on `calib` batches;
  gates at their init (8 bit), α = 0 (uniform θ)."""
  k = jax.random.key(seed)
  x0 = jnp.zeros((1, *example_shape(window)), jnp.float32)
  v = jax.device_get(jax.jit(lambda k: jt.init({"params": k, "dropout": k, "gates": k}, x0, train=False))(k))
  v = {c: dict(t) for c, t in v.items()}
  params = dict(v["params"])
  copied = set()
  for name, sub in params.items():
    src = (int8_params or {}).get(jt.graph.plain_name(name))
    if src is not None and jax.tree.map(np.shape, dict(src)) == jax.tree.map(np.shape, dict(sub)):
      params[name] = jax.tree.map(np.asarray, src)
      copied.add(name)
  v["params"] = params
  fn = jax.jit(lambda v, x: jt.apply(v, x, train=False, mutable=["calibration"])[1]["calibration"])
  sums: dict[str, float] = {}
  for xb in calib:
    for name, rec in jax.device_get(fn({"params": params, "gates": v["gates"], "arch": v["arch"]}, xb)).items():
      sums[name] = sums.get(name, 0.0) + float(rec["q"]["range"])
  ranges = {k_: s / max(len(calib), 1) for k_, s in sums.items() if k_ not in copied}
  v = set_ranges(jt, v, ranges)
  return {"params": v["params"], "gates": v["gates"], "arch": v["arch"]}


def search(jt: JointTwin, variables: Mapping[str, Any], train: Mapping[str, np.ndarray], lambdas: Sequence[float],
           table: JointTable, config: JointSearchConfig, *, engine: EngineConfig = EngineConfig(), seed: int = 0,
           task: str = "regression", progress: Callable[[dict[str, Any]], None] | None = None,
           val: Mapping[str, np.ndarray] | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
  """One joint candidate per λ, all at once on the engine; (final variables per λ, history per epoch).
  `val`: the validation split, for `config.bilevel`."""
  n = len(lambdas)
  steps_per_epoch = len(train["x"]) // config.batch_size
  if config.bilevel and val is None:
    raise ValueError("bilevel joint search: needs the validation split (val=...)")
  if steps_per_epoch < 1:
    raise ValueError(f"training split has {len(train['x'])} windows, fewer than one batch of {config.batch_size}")
  eng = Engine(make_step(jt, table, config, config.warmup_epochs * steps_per_epoch, task), n, engine,
               n_shared=2 if config.bilevel else 1)
  tx_w, tx_g, tx_a = _txs(config)
  p, g, a = (jax.tree.map(jnp.asarray, variables[k]) for k in ("params", "gates", "arch"))
  state = JointState(jnp.zeros((), jnp.int32), p, g, a, tx_w.init(p), tx_g.init(g), tx_a.init(a))
  final, history = run_lambdas(eng, state, lambdas, train, epochs=config.epochs, batch_size=config.batch_size,
                               seed=seed, progress=progress, val=val if config.bilevel else None)
  take = lambda tree, i: jax.tree.map(lambda x: np.asarray(x[i]), tree)
  return [{"params": take(final.params, i), "gates": take(final.gates, i), "arch": take(final.arch, i)}
          for i in range(n)], history
