"""Worst-case integer ranges of accumulators and requant sums: the int32 overflow check.

The kernels accumulate and requantize in int32 (`k·ACC + λ` included). For every node we bound each
accumulator term per output channel from its input's integer range and its integer weights (exact
worst case over all inputs, zero padding included), then bound every partial sum of the requant
expression in the order the kernels evaluate it. A graph whose bounds fit int32 cannot overflow on
any input; `check_int32` raises otherwise, naming the node and the quantity.
"""

from __future__ import annotations

import numpy as np

from jaxbp.integerize.graph import Graph, GraphError, Node, TensorSpec
from jaxbp.integerize.ops import INT32_MAX, INT32_MIN, POOL_OPS, add_fields, clip8_range, has_requant, requant_arrays


class Int32OverflowError(GraphError):
  """A node whose accumulator or requant sum can leave int32."""


Range = tuple[np.ndarray, np.ndarray]  # (lo, hi), int64 arrays of shape (C,)


def _dot_range(w: np.ndarray, x: TensorSpec) -> Range:
  """Range of Σ w·x over the last axes of w (Cout, ...) for x anywhere in its integer range."""
  lo_x, hi_x = x.range
  w = w.reshape(w.shape[0], -1).astype(np.int64)
  pos, neg = np.maximum(w, 0).sum(1), np.minimum(w, 0).sum(1)
  return lo_x * pos + hi_x * neg, hi_x * pos + lo_x * neg


def _prod_range(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
  p = [a[0] * b[0], a[0] * b[1], a[1] * b[0], a[1] * b[1]]
  return min(p), max(p)


def acc_terms(node: Node, ins: list[TensorSpec], channels: int) -> list[Range]:
  """Ranges of the accumulator term(s) the requant multiplies: one per k (two for add)."""
  op, x = node.op, ins[0]
  full = lambda lo, hi: (np.full(channels, lo, np.int64), np.full(channels, hi, np.int64))
  if op in ("conv", "linear"):
    lo, hi = _dot_range(node.arrays["weight"], x)
    if "bias" in node.arrays:
      b = node.arrays["bias"].astype(np.int64)
      lo, hi = lo + b, hi + b
    return [(lo, hi)]
  if op == "add":
    return [full(*ins[0].range), full(*ins[1].range)]  # the two inputs (the add has its own requant, `add_checks`)
  if op == "mul":
    return [full(*_prod_range(ins[0].range, ins[1].range))]
  if op in ("avgpool", "global_avgpool"):
    n = int(np.prod(node.attrs["kernel"])) if op == "avgpool" else int(np.prod(x.shape[:-1]))
    return [full(n * x.range[0], n * x.range[1])]
  if op == "affine":
    return [full(*x.range)]
  if op == "upsample2":
    n = 2 * x.shape[0] - 1
    return [full(n * x.range[0], n * x.range[1])]
  if op == "concat":
    parts = [(np.full(t.channels, t.range[0], np.int64), np.full(t.channels, t.range[1], np.int64)) for t in ins]
    return [(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))]
  raise GraphError(f"node {node.name!r} ({op}): has no accumulator")


def partial_ranges(terms: list[tuple[np.ndarray, Range]], lam: np.ndarray) -> list[tuple[str, Range]]:
  """Ranges of every intermediate of Σ_t k_t·ACC_t + λ, in evaluation order: (label, (lo, hi))."""
  out = []
  run_lo = run_hi = None
  for t, (k, (lo, hi)) in enumerate(terms):
    k = np.asarray(k, np.int64)
    plo, phi = np.minimum(k * lo, k * hi), np.maximum(k * lo, k * hi)
    out.append((f"k·ACC term {t}", (plo, phi)))
    run_lo, run_hi = (plo, phi) if run_lo is None else (run_lo + plo, run_hi + phi)
    if t:
      out.append((f"sum of terms 0..{t}", (run_lo, run_hi)))
  out.append(("k·ACC + lam", (run_lo + lam, run_hi + lam)))
  return out


def add_stage(m: int, a: int, s: int, lo: int, hi: int, clip: tuple[int, int] | None) -> tuple[list, tuple[int, int]]:
  """One requant stage clip((X·m + a) >> s) of the add for X in [lo, hi]: ([(label, range)...], output range)."""
  prod = sorted((lo * m, hi * m))
  v = (prod[0] + a, prod[1] + a)
  y = (v[0] >> s, v[1] >> s)
  if clip is not None:
    y = (min(max(y[0], clip[0]), clip[1]), min(max(y[1], clip[0]), clip[1]))
  return [("X·mul", tuple(prod)), ("X·mul + add", v)], y


def add_checks(node: Node, ins: list[TensorSpec], c: int) -> list[tuple[str, Range]]:
  """Every int32 quantity of an add node with its worst-case range."""
  (m1, a1, s1), (m2, a2, s2), (mo, ao, so) = add_fields(node)
  checks, rs = [], []
  for i, (spec, m, a, s) in enumerate(((ins[0], m1, a1, s1), (ins[1], m2, a2, s2)), 1):
    cs, r = add_stage(m, a, s, *spec.range, clip8_range(spec.signed))
    checks += [(f"in{i}: {label}", v) for label, v in cs]
    rs.append(r)
  cs, _ = add_stage(mo, ao, so, rs[0][0] + rs[1][0], rs[0][1] + rs[1][1], None)
  checks += [(f"out: {label.replace('X', 'sum')}", v) for label, v in cs]
  return [(label, (np.full(c, lo, np.int64), np.full(c, hi, np.int64))) for label, (lo, hi) in checks]


def pool_window(node: Node, x: TensorSpec) -> int:
  """K of a pooling node: the window size (avgpool) or the number of positions (global_avgpool)."""
  return int(np.prod(node.attrs["kernel"])) if node.op == "avgpool" else int(np.prod(x.shape[:-1]))


def fits_int32(r: Range) -> bool:
  return bool(np.all(r[0] >= INT32_MIN) and np.all(r[1] <= INT32_MAX))


def node_checks(node: Node, ins: list[TensorSpec], out: TensorSpec) -> list[tuple[str, Range]]:
  """Every int32 quantity of `node` with its worst-case range (empty for ops that do not accumulate)."""
  if node.op in ("maxpool", "pad_channels", "lut", "norm_prelu"):
    return []  # norm_prelu: int64 arithmetic, bounded by `instnorm.validate`
  c = out.channels
  if node.op == "add":
    return add_checks(node, ins, c)
  terms = acc_terms(node, ins, c)
  checks: list[tuple[str, Range]] = []
  if node.op in ("conv", "linear"):
    lo, hi = _dot_range(node.arrays["weight"], ins[0])
    b = node.arrays["bias"].astype(np.int64) if "bias" in node.arrays else np.zeros(c, np.int64)
    # Partial sums of the dot product (bias first or last) stay within these bounds.
    checks.append(("accumulator", (lo + np.minimum(b, 0), hi + np.maximum(b, 0))))
  else:
    checks.append(("accumulator", terms[0]))
  if not has_requant(node, out):
    return checks
  k, lam, _ = requant_arrays(node, c)
  if node.op in POOL_OPS:  # PULP-NN 8-bit: ACC·(k·K) before dividing by K; mixed: (k·K)/K
    n = pool_window(node, ins[0])
    lo, hi = terms[0]
    checks.append(("ACC·k·window (PULP-NN's 32-bit pooling intermediate)",
                   (np.minimum(lo * k * n, hi * k * n), np.maximum(lo * k * n, hi * k * n))))
  return checks + partial_ranges(list(zip([k], terms)), lam)


def check_int32(graph: Graph) -> None:
  """Raises Int32OverflowError if any accumulator or requant intermediate can leave int32."""
  for node in graph.nodes:
    ins = [graph.tensors[t] for t in node.inputs]
    for label, (lo, hi) in node_checks(node, ins, graph.tensors[node.output]):
      if not fits_int32((lo, hi)):
        c = int(np.argmax(np.maximum(hi - INT32_MAX, INT32_MIN - lo)))
        raise Int32OverflowError(
            f"node {node.name!r} ({node.op}): {label} can reach [{lo[c]}, {hi[c]}] (channel {c}) for inputs in "
            f"range, outside int32; lower the input/weight bits, the requant multiplier k or the shift d")
