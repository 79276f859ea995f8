"""DMA transfers and their cycle costs: cluster DMA (L2<->L1) and micro-DMA (L3<->L2).

Cluster DMA (doc, published GAP9 cost model): fixed set-up per transfer + bytes / bandwidth + 1 cycle
per 2-D row; HWC->CHW transposition for depthwise inputs at ~1 B/cycle + 12 cycles per channel.
L3 (HyperRAM): set-up per transfer + bytes / `Platform.l3_bytes_per_cycle`.
"""

from __future__ import annotations

import dataclasses
import math

from jaxbp.deploy.layers import Shape
from jaxbp.deploy.platforms import Platform


@dataclasses.dataclass(frozen=True)
class Transfer:
  """One DMA transfer.

  Attributes:
    tensor: "input" | "input2" | "weights" | "requant" | "lut" | "output".
    src, dst: "L3" | "L2" | "L1".
    bytes: bytes moved.
    rows: rows of a 2-D transfer (1 = contiguous 1-D).
    row_bytes: bytes per row (= bytes for 1-D).
    stride: source (L2 side) distance between rows in bytes (0 for 1-D).
    channels: channels transposed HWC->CHW (depthwise inputs; 0 = no transposition).
    src_offset, dst_offset: byte offsets in the source / destination memory (-1 = not placed yet).
  """

  tensor: str
  src: str
  dst: str
  bytes: int
  rows: int = 1
  row_bytes: int = 0
  stride: int = 0
  channels: int = 0
  src_offset: int = -1
  dst_offset: int = -1


def l1_cycles(t: Transfer, p: Platform) -> float:
  """Cycles of one L2<->L1 cluster-DMA transfer."""
  if t.channels:
    return p.dma_setup_cycles + t.bytes / p.transpose_bytes_per_cycle + t.channels * p.transpose_channel_cycles
  rows = t.rows * p.dma_row_cycles if t.rows > 1 else 0.0
  return p.dma_setup_cycles + t.bytes / p.dma_bytes_per_cycle + rows


def l3_cycles(n_bytes: float, n_transfers: int, p: Platform) -> float:
  """Cycles of `n_transfers` L3<->L2 transfers moving `n_bytes` in total."""
  return n_transfers * p.l3_setup_cycles + n_bytes / p.l3_bytes_per_cycle


def cycles(t: Transfer, p: Platform) -> float:
  """Cycles of any transfer (L3 if either end is L3)."""
  if "L3" in (t.src, t.dst):
    return l3_cycles(t.bytes, 1, p)
  return l1_cycles(t, p)


def slice_geometry(full: Shape, tile: Shape, bits: int) -> tuple[int, int, int, int]:
  """(bytes, rows, row_bytes, stride) of an HWC tile `tile` cut from a tensor of shape `full`.

  Whole rows and all channels -> one contiguous block; all channels but part of a row -> one row per
  tile row; part of the channels -> one row per pixel.
  """
  (_, W, C), (h, w, c) = full, tile
  pix = math.ceil(c * bits / 8)
  full_pix = math.ceil(C * bits / 8)
  if c == C and w == W:
    n = h * w * pix
    return n, 1, n, 0
  if c == C:
    return h * w * pix, h, w * pix, W * full_pix
  return h * w * pix, h * w, pix, full_pix
