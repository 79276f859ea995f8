"""The directory DORY reads (ONNX, config, checksum data) and a runner that reports what DORY generated.

  DIR/network.onnx, DIR/dory_config.json     `model.to_dory_model`
  DIR/input.txt                              the input example, channels-last, one integer per line (two's
                                             complement bytes: DORY reads it as uint8)
  DIR/out_layer<i>.txt                       output of DORY layer i (= node i of the lowered graph), channels-last,
                                             computed by jaxbp's interpreter: DORY's checksums are jaxbp's numbers

`run_dory` runs `network_generate.py Quantlab PULP.GAP8 DIR/dory_config.json --app_dir OUT/app` in OUT (DORY writes
logs/ relative to its working directory) and returns a report (written as DIR/dory_report.json by the CLI):

  {"success": bool (exit 0 and "Done!" printed), "returncode", "command", "optional", "seconds",
   "n_layers": DORY's layer count, "error": last lines of DORY's output when it failed,
   "layers": [{"index", "dory_name" (e.g. "BNReluConvolution3"), "jaxbp_node" (node of the lowered graph), "op"
     (DORY's op type), "kernel" (the PULP-NN function the generated layer calls), "input" [C, H, W], "output"
     [C, H, W], "weights" [Cout, Cin] | null, "l2_tile" / "l1_tile": {"input" [C, H, W], "output" [C, H, W],
     "weights" [Cout, Cin] | null}}]}

Tiles come from DORY's `logs/HW_related/json_files/06_DORY_HW_tiled_graph.json`; the kernel from the generated
`src/<layer>.c`.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys
import time
from typing import Any

import numpy as np
import onnx

from jaxbp.export.dory.model import to_dory_model
from jaxbp.integerize.graph import Graph
from jaxbp.integerize.interpreter import run

TARGET = "PULP.GAP8"
TILED_GRAPH = pathlib.Path("logs/HW_related/json_files/06_DORY_HW_tiled_graph.json")


def default_dory_dir() -> pathlib.Path:
  """`../shared/dory` relative to the repository root (where CI puts DORY next to the clone)."""
  return pathlib.Path(__file__).resolve().parents[3].parent / "shared" / "dory"


def write_dory_dir(graph: Graph, directory: str | pathlib.Path, example: np.ndarray | None = None, *, seed: int = 0
                   ) -> dict[str, Any]:
  """Writes the DORY directory for `graph` (refusing, before writing anything, what DORY cannot deploy).

  `example`: one integer input (*shape) for the checksums; default a random one (seeded). Returns the config.
  """
  model, config, lowered = to_dory_model(graph)
  spec = lowered.tensors[lowered.inputs[0]]
  if example is None:
    lo, hi = spec.range
    example = np.random.default_rng(seed).integers(lo, hi + 1, spec.shape)
  env = run(lowered, np.asarray(example)[None], keep_all=True)
  directory = pathlib.Path(directory)
  directory.mkdir(parents=True, exist_ok=True)
  onnx.save(model, directory / config["onnx_file"])
  (directory / "dory_config.json").write_text(json.dumps(config, indent=1))
  _write_txt(directory / "input.txt", env[lowered.inputs[0]][0] & 0xFF)
  for i, node in enumerate(lowered.nodes):
    _write_txt(directory / f"out_layer{i}.txt", env[node.output][0])
  return config


def _write_txt(path: pathlib.Path, values: np.ndarray) -> None:
  path.write_text("\n".join(str(int(v)) for v in np.asarray(values).reshape(-1)) + "\n")


def choose_optional(config: dict[str, Any]) -> str:
  """DORY's kernel library: "8bit" (PULP-NN) only for unsigned 8-bit activations with 8-bit weights and no add
  (PULP-NN's 8-bit add has no per-input offsets); "mixed-sw" (PULP-NN-mixed, XpulpV2) otherwise."""
  mixed = config["input_signed"] or config["input_bits"] != 8
  for layer in config["layers"]:
    out_bits = layer["out_bits"] if layer["out_bits"] != 32 else 8
    mixed |= layer["op"] == "add" or out_bits != 8 or layer["out_signed"] and layer["out_bits"] != 32
    mixed |= any(layer["in_signed"]) or any(b != 8 for b in layer["in_bits"]) or layer.get("weight_bits", 8) != 8
  return "mixed-sw" if mixed else "8bit"


def run_dory(directory: str | pathlib.Path, out: str | pathlib.Path, *, dory_dir: str | pathlib.Path | None = None,
             python: str | None = None, optional: str | None = None, timeout: float = 600) -> dict[str, Any]:
  """Runs DORY on a `write_dory_dir` directory; DORY's logs and the app go to `out`. Returns the report."""
  directory, out = pathlib.Path(directory).resolve(), pathlib.Path(out).resolve()
  dory_dir = pathlib.Path(dory_dir or default_dory_dir()).resolve()
  script = dory_dir / "network_generate.py"
  if not script.is_file():
    raise FileNotFoundError(f"{script}: DORY not found (give --dory-dir, the folder holding network_generate.py)")
  config = json.loads((directory / "dory_config.json").read_text())
  optional = optional or choose_optional(config)
  out.mkdir(parents=True, exist_ok=True)
  cmd = [python or sys.executable, str(script), "Quantlab", TARGET, str(directory / "dory_config.json"),
         "--app_dir", str(out / "app"), "--optional", optional]
  env = {**os.environ, "PYTHONPATH": str(dory_dir) + os.pathsep + os.environ.get("PYTHONPATH", "")}
  t = time.perf_counter()
  proc = subprocess.run(cmd, cwd=out, env=env, capture_output=True, text=True, timeout=timeout, check=False)
  text = proc.stdout + proc.stderr
  (out / "dory_stdout.txt").write_text(text)
  report: dict[str, Any] = {"success": proc.returncode == 0 and "Done!" in proc.stdout,
                            "returncode": proc.returncode, "command": cmd, "optional": optional,
                            "seconds": round(time.perf_counter() - t, 2)}
  if not report["success"]:
    report["error"] = "\n".join(text.strip().splitlines()[-15:])
  tiled = out / TILED_GRAPH
  report["layers"] = _layers(tiled, out / "app" / "src", config) if tiled.is_file() else []
  report["n_layers"] = len(report["layers"])
  return report


def _dims(tiling: dict[str, Any] | None) -> dict[str, Any] | None:
  if not tiling:
    return None
  return {"input": tiling.get("input_dimensions"), "output": tiling.get("output_dimensions"),
          "weights": tiling.get("weights_dimensions")}


def _layers(tiled: pathlib.Path, src: pathlib.Path, config: dict[str, Any]) -> list[dict[str, Any]]:
  doc = json.loads(tiled.read_text())
  nodes = doc["graph"] if isinstance(doc, dict) else doc
  jaxbp_nodes = [layer["name"] for layer in config["layers"]]
  out = []
  for i, node in enumerate(nodes):
    params = {**node.get("DORY_node_parameters", {}), **node.get("Layer_node_parameters", {})}
    tiles = node.get("Tiling_parameters", {})
    name = node.get("name", "")
    prefixed = f"{name}{i}"
    kernel = _kernel(src / f"{prefixed}.c") or _kernel(src / f"{prefixed}_L2.c") or _kernel(src / f"{name}.c")
    out.append({
        "index": i, "dory_name": prefixed, "jaxbp_node": jaxbp_nodes[i] if i < len(jaxbp_nodes) else None,
        "op": params.get("op_type", name), "kernel": kernel,
        "input": [params.get("input_channels")] + list(params.get("input_dimensions") or []),
        "output": [params.get("output_channels")] + list(params.get("output_dimensions") or []),
        "weights": (tiles.get("L3") or {}).get("weights_dimensions"),
        "l2_tile": _dims(tiles.get("L2")), "l1_tile": _dims(tiles.get("L1")),
        "bits": {"input": params.get("input_activation_bits"), "output": params.get("output_activation_bits"),
                 "weights": params.get("weight_bits")},
    })
  return out


_CALL = re.compile(r"\b(x?pulp_nn_[A-Za-z0-9_]+)\s*\(")


def _kernel(path: pathlib.Path) -> str | None:
  if not path.is_file():
    return None
  calls = [c for c in _CALL.findall(path.read_text()) if not c.startswith("pulp_nn_utils")]
  return calls[-1] if calls else None
