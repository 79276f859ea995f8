"""Depthwise, pooling and add costs read from the PULP-NN / PULP-NN-mixed kernel sources (instruction counts).

`kernel_code` reads the hardware-looped matmuls of the conv kernels; the kernels here have branchy outer loops, so
their cost is assembled from the loop bodies, each counted statement by statement (`count`), at one cycle per
instruction (single-cycle L1, post-increment addressing):

- one per load (`*(v4u *) p`, `*p`, `a[i]`), per store, per built-in (`SumDotp4`, `MacLoad4`, `MacLoadInit`,
  `bitext`, `bitins`, `clip8`, `max4`, `avg4`, ...; `MacLoadUpdate` 0: hardware post-increment) and per binary
  arithmetic operator (`a * b + c` is 2; `s += x * w` is 1: a MAC); `DIV_CYCLES` per division;
- a call of a requantization / compare helper (`pulp_nn_bn_quant_u8`, ...): its body counted the same way, plus
  `CALL_CYCLES` when the helper is a function call (`noinline`, or out-of-line in pulp-nn's `pulp_nn_utils.c`);
- a plain assignment (`sum = 0`, `pWt = pWtBase`): 1; `p++` / `p += 4` on a pointer the block loads or stores
  through, and the loop counters: 0 (post-increment addressing, hardware loops);
- loop control (estimate, the code's loop nesting): the two innermost loop levels are hardware loops, 0 per
  iteration plus `SETUP_CYCLES` per entry; an outer loop costs `LOOP_CYCLES` per iteration.

Branches are read as DORY runs them: BN + ReLU requantization (`flag_batch_norm && flag_relu`), no bias (`pBias ==
NULL`, DORY folds it into lambda), requantized adds and average pools. `derive_*` read the sources; the tables
(`DEPTHWISE`, `ADD`, `POOL`) are their result for the kernels the simulator costs, kept here so the simulator needs
no sources at run time (tests/test_deploy_kernel_ops.py re-derives them).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from pathlib import Path

from jaxbp.deploy.kernel_code import ISA_DIRS, PREFIX, _body, default_root

CALL_CYCLES = 4  # estimate: jal + ret + 2 argument moves of an out-of-line helper.
SETUP_CYCLES = 1  # estimate: lp.setup of a hardware loop (count in a register).
LOOP_CYCLES = 2  # estimate: increment + compare-and-branch of a software loop.
DIV_CYCLES = 32  # estimate: RI5CY's iterative divider, worst case of its 2-32 cycles.

LIBS = {"pulp-nn": "pulp-nn/32bit", "xpulpv2": "pulp-nn-mixed/XpulpV2/32bit", "xpulpnn": "pulp-nn-mixed/XpulpNN/32bit",
        "xpulpnn-mixed": "pulp-nn-mixed/XpulpNN-mixed/32bit"}
BITS = (8, 4, 2)
_BUILTINS = ("SumDotp", "MacLoadInit", "MacLoadAssign", "MacLoad", "bitext", "bitins", "clip", "max4", "min4",
             "avg4", "maxs32", "mins32", "__builtin_")


def backend_root() -> Path:
  """`shared/dory/.../Backend_Kernels` next to the repository."""
  return default_root().parent


def _clean(text: str) -> str:
  """Source without comments, `#ifdef ... #endif` debug blocks and compiler barriers."""
  text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
  text = re.sub(r"//[^\n]*", "", text)
  text = re.sub(r"#ifdef[^\n]*\n.*?#endif", "", text, flags=re.S)
  return re.sub(r"asm\s+volatile\s*\([^;]*\);", "", text)


def _blocks(text: str, head: str) -> list[tuple[int, int]]:
  """(start, end) spans of the `head ... { ... }` constructs (head: a regex) in `text`, end past the '}'."""
  out = []
  for m in re.finditer(head, text):
    i = text.find("{", m.end() - 1)
    if i < 0 or text[m.end():i].strip():
      continue
    body = _body(text, i)
    out.append((m.start(), i + len(body) + 2))
  return out


def _flat(block: str) -> str:
  """`block` without its nested loops (`do {...} while (...);`, `for (...) {...}`, `while (...) {...}`), the bias
  branch and `else` branches; other `if` bodies are kept (the branch DORY takes)."""
  out = block
  while True:
    spans = (_blocks(out, r"\bdo\s*") + _blocks(out, r"\bfor\s*\([^{};]*;[^{};]*;[^{}]*\)\s*")
             + _blocks(out, r"\bwhile\s*\([^{};]*\)\s*") + _blocks(out, r"\bif\s*\(\s*p?[Bb]ias\s*!=\s*NULL\s*\)\s*")
             + _blocks(out, r"\belse\s+if\s*\([^{};]*\)\s*") + _blocks(out, r"\belse\s*"))
    if not spans:
      break
    outer, end = [], -1
    for s, e in sorted(spans):  # the outermost constructs, removed together (last first).
      if s >= end:
        outer.append((s, e))
        end = e
    for s, e in reversed(outer):
      tail = re.match(r"\s*while\s*\([^;]*\)\s*;", out[e:]) if out[s:s + 2] == "do" else None
      out = out[:s] + ";" + out[e + (tail.end() if tail else 0):]
  out = re.sub(r"\bfor\s*\([^)]*\)\s*[^;{]*;", ";", out)  # one-statement for loops (counted by the caller).
  return re.sub(r"\bif\s*\([^{};]*\)\s*\{?", ";", out).replace("}", ";").replace("{", ";")


_CAST = r"\(\s*(?:const\s+)?(?:u?int(?:8|16|32)_t|int|unsigned\s+int|v4[us])\s*\**\s*\)"


def _loads(expr: str) -> int:
  expr = re.sub(_CAST, " ", expr)
  n = len(re.findall(r"(?:^|[=(,?:+\-/&|])\s*\*\s*[\(A-Za-z_]", expr))
  return n + len(re.findall(r"\b[A-Za-z_]\w*\s*\[[^\]]*\]", expr))


def _ops(expr: str) -> int:
  """Binary arithmetic operators of an expression (casts and dereferences removed; a division: DIV_CYCLES)."""
  e = re.sub(_CAST, " ", expr)
  e = re.sub(r"(^|[=(,?:+\-/&|])\s*\*", r"\1 ", e)  # unary dereference.
  e = re.sub(r"\[[^\]]*\]", "", e)
  e = re.sub(r"\b\w+\s*\(", "(", e)  # calls: their operators are counted, the call itself elsewhere.
  div = e.count("/")
  n = len(re.findall(r">>|<<|(?<![+\-<>=!&|])[+\-*&|^](?![+\-=&|])", re.sub(r"[,(]\s*-", "(", e)))
  return n + div * DIV_CYCLES


def count(block: str, helpers: dict[str, int] | None = None) -> int:
  """Instructions of the statements of `block` at its own level (nested loops excluded, see `_flat`)."""
  helpers = helpers or {}
  flat = _flat(_clean(block))
  stmts = [s.strip() for s in flat.split(";") if s.strip()]
  derefd = set(re.findall(r"\*\s*\(?\s*([A-Za-z_]\w*)", re.sub(_CAST, " ", flat)))
  derefd |= set(re.findall(r"\b([A-Za-z_]\w*)\s*\[", flat))
  derefd |= set(re.findall(r"MacLoad\w*\([^;]*?\b(ptr\w+)\b", flat))
  total = 0
  for s in stmts:
    s = re.sub(r"^(?:const\s+)?(?:u?int(?:8|16|32)_t|int|unsigned|v4[us]|uint8_t)\s*\**\s*(?=[A-Za-z_]\w*\s*=)", "", s)
    m = re.match(r"^([A-Za-z_]\w*)\s*(\+\+|--|[+\-]=\s*(\d+|\(?\w+\s*<<\s*\d\)?)$)", s)
    if m and (m.group(1) in derefd or m.group(1) in ("i", "j", "l", "cnt", "left", "spatial", "i_buff_y")):
      continue  # post-increment addressing / hardware-loop counter.
    if re.match(r"^\w+\s*=\s*MacLoadUpdate\s*\(", s):
      continue  # the MAC&LOAD post-increments in hardware.
    if re.match(r"^[A-Za-z_]\w*(\s*,\s*[A-Za-z_]\w*)*$", s) or s.startswith("return") or re.match(
        r"^[ijl]\s*=\s*0$", s):
      continue  # a declaration, or a return value already in its register.
    asg = re.match(r"^(.*?)(?<![=!<>+\-*/&|])([+\-*/|&]?=)(?!=)(.*)$", s)
    lhs, op, rhs = (asg.group(1), asg.group(2), asg.group(3)) if asg else ("", "", s)
    n = 0
    store = lhs.strip().startswith("*") or "[" in lhs
    n += store
    n += _loads(rhs)
    calls = re.findall(r"\b([A-Za-z_]\w*)\s*\(", rhs)
    for c in calls:
      if c in helpers:
        n += helpers[c]
      elif c.startswith(_BUILTINS) and c != "MacLoadUpdate":
        n += 1
    mac = op == "+=" and re.fullmatch(r"\s*[\w()]+\s*\*\s*[\w()]+\s*", rhs)
    n += 1 if mac else _ops(rhs) + (op not in ("=", ""))
    if not n and asg:
      n = 1  # a move / load-immediate.
    total += n
  return total


@functools.lru_cache(maxsize=16)
def _helpers(utils: str) -> dict[str, int]:
  """{name: cycles of a call} of the requantization / compare helpers of a `pulp_nn_utils` source."""
  out = {}
  pat = r"(?:static\s+)?(?:inline\s+)?(?:u?int(?:8|16|32)_t|void|v4[us])\s+(__attribute__\s*\(\(\s*(\w+)\s*\)\)\s*)?(\w+)\s*\("
  for m in re.finditer(pat, utils):
    name, attr = m.group(3), m.group(2) or ""
    if not re.match(r"pulp_nn_(bn_)?quant_|pulp_nn_add_quant_|pulp_nn_compare_and_replace|pulp_nn_avg_and_replace|"
                    r"pulp_nn_[iu]\d_to_[iu]\d_r$", name):
      continue
    j = utils.find(")", m.end())
    if utils[j + 1:j + 40].lstrip().startswith(";"):
      continue  # a prototype.
    body = _body(utils, j)
    if "while" in body:  # compare/replace helpers: the word loop, per 4 bytes (leftovers: see `pool_cost`).
      loop = _blocks(body, r"while\s*\([^)]*\)\s*")[0]
      out[name] = count(body[loop[0]:loop[1]].split("{", 1)[1].rsplit("}", 1)[0])
      continue
    out[name] = count(body) + (CALL_CYCLES if attr == "noinline" or "always_inline" not in attr and "static" not in
                               utils[m.start():m.start() + 8] else 0)
  return out


@dataclasses.dataclass(frozen=True)
class DepthwiseLoop:
  """What the code says for one depthwise kernel, per group of `group` channels (one channel loop iteration).

  Attributes:
    file: the kernel source (relative to Backend_Kernels/).
    group: channels per channel-loop iteration (packed sub-byte tensors: 8 / narrowest width).
    dot: one iteration of the 4-element dot loop (all `group` channels), of which `dot_mac_load` XpulpNN
      MAC&LOAD-family instructions; left: one leftover kernel element.
    output: the rest of one output position (set-up, requantization, packing, store, inner-loop set-ups).
    word: one 4-byte word of one im2col strip row (copy or unpack); row: the rest of one strip row.
    zero_word: one word of a zero-padding row; column: the rest of one output column (+ its loop control).
    weights: per kernel element, unpacking the group's weights (0: read in place); channel: the rest per group.
  """

  file: str
  group: int
  dot: int
  left: int
  output: int
  word: int
  row: int
  zero_word: int
  column: int
  weights: int
  channel: int
  dot_mac_load: int = 0

  def core_cycles(self, out_hw: tuple[int, int], in_hw: tuple[int, int], kernel: tuple[int, int], pad_tb: int,
                  channels: int, mac_load_cycles: float = 1.0) -> float:
    """Cycles of one core computing `channels` channels of an (h, w) output from an (h, w) input (`pad_tb`: zero
    rows of the im2col strip; `mac_load_cycles`: cycles per XpulpNN MAC&LOAD-family instruction)."""
    kh, kw = kernel
    groups = math.ceil(channels / self.group)
    k = kh * kw
    words = math.ceil(kw / 4)
    per_output = (k // 4) * (self.dot + (mac_load_cycles - 1) * self.dot_mac_load) + (k % 4) * self.left + self.output
    per_column = (in_hw[0] * (words * self.word + self.row) + pad_tb * (words * self.zero_word + SETUP_CYCLES)
                  + self.column + out_hw[0] * per_output)
    return groups * (k * self.weights + self.channel + out_hw[1] * per_column)


def _steady_column(src: str) -> str:
  """The main output-column loop of a depthwise kernel (between the left- and right-padding columns)."""
  for s, e in _blocks(src, r"\bdo\s*"):
    tail = src[e:e + 200]
    if re.match(r"\s*while\s*\(\s*\(\s*i_out_x\s*\*\s*stride_x\s*\)\s*<\s*\(\s*\(\s*dim_(im_)?out_x", tail):
      return src[s:e]
  raise ValueError("no steady-state output-column loop")


def _inner(block: str, head: str) -> str:
  """Body of the first loop matching `head` in `block`."""
  spans = _blocks(block, head)
  if not spans:
    raise ValueError(f"no loop {head!r}")
  s, e = spans[0]
  return block[s:e].split("{", 1)[1].rsplit("}", 1)[0]


def depthwise_loop(path: Path, utils: str, rel: str) -> DepthwiseLoop:
  """Counts one depthwise kernel source (pulp-nn `pulp_nn_depthwise_generic` or a pulp-nn-mixed one)."""
  src = _clean(path.read_text())
  h = _helpers(utils)
  m = re.search(r"ch_min\s*=\s*ch_out\s*>>\s*(\d)", src)
  group = 2 ** int(m.group(1)) if m else 1
  col = _steady_column(src)
  col_body = col.split("{", 1)[1].rsplit("}", 1)[0]
  rows = _inner(col_body, r"\bdo\s*(?=\{[^}]*?(?:int\s+idx|for\s*\())")
  word = _inner(rows, r"\bfor\s*\([^)]*dim_kernel_x_size_padded[^)]*\)\s*")
  zero = _inner(_inner(col_body, r"\bfor\s*\(\s*i_buff_y\s*;[^)]*\)\s*"), r"\bdo\s*")
  out = _inner(col_body, r"\bint\s+l\s*=\s*0\s*;\s*do\s*")
  dot = _inner(out, r"\bdo\s*(?=\{[^}]*(?:SumDotp|MacLoad))")
  left_spans = _blocks(out, r"\bfor\s*\(\s*int\s+j\s*=\s*0\s*;\s*j\s*<\s*leftCnt[^)]*\)\s*") or _blocks(
      out, r"\bif\s*\(\s*leftCnt\s*\)\s*")
  left_text = out[left_spans[0][0]:left_spans[0][1]]
  left = _inner(left_text, r"\bdo\s*") if "do" in left_text else left_text.split("{", 1)[1].rsplit("}", 1)[0]
  left_setup = count(left_text.replace(left, "")) if "do" in left_text else 0
  chan_m = re.search(r"for\s*\(\s*int\s+i_(?:out_)?ch\s*=", src)
  chan = _body(src, chan_m.start())
  unpack = _blocks(chan, r"\bfor\s*\(\s*int\s+i_unpack[^)]*\)\s*")
  weights = count(chan[unpack[0][0]:unpack[0][1]].split("{", 1)[1].rsplit("}", 1)[0], h) if unpack else 0
  return DepthwiseLoop(rel, group, count(dot, h), count(left, h),
                       count(out, h) + left_setup + 2 * SETUP_CYCLES, count(word, h), count(rows, h) + SETUP_CYCLES,
                       count(zero, h), count(col_body, h) + LOOP_CYCLES,
                       weights, count(re.sub(r"if\s*\(\s*padding_x_left[^)]*\)\s*\{", "{", chan), h) + LOOP_CYCLES,
                       len(re.findall(r"\bMacLoad(?:\d+|Init|Assign)\s*\(", dot)))


def _lib(root: Path, lib: str) -> tuple[Path, str]:
  base = root / LIBS[lib]
  utils = (base / "include" / "pulp_nn_utils.h").read_text()
  if lib == "pulp-nn":
    utils += (base / "src" / "pulp_nn_utils.c").read_text()
  return base, utils


def derive_depthwise(root: str | Path) -> dict[tuple[str, int, int, int], DepthwiseLoop]:
  """{(lib, b_in, b_w, b_out): DepthwiseLoop}: pulp-nn's 8-bit `pulp_nn_depthwise_generic` (key ("pulp-nn", 8, 8,
  8)) and every unsigned pulp-nn-mixed depthwise kernel of XpulpV2 and XpulpNN (XpulpNN-mixed ships none)."""
  root = Path(root)
  out = {}
  base, utils = _lib(root, "pulp-nn")
  f = base / "src" / "pulp_nn_depthwise_generic.c"
  out[("pulp-nn", 8, 8, 8)] = depthwise_loop(f, utils, str(f.relative_to(root)))
  for lib, px in (("xpulpv2", "pulp_nn"), ("xpulpnn", "xpulp_nn")):
    base, utils = _lib(root, lib)
    for a in BITS:
      for w in BITS:
        for o in BITS:
          f = base / "src" / "Depthwise" / f"{px}_depthwise_u{a}_u{o}_i{w}.c"
          out[(lib, a, w, o)] = depthwise_loop(f, utils, str(f.relative_to(root)))
  return out


@dataclasses.dataclass(frozen=True)
class ElementLoop:
  """An element-wise loop read from the code: `instr` instructions per iteration producing `elems` outputs."""

  file: str
  instr: int
  elems: int

  @property
  def per_elem(self) -> float:
    return self.instr / self.elems


def add_loop(path: Path, utils: str, rel: str) -> ElementLoop:
  """The main loop of an add kernel (pulp-nn: one byte per iteration; pulp-nn-mixed: 4 outputs or a byte of
  packed outputs per iteration)."""
  src = _clean(path.read_text())
  h = _helpers(utils)
  body = _inner(src, r"\bfor\s*\(\s*int\s+(?:spatial|i)\s*=\s*0[^{]*")
  m = re.search(r"ch_im_out_r\s*=\s*ch_im_in\s*>>\s*(\d)", src)
  per_byte = 2 ** int(m.group(1)) if m else 1
  shift = re.search(r"\)\s*>>\s*(\d)\s*\)\s*;\s*i\+\+", src)
  return ElementLoop(rel, count(body, h) + LOOP_CYCLES, per_byte * (2 ** int(shift.group(1)) if shift else 1))


def derive_add(root: str | Path) -> dict[tuple[str, int], ElementLoop]:
  """{(lib, bits): ElementLoop} of the add kernels DORY calls for equal unsigned widths (pulp-nn: 8 only)."""
  root = Path(root)
  out = {}
  base, utils = _lib(root, "pulp-nn")
  f = base / "src" / "pulp_nn_add.c"
  out[("pulp-nn", 8)] = add_loop(f, utils, str(f.relative_to(root)))
  for lib, px in (("xpulpv2", "pulp_nn"), ("xpulpnn", "xpulp_nn")):
    base, utils = _lib(root, lib)
    for b in BITS:
      f = base / "src" / "Add" / f"{px}_add_u{b}_u{b}_u{b}.c"
      out[(lib, b)] = add_loop(f, utils, str(f.relative_to(root)))
  return out


@dataclasses.dataclass(frozen=True)
class PoolLoop:
  """What the code says for one pooling kernel.

  Average pool (per output pixel `pixel`; per byte of packed channels, `group` channels, `channel`; per window
  element and byte `window`). Max pool (two passes over rows, see `pool_cycles`): `copy` per byte copied, `word`
  per 4-byte word compared (the compare helper's loop), `call` per helper call, `pixel` per output pixel of the
  first pass and per output row of the second.
  """

  file: str
  kind: str
  group: int
  pixel: int
  channel: int = 0
  window: int = 0
  copy: int = 0
  word: int = 0
  call: int = 0


def _registers(text: str) -> str:
  """`sum[0]`-style accumulator arrays as the registers the compiler keeps them in."""
  return re.sub(r"\bsum\[(\d)\]", r"sum_\1", text)


def avgpool_loop(path: Path, utils: str, rel: str) -> PoolLoop:
  src = _registers(_clean(path.read_text()))
  h = _helpers(utils)
  m = re.search(r"ch_im_in_r\s*=\s*ch_im_in\s*>>\s*(\d)", src)
  group = 2 ** int(m.group(1)) if m else 1
  pixel = _inner(src, r"\bfor\s*\(\s*i_x\s*=[^{]*")
  chan = _inner(pixel, r"\bfor\s*\(\s*int\s+ch_cnt[^{]*")
  window = _inner(chan, r"\bfor\s*\(\s*k_x\s*=[^{]*")
  return PoolLoop(rel, "avg", group, count(pixel, h) + LOOP_CYCLES, count(chan, h) + LOOP_CYCLES + 2 * SETUP_CYCLES,
                  count(window, h))


def maxpool_loop(path: Path, utils: str, rel: str) -> PoolLoop:
  src = _clean(path.read_text())
  h = _helpers(utils)
  name = re.search(r"\b(pulp_nn_compare_and_replace_if_larger_\w+)\s*\(", src).group(1)
  pixel = _inner(src, r"\bfor\s*\(\s*i_x\s*=[^{]*")
  copy = re.search(r"for\s*\(\s*int\s+i\s*=\s*0[^)]*\)\s*([^;{]*;)", pixel).group(1)
  flat_pixel = re.sub(r"for\s*\([^)]*\)\s*\{[^{}]*\}", ";", pixel)
  return PoolLoop(rel, "max", 1, count(flat_pixel) + LOOP_CYCLES, copy=count(copy), word=h[name],
                  call=CALL_CYCLES + SETUP_CYCLES + LOOP_CYCLES)


def derive_pool(root: str | Path) -> dict[tuple[str, str, int], PoolLoop]:
  """{(lib, "avg" | "max", bits): PoolLoop} of pulp-nn's 8-bit pools and pulp-nn-mixed's unsigned ones (max: 8-bit)."""
  root = Path(root)
  out = {}
  base, utils = _lib(root, "pulp-nn")
  for kind in ("avg", "max"):
    f = base / "src" / f"pulp_nn_{kind}pool.c"
    out[("pulp-nn", kind, 8)] = (avgpool_loop if kind == "avg" else maxpool_loop)(f, utils, str(f.relative_to(root)))
  for lib, px in (("xpulpv2", "pulp_nn"), ("xpulpnn", "xpulp_nn")):
    base, utils = _lib(root, lib)
    for b in BITS:
      f = base / "src" / "Pooling" / "AvgPool" / f"{px}_avgpool_u{b}_u{b}.c"
      out[(lib, "avg", b)] = avgpool_loop(f, utils, str(f.relative_to(root)))
    f = base / "src" / "Pooling" / "MaxPool" / f"{px}_maxpool_u8.c"
    out[(lib, "max", 8)] = maxpool_loop(f, utils, str(f.relative_to(root)))
  return out


@dataclasses.dataclass(frozen=True)
class MatmulTail:
  """What the code says around a conv's matmul inner loop (`kernel_code.CONV_INNER`), per 4x2 block (4 output
  channels x 2 pixels: `block` = set-up, requantization, output packing, stores, loop control; `tail` per
  reduction element left over by the inner loop) and per leftover output channel of the 1x2 path (`row`,
  `row_tail`; 0 where the kernel has no 1x2 path: 2-bit outputs need Cout % 4 == 0)."""

  file: str
  block: int
  tail: float
  row: int
  row_tail: float


def _tail_loop(block: str, h: dict[str, int]) -> float:
  """Instructions per reduction element of the leftover loop over `col_cnt_im2col` in `block`."""
  spans = _blocks(block, r"\bwhile\s*\(\s*col_cnt_im2col[^)]*\)\s*")
  spans += [(s, e) for s, e in _blocks(block, r"\bdo\s*") if re.match(r"\s*while\s*\(\s*col_cnt_im2col", block[e:])]
  if not spans:
    return 0.0
  s, e = spans[0]
  body = block[s:e].split("{", 1)[1].rsplit("}", 1)[0]
  step = re.search(r"col_cnt_im2col\s*-=\s*(\d+)", body)
  return count(body, h) / (int(step.group(1)) if step else 1)


def matmul_tail(path: Path, utils: str, rel: str) -> MatmulTail:
  src = _clean(path.read_text())
  h = _helpers(utils)
  main = _inner(src, r"\bfor\s*\(\s*int\s+i\s*=\s*0\s*;\s*i\s*<\s*\(?\s*ch_out\s*>>\s*2\s*\)?[^{]*")
  loops = 2 * SETUP_CYCLES + LOOP_CYCLES  # the inner loop and the leftover loop set up, the block loop itself.
  if not re.search(r"\bwhile\s*\(\s*chan_left\s*\)", src):  # 2-bit outputs: no 1x2 path (Cout % 4 == 0).
    return MatmulTail(rel, count(main, h) + loops, _tail_loop(main, h), 0, 0.0)
  row = _inner(src, r"\bwhile\s*\(\s*chan_left\s*\)\s*")
  return MatmulTail(rel, count(main, h) + loops, _tail_loop(main, h), count(row, h) + loops, _tail_loop(row, h))


def derive_matmul_tails(root: str | Path) -> dict[tuple[str, int, int, int], MatmulTail]:
  """{(isa, b_in, b_w, b_out): MatmulTail} of the matmul each unsigned pulp-nn-mixed conv kernel calls (the ISA
  directories of `kernel_code.ISA_DIRS`), and ("pulp-nn", 8, 8, 8): pulp-nn's 8-bit `pulp_nn_matmul`."""
  root = Path(root)
  base, utils = _lib(root, "pulp-nn")
  f = base / "src" / "pulp_nn_matmul.c"
  out = {("pulp-nn", 8, 8, 8): matmul_tail(f, utils, str(f.relative_to(root)))}
  for isa, d in ISA_DIRS.items():
    lib = {"XpulpV2": "xpulpv2", "XpulpNN": "xpulpnn", "XpulpNN-mixed": "xpulpnn-mixed"}[d]
    base, utils = _lib(root, lib)
    if lib == "xpulpnn-mixed":
      utils = (base / "include" / "pulp_nn_utils.h").read_text()
    for a in BITS:
      for w in BITS:
        for o in BITS:
          conv = (base / "src" / "Convolution" / f"{PREFIX[isa]}_u{a}_u{o}_i{w}.c").read_text()
          mm = re.search(r"\b(x?pulp_nn_(?:mix_)?matmul_\w+?)\s*\(", conv).group(1)
          f = base / "src" / "MatrixMultiplication" / f"{mm}.c"
          out[(isa, a, w, o)] = matmul_tail(f, utils, str(f.relative_to(root)))
  return out


@dataclasses.dataclass(frozen=True)
class LinearTail:
  """What the code says around a linear kernel's inner loop (`kernel_code.LINEAR_INNER`): `neurons` output neurons
  per pass of the neuron loop, `block` instructions per pass (set-up, requantization or int32 stores, loop
  control), `tail` per input element left over by the inner loop."""

  file: str
  neurons: int
  block: int
  tail: float


def _col_tail(block: str, h: dict[str, int]) -> float:
  """Instructions per element of a linear kernel's leftover loop over `col_cnt`."""
  spans = _blocks(block, r"\bwhile\s*\(\s*col_cnt[^)]*\)\s*")
  spans += [(s, e) for s, e in _blocks(block, r"\bdo\s*") if re.match(r"\s*while\s*\(\s*col_cnt", block[e:])]
  if not spans:
    return 0.0
  s, e = spans[0]
  body = block[s:e].split("{", 1)[1].rsplit("}", 1)[0]
  step = re.search(r"col_cnt\s*-=\s*(\d+)", body)
  return count(body, h) / (int(step.group(1)) if step else 1)


def linear_tail(path: Path, utils: str, rel: str) -> LinearTail:
  src = _clean(path.read_text())
  h = _helpers(utils)
  m = re.search(r"\bfor\s*\(\s*(?:int\s+)?i\s*=\s*start\s*;[^;]*;\s*i\s*(\+=\s*2|\+\+)\s*\)", src)
  body = _inner(src[m.start():], r"\bfor\s*\([^{]*")
  loops = 2 * SETUP_CYCLES + LOOP_CYCLES
  return LinearTail(rel, 2 if "2" in m.group(1) else 1, count(body, h) + loops, _col_tail(body, h))


def derive_linear_tails(root: str | Path) -> dict[tuple[str, int, int, int], LinearTail]:
  """{(isa, b_in, b_w, b_out): LinearTail} for the unsigned-input linear kernels DORY calls (b_out 8: LinearQuant,
  32: LinearNoQuant; XpulpNN-mixed ships none: XpulpNN's), and pulp-nn's `pulp_nn_linear` / `_out_32` ("pulp-nn")."""
  root = Path(root)
  base, utils = _lib(root, "pulp-nn")
  out = {}
  for o, name in ((8, "pulp_nn_linear"), (32, "pulp_nn_linear_out_32")):
    f = base / "src" / f"{name}.c"
    out[("pulp-nn", 8, 8, o)] = linear_tail(f, utils, str(f.relative_to(root)))
  for isa, lib, px in (("xpulpv2", "xpulpv2", "pulp_nn"), ("xpulpnn-v1", "xpulpnn", "xpulp_nn"),
                       ("xpulpnn-v2", "xpulpnn", "xpulp_nn")):
    base, utils = _lib(root, lib)
    for a in BITS:
      for w in BITS:
        for o, d, y in ((8, "LinearQuant", "u8"), (32, "LinearNoQuant", "i32")):
          f = base / "src" / d / f"{px}_linear_u{a}_{y}_i{w}.c"
          out[(isa, a, w, o)] = linear_tail(f, utils, str(f.relative_to(root)))
  return out


def literal() -> str:
  """The tables below as Python source (to refresh them after a kernel update)."""
  root = backend_root()
  parts = []
  for name, table in (("DEPTHWISE", derive_depthwise(root)), ("ADD", derive_add(root)), ("POOL", derive_pool(root)),
                      ("MATMUL_TAIL", derive_matmul_tails(root)), ("LINEAR_TAIL", derive_linear_tails(root))):
    rows = "\n".join(f"    {k!r}: {v!r}," for k, v in table.items())
    parts.append(f"{name} = {{\n{rows}\n}}")
  return "\n\n".join(parts)


# Derived by derive_depthwise / derive_add / derive_pool from shared/dory (commits in shared/dory/PROVENANCE.md);
# regenerate: python -c 'from jaxbp.deploy import kernel_ops as k; print(k.literal())'
DEPTHWISE = {
    ('pulp-nn', 8, 8, 8): DepthwiseLoop(file='pulp-nn/32bit/src/pulp_nn_depthwise_generic.c', group=1, dot=3, left=3, output=17, word=4, row=4, zero_word=1, column=11, weights=0, channel=7, dot_mac_load=0),
    ('xpulpv2', 8, 8, 8): DepthwiseLoop(file='pulp-nn-mixed/XpulpV2/32bit/src/Depthwise/pulp_nn_depthwise_u8_u8_i8.c', group=1, dot=3, left=3, output=19, word=4, row=4, zero_word=1, column=11, weights=0, channel=6, dot_mac_load=0),
    ('xpulpv2', 8, 8, 4): DepthwiseLoop(file='pulp-nn-mixed/XpulpV2/32bit/src/Depthwise/pulp_nn_depthwise_u8_u4_i8.c', group=2, dot=6, left=6, output=35, word=8, row=5, zero_word=2, column=12, weights=0, channel=11, dot_mac_load=0),
    ('xpulpv2', 8, 8, 2): DepthwiseLoop(file='pulp-nn-mixed/XpulpV2/32bit/src/Depthwise/pulp_nn_depthwise_u8_u2_i8.c', group=4, dot=12, left=12, output=67, word=19, row=7, zero_word=4, column=14, weights=0, channel=13, dot_mac_load=0),
    ('xpulpv2', 8, 4, 8): DepthwiseLoop(file='pulp-nn-mixed/XpulpV2/32bit/src/Depthwise/pulp_nn_depthwise_u8_u8_i4.c', group=2, dot=6, left=6, output=35, word=8, row=5, zero_word=2, column=12, weights=6, channel=12, dot_mac_load=0),
    ('xpulpv2', 8, 4, 4): DepthwiseLoop(file='pulp-nn-mixed/XpulpV2/32bit/src/Depthwise/pulp_nn_depthwise_u8_u4_i4.c', group=2, dot=6, left=6, output=35, word=8, row=5, zero_word=2, column=12, weights=6, channel=11, dot_mac_load=0),
    ('xpulpv2', 8, 4, 2): DepthwiseLoop(file='pulp-nn-mixed/XpulpV2/32bit/src/Depthwise/pulp_nn_depthwise_u8_u2_i4.c', group=4, dot=12, left=12, output=67, word=19, row=7, zero_word=4, column=14, weights=6, channel=14, dot_mac_load=0),
    ('xpulpv2', 8, 2, 8): DepthwiseLoop(file='pulp-nn-mixed/XpulpV2/32bit/src/Depthwise/pulp_nn_depthwise_u8_u8_i2.c', group=4, dot=12, left=12, output=67, word=19, row=7, zero_word=4, column=14, weights=12, channel=14, dot_mac_load=0),
    ('xpulpv2', 8, 2, 4): DepthwiseLoop(file='pulp-nn-mixed/XpulpV2/32bit/src/Depthwise/pulp_nn_depthwise_u8_u4_i2.c', group=4, dot=12, left=12, output=67, word=19, row=7, zero_word=4, column=14, weights=12, channel=14, dot_mac_load=0),
    ('xpulpv2', 8, 2, 2): DepthwiseLoop(file='pulp-nn-mixed/XpulpV2/32bit/src/Depthwise/pulp_nn_depthwise_u8_u2_i2.c', group=4, dot=12, left=12, output=67, word=19, row=7, zero_word=4, column=14, weights=12, channel=13, dot_mac_load=0),
    ('xpulpv2', 4, 8, 8): DepthwiseLoop(file='pulp-nn-mixed/XpulpV2/32bit/src/Depthwise/pulp_nn_depthwise_u4_u8_i8.c', group=2, dot=6, left=6, output=35, word=19, row=5, zero_word=2, column=12, weights=0, channel=11, dot_mac_load=0),
    ('xpulpv2', 4, 8, 4): DepthwiseLoop(file='pulp-nn-mixed/XpulpV2/32bit/src/Depthwise/pulp_nn_depthwise_u4_u4_i8.c', group=2, dot=6, left=6, output=35, word=19, row=5, zero_word=2, column=12, weights=0, channel=10, dot_mac_load=0),
    ('xpulpv2', 4, 8, 2): DepthwiseLoop(file='pulp-nn-mixed/XpulpV2/32bit/src/Depthwise/pulp_nn_depthwise_u4_u2_i8.c', group=4, dot=12, left=12, output=67, word=38, row=7, zero_word=4, column=14, weights=0, channel=13, dot_mac_load=0),
    ('xpulpv2', 4, 4, 8): DepthwiseLoop(file='pulp-nn-mixed/XpulpV2/32bit/src/Depthwise/pulp_nn_depthwise_u4_u8_i4.c', group=2, dot=6, left=6, output=35, word=19, row=5, zero_word=2, column=12, weights=6, channel=11, dot_mac_load=0),
    ('xpulpv2', 4, 4, 4): DepthwiseLoop(file='pulp-nn-mixed/XpulpV2/32bit/src/Depthwise/pulp_nn_depthwise_u4_u4_i4.c', group=2, dot=6, left=6, output=35, word=19, row=5, zero_word=2, column=12, weights=6, channel=10, dot_mac_load=0),
    ('xpulpv2', 4, 4, 2): DepthwiseLoop(file='pulp-nn-mixed/XpulpV2/32bit/src/Depthwise/pulp_nn_depthwise_u4_u2_i4.c', group=4, dot=12, left=12, output=67, word=38, row=7, zero_word=4, column=14, weights=6, channel=14, dot_mac_load=0),
    ('xpulpv2', 4, 2, 8): DepthwiseLoop(file='pulp-nn-mixed/XpulpV2/32bit/src/Depthwise/pulp_nn_depthwise_u4_u8_i2.c', group=4, dot=12, left=12, output=67, word=38, row=7, zero_word=4, column=14, weights=12, channel=14, dot_mac_load=0),
    ('xpulpv2', 4, 2, 4): DepthwiseLoop(file='pulp-nn-mixed/XpulpV2/32bit/src/Depthwise/pulp_nn_depthwise_u4_u4_i2.c', group=4, dot=12, left=12, output=67, word=38, row=7, zero_word=4, column=14, weights=12, channel=14, dot_mac_load=0),
    ('xpulpv2', 4, 2, 2): DepthwiseLoop(file='pulp-nn-mixed/XpulpV2/32bit/src/Depthwise/pulp_nn_depthwise_u4_u2_i2.c', group=4, dot=12, left=12, output=67, word=38, row=7, zero_word=4, column=14, weights=12, channel=13, dot_mac_load=0),
    ('xpulpv2', 2, 8, 8): DepthwiseLoop(file='pulp-nn-mixed/XpulpV2/32bit/src/Depthwise/pulp_nn_depthwise_u2_u8_i8.c', group=4, dot=12, left=12, output=67, word=35, row=7, zero_word=4, column=14, weights=0, channel=13, dot_mac_load=0),
    ('xpulpv2', 2, 8, 4): DepthwiseLoop(file='pulp-nn-mixed/XpulpV2/32bit/src/Depthwise/pulp_nn_depthwise_u2_u4_i8.c', group=4, dot=12, left=12, output=67, word=35, row=7, zero_word=4, column=14, weights=0, channel=13, dot_mac_load=0),
    ('xpulpv2', 2, 8, 2): DepthwiseLoop(file='pulp-nn-mixed/XpulpV2/32bit/src/Depthwise/pulp_nn_depthwise_u2_u2_i8.c', group=4, dot=12, left=12, output=67, word=35, row=7, zero_word=4, column=14, weights=0, channel=12, dot_mac_load=0),
    ('xpulpv2', 2, 4, 8): DepthwiseLoop(file='pulp-nn-mixed/XpulpV2/32bit/src/Depthwise/pulp_nn_depthwise_u2_u8_i4.c', group=4, dot=12, left=12, output=67, word=35, row=7, zero_word=4, column=14, weights=6, channel=14, dot_mac_load=0),
    ('xpulpv2', 2, 4, 4): DepthwiseLoop(file='pulp-nn-mixed/XpulpV2/32bit/src/Depthwise/pulp_nn_depthwise_u2_u4_i4.c', group=4, dot=12, left=12, output=67, word=35, row=7, zero_word=4, column=14, weights=6, channel=14, dot_mac_load=0),
    ('xpulpv2', 2, 4, 2): DepthwiseLoop(file='pulp-nn-mixed/XpulpV2/32bit/src/Depthwise/pulp_nn_depthwise_u2_u2_i4.c', group=4, dot=12, left=12, output=67, word=35, row=7, zero_word=4, column=14, weights=6, channel=13, dot_mac_load=0),
    ('xpulpv2', 2, 2, 8): DepthwiseLoop(file='pulp-nn-mixed/XpulpV2/32bit/src/Depthwise/pulp_nn_depthwise_u2_u8_i2.c', group=4, dot=12, left=12, output=67, word=35, row=7, zero_word=4, column=14, weights=12, channel=13, dot_mac_load=0),
    ('xpulpv2', 2, 2, 4): DepthwiseLoop(file='pulp-nn-mixed/XpulpV2/32bit/src/Depthwise/pulp_nn_depthwise_u2_u4_i2.c', group=4, dot=12, left=12, output=67, word=35, row=7, zero_word=4, column=14, weights=12, channel=13, dot_mac_load=0),
    ('xpulpv2', 2, 2, 2): DepthwiseLoop(file='pulp-nn-mixed/XpulpV2/32bit/src/Depthwise/pulp_nn_depthwise_u2_u2_i2.c', group=4, dot=12, left=12, output=67, word=35, row=7, zero_word=4, column=14, weights=12, channel=12, dot_mac_load=0),
    ('xpulpnn', 8, 8, 8): DepthwiseLoop(file='pulp-nn-mixed/XpulpNN/32bit/src/Depthwise/xpulp_nn_depthwise_u8_u8_i8.c', group=1, dot=2, left=3, output=31, word=4, row=4, zero_word=1, column=11, weights=0, channel=6, dot_mac_load=2),
    ('xpulpnn', 8, 8, 4): DepthwiseLoop(file='pulp-nn-mixed/XpulpNN/32bit/src/Depthwise/xpulp_nn_depthwise_u8_u4_i8.c', group=2, dot=4, left=6, output=59, word=8, row=5, zero_word=2, column=12, weights=0, channel=11, dot_mac_load=4),
    ('xpulpnn', 8, 8, 2): DepthwiseLoop(file='pulp-nn-mixed/XpulpNN/32bit/src/Depthwise/xpulp_nn_depthwise_u8_u2_i8.c', group=4, dot=12, left=12, output=67, word=19, row=7, zero_word=4, column=14, weights=0, channel=13, dot_mac_load=0),
    ('xpulpnn', 8, 4, 8): DepthwiseLoop(file='pulp-nn-mixed/XpulpNN/32bit/src/Depthwise/xpulp_nn_depthwise_u8_u8_i4.c', group=2, dot=4, left=6, output=59, word=8, row=5, zero_word=2, column=12, weights=6, channel=12, dot_mac_load=4),
    ('xpulpnn', 8, 4, 4): DepthwiseLoop(file='pulp-nn-mixed/XpulpNN/32bit/src/Depthwise/xpulp_nn_depthwise_u8_u4_i4.c', group=2, dot=4, left=6, output=59, word=8, row=5, zero_word=2, column=12, weights=6, channel=11, dot_mac_load=4),
    ('xpulpnn', 8, 4, 2): DepthwiseLoop(file='pulp-nn-mixed/XpulpNN/32bit/src/Depthwise/xpulp_nn_depthwise_u8_u2_i4.c', group=4, dot=12, left=12, output=67, word=19, row=7, zero_word=4, column=14, weights=6, channel=14, dot_mac_load=0),
    ('xpulpnn', 8, 2, 8): DepthwiseLoop(file='pulp-nn-mixed/XpulpNN/32bit/src/Depthwise/xpulp_nn_depthwise_u8_u8_i2.c', group=4, dot=12, left=12, output=67, word=19, row=7, zero_word=4, column=14, weights=12, channel=14, dot_mac_load=0),
    ('xpulpnn', 8, 2, 4): DepthwiseLoop(file='pulp-nn-mixed/XpulpNN/32bit/src/Depthwise/xpulp_nn_depthwise_u8_u4_i2.c', group=4, dot=12, left=12, output=67, word=19, row=7, zero_word=4, column=14, weights=12, channel=14, dot_mac_load=0),
    ('xpulpnn', 8, 2, 2): DepthwiseLoop(file='pulp-nn-mixed/XpulpNN/32bit/src/Depthwise/xpulp_nn_depthwise_u8_u2_i2.c', group=4, dot=12, left=12, output=67, word=19, row=7, zero_word=4, column=14, weights=12, channel=13, dot_mac_load=0),
    ('xpulpnn', 4, 8, 8): DepthwiseLoop(file='pulp-nn-mixed/XpulpNN/32bit/src/Depthwise/xpulp_nn_depthwise_u4_u8_i8.c', group=2, dot=4, left=6, output=59, word=19, row=5, zero_word=2, column=12, weights=0, channel=11, dot_mac_load=4),
    ('xpulpnn', 4, 8, 4): DepthwiseLoop(file='pulp-nn-mixed/XpulpNN/32bit/src/Depthwise/xpulp_nn_depthwise_u4_u4_i8.c', group=2, dot=4, left=6, output=59, word=19, row=5, zero_word=2, column=12, weights=0, channel=10, dot_mac_load=4),
    ('xpulpnn', 4, 8, 2): DepthwiseLoop(file='pulp-nn-mixed/XpulpNN/32bit/src/Depthwise/xpulp_nn_depthwise_u4_u2_i8.c', group=4, dot=12, left=12, output=67, word=38, row=7, zero_word=4, column=14, weights=0, channel=13, dot_mac_load=0),
    ('xpulpnn', 4, 4, 8): DepthwiseLoop(file='pulp-nn-mixed/XpulpNN/32bit/src/Depthwise/xpulp_nn_depthwise_u4_u8_i4.c', group=2, dot=4, left=6, output=59, word=19, row=5, zero_word=2, column=12, weights=6, channel=11, dot_mac_load=4),
    ('xpulpnn', 4, 4, 4): DepthwiseLoop(file='pulp-nn-mixed/XpulpNN/32bit/src/Depthwise/xpulp_nn_depthwise_u4_u4_i4.c', group=2, dot=4, left=6, output=59, word=19, row=5, zero_word=2, column=12, weights=6, channel=10, dot_mac_load=4),
    ('xpulpnn', 4, 4, 2): DepthwiseLoop(file='pulp-nn-mixed/XpulpNN/32bit/src/Depthwise/xpulp_nn_depthwise_u4_u2_i4.c', group=4, dot=12, left=12, output=67, word=38, row=7, zero_word=4, column=14, weights=6, channel=14, dot_mac_load=0),
    ('xpulpnn', 4, 2, 8): DepthwiseLoop(file='pulp-nn-mixed/XpulpNN/32bit/src/Depthwise/xpulp_nn_depthwise_u4_u8_i2.c', group=4, dot=12, left=12, output=67, word=38, row=7, zero_word=4, column=14, weights=12, channel=14, dot_mac_load=0),
    ('xpulpnn', 4, 2, 4): DepthwiseLoop(file='pulp-nn-mixed/XpulpNN/32bit/src/Depthwise/xpulp_nn_depthwise_u4_u4_i2.c', group=4, dot=12, left=12, output=67, word=38, row=7, zero_word=4, column=14, weights=12, channel=14, dot_mac_load=0),
    ('xpulpnn', 4, 2, 2): DepthwiseLoop(file='pulp-nn-mixed/XpulpNN/32bit/src/Depthwise/xpulp_nn_depthwise_u4_u2_i2.c', group=4, dot=12, left=12, output=67, word=38, row=7, zero_word=4, column=14, weights=12, channel=13, dot_mac_load=0),
    ('xpulpnn', 2, 8, 8): DepthwiseLoop(file='pulp-nn-mixed/XpulpNN/32bit/src/Depthwise/xpulp_nn_depthwise_u2_u8_i8.c', group=4, dot=12, left=12, output=67, word=35, row=7, zero_word=4, column=14, weights=0, channel=13, dot_mac_load=0),
    ('xpulpnn', 2, 8, 4): DepthwiseLoop(file='pulp-nn-mixed/XpulpNN/32bit/src/Depthwise/xpulp_nn_depthwise_u2_u4_i8.c', group=4, dot=12, left=12, output=67, word=35, row=7, zero_word=4, column=14, weights=0, channel=13, dot_mac_load=0),
    ('xpulpnn', 2, 8, 2): DepthwiseLoop(file='pulp-nn-mixed/XpulpNN/32bit/src/Depthwise/xpulp_nn_depthwise_u2_u2_i8.c', group=4, dot=12, left=12, output=67, word=35, row=7, zero_word=4, column=14, weights=0, channel=12, dot_mac_load=0),
    ('xpulpnn', 2, 4, 8): DepthwiseLoop(file='pulp-nn-mixed/XpulpNN/32bit/src/Depthwise/xpulp_nn_depthwise_u2_u8_i4.c', group=4, dot=12, left=12, output=67, word=35, row=7, zero_word=4, column=14, weights=6, channel=14, dot_mac_load=0),
    ('xpulpnn', 2, 4, 4): DepthwiseLoop(file='pulp-nn-mixed/XpulpNN/32bit/src/Depthwise/xpulp_nn_depthwise_u2_u4_i4.c', group=4, dot=12, left=12, output=67, word=35, row=7, zero_word=4, column=14, weights=6, channel=14, dot_mac_load=0),
    ('xpulpnn', 2, 4, 2): DepthwiseLoop(file='pulp-nn-mixed/XpulpNN/32bit/src/Depthwise/xpulp_nn_depthwise_u2_u2_i4.c', group=4, dot=12, left=12, output=67, word=35, row=7, zero_word=4, column=14, weights=6, channel=13, dot_mac_load=0),
    ('xpulpnn', 2, 2, 8): DepthwiseLoop(file='pulp-nn-mixed/XpulpNN/32bit/src/Depthwise/xpulp_nn_depthwise_u2_u8_i2.c', group=4, dot=12, left=12, output=67, word=35, row=7, zero_word=4, column=14, weights=12, channel=13, dot_mac_load=0),
    ('xpulpnn', 2, 2, 4): DepthwiseLoop(file='pulp-nn-mixed/XpulpNN/32bit/src/Depthwise/xpulp_nn_depthwise_u2_u4_i2.c', group=4, dot=12, left=12, output=67, word=35, row=7, zero_word=4, column=14, weights=12, channel=13, dot_mac_load=0),
    ('xpulpnn', 2, 2, 2): DepthwiseLoop(file='pulp-nn-mixed/XpulpNN/32bit/src/Depthwise/xpulp_nn_depthwise_u2_u2_i2.c', group=4, dot=12, left=12, output=67, word=35, row=7, zero_word=4, column=14, weights=12, channel=12, dot_mac_load=0),
}

ADD = {
    ('pulp-nn', 8): ElementLoop(file='pulp-nn/32bit/src/pulp_nn_add.c', instr=14, elems=1),
    ('xpulpv2', 8): ElementLoop(file='pulp-nn-mixed/XpulpV2/32bit/src/Add/pulp_nn_add_u8_u8_u8.c', instr=76, elems=4),
    ('xpulpv2', 4): ElementLoop(file='pulp-nn-mixed/XpulpV2/32bit/src/Add/pulp_nn_add_u4_u4_u4.c', instr=96, elems=4),
    ('xpulpv2', 2): ElementLoop(file='pulp-nn-mixed/XpulpV2/32bit/src/Add/pulp_nn_add_u2_u2_u2.c', instr=96, elems=4),
    ('xpulpnn', 8): ElementLoop(file='pulp-nn-mixed/XpulpNN/32bit/src/Add/xpulp_nn_add_u8_u8_u8.c', instr=76, elems=4),
    ('xpulpnn', 4): ElementLoop(file='pulp-nn-mixed/XpulpNN/32bit/src/Add/xpulp_nn_add_u4_u4_u4.c', instr=96, elems=4),
    ('xpulpnn', 2): ElementLoop(file='pulp-nn-mixed/XpulpNN/32bit/src/Add/xpulp_nn_add_u2_u2_u2.c', instr=96, elems=4),
}

POOL = {
    ('pulp-nn', 'avg', 8): PoolLoop(file='pulp-nn/32bit/src/pulp_nn_avgpool.c', kind='avg', group=1, pixel=23, channel=43, window=7, copy=0, word=0, call=0),
    ('pulp-nn', 'max', 8): PoolLoop(file='pulp-nn/32bit/src/pulp_nn_maxpool.c', kind='max', group=1, pixel=14, channel=0, window=0, copy=2, word=4, call=7),
    ('xpulpv2', 'avg', 8): PoolLoop(file='pulp-nn-mixed/XpulpV2/32bit/src/Pooling/AvgPool/pulp_nn_avgpool_u8_u8.c', kind='avg', group=1, pixel=22, channel=11, window=7, copy=0, word=0, call=0),
    ('xpulpv2', 'avg', 4): PoolLoop(file='pulp-nn-mixed/XpulpV2/32bit/src/Pooling/AvgPool/pulp_nn_avgpool_u4_u4.c', kind='avg', group=2, pixel=22, channel=17, window=9, copy=0, word=0, call=0),
    ('xpulpv2', 'avg', 2): PoolLoop(file='pulp-nn-mixed/XpulpV2/32bit/src/Pooling/AvgPool/pulp_nn_avgpool_u2_u2.c', kind='avg', group=4, pixel=22, channel=29, window=13, copy=0, word=0, call=0),
    ('xpulpv2', 'max', 8): PoolLoop(file='pulp-nn-mixed/XpulpV2/32bit/src/Pooling/MaxPool/pulp_nn_maxpool_u8.c', kind='max', group=1, pixel=14, channel=0, window=0, copy=2, word=4, call=7),
    ('xpulpnn', 'avg', 8): PoolLoop(file='pulp-nn-mixed/XpulpNN/32bit/src/Pooling/AvgPool/xpulp_nn_avgpool_u8_u8.c', kind='avg', group=1, pixel=22, channel=11, window=7, copy=0, word=0, call=0),
    ('xpulpnn', 'avg', 4): PoolLoop(file='pulp-nn-mixed/XpulpNN/32bit/src/Pooling/AvgPool/xpulp_nn_avgpool_u4_u4.c', kind='avg', group=2, pixel=22, channel=17, window=9, copy=0, word=0, call=0),
    ('xpulpnn', 'avg', 2): PoolLoop(file='pulp-nn-mixed/XpulpNN/32bit/src/Pooling/AvgPool/xpulp_nn_avgpool_u2_u2.c', kind='avg', group=4, pixel=22, channel=29, window=13, copy=0, word=0, call=0),
    ('xpulpnn', 'max', 8): PoolLoop(file='pulp-nn-mixed/XpulpNN/32bit/src/Pooling/MaxPool/xpulp_nn_maxpool_u8.c', kind='max', group=1, pixel=14, channel=0, window=0, copy=2, word=4, call=7),
}

MATMUL_TAIL = {
    ('pulp-nn', 8, 8, 8): MatmulTail(file='pulp-nn/32bit/src/pulp_nn_matmul.c', block=83, tail=14.0, row=25, row_tail=5.0),
    ('xpulpv2', 8, 8, 8): MatmulTail(file='pulp-nn-mixed/XpulpV2/32bit/src/MatrixMultiplication/pulp_nn_matmul_u8_u8_i8.c', block=107, tail=14.0, row=31, row_tail=5.0),
    ('xpulpv2', 8, 8, 4): MatmulTail(file='pulp-nn-mixed/XpulpV2/32bit/src/MatrixMultiplication/pulp_nn_matmul_u8_u4_i8.c', block=107, tail=14.0, row=42, row_tail=5.0),
    ('xpulpv2', 8, 8, 2): MatmulTail(file='pulp-nn-mixed/XpulpV2/32bit/src/MatrixMultiplication/pulp_nn_matmul_u8_u2_i8.c', block=107, tail=14.0, row=0, row_tail=0.0),
    ('xpulpv2', 8, 4, 8): MatmulTail(file='pulp-nn-mixed/XpulpV2/32bit/src/MatrixMultiplication/pulp_nn_matmul_u8_u8_i4.c', block=107, tail=18.5, row=31, row_tail=6.5),
    ('xpulpv2', 8, 4, 4): MatmulTail(file='pulp-nn-mixed/XpulpV2/32bit/src/MatrixMultiplication/pulp_nn_matmul_u8_u4_i4.c', block=107, tail=18.5, row=42, row_tail=6.5),
    ('xpulpv2', 8, 4, 2): MatmulTail(file='pulp-nn-mixed/XpulpV2/32bit/src/MatrixMultiplication/pulp_nn_matmul_u8_u2_i4.c', block=107, tail=18.5, row=0, row_tail=0.0),
    ('xpulpv2', 8, 2, 8): MatmulTail(file='pulp-nn-mixed/XpulpV2/32bit/src/MatrixMultiplication/pulp_nn_matmul_u8_u8_i2.c', block=107, tail=18.25, row=31, row_tail=6.25),
    ('xpulpv2', 8, 2, 4): MatmulTail(file='pulp-nn-mixed/XpulpV2/32bit/src/MatrixMultiplication/pulp_nn_matmul_u8_u4_i2.c', block=107, tail=18.25, row=42, row_tail=6.25),
    ('xpulpv2', 8, 2, 2): MatmulTail(file='pulp-nn-mixed/XpulpV2/32bit/src/MatrixMultiplication/pulp_nn_matmul_u8_u2_i2.c', block=107, tail=18.25, row=0, row_tail=0.0),
    ('xpulpv2', 4, 8, 8): MatmulTail(file='pulp-nn-mixed/XpulpV2/32bit/src/MatrixMultiplication/pulp_nn_matmul_u8_u8_i8.c', block=107, tail=14.0, row=31, row_tail=5.0),
    ('xpulpv2', 4, 8, 4): MatmulTail(file='pulp-nn-mixed/XpulpV2/32bit/src/MatrixMultiplication/pulp_nn_matmul_u8_u4_i8.c', block=107, tail=14.0, row=42, row_tail=5.0),
    ('xpulpv2', 4, 8, 2): MatmulTail(file='pulp-nn-mixed/XpulpV2/32bit/src/MatrixMultiplication/pulp_nn_matmul_u8_u2_i8.c', block=107, tail=14.0, row=0, row_tail=0.0),
    ('xpulpv2', 4, 4, 8): MatmulTail(file='pulp-nn-mixed/XpulpV2/32bit/src/MatrixMultiplication/pulp_nn_matmul_u8_u8_i4.c', block=107, tail=18.5, row=31, row_tail=6.5),
    ('xpulpv2', 4, 4, 4): MatmulTail(file='pulp-nn-mixed/XpulpV2/32bit/src/MatrixMultiplication/pulp_nn_matmul_u8_u4_i4.c', block=107, tail=18.5, row=42, row_tail=6.5),
    ('xpulpv2', 4, 4, 2): MatmulTail(file='pulp-nn-mixed/XpulpV2/32bit/src/MatrixMultiplication/pulp_nn_matmul_u8_u2_i4.c', block=107, tail=18.5, row=0, row_tail=0.0),
    ('xpulpv2', 4, 2, 8): MatmulTail(file='pulp-nn-mixed/XpulpV2/32bit/src/MatrixMultiplication/pulp_nn_matmul_u8_u8_i2.c', block=107, tail=18.25, row=31, row_tail=6.25),
    ('xpulpv2', 4, 2, 4): MatmulTail(file='pulp-nn-mixed/XpulpV2/32bit/src/MatrixMultiplication/pulp_nn_matmul_u8_u4_i2.c', block=107, tail=18.25, row=42, row_tail=6.25),
    ('xpulpv2', 4, 2, 2): MatmulTail(file='pulp-nn-mixed/XpulpV2/32bit/src/MatrixMultiplication/pulp_nn_matmul_u8_u2_i2.c', block=107, tail=18.25, row=0, row_tail=0.0),
    ('xpulpv2', 2, 8, 8): MatmulTail(file='pulp-nn-mixed/XpulpV2/32bit/src/MatrixMultiplication/pulp_nn_matmul_u8_u8_i8.c', block=107, tail=14.0, row=31, row_tail=5.0),
    ('xpulpv2', 2, 8, 4): MatmulTail(file='pulp-nn-mixed/XpulpV2/32bit/src/MatrixMultiplication/pulp_nn_matmul_u8_u4_i8.c', block=107, tail=14.0, row=42, row_tail=5.0),
    ('xpulpv2', 2, 8, 2): MatmulTail(file='pulp-nn-mixed/XpulpV2/32bit/src/MatrixMultiplication/pulp_nn_matmul_u8_u2_i8.c', block=107, tail=14.0, row=0, row_tail=0.0),
    ('xpulpv2', 2, 4, 8): MatmulTail(file='pulp-nn-mixed/XpulpV2/32bit/src/MatrixMultiplication/pulp_nn_matmul_u8_u8_i4.c', block=107, tail=18.5, row=31, row_tail=6.5),
    ('xpulpv2', 2, 4, 4): MatmulTail(file='pulp-nn-mixed/XpulpV2/32bit/src/MatrixMultiplication/pulp_nn_matmul_u8_u4_i4.c', block=107, tail=18.5, row=42, row_tail=6.5),
    ('xpulpv2', 2, 4, 2): MatmulTail(file='pulp-nn-mixed/XpulpV2/32bit/src/MatrixMultiplication/pulp_nn_matmul_u8_u2_i4.c', block=107, tail=18.5, row=0, row_tail=0.0),
    ('xpulpv2', 2, 2, 8): MatmulTail(file='pulp-nn-mixed/XpulpV2/32bit/src/MatrixMultiplication/pulp_nn_matmul_u8_u8_i2.c', block=107, tail=18.25, row=31, row_tail=6.25),
    ('xpulpv2', 2, 2, 4): MatmulTail(file='pulp-nn-mixed/XpulpV2/32bit/src/MatrixMultiplication/pulp_nn_matmul_u8_u4_i2.c', block=107, tail=18.25, row=42, row_tail=6.25),
    ('xpulpv2', 2, 2, 2): MatmulTail(file='pulp-nn-mixed/XpulpV2/32bit/src/MatrixMultiplication/pulp_nn_matmul_u8_u2_i2.c', block=107, tail=18.25, row=0, row_tail=0.0),
    ('xpulpnn-v1', 8, 8, 8): MatmulTail(file='pulp-nn-mixed/XpulpNN/32bit/src/MatrixMultiplication/xpulp_nn_matmul_u8_u8_i8.c', block=129, tail=14.0, row=45, row_tail=5.0),
    ('xpulpnn-v1', 8, 8, 4): MatmulTail(file='pulp-nn-mixed/XpulpNN/32bit/src/MatrixMultiplication/xpulp_nn_matmul_u8_u4_i8.c', block=129, tail=14.0, row=56, row_tail=5.0),
    ('xpulpnn-v1', 8, 8, 2): MatmulTail(file='pulp-nn-mixed/XpulpNN/32bit/src/MatrixMultiplication/xpulp_nn_matmul_u8_u2_i8.c', block=129, tail=14.0, row=0, row_tail=0.0),
    ('xpulpnn-v1', 8, 4, 8): MatmulTail(file='pulp-nn-mixed/XpulpNN/32bit/src/MatrixMultiplication/xpulp_nn_matmul_u8_u8_i4.c', block=131, tail=18.5, row=43, row_tail=6.5),
    ('xpulpnn-v1', 8, 4, 4): MatmulTail(file='pulp-nn-mixed/XpulpNN/32bit/src/MatrixMultiplication/xpulp_nn_matmul_u8_u4_i4.c', block=131, tail=18.5, row=54, row_tail=6.5),
    ('xpulpnn-v1', 8, 4, 2): MatmulTail(file='pulp-nn-mixed/XpulpNN/32bit/src/MatrixMultiplication/xpulp_nn_matmul_u8_u2_i4.c', block=131, tail=18.5, row=0, row_tail=0.0),
    ('xpulpnn-v1', 8, 2, 8): MatmulTail(file='pulp-nn-mixed/XpulpNN/32bit/src/MatrixMultiplication/xpulp_nn_matmul_u8_u8_i2.c', block=131, tail=18.25, row=43, row_tail=6.25),
    ('xpulpnn-v1', 8, 2, 4): MatmulTail(file='pulp-nn-mixed/XpulpNN/32bit/src/MatrixMultiplication/xpulp_nn_matmul_u8_u4_i2.c', block=131, tail=18.25, row=54, row_tail=6.25),
    ('xpulpnn-v1', 8, 2, 2): MatmulTail(file='pulp-nn-mixed/XpulpNN/32bit/src/MatrixMultiplication/xpulp_nn_matmul_u8_u2_i2.c', block=131, tail=18.25, row=0, row_tail=0.0),
    ('xpulpnn-v1', 4, 8, 8): MatmulTail(file='pulp-nn-mixed/XpulpNN/32bit/src/MatrixMultiplication/xpulp_nn_matmul_u4_u8_i8.c', block=129, tail=14.0, row=45, row_tail=5.0),
    ('xpulpnn-v1', 4, 8, 4): MatmulTail(file='pulp-nn-mixed/XpulpNN/32bit/src/MatrixMultiplication/xpulp_nn_matmul_u4_u4_i8.c', block=129, tail=14.0, row=56, row_tail=5.0),
    ('xpulpnn-v1', 4, 8, 2): MatmulTail(file='pulp-nn-mixed/XpulpNN/32bit/src/MatrixMultiplication/xpulp_nn_matmul_u4_u2_i8.c', block=129, tail=14.0, row=0, row_tail=0.0),
    ('xpulpnn-v1', 4, 4, 8): MatmulTail(file='pulp-nn-mixed/XpulpNN/32bit/src/MatrixMultiplication/xpulp_nn_matmul_u4_u8_i4.c', block=129, tail=20.5, row=45, row_tail=8.5),
    ('xpulpnn-v1', 4, 4, 4): MatmulTail(file='pulp-nn-mixed/XpulpNN/32bit/src/MatrixMultiplication/xpulp_nn_matmul_u4_u4_i4.c', block=129, tail=20.5, row=56, row_tail=8.5),
    ('xpulpnn-v1', 4, 4, 2): MatmulTail(file='pulp-nn-mixed/XpulpNN/32bit/src/MatrixMultiplication/xpulp_nn_matmul_u4_u2_i4.c', block=129, tail=20.5, row=0, row_tail=0.0),
    ('xpulpnn-v1', 4, 2, 8): MatmulTail(file='pulp-nn-mixed/XpulpNN/32bit/src/MatrixMultiplication/xpulp_nn_matmul_u4_u8_i2.c', block=131, tail=20.25, row=43, row_tail=8.25),
    ('xpulpnn-v1', 4, 2, 4): MatmulTail(file='pulp-nn-mixed/XpulpNN/32bit/src/MatrixMultiplication/xpulp_nn_matmul_u4_u4_i2.c', block=131, tail=20.25, row=54, row_tail=8.25),
    ('xpulpnn-v1', 4, 2, 2): MatmulTail(file='pulp-nn-mixed/XpulpNN/32bit/src/MatrixMultiplication/xpulp_nn_matmul_u4_u2_i2.c', block=131, tail=20.25, row=0, row_tail=0.0),
    ('xpulpnn-v1', 2, 8, 8): MatmulTail(file='pulp-nn-mixed/XpulpNN/32bit/src/MatrixMultiplication/xpulp_nn_matmul_u2_u8_i8.c', block=129, tail=14.0, row=45, row_tail=5.0),
    ('xpulpnn-v1', 2, 8, 4): MatmulTail(file='pulp-nn-mixed/XpulpNN/32bit/src/MatrixMultiplication/xpulp_nn_matmul_u2_u4_i8.c', block=129, tail=14.0, row=56, row_tail=5.0),
    ('xpulpnn-v1', 2, 8, 2): MatmulTail(file='pulp-nn-mixed/XpulpNN/32bit/src/MatrixMultiplication/xpulp_nn_matmul_u2_u2_i8.c', block=129, tail=14.0, row=0, row_tail=0.0),
    ('xpulpnn-v1', 2, 4, 8): MatmulTail(file='pulp-nn-mixed/XpulpNN/32bit/src/MatrixMultiplication/xpulp_nn_matmul_u2_u8_i4.c', block=129, tail=20.5, row=45, row_tail=8.5),
    ('xpulpnn-v1', 2, 4, 4): MatmulTail(file='pulp-nn-mixed/XpulpNN/32bit/src/MatrixMultiplication/xpulp_nn_matmul_u2_u4_i4.c', block=129, tail=20.5, row=56, row_tail=8.5),
    ('xpulpnn-v1', 2, 4, 2): MatmulTail(file='pulp-nn-mixed/XpulpNN/32bit/src/MatrixMultiplication/xpulp_nn_matmul_u2_u2_i4.c', block=129, tail=20.5, row=0, row_tail=0.0),
    ('xpulpnn-v1', 2, 2, 8): MatmulTail(file='pulp-nn-mixed/XpulpNN/32bit/src/MatrixMultiplication/xpulp_nn_matmul_u2_u8_i2.c', block=129, tail=20.25, row=45, row_tail=8.25),
    ('xpulpnn-v1', 2, 2, 4): MatmulTail(file='pulp-nn-mixed/XpulpNN/32bit/src/MatrixMultiplication/xpulp_nn_matmul_u2_u4_i2.c', block=129, tail=20.25, row=56, row_tail=8.25),
    ('xpulpnn-v1', 2, 2, 2): MatmulTail(file='pulp-nn-mixed/XpulpNN/32bit/src/MatrixMultiplication/xpulp_nn_matmul_u2_u2_i2.c', block=129, tail=20.25, row=0, row_tail=0.0),
    ('xpulpnn-v2', 8, 8, 8): MatmulTail(file='pulp-nn-mixed/XpulpNN-mixed/32bit/src/MatrixMultiplication/xpulp_nn_mix_matmul_u8_u8_i8.c', block=121, tail=14.0, row=49, row_tail=5.0),
    ('xpulpnn-v2', 8, 8, 4): MatmulTail(file='pulp-nn-mixed/XpulpNN-mixed/32bit/src/MatrixMultiplication/xpulp_nn_mix_matmul_u8_u4_i8.c', block=121, tail=14.0, row=60, row_tail=5.0),
    ('xpulpnn-v2', 8, 8, 2): MatmulTail(file='pulp-nn-mixed/XpulpNN-mixed/32bit/src/MatrixMultiplication/xpulp_nn_mix_matmul_u8_u2_i8.c', block=121, tail=14.0, row=0, row_tail=0.0),
    ('xpulpnn-v2', 8, 4, 8): MatmulTail(file='pulp-nn-mixed/XpulpNN-mixed/32bit/src/MatrixMultiplication/xpulp_nn_mix_matmul_u8_u8_i4.c', block=118, tail=18.5, row=44, row_tail=6.5),
    ('xpulpnn-v2', 8, 4, 4): MatmulTail(file='pulp-nn-mixed/XpulpNN-mixed/32bit/src/MatrixMultiplication/xpulp_nn_mix_matmul_u8_u4_i4.c', block=118, tail=18.5, row=55, row_tail=6.5),
    ('xpulpnn-v2', 8, 4, 2): MatmulTail(file='pulp-nn-mixed/XpulpNN-mixed/32bit/src/MatrixMultiplication/xpulp_nn_mix_matmul_u8_u2_i4.c', block=118, tail=18.5, row=0, row_tail=0.0),
    ('xpulpnn-v2', 8, 2, 8): MatmulTail(file='pulp-nn-mixed/XpulpNN-mixed/32bit/src/MatrixMultiplication/xpulp_nn_mix_matmul_u8_u8_i2.c', block=118, tail=18.25, row=44, row_tail=6.25),
    ('xpulpnn-v2', 8, 2, 4): MatmulTail(file='pulp-nn-mixed/XpulpNN-mixed/32bit/src/MatrixMultiplication/xpulp_nn_mix_matmul_u8_u4_i2.c', block=118, tail=18.25, row=55, row_tail=6.25),
    ('xpulpnn-v2', 8, 2, 2): MatmulTail(file='pulp-nn-mixed/XpulpNN-mixed/32bit/src/MatrixMultiplication/xpulp_nn_mix_matmul_u8_u2_i2.c', block=118, tail=18.25, row=0, row_tail=0.0),
    ('xpulpnn-v2', 4, 8, 8): MatmulTail(file='pulp-nn-mixed/XpulpNN-mixed/32bit/src/MatrixMultiplication/xpulp_nn_mix_matmul_u4_u8_i8.c', block=121, tail=14.0, row=49, row_tail=5.0),
    ('xpulpnn-v2', 4, 8, 4): MatmulTail(file='pulp-nn-mixed/XpulpNN-mixed/32bit/src/MatrixMultiplication/xpulp_nn_mix_matmul_u4_u4_i8.c', block=121, tail=14.0, row=60, row_tail=5.0),
    ('xpulpnn-v2', 4, 8, 2): MatmulTail(file='pulp-nn-mixed/XpulpNN-mixed/32bit/src/MatrixMultiplication/xpulp_nn_mix_matmul_u4_u2_i8.c', block=121, tail=14.0, row=0, row_tail=0.0),
    ('xpulpnn-v2', 4, 4, 8): MatmulTail(file='pulp-nn-mixed/XpulpNN-mixed/32bit/src/MatrixMultiplication/xpulp_nn_mix_matmul_u4_u8_i4.c', block=121, tail=20.5, row=49, row_tail=8.5),
    ('xpulpnn-v2', 4, 4, 4): MatmulTail(file='pulp-nn-mixed/XpulpNN-mixed/32bit/src/MatrixMultiplication/xpulp_nn_mix_matmul_u4_u4_i4.c', block=121, tail=20.5, row=60, row_tail=8.5),
    ('xpulpnn-v2', 4, 4, 2): MatmulTail(file='pulp-nn-mixed/XpulpNN-mixed/32bit/src/MatrixMultiplication/xpulp_nn_mix_matmul_u4_u2_i4.c', block=121, tail=20.5, row=0, row_tail=0.0),
    ('xpulpnn-v2', 4, 2, 8): MatmulTail(file='pulp-nn-mixed/XpulpNN-mixed/32bit/src/MatrixMultiplication/xpulp_nn_mix_matmul_u4_u8_i2.c', block=118, tail=20.25, row=44, row_tail=8.25),
    ('xpulpnn-v2', 4, 2, 4): MatmulTail(file='pulp-nn-mixed/XpulpNN-mixed/32bit/src/MatrixMultiplication/xpulp_nn_mix_matmul_u4_u4_i2.c', block=118, tail=20.25, row=55, row_tail=8.25),
    ('xpulpnn-v2', 4, 2, 2): MatmulTail(file='pulp-nn-mixed/XpulpNN-mixed/32bit/src/MatrixMultiplication/xpulp_nn_mix_matmul_u4_u2_i2.c', block=118, tail=20.25, row=0, row_tail=0.0),
    ('xpulpnn-v2', 2, 8, 8): MatmulTail(file='pulp-nn-mixed/XpulpNN-mixed/32bit/src/MatrixMultiplication/xpulp_nn_mix_matmul_u2_u8_i8.c', block=121, tail=14.0, row=49, row_tail=5.0),
    ('xpulpnn-v2', 2, 8, 4): MatmulTail(file='pulp-nn-mixed/XpulpNN-mixed/32bit/src/MatrixMultiplication/xpulp_nn_mix_matmul_u2_u4_i8.c', block=121, tail=14.0, row=60, row_tail=5.0),
    ('xpulpnn-v2', 2, 8, 2): MatmulTail(file='pulp-nn-mixed/XpulpNN-mixed/32bit/src/MatrixMultiplication/xpulp_nn_mix_matmul_u2_u2_i8.c', block=121, tail=14.0, row=0, row_tail=0.0),
    ('xpulpnn-v2', 2, 4, 8): MatmulTail(file='pulp-nn-mixed/XpulpNN-mixed/32bit/src/MatrixMultiplication/xpulp_nn_mix_matmul_u2_u8_i4.c', block=121, tail=20.5, row=49, row_tail=8.5),
    ('xpulpnn-v2', 2, 4, 4): MatmulTail(file='pulp-nn-mixed/XpulpNN-mixed/32bit/src/MatrixMultiplication/xpulp_nn_mix_matmul_u2_u4_i4.c', block=121, tail=20.5, row=60, row_tail=8.5),
    ('xpulpnn-v2', 2, 4, 2): MatmulTail(file='pulp-nn-mixed/XpulpNN-mixed/32bit/src/MatrixMultiplication/xpulp_nn_mix_matmul_u2_u2_i4.c', block=121, tail=20.5, row=0, row_tail=0.0),
    ('xpulpnn-v2', 2, 2, 8): MatmulTail(file='pulp-nn-mixed/XpulpNN-mixed/32bit/src/MatrixMultiplication/xpulp_nn_mix_matmul_u2_u8_i2.c', block=121, tail=20.25, row=49, row_tail=8.25),
    ('xpulpnn-v2', 2, 2, 4): MatmulTail(file='pulp-nn-mixed/XpulpNN-mixed/32bit/src/MatrixMultiplication/xpulp_nn_mix_matmul_u2_u4_i2.c', block=121, tail=20.25, row=60, row_tail=8.25),
    ('xpulpnn-v2', 2, 2, 2): MatmulTail(file='pulp-nn-mixed/XpulpNN-mixed/32bit/src/MatrixMultiplication/xpulp_nn_mix_matmul_u2_u2_i2.c', block=121, tail=20.25, row=0, row_tail=0.0),
}

LINEAR_TAIL = {
    ('pulp-nn', 8, 8, 8): LinearTail(file='pulp-nn/32bit/src/pulp_nn_linear.c', neurons=1, block=16, tail=3.0),
    ('pulp-nn', 8, 8, 32): LinearTail(file='pulp-nn/32bit/src/pulp_nn_linear_out_32.c', neurons=1, block=10, tail=3.0),
    ('xpulpv2', 8, 8, 8): LinearTail(file='pulp-nn-mixed/XpulpV2/32bit/src/LinearQuant/pulp_nn_linear_u8_u8_i8.c', neurons=2, block=35, tail=5.0),
    ('xpulpv2', 8, 8, 32): LinearTail(file='pulp-nn-mixed/XpulpV2/32bit/src/LinearNoQuant/pulp_nn_linear_u8_i32_i8.c', neurons=2, block=13, tail=5.0),
    ('xpulpv2', 8, 4, 8): LinearTail(file='pulp-nn-mixed/XpulpV2/32bit/src/LinearQuant/pulp_nn_linear_u8_u8_i4.c', neurons=2, block=35, tail=14.0),
    ('xpulpv2', 8, 4, 32): LinearTail(file='pulp-nn-mixed/XpulpV2/32bit/src/LinearNoQuant/pulp_nn_linear_u8_i32_i4.c', neurons=2, block=13, tail=14.0),
    ('xpulpv2', 8, 2, 8): LinearTail(file='pulp-nn-mixed/XpulpV2/32bit/src/LinearQuant/pulp_nn_linear_u8_u8_i2.c', neurons=2, block=35, tail=28.0),
    ('xpulpv2', 8, 2, 32): LinearTail(file='pulp-nn-mixed/XpulpV2/32bit/src/LinearNoQuant/pulp_nn_linear_u8_i32_i2.c', neurons=2, block=13, tail=28.0),
    ('xpulpv2', 4, 8, 8): LinearTail(file='pulp-nn-mixed/XpulpV2/32bit/src/LinearQuant/pulp_nn_linear_u4_u8_i8.c', neurons=2, block=35, tail=12.0),
    ('xpulpv2', 4, 8, 32): LinearTail(file='pulp-nn-mixed/XpulpV2/32bit/src/LinearNoQuant/pulp_nn_linear_u4_i32_i8.c', neurons=2, block=13, tail=12.0),
    ('xpulpv2', 4, 4, 8): LinearTail(file='pulp-nn-mixed/XpulpV2/32bit/src/LinearQuant/pulp_nn_linear_u4_u8_i4.c', neurons=2, block=35, tail=16.0),
    ('xpulpv2', 4, 4, 32): LinearTail(file='pulp-nn-mixed/XpulpV2/32bit/src/LinearNoQuant/pulp_nn_linear_u4_i32_i4.c', neurons=2, block=13, tail=16.0),
    ('xpulpv2', 4, 2, 8): LinearTail(file='pulp-nn-mixed/XpulpV2/32bit/src/LinearQuant/pulp_nn_linear_u4_u8_i2.c', neurons=2, block=35, tail=32.0),
    ('xpulpv2', 4, 2, 32): LinearTail(file='pulp-nn-mixed/XpulpV2/32bit/src/LinearNoQuant/pulp_nn_linear_u4_i32_i2.c', neurons=2, block=13, tail=32.0),
    ('xpulpv2', 2, 8, 8): LinearTail(file='pulp-nn-mixed/XpulpV2/32bit/src/LinearQuant/pulp_nn_linear_u2_u8_i8.c', neurons=2, block=35, tail=24.0),
    ('xpulpv2', 2, 8, 32): LinearTail(file='pulp-nn-mixed/XpulpV2/32bit/src/LinearNoQuant/pulp_nn_linear_u2_i32_i8.c', neurons=2, block=13, tail=24.0),
    ('xpulpv2', 2, 4, 8): LinearTail(file='pulp-nn-mixed/XpulpV2/32bit/src/LinearQuant/pulp_nn_linear_u2_u8_i4.c', neurons=2, block=35, tail=32.0),
    ('xpulpv2', 2, 4, 32): LinearTail(file='pulp-nn-mixed/XpulpV2/32bit/src/LinearNoQuant/pulp_nn_linear_u2_i32_i4.c', neurons=2, block=13, tail=32.0),
    ('xpulpv2', 2, 2, 8): LinearTail(file='pulp-nn-mixed/XpulpV2/32bit/src/LinearQuant/pulp_nn_linear_u2_u8_i2.c', neurons=2, block=35, tail=32.0),
    ('xpulpv2', 2, 2, 32): LinearTail(file='pulp-nn-mixed/XpulpV2/32bit/src/LinearNoQuant/pulp_nn_linear_u2_i32_i2.c', neurons=2, block=13, tail=32.0),
    ('xpulpnn-v1', 8, 8, 8): LinearTail(file='pulp-nn-mixed/XpulpNN/32bit/src/LinearQuant/xpulp_nn_linear_u8_u8_i8.c', neurons=1, block=28, tail=3.0),
    ('xpulpnn-v1', 8, 8, 32): LinearTail(file='pulp-nn-mixed/XpulpNN/32bit/src/LinearNoQuant/xpulp_nn_linear_u8_i32_i8.c', neurons=1, block=18, tail=3.0),
    ('xpulpnn-v1', 8, 4, 8): LinearTail(file='pulp-nn-mixed/XpulpNN/32bit/src/LinearQuant/xpulp_nn_linear_u8_u8_i4.c', neurons=1, block=28, tail=4.5),
    ('xpulpnn-v1', 8, 4, 32): LinearTail(file='pulp-nn-mixed/XpulpNN/32bit/src/LinearNoQuant/xpulp_nn_linear_u8_i32_i4.c', neurons=1, block=18, tail=4.5),
    ('xpulpnn-v1', 8, 2, 8): LinearTail(file='pulp-nn-mixed/XpulpNN/32bit/src/LinearQuant/xpulp_nn_linear_u8_u8_i2.c', neurons=1, block=28, tail=4.25),
    ('xpulpnn-v1', 8, 2, 32): LinearTail(file='pulp-nn-mixed/XpulpNN/32bit/src/LinearNoQuant/xpulp_nn_linear_u8_i32_i2.c', neurons=1, block=18, tail=4.25),
    ('xpulpnn-v1', 4, 8, 8): LinearTail(file='pulp-nn-mixed/XpulpNN/32bit/src/LinearQuant/xpulp_nn_linear_u4_u8_i8.c', neurons=1, block=28, tail=4.5),
    ('xpulpnn-v1', 4, 8, 32): LinearTail(file='pulp-nn-mixed/XpulpNN/32bit/src/LinearNoQuant/xpulp_nn_linear_u4_i32_i8.c', neurons=1, block=18, tail=4.5),
    ('xpulpnn-v1', 4, 4, 8): LinearTail(file='pulp-nn-mixed/XpulpNN/32bit/src/LinearQuant/xpulp_nn_linear_u4_u8_i4.c', neurons=1, block=28, tail=5.5),
    ('xpulpnn-v1', 4, 4, 32): LinearTail(file='pulp-nn-mixed/XpulpNN/32bit/src/LinearNoQuant/xpulp_nn_linear_u4_i32_i4.c', neurons=1, block=18, tail=5.5),
    ('xpulpnn-v1', 4, 2, 8): LinearTail(file='pulp-nn-mixed/XpulpNN/32bit/src/LinearQuant/xpulp_nn_linear_u4_u8_i2.c', neurons=1, block=28, tail=5.25),
    ('xpulpnn-v1', 4, 2, 32): LinearTail(file='pulp-nn-mixed/XpulpNN/32bit/src/LinearNoQuant/xpulp_nn_linear_u4_i32_i2.c', neurons=1, block=18, tail=5.25),
    ('xpulpnn-v1', 2, 8, 8): LinearTail(file='pulp-nn-mixed/XpulpNN/32bit/src/LinearQuant/xpulp_nn_linear_u2_u8_i8.c', neurons=1, block=28, tail=4.25),
    ('xpulpnn-v1', 2, 8, 32): LinearTail(file='pulp-nn-mixed/XpulpNN/32bit/src/LinearNoQuant/xpulp_nn_linear_u2_i32_i8.c', neurons=1, block=18, tail=4.25),
    ('xpulpnn-v1', 2, 4, 8): LinearTail(file='pulp-nn-mixed/XpulpNN/32bit/src/LinearQuant/xpulp_nn_linear_u2_u8_i4.c', neurons=1, block=28, tail=5.25),
    ('xpulpnn-v1', 2, 4, 32): LinearTail(file='pulp-nn-mixed/XpulpNN/32bit/src/LinearNoQuant/xpulp_nn_linear_u2_i32_i4.c', neurons=1, block=18, tail=5.25),
    ('xpulpnn-v1', 2, 2, 8): LinearTail(file='pulp-nn-mixed/XpulpNN/32bit/src/LinearQuant/xpulp_nn_linear_u2_u8_i2.c', neurons=1, block=28, tail=5.25),
    ('xpulpnn-v1', 2, 2, 32): LinearTail(file='pulp-nn-mixed/XpulpNN/32bit/src/LinearNoQuant/xpulp_nn_linear_u2_i32_i2.c', neurons=1, block=18, tail=5.25),
    ('xpulpnn-v2', 8, 8, 8): LinearTail(file='pulp-nn-mixed/XpulpNN/32bit/src/LinearQuant/xpulp_nn_linear_u8_u8_i8.c', neurons=1, block=28, tail=3.0),
    ('xpulpnn-v2', 8, 8, 32): LinearTail(file='pulp-nn-mixed/XpulpNN/32bit/src/LinearNoQuant/xpulp_nn_linear_u8_i32_i8.c', neurons=1, block=18, tail=3.0),
    ('xpulpnn-v2', 8, 4, 8): LinearTail(file='pulp-nn-mixed/XpulpNN/32bit/src/LinearQuant/xpulp_nn_linear_u8_u8_i4.c', neurons=1, block=28, tail=4.5),
    ('xpulpnn-v2', 8, 4, 32): LinearTail(file='pulp-nn-mixed/XpulpNN/32bit/src/LinearNoQuant/xpulp_nn_linear_u8_i32_i4.c', neurons=1, block=18, tail=4.5),
    ('xpulpnn-v2', 8, 2, 8): LinearTail(file='pulp-nn-mixed/XpulpNN/32bit/src/LinearQuant/xpulp_nn_linear_u8_u8_i2.c', neurons=1, block=28, tail=4.25),
    ('xpulpnn-v2', 8, 2, 32): LinearTail(file='pulp-nn-mixed/XpulpNN/32bit/src/LinearNoQuant/xpulp_nn_linear_u8_i32_i2.c', neurons=1, block=18, tail=4.25),
    ('xpulpnn-v2', 4, 8, 8): LinearTail(file='pulp-nn-mixed/XpulpNN/32bit/src/LinearQuant/xpulp_nn_linear_u4_u8_i8.c', neurons=1, block=28, tail=4.5),
    ('xpulpnn-v2', 4, 8, 32): LinearTail(file='pulp-nn-mixed/XpulpNN/32bit/src/LinearNoQuant/xpulp_nn_linear_u4_i32_i8.c', neurons=1, block=18, tail=4.5),
    ('xpulpnn-v2', 4, 4, 8): LinearTail(file='pulp-nn-mixed/XpulpNN/32bit/src/LinearQuant/xpulp_nn_linear_u4_u8_i4.c', neurons=1, block=28, tail=5.5),
    ('xpulpnn-v2', 4, 4, 32): LinearTail(file='pulp-nn-mixed/XpulpNN/32bit/src/LinearNoQuant/xpulp_nn_linear_u4_i32_i4.c', neurons=1, block=18, tail=5.5),
    ('xpulpnn-v2', 4, 2, 8): LinearTail(file='pulp-nn-mixed/XpulpNN/32bit/src/LinearQuant/xpulp_nn_linear_u4_u8_i2.c', neurons=1, block=28, tail=5.25),
    ('xpulpnn-v2', 4, 2, 32): LinearTail(file='pulp-nn-mixed/XpulpNN/32bit/src/LinearNoQuant/xpulp_nn_linear_u4_i32_i2.c', neurons=1, block=18, tail=5.25),
    ('xpulpnn-v2', 2, 8, 8): LinearTail(file='pulp-nn-mixed/XpulpNN/32bit/src/LinearQuant/xpulp_nn_linear_u2_u8_i8.c', neurons=1, block=28, tail=4.25),
    ('xpulpnn-v2', 2, 8, 32): LinearTail(file='pulp-nn-mixed/XpulpNN/32bit/src/LinearNoQuant/xpulp_nn_linear_u2_i32_i8.c', neurons=1, block=18, tail=4.25),
    ('xpulpnn-v2', 2, 4, 8): LinearTail(file='pulp-nn-mixed/XpulpNN/32bit/src/LinearQuant/xpulp_nn_linear_u2_u8_i4.c', neurons=1, block=28, tail=5.25),
    ('xpulpnn-v2', 2, 4, 32): LinearTail(file='pulp-nn-mixed/XpulpNN/32bit/src/LinearNoQuant/xpulp_nn_linear_u2_i32_i4.c', neurons=1, block=18, tail=5.25),
    ('xpulpnn-v2', 2, 2, 8): LinearTail(file='pulp-nn-mixed/XpulpNN/32bit/src/LinearQuant/xpulp_nn_linear_u2_u8_i2.c', neurons=1, block=28, tail=5.25),
    ('xpulpnn-v2', 2, 2, 32): LinearTail(file='pulp-nn-mixed/XpulpNN/32bit/src/LinearNoQuant/xpulp_nn_linear_u2_i32_i2.c', neurons=1, block=18, tail=5.25),
}

