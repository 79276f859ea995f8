"""From a seed config to its supernet, and from searched logits back to a plain, smaller network.

`supernet(config)` works for any network built from `jaxbp.models.layers` slots (ResNet1d, UNet1d, or a
user network with a `slot` field): every conv slot becomes a `ChoiceConv`. `export` takes argmax α per
layer and returns the plain config (its `ops`) and the variables of the chosen branches.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import flax.linen as nn
import jax
import numpy as np

from jaxbp.cost import NetShapes, alpha_at, trace
from jaxbp.models import ModelConfig, build
from jaxbp.nas.choice import MODES, choice_slot


def supernet(config: ModelConfig, mode: str = "soft", ops: tuple[str, ...] = ("conv", "dw", "id")) -> nn.Module:
  """The supernet module of a seed (or any slot-built) config."""
  if mode not in MODES:
    raise ValueError(f"unknown choice mode {mode!r}; expected one of {MODES}")
  return build(config, slot=choice_slot(mode, tuple(ops)))


def choices(arch: Any, shapes: NetShapes) -> dict[str, str]:
  """argmax α per searchable layer: {layer name: op}."""
  return {l.name: l.ops[int(np.argmax(np.asarray(alpha_at(arch, l.path))))] for l in shapes.layers if l.searchable}


def exported_config(config: ModelConfig, choice: Mapping[str, str]) -> ModelConfig:
  """The seed config with per-slot `ops` set from `choice` (names as in `config.slot_specs()`)."""
  names = list(config.slot_specs())
  traced = list(choice)
  if len(traced) != len(names):
    raise ValueError(f"choice covers {len(traced)} layers but the network has {len(names)} conv slots")
  # Trace order equals slot_specs order (both follow the forward pass); names differ only in module nesting.
  return dataclasses.replace(config, ops=tuple(choice[t] for t in traced))


def _get(tree: Mapping[str, Any], path: tuple[str, ...]) -> Any:
  for p in path:
    tree = tree[p]
  return tree


def _without(tree: Mapping[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
  """A copy of `tree` without the subtree at `path` (and without parents left empty)."""
  if not path:
    return {}
  out = {k: v for k, v in tree.items()}
  head, rest = path[0], path[1:]
  if head in out:
    sub = _without(out[head], rest) if rest else {}
    if sub:
      out[head] = sub
    else:
      del out[head]
  return out


def _with(tree: Mapping[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
  out = dict(tree)
  if len(path) == 1:
    out[path[0]] = value
  else:
    out[path[0]] = _with(out.get(path[0], {}), path[1:], value)
  return out


def inherit(variables: Mapping[str, Any], shapes: NetShapes, choice: Mapping[str, str]) -> dict[str, Any]:
  """Plain-network variables from supernet `variables`: each slot keeps the chosen branch's weights.

  Collections "arch" and "nas_state" are dropped; "params" and e.g. "batch_stats" are remapped.
  """
  out = {}
  for collection, tree in variables.items():
    if collection in ("arch", "nas_state"):
      continue
    tree = jax.tree.map(lambda x: x, dict(tree))
    for layer in shapes.layers:
      if not layer.searchable:
        continue
      try:
        slot = _get(tree, layer.path)
      except KeyError:
        continue
      op = choice[layer.name]
      tree = _without(tree, layer.path)
      if op in slot:
        tree = _with(tree, layer.path, slot[op])
    out[collection] = tree
  return out


def export(config: ModelConfig, variables: Mapping[str, Any], shapes: NetShapes
           ) -> tuple[ModelConfig, dict[str, Any], dict[str, str]]:
  """(plain config, its inherited variables, {layer: op}) from a trained supernet."""
  choice = choices(variables["arch"], shapes)
  return exported_config(config, choice), inherit(variables, shapes, choice), choice


def supernet_shapes(config: ModelConfig, window: int, mode: str = "soft",
                    ops: tuple[str, ...] = ("conv", "dw", "id")) -> NetShapes:
  return trace(supernet(config, mode, ops), window)
