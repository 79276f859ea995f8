"""The choice layer's one-conv form (`jaxbp.nas.superkernel`) equals running every branch and mixing them."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from jaxbp.models.layers import OP_MODULES, SlotSpec
from jaxbp.nas.choice import ChoiceConv, theta


def _branches(layer: ChoiceConv, variables, x, mode="soft"):
  """Σ_i θ_i op_i(x) with every branch module run on x, as the choice layer computed before."""
  alpha = variables["arch"]["alpha"]
  w = theta(alpha, variables["nas_state"]["temperature"], mode)
  out = 0.0
  for i, op in enumerate(layer.ops):
    params = {"params": variables["params"][op]} if op in variables["params"] else {}
    out = out + w[i] * OP_MODULES[op](layer.spec).apply(params, x)
  return out


specs = st.builds(
    lambda cin, cout_mult, kernel, stride, groups, bias, padding: SlotSpec(
        cin * groups, cin * groups * cout_mult, kernel, stride, groups, bias,
        "SAME" if padding is None else (kernel - 1) // 2 if padding else 0),
    cin=st.integers(1, 4), cout_mult=st.integers(1, 2), kernel=st.sampled_from([1, 3, 5, 9]),
    stride=st.sampled_from([1, 2, 4]), groups=st.sampled_from([1, 2]), bias=st.booleans(),
    padding=st.sampled_from([None, True]))


@settings(max_examples=6, deadline=None)  # ~2 s each: every example compiles its shapes
@given(spec=specs, length=st.integers(8, 40), seed=st.integers(0, 2**16), mode=st.sampled_from(["soft", "frozen"]))
def test_choice_equals_mixed_branches_values_and_gradients(spec, length, seed, mode):
  ops = tuple(o for o in ("conv", "dw", "id") if o in spec.allowed_ops())
  layer = ChoiceConv(spec, ops, mode)
  kx, ki, ka = jax.random.split(jax.random.key(seed), 3)
  x = jax.random.normal(kx, (3, length, spec.in_features))
  variables = dict(layer.init(ki, x))
  variables["arch"] = {"alpha": jax.random.normal(ka, (len(ops),))}

  def both(variables):  # one jitted program per example (eager op-by-op would compile every primitive)
    def loss(fn, params, arch):
      return jnp.sum(jnp.sin(fn({**variables, "params": params, "arch": arch})))

    grads = lambda fn: jax.grad(lambda p, a: loss(fn, p, a), argnums=(0, 1))(variables["params"], variables["arch"])
    new, old = (lambda v: layer.apply(v, x)), (lambda v: _branches(layer, v, x, mode))
    return new(variables), old(variables), grads(new), grads(old)

  got, want, g, r = jax.jit(both)(variables)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4), g, r)


def test_frozen_identity_is_exact():
  """At a one-hot identity choice the slot passes its input through unchanged, bit for bit."""
  spec = SlotSpec(4, 4, 5)
  layer = ChoiceConv(spec, ("conv", "dw", "id"), "frozen")
  x = jax.random.normal(jax.random.key(0), (2, 11, 4))
  variables = dict(layer.init(jax.random.key(1), x))
  variables["arch"] = {"alpha": jnp.array([0.0, 0.0, 1.0])}
  np.testing.assert_array_equal(layer.apply(variables, x), x)


def test_identity_that_changes_the_length_is_refused():
  spec = SlotSpec(2, 2, 5, padding=1)  # 5-tap window, 1 zero each side: the length shrinks by 2
  layer = ChoiceConv(spec, ("conv", "id"))
  with pytest.raises(ValueError, match="changes the length"):
    layer.init(jax.random.key(0), jnp.zeros((1, 9, 2)))
