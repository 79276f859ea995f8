"""Target platforms as data: memories, DMA, clock, per-kernel cycle parameters and power.

Every number is a named field with its source; figures come from `shared/docs/pulp-hardware.md`
("doc") unless marked *estimate* (an instruction count or an engineering guess, to be replaced by a
measurement when one exists). Override any field with `dataclasses.replace`, `Platform.replace(**kw)`
(dotted keys reach the nested kernel/power/dory parameters) or `platform_from_dict`.

Cycles are cluster cycles; sizes are bytes; power is mW at `Power.ref_mhz`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ISAS = ("xpulpv2", "xpulpnn-v1", "xpulpnn-v2")


@dataclasses.dataclass(frozen=True)
class KernelParams:
  """Cycle parameters of the PULP-NN-style kernels (per core unless stated).

  The 4x2 matmul kernel: per inner iteration it loads 4 weight words and 2 activation words and runs
  8 sdotp (doc: "4 weight words + 2 activation words and 8 sdotp = 32 MACs in ~14 instructions").
  """

  load_cycles: float = 1.0  # one 32-bit load (L1 is single-cycle for the cluster, doc).
  sdotp_cycles: float = 1.0  # one SIMD dot product (doc: 8 sdotp per 4x2 iteration).
  # The next six apply only where the code gives no figure (no SIMD; kernel_ops.MATMUL_TAIL has the 4x2 block,
  # requantization, packing and leftover costs of every PULP-NN(-mixed) matmul, read from the code).
  block_setup_cycles: float = 5.0  # per 4x2 output block (doc analytic model: "5 + ...").
  block_store_cycles: float = 10.0  # requant + store of a 4x2 block (doc analytic model: "... + 10").
  row_setup_cycles: float = 2.0  # per 1x2 leftover channel (Cout % 4 path) -- estimate.
  row_store_cycles: float = 3.0  # requant + store of 2 outputs on the 1x2 path -- estimate.
  row_leftover_cycles_per_elem: float = 5.0  # 1x2 path scalar tail: 3 loads + 2 MACs (doc structure).
  leftover_cycles_per_elem: float = 14.0  # scalar tail of K*K*Cin % lanes: 6 loads + 8 MACs (doc structure).
  # Standard/pointwise convs: the inner loop of each (b_in, b_w) is read from the PULP-NN-mixed code
  # (kernel_code.CONV_INNER: one cycle per instruction); these two numbers complete it.
  # Cycles per XpulpNN MAC&LOAD-family instruction (MacLoad*, MacLoadInit/Assign): one instruction in the code;
  # *calibrated* to 1.57 on the doc's single-core a8/w8 figure (2.1 MAC/cycle) with the block, requantization and
  # leftover costs read from the code (kernel_ops.MATMUL_TAIL), the conv model's only fitted number; the eight
  # sub-byte/mixed figures validate it (docs/calibration.md). Unused on XpulpV2 (GAP8).
  mac_load_cycles: float = 1.57
  # DORY links pulp-nn-mixed for the network (8-bit layers run its kernels, on XpulpNN the xpulp_nn_* ones), not
  # pulp-nn's 8-bit library; `simulate` sets it per network as DORY decides (simulator.uses_mixed_library).
  mixed_library_8bit: bool = False
  # With pulp-nn-mixed: its XpulpV2 kernels ("mixed-sw", also what DORY runs on XpulpNN hardware for an all-8-bit
  # network with a signed input) rather than the ISA's xpulp_nn_* ones ("mixed-hw"); set by `simulate` too.
  software_mixed: bool = False
  im2col_leftover_cycles: float = 2.0  # code: im2col's byte-wise leftover loop, a load and a store per element.
  im2col_cycles_per_byte: float = 1.0  # doc analytic model: im2col = 2*K*K*Cin cycles per pixel pair (no SIMD path).
  # Software unpack of packed sub-byte operands, per produced 32-bit word: mask + shift (+ sign fix) with
  # weights reordered offline -- estimate (instruction count, XpulpV2 bit-manipulation).
  unpack_cycles_per_word: float = 2.0
  pack_cycles_per_output: float = 1.0  # insert a sub-byte output into its packed byte (p.insert) -- estimate.
  scalar_cycles_per_mac: float = 3.0  # no SIMD: 2 byte loads + 1 MAC per MAC -- estimate (instruction count).
  pointwise_factor: float = 1.3  # doc: the analytic model "underestimates pointwise layers by ~30%".
  # Depthwise, add and pool kernels are counted from the code (kernel_ops); these three only where no kernel
  # exists for the widths (no SIMD, unequal add widths):
  dw_core_cycles_per_mac: float = 8.0  # doc: depthwise ~1 MAC/cycle for the whole 8-core cluster.
  add_cycles_per_elem: float = 2.0  # residual add with requant of both inputs, per output -- estimate.
  pool_cycles_per_elem: float = 1.0  # per output and window element (load + max/add) -- estimate.
  # Per output element of the other element-wise kernels -- estimates (instruction counts):
  requant_cycles: float = 4.0  # per-channel affine + ReLU: mul, add, shift, clip.
  lut_cycles: float = 3.0  # load, table load, store.
  mul_cycles: float = 5.0  # channel-broadcast multiply with requant (SE gating).
  norm_cycles: float = 7.0  # instance norm (mean pass, variance pass, apply) + affine + PReLU.
  resize_cycles: float = 7.0  # x2 linear interpolation: 2 loads, 2 mul, add, shift, store.
  concat_cycles: float = 1.0  # centre-crop + concat copy, per element.
  kernel_call_cycles: float = 200.0  # fork/join of the cores per tile -- estimate.
  layer_call_cycles: float = 1000.0  # per layer: FC->cluster call, loop setup -- estimate.

  def elementwise_cycles(self, mode: str) -> float:
    try:
      return float(getattr(self, f"{mode}_cycles"))
    except AttributeError:
      raise ValueError(f"no element-wise kernel cost for mode {mode!r}") from None


@dataclasses.dataclass(frozen=True)
class Power:
  """Cluster-domain power per phase and I/O-domain power, in mW at `ref_mhz` (doc: GAP8, 100 MHz, 1.0 V).

  Power scales linearly with the clock (dynamic power at fixed voltage), so energy per cycle is constant.
  """

  compute_mw: float = 48.0  # doc: ~48 mW in compute-bound layers.
  dma_mw: float = 36.0  # doc: 32-40 mW in depthwise/DMA-bound layers (midpoint).
  l3_mw: float = 19.0  # doc: ~18-20 mW in L3-bound layers (midpoint).
  io_mw: float = 8.5  # doc: I/O domain 7-10 mW (midpoint), counted for the whole inference.
  ref_mhz: float = 100.0  # doc: the figures are at 100 MHz.


@dataclasses.dataclass(frozen=True)
class DoryTarget:
  """The DORY target a deployment of this platform is generated for (its `HW_description.json`, read from
  `shared/dory/dory/Hardware_targets/PULP/<target>/`) and the config jaxbp's DORY export writes.

  `double_buffering` is DORY's buffer factor (1: one L1 buffer per tensor and blocking DMA, as in DORY's
  PULP.GAP8 target; 2: two buffers, the next tile's DMA overlaps compute, DORY's default and its PULP_gvsoc
  target). Under the `dory` tiler policy it sets both the L1 budget of a tile and the cycle model.
  """

  name: str = "PULP.GAP8"
  l1_bytes: int = 64_000  # HW_description memory.L1.dimension (DORY's L1 budget is 64,000 B, not 64 KiB).
  stack_core0_bytes: int = 3_500  # "accelerator core0 stack".
  stack_core_bytes: int = 3_400  # "accelerator core1-7 stack".
  l2_bytes: int = 512_000  # memory.L2.dimension.
  code_reserved_bytes: int = 132_000  # "code reserved space" of jaxbp's dory_config.json (jaxbp/export/onnx/dory.py).
  double_buffering: int = 1  # "double_buffering" (GAP8: 1; absent = 2).
  constant_bits: int = 32  # "BNRelu_bits" of the config: k and lambda are int32.

  @property
  def l1_budget_bytes(self) -> int:
    """L1 DORY lets tiles use: dimension minus the 8 cores' stacks (36,700 B on GAP8)."""
    return self.l1_bytes - self.stack_core0_bytes - 7 * self.stack_core_bytes

  @property
  def l2_budget_bytes(self) -> int:
    """L2 DORY lets one layer's L2 tile use (weights, activations, constants): dimension minus code."""
    return self.l2_bytes - self.code_reserved_bytes


# DORY's PULP_gvsoc target (generic PULP cluster): larger stacks, no "double_buffering" key (= 2), DMA not blocking.
DORY_PULP = DoryTarget("PULP.PULP_gvsoc", stack_core0_bytes=3_800, stack_core_bytes=3_600, double_buffering=2)


@dataclasses.dataclass(frozen=True)
class Platform:
  """One 8-core PULP cluster target.

  Attributes (units in the names): see the per-field comments for each source.
  """

  name: str
  isa: str  # "xpulpv2" | "xpulpnn-v1" | "xpulpnn-v2".
  n_cores: int = 8  # doc: cluster of 8 cores.
  freq_mhz: float = 100.0  # doc: "the deployment literature often reports at 100 MHz" (GAP8 max 175 @ 1.2 V).
  l1_bytes: int = 65_536  # doc: L1 64 kB shared.
  l1_stack_core0_bytes: int = 3_500  # doc: DORY GAP8 target, core 0 stack.
  l1_stack_core_bytes: int = 3_400  # doc: DORY GAP8 target, each other core.
  l1_runtime_bytes: int = 1_536  # rest of DORY's reservation: doc says 36,700 B are left for tiles.
  l2_bytes: int = 524_288  # doc: L2 512 kB.
  l2_reserved_bytes: int = 131_072  # doc: DORY configs reserve 120-132 kB for code + runtime (128 kB).
  l3_bytes: int = 8 * 2**20  # doc: 8 MB HyperRAM on the common board.
  l3_enabled: bool = True
  # Buffering of jaxbp's own tiled C runtime (`tiler="jaxbp"`): double-buffered L2<->L1 tiles. A DORY
  # deployment buffers as `dory.double_buffering` says (GAP8: single, blocking DMA).
  double_buffer: bool = True
  dma_bytes_per_cycle: float = 8.0  # doc: published GAP9 cost model, 8 B/cycle.
  dma_setup_cycles: float = 920.0  # doc: ~920 cycles fixed cost per transfer (API + setup).
  dma_row_cycles: float = 1.0  # doc: 1 cycle per 2D row.
  dma_max_queued: int = 16  # doc: up to 16 queued transfers (informational: tiles issue at most 5).
  transpose_bytes_per_cycle: float = 1.0  # doc: HWC->CHW for depthwise at ~1 B/cycle ...
  transpose_channel_cycles: float = 12.0  # doc: ... + 12 cycles per channel.
  l3_mbytes_per_s: float = 40.0  # estimate: doc says "well under 1 B per cluster cycle at 100 MHz" -> 0.4 B/cycle.
  l3_setup_cycles: float = 1_500.0  # estimate: micro-DMA set-up by the fabric controller per L3 transfer.
  l3_chunk_bytes: int = 32_768  # estimate: L2 staging chunk of an L3 stream (double-buffered).
  requant_bytes_per_channel: int = 8  # k and lambda, int32 each (doc: per-channel k/lambda in L1).
  simd_lanes: tuple[tuple[int, int], ...] = ((8, 4),)  # (bits, lanes) of the SIMD dot products (doc).
  mixed_simd: bool = False  # dot products on mixed widths with hardware unpack (XpulpNN v2, doc).
  kernel: KernelParams = KernelParams()
  power: Power = Power()
  dory: DoryTarget = DoryTarget()  # the DORY target of this platform (tiler policy "dory").

  def __post_init__(self):
    if self.isa not in ISAS:
      raise ValueError(f"platform {self.name!r}: isa must be one of {ISAS}, got {self.isa!r}")
    if self.n_cores < 1 or self.freq_mhz <= 0:
      raise ValueError(f"platform {self.name!r}: need n_cores >= 1 and freq_mhz > 0")
    if self.l1_usable_bytes <= 0:
      raise ValueError(f"platform {self.name!r}: L1 reservations exceed l1_bytes={self.l1_bytes}")
    if self.l2_budget_bytes <= 0:
      raise ValueError(f"platform {self.name!r}: l2_reserved_bytes exceeds l2_bytes={self.l2_bytes}")
    if self.dory.double_buffering not in (1, 2):
      raise ValueError(f"platform {self.name!r}: dory.double_buffering must be 1 or 2, got {self.dory.double_buffering}")

  @property
  def l1_usable_bytes(self) -> int:
    """L1 left for tiles after the cores' stacks and the runtime (36,700 B on GAP8)."""
    stacks = self.l1_stack_core0_bytes + (self.n_cores - 1) * self.l1_stack_core_bytes
    return self.l1_bytes - stacks - self.l1_runtime_bytes

  @property
  def l2_budget_bytes(self) -> int:
    """L2 left for weights and activations after code and runtime."""
    return self.l2_bytes - self.l2_reserved_bytes

  @property
  def l3_bytes_per_cycle(self) -> float:
    """L3<->L2 bandwidth in bytes per cluster cycle at `freq_mhz` (the HyperBus clock does not scale)."""
    return self.l3_mbytes_per_s / self.freq_mhz

  def lanes(self, bits: int) -> int:
    """SIMD lanes of a dot product on `bits`-bit operands (0: no SIMD at that width)."""
    return dict(self.simd_lanes).get(bits, 0)

  def replace(self, **overrides: Any) -> Platform:
    """A copy with fields replaced; "kernel.x" / "power.x" keys reach the nested parameters."""
    return platform_from_dict(overrides, base=self)


def _simd(*pairs: tuple[int, int]) -> tuple[tuple[int, int], ...]:
  return tuple(pairs)


# GAP8 (GreenWaves): XpulpV2 cluster, 4x8-bit SIMD only (doc).
GAP8 = Platform("gap8", "xpulpv2")
# Generic 8-core PULP clusters with the ISAs of the Free Bits study. Memory, DMA and power figures are
# GAP8's (the doc gives no others for these clusters) -- an assumption; override per SoC.
XPULPV2 = dataclasses.replace(GAP8, name="xpulpv2", dory=DORY_PULP)
# XpulpNN v1: 4-bit (8 lanes) and 2-bit (16 lanes) SIMD, equal operand widths only (doc).
XPULPNN_V1 = dataclasses.replace(XPULPV2, name="xpulpnn-v1", isa="xpulpnn-v1", simd_lanes=_simd((8, 4), (4, 8), (2, 16)))
# XpulpNN v2: mixed-width dot products unpacked in hardware at no cost (doc).
XPULPNN_V2 = dataclasses.replace(XPULPNN_V1, name="xpulpnn-v2", isa="xpulpnn-v2", mixed_simd=True)

PLATFORMS: dict[str, Platform] = {p.name: p for p in (GAP8, XPULPV2, XPULPNN_V1, XPULPNN_V2)}


def get_platform(name: str, **overrides: Any) -> Platform:
  """The named platform (`PLATFORMS`), with optional overrides (see `Platform.replace`)."""
  if name not in PLATFORMS:
    raise ValueError(f"unknown platform {name!r}; expected one of {sorted(PLATFORMS)}")
  return PLATFORMS[name].replace(**overrides) if overrides else PLATFORMS[name]


def _coerce(field: dataclasses.Field, value: Any, where: str) -> Any:
  current = field.default
  if field.name == "simd_lanes":
    return tuple((int(b), int(l)) for b, l in value)
  if isinstance(current, bool):
    if isinstance(value, str):
      if value.lower() not in ("true", "false", "1", "0"):
        raise ValueError(f"{where}: expected a boolean, got {value!r}")
      return value.lower() in ("true", "1")
    return bool(value)
  if isinstance(current, (int, float)) and not isinstance(current, bool):
    try:
      return type(current)(float(value)) if isinstance(current, int) else float(value)
    except (TypeError, ValueError):
      raise ValueError(f"{where}: expected a number, got {value!r}") from None
  return value


def _replace(obj, updates: Mapping[str, Any], where: str):
  fields = {f.name: f for f in dataclasses.fields(obj)}
  changes = {}
  for key, value in updates.items():
    if key not in fields:
      raise ValueError(f"{where}: unknown field {key!r}; expected one of {sorted(fields)}")
    changes[key] = _coerce(fields[key], value, f"{where}.{key}")
  return dataclasses.replace(obj, **changes)


def platform_from_dict(d: Mapping[str, Any], base: Platform | None = None) -> Platform:
  """Platform from a dict: {"base": "gap8", "l2_reserved_bytes": 122880, "kernel": {...}, "power.io_mw": 7}.

  Without `base` (argument or "base" key) the dict must name a known platform in "name".
  """
  d = dict(d)
  base_name = d.pop("base", None)
  if base is None:
    base = get_platform(base_name or d.get("name", ""))
  nested: dict[str, dict[str, Any]] = {"kernel": {}, "power": {}, "dory": {}}
  flat = {}
  for key, value in d.items():
    head, _, tail = key.partition(".")
    if head in nested and tail:
      nested[head][tail] = value
    elif head in nested and isinstance(value, Mapping):
      nested[head].update(value)
    else:
      flat[key] = value
  plat = _replace(base, flat, f"platform {base.name}")
  return dataclasses.replace(plat, kernel=_replace(plat.kernel, nested["kernel"], f"platform {plat.name}.kernel"),
                             power=_replace(plat.power, nested["power"], f"platform {plat.name}.power"),
                             dory=_replace(plat.dory, nested["dory"], f"platform {plat.name}.dory"))


def load_platform(path: str | Path) -> Platform:
  """Platform from a JSON file in `platform_from_dict` form."""
  try:
    return platform_from_dict(json.loads(Path(path).read_text()))
  except (OSError, json.JSONDecodeError) as e:
    raise ValueError(f"cannot read platform file {path}: {e}") from None


def platform_to_dict(p: Platform) -> dict[str, Any]:
  d = dataclasses.asdict(p)
  d["simd_lanes"] = [list(x) for x in p.simd_lanes]
  return d
