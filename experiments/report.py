"""One self-contained HTML report of a sweep run (and its deployment table).

  python experiments/report.py runs/sweep/resnet1d_synthetic            # -> runs/sweep/resnet1d_synthetic/report.html
  python experiments/report.py experiments/results/sweep_ppgbp_convdw --table runs/deploy_ppgbp/table.json

Tables (candidates, deployment: float and int8 rows with latency/energy or o.o.m.), the Pareto and deployment
plots embedded as base64 PNG, the run's configuration and timings. Screenshot: tools/screenshot_report.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without installing.

from jaxbp.deploy.report import ReportError, render  # noqa: E402


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("run_dir", type=Path, help="an experiments/sweep.py output directory")
  p.add_argument("--table", type=Path, default=None, help="deployment table.json (default RUN_DIR/deploy/table.json)")
  p.add_argument("--out", type=Path, default=None, help="HTML file (default RUN_DIR/report.html)")
  args = p.parse_args(argv)
  try:
    html = render(args.run_dir, args.table)
  except ReportError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  out = args.out or args.run_dir / "report.html"
  out.write_text(html)
  print(f"wrote {out} ({len(html) / 1024:.0f} KiB)")
  return 0


if __name__ == "__main__":
  sys.exit(main())
