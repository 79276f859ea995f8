"""Latency-aware search costs: the simulator's latency tables as differentiable `jaxbp.cost.Cost`s.

`jaxbp.cost` takes plain table dicts and never imports the simulator; these functions build the tables on the
deploy side (`jaxbp.deploy.latency_table`) from a model config and a platform and wrap them:

- `bb_latency_cost(config, window, platform)`: Bayesian Bits' cost. Expected latency Σ_layers Σ P(b_in, b_w)
  · LD(layer, b_in, b_w) under the gate probabilities (`jaxbp.quant.bit_joints`), plus the weightless layers
  (pools, adds, element-wise ops) as a constant at 8 bit. At one-hot gates it is the LD sum of the read-off.
  The entries are the LD's pair view: each layer's output at its b_in, under the kernel library DORY links for a
  network with a sub-byte tensor (what every searched mixed configuration links; `jaxbp.deploy.latency_table`).
  The exact price of a read-off (output widths set by the readers, the all-8-bit network's own library) is
  `LatencyDict.network_cycles`, which Free Bits and the flow's tables use.
- `supernet_latency_cost(config, window, platform)`: the SuperNet's cost. Expected latency Σ_slots Σ_op θ_op ·
  latency(slot, op) under the architecture probabilities θ (every alternative of every conv slot simulated alone
  at `bits`), for `jaxbp.nas` / `experiments/sweep.py`.
"""

from __future__ import annotations

from collections.abc import Iterable

from jaxbp.cost import bits as cost_bits
from jaxbp.cost.algebra import Cost
from jaxbp.deploy.latency_table import ALL_PAIRS, LatencyDict, profile, slot_latency_cost
from jaxbp.deploy.layers import Network, with_uniform_bits
from jaxbp.deploy.platforms import Platform, get_platform
from jaxbp.deploy.zoo import from_config, mobilenet
from jaxbp.models.configs import ModelConfig
from jaxbp.models.mobilenet import MobileNetConfig
from jaxbp.nas.supernet import supernet_shapes

BitPair = tuple[int, int]


def _platform(platform: Platform | str) -> Platform:
  return get_platform(platform) if isinstance(platform, str) else platform


def deploy_graph(config: ModelConfig, window: int | tuple[int, ...]) -> Network:
  """The deployment graph of a ResNet1d/UNet1d config at `window`, or of a MobileNet config (its resolution)."""
  if isinstance(config, MobileNetConfig):
    return mobilenet(config)
  return from_config(config, window)


def model_latency_dict(config: ModelConfig, window: int, platform: Platform | str,
                       pairs: Iterable[BitPair] = ALL_PAIRS) -> LatencyDict:
  """The LD of a (seed or exported) config's deployment graph on `platform` for the allowed `pairs`."""
  return profile(deploy_graph(config, window), _platform(platform), tuple(pairs))


def bit_latency_table(ld: LatencyDict, weighted: Iterable[str], unit: str = "ms"
                      ) -> tuple[dict[tuple[str, int, int], float], float]:
  """({(weighted layer, b_in, b_w): latency}, the weightless layers' latency at 8 bit) from an LD."""
  weighted = set(weighted)
  per = ld.per_layer(unit)
  table = {k: v for k, v in per.items() if k[0] in weighted}
  fixed = sum(v for (name, a, w), v in per.items() if name not in weighted and a == 8 and w == 8)
  return table, float(fixed)


def bb_latency_cost(config: ModelConfig, window: int, platform: Platform | str, *, unit: str = "ms",
                    pairs: Iterable[BitPair] = ALL_PAIRS, ld: LatencyDict | None = None) -> Cost:
  """Expected latency of a Bayesian-Bits twin of `config` on `platform` (arch: {layer: P(b_in, b_w)})."""
  ld = ld if ld is not None else model_latency_dict(config, window, platform, pairs)
  net = deploy_graph(config, window)
  table, fixed = bit_latency_table(ld, (l.name for l in net.layers if l.weighted), unit)
  return cost_bits.latency(table, fixed)


def supernet_latency_cost(config: ModelConfig, window: int, platform: Platform | str, *, bits: int = 8,
                          unit: str = "ms", ops: tuple[str, ...] = ("conv", "dw", "id")) -> Cost:
  """Expected latency of the supernet of `config` (slot alternatives `ops`) on `platform` at `bits`; the cost
  takes (arch, NetShapes of `supernet(config, ops=ops)`) like every architecture cost."""
  return slot_latency_cost(supernet_shapes(config, window, ops=ops), _platform(platform), bits, unit)


def homogeneous_config(config: ModelConfig, window: int, bits: int) -> dict[str, BitPair]:
  """The paper's homogeneous `bits` baseline of `config`'s weighted layers (network input and residual-add
  outputs at 8 bit, so the layers reading them have 8-bit inputs)."""
  net = with_uniform_bits(deploy_graph(config, window), bits)
  return {l.name: (l.bits_in, l.bits_w) for l in net.layers if l.weighted}
