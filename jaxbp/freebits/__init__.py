"""Free Bits: a hardware-aware post-pass over mixed-precision configurations (methods.md section 4)."""

from jaxbp.freebits.heuristic import FreeBitsResult, free_bits, network_latency, upgrade

__all__ = ["FreeBitsResult", "free_bits", "network_latency", "upgrade"]
