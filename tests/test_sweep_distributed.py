"""A sweep spread over 2 processes (jax.distributed, gloo on CPU) gives the single-process results."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["experiments/sweep.py", "--lambdas", "1e-9", "1e-6", "1e-3", "--epochs", "2", "--finetune-epochs", "2",
        "--no-seed-network", "--no-progress", "--strategy", "loop", "--no-compile-cache"]


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_equal_one(tmp_path):
  env = dict(os.environ, JAXBP_CACHE=str(tmp_path / "cache"))
  # The synthetic dataset is written once, before the processes that read it start.
  subprocess.run([sys.executable, "-c", "from jaxbp.data.source import load_folds; load_folds(None, None)"],
                 cwd=ROOT, env=env, check=True)
  one = subprocess.run([sys.executable, *ARGS, "--out", str(tmp_path / "one")], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=900)
  assert one.returncode == 0, one.stderr[-2000:]
  port = _free_port()
  procs = [subprocess.Popen([sys.executable, *ARGS, "--out", str(tmp_path / "two"), "--coordinator",
                             f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
           for i in range(2)]
  outs = [p.communicate(timeout=900) for p in procs]
  for p, (_, err) in zip(procs, outs):
    assert p.returncode == 0, err[-2000:]
  a = json.loads((tmp_path / "one" / "results.json").read_text())["candidates"]
  b = json.loads((tmp_path / "two" / "results.json").read_text())["candidates"]
  assert len(a) == len(b) == 3
  for x, y in zip(a, b):
    assert x["params"] == y["params"]
    np.testing.assert_allclose([x["mae_sbp"], x["mae_dbp"]], [y["mae_sbp"], y["mae_dbp"]], rtol=1e-5)
  # Each process searched its own share (candidates 0, 2 and 1).
  assert (tmp_path / "two" / "rotation_0" / "search_p0.ckpt").exists()
  assert (tmp_path / "two" / "rotation_0" / "search_p1.ckpt").exists()
