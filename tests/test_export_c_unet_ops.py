"""C export of the 1-D UNet ops (upsample2, concat, norm_prelu): gcc-built host harness == integer interpreter.

Random layers (each with its own inputs, several per graph so that one gcc run checks them all) and small
chains norm_prelu -> upsample2 -> concat -> norm_prelu, with 2/4/8-bit signed/unsigned/narrow tensors,
lengths 1..70 (odd and even, La != Lb), negative γ and PReLU slopes, both rounding modes. Inputs include
the all-max, all-min and constant rows (V = eps in the norm). Also: the C integer square root on edge
values, int64 constants in the emitted code, the tiled host path and the deploy network of such a graph.
"""

import dataclasses
import math
import shutil
import subprocess

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jaxbp import integerize as I
from jaxbp.deploy import get_platform, simulate, zoo
from jaxbp.export.c import emit, run_c, tiled
from jaxbp.export.c import kernels as ck
from jaxbp.export.c.emit import c_int
from jaxbp.export.c.host import CFLAGS
from jaxbp.export.c.to_deploy import to_network
from jaxbp.integerize import instnorm
from jaxbp.integerize.builder import GraphBuilder, Quant

HAVE_GCC = shutil.which("gcc") is not None
needs_gcc = pytest.mark.skipif(not HAVE_GCC, reason="gcc not found on PATH: the exported C cannot be compiled")
BITS = st.sampled_from([2, 4, 8])
KINDS = ("upsample2", "concat", "norm_prelu", "chain")
LENGTH = st.integers(1, 70)
L1_RESERVED = 3_500 + 7 * 3_400 + 1_536  # gap8 stacks + runtime: l1_bytes beyond this is the tile area.


def _per(bits: int) -> int:
  """Channel granule of a `bits`-bit tensor (packed along channels)."""
  return 8 // bits if bits < 8 else 1


def _quant(draw, bits: int | None = None, magnitude: float | None = None) -> Quant:
  """A random grid; with `magnitude`, one whose range covers it up to a random factor (some clipping)."""
  bits = draw(BITS) if bits is None else bits
  signed = draw(st.booleans())
  narrow = signed and draw(st.booleans())
  if magnitude is None:
    return Quant(bits, signed, 2.0 ** draw(st.floats(-6, 0)), narrow)
  # Computed outputs are on the kernels' full signed grid (narrow grids only for inputs).
  return Quant(bits, signed, magnitude * 2.0 ** draw(st.floats(-1.5, 1.5)) / 2 ** (bits - signed))


def _mag(q: Quant | I.TensorSpec) -> float:
  """Largest |real value| on the grid (about)."""
  return q.scale * 2 ** (q.bits - 1)


def _channels(draw, *bits: int) -> int:
  """A channel count every one of these bit widths can pack (odd counts when all are 8-bit)."""
  per = max(_per(b) for b in bits)
  return per * draw(st.integers(1, 3 if per > 1 else 6))


def _norm_params(draw, rng, c: int):
  gamma = rng.normal(size=c) * 2.0 ** draw(st.floats(-2, 2))  # both signs
  beta = rng.normal(size=c) * draw(st.sampled_from([0.0, 0.3, 2.0]))
  alpha = rng.uniform(-0.25, 0.5, c)
  alpha[rng.random(c) < 0.2] = 0.0  # plain ReLU channels
  return gamma, beta, alpha


def _norm(draw, b: GraphBuilder, rng, name: str, x: str) -> str:
  c = b.spec(x).channels
  gamma, beta, alpha = _norm_params(draw, rng, c)
  q = _quant(draw, draw(st.sampled_from([b_ for b_ in (2, 4, 8) if c % _per(b_) == 0])),
             2 * np.abs(gamma).max() + np.abs(beta).max())
  return b.norm_prelu(name, x, gamma, beta, alpha, q, eps=draw(st.sampled_from([1e-5, 1e-2, 1.0])))


def _concat_channels(draw, ba: int, bb: int, bo: int) -> tuple[int, int]:
  pairs = [(ca, cb) for ca in range(_per(ba), 13, _per(ba)) for cb in range(_per(bb), 13, _per(bb))
           if (ca + cb) % _per(bo) == 0]
  return draw(st.sampled_from(pairs))


def _layer(draw, b: GraphBuilder, i: int) -> tuple[str, list[str]]:
  """Adds one random layer (or chain) with its own graph inputs; returns (kind, tensors to check)."""
  kind = draw(st.sampled_from(KINDS))
  rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
  name = f"l{i}_{kind}"
  if kind == "concat":
    qa, qb = _quant(draw), _quant(draw)
    bo = draw(BITS)
    ca, cb = _concat_channels(draw, qa.bits, qb.bits, bo)
    n, extra = draw(st.integers(1, 40)), draw(st.integers(0, 9))  # odd extra: the crop start rounds down
    la, lb = (n + extra, n) if draw(st.booleans()) else (n, n + extra)
    a = b.input(f"x{i}a", (la, ca), qa)
    x2 = b.input(f"x{i}b", (lb, cb), qb)
    return kind, [b.concat(name, a, x2, _quant(draw, bo, max(_mag(qa), _mag(qb))))]
  if kind == "upsample2":
    q, bo = _quant(draw), draw(BITS)
    x = b.input(f"x{i}", (draw(LENGTH), _channels(draw, q.bits, bo)), q)
    return kind, [b.upsample2(name, x, _quant(draw, bo, _mag(q)))]
  q = _quant(draw)
  x = b.input(f"x{i}", (draw(LENGTH), _channels(draw, q.bits, 2)), q)  # any output bits fit
  n = _norm(draw, b, rng, f"{name}/norm", x)
  if kind == "norm_prelu":
    return kind, [n]
  u = b.upsample2(f"{name}/up", n, _quant(draw, draw(BITS), _mag(b.spec(n))))
  cat_bits = draw(st.sampled_from([b_ for b_ in (2, 4, 8) if 2 * b.spec(x).channels % _per(b_) == 0]))
  pair = (u, x) if draw(st.booleans()) else (x, u)  # the longer (2L) input first or second
  cat = b.concat(f"{name}/cat", *pair, _quant(draw, cat_bits, max(_mag(b.spec(u)), _mag(q))))
  return kind, [n, u, cat, _norm(draw, b, rng, f"{name}/norm2", cat)]


def _feeds(graph: I.Graph, rng, n: int = 6) -> dict[str, np.ndarray]:
  """Rows: all max, all min, one constant, two-level, random (worst cases of the sums and of V = eps)."""
  feeds = {}
  for t in graph.inputs:
    spec = graph.tensors[t]
    lo, hi = spec.range
    x = rng.integers(lo, hi + 1, (n,) + spec.shape)
    x[0], x[1], x[2] = hi, lo, rng.integers(lo, hi + 1)
    x[3] = np.where(rng.random(spec.shape) < 0.5, lo, hi)
    feeds[t] = x
  return feeds


def _assert_equal(got, ref, names, graph, what: str) -> None:
  for t in names:
    np.testing.assert_array_equal(got[t], ref[t], err_msg=f"{what}: tensor {t!r}: {graph.producer(t)}")


@needs_gcc
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_unet_layers_c_bit_exact(data, tmp_path_factory):
  b = GraphBuilder(rounding=data.draw(st.sampled_from(["half_up", "floor"])))
  layers = [_layer(data.draw, b, i) for i in range(4)]
  checked = [t for _, ts in layers for t in ts]
  graph = b.build(checked)
  feeds = _feeds(graph, np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1))))
  ref = I.run(graph, feeds)
  got = run_c(graph, feeds, tmp_path_factory.mktemp("c"))
  _assert_equal(got, ref, checked, graph, "C")


def _norm_graph(length: int, bits: int, signed: bool, rounding: str, seed: int = 0) -> I.Graph:
  """One norm_prelu with large offsets (|β|/ε_y·2^d beyond int32) on a (length, 8) input."""
  rng = np.random.default_rng(seed)
  b = GraphBuilder(rounding=rounding)
  x = b.input("x", (length, 8), Quant(bits, signed, 0.1, narrow=signed and bits == 2))
  gamma = rng.normal(size=8) * 3
  gamma[:2] = -np.abs(gamma[:2])
  n = b.norm_prelu("norm", x, gamma, rng.normal(size=8), np.linspace(0, 0.5, 8), Quant(4, True, 0.5))
  return b.build([n])


@needs_gcc
@pytest.mark.parametrize("length,bits,signed,rounding", [(1, 8, True, "half_up"), (2, 2, True, "floor"),
                                                          (70, 8, False, "half_up"), (33, 4, True, "floor")])
def test_norm_prelu_edges_c_bit_exact(length, bits, signed, rounding, tmp_path):
  graph = _norm_graph(length, bits, signed, rounding)
  node = graph.node("norm")
  assert np.abs(node.arrays["offset"]).max() > 2 ** 31  # the int64 constants matter
  feeds = _feeds(graph, np.random.default_rng(length), n=8)
  _assert_equal(run_c(graph, feeds, tmp_path), I.run(graph, feeds), ["norm"], graph, "C")


def _raw_norm_fields(rng, x: I.TensorSpec, out: I.TensorSpec, large: bool) -> tuple[dict, dict]:
  """Random norm_prelu fields within `instnorm.validate`'s bounds, scaled so that most outputs land inside
  `out`'s range: small shifts (every rounding shows in the output) or large ones (int64 offsets and rounding
  constants beyond int32)."""
  c, half = x.channels, 1 << (out.bits - 1)
  while True:
    d = int(rng.integers(28, 41) if large else rng.integers(0, 9))
    s, sh, gb = int(rng.integers(0, 12 if large else 4)), int(rng.integers(0, 17)), int(rng.integers(0, 13))
    a = max(0, d + s + out.bits - 1 - gb + int(rng.integers(-1, 2)))  # |U| >> d ~ |g|·2^(a - s - d) ~ half
    attrs = {"eps": int(rng.integers(1, 60)), "s": s, "a": a, "alpha_shift": sh, "d": d,
             "rnd": int(rng.choice([0, (1 << d) >> 1, rng.integers(0, (1 << d) + 1)]))}
    arrays = {"scale": rng.integers(-(1 << gb), (1 << gb) + 1, c).astype(np.int32),
              "offset": rng.integers(-half << d, half << d, c, dtype=np.int64),
              "alpha": rng.integers(-(1 << sh), (1 << sh) + 1, c).astype(np.int32)}
    if all(v < instnorm.LIMIT for v in instnorm.bounds(attrs, arrays, x).values()):
      return attrs, arrays


@needs_gcc
@pytest.mark.parametrize("seed", [0, 1])
def test_norm_prelu_raw_fields_c_bit_exact(seed, tmp_path):
  """Hand-made norm_prelu nodes over the fields' whole range (not only what `instnorm.solve` picks): with small
  shifts d and a, the multiplier's rounded division and the PReLU's floor shift decide the output."""
  rng = np.random.default_rng(seed)
  tensors, nodes = {}, []
  for i in range(12):
    bits, signed = int(rng.choice([2, 4, 8])), bool(rng.integers(2))
    length = int(rng.choice([1, 2, 3, int(rng.integers(4, 71))]))
    x = I.TensorSpec((length, 4 * int(rng.integers(1, 3))), bits, signed, 1.0)
    out = I.TensorSpec(x.shape, int(rng.choice([2, 4, 8])), bool(rng.integers(2)), 1.0)
    attrs, arrays = _raw_norm_fields(rng, x, out, large=i % 3 == 2)
    tensors |= {f"x{i}": x, f"y{i}": out}
    nodes.append(I.Node(f"norm{i}", "norm_prelu", (f"x{i}",), f"y{i}", attrs, arrays))
  graph = I.Graph(tensors, tuple(nodes), tuple(f"x{i}" for i in range(12)),
                  tuple(f"y{i}" for i in range(12))).validate()
  feeds = _feeds(graph, rng)
  _assert_equal(run_c(graph, feeds, tmp_path), I.run(graph, feeds), graph.outputs, graph, "C")


def test_emitted_int64_constants_and_parameter_bytes(tmp_path):
  assert c_int(2 ** 40, "int64_t") == "INT64_C(1099511627776)"
  assert c_int(-(2 ** 61), "int64_t") == "(-INT64_C(2305843009213693952))"
  assert c_int(-(2 ** 31)) == "(-2147483647 - 1)" and c_int(-5) == "-5"
  with pytest.raises(ValueError, match="int64_t"):
    c_int(-(2 ** 63), "int64_t")
  graph = _norm_graph(9, 8, True, "half_up")
  b = GraphBuilder()
  x = b.input("x", (9, 8), Quant(8, True, 0.1))
  up = b.upsample2("up", x, Quant(8, True, 0.1))
  export = emit(graph, tmp_path / "norm")
  src = (tmp_path / "norm" / "network.c").read_text()
  node = graph.node("norm")
  assert f"INT64_C({node.attrs['rnd']})" in src and "static const int64_t n0_offset[8]" in src
  assert export.weight_bytes == 8 * (4 + 8 + 4)  # int32 scale, int64 offset, int32 alpha per channel
  assert emit(b.build([up]), tmp_path / "up").weight_bytes == 8 * (4 + 4)  # int32 k, lam per channel


@needs_gcc
def test_c_isqrt64_and_floor_shift64_exact(tmp_path):
  rng = np.random.default_rng(0)
  roots = [int(r) for r in rng.integers(1, 2 ** 31, 20)] + [1, 2, 3, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1]
  values = sorted({0, 1, 2, 3, 4, 5, 2 ** 62 - 1, 2 ** 62, 2 ** 64 - 1}
                  | {v for r in roots for v in (r * r - 1, r * r, r * r + 1)}
                  | {int(v) for v in rng.integers(0, 2 ** 62, 20)})
  shifts = [(v, d) for v in (-(2 ** 62), -(2 ** 40) - 1, -7, -1, 0, 1, 7, 2 ** 62 - 1) for d in (0, 1, 3, 31, 40, 62)]
  main = ("#include <inttypes.h>\n#include <stdio.h>\n#include \"kernels.h\"\nint main(void) {\n"
          + "".join(f"  printf(\"%\" PRIu64 \"\\n\", q_isqrt64(UINT64_C({v})));\n" for v in values)
          + "".join(f"  printf(\"%\" PRId64 \"\\n\", q_floor_shift64({c_int(v, 'int64_t')}, {d}));\n"
                    for v, d in shifts)
          + "  return 0;\n}\n")
  (tmp_path / "kernels.h").write_text(ck.KERNELS_H)
  (tmp_path / "kernels.c").write_text(ck.KERNELS_C)
  (tmp_path / "t.c").write_text(main)
  subprocess.run(["gcc", *CFLAGS, "-o", "t", "t.c", "kernels.c"], cwd=tmp_path, check=True)
  out = [int(s) for s in subprocess.run([str(tmp_path / "t")], capture_output=True, text=True,
                                        check=True).stdout.split()]
  assert out[:len(values)] == [math.isqrt(v) for v in values]
  assert out[len(values):] == [v >> d for v, d in shifts]


def _unet_graph(rng, bits: tuple[int, int, int]) -> I.Graph:
  """One input: conv -> norm_prelu -> upsample2 -> concat(up, conv output) -> conv (a UNet decoder step)."""
  b_norm, b_up, b_cat = bits
  b = GraphBuilder()
  x = b.input("x", (23, 4), Quant(8, True, 0.05))
  w, sw = I.quantize_weight(rng.normal(size=(8, 3, 4)), 8)
  h = b.conv("enc", x, w, sw, w_bits=8, stride=2, padding=1, out=Quant(8, True, 0.1), bias=rng.normal(size=8))
  n = b.norm_prelu("norm", h, rng.normal(size=8), rng.normal(size=8) * 0.3, rng.uniform(0, 0.5, 8),
                   Quant(b_norm, True, 2.0 ** (2 - b_norm)))
  u = b.upsample2("up", n, Quant(b_up, b_up != 2, 2.0 ** (2 - b_up)))
  c = b.concat("cat", u, h, Quant(b_cat, True, 2.0 ** (3 - b_cat)))
  w, sw = I.quantize_weight(rng.normal(size=(4, 3, 16)), 4)
  y = b.conv("dec", c, w, sw, w_bits=4, padding=1, out=Quant(8, True, 0.2))
  return b.build([y, c])


@needs_gcc
@pytest.mark.parametrize("bits", [(8, 8, 8), (4, 2, 4)])
def test_tiled_unet_graph_bit_exact(bits, tmp_path):
  graph = _unet_graph(np.random.default_rng(1), bits)
  p = get_platform("gap8", l1_bytes=L1_RESERVED + 900)  # tiles the decoder conv
  res = tiled.emit_tiled(graph, p, tmp_path / "emit")
  assert res.tiled == ("enc", "dec") and res.fallback == ("norm", "up", "cat")
  assert res.n_tiles > 2
  feeds = _feeds(graph, np.random.default_rng(2))["x"]
  ref = I.run(graph, feeds)
  got = tiled.run_tiled(graph, p, feeds, tmp_path / "run")
  _assert_equal(got, ref, ["dec", "cat"], graph, "tiled C")
  _assert_equal(run_c(graph, feeds, tmp_path / "plain"), ref, ["dec", "cat"], graph, "C")


def test_deploy_network_of_unet_ops_mirrors_zoo_and_simulates():
  graph = _unet_graph(np.random.default_rng(0), (4, 2, 4))
  net = to_network(graph)
  assert [(l.name, l.op, l.mode) for l in net.layers] == [
      ("enc", "conv", ""), ("norm", "elementwise", "norm"), ("up", "elementwise", "resize"),
      ("cat", "elementwise", "concat"), ("dec", "conv", "")]
  norm, up, cat = net.layer("norm"), net.layer("up"), net.layer("cat")
  assert norm.in_shape == norm.out_shape == (1, 12, 8) and norm.bits_out == 4
  assert up.out_shape == (1, 24, 8) and up.bits_in == 4 and up.bits_out == 2
  assert cat.inputs == ("up", "enc") and cat.in2_shape == (1, 12, 8) and cat.bits_in2 == 8
  assert cat.out_shape == (1, 12, 16) and cat.bits_in == 2
  # As the zoo's UNet1d describes them (its layers are all 8-bit): same kinds, modes, shapes, operand order.
  zb = zoo.GraphBuilder((1, 23, 4))
  zb.shapes["enc"] = (1, 12, 8)
  zb.add("norm", "elementwise", "enc", (1, 12, 8), mode="norm")
  zb.add("up", "elementwise", "norm", (1, 24, 8), mode="resize")
  zb.add("cat", "elementwise", "up", (1, 12, 16), src2="enc", mode="concat")
  for want in zb.layers:
    got = net.layer(want.name)
    assert dataclasses.replace(got, bits_in=8, bits_out=8, bits_in2=8 if got.bits_in2 else None) == want
  report = simulate(net, get_platform("gap8"))
  assert report.fits
  cycles = {l.name: l.cycles for l in report.layers}
  assert all(cycles[k] > 0 for k in ("norm", "up", "cat"))


def test_deploy_network_needs_one_graph_input():
  b = GraphBuilder()
  a = b.input("a", (10, 4), Quant(8, True, 0.1))
  s = b.input("skip", (13, 4), Quant(8, True, 0.1))
  graph = b.build([b.concat("cat", a, s, Quant(8, True, 0.1))])
  with pytest.raises(ValueError, match="exactly one input"):
    to_network(graph)
