"""Seed networks: published parameter counts, shapes, slot ops."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxbp import models
from jaxbp.models import layers


def _shapes(config, window, batch=2):
  model = models.build(config)
  variables = jax.eval_shape(lambda: models.init_variables(model, jax.random.key(0), window, batch))
  out = jax.eval_shape(lambda v: model.apply(v, jnp.zeros((batch, window, 1))), variables)
  return variables, out


@pytest.mark.parametrize("model,dataset", sorted(models.PUBLISHED_PARAMS))
def test_published_parameter_counts(model, dataset):
  window = 262 if dataset == "ppgbp" else 625
  variables, out = _shapes(models.seed_config(model, dataset), window)
  assert models.count_params(variables["params"]) == models.PUBLISHED_PARAMS[(model, dataset)]
  assert out.shape == ((2, 2) if model == "resnet1d" else (2, window, 1))


def test_unet_lengths_are_restored_for_odd_windows():
  _, out = _shapes(models.seed_config("unet1d", "uci"), 601)
  assert out.shape == (2, 601, 1)


def test_unknown_names_give_clear_errors():
  with pytest.raises(ValueError, match="PPGBP has no ABP"):
    models.seed_config("unet1d", "ppgbp")
  with pytest.raises(ValueError, match="unknown model"):
    models.seed_config("vgg", "ppgbp")


def test_ops_length_mismatch_is_reported():
  cfg = dataclasses.replace(models.RESNET1D["ppgbp"], ops=("conv",) * 3)
  with pytest.raises(ValueError, match="9 conv slots"):
    _shapes(cfg, 262)


def test_identity_rejected_where_shapes_differ():
  cfg = models.RESNET1D["ppgbp"]
  ops = ["conv"] * len(cfg.slot_specs())
  ops[list(cfg.slot_specs()).index("block2/conv1")] = "id"  # 32 -> 64 channels
  with pytest.raises(ValueError, match="block2/conv1|conv1.*identity"):
    _shapes(dataclasses.replace(cfg, ops=tuple(ops)), 262)


def test_depthwise_separable_and_identity_counts():
  cfg = models.RESNET1D["ppgbp"]
  specs = cfg.slot_specs()
  ops = tuple("id" if s.allows_identity else "dw" for s in specs.values())
  variables, out = _shapes(dataclasses.replace(cfg, ops=ops), 262)
  seed = models.PUBLISHED_PARAMS[("resnet1d", "ppgbp")]
  removed = 0
  for s, op in zip(specs.values(), ops):
    bias = s.features if s.use_bias else 0
    dense = s.in_features // s.groups * s.features * s.kernel + bias
    dw = s.in_features * s.kernel + s.in_features * s.features + bias if op == "dw" else 0
    removed += dense - dw
  assert models.count_params(variables["params"]) == seed - removed
  assert out.shape == (2, 2)


def test_config_dict_round_trip():
  for cfg in [models.RESNET1D["uci"], dataclasses.replace(models.UNET1D["sensors"], ops=("dw",) * 16)]:
    assert models.config_from_dict(models.config_to_dict(cfg)) == cfg
  with pytest.raises(ValueError, match="unknown fields"):
    models.config_from_dict({"model": "resnet1d", "kernal": 3})


def test_linear_upsample_align_corners():
  x = jnp.arange(4.0).reshape(1, 4, 1)
  y = layers.linear_upsample2(x)[0, :, 0]
  np.testing.assert_allclose(y, np.arange(8) * 3 / 7, rtol=1e-6)


def test_zero_pad_maxpool_matches_torch_padsame():
  x = jnp.array([-1.0, -2.0, -3.0, -4.0, -5.0, -6.0]).reshape(1, 6, 1)
  # pad 1 left / 2 right with zeros -> [0,-1,-2,-3 | -4,-5,-6,0]
  np.testing.assert_array_equal(layers.zero_pad_maxpool(x, 4)[0, :, 0], [0.0, 0.0])
