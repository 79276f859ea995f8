"""Reader for the benchmark's `<root>/<folder>/signal_fold_<i>.mat` files.

Each file holds one variable per column, written by the benchmark as
`scipy.io.savemat(path, {col: np.vstack(df[col].values)})` (see
`shared/docs/bp-benchmark.md`). `load_dataset` reads and validates every fold
of a dataset and returns one `Fold` per file.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from pathlib import Path

import numpy as np
import scipy.io

from jaxbp.data.specs import DatasetSpec, get_spec

PPG_COL = "signal"
ABP_COL = "abp_signal"
SBP_COL = "SP"
DBP_COL = "DP"
SUBJECT_COL = "patient"
TRIAL_COL = "trial"
_CORE_COLS = (SUBJECT_COL, TRIAL_COL, SBP_COL, DBP_COL, PPG_COL)


class DataFormatError(ValueError):
  """A dataset file or folder does not match the benchmark format."""


@dataclasses.dataclass(frozen=True, eq=False)
class Fold:
  """One `signal_fold_<i>.mat` file: N windows of one fold.

  Attributes:
    ppg: (N, L) float32 raw PPG (baseline removed, not normalized).
    sbp: (N,) float32 systolic BP, mmHg.
    dbp: (N,) float32 diastolic BP, mmHg.
    abp: (N, L) float32 ABP waveform in mmHg, or None (e.g. PPGBP).
    subject: (N,) str subject ids (integer ids converted to str).
    trial: (N,) str window ids, trailing spaces stripped.
    meta: other columns by name, (N,) or (N, k) arrays (e.g. PPGBP's
      "Age(year)"); string columns have trailing spaces stripped.
    source: path of the file it was read from.
  """

  ppg: np.ndarray
  sbp: np.ndarray
  dbp: np.ndarray
  abp: np.ndarray | None
  subject: np.ndarray
  trial: np.ndarray
  meta: dict[str, np.ndarray]
  source: str

  @property
  def n(self) -> int:
    """Number of windows N."""
    return int(self.ppg.shape[0])


def fold_filename(i: int) -> str:
  """File name of fold `i`, e.g. "signal_fold_0.mat"."""
  return f"signal_fold_{i}.mat"


def resolve_dataset_dir(root: str | os.PathLike[str], spec: DatasetSpec) -> Path:
  """Returns the dataset folder: `<root>/<spec.folder>`, or `root` itself if named so.

  Raises:
    DataFormatError: if neither exists.
  """
  root = Path(root)
  if not root.is_dir():
    raise DataFormatError(
        f"data directory {str(root)!r} does not exist (expected a directory containing "
        f"{spec.folder!r} for dataset {spec.name!r})")
  candidate = root / spec.folder
  if candidate.is_dir():
    return candidate
  if root.name == spec.folder:
    return root
  raise DataFormatError(
      f"dataset folder {str(candidate)!r} does not exist: dataset {spec.name!r} expects "
      f"{spec.folder}/signal_fold_<i>.mat under {str(root)!r}")


def _read_mat(path: Path) -> dict[str, np.ndarray]:
  try:
    raw = scipy.io.loadmat(str(path))
  except Exception as e:  # scipy raises many types (IndexError, MatReadError, ...).
    raise DataFormatError(
        f"{path}: unreadable .mat file ({type(e).__name__}: {e})") from e
  return {k: v for k, v in raw.items() if not k.startswith("__")}


def _as_rows(v: np.ndarray) -> np.ndarray:
  """Squeezes a per-window column: (N, 1) -> (N,); (N, k) stays (N, k)."""
  v = np.asarray(v)
  if v.ndim == 2 and v.shape[1] == 1:
    return v[:, 0]
  return v


def _strip(v: np.ndarray) -> np.ndarray:
  """Strips the trailing spaces MATLAB char arrays pad strings with."""
  return np.char.rstrip(v, " ") if v.dtype.kind == "U" else v


def _ids_to_str(v: np.ndarray) -> np.ndarray:
  """Converts an id column to str (tightest width): ints and integral floats without '.0'."""
  integral = v.dtype.kind in "iub" or (
      v.dtype.kind == "f" and np.all(np.isfinite(v)) and np.all(v == np.round(v)))
  ids = v.astype(np.int64).astype(str) if integral else _strip(v.astype(str))
  return np.asarray(ids.tolist(), dtype=str)


def _as_float(path: Path, name: str, v: np.ndarray) -> np.ndarray:
  try:
    return np.asarray(v, dtype=np.float64)
  except (TypeError, ValueError) as e:
    raise DataFormatError(
        f"{path}: column {name!r} is not numeric (dtype {v.dtype})") from e


def load_fold(path: str | os.PathLike[str], spec: DatasetSpec, *,
              drop_nan: bool = False) -> Fold:
  """Reads and validates one `signal_fold_<i>.mat` file.

  Args:
    path: the .mat file.
    spec: what the file must contain (window length, ABP or not).
    drop_nan: drop windows with NaN/inf in signal/abp_signal/SP/DP (with a
      warning) instead of raising.

  Returns:
    The fold, float32 signals and labels (mmHg).

  Raises:
    DataFormatError: missing file or column, wrong window length, row-count
      mismatch, non-finite values (unless `drop_nan`), or an empty fold.
  """
  path = Path(path)
  if not path.is_file():
    raise DataFormatError(f"{path}: fold file not found (expected {path.name} in {path.parent})")
  cols = _read_mat(path)

  required = _CORE_COLS + ((ABP_COL,) if spec.has_abp else ())
  missing = [c for c in required if c not in cols]
  if missing:
    raise DataFormatError(
        f"{path}: missing required column(s) {missing}; columns found: {sorted(cols)}")

  rows = {k: _as_rows(v) for k, v in cols.items()}
  n = rows[PPG_COL].shape[0]
  if rows[PPG_COL].size == 0 or n == 0:
    raise DataFormatError(f"{path}: empty fold (0 windows)")
  counts = {k: v.shape[0] if v.ndim else 1 for k, v in rows.items()}
  bad = {k: c for k, c in counts.items() if c != n}
  if bad:
    raise DataFormatError(
        f"{path}: row-count mismatch between columns: {PPG_COL!r} has {n} rows but {bad}")

  waves = (PPG_COL, ABP_COL) if spec.has_abp else (PPG_COL,)
  for c in waves:
    v = rows[c]
    length = v.shape[1] if v.ndim == 2 else 1
    if v.ndim > 2 or length != spec.window:
      raise DataFormatError(
          f"{path}: wrong window length in column {c!r}: expected {spec.window} samples "
          f"(dataset {spec.name!r}), got {length} (shape {v.shape})")

  for c in (SBP_COL, DBP_COL):
    if rows[c].ndim != 1:
      raise DataFormatError(
          f"{path}: column {c!r} must hold one value per window, got shape {cols[c].shape}")
  # Windows with NaN/inf in any of these columns are bad.
  numeric = {c: _as_float(path, c, rows[c]) for c in waves + (SBP_COL, DBP_COL)}
  nonfinite = {c: ~np.isfinite(v).reshape(n, -1).all(axis=1) for c, v in numeric.items()}
  counts_bad = {c: int(m.sum()) for c, m in nonfinite.items() if m.any()}
  keep = np.ones(n, bool)
  if counts_bad:
    detail = ", ".join(f"{k} window(s) in column {c!r}" for c, k in counts_bad.items())
    if not drop_nan:
      raise DataFormatError(
          f"{path}: NaN/inf values in {detail} (pass drop_nan=True to drop those windows)")
    for m in nonfinite.values():
      keep &= ~m
    warnings.warn(
        f"{path}: dropped {int(n - keep.sum())} of {n} window(s) with NaN/inf ({detail})",
        stacklevel=2)
    if not keep.any():
      raise DataFormatError(f"{path}: empty fold (all {n} windows have NaN/inf)")

  used = set(_CORE_COLS) | ({ABP_COL} if spec.has_abp else set())
  meta = {c: _strip(v)[keep] for c, v in rows.items() if c not in used}
  return Fold(
      ppg=numeric[PPG_COL][keep].astype(np.float32),
      sbp=numeric[SBP_COL][keep].astype(np.float32),
      dbp=numeric[DBP_COL][keep].astype(np.float32),
      abp=numeric[ABP_COL][keep].astype(np.float32) if spec.has_abp else None,
      subject=_ids_to_str(rows[SUBJECT_COL])[keep],
      trial=_ids_to_str(rows[TRIAL_COL])[keep],
      meta=meta,
      source=str(path),
  )


def check_disjoint_subjects(folds: list[Fold]) -> None:
  """Raises DataFormatError if a subject appears in two folds (naming both files)."""
  owner: dict[str, str] = {}
  for fold in folds:
    for s in np.unique(fold.subject):
      first = owner.setdefault(str(s), fold.source)
      if first != fold.source:
        raise DataFormatError(
            f"subject {str(s)!r} appears in two folds: {first} and {fold.source} "
            "(the benchmark's folds are per-subject)")


def load_dataset(root: str | os.PathLike[str], spec_or_name: DatasetSpec | str, *,
                 drop_nan: bool = False) -> list[Fold]:
  """Reads all folds of a dataset.

  Args:
    root: directory containing `<spec.folder>`, or that folder itself.
    spec_or_name: a `DatasetSpec` or a name in `SPECS` ("ppgbp", ...).
    drop_nan: see `load_fold`.

  Returns:
    `spec.n_folds` folds, fold i read from `signal_fold_<i>.mat`.

  Raises:
    DataFormatError: see `load_fold`; also a missing folder or fold file, and,
      for "cv" datasets, a subject present in two folds.
  """
  spec = get_spec(spec_or_name) if isinstance(spec_or_name, str) else spec_or_name
  folder = resolve_dataset_dir(root, spec)
  paths = [folder / fold_filename(i) for i in range(spec.n_folds)]
  for i, p in enumerate(paths):
    if not p.is_file():
      found = sorted(q.name for q in folder.glob("signal_fold_*.mat"))
      raise DataFormatError(
          f"{folder}: missing fold file {p.name} (fold {i} of {spec.n_folds} for dataset "
          f"{spec.name!r}); fold files found: {found}")
  folds = [load_fold(p, spec, drop_nan=drop_nan) for p in paths]
  if spec.protocol == "cv":
    check_disjoint_subjects(folds)
  return folds
