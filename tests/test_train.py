"""Training protocol: a tiny epoch, early stopping bookkeeping, cross-validation resume, the seed CLI."""

import dataclasses
import json
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from jaxbp import models
from tests.conftest import TINY_RESNET
from jaxbp.data.protocol import Scalers, make_rotation
from jaxbp.data.specs import get_spec
from jaxbp.train import FitConfig, fit, predict
from jaxbp.train.crossval import run_crossval
from jaxbp.train.recalibrate import recalibrate_batch_stats

ROOT = Path(__file__).resolve().parents[1]
TINY = TINY_RESNET


@pytest.fixture
def tiny_setup(tiny_synthetic):
  """(split, model, variables) of rotation 0 of the tiny synthetic dataset."""
  _, folds = tiny_synthetic
  spec = get_spec("synthetic")
  model = models.build(TINY)
  return (make_rotation(folds, spec, 0, Scalers.fit(folds)), model,
          models.init_variables(model, jax.random.key(0), spec.window))


def test_fit_validates_and_restores_best(tiny_setup):
  split, model, v = tiny_setup
  cfg = FitConfig(max_epochs=5, val_every=2, patience=1, batch_size=16, progress=False)
  res = fit(model, v, split["train"], split["val"], cfg, task="regression", seed=0)
  vals = [h["val_mse"] for h in res.history if "val_mse" in h]
  assert [h["epoch"] for h in res.history if "val_mse" in h] == [2, 4][:len(vals)] or res.epochs_run == 5
  assert res.best_val_mse == pytest.approx(min(vals))
  assert "batch_stats" in res.variables
  pred = predict(model, res.variables, split["test"], 16)
  assert pred.shape == (len(split["test"]["x"]), 2) and np.all(np.isfinite(pred))
  # Same seed -> same result.
  res2 = fit(model, v, split["train"], split["val"], cfg, task="regression", seed=0)
  assert res2.best_val_mse == pytest.approx(res.best_val_mse, rel=1e-6)


def test_fit_with_batch_norm_recalibration_returns_recalibrated_stats(tiny_setup):
  split, model, v = tiny_setup
  cfg = FitConfig(max_epochs=2, val_every=2, patience=1, batch_size=16, progress=False, recalibrate_bn=True)
  res = fit(model, v, split["train"], split["val"], cfg, task="regression", seed=0)
  again = recalibrate_batch_stats(model, res.variables, split["train"], batch_size=16)
  for a, b in zip(jax.tree.leaves(res.variables["batch_stats"]), jax.tree.leaves(again["batch_stats"])):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)  # already the population statistics
  plain = fit(model, v, split["train"], split["val"], dataclasses.replace(cfg, recalibrate_bn=False),
              task="regression", seed=0)
  assert not np.allclose(jax.tree.leaves(plain.variables["batch_stats"])[0],
                         jax.tree.leaves(res.variables["batch_stats"])[0])


def test_sig2sig_fit_on_unet(tiny_synthetic):
  _, folds = tiny_synthetic
  spec = get_spec("synthetic")
  cfg = models.UNet1dConfig(base_filters=4, layers=(2, 2, 2))
  out = run_crossval(folds, spec, cfg, FitConfig(max_epochs=2, val_every=1, batch_size=16, progress=False),
                     rotations=[0])
  rot = out["per_rotation"][0]
  assert np.isfinite(rot["abp_mae_mmhg"]) and rot["n_test"] > 0
  assert out["params"] == models.count_params(
      jax.eval_shape(lambda: models.init_variables(models.build(cfg), jax.random.key(0), 262))["params"])


def test_crossval_resumes_finished_rotations(tiny_synthetic, tmp_path):
  _, folds = tiny_synthetic
  spec = get_spec("synthetic")
  cfg = FitConfig(max_epochs=2, val_every=1, batch_size=16, progress=False)
  a = run_crossval(folds, spec, TINY, cfg, rotations=[0, 1], workdir=tmp_path)
  info = json.loads((tmp_path / "rotation_1.json").read_text())
  info["marker"] = "kept"
  (tmp_path / "rotation_1.json").write_text(json.dumps(info))
  b = run_crossval(folds, spec, TINY, cfg, rotations=[0, 1], workdir=tmp_path)
  assert b["per_rotation"][1]["marker"] == "kept"  # not retrained
  assert a["pooled"] == b["pooled"]
  assert a["pooled"]["sbp"]["mae_naive"] > 0


def test_train_seed_cli(tiny_synthetic, tmp_path, monkeypatch):
  root, _ = tiny_synthetic
  sys.path.insert(0, str(ROOT / "experiments"))
  import train_seed  # pylint: disable=import-outside-toplevel
  res = train_seed.main(["--dataset", "synthetic", "--data-dir", str(root), "--rotations", "0",
                         "--max-epochs", "2", "--out", str(tmp_path / "run"), "--no-progress"])
  saved = json.loads((tmp_path / "run" / "results.json").read_text())
  assert saved["params"] == 49_346 == res["params"]
  assert set(saved["per_seed"]["0"]["pooled"]) >= {"sbp", "dbp"}
  assert (tmp_path / "run" / "config.json").exists()
