"""Choice layer, supernet construction/export, bi-level search step."""


import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxbp import cost, models
from jaxbp.nas import choice as choice_lib
from jaxbp.nas import search
from jaxbp.nas import supernet as sn
from tests.conftest import TINY_RESNET


def test_theta_modes():
  alpha = jnp.array([0.0, 1.0, -1.0])
  soft = choice_lib.theta(alpha, 1.0, "soft")
  np.testing.assert_allclose(soft, jax.nn.softmax(alpha), rtol=1e-6)
  np.testing.assert_allclose(choice_lib.theta(alpha, 0.5, "soft"), jax.nn.softmax(alpha / 0.5), rtol=1e-6)
  hard = choice_lib.theta(alpha, 1.0, "hard")
  np.testing.assert_array_equal(hard, [0.0, 1.0, 0.0])
  # Straight-through: the gradient is the softmax's.
  g_hard = jax.grad(lambda a: choice_lib.theta(a, 1.0, "hard")[0])(alpha)
  g_soft = jax.grad(lambda a: choice_lib.theta(a, 1.0, "soft")[0])(alpha)
  np.testing.assert_allclose(g_hard, g_soft, rtol=1e-6)
  g1 = choice_lib.theta(alpha, 1.0, "gumbel", jax.random.key(0))
  g2 = choice_lib.theta(alpha, 1.0, "gumbel", jax.random.key(1))
  assert not np.allclose(g1, g2) and np.isclose(float(g1.sum()), 1.0)
  hg = choice_lib.theta(alpha, 1.0, "hard_gumbel", jax.random.key(0))
  assert sorted(np.asarray(hg).tolist()) == [0.0, 0.0, 1.0]
  with pytest.raises(ValueError, match="needs a 'gumbel' rng"):
    choice_lib.theta(alpha, 1.0, "gumbel")
  with pytest.raises(ValueError, match="unknown choice mode"):
    choice_lib.theta(alpha, 1.0, "argmax")


@pytest.mark.parametrize("model,dataset,window", [("resnet1d", "ppgbp", 262), ("unet1d", "uci", 625)])
def test_supernet_alternatives_and_identity_rule(model, dataset, window):
  cfg = models.seed_config(model, dataset)
  shapes = cost.trace(sn.supernet(cfg), window)
  assert len(shapes.layers) == len(cfg.slot_specs())
  for layer, spec in zip(shapes.layers, cfg.slot_specs().values()):
    assert layer.spec == spec
    assert layer.ops == (("conv", "dw", "id") if spec.allows_identity else ("conv", "dw"))


def test_supernet_over_a_subset_of_ops():
  cfg = models.seed_config("resnet1d", "ppgbp")
  shapes = sn.supernet_shapes(cfg, 262, ops=("conv", "dw"))
  assert all(layer.ops == ("conv", "dw") for layer in shapes.layers)
  assert search.SearchConfig().ops == ("conv", "dw", "id")
  with pytest.raises(ValueError, match="layer 'stem_conv': none of the choice ops"):
    sn.supernet_shapes(cfg, 262, ops=("id",))
  for bad in (("conv", "pool"), ("dw", "dw"), ()):
    with pytest.raises(ValueError, match="expected distinct ops"):
      sn.supernet(cfg, ops=bad)


@pytest.mark.parametrize("model,dataset,window", [("resnet1d", "ppgbp", 262), ("unet1d", "uci", 625)])
def test_hard_supernet_equals_exported_network(model, dataset, window):
  """With one-hot (hard) θ the supernet computes exactly the exported network with inherited weights."""
  cfg = models.seed_config(model, dataset)
  sup = sn.supernet(cfg, mode="hard")
  x = jax.random.normal(jax.random.key(1), (3, window, 1))
  v = jax.jit(sup.init)({"params": jax.random.key(0), "dropout": jax.random.key(0)}, x)
  rng = np.random.default_rng(0)
  v = {**v, "arch": jax.tree.map(lambda a: jnp.asarray(rng.normal(size=a.shape), jnp.float32), v["arch"])}
  shapes = cost.trace(sup, window)
  exp_cfg, exp_vars, choice = sn.export(cfg, v, shapes)
  assert set(choice.values()) >= {"conv", "dw"}
  plain = models.build(exp_cfg)
  np.testing.assert_allclose(jax.jit(sup.apply)(v, x), jax.jit(plain.apply)(exp_vars, x), rtol=1e-4, atol=1e-5)
  assert models.count_params(exp_vars["params"]) == cost.exact_counts(cost.trace(plain, window))["params"]


def test_user_network_from_slots_becomes_a_supernet():
  """Any network that builds its convs through a `slot` factory gets a supernet for free."""
  import flax.linen as nn
  from jaxbp.models.layers import SlotSpec, plain_slot

  class Tiny(nn.Module):
    slot: object = plain_slot

    @nn.compact
    def __call__(self, x, train=False):
      x = self.slot(SlotSpec(1, 8, 5), "conv", "c1")(x)
      x = self.slot(SlotSpec(8, 8, 3), "conv", "c2")(nn.relu(x))
      return nn.Dense(2)(x.mean(1))

  sup = Tiny(slot=choice_lib.choice_slot())
  shapes = cost.trace(sup, 50)
  assert [l.ops for l in shapes.layers] == [("conv", "dw"), ("conv", "dw", "id")]
  assert shapes.fixed_params == 8 * 2 + 2


def test_search_step_moves_architecture_towards_cheaper_ops():
  cfg = TINY_RESNET
  sup = sn.supernet(cfg)
  shapes = cost.trace(sup, 262)
  sc = search.SearchConfig()
  step = jax.jit(search.make_search_step(sup, shapes, cost.params(), sc, "regression"))
  state = search.init_state(sup, jax.random.key(0), 262, sc)
  x = jax.random.normal(jax.random.key(1), (8, 262, 1))
  batch = {"x": x, "y": jnp.full((8, 2), 0.5)}
  c0 = float(cost.params()(state.arch, shapes))
  p0 = state.params
  for i in range(5):
    state, m = step(state, batch, batch, jnp.float32(1e-2), jax.random.key(i))
  assert float(cost.params()(state.arch, shapes)) < c0
  assert int(state.step) == 5
  changed = jax.tree.map(lambda a, b: not np.allclose(a, b), p0, state.params)
  assert sum(jax.tree.leaves(changed)) > len(jax.tree.leaves(changed)) // 2
  assert set(m) == {"train_mse", "val_mse", "cost"}


def test_temperature_annealing_schedule():
  sc = search.SearchConfig(temperature=5.0, final_temperature=0.05)
  assert sc.temperature_at(0, 10) == pytest.approx(5.0)
  assert sc.temperature_at(9, 10) == pytest.approx(0.05)
  assert sc.temperature_at(5, 10) < sc.temperature_at(4, 10)


def test_exported_config_rejects_wrong_layer_count():
  with pytest.raises(ValueError, match="conv slots"):
    sn.exported_config(models.RESNET1D["ppgbp"], {"a": "conv"})
