"""The choice layer: a differentiable mix of {standard conv, depthwise-separable, identity}.

Architecture logits live in their own variable collection, "arch" ({"alpha": (n_ops,)} per layer); the
softmax temperature in "nas_state" ({"temperature": ()} per layer, not trained). Modes:
  soft        θ = softmax(α/T)
  gumbel      θ = softmax((α + g)/T), g ~ Gumbel(0, 1) from the "gumbel" rng stream
  hard        straight-through: forward one_hot(argmax θ), backward through softmax(α/T)
  hard_gumbel straight-through on the Gumbel sample
  frozen      fine-tuning an exported choice: θ = one_hot(argmax α) (one program serves every architecture)
Output = Σ_i θ_i · branch_i(x), computed as one conv with the θ-mixed kernel of the branches
(`jaxbp.nas.superkernel`: every alternative is linear with the slot's window).
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxbp.models.layers import OPS, SlotSpec
from jaxbp.nas.superkernel import OpKernel, dense_conv, identity_tap

MODES = ("soft", "gumbel", "hard", "hard_gumbel", "frozen")


def theta(alpha: jax.Array, temperature: jax.Array | float = 1.0, mode: str = "soft",
          key: jax.Array | None = None) -> jax.Array:
  """Branch weights (..., n_ops) from logits `alpha` (..., n_ops)."""
  if mode not in MODES:
    raise ValueError(f"unknown choice mode {mode!r}; expected one of {MODES}")
  if mode == "frozen":
    return jax.nn.one_hot(jnp.argmax(alpha, axis=-1), alpha.shape[-1], dtype=alpha.dtype)
  logits = alpha
  if mode in ("gumbel", "hard_gumbel"):
    if key is None:
      raise ValueError(f"choice mode {mode!r} needs a 'gumbel' rng")
    logits = alpha + jax.random.gumbel(key, alpha.shape, alpha.dtype)
  soft = jax.nn.softmax(logits / temperature, axis=-1)
  if mode in ("hard", "hard_gumbel"):
    hard = jax.nn.one_hot(jnp.argmax(soft, axis=-1), soft.shape[-1], dtype=soft.dtype)
    return soft + jax.lax.stop_gradient(hard - soft)
  return soft


class ChoiceConv(nn.Module):
  """A conv slot whose op is searched. (B, L, Cin) -> (B, L', features).

  Attributes:
    spec: the seed slot's static shape.
    ops: the alternatives (subset of "conv", "dw", "id"; "id" only where shapes allow).
    mode: one of MODES.
  """

  is_conv_slot = True  # marks a conv slot for `jaxbp.cost.trace`.
  spec: SlotSpec
  ops: tuple[str, ...]
  mode: str = "soft"

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if "id" in self.ops:
      if not self.spec.allows_identity:
        raise ValueError(f"layer {self.name!r}: identity is not a valid alternative for {self.spec}")
      if not isinstance(self.spec.padding, str) and 2 * identity_tap(self.spec) != self.spec.kernel - 1:
        raise ValueError(f"layer {self.name!r}: padding {self.spec.padding} with kernel {self.spec.kernel} changes "
                         "the length; identity is not an alternative here")
    alpha = self.variable("arch", "alpha", jnp.zeros, (len(self.ops),)).value
    temperature = self.variable("nas_state", "temperature", jnp.ones, ()).value
    needs_key = self.mode in ("gumbel", "hard_gumbel")
    w = theta(alpha, temperature, self.mode, self.make_rng("gumbel") if needs_key else None)
    # One conv with the θ-mixed kernel (`jaxbp.nas.superkernel`): Σ_i θ_i op_i(x) by linearity.
    parts = [(w[i], *OpKernel(self.spec, op, name=op)()) for i, op in enumerate(self.ops)]
    kernel = sum(t * k for t, k, _ in parts)
    biases = [t * b for t, _, b in parts if b is not None]
    return dense_conv(x, kernel, sum(biases) if biases else None, self.spec)


@functools.lru_cache(maxsize=None)
def choice_slot(mode: str = "soft", ops: tuple[str, ...] = ("conv", "dw", "id")):
  """A slot factory (see `jaxbp.models.layers`) that builds a ChoiceConv over `ops` allowed by each slot."""
  if mode not in MODES:
    raise ValueError(f"unknown choice mode {mode!r}; expected one of {MODES}")
  unknown = [o for o in ops if o not in OPS]
  if unknown or not ops or len(set(ops)) != len(ops):
    raise ValueError(f"choice ops {tuple(ops)!r}: expected distinct ops from {OPS}")
  return functools.partial(_make_choice, mode=mode, ops=tuple(ops))


def _make_choice(spec: SlotSpec, op: str, name: str, *, mode: str, ops: tuple[str, ...]) -> nn.Module:
  del op  # the seed's op is one of the alternatives.
  allowed = tuple(o for o in ops if o in spec.allowed_ops())
  if not allowed:
    raise ValueError(f"layer {name!r}: none of the choice ops {ops} fits this slot (it allows "
                     f"{spec.allowed_ops()}: identity needs equal in/out channels and stride 1)")
  return ChoiceConv(spec, allowed, mode, name=name)
