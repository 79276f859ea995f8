"""Fidelity of an integer graph against a float reference of the same network (e.g. its fake-quantized twin).

Errors are in units of each tensor's own quantum ε (per channel for an int32 accumulator output), so
"within one output quantum" reads as max error <= 1; on-grid tensors compare integer codes (the reference's
codes are its values / ε rounded, which removes float32 noise). Two views per layer:

  end-to-end  the integer network run on its own (integer inputs from the reference's input quantizer):
              |ε·X_int - x_ref| / ε; mismatches upstream propagate here.
  local       the layer alone, fed the reference's own (on-grid) inputs: the layer's arithmetic alone (the
              integer requant's k/2^d vs the real multiplier, float32 rounding in the reference).

A value is a *mismatch* when it differs from the reference by at least half a quantum (a different integer).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from jaxbp.integerize.graph import ACC_BITS, Graph, TensorSpec
from jaxbp.integerize.interpreter import apply_node


@dataclasses.dataclass(frozen=True)
class LayerFidelity:
  """Errors of one layer's output, in quanta of that output."""

  name: str
  op: str
  bits: int
  max_err: float
  mean_err: float
  mismatch: float  # fraction of values off by >= half a quantum
  local_max_err: float
  local_mismatch: float

  def to_json(self) -> dict[str, Any]:
    return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in dataclasses.asdict(self).items()}


@dataclasses.dataclass(frozen=True)
class FidelityReport:
  """Per-layer fidelity and the worst layers (end-to-end and local)."""

  layers: tuple[LayerFidelity, ...]
  n_examples: int

  def _requantized(self) -> tuple[LayerFidelity, ...]:
    """Layers with a b-bit output (an int32 accumulator's quantum is tiny: compare it in real units)."""
    return tuple(r for r in self.layers if r.bits != ACC_BITS) or self.layers

  @property
  def worst(self) -> LayerFidelity:
    """The requantized layer with the largest end-to-end error (ties: most mismatches)."""
    return max(self._requantized(), key=lambda r: (r.max_err, r.mismatch))

  @property
  def worst_local(self) -> LayerFidelity:
    return max(self._requantized(), key=lambda r: (r.local_max_err, r.local_mismatch))

  def within(self, quanta: float = 1.0, *, local: bool = False) -> bool:
    """Whether every requantized layer's end-to-end (or local) error is within `quanta` of its quantum."""
    return all((r.local_max_err if local else r.max_err) <= quanta + 1e-9 for r in self._requantized())

  def to_json(self) -> dict[str, Any]:
    return {"n_examples": self.n_examples, "worst": self.worst.to_json(), "worst_local": self.worst_local.to_json(),
            "layers": [r.to_json() for r in self.layers]}

  def table(self) -> str:
    head = f"{'layer':28s} {'op':14s} {'bits':>4s} {'max':>7s} {'mean':>7s} {'mism%':>7s} {'loc.max':>7s} {'loc%':>7s}"
    rows = [f"{r.name:28s} {r.op:14s} {r.bits:4d} {r.max_err:7.3f} {r.mean_err:7.4f} {100 * r.mismatch:7.3f} "
            f"{r.local_max_err:7.3f} {100 * r.local_mismatch:7.3f}" for r in self.layers]
    w = self.worst
    wl = self.worst_local
    tail = [f"worst layer (end-to-end): {w.name} ({w.max_err:.3f} quanta, {100 * w.mismatch:.3f}% of values off)",
            f"worst layer (local): {wl.name} ({wl.local_max_err:.3f} quanta, {100 * wl.local_mismatch:.3f}% off)"]
    return "\n".join([head, *rows, *tail])


def _quanta(spec: TensorSpec, ints: np.ndarray, ref: np.ndarray) -> np.ndarray:
  """|integer - reference| in quanta; on-grid tensors compare codes (the reference's float noise removed)."""
  r = np.asarray(ref, np.float64) / np.asarray(spec.scale, np.float64)
  if spec.bits != ACC_BITS:
    r = np.rint(r)
  return np.abs(np.asarray(ints, np.float64) - r)


def to_ints(spec: TensorSpec, ref: np.ndarray) -> np.ndarray:
  """Integers of on-grid reference values: the nearest code, clipped to the tensor's range (int64)."""
  q = np.rint(np.asarray(ref, np.float64) / np.asarray(spec.scale, np.float64))
  return (q if spec.bits == ACC_BITS else np.clip(q, *spec.range)).astype(np.int64)


def compare(graph: Graph, int_env: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray]) -> FidelityReport:
  """Fidelity of every node whose output has a reference value.

  Args:
    graph: the integer graph.
    int_env: the interpreter's tensors (`run(graph, x, keep_all=True)`).
    reference: {tensor name: real values (N, *shape)} of the float model at the same points.
  """
  rows = []
  for node in graph.nodes:
    t = node.output
    if t not in reference or any(i not in reference for i in node.inputs):
      continue
    spec = graph.tensors[t]
    err = _quanta(spec, int_env[t], reference[t])
    ins = [graph.tensors[i] for i in node.inputs]
    local = apply_node(node, [to_ints(s, reference[i]) for s, i in zip(ins, node.inputs)], ins, spec)
    lerr = _quanta(spec, local, reference[t])
    rows.append(LayerFidelity(node.name, node.op, spec.bits, float(err.max()), float(err.mean()),
                              float((err >= 0.5).mean()), float(lerr.max()), float((lerr >= 0.5).mean())))
  n = len(next(iter(reference.values()))) if reference else 0
  return FidelityReport(tuple(rows), n)
