"""TFDS builder over a user's ImageNet-style image folder (array_record, no TensorFlow needed).

    builder = prepare_image_folder("~/imagenette", data_dir="~/tfds", size=(64, 64))
    splits = load_image_folder_tfds("~/imagenette", "~/tfds", size=(64, 64))   # {"train": {"x", "y"}, ...}

The folder layout and its errors are `jaxbp.data.images`' (class sub-folders of JPEG/PNG, optionally inside
"train"/"val"/"test" split folders; `ImageFolderError`s name the folder or file). One builder,
`ImageFolderDataset` ("image_folder"), with one config per (folder name, size): the folder is the TFDS manual
directory; images are decoded with Pillow (RGB) and, with `size`, bilinearly resized; without `size` every image
must have the first image's size (else `MixedSizeError`). Splits are the folder's split folders, else "train".

Features of every example:
  image: (H, W, 3) uint8.   label: () int64, index of the class in sorted class names.
  class_name: () str.       path: () str, the file relative to its split folder.   index: () int64, file order.

Read back with `builder.as_data_source()` (TFRecord, `as_dataset` and `tfds.load` need TensorFlow and are not
used). This module imports tensorflow_datasets: import it explicitly.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from jaxbp.data.images import (ImageFolderError, MixedSizeError, read_image, scan_class_folder, split_folders,
                               to_float)

FILE_FORMAT = "array_record"


@dataclasses.dataclass(eq=False)
class ImageFolderConfig(tfds.core.BuilderConfig):
  """Config of one folder: image `size` (H, W) and whether images are resized to it."""

  size: tuple[int, int] = (0, 0)
  resize: bool = False


class ImageFolderDataset(tfds.core.GeneratorBasedBuilder):
  """A user's ImageNet-style folder of class sub-folders."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  BUILDER_CONFIGS = [ImageFolderConfig(name="default", size=(32, 32), resize=True)]
  MANUAL_DOWNLOAD_INSTRUCTIONS = ("Point the manual directory at a folder with one sub-folder of JPEG/PNG images "
                                  "per class (or train/val/test folders of those).")

  # TFDS 4.9.10 derives `code_path` via `importlib_resources` (not installed); see `tfds_builder`.
  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls) -> epath.Path:
    return epath.Path(__file__)

  def _info(self) -> tfds.core.DatasetInfo:
    h, w = self.builder_config.size
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__,
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Tensor(shape=(h, w, 3), dtype=np.uint8),
            "label": tfds.features.Tensor(shape=(), dtype=np.int64),
            "class_name": tfds.features.Tensor(shape=(), dtype=np.str_),
            "path": tfds.features.Tensor(shape=(), dtype=np.str_),
            "index": tfds.features.Tensor(shape=(), dtype=np.int64),
        }),
        disable_shuffling=True,
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    folders = split_folders(os.fspath(dl_manager.manual_dir))
    scans = {split: scan_class_folder(path) for split, path in folders.items()}
    classes = next(iter(scans.values()))[0]
    for split, (names, _) in scans.items():
      if names != classes:
        raise ImageFolderError(f"{folders[split]}: classes {names} differ from the other splits' {classes}")
    return {split: self._generate_examples(folders[split], files, classes) for split, (_, files) in scans.items()}

  def _generate_examples(self, root: Path, files: list[tuple[Path, int]], classes: tuple[str, ...]
                         ) -> Iterator[tuple[int, dict[str, Any]]]:
    cfg = self.builder_config
    for i, (path, label) in enumerate(files):
      img = read_image(path, cfg.size if cfg.resize else None)
      if img.shape[:2] != tuple(cfg.size):
        raise MixedSizeError(f"{path}: image is {img.shape[1]}x{img.shape[0]} (WxH) but the folder's first image "
                             f"is {cfg.size[1]}x{cfg.size[0]}; pass a size to resize every image")
      yield i, {"image": img, "label": label, "class_name": classes[label],
                "path": str(path.relative_to(root)), "index": i}


def _config_name(root: Path, size: tuple[int, int], resize: bool) -> str:
  stem = re.sub(r"[^a-z0-9_]+", "_", root.resolve().name.lower()).strip("_") or "images"
  return f"{stem}_{size[0]}x{size[1]}{'_resized' if resize else ''}"


def prepare_image_folder(root: str | os.PathLike[str], data_dir: str | os.PathLike[str],
                         size: tuple[int, int] | None = None) -> ImageFolderDataset:
  """Builds (once; cached in `data_dir`) and returns the builder of an image folder.

  Without `size`, the size is the first image's and every image must match it.
  """
  root = Path(root).expanduser()
  folders = split_folders(root)
  resize = size is not None
  if size is None:
    _, files = scan_class_folder(next(iter(folders.values())))
    size = read_image(files[0][0]).shape[:2]
  size = (int(size[0]), int(size[1]))
  if min(size) < 1:
    raise ValueError(f"image size must be positive (H, W), got {size}")
  config = ImageFolderConfig(name=_config_name(root, size, resize), size=size, resize=resize,
                             description=f"{root} at {size[0]}x{size[1]}")
  builder = ImageFolderDataset(config=config, data_dir=os.fspath(Path(data_dir).expanduser()),
                               file_format=FILE_FORMAT)
  if not builder.is_prepared():
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=os.fspath(root)))
  return builder


def read_split(source: Any) -> dict[str, np.ndarray]:
  """A whole split of `builder.as_data_source()` in file order: {"image" uint8, "label" int32, "class_name"}."""
  n = len(source)
  records = sorted(source.__getitems__(list(range(n))) if n else [], key=lambda r: int(r["index"]))
  decode = lambda v: v.decode("utf-8") if isinstance(v, bytes) else str(v)
  return {"image": np.stack([r["image"] for r in records]),
          "label": np.asarray([r["label"] for r in records], np.int32),
          "class_name": np.asarray([decode(r["class_name"]) for r in records], dtype=str)}


def load_image_folder_tfds(root: str | os.PathLike[str], data_dir: str | os.PathLike[str],
                           size: tuple[int, int] | None = None) -> dict[str, dict[str, np.ndarray]]:
  """{split: {"x": (N, H, W, 3) float32 in [-1, 1], "y": (N,) int32}} through the cached TFDS copy."""
  builder = prepare_image_folder(root, data_dir, size)
  sources = builder.as_data_source()
  out = {}
  for split in builder.info.splits:
    s = read_split(sources[split])
    out[split] = {"x": to_float(s["image"]), "y": s["label"]}
  return out
