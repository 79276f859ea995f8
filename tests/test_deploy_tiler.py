"""Tiler: tiles fit L1 and cover every layer exactly; the DMA program matches the cost model; L2 plans."""

import collections
import dataclasses
import itertools
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from jaxbp.deploy import zoo
from jaxbp.deploy.layers import Layer, Network, conv_out, same_padding, with_uniform_bits
from jaxbp.deploy.memory import plan_memory
from jaxbp.deploy.platforms import GAP8, XPULPNN_V1, get_platform
from jaxbp.deploy.schedule import _loads, footprint, input_span, tile_classes
from jaxbp.deploy.tiler import axis_candidates, check_tiles, plan_network, tile_layer, tile_transfers, tiles

BITS = st.sampled_from((2, 4, 8))


@st.composite
def layers(draw):
  """A random conv / pointwise / depthwise / pool / add / element-wise / linear layer (1-D or 2-D)."""
  op = draw(st.sampled_from(("conv", "pointwise", "depthwise", "pool", "add", "requant", "linear")))
  one_d = draw(st.booleans())
  h = 1 if one_d else draw(st.integers(1, 40))
  w = draw(st.integers(1, 160 if one_d else 40))
  cin = draw(st.integers(1, 96))
  b_in, b_w, b_out = draw(BITS), draw(BITS), draw(BITS)
  common = {"bits_in": b_in, "bits_w": b_w, "bits_out": b_out}
  if op == "linear":
    return Layer("fc", "linear", ("input",), (1, 1, cin * 8), (1, 1, draw(st.integers(1, 300))), **common)
  if op in ("add", "requant"):
    if op == "add":
      return Layer("a", "add", ("input", "r"), (h, w, cin), (h, w, cin), in2_shape=(h, w, draw(st.integers(1, cin))),
                   bits_in2=draw(BITS), **common)
    return Layer("r", "elementwise", ("input",), (h, w, cin), (h, w, cin), mode="requant", **common)
  k = 1 if op == "pointwise" else draw(st.sampled_from((1, 3, 5)))
  kh = 1 if one_d else k
  s = 1 if op == "pointwise" else draw(st.sampled_from((1, 2)))
  sh = 1 if one_d else s
  pt, pb = same_padding(h, kh, sh)
  pl, pr = same_padding(w, k, s)
  out_hw = (conv_out(h, kh, sh, pt, pb), conv_out(w, k, s, pl, pr))
  if op in ("depthwise", "pool"):
    cout, groups = cin, cin
  else:
    groups = draw(st.sampled_from((1, 2))) if op == "conv" and cin % 2 == 0 else 1
    cout = draw(st.integers(1, 64)) * groups
  return Layer("l", op, ("input",), (h, w, cin), (*out_hw, cout), kernel=(kh, k), stride=(sh, s),
               padding=(pt, pb, pl, pr), groups=1 if op == "pool" else groups, mode="max" if op == "pool" else "",
               **common)


def coverage(layer, tiling):
  """Counts how often every output element is produced; checks each input tile covers its receptive field."""
  count = np.zeros(layer.out_shape, np.int32)
  for t in tiles(layer, tiling):
    (y, x, c), (h, w, n) = t.out_origin, t.out_size
    count[y:y + h, x:x + w, c:c + n] += 1
    for axis in (0, 1):
      begin, end = input_span(layer, axis, t.out_origin[axis], t.out_size[axis])
      assert (t.in_origin[axis], t.in_origin[axis] + t.in_size[axis]) == (begin, end)
      assert 0 <= begin < end <= layer.in_shape[axis]
    assert t.in_origin[2] + t.in_size[2] <= layer.in_shape[2]
  return count


@settings(max_examples=60, deadline=None)
@given(layers(), st.sampled_from(("gap8", "xpulpnn-v1", "xpulpnn-v2")))
def test_tiles_fit_l1_and_cover_the_output_exactly_once(layer, platform):
  p = get_platform(platform)
  tiling = tile_layer(layer, p)
  if not tiling.fits:  # only when even the smallest single-buffered tile is too big (e.g. a 5x5x96 im2col).
    smallest = footprint(layer, tiling.tile, dataclasses.replace(p, double_buffer=False))
    assert smallest.total > p.l1_usable_bytes
  else:
    assert tiling.l1_bytes <= p.l1_usable_bytes
    assert footprint(layer, tiling.tile, p if tiling.double_buffered else dataclasses.replace(p, double_buffer=False)
                     ).total <= tiling.l1_bytes
  ends = [b.offset + b.bytes for b in tiling.buffers]
  assert max(ends) <= tiling.l1_bytes
  spans = sorted((b.offset, b.offset + b.bytes) for b in tiling.buffers)
  assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))  # L1 buffers never overlap.
  count = coverage(layer, tiling)
  assert count.min() == 1 and count.max() == 1
  assert tiling.n_tiles == len(list(tiles(layer, tiling)))
  check_tiles(layer, tiling)


@settings(max_examples=30, deadline=None)
@given(layers(), st.sampled_from(("channels_outer", "spatial_outer")))
def test_dma_program_loads_what_the_cost_model_counts(layer, order):
  tiling = tile_layer(layer, GAP8, loop_order=order)
  in_loads, w_loads = _loads(layer, tiling.grid, tiling.loop_order)
  ts = list(tiles(layer, tiling))
  assert sum(t.load_input for t in ts) == in_loads
  assert sum(t.load_weights for t in ts) == w_loads
  for t in ts[:8]:
    for tr in tile_transfers(layer, tiling, t, GAP8, {"input": 0, "output": 0, "weights": 0}):
      assert tr.bytes > 0 and tr.rows >= 1
      l1 = tr.dst_offset if tr.dst == "L1" else tr.src_offset
      assert 0 <= l1 < tiling.l1_bytes


@settings(max_examples=40, deadline=None)
@given(layers(), st.sampled_from(("channels_outer", "spatial_outer")), st.data())
def test_cost_model_counts_the_setups_of_the_dma_program(layer, order, data):
  """The cycle model's DMA set-ups (one per plane) equal those the tile loop issues, for any forced tile
  whose tile classes describe the tiles exactly (the classes model the input halo spans by the first,
  second and last tile per axis, and a zero-padded residual's channels proportionally)."""
  assume(layer.in2_shape is None or layer.in2_shape[2] == layer.out_shape[2])
  tile = tuple(data.draw(st.integers(1, n)) for n in layer.out_shape)
  tiling = tile_layer(layer, GAP8, tile=tile, loop_order=order)
  ts = list(tiles(layer, tiling))
  actual = collections.Counter((t.out_size, t.in_size) for t in ts)
  model = collections.Counter()
  for c in tile_classes(layer, tile):
    model[c.out, c.inp] += c.count
  assume(actual == model)
  issued = sum(tr.setups for t in ts for tr in tile_transfers(layer, tiling, t, GAP8))
  assert tiling.timing.dma_setups == issued
  assert issued >= len(ts)  # at least every output store


def test_sweet_spot_candidates_and_granules():
  vals = axis_candidates(112, 8)
  assert vals[0] == 112 and 56 in vals and 16 in vals and 7 in vals
  assert all(v % 2 == 0 or v == 11 for v in axis_candidates(11, 1, 2))
  # A 3x3 conv whose input does not fit L1 in one piece: rows tile in multiples of 8 (one per core).
  layer = Layer("c", "conv", ("input",), (66, 66, 32), (64, 64, 32), kernel=(3, 3))
  t = tile_layer(layer, GAP8)
  assert t.n_tiles > 1 and t.tile[0] % 8 == 0 and t.tile[2] % 4 == 0


def test_forced_tile_and_bad_tile():
  layer = Layer("c", "pointwise", ("input",), (16, 16, 64), (16, 16, 64))
  t = tile_layer(layer, GAP8, tile=(8, 16, 32))
  assert t.grid == (2, 1, 2) and t.double_buffered
  with pytest.raises(ValueError, match="tile"):
    tile_layer(layer, GAP8, tile=(0, 16, 32))


def test_layer_too_big_for_l1_is_reported_with_numbers():
  layer = Layer("huge", "conv", ("input",), (1, 64, 4096), (1, 60, 8), kernel=(1, 5))
  net = Network("n", layer.in_shape, (layer,))
  plan = plan_network(net, GAP8)
  assert not plan.fits
  assert any("layer 'huge'" in r and "36700 B usable" in r for r in plan.reasons)


def _live_buffers_disjoint(mem, n_steps):
  for s in range(n_steps):
    live = sorted((b.offset, b.offset + b.bytes) for b in mem.buffers if b.first == -1 or b.first <= s <= b.last)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(live)), f"overlap at step {s}"
    assert (max(e for _, e in live) if live else 0) <= mem.peak_bytes


def test_l2_plan_resnet_seed_fits_and_keeps_residuals_alive():
  net = with_uniform_bits(zoo.bp_seed("resnet1d", "ppgbp"), 8)
  mem = plan_memory(net, GAP8)
  assert mem.fits and not mem.uses_l3 and mem.peak_bytes <= GAP8.l2_budget_bytes
  _live_buffers_disjoint(mem, len(net.layers))
  names = [l.name for l in net.layers]
  # block1's output is block2's residual (stride 1, channels zero-padded): alive until block2/add.
  assert mem.buffer("block1/add").last == names.index("block2/add")
  assert mem.buffer("block1/add").first == names.index("block1/add")


def test_l2_only_reports_does_not_fit_with_numbers_and_l3_rescues():
  net = with_uniform_bits(zoo.bp_seed("resnet1d", "bcg"), 8)
  l2 = plan_memory(net, get_platform("gap8", l3_enabled=False))
  assert not l2.fits and "L2 only" in l2.reason and "> L2 budget 393216 B" in l2.reason
  l3 = plan_memory(net, GAP8)
  assert l3.fits and l3.weights_l3 and l3.peak_bytes <= GAP8.l2_budget_bytes
  _live_buffers_disjoint(l3, len(net.layers))


def test_big_activations_move_to_l3():
  net = with_uniform_bits(zoo.mobilenet_v1(1.0, 224), 8)  # conv0 output alone is 401 kB.
  mem = plan_memory(net, GAP8)
  assert mem.fits and mem.tensors_l3 and mem.peak_bytes <= GAP8.l2_budget_bytes
  assert math.isclose(sum(1 for _ in mem.weights_l3), len(mem.weights_l3))
  _live_buffers_disjoint(mem, len(net.layers))


def test_plan_offsets_point_into_l2_or_staging():
  net = with_uniform_bits(zoo.mobilenet_v1(0.25, 128), 4)
  plan = plan_network(net, XPULPNN_V1)
  assert plan.fits
  for lp in plan.layers:
    assert lp.l2_offsets["output"] is not None and lp.l2_offsets["input"] is not None
    assert lp.l1.fits
