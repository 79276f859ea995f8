"""λ sweep end to end on tiny synthetic data: outputs, Pareto front, and resume after a kill."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import TINY_RESNET
from jaxbp.nas import sweep as sweep_lib
from jaxbp.train import FitConfig
from jaxbp.train.engine import EngineConfig

ROOT = Path(__file__).resolve().parents[1]
TINY = TINY_RESNET


def _config(**kw):
  base = dict(lambdas=(1e-9, 1e-5, 1e-3), search_epochs=3, batch_size=16,
              finetune=FitConfig(max_epochs=2, val_every=1, batch_size=16, progress=False),
              rotations=(0,), train_seed=False, engine=EngineConfig("vmap"))  # "auto" may differ between runs
  base.update(kw)
  return sweep_lib.SweepConfig(**base)


def test_pareto_front():
  pts = [(10, 5.0), (5, 6.0), (20, 4.0), (12, 7.0), (5, 5.5)]
  assert sweep_lib.pareto_front(pts) == [4, 0, 2]


def test_sweep_writes_results_and_resumes_identically(tiny_synthetic, tmp_path, monkeypatch):
  root, folds = tiny_synthetic
  spec = __import__("jaxbp.data.specs", fromlist=["get_spec"]).get_spec("synthetic")
  ref = sweep_lib.run_sweep(folds, spec, TINY, _config(), tmp_path / "ref", progress=False)
  assert len(ref["candidates"]) == 3
  for i in range(3):
    c = json.loads((tmp_path / "ref" / "candidates" / f"candidate_{i:02d}.json").read_text())
    assert set(c) >= {"lambda", "params", "macs", "mae_sbp", "mae_dbp", "per_rotation"}
    assert set(c["per_rotation"][0]["ops"]) == {n for n in ["stem_conv", "block0/conv1", "block0/conv2",
                                                            "block1/conv1", "block1/conv2"]}
  assert json.loads((tmp_path / "ref" / "pareto.json").read_text())["front"]["sbp"]
  engine = json.loads((tmp_path / "ref" / "rotation_0" / "engine.json").read_text())
  assert (engine["strategy"], engine["chosen_by"]) == ("vmap", "config")
  # The largest λ must not give a bigger network than the smallest.
  assert ref["candidates"][-1]["params"] <= ref["candidates"][0]["params"]

  # Kill the run right after the second epoch's checkpoint, then resume.
  calls = {"n": 0}
  real_write = sweep_lib._atomic_write

  def dying_write(path, data):
    real_write(path, data)
    if path.name == "search.ckpt":
      calls["n"] += 1
      if calls["n"] == 2:
        raise KeyboardInterrupt("simulated kill")

  monkeypatch.setattr(sweep_lib, "_atomic_write", dying_write)
  with pytest.raises(KeyboardInterrupt):
    sweep_lib.run_sweep(folds, spec, TINY, _config(), tmp_path / "resumed", progress=False)
  monkeypatch.setattr(sweep_lib, "_atomic_write", real_write)
  ckpt_epochs = json.loads((tmp_path / "resumed" / "rotation_0" / "search_history.json").read_text())
  assert len(ckpt_epochs) == 2
  resumed = sweep_lib.run_sweep(folds, spec, TINY, _config(), tmp_path / "resumed", progress=False)
  for a, b in zip(ref["candidates"], resumed["candidates"]):
    assert a["params"] == b["params"]
    np.testing.assert_allclose([a["mae_sbp"], a["mae_dbp"]], [b["mae_sbp"], b["mae_dbp"]], rtol=1e-5)


def test_resume_refuses_a_different_config(tiny_synthetic, tmp_path):
  root, folds = tiny_synthetic
  spec = __import__("jaxbp.data.specs", fromlist=["get_spec"]).get_spec("synthetic")
  (tmp_path / "x").mkdir()
  (tmp_path / "x" / "sweep_config.json").write_text(json.dumps({"sweep": {"lambdas": [1.0]}}))
  with pytest.raises(ValueError, match="different configuration"):
    sweep_lib.run_sweep(folds, spec, TINY, _config(), tmp_path / "x", progress=False)


def test_resume_refuses_a_search_checkpoint_of_another_structure(tiny_synthetic, tmp_path):
  """A checkpoint whose state does not match (e.g. an older version's optimizer state) is named, not misread."""
  import flax.serialization  # pylint: disable=import-outside-toplevel
  _, folds = tiny_synthetic
  spec = __import__("jaxbp.data.specs", fromlist=["get_spec"]).get_spec("synthetic")
  rdir = tmp_path / "x" / "rotation_0"
  rdir.mkdir(parents=True)
  (rdir / "search.ckpt").write_bytes(flax.serialization.msgpack_serialize(
      {"epoch": 1, "state": {"params": {"w": np.zeros(3, np.float32)}}}))
  with pytest.raises(ValueError, match="search.ckpt: this search checkpoint does not match"):
    sweep_lib.run_sweep(folds, spec, TINY, _config(), tmp_path / "x", progress=False)


@pytest.mark.slow
def test_cli_sweep_killed_with_sigkill_resumes(tmp_path):
  """The real thing: SIGKILL the CLI mid-search, rerun, compare with an uninterrupted run."""
  env = dict(os.environ, JAXBP_CACHE=str(tmp_path / "cache"))
  args = [sys.executable, "experiments/sweep.py", "--lambdas", "1e-9", "1e-7", "--epochs", "4",
          "--finetune-epochs", "2", "--no-seed-network", "--no-progress", "--strategy", "vmap"]
  subprocess.run(args + ["--out", str(tmp_path / "ref")], cwd=ROOT, env=env, check=True, capture_output=True)
  proc = subprocess.Popen(args + ["--out", str(tmp_path / "killed")], cwd=ROOT, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  hist = tmp_path / "killed" / "rotation_0" / "search_history.json"
  deadline = time.time() + 600
  while time.time() < deadline and not (hist.exists() and len(json.loads(hist.read_text() or "[]")) >= 2):
    time.sleep(0.2)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  subprocess.run(args + ["--out", str(tmp_path / "killed")], cwd=ROOT, env=env, check=True, capture_output=True)
  a = json.loads((tmp_path / "ref" / "results.json").read_text())["candidates"]
  b = json.loads((tmp_path / "killed" / "results.json").read_text())["candidates"]
  for x, y in zip(a, b):
    assert x["params"] == y["params"]
    np.testing.assert_allclose([x["mae_sbp"], x["mae_dbp"]], [y["mae_sbp"], y["mae_dbp"]], rtol=1e-5)
