"""`python -m linjax ...`: the same as the `linjax` command (see linjax.cli)."""

import sys

from linjax.cli import main

if __name__ == "__main__":
    sys.exit(main())
