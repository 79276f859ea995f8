"""jaxbp: hardware-aware optimisation of tiny blood-pressure networks, in JAX.

The pipeline flows one way: data -> models -> nas/cost -> train -> (quant -> integerize -> deploy/export).
"""

__version__ = "0.1.0"
