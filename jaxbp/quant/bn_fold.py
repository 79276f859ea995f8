"""BatchNorm folding (eval-mode statistics) for QAT on folded weights.

A conv (kernel W (K, Cin/g, Cout), bias b) followed by BatchNorm (γ, β, running mean μ, variance σ²) equals,
at eval, the conv with W' = W·γ/√(σ² + eps) (per output channel) and b' = β + (b - μ)·γ/√(σ² + eps).
A BatchNorm with no conv before it is the per-channel affine y = x·scale + shift of `bn_affine`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

BN_EPS = 1e-5  # the seeds' (PyTorch's) BatchNorm epsilon


def bn_affine(gamma: jax.Array, beta: jax.Array, mean: jax.Array, var: jax.Array, eps: float = BN_EPS
              ) -> tuple[jax.Array, jax.Array]:
  """(scale, shift) (C,) with BN(x) = x·scale + shift at eval."""
  scale = gamma * jax.lax.rsqrt(var + eps)
  return scale, beta - mean * scale


def fold_bn(kernel: jax.Array, bias: jax.Array | None, gamma: jax.Array, beta: jax.Array, mean: jax.Array,
            var: jax.Array, eps: float = BN_EPS) -> tuple[jax.Array, jax.Array]:
  """(kernel', bias') of conv→BN folded into one conv; output channels on the kernel's last axis."""
  if kernel.shape[-1] != gamma.shape[-1]:
    raise ValueError(f"fold_bn: kernel has {kernel.shape[-1]} output channels, BatchNorm has {gamma.shape[-1]}")
  scale, shift = bn_affine(gamma, beta, mean, var, eps)
  b = jnp.zeros_like(gamma) if bias is None else bias
  return kernel * scale, b * scale + shift
