"""Process set-up shared by the runnable studies: persistent compilation cache, memory limit, several processes.

  p = argparse.ArgumentParser(); runtime.add_flags(p); args = p.parse_args()
  proc = runtime.setup(args)       # cache on, jax.distributed initialized if asked; (index, count, barrier)

The persistent cache (JAX's, under `$JAXBP_CACHE/xla` or `~/.cache/jaxbp/xla`) makes a rerun or a resumed run
load what an earlier process compiled instead of compiling it again.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path
from typing import Callable

import jax

from jaxbp.data.source import default_cache_dir
from jaxbp.train.memory import default_limit, parse_size


def enable_compilation_cache(directory: str | Path | None = None) -> Path:
  """Turns on JAX's persistent compilation cache in `directory` (default `default_cache_dir()/xla`); returns it."""
  path = Path(directory) if directory is not None else default_cache_dir() / "xla"
  path.mkdir(parents=True, exist_ok=True)
  jax.config.update("jax_compilation_cache_dir", str(path))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
  return path


def add_flags(parser: argparse.ArgumentParser, *, distributed: bool = False) -> None:
  """--no-compile-cache, --memory-limit (and with `distributed`, the multi-process flags)."""
  parser.add_argument("--no-compile-cache", action="store_true",
                      help="do not use the persistent compilation cache ($JAXBP_CACHE/xla)")
  parser.add_argument("--memory-limit", default=None,
                      help="bytes the many-candidate steps may use, e.g. 12G (default: 60%% of RAM); 'none': no limit")
  if distributed:
    parser.add_argument("--coordinator", default=None, help="HOST:PORT of process 0 (multi-process runs)")
    parser.add_argument("--num-processes", type=int, default=None, help="processes in a multi-process run")
    parser.add_argument("--process-id", type=int, default=None, help="this process's index in [0, N)")


def memory_limit(args: argparse.Namespace) -> int | None:
  """The --memory-limit in bytes (None for 'none')."""
  text = getattr(args, "memory_limit", None)
  if text is None:
    return default_limit()
  if str(text).lower() == "none":
    return None
  return parse_size(text)


@dataclasses.dataclass(frozen=True)
class Processes:
  """This process's place in a (possibly multi-process) run; `barrier(name)` waits for all of them."""

  index: int = 0
  count: int = 1
  barrier: Callable[[str], None] | None = None


def setup(args: argparse.Namespace) -> Processes:
  """Applies the flags of `add_flags`: the compilation cache, and `jax.distributed` when several processes
  are asked for (flags or JAX's environment variables; CPU collectives over gloo)."""
  if not getattr(args, "no_compile_cache", False):
    enable_compilation_cache()
  n = getattr(args, "num_processes", None)
  if n is None and "JAX_NUM_PROCESSES" in os.environ:
    n = int(os.environ["JAX_NUM_PROCESSES"])
  if not n or n == 1:
    return Processes()
  coordinator = getattr(args, "coordinator", None) or os.environ.get("JAX_COORDINATOR_ADDRESS")
  pid = getattr(args, "process_id", None)
  pid = int(os.environ.get("JAX_PROCESS_ID", -1)) if pid is None else pid
  if coordinator is None or not 0 <= pid < n:
    raise ValueError(f"a {n}-process run needs --coordinator HOST:PORT and --process-id in [0, {n}), "
                     f"got {coordinator!r} and {pid}")
  jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU processes; accelerators use their own
  jax.distributed.initialize(coordinator_address=coordinator, num_processes=n, process_id=pid)

  def barrier(name: str) -> None:
    # The coordination service's barrier (no device collective: a psum-based sync_global_devices hung on CPU).
    from jax._src import distributed  # pylint: disable=import-outside-toplevel
    distributed.global_state.client.wait_at_barrier(name, timeout_in_ms=24 * 3600 * 1000)

  return Processes(index=jax.process_index(), count=jax.process_count(), barrier=barrier)
