"""The seed networks per dataset (bp-benchmark.md tables) and a factory from (model, dataset) to a module."""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn

from jaxbp.models.layers import SlotFactory, plain_slot
from jaxbp.models.mobilenet import MobileNet, MobileNetConfig
from jaxbp.models.resnet1d import ResNet1d, ResNet1dConfig
from jaxbp.models.unet1d import UNet1d, UNet1dConfig

RESNET1D: dict[str, ResNet1dConfig] = {
    "bcg": ResNet1dConfig(first_kernel=5, kernel=3, n_blocks=8),
    "ppgbp": ResNet1dConfig(first_kernel=9, kernel=5, n_blocks=4),
    "sensors": ResNet1dConfig(first_kernel=9, kernel=3, n_blocks=10),
    "uci": ResNet1dConfig(first_kernel=13, kernel=5, n_blocks=8),
}
RESNET1D["synthetic"] = RESNET1D["ppgbp"]  # PPGBP-like windows (262 samples).
RESNET1D["mimic_sample"] = RESNET1D["uci"]  # MIMIC windows, like UCI.

UNET1D: dict[str, UNet1dConfig] = {
    "bcg": UNet1dConfig(base_filters=128, layers=(2, 2)),
    "sensors": UNet1dConfig(base_filters=32, layers=(2, 3, 2)),
    "uci": UNet1dConfig(base_filters=8, layers=(2, 2, 2, 2)),
}
UNET1D["synthetic"] = UNET1D["uci"]
UNET1D["mimic_sample"] = UNET1D["uci"]

# Published parameter counts (bp-benchmark.md).
PUBLISHED_PARAMS = {
    ("resnet1d", "bcg"): 486_338, ("resnet1d", "ppgbp"): 49_346,
    ("resnet1d", "sensors"): 1_934_914, ("resnet1d", "uci"): 791_746,
    ("unet1d", "bcg"): 446_721, ("unet1d", "sensors"): 140_865, ("unet1d", "uci"): 29_745,
}

# The benchmark's batch sizes: 256 except ResNet on PPGBP (32) and UNet on UCI (512).
BATCH_SIZE = {("resnet1d", "ppgbp"): 32, ("resnet1d", "synthetic"): 32, ("unet1d", "uci"): 512}


def batch_size(model: str, dataset: str) -> int:
  return BATCH_SIZE.get((model, dataset), 256)


# MobileNets on the CPU-sized image set (scikit-learn's digits at 32x32, `jaxbp.data.images`).
MOBILENET_V1 = {"digits": MobileNetConfig("v1", width_mult=0.25, resolution=32, n_classes=10)}
MOBILENET_V2 = {"digits": MobileNetConfig("v2", width_mult=0.35, resolution=32, n_classes=10)}

MODELS = {"resnet1d": (ResNet1d, RESNET1D), "unet1d": (UNet1d, UNET1D), "mobilenet_v1": (MobileNet, MOBILENET_V1),
          "mobilenet_v2": (MobileNet, MOBILENET_V2)}
TASKS = {"resnet1d": "regression", "unet1d": "sig2sig", "mobilenet_v1": "classification",
         "mobilenet_v2": "classification"}

ModelConfig = ResNet1dConfig | UNet1dConfig | MobileNetConfig


def seed_config(model: str, dataset: str) -> ModelConfig:
  """The benchmark's config of `model` for `dataset`; clear error for unknown names / no UNet on PPGBP."""
  if model not in MODELS:
    raise ValueError(f"unknown model {model!r}; expected one of {sorted(MODELS)}")
  table = MODELS[model][1]
  if dataset not in table:
    raise ValueError(f"no {model} config for dataset {dataset!r} (known: {sorted(table)}); "
                     + ("PPGBP has no ABP waveform for a sig2sig UNet" if dataset == "ppgbp" else ""))
  return table[dataset]


def build(config: ModelConfig, slot: SlotFactory = plain_slot) -> nn.Module:
  """The Flax module for a config (seed, supernet via `slot`, or exported candidate)."""
  if isinstance(config, ResNet1dConfig):
    return ResNet1d(config, slot=slot)
  if isinstance(config, UNet1dConfig):
    return UNet1d(config, slot=slot)
  if isinstance(config, MobileNetConfig):
    if slot is not plain_slot:
      raise ValueError(f"{model_name(config)}: no conv slots to replace (NAS supernets are for ResNet1d/UNet1d)")
    return MobileNet(config)
  raise TypeError(f"not a model config: {type(config).__name__}")


def model_name(config: ModelConfig) -> str:
  if isinstance(config, MobileNetConfig):
    return f"mobilenet_{config.version}"
  return "resnet1d" if isinstance(config, ResNet1dConfig) else "unet1d"


def config_to_dict(config: ModelConfig) -> dict[str, Any]:
  """JSON-serializable form (with the model name) of a config."""
  d = dataclasses.asdict(config)
  d = {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}
  return {"model": model_name(config), **d}


def config_from_dict(d: dict[str, Any]) -> ModelConfig:
  """Inverse of `config_to_dict`; errors name the unknown field."""
  d = dict(d)
  model = d.pop("model", None)
  if model not in MODELS:
    raise ValueError(f"config: field 'model' must be one of {sorted(MODELS)}, got {model!r}")
  cls = {"resnet1d": ResNet1dConfig, "unet1d": UNet1dConfig}.get(model, MobileNetConfig)
  if cls is MobileNetConfig and d.setdefault("version", model[-2:]) != model[-2:]:
    raise ValueError(f"config for {model}: field 'version' must be {model[-2:]!r}, got {d['version']!r}")
  fields = {f.name for f in dataclasses.fields(cls)}
  unknown = set(d) - fields
  if unknown:
    raise ValueError(f"config for {model}: unknown fields {sorted(unknown)}; expected {sorted(fields)}")
  d = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
  return cls(**d)
