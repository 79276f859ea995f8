"""The simulator against the public measured figures of shared/docs/pulp-hardware.md.

Each `Figure` holds a published number, the simulator's number for the same experiment, and the
relative error (model / measured - 1). Where the doc does not give the exact layer of a measurement,
the assumed layer is stated in `note`. Used by docs/calibration.md (`tools/deploy.py calibrate`).
"""

from __future__ import annotations

import dataclasses

from jaxbp.deploy import kernel_code, kernel_ops
from jaxbp.deploy.kernels import iteration_cycles, kernel_cycles
from jaxbp.deploy.layers import Layer, Network, conv_out
from jaxbp.deploy.platforms import GAP8, XPULPNN_V1, XPULPNN_V2, Platform
from jaxbp.deploy.simulator import simulate
from jaxbp.deploy.tiler import DEFAULT_TILER


@dataclasses.dataclass(frozen=True)
class Figure:
  """One published figure and the simulator's value for it.

  Attributes:
    name: what was measured.
    measured: the published value (a (low, high) range is compared with its midpoint).
    model: the simulator's value; unit: their unit.
    fitted: whether a platform parameter was fitted to this figure (its error is then a fit residual).
    note: the experiment as simulated (assumptions included).
  """

  name: str
  measured: float | tuple[float, float]
  model: float
  unit: str
  fitted: bool = False
  note: str = ""

  @property
  def reference(self) -> float:
    m = self.measured
    return (m[0] + m[1]) / 2 if isinstance(m, tuple) else m

  @property
  def error(self) -> float:
    """Relative error model / measured - 1 (against the midpoint of a range)."""
    return self.model / self.reference - 1

  @property
  def in_range(self) -> bool | None:
    return self.measured[0] <= self.model <= self.measured[1] if isinstance(self.measured, tuple) else None


def conv_layer(h: int, w: int, cin: int, cout: int, k: int, pad: int, bits: tuple[int, int, int] = (8, 8, 8),
               name: str = "conv") -> Layer:
  """A k x k conv with symmetric padding `pad` and stride 1 on an (h, w, cin) input."""
  b_in, b_w, b_out = bits
  return Layer(name, "conv", ("input",), (h, w, cin), (conv_out(h, k, 1, pad, pad), conv_out(w, k, 1, pad, pad), cout),
               kernel=(k, k), padding=(pad,) * 4, bits_in=b_in, bits_w=b_w, bits_out=b_out)


def kernel_only(layer: Layer, p: Platform) -> float:
  """Cycles of the whole layer as one kernel call with all data in L1 (a kernel micro-benchmark)."""
  return kernel_cycles(p, layer, layer.out_shape, layer.in_shape).total


# Doc: GAP SDK 5x5 8-bit conv, 112x112 image, 100 filters (cycles).
SDK_5X5 = {"8 cores, SIMD": 2_281_309, "8 cores, no SIMD": 12_810_568, "1 core, SIMD": 17_741_015}
# Doc: single-core MAC/cycle of a mixed-precision core: {(activation bits, weight bits): MAC/cycle}.
MIXED_CORE = {(8, 8): 2.1, (8, 4): 2.3, (8, 2): 2.5, (4, 8): 2.1, (4, 4): 3.5, (4, 2): 3.9, (2, 8): 2.2, (2, 4): 4.0,
              (2, 2): 6.5}
PEAK_8CORE = (15.5, 16.0)  # doc: best 8-bit conv kernels on 8 cores, MAC/cycle.


def figures(gap8: Platform = GAP8, v2: Platform = XPULPNN_V2, tiler: str = DEFAULT_TILER) -> list[Figure]:
  """Every public measured figure of the doc with the simulator's value."""
  out = []
  variants = {"8 cores, SIMD": gap8, "8 cores, no SIMD": dataclasses.replace(gap8, simd_lanes=()),
              "1 core, SIMD": dataclasses.replace(gap8, n_cores=1)}
  for pad, label in ((2, "112x112 output ('same')"), (0, "108x108 output ('valid')")):
    layer = conv_layer(112, 112, 1, 100, 5, pad)
    for what, p in variants.items():
      out.append(Figure(f"SDK 5x5 conv, {what}", SDK_5X5[what], kernel_only(layer, p), "cycles",
                        note=f"1 input channel, {label}, data in L1 (kernel only)"))
  peak_layer = conv_layer(18, 18, 32, 64, 3, 0)
  out.append(Figure("8-bit conv kernel peak, 8 cores", PEAK_8CORE, peak_layer.macs / kernel_only(peak_layer, gap8),
                    "MAC/cycle", note="3x3, 32->64 channels, 16x16 output (assumed benchmark layer), kernel only"))
  net = Network("peak", peak_layer.in_shape, (peak_layer,))
  rep = simulate(net, gap8, tiler=tiler)
  out.append(Figure("8-bit conv layer incl. DMA, 8 cores", PEAK_8CORE, rep.macs / rep.layers[0].cycles, "MAC/cycle",
                    note="same layer tiled from L2 (DMA, calls, layer overhead)"))
  core = v2.replace(n_cores=1, **{"kernel.mixed_library_8bit": True})  # the mixed core runs its own kernels.
  for (a, w), value in MIXED_CORE.items():
    layer = conv_layer(18, 18, 64, 64, 3, 0, (a, w, a))
    out.append(Figure(f"1-core mixed precision a{a}/w{w}", value, layer.macs / kernel_only(layer, core), "MAC/cycle",
                      fitted=(a, w) == (8, 8),
                      note="xpulpnn-v2 core, 3x3, 64->64, 16x16 output (assumed layer), output at activation bits"))
  dw = DW_LAYER
  out.append(Figure("depthwise, 8 cores (doc analytic model)", 1.0, dw.macs / kernel_only(dw, gap8), "MAC/cycle",
                    note="3x3, 64 channels, 32x32 output, pulp_nn_depthwise_generic counted from the code; the "
                         "doc's ~1 MAC/cycle is a model, not a measurement (no published depthwise figure)"))
  out.append(Figure("usable L1 on GAP8 (DORY)", 36_700, gap8.l1_usable_bytes, "bytes",
                    note="64 kB minus stacks (3,500 + 7 x 3,400 B) and runtime"))
  return out


CONV_TABLE_PAIRS = ((8, 8), (4, 4), (2, 2), (8, 4), (4, 8), (8, 2))
DW_LAYER = Layer("dw", "depthwise", ("input",), (34, 34, 64), (32, 32, 64), kernel=(3, 3), groups=64)
DW_BITS = ((8, 8, 8), (4, 4, 4), (2, 2, 2), (8, 4, 8), (8, 2, 8), (8, 8, 4))
# kernel_ops library -> (platform it runs on, whether DORY links pulp-nn-mixed).
OPS_LIBS = {"pulp-nn": (GAP8, False), "xpulpv2": (GAP8, True), "xpulpnn": (XPULPNN_V1, True)}


def ops_cost_table(bits: tuple[tuple[int, int, int], ...] = DW_BITS) -> str:
  """Markdown: depthwise, add and average-pool costs counted from the kernel code (`kernel_ops`), per library
  (pulp-nn: DORY's 8-bit library; pulp-nn-mixed XpulpV2 = "mixed-sw"; XpulpNN = "mixed-hw", also used for
  XpulpNN-mixed, which ships none), with the cluster rate on reference layers (8 cores, data in L1)."""
  lines = ["| kernel | library | bits in/w/out | code counts (instructions) | 8-core rate | file (Backend_Kernels/...) |",
           "|---|---|---|---|---|---|"]
  for lib, (p, mixed) in OPS_LIBS.items():
    q = p.replace(**{"kernel.mixed_library_8bit": mixed})
    for a, w, o in bits:
      loop = kernel_ops.DEPTHWISE.get((lib, a, w, o))
      if loop is None:
        continue
      layer = dataclasses.replace(DW_LAYER, bits_in=a, bits_w=w, bits_out=o)
      rate = layer.macs / kernel_only(layer, q)
      lines.append(f"| depthwise 3x3 | {lib} | {a}/{w}/{o} | per {loop.group} ch: dot {loop.dot} ({loop.dot_mac_load} "
                   f"MAC&LOAD) per 4 taps, leftover {loop.left}/tap, output {loop.output}, im2col {loop.word}/word + "
                   f"{loop.row}/row, weights {loop.weights}/tap | {rate:.2f} MAC/cycle | {loop.file} |")
  for lib, (p, mixed) in OPS_LIBS.items():
    q = p.replace(**{"kernel.mixed_library_8bit": mixed})
    for b in (8, 4, 2):
      add = kernel_ops.ADD.get((lib, b))
      if add is None:
        continue
      layer = Layer("add", "add", ("a", "b"), (16, 16, 64), (16, 16, 64), in2_shape=(16, 16, 64), bits_in=b,
                    bits_in2=b, bits_out=b)
      cyc = kernel_only(layer, q)
      lines.append(f"| add | {lib} | {b}/{b}/{b} | {add.instr} per {add.elems} outputs | "
                   f"{layer.out_shape[0] * layer.out_shape[1] * 64 / cyc:.2f} outputs/cycle | {add.file} |")
  for lib, (p, mixed) in OPS_LIBS.items():
    q = p.replace(**{"kernel.mixed_library_8bit": mixed})
    for b in (8, 4, 2):
      pool = kernel_ops.POOL.get((lib, "avg", b))
      if pool is None:
        continue
      layer = Layer("gap", "pool", ("x",), (8, 8, 256), (1, 1, 256), kernel=(8, 8), mode="avg", bits_in=b, bits_out=b)
      lines.append(f"| global avg pool 8x8 | {lib} | {b}/-/{b} | per {pool.group} ch: {pool.window}/window element, "
                   f"{pool.channel} requant+loop; {pool.pixel}/pixel | {8 * 8 * 256 / kernel_only(layer, q):.2f} "
                   f"inputs/cycle (1 core: one output row) | {pool.file} |")
  return "\n".join(lines)


def conv_cost_table(platforms: tuple[Platform, ...] = (GAP8, XPULPNN_V1, XPULPNN_V2),
                    pairs: tuple[tuple[int, int], ...] = CONV_TABLE_PAIRS) -> str:
  """Markdown: per ISA and (b_in, b_w), the conv inner loop read from the PULP-NN-mixed code (instructions and
  MACs per iteration, of which weight unpacking), its cycles per MAC on one core (one cycle per instruction,
  `kernel.mac_load_cycles` per MAC&LOAD), the activation im2col helper and the kernel file."""
  lines = ["| ISA | b_in/b_w | instr / MACs per iteration | weight-unpack instr | cycles/MAC (1 core) | "
           "im2col helper (cycles/elem) | per 4x2 block: requant/store/set-up; per leftover element | "
           "kernel file (pulp-nn-mixed/...) |", "|---|---|---|---|---|---|---|---|"]
  for p in platforms:
    for a, w in pairs:
      l = kernel_code.CONV_INNER[(p.isa, a, w)]
      t = kernel_ops.MATMUL_TAIL[(p.isa, a, w, 8)]
      lines.append(f"| {p.isa} | {a}/{w} | {l.instr} / {l.macs} | {l.unpack_instr} | "
                   f"{iteration_cycles(p, l) / l.macs:.3f} | {l.im2col} ({l.im2col_cycles_per_elem:.3g}) | "
                   f"{t.block}; {t.tail:g} | {l.conv_file} -> {l.matmul} |")
  return "\n".join(lines)


def _num(v: float) -> str:
  return f"{v:,.0f}" if v >= 1000 else f"{v:.3g}"


def markdown(figs: list[Figure]) -> str:
  """A markdown table of `figs`."""
  lines = ["| figure | measured | simulator | error | note |", "|---|---|---|---|---|"]
  for f in figs:
    m = f"{f.measured[0]:g}-{f.measured[1]:g}" if isinstance(f.measured, tuple) else _num(f.measured)
    fit = " (fitted)" if f.fitted else ""
    lines.append(f"| {f.name} | {m} {f.unit} | {_num(f.model)} | {100 * f.error:+.1f}%{fit} | {f.note} |")
  return "\n".join(lines)
