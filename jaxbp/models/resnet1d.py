"""The benchmark's ResNet1d regressor (PPG window -> [SBP, DBP]), exact to the parameter.

Reference: bp-benchmark `resnet1d` (after hsd1503/resnet1d), see shared/docs/bp-benchmark.md.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxbp.models.dropout import Dropout
from jaxbp.models.layers import (SlotFactory, SlotSpec, plain_slot, resolve_ops, torch_bias_init, torch_kernel_init,
                                 zero_pad_maxpool)


@dataclasses.dataclass(frozen=True)
class ResNet1dConfig:
  """ResNet1d hyper-parameters.

  Attributes:
    first_kernel: stem conv kernel (samples).
    kernel: block conv kernel (samples).
    n_blocks: number of residual blocks; odd blocks downsample by `downsample`.
    base_filters: channels of the stem and block 0; doubled every other block.
    groups: feature groups of the block convs.
    downsample: stride of the downsampling blocks and of the stem max-pool.
    se_reduction, se_min: squeeze-excitation hidden width = max(C // se_reduction, se_min).
    se: squeeze-excitation gate in every block (the seed); False drops it (a gate DORY / PULP-NN cannot run:
      with `groups=1` the network is DORY-deployable, see `deployable()`).
    dropout: dropout rate inside the blocks.
    n_outputs: regression outputs ([SBP, DBP]).
    ops: per conv slot op ("conv" | "dw" | "id"), in `slot_specs()` order; None = the seed (all "conv").
  """

  first_kernel: int = 9
  kernel: int = 5
  n_blocks: int = 4
  base_filters: int = 32
  groups: int = 2
  downsample: int = 4
  se_reduction: int = 16
  se_min: int = 4
  se: bool = True
  dropout: float = 0.5
  n_outputs: int = 2
  ops: tuple[str, ...] | None = None

  def block_channels(self, i: int) -> tuple[int, int, int]:
    """(in channels, out channels, stride) of block i."""
    if i == 0:
      return self.base_filters, self.base_filters, 1
    cin = self.base_filters * 2 ** ((i - 1) // 2)
    cout = 2 * cin if i % 2 == 0 else cin
    stride = self.downsample if i % 2 == 1 else 1
    return cin, cout, stride

  def slot_specs(self) -> dict[str, SlotSpec]:
    """Every conv slot, in network order: {"stem_conv": ..., "block0/conv1": ..., ...}."""
    specs = {"stem_conv": SlotSpec(1, self.base_filters, self.first_kernel)}
    for i in range(self.n_blocks):
      cin, cout, stride = self.block_channels(i)
      specs[f"block{i}/conv1"] = SlotSpec(cin, cout, self.kernel, stride, self.groups)
      specs[f"block{i}/conv2"] = SlotSpec(cout, cout, self.kernel, 1, self.groups)
    return specs

  def deployable(self, groups: int | None = None) -> "ResNet1dConfig":
    """A DORY-deployable variant: no squeeze-excitation gate (DORY has no gate), `groups` (default: kept; PULP-NN
    has plain and depthwise kernels only, so the DORY export lowers a grouped conv to a block-diagonal plain conv
    with `groups`x its MACs; groups=1 trains that dense conv instead); everything else unchanged."""
    return dataclasses.replace(self, se=False, groups=self.groups if groups is None else groups)

  @property
  def out_channels(self) -> int:
    return self.block_channels(self.n_blocks - 1)[1]


def _batch_norm(train: bool, name: str) -> nn.BatchNorm:
  # PyTorch BatchNorm1d defaults: momentum 0.1 (flax 0.9), eps 1e-5.
  return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, name=name)


class SqueezeExcite(nn.Module):
  """Channel gating: mean over time -> Dense(hidden, no bias) -> ReLU -> Dense(C, no bias) -> sigmoid."""

  hidden: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    s = jnp.mean(x, axis=1)
    s = nn.relu(nn.Dense(self.hidden, use_bias=False, kernel_init=torch_kernel_init, name="fc1")(s))
    s = nn.sigmoid(nn.Dense(x.shape[-1], use_bias=False, kernel_init=torch_kernel_init, name="fc2")(s))
    return x * s[:, None, :]


class ResNetBlock(nn.Module):
  """Pre-activation residual block with squeeze-excitation. (B, L, Cin) -> (B, ceil(L/stride), Cout)."""

  config: ResNet1dConfig
  index: int
  ops: tuple[str, str]
  slot: SlotFactory = plain_slot

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    cfg, i = self.config, self.index
    cin, cout, stride = cfg.block_channels(i)
    specs = cfg.slot_specs()
    identity = x
    # Every block owns bn1 (it counts in the parameters) but block 0 skips the pre-activation.
    h = _batch_norm(train, "bn1")(x)
    if i > 0:
      x = Dropout(cfg.dropout, deterministic=not train)(nn.relu(h))
    x = self.slot(specs[f"block{i}/conv1"], self.ops[0], "conv1")(x)
    x = nn.relu(_batch_norm(train, "bn2")(x))
    x = Dropout(cfg.dropout, deterministic=not train)(x)
    x = self.slot(specs[f"block{i}/conv2"], self.ops[1], "conv2")(x)
    if cfg.se:
      x = SqueezeExcite(max(cout // cfg.se_reduction, cfg.se_min), name="se")(x)
    identity = zero_pad_maxpool(identity, stride)
    if cout != cin:
      front = (cout - cin) // 2
      identity = jnp.pad(identity, ((0, 0), (0, 0), (front, cout - cin - front)))
    return x + identity


class ResNet1d(nn.Module):
  """ResNet1d: PPG (B, L, 1) -> (B, n_outputs) normalized [SBP, DBP].

  `slot` builds every conv (see `jaxbp.models.layers`); `jaxbp.nas` swaps it for a choice layer.
  """

  config: ResNet1dConfig
  slot: SlotFactory = plain_slot

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
    cfg = self.config
    specs = cfg.slot_specs()
    ops = dict(zip(specs, resolve_ops(cfg.ops, list(specs), "ResNet1d")))
    x = self.slot(specs["stem_conv"], ops["stem_conv"], "stem_conv")(x)
    x = nn.relu(_batch_norm(train, "stem_bn")(x))
    x = zero_pad_maxpool(x, cfg.downsample)
    for i in range(cfg.n_blocks):
      block_ops = (ops[f"block{i}/conv1"], ops[f"block{i}/conv2"])
      x = ResNetBlock(cfg, i, block_ops, self.slot, name=f"block{i}")(x, train=train)
    x = nn.relu(_batch_norm(train, "head_bn")(x))
    x = jnp.mean(x, axis=1)
    return nn.Dense(cfg.n_outputs, kernel_init=torch_kernel_init, bias_init=torch_bias_init(x.shape[-1]),
                    name="head")(x)
