"""The Free Bits heuristic (methods.md section 4): raise bit widths where that is no slower.

For every layer with configuration (b_in, b_w): among the allowed (b'_in, b'_w) with b'_in >= b_in,
b'_w >= b_w and LD(layer, b') <= LD(layer, b), take the fastest (ties: the most bits). Network latency
is taken as the sum of layer latencies and more bits never lower accuracy, so the result is no slower
and no less accurate than the input configuration.

The latency dictionary is a plain mapping {(layer, b_in, b_w): latency} (any unit), e.g.
`jaxbp.deploy.latency_table.LatencyDict.per_layer()`; `types` ({layer: layer type}, e.g. `LatencyDict.layers`)
only makes a missing entry's error name the layer type (LT) as well.

With `network_cost` ({layer: (b_in, b_w)} -> latency of the whole network, e.g. `LatencyDict.network_cycles` of
the configured network) a candidate is judged by the whole network's latency instead of the layer's entry alone:
raising a layer's b_in also widens its producer's output, and the kernel library DORY links depends on whether
any tensor is sub-byte. Layers are visited in order, each keeps the fastest allowed pair (ties: the most bits)
that leaves the network no slower than it is, so the result is no slower under that cost either.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping

BitPair = tuple[int, int]
LatencyTable = Mapping[tuple[str, int, int], float]


def _lookup(latency: LatencyTable, layer: str, pair: BitPair, types: Mapping[str, str] | None = None) -> float:
  try:
    return float(latency[(layer, pair[0], pair[1])])
  except KeyError:
    lt = f" (layer type {types[layer]})" if types and layer in types else ""
    raise KeyError(f"latency dictionary has no entry for layer {layer!r}{lt} at (b_in={pair[0]}, b_w={pair[1]})"
                   ) from None


def upgrade(layer: str, pair: BitPair, latency: LatencyTable, allowed: Iterable[BitPair] | None = None,
            types: Mapping[str, str] | None = None) -> BitPair:
  """The Free Bits choice for one layer (the input pair if nothing allowed is as fast with more bits).

  `allowed` defaults to the pairs the dictionary has for `layer`; an allowed pair it lacks raises KeyError."""
  current = _lookup(latency, layer, pair, types)
  pairs = allowed if allowed is not None else [(a, w) for (name, a, w) in latency if name == layer]
  best, best_key = tuple(pair), (current, -(pair[0] + pair[1]), -pair[0])
  for a, w in pairs:
    if a < pair[0] or w < pair[1]:
      continue
    t = _lookup(latency, layer, (a, w), types)  # an allowed pair the dictionary lacks is an error.
    key = (t, -(a + w), -a)
    if t <= current and key < best_key:
      best, best_key = (a, w), key
  return best


def network_latency(config: Mapping[str, BitPair], latency: LatencyTable, types: Mapping[str, str] | None = None
                    ) -> float:
  """Sum of the layer latencies of `config` (the heuristic's latency model)."""
  return sum(_lookup(latency, name, tuple(pair), types) for name, pair in config.items())


@dataclasses.dataclass(frozen=True)
class FreeBitsResult:
  """The upgraded configuration, the latencies before/after and the changed layers {layer: (old, new)}."""

  config: dict[str, BitPair]
  latency_before: float
  latency_after: float
  changes: dict[str, tuple[BitPair, BitPair]]


def free_bits(config: Mapping[str, BitPair], latency: LatencyTable,
              allowed: Iterable[BitPair] | None = None, types: Mapping[str, str] | None = None,
              network_cost: Callable[[Mapping[str, BitPair]], float] | None = None) -> FreeBitsResult:
  """Applies Free Bits to a {layer: (b_in, b_w)} configuration (by the layers' entries, or by `network_cost`:
  see the module doc; a candidate `network_cost` rejects with ValueError, e.g. two consumers of one tensor
  asking different widths, is skipped)."""
  allowed = None if allowed is None else tuple(tuple(p) for p in allowed)
  for name, pair in config.items():
    if len(tuple(pair)) != 2:
      raise ValueError(f"layer {name!r}: expected (b_in, b_w), got {tuple(pair)!r}")
  if network_cost is not None:
    return _free_bits_network(config, latency, allowed, types, network_cost)
  new, changes = {}, {}
  for name, pair in config.items():
    pair = tuple(pair)
    new[name] = upgrade(name, pair, latency, allowed, types)
    if new[name] != pair:
      changes[name] = (pair, new[name])
  return FreeBitsResult(new, network_latency(config, latency, types), network_latency(new, latency, types), changes)


def _free_bits_network(config: Mapping[str, BitPair], latency: LatencyTable, allowed: tuple[BitPair, ...] | None,
                       types: Mapping[str, str] | None, network_cost: Callable[[Mapping[str, BitPair]], float]
                       ) -> FreeBitsResult:
  cur = {k: tuple(v) for k, v in config.items()}
  before = cost = float(network_cost(cur))
  for name, pair in list(cur.items()):
    _lookup(latency, name, pair, types)  # the layer must be in the dictionary.
    pairs = allowed if allowed is not None else [(a, w) for (n, a, w) in latency if n == name]
    best, best_key = pair, (cost, -(pair[0] + pair[1]), -pair[0])
    for a, w in pairs:
      if a < pair[0] or w < pair[1] or (a, w) == pair:
        continue
      _lookup(latency, name, (a, w), types)  # an allowed pair the dictionary lacks is an error.
      try:
        t = float(network_cost({**cur, name: (a, w)}))
      except ValueError:
        continue
      key = (t, -(a + w), -a)
      if t <= cost and key < best_key:
        best, best_key = (a, w), key
    cur[name], cost = best, best_key[0]
  changes = {k: (tuple(config[k]), v) for k, v in cur.items() if v != tuple(config[k])}
  return FreeBitsResult(cur, before, cost, changes)
