"""DMA slice geometry (2-D / 3-D HWC tile slices) and what the cycle model and simulator charge for it."""

import dataclasses
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxbp.deploy import dma, zoo
from jaxbp.deploy.layers import with_uniform_bits
from jaxbp.deploy.platforms import GAP8
from jaxbp.deploy.simulator import report_from_plan
from jaxbp.deploy.tiler import _hwc_offset, plan_network, tile_transfers, tiles


@st.composite
def slices(draw):
  """(full, origin, size, bits): an HWC tile inside a tensor, channel cuts on byte boundaries."""
  bits = draw(st.sampled_from((2, 4, 8)))
  H, W, C = draw(st.integers(1, 6)), draw(st.integers(1, 7)), draw(st.integers(1, 24))
  h, w = draw(st.integers(1, H)), draw(st.integers(1, W))
  y, x = draw(st.integers(0, H - h)), draw(st.integers(0, W - w))
  g = 8 // bits  # channels per byte: a partial channel tile starts and ends on a byte.
  if C >= 2 * g and draw(st.booleans()):
    c = g * draw(st.integers(1, C // g - 1))
    c0 = g * draw(st.integers(0, (C - c) // g))
  else:
    c, c0 = C, 0
  return (H, W, C), (y, x, c0), (h, w, c), bits


def tile_bytes(full, origin, size, bits) -> list[int]:
  """Byte offsets of the HWC tile in the L2 tensor, in the tile's own HWC order (the L1 order)."""
  (_, W, C), (y0, x0, c0), (h, w, c) = full, origin, size
  full_pix, pix = -(-C * bits // 8), -(-c * bits // 8)
  return [((y0 + y) * W + x0 + x) * full_pix + c0 * bits // 8 + b for y in range(h) for x in range(w)
          for b in range(pix)]


@settings(max_examples=200, deadline=None)
@given(slices())
def test_geometry_addresses_exactly_the_tile_bytes(s):
  full, origin, size, bits = s
  g = dma.slice_geometry(full, size, bits)
  start = _hwc_offset(full, origin, bits)
  want = tile_bytes(full, origin, size, bits)
  assert [start + o for o in g.offsets()] == want  # same bytes, same (L1) order, nothing else touched.
  assert g.bytes == len(want)
  (_, W, C), (h, w, c) = full, size
  three_d = c < C and 1 < w < W and h > 1  # only then are a tile row's pixels not evenly spaced over rows.
  assert g.planes == (h if three_d else 1)


def test_geometry_cases():
  full, bits = (4, 6, 16), 8  # 16 B per pixel, 96 B per row.
  assert dma.slice_geometry(full, (2, 6, 16), bits).astuple() == (1, 1, 192, 192, 192)  # contiguous block
  assert dma.slice_geometry(full, (2, 3, 16), bits).astuple()[:4] == (1, 2, 48, 96)  # all channels: row per tile row
  assert dma.slice_geometry(full, (2, 6, 4), bits).astuple()[:4] == (1, 12, 4, 16)  # whole rows: row per pixel
  assert dma.slice_geometry(full, (3, 1, 4), bits).astuple()[:4] == (1, 3, 4, 96)  # one column: row per tile row
  assert dma.slice_geometry(full, (3, 2, 4), bits).astuple() == (3, 2, 4, 16, 96)  # 3-D: plane per tile row
  with pytest.raises(ValueError, match="does not fit"):
    dma.slice_geometry(full, (2, 7, 4), bits)


def test_cycles_charge_one_setup_per_plane():
  p = GAP8
  g = dma.slice_geometry((8, 10, 32), (4, 5, 8), 8)
  assert g.planes == 4
  t3 = dma.Transfer.of_slice("input", "L2", "L1", g)
  # The old (wrong) single 2-D transfer of h*w pixel rows: same bytes and rows, one set-up.
  flat = dataclasses.replace(t3, planes=1, rows=g.planes * g.rows)
  assert dma.l1_cycles(t3, p) == pytest.approx(dma.l1_cycles(flat, p) + 3 * p.dma_setup_cycles)
  assert t3.setups == 4 and flat.setups == 1
  costs = [dma.l1_cycles(dataclasses.replace(t3, planes=k, bytes=k * g.rows * g.row_bytes), p) for k in range(1, 6)]
  assert all(b - a >= p.dma_setup_cycles for a, b in itertools.pairwise(costs))
  # Transposing (depthwise input) 3-D slices pay the set-up and the per-channel cost per plane.
  tt = dataclasses.replace(t3, channels=8)
  one = dataclasses.replace(tt, planes=1, rows=g.planes * g.rows)
  assert dma.l1_cycles(tt, p) == pytest.approx(dma.l1_cycles(one, p) + 3 * (p.dma_setup_cycles
                                                                            + 8 * p.transpose_channel_cycles))


def test_simulator_counts_a_setup_per_tile_row_of_3d_slices():
  """MobileNet 0.75/224 at 8 bits: layers whose tiles cut rows, columns and channels; the reported
  set-ups equal those of the DMA program, whose output stores are one per (tile, row) pair."""
  plan = plan_network(with_uniform_bits(zoo.mobilenet_v1(0.75, 224), 8), GAP8)
  report = {l.name: l for l in report_from_plan(plan).layers}
  checked = 0
  for lp in plan.layers:
    layer, tiling = lp.layer, lp.l1
    h, w, c = tiling.tile
    _, wo, co = layer.out_shape
    if not (1 < h and w < wo and c < co):
      continue
    ts = list(tiles(layer, tiling))
    xs = [tile_transfers(layer, tiling, t, GAP8) for t in ts]
    out_setups = sum(x.setups for tx in xs for x in tx if x.tensor == "output")
    pairs = sum(t.out_size[0] if 1 < t.out_size[1] else 1 for t in ts)  # (tile, row) pairs (a 1-wide tile is 2-D)
    assert out_setups == pairs
    assert report[layer.name].dma_setups == sum(x.setups for tx in xs for x in tx)
    assert report[layer.name].dma_setups > len(ts)  # more than one set-up per tile
    checked += 1
  assert checked >= 2
