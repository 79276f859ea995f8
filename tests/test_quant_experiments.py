"""End-to-end runs of experiments/qat.py and experiments/bayesian_bits.py on the synthetic default (slow)."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(name):
  spec = importlib.util.spec_from_file_location(name, ROOT / "experiments" / f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.mark.slow
def test_qat_then_bayesian_bits_on_synthetic(tmp_path, monkeypatch):
  monkeypatch.setenv("JAXBP_CACHE", str(tmp_path / "cache"))
  qat = _load("qat").main(["--out", str(tmp_path / "qat"), "--float-epochs", "2", "--qat-epochs", "2",
                           "--no-progress"])
  assert set(qat["mae"]) == {"float", "ptq", "qat"}
  assert qat["size"]["int8"]["weights"] < qat["size"]["float32_bytes"] / 3.9
  assert set(qat["bit_config"].values()) == {(8, 8)}
  for f in ("config.json", "results.json", "rotation_0/int8.msgpack", "rotation_0/readoff.json"):
    assert (tmp_path / "qat" / f).exists()
  # Rerun resumes from the saved rotation (no training): identical results.
  again = _load("qat").main(["--out", str(tmp_path / "qat"), "--no-progress"])
  assert again["mae"] == json.loads(json.dumps(qat["mae"]))
  bb = _load("bayesian_bits").main(["--out", str(tmp_path / "bb"), "--init-from", str(tmp_path / "qat"),
                                    "--epochs", "2", "--lambdas", "0", "1.0", "--no-progress"])
  assert len(bb["candidates"]) == 2 and (tmp_path / "bb" / "bops_vs_mae.png").exists()
  assert bb["candidates"][1]["expected_bops"] < bb["candidates"][0]["expected_bops"]
