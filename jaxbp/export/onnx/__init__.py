"""ONNX export of integer graphs: a standard graph onnxruntime runs bit-exactly, and the DORY-annotated one."""

from jaxbp.export.onnx.dory import DOMAIN, evaluate, to_dory_onnx
from jaxbp.export.onnx.runtime import run_onnx, to_runtime_onnx
