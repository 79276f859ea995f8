"""The Free Bits flow end to end on a tiny ResNet1d, and its resume: a rerun redoes nothing."""

import json

import jax
import numpy as np
import pytest

from jaxbp.data.specs import get_spec
from jaxbp.freebits import flow
from jaxbp.quant import QuantConfig, pipeline, twin
from jaxbp.quant.convert import init_twin
from tests.conftest import TINY_RESNET


@pytest.mark.slow
def test_flow_runs_and_resumes(tiny_synthetic, tmp_path, monkeypatch):
  _, folds = tiny_synthetic
  task = flow.task_from_folds(get_spec("synthetic"), folds, TINY_RESNET, 0, 16)
  tw = twin(TINY_RESNET, QuantConfig(act_method="tqt"))
  init = tmp_path / "init.msgpack"
  pipeline.save_variables(init, {"params": init_twin(tw, jax.random.key(0), task.window)["params"]})
  fc = flow.FlowConfig(lambdas=(0.0, 1.0), variants=("original",), platforms=("gap8",), search_epochs=1,
                       finetune_epochs=1, export=False, strategy="loop", margins=(5.0, 1000.0))
  out = tmp_path / "run"
  first = flow.run(out, task, fc, init_from=init, log=lambda s: None)
  tab = first["gap8"]
  names = [r["name"] for r in tab["rows"]]
  assert names[:3] == ["8-bit", "4-bit", "4-bit + FB"]
  assert len(names) == 3 + 2 * 2  # every BB configuration before and after free bits.
  rows = {r["name"]: r for r in tab["rows"]}
  assert rows["8-bit"]["latency_pct"] == 100.0
  assert rows["4-bit"]["bytes"] < rows["8-bit"]["bytes"]
  plan = json.loads((out / "platforms" / "gap8" / "plan.json").read_text())
  for r in plan:  # free bits never lowers a width.
    if r["free_bits_of"]:
      src = next(x for x in plan if x["name"] == r["free_bits_of"])
      assert all(a >= b for k in r["config"] for a, b in zip(r["config"][k], src["config"][k]))
  assert tab["fastest_within_margin"][-1]["fastest"] is not None
  assert (out / "platforms" / "gap8" / "latency_vs_error.png").stat().st_size > 0
  # Resume: every stage's outputs are kept and reused; nothing is rewritten.
  stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.suffix in (".msgpack", ".json")
            and p.parent.name in ("search", "finetune", "start") or p.parent.parent.name == "search"}
  assert stamps
  def fail(*args, **kwargs):
    raise AssertionError("a finished stage was recomputed")

  for name in ("bb_search", "Engine", "model_latency_dict", "simulate"):
    monkeypatch.setattr(flow, name, fail)
  second = flow.run(out, task, fc, init_from=init, log=lambda s: None)
  assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())
  np.testing.assert_allclose([r["error"] for r in second["gap8"]["rows"]], [r["error"] for r in tab["rows"]])


def _rows():
  mk = lambda name, kind, of=None: {"name": name, "kind": kind, "id": name, "raised": [1] if of else [],
                                    "free_bits_of": of}
  return [mk("8-bit", "baseline"), mk("4-bit", "baseline"), mk("4-bit + FB", "baseline+fb", "4-bit"),
          mk("a", "bb_bops"), mk("a + FB", "bb_bops+fb", "a")]


def test_table_picks_the_fastest_within_each_margin():
  rows = _rows()
  lat = {"8-bit": 10.0, "4-bit": 8.0, "4-bit + FB": 7.0, "a": 6.0, "a + FB": 5.0}
  err = {"8-bit": 10.0, "4-bit": 10.4, "4-bit + FB": 10.4, "a": 12.0, "a + FB": 12.0}
  sim = {k: {"latency_ms": v, "fits": True} for k, v in lat.items()}
  tuned = {k: {"error": v, "mae_sbp": v, "mae_dbp": v, "bytes": 1} for k, v in err.items()}
  tab = flow.table(rows, tuned, sim, (1.0, 5.0, 50.0))
  best = {b["margin_pct"]: (b["fastest"], b["fastest_without_free_bits"]) for b in tab["fastest_within_margin"]}
  assert best == {1.0: ("8-bit", "8-bit"), 5.0: ("4-bit + FB", "4-bit"), 50.0: ("a + FB", "a")}
  assert [r["latency_pct"] for r in tab["rows"]] == [100.0, 80.0, 70.0, 60.0, 50.0]
  cmp = flow.compare_fronts(tab, {"BB": lambda x: x["kind"] == "bb_bops", "BB+FB": lambda x: x["kind"] == "bb_bops+fb"})
  assert cmp["dominated_fraction"] == {"BB over BB+FB": 0.0, "BB+FB over BB": 1.0}


def test_pareto_and_config_ids():
  assert flow.pareto([(1, 5), (2, 4), (3, 4), (2, 6), (0.5, 9)]) == [(0.5, 9), (1, 5), (2, 4)]
  a = flow.config_id({"x": (4, 4), "y": (8, 2)}, "original_bops/01")
  assert a == flow.config_id({"y": (8, 2), "x": (4, 4)}, "original_bops/01") and a.startswith("original_bops_01-")
  assert a != flow.config_id({"x": (4, 8), "y": (8, 2)}, "original_bops/01")


@pytest.mark.slow  # ~100 s on 2 loaded cores (the integerizer's read-off compiles).
def test_resnet1d_integer_graph_deploys_like_the_zoo_graph():
  """The integer graph's deploy conversion drops ResNet1d's skip `pad_channels` into the add (as the zoo graph)."""
  import dataclasses

  from jaxbp.deploy.layers import with_uniform_bits
  from jaxbp.deploy.platforms import get_platform
  from jaxbp.deploy.simulator import simulate
  from jaxbp.deploy.zoo import from_config
  from jaxbp.export.c.to_deploy import to_network
  from jaxbp.integerize.from_quant import integerize_twin

  cfg = dataclasses.replace(TINY_RESNET, n_blocks=3)  # block2 doubles the channels: a zero-padded skip.
  tw = twin(cfg, QuantConfig(act_method="tqt"))
  assert "pad_channels" in {n.op for n in tw.graph.nodes}
  net = to_network(integerize_twin(tw, init_twin(tw, jax.random.key(0), 64), 64), "tiny")
  zoo = with_uniform_bits(from_config(cfg, 64), 8)
  assert [(l.name, l.op, l.in_shape, l.in2_shape) for l in net.layers] == \
      [(l.name, l.op, l.in_shape, l.in2_shape) for l in zoo.layers]
  p = get_platform("gap8")
  assert simulate(net, p).latency_ms == pytest.approx(simulate(zoo, p).latency_ms, rel=0.02)
