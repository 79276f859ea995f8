"""Integer InstanceNorm + PReLU (UNet1d's `norm_prelu`): per-example statistics in int64 arithmetic.

InstanceNorm's mean and variance depend on the example, so they cannot be folded into a requant. Per
example and channel c of X (L, C), integers on the quantum ε_x, every backend computes

  S1 = Σ_t X_t,   S2 = Σ_t X_t²
  V  = L·S2 − S1² + eps                   = L²·(var + eps_real)/ε_x²   (eps = round(L²·eps_real/ε_x²) ≥ 1)
  σ  = isqrt(V · 4^s)                     floor square root ≈ 2^s·√V
  m  = sgn(g_c)·⌊(|g_c|·2^a + ⌊σ/2⌋) / σ⌋  the example's multiplier (a rounded division)
  U_t = m·(L·X_t − S1) + b_c              ≈ 2^d·(γ_c·x̂_t + β_c)/ε_y
  P_t = U_t if U_t ≥ 0 else (α_c·U_t) >> alpha_shift          (PReLU; `>>` is a floor shift)
  Y_t = clip((P_t + rnd) >> d, lo, hi)    rnd = 2^(d−1) rounds half up, 0 floors

with the arrays g = round(γ/ε_y·2^q) ("scale", int32; a = s + d − q), b = round(β/ε_y·2^d) ("offset", int64),
α = round(α_real·2^alpha_shift) ("alpha", int32). The attrs are eps, s, a, alpha_shift, d, rnd. Every
intermediate is bounded by `LIMIT` = 2^62 over all inputs in range (`bounds`, checked on build and load), so
int64 arithmetic (C `int64_t`, onnxruntime int64 tensors) is exact. An integer divide and square root per
channel and example: no PULP-NN kernel does this; the exported C runs it as plain C.
"""

from __future__ import annotations

import math

import numpy as np

from jaxbp.integerize.graph import GraphError, Node, TensorSpec

LIMIT = 1 << 62
ALPHA_SHIFT = 16
MAX_D = 40


def isqrt(v: np.ndarray) -> np.ndarray:
  """Exact floor square root of int64 values in [0, 2^62] (float estimate, then integer correction)."""
  v = np.asarray(v, np.int64)
  if v.size and v.min() < 0:
    raise ValueError(f"isqrt of a negative value {v.min()}")
  r = np.floor(np.sqrt(v.astype(np.float64))).astype(np.int64)
  r = r - (r * r > v)
  return r + ((r + 1) * (r + 1) <= v)


def apply(node: Node, x: np.ndarray, out: TensorSpec) -> np.ndarray:
  """The node on int64 x (N, L, C) -> int64 (N, L, C) on `out`'s range (module docstring)."""
  at = node.attrs
  length = x.shape[1]
  s1 = x.sum(axis=1, keepdims=True)
  s2 = (x * x).sum(axis=1, keepdims=True)
  sigma = isqrt((length * s2 - s1 * s1 + at["eps"]) << (2 * at["s"]))
  g = node.arrays["scale"].astype(np.int64)
  m = np.sign(g) * (((np.abs(g) << at["a"]) + (sigma >> 1)) // sigma)
  u = m * (length * x - s1) + node.arrays["offset"].astype(np.int64)
  p = np.where(u >= 0, u, (node.arrays["alpha"].astype(np.int64) * u) >> at["alpha_shift"])
  return np.clip((p + at["rnd"]) >> at["d"], *out.range)


def bounds(attrs, arrays, x: TensorSpec) -> dict[str, float]:
  """Worst-case magnitudes of the intermediates over all inputs in x's range (floats, conservative)."""
  length = x.shape[0]
  lo, hi = x.range
  mx = max(abs(lo), abs(hi))
  eps, s, a = attrs["eps"], attrs["s"], attrs["a"]
  g = float(np.abs(arrays["scale"]).max(initial=0))
  z = float(length * (hi - lo))  # |L·X_t − S1| ≤ (L−1)·(hi − lo)
  sigma_min = max(1, math.isqrt(eps << (2 * s)))
  # |Z_t| ≤ √(L−1)·√(V − eps) (a deviation from the mean) and σ > 2^s·√V − 1, so |Z|/σ is bounded by
  # √(L−1)/(2^s − 1/√eps) where that is positive; always by |Z|/σ_min.
  den = 2.0 ** s - 1.0 / math.sqrt(eps)
  z_over_sigma = min(z / sigma_min, math.sqrt(max(length - 1, 0)) / den * 1.001 if den > 0 else math.inf)
  u = g * 2.0 ** a * z_over_sigma + z + float(np.abs(arrays["offset"]).max(initial=0))
  au = float(np.abs(arrays["alpha"]).max(initial=0)) * u
  return {"V·4^s": float(length * length * mx * mx + eps) * 4.0 ** s, "|g|·2^a": g * 2.0 ** a + sigma_min,
          "L·S2": float(length * length * mx * mx), "U": u, "α·U": au,
          "P + rnd": max(u, au / 2.0 ** attrs["alpha_shift"] + 1) + attrs["rnd"]}


def validate(node: Node, x: TensorSpec, out: TensorSpec) -> None:
  """Field, shape and int64-range checks of a norm_prelu node; GraphError names the node and field."""
  where = f"node {node.name!r} (norm_prelu)"
  at = node.attrs
  for field, hi in (("eps", LIMIT), ("s", 30), ("a", 62), ("alpha_shift", 30), ("d", 62), ("rnd", LIMIT)):
    v = at[field]
    if not isinstance(v, int) or not (1 if field == "eps" else 0) <= v <= hi:
      raise GraphError(f"{where}: field {field!r} must be an int in [{1 if field == 'eps' else 0}, {hi}], got {v!r}")
  for field, lim in (("scale", 1 << 31), ("offset", LIMIT), ("alpha", 1 << 31)):
    arr = node.arrays[field]
    if arr.shape != (x.channels,):
      raise GraphError(f"{where}: array {field!r} must have shape ({x.channels},), got {arr.shape}")
    if arr.size and (arr.min() <= -lim or arr.max() >= lim):
      raise GraphError(f"{where}: array {field!r} has values in [{arr.min()}, {arr.max()}], outside "
                       f"(-2^{lim.bit_length() - 1}, 2^{lim.bit_length() - 1})")
  for what, v in bounds(at, node.arrays, x).items():
    if not v < LIMIT:
      raise GraphError(f"{where}: {what} can reach {v:.4g}, outside int64 arithmetic's safe range 2^62; "
                       f"lower the shift d or the input bits")


def solve(name: str, x: TensorSpec, gamma: np.ndarray, beta: np.ndarray, alpha: np.ndarray, eps: float,
          out_scale: float, *, rounding: bool = True) -> tuple[dict[str, int], dict[str, np.ndarray]]:
  """(attrs, arrays) of the most precise int64-safe integer InstanceNorm(γ, β, eps) + PReLU(α) onto `out_scale`.

  Args:
    name: layer name, for errors.
    x: the input tensor (L, C) on quantum ε_x.
    gamma, beta: InstanceNorm affine (C,); alpha: PReLU slopes (C,); eps: the norm's epsilon (real units²).
    out_scale: the output quantum ε_y.
    rounding: round half up (True) or floor.
  """
  c = x.channels
  gamma, beta, alpha = (np.broadcast_to(np.asarray(v, np.float64), (c,)) for v in (gamma, beta, alpha))
  for field, v in (("norm_scale", gamma), ("norm_bias", beta), ("prelu", alpha)):
    if not np.all(np.isfinite(v)):
      raise GraphError(f"layer {name!r}: {field} is not finite")
  if np.abs(alpha).max(initial=0) >= 2 ** (31 - ALPHA_SHIFT):
    raise GraphError(f"layer {name!r}: PReLU slope {np.abs(alpha).max()} too large (|α| < {2 ** (31 - ALPHA_SHIFT)})")
  length, scale_x = x.shape[0], float(x.scale)
  eps_int = max(1, round(length * length * eps / scale_x ** 2))
  lo, hi = x.range
  vmax = length * length * max(abs(lo), abs(hi)) ** 2 + eps_int
  s = max([s for s in range(31) if vmax * 4 ** s <= 1 << 60], default=None)
  if s is None:
    raise GraphError(f"layer {name!r}: the variance of {length} positions of {x.bits}-bit inputs overflows int64")
  ratio = gamma / out_scale
  top = float(np.abs(ratio).max(initial=0))
  q_max = 30 - math.ceil(math.log2(top)) if top > 0 else 62
  arrays_alpha = np.floor(alpha * 2 ** ALPHA_SHIFT + 0.5).astype(np.int32)
  for d in range(MAX_D, 0 if rounding else -1, -1):  # rounding needs d >= 1 (rnd = 2^(d-1))
    q = min(s + d, q_max)
    a = s + d - q
    if a > 62:
      continue
    attrs = {"eps": eps_int, "s": s, "a": a, "alpha_shift": ALPHA_SHIFT, "d": d,
             "rnd": (1 << (d - 1)) if rounding else 0}
    arrays = {"scale": np.floor(ratio * 2.0 ** q + 0.5).astype(np.int64),
              "offset": np.floor(beta / out_scale * 2.0 ** d + 0.5).astype(np.int64), "alpha": arrays_alpha}
    if np.abs(arrays["scale"]).max(initial=0) >= 1 << 31:
      continue
    if all(v < LIMIT for v in bounds(attrs, arrays, x).values()):
      arrays["scale"] = arrays["scale"].astype(np.int32)
      return attrs, arrays
  raise GraphError(f"layer {name!r}: no shift d keeps InstanceNorm+PReLU within int64 (γ/ε_y up to {top:.4g}, "
                   f"{length} positions, {x.bits}-bit input)")
