"""DORY's generated tiles beside the simulator's: read a DORY run, match its layers to a network's, compare.

A DORY run is read from (first match): a `dory_report.json` (jaxbp's `tools/export.py --format dory
--dory-app`, `jaxbp/export/dory/app.py`), DORY's own `logs/HW_related/json_files/06_DORY_HW_tiled_graph.json`
(below RUN_DIR, or the file itself). DORY's layers are matched in order to the network's layers DORY has a
kernel for (`dory_tiler.dory_node`); the L1 tile compared is the output tile [C, H, W].
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from jaxbp.deploy.dory_tiler import dory_node
from jaxbp.deploy.simulator import Report

TILED_GRAPH = Path("logs/HW_related/json_files/06_DORY_HW_tiled_graph.json")


@dataclasses.dataclass(frozen=True)
class DoryLayer:
  """One layer of a DORY run: its DORY name, the kernel its generated code calls ("" if unknown), and its L2 and
  L1 output tiles [C, H, W] (None if DORY logged none)."""

  name: str
  kernel: str
  l2_output: tuple[int, ...] | None
  l1_output: tuple[int, ...] | None


def _tup(v: Any) -> tuple[int, ...] | None:
  return tuple(int(x) for x in v) if v else None


def read_dory_run(path: str | Path) -> list[DoryLayer]:
  """The layers of a DORY run at `path` (a run directory, a dory_report.json or a 06_DORY_HW_tiled_graph.json)."""
  path = Path(path)
  candidates = [path] if path.is_file() else [path / "dory_report.json", path / TILED_GRAPH,
                                              path / "out" / TILED_GRAPH]
  for c in candidates:
    if not c.is_file():
      continue
    try:
      doc = json.loads(c.read_text())
    except (OSError, json.JSONDecodeError) as e:
      raise ValueError(f"cannot read DORY run file {c}: {e}") from None
    if isinstance(doc, dict) and "layers" in doc and "graph" not in doc:  # jaxbp's dory_report.json
      out = []
      for l in doc["layers"]:
        l2, l1 = l.get("l2_tile") or {}, l.get("l1_tile") or {}
        out.append(DoryLayer(l.get("dory_name", ""), l.get("kernel") or "", _tup(l2.get("output")), _tup(l1.get("output"))))
      return out
    nodes = doc["graph"] if isinstance(doc, dict) else doc
    out = []
    for i, node in enumerate(nodes):
      tiles = node.get("Tiling_parameters", {})
      out.append(DoryLayer(f"{node.get('name', '')}{i}", "", _tup((tiles.get("L2") or {}).get("output_dimensions")),
                           _tup((tiles.get("L1") or {}).get("output_dimensions"))))
    return out
  raise ValueError(f"no DORY run at {path}: expected dory_report.json or {TILED_GRAPH} there")


@dataclasses.dataclass(frozen=True)
class TileRow:
  """One layer: ours (name, kernel, L1 tile [C, H, W], tiles) beside DORY's (name, kernel, L1 tile)."""

  layer: str
  kernel: str
  tile: tuple[int, int, int]
  n_tiles: int
  dory_layer: str
  dory_kernel: str
  dory_tile: tuple[int, ...] | None

  @property
  def same(self) -> bool:
    return self.dory_tile is not None and tuple(self.dory_tile) == self.tile


def compare(report: Report, dory: list[DoryLayer], layers_with_kernel: list[str]) -> list[TileRow]:
  """Rows pairing the report's layers that DORY implements (`layers_with_kernel`, in order) with DORY's layers."""
  if len(layers_with_kernel) != len(dory):
    raise ValueError(f"the DORY run has {len(dory)} layers, the network {len(layers_with_kernel)} layers DORY "
                     f"implements ({', '.join(layers_with_kernel[:4])}, ...): not the same network?")
  by_name = {l.name: l for l in report.layers}
  rows = []
  for name, d in zip(layers_with_kernel, dory):
    l = by_name[name]
    h, w, c = l.tile
    rows.append(TileRow(name, l.kernel, (c, h, w), l.n_tiles, d.name, d.kernel, d.l1_output))
  return rows


def dory_layers(net) -> list[str]:
  """Names of the layers of `net` DORY has a kernel for, in order (DORY's layer list)."""
  return [l.name for l in net.layers if dory_node(l) is not None]


def table(rows: list[TileRow]) -> str:
  """Markdown: our tile beside DORY's, per layer, and the agreement."""
  lines = ["| layer | kernel (ours) | L1 tile C,H,W (ours) | tiles | DORY layer | DORY kernel | DORY L1 tile | same |",
           "|---|---|---|---|---|---|---|---|"]
  for r in rows:
    dt = ",".join(map(str, r.dory_tile)) if r.dory_tile else "-"
    lines.append(f"| {r.layer} | {r.kernel or '-'} | {','.join(map(str, r.tile))} | {r.n_tiles} | {r.dory_layer} | "
                 f"{r.dory_kernel or '-'} | {dt} | {'yes' if r.same else 'NO'} |")
  n = sum(r.same for r in rows)
  lines.append(f"\nsame L1 tile: {n}/{len(rows)} layers ({100 * n / max(len(rows), 1):.0f} %)")
  return "\n".join(lines)
