"""Test configuration: float64 on (statistical references need it); seeded data helpers."""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")
# In-process CLI calls must not switch on the persistent compilation cache for the rest of
# the test session (subprocess tests set their own cache directory).
os.environ["LINJAX_COMPILATION_CACHE"] = "off"

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

# JAX's caches are not cleared between modules: the suite runs as a user's long process does, and
# linjax keeps its own compiled programs within budget (linjax._programs, docs/caching.md).


def pytest_terminal_summary(terminalreporter):
    """The process's memory mappings and linjax's live programs at the end of the run."""
    from linjax import _programs

    terminalreporter.write_line(
        f"memory mappings at the end: {_programs.mapping_count()} (limit "
        f"{_programs.mapping_limit()}); linjax programs alive: {_programs.live_programs()}")
