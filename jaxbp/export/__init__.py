"""Exporters of integer graphs (jaxbp.integerize): C99 (`export.c`) and ONNX (`export.onnx`).

Stage order: may import jaxbp.integerize (and earlier stages); nothing before it imports export.
"""

from jaxbp.export.constraints import UnsupportedError, check_exportable
