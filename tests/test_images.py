"""Image data: ImageNet-style folders (reader and TFDS builder, on generated images) and the digits splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jaxbp.data import images as I

tfds = pytest.importorskip("tensorflow_datasets")

from jaxbp.data import image_builder  # noqa: E402

tfds.disable_progress_bar()


def _folder(root: Path, sizes=((12, 10),) * 3, classes=("cat", "dog")) -> dict[str, list[np.ndarray]]:
  """Writes class folders of random RGB images (PNG, JPEG alternating, one grey PNG); returns the pixels."""
  rng = np.random.default_rng(0)
  written: dict[str, list[np.ndarray]] = {}
  for c in classes:
    (root / c).mkdir(parents=True, exist_ok=True)
    for i, (h, w) in enumerate(sizes):
      img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
      if i == 0:
        Image.fromarray(img[..., 0], "L").save(root / c / f"img{i}.png")
        img = np.repeat(img[..., :1], 3, axis=-1)
      elif i % 2:
        Image.fromarray(img).save(root / c / f"img{i}.JPG", quality=95)
        img = np.asarray(Image.open(root / c / f"img{i}.JPG").convert("RGB"))
      else:
        Image.fromarray(img).save(root / c / f"img{i}.png")
      written.setdefault(c, []).append(img)
  (root / classes[0] / "notes.txt").write_text("not an image")  # ignored
  return written


def test_folder_reader_labels_decodes_and_resizes(tmp_path):
  want = _folder(tmp_path / "raw")
  f = I.read_image_folder(tmp_path / "raw")
  assert f.classes == ("cat", "dog") and f.images.shape == (6, 12, 10, 3)
  np.testing.assert_array_equal(f.labels, [0, 0, 0, 1, 1, 1])
  np.testing.assert_array_equal(f.images[:3], np.stack(want["cat"]))
  assert I.read_image_folder(tmp_path / "raw", size=(8, 8)).images.shape == (6, 8, 8, 3)


def test_tfds_builder_round_trip_and_split_folders(tmp_path):
  want = _folder(tmp_path / "raw")
  splits = image_builder.load_image_folder_tfds(tmp_path / "raw", tmp_path / "tfds")
  assert list(splits) == ["train"]
  x, y = splits["train"]["x"], splits["train"]["y"]
  np.testing.assert_array_equal(y, [0, 0, 0, 1, 1, 1])
  np.testing.assert_allclose(x, I.to_float(np.stack(want["cat"] + want["dog"])))
  assert x.dtype == np.float32 and -1 <= x.min() and x.max() <= 1
  _folder(tmp_path / "split" / "train")
  _folder(tmp_path / "split" / "val", sizes=((20, 20),))
  both = image_builder.load_image_folder_tfds(tmp_path / "split", tmp_path / "tfds", size=(16, 16))
  assert sorted(both) == ["train", "val"]
  assert both["train"]["x"].shape == (6, 16, 16, 3) and both["val"]["x"].shape == (2, 16, 16, 3)


def test_bad_folders_raise_typed_errors(tmp_path):
  (tmp_path / "none").mkdir()
  with pytest.raises(I.NoClassesError, match="no class sub-folders"):
    I.read_image_folder(tmp_path / "none")
  _folder(tmp_path / "empty")
  (tmp_path / "empty" / "zebra").mkdir()
  (tmp_path / "empty" / "zebra" / "readme.md").write_text("x")
  with pytest.raises(I.EmptyClassError, match="zebra"):
    I.read_image_folder(tmp_path / "empty")
  with pytest.raises(I.EmptyClassError, match="zebra"):
    image_builder.prepare_image_folder(tmp_path / "empty", tmp_path / "tfds", size=(8, 8))
  _folder(tmp_path / "broken")
  (tmp_path / "broken" / "dog" / "bad.jpg").write_bytes(b"\xff\xd8 truncated")
  with pytest.raises(I.UnreadableImageError, match="bad.jpg"):
    I.read_image_folder(tmp_path / "broken")
  with pytest.raises(I.UnreadableImageError, match="bad.jpg"):
    image_builder.prepare_image_folder(tmp_path / "broken", tmp_path / "tfds", size=(8, 8))
  _folder(tmp_path / "mixed", sizes=((12, 10), (12, 10), (9, 9)))
  with pytest.raises(I.MixedSizeError, match="img2.png.*pass a size"):
    I.read_image_folder(tmp_path / "mixed")
  with pytest.raises(I.MixedSizeError, match="img2.png"):
    image_builder.prepare_image_folder(tmp_path / "mixed", tmp_path / "tfds")
  assert I.read_image_folder(tmp_path / "mixed", size=(9, 9)).images.shape == (6, 9, 9, 3)


def test_digits_splits_are_fixed_stratified_and_scaled():
  a, b = I.load_digits_splits(32, seed=0), I.load_digits_splits(32, seed=0)
  assert {k: len(v["y"]) for k, v in a.items()} == {"train": 1258, "val": 270, "test": 269}
  for k in a:
    np.testing.assert_array_equal(a[k]["x"], b[k]["x"])
    assert a[k]["x"].shape[1:] == (32, 32, 3) and a[k]["x"].dtype == np.float32
    assert set(np.unique(a[k]["y"])) == set(range(10))
  assert a["train"]["x"].min() == -1.0 and a["train"]["x"].max() == 1.0
  c = I.load_digits_splits(16, seed=1)
  assert c["test"]["x"].shape[1:] == (16, 16, 3)
  assert not np.array_equal(c["test"]["y"], a["test"]["y"])  # another seed, another split.
