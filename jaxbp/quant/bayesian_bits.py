"""Bayesian-Bits gates: residual bit-width decomposition with hard-concrete gates (van Baalen et al., 2020).

A gated tensor with bit chain (2, 4, 8) is

    x_q = z_p · (q_2(x) + z_4 · ((q_4(x) - q_2(x)) + z_8 · (q_8(x) - q_4(x))))

with q_b the b-bit quantizer of the tensor (same range for every b) and z_p an optional pruning gate. On
unsigned PACT grids (s_b = α/(2^b - 1)) the scales nest exactly (s_4 = s_2/(2^2 + 1), s_8 = s_4/(2^4 + 1)),
and q_4 - q_2 is the paper's residual ε_4 quantized on s_4; signed symmetric grids (s_b = α/(2^(b-1) - 1),
zero exact) do not nest, and the exact differences keep every gate configuration equal to a plain b-bit
quantizer. The effective width is 8 only if the 4-bit gate is on too (gates are cumulative).

Gates are hard-concrete (Louizos et al.): u ~ U(0, 1), s = σ((log u - log(1 - u) + log α)/β),
z = clip(s·(ζ - γ) + γ, 0, 1), with β = 2/3, γ = -0.1, ζ = 1.1; P(z ≠ 0) = σ(log α - β·log(-γ/ζ)).
Training samples z with an explicit key ("gates" rng); at test time a gate is on iff P(z = 0) < 0.34
(deterministic). Gate logits live in the "gates" variable collection: {"log_alpha": (n_gates,)},
ordered [pruning gate (if any), gate of bits[1], gate of bits[2], ...].
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class BBConfig:
  """Bayesian-Bits settings.

  Attributes:
    bits: the bit-width chain, ascending (residuals between consecutive widths are gated).
    prune: add a gate on the lowest width (0 bits: the tensor is pruned).
    locked: one gate set per layer shared by its weights and its input activation (b_in == b_w).
    beta, gamma, zeta: hard-concrete temperature and stretch.
    threshold: at test time a gate is on iff P(z = 0) < threshold.
    init_log_alpha: initial gate logits (3: every gate on with P(z ≠ 0) ≈ 0.99; larger values start
      further from a decision and need more steps to switch a gate off).
  """

  bits: tuple[int, ...] = (2, 4, 8)
  prune: bool = False
  locked: bool = False
  beta: float = 2.0 / 3.0
  gamma: float = -0.1
  zeta: float = 1.1
  threshold: float = 0.34
  init_log_alpha: float = 3.0

  def __post_init__(self):
    b = self.bits
    if len(b) < 2 or any(not isinstance(x, int) or x < 2 for x in b) or list(b) != sorted(set(b)):
      raise ValueError(f"BBConfig.bits must be >= 2 ascending distinct ints >= 2, got {b}")
    if not (self.gamma < 0 and self.zeta > 1):
      raise ValueError(f"BBConfig: hard-concrete stretch needs gamma < 0 and zeta > 1, got {self.gamma}, {self.zeta}")

  @property
  def n_gates(self) -> int:
    return len(self.bits) - 1 + int(self.prune)

  @property
  def support(self) -> tuple[int, ...]:
    """The bit widths a gated tensor can take (0 = pruned)."""
    return ((0,) if self.prune else ()) + self.bits


def prob_nonzero(log_alpha: jax.Array, cfg: BBConfig) -> jax.Array:
  """P(z ≠ 0) of hard-concrete gates with logits `log_alpha`."""
  return jax.nn.sigmoid(log_alpha - cfg.beta * math.log(-cfg.gamma / cfg.zeta))


def sample_gates(log_alpha: jax.Array, key: jax.Array, cfg: BBConfig) -> jax.Array:
  """A reparameterized hard-concrete sample z ∈ [0, 1] (exact 0 and 1 have positive probability)."""
  u = jax.random.uniform(key, jnp.shape(log_alpha), minval=1e-6, maxval=1.0 - 1e-6)
  s = jax.nn.sigmoid((jnp.log(u) - jnp.log1p(-u) + log_alpha) / cfg.beta)
  return jnp.clip(s * (cfg.zeta - cfg.gamma) + cfg.gamma, 0.0, 1.0)


def eval_gates(log_alpha: jax.Array, cfg: BBConfig) -> jax.Array:
  """Deterministic test-time gates: 1 where P(z = 0) < threshold, else 0."""
  return (1.0 - prob_nonzero(log_alpha, cfg) < cfg.threshold).astype(jnp.float32)


def _chain(z: jax.Array, cfg: BBConfig) -> jax.Array:
  """Per-gate values with a leading 1 for the always-on base width when there is no pruning gate."""
  return z if cfg.prune else jnp.concatenate([jnp.ones((1,), z.dtype), z])


def bit_probabilities(log_alpha: jax.Array, cfg: BBConfig) -> jax.Array:
  """P(b = w) for w in `cfg.support` (cumulative gates: a width needs every lower gate on)."""
  c = _chain(prob_nonzero(log_alpha, cfg), cfg)  # c[0]: base (or pruning) gate, c[k]: gate of bits[k]
  on = jnp.cumprod(c)
  nxt = jnp.concatenate([c[1:], jnp.zeros((1,), c.dtype)])
  p = on * (1.0 - nxt)
  return jnp.concatenate([1.0 - c[:1], p]) if cfg.prune else p


def bits_from_gates(z: jax.Array, cfg: BBConfig) -> jax.Array:
  """The width selected by hard (0/1) gates `z`: the highest width whose gates are all on (0 if pruned)."""
  n_on = jnp.sum(jnp.cumprod(_chain(z, cfg) > 0))  # >= 1 without a pruning gate
  width = jnp.asarray(cfg.bits, jnp.int32)[jnp.maximum(n_on - 1, 0)]
  return jnp.where(n_on == 0, 0, width)


def log_alpha_for_bits(bits: int, cfg: BBConfig, magnitude: float = 6.0) -> np.ndarray:
  """Gate logits (n_gates,) that select width `bits` deterministically at test time (±`magnitude`).

  Hand-set mixed precision (e.g. a fixed bit assignment to integerize and export) without a search.
  """
  if bits not in cfg.support:
    raise ValueError(f"bits {bits} not in the gate chain's support {cfg.support}")
  level = cfg.support.index(bits)  # gates 0..level-1 (pruning gate first, if any) on, the rest off
  return np.where(np.arange(cfg.n_gates) < level, magnitude, -magnitude).astype(np.float32)


def set_gate_bits(gates: dict, cfg: BBConfig, bits: Mapping[str, int]) -> dict:
  """Gates {name: {"log_alpha": (n,)}} with every gate set `name` fixed to `bits[name]` bits."""
  return {name: {"log_alpha": log_alpha_for_bits(int(bits[name]), cfg)} for name in gates}


def mixed_bits(names, keep8: tuple[str, ...], act_bits: int = 4, weight_bits: tuple[int, ...] = (2, 4)
               ) -> dict[str, int]:
  """A fixed mixed-precision assignment of gate sets "<layer>/gates_act" | "<layer>/gates_w": layers whose name
  starts with one of `keep8` (e.g. the first and last, whose channel counts need whole bytes) at 8 bits, other
  activations at `act_bits`, other weights cycling through `weight_bits` in sorted-name order."""
  out, n_w = {}, 0
  for name in sorted(names):
    if name.startswith(keep8):
      out[name] = 8
    elif name.endswith("gates_w"):
      out[name] = weight_bits[n_w % len(weight_bits)]
      n_w += 1
    else:
      out[name] = act_bits
  return out


def residual_quantize(quantized: Sequence[jax.Array], z: jax.Array, cfg: BBConfig) -> jax.Array:
  """Σ of gated residuals: q_b0 + z_1·((q_b1 - q_b0) + z_2·(q_b2 - q_b1 + ...)), times z_p if pruning.

  `quantized[k]` is the tensor quantized at `cfg.bits[k]`.
  """
  if len(quantized) != len(cfg.bits):
    raise ValueError(f"residual_quantize: {len(quantized)} quantized tensors for bit chain {cfg.bits}")
  c = _chain(z, cfg)
  out = quantized[-1]
  for k in range(len(cfg.bits) - 1, 0, -1):
    out = quantized[k - 1] + c[k] * (out - quantized[k - 1])
  return c[0] * out if cfg.prune else out


def effective_scale(scales: Sequence[jax.Array], z: jax.Array, cfg: BBConfig) -> jax.Array:
  """The quantum of the finest width whose gates are all non-zero (the grid of x_q for hard gates)."""
  on = jnp.cumprod(_chain(z, cfg)[1:] > 0)  # gates of bits[1:], cumulative
  s = scales[0]
  for k in range(1, len(cfg.bits)):
    s = jnp.where(on[k - 1], scales[k], s)
  return s


class BBGates(nn.Module):
  """One gate set: `log_alpha` (n_gates,) in the "gates" collection; returns z (n_gates,).

  Training (`train=True`) draws hard-concrete samples from the "gates" rng; eval is deterministic.
  """

  config: BBConfig

  @nn.compact
  def __call__(self, train: bool) -> jax.Array:
    cfg = self.config
    log_alpha = self.variable("gates", "log_alpha", lambda: jnp.full((cfg.n_gates,), cfg.init_log_alpha,
                                                                      jnp.float32)).value
    if train:
      return sample_gates(log_alpha, self.make_rng("gates"), cfg)
    return eval_gates(log_alpha, cfg)
