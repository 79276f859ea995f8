"""Tile geometry and the per-layer timeline: compute, L2<->L1 DMA with overlap, overheads, L3 streams.

A layer's output is cut into tiles (h, w, c); tiles that share a shape form a `TileClass` (interior,
first/last border tiles along each axis). Per tile: DMA in (input, and weights when the output-channel
tile changes), kernel, DMA out. Double buffered (more than one tile), the next tile's DMA overlaps the
current compute: time = first DMA-in + sum over tiles of max(compute, DMA) + kernel calls + last DMA-out.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

from jaxbp.deploy import dma
from jaxbp.deploy.kernels import conv_loop, kernel_cycles, operand_format
from jaxbp.deploy.layers import Layer, Shape, tensor_bytes
from jaxbp.deploy.platforms import Platform

LOOP_ORDERS = ("channels_outer", "spatial_outer")


@dataclasses.dataclass(frozen=True)
class Segment:
  """`count` tiles along one axis with output extent `out` and input extent `inp`."""

  count: int
  out: int
  inp: int


@dataclasses.dataclass(frozen=True)
class TileClass:
  """`count` tiles with output tile `out`, input tile `inp` and second-input tile `inp2` (h, w, c)."""

  count: int
  out: Shape
  inp: Shape
  inp2: Shape | None


def input_span(layer: Layer, axis: int, start: int, length: int) -> tuple[int, int]:
  """Input [begin, end) along `axis` (0 = H, 1 = W) needed for output [start, start + length)."""
  full_in = layer.in_shape[axis]
  if layer.op in ("conv", "pointwise", "depthwise", "pool"):
    k, s, pad = layer.kernel[axis], layer.stride[axis], layer.padding[2 * axis]
    begin, end = start * s - pad, (start + length - 1) * s - pad + k
  elif layer.op == "linear":
    return 0, full_in
  elif layer.mode == "resize":
    scale = full_in / layer.out_shape[axis]
    begin, end = math.floor(start * scale), math.floor((start + length - 1) * scale) + 2
  elif layer.mode == "norm":
    return 0, full_in
  elif layer.mode == "concat":  # centre crop of the first input.
    off = (full_in - layer.out_shape[axis]) // 2
    begin, end = start + off, start + off + length
  else:  # add, requant, lut, mul.
    begin, end = start, start + length
  return max(begin, 0), min(end, full_in)


def axis_segments(layer: Layer, axis: int, tile: int) -> tuple[Segment, ...]:
  """Tiles along a spatial axis grouped by (output, input) extent."""
  full = layer.out_shape[axis]
  n = math.ceil(full / tile)
  counts: dict[tuple[int, int], int] = {}

  def add(i: int, times: int = 1):
    start = i * tile
    length = min(tile, full - start)
    b, e = input_span(layer, axis, start, length)
    counts[(length, e - b)] = counts.get((length, e - b), 0) + times

  if n <= 4:
    for i in range(n):
      add(i)
  else:
    mid_a, mid_b = input_span(layer, axis, tile, tile), input_span(layer, axis, (n - 2) * tile, tile)
    add(0)
    add(n - 1)
    if mid_a[1] - mid_a[0] == mid_b[1] - mid_b[0]:
      add(1, n - 2)
    else:
      for i in range(1, n - 1):
        add(i)
  return tuple(Segment(c, o, i) for (o, i), c in counts.items())


def channel_segments(full: int, tile: int) -> tuple[Segment, ...]:
  n, last = divmod(full, tile)
  segs = [Segment(n, tile, tile)] if n else []
  if last:
    segs.append(Segment(1, last, last))
  return tuple(segs)


def input_channels_follow(layer: Layer) -> bool:
  """Whether an output-channel tile needs only the matching input channels (else all of them)."""
  return layer.op in ("depthwise", "pool", "add", "elementwise") and layer.mode != "concat"


def tile_classes(layer: Layer, tile: Shape) -> tuple[TileClass, ...]:
  """All tiles of `layer` for output tile size `tile`, grouped by shape."""
  hs, ws = axis_segments(layer, 0, tile[0]), axis_segments(layer, 1, tile[1])
  cs = channel_segments(layer.out_shape[2], tile[2])
  follow = input_channels_follow(layer)
  out = []
  for sh, sw, sc in itertools.product(hs, ws, cs):
    cin = sc.out if follow else layer.in_shape[2]
    inp2 = None
    if layer.in2_shape is not None:
      c2 = layer.in2_shape[2]
      if layer.mode == "mul":
        inp2 = (1, 1, sc.out)
      elif layer.mode == "concat":
        inp2 = (sh.out, sw.out, c2)
      else:  # residual add: the residual's channels are a (zero-padded) subset.
        inp2 = (sh.inp, sw.inp, max(1, math.ceil(sc.out * c2 / layer.out_shape[2])))
    out.append(TileClass(sh.count * sw.count * sc.count, (sh.out, sw.out, sc.out), (sh.inp, sw.inp, cin), inp2))
  return tuple(out)


def grid(layer: Layer, tile: Shape) -> tuple[int, int, int]:
  return tuple(math.ceil(f / t) for f, t in zip(layer.out_shape, tile))


def weight_tile_bytes(layer: Layer, c: int) -> int:
  """Packed weight bytes of `c` output channels."""
  if not layer.weighted:
    return 0
  per = layer.n_weights // layer.out_shape[2]
  return c * math.ceil(per * layer.bits_w / 8)


def param_tile_bytes(layer: Layer, c: int, p: Platform) -> int:
  """Per-channel requant parameters (k, lambda) of `c` channels, or the whole LUT."""
  if layer.weighted or layer.mode in ("requant", "norm"):
    return c * p.requant_bytes_per_channel
  if layer.mode == "lut":
    return 2 ** layer.bits_in
  return 0


def im2col_bytes(layer: Layer, inp: Shape, p: Platform) -> int:
  """Per-cluster scratch of the kernel (im2col of 2 pixels per core; CHW strip for depthwise)."""
  fmt = operand_format(p, layer.bits_in, layer.bits_w)
  kh, kw = layer.kernel
  loop = conv_loop(p, layer.bits_in, layer.bits_w) if layer.op in ("conv", "pointwise") else None
  act_bits = loop.act_bits if loop is not None else fmt.act_bits
  if layer.op == "conv" or (layer.op == "pointwise" and act_bits != layer.bits_in):
    red = kh * kw * layer.in_shape[2] // layer.groups
    return p.n_cores * math.ceil(2 * red * act_bits / 8)
  if layer.op == "depthwise":
    return p.n_cores * kw * inp[0] * (kh if inp[0] == 1 else 1)
  if layer.op == "linear" and fmt.unpack_act:
    return layer.in_shape[2]
  return 0


@dataclasses.dataclass(frozen=True)
class L1Footprint:
  """L1 bytes of one buffer of each kind for a tile, and the number of copies of each (2 = double
  buffered: only what changes from tile to tile needs a second buffer)."""

  input: int
  input2: int
  weights: int
  params: int
  output: int
  scratch: int
  input_copies: int
  output_copies: int
  weight_copies: int

  @property
  def total(self) -> int:
    return (self.input_copies * (self.input + self.input2) + self.output_copies * self.output
            + self.weight_copies * (self.weights + self.params) + self.scratch)


def input_changes(layer: Layer, g: tuple[int, int, int]) -> bool:
  """Whether tiles need different input tiles (else the input is loaded once)."""
  return g[0] * g[1] > 1 or (input_channels_follow(layer) and g[2] > 1)


def largest_input_tile(layer: Layer, tile: Shape) -> Shape:
  """The largest input tile (h, w, c) over all tiles of output tile size `tile`."""
  ext = []
  for axis in (0, 1):
    n, t = math.ceil(layer.out_shape[axis] / tile[axis]), tile[axis]
    spans = [input_span(layer, axis, i * t, min(t, layer.out_shape[axis] - i * t)) for i in {0, min(1, n - 1), n - 1}]
    ext.append(max(e - b for b, e in spans))
  return ext[0], ext[1], tile[2] if input_channels_follow(layer) else layer.in_shape[2]


def footprint(layer: Layer, tile: Shape, p: Platform) -> L1Footprint:
  """L1 footprint of the largest tile of size `tile` (border tiles are no larger)."""
  g = grid(layer, tile)
  n_tiles = g[0] * g[1] * g[2]
  inp = largest_input_tile(layer, tile)
  in2 = 0
  if layer.in2_shape is not None:
    in2 = max(tensor_bytes(c.inp2, layer.bits_in2) for c in tile_classes(layer, tile))
  db = p.double_buffer and n_tiles > 1
  return L1Footprint(tensor_bytes(inp, layer.bits_in), in2, weight_tile_bytes(layer, tile[2]),
                     param_tile_bytes(layer, tile[2], p), tensor_bytes(tile, layer.bits_out),
                     im2col_bytes(layer, inp, p), 2 if (db and input_changes(layer, g)) else 1, 2 if db else 1,
                     2 if (db and g[2] > 1) else 1)


@dataclasses.dataclass(frozen=True)
class TileTransfers:
  """DMA transfers of one tile class: input(s), weights + params (once per weight load), output."""

  inputs: tuple[dma.Transfer, ...]
  weights: tuple[dma.Transfer, ...]
  output: dma.Transfer

  def cycles(self, p: Platform) -> tuple[float, float, float]:
    return (sum(dma.l1_cycles(t, p) for t in self.inputs), sum(dma.l1_cycles(t, p) for t in self.weights),
            dma.l1_cycles(self.output, p))

  def setups(self) -> tuple[int, int, int]:
    """DMA set-ups of (the input loads, the weight loads, the output store)."""
    return sum(t.setups for t in self.inputs), sum(t.setups for t in self.weights), self.output.setups


def class_transfers(layer: Layer, cls: TileClass, p: Platform) -> TileTransfers:
  """The L2<->L1 transfers of one tile of class `cls` (offsets not placed)."""
  transpose = cls.inp[2] if layer.op == "depthwise" else 0
  inputs = [dma.Transfer.of_slice("input", "L2", "L1", dma.slice_geometry(layer.in_shape, cls.inp, layer.bits_in),
                                  transpose)]
  if cls.inp2 is not None:
    g2 = dma.slice_geometry(layer.in2_shape, cls.inp2, layer.bits_in2)
    inputs.append(dma.Transfer.of_slice("input2", "L2", "L1", g2))
  weights = []
  wb = weight_tile_bytes(layer, cls.out[2])
  if wb:
    weights.append(dma.Transfer("weights", "L2", "L1", wb, 1, wb))
  pb = param_tile_bytes(layer, cls.out[2], p)
  if pb:
    weights.append(dma.Transfer("lut" if layer.mode == "lut" else "requant", "L2", "L1", pb, 1, pb))
  out = dma.Transfer.of_slice("output", "L1", "L2", dma.slice_geometry(layer.out_shape, cls.out, layer.bits_out))
  return TileTransfers(tuple(inputs), tuple(weights), out)


@dataclasses.dataclass(frozen=True)
class L1Timing:
  """Cycles of a layer's L2<->L1 tile loop.

  Attributes:
    total: wall cycles of the tile loop (without the per-layer call and L3 streams).
    compute: kernel cycles summed over tiles; im2col / unpack: parts of it.
    dma: L2<->L1 DMA busy cycles; dma_exposed: cycles the cores wait on DMA.
    calls: kernel-call overhead summed over tiles.
    n_tiles: number of L1 tiles; loop_order: which loop is outer (see `LOOP_ORDERS`).
    dma_setups: L2<->L1 DMA set-ups of the loop (one per 2-D transfer, i.e. per plane).
  """

  total: float
  compute: float
  im2col: float
  unpack: float
  dma: float
  dma_exposed: float
  calls: float
  n_tiles: int
  loop_order: str
  dma_setups: int = 0


def _loads(layer: Layer, g: tuple[int, int, int], order: str) -> tuple[int, int]:
  """(input loads, weight loads) of the tile loop in `order`."""
  n_tiles, n_sp, n_c = g[0] * g[1] * g[2], g[0] * g[1], g[2]
  reusable = not input_channels_follow(layer)  # the same input tile serves every output-channel tile.
  in_loads = n_tiles if input_changes(layer, g) else 1
  if order == "channels_outer":
    return in_loads, n_c
  return (n_sp if reusable else in_loads), (n_tiles if n_c > 1 else 1)


def l1_timing(layer: Layer, tile: Shape, p: Platform, loop_order: str | None = None) -> L1Timing:
  """Timeline of the tile loop for output tile `tile`; picks the cheaper loop order unless given."""
  g = grid(layer, tile)
  n_tiles = g[0] * g[1] * g[2]
  classes = tile_classes(layer, tile)
  per = []
  for cls in classes:
    kc = kernel_cycles(p, layer, cls.out, cls.inp)
    xs = class_transfers(layer, cls, p)
    per.append((cls, kc, xs.cycles(p), xs.setups()))
  orders = (loop_order,) if loop_order else LOOP_ORDERS
  best = None
  for order in orders:
    if order not in LOOP_ORDERS:
      raise ValueError(f"layer {layer.name!r}: loop order must be one of {LOOP_ORDERS}, got {order!r}")
    in_loads, w_loads = _loads(layer, g, order)
    f_in, f_w = in_loads / n_tiles, w_loads / n_tiles
    calls = n_tiles * p.kernel.kernel_call_cycles
    compute = sum(cls.count * kc.total for cls, kc, _, _ in per)
    dma_busy = sum(cls.count * (f_in * i + f_w * w + o) for cls, _, (i, w, o), _ in per)
    if p.double_buffer and n_tiles > 1:
      # Pipeline: the first tile's loads and the last tile's store are exposed; every other transfer
      # overlaps a compute (sum over tiles of the DMA excluding those edges, spread evenly).
      _, _, (i0, w0, o0), _ = per[0]
      r = (n_tiles - 1) / n_tiles
      total = i0 + w0 + o0 + calls
      total += sum(cls.count * max(kc.total, r * (f_in * i + f_w * w + o)) for cls, kc, (i, w, o), _ in per)
    else:
      total = compute + dma_busy + calls
    if best is None or total < best.total:
      # Exact: the input (weight) set-ups are the same for every tile sharing a load, so the load fraction
      # spreads whole numbers.
      setups = sum(cls.count * (f_in * i + f_w * w + o) for cls, _, _, (i, w, o) in per)
      best = L1Timing(total, compute, sum(c.count * kc.im2col for c, kc, _, _ in per),
                      sum(c.count * kc.unpack for c, kc, _, _ in per), dma_busy, total - compute - calls, calls,
                      n_tiles, order, round(setups))
  return best


@dataclasses.dataclass(frozen=True)
class L3Stream:
  """What a layer moves between L3 and L2: total bytes, transfers, and the bytes before compute can start."""

  bytes: int = 0
  transfers: int = 0
  first_bytes: int = 0
  last_bytes: int = 0


@dataclasses.dataclass(frozen=True)
class LayerTiming:
  """Cycles of one layer, broken down (all in cluster cycles).

  total = overhead (layer call + kernel calls) + compute + dma_exposed + l3_exposed.
  """

  total: float
  compute: float
  im2col: float
  unpack: float
  dma: float
  dma_exposed: float
  l3: float
  l3_exposed: float
  overhead: float
  n_tiles: int
  dma_setups: int = 0


def layer_timing(layer: Layer, l1: L1Timing, stream: L3Stream, p: Platform) -> LayerTiming:
  """Adds the per-layer call and the L3 stream (double-buffered chunks overlapping the tile loop)."""
  del layer
  l3 = dma.l3_cycles(stream.bytes, stream.transfers, p) if stream.transfers else 0.0
  inner = l1.total
  if l3:
    edge = dma.l3_cycles(stream.first_bytes + stream.last_bytes, (stream.first_bytes > 0) + (stream.last_bytes > 0), p)
    body = max(inner, l3 - edge)
    l3_exposed = edge + body - inner
  else:
    l3_exposed = 0.0
  overhead = l1.calls + p.kernel.layer_call_cycles
  total = inner + l3_exposed + p.kernel.layer_call_cycles
  return LayerTiming(total, l1.compute, l1.im2col, l1.unpack, l1.dma, l1.dma_exposed, l3, l3_exposed, overhead,
                     l1.n_tiles, l1.dma_setups)
