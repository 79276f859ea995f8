"""Static descriptions of the benchmark's datasets (folder, folds, window length).

See `shared/docs/bp-benchmark.md`. All signals are sampled at `FS` = 125 Hz.
"""

from __future__ import annotations

import dataclasses

FS = 125  # Hz, every dataset of the benchmark.


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """What a `<folder>/signal_fold_<i>.mat` dataset must look like.

  Attributes:
    name: short name used on the command line ("ppgbp", "uci", ...).
    folder: directory under the data root, e.g. "ppgbp_dataset".
    n_folds: number of `signal_fold_<i>.mat` files (i = 0..n_folds-1).
    window: samples per PPG (and ABP) window.
    has_abp: whether an `abp_signal` column (ABP waveform, mmHg) is required.
    protocol: "cv" (test k, val k+1, train rest) or "holdout" (fold0 test, fold1 val, fold2 train).
  """

  name: str
  folder: str
  n_folds: int
  window: int
  has_abp: bool
  protocol: str = "cv"


SPECS: dict[str, DatasetSpec] = {
    "ppgbp": DatasetSpec("ppgbp", "ppgbp_dataset", 5, 262, False),
    "bcg": DatasetSpec("bcg", "bcg_dataset", 5, 625, True),
    "sensors": DatasetSpec("sensors", "sensors_dataset", 5, 625, True),
    "uci": DatasetSpec("uci", "uci2_dataset", 3, 625, True, protocol="holdout"),
    # A real sig2sig fixture: 42 MIMIC windows of one patient, one fold (smoke runs only).
    "mimic_sample": DatasetSpec("mimic_sample", "mimic_sample_dataset", 1, 625, True, protocol="single"),
    # The embedded default written by `jaxbp.data.synthetic` (PPGBP-like windows, with ABP).
    "synthetic": DatasetSpec("synthetic", "synthetic_dataset", 5, 262, True),
}


def get_spec(name: str) -> DatasetSpec:
  """Returns the spec of dataset `name`; raises ValueError listing the known names."""
  try:
    return SPECS[name]
  except KeyError:
    raise ValueError(f"unknown dataset {name!r}; expected one of {sorted(SPECS)}") from None
