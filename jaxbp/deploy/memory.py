"""L2 allocation for a whole network: resident weights, live activations (residual/skip buffers
included), and what streams from L3 when that does not fit.

Activations are allocated first-fit over their lifetimes (producer step .. last consumer step). When
weights + activations exceed the L2 budget and L3 is enabled, the largest weights are streamed from L3
(weights are read once per inference, activations would be written and read); an activation moves to
L3 only while the activations alone do not fit. A tensor in L3 is staged through double-buffered
chunks at its producer and consumers; streamed weights share one double-buffered L2 region.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

from jaxbp.deploy.layers import NETWORK_INPUT, Network, tensor_bytes
from jaxbp.deploy.platforms import Platform
from jaxbp.deploy.schedule import L3Stream

ALIGN = 4


def _align(n: int) -> int:
  return -(-n // ALIGN) * ALIGN


@dataclasses.dataclass(frozen=True)
class L2Buffer:
  """One L2 region.

  Attributes:
    name: tensor name ("input" or a layer name), "weights:<layer>", "weight_stream", or
      "stage:<layer>:<input|input2|output>" (an L3 tensor's staging chunks for that layer).
    kind: "activation" | "weights" | "weight_stream" | "staging".
    offset, bytes: placement in the data area of L2 (after the code/runtime reservation).
    first, last: steps (layer indices) during which it is live; -1, -1 for static regions.
  """

  name: str
  kind: str
  offset: int
  bytes: int
  first: int
  last: int


@dataclasses.dataclass(frozen=True)
class MemoryPlan:
  """Where every tensor and weight array lives, and whether it fits.

  Attributes:
    budget: L2 bytes available (l2_bytes - l2_reserved_bytes).
    buffers: every L2 region.
    weights_l3: layers whose weights stream from L3.
    tensors_l3: activation tensors kept in L3.
    fits: whether everything fits; reason: why not ("" if it fits).
    peak_bytes: L2 data bytes at the peak (static regions + activation arena).
    resident_weight_bytes, activation_bytes: the two parts of the peak.
    chunks: L3 staging chunk bytes per tensor / weight array streamed.
  """

  budget: int
  buffers: tuple[L2Buffer, ...]
  weights_l3: frozenset[str]
  tensors_l3: frozenset[str]
  fits: bool
  reason: str
  peak_bytes: int
  resident_weight_bytes: int
  activation_bytes: int
  chunks: Mapping[str, int]

  @property
  def uses_l3(self) -> bool:
    return bool(self.weights_l3 or self.tensors_l3)

  def buffer(self, name: str) -> L2Buffer | None:
    for b in self.buffers:
      if b.name == name:
        return b
    return None

  def stream(self, net: Network, index: int, p: Platform) -> L3Stream:
    """L3 traffic of layer `index`: streamed weights, inputs read from and output written to L3."""
    layer = net.layers[index]
    total = transfers = first = last = 0
    parts = [(f"weights:{layer.name}", layer.param_bytes(p.requant_bytes_per_channel), layer.name in self.weights_l3)]
    parts += [(src, _tensor_bytes(net, src), src in self.tensors_l3) for src in layer.inputs]
    for name, n, in_l3 in parts:
      if in_l3 and n:
        chunk = self.chunks[name]
        total, transfers, first = total + n, transfers + math.ceil(n / chunk), first + min(n, chunk)
    if layer.name in self.tensors_l3:
      n = layer.out_bytes()
      chunk = self.chunks[layer.name]
      total, transfers, last = total + n, transfers + math.ceil(n / chunk), min(n, chunk)
    return L3Stream(total, transfers, first, last)


def _tensor_bytes(net: Network, name: str) -> int:
  if name == NETWORK_INPUT:
    return tensor_bytes(net.input_shape, net.input_bits)
  return net.layer(name).out_bytes()


def lifetimes(net: Network) -> dict[str, tuple[int, int, int]]:
  """Tensor -> (bytes, first step, last step); the network output lives to the end."""
  cons = net.consumers()
  n = len(net.layers)
  out = {NETWORK_INPUT: (_tensor_bytes(net, NETWORK_INPUT), 0, max(cons[NETWORK_INPUT], default=0))}
  for i, l in enumerate(net.layers):
    out[l.name] = (l.out_bytes(), i, max(cons[l.name], default=n - 1))
  return out


def first_fit(items: list[tuple[str, str, int, int, int]]) -> tuple[list[L2Buffer], int]:
  """Places (name, kind, bytes, first, last) items so that items alive at the same step never overlap."""
  placed: list[L2Buffer] = []
  for name, kind, size, first, last in sorted(items, key=lambda t: (-t[2], t[3], t[0])):
    size = _align(size)
    busy = sorted((b.offset, b.offset + b.bytes) for b in placed if b.first <= last and first <= b.last)
    offset = 0
    for lo, hi in busy:
      if offset + size <= lo:
        break
      offset = max(offset, hi)
    placed.append(L2Buffer(name, kind, offset, size, first, last))
  return placed, max((b.offset + b.bytes for b in placed), default=0)


def plan_memory(net: Network, p: Platform, min_chunks: Mapping[str, int] | None = None) -> MemoryPlan:
  """L2 plan of `net` on `p`; `min_chunks[layer]` is the smallest L3 staging chunk that layer can use
  (its largest L1 tile), defaulting to 0."""
  min_chunks = min_chunks or {}
  life = lifetimes(net)
  weights = {l.name: l.param_bytes(p.requant_bytes_per_channel) for l in net.layers}
  users: dict[str, list[int]] = {t: [] for t in life}  # steps at which a tensor is produced or read.
  for i, l in enumerate(net.layers):
    users[l.name].append(i)
    for src in l.inputs:
      users[src].append(i)

  def chunk_of(name: str, size: int) -> int:
    need = max([min_chunks.get(net.layers[i].name, 0) for i in users.get(name, [])] + [p.l3_chunk_bytes])
    return min(size, need)

  w_l3: set[str] = set()
  t_l3: set[str] = set()
  arenas: dict[frozenset[str], tuple[list[L2Buffer], int]] = {}
  order = {l.name: i for i, l in enumerate(net.layers)}

  def activations():
    key = frozenset(t_l3)
    if key not in arenas:
      items = [(t, "activation", b, f, l) for t, (b, f, l) in life.items() if t not in t_l3 and b]
      for t in t_l3:
        b = life[t][0]
        stage = min(b, 2 * chunk_of(t, b))
        for i in sorted(set(users[t])):
          items.append((f"stage:{net.layers[i].name}:{_role(net, i, t)}", "staging", stage, i, i))
      arenas[key] = first_fit(items)
    return arenas[key]

  def layout():
    acts, arena = activations()
    static = []
    offset = 0
    for name in sorted(weights, key=order.get):
      if weights[name] and name not in w_l3:
        static.append(L2Buffer(f"weights:{name}", "weights", offset, _align(weights[name]), -1, -1))
        offset += _align(weights[name])
    resident = offset
    stream = max((2 * chunk_of_w(n) for n in w_l3), default=0)
    if stream:
      static.append(L2Buffer("weight_stream", "weight_stream", offset, _align(stream), -1, -1))
      offset += _align(stream)
    acts = [dataclasses.replace(b, offset=b.offset + offset) for b in acts]
    return tuple(static + acts), offset + arena, resident, arena

  def chunk_of_w(name: str) -> int:
    return min(weights[name], max(p.l3_chunk_bytes, min_chunks.get(name, 0)))

  def peak_step(buffers) -> int:
    steps = range(len(net.layers))
    return max(steps, key=lambda s: sum(b.bytes for b in buffers if b.kind in ("activation", "staging")
                                        and b.first <= s <= b.last))

  def best_activation(buffers) -> str | None:
    s = peak_step(buffers)
    best, gain = None, 0
    for t, (b, f, l) in life.items():
      if t in t_l3 or not b or not f <= s <= l:
        continue
      g = b - (min(b, 2 * chunk_of(t, b)) if s in users[t] else 0)
      if g > gain:
        best, gain = t, g
    return best

  budget = p.l2_budget_bytes
  min_stream = max((2 * chunk_of_w(n) for n, b in weights.items() if b), default=0)
  reason = ""
  while True:
    buffers, peak, resident, arena = layout()
    if peak <= budget:
      break
    if not p.l3_enabled:
      s = peak_step(buffers)
      reason = (f"L2 only: weights {resident} B + activations {arena} B (peak at layer {net.layers[s].name!r}) = "
                f"{peak} B > L2 budget {budget} B ({p.l2_bytes} B - {p.l2_reserved_bytes} B reserved)")
      break
    act = best_activation(buffers)
    heavy = max((n for n in weights if weights[n] and n not in w_l3), key=lambda n: weights[n], default=None)
    if act is not None and (arena + min_stream > budget or heavy is None):
      t_l3.add(act)
    elif heavy is not None:
      w_l3.add(heavy)
    else:
      s = peak_step(buffers)
      reason = (f"does not fit even with L3: streaming buffers and activations need {peak} B at layer "
                f"{net.layers[s].name!r} > L2 budget {budget} B")
      break
  chunks = {t: chunk_of(t, life[t][0]) for t in t_l3}
  chunks.update({f"weights:{n}": chunk_of_w(n) for n in w_l3})
  return MemoryPlan(budget, buffers, frozenset(w_l3), frozenset(t_l3), not reason, reason, peak, resident, arena,
                    chunks)


def _role(net: Network, step: int, tensor: str) -> str:
  layer = net.layers[step]
  if layer.name == tensor:
    return "output"
  return "input" if layer.inputs[0] == tensor else "input2"
