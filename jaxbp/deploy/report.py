"""One self-contained HTML report of a sweep run: config, candidates, Pareto and deployment plots, tables, timings.

  html = render(run_dir)          # plots embedded as base64 PNG; no file outside the HTML is referenced

Reads RUN_DIR/results.json and config.json (experiments/sweep.py) and, where present, the deployment table
RUN_DIR/deploy/table.json (experiments/deploy.py) for the classic baselines, the int8 rows and the plots.
"""

from __future__ import annotations

import base64
import html as html_lib
import io
import json
import math
from pathlib import Path
from typing import Any, Mapping, Sequence


class ReportError(ValueError):
  """A run directory the report cannot read (names the file)."""


def _read(path: Path, required: bool = True) -> Any:
  if not path.exists():
    if required:
      raise ReportError(f"{path}: not found (is {path.parent} an experiments/sweep.py run directory?)")
    return None
  try:
    return json.loads(path.read_text())
  except json.JSONDecodeError as e:
    raise ReportError(f"{path}: not valid JSON: {e}") from None


def load_run(run_dir: str | Path, table: str | Path | None = None) -> dict[str, Any]:
  """{"results", "config", "table" (or None), "run_dir"} of a sweep run directory."""
  run = Path(run_dir)
  table_path = Path(table) if table else run / "deploy" / "table.json"
  return {"run_dir": str(run), "results": _read(run / "results.json"),
          "config": _read(run / "config.json", required=False), "table": _read(table_path, required=False)}


def _png(fig) -> str:
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  buf = io.BytesIO()
  fig.savefig(buf, format="png", dpi=110)
  plt.close(fig)
  return base64.b64encode(buf.getvalue()).decode()


def _plt():
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  return matplotlib, plt


def pareto_png(results: Mapping[str, Any], table: Mapping[str, Any] | None) -> str:
  """MAE vs parameters (SBP, DBP): candidates by λ, the fronts, the seed, naive, RF/SVR (base64 PNG)."""
  matplotlib, plt = _plt()
  cands = results["candidates"]
  rows = (table or {}).get("rows", [])
  fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
  for ax, t in zip(axes, ("sbp", "dbp")):
    sc = ax.scatter([c["params"] for c in cands], [c[f"mae_{t}"] for c in cands], c=[c["lambda"] for c in cands],
                    cmap="viridis", norm=matplotlib.colors.LogNorm(), zorder=2, label="NAS candidates")
    front = sorted((c for c in cands if c["index"] in results.get("pareto", {}).get(t, [])), key=lambda c: c["params"])
    ax.plot([c["params"] for c in front], [c[f"mae_{t}"] for c in front], "r-o", mfc="none", ms=10, zorder=3,
            label="Pareto front")
    if results.get("seed"):
      ax.scatter([results["seed"]["params"]], [results["seed"][f"mae_{t}"]], marker="*", s=250, c="k", zorder=4,
                 label="seed")
    for r, marker in ((r, {"rf": "s", "svr": "D"}.get(r["id"])) for r in rows):
      if marker and r["params"]:
        ax.scatter([r["params"]], [r[f"mae_{t}"]], marker=marker, s=70, c="tab:orange", edgecolors="k", zorder=4,
                   label=r["model"])
    if results.get("naive"):
      ax.axhline(results["naive"][t], color="gray", ls="--", label="naive (train mean)")
    ax.set_xscale("log")
    # Minor log ticks at 2 and 5 only, labelled like the major ones (the default labels every minor tick of a
    # sub-decade range, and 3e4 and 4e4 overlap).
    ax.xaxis.set_minor_locator(matplotlib.ticker.LogLocator(subs=(2.0, 5.0)))
    fmt = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}")
    ax.xaxis.set_major_formatter(fmt)
    ax.xaxis.set_minor_formatter(fmt)
    ax.set_xlabel("parameters")
    ax.set_ylabel(f"MAE {t.upper()} [mmHg]")
    ax.set_title(f"{results['dataset']}: {t.upper()} (float)")
    ax.grid(alpha=0.3)
  fig.colorbar(sc, ax=axes, label="λ")
  axes[0].legend(fontsize=7)
  return _png(fig)


def deployment_png(table: Mapping[str, Any]) -> str | None:
  """int8 rows: MAE vs latency and vs deployed bytes (SBP and DBP); o.o.m. models marked (base64 PNG)."""
  rows = [r for r in table.get("rows", []) if r.get("precision") == "int8"]
  if not rows:
    return None
  _, plt = _plt()
  fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
  for ax, (key, label) in zip(axes, (("latency_ms", f"latency on {table['platform']} [ms]"),
                                     ("size_bytes", "int8 size [bytes]"))):
    for t, color in (("sbp", "tab:red"), ("dbp", "tab:blue")):
      ok = [r for r in rows if r["fits"]]
      ax.scatter([r[key] for r in ok], [r[f"mae_{t}"] for r in ok], c=color, label=f"MAE {t.upper()}", zorder=3)
      oom = [r for r in rows if not r["fits"]]
      if oom:
        ax.scatter([r[key] for r in oom], [r[f"mae_{t}"] for r in oom], c=color, marker="x", s=80,
                   label=f"MAE {t.upper()} (o.o.m.)", zorder=3)
      for r in rows:
        ax.annotate(r["id"], (r[key], r[f"mae_{t}"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    for r in table["rows"]:
      if r["id"] == "naive":
        for t, color in (("sbp", "tab:red"), ("dbp", "tab:blue")):
          ax.axhline(r[f"mae_{t}"], color=color, ls=":", alpha=0.6)
    ax.set_xlabel(label)
    ax.set_ylabel("MAE [mmHg] (integer network)")
    ax.grid(alpha=0.3)
  axes[0].set_title(f"int8 on {table['platform']} @ {table['freq_mhz']:g} MHz (dotted: naive)")
  axes[1].set_title("size vs error")
  axes[0].legend(fontsize=7)
  return _png(fig)


def _rotations(table: Mapping[str, Any]) -> list[int]:
  """The rotations of the table's deployed rows (union over models)."""
  return sorted({k for r in table.get("rows", []) if r.get("precision") == "int8" for k in r.get("rotations", [])})


def _esc(x: Any) -> str:
  return html_lib.escape(str(x))


def _fmt(v: Any, digits: int = 2) -> str:
  if v is None:
    return "–"
  if isinstance(v, float):
    if not math.isfinite(v):
      return "–"
    return f"{v:,.{digits}f}" if abs(v) < 1e4 else f"{v:,.0f}"
  if isinstance(v, int):
    return f"{v:,}"
  return str(v)


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]], cls: str = "") -> str:
  out = [f'<table class="{cls}"><thead><tr>' + "".join(f"<th>{_esc(h)}</th>" for h in head) + "</tr></thead><tbody>"]
  for r in rows:
    out.append("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>")
  return "".join(out) + "</tbody></table>"


def _candidates_html(results: Mapping[str, Any]) -> str:
  seed = results.get("seed") or {}
  front = set(results.get("pareto", {}).get("sbp", [])) | set(results.get("pareto", {}).get("dbp", []))
  rows = []
  for c in results["candidates"]:
    pct = f" ({100 * c['params'] / seed['params']:.0f}%)" if seed.get("params") else ""
    rows.append([_esc(c["index"]), f"{c['lambda']:.1e}", _fmt(c["params"], 0) + pct, _fmt(c["macs"], 0),
                 _fmt(c["mae_sbp"]), _fmt(c["mae_dbp"]), "★" if c["index"] in front else ""])
  if seed:
    rows.append(["<b>seed</b>", "–", _fmt(seed["params"], 0), _fmt(seed.get("macs"), 0), _fmt(seed["mae_sbp"]),
                 _fmt(seed["mae_dbp"]), ""])
  if results.get("naive"):
    rows.append(["naive", "–", "0", "0", _fmt(results["naive"]["sbp"]), _fmt(results["naive"]["dbp"]), ""])
  return _table(["#", "λ", "params", "MACs", "MAE SBP", "MAE DBP", "front"], rows)


def _deploy_html(table: Mapping[str, Any]) -> str:
  rows = []
  for r in table["rows"]:
    oom = r.get("fits") is False
    lat = "o.o.m." if oom else _fmt(r.get("latency_ms"), 3)
    en = "o.o.m." if oom else _fmt(r.get("energy_mj"), 4)
    why = ", ".join(x for x in (r.get("reasons") or []) if x != r["model"])
    rows.append([_esc(r["model"]) + (f'<br><span class="why">{_esc(why)}</span>' if why else ""), _esc(r["precision"]),
                 _fmt(r.get("params"), 0), _fmt(r.get("size_bytes"), 0), _fmt(r["mae_sbp"]), _fmt(r["mae_dbp"]),
                 f'<span class="oom">{lat}</span>' if oom else lat, f'<span class="oom">{en}</span>' if oom else en])
  notes = "".join(f"<li>{_esc(n)}</li>" for n in table.get("notes", []))
  return (_table(["model", "precision", "params", "size [B]", "MAE SBP", "MAE DBP", "latency [ms]", "energy [mJ]"],
                 rows, "deploy") + (f"<ul class='notes'>{notes}</ul>" if notes else ""))


def _timings_html(results: Mapping[str, Any], table: Mapping[str, Any] | None) -> str:
  rows = [[_esc(k), _fmt(float(v), 1)] for k, v in (results.get("timings") or {}).items()]
  if results.get("wall_seconds") is not None:
    rows.append(["sweep wall (last invocation; a resumed run's earlier stages are not in it)",
                 _fmt(float(results["wall_seconds"]), 1)])
  for k, v in ((table or {}).get("timings") or {}).items():
    what = (f"deploy {_esc(k[:-len('_rotations_s')])}: sum of its rotations' own runs" if k.endswith("_rotations_s")
            else f"deploy, last invocation: {_esc(k)}")
    rows.append([what, _fmt(float(v), 1)])
  return _table(["stage", "seconds"], rows) if rows else "<p>no timings recorded</p>"


CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1180px;color:#222}
h1{font-size:1.6em;margin-bottom:0}h2{border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:28px}
.sub{color:#666;margin-top:4px}table{border-collapse:collapse;margin:8px 0;font-size:.92em}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:right}th{background:#f3f3f3}td:first-child{text-align:left}
.oom{color:#b00;font-weight:bold}.why{color:#777;font-size:.8em}img{max-width:100%}
pre{background:#f7f7f7;padding:8px;font-size:.8em;max-height:320px;overflow:auto}.notes{color:#555;font-size:.85em}
.kpi{display:inline-block;border:1px solid #ddd;border-radius:6px;padding:8px 14px;margin:4px 8px 4px 0}
.kpi b{display:block;font-size:1.3em}"""


def render(run_dir: str | Path, table: str | Path | None = None) -> str:
  """The self-contained HTML report of a sweep run directory (and its deployment table, if any)."""
  run = load_run(run_dir, table)
  res, cfg, tab = run["results"], run["config"], run["table"]
  for field in ("dataset", "candidates"):
    if field not in res:
      raise ReportError(f"{Path(run_dir) / 'results.json'}: missing field {field!r}")
  model = (res.get("seed_model") or {}).get("model", "?")
  seed, naive = res.get("seed") or {}, res.get("naive") or {}
  best = {t: min(res["candidates"], key=lambda c: c[f"mae_{t}"]) for t in ("sbp", "dbp")}
  kpis = []
  if naive:
    kpis.append(("naive SBP / DBP", f"{naive['sbp']:.2f} / {naive['dbp']:.2f}"))
  if seed:
    kpis.append(("seed SBP / DBP", f"{seed['mae_sbp']:.2f} / {seed['mae_dbp']:.2f}"))
  kpis.append(("best NAS SBP / DBP", f"{best['sbp']['mae_sbp']:.2f} / {best['dbp']['mae_dbp']:.2f}"))
  if res.get("wall_seconds") is not None:
    kpis.append(("sweep wall (last invocation)", f"{res['wall_seconds']:.0f} s"))
  parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>jaxbp: {_esc(model)} on {_esc(res['dataset'])}"
           f"</title><style>{CSS}</style></head><body>",
           f"<h1>jaxbp λ sweep: {_esc(model)} on {_esc(res['dataset'])}</h1>",
           f"<p class='sub'>{_esc(run['run_dir'])} · rotations {_esc(res.get('rotations'))} · cost "
           f"{_esc(res.get('cost'))} · MAE in mmHg, pooled over the test folds</p>",
           "".join(f"<span class='kpi'>{_esc(k)}<b>{_esc(v)}</b></span>" for k, v in kpis),
           "<h2>Pareto fronts (float)</h2>", f"<img alt='pareto' src='data:image/png;base64,{pareto_png(res, tab)}'>",
           "<h2>Candidates</h2>", _candidates_html(res)]
  if tab:
    code = tab.get("code") or {}
    parts += [f"<h2>Deployment: int8 on {_esc(tab['platform'])} @ {tab['freq_mhz']:g} MHz</h2>",
              f"<p class='sub'>rotations {_esc(_rotations(tab))} · latency and energy simulated by jaxbp at commit "
              f"{_esc(code.get('commit') or 'unknown')}</p>", _deploy_html(tab)]
    img = deployment_png(tab)
    if img:
      parts.append(f"<img alt='deployment' src='data:image/png;base64,{img}'>")
  else:
    parts.append("<h2>Deployment</h2><p>No deployment table yet: run <code>python experiments/deploy.py "
                 f"{_esc(run['run_dir'])}</code>.</p>")
  parts += ["<h2>Timings</h2>", _timings_html(res, tab)]
  if cfg:
    parts += ["<h2>Configuration</h2>", f"<pre>{_esc(json.dumps(cfg, indent=1))}</pre>"]
  parts.append("</body></html>")
  return "\n".join(parts)
