"""The MobileNet description (jaxbp.models.mobilenet): layer tables, channels, parameter counts, deploy graph."""

import pytest

from jaxbp.deploy import zoo
from jaxbp.models.mobilenet import MobileNetConfig, count_macs, count_params, make_divisible


def _pw_channels(cfg: MobileNetConfig) -> list[int]:
  return [l.cout for l in cfg.layers() if l.kind in ("conv", "pw")]


def test_v1_channels_at_width_1_and_quarter():
  assert _pw_channels(MobileNetConfig("v1")) == [32, 64, 128, 128, 256, 256] + [512] * 6 + [1024, 1024]
  assert _pw_channels(MobileNetConfig("v1", 0.25)) == [8, 16, 32, 32, 64, 64] + [128] * 6 + [256, 256]
  layers = MobileNetConfig("v1", 0.25, 32, 10).layers()
  assert [l.name for l in layers[:3]] == ["conv0", "block1/depthwise", "block1/pointwise"]
  assert [(l.kind, l.out_hw) for l in layers[-2:]] == [("pool", (1, 1)), ("fc", (1, 1))]
  assert sum(l.stride == 2 for l in layers) == 5 and layers[-3].out_hw == (1, 1)  # 32 -> 1 after 5 halvings.


def test_v2_channels_rounding_and_residuals():
  cfg = MobileNetConfig("v2")
  proj = [l.cout for l in cfg.layers() if l.name.endswith("/project")]
  assert proj == [16, 24, 24, 32, 32, 32, 64, 64, 64, 64, 96, 96, 96, 160, 160, 160, 320]
  assert cfg.layer("conv_last").cout == 1280 and cfg.layer("block2/expand").cout == 96
  adds = [l for l in cfg.layers() if l.kind == "add"]
  assert [l.block for l in adds] == ["block3", "block5", "block6", "block8", "block9", "block10", "block12",
                                     "block13", "block15", "block16"]
  assert cfg.layer("block3/add").residual == "block2/project"
  quarter = MobileNetConfig("v2", 0.25)
  assert [l.cout for l in quarter.layers() if l.name.endswith("/project")][:4] == [8, 8, 8, 8]
  assert quarter.layer("conv0").cout == 8 and quarter.layer("conv_last").cout == 1280
  assert quarter.layer("block1/add").residual == "conv0"  # 8 == 8 channels at stride 1: a residual, as the reference.
  assert make_divisible(32 * 0.35) == 16 and make_divisible(0.75 * 24) == 24 and make_divisible(19) == 24


def test_published_parameter_and_mac_counts():
  assert count_params(MobileNetConfig("v1")) == 4_231_976
  assert count_params(MobileNetConfig("v2")) == 3_504_872
  assert count_macs(MobileNetConfig("v1")) == 568_740_352
  assert count_macs(MobileNetConfig("v2")) == 300_774_272


def test_config_errors_name_the_field():
  for kw, field in [({"version": "v3"}, "version"), ({"width_mult": 0.0}, "width_mult"),
                    ({"resolution": 4}, "resolution"), ({"dropout": 1.0}, "dropout")]:
    with pytest.raises(ValueError, match=field):
      MobileNetConfig(**kw)


@pytest.mark.parametrize("version,width,res", [("v1", 0.25, 64), ("v2", 0.35, 96)])
def test_zoo_graph_is_the_description(version, width, res):
  cfg = MobileNetConfig(version, width, res, 10)
  net = getattr(zoo, f"mobilenet_{version}")(width, res, classes=10)
  assert net.name == cfg.name
  assert [l.name for l in net.layers] == [l.name for l in cfg.layers()]
  for d, l in zip(net.layers, cfg.layers()):
    assert d.out_shape == (*l.out_hw, l.cout) and d.inputs == l.inputs
  assert net.macs == count_macs(cfg)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_flax_module_has_the_published_parameter_count(version):
  import jax
  from jaxbp.models import build, count_params as count_tree
  from jaxbp.models.mobilenet import MobileNet, init_mobilenet
  cfg = MobileNetConfig(version)
  shapes = jax.eval_shape(lambda: init_mobilenet(build(cfg), jax.random.key(0)))
  assert count_tree(shapes["params"]) == count_params(cfg) == {"v1": 4_231_976, "v2": 3_504_872}[version]
  assert shapes["params"]["block2/depthwise"]["kernel"].shape == (3, 3, 1, cfg.layer("block2/depthwise").cin)
  with pytest.raises(ValueError, match=r"expected images \(B, 224, 224, 3\)"):
    jax.eval_shape(lambda: MobileNet(cfg).init(jax.random.key(0), jax.numpy.zeros((1, 32, 32, 3))))


def test_depthwise_taps_equal_xla_grouped_conv():
  import jax
  import numpy as np
  from jaxbp.models.mobilenet import depthwise_conv
  k = jax.random.normal(jax.random.key(1), (3, 3, 1, 8))
  x = jax.random.normal(jax.random.key(2), (2, 9, 9, 8))
  for s in (1, 2):
    ref = jax.lax.conv_general_dilated(x, k, (s, s), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                       feature_group_count=8)
    np.testing.assert_allclose(depthwise_conv(x, k, s, 1), ref, atol=1e-5)


def test_registered_configs_round_trip():
  from jaxbp.models import MOBILENET_V1, config_from_dict, config_to_dict, model_name, seed_config
  cfg = seed_config("mobilenet_v2", "digits")
  assert model_name(cfg) == "mobilenet_v2" and config_from_dict(config_to_dict(cfg)) == cfg
  assert MOBILENET_V1["digits"].resolution == 32
  with pytest.raises(ValueError, match="version"):
    config_from_dict({"model": "mobilenet_v1", "version": "v2"})


def test_classification_task_loss_and_eval_step():
  import flax.linen as nn
  import jax
  import numpy as np
  import optax
  from jaxbp.train.state import create_state
  from jaxbp.train.steps import accuracy, cross_entropy, make_eval_step, make_train_step
  logits = jax.numpy.array([[2.0, 0.0], [0.0, 3.0]])
  labels = np.array([0, 0])
  np.testing.assert_allclose(cross_entropy(logits, labels), [np.log1p(np.exp(-2.0)), np.log1p(np.exp(3.0))],
                             rtol=1e-6)
  assert float(accuracy(logits, labels)) == 0.5
  class Linear(nn.Module):
    @nn.compact
    def __call__(self, x, *, train=False):
      return nn.Dense(3)(x)

  model = Linear()
  batch = {"x": np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32), "y": np.arange(8) % 3}
  variables = model.init(jax.random.key(0), batch["x"])
  _, sum_ce, n = make_eval_step(model, "classification")(variables, batch)
  assert float(n) == 8 and np.isclose(float(sum_ce), float(cross_entropy(model.apply(variables, batch["x"]),
                                                                         batch["y"]).sum()))
  tx = optax.sgd(0.1)
  step = make_train_step(model, tx, "classification")
  state = create_state(variables, tx)
  losses = []
  for i in range(20):
    state, loss = step(state, batch, jax.random.key(i))
    losses.append(float(loss))
  assert losses[-1] < losses[0]
