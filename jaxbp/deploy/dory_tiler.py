"""DORY's PULP tiler, reimplemented: the L3->L2 and L2->L1 tiles DORY would generate for each layer.

Mirrors `shared/dory/dory/Hardware_targets/PULP/Common/Tiler/` (tiler_conv2d.py, tiler_pool2d.py,
tiler_add.py; the GAP8 target uses them unchanged) and the memory bookkeeping of DORY's `Layer_node` /
`HW_node`: the same memory budget (`DoryTarget`), buffer factor (`double_buffering`), constraints and
objective. DORY solves each tiling with OR-tools' CP solver, maximizing a heuristic with a depth-first
search that tries the smallest value of each variable first and keeps only strictly better solutions; the
result is the lexicographically smallest maximizer in the solver's variable order. These problems are
small (at most a few 10^5 candidate tiles), so this module enumerates the same constraint set with NumPy
and applies the same tie-break -- exact, without OR-tools at run time.

DORY's quirks are kept on purpose (they decide its tiles): the L1 budget is 64,000 B minus the stacks,
tiles of the whole layer skip the solver when everything fits, depthwise tiles on inputs of at most 32x32
keep the full spatial extent, standard convs keep every input channel, and fully-connected layers count an
im2col buffer in the L3 step. Layers DORY has no kernel for (element-wise ops, grouped convs) get `None`.

  tilings = dory_tilings(net, platform)   # {layer name: DoryTiling | None}
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from jaxbp.deploy.layers import Layer, Network
from jaxbp.deploy.platforms import DoryTarget

CORES = 8  # DORY's tiler hard-codes 8 cores (im2col buffers).
BIAS_BITS = 32  # Quantlab frontend: bias_bits = 32.


class DoryTilingError(ValueError):
  """DORY finds no tiling for a layer (it would exit), with the layer and the reason."""


@dataclasses.dataclass(frozen=True)
class DoryNode:
  """A layer as DORY's PULP backend sees it (its `Layer_node` attributes).

  Attributes:
    name: the jaxbp layer name; kind: "Convolution" | "FullyConnected" | "Pooling" | "Addition".
    in_ch, out_ch, in_dims, out_dims: channels and [H, W].
    ks, strides: [kh, kw]; pads: DORY order [top, left, bottom, right]; group: 1 or channels (depthwise).
    in_bits, out_bits, w_bits, in2_bits: bit widths (out_bits 32 for a raw accumulator output).
    n_constants: per-channel int32 constants (2 = k and lambda of a BN-style requant, else 0).
    has_bias: an int32 bias is stored (jaxbp folds it into lambda when there is a requant).
  """

  name: str
  kind: str
  in_ch: int
  out_ch: int
  in_dims: tuple[int, int]
  out_dims: tuple[int, int]
  ks: tuple[int, int] = (1, 1)
  strides: tuple[int, int] = (1, 1)
  pads: tuple[int, int, int, int] = (0, 0, 0, 0)
  group: int = 1
  in_bits: int = 8
  out_bits: int = 8
  w_bits: int = 8
  in2_bits: int = 8
  n_constants: int = 0
  has_bias: bool = False

  @property
  def weighted(self) -> bool:
    return self.kind in ("Convolution", "FullyConnected")

  @property
  def prod_ks(self) -> int:
    return self.ks[0] * self.ks[1]


def dory_node(layer: Layer, acc_out: bool = False) -> DoryNode | None:
  """`layer` as a DORY node, or None if DORY has no kernel for it. `acc_out`: the layer writes its raw int32
  accumulator (jaxbp's integer graphs end with such a linear layer; DORY calls pulp_nn_linear_out_32)."""
  (h, w, c), (ho, wo, co) = layer.in_shape, layer.out_shape
  pt, pb, pl, pr = layer.padding
  common = dict(name=layer.name, in_ch=c, out_ch=co, in_dims=(h, w), out_dims=(ho, wo), in_bits=layer.bits_in,
                out_bits=32 if acc_out else layer.bits_out, w_bits=layer.bits_w)
  if layer.op in ("conv", "pointwise", "depthwise"):
    if layer.op == "conv" and layer.groups != 1:
      return None  # grouped convs: no PULP-NN kernel (jaxbp's DORY export splits them).
    return DoryNode(kind="Convolution", ks=layer.kernel, strides=layer.stride, pads=(pt, pl, pb, pr),
                    group=layer.groups, n_constants=0 if acc_out else 2, has_bias=acc_out, **common)
  if layer.op == "linear":
    return DoryNode(kind="FullyConnected", n_constants=0 if acc_out else 2, has_bias=acc_out,
                    **{**common, "in_dims": (1, 1), "out_dims": (1, 1)})
  if layer.op == "pool":
    return DoryNode(kind="Pooling", ks=layer.kernel, strides=layer.stride, pads=(pt, pl, pb, pr), **common)
  if layer.op == "add":
    return DoryNode(kind="Addition", in2_bits=layer.bits_in2 or layer.bits_in, **common)
  return None


@dataclasses.dataclass(frozen=True)
class DoryLevel:
  """One level of DORY's `tiling_dimensions`: weights [Cout, Cin] ([] without weights), input and output
  [C, H, W], and the memories DORY computes from them (bytes, floats as in DORY)."""

  weights: tuple[int, ...]
  input: tuple[int, int, int]
  output: tuple[int, int, int]
  weight_memory: float = 0.0
  bias_memory: int = 0
  constants_memory: int = 0
  input_memory: float = 0.0
  output_memory: float = 0.0


@dataclasses.dataclass(frozen=True)
class DoryTiling:
  """DORY's decisions for one layer: `l3` (the whole layer), `l2` (the L3->L2 tile) and `l1` (the L2->L1
  tile); `l1_bytes` is DORY's L1 footprint of the tile (the solver's left-hand side, or the whole layer's
  buffers when they fit at once), `whole`: the L2 tile fits L1 as is (no solver)."""

  node: DoryNode
  l3: DoryLevel
  l2: DoryLevel
  l1: DoryLevel
  l1_bytes: int
  whole: bool

  @property
  def tile(self) -> tuple[int, int, int]:
    """The L1 output tile as jaxbp's (h, w, c)."""
    c, h, w = self.l1.output
    return h, w, c


def _n_min(*bits: int) -> int:
  return int(8 / min(bits))


def _full_level(n: DoryNode) -> DoryLevel:
  """Layer_node.add_memory_and_MACs: the whole layer (depthwise weights and bias counted x16, as DORY does)."""
  g16 = 1 if n.group == 1 else 16
  wmem = int(n.out_ch * n.in_ch * n.prod_ks / n.group * g16 * n.w_bits / 8) if n.weighted else 0
  return DoryLevel((n.out_ch, n.in_ch) if n.weighted else (), (n.in_ch, *n.in_dims), (n.out_ch, *n.out_dims), wmem,
                   int(n.out_ch * BIAS_BITS / 8 * g16) if n.has_bias else 0,
                   int(n.out_ch * 32 / 8 * n.n_constants), int(math.prod(n.in_dims) * n.in_ch * n.in_bits / 8),
                   int(math.prod(n.out_dims) * n.out_ch * n.out_bits / 8))


def _level(n: DoryNode, weights: Sequence[int], inp: Sequence[int], out: Sequence[int], cbits: int) -> DoryLevel:
  """HW_node.create_tiling_dimensions: the memories of a tile."""
  weights = tuple(int(x) for x in weights)
  if n.weighted:
    groups = n.group if all(n.group <= d for d in weights) else max(weights)
    wmem = math.prod(weights) / groups * n.prod_ks * n.w_bits / 8
  else:
    groups, wmem = 1, 0.0
  const = int(weights[0] * cbits / 8 * n.n_constants) if n.n_constants else 0
  bias = int(weights[0] * BIAS_BITS / 8 * (1 if groups == 1 else 16)) if n.has_bias else 0
  return DoryLevel(weights, tuple(int(x) for x in inp), tuple(int(x) for x in out), wmem, bias, const,
                   math.prod(inp) * n.in_bits / 8, math.prod(out) * n.out_bits / 8)


def _lex_argmax(obj: np.ndarray, ok: np.ndarray) -> tuple[int, ...] | None:
  """Index of the first maximum of `obj` over `ok` in C order (the CP search's lexicographic tie-break)."""
  if not ok.any():
    return None
  masked = np.where(ok, obj, np.iinfo(np.int64).min)
  return np.unravel_index(int(np.argmax(masked)), obj.shape)


def _i64(v) -> np.ndarray:
  return np.asarray(v, dtype=np.int64)


# ---------------------------------------------------------------------------------------------- L3 -> L2

def _conv_l3(n: DoryNode, full: DoryLevel, input_l3: bool, t: DoryTarget) -> tuple:
  """Tiler_Conv2D_PULP.get_tiling_conv2d_L3."""
  l2_mem = t.l2_budget_bytes
  total = full.input_memory + full.output_memory + full.weight_memory + full.bias_memory + full.constants_memory
  if total <= l2_mem and not input_l3:
    return (n.out_ch, n.in_ch), (n.in_ch, *n.in_dims), (n.out_ch, *n.out_dims)
  (kh, _), (s, _), p = n.ks, n.strides, n.pads
  (hi_full, wi), (ho_full, wo) = n.in_dims, n.out_dims
  g, out_ch, in_ch, m = n.group, n.out_ch, n.in_ch, _n_min(n.in_bits, n.out_bits, n.w_bits)
  cb = t.constant_bits
  nout = _i64(np.arange(1, out_ch + 1))[:, None, None]
  h_in = _i64([hi_full] if not input_l3 else np.arange(kh, hi_full + 1))[None, :, None]
  h_out = _i64(np.arange(1, ho_full + 1))[None, None, :]
  db_x = 2 if input_l3 else 1
  l1_mem = t.l1_budget_bytes
  for it in range(4):
    ok = np.ones((out_ch, h_in.shape[1], ho_full), bool)
    if input_l3:
      ok &= (h_in - kh) % s == 0
    if db_x == 1:
      db_w, db_o = [(2, 1), (1, 2), (2, 2), (2, 2)][it]
      if it == 0:
        ok &= h_out == ho_full
      elif it == 1:
        ok &= nout == out_ch
    else:
      db_w, db_o = [(1, 1), (1, 2), (2, 1), (2, 2)][it]
      if it in (0, 2):
        ok &= h_out == ho_full
      if it in (0, 1):
        ok &= nout == out_ch
    inp = (db_x * in_ch * h_in * wi * n.in_bits) // 8
    outp = (db_o * out_ch * h_out * wo * n.out_bits) // 8
    per_w = (int(in_ch / g) * n.prod_ks * n.w_bits) // 8 + (BIAS_BITS // 8) * int(full.bias_memory != 0)
    wt = db_w * nout * per_w
    const = (db_w * nout * n.n_constants * cb) // 8 if n.n_constants else 0
    c_all = inp + outp + wt + const
    ok &= c_all <= l2_mem
    if db_x == 2 and db_o == 2:
      ok &= h_out * s == h_in - (kh - 1) + (s - 1)
    if db_x == 2:
      ok &= ho_full % np.maximum((h_in - kh + s) // s, 1) == 0
    in_l1 = (in_ch * h_in * wi * n.in_bits) // 8
    out_l1 = (nout * h_out * wo * n.out_bits) // 8
    if g == 1:
      w_l1 = (in_ch * nout * n.prod_ks * n.w_bits) // 8
      im2col_l1, wfp_l1 = 2 * CORES * n.prod_ks * in_ch, 0  # DORY zeroes another variable for FC layers.
    else:
      w_l1 = (in_ch * n.prod_ks * n.w_bits) // 8
      im2col_l1 = CORES * (kh * (in_ch + p[0] + p[2]) + kh) * m
      wfp_l1 = 32 * 8 * 8 * n.prod_ks * m if n.w_bits != 8 else 0
    const_l1 = (nout * n.n_constants * cb) // 8 if n.n_constants else 0
    c_l1 = in_l1 + out_l1 + w_l1 + const_l1 + im2col_l1 + wfp_l1 + 20
    obj = (c_all + 100000000 * (c_l1 < l1_mem) + 100000 * ((h_out - 1) % 8) + 100000 * (nout % 4 == 0)
           + 1000000 * (((out_ch - nout) % nout) == 0) + 1000000 * (((ho_full - h_out) % h_out) == 0)
           + 100000 * (h_out == ho_full) + 10000 * (nout == out_ch))
    obj, ok = np.broadcast_arrays(obj, ok)
    best = _lex_argmax(obj, ok)
    if best is not None:
      tn, thi, tho = int(nout[best[0], 0, 0]), int(h_in[0, best[1], 0]), int(h_out[0, 0, best[2]])
      if out_ch > tn and (hi_full > thi or ho_full > tho):
        raise DoryTilingError(f"layer {n.name!r}: DORY cannot tile both weights and activations from L3 "
                              f"(tile {tn}/{out_ch} channels, {tho}/{ho_full} rows)")
      return (tn, in_ch), (in_ch, thi, wi), (out_ch, tho, wo)
  raise DoryTilingError(f"layer {n.name!r}: no L3->L2 tiling fits {l2_mem} B of L2")


def _pool_l3(n: DoryNode, full: DoryLevel, input_l3: bool, input_limit: float, t: DoryTarget) -> tuple:
  """Tiler_Pool2D_PULP.get_tiling_pool2d_L3: output rows tiled (all channels), input rows too when the input
  comes from L3 (then at most the previous layer's L2 output tile, `input_limit` bytes)."""
  l2_mem = t.l2_budget_bytes
  total = full.input_memory + full.output_memory + full.constants_memory
  if total <= l2_mem and not input_l3:
    return (), (n.in_ch, *n.in_dims), (n.out_ch, *n.out_dims)
  (kh, _), (s, _) = n.ks, n.strides
  (hi_full, wi), (ho_full, wo) = n.in_dims, n.out_dims
  h_in = _i64([hi_full] if not input_l3 else np.arange(kh, hi_full + 1))[:, None]
  h_out = _i64(np.arange(1, ho_full + 1))[None, :]
  db_x, db_o = (2 if input_l3 else 1), 1
  const = n.out_ch * n.n_constants * t.constant_bits / 8
  for it in range(2):  # DORY's two iterations; db_O carries over from the first.
    ok = np.ones((h_in.shape[0], ho_full), bool)
    if input_l3:
      ok &= (h_in - kh) % s == 0
    if it == 0:
      if db_x == 1:
        db_o = 2
      else:
        ok &= h_out == ho_full
        db_o = 1
    elif db_x == 2:
      db_o = 2
    inp = (db_x * n.in_ch * h_in * wi * n.in_bits + 7) // 8
    outp = (db_o * n.out_ch * h_out * wo * n.out_bits + 7) // 8
    c_all = inp + outp + const
    ok &= c_all <= l2_mem
    if input_l3:
      ok &= inp <= input_limit
    if db_x == 2 and db_o == 2:
      ok &= h_out * s == h_in - (kh - 1) + (s - 1)
    obj = c_all + 200000 * ((h_out - 1) % 8) + 200000 * ((h_in - 1) % 4)
    obj, ok = np.broadcast_arrays(obj, ok)
    best = _lex_argmax(obj, ok)
    if best is not None:
      thi, tho = int(h_in[best[0], 0]), int(h_out[0, best[1]])
      return (), (n.in_ch, thi, wi), (n.out_ch, tho, wo)
  raise DoryTilingError(f"layer {n.name!r}: DORY finds no L3->L2 pooling tile within {l2_mem} B of L2")


def _l3_tiling(n: DoryNode, full: DoryLevel, input_l3: bool, t: DoryTarget, input_limit: float = 0.0) -> tuple:
  if n.weighted:
    return _conv_l3(n, full, input_l3, t)
  if n.kind == "Pooling":
    return _pool_l3(n, full, input_l3, input_limit, t)
  # Tiler_Add_PULP.get_tiling_Add_L3 compares the previous layer's L3 output with itself, so it never sees an L3
  # input; an add that does not fit L2 whole stops DORY ("no L3-L2 tiling supported").
  total = full.input_memory + full.output_memory + full.constants_memory
  if total <= t.l2_budget_bytes:
    return (), (n.in_ch, *n.in_dims), (n.out_ch, *n.out_dims)
  raise DoryTilingError(f"layer {n.name!r} ({n.kind}): DORY has no L3->L2 tiling for additions "
                        f"({total:.0f} B > {t.l2_budget_bytes} B of L2)")


# ---------------------------------------------------------------------------------------------- L2 -> L1

def _conv_l1(n: DoryNode, l3: DoryLevel, l2: DoryLevel, db: int, t: DoryTarget) -> tuple[tuple, int, bool]:
  """Tiler_Conv2D_PULP.get_tiling_conv2d_L2."""
  l1_mem = t.l1_budget_bytes
  inp_dim, out_dim = list(l2.input[1:]), list(l2.output[1:])
  out_ch, in_ch = l2.weights[0], l2.input[0]
  (kh, kw), (s0, s1), p, g = n.ks, n.strides, n.pads, n.group
  m = _n_min(n.in_bits, n.out_bits, n.w_bits)
  fc = n.kind == "FullyConnected"
  if g == 1:
    im2col, wfp = 2 * CORES * n.prod_ks * in_ch * n.in_bits / 8, 0
  else:
    im2col = CORES * (kh * (inp_dim[0] + p[0] + p[2]) + kh) * m
    wfp = 0 if n.w_bits == 8 else 8 * n.prod_ks * m
  if fc:
    im2col = 0
  in_mem, out_mem, h_in, h_out = l2.input_memory, l2.output_memory, l2.input[1], l2.output[1]
  if l3.output[1] > l2.output[1]:
    h_in = l2.output[1] * s0 + (kh - 1) - (s0 - 1)
    inp_dim[0] = h_in
    in_mem = int(l2.input_memory / l2.input[1] * h_in)
  if l3.input[1] > l2.input[1]:
    h_out = int(np.floor((l2.input[1] - (kh - 1) + (s0 - 1)) / s0))
    out_dim[0] = h_out
    out_mem = int(l2.output_memory / l2.output[1] * h_out)
  out_mem = int(l2.output_memory / l2.output[0] * l2.weights[0])
  total = l2.weight_memory + l2.constants_memory + l2.bias_memory + in_mem + out_mem + im2col + wfp
  if total <= l1_mem:
    return ((l2.weights, (l2.input[0], h_in, l2.input[2]), (l2.weights[0], h_out, l2.output[2])), int(math.ceil(total)),
            True)
  # Candidates: output channels x (h_in, h_out) pairs x (w_in, w_out) pairs, each sorted by the solver's order.
  nout = np.arange(1, out_ch + 1)
  nout = nout[nout % m == 0]
  ph, pw = p[0] + p[2], p[1] + p[3]

  def pairs(full_in: int, full_out: int, k: int, s: int, pad: int, mod: bool) -> list[tuple[int, int]]:
    out = []
    for xi in range(k, full_in + 1):
      if mod and (xi - k) % s:
        continue
      rhs = xi - (k - 1) + (s - 1) + pad * (xi == full_in)
      if rhs % s == 0 and 1 <= rhs // s <= full_out:
        out.append((xi, rhs // s))
    return out

  if g == 1:
    hp = pairs(inp_dim[0], out_dim[0], kh, s0, ph, True)
    wp = pairs(inp_dim[1], out_dim[1], kw, s1, pw, False)
  elif inp_dim[0] <= 32 and inp_dim[1] <= 32:
    hp = [(inp_dim[0], out_dim[0])] if kh <= inp_dim[0] else []
    wp = [(inp_dim[1], out_dim[1])] if kw <= inp_dim[1] else []
  else:
    hp = pairs(inp_dim[0], out_dim[0], kh, s0, ph, inp_dim[0] > 32 and inp_dim[1] > 32)
    wp = [(inp_dim[1], out_dim[1])]
  if not hp or not wp or not len(nout):
    raise DoryTilingError(f"layer {n.name!r}: no L2->L1 tile satisfies DORY's geometric constraints for an L2 tile "
                          f"of input {inp_dim[0]}x{inp_dim[1]} (output {out_dim[0]}x{out_dim[1]}), kernel {kh}x{kw}, "
                          f"stride {s0} (DORY exits: 'no L2-L1 tiling found')")
  tn = _i64(nout)[:, None, None]
  hi, ho = (_i64([a for a, _ in hp])[None, :, None], _i64([b for _, b in hp])[None, :, None])
  wi, wo = (_i64([a for a, _ in wp])[None, None, :], _i64([b for _, b in wp])[None, None, :])
  tin = tn if g > 1 else in_ch
  inp = (db * tin * hi * wi * n.in_bits) // 8
  outp = (db * tn * ho * wo * n.out_bits) // 8
  if g == 1:
    wt = (db * tin * tn * n.prod_ks * n.w_bits) // 8
    im2col_t, wfp_t = 2 * CORES * n.prod_ks * tin, 0
  else:
    wt = (db * tin * n.prod_ks * n.w_bits) // 8
    im2col_t = CORES * (kh * (tin + p[0] + p[2]) + kh) * m
    wfp_t = db * 8 * 8 * n.prod_ks * m if n.w_bits != 8 else 0
  if fc:
    im2col_t = 0
  const = (db * tn * n.n_constants * t.constant_bits) // 8 if n.n_constants else 0
  c_all = l2.bias_memory + inp + outp + wt + const + im2col_t + wfp_t + 40
  ok = c_all <= l1_mem
  oc, oh, ow = out_ch, out_dim[0], out_dim[1]
  if g == 1:
    obj = (2000000 * ((ho - 1) % 8) + 3000000 * ((wo - 1) % 2) + 1000000 * ((tn - 1) % 4)
           + 1000000 * (wo * ho >= 16) + c_all + 100000 * tn
           + 10000 * ((oc - 1) % tn) + 10000 * (((oc - 1) % tn) % 4)
           + 20000 * (((oh - 1) % ho) % 8) + 30000 * (((ow - 1) % wo) % 2))
  else:
    obj = (10000 * (tn > 7) + 20000 * ((tn - 1) % 16) + 10000 * ((ho % 4) == 0) + c_all + 1000 * wo + 1000 * ho
           + 100 * ((oh - 1) % ho) + 100 * ((ow - 1) % wo) + 100 * (((oc - 1) % tn) > 7)
           + 100 * (((oh - 1) % ho) % 4))
  obj, ok, c_all = np.broadcast_arrays(obj, ok, c_all)
  best = _lex_argmax(obj, ok)
  if best is None:
    raise DoryTilingError(f"layer {n.name!r}: no L2->L1 tiling fits {l1_mem} B of L1 (DORY exits here)")
  a, b, c = best
  r_n, r_hi, r_ho, r_wi, r_wo = int(nout[a]), hp[b][0], hp[b][1], wp[c][0], wp[c][1]
  if r_hi >= inp_dim[0]:
    r_hi = inp_dim[0]
    r_ho = int((r_hi - (kh - 1) + ph + (s0 - 1)) / s0)
  if r_wi >= inp_dim[1]:
    r_wi = inp_dim[1]
    r_wo = int((r_wi - (kw - 1) + pw + (s0 - 1)) / s0)  # DORY uses the vertical stride here too.
  r_in = r_n if g > 1 else in_ch
  return ((r_n, r_in), (r_in, r_hi, r_wi), (r_n, r_ho, r_wo)), int(c_all[best]), False


def _pool_l1(n: DoryNode, l2: DoryLevel, db: int, t: DoryTarget) -> tuple[tuple, int, bool]:
  """Tiler_Pool2D_PULP.get_tiling_pool2d_L2."""
  l1_mem = t.l1_budget_bytes
  total = l2.constants_memory + l2.input_memory + l2.output_memory
  if total <= l1_mem:
    return ((), l2.input, l2.output), int(math.ceil(total)), True
  (hi_f, wi_f), (ho_f, wo_f) = l2.input[1:], l2.output[1:]
  in_ch = l2.input[0]
  (kh, kw), (s0, s1), p = n.ks, n.strides, n.pads
  m = _n_min(n.in_bits, n.out_bits)
  ns = np.arange(1, in_ch + 1)
  ns = ns[ns % m == 0]

  def pairs(full_in, full_out, k, s):
    return [(xi, (xi - (k - 1) + (s - 1)) // s) for xi in range(k, full_in + 1)
            if (xi - k) % s == 0 and (xi - (k - 1) + (s - 1)) % s == 0 and 1 <= (xi - (k - 1) + (s - 1)) // s <= full_out]

  hp, wp = pairs(hi_f, ho_f, kh, s0), pairs(wi_f, wo_f, kw, s1)
  if not hp or not wp or not len(ns):
    raise DoryTilingError(f"layer {n.name!r}: no pooling L2->L1 tiling (no geometric candidate)")
  tn = _i64(ns)[:, None, None]
  hi, ho = _i64([a for a, _ in hp])[None, :, None], _i64([b for _, b in hp])[None, :, None]
  wi, wo = _i64([a for a, _ in wp])[None, None, :], _i64([b for _, b in wp])[None, None, :]
  const = (db * tn * n.n_constants * t.constant_bits) // 8 if n.n_constants else 0
  c_all = (db * tn * hi * wi * n.in_bits + 7) // 8 + (db * tn * ho * wo * n.out_bits + 7) // 8 + const + 20
  obj = 10000 * c_all + 100 * wi + hi + 1000000 * tn
  obj, ok, c_all = np.broadcast_arrays(obj, c_all <= l1_mem, c_all)
  best = _lex_argmax(obj, ok)
  if best is None:
    raise DoryTilingError(f"layer {n.name!r}: no pooling tile fits {l1_mem} B of L1")
  a, b, c = best
  r_n, r_hi, r_ho, r_wi, r_wo = int(ns[a]), hp[b][0], hp[b][1], wp[c][0], wp[c][1]
  if r_hi >= hi_f:
    r_hi, r_ho = hi_f, int((hi_f - (kh - 1) + (p[0] + p[2]) + (s0 - 1)) / s0)
  if r_wi >= wi_f:
    r_wi, r_wo = wi_f, int((wi_f - (kw - 1) + (p[1] + p[3]) + (s0 - 1)) / s0)
  return ((), (r_n, r_hi, r_wi), (r_n, r_ho, r_wo)), int(c_all[best]), False


def _add_l1(n: DoryNode, l2: DoryLevel, db: int, t: DoryTarget) -> tuple[tuple, int, bool]:
  """Tiler_Add_PULP.get_tiling_Add_L2 (rows only; the input term uses the full width, as DORY does)."""
  l1_mem = t.l1_budget_bytes
  factor = int(np.ceil(1 + n.in2_bits / n.in_bits))
  total = l2.constants_memory + l2.input_memory * factor + l2.output_memory
  if total <= l1_mem:
    return ((), l2.input, l2.output), int(math.ceil(total)), True
  in_ch, (hi_f, wi_f), out_ch, wo_f = l2.input[0], l2.input[1:], l2.output[0], l2.output[2]
  best = None
  for h in range(hi_f, 0, -1):  # objective: 10^6 x bytes dominates; bytes grow with h; w_in = W is free.
    c_all = ((db * in_ch * h * wi_f * n.in_bits + 7) // 8) * factor + (db * out_ch * h * wo_f * n.out_bits + 7) // 8
    if c_all <= l1_mem:
      best = (h, c_all)
      break
  if best is None:
    raise DoryTilingError(f"layer {n.name!r}: no addition tile fits {l1_mem} B of L1")
  h, c_all = best
  return ((), (in_ch, h, wi_f), (in_ch, h, wi_f)), c_all, False


def dory_tiling(layer: Layer, target: DoryTarget, acc_out: bool = False, input_l3: bool = False,
                input_limit: float = 0.0) -> DoryTiling | None:
  """DORY's tiles of one layer (None: no DORY kernel); `input_l3`: its input is tiled in L3, in tiles of at most
  `input_limit` bytes (the previous layer's L2 output tile)."""
  n = dory_node(layer, acc_out)
  if n is None:
    return None
  full = _full_level(n)
  w2, i2, o2 = _l3_tiling(n, full, input_l3, target, input_limit)
  l2 = _level(n, w2, i2, o2, target.constant_bits)
  db = target.double_buffering
  if n.weighted:
    (w1, i1, o1), nbytes, whole = _conv_l1(n, full, l2, db, target)
  elif n.kind == "Pooling":
    (w1, i1, o1), nbytes, whole = _pool_l1(n, l2, db, target)
  else:
    (w1, i1, o1), nbytes, whole = _add_l1(n, l2, db, target)
  return DoryTiling(n, full, l2, _level(n, w1, i1, o1, target.constant_bits), nbytes, whole)


def dory_tilings(net: Network | Sequence[Layer], target: DoryTarget, acc_out: Sequence[str] | None = None,
                 errors: dict[str, str] | None = None) -> dict[str, DoryTiling | None]:
  """DORY's L3->L2 and L2->L1 tiles of every layer of `net`, in DORY's order (the previous layer in the list
  decides whether the input comes from L3, as in DORY). `acc_out`: layers writing their int32 accumulator
  (default: the last layer if it is linear, as in jaxbp's integer graphs and DORY exports). With `errors`,
  a layer DORY finds no tiling for is recorded there ({layer: reason}, entry None) instead of raising."""
  layers = tuple(net.layers if isinstance(net, Network) else net)
  if acc_out is None:
    acc_out = (layers[-1].name,) if layers[-1].op == "linear" else ()
  out: dict[str, DoryTiling | None] = {}
  prev: DoryTiling | None = None
  for layer in layers:
    input_l3 = prev is not None and prev.l3.output != prev.l2.output
    try:
      tiling = dory_tiling(layer, target, layer.name in acc_out, input_l3, prev.l2.output_memory if prev else 0.0)
    except DoryTilingError as e:
      if errors is None:
        raise
      errors[layer.name] = str(e)
      out[layer.name] = None
      continue
    out[layer.name] = tiling
    if tiling is not None:
      prev = tiling
  return out


def kernel_name(n: DoryNode, isa: str, mixed: bool, signed_in: bool = False) -> str:
  """The PULP-NN(-mixed) function DORY's GAP8/PULP layer template calls for `n` (unsigned ReLU outputs, signed
  weights; `signed_in`: a signed input, e.g. jaxbp's network input). `mixed`: DORY uses pulp-nn-mixed for every
  layer ("mixed-sw"; "mixed-hw", xpulp_nn_*, on XpulpNN ISAs): with a sub-byte layer, or a signed input."""
  if not mixed:
    if n.kind == "Convolution" and n.group > 1:
      return "pulp_nn_depthwise_generic_less_4_weights" if n.prod_ks < 4 else "pulp_nn_depthwise_generic"
    if n.kind == "Convolution":
      return "pulp_nn_conv_Ho_parallel" if n.prod_ks > 1 or max(n.strides) > 1 else "pulp_nn_pointwise_HoWo_parallel"
    if n.kind == "FullyConnected":
      return "pulp_nn_linear_out_32" if n.out_bits == 32 else "pulp_nn_linear"
    return {"Pooling": "pulp_nn_avgpool", "Addition": "pulp_nn_add"}[n.kind]
  px = "xpulp_nn_" if isa != "xpulpv2" else "pulp_nn_"
  x, y = f"{'i' if signed_in else 'u'}{n.in_bits}", ("i32" if n.out_bits == 32 else f"u{n.out_bits}")
  if n.kind == "Convolution":
    base = "depthwise" if n.group > 1 else "conv"
    return f"{px}{base}_{x}_{y}_i{n.w_bits}"
  if n.kind == "FullyConnected":
    return f"{px}linear_{x}_{y}_i{n.w_bits}"
  if n.kind == "Pooling":
    return f"{px}avgpool_{x}_{y}"
  return f"{px}add_{x}_u{n.in2_bits}_{y}"
