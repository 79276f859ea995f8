"""Model zoo for deployment studies: deployment layer graphs without trained weights.

- MobileNetV1 (width multiplier, input resolution) and MobileNetV2 at ImageNet shapes (1000 classes).
- The BP seeds (ResNet1d / UNet1d of `jaxbp.models.configs`) and any exported NAS candidate, built from
  the config's `slot_specs()` with 1-D signals as (1, length, C). Layer names are the conv-slot names
  ("block0/conv1", "<slot>/depthwise", "<slot>/pointwise", "block0/se/fc1", "head", ...), the names of
  `jaxbp.quant`'s quantized graph, so per-layer latency tables key the bit-width costs directly.

BatchNorms that follow a conv are folded into its requantization; a BN with no conv before it becomes a
per-channel "requant" element-wise layer; every layer is at 8 bits (see `layers.with_uniform_bits`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jaxbp.deploy.layers import NETWORK_INPUT, Layer, Network, Shape, conv_out, same_padding
from jaxbp.models.configs import ModelConfig, config_from_dict, config_to_dict, model_name, seed_config
from jaxbp.models.layers import SlotSpec
from jaxbp.models.mobilenet import MobileNetConfig
from jaxbp.models.resnet1d import ResNet1dConfig
from jaxbp.models.unet1d import UNet1dConfig


class GraphBuilder:
  """Appends layers, tracking the current tensor's name and shape."""

  def __init__(self, input_shape: Shape):
    self.input_shape = tuple(input_shape)
    self.layers: list[Layer] = []
    self.shapes: dict[str, Shape] = {NETWORK_INPUT: self.input_shape}

  def add(self, name: str, op: str, src: str, out_shape: Shape, src2: str | None = None, **kw) -> str:
    inputs = (src,) if src2 is None else (src, src2)
    in2 = None if src2 is None else self.shapes[src2]
    self.layers.append(Layer(name, op, inputs, self.shapes[src], tuple(out_shape), in2_shape=in2,
                             bits_in2=None if src2 is None else 8, **kw))
    self.shapes[name] = tuple(out_shape)
    return name

  def conv2d(self, name: str, src: str, cout: int, k: int, stride: int, op: str = "conv", groups: int = 1,
             slot: str = "") -> str:
    h, w, c = self.shapes[src]
    pt, pb = same_padding(h, k, stride)
    pl, pr = same_padding(w, k, stride)
    out = (conv_out(h, k, stride, pt, pb), conv_out(w, k, stride, pl, pr), c if op == "depthwise" else cout)
    return self.add(name, op, src, out, kernel=(k, k), stride=(stride, stride), padding=(pt, pb, pl, pr),
                    groups=c if op == "depthwise" else groups, slot=slot)

  def conv1d(self, name: str, src: str, cout: int, k: int, stride: int, padding, op: str, groups: int = 1,
             slot: str = "") -> str:
    _, length, c = self.shapes[src]
    pl, pr = same_padding(length, k, stride) if padding == "SAME" else (padding, padding)
    out = (1, conv_out(length, k, stride, pl, pr), c if op == "depthwise" else cout)
    return self.add(name, op, src, out, kernel=(1, k), stride=(1, stride), padding=(0, 0, pl, pr),
                    groups=c if op == "depthwise" else groups, slot=slot)

  def global_pool(self, name: str, src: str, slot: str = "") -> str:
    h, w, c = self.shapes[src]
    return self.add(name, "pool", src, (1, 1, c), mode="avg", kernel=(h, w), stride=(h, w), slot=slot)

  def network(self, name: str) -> Network:
    return Network(name, self.input_shape, tuple(self.layers))


_DEPLOY_OPS = {"conv": "conv", "dw": "depthwise", "pw": "pointwise", "add": "add", "pool": "pool", "fc": "linear"}


def mobilenet(cfg: MobileNetConfig) -> Network:
  """The deployment graph of a MobileNet description (`jaxbp.models.mobilenet`): same names, shapes, padding."""
  b = GraphBuilder((cfg.resolution, cfg.resolution, cfg.in_channels))
  for l in cfg.layers():
    op, out = _DEPLOY_OPS[l.kind], (*l.out_hw, l.cout)
    if l.kind in ("conv", "dw", "pw"):
      p = l.padding
      b.add(l.name, op, l.inputs[0], out, kernel=(l.kernel, l.kernel), stride=(l.stride, l.stride),
            padding=(p, p, p, p), groups=l.groups, slot=l.block)
    elif l.kind == "add":
      b.add(l.name, op, l.inputs[0], out, src2=l.residual, slot=l.block)
    elif l.kind == "pool":
      b.add(l.name, op, l.inputs[0], out, mode="avg", kernel=l.in_hw, stride=l.in_hw)
    else:
      b.add(l.name, op, l.inputs[0], out)
  return b.network(cfg.name)


def mobilenet_v1(width_mult: float = 1.0, resolution: int = 224, classes: int = 1000) -> Network:
  """MobileNetV1-`width_mult`-`resolution` (TF-slim channel rounding: max(int(c*alpha), 8))."""
  if width_mult <= 0 or resolution < 32:
    raise ValueError(f"mobilenet_v1: need width_mult > 0 and resolution >= 32, got {width_mult}, {resolution}")
  return mobilenet(MobileNetConfig("v1", width_mult, resolution, classes))


def mobilenet_v2(width_mult: float = 1.0, resolution: int = 224, classes: int = 1000) -> Network:
  """MobileNetV2-`width_mult`-`resolution` (channels rounded to multiples of 8, as the reference)."""
  if width_mult <= 0 or resolution < 32:
    raise ValueError(f"mobilenet_v2: need width_mult > 0 and resolution >= 32, got {width_mult}, {resolution}")
  return mobilenet(MobileNetConfig("v2", width_mult, resolution, classes))


def slot_layers(b: GraphBuilder, name: str, spec: SlotSpec, op: str, src: str) -> str:
  """Appends the layers of one conv slot with `op` ("conv" | "dw" | "id"); returns the output tensor."""
  if op == "conv":
    return b.conv1d(name, src, spec.features, spec.kernel, spec.stride, spec.padding, "conv", spec.groups, slot=name)
  if op == "dw":
    x = b.conv1d(f"{name}/depthwise", src, 0, spec.kernel, spec.stride, spec.padding, "depthwise", slot=name)
    return b.conv1d(f"{name}/pointwise", x, spec.features, 1, 1, 0, "pointwise", slot=name)
  if op == "id":
    if not spec.allows_identity:
      raise ValueError(f"slot {name!r}: identity needs equal in/out channels and stride 1, got {spec}")
    return src
  raise ValueError(f"slot {name!r}: unknown op {op!r}; expected conv, dw or id")


def _ops(config: ModelConfig) -> dict[str, str]:
  names = list(config.slot_specs())
  ops = config.ops if config.ops is not None else ("conv",) * len(names)
  if len(ops) != len(names):
    raise ValueError(f"{model_name(config)} config has {len(ops)} ops for {len(names)} slots ({', '.join(names)})")
  return dict(zip(names, ops))


def resnet1d(config: ResNet1dConfig, window: int, name: str = "resnet1d") -> Network:
  """ResNet1d (seed or candidate) on a `window`-sample PPG input; mirrors `jaxbp.models.resnet1d`."""
  specs, ops = config.slot_specs(), _ops(config)
  b = GraphBuilder((1, window, 1))
  x = slot_layers(b, "stem_conv", specs["stem_conv"], ops["stem_conv"], NETWORK_INPUT)  # + stem_bn + ReLU folded.
  x = _maxpool(b, "stem_pool", x, config.downsample)
  for i in range(config.n_blocks):
    blk = f"block{i}"
    _, cout, stride = config.block_channels(i)
    identity = x
    if i > 0:  # bn1 + ReLU of the pre-activation (no conv before it).
      x = b.add(f"{blk}/bn1", "elementwise", x, b.shapes[x], mode="requant", slot=blk)
    x = slot_layers(b, f"{blk}/conv1", specs[f"{blk}/conv1"], ops[f"{blk}/conv1"], x)  # + bn2 + ReLU folded ...
    if ops[f"{blk}/conv1"] == "id":  # ... unless no conv precedes bn2.
      x = b.add(f"{blk}/bn2", "elementwise", x, b.shapes[x], mode="requant", slot=blk)
    x = slot_layers(b, f"{blk}/conv2", specs[f"{blk}/conv2"], ops[f"{blk}/conv2"], x)
    hidden = max(cout // config.se_reduction, config.se_min)
    s = b.global_pool(f"{blk}/se/pool", x, slot=blk)
    s = b.add(f"{blk}/se/fc1", "linear", s, (1, 1, hidden), slot=blk)
    s = b.add(f"{blk}/se/fc2", "linear", s, (1, 1, cout), slot=blk)
    s = b.add(f"{blk}/se/sigmoid", "elementwise", s, (1, 1, cout), mode="lut", slot=blk)
    x = b.add(f"{blk}/se/mul", "elementwise", x, b.shapes[x], src2=s, mode="mul", slot=blk)
    if stride > 1:
      identity = _maxpool(b, f"{blk}/skip_pool", identity, stride, slot=blk)
    x = b.add(f"{blk}/add", "add", x, b.shapes[x], src2=identity, slot=blk)  # identity channels zero-padded.
  x = b.add("head_bn", "elementwise", x, b.shapes[x], mode="requant")
  x = b.global_pool("head_pool", x)
  b.add("head", "linear", x, (1, 1, config.n_outputs))
  return b.network(name)


def _maxpool(b: GraphBuilder, name: str, src: str, window: int, slot: str = "") -> str:
  """The seeds' zero-padded MaxPool(window, stride=window) along time."""
  _, length, c = b.shapes[src]
  pl, pr = (window - 1) // 2, window - 1 - (window - 1) // 2
  out = (1, conv_out(length, window, window, pl, pr), c)
  return b.add(name, "pool", src, out, mode="max", kernel=(1, window), stride=(1, window), padding=(0, 0, pl, pr),
               slot=slot)


def unet1d(config: UNet1dConfig, window: int, name: str = "unet1d") -> Network:
  """UNet1d (seed or candidate) on a `window`-sample PPG input; mirrors `jaxbp.models.unet1d`."""
  specs, ops = config.slot_specs(), _ops(config)
  b = GraphBuilder((1, window, 1))

  def modern(slot: str, x: str, upsample: bool = False) -> str:
    if upsample:
      _, length, c = b.shapes[x]
      x = b.add(f"{slot}/up", "elementwise", x, (1, 2 * length, c), mode="resize", slot=slot)
    x = b.add(f"{slot}/norm", "elementwise", x, b.shapes[x], mode="norm", slot=slot)  # InstanceNorm + PReLU.
    return slot_layers(b, slot, specs[slot], ops[slot], x)

  def join(x: str, skip: str, name: str) -> str:
    (_, l1, c1), (_, l2, c2) = b.shapes[x], b.shapes[skip]
    return b.add(name, "elementwise", x, (1, min(l1, l2), c1 + c2), src2=skip, mode="concat")

  x, skips = NETWORK_INPUT, []
  for step in config.steps():
    if step.kind == "slot":
      x = slot_layers(b, step.name, specs[step.name], ops[step.name], x)
    elif step.kind == "modern":
      x = modern(step.name, x, step.upsample)
    elif step.kind == "save":
      skips.append(x)
    else:
      x = join(x, skips[step.skip], step.name)
  return b.network(name)


def from_config(config: ModelConfig, window: int, name: str | None = None) -> Network:
  """Deployment graph of a ResNet1d/UNet1d config (seed, or candidate with `ops`)."""
  if not isinstance(config, (ResNet1dConfig, UNet1dConfig)):
    raise TypeError(f"not a model config: {type(config).__name__}")
  build: Callable[..., Network] = resnet1d if isinstance(config, ResNet1dConfig) else unet1d
  return build(config, window, name or model_name(config))


def bp_seed(model: str, dataset: str) -> Network:
  """The benchmark's seed `model` ("resnet1d" | "unet1d") for `dataset`, at its window length."""
  from jaxbp.data.specs import get_spec  # pylint: disable=import-outside-toplevel
  return from_config(seed_config(model, dataset), get_spec(dataset).window, f"{model}_{dataset}")


def load_candidate(path: str | Path, rotation: int = 0, window: int | None = None) -> Network:
  """Deployment graph of an exported candidate JSON.

  Accepts (a) a `config_to_dict` JSON (with "model"; optional "window" or "dataset"), or (b) a sweep
  candidate `candidates/candidate_XX.json` written by experiments/sweep.py: its ops are taken from
  `per_rotation[rotation]` and the seed config and dataset from the sweep folder's results.json or
  sweep_config.json.
  """
  from jaxbp.data.specs import get_spec  # pylint: disable=import-outside-toplevel
  path = Path(path)
  try:
    d = json.loads(path.read_text())
  except (OSError, json.JSONDecodeError) as e:
    raise ValueError(f"cannot read candidate config {path}: {e}") from None
  if "model" in d:
    cfg = {k: v for k, v in d.items() if k not in ("window", "dataset")}
    window = window or d.get("window") or (get_spec(d["dataset"]).window if "dataset" in d else None)
    if window is None:
      raise ValueError(f"{path}: a config needs 'window' or 'dataset' (or pass window=)")
    return from_config(config_from_dict(cfg), window, path.stem)
  if "per_rotation" not in d:
    raise ValueError(f"{path}: neither a model config (no 'model' field) nor a sweep candidate (no 'per_rotation')")
  seed, dataset = _sweep_context(path)
  rots = {r["rotation"]: r for r in d["per_rotation"]}
  if rotation not in rots:
    raise ValueError(f"{path}: no rotation {rotation}; available {sorted(rots)}")
  choice: dict[str, Any] = rots[rotation]["ops"]
  names = list(seed.slot_specs())
  missing = set(names) - set(choice)
  if missing:
    raise ValueError(f"{path}: rotation {rotation} has no op for slots {sorted(missing)}")
  cfg = config_from_dict({**config_to_dict(seed), "ops": [choice[n] for n in names]})
  return from_config(cfg, window or get_spec(dataset).window, f"{path.stem}_r{rotation}")


def _sweep_context(candidate: Path) -> tuple[ModelConfig, str]:
  """(seed config, dataset name) of the sweep folder holding `candidates/<candidate>.json`."""
  folder = candidate.resolve().parent.parent
  for fname in ("results.json", "sweep_config.json"):
    f = folder / fname
    if f.exists():
      d = json.loads(f.read_text())
      ds = d.get("dataset")
      ds = ds.get("name") if isinstance(ds, dict) else ds
      if "seed_model" in d and ds:
        return config_from_dict(d["seed_model"]), ds
  raise ValueError(f"{candidate}: no results.json / sweep_config.json with 'seed_model' and 'dataset' in {folder}")


MODELS = ("mobilenet_v1", "mobilenet_v2", "resnet1d", "unet1d")


def get_model(model: str, *, width_mult: float = 1.0, resolution: int = 224, dataset: str = "ppgbp",
              rotation: int = 0) -> Network:
  """A zoo network by name, or a candidate JSON path."""
  if model == "mobilenet_v1":
    return mobilenet_v1(width_mult, resolution)
  if model == "mobilenet_v2":
    return mobilenet_v2(width_mult, resolution)
  if model in ("resnet1d", "unet1d"):
    return bp_seed(model, dataset)
  if model.endswith(".json") or Path(model).exists():
    return load_candidate(model, rotation)
  raise ValueError(f"unknown model {model!r}; expected one of {MODELS} or a path to a candidate JSON")
