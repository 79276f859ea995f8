"""Build and run an exported network on the host (gcc), to check it against the integer interpreter."""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import tempfile
from collections.abc import Mapping

import numpy as np

from jaxbp.export.c.emit import CExport, emit
from jaxbp.integerize.graph import Graph, GraphError
from jaxbp.integerize.interpreter import check_input

CFLAGS = ("-O2", "-Wall", "-Werror", "-std=c99")


def find_compiler(cc: str = "gcc") -> str | None:
  """Path of the C compiler, or None if it is not installed."""
  return shutil.which(cc)


def build(directory: str | pathlib.Path, *, cc: str = "gcc", flags: tuple[str, ...] = CFLAGS) -> pathlib.Path:
  """Compiles main.c + network.c + kernels.c in `directory` into `directory/main`; errors show gcc's output."""
  directory = pathlib.Path(directory).resolve()
  path = find_compiler(cc)
  if path is None:
    raise RuntimeError(f"C compiler {cc!r} not found on PATH")
  exe = directory / "main"
  cmd = [path, *flags, "-o", str(exe), "main.c", "network.c", "kernels.c"]
  res = subprocess.run(cmd, cwd=directory, capture_output=True, text=True, check=False)
  if res.returncode:
    raise RuntimeError(f"{' '.join(cmd)} failed in {directory}:\n{res.stdout}{res.stderr}")
  return exe


def run_exe(exe: str | pathlib.Path, inputs: np.ndarray, output_size: int) -> np.ndarray:
  """Runs the harness on int32 inputs (N, input_size); returns int32 (N, output_size)."""
  exe = pathlib.Path(exe)
  inputs = np.ascontiguousarray(inputs, np.int32)
  with tempfile.TemporaryDirectory() as tmp:
    fin, fout = pathlib.Path(tmp, "in.bin"), pathlib.Path(tmp, "out.bin")
    inputs.tofile(fin)
    res = subprocess.run([str(exe), str(fin), str(fout)], capture_output=True, text=True, check=False)
    if res.returncode:
      raise RuntimeError(f"{exe} failed ({res.returncode}): {res.stderr}")
    return np.fromfile(fout, np.int32).reshape(len(inputs), output_size)


def flatten_inputs(graph: Graph, inputs: np.ndarray | Mapping[str, np.ndarray]) -> np.ndarray:
  """(N, input_size) int32: every graph input checked and flattened HWC, concatenated in graph order."""
  if not isinstance(inputs, Mapping):
    if len(graph.inputs) != 1:
      raise GraphError(f"graph has inputs {list(graph.inputs)}; pass a dict {{name: array}}")
    inputs = {graph.inputs[0]: inputs}
  arrays = [check_input(n, graph.tensors[n], inputs[n]) for n in graph.inputs]
  return np.concatenate([a.reshape(len(a), -1) for a in arrays], axis=1).astype(np.int32)


def split_outputs(export: CExport, flat: np.ndarray) -> dict[str, np.ndarray]:
  """{output tensor: (N, *shape) int64} from the harness's (N, output_size)."""
  out = {}
  for name, (off, shape) in export.output_slices.items():
    n = int(np.prod(shape))
    out[name] = flat[:, off:off + n].reshape((len(flat),) + tuple(shape)).astype(np.int64)
  return out


def run_c(graph: Graph, inputs: np.ndarray | Mapping[str, np.ndarray], directory: str | pathlib.Path | None = None,
          *, cc: str = "gcc") -> dict[str, np.ndarray]:
  """Emits, compiles (gcc -O2 -Wall -Werror -std=c99) and runs `graph` on the host: {output: (N, *shape)}."""
  flat = flatten_inputs(graph, inputs)
  with tempfile.TemporaryDirectory() as tmp:
    export = emit(graph, directory or tmp)
    exe = build(export.directory, cc=cc)
    return split_outputs(export, run_exe(exe, flat, export.output_size))
