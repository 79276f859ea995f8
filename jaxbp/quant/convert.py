"""Float network variables -> quantized-twin variables (BN folded, standalone BNs as affines)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np

from jaxbp.models.params import example_shape
from jaxbp.quant.bn_fold import bn_affine, fold_bn
from jaxbp.quant.twin import QuantTwin


def _at(tree: Mapping[str, Any], path: tuple[str, ...], what: str, node: str) -> Any:
  for p in path:
    try:
      tree = tree[p]
    except (KeyError, TypeError):
      raise KeyError(f"node {node!r}: float {what} has no {'/'.join(path)!r} (missing {p!r})") from None
  return tree


def init_twin(tw: QuantTwin, key: jax.Array, window: int, batch: int = 2) -> dict[str, Any]:
  """Freshly initialised twin variables ("params", and "gates" with Bayesian Bits) for (batch, window, 1)."""
  x = jnp.zeros((batch, *example_shape(window)), jnp.float32)  # window: int (1-D) or an image shape
  init = jax.jit(lambda k: tw.init({"params": k, "dropout": k, "gates": k}, x, train=False))
  variables = flax.core.unfreeze(init(key))
  return {k: v for k, v in variables.items() if k in ("params", "gates")}


def twin_shapes(tw: QuantTwin, window: int) -> dict[str, Any]:
  """The twin's variable structure ("params", "gates") as ShapeDtypeStructs (traced, nothing compiled)."""
  x = jax.ShapeDtypeStruct((1, *example_shape(window)), jnp.float32)
  k = jax.random.key(0)
  shapes = jax.eval_shape(lambda x: tw.init({"params": k, "dropout": k, "gates": k}, x, train=False), x)
  return {c: flax.core.unfreeze(v) for c, v in shapes.items() if c in ("params", "gates")}


def _default(tw: QuantTwin, leaf: str, node: str, shape: tuple[int, ...]) -> np.ndarray:
  """Deterministic initial value of a parameter that the float network does not provide."""
  values = {"alpha": 1.0, "log2_t": 0.0, "scale": 1.0, "shift": 0.0, "norm_scale": 1.0, "norm_bias": 0.0,
            "prelu": 0.25}
  if leaf == "log_alpha":
    return np.full(shape, tw.policy.bayesian_bits.init_log_alpha, np.float32)
  if leaf not in values:
    raise KeyError(f"node {node!r}: no float value and no default for twin parameter {leaf!r}")
  return np.full(shape, values[leaf], np.float32)


def from_float(tw: QuantTwin, float_variables: Mapping[str, Any], window: int) -> dict[str, Any]:
  """Twin variables whose eval function equals the float network's (before quantization).

  Conv kernels/biases are copied with their following BatchNorm folded in (running statistics),
  standalone BatchNorms become per-channel affines, dense and norm parameters are copied. Quantizer
  ranges start at α = 1 / log2 t = 0 and Bayesian-Bits gates at `init_log_alpha`: run `calibrate` next.
  Nothing is compiled (the structure comes from `jax.eval_shape`).
  """
  params = float_variables["params"]
  stats = float_variables.get("batch_stats", {})
  shapes = twin_shapes(tw, window)
  out: dict[str, dict[str, Any]] = {name: {} for name in shapes["params"]}
  for n in tw.graph.nodes:
    want = shapes["params"].get(n.name, {})
    if n.op in ("conv", "dense"):
      mod = _at(params, n.src, "params", n.name)
      kernel = jnp.asarray(mod["kernel"])
      bias = jnp.asarray(mod["bias"]) if "bias" in mod else None
      if n.bn:
        bn, st = _at(params, n.bn, "params", n.name), _at(stats, n.bn, "batch_stats", n.name)
        kernel, bias = fold_bn(kernel, bias, bn["scale"], bn["bias"], st["mean"], st["var"])
      if kernel.shape != want["kernel"].shape:
        raise ValueError(f"node {n.name!r}: float kernel {kernel.shape} but the twin expects {want['kernel'].shape}")
      out[n.name]["kernel"] = kernel
      if "bias" in want:
        out[n.name]["bias"] = jnp.zeros(want["bias"].shape) if bias is None else bias
    elif n.op == "affine":
      bn, st = _at(params, n.src, "params", n.name), _at(stats, n.src, "batch_stats", n.name)
      out[n.name]["scale"], out[n.name]["shift"] = bn_affine(bn["scale"], bn["bias"], st["mean"], st["var"])
    elif n.op == "norm_prelu":
      norm = _at(params, n.src, "params", n.name)
      out[n.name]["norm_scale"], out[n.name]["norm_bias"] = norm["scale"], norm["bias"]
      out[n.name]["prelu"] = _at(params, n.prelu, "params", n.name)["alpha"]

  def fill(tree, shape_tree, node):
    filled = {}
    for key, sub in shape_tree.items():
      if isinstance(sub, dict):
        filled[key] = fill(tree.get(key, {}), sub, node)
      elif key in tree:
        filled[key] = jnp.asarray(tree[key], jnp.float32)
      else:
        filled[key] = jnp.asarray(_default(tw, key, node, sub.shape))
    return filled

  variables = {"params": {name: fill(out[name], sub, name) for name, sub in shapes["params"].items()}}
  if "gates" in shapes:
    variables["gates"] = {name: fill({}, sub, name) for name, sub in shapes["gates"].items()}
  return variables
