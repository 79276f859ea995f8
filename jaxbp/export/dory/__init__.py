"""DORY deployment: the exact rewrites and refusals (`lower`), the ONNX + config DORY's Quantlab frontend compiles
as is (`model`), and the directory DORY reads plus a runner that reports DORY's layers, kernels and tiles (`app`)."""

from jaxbp.export.dory.lower import DoryUnsupportedError, check_deployable, lower, problems
from jaxbp.export.dory.model import evaluate, to_dory_model

__all__ = ["DoryUnsupportedError", "check_deployable", "evaluate", "lower", "problems", "to_dory_model"]
