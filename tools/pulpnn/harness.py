"""PULP-NN and PULP-NN-mixed on the host: the real kernel sources, compiled with gcc, against jaxbp's interpreter.

The kernels come from the DORY checkout (`../shared/dory`, see its PROVENANCE.md), compiled in place (never
copied) with `pmsis.h` of this folder standing in for the PULP SDK: the Xpulp builtins in plain C, one core.
Libraries: PULP-NN (8-bit, `pulp-nn/32bit`: uint8 activations, int8 weights) and PULP-NN-mixed XpulpV2 with
32-bit requant constants (`pulp-nn-mixed/XpulpV2/32bit`: u/i 2/4/8-bit activations, 2/4/8-bit weights) -- the
ones DORY's PULP.GAP8 target uses with `BNRelu_bits` 32. Each kernel is compiled once into its own shared
object, cached by a hash of its sources, this header and the flags (in `$TMPDIR/jaxbp-pulpnn`).

A case is a one-node jaxbp graph (built by `GraphBuilder`, so k/λ/d and the add's fields are jaxbp's own
choice), random integer inputs, and the kernel call DORY would make for it: BN-style requant (flag_relu = 1,
flag_batchnorm = 1, κ = k, λ' = λ + k·bias: DORY folds the bias into λ), channels-last activations (the
depthwise kernels read channel-major input, as DORY feeds them), sub-byte values packed low bits first. The
kernels are 32-bit-pointer code (`int base_ptr = pIn + ...`), so all buffers live below 2^31 (MAP_32BIT).

  python -m tools.pulpnn.harness --layers 500 --seed 0     # the bit-exact run; prints the kernels covered
"""

from __future__ import annotations

import argparse
import collections
import ctypes
import dataclasses
import hashlib
import mmap
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence

import numpy as np

from jaxbp import integerize as I
from jaxbp.integerize.builder import GraphBuilder, Quant
from jaxbp.integerize.graph import Graph
from jaxbp.integerize.ranges import _dot_range

KERNELS_REL = pathlib.Path("dory/Hardware_targets/PULP/Backend_Kernels")
LIBS = {"pulp-nn": pathlib.Path("pulp-nn/32bit"), "pulp-nn-mixed": pathlib.Path("pulp-nn-mixed/XpulpV2/32bit")}
SHIM_DIR = pathlib.Path(__file__).resolve().parent
CFLAGS = ("-O1", "-w", "-fwrapv", "-fPIC", "-fno-semantic-interposition", "-shared", "-flax-vector-conversions", "-fno-strict-aliasing",
          "-DNUM_CORES=1")
# Where a kernel disagrees with jaxbp because of a kernel bug (the generator avoids these inputs; the tests show
# each bug on a minimal case).
KNOWN_BUGS = {
    "depthwise_lt4": "PULP-NN-mixed depthwise (all types) and PULP-NN's depthwise_generic with fewer than 4 weights "
                     "per channel (kh·kw < 4, e.g. a 1-D kernel of 3 or a 1x1 depthwise): the dot-product loop is a "
                     "do-while run once with colCnt = 0, reading the next channel's weights (PULP-NN has "
                     "depthwise_generic_less_4_weights for this; PULP-NN-mixed has no such variant)",
    "maxpool_pad_stride1": "PULP-NN and PULP-NN-mixed maxpool with left padding and stride 1 along x: the first "
                           "(in-place, along x) pass overwrites input column i with output i while the window of "
                           "output i+1 still reads it",
    "maxpool_subbyte": "PULP-NN-mixed maxpool_u4/i4/u2/i2: pulp_nn_compare_and_replace_if_larger_{u4,i4,u2,i2} "
                       "store through an uninitialized pointer (`int8_t *out;` then `*((v4s *)out) = ...`): "
                       "undefined behaviour, a segfault on the host",
    "depthwise_geometry": "PULP-NN's depthwise_generic(_less_4_weights) and PULP-NN-mixed depthwise count the "
                          "right-padding zeros of column i as 1 + i·s - Wo·s + pad_r, right only when the padded "
                          "width is Wo·s - 1 + k; they also mismatched with even kernels under symmetric padding and "
                          "with inputs narrower than the kernel (not fully characterized). Exact here: odd kernels, "
                          "padding 0 or k//2, input wider than the kernel, stride 1, or 2 with that width rule",
    "co_parallel": "PULP-NN's pointwise_Co_parallel (not called by DORY) disagreed from the second output row on "
                   "(not characterized)",
    "linear_w2": "PULP-NN-mixed linear_*_*_i2 (2-bit weights) with an input length that is not a multiple of 16: "
                 "the leftover-input loop gets wrong results (seen: i8 input with 24, u8 input with 40)",
    "pointwise_odd": "PULP-NN-mixed pointwise (not called by DORY, which runs 1x1 convs on the conv kernels) with "
                     "2/4-bit inputs and an odd output width: the leftover column addresses its input pixel as "
                     "pIn + i_out_x·ch_in (values) instead of ·ch_in_r (bytes); it also mismatched with signed 8-bit "
                     "inputs (not characterized)",
}
KINDS = ("conv", "pointwise", "depthwise", "linear", "linear_i32", "add", "avgpool", "global_avgpool", "maxpool")
MAP_32BIT = 0x40
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


class HarnessUnavailable(RuntimeError):
  """The DORY kernel sources or gcc are missing (the message says which)."""


class CaseRejected(ValueError):
  """A random case the kernel cannot take as is (e.g. λ + k·bias leaves int32); not a disagreement."""


def default_dory_dir() -> pathlib.Path:
  """`../shared/dory` relative to the repository root (the layout CI uses)."""
  return pathlib.Path(__file__).resolve().parents[3] / "shared" / "dory"


def unavailable_reason(dory: pathlib.Path) -> str | None:
  """Why the harness cannot run here (None: it can)."""
  if not (dory / KERNELS_REL).is_dir():
    return f"PULP-NN kernel sources not found under {dory / KERNELS_REL} (the DORY checkout, ../shared/dory)"
  if not _which("gcc"):
    return "gcc not found on PATH"
  return None


def _which(name: str) -> bool:
  return any((pathlib.Path(p) / name).is_file() for p in os.environ.get("PATH", "").split(os.pathsep))


# ---- compiling ---------------------------------------------------------------------------------------------


class Kernels:
  """The kernel libraries of one DORY checkout: `fn(lib, name)` is the compiled kernel (ctypes, cached)."""

  def __init__(self, dory: pathlib.Path, cache: pathlib.Path | None = None):
    reason = unavailable_reason(dory)
    if reason:
      raise HarnessUnavailable(reason)
    self.root = dory / KERNELS_REL
    self.cache = cache or pathlib.Path(tempfile.gettempdir()) / "jaxbp-pulpnn"
    self.cache.mkdir(parents=True, exist_ok=True)
    self._src: dict[str, dict[str, pathlib.Path]] = {}
    self._loaded: dict[tuple[str, str], ctypes.CDLL] = {}
    self.compiled: set[tuple[str, str]] = set()  # compiled in this session (not found in the cache)

  def sources(self, lib: str) -> dict[str, pathlib.Path]:
    """{file stem: path} of a library's C sources."""
    if lib not in self._src:
      self._src[lib] = {p.stem: p for p in sorted((self.root / LIBS[lib] / "src").rglob("*.c"))}
    return self._src[lib]

  def has(self, lib: str, name: str) -> bool:
    return name in self.sources(lib)

  def _closure(self, lib: str, name: str) -> list[pathlib.Path]:
    """The kernel's source and the library sources it calls (e.g. its matmul), transitively."""
    srcs = self.sources(lib)
    todo, seen = [name], []
    while todo:
      stem = todo.pop()
      if stem in seen:
        continue
      seen.append(stem)
      called = set(re.findall(r"\b(pulp_nn_\w+)\s*\(", srcs[stem].read_text(errors="replace")))
      todo += sorted(c for c in called if c in srcs and c not in seen)
    if lib == "pulp-nn" and "pulp_nn_utils" not in seen:
      seen.append("pulp_nn_utils")
    return [srcs[s] for s in seen]

  def library(self, lib: str, name: str) -> ctypes.CDLL:
    key = (lib, name)
    if key in self._loaded:
      return self._loaded[key]
    if not self.has(lib, name):
      raise KeyError(f"{lib} has no kernel {name!r}")
    files = self._closure(lib, name)
    inc = self.root / LIBS[lib] / "include"
    h = hashlib.sha256()
    for p in files + [SHIM_DIR / "pmsis.h"] + sorted(inc.glob("*.h")):
      h.update(p.read_bytes())
    h.update(" ".join(CFLAGS).encode())
    so = self.cache / f"{name}-{lib}-{h.hexdigest()[:16]}.so"
    if not so.exists():
      tmp = so.with_suffix(f".{os.getpid()}.tmp")
      cmd = ["gcc", *CFLAGS, f"-I{SHIM_DIR}", f"-I{inc}", *map(str, files), "-o", str(tmp)]
      res = subprocess.run(cmd, capture_output=True, text=True, check=False)
      if res.returncode:
        raise RuntimeError(f"compiling {lib}/{name} failed:\n{' '.join(cmd)}\n{res.stderr[-3000:]}")
      os.replace(tmp, so)
      self.compiled.add(key)
    self._loaded[key] = ctypes.CDLL(str(so))
    return self._loaded[key]

  def fn(self, lib: str, name: str, argtypes: Sequence) -> ctypes._CFuncPtr:
    f = getattr(self.library(lib, name), name)
    f.argtypes, f.restype = list(argtypes), None
    return f


# ---- buffers below 2^31 ------------------------------------------------------------------------------------


class Arena:
  """A bump allocator over one MAP_32BIT mapping (the kernels keep pointers in `int`s)."""

  def __init__(self, size: int = 32 << 20):
    self.mm = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | MAP_32BIT)
    self.base = ctypes.addressof(ctypes.c_char.from_buffer(self.mm))
    if self.base + size > 1 << 31:
      raise HarnessUnavailable("could not map kernel buffers below 2^31 (MAP_32BIT)")
    self.size, self.top = size, 0

  def reset(self) -> None:
    self.top = 0

  def put(self, data: bytes | np.ndarray, extra: int = 0) -> int:
    """Copies `data` in (16-byte aligned, `extra` zero bytes after it); returns its address."""
    raw = bytes(np.ascontiguousarray(data).tobytes()) if isinstance(data, np.ndarray) else bytes(data)
    n = len(raw) + extra + 16
    if self.top + n > self.size:
      raise MemoryError("kernel arena full")
    off = self.top
    self.mm[off:off + n] = raw + bytes(n - len(raw))
    self.top = (off + n + 15) // 16 * 16
    return self.base + off

  def zeros(self, n: int) -> int:
    return self.put(b"", n)

  def get(self, addr: int, n: int) -> bytes:
    off = addr - self.base
    return self.mm[off:off + n]


# ---- packing ---------------------------------------------------------------------------------------------


def pack(v: np.ndarray, bits: int) -> np.ndarray:
  """Integers (flattened) packed `8 // bits` per byte, element 0 in the low bits (PULP-NN's sub-byte layout)."""
  v = np.asarray(v, np.int64).reshape(-1)
  if bits == 8:
    return (v & 0xFF).astype(np.uint8)
  if bits == 32:
    return v.astype("<i4").view(np.uint8)
  g = 8 // bits
  if v.size % g:
    raise CaseRejected(f"{v.size} values do not fill whole bytes at {bits} bits")
  u = (v & ((1 << bits) - 1)).reshape(-1, g)
  return (u << (np.arange(g) * bits)).sum(1).astype(np.uint8)


def unpack(raw: bytes, n: int, bits: int, signed: bool) -> np.ndarray:
  """Inverse of `pack` for `n` values."""
  if bits == 32:
    return np.frombuffer(raw[:4 * n], "<i4").astype(np.int64)
  b = np.frombuffer(raw, np.uint8).astype(np.int64)
  g = 8 // bits
  v = ((b[:, None] >> (np.arange(g) * bits)) & ((1 << bits) - 1)).reshape(-1)[:n]
  return np.where(v >= 1 << (bits - 1), v - (1 << bits), v) if signed else v


def channel_major(x: np.ndarray, bits: int) -> np.ndarray:
  """(…, C) channels-last -> the depthwise kernels' layout: [C/g][…][g] (g = values per byte), flattened."""
  g = 8 // bits
  c = x.shape[-1]
  y = x.reshape(-1, c // g, g)  # (P, C/g, g)
  return y.transpose(1, 0, 2).reshape(-1)


def tname(bits: int, signed: bool) -> str:
  return f"{'i' if signed else 'u'}{bits}"


# ---- cases -----------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Case:
  """One layer: its one-node graph, the library and kernel to run, and the inputs (N examples)."""

  kind: str
  lib: str
  kernel: str
  graph: Graph
  inputs: dict[str, np.ndarray]


def _quant(rng: np.random.Generator, bits: int, signed: bool, magnitude: float) -> Quant:
  factor = 2.0 ** rng.uniform(-1.5, 1.5)
  return Quant(bits, signed, max(magnitude, 1e-9) * factor / 2 ** (bits - int(signed)))


def _typical(bits: int, signed: bool) -> float:
  lo, hi = I.int_range(bits, signed)
  return float(np.sqrt((lo * lo + lo * hi + hi * hi) / 3))


def kernel_name(kind: str, lib: str, t_in: tuple[int, bool], t_out: tuple[int, bool] | None, w_bits: int,
                t_in2: tuple[int, bool] | None = None, variant: str = "") -> str:
  """The kernel DORY calls for this layer kind and these types."""
  if lib == "pulp-nn":
    return {"conv": f"pulp_nn_conv_{variant or 'Ho_parallel'}", "pointwise": f"pulp_nn_pointwise_{variant or 'HoWo_parallel'}",
            "depthwise": f"pulp_nn_depthwise_{variant or 'generic'}", "linear": "pulp_nn_linear",
            "linear_i32": "pulp_nn_linear_out_32", "avgpool": "pulp_nn_avgpool", "global_avgpool": "pulp_nn_avgpool",
            "maxpool": "pulp_nn_maxpool"}[kind]
  ti, tw = tname(*t_in), f"i{w_bits}"
  if kind == "pointwise":  # DORY runs 1x1 convs on PULP-NN-mixed's conv kernels (its pointwise ones: KNOWN_BUGS)
    kind = "conv"
  if kind in ("conv", "depthwise", "linear"):
    return f"pulp_nn_{kind}_{ti}_{tname(*t_out)}_{tw}"
  if kind == "linear_i32":
    return f"pulp_nn_linear_{ti}_i32_{tw}"
  if kind == "add":
    return f"pulp_nn_add_{ti}_{tname(*t_in2)}_{tname(*t_out)}"
  if kind in ("avgpool", "global_avgpool"):
    return f"pulp_nn_avgpool_{ti}_{tname(*t_out)}"
  return f"pulp_nn_maxpool_{ti}"


def random_case(rng: np.random.Generator, kind: str, lib: str, *, n: int = 2) -> Case:
  """A random layer of `kind` for library `lib` ("pulp-nn": 8-bit unsigned activations, int8 weights)."""
  eight = lib == "pulp-nn"
  pick = lambda seq: seq[int(rng.integers(len(seq)))]
  bits = (lambda: 8) if eight else (lambda: pick([2, 4, 8]))
  sign = (lambda: False) if eight else (lambda: bool(rng.integers(2)))
  t_in, t_out, w_bits = (bits(), sign()), (bits(), sign()), 8 if eight else pick([2, 4, 8])
  if kind == "maxpool":
    t_in = (8, t_in[1])  # KNOWN_BUGS["maxpool_subbyte"]
  q_in = Quant(t_in[0], t_in[1], 2.0 ** rng.uniform(-6, 0))
  x_mag = _typical(*t_in) * q_in.scale
  b = GraphBuilder()
  h, w = (1, int(rng.integers(1, 9))) if rng.integers(3) == 0 else (int(rng.integers(1, 7)), int(rng.integers(1, 7)))
  variant = ""
  t_in2 = None
  if kind in ("linear", "linear_i32"):
    cin, cout = pick([8, 16, 24, 32] if w_bits > 2 else [16, 32]), pick([4, 8, 12, 16])  # KNOWN_BUGS: linear_w2
    x = b.input("x", (cin,), q_in)
    wt, sw = I.quantize_weight(rng.normal(size=(cout, cin)), w_bits)
    bias = rng.normal(size=cout) * x_mag if rng.integers(2) else None
    mag = np.sqrt(cin) * x_mag * sw.mean() * _typical(w_bits, True)
    out = None if kind == "linear_i32" else _quant(rng, *t_out, mag)
    b.linear("y", x, wt, sw, w_bits=w_bits, bias=bias, out=out)
  elif kind in ("conv", "pointwise", "depthwise"):
    c = pick([8, 16, 24]) if kind == "depthwise" else pick([4, 8, 16])
    cout = c if kind == "depthwise" else pick([4, 8, 16])
    if kind == "pointwise":
      kh = kw = 1
      stride, pads = (1, 1), ((0, 0), (0, 0))
    else:
      kh, kw = (1, int(rng.integers(1, 6))) if h == 1 else (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
      s = int(rng.integers(1, 3))
      stride = (1 if h == 1 else s, s)
      ph, pw = (0 if h == 1 else int(rng.integers(0, kh // 2 + 1)), int(rng.integers(0, kw // 2 + 1)))
      pads = ((ph, ph), (pw, pw))
    if kind == "depthwise" and not eight and kh * kw < 4:  # KNOWN_BUGS["depthwise_lt4"]
      kh, kw = (1, int(rng.integers(4, 6))) if h == 1 else (int(rng.integers(2, 4)),) * 2
      p_ = int(rng.integers(0, kw // 2 + 1))
      pads = ((0, 0), (p_, p_)) if h == 1 else ((p_, p_), (p_, p_))
    if (h + 2 * pads[0][0] - kh) < 0 or (w + 2 * pads[1][0] - kw) < 0:
      h, w = max(h, kh), max(w, kw)
    if kind == "depthwise":  # the geometry the depthwise kernels get right: KNOWN_BUGS["depthwise_geometry"]
      if h == 1:
        kh, kw = 1, (3 if eight and rng.integers(2) else 5)
      else:
        kh = kw = 3
      same = bool(rng.integers(2))
      pads = ((kh // 2 * same,) * 2, (kw // 2 * same,) * 2)
      h, w = (1 if h == 1 else max(h, kh + 1)), max(w, kw + 1)
      if stride[1] > 1 and (w + 2 * pads[1][0] - kw) % stride[1] != stride[1] - 1:
        w += 1
      if stride[0] > 1 and (h + 2 * pads[0][0] - kh) % stride[0] != stride[0] - 1:
        h += 1
    groups = c if kind == "depthwise" else 1
    x = b.input("x", (h, w, c), q_in)
    wt, sw = I.quantize_weight(rng.normal(size=(cout, kh, kw, c // groups)), w_bits)
    bias = rng.normal(size=cout) * x_mag if rng.integers(2) else None
    post = (rng.uniform(0.5, 1.5, cout), rng.normal(size=cout) * x_mag) if rng.integers(2) else (None, None)
    mag = np.sqrt(kh * kw * c // groups) * x_mag * sw.mean() * _typical(w_bits, True)
    b.conv("y", x, wt, sw, w_bits=w_bits, bias=bias, stride=stride, padding=pads, groups=groups,
           out=_quant(rng, *t_out, mag), post_scale=post[0], post_shift=post[1])
    if eight:
      variant = pick({"conv": ["Ho_parallel", "HoWo_parallel"],  # DORY calls Ho (conv) and HoWo (pointwise);
                      "pointwise": ["Ho_parallel", "HoWo_parallel"],  # the Co_parallel ones: KNOWN_BUGS
                      "depthwise": ["generic_less_4_weights" if kh * kw < 4 else "generic"]}[kind])
  elif kind == "add":
    if eight:
      raise CaseRejected("PULP-NN's 8-bit pulp_nn_add (one rounding of a·m1 + b·m2) cannot run jaxbp's add")
    c = pick([4, 8, 16])
    t_in2 = (bits(), sign())
    q2 = Quant(t_in2[0], t_in2[1], 2.0 ** rng.uniform(-6, 0))
    x = b.input("x", (h, w, c), q_in)
    x2 = b.input("x2", (h, w, c), q2)
    b.add("y", x, x2, _quant(rng, *t_out, x_mag + _typical(*t_in2) * q2.scale))
  elif kind in ("avgpool", "global_avgpool", "maxpool"):
    c = pick([4, 8, 16])
    x = b.input("x", (h, w, c), q_in)
    if kind == "global_avgpool":
      b.global_avgpool("y", x, _quant(rng, *t_out, x_mag))
    else:
      kh, kw = (1, int(rng.integers(1, min(w, 4) + 1))) if h == 1 else \
          (int(rng.integers(1, min(h, 3) + 1)), int(rng.integers(1, min(w, 3) + 1)))
      stride = (1 if h == 1 else int(rng.integers(1, 3)), int(rng.integers(1, 3)))
      pad_ok = kind == "avgpool" or not t_in[1]  # the kernels skip padding; jaxbp's maxpool pads zeros
      ph = 0 if h == 1 or not pad_ok else int(rng.integers(0, kh // 2 + 1))
      pw = 0 if not pad_ok or (kind == "maxpool" and stride[1] == 1) else int(rng.integers(0, kw // 2 + 1))  # bug
      pads = ((ph, ph), (pw, pw))
      if kind == "maxpool":
        b.maxpool("y", x, (kh, kw), stride=stride, padding=pads)
      else:
        b.avgpool("y", x, (kh, kw), _quant(rng, *t_out, x_mag), stride=stride, padding=pads)
  else:
    raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
  g = b.build(["y"])
  out = g.tensors["y"]
  name = kernel_name(kind, lib, t_in, (out.bits, out.signed), w_bits, t_in2, variant)
  inputs = {}
  for t in g.inputs:
    lo, hi = g.tensors[t].range
    v = rng.integers(lo, hi + 1, (n,) + g.tensors[t].shape)
    v[0] = hi if rng.integers(2) else lo  # a corner
    inputs[t] = v
  return Case(kind, lib, name, g, inputs)


# ---- running a case on the kernel ------------------------------------------------------------------------

P, U16, I32, U8, I8 = ctypes.c_void_p, ctypes.c_uint16, ctypes.c_int32, ctypes.c_uint8, ctypes.c_int8


def _hw(shape: tuple[int, ...]) -> tuple[int, int, int]:
  return (1, shape[0], shape[1]) if len(shape) == 2 else (shape[0], shape[1], shape[2])


def _bn(node, x_spec) -> tuple[np.ndarray, np.ndarray]:
  """(κ, λ') int32 of a requantizing conv/linear node, the bias folded into λ (as DORY does). Rejects the case
  where the folded form's own int32 intermediates (k·ACC without the bias, then + λ') can overflow."""
  k = np.asarray(node.arrays["k"], np.int64)
  lam = np.asarray(node.arrays["lam"], np.int64)
  if "bias" in node.arrays:
    lam = lam + k * np.asarray(node.arrays["bias"], np.int64)
  lo, hi = _dot_range(node.arrays["weight"], x_spec)
  vals = [lam, k * lo, k * hi, k * lo + lam, k * hi + lam]
  if min(v.min() for v in vals) < INT32_MIN or max(v.max() for v in vals) > INT32_MAX:
    raise CaseRejected("with the bias folded into λ, k·ACC + λ' can leave int32 (jaxbp bounds k·(ACC + bias))")
  return k.astype(np.int32), lam.astype(np.int32)


def run_case(kernels: Kernels, arena: Arena, case: Case) -> np.ndarray:
  """The kernel's output (N, *shape) as int64."""
  g = case.graph
  node = g.nodes[0]
  out = g.tensors[node.output]
  outs = []
  for i in range(next(iter(case.inputs.values())).shape[0]):
    arena.reset()
    xs = [case.inputs[t][i] for t in node.inputs]
    specs = [g.tensors[t] for t in node.inputs]
    outs.append(_run_one(kernels, arena, case, node, xs, specs, out))
  return np.stack(outs)


def _run_one(kernels, arena, case, node, xs, specs, out) -> np.ndarray:
  lib, name, kind = case.lib, case.kernel, case.kind
  x, xs0 = xs[0], specs[0]
  n_out = int(np.prod(out.shape))
  ybytes = max(n_out * out.bits // 8, 4) + 64
  y = arena.zeros(ybytes)
  scratch = arena.zeros(1 << 20)
  if kind in ("conv", "pointwise", "depthwise"):
    hi, wi, ci = _hw(xs0.shape)
    ho, wo, co = _hw(out.shape)
    wt = node.arrays["weight"]
    kh, kw = (1, wt.shape[1]) if wt.ndim == 3 else wt.shape[1:3]
    st = tuple(node.attrs["stride"])
    pads = tuple(tuple(p) for p in node.attrs["padding"])
    (sy, sx), ((pt, pb), (pl, pr)) = ((1, st[0]), ((0, 0), pads[0])) if len(st) == 1 else (st, pads)
    wb = node.attrs["w_bits"]
    k, lam = _bn(node, xs0)
    if kind == "depthwise":
      px = arena.put(pack(channel_major(x, xs0.bits), xs0.bits))
      pw = arena.put(pack(channel_major(wt.reshape(co, kh * kw).T, wb), wb))
    else:
      px = arena.put(pack(x, xs0.bits))
      pw = arena.put(pack(wt, wb))
    args = [px, scratch, None, y, pw]
    types = [P, P, P, P, P]
    if kind == "depthwise":
      args.append(arena.zeros(1 << 16))
      types.append(P)
    args += [arena.put(k), arena.put(lam), 0, node.attrs["d"], wi, hi, ci, wo, ho, co, kw, kh, pt, pb, pl, pr, sx, sy,
             1, 1]
    flag = ctypes.c_int if lib == "pulp-nn" and kind != "depthwise" else (I8 if lib == "pulp-nn" else U8)
    types += [P, P, U16, U16] + [U16] * 14 + [flag, flag]
    kernels.fn(lib, name, types)(*args)
  elif kind in ("linear", "linear_i32"):
    wt, wb = node.arrays["weight"], node.attrs["w_bits"]
    cin, co = wt.shape[1], wt.shape[0]
    px, pw = arena.put(pack(x, xs0.bits)), arena.put(pack(wt, wb))
    if kind == "linear_i32":
      bias = node.arrays.get("bias")
      pb = arena.put(np.asarray(bias, "<i4")) if bias is not None else None
      if lib == "pulp-nn" and bias is not None:
        raise CaseRejected("PULP-NN's linear_out_32 reads an int8 bias")
      kernels.fn(lib, name, [P, P, P, P, U16, U16])(px, pb, y, pw, cin, co)
    else:
      k, lam = _bn(node, xs0)
      shift = I8 if lib == "pulp-nn" else U16
      flag = ctypes.c_int if lib == "pulp-nn" else U8
      kernels.fn(lib, name, [P, P, P, P, P, P, U16, shift, U16, U16, flag, flag])(
          px, None, y, pw, arena.put(k), arena.put(lam), 0, node.attrs["d"], cin, co, 1, 1)
  elif kind == "add":
    hi, wi, ci = _hw(xs0.shape)
    a = node.attrs
    kernels.fn(lib, name, [P, P, P, I32, I32, U16, I32, I32, U16, I32, I32, U16, U16, U16, U16, ctypes.c_int])(
        arena.put(pack(x, xs0.bits)), arena.put(pack(xs[1], specs[1].bits)), y,
        a["in1_mul"], a["in1_add"], a["in1_shift"], a["in2_mul"], a["in2_add"], a["in2_shift"],
        a["out_mul"], a["out_add"], a["out_shift"], wi, hi, ci, 1)
  elif kind in ("avgpool", "global_avgpool", "maxpool"):
    hi, wi, ci = _hw(xs0.shape)
    if kind == "global_avgpool":
      (kh, kw), (sy, sx), (pt, pb, pl, pr) = (hi, wi), (1, 1), (0, 0, 0, 0)
      ho = wo = 1
    else:
      kern, st = tuple(node.attrs["kernel"]), tuple(node.attrs["stride"])
      pads = tuple(tuple(p) for p in node.attrs["padding"])
      if len(kern) == 1:
        kern, st, pads = (1,) + kern, (1,) + st, ((0, 0),) + pads
      (kh, kw), (sy, sx), ((pt, pb), (pl, pr)) = kern, st, pads
      ho, wo, _ = _hw(out.shape)
    px = arena.put(pack(x, xs0.bits))
    geo = [wi, hi, ci, wo, ho, kw, kh, pt, pb, pl, pr, sx, sy]
    if kind == "maxpool":
      kernels.fn(lib, name, [P, P] + [U16] * 13)(px, y, *geo)
    else:
      k = int(node.arrays["k"].reshape(-1)[0])
      lam = int(node.arrays["lam"].reshape(-1)[0])
      kernels.fn(lib, name, [P, P, I32, U16, I32] + [U16] * 13 + [ctypes.c_int])(
          px, y, k * kh * kw, node.attrs["d"], lam, *geo, 1)
  else:
    raise ValueError(kind)
  return unpack(arena.get(y, ybytes), n_out, out.bits, out.signed).reshape(out.shape)


def check_case(kernels: Kernels, arena: Arena, case: Case) -> tuple[bool, np.ndarray, np.ndarray]:
  """(bit-exact?, kernel output, interpreter output)."""
  ref = I.run(case.graph, case.inputs)["y"]
  got = run_case(kernels, arena, case)
  return bool(np.array_equal(got, ref)), got, ref


# ---- the run -----------------------------------------------------------------------------------------------


def plan(rng: np.random.Generator) -> tuple[str, str]:
  """(kind, lib) of the next random layer: PULP-NN-mixed mostly, PULP-NN's 8-bit kernels a quarter of the time."""
  lib = "pulp-nn" if rng.integers(4) == 0 else "pulp-nn-mixed"
  kinds = [k for k in KINDS if not (lib == "pulp-nn" and k == "add")]
  return kinds[int(rng.integers(len(kinds)))], lib


def run_random(kernels: Kernels, layers: int, seed: int, *, log=None, verbose: bool = False) -> dict:
  """Checks `layers` random layers; returns {"checked", "exact", "rejected", "failures", "kernels", "seconds"}."""
  rng = np.random.default_rng(seed)
  arena = Arena()
  covered: collections.Counter = collections.Counter()
  failures, rejected, checked = [], 0, 0
  t0 = time.perf_counter()
  while checked < layers:
    kind, lib = plan(rng)
    try:
      case = random_case(rng, kind, lib)
      if verbose and log:
        log(f"{checked}: {lib}/{case.kernel} {case.graph.nodes[0].attrs}")
      ok, got, ref = check_case(kernels, arena, case)
    except CaseRejected:
      rejected += 1
      continue
    checked += 1
    covered[(lib, case.kernel)] += 1
    if not ok:
      failures.append((case.kernel, case.graph.nodes[0], int((got != ref).sum()), got.size))
      if log:
        log(f"MISMATCH {lib}/{case.kernel}: {int((got != ref).sum())}/{got.size} values")
  return {"checked": checked, "exact": checked - len(failures), "rejected": rejected, "failures": failures,
          "kernels": dict(covered), "seconds": time.perf_counter() - t0}


def main(argv: Sequence[str] | None = None) -> int:
  ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  ap.add_argument("--layers", type=int, default=500)
  ap.add_argument("--seed", type=int, default=0)
  ap.add_argument("--dory-dir", type=pathlib.Path, default=default_dory_dir())
  ap.add_argument("--verbose", action="store_true", help="print every case before running it")
  args = ap.parse_args(argv)
  try:
    kernels = Kernels(args.dory_dir)
  except HarnessUnavailable as e:
    print(f"pulpnn harness: {e}", file=sys.stderr)
    return 2
  res = run_random(kernels, args.layers, args.seed, log=lambda m: print(m, flush=True), verbose=args.verbose)
  by_family = collections.Counter(re.sub(r"_[iu]\d.*", "", k) for _, k in res["kernels"])
  print(f"layers checked: {res['checked']}, bit-exact: {res['exact']}, mismatching: {len(res['failures'])}, "
        f"rejected before running: {res['rejected']}, {res['seconds']:.1f} s")
  print(f"kernels covered: {len(res['kernels'])} ({', '.join(f'{f}: {n}' for f, n in sorted(by_family.items()))})")
  for (lib, k), n in sorted(res["kernels"].items()):
    print(f"  {lib:14s} {k:40s} {n}")
  return 0 if not res["failures"] else 1


if __name__ == "__main__":
  sys.exit(main())
