"""Image classification data: ImageNet-style folders and scikit-learn's bundled digits (no TensorFlow).

    splits = load_digits_splits(resolution=32, seed=0)   # {"train"|"val"|"test": {"x": (N, 32, 32, 3), "y": (N,)}}
    folder = read_image_folder("~/imagenette", size=(64, 64))   # validated; `ImageFolder` (uint8 images)

A split is a dict of NumPy arrays, the form `jaxbp.train.fit` and `jaxbp.data.batching` take: "x" float32
(N, H, W, 3) in [-1, 1] (the MobileNet references' preprocessing: pixel / 127.5 - 1) and "y" int32 labels.

An image folder holds one sub-folder per class (sorted names = labels 0..K-1) of JPEG / PNG files
(`IMAGE_SUFFIXES`, any case); other files and hidden entries are ignored. If the root instead holds only
split folders ("train", "val"/"validation", "test"), each of them is such a class folder (same classes).
Problems raise `ImageFolderError` subclasses naming the folder / file: `NoClassesError`, `EmptyClassError`,
`UnreadableImageError`, `MixedSizeError` (images differ in size and no `size` was given to resize to).

The TFDS builder over a folder is `jaxbp.data.image_builder` (imports tensorflow_datasets).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
SPLIT_FOLDERS = {"train": "train", "val": "val", "validation": "val", "test": "test"}


class ImageFolderError(ValueError):
  """A user's image folder does not have the expected layout or content."""


class NoClassesError(ImageFolderError):
  """The folder has no class sub-folders."""


class EmptyClassError(ImageFolderError):
  """A class sub-folder holds no JPEG / PNG image."""


class UnreadableImageError(ImageFolderError):
  """An image file cannot be decoded."""


class MixedSizeError(ImageFolderError):
  """Images differ in size (pass a size to resize to)."""


@dataclasses.dataclass(frozen=True)
class ImageFolder:
  """One decoded class folder: images (N, H, W, 3) uint8, labels (N,) int32, class names, file paths."""

  images: np.ndarray
  labels: np.ndarray
  classes: tuple[str, ...]
  paths: tuple[str, ...]


def scan_class_folder(root: str | os.PathLike[str]) -> tuple[tuple[str, ...], list[tuple[Path, int]]]:
  """(class names, [(image path, label)]) of a class folder, sorted; errors for missing/empty classes."""
  root = Path(root).expanduser()
  if not root.is_dir():
    raise ImageFolderError(f"{root}: not a directory (expected one sub-folder of JPEG/PNG images per class)")
  classes = tuple(sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")))
  if not classes:
    raise NoClassesError(f"{root}: no class sub-folders (expected one sub-folder of JPEG/PNG images per class)")
  files: list[tuple[Path, int]] = []
  for label, name in enumerate(classes):
    images = sorted(p for p in (root / name).iterdir()
                    if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
      raise EmptyClassError(f"{root / name}: class {name!r} has no images ({'/'.join(IMAGE_SUFFIXES)})")
    files += [(p, label) for p in images]
  return classes, files


def split_folders(root: str | os.PathLike[str]) -> dict[str, Path]:
  """{split: class folder}: the root's split sub-folders ("train", "val", "test") if it holds only those, else
  {"train": root}."""
  root = Path(root).expanduser()
  if not root.is_dir():
    raise ImageFolderError(f"{root}: not a directory (expected one sub-folder of JPEG/PNG images per class)")
  subs = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
  if subs and all(p.name.lower() in SPLIT_FOLDERS for p in subs):
    return {SPLIT_FOLDERS[p.name.lower()]: p for p in sorted(subs)}
  return {"train": root}


def read_image(path: str | os.PathLike[str], size: tuple[int, int] | None = None) -> np.ndarray:
  """A JPEG / PNG as (H, W, 3) uint8 RGB (grey and alpha converted), bilinearly resized to `size` (H, W)."""
  from PIL import Image, UnidentifiedImageError  # pylint: disable=import-outside-toplevel
  try:
    with Image.open(path) as im:
      im = im.convert("RGB")
      if size is not None and im.size != (size[1], size[0]):
        im = im.resize((size[1], size[0]), Image.BILINEAR)
      return np.asarray(im, np.uint8)
  except (UnidentifiedImageError, OSError, ValueError) as e:
    raise UnreadableImageError(f"{path}: not a readable JPEG/PNG image ({e})") from None


def read_image_folder(root: str | os.PathLike[str], size: tuple[int, int] | None = None) -> ImageFolder:
  """Decodes a class folder (module docstring). Without `size` every image must have the first one's size."""
  classes, files = scan_class_folder(root)
  images, first = [], None
  for path, _ in files:
    img = read_image(path, size)
    if first is None:
      first = (path, img.shape)
    elif img.shape != first[1]:
      raise MixedSizeError(f"{path}: image is {img.shape[1]}x{img.shape[0]} (WxH) but {first[0]} is "
                           f"{first[1][1]}x{first[1][0]}; pass a size to resize every image")
    images.append(img)
  return ImageFolder(np.stack(images), np.asarray([l for _, l in files], np.int32), classes,
                     tuple(str(p) for p, _ in files))


def to_float(images: np.ndarray) -> np.ndarray:
  """uint8 (N, H, W, C) -> float32 in [-1, 1] (pixel / 127.5 - 1)."""
  return (np.asarray(images, np.float32) / 127.5 - 1.0).astype(np.float32)


def stratified_split(labels: np.ndarray, fractions: Sequence[float], seed: int) -> list[np.ndarray]:
  """Index arrays (sorted) of a per-class random split into len(fractions) parts (fractions sum to 1)."""
  if abs(sum(fractions) - 1.0) > 1e-9 or min(fractions) < 0:
    raise ValueError(f"split fractions must be >= 0 and sum to 1, got {tuple(fractions)}")
  rng = np.random.default_rng(seed)
  parts: list[list[np.ndarray]] = [[] for _ in fractions]
  for c in np.unique(labels):
    idx = rng.permutation(np.flatnonzero(labels == c))
    cuts = np.round(np.cumsum(fractions)[:-1] * len(idx)).astype(int)
    for part, chunk in zip(parts, np.split(idx, cuts)):
      part.append(chunk)
  return [np.sort(np.concatenate(p)) for p in parts]


DIGITS_FRACTIONS = (0.7, 0.15, 0.15)  # train / val / test, stratified by class.


def digits_images(resolution: int = 32) -> tuple[np.ndarray, np.ndarray]:
  """scikit-learn's bundled 8x8 digits (1797, 10 classes) as uint8 RGB (N, r, r, 3) (bilinear) and labels."""
  from PIL import Image  # pylint: disable=import-outside-toplevel
  from sklearn.datasets import load_digits  # pylint: disable=import-outside-toplevel
  if resolution < 8:
    raise ValueError(f"digits: resolution must be >= 8 pixels, got {resolution}")
  d = load_digits()
  grey = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)  # values 0..16
  big = np.stack([np.asarray(Image.fromarray(g).resize((resolution, resolution), Image.BILINEAR)) for g in grey])
  return np.repeat(big[..., None], 3, axis=-1), d.target.astype(np.int32)


def load_digits_splits(resolution: int = 32, seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
  """Digits at `resolution` split 70/15/15 per class with `seed`: {"train"|"val"|"test": {"x", "y"}}.

  x (N, resolution, resolution, 3) float32 in [-1, 1], y (N,) int32 in 0..9; 1258 / 270 / 269 images.
  """
  images, labels = digits_images(resolution)
  parts = stratified_split(labels, DIGITS_FRACTIONS, seed)
  return {name: {"x": to_float(images[i]), "y": labels[i]} for name, i in zip(("train", "val", "test"), parts)}


def folder_splits(root: str | os.PathLike[str], size: tuple[int, int] | None = None, seed: int = 0,
                  fractions: Sequence[float] = DIGITS_FRACTIONS) -> dict[str, dict[str, np.ndarray]]:
  """Float splits of an image folder: its own split folders, else a stratified `fractions` split of one folder."""
  folders = split_folders(root)
  if set(folders) != {"train"}:
    out, classes = {}, None
    for split, path in folders.items():
      f = read_image_folder(path, size)
      if classes is not None and f.classes != classes:
        raise ImageFolderError(f"{path}: classes {f.classes} differ from the other splits' {classes}")
      classes = f.classes
      out[split] = {"x": to_float(f.images), "y": f.labels}
    return out
  f = read_image_folder(root, size)
  parts = stratified_split(f.labels, fractions, seed)
  return {name: {"x": to_float(f.images[i]), "y": f.labels[i]} for name, i in zip(("train", "val", "test"), parts)}
