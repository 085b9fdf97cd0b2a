"""Test configuration: float64 on (statistical references need it); seeded data helpers."""

import os
import shutil
import tempfile
import time

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")
# The persistent compilation cache is on, as linjax's default is for users, in a directory of
# this run's own (shared by its xdist workers, so a program one worker compiled is read by the
# other; removed at the end): the suite starts cold, like a fresh install, and never reads a
# previous run's programs. A directory given in LINJAX_TEST_CACHE_DIR is used and kept instead
# (.ci/run gives its two runs one, as a user's second process reads the first one's programs).
# Subprocess tests inherit it unless they set their own.
# The process that starts the run makes the directory; xdist's workers inherit its environment.
_OWNS_CACHE = "LINJAX_TEST_CACHE_DIR" not in os.environ
if _OWNS_CACHE:
    os.environ["LINJAX_TEST_CACHE_DIR"] = tempfile.mkdtemp(prefix="linjax-test-cache-")
os.environ["LINJAX_COMPILATION_CACHE"] = os.environ["LINJAX_TEST_CACHE_DIR"]

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)

# JAX's caches are not cleared between modules: the suite runs as a user's long process does, and
# linjax keeps its own compiled programs within budget (linjax._programs, docs/caching.md).


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """LINJAX_TEST_CPU_LOG=FILE appends each test's process CPU seconds (setup, call and
    teardown; compilation included) and wall seconds: a ranking of the suite's costs that a
    busy machine does not distort (`python tests/file_costs.py FILE` rewrites
    tests/file_costs.txt from it)."""
    path = os.environ.get("LINJAX_TEST_CPU_LOG")
    if not path:
        yield
        return
    cpu, wall = time.process_time(), time.perf_counter()
    yield
    with open(path, "a") as log:
        log.write(f"{time.process_time() - cpu:.3f}\t{time.perf_counter() - wall:.3f}\t"
                  f"{item.nodeid}\n")


def _file_costs():
    """{file name: worker seconds} from tests/file_costs.txt."""
    path = os.path.join(os.path.dirname(__file__), "file_costs.txt")
    costs = {}
    with open(path) as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                seconds, name = line.split()
                costs[name] = float(seconds)
    return costs


def _slow_tests():
    """Node ids in tests/slow_tests.txt (tests that take 4 CPU seconds or more each)."""
    path = os.path.join(os.path.dirname(__file__), "slow_tests.txt")
    with open(path) as f:
        return {line.strip() for line in f if line.strip() and not line.startswith("#")}


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by mark
def pytest_collection_modifyitems(config, items):
    """Marks the tests of tests/slow_tests.txt `slow`; then the costliest test files first
    (tests/file_costs.txt), so that xdist's file-by-file scheduling (`--dist loadfile
    --no-loadscope-reorder`) ends both workers together instead of starting a long file
    last. Tests keep their order within a file."""
    slow = _slow_tests()
    for item in items:
        if item.nodeid in slow:
            item.add_marker(pytest.mark.slow)
    costs = _file_costs()
    order = {}
    for item in items:
        name = os.path.basename(item.location[0])
        order.setdefault(name, (-costs.get(name, 5.0), len(order)))
    items.sort(key=lambda item: order[os.path.basename(item.location[0])])


def _programs_line():
    from linjax import _programs

    return (f"memory mappings at the end: {_programs.mapping_count()} (limit "
            f"{_programs.mapping_limit()}); linjax programs alive: {_programs.live_programs()}")


def pytest_sessionfinish(session):
    """An xdist worker hands its own figures to the controller (which runs no test)."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["programs_line"] = _programs_line()
    if _OWNS_CACHE:
        cache = os.environ["LINJAX_TEST_CACHE_DIR"]
        entries = os.listdir(cache) if os.path.isdir(cache) else []
        size = sum(os.path.getsize(os.path.join(cache, e)) for e in entries)
        session.config._linjax_cache_line = (f"persistent compilation cache of this run: "
                                             f"{len(entries)} entries, {size / 2**20:.0f} MB "
                                             "(removed)")
        shutil.rmtree(cache, ignore_errors=True)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    line = getattr(node, "workeroutput", {}).get("programs_line")
    if line:
        node.config._linjax_worker_lines = [*getattr(node.config, "_linjax_worker_lines", []),
                                            f"{node.gateway.id}: {line}"]


def pytest_terminal_summary(terminalreporter, config):
    """The process's memory mappings and linjax's live programs at the end of the run (per
    xdist worker when the suite runs in several processes)."""
    lines = getattr(config, "_linjax_worker_lines", None) or [_programs_line()]
    for line in [*lines, getattr(config, "_linjax_cache_line", "")]:
        if line:
            terminalreporter.write_line(line)
