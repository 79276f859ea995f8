"""Test-session settings: a persistent XLA compilation cache, so identical programs compile once."""

import os
import tempfile

import jax

_CACHE = os.environ.get("JAXBP_TEST_XLA_CACHE", os.path.join(tempfile.gettempdir(), "jaxbp-test-xla-cache"))
jax.config.update("jax_compilation_cache_dir", _CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
