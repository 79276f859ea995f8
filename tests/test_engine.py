"""The many-candidate engine: strategies agree, chunking, sharding over 2 host devices."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxbp.train.engine import Engine, EngineConfig, resolve_auto, stack


def _toy_step(state, x, y, lam, key):
  """A per-candidate Adam step on a linear model with a λ-weighted L2 penalty and a noisy input."""
  tx = optax.adam(1e-2)
  noise = jax.random.normal(jax.random.fold_in(key, state["step"]), x.shape) * 0.01

  def loss(w):
    return jnp.mean((x + noise) @ w - y) ** 2 + lam * jnp.sum(w ** 2)

  l, g = jax.value_and_grad(loss)(state["w"])
  upd, opt = tx.update(g, state["opt"], state["w"])
  return {"w": optax.apply_updates(state["w"], upd), "opt": opt, "step": state["step"] + 1}, {"loss": l}


def _init(n):
  tx = optax.adam(1e-2)
  states = [{"w": jnp.full((4,), float(i)), "opt": tx.init(jnp.zeros(4)), "step": jnp.int32(0)} for i in range(n)]
  return jax.device_get(stack(states))


def _run(config, n=6, steps=4):
  eng = Engine(_toy_step, n, config)
  groups = eng.groups(_init(n))
  x, y = jnp.ones((8, 4)), jnp.ones((8,))
  lams, keys = jnp.logspace(-3, 0, n), jax.random.split(jax.random.key(0), n)
  for _ in range(steps):
    groups, m = eng.step(groups, (x, y), (lams, keys))
  assert m["loss"].shape == (n,)
  return eng.stacked(groups)


@pytest.mark.parametrize("config", [EngineConfig("loop"), EngineConfig("loop", threads=1),
                                    EngineConfig("loop", threads=3), EngineConfig("vmap", chunk_size=4),
                                    EngineConfig("vmap", chunk_size=1), EngineConfig("auto")])
def test_strategies_agree(config):
  ref = _run(EngineConfig("vmap"))
  got = _run(config)
  np.testing.assert_allclose(got["w"], ref["w"], rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(got["step"], np.full(6, 4))


def test_measure_times_both_strategies_without_touching_the_state_and_auto_compiles_one():
  n = 6
  state = _init(n)
  before = jax.tree.map(np.copy, state)
  args = ((jnp.ones((8, 4)), jnp.ones((8,))), (jnp.logspace(-3, 0, n), jax.random.split(jax.random.key(0), n)))
  cfg, why = resolve_auto(_toy_step, n, state, *args, EngineConfig("measure", chunk_size=4))
  assert jax.default_backend() == "cpu"
  assert cfg.strategy == why["strategy"] in ("vmap", "loop") and cfg.chunk_size == 4
  assert set(why["seconds_per_step"]) == {"vmap", "loop"} and all(v > 0 for v in why["seconds_per_step"].values())
  assert why["strategy"] == min(why["seconds_per_step"], key=why["seconds_per_step"].get)
  jax.tree.map(np.testing.assert_array_equal, state, before)
  assert resolve_auto(_toy_step, n, state, *args, EngineConfig("loop"))[0].strategy == "loop"
  auto = "loop" if jax.default_backend() == "cpu" else "vmap"  # measured: loop is faster on CPU
  assert resolve_auto(_toy_step, n, state, *args, EngineConfig("auto"))[1] == {
      "strategy": auto, "chosen_by": f"auto ({jax.default_backend()}, n=6)"}
  assert resolve_auto(_toy_step, 1, _init(1), *args, EngineConfig("auto"))[1]["strategy"] == "vmap"
  with pytest.raises(ValueError, match="unknown engine strategy"):
    resolve_auto(_toy_step, n, state, *args, EngineConfig("pmap"))


def test_unknown_strategy():
  with pytest.raises(ValueError, match="unknown engine strategy"):
    Engine(_toy_step, 2, EngineConfig("pmap"))


def test_candidates_sharded_over_two_host_devices():
  code = textwrap.dedent("""
      import jax, numpy as np
      assert len(jax.devices()) == 2, jax.devices()
      import tests.test_engine as t
      from jaxbp.train.engine import Engine, EngineConfig
      assert len(Engine(t._toy_step, 6, EngineConfig("vmap")).devices) == 1  # CPU: one device unless asked
      eng = Engine(t._toy_step, 6, EngineConfig("vmap", devices=2))
      groups = eng.groups(t._init(6))
      assert len(groups[0]["w"].sharding.device_set) == 2, groups[0]["w"].sharding
      w2 = t._run(EngineConfig("vmap", devices=2))["w"]
      wl = t._run(EngineConfig("loop"))["w"]
      np.testing.assert_allclose(w2, wl, rtol=1e-5, atol=1e-6)
      print("OK")
  """)
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
  root = Path(__file__).resolve().parents[1]
  out = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0 and "OK" in out.stdout, out.stderr[-3000:]


def test_memory_plan_measures_the_equalized_first_chunk():
  """n=5 with chunk_size 4 runs chunks of 3 and 2: the plan divides the measured bytes by 3, not 4."""
  from jaxbp.train import memory  # pylint: disable=import-outside-toplevel
  from jaxbp.train.engine import plan_memory  # pylint: disable=import-outside-toplevel
  n, x, y = 5, jnp.ones((8, 4)), jnp.ones((8,))
  per = (np.linspace(0, 1, n).astype(np.float32), jax.random.split(jax.random.key(0), n))
  cfg = EngineConfig("vmap", chunk_size=4, memory_limit=2**40)
  eng = Engine(_toy_step, n, cfg)
  assert [b - a for a, b in eng.bounds] == [3, 2]
  total = int(memory.step_bytes(eng.lower(_init(n), (x, y), per)) * memory.RUNTIME_FACTOR)
  planned, budget = plan_memory(_toy_step, n, _init(n), (x, y), per, cfg)
  assert budget["bytes_per_candidate"] == -(-total // 3)
  assert planned.chunk_size == 3


@pytest.mark.parametrize("config", [EngineConfig("loop"), EngineConfig("vmap", chunk_size=4)])
def test_fetch_returns_the_selected_candidates_as_stacked_does(config):
  n = 6
  eng = Engine(_toy_step, n, config)
  groups = eng.groups(_init(n))
  x, y = jnp.ones((8, 4)), jnp.ones((8,))
  groups, _ = eng.step(groups, (x, y), (jnp.logspace(-3, 0, n), jax.random.split(jax.random.key(0), n)))
  whole = eng.stacked(groups)
  got = eng.fetch(groups, [5, 0, 4], lambda s: s["w"])
  for i, w in zip([5, 0, 4], got):
    assert isinstance(w, np.ndarray)
    np.testing.assert_array_equal(w, whole["w"][i])


def test_run_equals_single_steps_and_skips_padding_steps():
  """K steps in one call (`Engine.run`) = K calls of `step`; padding steps (valid False) change nothing."""
  from jaxbp.train.engine import stack_steps  # pylint: disable=import-outside-toplevel
  n = 4
  lams, keys = jnp.logspace(-3, 0, n), jax.random.split(jax.random.key(0), n)
  xs = [(np.full((8, 4), float(k), np.float32), np.ones((8,), np.float32)) for k in range(3)]
  for config in (EngineConfig("loop"), EngineConfig("vmap", chunk_size=2)):
    ref = Engine(_toy_step, n, config)
    g = ref.groups(_init(n))
    losses = []
    for args in xs:
      g, m = ref.step(g, args, (lams, keys))
      losses.append(np.asarray(m["loss"]))
    eng = Engine(_toy_step, n, config)
    h, m = eng.run(eng.groups(_init(n)), stack_steps(xs, 5), (lams, keys))
    assert m["loss"].shape == (n, 5)
    np.testing.assert_allclose(np.asarray(m["loss"])[:, :3], np.stack(losses, 1), rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(m["loss"])[:, 3:], 0.0)
    want, got = ref.stacked(g), eng.stacked(h)
    np.testing.assert_array_equal(got["step"], np.full(n, 3))
    np.testing.assert_allclose(got["w"], want["w"], rtol=1e-6)


def test_bad_thread_count_and_steps_per_call_are_refused():
  with pytest.raises(ValueError, match="EngineConfig.threads must be at least 1"):
    Engine(_toy_step, 2, EngineConfig("loop", threads=0))
  with pytest.raises(ValueError, match="steps_per_call must be at least 1"):
    EngineConfig(steps_per_call=0).steps_for(12)
