"""The integer ops of the graph IR: fields, shape rules and validation.

Every requantizing op computes an integer accumulator ACC per output channel c and then

    Y = clip((k_c * ACC + lam_c) >> d, lo, hi)        (`>>`: arithmetic, i.e. floor, shift)

with (lo, hi) the output tensor's range (an unsigned output folds the ReLU). A missing `k` means 1 and a
missing `lam` means 0, so the kernels' three forms clip((k·ACC+λ)>>d), clip((m·ACC)>>d) and clip(ACC>>d)
are all this one rule. ACC per op (X: input integers, W: weights, B: int32 bias):

  conv            Σ_{window, cin in group} X·W + B          1-D (L, C) or 2-D (H, W, C); stride, zero padding,
                                                           groups (depthwise: groups = C); W [Cout][K..][Cin/g]
  linear          Σ_cin X·W + B                           (Cin,) -> (Cout,); W [Cout][Cin]
  mul             X·S, S (C,) broadcast over positions    squeeze-excitation gating
  avgpool         Σ_window X (zero padding counts)         k folds 1/window
  global_avgpool  Σ_positions X -> (C,)
  affine          X                                       per-channel k·X+λ: BatchNorm (+ReLU) with no conv before
  upsample2       (2L-1-r_j)·X[lo_j] + r_j·X[hi_j]         x2 linear interpolation along time (align_corners), 1-D
                                                           only: j·(L-1) = lo_j·(2L-1) + r_j, hi_j = min(lo_j+1, L-1)
  concat          [A[ca:ca+n], B[cb:cb+n]] on channels      1-D only: both inputs centre-cropped to n = min(La, Lb)
                                                           (c = (L-n)//2), concatenated, then per-channel requant
conv and linear may instead output the raw int32 ACC (output tensor of 32 bits; no k/lam/d).
avgpool and global_avgpool (PULP-NN's pooling kernels): k and lam are one value for all channels, k >= 0, lam >= 0
for an unsigned input, and K·k·max|ACC| (K = window size, H·W for the global pool) fits int32 -- PULP-NN's 8-bit
avgpool computes (ACC·(k·K)) / K in 32 bits, PULP-NN-mixed (k·K)/K first (checked by `ranges.check_int32`).

add (residual; PULP-NN-mixed's pulp_nn_add_<in1>_<in2>_<out>, 32-bit constants) has its own two-stage requant,
attrs in1_mul, in1_add, in1_shift, in2_mul, in2_add, in2_shift, out_mul, out_add, out_shift (ints; the muls/adds
int32, the shifts in [0, 31]), no `d`/k/lam:

    R_i = clip8_i((X_i·in{i}_mul + in{i}_add) >> in{i}_shift)      i = 1 (inputs[0]), 2 (inputs[1])
    Y   = clip(((R_1 + R_2)·out_mul + out_add) >> out_shift, lo, hi)

clip8_i clips to the 8-bit grid of input i's signedness, whatever its bits: [0, 255] for an unsigned input,
[-128, 127] for a signed one (the kernels' clip8 / clips8). Every product and sum is int32 (checked statically).
A "no output requant" kernel call (out_requant_flag = 0) is out_mul = 1, out_add = 0, out_shift = 0.

Signed outputs clip to the full two's-complement range [-2^(b-1), 2^(b-1)-1], as PULP-NN's clips8/clips4/clips2:
a node that computes its output may not declare a narrow output grid (only pass-through ops keep a narrow input's).
norm_prelu is InstanceNorm + PReLU with per-example statistics, in int64 arithmetic (see `instnorm.py`).
Ops that keep the input's quantization: maxpool (zero padding, as the seeds' `zero_pad_maxpool`),
pad_channels (zeros in front/back of the channel axis). lut: Y = table[X - lo_in], one entry per input level.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from jaxbp.integerize import instnorm
from jaxbp.integerize.graph import ACC_BITS, ACT_BITS, Graph, GraphError, Node, TensorSpec, int_range

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
MAX_SHIFT = 31


@dataclasses.dataclass(frozen=True)
class OpSpec:
  """Fields of one op kind: input count, required/optional attrs and arrays, requant kind."""

  n_inputs: int
  attrs: frozenset[str] = frozenset()
  arrays: frozenset[str] = frozenset()
  opt_arrays: frozenset[str] = frozenset()
  requant: str = "always"  # "always" | "optional" (may output int32 ACC) | "none" | "own" (own fields, add)


def _spec(n, attrs=(), arrays=(), opt=(), requant="always") -> OpSpec:
  return OpSpec(n, frozenset(attrs), frozenset(arrays), frozenset(opt), requant)


_RQ = ("k", "lam")
ADD_FIELDS = ("in1_mul", "in1_add", "in1_shift", "in2_mul", "in2_add", "in2_shift", "out_mul", "out_add", "out_shift")
POOL_OPS = ("avgpool", "global_avgpool")
PASS_THROUGH = ("maxpool", "pad_channels")
OPS: dict[str, OpSpec] = {
    "conv": _spec(1, ("stride", "padding", "groups", "w_bits"), ("weight",), ("bias",) + _RQ, "optional"),
    "linear": _spec(1, ("w_bits",), ("weight",), ("bias",) + _RQ, "optional"),
    "add": _spec(2, ADD_FIELDS, requant="own"),
    "mul": _spec(2, (), (), _RQ),
    "avgpool": _spec(1, ("kernel", "stride", "padding"), (), _RQ),
    "global_avgpool": _spec(1, (), (), _RQ),
    "affine": _spec(1, (), ("k",), ("lam",)),
    "maxpool": _spec(1, ("kernel", "stride", "padding"), requant="none"),
    "pad_channels": _spec(1, ("front", "back"), requant="none"),
    "lut": _spec(1, (), ("table",), requant="none"),
    "upsample2": _spec(1, (), (), _RQ),
    "concat": _spec(2, (), (), _RQ),
    # Own int64 arithmetic, not the int32 requant rule (fields in `instnorm.py`).
    "norm_prelu": _spec(1, ("eps", "s", "a", "alpha_shift", "d", "rnd"), ("scale", "offset", "alpha"),
                        requant="none"),
}
ONE_D_OPS = ("upsample2", "concat", "norm_prelu")


def has_requant(node: Node, out: TensorSpec) -> bool:
  """Whether `node` requantizes with the k/lam/d rule (False for pass-through ops, int32 ACC outputs and the add,
  which has its own fields)."""
  return OPS[node.op].requant not in ("none", "own") and out.bits != ACC_BITS


def requant_arrays(node: Node, channels: int) -> tuple[np.ndarray, np.ndarray, int]:
  """(k (C,), lam (C,), d) as int64, with the defaults k = 1, lam = 0."""
  k = np.asarray(node.arrays.get("k", np.ones(channels)), np.int64)
  lam = np.asarray(node.arrays.get("lam", np.zeros(channels)), np.int64)
  return np.broadcast_to(k, (channels,)), np.broadcast_to(lam, (channels,)), int(node.attrs["d"])


def clip8_range(signed: bool) -> tuple[int, int]:
  """The add's per-input clip (PULP-NN's clips8 / clip8): the 8-bit grid of the input's signedness."""
  return (-128, 127) if signed else (0, 255)


def add_fields(node: Node) -> tuple[tuple[int, int, int], tuple[int, int, int], tuple[int, int, int]]:
  """((in1_mul, in1_add, in1_shift), (in2_...), (out_...)) of an add node."""
  a = node.attrs
  return tuple(tuple(int(a[f"{p}_{f}"]) for f in ("mul", "add", "shift")) for p in ("in1", "in2", "out"))


def out_size(size: int, kernel: int, stride: int, pad: tuple[int, int]) -> int:
  """Output length of a window op along one axis (floor mode)."""
  return (size + pad[0] + pad[1] - kernel) // stride + 1


def window_fields(node: Node, nd: int, kernel: tuple[int, ...] | None = None):
  """(kernel, stride, padding) of a conv/pool node, checked to have `nd` spatial entries."""
  kernel = tuple(node.attrs["kernel"]) if kernel is None else kernel
  stride = tuple(node.attrs["stride"])
  padding = tuple(tuple(p) for p in node.attrs["padding"])
  for field, v in (("kernel", kernel), ("stride", stride), ("padding", padding)):
    if len(v) != nd:
      raise GraphError(f"node {node.name!r} ({node.op}): field {field!r} needs {nd} entries (one per spatial "
                       f"axis), got {v!r}")
  if not all(isinstance(s, int) and s >= 1 for s in stride + kernel):
    raise GraphError(f"node {node.name!r} ({node.op}): kernel/stride must be positive ints, got {kernel}/{stride}")
  if not all(len(p) == 2 and all(isinstance(q, int) and q >= 0 for q in p) for p in padding):
    raise GraphError(f"node {node.name!r} ({node.op}): field 'padding' must be [lo, hi] pairs of ints >= 0, "
                     f"got {padding!r}")
  return kernel, stride, padding


def infer_shape(node: Node, ins: list[TensorSpec]) -> tuple[int, ...]:
  """Per-example output shape of `node` from its input specs; GraphError on inconsistent fields."""
  name, op, x = node.name, node.op, ins[0]
  where = f"node {name!r} ({op})"
  if op in ("conv", "maxpool", "avgpool"):
    nd = len(x.shape) - 1
    if nd not in (1, 2):
      raise GraphError(f"{where}: input must be (L, C) or (H, W, C), got shape {x.shape}")
    if op == "conv":
      w = node.arrays["weight"]
      groups = node.attrs["groups"]
      if w.ndim != nd + 2:
        raise GraphError(f"{where}: field 'weight' must be [Cout][K..][Cin/groups] with {nd + 2} axes, got {w.shape}")
      if not isinstance(groups, int) or groups < 1 or x.channels % groups or w.shape[0] % groups:
        raise GraphError(f"{where}: field 'groups' = {groups!r} must divide Cin = {x.channels} and "
                         f"Cout = {w.shape[0]}")
      if w.shape[-1] != x.channels // groups:
        raise GraphError(f"{where}: field 'weight' has Cin/groups = {w.shape[-1]}, expected "
                         f"{x.channels // groups} (Cin {x.channels}, groups {groups})")
      kernel, stride, padding = window_fields(node, nd, tuple(w.shape[1:-1]))
      channels = w.shape[0]
    else:
      kernel, stride, padding = window_fields(node, nd)
      channels = x.channels
    spatial = tuple(out_size(s, k, st, p) for s, k, st, p in zip(x.shape[:-1], kernel, stride, padding))
    if min(spatial) < 1:
      raise GraphError(f"{where}: empty output: input {x.shape[:-1]}, kernel {kernel}, stride {stride}, "
                       f"padding {padding}")
    return spatial + (channels,)
  if op == "linear":
    w = node.arrays["weight"]
    if len(x.shape) != 1:
      raise GraphError(f"{where}: input must be (Cin,), got shape {x.shape}")
    if w.ndim != 2 or w.shape[1] != x.channels:
      raise GraphError(f"{where}: field 'weight' must be [Cout][Cin={x.channels}], got {w.shape}")
    return (w.shape[0],)
  if op == "add":
    if ins[0].shape != ins[1].shape:
      raise GraphError(f"{where}: inputs must have equal shapes, got {ins[0].shape} and {ins[1].shape}")
    return x.shape
  if op == "mul":
    if ins[1].shape != (x.channels,):
      raise GraphError(f"{where}: second input must be ({x.channels},) (one gate per channel), got {ins[1].shape}")
    return x.shape
  if op == "global_avgpool":
    if len(x.shape) < 2:
      raise GraphError(f"{where}: input needs spatial axes, got shape {x.shape}")
    return (x.channels,)
  if op in ONE_D_OPS:
    for i, t in enumerate(ins):
      if len(t.shape) != 2:
        raise GraphError(f"{where}: input {i} must be (L, C) (a 1-D net), got shape {t.shape}")
    if op == "upsample2":
      return (2 * x.shape[0], x.channels)
    if op == "concat":
      return (min(ins[0].shape[0], ins[1].shape[0]), ins[0].channels + ins[1].channels)
    return x.shape
  if op == "pad_channels":
    front, back = node.attrs["front"], node.attrs["back"]
    if not (isinstance(front, int) and isinstance(back, int) and front >= 0 and back >= 0):
      raise GraphError(f"{where}: fields 'front'/'back' must be ints >= 0, got {front!r}/{back!r}")
    return x.shape[:-1] + (x.channels + front + back,)
  return x.shape  # affine, lut


def validate_graph(graph: Graph) -> None:
  """Raises GraphError naming the first problem found (see module docstring for the op contracts)."""
  for name, t in graph.tensors.items():
    _check_tensor(name, t)
  defined = set()
  for name in graph.inputs:
    if name not in graph.tensors:
      raise GraphError(f"graph input {name!r}: no such tensor")
    if graph.tensors[name].bits not in ACT_BITS:
      raise GraphError(f"graph input {name!r}: bits must be one of {ACT_BITS}, got {graph.tensors[name].bits}")
    defined.add(name)
  names = set()
  for node in graph.nodes:
    if node.name in names:
      raise GraphError(f"node {node.name!r}: duplicate node name")
    names.add(node.name)
    _check_node(graph, node, defined)
    defined.add(node.output)
  if not graph.outputs:
    raise GraphError("graph: no outputs")
  for name in graph.outputs:
    if name not in defined:
      raise GraphError(f"graph output {name!r}: not produced by any node nor a graph input")
  unused = set(graph.tensors) - defined
  if unused:
    raise GraphError(f"graph: tensors {sorted(unused)} are declared but neither inputs nor node outputs")


def _check_tensor(name: str, t: TensorSpec) -> None:
  if t.bits not in ACT_BITS + (ACC_BITS,):
    raise GraphError(f"tensor {name!r}: bits must be one of {ACT_BITS + (ACC_BITS,)}, got {t.bits}")
  if not t.shape or not all(isinstance(s, int) and s >= 1 for s in t.shape):
    raise GraphError(f"tensor {name!r}: shape must be non-empty positive ints (channels last), got {t.shape}")
  scales = t.scale if isinstance(t.scale, tuple) else (t.scale,)
  if not all(math.isfinite(s) and s > 0 for s in scales):
    raise GraphError(f"tensor {name!r}: scale must be finite and > 0, got {t.scale}")
  if isinstance(t.scale, tuple) and (t.bits != ACC_BITS or len(t.scale) != t.channels):
    raise GraphError(f"tensor {name!r}: a per-channel scale is only allowed on a 32-bit accumulator tensor and "
                     f"needs one entry per channel ({t.channels}), got {len(t.scale)} entries at {t.bits} bits")
  if t.bits == ACC_BITS and (not t.signed or t.narrow):
    raise GraphError(f"tensor {name!r}: a 32-bit accumulator tensor is signed and not narrow")
  if t.narrow and not t.signed:
    raise GraphError(f"tensor {name!r}: only a signed grid can be narrow")


def _check_node(graph: Graph, node: Node, defined: set[str]) -> None:
  where = f"node {node.name!r} ({node.op})"
  if node.op not in OPS:
    raise GraphError(f"{where}: unknown op; expected one of {sorted(OPS)}")
  spec = OPS[node.op]
  if len(node.inputs) != spec.n_inputs:
    raise GraphError(f"{where}: needs {spec.n_inputs} inputs, got {list(node.inputs)}")
  for t in node.inputs:
    if t not in graph.tensors:
      raise GraphError(f"{where}: input {t!r} is not a declared tensor")
    if t not in defined:
      raise GraphError(f"{where}: input {t!r} is used before it is produced (nodes must be in execution order)")
    if graph.tensors[t].bits == ACC_BITS:
      raise GraphError(f"{where}: input {t!r} is a 32-bit accumulator; only graph outputs may be 32-bit")
  if node.output not in graph.tensors:
    raise GraphError(f"{where}: output {node.output!r} is not a declared tensor")
  if node.output in defined:
    raise GraphError(f"{where}: output {node.output!r} is already produced by a graph input or earlier node")
  ins = [graph.tensors[t] for t in node.inputs]
  out = graph.tensors[node.output]
  requant = spec.requant not in ("none", "own") and out.bits != ACC_BITS
  if out.narrow and node.op not in PASS_THROUGH:
    raise GraphError(f"{where}: output {node.output!r} is on a narrow signed grid; the kernels clip signed outputs "
                     f"to [-2^(b-1), 2^(b-1)-1] (declare it with narrow=False)")
  if out.bits == ACC_BITS and spec.requant != "optional":
    raise GraphError(f"{where}: output {node.output!r} cannot be a 32-bit accumulator (only conv/linear)")
  attrs_needed = set(spec.attrs) | ({"d"} if requant else set())
  attrs_allowed = attrs_needed
  missing = attrs_needed - set(node.attrs)
  if missing:
    raise GraphError(f"{where}: missing attrs {sorted(missing)}")
  extra = set(node.attrs) - attrs_allowed
  if extra:
    raise GraphError(f"{where}: unexpected attrs {sorted(extra)} (allowed: {sorted(attrs_allowed)})")
  arrays_allowed = set(spec.arrays) | set(spec.opt_arrays)
  if not requant:
    arrays_allowed -= set(_RQ)
  missing = set(spec.arrays) - set(node.arrays)
  if missing:
    raise GraphError(f"{where}: missing arrays {sorted(missing)}")
  extra = set(node.arrays) - arrays_allowed
  if extra:
    raise GraphError(f"{where}: unexpected arrays {sorted(extra)} (allowed: {sorted(arrays_allowed)})")
  for field, a in node.arrays.items():
    if not isinstance(a, np.ndarray) or a.dtype.kind not in "iu":
      raise GraphError(f"{where}: array {field!r} must be an integer NumPy array, got "
                       f"{getattr(a, 'dtype', type(a))}")
  shape = infer_shape(node, ins)
  if shape != out.shape:
    raise GraphError(f"{where}: output {node.output!r} declared with shape {out.shape}, the op gives {shape}")
  # Ranges of parameters.
  if "w_bits" in spec.attrs:
    wb = node.attrs["w_bits"]
    if wb not in ACT_BITS:
      raise GraphError(f"{where}: field 'w_bits' must be one of {ACT_BITS}, got {wb!r}")
    _in_range(where, "weight", node.arrays["weight"], *int_range(wb, True))
  if "bias" in node.arrays:
    _in_range(where, "bias", node.arrays["bias"], INT32_MIN, INT32_MAX, (out.channels,))
  if requant:
    d = node.attrs["d"]
    if not isinstance(d, int) or not 0 <= d <= MAX_SHIFT:
      raise GraphError(f"{where}: field 'd' (shift) must be an int in [0, {MAX_SHIFT}], got {d!r}")
    for field in _RQ:
      if field in node.arrays:
        _in_range(where, field, node.arrays[field], INT32_MIN, INT32_MAX, (out.channels,))
  if node.op == "add":
    for field in ADD_FIELDS:
      v = node.attrs[field]
      lo, hi = (0, MAX_SHIFT) if field.endswith("shift") else (INT32_MIN, INT32_MAX)
      if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or not lo <= v <= hi:
        raise GraphError(f"{where}: field {field!r} must be an int in [{lo}, {hi}], got {v!r}")
  if node.op in POOL_OPS and requant:
    k, lam, _ = requant_arrays(node, out.channels)
    if np.any(k != k[0]) or np.any(lam != lam[0]):
      raise GraphError(f"{where}: fields 'k'/'lam' must be one value for all channels (PULP-NN's pooling requant is "
                       f"per tensor)")
    if k[0] < 0 or (lam[0] < 0 and not ins[0].signed):
      raise GraphError(f"{where}: fields 'k' = {k[0]} must be >= 0 and 'lam' = {lam[0]} >= 0 for an unsigned input "
                       f"(PULP-NN's pooling arithmetic is unsigned there)")
  if node.op in PASS_THROUGH:
    x = ins[0]
    if (out.bits, out.signed, out.scale, out.narrow) != (x.bits, x.signed, x.scale, x.narrow):
      raise GraphError(f"{where}: output {node.output!r} must keep the input's grid (bits {x.bits}, signed "
                       f"{x.signed}, scale {x.scale}, narrow {x.narrow}), got ({out.bits}, {out.signed}, "
                       f"{out.scale}, {out.narrow})")
  if node.op == "norm_prelu":
    instnorm.validate(node, ins[0], out)
  if node.op == "lut":
    lo, hi = ins[0].range
    _in_range(where, "table", node.arrays["table"], *out.range, (hi - lo + 1,))


def _in_range(where: str, field: str, a: np.ndarray, lo: int, hi: int, shape: tuple[int, ...] | None = None):
  if shape is not None and a.shape != shape:
    raise GraphError(f"{where}: array {field!r} must have shape {shape}, got {a.shape}")
  if a.size and (a.min() < lo or a.max() > hi):
    raise GraphError(f"{where}: array {field!r} has values in [{a.min()}, {a.max()}], outside [{lo}, {hi}]")
