"""Free Bits heuristic: never slower, never fewer bits, picks the fastest dominating configuration."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxbp.freebits import free_bits, network_latency, upgrade

PAIRS = [(a, w) for a in (2, 4, 8) for w in (2, 4, 8)]


@st.composite
def problems(draw):
  layers = [f"l{i}" for i in range(draw(st.integers(1, 6)))]
  lat = {(n, a, w): draw(st.integers(1, 20)) for n in layers for a, w in PAIRS}
  config = {n: draw(st.sampled_from(PAIRS)) for n in layers}
  return config, lat


@settings(max_examples=200, deadline=None)
@given(problems())
def test_free_bits_is_never_slower_and_never_drops_bits(problem):
  config, lat = problem
  res = free_bits(config, lat)
  assert res.latency_after <= res.latency_before
  assert res.latency_before == network_latency(config, lat)
  for n, (a, w) in config.items():
    a2, w2 = res.config[n]
    assert a2 >= a and w2 >= w
    assert lat[(n, a2, w2)] <= lat[(n, a, w)]
    # Optimal: no allowed dominating pair is strictly faster.
    assert all(lat[(n, x, y)] >= lat[(n, a2, w2)] for x, y in PAIRS if x >= a and y >= w and lat[(n, x, y)] <= lat[(n, a, w)])
  assert free_bits(res.config, lat).config == res.config  # idempotent.


def test_prefers_more_bits_on_ties_and_respects_allowed():
  lat = {("l", a, w): 10 for a, w in PAIRS}
  lat[("l", 4, 4)] = 12
  assert upgrade("l", (4, 4), lat) == (8, 8)  # everything is faster: the most bits.
  assert upgrade("l", (4, 4), lat, allowed=[(4, 8)]) == (4, 8)
  lat[("l", 8, 8)] = 13
  assert upgrade("l", (4, 4), lat) == (8, 4)  # ties broken towards more bits, activations first.
  assert upgrade("l", (8, 8), lat) == (8, 8)  # nothing dominates 8/8.


def test_missing_entries_are_clear_errors():
  with pytest.raises(KeyError, match="no entry for layer 'x' at \\(b_in=4, b_w=4\\)"):
    free_bits({"x": (4, 4)}, {("x", 8, 8): 1})
  with pytest.raises(KeyError, match="no entry for layer 'x' \\(layer type conv:1x8x4>1x8x4\\) at \\(b_in=4, b_w=8\\)"):
    free_bits({"x": (4, 4)}, {("x", 4, 4): 3, ("x", 8, 8): 1}, allowed=[(4, 8)], types={"x": "conv:1x8x4>1x8x4"})
  with pytest.raises(ValueError, match="expected \\(b_in, b_w\\)"):
    free_bits({"x": (4, 4, 4)}, {("x", 4, 4): 1})
