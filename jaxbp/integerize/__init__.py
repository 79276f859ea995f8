"""Integer-only graphs (NumPy): the IR, requantization, the interpreter, builders and the fidelity report.

Stage order: may import jaxbp.models / jaxbp.quant; never jaxbp.export or jaxbp.deploy.
"""

from jaxbp.integerize.builder import GraphBuilder, Quant, resolve_padding, same_padding
from jaxbp.integerize.graph import ACC_BITS, ACT_BITS, Graph, GraphError, Node, TensorSpec, int_range, load, save
from jaxbp.integerize.interpreter import run
from jaxbp.integerize.mobilenet import MobileNetConfig, mobilenet_v1_graph
from jaxbp.integerize.ops import OPS
from jaxbp.integerize.quantize import dequantize, quantize, quantize_bias, quantize_weight, weight_scale
from jaxbp.integerize.ranges import Int32OverflowError, check_int32
from jaxbp.integerize.requant import Requant, RequantError, solve
