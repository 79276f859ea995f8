"""The deployment layer graph: what the tiler and simulator read (op kinds, shapes, bit widths).

A plain, validated, JSON-serializable structure. The model zoo builds it from architecture configs
and an integerizer can build it from its integer graph; no trained weights are needed.

Tensors are HWC (height, width, channels); 1-D signals are (1, length, channels). A sub-byte tensor is
stored packed, each pixel padded to whole bytes (`tensor_bytes`). Weights are [Cout][Kh][Kw][Cin/groups].
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

Shape = tuple[int, int, int]

OPS = ("conv", "pointwise", "depthwise", "linear", "add", "pool", "elementwise")
WEIGHTED_OPS = ("conv", "pointwise", "depthwise", "linear")
MODES = {"pool": ("max", "avg"), "elementwise": ("requant", "lut", "mul", "norm", "resize", "concat")}
BINARY = {("add", ""), ("elementwise", "mul"), ("elementwise", "concat")}
BITS = (2, 4, 8)
NETWORK_INPUT = "input"


def tensor_bytes(shape: Shape, bits: int) -> int:
  """Bytes of an HWC tensor at `bits` per element, each pixel padded to whole bytes."""
  h, w, c = shape
  return h * w * math.ceil(c * bits / 8)


def conv_out(size: int, kernel: int, stride: int, pad_before: int, pad_after: int) -> int:
  """Output length of a convolution/pooling window along one axis."""
  return (size + pad_before + pad_after - kernel) // stride + 1


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
  """TF/PyTorch-PadSame padding (before, after) so that out = ceil(size / stride)."""
  out = -(-size // stride)
  total = max((out - 1) * stride + kernel - size, 0)
  return total // 2, total - total // 2


@dataclasses.dataclass(frozen=True)
class Layer:
  """One kernel call of the deployed network.

  Attributes:
    name: unique name (module path, e.g. "block0/conv1" or "block0/conv1/depthwise").
    op: one of `OPS`; `mode` refines pool ("max"|"avg") and elementwise ("requant"|"lut"|"mul"|"norm"|
      "resize"|"concat").
    inputs: producer layer names ("input" = the network input); two for add / mul / concat.
    in_shape, out_shape: (H, W, C) of input 0 and of the output.
    kernel, stride: (h, w); padding: (top, bottom, left, right).
    groups: feature groups (conv), = channels for depthwise.
    bits_in, bits_w, bits_out: bit widths of input 0, weights (ignored by weightless ops) and output.
    in2_shape, bits_in2: the second input (add: the residual, its channels may be fewer -- zero-padded;
      mul: (1, 1, C) channel gates; concat: the skip tensor).
    slot: the conv slot (or block) of the source network this layer implements ("" if none).
  """

  name: str
  op: str
  inputs: tuple[str, ...]
  in_shape: Shape
  out_shape: Shape
  kernel: tuple[int, int] = (1, 1)
  stride: tuple[int, int] = (1, 1)
  padding: tuple[int, int, int, int] = (0, 0, 0, 0)
  groups: int = 1
  bits_in: int = 8
  bits_w: int = 8
  bits_out: int = 8
  mode: str = ""
  in2_shape: Shape | None = None
  bits_in2: int | None = None
  slot: str = ""

  def __post_init__(self):
    for f in ("inputs", "in_shape", "out_shape", "kernel", "stride", "padding", "in2_shape"):
      v = getattr(self, f)
      if isinstance(v, list):
        object.__setattr__(self, f, tuple(v))
    self._validate()

  def _fail(self, msg: str):
    raise ValueError(f"layer {self.name!r} ({self.op}{'/' + self.mode if self.mode else ''}): {msg}")

  def _validate(self):
    if self.op not in OPS:
      self._fail(f"unknown op; expected one of {OPS}")
    modes = MODES.get(self.op, ("",))
    if self.mode not in modes:
      self._fail(f"mode must be one of {modes}, got {self.mode!r}")
    for f in ("bits_in", "bits_w", "bits_out"):
      if getattr(self, f) not in BITS:
        self._fail(f"{f} must be one of {BITS}, got {getattr(self, f)!r}")
    for f in ("in_shape", "out_shape"):
      s = getattr(self, f)
      if len(s) != 3 or any(not isinstance(x, int) or x < 1 for x in s):
        self._fail(f"{f} must be 3 positive ints (H, W, C), got {s!r}")
    if len(self.kernel) != 2 or len(self.stride) != 2 or len(self.padding) != 4 or min(self.kernel + self.stride) < 1:
      self._fail(f"kernel/stride need 2 positive ints and padding 4 ints, got {self.kernel}/{self.stride}/{self.padding}")
    if min(self.padding) < 0:
      self._fail(f"negative padding {self.padding}")
    binary = (self.op, self.mode) in BINARY
    if len(self.inputs) != (2 if binary else 1):
      self._fail(f"expects {2 if binary else 1} inputs, got {self.inputs!r}")
    if binary:
      if self.in2_shape is None or self.bits_in2 not in BITS:
        self._fail(f"needs in2_shape and bits_in2 in {BITS}, got {self.in2_shape!r} / {self.bits_in2!r}")
    elif self.in2_shape is not None:
      self._fail("has a second input shape but takes one input")
    (h, w, c), (ho, wo, co) = self.in_shape, self.out_shape
    if self.op in ("conv", "pointwise", "depthwise", "pool"):
      kh, kw = self.kernel
      pt, pb, pl, pr = self.padding
      want = (conv_out(h, kh, self.stride[0], pt, pb), conv_out(w, kw, self.stride[1], pl, pr))
      if (ho, wo) != want:
        self._fail(f"output H, W must be {want} for input {self.in_shape}, kernel {self.kernel}, stride "
                   f"{self.stride}, padding {self.padding}; got {(ho, wo)}")
    if self.op == "conv" and (c % self.groups or co % self.groups):
      self._fail(f"groups={self.groups} must divide Cin={c} and Cout={co}")
    if self.op == "pointwise" and (self.kernel != (1, 1) or self.groups != 1):
      self._fail(f"pointwise needs kernel (1, 1) and groups 1, got {self.kernel}, groups {self.groups}")
    if self.op in ("depthwise", "pool") and co != c:
      self._fail(f"output channels must equal input channels {c}, got {co}")
    if self.op == "depthwise" and self.groups != c:
      self._fail(f"depthwise needs groups == channels ({c}), got {self.groups}")
    if self.op == "linear" and (h, w, ho, wo) != (1, 1, 1, 1):
      self._fail(f"linear needs (1, 1, C) input and output, got {self.in_shape} -> {self.out_shape}")
    same_shape = self.op in ("add", "elementwise") and self.mode not in ("resize", "concat")
    if same_shape and self.out_shape != self.in_shape:
      self._fail(f"output shape must equal the input shape {self.in_shape}, got {self.out_shape}")
    if self.op == "add" and (self.in2_shape[:2] != self.in_shape[:2] or self.in2_shape[2] > c):
      self._fail(f"residual input {self.in2_shape} must match {self.in_shape} in H, W with at most {c} channels")
    if self.mode == "mul" and self.in2_shape != (1, 1, c):
      self._fail(f"channel gates must be (1, 1, {c}), got {self.in2_shape}")
    if self.mode == "concat":
      h2, w2, c2 = self.in2_shape
      if co != c + c2 or ho > min(h, h2) or wo > min(w, w2):
        self._fail(f"concat of {self.in_shape} and {self.in2_shape} cannot give {self.out_shape}")
    if self.mode == "resize" and (ho < h or wo < w or co != c):
      self._fail(f"resize must enlarge H/W and keep channels: {self.in_shape} -> {self.out_shape}")

  @property
  def weighted(self) -> bool:
    return self.op in WEIGHTED_OPS

  @property
  def macs(self) -> int:
    """Multiply-accumulates of the layer (0 for weightless ops)."""
    ho, wo, co = self.out_shape
    kh, kw = self.kernel
    cin = self.in_shape[2]
    if self.op in ("conv", "pointwise"):
      return ho * wo * co * kh * kw * (cin // self.groups)
    if self.op == "depthwise":
      return ho * wo * co * kh * kw
    if self.op == "linear":
      return cin * co
    return 0

  @property
  def n_weights(self) -> int:
    co, cin = self.out_shape[2], self.in_shape[2]
    kh, kw = self.kernel
    if self.op in ("conv", "pointwise"):
      return co * kh * kw * (cin // self.groups)
    if self.op == "depthwise":
      return co * kh * kw
    if self.op == "linear":
      return co * cin
    return 0

  def weight_bytes(self) -> int:
    """Packed weight bytes ([Cout][Kh][Kw][Cin/g], each output channel padded to whole bytes)."""
    if not self.weighted:
      return 0
    return self.out_shape[2] * math.ceil(self.n_weights // self.out_shape[2] * self.bits_w / 8)

  def param_bytes(self, requant_bytes_per_channel: int = 8) -> int:
    """All constant bytes the layer reads: packed weights + per-channel requant (k, lambda) or a LUT."""
    co = self.out_shape[2]
    if self.weighted or (self.op, self.mode) in (("elementwise", "requant"), ("elementwise", "norm")):
      return self.weight_bytes() + co * requant_bytes_per_channel
    if self.mode == "lut":
      return 2 ** self.bits_in
    return 0

  def in_bytes(self) -> int:
    return tensor_bytes(self.in_shape, self.bits_in)

  def in2_bytes(self) -> int:
    return 0 if self.in2_shape is None else tensor_bytes(self.in2_shape, self.bits_in2)

  def out_bytes(self) -> int:
    return tensor_bytes(self.out_shape, self.bits_out)

  def to_dict(self) -> dict[str, Any]:
    d = dataclasses.asdict(self)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


@dataclasses.dataclass(frozen=True)
class Network:
  """A deployable network: layers in execution (topological) order.

  Attributes:
    name: e.g. "mobilenet_v1_1.0_128".
    input_shape: (H, W, C) of the network input; input_bits its bit width.
    layers: every kernel call in execution order; each input is a previous layer or "input".
  """

  name: str
  input_shape: Shape
  layers: tuple[Layer, ...]
  input_bits: int = 8

  def __post_init__(self):
    object.__setattr__(self, "input_shape", tuple(self.input_shape))
    object.__setattr__(self, "layers", tuple(self.layers))
    if self.input_bits not in BITS:
      raise ValueError(f"network {self.name!r}: input_bits must be one of {BITS}, got {self.input_bits}")
    if not self.layers:
      raise ValueError(f"network {self.name!r} has no layers")
    seen: dict[str, tuple[Shape, int]] = {NETWORK_INPUT: (self.input_shape, self.input_bits)}
    for l in self.layers:
      if l.name in seen:
        raise ValueError(f"network {self.name!r}: duplicate layer name {l.name!r}")
      pairs = [(l.inputs[0], l.in_shape, l.bits_in)]
      if len(l.inputs) == 2:
        pairs.append((l.inputs[1], l.in2_shape, l.bits_in2))
      for src, shape, bits in pairs:
        if src not in seen:
          raise ValueError(f"network {self.name!r}: layer {l.name!r} reads {src!r}, which is not an earlier layer")
        if seen[src] != (shape, bits):
          raise ValueError(f"network {self.name!r}: layer {l.name!r} expects {src!r} as {shape} at {bits} bit, "
                           f"but it is {seen[src][0]} at {seen[src][1]} bit")
      seen[l.name] = (l.out_shape, l.bits_out)

  def layer(self, name: str) -> Layer:
    for l in self.layers:
      if l.name == name:
        return l
    raise KeyError(f"network {self.name!r} has no layer {name!r}")

  @property
  def macs(self) -> int:
    return sum(l.macs for l in self.layers)

  def param_bytes(self, requant_bytes_per_channel: int = 8) -> int:
    return sum(l.param_bytes(requant_bytes_per_channel) for l in self.layers)

  def consumers(self) -> dict[str, list[int]]:
    """Tensor name -> indices of the layers that read it."""
    out: dict[str, list[int]] = {NETWORK_INPUT: []}
    for i, l in enumerate(self.layers):
      out.setdefault(l.name, [])
      for src in l.inputs:
        out[src].append(i)
    return out

  def to_dict(self) -> dict[str, Any]:
    return {"name": self.name, "input_shape": list(self.input_shape), "input_bits": self.input_bits,
            "layers": [l.to_dict() for l in self.layers]}

  def save(self, path: str | Path) -> None:
    Path(path).write_text(json.dumps(self.to_dict(), indent=1))


def network_from_dict(d: Mapping[str, Any]) -> Network:
  """Inverse of `Network.to_dict`; errors name the layer and field."""
  fields = {f.name for f in dataclasses.fields(Layer)}
  layers = []
  for i, ld in enumerate(d.get("layers", ())):
    unknown = set(ld) - fields
    if unknown:
      raise ValueError(f"layer {i} ({ld.get('name')!r}): unknown fields {sorted(unknown)}; expected {sorted(fields)}")
    layers.append(Layer(**ld))
  try:
    return Network(d["name"], tuple(d["input_shape"]), tuple(layers), d.get("input_bits", 8))
  except KeyError as e:
    raise ValueError(f"network dict: missing field {e}") from None


def load_network(path: str | Path) -> Network:
  return network_from_dict(json.loads(Path(path).read_text()))


def _propagate(net_name: str, input_shape: Shape, input_bits: int, layers: Iterable[Layer]) -> Network:
  """Sets every layer's bits_in / bits_in2 from its producers' bits_out."""
  out_bits = {NETWORK_INPUT: input_bits}
  new = []
  for l in layers:
    kw = {"bits_in": out_bits[l.inputs[0]]}
    if len(l.inputs) == 2:
      kw["bits_in2"] = out_bits[l.inputs[1]]
    l = dataclasses.replace(l, **kw)
    out_bits[l.name] = l.bits_out
    new.append(l)
  return Network(net_name, input_shape, tuple(new), input_bits)


def with_uniform_bits(net: Network, bits: int, input_bits: int = 8, add_out_bits: int = 8) -> Network:
  """Homogeneous `bits` network: weights and activations at `bits`, except the network input
  (`input_bits`) and residual-add outputs (`add_out_bits`), as `--bits` of tools/deploy.py."""
  if bits not in BITS:
    raise ValueError(f"bits must be one of {BITS}, got {bits}")
  layers = [dataclasses.replace(l, bits_w=bits if l.weighted else 8,
                                bits_out=add_out_bits if l.op == "add" else bits) for l in net.layers]
  return _propagate(net.name, net.input_shape, input_bits, layers)


def with_layer_bits(net: Network, config: Mapping[str, Any]) -> Network:
  """Mixed precision from {layer: (b_in, b_w)} or {layer: {"bits_in", "bits_w", "bits_out"}}.

  b_in of a layer sets its producer's output bits (the network input's for the first layer); two
  consumers asking different b_in of one tensor is an error. Unlisted layers keep their bits.
  """
  names = {l.name for l in net.layers}
  unknown = set(config) - names
  if unknown:
    raise ValueError(f"bit config names unknown layers {sorted(unknown)}; network {net.name!r} has {sorted(names)}")
  w_bits, out_bits, in_req = {}, {}, {}
  for name, v in config.items():
    if isinstance(v, Mapping):
      extra = set(v) - {"bits_in", "bits_w", "bits_out"}
      if extra:
        raise ValueError(f"bit config for {name!r}: unknown keys {sorted(extra)}")
      b_in, b_w, b_out = v.get("bits_in"), v.get("bits_w"), v.get("bits_out")
    else:
      try:
        b_in, b_w = v
      except (TypeError, ValueError):
        raise ValueError(f"bit config for {name!r}: expected [b_in, b_w], got {v!r}") from None
      b_out = None
    for label, b in (("bits_in", b_in), ("bits_w", b_w), ("bits_out", b_out)):
      if b is not None and b not in BITS:
        raise ValueError(f"bit config for {name!r}: {label} must be one of {BITS}, got {b!r}")
    if b_w is not None:
      w_bits[name] = b_w
    if b_out is not None:
      out_bits[name] = b_out
    if b_in is not None:
      src = net.layer(name).inputs[0]
      if in_req.get(src, b_in) != b_in:
        raise ValueError(f"bit config: consumers of {src!r} ask for {in_req[src]} and {b_in} input bits")
      in_req[src] = b_in
  for src, b in in_req.items():
    if src in out_bits and out_bits[src] != b:
      raise ValueError(f"bit config: {src!r} has bits_out {out_bits[src]} but its consumer asks bits_in {b}")
    out_bits[src] = b
  input_bits = out_bits.pop(NETWORK_INPUT, net.input_bits)
  layers = [dataclasses.replace(l, bits_w=w_bits.get(l.name, l.bits_w), bits_out=out_bits.get(l.name, l.bits_out))
            for l in net.layers]
  return _propagate(net.name, net.input_shape, input_bits, layers)
