"""Float <-> integer conversions of tensors, weights and biases (the integer model's grids)."""

from __future__ import annotations

import numpy as np

from jaxbp.integerize.graph import GraphError, TensorSpec, int_range
from jaxbp.integerize.ops import INT32_MAX, INT32_MIN


def quantize(x: np.ndarray, spec: TensorSpec) -> np.ndarray:
  """Integers clip(round(x / scale)) of real values `x` (..., C) on the grid of `spec` (round half to even)."""
  q = np.round(np.asarray(x, np.float64) / np.asarray(spec.scale, np.float64))
  return np.clip(q, *spec.range).astype(np.int64)


def dequantize(x: np.ndarray, spec: TensorSpec) -> np.ndarray:
  """Real values of the integers `x` of tensor `spec`."""
  return spec.dequantize(x)


def weight_scale(w: np.ndarray, bits: int) -> np.ndarray:
  """Symmetric per-output-channel (axis 0) min-max scale: max|w_c| / (2^(b-1) - 1); 1 for all-zero channels."""
  top = np.abs(np.asarray(w, np.float64)).reshape(len(w), -1).max(axis=1)
  return np.where(top > 0, top / ((1 << (bits - 1)) - 1), 1.0)


def quantize_weight(w: np.ndarray, bits: int, scale: np.ndarray | float | None = None, *, name: str = "weight"
                    ) -> tuple[np.ndarray, np.ndarray]:
  """(W int8, scale (Cout,)): W = clip(round(w / scale_c)) on the signed `bits` grid, axis 0 = output channel."""
  if bits not in (2, 4, 8):
    raise GraphError(f"{name}: weight bits must be 2, 4 or 8, got {bits}")
  w = np.asarray(w, np.float64)
  scale = weight_scale(w, bits) if scale is None else np.broadcast_to(np.asarray(scale, np.float64), (len(w),))
  if not np.all(np.isfinite(scale) & (scale > 0)):
    raise GraphError(f"{name}: weight scales must be finite and > 0, got {scale}")
  q = np.round(w / scale.reshape((-1,) + (1,) * (w.ndim - 1)))
  return np.clip(q, *int_range(bits, True)).astype(np.int8), np.array(scale)


def quantize_bias(b: np.ndarray, scale: np.ndarray, *, name: str = "bias") -> np.ndarray:
  """int32 B = round(b / scale) with scale = ε_x·ε_w per channel; error if it leaves int32."""
  q = np.round(np.asarray(b, np.float64) / np.asarray(scale, np.float64))
  if q.size and (q.min() < INT32_MIN or q.max() > INT32_MAX):
    raise GraphError(f"{name}: bias / (input scale · weight scale) reaches {np.abs(q).max():.4g}, outside int32")
  return q.astype(np.int32)
