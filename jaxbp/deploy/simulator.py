"""The simulator: per-layer cycles (compute, im2col/unpack, DMA, L3, overheads), energy and totals.

  report = simulate(zoo.mobilenet_v1(1.0, 128), get_platform("gap8"))
  print(report.table()); json.dumps(report.to_json())

Energy = sum over phases of power x time: kernel compute of conv/pointwise/linear layers at the
compute-bound power, depthwise/element-wise compute, exposed L2<->L1 DMA and call overheads at the
DMA-bound power, exposed L3 waits at the L3-bound power, plus the I/O domain over the whole inference.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from jaxbp.deploy.dory_tiler import dory_node, kernel_name
from jaxbp.deploy.layers import Network
from jaxbp.deploy.platforms import Platform
from jaxbp.deploy.schedule import LayerTiming, layer_timing
from jaxbp.deploy.tiler import DEFAULT_TILER, NetworkPlan, plan_network

COMPUTE_BOUND_OPS = ("conv", "pointwise", "linear")


@dataclasses.dataclass(frozen=True)
class LayerReport:
  """One layer's simulated cost. Cycles are cluster cycles; `cycles` = compute + dma_exposed +
  l3_exposed + overhead; im2col/unpack are parts of compute; dma/l3 are busy cycles (overlapped or not);
  dma_setups counts the L2<->L1 DMA set-ups (2-D transfers; a 3-D tile slice pays one per tile row);
  kernel: the PULP-NN(-mixed) function DORY would call ("" if none); l1_bytes: the tile's L1 footprint;
  note: how the tile was chosen when it matters (see `L1Tiling.note`)."""

  name: str
  op: str
  mode: str
  macs: int
  bits_in: int
  bits_w: int
  bits_out: int
  tile: tuple[int, int, int]
  grid: tuple[int, int, int]
  n_tiles: int
  cycles: float
  compute_cycles: float
  im2col_cycles: float
  unpack_cycles: float
  dma_cycles: float
  dma_exposed_cycles: float
  l3_cycles: float
  l3_exposed_cycles: float
  overhead_cycles: float
  latency_ms: float
  energy_mj: float
  dma_setups: int = 0
  kernel: str = ""
  l1_bytes: int = 0
  note: str = ""


@dataclasses.dataclass(frozen=True)
class Report:
  """A network's simulated deployment. `fits` is False with `reasons` (numbers included) when the
  network does not fit; the cycles are then those it would take with enough memory."""

  model: str
  platform: str
  freq_mhz: float
  fits: bool
  reasons: tuple[str, ...]
  uses_l3: bool
  total_cycles: float
  latency_ms: float
  energy_mj: float
  macs: int
  weight_bytes: int
  peak_l2_bytes: int
  layers: tuple[LayerReport, ...]
  tiler: str = "jaxbp"
  double_buffered: bool = True

  def to_json(self) -> dict[str, Any]:
    """The `tools/deploy.py simulate --json` object (its documented keys; later fields are additions)."""
    keys = ("name", "op", "macs", "bits_in", "bits_w", "bits_out", "n_tiles", "cycles", "compute_cycles",
            "dma_cycles", "latency_ms", "kernel", "tile", "dma_exposed_cycles", "l3_exposed_cycles", "overhead_cycles",
            "l1_bytes")
    return {"model": self.model, "platform": self.platform, "freq_mhz": self.freq_mhz, "fits": self.fits,
            "uses_l3": self.uses_l3, "total_cycles": round(self.total_cycles), "latency_ms": self.latency_ms,
            "energy_mj": self.energy_mj, "macs": self.macs, "weight_bytes": self.weight_bytes,
            "peak_l2_bytes": self.peak_l2_bytes, "tiler": self.tiler, "double_buffered": self.double_buffered,
            "layers": [{k: (round(getattr(l, k)) if k.endswith("cycles") else
                            list(getattr(l, k)) if k == "tile" else getattr(l, k)) for k in keys}
                       for l in self.layers]}

  @property
  def mac_per_cycle(self) -> float:
    return self.macs / self.total_cycles

  def table(self) -> str:
    """Human-readable per-layer breakdown and totals: the kernel DORY would call, the L1 output tile (h x w x c)
    and the number of tiles, then cycles (compute, DMA busy / exposed, L3 exposed, call overheads)."""
    head = (f"{'layer':24} {'op':11} {'bits':7} {'kernel':34} {'tile hxwxc':13} {'tiles':>5} {'MACs':>10} "
            f"{'cycles':>10} {'compute':>10} {'im2col':>8} {'dma':>9} {'setups':>6} {'dma_exp':>9} {'l3_exp':>9} "
            f"{'ovh':>7} {'ms':>7}")
    lines = [head, "-" * len(head)]
    for l in self.layers:
      op = l.op if not l.mode else f"{l.op}/{l.mode}"[:11]
      tile = "x".join(str(v) for v in l.tile)
      lines.append(f"{l.name[:24]:24} {op:11} {l.bits_in}/{l.bits_w}/{l.bits_out:<3} {(l.kernel or '-')[:34]:34} "
                   f"{tile:13} {l.n_tiles:5d} {l.macs:10d} "
                   f"{l.cycles:10.0f} {l.compute_cycles:10.0f} {l.im2col_cycles:8.0f} {l.dma_cycles:9.0f} "
                   f"{l.dma_setups:6d} "
                   f"{l.dma_exposed_cycles:9.0f} {l.l3_exposed_cycles:9.0f} {l.overhead_cycles:7.0f} "
                   f"{l.latency_ms:7.3f}")
    lines.append("-" * len(head))
    notes = [f"  {l.name}: {l.note}" for l in self.layers if l.note and l.note != "whole layer in L1"]
    if notes:
      lines += ["notes:"] + notes
    buf = "double-buffered" if self.double_buffered else "single-buffered, blocking DMA"
    lines.append(f"tiler {self.tiler} ({buf})")
    verdict = "fits" if self.fits else "DOES NOT FIT: " + "; ".join(self.reasons)
    lines.append(f"{self.model} on {self.platform} @ {self.freq_mhz:g} MHz: {self.total_cycles:,.0f} cycles, "
                 f"{self.latency_ms:.3f} ms, {self.energy_mj:.4f} mJ, {self.macs:,} MACs "
                 f"({self.macs / self.total_cycles:.2f} MAC/cycle), weights {self.weight_bytes:,} B, "
                 f"peak L2 {self.peak_l2_bytes:,} B, {'uses L3' if self.uses_l3 else 'L2 only'}; {verdict}")
    return "\n".join(lines)


def layer_energy_mj(op: str, t: LayerTiming, p: Platform) -> float:
  """Energy of one layer from its phase cycles (power scales with the clock, so energy/cycle is fixed)."""
  pw = p.power
  compute_mw = pw.compute_mw if op in COMPUTE_BOUND_OPS else pw.dma_mw
  mw_cycles = (compute_mw * t.compute + pw.dma_mw * (t.dma_exposed + t.overhead) + pw.l3_mw * t.l3_exposed
               + pw.io_mw * t.total)
  return mw_cycles / (pw.ref_mhz * 1e6)  # mW x cycles / (cycles/s at ref) = mJ


def acc_out(net: Network) -> tuple[str, ...]:
  """Layers writing their raw int32 accumulator: the last layer if it is linear (jaxbp's integer graphs and DORY
  exports; DORY calls pulp_nn_linear_out_32). The latency tables profile those layers the same way."""
  last = net.layers[-1]
  return (last.name,) if last.op == "linear" else ()


def _dory_nodes(net: Network) -> dict:
  acc = acc_out(net)
  return {l.name: dory_node(l, l.name in acc) for l in net.layers}


def sub_byte_library(isa: str) -> str:
  """The library DORY links on `isa` for a network with a sub-byte tensor (signed input, as jaxbp exports)."""
  return "mixed-hw" if isa != "xpulpv2" else "mixed-sw"


def has_sub_byte(net: Network) -> bool:
  """Whether any tensor of `net` is sub-byte: a layer's input(s), weights or output (not an int32 accumulator
  output). Every layer counts, those without a DORY node too (grouped convs: jaxbp's DORY export splits them
  into convs of the same bits; `jaxbp.export.dory.app.choose_optional` also looks at every layer)."""
  acc = acc_out(net)
  for l in net.layers:
    bits = [l.bits_in] + ([l.bits_in2] if l.bits_in2 is not None else []) + ([l.bits_w] if l.weighted else [])
    if l.name not in acc:
      bits.append(l.bits_out)
    if min(bits) < 8:
      return True
  return False


def dory_library(net: Network, isa: str, signed_input: bool = True) -> str:
  """The kernel library DORY links for `net` on `isa`: "8bit" (pulp-nn) for an all-8-bit network with an unsigned
  input; "mixed-hw" (pulp-nn-mixed's xpulp_nn_* kernels, every layer, 8-bit ones included) when a tensor is
  sub-byte (`has_sub_byte`) on an XpulpNN ISA; else "mixed-sw" (pulp-nn-mixed's XpulpV2 kernels: GAP8/XpulpV2,
  and an all-8-bit network whose input is signed, as in jaxbp's DORY exports:
  `jaxbp.export.dory.app.choose_optional`)."""
  sub = has_sub_byte(net)
  if not sub and not signed_input:
    return "8bit"
  return sub_byte_library(isa) if sub else "mixed-sw"


def uses_mixed_library(net: Network, signed_input: bool = True) -> bool:
  """Whether DORY links pulp-nn-mixed for `net` rather than pulp-nn's 8-bit library (`dory_library`)."""
  return dory_library(net, "xpulpv2", signed_input) != "8bit"


def dory_kernels(net: Network, p: Platform, signed_input: bool = True) -> dict[str, str]:
  """{layer: the PULP-NN(-mixed) function DORY would call} ("" for layers without a DORY kernel); the library as
  `dory_library` decides."""
  nodes = _dory_nodes(net)
  lib = dory_library(net, p.isa, signed_input)
  isa = p.isa if lib == "mixed-hw" else "xpulpv2"
  out = {l.name: kernel_name(nodes[l.name], isa, lib != "8bit", signed_input and l.inputs[0] == "input")
         if nodes[l.name] else "" for l in net.layers}
  for l in net.layers:  # DORY's pooling template calls the max-pool kernel for max pools (one width in its name).
    if l.op == "pool" and l.mode == "max" and out[l.name]:
      px = "x" if out[l.name].startswith("x") else ""
      out[l.name] = f"{px}pulp_nn_maxpool_u{l.bits_out}" if lib != "8bit" else "pulp_nn_maxpool"
  return out


def library_platform(p: Platform, library: str) -> Platform:
  """`p` costing the kernels of DORY's `library` ("8bit" | "mixed-sw" | "mixed-hw")."""
  if library not in ("8bit", "mixed-sw", "mixed-hw"):
    raise ValueError(f"unknown DORY kernel library {library!r}; expected 8bit, mixed-sw or mixed-hw")
  return p.replace(**{"kernel.mixed_library_8bit": library != "8bit",
                      "kernel.software_mixed": library == "mixed-sw" or p.isa == "xpulpv2"})


def with_library(net: Network, p: Platform, signed_input: bool = True) -> Platform:
  """`p` costing the kernels DORY links for `net` (`dory_library`; the names `dory_kernels` reports)."""
  return library_platform(p, dory_library(net, p.isa, signed_input))


def report_from_plan(plan: NetworkPlan, tiler: str = "jaxbp") -> Report:
  """Simulates a planned network (`tiler`: the policy the plan was made with, for the report)."""
  p, net = plan.platform, plan.network
  kernels = dory_kernels(net, p)
  layers = []
  for lp in plan.layers:
    l = lp.layer
    t = layer_timing(l, lp.l1.timing, lp.stream, p)
    layers.append(LayerReport(l.name, l.op, l.mode, l.macs, l.bits_in, l.bits_w, l.bits_out, lp.l1.tile, lp.l1.grid,
                              t.n_tiles, t.total, t.compute, t.im2col, t.unpack, t.dma + t.l3, t.dma_exposed, t.l3,
                              t.l3_exposed, t.overhead, t.total / (p.freq_mhz * 1e3), layer_energy_mj(l.op, t, p),
                              t.dma_setups, kernels[l.name], lp.l1.l1_bytes, lp.l1.note))
  total = sum(l.cycles for l in layers)
  return Report(net.name, p.name, p.freq_mhz, plan.fits, plan.reasons, plan.uses_l3, total,
                total / (p.freq_mhz * 1e3), sum(l.energy_mj for l in layers), net.macs,
                net.param_bytes(p.requant_bytes_per_channel), plan.peak_l2_bytes, tuple(layers), tiler, p.double_buffer)


def simulate(net: Network, platform: Platform, freq_mhz: float | None = None, l3: bool | None = None,
             tiler: str = DEFAULT_TILER) -> Report:
  """Plans and simulates `net` on `platform` (optionally at another clock or with L3 on/off) under the tiler
  policy `tiler`: "dory" (default: the deployment DORY generates, with its buffering) or "jaxbp"."""
  p = platform
  if freq_mhz is not None:
    p = dataclasses.replace(p, freq_mhz=float(freq_mhz))
  if l3 is not None:
    p = dataclasses.replace(p, l3_enabled=bool(l3))
  return report_from_plan(plan_network(net, with_library(net, p), tiler), tiler)
