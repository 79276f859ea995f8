"""DMA transfers and their cycle costs: cluster DMA (L2<->L1) and micro-DMA (L3<->L2).

Cluster DMA (doc, published GAP9 cost model): fixed set-up per transfer + bytes / bandwidth + 1 cycle
per 2-D row; HWC->CHW transposition for depthwise inputs at ~1 B/cycle + 12 cycles per channel.
The cluster DMA moves 1-D and 2-D blocks only: an HWC tile that cuts channels, columns and more than one
row is a 3-D slice, issued as one 2-D transfer ("plane") per tile row, each paying the set-up.
L3 (HyperRAM): set-up per transfer + bytes / `Platform.l3_bytes_per_cycle`.
"""

from __future__ import annotations

import dataclasses
import math

from jaxbp.deploy.layers import Shape
from jaxbp.deploy.platforms import Platform


@dataclasses.dataclass(frozen=True)
class Transfer:
  """One DMA transfer: `planes` 2-D transfers of `rows` rows of `row_bytes` bytes (the L1 side contiguous).

  Attributes:
    tensor: "input" | "input2" | "weights" | "requant" | "lut" | "output".
    src, dst: "L3" | "L2" | "L1".
    bytes: bytes moved (= planes * rows * row_bytes).
    rows: rows per plane (1 = contiguous 1-D).
    row_bytes: bytes per row (= bytes for 1-D).
    stride: L2-side distance between row starts in bytes (meaningless when rows == 1).
    channels: channels transposed HWC->CHW (depthwise inputs; 0 = no transposition).
    src_offset, dst_offset: byte offsets in the source / destination memory (-1 = not placed yet).
    planes: 2-D transfers issued one after another (>1 for a 3-D slice), each with its own set-up.
    plane_stride: L2-side distance between plane starts in bytes (meaningless when planes == 1).
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
  planes: int = 1
  plane_stride: int = 0

  @classmethod
  def of_slice(cls, tensor: str, src: str, dst: str, g: SliceGeometry, channels: int = 0, src_offset: int = -1,
            dst_offset: int = -1) -> Transfer:
    """The transfer of an HWC tile of geometry `g` (`slice_geometry`)."""
    return cls(tensor, src, dst, g.bytes, g.rows, g.row_bytes, g.stride, channels, src_offset, dst_offset, g.planes,
               g.plane_stride)

  @property
  def setups(self) -> int:
    """DMA set-ups this transfer pays (one per plane)."""
    return self.planes


def l1_cycles(t: Transfer, p: Platform) -> float:
  """Cycles of one L2<->L1 cluster-DMA transfer: per plane a set-up plus 1 cycle per 2-D row (or, when
  transposing, 12 cycles per channel), plus the bytes at the DMA (or transposition) bandwidth."""
  if t.channels:
    per_plane = p.dma_setup_cycles + t.channels * p.transpose_channel_cycles
    return t.planes * per_plane + t.bytes / p.transpose_bytes_per_cycle
  rows = t.rows * p.dma_row_cycles if t.rows > 1 else 0.0
  return t.planes * (p.dma_setup_cycles + rows) + t.bytes / p.dma_bytes_per_cycle


def l3_cycles(n_bytes: float, n_transfers: int, p: Platform) -> float:
  """Cycles of `n_transfers` L3<->L2 transfers moving `n_bytes` in total."""
  return n_transfers * p.l3_setup_cycles + n_bytes / p.l3_bytes_per_cycle


def cycles(t: Transfer, p: Platform) -> float:
  """Cycles of any transfer (L3 if either end is L3)."""
  if "L3" in (t.src, t.dst):
    return l3_cycles(t.bytes, 1, p)
  return l1_cycles(t, p)


@dataclasses.dataclass(frozen=True)
class SliceGeometry:
  """How the DMA moves an HWC tile between L2 and a contiguous L1 buffer: `planes` 2-D transfers of
  `rows` rows of `row_bytes` bytes; `stride` / `plane_stride` are the L2-side distances (bytes) between row /
  plane starts (for a single row / plane the extent of the tile's span, never used to address)."""

  planes: int
  rows: int
  row_bytes: int
  stride: int
  plane_stride: int

  @property
  def bytes(self) -> int:
    return self.planes * self.rows * self.row_bytes

  def offsets(self) -> list[int]:
    """L2 byte offsets (relative to the tile's first byte) the transfer touches, in L1 order."""
    return [q * self.plane_stride + r * self.stride + b for q in range(self.planes) for r in range(self.rows)
            for b in range(self.row_bytes)]

  def astuple(self) -> tuple[int, int, int, int, int]:
    return self.planes, self.rows, self.row_bytes, self.stride, self.plane_stride


def slice_geometry(full: Shape, tile: Shape, bits: int) -> SliceGeometry:
  """Geometry of an HWC tile `tile` = (h, w, c) cut from an L2 tensor of shape `full` (pixels padded to
  whole bytes, `ceil(C * bits / 8)` B each).

  All channels of whole rows: one contiguous block. All channels of part of a row: one 2-D row per tile
  row. Part of the channels: one 2-D row per pixel -- a single 2-D transfer when the pixels are evenly
  spaced (whole rows, a single row, or a single column), else a 3-D slice: one plane per tile row.
  """
  (_, W, C), (h, w, c) = full, tile
  if min(h, w, c) < 0 or c > C or w > W:  # an all-padding input tile is empty (0 bytes)
    raise ValueError(f"tile {tile} does not fit in the HWC tensor {full}")
  pix, full_pix = math.ceil(c * bits / 8), math.ceil(C * bits / 8)
  span = h * W * full_pix  # L2 bytes from the tile's first row start to past its last row.
  if c == C and w == W:
    n = h * w * pix
    return SliceGeometry(1, 1, n, n, n)
  if c == C:
    return SliceGeometry(1, h, w * pix, W * full_pix, span)
  if w == W or h == 1:
    return SliceGeometry(1, h * w, pix, full_pix, span)
  if w == 1:
    return SliceGeometry(1, h, pix, W * full_pix, span)
  return SliceGeometry(h, w, pix, full_pix, W * full_pix)
