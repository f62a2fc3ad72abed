"""Stop early, with a clear message, when the Python that will build .venv is too old."""

import sys

REQUIRED = (3, 11)

if sys.version_info[:2] < REQUIRED:
    found = ".".join(map(str, sys.version_info[:3]))
    sys.exit(
        f"vgh-book needs Python {REQUIRED[0]}.{REQUIRED[1]} or newer; "
        f"`{sys.executable}` is {found}.\n"
        "Install Python 3.11 and run again, or point make at it: make PYTHON=python3.11 test"
    )
