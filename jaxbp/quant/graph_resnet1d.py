"""The quantized graph of a ResNet1d config (seed or exported NAS candidate with "conv"/"dw"/"id" slots).

Mirrors `jaxbp.models.resnet1d` exactly (same shapes, same eval-mode function when nothing is quantized):

  input(signed) → stem_conv(+stem_bn folded, ReLU, PACT) → stem_pool
  block i: [i>0: bn1 affine + ReLU + PACT → dropout] → conv1 slot (+bn2 folded, ReLU, PACT) → dropout
           → conv2 slot (signed) → SE: mean(signed) → fc1(ReLU, PACT) → fc2(signed 8b, pre-sigmoid)
           → sigmoid(fixed unsigned 8b, 1/255) → mul(signed); skip: maxpool(stride) → pad_channels
           → add(signed: the residual stream)
  head_bn affine + ReLU + PACT → head_pool mean(unsigned) → head dense (int32 accumulator output)

A "dw" slot becomes `<slot>/depthwise` (signed output) and `<slot>/pointwise` (BN folded into the pointwise);
an "id" conv1 leaves bn2 as a standalone affine (`<block>/bn2`); an "id" conv2 is no node at all.
"""

from __future__ import annotations

from jaxbp.models.layers import SlotSpec, resolve_ops
from jaxbp.models.resnet1d import ResNet1dConfig
from jaxbp.quant.graph import SIGNED, UNSIGNED, GridSpec, Node, QGraph

PRE_SIGMOID = GridSpec(signed=True, bits=8, searchable=False)
SIGMOID_OUT = GridSpec(signed=False, bits=8, scale=1.0 / 255.0, searchable=False)


class _Builder:
  def __init__(self):
    self.nodes: list[Node] = []
    self.signed: dict[str, bool] = {}

  def add(self, node: Node) -> str:
    self.nodes.append(node)
    grid = node.out if node.out is not None else None
    self.signed[node.name] = grid.signed if grid is not None else (
        self.signed[node.inputs[0]] if node.inputs else True)
    return node.name

  def slot(self, name: str, spec: SlotSpec, op: str, x: str, *, src: tuple[str, ...], bn: tuple[str, ...],
           act: str, out: GridSpec) -> str:
    """The nodes of one conv slot; BN `bn` (may be empty) folded into its last conv."""
    if op == "conv":
      return self.add(Node(name, "conv", (x,), out, act, spec=spec, src=src + ("conv",), bn=bn))
    if op == "dw":
      dw = SlotSpec(spec.in_features, spec.in_features, spec.kernel, spec.stride, spec.in_features, False,
                    spec.padding)
      pw = SlotSpec(spec.in_features, spec.features, 1, 1, 1, spec.use_bias, "SAME")
      h = self.add(Node(f"{name}/depthwise", "conv", (x,), SIGNED, spec=dw, src=src + ("depthwise",)))
      return self.add(Node(f"{name}/pointwise", "conv", (h,), out, act, spec=pw, src=src + ("pointwise",), bn=bn))
    if op == "id":
      if bn:  # the BN now follows no conv: a standalone per-channel affine.
        return self.add(Node(f"{name.rsplit('/', 1)[0]}/{bn[-1]}", "affine", (x,), out, act, src=bn))
      return x
    raise ValueError(f"layer {name!r}: unknown op {op!r}")


def resnet1d_graph(cfg: ResNet1dConfig) -> QGraph:
  """The quantized graph of a ResNet1d config."""
  specs = cfg.slot_specs()
  b = _Builder()
  add_resnet1d_nodes(b, cfg, dict(zip(specs, resolve_ops(cfg.ops, list(specs), "ResNet1d"))))
  return QGraph(tuple(b.nodes), "resnet1d")


def add_resnet1d_nodes(b: _Builder, cfg: ResNet1dConfig, ops: dict[str, str]) -> None:
  """Adds a ResNet1d's nodes to builder `b`: every conv slot through `b.slot(name, spec, ops[name], ...)` (the
  quantized graph's builder, or the joint search's, which makes each slot a choice)."""
  specs = cfg.slot_specs()
  x = b.add(Node("input", "input", (), SIGNED))
  x = b.slot("stem_conv", specs["stem_conv"], ops["stem_conv"], x, src=("stem_conv",), bn=("stem_bn",),
             act="relu", out=UNSIGNED)
  x = b.add(Node("stem_pool", "maxpool", (x,), window=cfg.downsample))
  for i in range(cfg.n_blocks):
    p = f"block{i}"
    cin, cout, stride = cfg.block_channels(i)
    identity = h = x
    if i > 0:
      h = b.add(Node(f"{p}/bn1", "affine", (h,), UNSIGNED, "relu", src=(p, "bn1")))
      h = b.add(Node(f"{p}/drop1", "dropout", (h,), rate=cfg.dropout))
    h = b.slot(f"{p}/conv1", specs[f"{p}/conv1"], ops[f"{p}/conv1"], h, src=(p, "conv1"), bn=(p, "bn2"),
               act="relu", out=UNSIGNED)
    h = b.add(Node(f"{p}/drop2", "dropout", (h,), rate=cfg.dropout))
    h = b.slot(f"{p}/conv2", specs[f"{p}/conv2"], ops[f"{p}/conv2"], h, src=(p, "conv2"), bn=(), act="none",
               out=SIGNED)
    if cfg.se:
      grid = GridSpec(signed=b.signed[h])
      hidden = max(cout // cfg.se_reduction, cfg.se_min)
      s = b.add(Node(f"{p}/se/pool", "mean", (h,), grid))
      s = b.add(Node(f"{p}/se/fc1", "dense", (s,), UNSIGNED, "relu", features=hidden, src=(p, "se", "fc1")))
      s = b.add(Node(f"{p}/se/fc2", "dense", (s,), PRE_SIGMOID, features=cout, src=(p, "se", "fc2")))
      s = b.add(Node(f"{p}/se/sigmoid", "sigmoid", (s,), SIGMOID_OUT))
      h = b.add(Node(f"{p}/se/mul", "mul", (h, s), grid))
    if stride > 1:
      identity = b.add(Node(f"{p}/skip_pool", "maxpool", (identity,), window=stride))
    if cout != cin:
      front = (cout - cin) // 2
      identity = b.add(Node(f"{p}/skip_pad", "pad_channels", (identity,), pad=(front, cout - cin - front)))
    x = b.add(Node(f"{p}/add", "add", (h, identity), SIGNED))
  x = b.add(Node("head_bn", "affine", (x,), UNSIGNED, "relu", src=("head_bn",)))
  x = b.add(Node("head_pool", "mean", (x,), UNSIGNED))
  b.add(Node("head", "dense", (x,), None, features=cfg.n_outputs, use_bias=True, src=("head",)))
