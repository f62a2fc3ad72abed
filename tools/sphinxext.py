"""The book's Sphinx extension: an offline build serving MathJax and the widget embedder itself.

The published book loads MathJax and the ipywidgets embedder from CDNs. A reader without network
(a train, a locked-down cluster, the browser test) gets raw TeX and empty widget boxes instead.
``make book-offline`` installs pinned copies with npm (``offline/package.json``), lays them out in
one folder, and builds with ``VGH_OFFLINE_STATIC`` naming it. This extension then

- adds that folder to ``html_static_path``, so its files are copied to the output's ``_static``;
- points ``mathjax_path`` at the local ``tex-mml-chtml.js`` (the same MathJax 3 build Sphinx takes
  from the CDN, so the macros of ``_config.yml`` behave the same);
- replaces myst-nb's ``nb_ipywidgets_js`` (RequireJS and ``embed-amd.js``) by the local files.

Without ``VGH_OFFLINE_STATIC`` the build is the online one. The two builds go to two folders
(``make book``: ``_build/html``; ``make book-offline``: ``_build/offline-book/_build/html``), and
each records which one it is in a small file, ``vgh-build.json`` at the top of its output
(:data:`MARKER`): :func:`require_offline_build` reads it, so that the browser test refuses a folder
built without the offline assets instead of failing page by page on raw TeX.

In both builds the extension also

- drops a script that a page would include twice: the inline configurations of sphinx-thebe and
  sphinx-togglebutton reach each page twice (once with filename None, once with ""), and the second
  ``const THEBE_JS_URL`` is a syntax error in every page's console;
- defines the MyST substitutions ``repository_url`` and ``clone_command`` from the repository URL
  (``repository.url`` of ``_config.yml``, :mod:`tools.address`), which ``book/course.md`` uses, and
  prints a message (not a warning: the book builds with ``--warningiserror``) while that URL is
  still the placeholder;
- registers the bibliography's author-year labels with pybtex (:mod:`tools.bib`; ``_config.yml``
  names the style in ``bibtex_default_style``), so that the bibliography page labels its entries as
  the text cites them;
- keeps the page header to one search field: pydata-sphinx-theme (0.17) puts a search button in a
  header bar of its own unless ``navbar_persistent`` is set, and sphinx-book-theme already has a
  search field at the top of its sidebar;
- writes the status column of ``{nb-exec-table}`` (``book/status.md``) as a word in a badge,
  "succeeded" or "failed", where myst-nb writes the emoji ✅ and ❌, which show as empty boxes on
  a machine without an emoji font.

``_config.yml`` loads it as a local extension (``sphinx: local_extensions: {tools.sphinxext: ./}``:
Jupyter Book puts the folder of ``_config.yml`` on ``sys.path``); a copy of that file for a book
in another folder comes from :func:`config_for_copy`.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import yaml
from docutils import nodes
from myst_nb.ext.execution_tables import ExecutionStatsNode, make_stat_table
from myst_nb.sphinx_ import NbMetadataCollector
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util import logging

from tools import REPO_ROOT, address, bib

LOGGER = logging.getLogger(__name__)

#: The files the offline folder must hold, relative to it (the Makefile's offline-assets target).
REQUIRED = (
    "mathjax/tex-mml-chtml.js",
    "mathjax/output/chtml/fonts/woff-v2",
    "widgets/require.min.js",
    "widgets/embed-amd.js",
)
ENV = "VGH_OFFLINE_STATIC"
#: The file at the top of a built book that says whether it is the offline build.
MARKER = "vgh-build.json"
#: Where ``make book-offline`` builds the book (``jupyter-book build --path-output``
#: ``_build/offline-book`` writes ``_build/offline-book/_build/html``); the browser test's default.
OFFLINE_HTML = REPO_ROOT / "_build" / "offline-book" / "_build" / "html"


def offline_folder() -> Path | None:
    """The folder named by ``VGH_OFFLINE_STATIC``, checked; None when the variable is unset."""
    value = os.environ.get(ENV, "").strip()
    if not value:
        return None
    folder = Path(value).resolve()
    missing = [p for p in REQUIRED if not (folder / p).exists()]
    if missing:
        raise RuntimeError(
            f"{ENV}={value} does not hold the offline assets (missing: {', '.join(missing)}). "
            "Run `make offline-assets` (it needs npm), or unset the variable for the online build."
        )
    return folder


def config_for_copy(config: Path = REPO_ROOT / "_config.yml") -> str:
    """The text of ``_config.yml`` for a book built in another folder (the small books of the tests
    and of the browser self-test): each ``local_extensions`` folder, which the file gives relative
    to itself, becomes absolute, so that the copy still loads this extension."""
    config = Path(config).resolve()
    text = config.read_text()
    local = (yaml.safe_load(text).get("sphinx") or {}).get("local_extensions") or {}
    for name, folder in local.items():
        line = re.compile(
            rf"^([ \t]*{re.escape(name)}:[ \t]*){re.escape(str(folder))}[ \t]*$", re.MULTILINE
        )
        text, n = line.subn(lambda m: m[1] + (config.parent / folder).resolve().as_posix(), text)
        if n != 1:
            raise ValueError(
                f"{config}: expected one line `{name}: {folder}` under local_extensions"
            )
    return text


def require_offline_build(html: Path) -> dict:
    """The marker of the book built in ``html``; RuntimeError unless it is the offline build.

    The folder must hold ``index.html`` and :data:`MARKER` with ``"offline": true``, and its
    ``_static`` folder the offline assets (:data:`REQUIRED`). Each refusal says what to run.
    """
    html = Path(html)
    rebuild = f"Run `make book-offline`, which builds the offline book into {OFFLINE_HTML}."
    if not (html / "index.html").is_file():
        raise RuntimeError(f"No built book at {html}. {rebuild}")
    marker = html / MARKER
    try:
        info = json.loads(marker.read_text())
    except FileNotFoundError:
        raise RuntimeError(
            f"{html} has no {MARKER}: it was not built by `make book-offline` (or was built "
            f"before the builds recorded which one they are). {rebuild}"
        ) from None
    except (OSError, ValueError) as e:
        raise RuntimeError(f"{marker} cannot be read ({e}). {rebuild}") from None
    if not isinstance(info, dict) or info.get("offline") is not True:
        raise RuntimeError(
            f"{html} is the online build (`make book`): its pages load MathJax and the widget "
            f"embedder from CDNs, which the browser test cannot reach. {rebuild}"
        )
    missing = [p for p in REQUIRED if not (html / "_static" / p).exists()]
    if missing:
        raise RuntimeError(
            f"{html} says it is the offline build, but its _static folder lacks "
            f"{', '.join(missing)}. {rebuild}"
        )
    return info


def _config_inited(app, config) -> None:
    theme = getattr(config, "html_theme_options", None)
    if isinstance(theme, dict):
        # One search field (the sidebar's), not a second one in a header bar above the page.
        theme.setdefault("navbar_persistent", [])
    url = (theme or {}).get("repository_url")
    if url:
        config.myst_substitutions = {
            **(config.myst_substitutions or {}),
            "repository_url": url.rstrip("/"),
            "clone_command": f"```bash\n{address.clone_command(url)}\n```",
        }
    folder = offline_folder()
    if folder is None:
        return
    config.html_static_path = list(config.html_static_path) + [str(folder)]
    config.mathjax_path = "mathjax/tex-mml-chtml.js"
    config.nb_ipywidgets_js = {
        "widgets/require.min.js": {},
        # The embedder loads third-party widget modules from this CDN; the book uses only the
        # built-in controls, which embed-amd.js carries itself.
        "widgets/embed-amd.js": {"data-jupyter-widgets-cdn": "widgets/"},
    }


def _unique_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for js in scripts:
        # An inline script is registered once with filename None and once with "": the same script.
        key = (
            str(getattr(js, "filename", js) or ""),
            repr(sorted(getattr(js, "attributes", {}).items())),
        )
        if key not in seen:
            seen.add(key)
            kept.append(js)
    scripts[:] = kept


_TABLE = re.compile(r"<table\b.*?</table>", re.S)
_CODE = re.compile(r"<code\b[^>]*>.*?</code>", re.S)
_TEXT = re.compile(r">([^<]+)<")
_NAME_BREAK = re.compile(r"(?<=[._/])(?=[^._/\s])")


def break_names_in_tables(body: str) -> str:
    """``body`` with a ``<wbr>`` after each ``.``, ``_`` and ``/`` of the inline code in its tables.

    A narrow table column must break a long name such as ``vghlib.symbolic.check_shift_family``
    somewhere. Without a break opportunity the browser either widens the table past the column or,
    with ``overflow-wrap: anywhere``, cuts the name mid-word ("noise_densit / y"). ``<wbr>`` breaks
    it between its parts and is not copied with the text.
    """

    def code(m):
        return _TEXT.sub(lambda t: ">" + _NAME_BREAK.sub("<wbr>", t.group(1)) + "<", m.group(0))

    return _TABLE.sub(lambda t: _CODE.sub(code, t.group(0)), body)


def _break_table_names(app, pagename, templatename, context, doctree) -> None:
    if "body" in context:
        context["body"] = break_names_in_tables(context["body"])


def _builder_inited(app) -> None:
    url = (app.config.html_theme_options or {}).get("repository_url")
    if url and address.is_placeholder(url):
        LOGGER.info("note: " + address.placeholder_message(url))
    # A marker left by an earlier build must not vouch for this one until it has finished.
    if app.builder.format == "html":
        (Path(app.outdir) / MARKER).unlink(missing_ok=True)


def _build_finished(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    folder = offline_folder()
    info = {"offline": folder is not None}
    if folder is not None:
        info["assets"] = list(REQUIRED)
    (Path(app.outdir) / MARKER).write_text(json.dumps(info, indent=1) + "\n")


#: The words of the status column of ``{nb-exec-table}``, and each badge's class (_static/vgh.css).
EXEC_STATUS = {True: ("succeeded", "exec-status-ok"), False: ("failed", "exec-status-failed")}


class ExecTableStatusWords(SphinxPostTransform):
    """``{nb-exec-table}`` with words in its status column: myst-nb's table, built here before
    myst-nb's own transform (priority 8) would build it with emoji, and its status cells replaced
    by a badge (``<span class="exec-status exec-status-ok">succeeded</span>``); a failed notebook's
    badge keeps myst-nb's tooltip with the error."""

    default_priority = 7

    def run(self, **kwargs) -> None:
        for placeholder in list(self.document.findall(ExecutionStatsNode)):
            data = NbMetadataCollector.get_doc_data(self.env)
            table = make_stat_table(self.env.docname, data)
            table["classes"].append("exec-table")
            head = [e.astext() for e in next(table.findall(nodes.thead)).findall(nodes.entry)]
            col = head.index("Status")
            executed = [d for d in sorted(data) if data[d].get("exec_data")]
            rows = list(next(table.findall(nodes.tbody)).findall(nodes.row))
            for docname, row in zip(executed, rows, strict=True):
                ok = data[docname]["exec_data"]["succeeded"] is True
                word, cls = EXEC_STATUS[ok]
                paragraph = row[col][0]
                tip = next(iter(paragraph.findall(nodes.abbreviation)), None)
                badge = (
                    nodes.abbreviation(text=word, explanation=tip["explanation"])
                    if tip is not None
                    else nodes.inline(text=word)
                )
                badge["classes"] += ["exec-status", cls]
                del paragraph[:]
                paragraph += badge
            placeholder.replace_self(table)


def setup(app):
    bib.register()
    app.add_post_transform(ExecTableStatusWords)
    app.connect("config-inited", _config_inited, priority=100)
    app.connect("builder-inited", _builder_inited)
    app.connect("build-finished", _build_finished)
    # Early: html-page-context stops at the first handler that returns a template name.
    app.connect("html-page-context", _unique_scripts, priority=1)
    app.connect("html-page-context", _break_table_names)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
