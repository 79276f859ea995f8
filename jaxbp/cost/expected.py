"""Expected costs of a (super)network: Σ_layers Σ_i θ_i · cost_i + the fixed part, as `Cost` objects.

θ = softmax(α / T) per searchable layer (T = the `temperature` argument); a plain network's slots
contribute their single op. With one-hot θ the expected count equals the exported network's exact count.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from jaxbp.cost.algebra import Cost
from jaxbp.cost.ops import op_macs, op_params, op_weight_bytes
from jaxbp.cost.shapes import LayerShape, NetShapes

PerOp = Callable[[str, LayerShape], float]


def alpha_at(arch: Any, path: tuple[str, ...]) -> jax.Array:
  """The logits of the choice layer at module `path` in the "arch" collection."""
  node = arch
  for p in path:
    try:
      node = node[p]
    except (KeyError, TypeError):
      raise KeyError(f"no architecture logits for layer {'/'.join(path)!r} (missing {p!r})") from None
  return node["alpha"]


def layer_theta(arch: Any, layer: LayerShape, temperature: Any = 1.0) -> jax.Array:
  """θ of a layer (n_ops,); a fixed slot is one-hot on its op."""
  if not layer.searchable:
    return jnp.ones((1,), jnp.float32)
  return jax.nn.softmax(alpha_at(arch, layer.path) / temperature, axis=-1)


def expected(per_op: PerOp, fixed: Callable[[NetShapes], float] = lambda s: 0.0, name: str = "cost") -> Cost:
  """Cost = fixed(shapes) + Σ_layers θ · [per_op(op, layer) for op in layer.ops]."""

  def fn(arch, shapes: NetShapes, temperature):
    total = jnp.asarray(fixed(shapes), jnp.float32)
    for layer in shapes.layers:
      table = jnp.asarray([per_op(op, layer) for op in layer.ops], jnp.float32)
      total = total + jnp.dot(layer_theta(arch, layer, temperature), table)
    return total

  return Cost(fn, name)


def params() -> Cost:
  """Expected number of parameters (whole network)."""
  return expected(op_params, lambda s: s.fixed_params, "params")


def macs() -> Cost:
  """Expected multiply-accumulates per inference (whole network: convs, SE and head dense layers)."""
  return expected(op_macs, lambda s: s.fixed_macs, "macs")


def weight_bytes(bits: int = 8, bias_bits: int = 32) -> Cost:
  """Expected bytes of weights at `bits` (biases at `bias_bits`; non-slot parameters at `bits`)."""
  return expected(lambda op, l: op_weight_bytes(op, l, bits, bias_bits),
                  lambda s: s.fixed_params * bits / 8, f"bytes@{bits}b")


def latency(table: Mapping[tuple[str, str], float] | Callable[[str, LayerShape], float],
            fixed: float = 0.0) -> Cost:
  """Expected latency Σ θ_i · latency_i from a table {(layer name, op): latency} or a function (op, layer).

  The deployment simulator fills this table; any numbers (cycles, ms) work. Missing entries are errors.
  """
  if callable(table):
    lookup = table
  else:
    def lookup(op: str, layer: LayerShape) -> float:
      try:
        return float(table[(layer.name, op)])
      except KeyError:
        raise KeyError(f"latency table has no entry for layer {layer.name!r}, op {op!r}") from None
  return expected(lookup, lambda s: fixed, "latency")


def exact_counts(shapes: NetShapes, choice: Mapping[str, str] | None = None) -> dict[str, int]:
  """Exact params / MACs of a plain network from its trace, or of the network a supernet trace exports under
  `choice` ({searchable layer name: op}; no trace of the exported network needed)."""
  if choice is None and any(l.searchable for l in shapes.layers):
    raise ValueError("exact_counts needs a plain network or a choice for every searchable layer")
  missing = [l.name for l in shapes.layers if l.searchable and l.name not in (choice or {})]
  if missing:
    raise ValueError(f"exact_counts: no op chosen for searchable layer(s) {missing}")
  ops = [choice[l.name] if l.searchable else l.ops[0] for l in shapes.layers]
  return {"params": shapes.fixed_params + sum(op_params(o, l) for o, l in zip(ops, shapes.layers)),
          "macs": shapes.fixed_macs + sum(op_macs(o, l) for o, l in zip(ops, shapes.layers))}


def one_hot_arch(shapes: NetShapes, choice: Mapping[str, str], big: float = 1e4) -> dict[str, Any]:
  """An "arch" tree whose softmax is one-hot (to float precision) on `choice[layer name]`."""
  arch: dict[str, Any] = {}
  for l in shapes.layers:
    if not l.searchable:
      continue
    node = arch
    for p in l.path:
      node = node.setdefault(p, {})
    node["alpha"] = jnp.asarray(np.where(np.array(l.ops) == choice[l.name], big, 0.0), jnp.float32)
  return arch
