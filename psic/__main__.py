"""``python -m psic``: the same as the ``psic`` command."""

import sys

from psic.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
