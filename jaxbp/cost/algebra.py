"""Costs that compose like numbers: `0.5 * params + latency`, `maximum(a, b)`, `relu(bytes - budget)`.

A `Cost` wraps a pure function `fn(arch, shapes, temperature) -> scalar`; arithmetic builds new pure
functions, so a composed cost is still differentiable w.r.t. `arch` and safe under jit and vmap.
"""

from __future__ import annotations

import operator
from typing import Any, Callable

import jax
import jax.numpy as jnp

CostFn = Callable[[Any, Any, Any], jax.Array]


class Cost:
  """A differentiable scalar function of architecture parameters.

  Call as `cost(arch, shapes)` or `cost(arch, shapes, temperature)`: `arch` is the "arch" variable
  collection of a supernet (nested dict of {"alpha": (n_ops,)}), `shapes` a `NetShapes` from
  `jaxbp.cost.trace`.
  """

  def __init__(self, fn: CostFn, name: str = "cost"):
    self.fn = fn
    self.name = name

  def __call__(self, arch: Any, shapes: Any, temperature: Any = 1.0) -> jax.Array:
    return self.fn(arch, shapes, temperature)

  def __repr__(self) -> str:
    return f"Cost({self.name})"

  def _binary(self, other: "Cost | float", op, symbol: str, reverse: bool = False) -> "Cost":
    b = as_cost(other)
    lhs, rhs = (b, self) if reverse else (self, b)
    return Cost(lambda a, s, t: op(lhs(a, s, t), rhs(a, s, t)), f"({lhs.name} {symbol} {rhs.name})")

  def __add__(self, o): return self._binary(o, operator.add, "+")
  def __radd__(self, o): return self._binary(o, operator.add, "+", True)
  def __sub__(self, o): return self._binary(o, operator.sub, "-")
  def __rsub__(self, o): return self._binary(o, operator.sub, "-", True)
  def __mul__(self, o): return self._binary(o, operator.mul, "*")
  def __rmul__(self, o): return self._binary(o, operator.mul, "*", True)
  def __truediv__(self, o): return self._binary(o, operator.truediv, "/")
  def __rtruediv__(self, o): return self._binary(o, operator.truediv, "/", True)
  def __pow__(self, o): return self._binary(o, operator.pow, "**")
  def __neg__(self): return Cost(lambda a, s, t: -self(a, s, t), f"-{self.name}")


def as_cost(x: "Cost | float") -> Cost:
  """A Cost from a cost or a constant (a float or a traced scalar, e.g. a vmapped budget)."""
  if isinstance(x, Cost):
    return x
  return Cost(lambda a, s, t: jnp.asarray(x, jnp.float32), repr(x) if isinstance(x, (int, float)) else "const")


def _nary(fn, name: str, *costs) -> Cost:
  cs = [as_cost(c) for c in costs]
  return Cost(lambda a, s, t: fn(*[c(a, s, t) for c in cs]), f"{name}({', '.join(c.name for c in cs)})")


def maximum(a, b) -> Cost:
  return _nary(jnp.maximum, "max", a, b)


def minimum(a, b) -> Cost:
  return _nary(jnp.minimum, "min", a, b)


def relu(c) -> Cost:
  """Hinge: `relu(bytes - budget)` is zero inside the budget and linear outside."""
  return _nary(jax.nn.relu, "relu", c)


def log(c) -> Cost:
  return _nary(jnp.log, "log", c)
