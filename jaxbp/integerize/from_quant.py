"""Bridge from a quantized twin (`jaxbp.quant`) to an integer graph, and the twin-vs-integer fidelity check.

    tw = quant.twin.twin(config, policy)
    graph = integerize_twin(tw, variables, window)        # readoff -> integer graph
    x_int = input_codes(tw, variables, x)                 # the twin's own input quantizer, as integers
    report, outs = twin_fidelity(graph, tw, variables, x)  # per-layer errors in output quanta

Every read-off record maps to one integer node: conv -> conv ([K][Cin/g][Cout] kernel codes to
[Cout][K][Cin/g], int32 bias on ε_x·ε_w, folded BN, ReLU as an unsigned output grid), dense -> linear,
affine -> affine, mean -> global_avgpool, add/mul -> add/mul, sigmoid -> lut (the twin's own table),
maxpool (window w, zero padding (w-1)//2 left) -> maxpool, pad_channels -> pad_channels; dropout is the
identity; UNet1d's norm_prelu (InstanceNorm with per-example statistics + PReLU) -> norm_prelu (int64, see
`instnorm`), upsample2 -> upsample2, concat (centre crop) -> concat. A last node without an output grid gives
the int32 accumulator (per-channel quantum).

Imports JAX (the twin); the rest of `jaxbp.integerize` is NumPy only.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jaxbp.integerize.builder import GraphBuilder, Quant
from jaxbp.integerize.fidelity import FidelityReport, compare, to_ints
from jaxbp.integerize.graph import ACT_BITS, Graph, GraphError
from jaxbp.integerize.interpreter import run


def grid_quant(grid: dict[str, Any], where: str, act: str = "none") -> Quant:
  """The `Quant` of a read-off grid; errors for pruned (0-bit) grids and ReLU onto a signed grid."""
  bits, signed = int(grid["bits"]), bool(grid["signed"])
  if bits == 0:
    raise GraphError(f"{where}: the tensor is pruned (0 bits); remove the layer before integerizing")
  if bits not in ACT_BITS:
    raise GraphError(f"{where}: {bits}-bit activations are not supported (kernels take {ACT_BITS})")
  if act == "relu" and signed:
    raise GraphError(f"{where}: ReLU onto a signed grid is not an integer clip (expected an unsigned grid)")
  if act not in ("none", "relu"):
    raise GraphError(f"{where}: unknown activation {act!r}")
  narrow = signed and int(grid["qmin"]) == -(2 ** (bits - 1) - 1)
  lo = -(2 ** (bits - 1)) + int(narrow) if signed else 0
  if (int(grid["qmin"]), int(grid["qmax"])) != (lo, 2 ** (bits - int(signed)) - 1):
    raise GraphError(f"{where}: grid [{grid['qmin']}, {grid['qmax']}] is not a {bits}-bit "
                     f"{'signed' if signed else 'unsigned'} grid")
  if int(grid.get("zero_point", 0)) != 0:
    raise GraphError(f"{where}: asymmetric activation grids (zero point {grid['zero_point']}) are not supported")
  return Quant(bits, signed, float(grid["scale"]))  # the kernels clip signed outputs to the full grid (narrow: -2^(b-1) too)


def _sigmoid_codes(codes: Sequence[int], r: dict[str, Any]) -> np.ndarray:
  """The twin's sigmoid output codes for input codes (as `jaxbp.quant.readoff` computes its table)."""
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel

  from jaxbp.quant import quantizers as qz  # pylint: disable=import-outside-toplevel
  g_in, g_out = r["in"][0], r["out"]
  y = jax.nn.sigmoid(jnp.asarray(codes, jnp.float32) * jnp.float32(g_in["scale"]))
  q = qz.quantize_int(y, jnp.float32(g_out["scale"]), g_out["qmin"], g_out["qmax"], 0, g_out.get("rounding", "half_up"))
  return np.asarray(q, np.int32)


def graph_from_readoff(records: Sequence[dict[str, Any]], window: int, *, meta: dict[str, Any] | None = None
                       ) -> Graph:
  """The integer graph of `jaxbp.quant.read_off` records (input (window, 1))."""
  roundings = {r["out"].get("rounding") for r in records if "rounding" in r.get("out", {})}
  if len(roundings) > 1:
    raise GraphError(f"read-off: mixed rounding modes {roundings}")
  b = GraphBuilder(meta, rounding=roundings.pop() if roundings else "half_up")
  alias: dict[str, str] = {}
  last = None
  for r in records:
    name, op = r["name"], r["op"]
    where = f"layer {name!r} ({op})"
    ins = [alias.get(i, i) for i in r["inputs"]]
    out_grid = r["out"]
    acc = out_grid.get("kind") == "accumulator"
    out = None if acc or op in ("maxpool", "pad_channels", "dropout") else grid_quant(out_grid, where, r["act"])
    if op == "input":
      last = b.input(name, (window, 1) if isinstance(window, (int, np.integer)) else tuple(window), out)
    elif op in ("conv", "dense"):
      kernel = np.asarray(r["kernel_int"])
      w = np.moveaxis(kernel, -1, 0) if op == "conv" else kernel.T  # [K..][Cin/g][Cout] -> [Cout][K..][Cin/g]
      if np.abs(w).max(initial=0) > 127:
        raise GraphError(f"{where}: weight codes exceed int8")
      kw = {"w_bits": int(r["w_bits"]), "bias_int": r["bias_int"], "out": out}
      if r["act"] == "relu" and out is None:
        raise GraphError(f"{where}: a ReLU before an int32 accumulator output has no integer form")
      if op == "conv":
        last = b.conv(name, ins[0], w.astype(np.int8), np.asarray(r["w_scale"], np.float64), stride=int(r["stride"]),
                      padding=r["padding"], groups=int(r["groups"]), **kw)
      else:
        last = b.linear(name, ins[0], w.astype(np.int8), np.asarray(r["w_scale"], np.float64), **kw)
    elif op == "affine":
      last = b.affine(name, ins[0], r["scale"], r["shift"], out)
    elif op == "mean":
      last = b.global_avgpool(name, ins[0], out)
    elif op == "add":
      last = b.add(name, ins[0], ins[1], out)
    elif op == "mul":
      last = b.mul(name, ins[0], ins[1], out)
    elif op == "sigmoid":
      table = np.asarray(r["lut"])
      lo, hi = b.spec(ins[0]).range
      if len(table) == hi - lo:  # a narrow read-off grid lacks -2^(b-1), which the kernels' clip (and the twin's
        table = np.concatenate([_sigmoid_codes([lo], r), table])  # `pact_full`) produce: its entry as read_off's
      last = b.lut(name, ins[0], None, out, table=table)
    elif op == "maxpool":
      w = int(r["window"])
      last = b.maxpool(name, ins[0], w, stride=w, padding=[((w - 1) // 2, w - 1 - (w - 1) // 2)])
    elif op == "pad_channels":
      last = b.pad_channels(name, ins[0], *r["pad"])
    elif op == "dropout":
      alias[name] = ins[0]
    elif op == "norm_prelu":
      last = b.norm_prelu(name, ins[0], r["norm_scale"], r["norm_bias"], r["prelu"], out, eps=float(r["eps"]))
    elif op == "upsample2":
      last = b.upsample2(name, ins[0], out)
    elif op == "concat":
      last = b.concat(name, ins[0], ins[1], out)
    else:
      raise GraphError(f"{where}: unknown read-off op")
  return b.build([last])


def integerize_twin(tw, variables: dict[str, Any], window: int, *, meta: dict[str, Any] | None = None) -> Graph:
  """The integer graph of a quantized twin (`jaxbp.quant.twin.QuantTwin`) and its variables."""
  from jaxbp.quant import read_off  # pylint: disable=import-outside-toplevel
  info = {"source": "jaxbp.quant twin", "model": tw.graph.model, "window": window, **(meta or {})}
  return graph_from_readoff(read_off(tw, variables, window), window, meta=info)


def twin_values(tw, variables: dict[str, Any], x: np.ndarray, *, batch: int = 256) -> dict[str, np.ndarray]:
  """{node: real output (N, ...)} of every node of the twin (eval mode) on float inputs x (N, L, 1)."""
  import flax.linen as nn  # pylint: disable=import-outside-toplevel
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel

  from jaxbp.quant.qlayers import QNode, QTensor  # pylint: disable=import-outside-toplevel

  variables = {k: v for k, v in variables.items() if k in ("params", "gates")}

  def forward(v, xb):
    values = {}

    def interceptor(next_fun, args, kwargs, context):
      y = next_fun(*args, **kwargs)
      if isinstance(context.module, QNode) and context.method_name == "__call__":
        values[context.module.node.name] = y.value if isinstance(y, QTensor) else y
      return y

    with nn.intercept_methods(interceptor):
      tw.apply(v, xb, train=False)
    return values

  fn = jax.jit(forward)
  chunks = [jax.device_get(fn(variables, jnp.asarray(x[i:i + batch], jnp.float32)))
            for i in range(0, len(x), batch)]
  return {k: np.concatenate([np.asarray(c[k]) for c in chunks]) for k in chunks[0]}


def twin_fidelity(graph: Graph, tw, variables: dict[str, Any], x: np.ndarray
                  ) -> tuple[FidelityReport, dict[str, np.ndarray]]:
  """(per-layer fidelity, {"twin": twin output, "integer": dequantized integer output}) on float inputs x.

  The integer graph is fed the twin's own input codes (its input quantizer's output), so the comparison
  covers the integer network alone.
  """
  ref = twin_values(tw, variables, x)
  names = {n.output for n in graph.nodes} | set(graph.inputs)
  ref = {k: v for k, v in ref.items() if k in names}
  x_int = to_ints(graph.tensors[graph.inputs[0]], ref[graph.inputs[0]])
  env = run(graph, x_int, keep_all=True)
  out = graph.outputs[0]
  return compare(graph, env, ref), {"twin": ref[out], "integer": graph.tensors[out].dequantize(env[out]),
                                    "input_codes": x_int}


def twin_sensitivity(tw, variables: dict[str, Any], x: np.ndarray, input_scale: float, fraction: float, *,
                     seed: int = 0, batch: int = 256) -> np.ndarray:
  """|twin(x') − twin(x)| where x' moves a random `fraction` of the inputs by ±one input quantum.

  The baseline for end-to-end fidelity: rare one-quantum differences between the integer model and the
  twin propagate like this through the network, so an end-to-end gap of the same size is the model's own
  sensitivity, not an integer error. x: float inputs (N, L, 1); returns the absolute output change (N, ...).
  """
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel

  v = {k: val for k, val in variables.items() if k in ("params", "gates")}
  fn = jax.jit(lambda xb: tw.apply(v, xb, train=False))
  rng = np.random.default_rng(seed)
  flip = (rng.random(x.shape) < fraction) * rng.choice([-1.0, 1.0], x.shape) * input_scale
  run_all = lambda xs: np.concatenate([np.asarray(fn(jnp.asarray(xs[i:i + batch], jnp.float32)))
                                       for i in range(0, len(xs), batch)])
  return np.abs(run_all(x + flip) - run_all(x))


# ---------------------------------------------------------------------------------------------------
# A quantized-model directory: what `tools/export.py` integerizes and exports.

QUANT_MODEL_FILE = "quant_model.json"
VARIABLES_FILE = "variables.npz"
_SEP = "::"


def save_quant_model(directory, config, policy, variables: dict[str, Any], window: int,
                     meta: dict[str, Any] | None = None):
  """Writes `quant_model.json` (model config, quantization policy, window, meta) and `variables.npz`
  (the twin's "params"/"gates", keys "::"-joined paths) into `directory`. Returns the directory path."""
  from jaxbp.models import config_to_dict  # pylint: disable=import-outside-toplevel

  directory = pathlib.Path(directory)
  directory.mkdir(parents=True, exist_ok=True)
  save_variables(directory / VARIABLES_FILE, {k: v for k, v in variables.items() if k in ("params", "gates")})
  doc = {"format": "jaxbp.quant_model", "version": 1, "config": config_to_dict(config),
         "policy": dataclasses.asdict(policy), "window": int(window), "meta": meta or {}}
  (directory / QUANT_MODEL_FILE).write_text(json.dumps(doc, indent=1, default=list))
  return directory


def load_quant_model(directory):
  """(twin, variables, window, meta) from a directory written by `save_quant_model`; errors name the file/field."""
  from jaxbp.quant import twin  # pylint: disable=import-outside-toplevel

  directory = pathlib.Path(directory)
  path = directory / QUANT_MODEL_FILE
  doc = json.loads(path.read_text())
  for field in ("config", "policy", "window"):
    if field not in doc:
      raise GraphError(f"{path}: missing field {field!r}")
  config, policy = _config_and_policy(doc["config"], doc["policy"], path)
  return twin(config, policy), load_variables(directory / VARIABLES_FILE), int(doc["window"]), doc.get("meta", {})


def _config_and_policy(config: dict[str, Any], policy: dict[str, Any], path):
  from jaxbp.models import config_from_dict  # pylint: disable=import-outside-toplevel
  from jaxbp.quant import BBConfig, QuantConfig  # pylint: disable=import-outside-toplevel
  pol = dict(policy)
  bb = pol.get("bayesian_bits")
  if bb is not None:
    pol["bayesian_bits"] = BBConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in bb.items()})
  try:
    return config_from_dict(config), QuantConfig(**pol)
  except (TypeError, ValueError) as e:
    raise GraphError(f"{path}: {e}") from e


QAT_VARIABLES_FILE = "int8.msgpack"


def is_qat_rotation(directory) -> bool:
  """Whether `directory` is a rotation of `experiments/qat.py` (int8.msgpack, config.json one level up)."""
  directory = pathlib.Path(directory)
  return (directory / QAT_VARIABLES_FILE).is_file() and (directory.parent / "config.json").is_file()


def load_qat_rotation(directory):
  """(twin, variables, window, meta) of a rotation directory written by `experiments/qat.py`."""
  from jaxbp.quant import pipeline, twin  # pylint: disable=import-outside-toplevel
  directory = pathlib.Path(directory)
  path = directory.parent / "config.json"
  doc = json.loads(path.read_text())
  for field in ("model", "policy", "dataset"):
    if field not in doc:
      raise GraphError(f"{path}: missing field {field!r}")
  config, policy = _config_and_policy(doc["model"], doc["policy"], path)
  variables = pipeline.load_variables(directory / QAT_VARIABLES_FILE)
  meta = {"source": str(directory / QAT_VARIABLES_FILE), "dataset": doc["dataset"].get("name")}
  return twin(config, policy), variables, int(doc["dataset"]["window"]), meta


def save_variables(path, variables: dict[str, Any]) -> None:
  """Nested dicts of arrays -> one .npz keyed by "::"-joined paths (node names contain "/")."""
  flat: dict[str, np.ndarray] = {}

  def walk(prefix: tuple[str, ...], tree: Any) -> None:
    if isinstance(tree, Mapping):
      for k, v in tree.items():
        walk(prefix + (str(k),), v)
    else:
      flat[_SEP.join(prefix)] = np.asarray(tree)

  walk((), variables)
  with open(path, "wb") as f:
    np.savez(f, **flat)


def load_variables(path) -> dict[str, Any]:
  """Inverse of `save_variables`."""
  variables: dict[str, Any] = {}
  with np.load(path) as z:
    for key in z.files:
      node = variables
      *parents, leaf = key.split(_SEP)
      for part in parents:
        node = node.setdefault(part, {})
      node[leaf] = z[key]
  return variables
