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


@pytest.mark.parametrize("cin,cout,k,s,g,pad", [(32, 32, 5, 1, 2, "SAME"), (32, 64, 5, 4, 2, "SAME"),
                                                 (16, 16, 5, 4, 16, "SAME"), (1, 32, 9, 1, 1, "SAME"),
                                                 (8, 16, 3, 2, 1, 1), (6, 3, 5, 1, 1, 2), (4, 8, 1, 1, 1, "SAME"),
                                                 (12, 12, 3, 2, 3, 1)])
def test_im2col_conv_matches_xla(cin, cout, k, s, g, pad):
  x = jax.random.normal(jax.random.key(0), (3, 37, cin))
  w = jax.random.normal(jax.random.key(1), (k, cin // g, cout))
  padding = pad if isinstance(pad, str) else [(pad, pad)]
  ref = jax.lax.conv_general_dilated(x, w, (s,), padding, dimension_numbers=("NWC", "WIO", "NWC"),
                                     feature_group_count=g)
  got = layers.im2col_conv(x, w, (s,), padding, feature_group_count=g)
  np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)
  gr = jax.grad(lambda w: jnp.sum(jax.lax.conv_general_dilated(
      x, w, (s,), padding, dimension_numbers=("NWC", "WIO", "NWC"), feature_group_count=g) ** 2))(w)
  gg = jax.grad(lambda w: jnp.sum(layers.im2col_conv(x, w, (s,), padding, feature_group_count=g) ** 2))(w)
  np.testing.assert_allclose(gg, gr, rtol=1e-3, atol=1e-3)
