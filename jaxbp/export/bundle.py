"""Export an integer graph to a directory in one or all formats, and cross-check every backend.

  OUT/c/        network.c/.h, kernels.c/.h, main.c, Makefile         (format "c")
  OUT/onnx/     network_runtime.onnx (onnxruntime, bit-exact), network_dory.onnx + dory_config.json (the
                annotated description of every op; DORY itself compiles OUT/dory/)   (format "onnx")
  OUT/dory/     network.onnx, dory_config.json, input.txt, out_layer<i>.txt: what DORY's Quantlab frontend
                compiles as is (`jaxbp.export.dory`)                   (format "dory")
  OUT/export.json  what was written, sizes, and the cross-check results

Format "both" writes all three; a network DORY cannot deploy gets no dory/ and the refusal (layer, op, fix) in
export.json. Format "dory" alone raises `DoryUnsupportedError` before writing anything.
"""

from __future__ import annotations

import json
import pathlib
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import onnx

from jaxbp.export.c import host
from jaxbp.export.c.emit import emit as emit_c
from jaxbp.export.dory import DoryUnsupportedError, check_deployable
from jaxbp.export.dory import evaluate as evaluate_dory
from jaxbp.export.dory import to_dory_model
from jaxbp.export.dory.app import write_dory_dir
from jaxbp.export.onnx.dory import evaluate, to_dory_onnx
from jaxbp.export.onnx.runtime import run_onnx, to_runtime_onnx
from jaxbp.integerize.graph import Graph
from jaxbp.integerize.interpreter import run

FORMATS = ("c", "onnx", "dory", "both")


def export_graph(graph: Graph, out: str | pathlib.Path, fmt: str = "both", *, prefix: str = "net",
                 example: np.ndarray | None = None) -> dict[str, Any]:
  """Writes the requested format(s) under `out`; returns a summary (also written to out/export.json).

  `example`: one integer input (*shape) whose layer outputs go to dory/out_layer<i>.txt (default: random).
  """
  if fmt not in FORMATS:
    raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
  if fmt == "dory":
    check_deployable(graph)  # refuse before writing anything
  out = pathlib.Path(out)
  out.mkdir(parents=True, exist_ok=True)
  summary: dict[str, Any] = {"nodes": len(graph.nodes), "inputs": list(graph.inputs), "outputs": list(graph.outputs)}
  if fmt in ("c", "both"):
    e = emit_c(graph, out / "c", prefix=prefix)
    summary["c"] = {"directory": str(e.directory), "files": list(e.files), "input_size": e.input_size,
                    "output_size": e.output_size, "weight_bytes": e.weight_bytes,
                    "activation_bytes": e.activation_bytes}
  if fmt in ("onnx", "both"):
    d = out / "onnx"
    d.mkdir(exist_ok=True)
    onnx.save(to_runtime_onnx(graph), d / "network_runtime.onnx")
    model, config = to_dory_onnx(graph)
    onnx.save(model, d / "network_dory.onnx")
    (d / "dory_config.json").write_text(json.dumps(config, indent=1))
    summary["onnx"] = {"directory": str(d), "files": ["network_runtime.onnx", "network_dory.onnx", "dory_config.json"]}
  if fmt in ("dory", "both"):
    try:
      config = write_dory_dir(graph, out / "dory", example)
      summary["dory"] = {"directory": str(out / "dory"), "layers": len(config["layers"]),
                         "lowerings": config["lowerings"]}
    except DoryUnsupportedError as e:
      summary["dory"] = {"refused": e.problems}
  (out / "export.json").write_text(json.dumps(summary, indent=1))
  return summary


def random_inputs(graph: Graph, n: int, seed: int = 0) -> dict[str, np.ndarray]:
  """n random integer examples per graph input, the first two at the range corners (max, min)."""
  rng = np.random.default_rng(seed)
  feeds = {}
  for t in graph.inputs:
    spec = graph.tensors[t]
    lo, hi = spec.range
    x = rng.integers(lo, hi + 1, (n,) + spec.shape)
    x[:1], x[1:2] = hi, lo
    feeds[t] = x
  return feeds


def cross_check(graph: Graph, inputs: Mapping[str, np.ndarray], *, c_dir: str | pathlib.Path | None = None
                ) -> dict[str, Any]:
  """Runs the interpreter, the C host build (if gcc is installed), onnxruntime and the DORY-graph evaluator on
  the same inputs: {backend: {"bit_exact": bool, "mismatches": int, "seconds": float} | {"skipped": reason}}."""
  ref = run(graph, inputs)
  backends = {
      "onnxruntime": lambda: run_onnx(to_runtime_onnx(graph), graph, inputs),
      "dory_onnx_eval": lambda: evaluate(to_dory_onnx(graph)[0], graph, inputs),
  }
  report: dict[str, Any] = {}
  try:
    check_deployable(graph)
    backends["dory_model_eval"] = lambda: evaluate_dory(to_dory_model(graph)[0], graph, inputs)
  except DoryUnsupportedError as e:
    report["dory_model_eval"] = {"skipped": f"not deployable by DORY: {[p['layer'] for p in e.problems]}"}
  if host.find_compiler() is not None:
    backends["c"] = lambda: host.run_c(graph, inputs, c_dir)
  else:
    report["c"] = {"skipped": "gcc not found"}
  for name, fn in backends.items():
    t = time.perf_counter()
    got = fn()
    mismatches = int(sum(np.sum(got[k] != ref[k]) for k in graph.outputs))
    report[name] = {"bit_exact": mismatches == 0, "mismatches": mismatches,
                    "seconds": round(time.perf_counter() - t, 3)}
  report["examples"] = len(next(iter(inputs.values())))
  return report
