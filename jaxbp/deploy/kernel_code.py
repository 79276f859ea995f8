"""Inner-loop cycles per MAC read from the PULP-NN-mixed kernel sources (XpulpV2, XpulpNN, XpulpNN-mixed).

For a conv (b_in, b_w) on an ISA, the source tells which kernel DORY calls, which im2col helper it uses (a copy,
or a software unpack of sub-byte activations, e.g. `pulp_nn_im2col_u4_to_u8`) and which 4x2 matmul it calls; the
matmul's main loop (`for (j ...)` over the reduction) holds everything that runs per inner iteration. Counting
its instructions gives the cycles per MAC of the inner loop, at one instruction per cycle (L1 is single-cycle;
the cores have hardware loops and post-increment loads):

- a SIMD dot product (`SumDotp4/8/16`, the XpulpNN MAC&LOAD `MacLoad4/8/16`): 1 cycle, 4/8/16 MACs;
- an explicit 32-bit load (`*((v4u*)pB)`): 1; `MacLoadInit` (a load into the NN register file): 1;
  `MacLoadAssign` (a pointer into it): 1; `MacLoadUpdate`: 0 (the MAC&LOAD post-increments in hardware);
- a software unpack helper (`pulp_nn_i4_to_i8`, ... in `pulp_nn_utils.h`): its word load, `bitext` per element,
  2 per `pack` of 4 bytes (pv.packlo + pv.packhi), 1 per stored word; where the loop then reads the unpacked
  words with `SumDotp` (XpulpV2) they are loaded back (the helper stores to the stack behind a memory fence);
- pointer increments, loop control: 0 (post-increment addressing, hardware loops).

`derive(root)` reads the sources (`shared/dory/dory/Hardware_targets/PULP/Backend_Kernels/pulp-nn-mixed`);
`CONV_INNER` is its result for the 9 (b_in, b_w) pairs on the 3 ISAs (`LINEAR_INNER`, from `derive_linear`, the
same for the quantized linear kernels), kept here so the simulator needs no
sources at run time (a test re-derives it when the sources are present). Requantization, the 1x2 leftover path
and the scalar tail are not part of this table (the cycle model keeps the doc's figures for them).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

ISA_DIRS = {"xpulpv2": "XpulpV2", "xpulpnn-v1": "XpulpNN", "xpulpnn-v2": "XpulpNN-mixed"}
PREFIX = {"xpulpv2": "pulp_nn_conv", "xpulpnn-v1": "xpulp_nn_conv", "xpulpnn-v2": "xpulp_nn_mix_conv"}
PAIRS = tuple((a, w) for a in (8, 4, 2) for w in (8, 4, 2))


@dataclasses.dataclass(frozen=True)
class InnerLoop:
  """What the code says for one conv (b_in, b_w) on one ISA.

  Attributes:
    conv_file, matmul: the conv kernel's source file and the matmul function it calls.
    im2col: the im2col helper ("" = a byte copy), act_bits: activation width in the im2col buffer.
    im2col_cycles_per_elem: cycles per activation element of the unpacking helper (0 for a copy).
    im2col_block: elements one block of the im2col helper's main loop handles (the rest: a byte-wise leftover loop).
    instr, macs: instructions and MACs of one iteration of the matmul's main loop (4 channels x 2 pixels).
    unpack_instr: of `instr`, those spent unpacking weights in software; mac_load: of `instr`, the XpulpNN
      MAC&LOAD-family instructions (MacLoad*, MacLoadInit, MacLoadAssign).
  """

  conv_file: str
  matmul: str
  im2col: str
  act_bits: int
  im2col_cycles_per_elem: float
  im2col_block: int
  instr: int
  macs: int
  unpack_instr: int
  mac_load: int

  @property
  def elems(self) -> int:
    """Reduction elements per iteration (the loop computes 4 channels x 2 pixels)."""
    return self.macs // 8

  @property
  def cycles_per_mac(self) -> float:
    return self.instr / self.macs


def _body(text: str, start: int) -> str:
  """The brace-delimited block starting at the first '{' after `start`."""
  i = text.index("{", start)
  depth = 0
  for m in re.compile(r"[{}]").finditer(text, i):
    depth += 1 if m.group() == "{" else -1
    if depth == 0:
      return text[i + 1:m.start()]
  raise ValueError("unbalanced braces")


def _function(text: str, name: str) -> str:
  m = re.search(rf"\b{re.escape(name)}\s*\([^;{{]*\)\s*\{{", text)
  if m is None:
    raise ValueError(f"no definition of {name}")
  return _body(text, m.start())


def _helper_cost(utils: str, name: str) -> tuple[int, int]:
  """(instructions, stored words) of an inline unpack helper (pulp_nn_i4_to_i8 and the like)."""
  body = _function(utils, name)
  loads = len(re.findall(r"=\s*\*\(\(v4[us]\s*\*\)\s*pSrc\)", body))
  ext = len(re.findall(r"\bbitextu?\(", body)) + len(re.findall(r"\bbitins\(", body))
  packs = len(re.findall(r"\bpack\(", body))
  stores = len(re.findall(r"\*\(\(v4[us]\s*\*\)\s*pDst\)\s*=", body))
  return loads + ext + 2 * packs + stores, stores


def _im2col_cost(utils: str, name: str) -> tuple[float, int]:
  """Cycles per element of a noinline im2col helper (main block loop; leftovers not included): its inline
  unpack helper, or its word copies (a load and a store each), over the elements of one block."""
  body = _function(utils, name)
  shift = int(re.search(r"blockSize\s*>>\s*(\d+)", body).group(1))
  inner = re.search(r"(pulp_nn_[iu]\d_to_[iu]\d)\s*\(", body)
  if inner:
    instr = _helper_cost(utils, inner.group(1))[0]
  else:
    instr = 2 * len(re.findall(r"\*\(\(v4[us]\s*\*\)\s*pOutput\)\s*=\s*\*\(\(v4[us]\s*\*\)\s*pInput\)", body))
  return instr / 2 ** shift, 2 ** shift


def _loop_counts(matmul_src: str, utils: str, bound: str = "num_col_im2col") -> tuple[int, int, int, int]:
  """(instructions, MACs, unpack instructions, MAC&LOAD-family instructions) of the first reduction loop (over
  `bound`) of a matmul or linear source."""
  m = re.search(rf"for\s*\(\s*int\s+j\s*=\s*0\s*;\s*j\s*<\s*\(\s*{bound}", matmul_src)
  body = _body(matmul_src, m.start())
  macs = instr = 0
  for lanes in re.findall(r"\bSumDotps?(4|8|16)\s*\(", body) + re.findall(r"\bMacLoads?(4|8|16)\s*\(", body):
    macs += int(lanes)
    instr += 1
  mac_load = len(re.findall(r"\bMacLoads?(?:4|8|16)\s*\(", body))
  mac_load += len(re.findall(r"\bMacLoadInit\s*\(", body)) + len(re.findall(r"\bMacLoadAssign\s*\(", body))
  instr += len(re.findall(r"\bMacLoadInit\s*\(", body)) + len(re.findall(r"\bMacLoadAssign\s*\(", body))
  instr += len(re.findall(r"=\s*\*\(\(v4[us]\s*\*\)", body))
  instr += len(re.findall(r"\bbitextu?\s*\(", body))
  instr += len(re.findall(r"asm\s+volatile\s*\(\s*\"nop;?\"", body))  # padding the hardware loop.
  reload = "SumDotp" in body
  unpack = 0
  for name in re.findall(r"\b(pulp_nn_[iu]\d_to_[iu]\d)\s*\(", body):
    cost, stores = _helper_cost(utils, name)
    unpack += cost + (stores if reload else 0)
  return instr + unpack, macs, unpack, mac_load


def derive(root: str | Path) -> dict[tuple[str, int, int], InnerLoop]:
  """{(isa, b_in, b_w): InnerLoop} for conv kernels with an unsigned input, 8-bit unsigned output and signed
  weights, read from the pulp-nn-mixed tree at `root`."""
  root = Path(root)
  out = {}
  for isa, d in ISA_DIRS.items():
    base = root / d / "32bit"
    utils = (base / "include" / "pulp_nn_utils.h").read_text()
    for a, w in PAIRS:
      conv = base / "src" / "Convolution" / f"{PREFIX[isa]}_u{a}_u8_i{w}.c"
      src = conv.read_text()
      mm = re.search(r"\b(x?pulp_nn_(?:mix_)?matmul_\w+?)\s*\(", src).group(1)
      helper = re.search(r"\b(x?pulp_nn_im2col_([iu])(\d)_to_[iu](\d))\s*\(", src)
      if helper:
        name, act_bits = helper.group(1), int(helper.group(4))
        cost, block = _im2col_cost(utils, name)
      else:
        raise ValueError(f"{conv}: no im2col helper call found")
      mm_file = base / "src" / "MatrixMultiplication" / f"{mm}.c"
      instr, macs, unpack, mac_load = _loop_counts(mm_file.read_text(), utils)
      out[(isa, a, w)] = InnerLoop(str(conv.relative_to(root)), mm, name, act_bits, cost, block, instr, macs, unpack,
                                   mac_load)
  return out


LINEAR_DIRS = {"xpulpv2": ("XpulpV2", "pulp_nn_linear"), "xpulpnn-v1": ("XpulpNN", "xpulp_nn_linear"),
               "xpulpnn-v2": ("XpulpNN", "xpulp_nn_linear")}  # XpulpNN-mixed ships no linear kernels.


def derive_linear(root: str | Path) -> dict[tuple[str, int, int], InnerLoop]:
  """{(isa, b_in, b_w): InnerLoop} of the quantized linear kernels (`LinearQuant`, 8-bit unsigned output): the
  loop over the input vector (XpulpV2: 2 output neurons per pass; XpulpNN: 1). XpulpNN-mixed has no linear
  kernels in pulp-nn-mixed: its entries are XpulpNN's."""
  root = Path(root)
  out = {}
  for isa, (d, prefix) in LINEAR_DIRS.items():
    base = root / d / "32bit"
    utils = (base / "include" / "pulp_nn_utils.h").read_text()
    for a, w in PAIRS:
      f = base / "src" / "LinearQuant" / f"{prefix}_u{a}_u8_i{w}.c"
      instr, macs, unpack, mac_load = _loop_counts(f.read_text(), utils, "dim_vec")
      out[(isa, a, w)] = InnerLoop(str(f.relative_to(root)), "", "", a, 0.0, 1, instr, macs, unpack, mac_load)
  return out


def default_root() -> Path:
  """`shared/dory/.../pulp-nn-mixed` next to the repository (where CI puts shared/)."""
  return (Path(__file__).resolve().parents[3] / "shared" / "dory" / "dory" / "Hardware_targets" / "PULP"
          / "Backend_Kernels" / "pulp-nn-mixed")


def table(loops: dict[tuple[str, int, int], InnerLoop], pairs=PAIRS) -> str:
  """Markdown table of the inner loops."""
  lines = ["| ISA | b_in/b_w | inner loop: instr / MACs | cycles/MAC (1 core) | of which unpack | im2col | "
           "im2col cycles/elem | matmul | conv kernel file |", "|---|---|---|---|---|---|---|---|---|"]
  for (isa, a, w), l in loops.items():
    if (a, w) not in pairs:
      continue
    lines.append(f"| {isa} | {a}/{w} | {l.instr} / {l.macs} | {l.cycles_per_mac:.3f} | {l.unpack_instr} | "
                 f"{l.im2col or 'copy'} | {l.im2col_cycles_per_elem:.3g} | {l.matmul} | {l.conv_file} |")
  return "\n".join(lines)


def literal(loops: dict[tuple[str, int, int], InnerLoop], name: str = "CONV_INNER") -> str:
  """`loops` as the Python literal of `CONV_INNER` / `LINEAR_INNER` (to refresh it after a kernel update)."""
  rows = []
  for k, v in loops.items():
    t = dataclasses.astuple(v)
    rows.append(f"    {k!r}: InnerLoop(\n        {t[0]!r},\n        "
                + ", ".join(repr(x) for x in t[1:]) + "),")
  return f"{name} = {{\n" + "\n".join(rows) + "\n}"


# Derived by derive(default_root()) from pulp-nn-mixed (commit 46d966d, shared/dory/PROVENANCE.md); regenerate:
#   python -c 'from jaxbp.deploy import kernel_code as k; print(k.literal(k.derive(k.default_root())))'
CONV_INNER = {
    ('xpulpv2', 8, 8): InnerLoop(
        'XpulpV2/32bit/src/Convolution/pulp_nn_conv_u8_u8_i8.c',
        'pulp_nn_matmul_u8_u8_i8', 'pulp_nn_im2col_u8_to_u8', 8, 0.5, 4, 14, 32, 0, 0),
    ('xpulpv2', 8, 4): InnerLoop(
        'XpulpV2/32bit/src/Convolution/pulp_nn_conv_u8_u8_i4.c',
        'pulp_nn_matmul_u8_u8_i4', 'pulp_nn_im2col_u8_to_u8', 8, 0.5, 4, 88, 64, 68, 0),
    ('xpulpv2', 8, 2): InnerLoop(
        'XpulpV2/32bit/src/Convolution/pulp_nn_conv_u8_u8_i2.c',
        'pulp_nn_matmul_u8_u8_i2', 'pulp_nn_im2col_u8_to_u8', 8, 0.5, 4, 172, 128, 132, 0),
    ('xpulpv2', 4, 8): InnerLoop(
        'XpulpV2/32bit/src/Convolution/pulp_nn_conv_u4_u8_i8.c',
        'pulp_nn_matmul_u8_u8_i8', 'pulp_nn_im2col_u4_to_u8', 8, 1.875, 8, 14, 32, 0, 0),
    ('xpulpv2', 4, 4): InnerLoop(
        'XpulpV2/32bit/src/Convolution/pulp_nn_conv_u4_u8_i4.c',
        'pulp_nn_matmul_u8_u8_i4', 'pulp_nn_im2col_u4_to_u8', 8, 1.875, 8, 88, 64, 68, 0),
    ('xpulpv2', 4, 2): InnerLoop(
        'XpulpV2/32bit/src/Convolution/pulp_nn_conv_u4_u8_i2.c',
        'pulp_nn_matmul_u8_u8_i2', 'pulp_nn_im2col_u4_to_u8', 8, 1.875, 8, 172, 128, 132, 0),
    ('xpulpv2', 2, 8): InnerLoop(
        'XpulpV2/32bit/src/Convolution/pulp_nn_conv_u2_u8_i8.c',
        'pulp_nn_matmul_u8_u8_i8', 'pulp_nn_im2col_u2_to_u8', 8, 1.8125, 16, 14, 32, 0, 0),
    ('xpulpv2', 2, 4): InnerLoop(
        'XpulpV2/32bit/src/Convolution/pulp_nn_conv_u2_u8_i4.c',
        'pulp_nn_matmul_u8_u8_i4', 'pulp_nn_im2col_u2_to_u8', 8, 1.8125, 16, 88, 64, 68, 0),
    ('xpulpv2', 2, 2): InnerLoop(
        'XpulpV2/32bit/src/Convolution/pulp_nn_conv_u2_u8_i2.c',
        'pulp_nn_matmul_u8_u8_i2', 'pulp_nn_im2col_u2_to_u8', 8, 1.8125, 16, 172, 128, 132, 0),
    ('xpulpnn-v1', 8, 8): InnerLoop(
        'XpulpNN/32bit/src/Convolution/xpulp_nn_conv_u8_u8_i8.c',
        'xpulp_nn_matmul_u8_u8_i8', 'xpulp_nn_im2col_u8_to_u8', 8, 0.5, 4, 9, 32, 0, 9),
    ('xpulpnn-v1', 8, 4): InnerLoop(
        'XpulpNN/32bit/src/Convolution/xpulp_nn_conv_u8_u8_i4.c',
        'xpulp_nn_matmul_u8_u8_i4', 'xpulp_nn_im2col_u8_to_u8', 8, 0.5, 4, 82, 64, 60, 22),
    ('xpulpnn-v1', 8, 2): InnerLoop(
        'XpulpNN/32bit/src/Convolution/xpulp_nn_conv_u8_u8_i2.c',
        'xpulp_nn_matmul_u8_u8_i2', 'xpulp_nn_im2col_u8_to_u8', 8, 0.5, 4, 156, 128, 116, 40),
    ('xpulpnn-v1', 4, 8): InnerLoop(
        'XpulpNN/32bit/src/Convolution/xpulp_nn_conv_u4_u8_i8.c',
        'xpulp_nn_matmul_u4_u8_i8', 'xpulp_nn_im2col_u4_to_u8', 8, 1.875, 8, 9, 32, 0, 9),
    ('xpulpnn-v1', 4, 4): InnerLoop(
        'XpulpNN/32bit/src/Convolution/xpulp_nn_conv_u4_u8_i4.c',
        'xpulp_nn_matmul_u4_u8_i4', 'xpulp_nn_im2col_u4_to_u4', 4, 0.25, 8, 9, 64, 0, 9),
    ('xpulpnn-v1', 4, 2): InnerLoop(
        'XpulpNN/32bit/src/Convolution/xpulp_nn_conv_u4_u8_i2.c',
        'xpulp_nn_matmul_u4_u8_i2', 'xpulp_nn_im2col_u4_to_u4', 4, 0.25, 8, 146, 128, 124, 22),
    ('xpulpnn-v1', 2, 8): InnerLoop(
        'XpulpNN/32bit/src/Convolution/xpulp_nn_conv_u2_u8_i8.c',
        'xpulp_nn_matmul_u2_u8_i8', 'xpulp_nn_im2col_u2_to_u8', 8, 1.8125, 16, 9, 32, 0, 9),
    ('xpulpnn-v1', 2, 4): InnerLoop(
        'XpulpNN/32bit/src/Convolution/xpulp_nn_conv_u2_u8_i4.c',
        'xpulp_nn_matmul_u2_u8_i4', 'xpulp_nn_im2col_u2_to_u4', 4, 1.9375, 16, 9, 64, 0, 9),
    ('xpulpnn-v1', 2, 2): InnerLoop(
        'XpulpNN/32bit/src/Convolution/xpulp_nn_conv_u2_u8_i2.c',
        'xpulp_nn_matmul_u2_u8_i2', 'xpulp_nn_im2col_u2_to_u2', 2, 0.125, 16, 9, 128, 0, 9),
    ('xpulpnn-v2', 8, 8): InnerLoop(
        'XpulpNN-mixed/32bit/src/Convolution/xpulp_nn_mix_conv_u8_u8_i8.c',
        'xpulp_nn_mix_matmul_u8_u8_i8', 'xpulp_nn_im2col_i8_to_i8', 8, 0.5, 4, 9, 32, 0, 9),
    ('xpulpnn-v2', 8, 4): InnerLoop(
        'XpulpNN-mixed/32bit/src/Convolution/xpulp_nn_mix_conv_u8_u8_i4.c',
        'xpulp_nn_mix_matmul_u8_u8_i4', 'xpulp_nn_im2col_i8_to_i8', 8, 0.5, 4, 17, 64, 0, 17),
    ('xpulpnn-v2', 8, 2): InnerLoop(
        'XpulpNN-mixed/32bit/src/Convolution/xpulp_nn_mix_conv_u8_u8_i2.c',
        'xpulp_nn_mix_matmul_u8_u8_i2', 'xpulp_nn_im2col_i8_to_i8', 8, 0.5, 4, 33, 128, 0, 33),
    ('xpulpnn-v2', 4, 8): InnerLoop(
        'XpulpNN-mixed/32bit/src/Convolution/xpulp_nn_mix_conv_u4_u8_i8.c',
        'xpulp_nn_mix_matmul_u4_u8_i8', 'xpulp_nn_im2col_i4_to_i8', 8, 1.875, 8, 9, 32, 0, 9),
    ('xpulpnn-v2', 4, 4): InnerLoop(
        'XpulpNN-mixed/32bit/src/Convolution/xpulp_nn_mix_conv_u4_u8_i4.c',
        'xpulp_nn_mix_matmul_u4_u8_i4', 'xpulp_nn_im2col_i4_to_i4', 4, 0.25, 8, 9, 64, 0, 9),
    ('xpulpnn-v2', 4, 2): InnerLoop(
        'XpulpNN-mixed/32bit/src/Convolution/xpulp_nn_mix_conv_u4_u8_i2.c',
        'xpulp_nn_mix_matmul_u4_u8_i2', 'xpulp_nn_im2col_i4_to_i4', 4, 0.25, 8, 17, 128, 0, 17),
    ('xpulpnn-v2', 2, 8): InnerLoop(
        'XpulpNN-mixed/32bit/src/Convolution/xpulp_nn_mix_conv_u2_u8_i8.c',
        'xpulp_nn_mix_matmul_u2_u8_i8', 'xpulp_nn_im2col_i2_to_i8', 8, 1.8125, 16, 9, 32, 0, 9),
    ('xpulpnn-v2', 2, 4): InnerLoop(
        'XpulpNN-mixed/32bit/src/Convolution/xpulp_nn_mix_conv_u2_u8_i4.c',
        'xpulp_nn_mix_matmul_u2_u8_i4', 'xpulp_nn_im2col_i2_to_i4', 4, 1.9375, 16, 9, 64, 0, 9),
    ('xpulpnn-v2', 2, 2): InnerLoop(
        'XpulpNN-mixed/32bit/src/Convolution/xpulp_nn_mix_conv_u2_u8_i2.c',
        'xpulp_nn_mix_matmul_u2_u8_i2', 'xpulp_nn_im2col_i2_to_i2', 2, 0.125, 16, 9, 128, 0, 9),
}

# Derived by derive_linear(default_root()), same sources; regenerate:
#   python -c 'from jaxbp.deploy import kernel_code as k
#              print(k.literal(k.derive_linear(k.default_root()), "LINEAR_INNER"))'
LINEAR_INNER = {
    ('xpulpv2', 8, 8): InnerLoop(
        'XpulpV2/32bit/src/LinearQuant/pulp_nn_linear_u8_u8_i8.c',
        '', '', 8, 0.0, 1, 5, 8, 0, 0),
    ('xpulpv2', 8, 4): InnerLoop(
        'XpulpV2/32bit/src/LinearQuant/pulp_nn_linear_u8_u8_i4.c',
        '', '', 8, 0.0, 1, 40, 16, 34, 0),
    ('xpulpv2', 8, 2): InnerLoop(
        'XpulpV2/32bit/src/LinearQuant/pulp_nn_linear_u8_u8_i2.c',
        '', '', 8, 0.0, 1, 78, 32, 66, 0),
    ('xpulpv2', 4, 8): InnerLoop(
        'XpulpV2/32bit/src/LinearQuant/pulp_nn_linear_u4_u8_i8.c',
        '', '', 4, 0.0, 1, 25, 16, 17, 0),
    ('xpulpv2', 4, 4): InnerLoop(
        'XpulpV2/32bit/src/LinearQuant/pulp_nn_linear_u4_u8_i4.c',
        '', '', 4, 0.0, 1, 55, 16, 51, 0),
    ('xpulpv2', 4, 2): InnerLoop(
        'XpulpV2/32bit/src/LinearQuant/pulp_nn_linear_u4_u8_i2.c',
        '', '', 4, 0.0, 1, 108, 32, 100, 0),
    ('xpulpv2', 2, 8): InnerLoop(
        'XpulpV2/32bit/src/LinearQuant/pulp_nn_linear_u2_u8_i8.c',
        '', '', 2, 0.0, 1, 49, 32, 33, 0),
    ('xpulpv2', 2, 4): InnerLoop(
        'XpulpV2/32bit/src/LinearQuant/pulp_nn_linear_u2_u8_i4.c',
        '', '', 2, 0.0, 1, 109, 32, 101, 0),
    ('xpulpv2', 2, 2): InnerLoop(
        'XpulpV2/32bit/src/LinearQuant/pulp_nn_linear_u2_u8_i2.c',
        '', '', 2, 0.0, 1, 107, 32, 99, 0),
    ('xpulpnn-v1', 8, 8): InnerLoop(
        'XpulpNN/32bit/src/LinearQuant/xpulp_nn_linear_u8_u8_i8.c',
        '', '', 8, 0.0, 1, 3, 4, 0, 2),
    ('xpulpnn-v1', 8, 4): InnerLoop(
        'XpulpNN/32bit/src/LinearQuant/xpulp_nn_linear_u8_u8_i4.c',
        '', '', 8, 0.0, 1, 20, 8, 15, 5),
    ('xpulpnn-v1', 8, 2): InnerLoop(
        'XpulpNN/32bit/src/LinearQuant/xpulp_nn_linear_u8_u8_i2.c',
        '', '', 8, 0.0, 1, 38, 16, 29, 9),
    ('xpulpnn-v1', 4, 8): InnerLoop(
        'XpulpNN/32bit/src/LinearQuant/xpulp_nn_linear_u4_u8_i8.c',
        '', '', 4, 0.0, 1, 20, 8, 15, 5),
    ('xpulpnn-v1', 4, 4): InnerLoop(
        'XpulpNN/32bit/src/LinearQuant/xpulp_nn_linear_u4_u8_i4.c',
        '', '', 4, 0.0, 1, 3, 8, 0, 2),
    ('xpulpnn-v1', 4, 2): InnerLoop(
        'XpulpNN/32bit/src/LinearQuant/xpulp_nn_linear_u4_u8_i2.c',
        '', '', 4, 0.0, 1, 36, 16, 31, 5),
    ('xpulpnn-v1', 2, 8): InnerLoop(
        'XpulpNN/32bit/src/LinearQuant/xpulp_nn_linear_u2_u8_i8.c',
        '', '', 2, 0.0, 1, 38, 16, 29, 9),
    ('xpulpnn-v1', 2, 4): InnerLoop(
        'XpulpNN/32bit/src/LinearQuant/xpulp_nn_linear_u2_u8_i4.c',
        '', '', 2, 0.0, 1, 36, 16, 31, 5),
    ('xpulpnn-v1', 2, 2): InnerLoop(
        'XpulpNN/32bit/src/LinearQuant/xpulp_nn_linear_u2_u8_i2.c',
        '', '', 2, 0.0, 1, 3, 16, 0, 2),
    ('xpulpnn-v2', 8, 8): InnerLoop(
        'XpulpNN/32bit/src/LinearQuant/xpulp_nn_linear_u8_u8_i8.c',
        '', '', 8, 0.0, 1, 3, 4, 0, 2),
    ('xpulpnn-v2', 8, 4): InnerLoop(
        'XpulpNN/32bit/src/LinearQuant/xpulp_nn_linear_u8_u8_i4.c',
        '', '', 8, 0.0, 1, 20, 8, 15, 5),
    ('xpulpnn-v2', 8, 2): InnerLoop(
        'XpulpNN/32bit/src/LinearQuant/xpulp_nn_linear_u8_u8_i2.c',
        '', '', 8, 0.0, 1, 38, 16, 29, 9),
    ('xpulpnn-v2', 4, 8): InnerLoop(
        'XpulpNN/32bit/src/LinearQuant/xpulp_nn_linear_u4_u8_i8.c',
        '', '', 4, 0.0, 1, 20, 8, 15, 5),
    ('xpulpnn-v2', 4, 4): InnerLoop(
        'XpulpNN/32bit/src/LinearQuant/xpulp_nn_linear_u4_u8_i4.c',
        '', '', 4, 0.0, 1, 3, 8, 0, 2),
    ('xpulpnn-v2', 4, 2): InnerLoop(
        'XpulpNN/32bit/src/LinearQuant/xpulp_nn_linear_u4_u8_i2.c',
        '', '', 4, 0.0, 1, 36, 16, 31, 5),
    ('xpulpnn-v2', 2, 8): InnerLoop(
        'XpulpNN/32bit/src/LinearQuant/xpulp_nn_linear_u2_u8_i8.c',
        '', '', 2, 0.0, 1, 38, 16, 29, 9),
    ('xpulpnn-v2', 2, 4): InnerLoop(
        'XpulpNN/32bit/src/LinearQuant/xpulp_nn_linear_u2_u8_i4.c',
        '', '', 2, 0.0, 1, 36, 16, 31, 5),
    ('xpulpnn-v2', 2, 2): InnerLoop(
        'XpulpNN/32bit/src/LinearQuant/xpulp_nn_linear_u2_u8_i2.c',
        '', '', 2, 0.0, 1, 3, 16, 0, 2),
}
