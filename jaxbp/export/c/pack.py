"""Packing integer values into bytes as the kernels store them (2/4-bit: 4/2 per byte, LSB first)."""

from __future__ import annotations

import numpy as np


def packed_size(n: int, bits: int) -> int:
  """Bytes for n elements of `bits` (2, 4, 8) bits."""
  return -(-n * bits // 8)


def pack(values: np.ndarray, bits: int) -> np.ndarray:
  """uint8 bytes of the flattened `values` (two's complement for negatives); element i of a byte sits at
  bits [(i % per)·bits, (i % per + 1)·bits), per = 8 / bits."""
  if bits not in (2, 4, 8):
    raise ValueError(f"can only pack 2/4/8-bit values, got bits={bits}")
  v = np.asarray(values, np.int64).ravel() & ((1 << bits) - 1)
  per = 8 // bits
  v = np.concatenate([v, np.zeros((-len(v)) % per, np.int64)]).reshape(-1, per)
  return (v << (np.arange(per) * bits)).sum(axis=1).astype(np.uint8)


def unpack(data: np.ndarray, bits: int, n: int, signed: bool) -> np.ndarray:
  """Inverse of `pack`: the first n values (int64)."""
  per = 8 // bits
  b = np.asarray(data, np.uint8).astype(np.int64)
  v = ((b[:, None] >> (np.arange(per) * bits)) & ((1 << bits) - 1)).ravel()[:n]
  if signed:
    v = np.where(v >= 1 << (bits - 1), v - (1 << bits), v)
  return v
