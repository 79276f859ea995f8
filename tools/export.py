"""Export a model directory to C, ONNX and DORY, and check every backend bit-exactly against the interpreter.

  python tools/export.py MODEL_DIR --format c|onnx|dory|both --out DIR [--check N] [--inputs FILE.npz]
                         [--dory-app [--dory-dir DIR] [--dory-python PY] [--dory-optional auto|8bit|mixed-sw]]
  python tools/export.py OUT_DIR --mobilenet v1|v2 --width-mult W --resolution R --bits 8|4|mixed

MODEL_DIR is either an integer graph directory (`graph.json` + `graph.npz`, written by
`jaxbp.integerize.save`) or a quantized-model directory (`quant_model.json` + `variables.npz`, written by
`jaxbp.integerize.from_quant.save_quant_model`: a ResNet1d/UNet1d config, its quantization policy and the
twin's variables) or a rotation directory of `experiments/qat.py` (int8.msgpack, with the run's config.json one
level up); quantized models are integerized first (the graph is saved to DIR/graph).
Writes DIR/c/ (network.c/.h, kernels, main.c, Makefile), DIR/onnx/ (network_runtime.onnx, network_dory.onnx,
dory_config.json), DIR/dory/ (network.onnx, dory_config.json, input.txt, out_layer<i>.txt: what DORY compiles as
is; layers DORY has no kernel for are rewritten exactly or refused, naming layer and op) and DIR/export.json.
With --check N (default 8) it runs N random integer inputs (range corners included) or the arrays of --inputs
({input name: (N, *shape) ints}) through the interpreter, the C host build (gcc), onnxruntime and both
DORY-graph evaluators; exit status 1 if any backend differs. --dory-app then runs DORY's
`network_generate.py Quantlab PULP.GAP8` on DIR/dory (app and logs in DIR/dory_app) and writes
DIR/dory/dory_report.json (success, layers, kernel and L1/L2 tiles per layer; `jaxbp.export.dory.app`).

--mobilenet writes a random-weight integer MobileNet graph (`jaxbp.integerize.mobilenet`) to OUT_DIR instead.
Example (MobileNetV1-0.25-128, mixed precision, through DORY):
  python tools/export.py /tmp/mbv1 --mobilenet v1 --width-mult 0.25 --resolution 128 --bits mixed
  python tools/export.py /tmp/mbv1 --format dory --out /tmp/mbv1_out --dory-app
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import numpy as np

from jaxbp import integerize
from jaxbp.export.bundle import FORMATS, cross_check, export_graph, random_inputs
from jaxbp.export.dory.app import run_dory
from jaxbp.integerize.graph import GraphError
from jaxbp.integerize.mobilenet import BITS, MobileNetConfig, calibration_images, mobilenet_graph


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


def _write_mobilenet(args) -> int:
  version, resolution = args.mobilenet, args.resolution
  if version.isdigit():  # the former `--mobilenet RESOLUTION` (MobileNetV1-0.25, mixed precision)
    version, resolution = "v1", int(version)
  if version not in ("v1", "v2"):
    raise SystemExit(f"--mobilenet must be v1 or v2, got {args.mobilenet!r}")
  cfg = MobileNetConfig(width=args.width_mult, resolution=resolution, n_classes=args.classes, bits=args.bits,
                        version=version)
  try:
    graph = mobilenet_graph(cfg, calibration_images(cfg, 8, seed=0))
  except (GraphError, ValueError) as e:
    raise SystemExit(f"MobileNet{version.upper()}-{cfg.width}-{resolution} ({cfg.bits}): {e}") from e
  integerize.save(graph, args.model_dir)
  print(f"wrote {args.model_dir}: MobileNet{version.upper()}-{cfg.width} at {resolution}px, {cfg.bits}-bit, "
        f"{len(graph.nodes)} nodes")
  return 0


def main(argv: list[str] | None = None) -> int:
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("model_dir", type=pathlib.Path)
  ap.add_argument("--format", choices=FORMATS, default="both")
  ap.add_argument("--out", type=pathlib.Path, help="output directory (default MODEL_DIR/export)")
  ap.add_argument("--check", type=int, default=8, help="random examples for the cross-check (0: none)")
  ap.add_argument("--inputs", type=pathlib.Path, help=".npz of integer inputs for the cross-check")
  ap.add_argument("--prefix", default="net", help="C symbol prefix of the network function")
  ap.add_argument("--mobilenet", metavar="v1|v2", help="instead of exporting: write a random-weight integer "
                  "MobileNet graph to MODEL_DIR (a number is read as --resolution of a V1, the former usage)")
  ap.add_argument("--width-mult", type=float, default=0.25, help="MobileNet width multiplier")
  ap.add_argument("--resolution", type=int, default=128, help="MobileNet input resolution (pixels)")
  ap.add_argument("--bits", choices=BITS, default="mixed", help="MobileNet precision")
  ap.add_argument("--classes", type=int, default=1000, help="MobileNet classifier outputs")
  ap.add_argument("--dory-app", action="store_true", help="run DORY on DIR/dory and write DIR/dory/dory_report.json")
  ap.add_argument("--dory-dir", type=pathlib.Path, default=None, help="DORY checkout (default ../shared/dory "
                  "relative to the repository root)")
  ap.add_argument("--dory-python", default=None, help="Python that runs DORY (default: this one)")
  ap.add_argument("--dory-optional", choices=("auto", "8bit", "mixed-sw"), default=None,
                  help="DORY's kernel library (default: 8bit when every layer has an unsigned 8-bit PULP-NN kernel, "
                       "else mixed-sw)")
  args = ap.parse_args(argv)

  if args.mobilenet:
    return _write_mobilenet(args)
  try:
    graph = load_model_dir(args.model_dir)
  except GraphError as e:
    raise SystemExit(f"{args.model_dir}: cannot integerize/export: {e}") from e
  out = args.out or args.model_dir / "export"
  fmt = "dory" if args.dory_app and args.format not in ("dory", "both") else args.format
  try:
    summary = export_graph(graph, out, fmt, prefix=args.prefix)
  except GraphError as e:  # DoryUnsupportedError and the exporters' UnsupportedError: nothing written
    print(f"{args.model_dir}: cannot export ({fmt}): {e}", file=sys.stderr)
    return 2
  if not (args.model_dir / "graph.json").is_file():
    integerize.save(graph, out / "graph")
  print(f"exported {len(graph.nodes)} nodes ({fmt}) to {out}")
  if "refused" in summary.get("dory", {}):
    print(f"DORY: not deployable, no dory/ written: "
          f"{'; '.join(p['layer'] + ' (' + p['op'] + ')' for p in summary['dory']['refused'])}", file=sys.stderr)
  if args.dory_app and "directory" in summary.get("dory", {}):
    report = run_dory(out / "dory", out / "dory_app", dory_dir=args.dory_dir, python=args.dory_python,
                      optional=args.dory_optional)
    (out / "dory" / "dory_report.json").write_text(json.dumps(report, indent=1))
    summary["dory"]["app"] = {k: report[k] for k in ("success", "n_layers", "optional", "seconds")}
    (out / "export.json").write_text(json.dumps(summary, indent=1))
    print(f"DORY ({report['optional']}): {'Done!' if report['success'] else 'FAILED'}, {report['n_layers']} layers, "
          f"{report['seconds']} s; report in {out / 'dory' / 'dory_report.json'}")
    if not report["success"]:
      print(report.get("error", ""), file=sys.stderr)
      return 1
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
