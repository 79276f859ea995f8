"""Tests of the PPG study's pieces: model picking, the deployment table's o.o.m. rows, windows without beats,
PPG features and the classic baselines (RF, SVR)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from jaxbp.data.features import FEATURE_NAMES, heart_period, load_feature_folds, ppg_features
from jaxbp.data.specs import DatasetSpec
from jaxbp.data.synthetic import SyntheticConfig, generate
from jaxbp.deploy import study, zoo
from jaxbp.deploy.layers import with_uniform_bits
from jaxbp.deploy.platforms import get_platform
from jaxbp.deploy.simulator import simulate
from jaxbp.metrics import bp_report, sbp_dbp_batch
from jaxbp.models.classic import fit_classic
from jaxbp.nas.pareto import knee, pareto_front, pick_models
from jaxbp.train.crossval import RotationResult, pooled_report

# ---------------------------------------------------------------- model picking


def _cands(points):
  return [{"index": i, "params": p, "mae_sbp": e, "mae_dbp": e} for i, (p, e) in enumerate(points)]


def test_pareto_front_drops_dominated_and_nonfinite_points():
  pts = [(10.0, 5.0), (20.0, 6.0), (30.0, 3.0), (5.0, math.nan), (40.0, 3.0), (1.0, 9.0)]
  assert pareto_front(pts) == [5, 0, 2]


def test_knee_is_the_point_farthest_from_the_extremes_line():
  # An L-shaped front (log10 cost 1..4): the corner (100, 1.2) is the knee.
  pts = [(10.0, 10.0), (50.0, 3.0), (100.0, 1.2), (1000.0, 1.1), (10000.0, 1.0)]
  front = pareto_front(pts)
  assert front == [0, 1, 2, 3, 4]
  assert knee(pts, front) == 2
  assert knee(pts, front[:2]) is None  # two points: no knee


def test_pick_models_extremes_and_knee_of_both_fronts():
  pts = [(10.0, 10.0), (50.0, 3.0), (100.0, 1.2), (1000.0, 1.1), (10000.0, 1.0), (60.0, 20.0)]
  cands = _cands(pts)
  cands[3]["mae_dbp"] = 0.5  # on the DBP front, candidate 3 is the most accurate one
  picks = {p.index: p.reasons for p in pick_models(cands)}
  assert 5 not in picks  # dominated
  assert "sbp smallest" in picks[0] and "dbp smallest" in picks[0]
  assert "sbp most accurate" in picks[4] and "sbp knee" in picks[2]
  assert "dbp most accurate" in picks[3]
  assert 4 not in {i for i, r in picks.items() if any(x.startswith("dbp") for x in r)}
  assert all(len(set(r)) == len(r) for r in picks.values())


# ---------------------------------------------------------------- the table


def _result(k: int, err: float, n: int = 4) -> RotationResult:
  true = np.linspace(100.0, 140.0, n)
  return RotationResult(k, true + err, true / 2 + err, true, true / 2, np.full(n, 120.0), np.full(n, 60.0), {})


def _summary(k: int, sim) -> dict:
  return {"rotation": k, "params": 1000, "float_bytes": 4000, "int8_bytes": {"total": 1100},
          "deploy": study.simulation_summary(sim), "integer_vs_twin": {"max_abs_diff_mmhg": {"sbp": 0.1, "dbp": 0.2}}}


def test_table_marks_models_that_do_not_fit_l2_as_oom():
  p = get_platform("gap8")
  too_big = simulate(with_uniform_bits(zoo.bp_seed("resnet1d", "uci"), 8), p, l3=False)
  fits = simulate(with_uniform_bits(zoo.bp_seed("unet1d", "uci"), 8), p, l3=False)
  assert not too_big.fits and fits.fits
  rows = [study.naive_row({"sbp": 16.0, "dbp": 9.0})]
  for name, sim in (("big", too_big), ("small", fits)):
    model = study.StudyModel(name, name, (), {0: None, 1: None})
    results = {"float": [_result(0, 1.0), _result(1, 2.0)], "int8": [_result(0, 1.5), _result(1, 2.5)]}
    rows += study.model_rows(model, [_summary(0, sim), _summary(1, sim)], results)
  table = study.study_table(rows, dataset="x", platform="gap8", freq_mhz=100.0)
  md = study.markdown(table).splitlines()
  big_int8 = next(l for l in md if l.startswith("| big | int8"))
  small_int8 = next(l for l in md if l.startswith("| small | int8"))
  big_float = next(l for l in md if l.startswith("| big | float32"))
  assert big_int8.count("o.o.m.") == 2 and "o.o.m." not in small_int8 and "o.o.m." not in big_float
  assert f"{fits.latency_ms:.3f}" in small_int8
  int8 = [r for r in table["rows"] if r["id"] == "big" and r["precision"] == "int8"][0]
  assert int8["fits"] is False and int8["oom_reasons"] and int8["mae_sbp"] == pytest.approx(2.0)


def test_finished_rotation_is_resimulated_with_the_current_cycle_model(tmp_path):
  import json  # pylint: disable=import-outside-toplevel
  from jaxbp.models import RESNET1D, config_to_dict  # pylint: disable=import-outside-toplevel
  cfg = RESNET1D["ppgbp"]
  config = study.StudyConfig(platform="gap8", freq_mhz=100.0)
  now = study.simulation_summary(study.simulate_config(cfg, 262, "seed_r0", config))
  stale = {**now, "latency_ms": 1.0, "energy_mj": 0.01}
  path = tmp_path / "deploy.json"
  path.write_text(json.dumps({"model": "seed", "rotation": 0, "config": config_to_dict(cfg), "deploy": stale}))
  out = study.resimulate(json.loads(path.read_text()), 262, config, path)
  assert out["deploy"] == now and out["deploy_before"] == stale and now["latency_ms"] > 1.0
  assert json.loads(path.read_text())["deploy"] == now
  again = study.resimulate(json.loads(path.read_text()), 262, config, path)
  assert again["deploy_before"] == stale  # unchanged simulation: the file is not rewritten


def _seed_table(seed, maes, rotations=(0, 1)):
  rows = [study.naive_row({"sbp": 16.0, "dbp": 9.0})]
  for mid, (fs, qs) in maes.items():
    common = {"id": mid, "model": mid, "rotations": list(rotations)}
    rows += [{**common, "precision": "float32", "mae_sbp": fs, "mae_dbp": fs / 2},
             {**common, "precision": "int8", "mae_sbp": qs, "mae_dbp": qs / 2}]
  return study.study_table(rows, dataset="x", platform="gap8", freq_mhz=100.0, seed=seed)


def test_seed_spread_over_tables_of_other_training_seeds():
  tables = [_seed_table(0, {"seed": (14.0, 15.0), "c01": (14.5, 15.5), "c02": (1.0, 1.0)}),
            _seed_table(1, {"seed": (15.0, 16.0), "c01": (14.5, 16.5)}), _seed_table(2, {"seed": (16.0, 17.0)})]
  spread = study.seed_spread(tables)
  ids = [(e["id"], e["precision"]) for e in spread]
  assert ids == [("seed", "float32"), ("seed", "int8"), ("c01", "float32"), ("c01", "int8")]  # c02: one seed
  assert spread[3]["seeds"] == [0, 1] and spread[3]["mean_sbp"] == pytest.approx(16.0)
  q = spread[1]
  assert q["seeds"] == [0, 1, 2] and q["mae_sbp"] == [15.0, 16.0, 17.0]
  assert (q["mean_sbp"], q["std_sbp"], q["min_sbp"], q["max_sbp"]) == pytest.approx((16.0, 1.0, 15.0, 17.0))
  assert q["mean_dbp"] == pytest.approx(8.0)
  line = "| seed | int8 | 0, 1, 2 | 16.00 ± 1.00 [15.00–17.00] | 8.00 ± 0.50 [7.50–8.50] |"
  assert line in study.seed_markdown(spread)
  with pytest.raises(study.StudyError, match="rotations differ"):
    study.seed_spread([tables[0], _seed_table(1, {"seed": (15.0, 16.0)}, rotations=(0,))])


# ---------------------------------------------------------------- windows without beats


def test_windows_without_beats_are_counted_not_crashing():
  t = np.arange(625)
  beats = 80.0 + 40.0 * np.clip(np.sin(2 * np.pi * t / 100), 0, None) ** 2
  clipped = np.minimum(80.0 + 40.0 * np.sin(2 * np.pi * t / 100), 95.0)  # flat-topped (clipped) peaks
  flat = np.full(625, 90.0)
  edge = 80.0 + 40.0 * np.exp(-0.5 * ((t - 3) / 5.0) ** 2)  # one beat cut by the window's start
  sbp, dbp = sbp_dbp_batch(np.stack([beats, clipped, flat, edge]))
  assert np.isfinite(sbp[0]) and sbp[0] == pytest.approx(120.0, abs=0.5)
  assert np.all(np.isnan(sbp[2:])) and np.all(np.isnan(dbp[2:]))
  n = len(sbp)
  res = RotationResult(0, sbp, dbp, np.full(n, 120.0), np.full(n, 80.0), np.full(n, 118.0), np.full(n, 79.0), {})
  rep = pooled_report([res])
  assert rep["n_windows"] == 4 and rep["n_excluded_no_beats"] == int(np.sum(np.isnan(sbp)))
  assert math.isfinite(rep["sbp"]["mae"])
  # Every window without a beat: no crash, nan metrics next to the count.
  none = RotationResult(0, sbp[2:], dbp[2:], np.full(2, 120.0), np.full(2, 80.0), np.full(2, 118.0), np.full(2, 79.0),
                        {})
  rep = pooled_report([none])
  assert rep["n_excluded_no_beats"] == 2 and math.isnan(rep["sbp"]["mae"])
  assert math.isnan(bp_report([], [], [], [], [], [])["dbp"]["mase"])


# ---------------------------------------------------------------- features and classic baselines


@pytest.fixture(scope="module")
def synthetic_small():
  return generate(SyntheticConfig(n_subjects=40, windows_per_subject=2))


def test_ppg_features_shape_and_heart_rate(synthetic_small):
  x = synthetic_small["signal"]
  f = ppg_features(x)
  assert f.shape == (len(x), len(FEATURE_NAMES)) and np.all(np.isfinite(f))
  hr = f[:, FEATURE_NAMES.index("hr_bpm")]
  # The generator's per-window HR is the subject's ± a few bpm; windows are only ~2 beats long.
  assert np.median(np.abs(hr - synthetic_small["Heart Rate(b/m)"])) < 8.0
  t = np.arange(625)
  period = heart_period((np.sin(2 * np.pi * t / 90.0))[None, :])
  assert abs(period[0] - 90) <= 1
  with pytest.raises(ValueError, match="NaN"):
    ppg_features(np.full((1, 262), np.nan))


@pytest.mark.parametrize("kind", ["rf", "svr"])
def test_classic_baselines_beat_naive_on_generated_features(synthetic_small, kind):
  d = synthetic_small
  x, y = ppg_features(d["signal"]), np.column_stack([d["SP"], d["DP"]])
  fold = d["fold"]
  tr, va, te = np.isin(fold, [0, 1, 2]), fold == 3, fold == 4
  m = fit_classic(kind, x[tr], y[tr], x[va], y[va])
  pred = m.predict(x[te])
  assert pred.shape == (te.sum(), 2)
  mae, naive = np.abs(pred - y[te]).mean(axis=0), np.abs(y[tr].mean(axis=0) - y[te]).mean(axis=0)
  assert mae[0] < naive[0], f"{kind}: SBP {mae[0]:.2f} vs naive {naive[0]:.2f}"
  assert m.size["params"] > 0 and m.size["bytes"] >= m.size["params"]
  with pytest.raises(ValueError, match="unknown classic"):
    fit_classic("knn", x[tr], y[tr], x[va], y[va])


def test_classic_rotation_follows_the_protocol(synthetic_small):
  d = synthetic_small
  spec = DatasetSpec("s", "s_dataset", 5, 262, True)
  feats = [ppg_features(d["signal"][d["fold"] == i]) for i in range(5)]
  labels = [np.column_stack([d["SP"], d["DP"]])[d["fold"] == i] for i in range(5)]
  res, size = study.classic_rotation("svr", feats, labels, spec, 2)
  assert res.rotation == 2 and len(res.pred_sbp) == len(labels[2])
  np.testing.assert_array_equal(res.true_sbp, labels[2][:, 0])
  train = np.concatenate([labels[i] for i in (0, 1, 4)])  # test 2, val 3
  assert res.naive_sbp[0] == pytest.approx(train[:, 0].mean())
  rows = study.classic_rows("svr", [res], [size], "jaxbp PPG")
  assert rows[0]["size_bytes"] == size["bytes"] and rows[0]["latency_ms"] is None


def test_benchmark_feature_files_are_read(tmp_path):
  spec = DatasetSpec("toy", "toy_dataset", 2, 262, False)
  folder = tmp_path / "toy_dataset"
  folder.mkdir()
  assert load_feature_folds(tmp_path, spec) is None  # absent: jaxbp's features are used
  for i in range(2):
    (folder / f"feat_fold_{i}.csv").write_text(
        "patient,trial,SP,DP,f_a,f_b\n" + "\n".join(f"{j},{j}_1,{120 + j},{70 + j},{j * 0.5},{-j}" for j in range(3))
        + ("\n9,9_1,130,80,nan,1" if i else ""))
  folds = load_feature_folds(tmp_path, spec)
  assert [f["x"].shape for f in folds] == [(3, 2), (3, 2)]  # the NaN row is dropped
  assert folds[0]["names"] == ["f_a", "f_b"] and folds[1]["sbp"][2] == 122.0
  (folder / "feat_fold_1.csv").write_text("patient,SP,f_a\n1,120,0.3\n")
  with pytest.raises(ValueError, match="feat_fold_1.csv.*DP"):
    load_feature_folds(tmp_path, spec)


# ---------------------------------------------------------------- the HTML report


def test_report_is_self_contained_with_tables_and_plots(tmp_path):
  import json
  import re

  from jaxbp.deploy.report import ReportError, render

  cands = [{"index": i, "lambda": lam, "cost": "params", "params": p, "macs": 10 * p, "mae_sbp": e, "mae_dbp": e / 2}
           for i, (lam, p, e) in enumerate(((1e-7, 3000.0, 12.0), (1e-6, 2000.0, 12.5), (1e-5, 1000.0, 14.0)))]
  results = {"dataset": "synthetic", "seed_model": {"model": "resnet1d"}, "rotations": [0], "cost": "params",
             "seed": {"params": 4000, "macs": 40000, "mae_sbp": 12.2, "mae_dbp": 6.0},
             "naive": {"sbp": 16.0, "dbp": 8.0}, "candidates": cands, "pareto": {"sbp": [2, 1, 0], "dbp": [2, 1, 0]},
             "timings": {"search_rotation_0_s": 12.0}, "wall_seconds": 30.0}
  (tmp_path / "results.json").write_text(json.dumps(results))
  (tmp_path / "config.json").write_text(json.dumps({"args": {"epochs": 6}}))
  with pytest.raises(ReportError, match="results.json"):
    render(tmp_path / "missing")
  html = render(tmp_path)
  assert "No deployment table yet" in html
  row = {"id": "c00", "model": "NAS c00", "reasons": ["sbp knee"], "precision": "int8", "params": 3000.0,
         "size_bytes": 3500.0, "mae_sbp": 12.1, "mae_dbp": 6.1, "latency_ms": 1.5, "energy_mj": 0.07, "fits": True}
  rows = [row, {**row, "id": "seed", "model": "seed", "fits": False},
          {**row, "id": "rf", "model": "Random Forest", "precision": "float32", "latency_ms": None, "fits": None}]
  (tmp_path / "deploy").mkdir()
  (tmp_path / "deploy" / "table.json").write_text(json.dumps(
      {"dataset": "synthetic", "platform": "gap8", "freq_mhz": 100.0, "rows": rows, "notes": ["n"],
       "timings": {"wall_s": 5.0}}))
  html = render(tmp_path)
  assert html.count("data:image/png;base64,") == 2 and "o.o.m." in html and "Random Forest" in html
  srcs = re.findall(r"(?:src|href)=['\"]([^'\"]+)", html)
  assert srcs and all(s.startswith("data:") for s in srcs)
  assert '&quot;epochs&quot;: 6' in html and "search_rotation_0_s" in html


def test_floor_ranges_lifts_dead_quantizer_ranges_only():
  from jaxbp.quant.pipeline import MIN_RANGE, floor_ranges

  v = {"params": {"fc1": {"q": {"alpha": np.float32(-4.7e-4)}}, "fc2": {"q": {"alpha": np.float32(0.8)}},
                  "tqt": {"q": {"log2_t": np.float32(-20.0)}}, "prelu": {"alpha": np.full(3, -0.5, np.float32)}},
       "gates": {"g": 1}}
  out = floor_ranges(v)
  p = out["params"]
  assert float(p["fc1"]["q"]["alpha"]) == pytest.approx(MIN_RANGE) and float(p["fc2"]["q"]["alpha"]) == pytest.approx(0.8)
  assert float(p["tqt"]["q"]["log2_t"]) == pytest.approx(np.log2(MIN_RANGE))
  np.testing.assert_array_equal(p["prelu"]["alpha"], -0.5)  # a PReLU slope is not a quantizer range
  assert out["gates"] == {"g": 1}
