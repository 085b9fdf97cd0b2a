"""Test configuration: float64 on (statistical references need it); seeded data helpers."""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")
# In-process CLI calls must not switch on the persistent compilation cache for the rest of
# the test session (subprocess tests set their own cache directory).
os.environ["LINJAX_COMPILATION_CACHE"] = "off"

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
