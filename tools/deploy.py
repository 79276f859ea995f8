"""Deployment simulator CLI: latency / energy / memory of a network on a PULP cluster, and latency tables.

  python tools/deploy.py simulate --model mobilenet_v1 --width-mult 1.0 --resolution 128 --platform gap8 --bits 8
  python tools/deploy.py simulate --model resnet1d --dataset ppgbp --platform gap8 --freq-mhz 100 --json
  python tools/deploy.py simulate --model mobilenet_v1 --width-mult 0.25 --resolution 128 --platform gap8 \
      --tiler dory --compare-dory runs/dory_mnv1   # DORY's generated tiles beside ours
  python tools/deploy.py simulate --model runs/sweep/resnet1d_ppgbp/candidates/candidate_03.json --platform xpulpnn-v2 \
      --config bits.json --no-l3
  python tools/deploy.py latency-table --model resnet1d --dataset ppgbp --platform xpulpnn-v1 --out runs/ld
  python tools/deploy.py free-bits --model resnet1d --dataset ppgbp --platform xpulpnn-v1 --start 8,4
  python tools/deploy.py free-bits --model mobilenet_v1 --width-mult 0.75 --resolution 224 --platform all
  python tools/deploy.py calibrate            # simulator vs the public measured figures (markdown)
  python tools/deploy.py zoo                  # the model-zoo table of docs/deployment.md (markdown)

MODEL: mobilenet_v1 | mobilenet_v2 (--width-mult, --resolution), resnet1d | unet1d (--dataset), or a path to
an exported candidate JSON (--rotation for sweep candidates). PLATFORM: gap8 | xpulpv2 | xpulpnn-v1 |
xpulpnn-v2 or a platform JSON file; --set KEY=VALUE overrides fields (kernel.x / power.x for nested ones).
--bits 4: homogeneous 4-bit network except the network input and residual-add outputs (8 bit).
--config: JSON {layer: [b_in, b_w]} or {layer: {"bits_in", "bits_w", "bits_out"}} (unlisted layers: 8 bit).
--tiler dory (default): the tiles and buffering DORY generates for the platform's DORY target (GAP8: single
buffers, blocking DMA); --tiler jaxbp: jaxbp's own tiler (what the tiled C exporter runs, double-buffered).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jaxbp.deploy import calibration, dory_compare, latency_table, zoo  # noqa: E402
from jaxbp.deploy.layers import Network, with_layer_bits, with_uniform_bits  # noqa: E402
from jaxbp.deploy.platforms import PLATFORMS, Platform, get_platform, load_platform  # noqa: E402
from jaxbp.deploy.simulator import simulate  # noqa: E402
from jaxbp.deploy.tiler import DEFAULT_TILER, TILERS  # noqa: E402
from jaxbp.freebits import free_bits, study  # noqa: E402


def _platform(args) -> Platform:
  p = load_platform(args.platform) if args.platform.endswith(".json") else get_platform(args.platform)
  overrides = {}
  for item in args.set or ():
    key, sep, value = item.partition("=")
    if not sep:
      raise SystemExit(f"--set expects KEY=VALUE, got {item!r}")
    overrides[key] = value
  if overrides:
    p = p.replace(**overrides)
  if args.freq_mhz is not None:
    p = p.replace(freq_mhz=args.freq_mhz)
  if getattr(args, "no_l3", False):
    p = p.replace(l3_enabled=False)
  return p


def _network(args) -> Network:
  net = zoo.get_model(args.model, width_mult=args.width_mult, resolution=args.resolution, dataset=args.dataset,
                      rotation=args.rotation)
  if getattr(args, "config", None):
    try:
      cfg = json.loads(Path(args.config).read_text())
    except (OSError, json.JSONDecodeError) as e:
      raise SystemExit(f"cannot read bit config {args.config}: {e}") from None
    return with_layer_bits(with_uniform_bits(net, 8), cfg)
  return with_uniform_bits(net, getattr(args, "bits", 8) or 8)


def _common(p: argparse.ArgumentParser) -> None:
  p.add_argument("--model", required=True, help="mobilenet_v1 | mobilenet_v2 | resnet1d | unet1d | candidate JSON")
  p.add_argument("--platform", required=True, help=f"{' | '.join(PLATFORMS)} or a platform JSON file")
  p.add_argument("--width-mult", type=float, default=1.0, help="MobileNet width multiplier")
  p.add_argument("--resolution", type=int, default=224, help="MobileNet input resolution")
  p.add_argument("--dataset", default="ppgbp", help="BP seed dataset: ppgbp | bcg | sensors | uci")
  p.add_argument("--rotation", type=int, default=0, help="rotation of a sweep candidate JSON")
  p.add_argument("--freq-mhz", type=float, default=None, help="cluster clock (default: the platform's)")
  p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a platform field (repeatable)")


def _tiler_arg(p: argparse.ArgumentParser) -> None:
  p.add_argument("--tiler", choices=TILERS, default=DEFAULT_TILER,
                 help="dory: the tiles/buffering DORY generates (default); jaxbp: jaxbp's tiler (tiled C path)")


def cmd_simulate(args) -> int:
  net = _network(args)
  rep = simulate(net, _platform(args), tiler=args.tiler)
  rows = None
  if args.compare_dory:
    rows = dory_compare.compare(rep, dory_compare.read_dory_run(args.compare_dory), dory_compare.dory_layers(net))
  if args.json:
    out = rep.to_json()
    if rows is not None:
      out["compare_dory"] = {"run": str(args.compare_dory), "same": sum(r.same for r in rows), "layers": len(rows),
                             "rows": [{"layer": r.layer, "tile": list(r.tile), "dory_layer": r.dory_layer,
                                       "dory_kernel": r.dory_kernel, "dory_tile": list(r.dory_tile or []),
                                       "same": r.same} for r in rows]}
    print(json.dumps(out))
    if not rep.fits:
      print("does not fit: " + "; ".join(rep.reasons), file=sys.stderr)
  else:
    print(rep.table())
    if rows is not None:
      print(f"\nL1 tiles beside DORY's ({args.compare_dory}):\n")
      print(dory_compare.table(rows))
  return 0


def cmd_latency_table(args) -> int:
  p, net = _platform(args), _network(args)
  pairs = [tuple(int(b) for b in s.split(",")) for s in args.pairs] if args.pairs else latency_table.ALL_PAIRS
  ld = latency_table.profile(net, p, pairs, args.bits_out if args.bits_out == "in" else int(args.bits_out),
                             tiler=args.tiler)
  out = Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  ld.save_json(out / "latency.json")
  ld.save_csv(out / "latency.csv")
  per_layer = [{"layer": k[0], "b_in": k[1], "b_w": k[2], "cycles": round(v)} for k, v in ld.per_layer().items()]
  (out / "per_layer.json").write_text(json.dumps(per_layer, indent=1))
  written = ["latency.json", "latency.csv", "per_layer.json"]
  if args.model in ("resnet1d", "unet1d"):
    from jaxbp import cost, models  # pylint: disable=import-outside-toplevel
    from jaxbp.data.specs import get_spec  # pylint: disable=import-outside-toplevel
    from jaxbp.nas.supernet import supernet  # pylint: disable=import-outside-toplevel
    shapes = cost.trace(supernet(models.seed_config(args.model, args.dataset)), get_spec(args.dataset).window)
    table = latency_table.slot_table(shapes, p, args.slot_bits, tiler=args.tiler)
    (out / "slot_latency.json").write_text(json.dumps(
        [{"layer": k[0], "op": k[1], "cycles": round(v)} for k, v in table.items()], indent=1))
    written.append("slot_latency.json")
  print(json.dumps({"out": str(out), "files": written, "layer_types": len(ld.types), "entries": len(ld.entries)}))
  return 0


def _free_bits_platforms(name: str) -> list[str]:
  """`--platform` of free-bits: one platform, a comma list, or "all" (the three ISAs: xpulpv2, xpulpnn-v1/v2)."""
  return list(study.ISAS) if name == "all" else name.split(",")


def cmd_free_bits(args) -> int:
  net = _network(argparse.Namespace(**{**vars(args), "config": None, "bits": 8}))
  names = _free_bits_platforms(args.platform)
  if args.config is None and args.start is None:  # the latency study: b-bit baseline vs b-bit + free bits.
    studies = []
    for name in names:
      p = _platform(argparse.Namespace(**{**vars(args), "platform": name}))
      ld = latency_table.load_latency_dict(args.latency) if args.latency else None
      studies.append(study.latency_study(net, p, args.study_bits, ld=ld))
    if args.json:
      print(json.dumps({"model": net.name, "studies": [s.to_json() for s in studies]}))
    else:
      print(study.markdown(net.name, studies))
    return 0
  if len(names) != 1:
    raise ValueError("--config/--start apply Free Bits on one platform; got " + ", ".join(names))
  if args.latency:
    ld = latency_table.load_latency_dict(args.latency)
  else:
    ld = latency_table.profile(net, _platform(args))
  if args.config:
    try:
      config = {k: tuple(v) for k, v in json.loads(Path(args.config).read_text()).items()}
    except (OSError, json.JSONDecodeError, TypeError) as e:
      raise SystemExit(f"cannot read bit config {args.config}: {e}") from None
  else:
    start = tuple(int(b) for b in args.start.split(","))
    config = {l.name: start for l in net.layers}
  res = free_bits(config, ld.per_layer("ms"), types=ld.layers, network_cost=study.network_cost(ld, net))
  print(json.dumps({"latency_before_ms": res.latency_before, "latency_after_ms": res.latency_after,
                    "changes": {k: [list(a), list(b)] for k, (a, b) in res.changes.items()},
                    "config": {k: list(v) for k, v in res.config.items()}}))
  return 0


def cmd_calibrate(args) -> int:
  for tiler in TILERS:
    print(f"tiler {tiler}\n")
    print(calibration.markdown(calibration.figures(tiler=tiler)))
    print()
  print(calibration.conv_cost_table())
  print()
  print(calibration.ops_cost_table())
  return 0


ZOO_MOBILENETS = (("mobilenet_v1", 1.0, 128), ("mobilenet_v1", 0.75, 224))
ZOO_SEEDS = (("resnet1d", "ppgbp"), ("resnet1d", "bcg"), ("resnet1d", "sensors"), ("resnet1d", "uci"),
             ("unet1d", "bcg"), ("unet1d", "sensors"), ("unet1d", "uci"))


def cmd_zoo(args) -> int:
  rows = ["| model | bits | platform | latency ms | energy mJ | MAC/cycle | fits | uses L3 | peak L2 B | weights B |",
          "|---|---|---|---|---|---|---|---|---|---|"]
  for model, wm, res in ZOO_MOBILENETS:
    base = zoo.get_model(model, width_mult=wm, resolution=res)
    for bits in (8, 4):
      net = with_uniform_bits(base, bits)
      for name in PLATFORMS:
        r = simulate(net, get_platform(name), freq_mhz=args.freq_mhz, tiler=args.tiler)
        rows.append(f"| {net.name} | {bits} | {name} | {r.latency_ms:.1f} | {r.energy_mj:.2f} | {r.mac_per_cycle:.2f} | "
                    f"{r.fits} | {r.uses_l3} | {r.peak_l2_bytes:,} | {r.weight_bytes:,} |")
  print(f"MobileNets at {args.freq_mhz:g} MHz\n")
  print("\n".join(rows))
  rows = [("| seed | MACs | weights B | L2-only verdict | latency ms (L2 only) | latency ms (with L3) "
           "| energy mJ (with L3) | peak L2 B (with L3) |"), "|---|---|---|---|---|---|---|---|"]
  p = get_platform("gap8")
  for model, ds in ZOO_SEEDS:
    net = with_uniform_bits(zoo.bp_seed(model, ds), 8)
    l2 = simulate(net, p, freq_mhz=args.freq_mhz, l3=False, tiler=args.tiler)
    l3 = simulate(net, p, freq_mhz=args.freq_mhz, l3=True, tiler=args.tiler)
    verdict = "fits" if l2.fits else "does not fit: " + "; ".join(l2.reasons)
    lat = f"{l2.latency_ms:.2f}" if l2.fits else "-"
    rows.append(f"| {net.name} | {net.macs:,} | {l2.weight_bytes:,} | {verdict} | {lat} | {l3.latency_ms:.2f} | "
                f"{l3.energy_mj:.3f} | {l3.peak_l2_bytes:,} |")
  print(f"\nBP seeds, int8, gap8 at {args.freq_mhz:g} MHz\n")
  print("\n".join(rows))
  return 0


def main(argv=None) -> int:
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  sub = ap.add_subparsers(dest="cmd", required=True)
  s = sub.add_parser("simulate", help="simulate one network on one platform")
  _common(s)
  g = s.add_mutually_exclusive_group()
  g.add_argument("--bits", type=int, choices=(8, 4, 2), default=None, help="homogeneous bit width (default 8)")
  g.add_argument("--config", default=None, help="per-layer bit config JSON")
  s.add_argument("--no-l3", action="store_true", help="L2-only deployment (report 'does not fit' if needed)")
  s.add_argument("--json", action="store_true", help="print one JSON object")
  _tiler_arg(s)
  s.add_argument("--compare-dory", default=None, metavar="RUN_DIR",
                 help="DORY run (dory_report.json or DORY's logs/.../06_DORY_HW_tiled_graph.json): tiles beside ours")
  s.set_defaults(fn=cmd_simulate)
  t = sub.add_parser("latency-table", help="write a latency dictionary (JSON, CSV) for Free Bits / cost functions")
  _common(t)
  t.add_argument("--out", required=True, help="output folder")
  t.add_argument("--pairs", nargs="*", default=None, metavar="B_IN,B_W", help="allowed pairs (default all of 2/4/8)")
  t.add_argument("--bits-out", default="in", help="output bits while profiling: 'in' (= b_in) or 2/4/8")
  t.add_argument("--slot-bits", type=int, default=8, help="bits of the per-(slot, op) NAS table")
  _tiler_arg(t)
  t.set_defaults(fn=cmd_latency_table)
  f = sub.add_parser("free-bits", help="apply Free Bits to a bit config over a (simulated) latency dictionary")
  _common(f)
  f.add_argument("--latency", default=None, help="latency.json from latency-table (default: profile now)")
  g = f.add_mutually_exclusive_group()
  g.add_argument("--config", default=None, help="JSON {layer: [b_in, b_w]}")
  g.add_argument("--start", default=None, metavar="B_IN,B_W", help="homogeneous start configuration")
  f.add_argument("--study-bits", type=int, choices=(4, 2), default=4,
                 help="without --config/--start: the paper's homogeneous baseline width vs it + free bits")
  f.add_argument("--json", action="store_true", help="print one JSON object (study mode)")
  f.set_defaults(fn=cmd_free_bits)
  c = sub.add_parser("calibrate", help="simulator vs the public measured figures (markdown)")
  c.set_defaults(fn=cmd_calibrate)
  z = sub.add_parser("zoo", help="model-zoo latency/energy/fit table (markdown)")
  z.add_argument("--freq-mhz", type=float, default=100.0)
  _tiler_arg(z)
  z.set_defaults(fn=cmd_zoo)
  args = ap.parse_args(argv)
  try:
    return args.fn(args)
  except (ValueError, KeyError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2


if __name__ == "__main__":
  sys.exit(main())
