"""Cost functions: exact counts at one-hot θ for every seed, gradients, composition under jit/vmap."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxbp import cost, models
from jaxbp.cost.shapes import _dense_macs
from jaxbp.nas import supernet as sn

import flax.linen as nn

SEEDS = sorted(models.PUBLISHED_PARAMS)


def _window(dataset):
  return 262 if dataset == "ppgbp" else 625


def count_all_macs(model, window):
  """Independent MAC count: every nn.Conv / nn.Dense call of a plain network, slot-agnostic."""
  total = [0]

  def interceptor(next_fun, args, kwargs, context):
    y = next_fun(*args, **kwargs)
    if context.method_name == "__call__" and isinstance(context.module, (nn.Conv, nn.Dense)):
      total[0] += _dense_macs(context.module, args[0], y)
    return y

  def init():
    with nn.intercept_methods(interceptor):
      return model.init({"params": jax.random.key(0), "dropout": jax.random.key(0)}, jnp.zeros((1, window, 1)))

  jax.eval_shape(init)
  return total[0]


def _random_choice(shapes, seed):
  rng = np.random.default_rng(seed)
  return {l.name: l.ops[rng.integers(len(l.ops))] for l in shapes.layers}


@pytest.mark.parametrize("model,dataset", SEEDS)
def test_one_hot_supernet_costs_equal_exported_counts(model, dataset):
  cfg, window = models.seed_config(model, dataset), _window(dataset)
  sup_shapes = cost.trace(sn.supernet(cfg), window)
  for seed in range(3):
    choice = _random_choice(sup_shapes, seed) if seed else {l.name: "conv" for l in sup_shapes.layers}
    exported = models.build(sn.exported_config(cfg, choice))
    real_params = models.count_params(
        jax.eval_shape(lambda: models.init_variables(exported, jax.random.key(0), window))["params"])
    real_macs = count_all_macs(exported, window)
    arch = cost.one_hot_arch(sup_shapes, choice)
    # Costs are float32: equal to the exact integer as float32 represents it.
    assert float(cost.params()(arch, sup_shapes)) == np.float32(real_params)
    assert float(cost.macs()(arch, sup_shapes)) == np.float32(real_macs)
    assert cost.exact_counts(cost.trace(exported, window)) == {"params": real_params, "macs": real_macs}
    assert cost.exact_counts(sup_shapes, choice) == {"params": real_params, "macs": real_macs}
    if seed == 0:
      assert real_params == models.PUBLISHED_PARAMS[(model, dataset)]


def _arch_and_shapes():
  cfg = models.RESNET1D["ppgbp"]
  sup = sn.supernet(cfg)
  shapes = cost.trace(sup, 262)
  arch = jax.eval_shape(lambda: sup.init({"params": jax.random.key(0), "dropout": jax.random.key(0)},
                                         jnp.zeros((1, 262, 1))))["arch"]
  arch = jax.tree.map(lambda a: jnp.asarray(np.random.default_rng(0).normal(size=a.shape), jnp.float32), arch)
  return arch, shapes


def test_grouped_conv_is_counted_exactly():
  arch, shapes = _arch_and_shapes()
  layer = shapes.layer("block0/conv1")  # 32->32, k5, groups 2
  assert cost.op_params("conv", layer) == 32 // 2 * 32 * 5 + 32
  assert cost.op_macs("conv", layer) == 66 * 32 * 16 * 5


@pytest.mark.parametrize("make", [cost.params, cost.macs, lambda: cost.weight_bytes(4),
                                  lambda: cost.latency(lambda op, l: {"conv": 3.0, "dw": 2.0, "id": 0.5}[op] * l.spec.features)])
def test_cost_gradients_are_finite_and_nonzero(make):
  arch, shapes = _arch_and_shapes()
  g = jax.grad(lambda a: make()(a, shapes))(arch)
  leaves = jax.tree.leaves(g)
  assert all(np.all(np.isfinite(x)) for x in leaves)
  assert all(np.any(x != 0) for x in leaves)


def test_costs_compose_under_jit_and_vmap():
  arch, shapes = _arch_and_shapes()
  table = {(l.name, op): float(i + 1) for i, l in enumerate(shapes.layers) for op in l.ops}
  lat = cost.latency(table)
  combo = 0.5 * cost.params() + lat
  hinge = cost.relu(cost.weight_bytes(8) - 10_000.0)
  worst = cost.maximum(cost.params() / 1000.0, cost.macs() / 1e5)
  ref = 0.5 * cost.params()(arch, shapes) + lat(arch, shapes)
  np.testing.assert_allclose(jax.jit(lambda a: combo(a, shapes))(arch), ref, rtol=1e-6)
  assert float(hinge(arch, shapes)) == pytest.approx(max(float(cost.weight_bytes(8)(arch, shapes)) - 1e4, 0))
  stacked = jax.tree.map(lambda a: jnp.stack([a, 2 * a, -a]), arch)
  vals = jax.jit(jax.vmap(lambda a: worst(a, shapes)))(stacked)
  for i, scale in enumerate([1, 2, -1]):
    a = jax.tree.map(lambda x: scale * x, arch)
    np.testing.assert_allclose(vals[i], worst(a, shapes), rtol=1e-6)
  # A per-candidate budget vmapped as an array.
  budgets = jnp.array([1e3, 1e4, 1e5])
  hs = jax.vmap(lambda b: cost.relu(cost.weight_bytes(8) - b)(arch, shapes))(budgets)
  assert hs[0] >= hs[1] >= hs[2] >= 0
  g = jax.grad(lambda a: hinge(a, shapes) + worst(a, shapes))(arch)
  assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(g))


def test_latency_table_missing_entry_is_named():
  arch, shapes = _arch_and_shapes()
  with pytest.raises(KeyError, match="stem_conv"):
    cost.latency({})(arch, shapes)


def test_lower_temperature_sharpens_expected_cost():
  arch, shapes = _arch_and_shapes()
  hard = cost.params()(arch, shapes, 1e-3)
  choice = sn.choices(arch, shapes)
  assert float(hard) == pytest.approx(float(cost.params()(cost.one_hot_arch(shapes, choice), shapes)), rel=1e-5)


def test_exact_counts_of_a_supernet_needs_a_choice_for_every_searchable_layer():
  cfg = models.seed_config("resnet1d", "ppgbp")
  sup_shapes = cost.trace(sn.supernet(cfg), 262)
  with pytest.raises(ValueError, match="plain network or a choice"):
    cost.exact_counts(sup_shapes)
  partial = {l.name: "conv" for l in sup_shapes.layers[1:]}
  with pytest.raises(ValueError, match=sup_shapes.layers[0].name):
    cost.exact_counts(sup_shapes, partial)
