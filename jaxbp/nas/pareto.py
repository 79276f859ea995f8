"""Pareto fronts of (cost, error) points and the models a study deploys from them: both extremes and the knee.

  front = pareto_front([(params, mae), ...])          # indices, sorted by cost
  picks = pick_models(candidates, targets=("sbp", "dbp"))   # [Pick(index, reasons), ...]

The knee of a front is the point farthest from the straight line joining its two extremes, with cost on a
log10 axis (as the Pareto plots show it) and both axes scaled to [0, 1] over the front.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping, Sequence


@dataclasses.dataclass(frozen=True)
class Pick:
  """A candidate picked for deployment and why ("sbp smallest", "dbp knee", ...)."""

  index: int
  reasons: tuple[str, ...]


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
  """Indices of the points not dominated in (cost, error), both minimized, sorted by cost.

  Non-finite errors are never on the front.
  """
  order = sorted(range(len(points)), key=lambda i: (points[i][0], points[i][1]))
  front, best = [], math.inf
  for i in order:
    if math.isfinite(points[i][1]) and points[i][1] < best:
      front.append(i)
      best = points[i][1]
  return front


def knee(points: Sequence[tuple[float, float]], front: Sequence[int], *, log_cost: bool = True) -> int | None:
  """The front point farthest from the line between its extremes (None with fewer than 3 points).

  Args:
    points: (cost, error) per candidate.
    front: indices of the front, sorted by cost (`pareto_front`).
    log_cost: measure cost on a log10 axis (costs must then be > 0).
  """
  if len(front) < 3:
    return None
  tx = (lambda c: math.log10(c)) if log_cost else (lambda c: c)
  xs = [tx(points[i][0]) for i in front]
  ys = [points[i][1] for i in front]
  span_x, span_y = (max(xs) - min(xs)) or 1.0, (max(ys) - min(ys)) or 1.0
  u = [((x - xs[0]) / span_x, (y - ys[0]) / span_y) for x, y in zip(xs, ys)]
  dx, dy = u[-1]
  norm = math.hypot(dx, dy) or 1.0
  dist = [abs(dx * y - dy * x) / norm for x, y in u]
  best = max(range(1, len(front) - 1), key=lambda j: dist[j])
  return front[best]


def pick_models(candidates: Sequence[Mapping[str, Any]], targets: Sequence[str] = ("sbp", "dbp"),
                cost: str = "params") -> list[Pick]:
  """Both extremes and the knee of each target's front of (cost, MAE).

  Args:
    candidates: dicts with "index", `cost` and "mae_<target>" (a sweep's results.json "candidates").
    targets: fronts to pick from.
    cost: the cost key.

  Returns:
    Picks sorted by candidate index; a candidate picked for several reasons appears once.
  """
  reasons: dict[int, list[str]] = {}
  for t in targets:
    pts = [(float(c[cost]), float(c[f"mae_{t}"])) for c in candidates]
    front = pareto_front(pts)
    if not front:
      continue
    named = [(front[0], f"{t} smallest"), (front[-1], f"{t} most accurate")]
    k = knee(pts, front, log_cost=all(p[0] > 0 for p in pts))
    if k is not None:
      named.append((k, f"{t} knee"))
    for j, why in named:
      idx = int(candidates[j]["index"])
      if why not in reasons.setdefault(idx, []):
        reasons[idx].append(why)
  return [Pick(i, tuple(r)) for i, r in sorted(reasons.items())]
