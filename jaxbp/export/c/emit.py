"""C99 emitter: an integer graph -> network.c/.h (weights as const arrays, packed sub-byte), the reference
kernels, a host `main.c` harness and a Makefile.

The generated `<prefix>_run(const int32_t *input, int32_t *output)` takes every graph input's integers
(HWC, concatenated in graph order), packs them into the network's buffers, runs the layers in order and
writes every graph output's integers (HWC, concatenated). Tiling and DMA for the target are the
deployment tiler's job; this build is the bit-exact host reference.
"""

from __future__ import annotations

import dataclasses
import pathlib
import re

import numpy as np

from jaxbp.export.c import kernels
from jaxbp.export.c.pack import pack, packed_size
from jaxbp.export.constraints import check_exportable
from jaxbp.integerize.graph import ACC_BITS, Graph, Node, TensorSpec
from jaxbp.integerize.ops import ADD_FIELDS, has_requant, window_fields


@dataclasses.dataclass(frozen=True)
class CExport:
  """Files of a C export and the I/O layout of `<prefix>_run`.

  Attributes:
    directory: where the files are.
    files: written file names.
    input_size, output_size: int32 values per example in / out.
    output_slices: {output tensor: (offset, shape)} within one example's output vector.
    weight_bytes: bytes of const parameter arrays (weights packed, int32 bias/k/λ/tables, norm_prelu's int32
      scale/alpha and int64 offset).
    activation_bytes: bytes of all activation buffers (no reuse).
  """

  directory: pathlib.Path
  files: tuple[str, ...]
  input_size: int
  output_size: int
  output_slices: dict[str, tuple[int, tuple[int, ...]]]
  weight_bytes: int
  activation_bytes: int


def ident(prefix: str) -> str:
  """`prefix` itself if it is a C identifier; raises ValueError otherwise."""
  if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", prefix):
    raise ValueError(f"prefix {prefix!r} is not a C identifier")
  return prefix


def c_int(v: int, ctype: str = "int32_t") -> str:
  """The C constant expression of integer `v` as `ctype`: int64_t values as INT64_C(|v|) (negated when
  v < 0: the macro takes an unsuffixed constant), INT32_MIN as `(-2147483647 - 1)` (a plain -2147483648 is a
  negated 64-bit constant)."""
  v = int(v)
  if ctype == "int64_t":
    if not -(1 << 63) < v < 1 << 63:
      raise ValueError(f"{v} does not fit int64_t (INT64_MIN excluded)")
    return f"INT64_C({v})" if v >= 0 else f"(-INT64_C({-v}))"
  return str(v) if v != -(1 << 31) else "(-2147483647 - 1)"


def array(ctype: str, name: str, values: np.ndarray, per_line: int = 16) -> str:
  """A `static const ctype name[n] = {...};` definition of the flattened integer `values` (each written by
  `c_int`; an empty array gets one 0)."""
  vals = [c_int(v, ctype) for v in np.asarray(values).ravel()]
  lines = [", ".join(vals[i:i + per_line]) for i in range(0, len(vals), per_line)] or ["0"]
  body = ",\n  ".join(lines)
  return f"static const {ctype} {name}[{max(len(vals), 1)}] = {{\n  {body}\n}};\n"


def _spatial(spec: TensorSpec) -> tuple[int, int]:
  """(H, W) of an activation: a 1-D (L, C) tensor is H = 1, W = L."""
  s = spec.shape[:-1]
  return (1, s[0]) if len(s) == 1 else (s[0], s[1]) if len(s) == 2 else (1, 1)


def c_comment(s: str) -> str:
  """`s` made safe inside a C block comment."""
  return s.replace("*/", "* /")


def emit(graph: Graph, directory: str | pathlib.Path, *, prefix: str = "net") -> CExport:
  """Writes kernels.h/.c, network.h/.c, main.c and a Makefile for `graph` into `directory`."""
  check_exportable(graph)
  prefix = ident(prefix)
  directory = pathlib.Path(directory)
  directory.mkdir(parents=True, exist_ok=True)
  tname = {name: f"t{i}" for i, name in enumerate(graph.tensors)}
  decls, params, body = [], [], []
  act_bytes = w_bytes = 0

  for name, spec in graph.tensors.items():
    n = int(np.prod(spec.shape))
    if spec.bits == ACC_BITS:
      decls.append(f"static int32_t {tname[name]}[{n}]; /* {c_comment(name)}: int32 {spec.shape} */")
      act_bytes += 4 * n
    else:
      size = packed_size(n, spec.bits)
      decls.append(f"static uint8_t {tname[name]}[{size}]; /* {c_comment(name)}: {spec.bits}-bit "
                   f"{'signed' if spec.signed else 'unsigned'} {spec.shape} */")
      act_bytes += size

  def qt(name: str, const: bool = True) -> str:
    s = graph.tensors[name]
    kind = "cqtensor_t" if const else "qtensor_t"
    return f"({kind}){{{tname[name]}, {s.bits}, {int(s.signed)}}}"

  in_off = 0
  for name in graph.inputs:
    n = int(np.prod(graph.tensors[name].shape))
    body.append(f"  q_pack(input + {in_off}, {n}, {qt(name, False)}); /* input {c_comment(name)} */")
    in_off += n

  for i, node in enumerate(graph.nodes):
    p = f"n{i}"
    out = graph.tensors[node.output]
    ins = [graph.tensors[t] for t in node.inputs]
    body.append(f"  /* {c_comment(node.name)}: {node.op} */")
    rq, rq_params, rq_bytes = requant_constants(node, out, p)
    params += rq_params
    w_bytes += rq_bytes
    body.append("  " + call(node, p, ins, out, qt, rq, params) + ";")
    for field in ("weight", "bias", "table"):
      if field in node.arrays:
        a = node.arrays[field]
        w_bytes += packed_size(a.size, node.attrs["w_bits"]) if field == "weight" else 4 * a.size

  out_off, slices = 0, {}
  for name in graph.outputs:
    n = int(np.prod(graph.tensors[name].shape))
    body.append(f"  q_unpack({qt(name)}, {n}, output + {out_off}); /* output {c_comment(name)} */")
    slices[name] = (out_off, graph.tensors[name].shape)
    out_off += n

  guard = f"{prefix.upper()}_NETWORK_H"
  header = (f"/* Integer network (generated by jaxbp.export.c; do not edit). */\n#ifndef {guard}\n#define {guard}\n\n"
            f"#include <stdint.h>\n\n"
            f"#define NET_INPUT_SIZE {in_off} /* int32 values per example: inputs {list(graph.inputs)}, HWC */\n"
            f"#define NET_OUTPUT_SIZE {out_off} /* int32 values per example: outputs {list(graph.outputs)} */\n"
            f"#define NET_RUN {prefix}_run\n\n"
            f"/* Runs one example: input (NET_INPUT_SIZE int32) -> output (NET_OUTPUT_SIZE int32). */\n"
            f"void {prefix}_run(const int32_t *input, int32_t *output);\n\n#endif\n")
  source = ("/* Integer network (generated by jaxbp.export.c; do not edit).\n"
            f" * {len(graph.nodes)} layers; parameters {w_bytes} bytes; activation buffers {act_bytes} bytes. */\n"
            "#include <stddef.h>\n\n#include \"kernels.h\"\n#include \"network.h\"\n\n"
            + "".join(params) + "\n" + "\n".join(decls) + "\n\n"
            + f"void {prefix}_run(const int32_t *input, int32_t *output) {{\n" + "\n".join(body) + "\n}\n")
  files = {"kernels.h": kernels.KERNELS_H, "kernels.c": kernels.KERNELS_C, "network.h": header,
           "network.c": source, "main.c": kernels.MAIN_C, "Makefile": kernels.MAKEFILE}
  for fname, text in files.items():
    (directory / fname).write_text(text)
  return CExport(directory, tuple(files), in_off, out_off, slices, w_bytes, act_bytes)


def requant_constants(node: Node, out: TensorSpec, p: str) -> tuple[str, list[str], int]:
  """The kernels' requant argument of a node: (C expression of its `requant_t *`, the constant definitions
  it needs, bytes of its per-channel int32 k/λ arrays). NULL for ops without a requant argument; a
  norm_prelu node gets its own `norm_prelu_t *` (int64 fields, int32 scale/alpha and int64 offset arrays)."""
  if node.op in ("maxpool", "pad_channels", "lut", "add"):
    return "NULL", [], 0
  if node.op == "norm_prelu":
    return norm_prelu_constants(node, out, p)
  if not has_requant(node, out):
    return f"&{p}_rq", [f"static const requant_t {p}_rq = {{NULL, NULL, 0, 0, 0, 0}};\n"], 0
  fields = [f for f in ("k", "lam") if f in node.arrays]
  consts = [array("int32_t", f"{p}_{f}", node.arrays[f]) for f in fields]
  k = f"{p}_k" if "k" in node.arrays else "NULL"
  lam = f"{p}_lam" if "lam" in node.arrays else "NULL"
  lo, hi = out.range
  consts.append(f"static const requant_t {p}_rq = {{{k}, {lam}, {node.attrs['d']}, {lo}, {hi}, 1}};\n")
  return f"&{p}_rq", consts, sum(4 * node.arrays[f].size for f in fields)


def add_params(node: Node) -> np.ndarray:
  """The add's nine int32 fields in `ops.ADD_FIELDS` order (the kernels' `prm` array)."""
  return np.array([node.attrs[f] for f in ADD_FIELDS], np.int32)


def norm_prelu_constants(node: Node, out: TensorSpec, p: str) -> tuple[str, list[str], int]:
  """(C expression of the node's `norm_prelu_t *`, its constant definitions, bytes of its per-channel arrays)."""
  at, ar = node.attrs, node.arrays
  consts = [array("int32_t", f"{p}_scale", ar["scale"]), array("int64_t", f"{p}_offset", ar["offset"]),
            array("int32_t", f"{p}_alpha", ar["alpha"])]
  lo, hi = out.range
  fields = (f"{p}_scale", f"{p}_offset", f"{p}_alpha", c_int(at["eps"], "int64_t"), at["s"], at["a"],
            at["alpha_shift"], at["d"], c_int(at["rnd"], "int64_t"), lo, hi)
  consts.append(f"static const norm_prelu_t {p}_np = {{{', '.join(map(str, fields))}}};\n")
  return f"&{p}_np", consts, 4 * ar["scale"].size + 8 * ar["offset"].size + 4 * ar["alpha"].size


def call(node: Node, p: str, ins: list[TensorSpec], out: TensorSpec, qt, rq: str, params: list[str]) -> str:
  """The reference-kernel call of one node, as C code without the `;`.

  `p` prefixes the node's const arrays (appended to `params`); `qt(name, const=True)` writes the
  (c)qtensor_t of a tensor; `rq` is the C expression of its `requant_t *` (or "NULL"; norm_prelu: its
  `norm_prelu_t *`, see `requant_constants`).
  """
  x, y = node.inputs[0], node.output
  op = node.op
  if op in ("conv", "linear"):
    w = node.arrays["weight"]
    params.append(array("uint8_t", f"{p}_w", pack(w, node.attrs["w_bits"])))
    bias = "NULL"
    if "bias" in node.arrays:
      params.append(array("int32_t", f"{p}_b", node.arrays["bias"]))
      bias = f"{p}_b"
    wt = f"(cqtensor_t){{{p}_w, {node.attrs['w_bits']}, 1}}"
    if op == "linear":
      return f"k_linear({qt(x)}, {ins[0].channels}, {wt}, {bias}, {rq}, {qt(y, False)}, {out.channels})"
    h, wd = _spatial(ins[0])
    ho, wo = _spatial(out)
    k = w.shape[1:-1]
    kh, kw = (1, k[0]) if len(k) == 1 else k
    stride = tuple(node.attrs["stride"])
    pads = tuple(tuple(q) for q in node.attrs["padding"])
    (sh, sw), (pt, pl) = ((1, stride[0]), (0, pads[0][0])) if len(k) == 1 else (stride, (pads[0][0], pads[1][0]))
    return (f"k_conv({qt(x)}, {h}, {wd}, {ins[0].channels}, {wt}, {kh}, {kw}, {node.attrs['groups']}, {sh}, {sw}, "
            f"{pt}, {pl}, {bias}, {rq}, {qt(y, False)}, {ho}, {wo}, {out.channels})")
  n_pos = int(np.prod(ins[0].shape[:-1]))
  if op == "add":
    lo, hi = out.range
    params.append(array("int32_t", f"{p}_add", add_params(node)))
    return f"k_add({qt(x)}, {qt(node.inputs[1])}, {int(np.prod(out.shape))}, {p}_add, {lo}, {hi}, {qt(y, False)})"
  if op == "mul":
    return f"k_mul({qt(x)}, {qt(node.inputs[1])}, {n_pos}, {out.channels}, {rq}, {qt(y, False)})"
  if op in ("maxpool", "avgpool"):
    nd = len(ins[0].shape) - 1
    kernel, stride, pads = window_fields(node, nd)
    if nd == 1:
      kernel, stride, pads = (1,) + kernel, (1,) + stride, ((0, 0),) + pads
    h, wd = _spatial(ins[0])
    ho, wo = _spatial(out)
    is_max = int(op == "maxpool")
    return (f"k_pool({qt(x)}, {h}, {wd}, {out.channels}, {kernel[0]}, {kernel[1]}, {stride[0]}, {stride[1]}, "
            f"{pads[0][0]}, {pads[1][0]}, {is_max}, {rq if not is_max else 'NULL'}, {qt(y, False)}, {ho}, {wo})")
  if op == "global_avgpool":
    return f"k_global_avgpool({qt(x)}, {n_pos}, {out.channels}, {rq}, {qt(y, False)})"
  if op == "affine":
    return f"k_affine({qt(x)}, {n_pos}, {out.channels}, {rq}, {qt(y, False)})"
  if op == "pad_channels":
    return (f"k_pad_channels({qt(x)}, {n_pos}, {ins[0].channels}, {node.attrs['front']}, {node.attrs['back']}, "
            f"{qt(y, False)})")
  if op == "lut":
    params.append(array("int32_t", f"{p}_table", node.arrays["table"]))
    return f"k_lut({qt(x)}, {int(np.prod(out.shape))}, {ins[0].range[0]}, {p}_table, {qt(y, False)})"
  if op == "upsample2":
    return f"k_upsample2({qt(x)}, {ins[0].shape[0]}, {ins[0].channels}, {rq}, {qt(y, False)})"
  if op == "concat":
    (la, ca), (lb, cb) = ins[0].shape, ins[1].shape
    return f"k_concat({qt(x)}, {la}, {ca}, {qt(node.inputs[1])}, {lb}, {cb}, {rq}, {qt(y, False)})"
  if op == "norm_prelu":
    return f"k_norm_prelu({qt(x)}, {ins[0].shape[0]}, {ins[0].channels}, {rq}, {qt(y, False)})"
  raise ValueError(f"layer {node.name!r}: no C kernel for op {op!r}")
