"""Integer requantization parameters (k_c, λ_c, d) from float scales, with int32 overflow checks.

A layer's real output in units of the output quantum ε_y is y_c = Σ_t M_t,c · ACC_t + β_c (one term for
conv/linear/pool/affine/mul, two for a residual add), e.g. M = ε_x·ε_w,c/ε_y for a conv with folded BN.
The integer form is Y = clip((Σ_t k_t,c·ACC_t + λ_c) >> d) with k = round(M·2^d) and
λ = floor((β + ½)·2^d): the ½ makes the floor shift round half up, as the fake-quantized model rounds
(and for integer N, floor((N + u)/2^d) == floor((N + floor(u))/2^d), so λ loses nothing).
The shift d (one per layer) is the largest in [0, 31] for which every intermediate of the sum fits int32
over the worst-case accumulator range: the most precise multiplier that cannot overflow.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from jaxbp.integerize.graph import GraphError
from jaxbp.integerize.ops import INT32_MAX, INT32_MIN, MAX_SHIFT
from jaxbp.integerize.ranges import Range, fits_int32, partial_ranges


class RequantError(GraphError):
  """No shift d makes the requant expression fit int32 (the scales overflow int32 requant)."""


@dataclasses.dataclass(frozen=True)
class Requant:
  """Integer requant of one layer.

  Attributes:
    ks: one int64 array (C,) per accumulator term (the integer multipliers k).
    lam: int64 (C,), the additive term λ (offset β and the rounding half folded in).
    d: the right shift.
    rel_error: max relative error |k/2^d - M| / |M| over channels and terms (0 where M = 0).
  """

  ks: tuple[np.ndarray, ...]
  lam: np.ndarray
  d: int
  rel_error: float

  @property
  def k(self) -> np.ndarray:
    if len(self.ks) != 1:
      raise ValueError(f"this requant has {len(self.ks)} terms; use .ks")
    return self.ks[0]


def _to_int(x: np.ndarray) -> np.ndarray:
  return np.floor(x + 0.5).astype(np.int64)  # round half up (exact for |x| < 2^52)


def solve(name: str, multipliers: Sequence[np.ndarray | float], acc_ranges: Sequence[Range],
          offset: np.ndarray | float = 0.0, *, rounding: bool = True, max_shift: int = MAX_SHIFT,
          acc_factor: int = 1) -> Requant:
  """The most precise int32-safe (k, λ, d) for y = Σ_t M_t·ACC_t + β (output quanta).

  Args:
    name: layer name, for errors.
    multipliers: per term, M_t of shape (C,) or scalar (real output quanta per accumulator unit).
    acc_ranges: per term, the worst-case (lo, hi) of ACC_t, int64 (C,) (see `ranges.acc_terms`).
    offset: β (C,) or scalar, in output quanta.
    rounding: round to nearest (half up) if True, else floor.
    max_shift: largest shift d to consider.
    acc_factor: k·ACC·acc_factor must fit int32 too (the pooling window K: PULP-NN's pools compute ACC·(k·K)).

  Raises:
    RequantError: if even d = 0 overflows int32, or a multiplier is not finite.
  """
  if len(multipliers) != len(acc_ranges):
    raise ValueError(f"layer {name!r}: {len(multipliers)} multipliers for {len(acc_ranges)} accumulator ranges")
  c = len(acc_ranges[0][0])
  ms = [np.broadcast_to(np.asarray(m, np.float64), (c,)) for m in multipliers]
  beta = np.broadcast_to(np.asarray(offset, np.float64), (c,)) + (0.5 if rounding else 0.0)
  if not all(np.all(np.isfinite(m)) for m in ms) or not np.all(np.isfinite(beta)):
    raise RequantError(f"layer {name!r}: requant multiplier or offset is not finite (multipliers {ms}, offset "
                       f"{beta})")
  for d in range(max_shift, -1, -1):
    scale = float(2 ** d)
    if max(float(np.abs(m).max(initial=0)) for m in ms) * scale > INT32_MAX or \
        float(np.abs(beta).max(initial=0)) * scale > INT32_MAX:
      continue
    ks = [_to_int(m * scale) for m in ms]
    lam = np.floor(beta * scale).astype(np.int64)  # floor((N + u) / 2^d) == floor((N + floor(u)) / 2^d)
    if any(np.abs(k).max(initial=0) > INT32_MAX for k in ks) or lam.min() < INT32_MIN or lam.max() > INT32_MAX:
      continue
    scaled = [(k * r[0] * acc_factor, k * r[1] * acc_factor) for k, r in zip(ks, acc_ranges)]
    if all(fits_int32((np.minimum(*v), np.maximum(*v))) for v in scaled) and \
        all(fits_int32(r) for _, r in partial_ranges(list(zip(ks, acc_ranges)), lam)):
      rel = max((float(np.max(np.abs(k / scale - m)[m != 0] / np.abs(m[m != 0]), initial=0.0))
                 for k, m in zip(ks, ms)), default=0.0)
      return Requant(tuple(ks), lam, d, rel)
  worst = max(float(np.max(np.abs(m) * np.maximum(np.abs(r[0]), np.abs(r[1])))) for m, r in zip(ms, acc_ranges))
  raise RequantError(
      f"layer {name!r}: requant overflows int32 for every shift d in [0, {max_shift}]: the real multiplier "
      f"times the worst-case accumulator reaches {worst:.4g} output quanta (max |M| = "
      f"{max(float(np.abs(m).max()) for m in ms):.4g}, offset up to {float(np.abs(beta).max()):.4g}); the output "
      f"scale is too small for this layer's input/weight scales and bit widths")


@dataclasses.dataclass(frozen=True)
class AddRequant:
  """The residual add's two-stage integer form (fields of the `add` node, see `ops`).

  Attributes:
    fields: {"in1_mul": .., "in1_add": .., "in1_shift": .., "in2_*": .., "out_*": ..} (ints).
    mid_scale: ε_m, the quantum of the clipped 8-bit intermediates R_i (ε_y·2^-t).
    rel_error: max relative error of the two input multipliers (the output stage is a power of two: exact).
  """

  fields: dict[str, int]
  mid_scale: float
  rel_error: float


ADD_T_TOL = 1e-5


def add_mid_scale(scales: Sequence[float], ranges: Sequence[tuple[int, int]], signed: Sequence[bool],
                  out_scale: float, *, max_shift: int = 30) -> float:
  """ε_m of the add's intermediates: the finest ε_y·2^-t (t >= 0) on which every input's real range fits its 8-bit
  clip grid ([0, 255] unsigned, [-128, 127] signed); where even ε_y is too fine for that (an output finer than an
  input), the finest such quantum itself (`need`), with a general output multiplier."""
  need = 0.0
  for s, (lo, hi), sg in zip(scales, ranges, signed):
    clo, chi = (-128, 127) if sg else (0, 255)
    need = max(need, s * hi / chi, s * lo / clo if lo < 0 else 0.0)
  if need <= 0:
    return out_scale * 2.0 ** -max_shift
  # The tolerance (the twin's, `jaxbp.quant.qlayers.ADD_T_TOL`) keeps float32 twin and this on the same t.
  t = int(np.floor(np.log2(out_scale / need) + ADD_T_TOL))
  return out_scale * 2.0 ** -min(t, max_shift) if t >= 0 else need


def solve_add(name: str, scales: Sequence[float], ranges: Sequence[tuple[int, int]], signed: Sequence[bool],
              out_scale: float, *, rounding: bool = True) -> AddRequant:
  """The add's fields for y = x_1 + x_2 (real), inputs of quanta `scales` and integer `ranges`, output quantum
  `out_scale`: each input onto ε_m (`add_mid_scale`, so no input clips), then ε_m -> ε_y by a power of two."""
  mid = add_mid_scale(scales, ranges, signed, out_scale)
  fields: dict[str, int] = {}
  rel = 0.0
  for i, (s, (lo, hi)) in enumerate(zip(scales, ranges), 1):
    rq = solve(f"{name} (input {i})", [s / mid], [(np.array([lo]), np.array([hi]))], rounding=rounding)
    k, lam, d = int(rq.k[0]), int(rq.lam[0]), rq.d
    if k % (1 << d) == 0 and 0 <= lam < (1 << d):  # an exact integer ratio: (X·k + lam) >> d == X·(k >> d)
      k, lam, d = k >> d, 0, 0
    fields.update({f"in{i}_mul": k, f"in{i}_add": lam, f"in{i}_shift": d})
    rel = max(rel, rq.rel_error)
  t = np.log2(out_scale / mid)
  if t >= 0 and t == round(t):  # a power of two: exact
    t = int(round(t))
    fields.update(out_mul=1, out_add=(1 << (t - 1)) if t and rounding else 0, out_shift=t)
  else:
    sums = tuple(int(sum(r[j] for r in (_clip8(lo, hi, s) for (lo, hi), s in zip(ranges, signed)))) for j in (0, 1))
    rq = solve(f"{name} (output)", [mid / out_scale], [(np.array([sums[0]]), np.array([sums[1]]))],
               rounding=rounding)
    fields.update(out_mul=int(rq.k[0]), out_add=int(rq.lam[0]), out_shift=rq.d)
    rel = max(rel, rq.rel_error)
  return AddRequant(fields, mid, rel)


def _clip8(lo: int, hi: int, signed: bool) -> tuple[int, int]:
  """The add's intermediate range of an input: its 8-bit clip grid (the requantized range lies within it)."""
  return (-128, 127) if signed else (0, 255)
