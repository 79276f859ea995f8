"""The tiler: per layer, the L2->L1 tile that fits and runs fastest; per network, the L2/L3 plan.

Tiles are cut from the output (rows, columns, output channels); standard convs keep all input channels
in L1 (DORY). Candidate tile sizes along each axis are the sizes giving 1, 2, 3, ... tiles, each also
rounded to the kernels' sweet spots (output rows a multiple of the core count -- 1-D layers: time
steps a multiple of 2 x cores --, even widths, output channels a multiple of 4); sub-byte tensors tile
channels in whole bytes. Among the largest tiles that fit the usable L1 (double-buffered when there is
more than one tile), the tiler keeps the one the cycle model rates fastest: the sweet spots, fewer DMA
set-ups and kernel calls are preferred through the cycles they save.

Two policies (`TILERS`): "jaxbp" (above; what jaxbp's tiled C path executes, `jaxbp/export/c/tiled.py`)
and "dory" (the tiles DORY's PULP tiler would generate, `dory_tiler.py`, with the platform's DORY buffering:
single-buffered blocking DMA on GAP8). `simulate` predicts a DORY deployment by default; `plan_network`
keeps "jaxbp" as its default because the C exporter executes its plan.

The result is plain data (`L1Tiling`, `NetworkPlan`): tile sizes, grid, loop order, L1 buffer offsets,
L2 placement and L3 streams; `tiles()` and `tile_transfers()` enumerate every tile and DMA transfer
with its offsets, so a code generator can emit the tile loops.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Sequence

from jaxbp.deploy import dma
from jaxbp.deploy.dory_tiler import DoryTiling, dory_tilings
from jaxbp.deploy.layers import Layer, Network, Shape, tensor_bytes
from jaxbp.deploy.memory import ALIGN, MemoryPlan, plan_memory
from jaxbp.deploy.platforms import Platform
from jaxbp.deploy.schedule import (L1Timing, L3Stream, footprint, grid, input_changes, input_channels_follow,
                                   input_span, l1_timing, param_tile_bytes, tile_classes, weight_tile_bytes)


@dataclasses.dataclass(frozen=True)
class Buffer:
  """An L1 buffer: `name` ("input[0]", "weights[1]", "scratch", ...), byte `offset` and `bytes`."""

  name: str
  offset: int
  bytes: int


@dataclasses.dataclass(frozen=True)
class L1Tiling:
  """The tiler's decision for one layer.

  Attributes:
    layer: layer name.
    tile: output tile (h, w, c) of interior tiles; border tiles are smaller.
    tile_in: largest input tile (h, w, c).
    grid: tiles along (H, W, C); n_tiles their product.
    loop_order: "channels_outer" (weights loaded once per channel tile) or "spatial_outer".
    double_buffered: whether inputs/outputs (and weights, if channel-tiled) have two L1 buffers.
    buffers: L1 buffers with offsets (from 0 = start of the tile area).
    l1_bytes: L1 footprint; fits: whether it fits `Platform.l1_usable_bytes`.
    timing: the tile loop's cycles.
    policy: the tiler policy that chose the tile ("jaxbp" or "dory"); note: why, when it is not that policy's
      own choice (e.g. "no DORY kernel: jaxbp tile") or how DORY kept it ("whole layer in L1").
  """

  layer: str
  tile: Shape
  tile_in: Shape
  grid: tuple[int, int, int]
  loop_order: str
  double_buffered: bool
  buffers: tuple[Buffer, ...]
  l1_bytes: int
  fits: bool
  timing: L1Timing
  policy: str = "jaxbp"
  note: str = ""

  @property
  def n_tiles(self) -> int:
    return self.grid[0] * self.grid[1] * self.grid[2]

  def buffer(self, name: str) -> Buffer:
    for b in self.buffers:
      if b.name == name:
        return b
    raise KeyError(f"layer {self.layer!r}: no L1 buffer {name!r}; have {[b.name for b in self.buffers]}")


def _round_up(v: int, m: int) -> int:
  return -(-v // m) * m


def axis_candidates(full: int, prefer: int, granule: int = 1) -> list[int]:
  """Tile sizes along an axis of extent `full`: sizes giving 1, 2, ... tiles, also rounded to `prefer`,
  restricted to multiples of `granule` (or the full extent); largest first."""
  vals: set[int] = set()
  for k in range(1, full + 1):
    v = -(-full // k)
    vals.add(v)
    if prefer > 1:
      vals.add(min(_round_up(v, prefer), full))
      if v >= prefer:
        vals.add(v // prefer * prefer)
  return sorted((v for v in vals if v == full or v % granule == 0), reverse=True)


def splittable(layer: Layer) -> tuple[bool, bool, bool]:
  """Which output axes (H, W, C) the kernels of `layer` can tile."""
  if layer.op == "linear" or layer.mode == "norm":
    return False, False, True
  if layer.mode == "concat":
    return True, True, False
  return True, True, True


def _prefs(layer: Layer, p: Platform) -> tuple[int, int, int]:
  if layer.out_shape[0] > 1:
    return p.n_cores, 2, 4
  return 1, 2 * p.n_cores, 4


def _granule(layer: Layer) -> int:
  """Channel-tile granule: every tensor whose channels a tile cuts (the output; the inputs, the second one
  included, when they follow the output channels) is cut on whole bytes."""
  bits = [layer.bits_out]
  if input_channels_follow(layer):
    bits += [layer.bits_in] + ([layer.bits_in2] if layer.in2_shape is not None else [])
  return max(8 // b for b in bits)


def _layout(layer: Layer, tile: Shape, p: Platform) -> tuple[tuple[Buffer, ...], int, bool]:
  fp = footprint(layer, tile, p)
  parts = [("input", fp.input, fp.input_copies), ("input2", fp.input2, fp.input_copies),
           ("output", fp.output, fp.output_copies), ("weights", fp.weights, fp.weight_copies),
           ("params", fp.params, fp.weight_copies), ("scratch", fp.scratch, 1)]
  bufs, off = [], 0
  for name, size, copies in parts:
    if not size:
      continue
    for i in range(copies):
      label = name if name == "scratch" else f"{name}[{i}]"
      bufs.append(Buffer(label, off, size))
      off += -(-size // ALIGN) * ALIGN
  return tuple(bufs), off, fp.output_copies == 2


def _l1_bytes(layer: Layer, tile: Shape, p: Platform) -> int:
  return _layout(layer, tile, p)[1]


def _largest_fitting(layer: Layer, p: Platform, values: list[int], make) -> int | None:
  """Largest v in `values` (descending) with make(v) fitting L1; footprints grow with v except that a
  single tile (the first value) is not double-buffered, so it is checked on its own."""
  budget = p.l1_usable_bytes
  if not values:
    return None
  if _l1_bytes(layer, make(values[0]), p) <= budget:
    return values[0]
  lo, hi = 1, len(values) - 1  # binary search on the rest (descending sizes, ascending fit).
  best = None
  while lo <= hi:
    mid = (lo + hi) // 2
    if _l1_bytes(layer, make(values[mid]), p) <= budget:
      best, hi = values[mid], mid - 1
    else:
      lo = mid + 1
  return best


def tile_layer(layer: Layer, p: Platform, tile: Shape | None = None, loop_order: str | None = None) -> L1Tiling:
  """The L1 tiling of `layer` (or the forced `tile` / `loop_order`, e.g. for tests).

  For each candidate width (all of them for 1-D layers, whose time axis is the parallel one; for 2-D
  layers narrower widths only while the best tile so far cannot reach the core count in rows or cuts the
  channels), every row count
  with the largest fitting channel tile (and that tile rounded to a multiple of 4) is a candidate;
  the candidate with the fewest cycles wins (ties: fewer tiles, more channels).
  """
  if tile is not None:
    if any(t < 1 or t > f for t, f in zip(tile, layer.out_shape)):
      raise ValueError(f"layer {layer.name!r}: tile {tile} must be within 1..{layer.out_shape}")
    return _make(layer, tuple(tile), p, l1_timing(layer, tuple(tile), p, loop_order))
  sh, sw, sc = splittable(layer)
  ph, pw, pc = _prefs(layer, p)
  ho, wo, co = layer.out_shape
  h_vals = axis_candidates(ho, ph) if sh else [ho]
  w_vals = axis_candidates(wo, pw) if sw else [wo]
  c_vals = axis_candidates(co, pc, _granule(layer)) if sc else [co]
  if ho > 1:  # 2-D: narrower tiles only at preferred (even) widths.
    w_vals = [w for w in w_vals if w == wo or w % pw == 0][:8]
  best = None
  for w in w_vals:
    cands: set[Shape] = set()
    for h in h_vals:
      c = _largest_fitting(layer, p, c_vals, lambda v, h=h, w=w: (h, w, v))
      if c is not None:
        cands.add((h, w, c))
        rounded = [v for v in c_vals if v <= c and v % pc == 0]
        if rounded:
          cands.add((h, w, rounded[0]))
    for t in cands:
      timing = l1_timing(layer, t, p, loop_order)
      g = grid(layer, t)
      key = (timing.total, g[0] * g[1] * g[2], -t[2])
      if best is None or key < best[0]:
        best = (key, t, timing)
    if ho > 1 and best is not None and best[1][0] >= min(ho, p.n_cores) and best[1][2] == co:
      break  # rows keep every core busy, all channels in: narrower tiles only add DMA set-ups and halos.
  if best is not None:
    return _make(layer, best[1], p, best[2])
  if p.double_buffer:  # nothing fits double-buffered: try single buffers (no DMA/compute overlap).
    return tile_layer(layer, dataclasses.replace(p, double_buffer=False), None, loop_order)
  t = (h_vals[-1], w_vals[-1], c_vals[-1])  # nothing fits at all: the smallest tile, flagged.
  return _make(layer, t, p, l1_timing(layer, t, p, loop_order))


def _make(layer: Layer, tile: Shape, p: Platform, timing: L1Timing) -> L1Tiling:
  bufs, size, db = _layout(layer, tile, p)
  cls = tile_classes(layer, tile)
  tile_in = tuple(max(c.inp[i] for c in cls) for i in range(3))
  return L1Tiling(layer.name, tile, tile_in, grid(layer, tile), timing.loop_order, db, bufs, size,
                  size <= p.l1_usable_bytes, timing)


@dataclasses.dataclass(frozen=True)
class Tile:
  """One tile of the loop, in execution order.

  Attributes:
    index: position in the loop; (gh, gw, gc): grid coordinates.
    out_origin, out_size: output tile (y, x, c) origin and (h, w, c) size.
    in_origin, in_size: input tile; in2_origin / in2_size: the second input (or None).
    in_slot, out_slot, weight_slot: double-buffer slots (0/1) of this tile's input, output and weights.
    load_input, load_weights: whether this tile DMAs its input / weights (else reuses L1 contents).
  """

  index: int
  coords: tuple[int, int, int]
  out_origin: Shape
  out_size: Shape
  in_origin: Shape
  in_size: Shape
  in2_origin: Shape | None
  in2_size: Shape | None
  in_slot: int
  out_slot: int
  weight_slot: int
  load_input: bool
  load_weights: bool


def tiles(layer: Layer, tiling: L1Tiling) -> Iterator[Tile]:
  """Every tile of `layer` under `tiling`, in loop order; output tiles cover the output exactly once."""
  th, tw, tc = tiling.tile
  gh, gw, gc = tiling.grid
  follow = input_channels_follow(layer)
  if tiling.loop_order == "channels_outer":
    order = [(a, b, c) for c in range(gc) for a in range(gh) for b in range(gw)]
  else:
    order = [(a, b, c) for a in range(gh) for b in range(gw) for c in range(gc)]
  prev_sp, prev_c, w_loads, in_loads = None, None, -1, -1
  for i, (a, b, c) in enumerate(order):
    oy, ox, oc = a * th, b * tw, c * tc
    size = (min(th, layer.out_shape[0] - oy), min(tw, layer.out_shape[1] - ox), min(tc, layer.out_shape[2] - oc))
    (y0, y1), (x0, x1) = input_span(layer, 0, oy, size[0]), input_span(layer, 1, ox, size[1])
    ic0, icn = (oc, size[2]) if follow else (0, layer.in_shape[2])
    in2_o = in2_s = None
    if layer.in2_shape is not None:
      h2, w2, c2 = layer.in2_shape
      if layer.mode == "mul":
        in2_o, in2_s = (0, 0, oc), (1, 1, size[2])
      elif layer.mode == "concat":  # centre crop of the skip tensor.
        dy, dx = (h2 - layer.out_shape[0]) // 2, (w2 - layer.out_shape[1]) // 2
        in2_o, in2_s = (oy + dy, ox + dx, 0), (size[0], size[1], c2)
      else:
        lo, hi = max(oc - (layer.out_shape[2] - c2) // 2, 0), min(oc + size[2] - (layer.out_shape[2] - c2) // 2, c2)
        in2_o, in2_s = (y0, x0, lo), (y1 - y0, x1 - x0, max(hi - lo, 0))
    load_w = c != prev_c
    if load_w:
      w_loads += 1
    changes = input_changes(layer, tiling.grid)
    load_in = i == 0 or (changes and (follow or (a, b) != prev_sp or tiling.loop_order == "channels_outer"))
    if load_in:
      in_loads += 1
    db = tiling.double_buffered
    yield Tile(i, (a, b, c), (oy, ox, oc), size, (y0, x0, ic0), (y1 - y0, x1 - x0, icn), in2_o, in2_s,
               in_loads % 2 if db and changes else 0, i % 2 if db else 0, w_loads % 2 if db and gc > 1 else 0,
               load_in, load_w)
    prev_sp, prev_c = (a, b), c


def _hwc_offset(shape: Shape, origin: Shape, bits: int) -> int:
  _, W, C = shape
  y, x, c = origin
  pix = math.ceil(C * bits / 8)
  return (y * W + x) * pix + c * bits // 8


def tile_transfers(layer: Layer, tiling: L1Tiling, tile: Tile, p: Platform,
                   l2: dict[str, int | None] | None = None) -> list[dma.Transfer]:
  """DMA transfers of `tile` with L1 offsets (its double-buffer slot) and L2 offsets.

  `l2` maps "input", "input2", "output", "weights" to the layer's L2 base offsets (`LayerPlan.l2_offsets`;
  0 when absent or None, i.e. the tensor is staged from L3). Per-channel parameters follow the weights.
  """
  l2 = {k: v or 0 for k, v in (l2 or {}).items()}
  out = []

  def xfer(kind, full, origin, size, bits, buf, src, dst, transpose=0):
    l2_off = l2.get(kind, 0) + _hwc_offset(full, origin, bits)
    l1_off = tiling.buffer(buf).offset
    s_off, d_off = (l2_off, l1_off) if src == "L2" else (l1_off, l2_off)
    return dma.Transfer.of_slice(kind, src, dst, dma.slice_geometry(full, size, bits), transpose, s_off, d_off)

  if tile.load_input:
    out.append(xfer("input", layer.in_shape, tile.in_origin, tile.in_size, layer.bits_in, f"input[{tile.in_slot}]", "L2",
                    "L1", tile.in_size[2] if layer.op == "depthwise" else 0))
    if tile.in2_size is not None and min(tile.in2_size) > 0:
      out.append(xfer("input2", layer.in2_shape, tile.in2_origin, tile.in2_size, layer.bits_in2,
                      f"input2[{tile.in_slot}]", "L2", "L1"))
  if tile.load_weights:
    c0, c = tile.out_origin[2], tile.out_size[2]
    base = l2.get("weights", 0)
    wb = weight_tile_bytes(layer, c)
    if wb:
      out.append(dma.Transfer("weights", "L2", "L1", wb, 1, wb, 0, 0, base + weight_tile_bytes(layer, c0),
                              tiling.buffer(f"weights[{tile.weight_slot}]").offset))
    pb = param_tile_bytes(layer, c, p)
    if pb:
      off = base + layer.weight_bytes() + (0 if layer.mode == "lut" else param_tile_bytes(layer, c0, p))
      out.append(dma.Transfer("lut" if layer.mode == "lut" else "requant", "L2", "L1", pb, 1, pb, 0, 0, off,
                              tiling.buffer(f"params[{tile.weight_slot}]").offset))
  out.append(xfer("output", layer.out_shape, tile.out_origin, tile.out_size, layer.bits_out, f"output[{tile.out_slot}]",
                  "L1", "L2"))
  return out


TILERS = ("dory", "jaxbp")
DEFAULT_TILER = "dory"  # what `simulate` and the latency tables predict: a DORY deployment.


def check_tiler(tiler: str) -> str:
  if tiler not in TILERS:
    raise ValueError(f"tiler must be one of {TILERS}, got {tiler!r}")
  return tiler


def deployed_platform(p: Platform, tiler: str) -> Platform:
  """The platform as the policy deploys it: under "dory", DORY's buffering (`p.dory.double_buffering`:
  1 = single buffers and blocking DMA, tile time = compute + DMA; 2 = double buffers, overlapped)."""
  if check_tiler(tiler) == "dory":
    return dataclasses.replace(p, double_buffer=p.dory.double_buffering == 2)
  return p


def from_dory(layer: Layer, dt: DoryTiling, p: Platform) -> L1Tiling:
  """DORY's L1 tile of `layer` as an `L1Tiling` (DORY's loop nest: output channels outer, then rows, columns;
  `p` already carries DORY's buffering). L1 bytes and the fit verdict are DORY's own."""
  t = tile_layer(layer, p, tile=dt.tile, loop_order="channels_outer")
  budget = p.dory.l1_budget_bytes
  return dataclasses.replace(t, l1_bytes=dt.l1_bytes, fits=dt.l1_bytes <= budget, policy="dory",
                             note="whole layer in L1" if dt.whole else "")


def policy_tilings(layers: Sequence[Layer], p: Platform, tiler: str,
                   acc_out: Sequence[str] | None = None) -> tuple[list[L1Tiling], list[str]]:
  """Every layer's L1 tiling under `tiler` on the deployed platform `p` (see `deployed_platform`), and the
  reasons a DORY deployment fails (layers DORY finds no tile for keep jaxbp's tile, flagged). `acc_out`:
  see `dory_tilings`."""
  if check_tiler(tiler) == "jaxbp":
    return [tile_layer(l, p) for l in layers], []
  errors: dict[str, str] = {}
  dts = dory_tilings(layers, p.dory, acc_out, errors=errors)
  out = []
  for l in layers:
    dt = dts.get(l.name)
    if dt is not None:
      out.append(from_dory(l, dt, p))
    else:
      note = f"DORY: {errors[l.name]}" if l.name in errors else "no DORY kernel: jaxbp tile"
      out.append(dataclasses.replace(tile_layer(l, p), policy="jaxbp", note=note))
  return out, [f"DORY finds no tiling: {e}" for e in errors.values()]


def tile_layer_policy(layer: Layer, p: Platform, tiler: str = DEFAULT_TILER) -> L1Tiling:
  """One layer tiled alone (a micro-benchmark) under `tiler` on the deployed platform `p`."""
  return policy_tilings((layer,), p, tiler, acc_out=())[0][0]


@dataclasses.dataclass(frozen=True)
class LayerPlan:
  """A layer's tiling, its L3 stream and where its tensors live in L2 (offsets; None if in L3)."""

  layer: Layer
  l1: L1Tiling
  stream: L3Stream
  l2_offsets: dict[str, int | None]


@dataclasses.dataclass(frozen=True)
class NetworkPlan:
  """The tiler's decisions for a whole network on a platform.

  Attributes:
    network, platform: what was planned.
    layers: one `LayerPlan` per layer, in execution order.
    memory: the L2 plan (offsets, what streams from L3).
    fits: L2/L3 plan and every L1 tiling fit; reasons lists every failure with its numbers.
  """

  network: Network
  platform: Platform
  layers: tuple[LayerPlan, ...]
  memory: MemoryPlan
  fits: bool
  reasons: tuple[str, ...]

  @property
  def uses_l3(self) -> bool:
    return self.memory.uses_l3

  @property
  def peak_l2_bytes(self) -> int:
    return self.memory.peak_bytes


def plan_network(net: Network, p: Platform, tiler: str = "jaxbp") -> NetworkPlan:
  """Tiles every layer under `tiler` ("jaxbp": jaxbp's tiles and `p.double_buffer`; "dory": DORY's tiles and
  buffering), then allocates L2 (streaming from L3 what does not fit, if L3 is enabled). The plan's platform
  is the deployed one (`deployed_platform`)."""
  p = deployed_platform(p, tiler)
  tilings, dory_reasons = policy_tilings(net.layers, p, tiler)
  min_chunks = {}
  for l, t in zip(net.layers, tilings):
    cls = tile_classes(l, t.tile)
    biggest = max(tensor_bytes(c.inp, l.bits_in) for c in cls)
    min_chunks[l.name] = max(biggest, weight_tile_bytes(l, t.tile[2]), tensor_bytes(t.tile, l.bits_out))
  mem = plan_memory(net, p, min_chunks)
  reasons = ([] if mem.fits else [mem.reason]) + dory_reasons
  for l, t in zip(net.layers, tilings):
    if not t.fits and not t.note.startswith("DORY:"):
      reasons.append(f"layer {l.name!r}: smallest tile {t.tile} needs {t.l1_bytes} B of L1 > "
                     f"{p.l1_usable_bytes} B usable")
  plans = []
  for i, (l, t) in enumerate(zip(net.layers, tilings)):
    offs = {}
    for role, name in [("input", l.inputs[0]), ("input2", l.inputs[1] if len(l.inputs) > 1 else None),
                       ("output", l.name), ("weights", f"weights:{l.name}")]:
      if name is None:
        continue
      b = mem.buffer(name)
      if b is None:  # streamed from / to L3: the staging region in L2.
        b = mem.buffer("weight_stream" if role == "weights" else f"stage:{l.name}:{role}")
      offs[role] = None if b is None else b.offset
    plans.append(LayerPlan(l, t, mem.stream(net, i, p), offs))
  return NetworkPlan(net, p, tuple(plans), mem, not reasons, tuple(reasons))


def check_tiles(layer: Layer, tiling: L1Tiling) -> None:
  """Raises if the tiles of `tiling` do not cover `layer`'s output exactly once (used by tests)."""
  seen = 0
  for t in tiles(layer, tiling):
    if min(t.out_size) < 1:
      raise AssertionError(f"layer {layer.name!r}: empty tile {t}")
    seen += t.out_size[0] * t.out_size[1] * t.out_size[2]
  if seen != math.prod(layer.out_shape):
    raise AssertionError(f"layer {layer.name!r}: tiles cover {seen} outputs, expected {math.prod(layer.out_shape)}")
