"""Screenshot an HTML report with headless Chromium (not part of CI).

  python tools/screenshot_report.py runs/sweep/resnet1d_synthetic/report.html [--out report.png] [--width 1280]

Needs Debian's `chromium` package (`apt-get install -y chromium`); --chromium names another binary.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "chrome")


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("html", type=Path)
  p.add_argument("--out", type=Path, default=None, help="PNG (default: beside the HTML, .png)")
  p.add_argument("--width", type=int, default=1280)
  p.add_argument("--height", type=int, default=3200, help="page height captured (pixels)")
  p.add_argument("--chromium", default=None, help="browser binary (default: the first of %s on PATH)" % (CANDIDATES,))
  p.add_argument("--timeout", type=float, default=120.0)
  args = p.parse_args(argv)
  if not args.html.is_file():
    print(f"error: {args.html}: no such file", file=sys.stderr)
    return 2
  browser = args.chromium or next((b for b in CANDIDATES if shutil.which(b)), None)
  if browser is None:
    print("error: no Chromium found; install Debian's package: apt-get install -y chromium", file=sys.stderr)
    return 2
  out = args.out or args.html.with_suffix(".png")
  cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--window-size={args.width},{args.height}", f"--screenshot={out.resolve()}", args.html.resolve().as_uri()]
  try:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, check=False)
  except subprocess.TimeoutExpired:
    print(f"error: {browser} did not finish within {args.timeout:g} s", file=sys.stderr)
    return 1
  if proc.returncode != 0 or not out.is_file():
    print(f"error: {browser} failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}", file=sys.stderr)
    return 1
  print(f"wrote {out}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
