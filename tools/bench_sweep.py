"""Benchmark: N candidates × S bi-level search steps, engine vs a plain loop of N jitted trainings; or
(--end-to-end) the whole per-rotation sweep against the same work done the old way.

  python tools/bench_sweep.py                       # ResNet1d-PPGBP supernet, N=18, S=50, batch 32
  python tools/bench_sweep.py --model unet1d --dataset uci --n 8 --steps 20 --batch 64
  python tools/bench_sweep.py --end-to-end          # search 5 epochs + fine-tune 20, PPGBP shapes, 18 λ

A candidate-step is one weight step plus one architecture step. Both runs use the same batches and
the same initial states; compilation is timed separately from the steady state. Both modes report the
arithmetic achieved (GFLOP/s from exact MAC counts: a training step is 3x its forward MACs, the architecture
step 2x; 1 MAC = 2 FLOP) next to a large float32 matmul timed in the same run. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # jaxbp and tools/ from a clone
from jaxbp.hostdevices import expose_cpu_cores  # noqa: E402  (before jax is imported)

expose_cpu_cores()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from jaxbp import cost, models  # noqa: E402
from jaxbp.data.specs import get_spec  # noqa: E402
from jaxbp.models.configs import TASKS  # noqa: E402
from jaxbp.nas import search  # noqa: E402
from jaxbp.nas.supernet import supernet  # noqa: E402
from jaxbp.train.memory import peak_rss  # noqa: E402
from jaxbp.train.engine import STRATEGIES, Engine, EngineConfig  # noqa: E402
from tools.bench_end_to_end import end_to_end, matmul_gflops, supernet_macs  # noqa: E402


def main(argv=None) -> dict:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--model", default="resnet1d", choices=sorted(models.MODELS))
  p.add_argument("--dataset", default="ppgbp", help="which seed config / window length")
  p.add_argument("--n", type=int, default=18)
  p.add_argument("--steps", type=int, default=50)
  p.add_argument("--batch", type=int, default=32)
  p.add_argument("--strategy", default="auto", choices=STRATEGIES)
  p.add_argument("--chunk-size", type=int, default=None)
  p.add_argument("--skip-loop", action="store_true", help="only time the engine (or, end to end, the old way)")
  p.add_argument("--end-to-end", action="store_true", help="time the whole per-rotation sweep (see above)")
  p.add_argument("--epochs", type=int, default=5, help="end to end: search epochs")
  p.add_argument("--finetune-epochs", type=int, default=20, help="end to end: fine-tune epochs (no early stop)")
  args = p.parse_args(argv)
  if args.end_to_end:
    result = end_to_end(args)
    print(json.dumps(result))
    return result

  spec = get_spec(args.dataset)
  cfg = models.seed_config(args.model, spec.name)
  model = supernet(cfg)
  shapes = cost.trace(model, spec.window)
  sc = search.SearchConfig()
  task = TASKS[args.model]
  step = search.make_search_step(model, shapes, cost.params(), sc, task)
  n, s, b, w = args.n, args.steps, args.batch, spec.window
  rng = np.random.default_rng(0)
  target = (lambda: rng.random((b, 2), np.float32)) if task == "regression" else (
      lambda: rng.random((b, w, 1), np.float32))
  key = "y" if task == "regression" else "abp"
  data = [({"x": rng.standard_normal((b, w, 1), np.float32), key: target()},
           {"x": rng.standard_normal((b, w, 1), np.float32), key: target()}) for _ in range(min(s, 8))]
  lams = np.logspace(-11, -7, n).astype(np.float32)
  keys = jax.random.split(jax.random.key(0), n)
  init = jax.device_get(jax.jit(jax.vmap(lambda k: search.init_state(model, k, w, sc)))(keys))

  def time_engine():
    eng = Engine(step, n, EngineConfig(args.strategy, args.chunk_size))
    groups = eng.groups(init)
    t0 = time.perf_counter()
    groups, _ = eng.step(groups, data[0], (lams, keys))
    jax.block_until_ready(groups)
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(s):
      groups, _ = eng.step(groups, data[i % len(data)], (lams, keys))
    jax.block_until_ready(groups)
    return compile_s, time.perf_counter() - t0, eng.strategy

  def time_loop():
    one = jax.jit(step)
    states = [jax.tree.map(lambda x, i=i: jnp.asarray(x[i]), init) for i in range(n)]
    t0 = time.perf_counter()
    jax.block_until_ready(one(states[0], *data[0], lams[0], keys[0]))
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for c in range(n):  # N separate trainings, one after the other.
      st = states[c]
      for i in range(s):
        st, _ = one(st, *data[i % len(data)], lams[c], keys[c])
      jax.block_until_ready(st)
    return compile_s, time.perf_counter() - t0

  e_compile, e_s, strategy = time_engine()
  l_compile, l_s = (float("nan"), float("nan")) if args.skip_loop else time_loop()
  result = {"backend": jax.default_backend(), "devices": len(jax.devices()), "model": f"{args.model}-{spec.name}",
            "strategy": strategy, "n": n, "steps": s, "batch": b, "engine_s": round(e_s, 3),
            "loop_s": round(l_s, 3), "speedup": round(l_s / e_s, 3),
            "candidate_steps_per_s": round(n * s / e_s, 2),
            "loop_candidate_steps_per_s": round(n * s / l_s, 2),
            "engine_compile_s": round(e_compile, 2), "loop_compile_s": round(l_compile, 2)}
  macs = supernet_macs(shapes)
  result["gflops"] = round(n * s * b * macs * (3 + 2) * 2 / e_s / 1e9, 2)
  result["matmul_gflops"] = round(matmul_gflops(), 2)
  result["peak_rss_bytes"] = peak_rss()
  print(json.dumps(result))
  return result


if __name__ == "__main__":
  main()
