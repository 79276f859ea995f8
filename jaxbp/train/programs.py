"""Compiled programs, cached by what determines them: a second `fit` of an architecture compiles nothing.

`jax.jit` caches compilations per *function object* and input shapes. Step functions built afresh at every
call (closures over a model and an optimizer) are new objects, so each call traced and compiled again. Here a
program is looked up by a hashable key — the Flax module (a frozen dataclass tree: equal configs give equal
keys), a description of the optimizer, the task — and built and jitted once per process. Batches have one
shape (the last one padded and masked, `jaxbp.data.batching.padded_batches`), so each program compiles once;
`jaxbp.compile_cache` adds JAX's persistent cache across processes.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Hashable
from typing import Any

import jax

_PROGRAMS: dict[Hashable, Callable[..., Any]] = {}
_LOCK = threading.Lock()


def cached_jit(key: Hashable, build: Callable[[], Callable[..., Any]], **jit_kwargs: Any) -> Callable[..., Any]:
  """`jax.jit(build(), **jit_kwargs)`, built once per `key` (and jit options) per process."""
  full = (key, tuple(sorted(jit_kwargs.items())))
  with _LOCK:
    fn = _PROGRAMS.get(full)
    if fn is None:
      fn = _PROGRAMS[full] = jax.jit(build(), **jit_kwargs)
  return fn


def clear() -> None:
  """Forgets every cached program (tests; frees their executables)."""
  with _LOCK:
    _PROGRAMS.clear()
    _FUNCTIONS.clear()


def size() -> int:
  """Number of cached programs."""
  return len(_PROGRAMS)


_FUNCTIONS: dict[Hashable, Callable[..., Any]] = {}


def cached_function(key: Hashable, build: Callable[[], Callable[..., Any]]) -> Callable[..., Any]:
  """`build()`, once per `key`: a stable function object for transforms that cache by identity (the engine)."""
  with _LOCK:
    fn = _FUNCTIONS.get(key)
    if fn is None:
      fn = _FUNCTIONS[key] = build()
  return fn


_COMPILE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration", "/jax/core/compile/jaxpr_to_mlir_module_duration",
                   "/jax/core/compile/backend_compile_duration")
_SECONDS: collections.Counter = collections.Counter()


def _listen(event: str, duration: float, **_: Any) -> None:
  if event in _COMPILE_EVENTS:
    _SECONDS["compile"] += duration


jax.monitoring.register_event_duration_secs_listener(_listen)


def compile_seconds() -> float:
  """Seconds this process has spent tracing, lowering and compiling programs (JAX's own event durations;
  loading a program from the persistent cache counts as its lowering only)."""
  return _SECONDS["compile"]
