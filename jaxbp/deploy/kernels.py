"""Compute cycles of one kernel call on one L1 tile, per op kind, bit widths and ISA.

Follows the PULP-NN kernel structure (shared/docs/pulp-hardware.md): standard convs give each core
output rows (1-D layers: output time steps) and build an im2col buffer for 2 output pixels, then run a
4x2 matmul (4 output channels x 2 pixels, 8 sdotp per iteration), leftovers of the reduction on a
scalar path and Cout % 4 on a 1x2 path; depthwise splits channels over cores; linear splits output
neurons; pointwise convs split pixels (H and W) over cores and need no im2col. Sub-byte operands without a
matching SIMD width are unpacked in software: activations once, while building im2col; weights inside the
inner loop. Returned cycles are wall cycles of the cluster (the slowest core), since the cores run in parallel.

Standard and pointwise convs follow the PULP-NN-mixed code of the platform's ISA (`kernel_code.CONV_INNER`:
the im2col helper, the matmul's inner-loop instructions per iteration and its reduction step, read from the
kernel sources for every (b_in, b_w)), linear layers `kernel_code.LINEAR_INNER`; depthwise, add and pooling
kernels are assembled from their loops counted in the code (`kernel_ops`); the other element-wise kernels (no DORY
kernel) keep instruction-count estimates. `kernel.mixed_library_8bit` says which library DORY links for the network
(pulp-nn-mixed, set by the simulator as DORY decides, or pulp-nn's 8-bit kernels); 8-bit layers run its kernels.
"""

from __future__ import annotations

import dataclasses
import math

from jaxbp.deploy.kernel_code import CONV_INNER, LINEAR_INNER, InnerLoop
from jaxbp.deploy.kernel_ops import ADD, DEPTHWISE, LINEAR_TAIL, MATMUL_TAIL, POOL, DepthwiseLoop, LinearTail, MatmulTail
from jaxbp.deploy.layers import Layer, Shape
from jaxbp.deploy.platforms import Platform


@dataclasses.dataclass(frozen=True)
class KernelCycles:
  """Cycles of one kernel call: `total`, of which `im2col` (copying into the im2col buffer) and `unpack`
  (software unpacking of sub-byte operands, in im2col or in the inner loop); the two parts are disjoint."""

  total: float
  im2col: float = 0.0
  unpack: float = 0.0


@dataclasses.dataclass(frozen=True)
class OperandFormat:
  """How a (b_in, b_w) pair runs on an ISA.

  Attributes:
    width: operand width of the dot products (bits); 0 = no SIMD (scalar MACs).
    lanes: elements per dot product.
    act_bits: activation bits in the im2col buffer (b_in if used natively, else `width`).
    unpack_act, unpack_w: whether activations / weights are unpacked in software to `width`.
  """

  width: int
  lanes: int
  act_bits: int
  unpack_act: bool
  unpack_w: bool


def operand_format(p: Platform, b_in: int, b_w: int) -> OperandFormat:
  """XpulpNN v2: mixed widths in hardware; else both operands at the narrowest SIMD width >= both."""
  wide = max(b_in, b_w)
  if p.mixed_simd and p.lanes(wide):
    return OperandFormat(wide, p.lanes(wide), b_in, False, False)
  widths = sorted(b for b, _ in p.simd_lanes if b >= wide)
  if not widths:  # no SIMD at all for these operands: scalar MACs on bytes.
    return OperandFormat(0, 1, 8, b_in < 8, b_w < 8)
  width = widths[0]
  return OperandFormat(width, p.lanes(width), width, b_in < width, b_w < width)


def _unpack_per_elem(p: Platform, width: int) -> float:
  """Software unpack cycles per element produced at `width` bits (a 32-bit word holds 32/width)."""
  return p.kernel.unpack_cycles_per_word * (width or 8) / 32


def _pairs_per_core(p: Platform, h: int, w: int) -> int:
  """Output pixel pairs per core: rows split over cores (1-D layers: time steps, in pairs)."""
  if h > 1:
    return math.ceil(h / p.n_cores) * math.ceil(w / 2)
  return math.ceil(math.ceil(w / 2) / p.n_cores)


def library_isa(p: Platform, all_8bit: bool) -> str:
  """Whose kernels a layer runs: "pulp-nn" (DORY's 8-bit library: an all-8-bit layer when the network links it),
  "xpulpv2" (pulp-nn-mixed's XpulpV2 kernels, "mixed-sw") or `p.isa` (the ISA's pulp-nn-mixed kernels,
  "mixed-hw"), as `kernel.mixed_library_8bit` / `kernel.software_mixed` say (`simulator.with_library`)."""
  if all_8bit and not p.kernel.mixed_library_8bit:
    return "pulp-nn"
  return "xpulpv2" if p.kernel.software_mixed else p.isa


def conv_loop(p: Platform, b_in: int, b_w: int) -> InnerLoop | None:
  """The PULP-NN-mixed inner loop of a (b_in, b_w) conv on `p`'s ISA (None: no SIMD, scalar MACs). 8-bit layers
  take the XpulpV2 loop on every ISA: DORY deploys an all-8-bit network with the 8-bit PULP-NN library (same 4x2
  loop: 4 weight + 2 activation loads, 8 sdotp); in a mixed network its 8/8 layers would run the ISA's mixed
  kernel (on XpulpNN 9 MAC&LOADs per 32 MACs: 6 % slower at the calibrated `mac_load_cycles`), which
  `kernel.mixed_library_8bit` selects."""
  if not p.lanes(8):
    return None
  lib = library_isa(p, (b_in, b_w) == (8, 8))
  return CONV_INNER[("xpulpv2" if lib == "pulp-nn" else lib, b_in, b_w)]


def iteration_cycles(p: Platform, loop: InnerLoop) -> float:
  """Cycles of one inner-loop iteration: one per instruction, `kernel.mac_load_cycles` per MAC&LOAD-family one."""
  return loop.instr - loop.mac_load + loop.mac_load * p.kernel.mac_load_cycles


def im2col_cycles(p: Platform, loop: InnerLoop, kh: int, n_row: int) -> float:
  """One pixel's im2col: per kernel row one helper call on `n_row` elements (kw x Cin): blocks of the helper's
  main loop, then the byte-wise leftover loop."""
  blocks, left = divmod(n_row, loop.im2col_block)
  return kh * (blocks * loop.im2col_block * loop.im2col_cycles_per_elem + left * p.kernel.im2col_leftover_cycles)


def matmul_tail(p: Platform, b_in: int, b_w: int, b_out: int) -> MatmulTail | None:
  """What the code says around the matmul's inner loop (`kernel_ops.MATMUL_TAIL`: per 4x2 block set-up,
  requantization, packing and stores; leftover reduction elements; the 1x2 path): pulp-nn's 8-bit matmul for an
  all-8-bit layer in DORY's 8-bit library, else the ISA's pulp-nn-mixed one. None: no SIMD."""
  if not p.lanes(8):
    return None
  lib = library_isa(p, (b_in, b_w, b_out) == (8, 8, 8))
  return MATMUL_TAIL[("pulp-nn", 8, 8, 8)] if lib == "pulp-nn" else MATMUL_TAIL.get((lib, b_in, b_w, b_out))


def matmul_cycles(p: Platform, cout: int, red: int, loop: InnerLoop | None, b_out: int,
                  tail_code: MatmulTail | None = None) -> float:
  """One pixel pair x `cout` channels x reduction `red` on one core (4x2 blocks + 1x2 leftover channels); the
  block and leftover costs from `tail_code` (the kernel code) when given, else the doc model / estimates."""
  k = p.kernel
  if loop is None:
    return cout * 2 * red * k.scalar_cycles_per_mac + math.ceil(cout / 4) * (k.block_setup_cycles + k.block_store_cycles)
  it = iteration_cycles(p, loop)
  n_it, tail = divmod(red, loop.elems)
  if tail_code is not None:
    block = tail_code.block + n_it * it + tail * tail_code.tail
    row = tail_code.row + n_it * it / 4 + tail * tail_code.row_tail
    return (cout // 4) * block + (cout % 4) * row
  pack = 8 * k.pack_cycles_per_output if b_out < 8 else 0.0
  block = k.block_setup_cycles + n_it * it + tail * k.leftover_cycles_per_elem + k.block_store_cycles + pack
  row = k.row_setup_cycles + n_it * it / 4 + tail * k.row_leftover_cycles_per_elem + k.row_store_cycles + pack / 4
  return (cout // 4) * block + (cout % 4) * row


def conv_cycles(p: Platform, layer: Layer, out: Shape) -> KernelCycles:
  """Standard / grouped / pointwise conv on an output tile `out` = (h, w, c)."""
  h, w, c = out
  kh, kw = layer.kernel
  cin_g = layer.in_shape[2] // layer.groups
  cg_out = layer.out_shape[2] // layer.groups
  groups, c_g = math.ceil(c / cg_out), min(c, cg_out)  # groups touched by the tile, channels per group.
  red = kh * kw * cin_g
  loop = conv_loop(p, layer.bits_in, layer.bits_w)
  pointwise = layer.op == "pointwise"
  if loop is None:  # no SIMD: bytes copied into im2col at the doc's 1 cycle per byte, scalar MACs.
    copy = 0.0 if pointwise else 2 * red * p.kernel.im2col_cycles_per_byte
    unpack_act = 0.0
  else:
    unpacks = loop.act_bits != layer.bits_in
    per_pixel = im2col_cycles(p, loop, kh, kw * cin_g)
    if pointwise:  # pointwise kernels read HWC pixels in place unless activations need unpacking.
      per_pixel = per_pixel if unpacks else 0.0
    copy, unpack_act = (0.0, 2 * per_pixel) if unpacks else (2 * per_pixel, 0.0)
  mm = matmul_cycles(p, c_g, red, loop, layer.bits_out, matmul_tail(p, layer.bits_in, layer.bits_w, layer.bits_out))
  if pointwise:  # doc: pointwise convs split over H and W.
    pairs = math.ceil(math.ceil(h * w / 2) / p.n_cores) * groups
  else:
    pairs = _pairs_per_core(p, h, w) * groups
  f = p.kernel.pointwise_factor if pointwise else 1.0
  w_unpack = 0.0
  if loop is not None and loop.unpack_instr:
    n_it = red // loop.elems
    w_unpack = (c_g // 4 + (c_g % 4) / 4) * n_it * loop.unpack_instr
  return KernelCycles(f * pairs * (copy + unpack_act + mm), f * pairs * copy, f * pairs * (unpack_act + w_unpack))


def ops_library(p: Platform, eight_bit: bool) -> str:
  """The kernel_ops library a depthwise / pool / add layer runs from: pulp-nn's 8-bit kernels when the network
  uses DORY's "8bit" library and the layer is all 8-bit; else pulp-nn-mixed's XpulpV2 kernels (DORY's "mixed-sw")
  or, on XpulpNN ISAs, its XpulpNN ones ("mixed-hw"; XpulpNN-mixed ships no depthwise or max-pool kernels)."""
  lib = library_isa(p, eight_bit)
  return lib if lib in ("pulp-nn", "xpulpv2") else "xpulpnn"


def depthwise_loop(p: Platform, layer: Layer) -> DepthwiseLoop | None:
  """The depthwise kernel's counted loops (`kernel_ops.DEPTHWISE`) for `layer` on `p`; None without SIMD or for
  widths no kernel has."""
  a, w, o = layer.bits_in, layer.bits_w, layer.bits_out
  if not p.lanes(8):
    return None
  return DEPTHWISE.get((ops_library(p, (a, w, o) == (8, 8, 8)), a, w, o))


def depthwise_cycles(p: Platform, layer: Layer, out: Shape, inp: Shape) -> KernelCycles:
  """Depthwise conv: the PULP-NN(-mixed) kernel's loops read from the code (`kernel_ops.DEPTHWISE`): channel groups
  split over cores; per output column an im2col strip of the input rows (unpacked to bytes for sub-byte inputs),
  per output a 4-wide dot loop, leftovers, requantization and store. Without a kernel (no SIMD, other widths): the
  doc's ~1 MAC/cycle model and the unpack estimate."""
  h, w, c = out
  kh, kw = layer.kernel
  loop = depthwise_loop(p, layer)
  if loop is not None:
    groups = math.ceil(c / loop.group)
    channels = math.ceil(groups / p.n_cores) * loop.group
    pad_tb = max(0, (h - 1) * layer.stride[0] + kh - inp[0])
    total = loop.core_cycles((h, w), (inp[0], inp[1]), (kh, kw), pad_tb, channels, p.kernel.mac_load_cycles)
    unpack = 0.0
    if layer.bits_in < 8 or layer.bits_w < 8:  # the share spent unpacking (im2col words beyond a copy, weights).
      copy = DEPTHWISE.get(("xpulpv2", 8, 8, 8))
      words = math.ceil(kw / 4)
      unpack = math.ceil(groups / p.n_cores) * (kh * kw * loop.weights + w * inp[0] * words * max(
          0, loop.word - loop.group * copy.word))
    return KernelCycles(total, 0.0, unpack)
  per_core = math.ceil(c / p.n_cores)
  compute = per_core * h * w * kh * kw * p.kernel.dw_core_cycles_per_mac
  fmt = operand_format(p, layer.bits_in, layer.bits_w)
  unpack = 0.0
  if fmt.unpack_act:
    unpack += per_core * inp[0] * inp[1] * _unpack_per_elem(p, fmt.width)
  if fmt.unpack_w:
    unpack += per_core * kh * kw * _unpack_per_elem(p, fmt.width)
  return KernelCycles(compute + unpack, 0.0, unpack)


def linear_loop(p: Platform, b_in: int, b_w: int) -> InnerLoop | None:
  """The PULP-NN-mixed linear inner loop of (b_in, b_w) on `p`'s ISA (None: no SIMD); 8/8 as for convs."""
  if not p.lanes(8):
    return None
  lib = library_isa(p, (b_in, b_w) == (8, 8))
  return LINEAR_INNER[("xpulpv2" if lib == "pulp-nn" else lib, b_in, b_w)]


def linear_cycles(p: Platform, layer: Layer, out: Shape) -> KernelCycles:
  """Fully connected: output neurons split over cores; the input vector is read by every core. The inner loop is
  the kernel code's (`kernel_code.LINEAR_INNER`: XpulpV2 computes 2 neurons per pass, XpulpNN 1), the code around
  it too (`kernel_ops.LINEAR_TAIL`: per pass set-up, requantization or int32 stores, the leftover elements).
  pulp-nn's 8-bit library is costed with the XpulpV2 8-bit loop (its own does 1 neuron per pass: 3 instructions
  per 4 MACs instead of 5 per 8) and its own pass code."""
  c, cin, k = out[2], layer.in_shape[2], p.kernel
  per_core = math.ceil(c / p.n_cores)
  loop = linear_loop(p, layer.bits_in, layer.bits_w)
  if loop is None:
    return KernelCycles(per_core * (cin * k.scalar_cycles_per_mac + k.row_store_cycles))
  e = loop.macs // (2 if loop.conv_file.startswith("XpulpV2") else 1)  # elements per iteration and neuron.
  whole, tail = divmod(cin, e)
  per_mac = iteration_cycles(p, loop) / loop.macs
  unpack = per_core * whole * e * loop.unpack_instr / loop.macs
  code = linear_tail(p, layer.bits_in, layer.bits_w, layer.bits_out)
  if code is not None:  # set-up, requantization / int32 stores and the leftover loop, per pass of `neurons`.
    neurons = math.ceil(per_core / code.neurons) * code.neurons
    return KernelCycles(neurons * (whole * e * per_mac + (code.block + tail * code.tail) / code.neurons), 0.0, unpack)
  total = per_core * (whole * e * per_mac + tail * k.scalar_cycles_per_mac + k.row_store_cycles)
  return KernelCycles(total, 0.0, unpack)


def linear_tail(p: Platform, b_in: int, b_w: int, b_out: int) -> LinearTail | None:
  """The code around the linear kernel's inner loop (`kernel_ops.LINEAR_TAIL`; int32 outputs: LinearNoQuant,
  else LinearQuant's 8-bit-output kernel); None without SIMD."""
  if not p.lanes(8):
    return None
  o = 32 if b_out == 32 else 8
  lib = library_isa(p, (b_in, b_w) == (8, 8))
  return LINEAR_TAIL.get(("pulp-nn", 8, 8, o) if lib == "pulp-nn" else (lib, b_in, b_w, o))


def _input_unpack(p: Platform, elems_per_core: float, bits: int) -> float:
  """Element-wise kernels work on bytes: sub-byte inputs are unpacked in software."""
  return elems_per_core * _unpack_per_elem(p, 8) if bits < 8 else 0.0


def _rows_per_core(p: Platform, rows: int) -> int:
  """Rows one core handles when a kernel splits `rows` over min(rows, n_cores) cores (PULP-NN's add and pools)."""
  return math.ceil(rows / min(rows, p.n_cores))


def add_cycles(p: Platform, layer: Layer, out: Shape) -> float | None:
  """Residual add from the code (`kernel_ops.ADD`: per-iteration instructions of the kernel's loop, rows split
  over cores); None for widths no kernel has (unequal widths)."""
  b = layer.bits_out
  if not (layer.bits_in == layer.bits_in2 == b) or not p.lanes(8):
    return None
  loop = ADD.get((ops_library(p, b == 8), b))
  if loop is None:
    return None
  h, w, c = out
  return math.ceil(_rows_per_core(p, h) * w * c / loop.elems) * loop.instr


def pool_cycles(p: Platform, layer: Layer, out: Shape, inp: Shape) -> float | None:
  """Average / max pool from the code (`kernel_ops.POOL`); None for widths no kernel has."""
  b = layer.bits_out
  if layer.bits_in != b or not p.lanes(8):
    return None
  loop = POOL.get((ops_library(p, b == 8), layer.mode, b))
  if loop is None:
    return None
  (h, w, c), hi = out, inp[0]
  kh, kw = layer.kernel
  if layer.mode == "avg":  # output rows over cores; per pixel, per byte of channels, per window element.
    return _rows_per_core(p, h) * w * (loop.pixel + math.ceil(c / loop.group) * (loop.channel + kh * kw * loop.window))
  # max: pass 1 over input rows (per output column: copy C bytes, kw - 1 compares of C), pass 2 over output rows
  # (copy W_out*C bytes, kh - 1 compares of W_out*C).
  def compare(n: int) -> float:
    return loop.call + (n // 4) * loop.word + (n % 4) * 4
  pass1 = _rows_per_core(p, hi) * w * (loop.pixel + c * loop.copy + (kw - 1) * compare(c))
  pass2 = _rows_per_core(p, h) * (loop.pixel + w * c * loop.copy + (kh - 1) * compare(w * c))
  return pass1 + pass2


def weightless_cycles(p: Platform, layer: Layer, out: Shape, inp: Shape) -> KernelCycles:
  """Add, pool and element-wise kernels. Add and pool: the kernels' code (`kernel_ops`); the other element-wise
  kernels (no DORY kernel): output elements split over the cores at estimated cycles per element."""
  k = p.kernel
  h, w, c = out
  code = add_cycles(p, layer, out) if layer.op == "add" else pool_cycles(p, layer, out, inp) if layer.op == "pool" \
      else None
  if code is not None:
    return KernelCycles(code)
  elems = math.ceil(h * w * c / p.n_cores)
  in_elems = math.ceil(inp[0] * inp[1] * inp[2] / p.n_cores)
  if layer.op == "add":
    core = elems * k.add_cycles_per_elem
    unpack = _input_unpack(p, elems, layer.bits_in) + _input_unpack(p, elems, layer.bits_in2)
  elif layer.op == "pool":
    core = elems * layer.kernel[0] * layer.kernel[1] * k.pool_cycles_per_elem
    unpack = _input_unpack(p, in_elems, layer.bits_in)
  else:
    core = elems * k.elementwise_cycles(layer.mode)
    if layer.mode == "norm":  # statistics passes read the input too.
      core = max(core, in_elems * k.norm_cycles)
    unpack = _input_unpack(p, in_elems, layer.bits_in)
    if layer.mode == "concat":
      unpack += _input_unpack(p, in_elems, layer.bits_in2)
  pack = elems * k.pack_cycles_per_output if layer.bits_out < 8 else 0.0
  return KernelCycles(core + unpack + pack, 0.0, unpack)


def kernel_cycles(p: Platform, layer: Layer, out: Shape, inp: Shape) -> KernelCycles:
  """Cycles of `layer`'s kernel on an output tile `out` whose input tile is `inp` (both (h, w, c))."""
  if layer.op in ("conv", "pointwise"):
    return conv_cycles(p, layer, out)
  if layer.op == "depthwise":
    return depthwise_cycles(p, layer, out, inp)
  if layer.op == "linear":
    return linear_cycles(p, layer, out)
  return weightless_cycles(p, layer, out, inp)
