"""The quantized graph: a static, network-order list of nodes that the quantized twin interprets.

A `QGraph` is what an integerizer walks: every node names its inputs (earlier nodes), its op, and the grid of
its output (`GridSpec`). Every tensor that flows between layers is on a known integer grid:

  * nodes with an output quantizer (`out` set) requantize onto their own grid;
  * grid-preserving nodes (`GRID_PRESERVING`: max-pool, channel zero-pad, crop, dropout) keep their input's
    grid (zero is representable on every grid, so zero padding is exact);
  * the last node may have `out=None`: its int32 accumulator (quantum ε_x·ε_w per channel) is the output.

Ops and their integer meaning (ACC = int32 accumulator, requant = `Y = clip((k_c·ACC + λ_c) >> d)`):
  input          network input → signed symmetric grid.
  conv / dense   ACC = Σ X·W + B (B int32 on ε_x·ε_w), folded BN; optional ReLU; requant to `out`.
  affine         per-channel scale/shift (a BatchNorm with no conv before it) + ReLU → requant per channel.
  mean           mean over time, requant (the sum times 1/L) to `out`.
  add            as PULP-NN: each input requantized onto an intermediate quantum and clipped to its 8-bit grid,
                 summed, then requantized to `out` (`qlayers.pulp_add`, `jaxbp.integerize.ops`).
  mul            x · gate (gate broadcast over time) → requant to `out`.
  sigmoid        a lookup table from the signed 8-bit input codes to the fixed unsigned 8-bit grid (scale 1/255).
  maxpool        zero-pad ((w-1)//2 left, rest right) and max-pool w/w; grid preserved.
  pad_channels   zero channels in front/back; grid preserved.
  dropout        identity at eval (training only); grid preserved.
  norm_prelu     InstanceNorm (per example, affine) + per-channel PReLU → requant (UNet1d only; needs an
                 integer mean/variance/rsqrt kernel, not a plain requant).
  upsample2      ×2 linear interpolation (align_corners=True) → requant to `out`.
  concat         centre-crop both inputs to the shorter length, concatenate channels; both inputs
                 requantized to `out`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from jaxbp.models.layers import SlotSpec

OPS = ("input", "conv", "dense", "affine", "mean", "add", "mul", "sigmoid", "maxpool", "pad_channels", "dropout",
       "norm_prelu", "upsample2", "concat")
WEIGHTED = ("conv", "dense")
GRID_PRESERVING = ("maxpool", "pad_channels", "dropout")
ACTS = ("none", "relu")


@dataclasses.dataclass(frozen=True)
class GridSpec:
  """The static part of an output grid.

  Attributes:
    signed: signed symmetric grid (zero exact) or unsigned [0, 2^b - 1].
    bits: fixed bit width, or None for the quantization policy's activation bits.
    scale: fixed quantum (no learned range), e.g. 1/255 for the sigmoid output; None = learned range.
    searchable: whether mixed-precision search may change this grid's bits.
  """

  signed: bool
  bits: int | None = None
  scale: float | None = None
  searchable: bool = True


SIGNED = GridSpec(signed=True)
UNSIGNED = GridSpec(signed=False)


@dataclasses.dataclass(frozen=True)
class Node:
  """One op of a quantized graph.

  Attributes:
    name: unique name ("block0/conv1"); also the twin's module name and read-off key.
    op: one of `OPS`.
    inputs: names of the nodes feeding this one (in order).
    out: output grid; None for grid-preserving ops and for an accumulator output (last node only).
    act: activation applied before the output quantizer ("none" | "relu").
    spec: conv shape (conv only), as the float network's `SlotSpec`.
    features: output features (dense); use_bias: dense bias.
    window: max-pool window = stride; pad: zero channels (front, back); rate: dropout rate.
    src: path of the float module holding this node's parameters (conv/dense kernel, BN, norm).
    bn: path of the BatchNorm folded into this conv (empty: none).
    prelu: path of the float PReLU module (norm_prelu only).
  """

  name: str
  op: str
  inputs: tuple[str, ...] = ()
  out: GridSpec | None = None
  act: str = "none"
  spec: SlotSpec | None = None
  features: int | None = None
  use_bias: bool = False
  window: int = 1
  pad: tuple[int, int] = (0, 0)
  rate: float = 0.0
  src: tuple[str, ...] = ()
  bn: tuple[str, ...] = ()
  prelu: tuple[str, ...] = ()

  @property
  def weighted(self) -> bool:
    return self.op in WEIGHTED


@dataclasses.dataclass(frozen=True)
class QGraph:
  """A validated quantized graph: nodes in execution order, the last one is the output."""

  nodes: tuple[Node, ...]
  model: str = ""

  def __post_init__(self):
    seen: set[str] = set()
    for i, n in enumerate(self.nodes):
      if n.op not in OPS:
        raise ValueError(f"node {n.name!r}: unknown op {n.op!r}; expected one of {OPS}")
      if n.name in seen:
        raise ValueError(f"node {n.name!r} appears twice")
      if n.act not in ACTS:
        raise ValueError(f"node {n.name!r}: unknown activation {n.act!r}")
      for src in n.inputs:
        if src not in seen:
          raise ValueError(f"node {n.name!r}: input {src!r} is not an earlier node")
      want = {"input": 0, "add": 2, "mul": 2, "concat": 2}.get(n.op, 1)
      if len(n.inputs) != want:
        raise ValueError(f"node {n.name!r} ({n.op}) needs {want} inputs, got {len(n.inputs)}")
      if n.op in GRID_PRESERVING and n.out is not None:
        raise ValueError(f"node {n.name!r}: {n.op} preserves its input grid and takes no output grid")
      if n.op not in GRID_PRESERVING and n.out is None and i != len(self.nodes) - 1:
        raise ValueError(f"node {n.name!r}: only the last node may output its accumulator (out=None)")
      if n.op == "conv" and n.spec is None:
        raise ValueError(f"node {n.name!r}: conv needs a spec")
      if n.op == "dense" and not n.features:
        raise ValueError(f"node {n.name!r}: dense needs features")
      seen.add(n.name)

  def __getitem__(self, name: str) -> Node:
    for n in self.nodes:
      if n.name == name:
        return n
    raise KeyError(f"no node named {name!r} in the {self.model or 'quantized'} graph")

  @property
  def output(self) -> Node:
    return self.nodes[-1]

  def weighted(self) -> tuple[Node, ...]:
    return tuple(n for n in self.nodes if n.weighted)

  def grid_source(self, name: str) -> str:
    """The node whose output quantizer defines the grid of `name`'s output (through grid-preserving ops)."""
    node = self[name]
    while node.op in GRID_PRESERVING:
      node = self[node.inputs[0]]
    return node.name

  def consumers(self, name: str) -> tuple[Node, ...]:
    return tuple(n for n in self.nodes if name in n.inputs)

  def grid_consumers(self, name: str) -> tuple[Node, ...]:
    """Nodes that read `name`'s grid directly or through grid-preserving ops."""
    out: list[Node] = []
    for c in self.consumers(name):
      out.extend(self.grid_consumers(c.name) if c.op in GRID_PRESERVING else (c,))
    return tuple(out)

  def input_quantizer(self, name: str) -> str:
    """The node whose output quantizer produces the (first) input of weighted node `name`."""
    return self.grid_source(self[name].inputs[0])

  def gated_inputs(self) -> dict[str, str]:
    """{weighted layer: its input quantizer} where mixed precision may choose that quantizer's bits.

    A quantizer is searchable for layer L when its grid is `searchable` and L is the only weighted layer
    that reads it (other readers, e.g. a residual add, just requantize whatever grid it has).
    """
    out = {}
    for n in self.weighted():
      q = self.input_quantizer(n.name)
      src = self[q]
      readers = [c for c in self.grid_consumers(q) if c.weighted]
      if src.out is not None and src.out.searchable and src.out.bits is None and [r.name for r in readers] == [n.name]:
        out[n.name] = q
    return out


def chain(nodes: Iterable[Node], model: str) -> QGraph:
  return QGraph(tuple(nodes), model)
