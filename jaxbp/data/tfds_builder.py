"""TFDS builder for the benchmark's .mat folds (array_record, no TensorFlow needed).

One builder, `BpBenchmark` ("bp_benchmark"), with one config per dataset in
`SPECS`. The user's data root (the directory containing `<spec.folder>`) is the
TFDS manual directory; reading and validation reuse `load_dataset`. Splits are
"fold0".."fold{n-1}". Read back with `builder.as_data_source()` (TFRecord,
`as_dataset` and `tfds.load` need TensorFlow and are not used).

Features of every example:
  ppg: (L,) float32 raw PPG.
  abp: (L,) float32 ABP, mmHg (only for datasets with ABP).
  sbp, dbp: () float32, mmHg.
  subject, trial: () str features (stored as UTF-8 bytes, read back as `bytes`;
    TFDS encodes them without TensorFlow).
  index: () int64 row of the window in its .mat file (order is restored from it).
  meta: () str, JSON of the other columns of that row: {col: [value, dtype]}.

This module imports tensorflow_datasets: import it explicitly, never from
`jaxbp.data.__init__`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from jaxbp.data.benchmark_files import Fold, load_dataset, resolve_dataset_dir
from jaxbp.data.specs import SPECS, DatasetSpec, get_spec

FILE_FORMAT = "array_record"


@dataclasses.dataclass(eq=False)
class BpBenchmarkConfig(tfds.core.BuilderConfig):
  """Builder config of one benchmark dataset (`name` = spec name)."""

  spec: DatasetSpec | None = None


def _meta_row(meta: dict[str, np.ndarray], i: int) -> str:
  return json.dumps({c: [v[i].tolist(), v.dtype.str] for c, v in meta.items()})


def _meta_columns(rows: list[str]) -> dict[str, np.ndarray]:
  decoded = [json.loads(r) for r in rows]
  if not decoded:
    return {}
  return {c: np.asarray([d[c][0] for d in decoded], dtype=np.dtype(t))
          for c, (_, t) in decoded[0].items()}


class BpBenchmark(tfds.core.GeneratorBasedBuilder):
  """The PPG blood-pressure benchmark folds (González et al. 2023)."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  BUILDER_CONFIGS = [
      BpBenchmarkConfig(name=s.name, description=f"{s.folder}: {s.n_folds} folds, window "
                        f"{s.window}, ABP: {s.has_abp}, protocol {s.protocol}", spec=s)
      for s in SPECS.values()
  ]
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "Download the benchmark's datasets (Figshare collection of "
      "inventec-ai-center/bp-benchmark) and unzip them so that the manual directory "
      "contains `<name>_dataset/signal_fold_<i>.mat`, e.g. `ppgbp_dataset/`.")

  # TFDS 4.9.10 derives `code_path` via `importlib_resources`, which it does not
  # install; for a builder inside a package that raises ModuleNotFoundError.
  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls) -> epath.Path:
    return epath.Path(__file__)

  @property
  def spec(self) -> DatasetSpec:
    return self.builder_config.spec

  def _info(self) -> tfds.core.DatasetInfo:
    spec = self.spec
    features: dict[str, Any] = {
        "ppg": tfds.features.Tensor(shape=(spec.window,), dtype=np.float32),
        "sbp": tfds.features.Tensor(shape=(), dtype=np.float32),
        "dbp": tfds.features.Tensor(shape=(), dtype=np.float32),
        "subject": tfds.features.Tensor(shape=(), dtype=np.str_),
        "trial": tfds.features.Tensor(shape=(), dtype=np.str_),
        "index": tfds.features.Tensor(shape=(), dtype=np.int64),
        "meta": tfds.features.Tensor(shape=(), dtype=np.str_),
    }
    if spec.has_abp:
      features["abp"] = tfds.features.Tensor(shape=(spec.window,), dtype=np.float32)
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__,
        features=tfds.features.FeaturesDict(features),
        disable_shuffling=True,
        homepage="https://github.com/inventec-ai-center/bp-benchmark",
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    folds = load_dataset(os.fspath(dl_manager.manual_dir), self.spec)
    return {f"fold{i}": self._generate_examples(fold) for i, fold in enumerate(folds)}

  def _generate_examples(self, fold: Fold) -> Iterator[tuple[int, dict[str, Any]]]:
    for i in range(fold.n):
      example = {
          "ppg": fold.ppg[i],
          "sbp": fold.sbp[i],
          "dbp": fold.dbp[i],
          "subject": str(fold.subject[i]),
          "trial": str(fold.trial[i]),
          "index": i,
          "meta": _meta_row(fold.meta, i),
      }
      if fold.abp is not None:
        example["abp"] = fold.abp[i]
      yield i, example


def _decode(v: Any) -> str:
  return v.decode("utf-8") if isinstance(v, bytes) else str(v)


def _read_split(builder: BpBenchmark, source: Any, split: str) -> Fold:
  """Reads a whole split of `builder.as_data_source()` back into a `Fold`."""
  n = len(source)
  records = source.__getitems__(list(range(n))) if n else []
  records = sorted(records, key=lambda r: int(r["index"]))
  spec = builder.spec
  files = builder.info.splits[split].filepaths
  return Fold(
      ppg=np.stack([r["ppg"] for r in records]).astype(np.float32),
      sbp=np.asarray([r["sbp"] for r in records], np.float32),
      dbp=np.asarray([r["dbp"] for r in records], np.float32),
      abp=np.stack([r["abp"] for r in records]).astype(np.float32) if spec.has_abp else None,
      subject=np.asarray([_decode(r["subject"]) for r in records], dtype=str),
      trial=np.asarray([_decode(r["trial"]) for r in records], dtype=str),
      meta=_meta_columns([_decode(r["meta"]) for r in records]),
      source=",".join(os.fspath(f) for f in files),
  )


def prepare(root: str | os.PathLike[str], spec_or_name: DatasetSpec | str,
            data_dir: str | os.PathLike[str]) -> BpBenchmark:
  """Builds (once; cached in `data_dir`) and returns the builder of a dataset."""
  spec = get_spec(spec_or_name) if isinstance(spec_or_name, str) else spec_or_name
  if SPECS.get(spec.name) != spec:
    raise ValueError(f"BpBenchmark has configs only for the specs in SPECS; got {spec}")
  builder = BpBenchmark(config=spec.name, data_dir=os.fspath(data_dir), file_format=FILE_FORMAT)
  if not builder.is_prepared():
    resolve_dataset_dir(root, spec)  # Clear DataFormatError before TFDS's own checks.
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=os.fspath(root)))
  return builder


def load_dataset_tfds(root: str | os.PathLike[str], spec_or_name: DatasetSpec | str,
                      data_dir: str | os.PathLike[str]) -> list[Fold]:
  """Like `load_dataset`, through a cached TFDS array_record copy in `data_dir`.

  The first call builds the dataset from `root` (validated by `load_dataset`);
  later calls read the cache and do not look at `root` (delete the cache to
  rebuild after the .mat files change). Equal to `load_dataset(root, ...)`
  except `source`, which names the array_record files.
  """
  builder = prepare(root, spec_or_name, data_dir)
  sources = builder.as_data_source()
  return [_read_split(builder, sources[f"fold{i}"], f"fold{i}")
          for i in range(builder.spec.n_folds)]
