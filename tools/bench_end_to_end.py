"""The whole per-rotation λ sweep, timed: jaxbp's sweep vs the same work done the old way (`bench_sweep.py`).

New: `jaxbp.nas.sweep.run_sweep` (search on the engine, export, candidates fine-tuned together, test
predictions), compilation cached. Old: the same search, then one `fit` + `predict` per exported candidate
with every program compiled afresh (the cache cleared before each), as before the compile-once work.
Data: PPGBP-shaped random folds (rotation 0: 371 / 120 / 128 windows of 262 samples), batch 32, fixed epochs
(early stopping off). Compilation time is the sum of JAX's own trace/lower/compile durations.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxbp import cost, models
from jaxbp.cost.expected import op_macs
from jaxbp.data.benchmark_files import Fold
from jaxbp.data.protocol import Scalers, make_rotation
from jaxbp.data.specs import get_spec
from jaxbp.models import build
from jaxbp.nas import sweep as sweep_lib
from jaxbp.nas.supernet import export, supernet
from jaxbp.train import programs
from jaxbp.train.programs import compile_seconds
from jaxbp.train.engine import EngineConfig
from jaxbp.train.fit import FitConfig, fit, predict
from jaxbp.train.memory import peak_rss

FOLD_SIZES = (128, 120, 124, 124, 123)  # rotation 0: test 128, val 120, train 371 (PPGBP)
def matmul_gflops(n: int = 2048, reps: int = 5) -> float:
  """float32 GFLOP/s of an n x n matmul on the default device (the machine's practical dense limit)."""
  a = jnp.asarray(np.random.default_rng(0).standard_normal((n, n)), jnp.float32)
  f = jax.jit(lambda x: x @ x)
  jax.block_until_ready(f(a))
  t = time.perf_counter()
  for _ in range(reps):
    out = f(a)
  jax.block_until_ready(out)
  return 2 * n ** 3 * reps / (time.perf_counter() - t) / 1e9


def supernet_macs(shapes) -> int:
  """Forward MACs per example of a supernet that computes every branch."""
  return shapes.fixed_macs + sum(op_macs(op, l) for l in shapes.layers for op in l.ops)


def ppgbp_shaped_folds(seed: int = 0) -> list[Fold]:
  """Random folds with PPGBP's shapes (window 262) and a learnable SBP/DBP (a function of the PPG)."""
  rng = np.random.default_rng(seed)
  folds = []
  for f, n in enumerate(FOLD_SIZES):
    ppg = rng.standard_normal((n, 262)).astype(np.float32)
    level = ppg[:, :64].mean(1)
    sbp = (120 + 40 * level + rng.normal(0, 5, n)).astype(np.float32)
    dbp = (70 + 20 * level + rng.normal(0, 3, n)).astype(np.float32)
    subj = np.array([f"s{f}_{i // 3}" for i in range(n)])
    folds.append(Fold(ppg=ppg, sbp=sbp, dbp=dbp, abp=None, subject=subj, trial=np.array([str(i) for i in range(n)]),
                      meta={}, source=f"ppgbp-shaped fold {f}"))
  return folds


def _old_way(folds, spec, seed_cfg, config: sweep_lib.SweepConfig, workdir) -> dict[str, float]:
  """Search as the sweep does, then one fit + predict per candidate, compiling every program again."""
  scalers = Scalers.fit(folds)
  split = make_rotation(folds, spec, 0, scalers)
  model = supernet(seed_cfg, config.search.mode, config.search.ops)
  shapes = cost.trace(model, spec.window)
  t0, c0 = time.perf_counter(), compile_seconds()
  final, _ = sweep_lib.search_rotation(model, shapes, split, spec, config, 0, workdir, progress=False)
  search_s = time.perf_counter() - t0
  ft = dataclasses.replace(config.finetune, progress=False)
  for i in range(len(config.lambdas)):
    programs.clear()
    jax.clear_caches()
    exp_cfg, exp_vars, _ = export(seed_cfg, jax.tree.map(lambda x, i=i: x[i], final), shapes)
    net = build(exp_cfg)
    res = fit(net, exp_vars, split["train"], split["val"], ft, task="regression", seed=config.seed * 10)
    predict(net, res.variables, split["test"], ft.batch_size)
  return {"wall_s": time.perf_counter() - t0, "search_s": search_s, "compile_s": compile_seconds() - c0}


def end_to_end(args: argparse.Namespace) -> dict[str, Any]:
  """Times the new and (unless --skip-loop) the old per-rotation sweep; returns the JSON record."""
  spec = get_spec("ppgbp")
  seed_cfg = models.seed_config("resnet1d", "ppgbp")
  folds = ppgbp_shaped_folds()
  config = sweep_lib.SweepConfig(
      lambdas=tuple(float(x) for x in np.logspace(-11, -7, args.n)), search_epochs=args.epochs, batch_size=32,
      finetune=FitConfig(max_epochs=args.finetune_epochs, patience=10 ** 9, batch_size=32, progress=False),
      engine=EngineConfig(args.strategy, args.chunk_size), rotations=(0,), train_seed=False)
  gflops_peak = matmul_gflops()
  with tempfile.TemporaryDirectory() as tmp:
    t0, c0 = time.perf_counter(), compile_seconds()
    res = sweep_lib.run_sweep(folds, spec, seed_cfg, config, f"{tmp}/new", progress=False)
    new_s, new_compile = time.perf_counter() - t0, compile_seconds() - c0
    old = None if args.skip_loop else _old_way(folds, spec, seed_cfg, config, _mkdir(f"{tmp}/old"))
  shapes = cost.trace(supernet(seed_cfg), spec.window)
  n_train = sum(FOLD_SIZES[2:])
  search_flop = args.n * args.epochs * n_train * supernet_macs(shapes) * (3 + 2) * 2
  finetune_flop = sum(c["macs"] for c in res["candidates"]) * args.finetune_epochs * n_train * 3 * 2
  t = res["timings"]
  return {"backend": jax.default_backend(), "devices": len(jax.devices()), "mode": "end-to-end",
          "model": "resnet1d-ppgbp", "n": args.n, "search_epochs": args.epochs,
          "finetune_epochs": args.finetune_epochs, "batch": 32, "windows": [n_train, FOLD_SIZES[1], FOLD_SIZES[0]],
          "strategy": res["engines"]["search_rotation_0"]["strategy"],
          "finetune_strategy": res["engines"]["finetune_rotation_0"]["strategy"],
          "wall_s": round(new_s, 2), "compile_s": round(new_compile, 2),
          "compile_share": round(new_compile / new_s, 3), "search_s": round(t["search_rotation_0_s"], 2),
          "finetune_s": round(t["finetune_rotation_0_s"], 2),
          "old_wall_s": None if old is None else round(old["wall_s"], 2),
          "old_compile_s": None if old is None else round(old["compile_s"], 2),
          "speedup": None if old is None else round(old["wall_s"] / new_s, 2),
          "search_gflops": round(search_flop / t["search_rotation_0_s"] / 1e9, 2),
          "finetune_gflops": round(finetune_flop / t["finetune_rotation_0_s"] / 1e9, 2),
          "matmul_gflops": round(gflops_peak, 2), "peak_rss_bytes": peak_rss()}


def _mkdir(path: str):
  from pathlib import Path  # pylint: disable=import-outside-toplevel
  p = Path(path)
  p.mkdir(parents=True, exist_ok=True)
  return p
