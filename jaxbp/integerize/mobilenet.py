"""MobileNetV1 / V2 as integer graphs (random weights, scales calibrated on random images).

The layers are `jaxbp.models.mobilenet.MobileNetConfig(...).layers()` (the one description of both networks:
block tables, channel rounding, names, residual sources); this module adds weights, bit widths and scales.
Float weights are He-normal with random BatchNorm statistics folded in; activation scales are calibrated by
post-training quantization, layer by layer on the already-quantized prefix (every layer is calibrated on the
integer network's own inputs): the `percentile` of each ReLU output (unsigned grid), or of |y| for the V2
linear bottlenecks and residual adds (signed grid). ReLU6 is modelled as ReLU (the calibrated clip bounds it).
The classifier outputs its int32 accumulator, tensor "logits".

  cfg = MobileNetConfig("v2", width=0.35, resolution=96, bits="8")
  graph = mobilenet_graph(cfg, calibration_images(cfg, 8, seed=0))
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
from jaxbp.models import mobilenet as model

BITS = ("8", "4", "mixed")


@dataclasses.dataclass(frozen=True)
class MobileNetConfig:
  """An integer MobileNet.

  Attributes:
    width: width multiplier (V1-0.25: channels 8..256).
    resolution: input height = width (pixels).
    n_classes: classifier outputs.
    bits: "8" (all 8-bit), "4" (4-bit weights and activations; 8-bit first conv, classifier and pool), "mixed"
      (`mixed_bits`), or {layer: (weight bits, output activation bits)} overriding "mixed" (the classifier's
      output is its int32 accumulator; its second value is ignored).
    input_bits: bits of the (signed) input image grid.
    percentile: calibration percentile of each activation range.
    version: "v1" | "v2".
  """

  width: float = 0.25
  resolution: int = 128
  n_classes: int = 1000
  bits: str | Mapping[str, tuple[int, int]] | None = "mixed"
  input_bits: int = 8
  percentile: float = 99.9
  version: str = "v1"

  @property
  def model(self) -> model.MobileNetConfig:
    return model.MobileNetConfig(self.version, self.width, self.resolution, self.n_classes)

  def layer_names(self) -> list[str]:
    return [layer.name for layer in self.model.layers()]


def mixed_bits(cfg: MobileNetConfig) -> dict[str, tuple[int, int]]:
  """A mixed-precision assignment: 8-bit first conv, classifier, pool and adds; depthwise weights 8-bit with 8/4-bit
  outputs alternating by block; 1x1 weights 4-bit in the early and late blocks, 2-bit in the middle ones, outputs
  alternating 4/8 bits."""
  layers = cfg.model.layers()
  blocks = sorted({int(l.block[5:]) for l in layers if l.block})
  lo, hi = blocks[len(blocks) * 5 // 13], blocks[len(blocks) * 11 // 13]
  bits = {}
  for l in layers:
    i = int(l.block[5:]) if l.block else -1
    if l.kind == "dw":
      bits[l.name] = (8, 8 if i % 2 else 4)
    elif l.kind == "pw" and l.block:
      bits[l.name] = (2 if lo <= i < hi else 4, 4 if i % 2 else 8)
    else:
      bits[l.name] = (8, 8)
  return bits


def layer_bits(cfg: MobileNetConfig) -> dict[str, tuple[int, int]]:
  """{layer: (weight bits, output bits)} of `cfg.bits`."""
  names = cfg.layer_names()
  if cfg.bits == "8":
    return {n: (8, 8) for n in names}
  if cfg.bits == "4":
    return {l.name: (8, 8) if l.kind in ("conv", "pool", "fc", "add") else (4, 4) for l in cfg.model.layers()}
  if cfg.bits in (None, "mixed"):
    return mixed_bits(cfg)
  if isinstance(cfg.bits, str):
    raise ValueError(f"MobileNetConfig: field 'bits' must be one of {BITS} or a mapping, got {cfg.bits!r}")
  unknown = set(cfg.bits) - set(names)
  if unknown:
    raise ValueError(f"MobileNetConfig: field 'bits' names unknown layers {sorted(unknown)}; layers: {names}")
  return {**mixed_bits(cfg), **dict(cfg.bits)}


def float_weights(cfg: MobileNetConfig, seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
  """Random float weights, BN folded: {layer: {"w": [Cout][KH][KW][Cin/g] (fc: [Cout][Cin]), "b": (Cout,)}}."""
  rng = np.random.default_rng(seed)
  weights = {}
  for l in cfg.model.layers():
    if l.kind == "fc":
      weights[l.name] = {"w": rng.normal(0.0, np.sqrt(1.0 / l.cin), (l.cout, l.cin)),
                         "b": rng.normal(0.0, 0.01, l.cout)}
    elif l.kind in ("conv", "dw", "pw"):
      kernel = (l.kernel, l.kernel, 1 if l.kind == "dw" else l.cin)
      fan_in = int(np.prod(kernel))
      gain = 1.0 if l.act == "none" else 2.0
      w = rng.normal(0.0, np.sqrt(gain / fan_in), (l.cout,) + kernel)
      gamma, beta = rng.uniform(0.5, 1.5, l.cout), rng.normal(0.0, 0.1, l.cout)
      mean, var = rng.normal(0.0, 0.1, l.cout), rng.uniform(0.5, 1.5, l.cout)
      a = gamma / np.sqrt(var + 1e-5)
      weights[l.name] = {"w": w * a.reshape(-1, 1, 1, 1), "b": beta - a * mean}
  return weights


def calibration_images(cfg: MobileNetConfig, n: int, seed: int = 0) -> np.ndarray:
  """Random images (n, H, W, 3) in [-1, 1]: smooth blobs plus noise (not white noise: spatial structure)."""
  rng = np.random.default_rng(seed)
  r = cfg.resolution
  coarse = rng.uniform(-1, 1, (n, r // 8 + 1, r // 8 + 1, 3))
  img = np.repeat(np.repeat(coarse, 8, axis=1), 8, axis=2)[:, :r, :r]
  return np.clip(img + rng.normal(0, 0.2, img.shape), -1, 1)


def _float_layer(l: model.MobileNetLayer, wf: dict[str, np.ndarray], xs: list[np.ndarray]) -> np.ndarray:
  """The float layer on real inputs (ReLU for act != "none")."""
  if l.kind == "add":
    return xs[0] + xs[1]
  if l.kind == "pool":
    return xs[0].mean(axis=(1, 2))
  if l.kind == "fc":
    return xs[0] @ wf["w"].T + wf["b"]
  p = l.padding
  y = conv(xs[0], wf["w"], (l.stride, l.stride), ((p, p), (p, p)), l.groups, integer=False) + wf["b"]
  return y if l.act == "none" else np.maximum(y, 0)


def mobilenet_graph(cfg: MobileNetConfig, images: np.ndarray, seed: int = 0) -> Graph:
  """The integer MobileNet graph: input "image" (H, W, 3), output "logits" (n_classes,) int32; other nodes are
  named as the model's layers."""
  bits = layer_bits(cfg)
  weights = float_weights(cfg, seed)
  b = GraphBuilder({"model": f"mobilenet_{cfg.version}", "width": cfg.width, "resolution": cfg.resolution,
                    "bits": {k: list(v) for k, v in bits.items()}, "seed": seed})
  x_scale = float(np.abs(images).max()) / (2 ** (cfg.input_bits - 1) - 1)
  x = b.input("image", (cfg.resolution, cfg.resolution, 3), Quant(cfg.input_bits, True, x_scale))
  env = {"image": quantize(images, b.spec(x))}  # the integer network's tensors on the calibration images
  names = {model.NETWORK_INPUT: x}

  def current(t: str) -> np.ndarray:
    """Real values of tensor t in the integer network built so far (runs the nodes added since)."""
    for node in b.nodes:
      if node.output not in env:
        env[node.output] = apply_node(node, [env[i] for i in node.inputs], [b.spec(i) for i in node.inputs],
                                      b.spec(node.output))
    return b.spec(t).dequantize(env[t])

  def calibrated(real: np.ndarray, n_bits: int, signed: bool) -> Quant:
    top = float(np.percentile(np.abs(real) if signed else real, cfg.percentile))
    return Quant(n_bits, signed, max(top, 1e-8) / (2 ** (n_bits - signed) - 1))

  for l in cfg.model.layers():
    ins = [names[t] for t in l.inputs]
    w_bits, out_bits = bits[l.name]
    real = _float_layer(l, weights.get(l.name, {}), [current(t) for t in ins])
    signed = l.kind == "add" or (l.kind in ("conv", "dw", "pw") and l.act == "none")
    if l.kind == "add":
      h = b.add(l.name, ins[0], ins[1], calibrated(real, out_bits, True))
    elif l.kind == "pool":
      h = b.global_avgpool(l.name, ins[0], calibrated(real, out_bits, False))
    elif l.kind == "fc":
      w, sw = quantize_weight(weights[l.name]["w"], w_bits, name=l.name)
      h = b.linear("logits", ins[0], w, sw, w_bits=w_bits, bias=weights[l.name]["b"])
    else:
      wf = weights[l.name]
      w, sw = quantize_weight(wf["w"], w_bits, name=l.name)
      h = b.conv(l.name, ins[0], w, sw, w_bits=w_bits, bias=wf["b"], stride=l.stride, padding=l.padding,
                 groups=l.groups, out=calibrated(real, out_bits, signed))
    names[l.name] = h
  return b.build(["logits"])


def mobilenet_v1_graph(cfg: MobileNetConfig, images: np.ndarray, seed: int = 0) -> Graph:
  """`mobilenet_graph` of a V1 config (kept for callers of the V1-only API)."""
  return mobilenet_graph(dataclasses.replace(cfg, version="v1"), images, seed)


def float_logits(cfg: MobileNetConfig, images: np.ndarray, seed: int = 0) -> np.ndarray:
  """Logits of the float network (same random weights) on real-valued images (n, H, W, 3)."""
  weights = float_weights(cfg, seed)
  env = {model.NETWORK_INPUT: images}
  for l in cfg.model.layers():
    env[l.name] = _float_layer(l, weights.get(l.name, {}), [env[t] for t in l.inputs])
  return env[cfg.model.layers()[-1].name]
