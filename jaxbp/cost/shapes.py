"""Static per-layer shape information, collected by tracing a network once (no FLOPs are run).

Every conv slot (a module with a `SlotSpec`: a plain conv/dw/id op or a NAS choice layer) becomes a
`LayerShape`; everything else (BatchNorm, squeeze-excitation, head, norms) is summed into the
network's fixed parameters and MACs, so that costs are totals for the whole network.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxbp.models.layers import OP_MODULES, SlotSpec

_OP_OF = {cls: op for op, cls in OP_MODULES.items()}


@dataclasses.dataclass(frozen=True)
class LayerShape:
  """One conv slot.

  Attributes:
    name: "/"-joined module path, e.g. "block0/conv1".
    path: module path as a tuple (where its "arch" logits live in a supernet).
    spec: static conv description (channels, kernel, stride, groups, bias).
    ops: the alternatives at this slot (a single op for a plain network).
    in_length, out_length: time samples in and out (per example).
    searchable: whether the slot carries architecture logits (a choice layer).
  """

  name: str
  path: tuple[str, ...]
  spec: SlotSpec
  ops: tuple[str, ...]
  in_length: int
  out_length: int
  searchable: bool


@dataclasses.dataclass(frozen=True)
class NetShapes:
  """All slots of a network plus its fixed (non-slot) parameters and MACs per example."""

  layers: tuple[LayerShape, ...]
  fixed_params: int
  fixed_macs: int
  window: int

  def layer(self, name: str) -> LayerShape:
    for l in self.layers:
      if l.name == name:
        return l
    raise KeyError(f"no conv slot named {name!r}; slots: {[l.name for l in self.layers]}")


def _is_slot(module: nn.Module) -> bool:
  return getattr(type(module), "is_conv_slot", False) and isinstance(getattr(module, "spec", None), SlotSpec)


def _inside_slot(module: nn.Module) -> bool:
  parent = module.parent
  while isinstance(parent, nn.Module):
    if _is_slot(parent):
      return True
    parent = parent.parent
  return False


def _dense_macs(module: nn.Module, x: jax.ShapeDtypeStruct, y: Any) -> int:
  """MACs per example of an nn.Conv / nn.Dense call, from its input and output shapes."""
  out_elems = int(np.prod(y.shape[1:]))
  if isinstance(module, nn.Conv):
    k = int(np.prod(module.kernel_size))
    return out_elems * k * (x.shape[-1] // module.feature_group_count)
  return out_elems * x.shape[-1]


def trace(model: nn.Module, window: int, **apply_kwargs) -> NetShapes:
  """Traces `model` on a (1, window, 1) input and returns its static `NetShapes`."""
  slots: list[LayerShape] = []
  fixed_macs = [0]
  slot_params: dict[tuple[str, ...], int] = {}

  def interceptor(next_fun, args, kwargs, context):
    module = context.module
    y = next_fun(*args, **kwargs)
    if context.method_name != "__call__":
      return y
    if _is_slot(module) and not _inside_slot(module):
      path = tuple(module.path)
      ops = tuple(getattr(module, "ops", ())) or (_OP_OF[type(module)],)
      slots.append(LayerShape("/".join(path), path, module.spec, ops, args[0].shape[1], y.shape[1],
                              searchable=hasattr(module, "ops")))
    elif isinstance(module, (nn.Conv, nn.Dense)) and not _inside_slot(module):
      fixed_macs[0] += _dense_macs(module, args[0], y)
    return y

  def init():
    with nn.intercept_methods(interceptor):
      rngs = {"params": jax.random.key(0), "dropout": jax.random.key(0), "gumbel": jax.random.key(0)}
      return model.init(rngs, jnp.zeros((1, window, 1)), **apply_kwargs)

  variables = jax.eval_shape(init)
  flat = jax.tree_util.tree_flatten_with_path(variables["params"])[0]
  total = 0
  for keypath, leaf in flat:
    n = int(np.prod(leaf.shape))
    total += n
    names = tuple(k.key for k in keypath)
    for s in slots:
      if names[:len(s.path)] == s.path:
        slot_params[s.path] = slot_params.get(s.path, 0) + n
  # Slot params of the *whole* slot (every branch) are removed; costs add back the chosen branches.
  fixed = total - sum(slot_params.values())
  # A slot module called twice (weight sharing) would be recorded twice; the seeds call each slot once.
  return NetShapes(tuple(slots), fixed, fixed_macs[0], window)
