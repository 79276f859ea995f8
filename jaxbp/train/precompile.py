"""Compiling programs ahead, in a background thread, while the current work runs.

A sweep needs its search program first, its fine-tune and seed programs later; started here (one at a time, in
submission order) while the initial states are computed and the search runs, they overlap with that work (XLA's
CPU compiler itself keeps ~1.7 of 2 cores busy, so a second concurrent compile only slowed the first one down).
`jax.jit(f).lower(...).compile()` fills the same cache as the first call `f(...)` with arguments of those
shapes and placements, so the later call compiles nothing. A failure here only loses the head start: it is
logged and the program compiles when first called, as it would have anyway.
"""

from __future__ import annotations

import concurrent.futures
import logging
from collections.abc import Callable
from typing import Any

_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="jaxbp-precompile")
_LOG = logging.getLogger(__name__)


def ahead(what: str, compile_fn: Callable[[], Any]) -> concurrent.futures.Future:
  """Runs `compile_fn()` in the background compile thread (one at a time, in submission order); the future is
  done when it is (awaiting it never raises: a failure is logged)."""

  def run() -> None:
    try:
      compile_fn()
    except Exception as e:  # pylint: disable=broad-except  (a head start, never a failure of the run)
      _LOG.warning("precompiling %s failed (it compiles when first called): %s: %s", what, type(e).__name__, e)

  return _POOL.submit(run)
