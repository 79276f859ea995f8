"""Latency dictionaries ("profiling" on the simulator) for Free Bits and for the cost functions.

- `profile(net, platform)`: for every layer type (LT: op, input shape, output channels, kernel, stride,
  padding, groups, int32-accumulator output) of a network and every allowed (b_in, b_w), every output width
  b_out (and second-input width b_in2), the simulated latency of that layer alone (as a kernel micro-benchmark
  would measure it: inputs, weights and output in L2, weights streamed from L3 only if they cannot fit).
  Saved as JSON / CSV; `LatencyDict.per_layer()` gives {(layer, b_in, b_w): cycles} (output at b_in, or at
  `bits_out`), the table the bit-width costs and `jaxbp.freebits` take; `LatencyDict.network_cycles(net)` prices a
  whole mixed-precision network from the entries at each layer's own (b_in, b_w, b_out, b_in2).

  One layer, one price: an entry is what `simulate` charges that layer in a network at the same bits -- the
  same kernel library, L1 tiling (DORY's), kernel and unpack costs, accumulator output for a last linear layer.
  The library is the one thing a layer's price depends on beyond its own bits: DORY links pulp-nn-mixed's
  xpulp_nn_* kernels on XpulpNN ISAs for every layer as soon as one tensor of the network is sub-byte, and the
  XpulpV2 kernels of pulp-nn-mixed for an all-8-bit network (`simulator.dory_library`). The entries are therefore
  profiled under the sub-byte library (`library`: every configuration a mixed-precision search or Free Bits
  produces except the all-8-bit one), and the 8-bit entries once more under the all-8-bit library (`all8`);
  `network_cycles` picks the set the network's library needs. Exact (tested) for networks that stay in L2; a
  network streaming from L3 is priced with each layer's L3 traffic as if profiled alone (its stream depends on
  the whole memory plan), and DORY's L3 input tiling after a streamed layer is not modelled in the table.
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
from jaxbp.deploy.layers import BITS, WEIGHTED_OPS, Layer, Network, with_uniform_bits
from jaxbp.deploy.platforms import Platform
from jaxbp.deploy.schedule import L3Stream, layer_timing
from jaxbp.deploy.simulator import acc_out as acc_out_layers
from jaxbp.deploy.simulator import dory_library, library_platform, sub_byte_library
from jaxbp.deploy.tiler import DEFAULT_TILER, deployed_platform, policy_tilings
from jaxbp.deploy.zoo import GraphBuilder, slot_layers

ALL_PAIRS = tuple((a, w) for a in BITS for w in BITS)
UNITS = ("cycles", "ms")


@dataclasses.dataclass(frozen=True)
class LayerType:
  """Everything that parametrizes a kernel call except bit widths (methods.md section 4); `acc_out`: the layer
  writes its int32 accumulator (a network's last linear layer, `simulator.acc_out`)."""

  op: str
  mode: str
  in_shape: tuple[int, int, int]
  in2_shape: tuple[int, int, int] | None
  out_shape: tuple[int, int, int]
  kernel: tuple[int, int]
  stride: tuple[int, int]
  padding: tuple[int, int, int, int]
  groups: int
  acc_out: bool = False

  @property
  def key(self) -> str:
    """A compact, unique string: "conv:1x66x32>1x66x32:k1x5:s1x1:p0.0.2.2:g2" (+ ":acc32")."""
    fmt = lambda s: "x".join(map(str, s))
    op = f"{self.op}/{self.mode}" if self.mode else self.op
    in2 = f"+{fmt(self.in2_shape)}" if self.in2_shape else ""
    return (f"{op}:{fmt(self.in_shape)}{in2}>{fmt(self.out_shape)}:k{fmt(self.kernel)}:s{fmt(self.stride)}:"
            f"p{'.'.join(map(str, self.padding))}:g{self.groups}" + (":acc32" if self.acc_out else ""))


def layer_type(layer: Layer, acc_out: bool = False) -> LayerType:
  return LayerType(layer.op, layer.mode, layer.in_shape, layer.in2_shape, layer.out_shape, layer.kernel,
                   layer.stride, layer.padding, layer.groups, acc_out)


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


def profile_layer(layer: Layer, p: Platform, b_in: int, b_w: int, b_out: int, tiler: str = DEFAULT_TILER,
                  acc_out: bool = False, b_in2: int | None = None) -> Entry:
  """Simulates `layer` alone at the given bits (`b_in2`: a two-input layer's second input, default `b_in`),
  tiled under `tiler` ("dory": DORY's tile and buffering) with the kernels of `p` (`simulator.library_platform`);
  `acc_out`: it writes its int32 accumulator. The tiling and timing calls are the simulator's own
  (`plan_network` / `report_from_plan`), applied to this layer."""
  kw: dict[str, Any] = {"bits_in": b_in, "bits_w": b_w if layer.weighted else 8, "bits_out": b_out}
  if layer.bits_in2 is not None:
    kw["bits_in2"] = b_in if b_in2 is None else b_in2
  l = dataclasses.replace(layer, **kw)
  p = deployed_platform(p, tiler)
  tiling = policy_tilings((l,), p, tiler, acc_out=(l.name,) if acc_out else ())[0][0]
  t = layer_timing(l, tiling.timing, isolated_stream(l, p), p)
  return Entry(t.total, t.compute, t.dma + t.l3, t.n_tiles, b_out, tiling.fits)


FullKey = tuple[str, int, int, int, int]  # (type key, b_in, b_w (8 if weightless), b_out, b_in2 (0: one input))


def full_key(type_key: str, layer: Layer) -> FullKey:
  """The `LatencyDict.full` key of `layer` (of type `type_key`) at its own bits."""
  return (type_key, layer.bits_in, layer.bits_w if layer.weighted else 8, layer.bits_out,
          layer.bits_in2 if layer.bits_in2 is not None else 0)


VERSION = 2  # entries per (b_in, b_w, b_out, b_in2) and library; version-1 files (pairs only) must be re-profiled.


@dataclasses.dataclass(frozen=True)
class LatencyDict:
  """LD: (layer type, b_in, b_w) -> simulated latency, and which layers have which type.

  Attributes:
    platform, freq_mhz, isa: where it was simulated.
    bits_out: the output width of the pair view `entries` / `per_layer`: "in" (each layer's output at its b_in)
      or a fixed width.
    layers: layer name -> layer type key, in network order.
    types: layer type key -> LayerType.
    entries: (type key, b_in, b_w) -> Entry (the pair view of `full`).
    full: (type key, b_in, b_w, b_out, b_in2) -> Entry under `library` (b_w 8 for weightless layers, b_in2 0 for
      one-input layers): every output / second-input width, so a network is priced at each layer's own bits.
    library: the DORY library of the entries (the one a network with a sub-byte tensor links).
    all8: (type key) -> Entry of the layer at 8 bits under `all8_library` (what an all-8-bit network links).
    pairs: the allowed (b_in, b_w) it was profiled for.
  """

  network: str
  platform: str
  freq_mhz: float
  bits_out: str | int
  layers: Mapping[str, str]
  types: Mapping[str, LayerType]
  entries: Mapping[tuple[str, int, int], Entry]
  full: Mapping[FullKey, Entry] = dataclasses.field(default_factory=dict)
  isa: str = ""
  library: str = ""
  all8: Mapping[str, Entry] = dataclasses.field(default_factory=dict)
  all8_library: str = ""
  pairs: tuple[tuple[int, int], ...] = ALL_PAIRS

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

  def layer_entries(self, net: Network) -> dict[str, Entry]:
    """{layer: Entry} of `net` (this LD's network at any bits) priced at each layer's own (b_in, b_w, b_out,
    b_in2), under the library DORY links for `net` (`simulator.dory_library`): `full`, or `all8` for an
    all-8-bit network where that library differs. KeyError names the layer and bits missing."""
    lib = dory_library(net, self.isa)
    eight = lib != self.library
    if eight and lib != self.all8_library:
      raise ValueError(f"latency dictionary ({self.network} on {self.platform}) has entries for libraries "
                       f"{self.library!r} and {self.all8_library!r}; network {net.name!r} links {lib!r}")
    out = {}
    for l in net.layers:
      try:
        lt = self.layers[l.name]
      except KeyError:
        raise KeyError(f"latency dictionary ({self.network} on {self.platform}) has no layer {l.name!r}") from None
      key = full_key(lt, l)
      try:
        out[l.name] = self.all8[lt] if eight else self.full[key]
      except KeyError:
        raise KeyError(f"latency dictionary ({self.network} on {self.platform}) has no entry for layer {l.name!r} "
                       f"(layer type {lt}) at (b_in={key[1]}, b_w={key[2]}, b_out={key[3]}, b_in2={key[4]}) under "
                       f"{lib!r}") from None
    return out

  def network_cycles(self, net: Network, unit: str = "cycles") -> float:
    """The whole network's latency from the entries (`layer_entries`): for an L2-only network exactly the
    simulator's `simulate(net, platform).total_cycles` (in `unit`)."""
    return sum(e.cycles for e in self.layer_entries(net).values()) * _scale(unit, self.freq_mhz)

  def to_json(self) -> dict[str, Any]:
    ent = lambda e: {f: getattr(e, f) for f in Entry.__dataclass_fields__}
    return {"version": VERSION, "network": self.network, "platform": self.platform, "freq_mhz": self.freq_mhz,
            "unit": "cycles", "isa": self.isa, "library": self.library, "all8_library": self.all8_library,
            "bits_out": self.bits_out, "pairs": [list(x) for x in self.pairs], "layers": dict(self.layers),
            "types": {k: _lt_dict(t) for k, t in self.types.items()},
            "entries": [{"type": k, "b_in": a, "b_w": w, "b_in2": i2, **ent(e)}
                        for (k, a, w, o, i2), e in self.full.items()],
            "all8": [{"type": k, **ent(e)} for k, e in self.all8.items()]}

  def save_json(self, path: str | Path) -> None:
    Path(path).write_text(json.dumps(self.to_json(), indent=1))

  def save_csv(self, path: str | Path) -> None:
    """One row per (layer, b_in, b_w) of the pair view: the layer, its type and the simulated costs."""
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


def _pair_view(full: Mapping[FullKey, Entry], types: Mapping[str, LayerType], pairs: Iterable[tuple[int, int]],
               bits_out: str | int) -> dict[tuple[str, int, int], Entry]:
  """(type, b_in, b_w) -> the entry at b_out = b_in (or `bits_out`) and b_in2 = b_in."""
  out = {}
  for k, t in types.items():
    for a, w in pairs:
      o = a if bits_out == "in" else int(bits_out)
      e = full.get((k, a, w if t.op in WEIGHTED_OPS else 8, o, a if t.in2_shape is not None else 0))
      if e is not None:
        out[(k, a, w)] = e
  return out


def load_latency_dict(path: str | Path) -> LatencyDict:
  """Inverse of `LatencyDict.save_json`."""
  d = json.loads(Path(path).read_text())
  if not isinstance(d, dict) or d.get("version") != VERSION:
    raise ValueError(f"{path}: not a version-{VERSION} latency dictionary (re-profile it: tools/deploy.py "
                     f"latency-table)")
  try:
    types = {k: LayerType(**{f: tuple(v) if isinstance(v, list) else v for f, v in t.items()})
             for k, t in d["types"].items()}
    entry = lambda e: Entry(**{f: e[f] for f in Entry.__dataclass_fields__})
    full = {(e["type"], e["b_in"], e["b_w"], e["b_out"], e["b_in2"]): entry(e) for e in d["entries"]}
    all8 = {e["type"]: entry(e) for e in d["all8"]}
    pairs = tuple(tuple(x) for x in d["pairs"])
    pv = _pair_view(full, types, pairs, d["bits_out"])
    return LatencyDict(d["network"], d["platform"], d["freq_mhz"], d["bits_out"], d["layers"], types, pv, full,
                       d["isa"], d["library"], all8, d["all8_library"], pairs)
  except (KeyError, TypeError) as e:
    raise ValueError(f"{path}: not a latency dictionary ({e})") from None


def profile(net: Network, p: Platform, pairs: Iterable[tuple[int, int]] = ALL_PAIRS,
            bits_out: str | int = "in", tiler: str = DEFAULT_TILER) -> LatencyDict:
  """The latency dictionary of `net` on `p` for the allowed (b_in, b_w) `pairs` (layers tiled under `tiler`):
  every pair at every b_out (and b_in2) under the sub-byte library, and 8 bits under the all-8-bit library."""
  pairs = tuple(tuple(x) for x in pairs)
  for a, w in pairs:
    if a not in BITS or w not in BITS:
      raise ValueError(f"bit pair ({a}, {w}): widths must be in {BITS}")
  if bits_out != "in" and bits_out not in BITS:
    raise ValueError(f"bits_out must be 'in' or one of {BITS}, got {bits_out!r}")
  # The kernels DORY links (`simulator.dory_library`, jaxbp's exports: signed input): a network with a sub-byte
  # tensor links `sub_byte_library` for every layer; an all-8-bit one pulp-nn-mixed's XpulpV2 kernels.
  lib, lib8 = sub_byte_library(p.isa), dory_library(with_uniform_bits(net, 8), p.isa)
  p_sub, p8 = library_platform(p, lib), library_platform(p, lib8)
  acc = acc_out_layers(net)
  layers, types, full, all8 = {}, {}, {}, {}
  for l in net.layers:
    lt = layer_type(l, l.name in acc)
    layers[l.name] = lt.key
    if lt.key in types:
      continue
    types[lt.key] = lt
    ins = sorted({a for a, _ in pairs} | set(BITS)) if not l.weighted else sorted({a for a, _ in pairs})
    ws = sorted({w for a, w in pairs}) if l.weighted else [8]
    in2s = list(BITS) if l.bits_in2 is not None else [0]
    for a in ins:
      for w in ws:
        if l.weighted and (a, w) not in pairs:
          continue
        for o in BITS:
          for i2 in in2s:
            full[(lt.key, a, w, o, i2)] = profile_layer(l, p_sub, a, w, o, tiler, lt.acc_out, i2 or None)
    all8[lt.key] = profile_layer(l, p8, 8, 8, 8, tiler, lt.acc_out, 8 if l.bits_in2 is not None else None)
  entries = _pair_view(full, types, pairs, bits_out)
  return LatencyDict(net.name, p.name, p.freq_mhz, bits_out, layers, types, entries, full, p.isa, lib, all8, lib8,
                     pairs)


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
