"""The integer interpreter: runs a graph on integer inputs with the kernels' exact arithmetic.

Accumulators are exact integers (int64 here, checked to stay within int32 like the kernels'),
requantization is `clip((k·ACC + λ) >> d)` with an arithmetic (floor) shift. Convolutions run as a
float64 matmul over im2col windows: every partial sum is an integer far below 2^53, so it is exact.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from jaxbp.integerize import instnorm
from jaxbp.integerize.graph import Graph, GraphError, Node, TensorSpec
from jaxbp.integerize.ops import (INT32_MAX, INT32_MIN, add_fields, clip8_range, has_requant, requant_arrays,
                                  window_fields)
from jaxbp.integerize.ranges import Int32OverflowError


def check_input(name: str, spec: TensorSpec, x: np.ndarray) -> np.ndarray:
  """`x` as int64 (N, *spec.shape) after checking dtype, shape and range; errors name the input."""
  x = np.asarray(x)
  if x.dtype.kind not in "iu":
    raise GraphError(f"input {name!r}: expected an integer array, got dtype {x.dtype} (quantize it first, e.g. "
                     f"jaxbp.integerize.quantize)")
  if x.shape[1:] != spec.shape:
    raise GraphError(f"input {name!r}: expected shape (N, {', '.join(map(str, spec.shape))}), got {x.shape}")
  lo, hi = spec.range
  if x.size and (x.min() < lo or x.max() > hi):
    raise GraphError(f"input {name!r}: values in [{x.min()}, {x.max()}] outside the {spec.bits}-bit "
                     f"{'signed' if spec.signed else 'unsigned'} range [{lo}, {hi}]")
  return x.astype(np.int64)


def run(graph: Graph, inputs: np.ndarray | Mapping[str, np.ndarray], *, keep_all: bool = False
        ) -> dict[str, np.ndarray]:
  """Runs `graph` on a batch of integer inputs.

  Args:
    graph: a validated integer graph.
    inputs: the single input's array (N, *shape), or {input name: array}.
    keep_all: return every tensor (graph inputs and all node outputs), not only the graph outputs.

  Returns:
    {tensor name: int64 array (N, *shape)}.
  """
  if not isinstance(inputs, Mapping):
    if len(graph.inputs) != 1:
      raise GraphError(f"graph has inputs {list(graph.inputs)}; pass a dict {{name: array}}")
    inputs = {graph.inputs[0]: inputs}
  missing = set(graph.inputs) - set(inputs)
  if missing:
    raise GraphError(f"missing graph inputs {sorted(missing)}")
  env = {name: check_input(name, graph.tensors[name], inputs[name]) for name in graph.inputs}
  for node in graph.nodes:
    env[node.output] = apply_node(node, [env[t] for t in node.inputs], [graph.tensors[t] for t in node.inputs],
                                  graph.tensors[node.output])
  names = list(env) if keep_all else list(graph.outputs)
  return {name: env[name] for name in names}


def apply_node(node: Node, xs: list[np.ndarray], ins: list[TensorSpec], out: TensorSpec) -> np.ndarray:
  """One node on int64 batch arrays."""
  op, x = node.op, xs[0]
  if op == "maxpool":
    return _pool(node, x, np.max)
  if op == "pad_channels":
    return np.pad(x, [(0, 0)] * (x.ndim - 1) + [(node.attrs["front"], node.attrs["back"])])
  if op == "lut":
    return node.arrays["table"].astype(np.int64)[x - ins[0].range[0]]
  if op == "norm_prelu":
    return instnorm.apply(node, x, out)
  if op == "add":
    return add(node, xs, ins, out)
  if op in ("conv", "linear"):
    w = node.arrays["weight"].astype(np.int64)
    if op == "conv":
      acc = conv(x, w, tuple(node.attrs["stride"]), tuple(tuple(p) for p in node.attrs["padding"]),
                 node.attrs["groups"])
    else:
      acc = np.rint(x.astype(np.float64) @ w.T.astype(np.float64)).astype(np.int64)
    if "bias" in node.arrays:
      acc = acc + node.arrays["bias"].astype(np.int64)
  elif op == "mul":
    acc = x * xs[1].reshape((x.shape[0],) + (1,) * (x.ndim - 2) + (x.shape[-1],))
  elif op == "avgpool":
    acc = _pool(node, x, np.sum)
  elif op == "global_avgpool":
    acc = x.sum(axis=tuple(range(1, x.ndim - 1)))
  elif op == "affine":
    acc = x
  elif op == "upsample2":
    lo, hi, r = upsample2_taps(x.shape[1])
    acc = (2 * x.shape[1] - 1 - r)[:, None] * x[:, lo] + r[:, None] * x[:, hi]
  elif op == "concat":
    acc = np.concatenate(center_crop(xs[0], xs[1]), axis=-1)
  else:
    raise GraphError(f"node {node.name!r}: unknown op {op!r}")
  _check32(node, "accumulator", acc)
  if not has_requant(node, out):
    return acc
  k, lam, d = requant_arrays(node, out.channels)
  _check32(node, "k·ACC", k * acc)
  v = _check32(node, "k·ACC + lam", k * acc + lam)
  return np.clip(v >> d, *out.range)


def add(node: Node, xs: list[np.ndarray], ins: list[TensorSpec], out: TensorSpec) -> np.ndarray:
  """PULP-NN-mixed's residual add: each input requantized and clipped to its 8-bit grid, summed, requantized."""
  (m1, a1, s1), (m2, a2, s2), (mo, ao, so) = add_fields(node)
  r = []
  for i, (x, spec, m, a, s) in enumerate(((xs[0], ins[0], m1, a1, s1), (xs[1], ins[1], m2, a2, s2)), 1):
    _check32(node, f"in{i}: X·mul", x * m)
    v = _check32(node, f"in{i}: X·mul + add", x * m + a)
    r.append(np.clip(v >> s, *clip8_range(spec.signed)))
  total = r[0] + r[1]
  _check32(node, "out: sum·mul", total * mo)
  v = _check32(node, "out: sum·mul + add", total * mo + ao)
  return np.clip(v >> so, *out.range)


def upsample2_taps(length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(lo, hi, r) int64 (2L,): output j of a x2 align-corners upsample is ((2L-1-r)·X[lo] + r·X[hi]) / (2L-1)."""
  p = np.arange(2 * length, dtype=np.int64) * (length - 1)
  lo, r = p // (2 * length - 1), p % (2 * length - 1)
  return lo, np.minimum(lo + 1, length - 1), r


def crop_starts(lengths: Sequence[int]) -> tuple[int, list[int]]:
  """(n, [start per input]) of concat's centre crop: every input keeps [start, start + n), n = min(lengths),
  start = (L - n) // 2 (the float UNet1d's `center_crop`)."""
  n = min(lengths)
  return n, [(length - n) // 2 for length in lengths]


def center_crop(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Both (N, L, C) arrays centre-cropped along L to the shorter length (`crop_starts`)."""
  n, starts = crop_starts([a.shape[1], b.shape[1]])
  return tuple(v[:, s:s + n] for v, s in zip((a, b), starts))


def _check32(node: Node, what: str, v: np.ndarray) -> np.ndarray:
  if v.size and (v.min() < INT32_MIN or v.max() > INT32_MAX):
    raise Int32OverflowError(f"node {node.name!r} ({node.op}): {what} reached [{v.min()}, {v.max()}] at run "
                             f"time, outside int32")
  return v


def _as2d(x: np.ndarray, nd: int) -> np.ndarray:
  return x[:, None] if nd == 1 else x


def _windows(x: np.ndarray, kernel, stride, padding) -> np.ndarray:
  """(N, Ho, Wo, C, KH, KW) zero-padded windows of a 2-D NHWC array."""
  xp = np.pad(x, ((0, 0), padding[0], padding[1], (0, 0)))
  win = sliding_window_view(xp, kernel, axis=(1, 2))
  return win[:, ::stride[0], ::stride[1]]


def _pool(node: Node, x: np.ndarray, reduce) -> np.ndarray:
  nd = x.ndim - 2
  kernel, stride, padding = window_fields(node, nd)
  if nd == 1:
    kernel, stride, padding = (1,) + kernel, (1,) + stride, ((0, 0),) + padding
  y = reduce(_windows(_as2d(x, nd), kernel, stride, padding), axis=(-2, -1))
  return y[:, 0] if nd == 1 else y


def conv(x: np.ndarray, w: np.ndarray, stride: tuple[int, ...], padding: tuple[tuple[int, int], ...],
         groups: int, *, integer: bool = True) -> np.ndarray:
  """Conv of x (N, *S, C) with w (Cout, *K, C/groups) -> (N, *S', Cout): exact int64 for integer operands,
  or plain float64 with `integer=False` (a float reference)."""
  nd = x.ndim - 2
  if nd == 1:
    x, w, stride, padding = x[:, None], w[:, None], (1,) + stride, ((0, 0),) + padding
  n, cout = x.shape[0], w.shape[0]
  kh, kw, cg = w.shape[1], w.shape[2], w.shape[3]
  co = cout // groups
  win = _windows(x, (kh, kw), stride, padding)  # (N, Ho, Wo, C, KH, KW)
  ho, wo = win.shape[1], win.shape[2]
  m = n * ho * wo
  cols = win.reshape(m, groups, cg, kh, kw).transpose(1, 0, 3, 4, 2).reshape(groups, m, kh * kw * cg)
  wm = w.reshape(groups, co, kh * kw * cg).transpose(0, 2, 1)
  acc = np.matmul(cols.astype(np.float64), wm.astype(np.float64))  # (groups, M, co)
  acc = (np.rint(acc).astype(np.int64) if integer else acc).transpose(1, 0, 2).reshape(n, ho, wo, cout)
  return acc[:, 0] if nd == 1 else acc
