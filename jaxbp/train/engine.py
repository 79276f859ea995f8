"""Training many candidates at once: one step function, N stacked candidate states.

A candidate step is `step(state, *shared, *per) -> (state, metrics)`: `shared` arguments (data batches)
are the same for every candidate; `per` arguments (λ, PRNG key, ...) have a leading candidate axis.

Strategies (the fastest depends on the backend; `tools/bench_sweep.py` measures them):
  vmap  one jitted `jax.vmap(step)` over a chunk of candidates (the whole set by default); the
        candidate axis is sharded over all devices (`jax.sharding`), `chunk_size` bounds memory.
  loop  one jitted single-candidate step, called per candidate (candidates spread over devices
        round-robin, so dispatch overlaps across devices).
"auto" is vmap on accelerators; on CPU the two are close (with the im2col conv formulation of
`jaxbp.models.layers`; see the README figures) and the faster one depends on the model, the candidate count and
the load of the machine, so `resolve_auto` times a few real steps of each on the run's own state and data and
picks the faster (callers record the measurement). An Engine built with "auto" directly (no measurement) uses vmap.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

STRATEGIES = ("auto", "vmap", "loop")


@dataclasses.dataclass(frozen=True)
class EngineConfig:
  """How to run N candidates.

  Attributes:
    strategy: "auto", "vmap" or "loop".
    chunk_size: vmap at most this many candidates per call (None: all at once).
    devices: number of devices to shard over (None: all of `jax.devices()`).
  """

  strategy: str = "auto"
  chunk_size: int | None = None
  devices: int | None = None

  def resolved_strategy(self) -> str:
    if self.strategy not in STRATEGIES:
      raise ValueError(f"unknown engine strategy {self.strategy!r}; expected one of {STRATEGIES}")
    return "vmap" if self.strategy == "auto" else self.strategy


def _index(tree: Any, i: int | slice) -> Any:
  return jax.tree.map(lambda x: x[i], tree)


def stack(trees: Sequence[Any]) -> Any:
  return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


class Engine:
  """Runs one candidate step function over N candidates with the chosen strategy.

  The engine's state is a list of *groups*: for vmap, chunks of stacked candidates (leading axis);
  for loop, single unstacked candidates. `stacked(groups)` / `groups(stacked)` convert.
  """

  def __init__(self, step: Callable[..., tuple[Any, Any]], n: int, config: EngineConfig = EngineConfig(),
               n_shared: int = 2):
    self.n = n
    self.n_shared = n_shared
    self.strategy = config.resolved_strategy()
    devices = jax.devices()[: config.devices or len(jax.devices())]
    self.devices = devices
    packed = lambda state, shared, per: step(state, *shared, *per)
    if self.strategy == "vmap":
      size = min(config.chunk_size or n, n)
      self.bounds = [(s, min(s + size, n)) for s in range(0, n, size)]
      self._fn = jax.jit(jax.vmap(packed, in_axes=(0, None, 0)), donate_argnums=0)
    else:
      self.bounds = [(i, i + 1) for i in range(n)]
      self._fn = jax.jit(packed, donate_argnums=0)
    self._mesh = Mesh(np.array(devices), ("candidates",))

  def _place(self, tree: Any, group: int) -> Any:
    start, stop = self.bounds[group]
    if self.strategy == "loop":
      return jax.device_put(tree, self.devices[group % len(self.devices)])
    spec = PartitionSpec("candidates") if (stop - start) % len(self.devices) == 0 else PartitionSpec()
    return jax.device_put(tree, NamedSharding(self._mesh, spec))

  def groups(self, stacked: Any) -> list[Any]:
    """Splits a stacked (N, ...) pytree into placed groups."""
    out = []
    for g, (start, stop) in enumerate(self.bounds):
      part = _index(stacked, start) if self.strategy == "loop" else _index(stacked, slice(start, stop))
      out.append(self._place(part, g))
    return out

  def stacked(self, groups: Sequence[Any]) -> Any:
    """Concatenates groups back into one host-side stacked (N, ...) pytree."""
    groups = jax.device_get(list(groups))
    if self.strategy == "loop":
      return jax.tree.map(lambda *xs: np.stack(xs), *groups)
    return jax.tree.map(lambda *xs: np.concatenate(xs), *groups)

  def step(self, groups: Sequence[Any], shared: Sequence[Any], per: Sequence[Any]) -> tuple[list[Any], Any]:
    """One step of every candidate. `per` arrays have a leading axis of size N. Returns (groups, metrics (N,...))."""
    if len(shared) != self.n_shared:
      raise ValueError(f"engine built for {self.n_shared} shared arguments, got {len(shared)}")
    new_groups, metrics = [], []
    for g, (start, stop) in enumerate(self.bounds):
      part = [p[start] if self.strategy == "loop" else p[start:stop] for p in per]
      part = self._place(part, g)
      state, m = self._fn(groups[g], tuple(shared), tuple(part))
      new_groups.append(state)
      metrics.append(m)
    if self.strategy == "loop":
      metrics = jax.device_put(metrics, self.devices[0])  # gather per-device metrics (async copy).
      return new_groups, jax.tree.map(lambda *xs: jnp.stack(xs), *metrics)
    return new_groups, jax.tree.map(lambda *xs: jnp.concatenate(xs), *metrics)


def time_strategies(step: Callable[..., tuple[Any, Any]], n: int, stacked: Any, shared: Sequence[Any],
                    per: Sequence[Any], config: EngineConfig = EngineConfig(), *, n_shared: int = 2,
                    steps: int = 2) -> dict[str, float]:
  """Seconds per step of every candidate, {"vmap": s, "loop": s}, each after one compiling step.

  Runs on copies of the host-side stacked state `stacked`: the caller's state is not changed.
  """
  out = {}
  for strategy in ("vmap", "loop"):
    eng = Engine(step, n, dataclasses.replace(config, strategy=strategy), n_shared)
    copy = jax.tree.map(np.array, stacked)  # steps donate their state: never alias the caller's arrays
    groups, m = eng.step(eng.groups(copy), shared, per)
    jax.block_until_ready((groups, m))
    t = time.perf_counter()
    for _ in range(steps):
      groups, m = eng.step(groups, shared, per)
    jax.block_until_ready((groups, m))
    out[strategy] = (time.perf_counter() - t) / steps
  return out


def resolve_auto(step: Callable[..., tuple[Any, Any]], n: int, stacked: Any, shared: Sequence[Any],
                 per: Sequence[Any], config: EngineConfig = EngineConfig(), *, n_shared: int = 2
                 ) -> tuple[EngineConfig, dict[str, Any]]:
  """(config with "auto" replaced by a concrete strategy, a JSON-able record of why).

  vmap on accelerators and for a single candidate; on CPU the faster of vmap and loop by `time_strategies`.
  """
  config.resolved_strategy()  # validates the name
  if config.strategy != "auto":
    return config, {"strategy": config.strategy, "chosen_by": "config"}
  backend = jax.default_backend()
  if backend != "cpu" or n == 1:
    return dataclasses.replace(config, strategy="vmap"), {"strategy": "vmap", "chosen_by": f"auto ({backend}, n={n})"}
  seconds = time_strategies(step, n, stacked, shared, per, config, n_shared=n_shared)
  best = min(seconds, key=seconds.get)
  return dataclasses.replace(config, strategy=best), {"strategy": best, "chosen_by": "auto (measured on cpu)",
                                                      "seconds_per_step": seconds, "candidates": n}
