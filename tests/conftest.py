"""Test-session settings: a persistent XLA compilation cache, so identical programs compile once."""

import os
import tempfile

import jax

_CACHE = os.environ.get("JAXBP_TEST_XLA_CACHE", os.path.join(tempfile.gettempdir(), "jaxbp-test-xla-cache"))
jax.config.update("jax_compilation_cache_dir", _CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


import pytest  # noqa: E402

from jaxbp import models  # noqa: E402

# A small ResNet1d (fast to compile) for end-to-end tests of training and sweeps.
TINY_RESNET = models.ResNet1dConfig(first_kernel=5, kernel=3, n_blocks=2, base_filters=8)
TINY_WINDOW = 64  # samples per window of `tiny_regression_data`


@pytest.fixture(scope="module")
def tiny_regression_data():
  """(train, val) splits of random (N, TINY_WINDOW, 1) windows with 2 targets in [0, 1): 45 and 20 windows."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(0)
  split = lambda n: {"x": rng.normal(size=(n, TINY_WINDOW, 1)).astype(np.float32),
                     "y": rng.uniform(size=(n, 2)).astype(np.float32)}
  return split(45), split(20)


@pytest.fixture(scope="session")
def tiny_synthetic(tmp_path_factory):
  """(root, folds) of a small synthetic dataset written in the benchmark's file format."""
  from jaxbp.data import load_dataset  # pylint: disable=import-outside-toplevel
  from jaxbp.data.synthetic import SyntheticConfig, write_synthetic_dataset  # pylint: disable=import-outside-toplevel
  root = tmp_path_factory.mktemp("synthetic")
  write_synthetic_dataset(root, SyntheticConfig(n_subjects=40, windows_per_subject=2))
  return root, load_dataset(root, "synthetic")
