"""The book's tooling, kept outside vghlib and not installed with it.

Each tool runs from the repository root: ``python -m tools.browser``, ``python -m tools.notebooks``,
``python -m tools.student``, ``python -m tools.requirements``, and the teaching kit's
``python -m tools.slides``, ``python -m tools.instructor`` and ``python -m tools.homework``;
``tools.sphinxext`` is the Sphinx extension that ``_config.yml`` loads.
"""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
