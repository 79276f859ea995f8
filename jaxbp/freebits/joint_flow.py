"""The joint search as a stage of the Free Bits flow (`jaxbp.freebits.flow`), and its comparison with the flow's fronts.

  s = joint_stage(out, task, params, fc, "xpulpnn-v2", lambdas=(0.1, 0.3, 1, 3))   # all λ at once; resumable
  rows = joint_rows(out, task, s, fc, "xpulpnn-v2")   # export -> TQT fine-tuning -> simulate (+ free bits)
  cmp = compare(out, "xpulpnn-v2", rows)               # fronts vs BB(BOPs)+FB and BB(latency) of the same run

Searches write out/search/joint_<platform>/ (candidates.json: λ, chosen ops, exported config, bits, expected
latency; candidate_XX.msgpack: the exported network's params inherited from the supernet); fine-tuning and
simulation reuse the flow's folders (finetune/<id>, platforms/<p>/sim.json); the comparison writes
platforms/<p>/joint/{table.md, table.json, fronts.json, fronts.png}.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxbp import models
from jaxbp.data.batching import batches
from jaxbp.freebits import flow
from jaxbp.freebits import joint as J
from jaxbp.freebits.heuristic import free_bits
from jaxbp.freebits.latency_cost import deploy_graph, model_latency_dict
from jaxbp.freebits.study import explain, network_cost
from jaxbp.quant import pipeline
from jaxbp.train.engine import EngineConfig


def joint_tag(platform: str, bilevel: bool = False) -> str:
  return f"joint{'_bilevel' if bilevel else ''}_{platform}"


def joint_stage(out: Path, task: flow.FlowTask, params: Mapping[str, Any], fc: flow.FlowConfig, platform: str,
                lambdas: Sequence[float], warmup_epochs: int = 2, log: Callable[[str], None] = print,
                ops: tuple[str, ...] = J.OPS, bilevel: bool = False) -> dict[str, Any]:
  """The joint λ sweep on `platform` from the flow's int8 start (`params`), `fc.search_epochs` epochs of which
  `warmup_epochs` train only the weights; out/search/joint_<platform>/candidates.json (bilevel, α on validation
  batches: out/search/joint_bilevel_<platform>/)."""
  tag = joint_tag(platform, bilevel)
  d = Path(out) / "search" / tag
  done = d / "candidates.json"
  if done.exists():
    res = flow._read(done)  # pylint: disable=protected-access
    if [c["lambda"] for c in res["candidates"]] != list(lambdas) or tuple(res.get("ops", J.OPS)) != tuple(ops):
      raise ValueError(f"{done}: searched ops {res.get('ops', J.OPS)} for λ {[c['lambda'] for c in res['candidates']]}, "
                       f"not {tuple(ops)} for {list(lambdas)}; "
                       f"use another output folder")
    return res
  if task.kind != "regression":
    raise ValueError(f"joint search: the task {task.name!r} is {task.kind}; only the BP regression tasks are supported")
  jg = J.joint_graph(task.config, tuple(ops))
  jt = J.JointTwin(jg, J.policy())
  table = J.joint_table(task.config, task.window, platform, jg)
  calib = [b["x"] for _, b in zip(range(8), batches(task.split["train"], task.batch_size, seed=fc.seed))]
  v0 = J.start_variables(jt, task.window, params, calib, fc.seed)
  cfg = J.JointSearchConfig(weight_lr=fc.weight_lr, gate_lr=fc.gate_lr, epochs=fc.search_epochs,
                            warmup_epochs=warmup_epochs, batch_size=task.batch_size, bilevel=bilevel)
  t0 = time.perf_counter()
  finals, history = J.search(jt, v0, task.split["train"], tuple(lambdas), table, cfg,
                             engine=EngineConfig(strategy=fc.strategy), seed=fc.seed, val=task.split["val"],
                             progress=lambda r: log(f"joint {platform} epoch {r['epoch']}: rel latency "
                                                    f"{np.round(r['rel_latency'], 3).tolist()}"))
  seconds = time.perf_counter() - t0
  d.mkdir(parents=True, exist_ok=True)
  for i, v in enumerate(finals):  # the supernets themselves, before anything else can fail
    pipeline.save_variables(d / f"supernet_{i:02d}.msgpack", v)
  cands = []
  for i, (lam, v) in enumerate(zip(lambdas, finals)):
    plain, p, config, choice = J.exported(task.config, jg, v, task.window)
    pipeline.save_variables(d / f"candidate_{i:02d}.msgpack", {"params": p})
    bits = J.gate_bits(v["gates"], jt.policy.bayesian_bits)
    cands.append({"name": f"{tag}/{i:02d}", "lambda": lam, "index": i, "ops": choice,
                  "model": models.config_to_dict(plain), "config": {k: list(b) for k, b in config.items()},
                  "expected_ms": float(J.expected_latency(*J.one_hot_inputs(jg, choice, bits), jg, table)),
                  "theta": {k: np.round(np.asarray(jax.nn.softmax(np.asarray(a))), 3).tolist()
                            for k, a in v["arch"].items()}})
  res = {"tag": tag, "platform": platform, "ops": list(ops), "bilevel": bilevel, "search_s": seconds,
         "warmup_epochs": warmup_epochs,
         "epochs": fc.search_epochs, "history": history, "candidates": cands}
  flow._write(done, res)  # pylint: disable=protected-access
  return res


def candidate_task(task: flow.FlowTask, cand: Mapping[str, Any]) -> flow.FlowTask:
  """The flow task of a joint candidate's exported network."""
  return dataclasses.replace(task, config=models.config_from_dict(cand["model"]))


def joint_rows(out: Path, task: flow.FlowTask, res: Mapping[str, Any], fc: flow.FlowConfig, platform: str,
               with_free_bits: bool = True) -> list[dict[str, Any]]:
  """Every joint candidate (and its free-bits version on the exported network's LD) fine-tuned with TQT and
  simulated on `platform`: rows {name, kind "joint" | "joint+fb", id, config, ops, latency_ms, error, ...}."""
  rows = []
  kind = "joint_bilevel" if res.get("bilevel") else "joint"
  for c in res["candidates"]:
    t = candidate_task(task, c)
    conf = flow._pairs(c["config"])  # pylint: disable=protected-access
    plan = [{"name": c["name"], "kind": kind, "source": c["name"], "config": c["config"],
             "id": flow.config_id(conf, c["name"]), "raised": [], "free_bits_of": None}]
    if with_free_bits:
      ld = model_latency_dict(t.config, t.window, platform)
      net = deploy_graph(t.config, t.window)
      fb = free_bits(conf, ld.per_layer("ms"), types=ld.layers, network_cost=network_cost(ld, net))
      cfg_fb = dict(fb.config)
      plan.append({"name": c["name"] + " + FB", "kind": kind + "+fb", "source": c["name"],
                   "config": {k: list(v) for k, v in cfg_fb.items()}, "id": flow.config_id(cfg_fb, c["name"]),
                   "raised": [explain(ld, k, a, b, net, cfg_fb).to_json() for k, (a, b) in fb.changes.items()],
                   "free_bits_of": c["name"]})
    uniq = list({r["id"]: r for r in plan}.values())
    tuned = flow.finetune(out, t, uniq, fc)
    sim = flow.simulate_rows(out, t, platform, uniq)
    for r in plan:
      f, s = tuned[r["id"]], sim[r["id"]]
      rows.append({**r, "ops": c["ops"], "lambda": c["lambda"], "expected_ms": c["expected_ms"],
                   "latency_ms": s["latency_ms"], "simulated": s.get("simulated", "integer graph"),
                   "error": f["error"], "mae_sbp": f["mae_sbp"], "mae_dbp": f["mae_dbp"], "bytes": f["bytes"]})
  return rows


GROUPS = {"BB(BOPs) + FB": lambda x: x["kind"] == "bb_bops+fb", "BB(latency)": lambda x: x["kind"] == "bb_latency",
          "BB(latency) + FB": lambda x: x["kind"] == "bb_latency+fb", "joint": lambda x: x["kind"] == "joint",
          "joint + FB": lambda x: x["kind"] == "joint+fb", "joint bilevel": lambda x: x["kind"] == "joint_bilevel",
          "joint bilevel + FB": lambda x: x["kind"] == "joint_bilevel+fb"}


def compare(out: Path, platform: str, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
  """The joint rows beside the flow's table of `platform` (latency % of its 8-bit row), Pareto fronts of
  BB(BOPs)+FB, BB(latency)(+FB) and joint(+FB), and how much of each front every other front dominates."""
  d = Path(out) / "platforms" / platform
  tab = flow._read(d / "table.json")  # pylint: disable=protected-access
  t8 = tab["reference"]["latency_ms"]
  joint = [{**r, "latency_pct": 100.0 * (r["latency_ms"] / t8)} for r in rows]
  allrows = {"rows": list(tab["rows"]) + joint}
  cmp = flow.compare_fronts(allrows, {k: v for k, v in GROUPS.items() if any(v(x) for x in allrows["rows"])})
  cmp["reference"] = tab["reference"]
  flow._write(d / "joint" / "fronts.json", cmp)  # pylint: disable=protected-access
  flow._write(d / "joint" / "table.json", joint)  # pylint: disable=protected-access
  flow.plot_fronts(platform, cmp, d / "joint" / "fronts.png")
  plot_points(platform, allrows["rows"], d / "joint" / "points.png")
  lines = [f"## joint search on {platform}", "", f"8-bit: {t8:.3f} ms, error {tab['reference']['error']:.2f}", "",
           "| candidate | λ | ops (conv/dw/id) | latency % of 8-bit | latency ms | expected ms (LD sum) | error | "
           "MAE SBP | MAE DBP | bytes | layers raised |", "|---|---|---|---|---|---|---|---|---|---|---|"]
  for r in joint:
    n_ops = [list(r["ops"].values()).count(o) for o in J.OPS]
    lines.append(f"| {r['name']} | {r['lambda']:g} | {'/'.join(map(str, n_ops))} | {r['latency_pct']:.1f} | "
                 f"{r['latency_ms']:.3f} | {r['expected_ms']:.3f} | {r['error']:.2f} | {r['mae_sbp']:.2f} | "
                 f"{r['mae_dbp']:.2f} | {r['bytes']:,} | {len(r['raised']) if r['free_bits_of'] else ''} |")
  lines += ["", "Fronts (latency %, error):", ""]
  lines += [f"- {k}: " + ", ".join(f"({p[0]:.1f}, {p[1]:.2f})" for p in v) for k, v in cmp["fronts"].items()]
  lines += ["", "Fraction of a front weakly dominated by another:", ""]
  lines += [f"- {k}: {v:.2f}" for k, v in cmp["dominated_fraction"].items()]
  (d / "joint" / "table.md").write_text("\n".join(lines) + "\n")
  return cmp


def plot_points(platform: str, rows: Sequence[Mapping[str, Any]], path: Path) -> None:
  """Every configuration of the comparison (latency % of 8-bit vs error), one marker per group, baselines named."""
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  fig, ax = plt.subplots(figsize=(7, 5))
  groups = {"baseline": lambda x: x["kind"].startswith("baseline"), "BB(BOPs)": lambda x: x["kind"] == "bb_bops",
            **GROUPS}
  for (name, sel), m in zip(groups.items(), "sodv^PX*h"):
    pts = [(x["latency_pct"], x["error"]) for x in rows if sel(x) and np.isfinite(x["latency_pct"])]
    if pts:
      ax.scatter(*zip(*pts), marker=m, s=40, alpha=0.8, label=name)
  for x in rows:
    if x["kind"].startswith("baseline"):
      ax.annotate(x["name"], (x["latency_pct"], x["error"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
  flow.finish_latency_plot(fig, ax, platform, "test error (mean SBP/DBP MAE, mmHg)", path)
