"""The integer graph IR: a plain, serializable list of integer ops over quantized tensors.

A tensor is an integer array with a bit width, a signedness and a quantum (`scale`): the real value
it stands for is `scale * X`. Shapes are per example and channels-last: (C,), (L, C) for 1-D nets,
(H, W, C) for 2-D nets; a batch axis is added in front at run time. Every node reads named tensors
and writes one; its integer parameters are NumPy arrays, everything else is JSON (see `ops.py`).

On disk a graph is `graph.json` (structure) plus `graph.npz` (arrays keyed `"<node>:<field>"`).
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from collections.abc import Mapping
from typing import Any

import numpy as np

FORMAT_VERSION = 1
ACC_BITS = 32  # an int32 accumulator tensor (a layer's raw output, no requantization)
ACT_BITS = (2, 4, 8)


class GraphError(ValueError):
  """A malformed graph; the message names the node/tensor/field and what was expected."""


@dataclasses.dataclass(frozen=True)
class TensorSpec:
  """One integer tensor.

  Attributes:
    shape: per-example shape, channels last.
    bits: 2, 4 or 8 (activations) or 32 (an int32 accumulator output).
    signed: two's complement range [-2^(b-1), 2^(b-1)-1] if True, else [0, 2^b-1].
    scale: the quantum: real value = scale * integer value (> 0); a 32-bit accumulator tensor may have one
      scale per channel (a tuple), e.g. the raw output of a linear layer with per-channel weight scales.
    narrow: a signed symmetric grid [-(2^(b-1)-1), 2^(b-1)-1] (no lone -2^(b-1) level), as symmetric
      fake-quantizers produce. Only graph inputs (and the pass-through ops reading them) may be narrow: computed
      outputs clip to the full grid, as PULP-NN's kernels do (`ops.validate_graph`).
  """

  shape: tuple[int, ...]
  bits: int
  signed: bool
  scale: float | tuple[float, ...]
  narrow: bool = False

  def __post_init__(self):
    object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
    scale = self.scale
    scale = tuple(float(s) for s in scale) if isinstance(scale, (tuple, list, np.ndarray)) else float(scale)
    object.__setattr__(self, "scale", scale)

  @property
  def channels(self) -> int:
    return self.shape[-1]

  @property
  def range(self) -> tuple[int, int]:
    lo, hi = int_range(self.bits, self.signed)
    return (lo + 1 if self.narrow and self.signed else lo), hi

  def dequantize(self, x: np.ndarray) -> np.ndarray:
    """Real values (float64) of integers `x` (..., C) of this tensor."""
    return np.asarray(x, np.float64) * np.asarray(self.scale, np.float64)

  def to_json(self) -> dict[str, Any]:
    scale = list(self.scale) if isinstance(self.scale, tuple) else self.scale
    return {"shape": list(self.shape), "bits": self.bits, "signed": self.signed, "scale": scale, "narrow": self.narrow}


def int_range(bits: int, signed: bool) -> tuple[int, int]:
  """(lo, hi) of a `bits`-bit integer."""
  if signed:
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
  return 0, (1 << bits) - 1


@dataclasses.dataclass(frozen=True, eq=False)
class Node:
  """One integer op.

  Attributes:
    name: unique node name (e.g. "block0/conv1").
    op: op kind, one of `ops.OPS`.
    inputs: names of the tensors it reads.
    output: name of the tensor it writes.
    attrs: JSON-able static fields (ints, bools, lists of ints).
    arrays: integer parameters (weights, int32 biases, requant k and lambda, tables).
  """

  name: str
  op: str
  inputs: tuple[str, ...]
  output: str
  attrs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  arrays: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True, eq=False)
class Graph:
  """An integer network: tensors, nodes in execution order, graph inputs and outputs.

  Attributes:
    tensors: every tensor by name.
    nodes: nodes in a valid execution order.
    inputs: graph input tensor names (fed by the caller).
    outputs: graph output tensor names.
    meta: free-form JSON (source model, dataset, notes).
  """

  tensors: Mapping[str, TensorSpec]
  nodes: tuple[Node, ...]
  inputs: tuple[str, ...]
  outputs: tuple[str, ...]
  meta: Mapping[str, Any] = dataclasses.field(default_factory=dict)

  def node(self, name: str) -> Node:
    for n in self.nodes:
      if n.name == name:
        return n
    raise KeyError(f"no node named {name!r}; nodes: {[n.name for n in self.nodes]}")

  def producer(self, tensor: str) -> Node | None:
    for n in self.nodes:
      if n.output == tensor:
        return n
    return None

  def validate(self) -> Graph:
    """Checks the whole graph (names, order, shapes, dtypes, value ranges); returns self."""
    from jaxbp.integerize import ops  # pylint: disable=import-outside-toplevel
    ops.validate_graph(self)
    return self


# ---------------------------------------------------------------------------------------------------
# Serialization.

def to_json(graph: Graph) -> dict[str, Any]:
  """The JSON part of a graph (arrays are referenced by their npz key)."""
  return {
      "format": "jaxbp.integer_graph", "version": FORMAT_VERSION,
      "inputs": list(graph.inputs), "outputs": list(graph.outputs), "meta": dict(graph.meta),
      "tensors": {name: spec.to_json() for name, spec in graph.tensors.items()},
      "nodes": [{"name": n.name, "op": n.op, "inputs": list(n.inputs), "output": n.output,
                 "attrs": _jsonable(dict(n.attrs), f"node {n.name!r} attrs"),
                 "arrays": {f: array_key(n.name, f) for f in n.arrays}} for n in graph.nodes],
  }


def array_key(node: str, field: str) -> str:
  return f"{node}:{field}"


def save(graph: Graph, directory: str | pathlib.Path) -> pathlib.Path:
  """Validates `graph` and writes `graph.json` + `graph.npz` into `directory` (created). Returns it."""
  graph.validate()
  directory = pathlib.Path(directory)
  directory.mkdir(parents=True, exist_ok=True)
  arrays = {array_key(n.name, f): np.asarray(a) for n in graph.nodes for f, a in n.arrays.items()}
  with open(directory / "graph.npz", "wb") as f:
    np.savez(f, **arrays)
  (directory / "graph.json").write_text(json.dumps(to_json(graph), indent=1))
  return directory


def load(directory: str | pathlib.Path) -> Graph:
  """Reads and validates a graph written by `save`; errors name the file, node and field."""
  directory = pathlib.Path(directory)
  jpath, npath = directory / "graph.json", directory / "graph.npz"
  for p in (jpath, npath):
    if not p.is_file():
      raise GraphError(f"{p}: missing (an integer graph directory holds graph.json and graph.npz)")
  try:
    doc = json.loads(jpath.read_text())
  except json.JSONDecodeError as e:
    raise GraphError(f"{jpath}: not valid JSON ({e})") from e
  with np.load(npath, allow_pickle=False) as z:
    arrays = {k: z[k] for k in z.files}
  return from_json(doc, arrays, source=str(jpath)).validate()


def from_json(doc: Mapping[str, Any], arrays: Mapping[str, np.ndarray], source: str = "graph") -> Graph:
  """Builds a graph from its JSON document and the npz arrays (structure checks only; see `validate`)."""
  def need(d: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(d, Mapping) or key not in d:
      raise GraphError(f"{source}: {where}: missing field {key!r}")
    if not isinstance(d[key], kind):
      raise GraphError(f"{source}: {where}: field {key!r} must be {_kind_name(kind)}, got {d[key]!r}")
    return d[key]

  if doc.get("format") != "jaxbp.integer_graph":
    raise GraphError(f"{source}: field 'format' must be 'jaxbp.integer_graph', got {doc.get('format')!r}")
  if doc.get("version") != FORMAT_VERSION:
    raise GraphError(f"{source}: unsupported version {doc.get('version')!r} (expected {FORMAT_VERSION})")
  tensors = {}
  for name, t in need(doc, "tensors", dict, "graph").items():
    where = f"tensor {name!r}"
    shape = need(t, "shape", list, where)
    if not all(isinstance(s, int) for s in shape):
      raise GraphError(f"{source}: {where}: field 'shape' must be a list of ints, got {shape!r}")
    scale = need(t, "scale", (int, float, list), where)
    if isinstance(scale, list) and not all(isinstance(s, (int, float)) for s in scale):
      raise GraphError(f"{source}: {where}: field 'scale' must be a number or a list of numbers, got {scale!r}")
    scale = tuple(float(s) for s in scale) if isinstance(scale, list) else float(scale)
    narrow = t.get("narrow", False)
    if not isinstance(narrow, bool):
      raise GraphError(f"{source}: {where}: field 'narrow' must be a bool, got {narrow!r}")
    tensors[name] = TensorSpec(tuple(shape), need(t, "bits", int, where), need(t, "signed", bool, where), scale,
                               narrow)
  nodes = []
  for i, n in enumerate(need(doc, "nodes", list, "graph")):
    where = f"node #{i}"
    name = need(n, "name", str, where)
    where = f"node {name!r}"
    node_arrays = {}
    for field, key in need(n, "arrays", dict, where).items():
      if key not in arrays:
        raise GraphError(f"{source}: {where}: array {field!r} (npz key {key!r}) is missing from graph.npz")
      node_arrays[field] = arrays[key]
    nodes.append(Node(name, need(n, "op", str, where), tuple(need(n, "inputs", list, where)),
                      need(n, "output", str, where), _tuplify(need(n, "attrs", dict, where)), node_arrays))
  return Graph(tensors, tuple(nodes), tuple(need(doc, "inputs", list, "graph")),
               tuple(need(doc, "outputs", list, "graph")), dict(doc.get("meta", {})))


def _kind_name(kind: type | tuple[type, ...]) -> str:
  kinds = kind if isinstance(kind, tuple) else (kind,)
  return " or ".join(k.__name__ for k in kinds)


def _tuplify(attrs: dict[str, Any]) -> dict[str, Any]:
  """JSON lists back to (nested) tuples, so attrs compare equal after a round trip."""
  def conv(v):
    return tuple(conv(x) for x in v) if isinstance(v, list) else v
  return {k: conv(v) for k, v in attrs.items()}


def _jsonable(v: Any, where: str) -> Any:
  if isinstance(v, (bool, str)) or v is None:
    return v
  if isinstance(v, (int, np.integer)):
    return int(v)
  if isinstance(v, (float, np.floating)):
    return float(v)
  if isinstance(v, (list, tuple)):
    return [_jsonable(x, where) for x in v]
  if isinstance(v, dict):
    return {str(k): _jsonable(x, where) for k, x in v.items()}
  raise GraphError(f"{where}: value {v!r} of type {type(v).__name__} is not JSON-serializable")
