"""Training many candidates at once: one step function, N stacked candidate states.

A candidate step is `step(state, *shared, *per) -> (state, metrics)`: `shared` arguments (data batches)
are the same for every candidate; `per` arguments (λ, PRNG key, ...) have a leading candidate axis.

Strategies (the fastest depends on the backend; `tools/bench_sweep.py` measures them):
  vmap  one jitted `jax.vmap(step)` over a chunk of candidates (the whole set by default); the
        candidate axis is sharded over all devices (`jax.sharding`), `chunk_size` bounds memory.
  loop  one jitted single-candidate step, called per candidate (candidates spread over devices
        round-robin, so dispatch overlaps across devices; on CPU one device: they share the cores).
"auto" is vmap on accelerators and loop on CPU (`auto_strategy`, measured there); "measure"
makes `resolve_auto` time a few real steps of each on the run's own state and data and pick the faster (callers
record the measurement) — at the price of compiling both programs.

`Engine.run` makes K steps in one call (a `lax.scan` over shared arguments stacked along a leading (K,) axis):
a call's fixed cost — passing hundreds of state buffers in and out, dispatch — is paid once per K steps. On CPU
it was ~4 ms per call for the PPGBP ResNet1d (frozen-choice supernet, batch 32): 9.4 ms per step one call
each, 5.4 ms per step in a scan of 12. `stack_steps` builds the stacked arguments (padding steps are skipped).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import time
from typing import Any, Callable, Iterable, Iterator, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxbp.train import memory

STRATEGIES = ("auto", "measure", "vmap", "loop")


@dataclasses.dataclass(frozen=True)
class EngineConfig:
  """How to run N candidates.

  Attributes:
    strategy: "auto", "measure", "vmap" or "loop".
    chunk_size: vmap at most this many candidates per call (None: all at once).
    devices: number of devices to shard over (None: all of this process's `jax.local_devices()` on accelerators,
      one on CPU, whose host "devices" share the same cores).
    memory_limit: bytes the candidates' step may use at once (None: no limit). With a limit, vmap chunks hold
      at most as many candidates as fit (`jaxbp.train.memory`), and a step that does not fit even for one
      candidate is refused before training (`MemoryBudgetError`).
    steps_per_call: most steps one call runs (`Engine.run`, for callers that stack their batches: an epoch
      of at most this many batches is one call; longer ones are split into calls of this many).
    threads: host threads that run a loop's candidates concurrently, each one call at a time (None: one per
      CPU core on CPU, else 1). Small programs leave cores idle: 18 frozen-choice PPGBP candidates, 12 steps
      per call, 2 cores: 3.6–3.9 ms per candidate-step from 2 threads, 5.5–6.5 ms from one.
  """

  strategy: str = "auto"
  chunk_size: int | None = None
  devices: int | None = None
  memory_limit: int | None = None
  steps_per_call: int = 16
  threads: int | None = None

  def steps_for(self, n_batches: int) -> int:
    """K, the steps per call for epochs of `n_batches` batches (one compiled program per K)."""
    if self.steps_per_call < 1:
      raise ValueError(f"steps_per_call must be at least 1, got {self.steps_per_call}")
    return max(1, min(n_batches, self.steps_per_call))

  def resolved_strategy(self) -> str:
    if self.strategy not in STRATEGIES:
      raise ValueError(f"unknown engine strategy {self.strategy!r}; expected one of {STRATEGIES}")
    return "vmap" if self.strategy in ("auto", "measure") else self.strategy


def _index(tree: Any, i: int | slice) -> Any:
  return jax.tree.map(lambda x: x[i], tree)


def stack(trees: Sequence[Any]) -> Any:
  """Stacks same-structured pytrees along a new leading axis, on the host (NumPy: eager `jnp.stack` would
  compile one small program per leaf shape)."""
  return jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *trees)


class Engine:
  """Runs one candidate step function over N candidates with the chosen strategy.

  The engine's state is a list of *groups*: for vmap, chunks of stacked candidates (leading axis);
  for loop, single unstacked candidates. `stacked(groups)` / `groups(stacked)` convert.
  """

  def __init__(self, step: Callable[..., tuple[Any, Any]], n: int, config: EngineConfig = EngineConfig(),
               n_shared: int = 2, *, donate: bool = True):
    self.n = n
    self.n_shared = n_shared
    self.strategy = config.resolved_strategy()
    local = jax.local_devices()  # this process's share of a multi-process run
    devices = local[: config.devices or len(local)]
    if config.devices is None and devices[0].platform == "cpu":
      # CPU "devices" share the same cores. A loop spread over them ran no faster (0.451 vs 0.431 s per step of
      # 18 frozen-choice PPGBP candidates) but compiled every program once per device; a vmap sharded over them
      # intermittently aborted a PPGBP sweep's fine-tuning (XLA's CPU all-gather rendezvous timed out, 2 of 3
      # runs of `--strategy vmap --chunk-size 2`). Several CPU devices only when asked (`devices`).
      devices = devices[:1]
    self.devices = devices
    if self.strategy == "vmap":
      chunks = -(-n // min(config.chunk_size or n, n))
      size = -(-n // chunks)  # equal chunks where possible: one compiled program serves them all
      self.bounds = [(s, min(s + size, n)) for s in range(0, n, size)]
    else:
      self.bounds = [(i, i + 1) for i in range(n)]
    self._fn = compiled(step, self.strategy, donate)
    self._scan = compiled(step, self.strategy, donate, scan=True)
    if config.threads is not None and config.threads < 1:
      raise ValueError(f"EngineConfig.threads must be at least 1 (or None: one per CPU core), got {config.threads}")
    default = (os.cpu_count() or 1) if self.strategy == "loop" and devices[0].platform == "cpu" else 1
    self.threads = max(1, min(config.threads or default, n))
    self._compiled: set[Any] = set()  # (program, argument shapes) called once already: safe to run in threads
    self._mesh = Mesh(np.array(devices), ("candidates",))

  def _place(self, tree: Any, group: int) -> Any:
    start, stop = self.bounds[group]
    if len(self.devices) == 1:  # the call itself places its arguments on the one device (an eager device_put
      return tree               # per candidate cost ~2 ms for per-candidate arguments, ~20 ms for a state)
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

  def lower(self, stacked: Any, shared: Sequence[Any], per: Sequence[Any], steps: int | None = None) -> Any:
    """The lowered program of the first group, with the arguments placed as `step` places them (so compiling it
    is the compilation the first `step` call then reuses, not another one). With `steps` K: the program of
    `run` for K steps (`shared` are one step's arguments)."""
    start, stop = self.bounds[0]
    loop = self.strategy == "loop"
    state = self._place(_index(stacked, start if loop else slice(start, stop)), 0)
    part = [p[start] if loop else p[start:stop] for p in per] + ([] if loop else [np.ones(stop - start, bool)])
    fn = self._fn
    if steps is not None:
      fn = self._scan
      shared = stack_steps([tuple(shared)], steps)
    return fn.lower(state, tuple(shared), tuple(self._place(part, 0)))

  def stacked(self, groups: Sequence[Any]) -> Any:
    """Concatenates groups back into one host-side stacked (N, ...) pytree."""
    groups = jax.device_get(list(groups))
    if self.strategy == "loop":
      return jax.tree.map(lambda *xs: np.stack(xs), *groups)
    return jax.tree.map(lambda *xs: np.concatenate(xs), *groups)

  def fetch(self, groups: Sequence[Any], indices: Sequence[int], select: Callable[[Any], Any] = lambda s: s
            ) -> list[Any]:
    """Host copies of `select(state)` (e.g. only its variables) of candidates `indices`; only their groups'
    selected arrays are transferred."""
    owner = {i: next(g for g, (a, b) in enumerate(self.bounds) if a <= i < b) for i in indices}
    need = sorted(set(owner.values()))
    got = dict(zip(need, jax.device_get([select(groups[g]) for g in need])))
    if self.strategy == "loop":
      return [got[owner[i]] for i in indices]
    return [jax.tree.map(lambda x, i=i: x[i - self.bounds[owner[i]][0]], got[owner[i]]) for i in indices]

  def step(self, groups: Sequence[Any], shared: Sequence[Any], per: Sequence[Any],
           active: np.ndarray | None = None) -> tuple[list[Any], Any]:
    """One step of every candidate. `per` arrays have a leading axis of size N. Returns (groups, metrics (N,...)).

    With `active` (N,) bool, inactive candidates keep their state: a loop skips them; a vmapped chunk with no
    active candidate is skipped, otherwise its inactive members' new state is discarded inside the same
    program (no retrace). Metrics of skipped candidates are NaN.
    """
    if len(shared) != self.n_shared:
      raise ValueError(f"engine built for {self.n_shared} shared arguments, got {len(shared)}")
    return self._call(self._fn, groups, tuple(shared), per, active)

  def run(self, groups: Sequence[Any], steps: Sequence[Any], per: Sequence[Any],
          active: np.ndarray | None = None) -> tuple[list[Any], Any]:
    """K steps of every candidate in one call per group: `steps` is `stack_steps(...)`, i.e. (valid (K,) bool,
    *shared arguments stacked along a leading (K,) axis); a step whose `valid` is False leaves every state
    unchanged (padding). Returns (groups, metrics (N, K, ...); those of padding steps are zeros). `active` as
    in `step`."""
    if len(steps) != self.n_shared + 1:
      raise ValueError(f"engine built for {self.n_shared} shared arguments, got {len(steps) - 1} (+ valid)")
    return self._call(self._scan, groups, tuple(steps), per, active)

  def _call(self, fn, groups, shared, per, active) -> tuple[list[Any], Any]:
    active = np.ones(self.n, bool) if active is None else np.asarray(active, bool)
    loop = self.strategy == "loop"
    new_groups, metrics = list(groups), [None] * len(self.bounds)
    calls, skipped = [], []
    for g, (start, stop) in enumerate(self.bounds):
      if active[start:stop].any():
        part = [p[start] if loop else p[start:stop] for p in per] + ([] if loop else [active[start:stop]])
        calls.append((g, self._place(part, g)))
      else:
        skipped.append(g)

    def call(c):
      g, part = c
      new_groups[g], metrics[g] = fn(groups[g], shared, tuple(part))
      return g

    sig = (fn, tuple(_shapes(shared)))
    if self.threads > 1 and len(calls) > 1:
      if sig not in self._compiled:  # the first call compiles (once, not once per thread)
        jax.block_until_ready(metrics[call(calls[0])])
        calls = calls[1:]
      # Each thread runs one call to completion at a time: at most `threads` programs (and their memory) at once.
      list(_pool(self.threads).map(lambda c: jax.block_until_ready(metrics[call(c)]), calls))
    else:
      for c in calls:
        call(c)
    self._compiled.add(sig)
    done = next((m for m in metrics if m is not None), None)
    if done is None:
      return new_groups, None
    for g in skipped:
      size = self.bounds[g][1] - self.bounds[g][0]
      metrics[g] = jax.tree.map(lambda m: jnp.full(m.shape if loop else (size,) + m.shape[1:],
                                                   jnp.nan, jnp.result_type(m, jnp.float32)), done)
    if loop:
      metrics = jax.device_put(metrics, self.devices[0])  # gather per-device metrics (async copy).
      return new_groups, jax.tree.map(lambda *xs: jnp.stack(xs), *metrics)
    return new_groups, jax.tree.map(lambda *xs: jnp.concatenate(xs), *metrics)


_POOLS: dict[int, concurrent.futures.ThreadPoolExecutor] = {}


def _pool(threads: int) -> concurrent.futures.ThreadPoolExecutor:
  """A process-wide pool of `threads` workers (JAX releases the GIL while a program runs)."""
  if threads not in _POOLS:
    _POOLS[threads] = concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="jaxbp-engine")
  return _POOLS[threads]


def stack_steps(steps: Sequence[tuple[Any, ...]], k: int) -> tuple[Any, ...]:
  """`Engine.run`'s arguments for up to `k` steps: (valid (k,) bool, *each shared argument stacked (k, ...)).

  `steps` holds one tuple of shared arguments per step (arrays, PRNG keys or pytrees of them, e.g. batch
  dicts; every step's of the same shapes); missing steps are padding (copies of the last, valid False).
  """
  if not 0 < len(steps) <= k:
    raise ValueError(f"stack_steps: {len(steps)} steps for calls of {k}")
  valid = np.arange(k) < len(steps)
  steps = list(steps) + [steps[-1]] * (k - len(steps))
  return (valid, *jax.tree.map(_stack_leaves, *steps))


def valid_steps(metrics: Sequence[Any], valids: Sequence[np.ndarray]) -> Any:
  """The metrics of successive `Engine.run` calls ((N, K, ...) each, with the `valid` (K,) of its arguments) as
  one host pytree of (N, steps, ...), padding steps dropped."""
  return jax.tree.map(lambda *xs: np.concatenate([np.asarray(x)[:, v] for x, v in zip(xs, valids)], axis=1),
                      *jax.device_get(list(metrics)))


def step_chunks(steps: Iterable[tuple[Any, ...]], k: int) -> Iterator[tuple[Any, ...]]:
  """`stack_steps` of consecutive runs of at most `k` steps; a run also ends where the arguments' shapes
  change (e.g. an unpadded last batch), so every call has k steps of one shape."""
  run: list[tuple[Any, ...]] = []
  for args in steps:
    if run and (len(run) == k or _shapes(args) != _shapes(run[0])):
      yield stack_steps(run, k)
      run = []
    run.append(args)
  if run:
    yield stack_steps(run, k)


def _shapes(tree: Any) -> list[tuple[int, ...]]:
  return [np.shape(x) for x in jax.tree.leaves(tree)]


def _stack_leaves(*xs: Any) -> Any:
  if isinstance(xs[0], jax.Array) and jax.dtypes.issubdtype(xs[0].dtype, jax.dtypes.prng_key):
    return jax.random.wrap_key_data(np.stack([np.asarray(jax.random.key_data(x)) for x in xs]),
                                    impl=jax.random.key_impl(xs[0]))
  return np.stack([np.asarray(x) for x in xs])


_COMPILED: dict[tuple[Any, str, bool, bool], Callable[..., Any]] = {}


def compiled(step: Callable[..., tuple[Any, Any]], strategy: str, donate: bool = True, scan: bool = False
             ) -> Callable[..., Any]:
  """The jitted program of `step` under `strategy`, built once per step function (engines over the same step
  share it: no recompile per engine, rotation or strategy probe). vmap programs take a trailing (chunk,) bool
  `active` per-candidate argument and keep inactive candidates' state. With `scan`, the program of K steps
  (`Engine.run`): shared arguments (valid (K,), *stacked (K, ...)); metrics (K, ...) (loop) or (chunk, K, ...)
  (vmap)."""
  key = (step, strategy, donate, scan)
  fn = _COMPILED.get(key)
  if fn is not None:
    return fn
  if strategy == "vmap":
    def packed(state, shared, per):
      *per, active = per
      new, metrics = jax.vmap(lambda st, p, a: _masked(step(st, *shared, *p), st, a), in_axes=(0, 0, 0))(
          state, tuple(per), active)
      return new, metrics
  else:
    packed = lambda state, shared, per: step(state, *shared, *per)
  program = _scanned(packed, strategy) if scan else packed
  fn = _COMPILED[key] = jax.jit(program, donate_argnums=0 if donate else ())
  return fn


def _scanned(packed: Callable[..., tuple[Any, Any]], strategy: str) -> Callable[..., tuple[Any, Any]]:
  """K steps of `packed` as one `lax.scan`; a padding step (valid False) is skipped by `lax.cond` (its
  predicate is shared by every candidate, so it stays a branch under vmap, not a select)."""

  inner = jax.jit(packed)  # traced once: the metrics' shapes below and the branch reuse the trace

  def program(state, shared, per):
    valid, *seq = shared

    def body(st, xs):
      ok, args = xs
      out = jax.eval_shape(inner, st, tuple(args), per)[1]
      skip = lambda s: (s, jax.tree.map(lambda m: jnp.zeros(m.shape, m.dtype), out))
      return jax.lax.cond(ok, lambda s: inner(s, tuple(args), per), skip, st)

    state, metrics = jax.lax.scan(body, state, (valid, tuple(seq)))
    if strategy == "vmap":  # (K, chunk, ...) -> (chunk, K, ...), as the engine concatenates chunks on axis 0
      metrics = jax.tree.map(lambda m: jnp.swapaxes(m, 0, 1), metrics)
    return state, metrics

  return program


def _masked(out: tuple[Any, Any], old: Any, active: jax.Array) -> tuple[Any, Any]:
  new, metrics = out
  return jax.tree.map(lambda n, o: jnp.where(active, n, o), new, old), metrics


def plan_memory(step: Callable[..., tuple[Any, Any]], n: int, stacked: Any, shared: Sequence[Any],
                per: Sequence[Any], config: EngineConfig, *, what: str = "step", scan_steps: int | None = None
                ) -> tuple[EngineConfig, dict[str, Any] | None]:
  """`config` with its vmap chunk bounded by `config.memory_limit` (see `jaxbp.train.memory`), and the plan
  (made on `Engine.run`'s program of `scan_steps` steps when given, else on `Engine.step`'s).

  Raises `MemoryBudgetError` before any training when a single candidate does not fit.
  """
  if config.memory_limit is None:
    return config, None
  # Measured on the program that will run (loop: the single-candidate step; vmap: the first chunk), so the
  # measurement costs no compilation of its own unless the chunk has to shrink.
  engine = Engine(step, n, dataclasses.replace(config, strategy=config.resolved_strategy()))
  start, stop = engine.bounds[0]
  budget = memory.plan(engine.lower(stacked, shared, per, scan_steps), stop - start, n, config.memory_limit, what=what,
                       batch={k: tuple(v.shape) for b in shared if isinstance(b, dict) for k, v in b.items()})
  if engine.strategy == "loop":  # candidates at once = threads: as many as fit
    fits = max(1, config.memory_limit // max(budget.bytes_per_candidate, 1))
    return dataclasses.replace(config, threads=min(engine.threads, fits)), dataclasses.asdict(budget)
  chunk = budget.chunk_size if config.chunk_size is None else min(config.chunk_size, budget.chunk_size)
  return dataclasses.replace(config, chunk_size=chunk), dataclasses.asdict(budget)


def time_strategies(step: Callable[..., tuple[Any, Any]], n: int, stacked: Any, shared: Sequence[Any],
                    per: Sequence[Any], config: EngineConfig = EngineConfig(), *, n_shared: int = 2,
                    steps: int = 2, scan_steps: int | None = None) -> dict[str, float]:
  """Seconds per step of every candidate, {"vmap": s, "loop": s}, each after one compiling step (with
  `scan_steps` K: of `Engine.run` over K copies of `shared`, per step).

  Runs on copies of the host-side stacked state `stacked`: the caller's state is not changed. The programs
  are the engine's cached ones (`compiled`), so the strategy chosen afterwards compiles nothing new; vmap runs
  in chunks of `config.chunk_size` (set it from the memory budget first: timing must fit too).
  """
  out = {}
  for strategy in ("vmap", "loop"):
    eng = Engine(step, n, dataclasses.replace(config, strategy=strategy), n_shared)
    copy = jax.tree.map(np.array, stacked)  # steps donate their state: never alias the caller's arrays
    if scan_steps is None:
      call, k = (lambda g: eng.step(g, shared, per)), 1
    else:
      seq = stack_steps([tuple(shared)] * scan_steps, scan_steps)  # K real steps
      call, k = (lambda g: eng.run(g, seq, per)), scan_steps
    groups, m = call(eng.groups(copy))
    jax.block_until_ready((groups, m))
    t = time.perf_counter()
    for _ in range(steps):
      groups, m = call(groups)
    jax.block_until_ready((groups, m))
    out[strategy] = (time.perf_counter() - t) / steps / k
  return out


def auto_strategy(n: int) -> str:
  """What "auto" runs for n candidates: vmap on accelerators (and for one candidate), loop on CPU.

  On CPU (2 cores, PPGBP ResNet1d supernet search, 18 candidates, batch 32) a loop ran 38.5 candidate-steps/s
  and compiled in 15 s, vmap 31.5/s and 24 s: the vmapped activations (18x) fall out of the caches and the
  steps are memory-bound (`tools/bench_sweep.py --strategy loop|vmap`)."""
  return "loop" if jax.default_backend() == "cpu" and n > 1 else "vmap"


def resolve_auto(step: Callable[..., tuple[Any, Any]], n: int, stacked: Any, shared: Sequence[Any],
                 per: Sequence[Any], config: EngineConfig = EngineConfig(), *, n_shared: int = 2,
                 scan_steps: int | None = None) -> tuple[EngineConfig, dict[str, Any]]:
  """(config with "auto" replaced by a concrete strategy and the vmap chunk fitted to the memory limit, a
  JSON-able record of why).

  "auto": `auto_strategy` (no timing); "measure": the faster of vmap and loop by `time_strategies`.
  The memory plan is made for the strategy that runs (planning a vmap program that then does not run would
  compile it for nothing). `scan_steps` K: the caller runs `Engine.run` with K steps (plans and timings use that
  program, `shared` being one step's arguments).
  """
  config.resolved_strategy()  # validates the name
  backend = jax.default_backend()
  chosen_by = "config"
  if config.strategy == "auto" or (config.strategy == "measure" and n == 1):
    config, chosen_by = dataclasses.replace(config, strategy=auto_strategy(n)), f"auto ({backend}, n={n})"
  config, budget = plan_memory(step, n, stacked, shared, per, config, scan_steps=scan_steps)
  extra = {"memory": budget} if budget else {}
  if config.strategy != "measure":
    return config, {"strategy": config.strategy, "chosen_by": chosen_by, **extra}
  seconds = time_strategies(step, n, stacked, shared, per, config, n_shared=n_shared, scan_steps=scan_steps)
  best = min(seconds, key=seconds.get)
  return dataclasses.replace(config, strategy=best), {"strategy": best, "chosen_by": f"measured on {backend}",
                                                      "seconds_per_step": seconds, "candidates": n, **extra}
