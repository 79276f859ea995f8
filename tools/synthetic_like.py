"""Writes the synthetic PPG/ABP generator's windows shaped like a benchmark dataset, under that dataset's name.

  python tools/synthetic_like.py sensors --out /tmp/sens          # /tmp/sens/sensors_dataset, 625-sample windows
  python experiments/sweep.py --model unet1d --dataset sensors --data-dir /tmp/sens --lambdas 1e-7 1e-6 1e-5

For memory and speed checks at a real dataset's shapes (window, folds, ~N windows) where its files are not at
hand. The numbers a sweep reports on it are those of synthetic data, not of the named dataset.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # jaxbp from a clone

from jaxbp.data.specs import SPECS  # noqa: E402
from jaxbp.data.synthetic import SyntheticConfig, write_synthetic_dataset  # noqa: E402


def main(argv=None) -> Path:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("dataset", help=f"shape to copy: one of {sorted(k for k in SPECS if k != 'synthetic')}")
  p.add_argument("--out", required=True, help="root folder; writes <out>/<dataset folder>/")
  p.add_argument("--windows", type=int, default=700, help="about this many windows (3 per subject)")
  p.add_argument("--seed", type=int, default=0)
  args = p.parse_args(argv)
  if args.dataset not in SPECS or args.dataset == "synthetic":
    p.exit(2, f"synthetic_like: unknown dataset {args.dataset!r}; expected one of "
              f"{sorted(k for k in SPECS if k != 'synthetic')}\n")
  spec = SPECS[args.dataset]
  cfg = SyntheticConfig(n_subjects=max(spec.n_folds, args.windows // 3), window=spec.window,
                        n_folds=spec.n_folds, seed=args.seed)
  written = write_synthetic_dataset(args.out, cfg)
  target = Path(args.out) / spec.folder
  if target.exists():
    for f in target.glob("*"):
      f.unlink()
    target.rmdir()
  os.replace(written, target)
  print(target)
  return target


if __name__ == "__main__":
  main()
