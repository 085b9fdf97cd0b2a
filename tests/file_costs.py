"""Rewrite tests/file_costs.txt, and add to tests/slow_tests.txt, from a LINJAX_TEST_CPU_LOG
file of a default run:

    LINJAX_TEST_CPU_LOG=/tmp/cpu.log python -m pytest && python tests/file_costs.py /tmp/cpu.log

A test that took at least SLOW_CPU_SECONDS of CPU joins tests/slow_tests.txt: tests/conftest.py
marks it `slow`, so the README's test command leaves it to `python -m pytest -m slow` (which
.ci/run runs too). The list only grows here; delete a line by hand to bring a test back.
"""

import collections
import os
import sys

HEADER = """\
# Worker seconds per test file in the default run (from LINJAX_TEST_CPU_LOG; see
# tests/conftest.py). Only the order matters: xdist hands out the costliest files
# first, so the two workers finish together. Files not listed count as 5 s.
"""


SLOW_CPU_SECONDS = 4.0

SLOW_HEADER = """\
# Tests marked `slow` by tests/conftest.py because each took at least 4 CPU seconds in a
# default run (compilation included; tests/file_costs.py adds them from a LINJAX_TEST_CPU_LOG).
# The README's test command skips them; `python -m pytest -m slow` and .ci/run run them.
"""


def read_slow_tests(path):
    """The node ids listed in a slow_tests.txt."""
    if not os.path.exists(path):
        return set()
    with open(path) as f:
        return {line.strip() for line in f if line.strip() and not line.startswith("#")}


def main(log_path):
    seconds = collections.defaultdict(float)
    here = os.path.dirname(os.path.abspath(__file__))
    slow_path = os.path.join(here, "slow_tests.txt")
    slow = read_slow_tests(slow_path)
    with open(log_path) as log:
        for line in log:
            cpu, wall, nodeid = line.rstrip("\n").split("\t")
            seconds[os.path.basename(nodeid.split("::")[0])] += float(wall)
            if float(cpu) >= SLOW_CPU_SECONDS:
                slow.add(nodeid)
    with open(slow_path, "w") as f:
        f.write(SLOW_HEADER)
        f.writelines(f"{nodeid}\n" for nodeid in sorted(slow))
    out = os.path.join(here, "file_costs.txt")
    with open(out, "w") as f:
        f.write(HEADER)
        for name, total in sorted(seconds.items(), key=lambda kv: -kv[1]):
            f.write(f"{total:.0f} {name}\n")


if __name__ == "__main__":
    main(sys.argv[1])
