"""Rewrite tests/file_costs.txt from a LINJAX_TEST_CPU_LOG file of a default run:

    LINJAX_TEST_CPU_LOG=/tmp/cpu.log python -m pytest && python tests/file_costs.py /tmp/cpu.log
"""

import collections
import os
import sys

HEADER = """\
# Worker seconds per test file in the default run (from LINJAX_TEST_CPU_LOG; see
# tests/conftest.py). Only the order matters: xdist hands out the costliest files
# first, so the two workers finish together. Files not listed count as 5 s.
"""


def main(log_path):
    seconds = collections.defaultdict(float)
    with open(log_path) as log:
        for line in log:
            _, wall, nodeid = line.rstrip("\n").split("\t")
            seconds[os.path.basename(nodeid.split("::")[0])] += float(wall)
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "file_costs.txt")
    with open(out, "w") as f:
        f.write(HEADER)
        for name, total in sorted(seconds.items(), key=lambda kv: -kv[1]):
            f.write(f"{total:.0f} {name}\n")


if __name__ == "__main__":
    main(sys.argv[1])
