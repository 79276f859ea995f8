"""Expose one XLA CPU device per core, so many-candidate work can be sharded across cores.

Must run before jax is imported (XLA reads the flag once); imports nothing heavy.
"""

from __future__ import annotations

import os


def expose_cpu_cores(max_devices: int = 8) -> int:
  """Sets `--xla_force_host_platform_device_count` to the core count unless already set; returns it."""
  flags = os.environ.get("XLA_FLAGS", "")
  if "--xla_force_host_platform_device_count" in flags:
    return int(flags.split("--xla_force_host_platform_device_count=")[1].split()[0])
  n = max(1, min(os.cpu_count() or 1, max_devices))
  os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={n}".strip()
  return n
