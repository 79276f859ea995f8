"""The quantization policy of a twin: bit widths, activation method, rounding, mixed-precision search."""

from __future__ import annotations

import dataclasses

from jaxbp.quant.bayesian_bits import BBConfig
from jaxbp.quant.quantizers import check_bits, check_rounding

ACT_METHODS = ("pact", "tqt")


@dataclasses.dataclass(frozen=True)
class QuantConfig:
  """How a quantized twin quantizes.

  Attributes:
    act_bits: bits of every activation grid that does not fix its own (the sigmoid's 8-bit grids do).
    weight_bits: bits of conv/dense weights (symmetric min-max, per output channel by default).
    bias_bits: bias integer width (on the accumulator grid ε_x·ε_w).
    act_method: "pact" (learned clip α, scale α/(2^b-1) unsigned, α/(2^(b-1)-1) signed symmetric) or
      "tqt" (learned log2 threshold, TQT grids and gradients).
    rounding: "half_up" (default; what a floor-shift requant with a folded rounding offset computes) or
      "floor"; used by every quantizer.
    per_channel: per-output-channel weight scales (per-tensor if False).
    power_of_two: TQT thresholds rounded up to powers of two (False: generalized TQT).
    bayesian_bits: Bayesian-Bits gates on weights and searchable activations (None: fixed bits).
  """

  act_bits: int = 8
  weight_bits: int = 8
  bias_bits: int = 32
  act_method: str = "pact"
  rounding: str = "half_up"
  per_channel: bool = True
  power_of_two: bool = False
  bayesian_bits: BBConfig | None = None

  def __post_init__(self):
    check_bits(self.act_bits)
    check_bits(self.weight_bits)
    check_bits(self.bias_bits)
    check_rounding(self.rounding)
    if self.act_method not in ACT_METHODS:
      raise ValueError(f"QuantConfig.act_method must be one of {ACT_METHODS}, got {self.act_method!r}")
    if self.rounding == "half_even":
      raise ValueError("QuantConfig.rounding: an integer kernel cannot do half-even; use half_up or floor")
