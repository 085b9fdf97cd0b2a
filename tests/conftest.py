"""Test configuration: float64 on (statistical references need it); seeded data helpers."""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")
# In-process CLI calls must not switch on the persistent compilation cache for the rest of
# the test session (subprocess tests set their own cache directory).
os.environ["LINJAX_COMPILATION_CACHE"] = "off"

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)


import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_code():
    """Drop compiled executables after each test module.

    One long pytest process compiles thousands of XLA programs; keeping them all alive
    grew the process's memory mappings until XLA's compiler crashed (segfault at ~80%
    of the suite on jaxlib 0.10.2). Tests that check compile reuse do so within a module.
    """
    yield
    jax.clear_caches()
