"""MobileNetV1 and MobileNetV2: the one description every other form is built from.

    cfg = MobileNetConfig("v2", width_mult=0.35, resolution=96, n_classes=10)
    for l in cfg.layers():          # every kernel call in network order (`MobileNetLayer`)
      print(l.name, l.kind, l.cin, l.cout, l.kernel, l.stride, l.in_hw, l.out_hw, l.residual)
    count_params(cfg)               # trainable parameters of the Flax module (BN gamma/beta included)
    model = MobileNet(cfg)          # Flax Linen module, NHWC images (B, H, W, 3) -> logits (B, n_classes)

The description (`MobileNetConfig`, `V1_BLOCKS`, `V2_BLOCKS`, `make_divisible`, `MobileNetConfig.layers`) is
what the Flax module, the quantized twin (`jaxbp.quant.graph_mobilenet`), the integer graphs and the deployment
zoo (`jaxbp.deploy.zoo.mobilenet_v1/v2`) all read. Layer names are stable API:

  V1: conv0 → block{i}/depthwise, block{i}/pointwise (i = 1..13) → pool → fc
  V2: conv0 → block{j}/expand (t > 1 only), block{j}/depthwise, block{j}/project, block{j}/add (stride 1 and
      equal channels) (j = 1..17) → conv_last → pool → fc

Kinds: "conv" (full 3x3 conv, the stem), "dw" (3x3 depthwise), "pw" (1x1), "add" (residual add; `residual` names
its second input), "pool" (global average), "fc" (linear classifier with bias). Every conv/dw/pw has no bias and
is followed by a BatchNorm; `act` is "relu6" (as the references: Keras MobileNet, MobileNetV2) or "none" (the V2
projections: the linear bottleneck). Tensors are NHWC; padding is symmetric k//2 per side (PyTorch's
`padding=1` for 3x3, so stride-2 layers give ceil(H/2) like TF "SAME" but pad both sides).

Channels: V1 uses TF-slim's max(int(c·α), 8); V2 rounds every c·α to a multiple of 8 with the reference
`make_divisible` (never below 90 % of c·α), and its last 1x1 conv has 1280·max(α, 1) channels.
Published parameter counts (1000 classes, 224): V1-1.0 4,231,976; V2-1.0 3,504,872.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxbp.models.dropout import Dropout

VERSIONS = ("v1", "v2")
KINDS = ("conv", "dw", "pw", "add", "pool", "fc")
NETWORK_INPUT = "input"

# MobileNetV1: (output channels at width 1, stride) of the 13 depthwise-separable blocks (after a 32-ch 3x3/2 stem).
V1_BLOCKS: tuple[tuple[int, int], ...] = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1), (512, 1), (512, 1),
    (1024, 2), (1024, 1))
# MobileNetV2: (expansion t, channels c, repeats n, first stride s) of the inverted-residual stages.
V2_BLOCKS: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
V1_STEM, V2_STEM, V2_LAST = 32, 32, 1280


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
  """The MobileNetV2 reference's channel rounding: nearest multiple of `divisor`, never below 90 % of v."""
  min_value = divisor if min_value is None else min_value
  new = max(min_value, int(v + divisor / 2) // divisor * divisor)
  return new + divisor if new < 0.9 * v else new


@dataclasses.dataclass(frozen=True)
class MobileNetLayer:
  """One kernel call of a MobileNet (see the module docstring for names and kinds).

  Attributes:
    name: stable layer name ("conv0", "block3/depthwise", "block4/add", "pool", "fc").
    kind: one of `KINDS`.
    inputs: producer names ("input" = the image); add: (branch output, residual source).
    cin, cout: input / output channels.
    kernel, stride, padding: square kernel, stride and symmetric padding per side (1 for add/pool/fc).
    in_hw, out_hw: spatial (H, W) of the input and the output.
    act: "relu6" | "none": the activation after the layer's BatchNorm (conv/dw/pw) or none (add, pool, fc).
    block: the block this layer belongs to ("block3"; "" for conv0, conv_last, pool, fc).
  """

  name: str
  kind: str
  inputs: tuple[str, ...]
  cin: int
  cout: int
  kernel: int
  stride: int
  padding: int
  in_hw: tuple[int, int]
  out_hw: tuple[int, int]
  act: str = "none"
  block: str = ""

  @property
  def residual(self) -> str | None:
    """The residual source of an add (its second input), else None."""
    return self.inputs[1] if self.kind == "add" else None

  @property
  def groups(self) -> int:
    return self.cin if self.kind == "dw" else 1

  @property
  def weighted(self) -> bool:
    return self.kind in ("conv", "dw", "pw", "fc")

  @property
  def n_weights(self) -> int:
    """Weights (no bias, no BN) of the layer."""
    if self.kind in ("conv", "pw"):
      return self.cout * self.cin * self.kernel ** 2
    if self.kind == "dw":
      return self.cout * self.kernel ** 2
    if self.kind == "fc":
      return self.cout * self.cin
    return 0

  @property
  def n_params(self) -> int:
    """Trainable parameters: weights + BN gamma/beta (conv/dw/pw) or bias (fc)."""
    if self.kind in ("conv", "dw", "pw"):
      return self.n_weights + 2 * self.cout
    if self.kind == "fc":
      return self.n_weights + self.cout
    return 0

  @property
  def macs(self) -> int:
    ho, wo = self.out_hw
    return self.n_weights * (ho * wo if self.kind != "fc" else 1)


@dataclasses.dataclass(frozen=True)
class MobileNetConfig:
  """MobileNetV1 / V2 hyper-parameters.

  Attributes:
    version: "v1" | "v2".
    width_mult: width multiplier α (channels scaled, see the module docstring for rounding).
    resolution: input height = width (pixels).
    n_classes: classifier outputs.
    in_channels: image channels.
    dropout: dropout rate before the classifier (Keras V1 1e-3, V2 reference 0.2).
  """

  version: str = "v1"
  width_mult: float = 1.0
  resolution: int = 224
  n_classes: int = 1000
  in_channels: int = 3
  dropout: float = 0.0

  def __post_init__(self):
    if self.version not in VERSIONS:
      raise ValueError(f"MobileNetConfig: field 'version' must be one of {VERSIONS}, got {self.version!r}")
    if not self.width_mult > 0:
      raise ValueError(f"MobileNetConfig: field 'width_mult' must be > 0, got {self.width_mult}")
    if self.resolution < 8:
      raise ValueError(f"MobileNetConfig: field 'resolution' must be >= 8 pixels, got {self.resolution}")
    if self.n_classes < 1 or self.in_channels < 1:
      raise ValueError(f"MobileNetConfig: n_classes and in_channels must be >= 1, got {self.n_classes}, "
                       f"{self.in_channels}")
    if not 0 <= self.dropout < 1:
      raise ValueError(f"MobileNetConfig: field 'dropout' must be in [0, 1), got {self.dropout}")

  @property
  def name(self) -> str:
    """"mobilenet_v1_0.25_32" (the zoo's network names)."""
    a = f"{self.width_mult:.1f}" if float(self.width_mult).is_integer() else f"{self.width_mult:g}"
    return f"mobilenet_{self.version}_{a}_{self.resolution}"

  def channels(self, c: int) -> int:
    """Channels of a width-1 channel count c at this width multiplier."""
    if self.version == "v1":
      return max(int(c * self.width_mult), 8)
    return make_divisible(c * self.width_mult)

  def layers(self) -> tuple[MobileNetLayer, ...]:
    """Every layer in network order."""
    return _v1_layers(self) if self.version == "v1" else _v2_layers(self)

  def layer(self, name: str) -> MobileNetLayer:
    for l in self.layers():
      if l.name == name:
        return l
    raise KeyError(f"{self.name} has no layer {name!r}")

  @property
  def feature_channels(self) -> int:
    """Channels entering the classifier."""
    return self.layers()[-1].cin


class _Tracker:
  """Appends layers, tracking the current tensor's name, channels and spatial size."""

  def __init__(self, cfg: MobileNetConfig):
    self.layers: list[MobileNetLayer] = []
    self.shapes: dict[str, tuple[int, tuple[int, int]]] = {
        NETWORK_INPUT: (cfg.in_channels, (cfg.resolution, cfg.resolution))}

  def conv(self, name: str, kind: str, src: str, cout: int, kernel: int, stride: int, act: str,
           block: str = "") -> str:
    cin, (h, w) = self.shapes[src]
    pad = kernel // 2
    out = ((h + 2 * pad - kernel) // stride + 1, (w + 2 * pad - kernel) // stride + 1)
    cout = cin if kind == "dw" else cout
    return self._add(MobileNetLayer(name, kind, (src,), cin, cout, kernel, stride, pad, (h, w), out, act, block))

  def add(self, name: str, a: str, b: str, block: str) -> str:
    c, hw = self.shapes[a]
    return self._add(MobileNetLayer(name, "add", (a, b), c, c, 1, 1, 0, hw, hw, "none", block))

  def pool(self, src: str) -> str:
    c, hw = self.shapes[src]
    return self._add(MobileNetLayer("pool", "pool", (src,), c, c, hw[0], 1, 0, hw, (1, 1)))

  def fc(self, src: str, n_classes: int) -> str:
    c, _ = self.shapes[src]
    return self._add(MobileNetLayer("fc", "fc", (src,), c, n_classes, 1, 1, 0, (1, 1), (1, 1)))

  def _add(self, layer: MobileNetLayer) -> str:
    self.layers.append(layer)
    self.shapes[layer.name] = (layer.cout, layer.out_hw)
    return layer.name


def _v1_layers(cfg: MobileNetConfig) -> tuple[MobileNetLayer, ...]:
  t = _Tracker(cfg)
  x = t.conv("conv0", "conv", NETWORK_INPUT, cfg.channels(V1_STEM), 3, 2, "relu6")
  for i, (c, s) in enumerate(V1_BLOCKS, start=1):
    blk = f"block{i}"
    x = t.conv(f"{blk}/depthwise", "dw", x, 0, 3, s, "relu6", blk)
    x = t.conv(f"{blk}/pointwise", "pw", x, cfg.channels(c), 1, 1, "relu6", blk)
  t.fc(t.pool(x), cfg.n_classes)
  return tuple(t.layers)


def _v2_layers(cfg: MobileNetConfig) -> tuple[MobileNetLayer, ...]:
  t = _Tracker(cfg)
  cin = cfg.channels(V2_STEM)
  x = t.conv("conv0", "conv", NETWORK_INPUT, cin, 3, 2, "relu6")
  j = 0
  for exp, c, n, s in V2_BLOCKS:
    cout = cfg.channels(c)
    for i in range(n):
      j += 1
      blk, stride, src = f"block{j}", (s if i == 0 else 1), x
      if exp != 1:
        x = t.conv(f"{blk}/expand", "pw", x, cin * exp, 1, 1, "relu6", blk)
      x = t.conv(f"{blk}/depthwise", "dw", x, 0, 3, stride, "relu6", blk)
      x = t.conv(f"{blk}/project", "pw", x, cout, 1, 1, "none", blk)
      if stride == 1 and cin == cout:
        x = t.add(f"{blk}/add", x, src, blk)
      cin = cout
  x = t.conv("conv_last", "pw", x, make_divisible(V2_LAST * max(cfg.width_mult, 1.0)), 1, 1, "relu6")
  t.fc(t.pool(x), cfg.n_classes)
  return tuple(t.layers)


def count_params(cfg: MobileNetConfig) -> int:
  """Trainable parameters (conv weights, BN gamma/beta, classifier weights and bias)."""
  return sum(l.n_params for l in cfg.layers())


def count_macs(cfg: MobileNetConfig) -> int:
  return sum(l.macs for l in cfg.layers())


def blocks(cfg: MobileNetConfig) -> dict[str, tuple[MobileNetLayer, ...]]:
  """Layers grouped by block, in order ({"": stem/head layers are not included})."""
  out: dict[str, list[MobileNetLayer]] = {}
  for l in cfg.layers():
    if l.block:
      out.setdefault(l.block, []).append(l)
  return {k: tuple(v) for k, v in out.items()}



# ---------------------------------------------------------------------------------------------------------------
# The Flax modules (float training network).

def _he_fan_out(key, shape, dtype=jnp.float32):
  """Kaiming-normal (fan out) conv init, as torchvision's MobileNetV2: kernel (KH, KW, Cin/g, Cout)."""
  kh, kw, _, cout = shape
  return jax.random.normal(key, shape, dtype) * jnp.sqrt(2.0 / (kh * kw * cout))


def depthwise_conv(x: jax.Array, kernel: jax.Array, stride: int, padding: int) -> jax.Array:
  """3x3 (any k) depthwise conv as k² shifted multiply-adds (XLA's CPU grouped conv is several times slower).

  x (B, H, W, C), kernel (K, K, 1, C) -> (B, H', W', C); zero padding `padding` on every side.
  """
  k = kernel.shape[0]
  x = jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
  ho, wo = (x.shape[1] - k) // stride + 1, (x.shape[2] - k) // stride + 1
  out = 0.0
  for i in range(k):
    for j in range(k):
      tap = x[:, i:i + stride * (ho - 1) + 1:stride, j:j + stride * (wo - 1) + 1:stride, :]
      out = out + tap * kernel[i, j, 0]
  return out


def conv2d(x: jax.Array, kernel: jax.Array, stride: int, padding: int, groups: int = 1) -> jax.Array:
  """NHWC conv with HWIO kernel, symmetric zero padding; depthwise by `depthwise_conv` on CPU."""
  if groups > 1 and groups == x.shape[-1] and kernel.shape[2] == 1 and jax.default_backend() == "cpu":
    return depthwise_conv(x, kernel, stride, padding)
  return jax.lax.conv_general_dilated(x, kernel, (stride, stride), ((padding, padding), (padding, padding)),
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=groups)


class ConvBN(nn.Module):
  """One conv / dw / pw layer of the description: conv (no bias) → BatchNorm → ReLU6 or nothing.

  Parameters: "kernel" (K, K, Cin/g, Cout), "bn" {"scale", "bias"}; batch_stats "bn" {"mean", "var"}.
  """

  layer: MobileNetLayer

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    l = self.layer
    kernel = self.param("kernel", _he_fan_out, (l.kernel, l.kernel, l.cin // l.groups, l.cout))
    y = conv2d(x, kernel, l.stride, l.padding, l.groups)
    # PyTorch's BatchNorm (momentum 0.1, eps 1e-5, what `jaxbp.quant.fold_bn` folds); Keras uses 0.999 / 1e-3.
    y = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, name="bn")(y)
    return jnp.clip(y, 0.0, 6.0) if l.act == "relu6" else y


class MobileNet(nn.Module):
  """MobileNetV1 / V2 from its description: images (B, H, W, C) float -> logits (B, n_classes).

  Parameters are keyed by layer name ("conv0", "block3/depthwise", ..., "fc"), see `ConvBN`; "fc" is a Dense
  {"kernel": (C, n_classes), "bias"}. Training needs a "dropout" rng when `config.dropout` > 0.
  """

  config: MobileNetConfig

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
    cfg = self.config
    want = (cfg.resolution, cfg.resolution, cfg.in_channels)
    if x.ndim != 4 or tuple(x.shape[1:]) != want:
      raise ValueError(f"{cfg.name}: expected images (B, {', '.join(map(str, want))}), got shape {tuple(x.shape)}")
    values = {NETWORK_INPUT: x}
    for l in cfg.layers():
      h = values[l.inputs[0]]
      if l.kind in ("conv", "dw", "pw"):
        h = ConvBN(l, name=l.name)(h, train=train)
      elif l.kind == "add":
        h = h + values[l.residual]
      elif l.kind == "pool":
        h = jnp.mean(h, axis=(1, 2))
      else:
        h = Dropout(cfg.dropout, deterministic=not train or cfg.dropout == 0)(h)
        h = nn.Dense(l.cout, kernel_init=nn.initializers.normal(0.01), name=l.name)(h)
      values[l.name] = h
    return values[cfg.layers()[-1].name]


def init_mobilenet(model: MobileNet, key: jax.Array, batch: int = 2) -> dict:
  """Variables {"params", "batch_stats"} of `model` for (batch, H, W, C) inputs."""
  cfg = model.config
  x = jnp.zeros((batch, cfg.resolution, cfg.resolution, cfg.in_channels), jnp.float32)
  return model.init({"params": key, "dropout": key}, x, train=False)
