"""Latency dictionaries ("profiling" on the simulator) for Free Bits and for the cost functions.

- `profile(net, platform)`: for every layer type (LT: op, input shape, output channels, kernel, stride,
  padding, groups) of a network and every allowed (b_in, b_w), the simulated latency of that layer
  alone (as a kernel micro-benchmark would measure it: inputs, weights and output in L2, weights
  streamed from L3 only if they cannot fit). Saved as JSON / CSV; `LatencyDict.per_layer()` gives
  {(layer, b_in, b_w): cycles}, the table the bit-width costs and `jaxbp.freebits` take.
- `slot_table(shapes, platform)`: {(conv slot name, op): latency} for `jaxbp.cost.latency`, from a
  (super)network trace: every alternative of every slot (conv, dw = depthwise + pointwise, id = 0).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from jaxbp.cost.algebra import Cost
from jaxbp.cost.expected import latency as expected_latency
from jaxbp.cost.shapes import NetShapes
from jaxbp.deploy.layers import BITS, Layer, Network
from jaxbp.deploy.platforms import Platform
from jaxbp.deploy.schedule import L3Stream, layer_timing
from jaxbp.deploy.simulator import library_platform
from jaxbp.deploy.tiler import DEFAULT_TILER, deployed_platform, tile_layer_policy
from jaxbp.deploy.zoo import GraphBuilder, slot_layers

ALL_PAIRS = tuple((a, w) for a in BITS for w in BITS)
UNITS = ("cycles", "ms")


@dataclasses.dataclass(frozen=True)
class LayerType:
  """Everything that parametrizes a kernel call except bit widths (methods.md section 4)."""

  op: str
  mode: str
  in_shape: tuple[int, int, int]
  in2_shape: tuple[int, int, int] | None
  out_shape: tuple[int, int, int]
  kernel: tuple[int, int]
  stride: tuple[int, int]
  padding: tuple[int, int, int, int]
  groups: int

  @property
  def key(self) -> str:
    """A compact, unique string: "conv:1x66x32>1x66x32:k1x5:s1x1:p0.0.2.2:g2"."""
    fmt = lambda s: "x".join(map(str, s))
    op = f"{self.op}/{self.mode}" if self.mode else self.op
    in2 = f"+{fmt(self.in2_shape)}" if self.in2_shape else ""
    return (f"{op}:{fmt(self.in_shape)}{in2}>{fmt(self.out_shape)}:k{fmt(self.kernel)}:s{fmt(self.stride)}:"
            f"p{'.'.join(map(str, self.padding))}:g{self.groups}")


def layer_type(layer: Layer) -> LayerType:
  return LayerType(layer.op, layer.mode, layer.in_shape, layer.in2_shape, layer.out_shape, layer.kernel,
                   layer.stride, layer.padding, layer.groups)


def isolated_stream(layer: Layer, p: Platform) -> L3Stream:
  """L3 traffic of `layer` profiled alone: none if it fits L2; else weights, then activations, stream."""
  params = layer.param_bytes(p.requant_bytes_per_channel)
  acts = layer.in_bytes() + layer.in2_bytes() + layer.out_bytes()
  budget = p.l2_budget_bytes
  if params + acts <= budget or not p.l3_enabled:
    return L3Stream()
  chunk = min(params, p.l3_chunk_bytes)
  total, transfers, first, last = params, math.ceil(params / chunk), chunk, 0
  if acts + 2 * chunk > budget:
    for n, is_out in ((layer.in_bytes(), False), (layer.in2_bytes(), False), (layer.out_bytes(), True)):
      if n:
        c = min(n, p.l3_chunk_bytes)
        total, transfers = total + n, transfers + math.ceil(n / c)
        last, first = (c, first) if is_out else (last, first + c)
  return L3Stream(total, transfers, first, last)


@dataclasses.dataclass(frozen=True)
class Entry:
  """Simulated cost of one layer type at (b_in, b_w) (output at b_out)."""

  cycles: float
  compute_cycles: float
  dma_cycles: float
  n_tiles: int
  b_out: int
  fits_l1: bool


def profile_layer(layer: Layer, p: Platform, b_in: int, b_w: int, b_out: int, tiler: str = DEFAULT_TILER) -> Entry:
  """Simulates `layer` alone at the given bits, tiled under `tiler` ("dory": DORY's tile and buffering)."""
  kw: dict[str, Any] = {"bits_in": b_in, "bits_w": b_w if layer.weighted else 8, "bits_out": b_out}
  if layer.bits_in2 is not None:
    kw["bits_in2"] = b_in
  l = dataclasses.replace(layer, **kw)
  p = deployed_platform(p, tiler)
  tiling = tile_layer_policy(l, p, tiler)
  t = layer_timing(l, tiling.timing, isolated_stream(l, p), p)
  return Entry(t.total, t.compute, t.dma + t.l3, t.n_tiles, b_out, tiling.fits)


@dataclasses.dataclass(frozen=True)
class LatencyDict:
  """LD: (layer type, b_in, b_w) -> simulated latency, and which layers have which type.

  Attributes:
    platform, freq_mhz: where it was simulated.
    bits_out: "in" (each layer's output at its b_in) or a fixed output width.
    layers: layer name -> layer type key, in network order.
    types: layer type key -> LayerType.
    entries: (type key, b_in, b_w) -> Entry.
  """

  network: str
  platform: str
  freq_mhz: float
  bits_out: str | int
  layers: Mapping[str, str]
  types: Mapping[str, LayerType]
  entries: Mapping[tuple[str, int, int], Entry]

  def cycles(self, layer: str, b_in: int, b_w: int) -> float:
    try:
      return self.entries[(self.layers[layer], b_in, b_w)].cycles
    except KeyError:
      raise KeyError(f"latency dictionary ({self.network} on {self.platform}) has no entry for layer {layer!r} at "
                     f"(b_in={b_in}, b_w={b_w})") from None

  def per_layer(self, unit: str = "cycles") -> dict[tuple[str, int, int], float]:
    """{(layer, b_in, b_w): latency} for every layer and profiled pair (unit "cycles" or "ms")."""
    scale = _scale(unit, self.freq_mhz)
    return {(name, a, w): self.entries[(lt, a, w)].cycles * scale
            for name, lt in self.layers.items() for (k, a, w) in self.entries if k == lt}

  def to_json(self) -> dict[str, Any]:
    return {"network": self.network, "platform": self.platform, "freq_mhz": self.freq_mhz, "unit": "cycles",
            "bits_out": self.bits_out, "layers": dict(self.layers),
            "types": {k: _lt_dict(t) for k, t in self.types.items()},
            "entries": [{"type": k, "b_in": a, "b_w": w, **dataclasses.asdict(e)}
                        for (k, a, w), e in self.entries.items()]}

  def save_json(self, path: str | Path) -> None:
    Path(path).write_text(json.dumps(self.to_json(), indent=1))

  def save_csv(self, path: str | Path) -> None:
    """One row per (layer, b_in, b_w): the layer, its type and the simulated costs."""
    with open(path, "w", newline="") as f:
      wr = csv.writer(f)
      wr.writerow(["layer", "layer_type", "b_in", "b_w", "b_out", "cycles", "latency_ms", "compute_cycles",
                   "dma_cycles", "n_tiles", "fits_l1"])
      for name, lt in self.layers.items():
        for (k, a, w), e in self.entries.items():
          if k == lt:
            wr.writerow([name, k, a, w, e.b_out, round(e.cycles), f"{e.cycles / (self.freq_mhz * 1e3):.6f}",
                         round(e.compute_cycles), round(e.dma_cycles), e.n_tiles, e.fits_l1])


def _scale(unit: str, freq_mhz: float) -> float:
  if unit not in UNITS:
    raise ValueError(f"unit must be one of {UNITS}, got {unit!r}")
  return 1.0 if unit == "cycles" else 1.0 / (freq_mhz * 1e3)


def _lt_dict(t: LayerType) -> dict[str, Any]:
  return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(t).items()}


def load_latency_dict(path: str | Path) -> LatencyDict:
  """Inverse of `LatencyDict.save_json`."""
  d = json.loads(Path(path).read_text())
  try:
    types = {k: LayerType(**{f: tuple(v) if isinstance(v, list) else v for f, v in t.items()})
             for k, t in d["types"].items()}
    entries = {(e["type"], e["b_in"], e["b_w"]): Entry(**{f: e[f] for f in Entry.__dataclass_fields__})
               for e in d["entries"]}
    return LatencyDict(d["network"], d["platform"], d["freq_mhz"], d["bits_out"], d["layers"], types, entries)
  except (KeyError, TypeError) as e:
    raise ValueError(f"{path}: not a latency dictionary ({e})") from None


def profile(net: Network, p: Platform, pairs: Iterable[tuple[int, int]] = ALL_PAIRS,
            bits_out: str | int = "in", tiler: str = DEFAULT_TILER) -> LatencyDict:
  """The latency dictionary of `net` on `p` for the allowed (b_in, b_w) `pairs` (layers tiled under `tiler`)."""
  pairs = tuple(pairs)
  for a, w in pairs:
    if a not in BITS or w not in BITS:
      raise ValueError(f"bit pair ({a}, {w}): widths must be in {BITS}")
  if bits_out != "in" and bits_out not in BITS:
    raise ValueError(f"bits_out must be 'in' or one of {BITS}, got {bits_out!r}")
  # The kernels DORY links for the mixed-precision networks these entries describe (jaxbp's exports: signed input):
  # pulp-nn-mixed, the ISA's xpulp_nn_* kernels on XpulpNN as soon as a pair is sub-byte, else the XpulpV2 ones.
  sub = any(min(a, w) < 8 for a, w in pairs) or (bits_out != "in" and int(bits_out) < 8)
  p = library_platform(p, "mixed-hw" if sub and p.isa != "xpulpv2" else "mixed-sw")
  layers, types, entries = {}, {}, {}
  for l in net.layers:
    lt = layer_type(l)
    layers[l.name] = lt.key
    if lt.key in types:
      continue
    types[lt.key] = lt
    done: dict[int, Entry] = {}
    for a, w in pairs:
      b_out = a if bits_out == "in" else int(bits_out)
      if not l.weighted and a in done:  # b_w does not matter for weightless layers.
        entries[(lt.key, a, w)] = done[a]
        continue
      entries[(lt.key, a, w)] = done[a] = profile_layer(l, p, a, w, b_out, tiler)
  return LatencyDict(net.name, p.name, p.freq_mhz, bits_out, layers, types, entries)


def slot_table(shapes: NetShapes, p: Platform, bits: int = 8, unit: str = "cycles",
               tiler: str = DEFAULT_TILER) -> dict[tuple[str, str], float]:
  """{(slot name, op): latency} of every alternative of every conv slot of a traced (super)network,
  each simulated alone at `bits` (input, weights, output); identity costs 0."""
  scale = _scale(unit, p.freq_mhz)
  p = library_platform(p, "mixed-hw" if bits < 8 and p.isa != "xpulpv2" else "mixed-sw")  # as DORY links it.
  table = {}
  for ls in shapes.layers:
    for op in ls.ops:
      b = GraphBuilder((1, ls.in_length, ls.spec.in_features))
      slot_layers(b, ls.name, ls.spec, op, "input")
      total = 0.0
      for l in b.layers:
        total += profile_layer(l, p, bits, bits, bits, tiler).cycles
      table[(ls.name, op)] = total * scale
  return table


def slot_latency_cost(shapes: NetShapes, p: Platform, bits: int = 8, unit: str = "ms",
                      tiler: str = DEFAULT_TILER) -> Cost:
  """Expected-latency `Cost` of a supernet from `slot_table` (slots only; other layers are constant)."""
  return expected_latency(slot_table(shapes, p, bits, unit, tiler))
