"""Quantization: fake-quantizers, BN folding, the quantized twin of a network, Bayesian Bits, read-off.

    tw = quant.twin(config, quant.QuantConfig())               # int8: PACT activations, min-max weights
    variables = quant.calibrate(tw, quant.from_float(tw, float_variables, window), batches)
    records = quant.read_off(tw, variables, window)            # per node: grids, integer weights, biases

Stages: this package may import models, cost and train; nothing earlier imports it.
"""

from jaxbp.quant import bayesian_bits, quantizers
from jaxbp.quant.bayesian_bits import BBConfig, BBGates
from jaxbp.quant.bn_fold import bn_affine, fold_bn
from jaxbp.quant.calibrate import calibrate, collect_ranges, set_ranges
from jaxbp.quant.convert import from_float, init_twin, twin_shapes
from jaxbp.quant.graph import GridSpec, Node, QGraph
from jaxbp.quant.policy import QuantConfig
from jaxbp.quant.qlayers import ActQuant, QNode, QTensor
from jaxbp.quant.readoff import (
    bit_config,
    bit_joints,
    bit_shapes,
    model_bytes,
    read_off,
)
from jaxbp.quant.twin import QuantTwin, gate_layout, graph_of, twin

__all__ = [
    "ActQuant", "BBConfig", "BBGates", "GridSpec", "Node", "QGraph", "QNode", "QTensor", "QuantConfig", "QuantTwin",
    "bayesian_bits", "bit_config", "bit_joints", "bit_shapes", "bn_affine", "calibrate", "collect_ranges", "fold_bn",
    "from_float", "gate_layout", "graph_of", "init_twin", "model_bytes", "quantizers", "read_off", "set_ranges",
    "twin", "twin_shapes",
]
