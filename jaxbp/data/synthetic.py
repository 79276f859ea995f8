"""Synthetic PPG/ABP windows in the benchmark's on-disk format: the embedded default dataset.

Each subject has an age, a resting BP, a heart rate, a height and an arterial stiffness
(pulse-wave velocity, PWV, rising with age and with mean arterial pressure). A beat of pressure is
a forward systolic wave, a reflected wave whose delay is ~ distance / PWV, a dicrotic wave after
ejection and a windkessel run-off, scaled so that its foot is the DBP and its top the SBP of that
beat. The finger PPG is a wider, later volume pulse built from the same beats (its diastolic peak
is the reflected wave, delayed by height / PWV, with a size set by stiffness and by a vascular-tone
nuisance), plus residual baseline wander, white noise and a random gain/offset (not normalized).
The BP is therefore predictable from the z-scored PPG shape through stiffness (which sets most of a
subject's SBP: the PPG's rise time and its reflected wave's delay and size) and heart rate (tied to DBP),
which correlate strongly with but do not determine it (version 2 made this link strong enough for the
seed network to beat the naive baseline clearly on the default sweep's budget; version 3 ties DBP more to SBP
(0.8 vs 0.55 of its spread) and heart rate more to DBP, so DBP is predictable too: the seed's rotation-0 DBP
MAE 5.1-5.8 mmHg against the naive 7.6 over three seeds at 100 epochs).

SP/DP labels come from the generated ABP with the benchmark's own sig2sig rule
(`jaxbp.metrics.sig2sig.sbp_dbp_from_abp`); a window where the rule finds no beat is redrawn.
Everything is drawn from `np.random.default_rng([seed, subject])`, so a dataset is a pure
function of its config.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import scipy.io

from jaxbp.data.specs import FS, SPECS
from jaxbp.metrics.sig2sig import sbp_dbp_from_abp

GENERATOR_VERSION = 3  # Bump when the generated numbers change; invalidates cached datasets.
_MAX_TRIES = 20  # Redraws of a window whose ABP yields no SP/DP before it is dropped.
_PAD_S = 1.0  # Seconds simulated on each side of a window (filter and beat-phase margin).
# The columns of a fold file, in the benchmark's format.
_COLUMNS = ("patient", "trial", "SP", "DP", "signal", "abp_signal", "Age(year)", "Heart Rate(b/m)")


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
  """Size and realism knobs of the synthetic dataset.

  Attributes:
    n_subjects: number of subjects (patient ids 1..n_subjects).
    windows_per_subject: windows drawn per subject (trial ids "<patient>_<1..w>").
    window: samples per window (262 = 2.1 s at 125 Hz, like PPGBP).
    n_folds: subject-disjoint folds, one `signal_fold_<i>.mat` each.
    seed: master seed; the same config gives identical arrays.
    fs: sampling rate in Hz.
    noise: PPG white-noise std, as a fraction of the PPG pulse amplitude.
    wander: residual PPG baseline wander amplitude, fraction of the pulse amplitude.
    within_subject_sd: window-to-window SBP std within a subject, mmHg (DBP about half).
    beat_sd: beat-to-beat SBP std, mmHg (DBP about half), on top of a respiratory swing.
  """

  n_subjects: int = 120
  windows_per_subject: int = 3
  window: int = SPECS["synthetic"].window
  n_folds: int = SPECS["synthetic"].n_folds
  seed: int = 0
  fs: int = FS
  noise: float = 0.015
  wander: float = 0.1
  within_subject_sd: float = 4.0
  beat_sd: float = 1.5

  def __post_init__(self):
    if self.n_folds < 1 or self.n_subjects < self.n_folds:
      raise ValueError(f"need n_subjects >= n_folds >= 1, got {self.n_subjects} and {self.n_folds}")
    if self.windows_per_subject < 1:
      raise ValueError(f"windows_per_subject must be >= 1, got {self.windows_per_subject}")
    if self.window < 2 * self.fs:
      raise ValueError(
          f"window must hold >= 2 s ({2 * self.fs} samples) for SP/DP labels, got {self.window}")

  def to_dict(self) -> dict[str, Any]:
    """The config plus the generator version, as stored in `config.json`."""
    return {**dataclasses.asdict(self), "generator_version": GENERATOR_VERSION}


@dataclasses.dataclass(frozen=True)
class _Subject:
  """Physiology of one subject (BP in mmHg, HR in beats/min, PWV in m/s, height in m)."""

  age: float
  sbp: float
  dbp: float
  hr: float
  pwv: float
  height: float
  tone: float  # vascular-tone nuisance (z-score): smaller, wider PPG reflection when high.
  ppg_gain: float  # PPG pulse amplitude (a.u.)
  ppg_offset: float  # PPG DC level (a.u.)


def _draw_subject(rng: np.random.Generator) -> _Subject:
  """Draws a subject; arterial stiffness (PWV, from age) sets most of the SBP, DBP sets the heart rate."""
  age = rng.uniform(20.0, 85.0)
  e = rng.standard_normal(6)
  stiffness = float(np.clip(4.5 + 0.075 * (age - 20.0) + 0.8 * e[3], 3.5, 16.0))  # PWV at MAP 93 mmHg
  stiff_z = (stiffness - 6.94) / 1.62
  sbp = float(np.clip(125.0 + 18.0 * (0.9 * stiff_z + 0.436 * e[0]), 85.0, 200.0))
  sbp_z = (sbp - 125.0) / 18.0
  dbp = 72.0 + 10.0 * (0.8 * sbp_z + 0.6 * e[1])
  dbp = float(np.clip(dbp, 40.0, min(120.0, sbp - 22.0)))
  hr = float(np.clip(72.0 + 10.0 * (0.85 * (dbp - 72.0) / 10.0 + 0.53 * e[2]), 55.0, 115.0))
  mean_ap = (sbp + 2.0 * dbp) / 3.0
  pwv = float(np.clip(stiffness + 0.1 * (mean_ap - 93.0), 3.5, 16.0))
  return _Subject(
      age=age, sbp=sbp, dbp=dbp, hr=hr, pwv=pwv,
      height=float(np.clip(1.68 + 0.05 * e[4], 1.45, 1.95)),
      tone=float(e[5]),
      ppg_gain=float(np.exp(rng.normal(np.log(150.0), 0.4))),
      ppg_offset=float(rng.uniform(1800.0, 2200.0)),
  )


def _wave(tau: np.ndarray, peak: float, k: float) -> np.ndarray:
  """Gamma-shaped pulse of height 1 at `tau` = `peak` s, zero for tau <= 0; `k` sets its width."""
  u = np.maximum(tau, 0.0) / peak
  return u**k * np.exp(k * (1.0 - u))


def _gauss(tau: np.ndarray, centre: float, width: float) -> np.ndarray:
  """Gaussian bump of height 1."""
  return np.exp(-0.5 * ((tau - centre) / width) ** 2)


def _raw_beat(tau: np.ndarray, p: dict[str, float]) -> np.ndarray:
  """Unscaled beat at `tau` s after its foot: forward + reflected + dicrotic waves + run-off."""
  rise = 1.0 - np.exp(-np.maximum(tau, 0.0) / p["rise"])
  return (_wave(tau, p["tp"], p["k"]) + p["refl"] * _wave(tau - p["delay"], p["tp_r"], p["k"])
          + p["dicrotic"] * _gauss(tau, p["t_dic"], p["w_dic"])
          + p["runoff"] * rise * np.exp(-tau / p["tau"]))


def _beats(
    t: np.ndarray, onsets: np.ndarray, p: dict[str, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Beat train on times `t` (T,) s with feet at `onsets` (B,) s (covering `t`).

  Returns:
    shape (T,) in ~[0, 1] (0 at every foot, 1 at every beat's maximum on a fine grid), the beat
    index (T,) of each sample, and its phase tau/period (T,) in [0, 1).
  """
  periods = np.diff(onsets)
  j = np.clip(np.searchsorted(onsets, t, side="right") - 1, 0, periods.size - 1)
  tau, period = t - onsets[j], periods[j]

  def ramped(x: np.ndarray, per: np.ndarray) -> np.ndarray:  # zero at 0 and at `per`
    return _raw_beat(x, p) - _raw_beat(per, p) * x / per

  fine = np.linspace(0.0, 1.0, 128)[None, :] * periods[:, None]
  top = ramped(fine, periods[:, None]).max(axis=1)
  return ramped(tau, period) / top[j], j, tau / period


def _window(
    subj: _Subject, cfg: SyntheticConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
  """One (ppg, abp) pair of `cfg.window` samples: PPG in a.u., ABP in mmHg."""
  fs = cfg.fs
  u = rng.standard_normal(8)
  sbp = subj.sbp + cfg.within_subject_sd * u[0]
  dbp = min(subj.dbp + cfg.within_subject_sd * (0.5 * u[0] + 0.3 * u[1]), sbp - 20.0)
  hr = float(np.clip(subj.hr + 3.0 * u[2], 45.0, 120.0))
  mean_ap = (sbp + 2.0 * dbp) / 3.0
  pwv = subj.pwv + 0.1 * (mean_ap - (subj.sbp + 2.0 * subj.dbp) / 3.0)  # pressure dependence
  rr = 60.0 / hr
  lvet = float(np.clip(0.413 - 0.0017 * hr + 0.01 * u[3], 0.2, 0.4))  # ejection time, s
  abp_p = dict(
      tp=0.28 * lvet, k=3.0, refl=float(np.clip(0.2 + 0.06 * (pwv - 5.0), 0.1, 0.9)),
      delay=0.55 * subj.height / pwv, tp_r=0.3 * lvet, dicrotic=0.15, t_dic=lvet + 0.05,
      w_dic=0.03, runoff=0.5, rise=0.05, tau=0.5,
  )
  tp_ppg = (0.12 + 0.01 * (pwv - 5.0)) * (1.0 + 0.03 * subj.tone)
  ppg_p = dict(
      tp=tp_ppg, k=2.5,
      refl=float(np.clip(0.4 + 0.07 * (pwv - 5.0) - 0.03 * subj.tone + 0.03 * u[4], 0.05, 0.95)),
      delay=subj.height / (1.1 * pwv + 1.5), tp_r=0.9 * tp_ppg, dicrotic=0.0, t_dic=lvet,
      w_dic=0.05, runoff=0.3, rise=0.08, tau=0.35,
  )
  ptt = 0.3 * subj.height / pwv + 0.03  # aorta -> finger delay of the PPG foot, s

  # Beat feet covering [-pad - ptt, window + pad] s, with RR jitter and respiratory modulation.
  n_pad = int(round(_PAD_S * fs))
  t = (np.arange(cfg.window + 2 * n_pad) - n_pad) / fs
  resp_f, resp_ph = rng.uniform(0.2, 0.35), rng.uniform(0.0, 2.0 * np.pi)
  n_beats = int(np.ceil((t[-1] - t[0] + rr) / (0.9 * rr))) + 2
  onsets = t[0] - ptt - rng.uniform(0.0, rr) + np.concatenate(
      [[0.0], np.cumsum(rr * np.clip(1.0 + 0.03 * rng.standard_normal(n_beats), 0.9, 1.1))])
  resp = np.sin(2.0 * np.pi * resp_f * onsets + resp_ph)
  jit = rng.standard_normal((2, onsets.size))
  beat_sbp = sbp + 2.0 * resp + cfg.beat_sd * jit[0]
  beat_dbp = dbp + 1.0 * resp + 0.5 * cfg.beat_sd * jit[1]
  beat_amp = 1.0 + 0.05 * resp + 0.02 * jit[1]

  # ABP: a linear foot between consecutive DBPs plus the pulse scaled to the beat's SBP.
  shape, j, phase = _beats(t, onsets, abp_p)
  abp = beat_dbp[j] + (beat_dbp[j + 1] - beat_dbp[j]) * phase + (beat_sbp[j] - beat_dbp[j]) * shape
  # PPG: the volume pulse, later by ptt; smoothed (finger low-pass), wander, noise, gain, offset.
  shape, j, _ = _beats(t - ptt, onsets, ppg_p)
  ppg = beat_amp[j] * shape
  kernel = _gauss(np.arange(-6, 7) / fs, 0.0, 0.016)
  ppg = np.convolve(ppg, kernel / kernel.sum(), mode="same")
  wander = cfg.wander * (u[5] * np.sin(2.0 * np.pi * resp_f * t + resp_ph + 1.0) + 0.5 * u[6] * t)
  ppg = ppg + wander + cfg.noise * rng.standard_normal(t.size)
  gain = subj.ppg_gain * np.exp(0.1 * u[7])
  sl = slice(n_pad, n_pad + cfg.window)
  return subj.ppg_offset + gain * ppg[sl], abp[sl]


def generate(config: SyntheticConfig = SyntheticConfig()) -> dict[str, np.ndarray]:
  """All windows of the dataset, in memory.

  Returns:
    Columns keyed as in the `.mat` files, each with N rows: "patient" (N,) int64, "trial" (N,) str,
    "SP"/"DP" (N,) float64 mmHg, "signal" (N, window) PPG a.u., "abp_signal" (N, window) mmHg,
    "Age(year)"/"Heart Rate(b/m)" (N,) int64, and "fold" (N,) int64 (the subject's fold).
  """
  cfg = config
  fold_of = np.empty(cfg.n_subjects, dtype=np.int64)
  perm = np.random.default_rng([cfg.seed, 2**31]).permutation(cfg.n_subjects)
  for i, chunk in enumerate(np.array_split(perm, cfg.n_folds)):
    fold_of[chunk] = i
  cols: dict[str, list[Any]] = {k: [] for k in _COLUMNS + ("fold",)}
  for s in range(cfg.n_subjects):
    rng = np.random.default_rng([cfg.seed, s])
    subj = _draw_subject(rng)
    for w in range(cfg.windows_per_subject):
      for _ in range(_MAX_TRIES):
        ppg, abp = _window(subj, cfg, rng)
        sp, dp = sbp_dbp_from_abp(abp, cfg.fs)
        if np.isfinite(sp) and np.isfinite(dp):
          break
      else:
        continue  # Dropped: no beat found in _MAX_TRIES draws.
      for key, val in (("patient", s + 1), ("trial", f"{s + 1}_{w + 1}"), ("SP", sp), ("DP", dp),
                       ("signal", ppg), ("abp_signal", abp), ("Age(year)", int(round(subj.age))),
                       ("Heart Rate(b/m)", int(round(subj.hr))), ("fold", fold_of[s])):
        cols[key].append(val)
  out = {k: np.asarray(v) for k, v in cols.items()}
  for k in ("patient", "Age(year)", "Heart Rate(b/m)", "fold"):
    out[k] = out[k].astype(np.int64)
  return out


def _savemat(path: Path, columns: dict[str, np.ndarray]) -> None:
  """Writes `columns` as the benchmark does (`{col: np.vstack(values)}`), atomically."""
  tmp = path.with_name(path.name + f".tmp{os.getpid()}")
  with open(tmp, "wb") as f:
    scipy.io.savemat(f, {k: np.vstack(list(v)) for k, v in columns.items()})
  os.replace(tmp, path)


def write_synthetic_dataset(
    root: str | os.PathLike[str], config: SyntheticConfig = SyntheticConfig()
) -> Path:
  """Writes `<root>/synthetic_dataset/signal_fold_<i>.mat` (+ config.json, README.txt).

  Each fold file holds the windows of its subjects (no subject in two folds) with the columns
  patient, trial, SP, DP, signal, abp_signal, Age(year), Heart Rate(b/m). `config.json` is written
  last, so its presence marks a complete dataset.

  Returns:
    The dataset directory.
  """
  out = Path(root) / SPECS["synthetic"].folder
  out.mkdir(parents=True, exist_ok=True)
  (out / "config.json").unlink(missing_ok=True)
  for stale in out.glob("signal_fold_*.mat"):
    stale.unlink()
  data = generate(config)
  fold = data.pop("fold")
  for i in range(config.n_folds):
    sel = fold == i
    if not sel.any():
      raise RuntimeError(f"fold {i} got no windows (all redraws failed); try another seed")
    _savemat(out / f"signal_fold_{i}.mat", {k: v[sel] for k, v in data.items()})
  (out / "README.txt").write_text(
      "Synthetic PPG/ABP dataset written by jaxbp.data.synthetic (benchmark .mat format, 125 Hz).\n"
      "SP/DP: sig2sig rule on abp_signal (mmHg); signal: PPG (a.u., not normalized).\n"
      f"Folds are subject-disjoint. Config: see config.json.\n"
      f"windows: {fold.size}, subjects: {np.unique(data['patient']).size}, "
      f"SP {data['SP'].mean():.2f}+-{data['SP'].std():.2f} mmHg, "
      f"DP {data['DP'].mean():.2f}+-{data['DP'].std():.2f} mmHg\n")
  tmp = out / f"config.json.tmp{os.getpid()}"
  tmp.write_text(json.dumps(config.to_dict(), indent=2, sort_keys=True) + "\n")
  os.replace(tmp, out / "config.json")
  return out


def ensure_synthetic_dataset(
    root: str | os.PathLike[str], config: SyntheticConfig = SyntheticConfig()
) -> Path:
  """Returns `<root>/synthetic_dataset`; writes it if absent, incomplete or of another config."""
  out = Path(root) / SPECS["synthetic"].folder
  try:
    stored = json.loads((out / "config.json").read_text())
  except (OSError, ValueError):
    stored = None
  complete = all((out / f"signal_fold_{i}.mat").is_file() for i in range(config.n_folds))
  if stored == config.to_dict() and complete:
    return out
  return write_synthetic_dataset(root, config)
