"""Memory as a budget: how many candidates one vmapped step may hold, from the compiled program's own figures.

XLA reports, for a compiled program, the bytes of its arguments, outputs and temporaries. A vmapped chunk of
c candidates needs about c times a single candidate's bytes (weights, optimizer state, activations and their
gradients all carry the candidate axis; the shared batch is counted once per candidate, conservatively), so
the chunk size is limit // bytes_per_candidate. The figures come from the program that will run (the loop's
single-candidate step, or the first vmapped chunk): measuring costs no extra compilation unless the chunk must
shrink.
"""

from __future__ import annotations

import dataclasses
import os
import resource
from typing import Any

DEFAULT_FRACTION = 0.6  # of physical memory: leaves room for the host process, data and XLA's own caches.
# XLA's figure is what one execution of the program holds; the process peaked higher: a UNet1d-sensors search
# step (625-sample windows, batch 256) estimated at 4.24 GB per candidate peaked at 9.45 GB RSS with one
# candidate per chunk (2.23x: the next step's buffers are allocated while the previous ones are still held,
# allocator slack, the process itself), and 3 candidates estimated at 12.2 GB were killed at 24 GB. Plans use
# the estimate times this factor.
RUNTIME_FACTOR = 2.25


class MemoryBudgetError(RuntimeError):
  """A step does not fit the memory limit even for one candidate."""


def physical_memory() -> int:
  """Bytes of RAM of this machine (cgroup limit where one is set and smaller)."""
  total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
  for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
    try:
      text = open(path).read().strip()
    except OSError:
      continue
    if text.isdigit():
      total = min(total, int(text))
  return total


def default_limit() -> int:
  """The default `--memory-limit`: a safe fraction of physical memory (bytes)."""
  return int(DEFAULT_FRACTION * physical_memory())


def parse_size(text: str) -> int:
  """'8G', '512M', '0.5T' or plain bytes -> bytes."""
  units = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
  t = text.strip().upper().removesuffix("B")
  try:
    return int(float(t[:-1]) * units[t[-1]]) if t and t[-1] in units else int(float(t))
  except (ValueError, IndexError):
    raise ValueError(f"memory size {text!r}: expected bytes or a number with K/M/G/T, e.g. 8G") from None


def peak_rss() -> int:
  """Peak resident memory of this process so far (bytes)."""
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@dataclasses.dataclass(frozen=True)
class Budget:
  """The memory plan of a many-candidate step (JSON-able via `dataclasses.asdict`)."""

  bytes_per_candidate: int
  limit: int
  chunk_size: int
  candidates: int


def step_bytes(lowered: Any) -> int:
  """Arguments + outputs + temporaries (bytes) of a lowered program (`jax.jit(f).lower(...)`), once compiled."""
  mem = lowered.compile().memory_analysis()
  if mem is None:  # a backend that reports nothing: no basis for a plan.
    return 0
  return int(mem.argument_size_in_bytes + mem.output_size_in_bytes + mem.temp_size_in_bytes
             - mem.alias_size_in_bytes)


def plan(lowered: Any, size: int, n: int, limit: int, *, what: str = "step",
         batch: dict[str, tuple[int, ...]] | None = None) -> Budget:
  """How many of `n` candidates fit `limit` bytes at once, from the compiled program of `size` of them (its XLA
  figure times `RUNTIME_FACTOR`).

  Raises `MemoryBudgetError` (naming the batch shapes, candidates and the estimate) when one does not fit.
  """
  total = int(step_bytes(lowered) * RUNTIME_FACTOR)
  per = -(-total // size)
  if per > limit:
    raise MemoryBudgetError(
        f"{what}: one candidate needs ~{per / 2**30:.2f} GiB (batch {batch or {}}) but the memory limit is "
        f"{limit / 2**30:.2f} GiB for {n} candidates; lower --batch-size or raise --memory-limit")
  chunk = size if total <= limit else max(1, min(n, limit // per))
  return Budget(bytes_per_candidate=per, limit=limit, chunk_size=chunk, candidates=n)
