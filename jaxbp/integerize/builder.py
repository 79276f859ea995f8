"""Building integer graphs from quantized float layers: integer weights + scales in, requantized nodes out.

Each method takes the input tensor's name, the layer's integer weights and real scales, and the output
grid (`Quant`); it derives the int32 bias and the requant (k, λ, d) (`requant.solve`, int32-safe for any
input) and appends the node. Example (a conv with folded BN and ReLU, then a global pool and a head):

  b = GraphBuilder()
  x = b.input("x", (262, 1), Quant(8, True, 0.03))
  w, sw = quantize_weight(kernel, 8)                  # kernel [Cout][K][Cin]
  h = b.conv("conv", x, w, sw, bias=bias, padding="SAME", out=Quant(8, False, 0.05))
  h = b.global_avgpool("pool", h, Quant(8, False, 0.02))
  y = b.linear("head", h, *quantize_weight(dense, 8), bias=dense_bias)   # int32 output
  graph = b.build(outputs=[y])
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from jaxbp.integerize import instnorm
from jaxbp.integerize.graph import ACC_BITS, Graph, GraphError, Node, TensorSpec
from jaxbp.integerize.ops import infer_shape
from jaxbp.integerize.quantize import quantize_bias
from jaxbp.integerize.ranges import acc_terms, check_int32
from jaxbp.integerize.requant import AddRequant, Requant, solve, solve_add


@dataclasses.dataclass(frozen=True)
class Quant:
  """An activation grid: bits (2/4/8), signedness (unsigned = after ReLU), quantum (scale > 0), narrow (signed
  symmetric [-(2^(b-1)-1), 2^(b-1)-1])."""

  bits: int
  signed: bool
  scale: float
  narrow: bool = False

  def spec(self, shape: Sequence[int]) -> TensorSpec:
    return TensorSpec(tuple(shape), self.bits, self.signed, self.scale, self.narrow)


Padding = int | str | Sequence[tuple[int, int]]


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
  """TF/"SAME" padding (the seeds' PadSame): output ceil(size/stride), extra padding on the right."""
  out = -(-size // stride)
  total = max((out - 1) * stride + kernel - size, 0)
  return total // 2, total - total // 2


def resolve_padding(padding: Padding, spatial: Sequence[int], kernel: Sequence[int], stride: Sequence[int]
                    ) -> tuple[tuple[int, int], ...]:
  """Explicit (lo, hi) pairs per spatial axis from an int, "SAME", "VALID" or pairs."""
  if isinstance(padding, str):
    if padding.upper() == "SAME":
      return tuple(same_padding(s, k, st) for s, k, st in zip(spatial, kernel, stride))
    if padding.upper() == "VALID":
      return ((0, 0),) * len(spatial)
    raise GraphError(f"padding must be an int, 'SAME', 'VALID' or (lo, hi) pairs, got {padding!r}")
  if isinstance(padding, (int, np.integer)):
    return ((int(padding), int(padding)),) * len(spatial)
  pairs = tuple((int(lo), int(hi)) for lo, hi in padding)
  if len(pairs) != len(spatial):
    raise GraphError(f"padding {padding!r} needs one (lo, hi) pair per spatial axis ({len(spatial)})")
  return pairs


def _act_spec(name: str, out: Quant, shape: Sequence[int]) -> TensorSpec:
  """The output tensor of layer `name` on activation grid `out` (which must be 2, 4 or 8 bits)."""
  if out.bits not in (2, 4, 8):
    raise GraphError(f"layer {name!r}: output bits must be 2, 4 or 8, got {out.bits}")
  return out.spec(shape)


def _tuple(v: int | Sequence[int], n: int) -> tuple[int, ...]:
  return (int(v),) * n if isinstance(v, (int, np.integer)) else tuple(int(s) for s in v)


class GraphBuilder:
  """Appends integer nodes; `build()` returns the validated, int32-checked graph.

  `rounding` is how every requant rounds the real output: "half_up" (floor(y + 1/2), the default) or
  "floor" — whichever the fake-quantized model it mirrors uses.
  """

  def __init__(self, meta: dict[str, Any] | None = None, rounding: str = "half_up"):
    if rounding not in ("half_up", "floor"):
      raise GraphError(f"rounding must be 'half_up' or 'floor', got {rounding!r}")
    self.rounding = rounding
    self.tensors: dict[str, TensorSpec] = {}
    self.nodes: list[Node] = []
    self.inputs: list[str] = []
    self.meta = dict(meta or {})
    self.requants: dict[str, Requant] = {}  # per node, for precision reports
    self.add_requants: dict[str, AddRequant] = {}

  def spec(self, name: str) -> TensorSpec:
    if name not in self.tensors:
      raise GraphError(f"no tensor {name!r} yet; known: {sorted(self.tensors)}")
    return self.tensors[name]

  def _act_scale(self, name: str) -> float:
    s = self.spec(name).scale
    if isinstance(s, tuple):
      raise GraphError(f"tensor {name!r} has per-channel scales; an op input needs one scale")
    return s

  def input(self, name: str, shape: Sequence[int], q: Quant) -> str:
    """Declares a graph input (N, *shape) on grid `q`."""
    self._declare(name, q.spec(shape))
    self.inputs.append(name)
    return name

  def _declare(self, name: str, spec: TensorSpec) -> None:
    if name in self.tensors:
      raise GraphError(f"tensor {name!r} already exists")
    self.tensors[name] = spec

  def _emit(self, name: str, op: str, inputs: Sequence[str], attrs: dict[str, Any], arrays: dict[str, np.ndarray],
            out: Quant | None, *, multipliers: Sequence[np.ndarray | float] = (), offset: np.ndarray | float = 0.0,
            acc_scale: Any = None, acc_factor: int = 1) -> str:
    """Solves the requant (if `out`), declares the output tensor and appends the node."""
    ins = [self.spec(t) for t in inputs]
    node = Node(name, op, tuple(inputs), name, dict(attrs), dict(arrays))
    shape = infer_shape(node, ins)
    if out is None:
      if acc_scale is None:  # pass-through op: keeps the input grid
        spec = dataclasses.replace(ins[0], shape=shape)
      else:
        spec = TensorSpec(shape, ACC_BITS, True, acc_scale)
    else:
      spec = _act_spec(name, out, shape)
      terms = acc_terms(node, ins, shape[-1])
      rq = solve(name, multipliers, terms, offset, rounding=self.rounding == "half_up", acc_factor=acc_factor)
      self.requants[name] = rq
      arrays.update(k=rq.k.astype(np.int32), lam=rq.lam.astype(np.int32))
      attrs["d"] = rq.d
      node = Node(name, op, tuple(inputs), name, dict(attrs), dict(arrays))
    self._declare(name, spec)
    self.nodes.append(node)
    return name

  # ---- layers with weights -------------------------------------------------------------------------

  def conv(self, name: str, x: str, weight: np.ndarray, w_scale: np.ndarray | float, *, w_bits: int,
           bias: np.ndarray | None = None, bias_int: np.ndarray | None = None, stride: int | Sequence[int] = 1,
           padding: Padding = 0, groups: int = 1, out: Quant | None = None, post_scale: np.ndarray | None = None,
           post_shift: np.ndarray | None = None) -> str:
    """Conv (1-D or 2-D): integer `weight` [Cout][K..][Cin/groups], real output = post_scale·(conv + bias) +
    post_shift, quantized to `out` (None: raw int32 accumulator output, no post affine). The bias is given
    real (`bias`, rounded onto ε_x·ε_w) or already integer (`bias_int`, on ε_x·ε_w)."""
    xs = self.spec(x)
    weight = np.asarray(weight)
    nd = len(xs.shape) - 1
    stride = _tuple(stride, nd)
    pads = resolve_padding(padding, xs.shape[:-1], weight.shape[1:-1], stride)
    attrs = {"stride": stride, "padding": pads, "groups": int(groups), "w_bits": int(w_bits)}
    return self._weighted(name, "conv", x, weight, w_scale, bias, bias_int, attrs, out, post_scale, post_shift)

  def linear(self, name: str, x: str, weight: np.ndarray, w_scale: np.ndarray | float, *, w_bits: int,
             bias: np.ndarray | None = None, bias_int: np.ndarray | None = None, out: Quant | None = None,
             post_scale: np.ndarray | None = None, post_shift: np.ndarray | None = None) -> str:
    """Linear (Cin,) -> (Cout,) with integer `weight` [Cout][Cin]; see `conv`."""
    return self._weighted(name, "linear", x, np.asarray(weight), w_scale, bias, bias_int, {"w_bits": int(w_bits)},
                          out, post_scale, post_shift)

  def _weighted(self, name, op, x, weight, w_scale, bias, bias_int, attrs, out, post_scale, post_shift) -> str:
    cout = weight.shape[0]
    sx = self._act_scale(x)
    sw = np.broadcast_to(np.asarray(w_scale, np.float64), (cout,))
    arrays = {"weight": np.asarray(weight, np.int8)}
    if not np.array_equal(arrays["weight"], weight):
      raise GraphError(f"layer {name!r}: weight must hold integers in int8 (quantize it first), got {weight.dtype}")
    if bias is not None and bias_int is not None:
      raise GraphError(f"layer {name!r}: give either a real bias or an integer bias_int, not both")
    if bias is not None:
      arrays["bias"] = quantize_bias(bias, sx * sw, name=f"layer {name!r} bias")
    elif bias_int is not None:
      b = np.asarray(bias_int)
      if b.dtype.kind not in "iu" or b.shape != (cout,):
        raise GraphError(f"layer {name!r}: bias_int must be integers of shape ({cout},), got {b.dtype} {b.shape}")
      arrays["bias"] = quantize_bias(b, 1.0, name=f"layer {name!r} bias_int")
    if out is None:
      if post_scale is not None or post_shift is not None:
        raise GraphError(f"layer {name!r}: an int32 accumulator output cannot carry a post affine")
      acc_scale = float(sx * sw[0]) if np.all(sw == sw[0]) else tuple(sx * sw)
      return self._emit(name, op, [x], attrs, arrays, None, acc_scale=acc_scale)
    a = np.ones(cout) if post_scale is None else np.broadcast_to(np.asarray(post_scale, np.float64), (cout,))
    c = np.zeros(cout) if post_shift is None else np.broadcast_to(np.asarray(post_shift, np.float64), (cout,))
    return self._emit(name, op, [x], attrs, arrays, out, multipliers=[a * sx * sw / out.scale],
                      offset=c / out.scale)

  # ---- requantizing ops without weights -----------------------------------------------------------

  def add(self, name: str, a: str, b: str, out: Quant) -> str:
    """Residual add y = a + b as PULP-NN computes it: each input requantized onto the intermediate quantum
    ε_m (`requant.solve_add`: no input clips its 8-bit grid) and clipped, summed, then ε_m -> `out`."""
    sa, sb = self.spec(a), self.spec(b)
    node = Node(name, "add", (a, b), name)
    spec = _act_spec(name, out, infer_shape(node, [sa, sb]))
    rq = solve_add(name, [self._act_scale(a), self._act_scale(b)], [sa.range, sb.range], [sa.signed, sb.signed],
                   out.scale, rounding=self.rounding == "half_up")
    self.add_requants[name] = rq
    self._declare(name, spec)
    self.nodes.append(Node(name, "add", (a, b), name, dict(rq.fields), {}))
    return name

  def mul(self, name: str, x: str, s: str, out: Quant) -> str:
    """Channel-broadcast product x (…, C) · s (C,) (squeeze-excitation gating)."""
    return self._emit(name, "mul", [x, s], {}, {}, out,
                      multipliers=[self._act_scale(x) * self._act_scale(s) / out.scale])

  def avgpool(self, name: str, x: str, kernel: int | Sequence[int], out: Quant, *,
              stride: int | Sequence[int] | None = None, padding: Padding = 0) -> str:
    """Average pool (zero padding counts in the window)."""
    xs = self.spec(x)
    nd = len(xs.shape) - 1
    kernel = _tuple(kernel, nd)
    stride = kernel if stride is None else _tuple(stride, nd)
    attrs = {"kernel": kernel, "stride": stride, "padding": resolve_padding(padding, xs.shape[:-1], kernel, stride)}
    n = int(np.prod(kernel))
    return self._emit(name, "avgpool", [x], attrs, {}, out, multipliers=[self._act_scale(x) / (out.scale * n)],
                      acc_factor=n)

  def global_avgpool(self, name: str, x: str, out: Quant) -> str:
    """Mean over all positions: (…, C) -> (C,)."""
    n = int(np.prod(self.spec(x).shape[:-1]))
    return self._emit(name, "global_avgpool", [x], {}, {}, out, multipliers=[self._act_scale(x) / (out.scale * n)],
                      acc_factor=n)

  def affine(self, name: str, x: str, scale: np.ndarray, shift: np.ndarray, out: Quant) -> str:
    """Per-channel y = scale·x + shift (an inference BatchNorm), ReLU if `out` is unsigned."""
    c = self.spec(x).channels
    scale = np.broadcast_to(np.asarray(scale, np.float64), (c,))
    shift = np.broadcast_to(np.asarray(shift, np.float64), (c,))
    return self._emit(name, "affine", [x], {}, {"k": np.ones(c, np.int32)}, out,
                      multipliers=[scale * self._act_scale(x) / out.scale], offset=shift / out.scale)

  def upsample2(self, name: str, x: str, out: Quant) -> str:
    """x2 linear interpolation along time with align_corners (PyTorch `Upsample(2, "linear", True)`), (L, C)."""
    length = self.spec(x).shape[0]
    return self._emit(name, "upsample2", [x], {}, {}, out,
                      multipliers=[self._act_scale(x) / (out.scale * (2 * length - 1))])

  def concat(self, name: str, a: str, b: str, out: Quant) -> str:
    """Both (L, C) inputs centre-cropped to the shorter length, concatenated on channels, requantized onto `out`."""
    mult = np.concatenate([np.full(self.spec(t).channels, self._act_scale(t) / out.scale) for t in (a, b)])
    return self._emit(name, "concat", [a, b], {}, {}, out, multipliers=[mult])

  def norm_prelu(self, name: str, x: str, gamma: np.ndarray, beta: np.ndarray, alpha: np.ndarray, out: Quant, *,
                 eps: float = 1e-5) -> str:
    """InstanceNorm (per example, affine γ/β, epsilon `eps`) then per-channel PReLU(α), onto `out` (int64
    arithmetic, see `instnorm`)."""
    xs = self.spec(x)
    spec = _act_spec(name, out, infer_shape(Node(name, "norm_prelu", (x,), name), [xs]))  # (L, C) input only
    attrs, arrays = instnorm.solve(name, xs, gamma, beta, alpha, eps, out.scale, rounding=self.rounding == "half_up")
    self._declare(name, spec)
    self.nodes.append(Node(name, "norm_prelu", (x,), name, attrs, arrays))
    return name

  # ---- ops that keep or remap the grid -------------------------------------------------------------

  def maxpool(self, name: str, x: str, kernel: int | Sequence[int], *, stride: int | Sequence[int] | None = None,
              padding: Padding = 0) -> str:
    """Max pool with zero padding (keeps the input grid)."""
    xs = self.spec(x)
    nd = len(xs.shape) - 1
    kernel = _tuple(kernel, nd)
    stride = kernel if stride is None else _tuple(stride, nd)
    attrs = {"kernel": kernel, "stride": stride, "padding": resolve_padding(padding, xs.shape[:-1], kernel, stride)}
    return self._emit(name, "maxpool", [x], attrs, {}, None)

  def pad_channels(self, name: str, x: str, front: int, back: int) -> str:
    """Zero channels in front of / behind the channel axis (keeps the input grid)."""
    return self._emit(name, "pad_channels", [x], {"front": int(front), "back": int(back)}, {}, None)

  def lut(self, name: str, x: str, fn: Callable[[np.ndarray], np.ndarray] | None, out: Quant, *,
          table: np.ndarray | None = None) -> str:
    """Elementwise y = fn(x) by table: table[i] = clip(round(fn(scale_x·X_i) / scale_y)) (half to even) for every
    input level X_i = lo..hi; or the given integer `table` (one entry per input level)."""
    xs = self.spec(x)
    spec = _act_spec(name, out, xs.shape)
    lo, hi = xs.range
    if table is None:
      levels = np.arange(lo, hi + 1, dtype=np.float64) * self._act_scale(x)
      table = np.clip(np.round(np.asarray(fn(levels), np.float64) / out.scale), *out.spec((1,)).range)
    node = Node(name, "lut", (x,), name, {}, {"table": np.asarray(table).astype(np.int32)})
    self._declare(name, spec)
    self.nodes.append(node)
    return name

  def build(self, outputs: Sequence[str]) -> Graph:
    """The graph with these outputs, validated and int32-checked."""
    g = Graph(dict(self.tensors), tuple(self.nodes), tuple(self.inputs), tuple(outputs), dict(self.meta))
    g.validate()
    check_int32(g)
    return g
