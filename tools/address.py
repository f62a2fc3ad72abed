"""The book's public address: one setting in ``_config.yml``, and everything that follows from it.

``repository.url`` is the repository (its default, ``https://github.com/vgh-book/vgh-book``, is a
placeholder until the book is published). From it come

- the Binder, Colab, repository, edit and issue buttons of every page (Jupyter Book reads it);
- the install cell of every notebook (:func:`tools.notebooks.install_code`);
- the clone command of the course page (``{{ clone_command }}`` in ``book/course.md``, a MyST
  substitution that :mod:`tools.sphinxext` defines from the same setting);
- the published book's address, :func:`book_url`: ``html.baseurl`` when it is set, else the
  repository's GitHub Pages address. The student copies (:mod:`tools.student`) link to it.

While the setting is still the placeholder, the book's build says so (a message, not a warning:
the book builds with ``--warningiserror``), and so does ``make student``.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tools import REPO_ROOT

__all__ = [
    "CONFIG",
    "PLACEHOLDER",
    "book_config",
    "repository_url",
    "book_url",
    "is_placeholder",
    "placeholder_message",
    "clone_command",
]

CONFIG = REPO_ROOT / "_config.yml"

#: The repository address the book carries until it is published.
PLACEHOLDER = "https://github.com/vgh-book/vgh-book"


def book_config(path: Path = CONFIG) -> dict:
    return yaml.safe_load(Path(path).read_text())


def _normalised(url: str) -> str:
    url = url.strip().rstrip("/")
    return (url[: -len(".git")] if url.endswith(".git") else url).lower()


def repository_url(config: dict | None = None) -> str:
    """``repository.url`` of ``_config.yml`` (or of ``config``), without a trailing slash."""
    url = ((config or book_config()).get("repository") or {}).get("url") or ""
    if not url.strip():
        raise ValueError("set repository.url in _config.yml: the book's repository address")
    return url.strip().rstrip("/")


def book_url(config: dict | None = None) -> str:
    """Where the rendered book lives: ``html.baseurl``, else the repository's GitHub Pages URL."""
    config = config or book_config()
    base = (config.get("html") or {}).get("baseurl")
    if base:
        return base.rstrip("/") + "/"
    m = re.match(r"https://github\.com/([^/]+)/([^/]+?)(?:\.git)?/?$", repository_url(config))
    if not m:
        raise ValueError("set html.baseurl in _config.yml: the repository is not on GitHub")
    return f"https://{m[1]}.github.io/{m[2]}/"


def is_placeholder(url: str) -> bool:
    """Whether ``url`` is still the placeholder address (a trailing ``/`` or ``.git`` aside)."""
    return _normalised(url) == _normalised(PLACEHOLDER)


def placeholder_message(url: str) -> str:
    return (
        f"The book's repository address is still the placeholder {url}: the Binder, Colab, edit "
        "and issue buttons, every notebook's install cell, the course page's clone command and "
        "the student copies' links point there. Set repository.url in _config.yml (and "
        "html.baseurl if the book is not served from the repository's GitHub Pages), then run "
        "`python -m tools.notebooks --sync` (README, 'Publishing the book')."
    )


def clone_command(url: str) -> str:
    """The notebook line that clones the repository and installs its pinned environment."""
    url = url.strip().rstrip("/")
    folder = url.rsplit("/", 1)[-1].removesuffix(".git")
    return f"!git clone {url} && cd {folder} && pip install -q -r requirements.txt -e ."
