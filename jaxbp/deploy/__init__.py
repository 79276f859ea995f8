"""Deployment on PULP/GAP8 clusters: platform data, layer graphs, tiler, cycle/energy simulator.

  from jaxbp.deploy import get_platform, simulate, zoo
  report = simulate(zoo.mobilenet_v1(1.0, 128), get_platform("gap8"))

Pipeline position: the last stage (it may import models/cost; nothing earlier imports it).
"""

from jaxbp.deploy.layers import Layer, Network, with_layer_bits, with_uniform_bits
from jaxbp.deploy.platforms import PLATFORMS, Platform, get_platform, platform_from_dict
from jaxbp.deploy.simulator import Report, simulate
from jaxbp.deploy.tiler import TILERS, NetworkPlan, plan_network, tile_layer, tiles

__all__ = ["PLATFORMS", "TILERS", "Layer", "Network", "NetworkPlan", "Platform", "Report", "get_platform",
           "plan_network", "platform_from_dict", "simulate", "tile_layer", "tiles", "with_layer_bits",
           "with_uniform_bits"]
