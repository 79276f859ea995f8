"""One entry point from command-line flags to validated folds: real files, TFDS cache, or the synthetic default."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from jaxbp.data.benchmark_files import Fold, load_dataset
from jaxbp.data.specs import DatasetSpec, get_spec

LOADERS = ("mat", "tfds")


def default_cache_dir() -> Path:
  """Where the synthetic default dataset and TFDS caches go: $JAXBP_CACHE or ~/.cache/jaxbp."""
  return Path(os.environ.get("JAXBP_CACHE", Path.home() / ".cache" / "jaxbp"))


def load_folds(dataset: str | None, data_dir: str | Path | None, *, loader: str = "mat", drop_nan: bool = False,
               cache_dir: str | Path | None = None) -> tuple[DatasetSpec, Sequence[Fold]]:
  """(spec, folds) for `dataset` under `data_dir`.

  With no `data_dir`, the synthetic dataset is generated (once) under the cache dir and read through the
  same benchmark-file reader a real dataset goes through. `loader="tfds"` prepares/reads the TFDS
  array_record cache instead of the .mat files directly.
  """
  cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
  if loader not in LOADERS:
    raise ValueError(f"unknown loader {loader!r}; expected one of {LOADERS}")
  if data_dir is None:
    if dataset not in (None, "synthetic"):
      raise ValueError(f"dataset {dataset!r} needs --data-dir (the folder holding {get_spec(dataset).folder}/); "
                       "leave both out for the synthetic default")
    from jaxbp.data.synthetic import ensure_synthetic_dataset  # pylint: disable=g-import-not-at-top
    data_dir = ensure_synthetic_dataset(cache / "synthetic")
    dataset = "synthetic"
  spec = get_spec(dataset or "synthetic")
  if loader == "tfds":
    from jaxbp.data.tfds_builder import load_dataset_tfds  # pylint: disable=g-import-not-at-top
    return spec, load_dataset_tfds(data_dir, spec, cache / "tfds")
  return spec, load_dataset(data_dir, spec, drop_nan=drop_nan)
