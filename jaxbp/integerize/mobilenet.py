"""MobileNetV1 as a mixed-precision integer graph (random weights, scales calibrated on random images).

A 2-D workload for the integerizer and both exporters: a 3x3/2 stem conv, 13 depthwise-separable blocks
(3x3 depthwise + pointwise, BatchNorm folded, ReLU), global average pooling and a linear classifier with
an int32 logit output. Float weights are He-normal with random BatchNorm statistics; activation scales are
calibrated by post-training quantization: a float forward pass over calibration images, the `percentile`
of each ReLU output over the clip range of its grid, layer by layer on the already-quantized prefix so that
every layer is calibrated on the integer network's own inputs.

  cfg = MobileNetConfig(width=0.25, resolution=128)
  graph = mobilenet_v1_graph(cfg, calibration_images(cfg, 8, seed=0))
  logits = jaxbp.integerize.run(graph, quantize(images, graph.tensors["image"]))["logits"]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from jaxbp.integerize.builder import GraphBuilder, Quant
from jaxbp.integerize.graph import Graph
from jaxbp.integerize.interpreter import apply_node, conv
from jaxbp.integerize.quantize import quantize, quantize_weight

# (stride, output channels at width 1) of the 13 depthwise-separable blocks.
BLOCKS = ((1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512), (1, 512), (1, 512), (1, 512), (1, 512),
          (1, 512), (2, 1024), (1, 1024))


@dataclasses.dataclass(frozen=True)
class MobileNetConfig:
  """MobileNetV1 hyper-parameters.

  Attributes:
    width: width multiplier (0.25: channels 8..256).
    resolution: input height = width (pixels).
    n_classes: classifier outputs.
    bits: {layer: (weight bits, output activation bits)} overriding `default_bits` (the classifier's output
      is its int32 accumulator; its entry's second value is ignored).
    input_bits: bits of the (signed) input image grid.
    percentile: calibration percentile of each activation range.
  """

  width: float = 0.25
  resolution: int = 128
  n_classes: int = 1000
  bits: Mapping[str, tuple[int, int]] | None = None
  input_bits: int = 8
  percentile: float = 99.9

  def channels(self, c: int) -> int:
    return max(8, int(c * self.width))

  def layer_names(self) -> list[str]:
    names = ["stem"]
    for i in range(len(BLOCKS)):
      names += [f"block{i}/dw", f"block{i}/pw"]
    return names + ["pool", "fc"]


def default_bits(cfg: MobileNetConfig) -> dict[str, tuple[int, int]]:
  """A mixed-precision assignment: 8-bit stem, classifier and depthwise weights; pointwise weights 4-bit in the
  early blocks and 2-bit in the wide middle ones; activations alternate 8/4 bits."""
  bits = {"stem": (8, 8), "pool": (8, 8), "fc": (8, 8)}
  for i in range(len(BLOCKS)):
    bits[f"block{i}/dw"] = (8, 8 if i % 2 == 0 else 4)
    bits[f"block{i}/pw"] = (2 if 5 <= i <= 10 else 4, 4 if i % 2 == 0 else 8)
  return bits


def float_weights(cfg: MobileNetConfig, seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
  """Random float weights, BN folded: {layer: {"w": [Cout][KH][KW][Cin/g], "b": (Cout,)}}."""
  rng = np.random.default_rng(seed)

  def folded(cout: int, kernel: tuple[int, ...]) -> dict[str, np.ndarray]:
    fan_in = int(np.prod(kernel))
    w = rng.normal(0.0, np.sqrt(2.0 / fan_in), (cout,) + kernel)
    gamma, beta = rng.uniform(0.5, 1.5, cout), rng.normal(0.0, 0.1, cout)
    mean, var = rng.normal(0.0, 0.1, cout), rng.uniform(0.5, 1.5, cout)
    a = gamma / np.sqrt(var + 1e-5)
    return {"w": w * a.reshape((-1,) + (1,) * len(kernel)), "b": beta - a * mean}

  c = cfg.channels(32)
  weights = {"stem": folded(c, (3, 3, 3))}
  for i, (_, cout) in enumerate(BLOCKS):
    cout = cfg.channels(cout)
    weights[f"block{i}/dw"] = folded(c, (3, 3, 1))
    weights[f"block{i}/pw"] = folded(cout, (1, 1, c))
    c = cout
  weights["fc"] = {"w": rng.normal(0.0, np.sqrt(1.0 / c), (cfg.n_classes, c)), "b": rng.normal(0.0, 0.01, cfg.n_classes)}
  return weights


def calibration_images(cfg: MobileNetConfig, n: int, seed: int = 0) -> np.ndarray:
  """Random images (n, H, W, 3) in [-1, 1]: smooth blobs plus noise (not white noise: spatial structure)."""
  rng = np.random.default_rng(seed)
  r = cfg.resolution
  coarse = rng.uniform(-1, 1, (n, r // 8 + 1, r // 8 + 1, 3))
  img = np.repeat(np.repeat(coarse, 8, axis=1), 8, axis=2)[:, :r, :r]
  return np.clip(img + rng.normal(0, 0.2, img.shape), -1, 1)


def _geometry(name: str) -> tuple[int, int]:
  """(stride, groups flag) of a conv layer: stride, and 1 if depthwise."""
  if name == "stem":
    return 2, 0
  i = int(name.split("/")[0][5:])
  return (BLOCKS[i][0], 1) if name.endswith("dw") else (1, 0)


def mobilenet_v1_graph(cfg: MobileNetConfig, images: np.ndarray, seed: int = 0) -> Graph:
  """The integer MobileNetV1 graph: input "image" (H, W, 3), output "logits" (n_classes,) int32."""
  bits = {**default_bits(cfg), **dict(cfg.bits or {})}
  weights = float_weights(cfg, seed)
  b = GraphBuilder({"model": "mobilenet_v1", "width": cfg.width, "resolution": cfg.resolution,
                    "bits": {k: list(v) for k, v in bits.items()}, "seed": seed})
  x_scale = float(np.abs(images).max()) / (2 ** (cfg.input_bits - 1) - 1)
  x = b.input("image", (cfg.resolution, cfg.resolution, 3), Quant(cfg.input_bits, True, x_scale))
  env = {"image": quantize(images, b.spec(x))}  # the integer network's tensors on the calibration images

  def calibrated(name: str, real: np.ndarray, b_out: int) -> Quant:
    top = float(np.percentile(real, cfg.percentile))
    return Quant(b_out, False, max(top, 1e-8) / (2 ** b_out - 1))

  def current(t: str) -> np.ndarray:
    """Real values of tensor t in the integer network built so far (runs the nodes added since)."""
    for node in b.nodes:
      if node.output not in env:
        env[node.output] = apply_node(node, [env[i] for i in node.inputs], [b.spec(i) for i in node.inputs],
                                      b.spec(node.output))
    return b.spec(t).dequantize(env[t])

  h = x
  for name in cfg.layer_names()[:-2]:
    stride, dw = _geometry(name)
    w_bits, out_bits = bits[name]
    wf = weights[name]
    xin = current(h)
    groups = xin.shape[-1] if dw else 1
    pad = 1 if wf["w"].shape[1] == 3 else 0
    real = np.maximum(conv(xin, wf["w"], (stride, stride), ((pad, pad), (pad, pad)), groups, integer=False)
                      + wf["b"], 0)
    w, sw = quantize_weight(wf["w"], w_bits, name=name)
    h = b.conv(name, h, w, sw, w_bits=w_bits, bias=wf["b"], stride=stride, padding=pad, groups=groups,
               out=calibrated(name, real, out_bits))
  h = b.global_avgpool("pool", h, calibrated("pool", current(h).mean(axis=(1, 2)), bits["pool"][1]))
  w, sw = quantize_weight(weights["fc"]["w"], bits["fc"][0], name="fc")
  b.linear("logits", h, w, sw, w_bits=bits["fc"][0], bias=weights["fc"]["b"])
  return b.build(["logits"])


def float_logits(cfg: MobileNetConfig, images: np.ndarray, seed: int = 0) -> np.ndarray:
  """Logits of the float network (same random weights) on real-valued images (n, H, W, 3)."""
  weights = float_weights(cfg, seed)
  h = images
  for name in cfg.layer_names()[:-2]:
    stride, dw = _geometry(name)
    wf = weights[name]
    pad = 1 if wf["w"].shape[1] == 3 else 0
    h = np.maximum(conv(h, wf["w"], (stride, stride), ((pad, pad), (pad, pad)), h.shape[-1] if dw else 1,
                        integer=False) + wf["b"], 0)
  return h.mean(axis=(1, 2)) @ weights["fc"]["w"].T + weights["fc"]["b"]
