"""Export a model directory to C and/or ONNX, and check every backend bit-exactly against the interpreter.

  python tools/export.py MODEL_DIR --format c|onnx|both --out DIR [--check N] [--inputs FILE.npz]

MODEL_DIR is either an integer graph directory (`graph.json` + `graph.npz`, written by
`jaxbp.integerize.save`) or a quantized-model directory (`quant_model.json` + `variables.npz`, written by
`jaxbp.integerize.from_quant.save_quant_model`: a ResNet1d/UNet1d config, its quantization policy and the
twin's variables) or a rotation directory of `experiments/qat.py` (int8.msgpack, with the run's config.json one
level up); quantized models are integerized first (the graph is saved to DIR/graph).
Writes DIR/c/ (network.c/.h, kernels, main.c, Makefile), DIR/onnx/ (network_runtime.onnx,
network_dory.onnx, dory_config.json) and DIR/export.json. With --check N (default 8) it runs N random
integer inputs (range corners included) or the arrays of --inputs ({input name: (N, *shape) ints}) through
the interpreter, the C host build (gcc), onnxruntime and the DORY-graph evaluator; exit status 1 if any
backend differs.

Example (MobileNetV1-0.25, mixed precision):
  python tools/export.py --mobilenet 128 /tmp/mbv1 && python tools/export.py /tmp/mbv1 --out /tmp/mbv1_out
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import numpy as np

from jaxbp import integerize
from jaxbp.export.bundle import FORMATS, cross_check, export_graph, random_inputs
from jaxbp.integerize.graph import GraphError


def load_model_dir(path: pathlib.Path) -> integerize.Graph:
  """The integer graph of a model directory; a clear error for anything else."""
  if not path.is_dir():
    raise SystemExit(f"{path}: not a directory")
  if (path / "graph.json").is_file():
    return integerize.load(path)
  from jaxbp.integerize import from_quant  # pylint: disable=import-outside-toplevel
  if (path / "quant_model.json").is_file():
    return _integerize(from_quant.load_quant_model(path))
  if from_quant.is_qat_rotation(path):
    return _integerize(from_quant.load_qat_rotation(path))
  raise SystemExit(f"{path}: neither graph.json (an integer graph, see jaxbp.integerize.save), quant_model.json "
                   f"(a quantized model) nor int8.msgpack under a config.json (an experiments/qat.py rotation); "
                   f"found {sorted(p.name for p in path.iterdir())}")


def _integerize(loaded) -> integerize.Graph:
  from jaxbp.integerize import from_quant  # pylint: disable=import-outside-toplevel
  tw, variables, window, meta = loaded
  return from_quant.integerize_twin(tw, variables, window, meta=meta)


def main(argv: list[str] | None = None) -> int:
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("model_dir", type=pathlib.Path)
  ap.add_argument("--format", choices=FORMATS, default="both")
  ap.add_argument("--out", type=pathlib.Path, help="output directory (default MODEL_DIR/export)")
  ap.add_argument("--check", type=int, default=8, help="random examples for the cross-check (0: none)")
  ap.add_argument("--inputs", type=pathlib.Path, help=".npz of integer inputs for the cross-check")
  ap.add_argument("--prefix", default="net", help="C symbol prefix of the network function")
  ap.add_argument("--mobilenet", type=int, metavar="RESOLUTION",
                  help="instead of exporting: write a mixed-precision MobileNetV1-0.25 integer graph to MODEL_DIR")
  args = ap.parse_args(argv)

  if args.mobilenet:
    cfg = integerize.MobileNetConfig(resolution=args.mobilenet)
    from jaxbp.integerize.mobilenet import calibration_images  # pylint: disable=import-outside-toplevel
    graph = integerize.mobilenet_v1_graph(cfg, calibration_images(cfg, 8, seed=0))
    integerize.save(graph, args.model_dir)
    print(f"wrote {args.model_dir}: MobileNetV1-{cfg.width} at {cfg.resolution}px, {len(graph.nodes)} nodes")
    return 0

  try:
    graph = load_model_dir(args.model_dir)
  except GraphError as e:
    raise SystemExit(f"{args.model_dir}: cannot integerize/export: {e}") from e
  out = args.out or args.model_dir / "export"
  if not (args.model_dir / "graph.json").is_file():
    integerize.save(graph, out / "graph")
  summary = export_graph(graph, out, args.format, prefix=args.prefix)
  print(f"exported {len(graph.nodes)} nodes ({args.format}) to {out}")
  if args.inputs or args.check:
    if args.inputs:
      with np.load(args.inputs) as z:
        inputs = {k: z[k] for k in z.files}
    else:
      inputs = random_inputs(graph, args.check)
    report = cross_check(graph, inputs)
    summary["check"] = report
    (out / "export.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(report, indent=1))
    if not all(r.get("bit_exact", True) for r in report.values() if isinstance(r, dict)):
      print("MISMATCH: a backend differs from the integer interpreter", file=sys.stderr)
      return 1
  return 0


if __name__ == "__main__":
  sys.exit(main())
