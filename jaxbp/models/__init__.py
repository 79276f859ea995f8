"""Seed networks (ResNet1d, UNet1d) built from conv slots that NAS can replace; MobileNetV1/V2 (images)."""

from jaxbp.models.configs import (MOBILENET_V1, MOBILENET_V2, MODELS, batch_size, PUBLISHED_PARAMS, RESNET1D, TASKS,
                                  UNET1D, ModelConfig, build, config_from_dict, config_to_dict, model_name, seed_config)
from jaxbp.models.mobilenet import MobileNet, MobileNetConfig
from jaxbp.models.layers import OPS, SlotSpec, plain_slot
from jaxbp.models.resnet1d import ResNet1d, ResNet1dConfig
from jaxbp.models.unet1d import UNet1d, UNet1dConfig
from jaxbp.models.params import count_params, init_variables
