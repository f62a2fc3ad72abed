"""The pieces of `make test-browser` that run without a browser: the offline-build extension
(tools.sphinxext) and the page list (tools.browser). The browser checks themselves are tested by
their own self-test (`python -m tools.browser --self-test`, run by `make test-browser`): a book
with one planted defect per check."""

import json
import re
import shutil
from types import SimpleNamespace

import pytest
import yaml
from sphinx.builders.html._assets import _JavaScript as JS

from tools import REPO_ROOT, browser, sphinxext


def test_the_offline_build_is_off_unless_asked_for(monkeypatch):
    monkeypatch.delenv(sphinxext.ENV, raising=False)
    assert sphinxext.offline_folder() is None


def test_an_incomplete_offline_folder_says_what_to_run(monkeypatch, tmp_path):
    monkeypatch.setenv(sphinxext.ENV, str(tmp_path))
    with pytest.raises(RuntimeError, match="make offline-assets"):
        sphinxext.offline_folder()
    for rel in sphinxext.REQUIRED:  # control: once every file is there, the folder is accepted
        target = tmp_path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if rel.endswith("woff-v2"):
            target.mkdir()
        else:
            target.write_text("")
    assert sphinxext.offline_folder() == tmp_path.resolve()


def test_the_book_loads_the_extension_from_the_tools_folder():
    sphinx = yaml.safe_load((REPO_ROOT / "_config.yml").read_text())["sphinx"]
    assert sphinx["local_extensions"] == {"tools.sphinxext": "./"}
    assert (REPO_ROOT / "tools" / "sphinxext.py").is_file()


def test_a_copy_of_the_config_elsewhere_still_finds_the_extension(tmp_path):
    copied = yaml.safe_load(sphinxext.config_for_copy())
    assert copied["sphinx"]["local_extensions"] == {"tools.sphinxext": REPO_ROOT.as_posix()}
    original = yaml.safe_load((REPO_ROOT / "_config.yml").read_text())
    del copied["sphinx"]["local_extensions"], original["sphinx"]["local_extensions"]
    assert copied == original  # nothing else changes
    # control: a config whose extension line cannot be found is refused, not copied as it is
    odd = tmp_path / "_config.yml"
    odd.write_text("sphinx:\n  local_extensions: {tools.sphinxext: ./}\n")
    with pytest.raises(ValueError, match="expected one line"):
        sphinxext.config_for_copy(odd)


def test_a_script_included_twice_is_kept_once():
    thebe = 'const THEBE_JS_URL = "x"'
    scripts = [
        JS("_static/a.js"),
        JS(None, body=thebe),
        JS("_static/b.js", **{"async": "async"}),
        JS("", body=thebe),
        JS("_static/a.js"),
        JS("", body="const other = 1"),
    ]
    context = {"script_files": scripts}
    sphinxext._unique_scripts(None, "page", "page.html", context, None)
    assert [(js.filename, js.attributes.get("body")) for js in context["script_files"]] == [
        ("_static/a.js", None),
        (None, thebe),
        ("_static/b.js", None),
        ("", "const other = 1"),
    ]


def test_every_page_of_the_table_of_contents_is_checked():
    pages = browser.toc_pages(REPO_ROOT / "_toc.yml")
    toc = yaml.safe_load((REPO_ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]
    assert pages == files and len(pages) >= 15
    assert all(
        (REPO_ROOT / f"{p}.ipynb").exists() or (REPO_ROOT / f"{p}.md").exists() for p in pages
    )


def test_a_missing_browser_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(browser.shutil, "which", lambda name: None)
    with pytest.raises(SystemExit, match="apt-get install chromium chromium-driver"):
        browser.find_browser()


def test_the_self_test_plants_one_defect_per_check():
    planted = set().union(*browser.SELF_TEST_PAGES.values())
    assert planted == set(browser.CHECKS)
    assert browser.SELF_TEST_PAGES["book/clean"] == set()


def _complete_offline_folder(folder):
    for rel in sphinxext.REQUIRED:
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if rel.endswith("woff-v2"):
            target.mkdir()
        else:
            target.write_text("")
    return folder


def _finish_build(outdir, offline_static=None, monkeypatch=None):
    """What the extension does at the start and end of an HTML build, without Sphinx."""
    if offline_static is None:
        monkeypatch.delenv(sphinxext.ENV, raising=False)
    else:
        monkeypatch.setenv(sphinxext.ENV, str(offline_static))
    app = SimpleNamespace(
        builder=SimpleNamespace(format="html"),
        outdir=str(outdir),
        config=SimpleNamespace(html_theme_options={}),
    )
    sphinxext._builder_inited(app)
    (outdir / "index.html").write_text("<html></html>")
    if offline_static is not None:  # what html_static_path copies
        shutil.copytree(offline_static, outdir / "_static", dirs_exist_ok=True)
    sphinxext._build_finished(app, None)


def test_the_browser_test_accepts_only_a_folder_the_offline_build_wrote(tmp_path, monkeypatch):
    html = tmp_path / "html"
    with pytest.raises(RuntimeError, match="No built book at .*make book-offline"):
        sphinxext.require_offline_build(html)
    html.mkdir()
    (html / "index.html").write_text("<html></html>")
    with pytest.raises(RuntimeError, match="has no vgh-build.json"):  # built before the marker
        sphinxext.require_offline_build(html)
    (html / sphinxext.MARKER).write_text("{not json")
    with pytest.raises(RuntimeError, match="cannot be read"):
        sphinxext.require_offline_build(html)
    # the online build (make book) writes a marker that says so, and is refused
    _finish_build(html, None, monkeypatch)
    assert json.loads((html / sphinxext.MARKER).read_text()) == {"offline": False}
    with pytest.raises(RuntimeError, match=r"online build \(`make book`\).*CDNs"):
        sphinxext.require_offline_build(html)
    # control: the offline build's folder is accepted, and the same folder rebuilt online is not
    static = _complete_offline_folder(tmp_path / "static")
    offline = tmp_path / "offline-html"
    offline.mkdir()
    _finish_build(offline, static, monkeypatch)
    assert sphinxext.require_offline_build(offline)["offline"] is True
    # a marker that says offline over a _static folder without the assets is refused too
    shutil.rmtree(offline / "_static" / "mathjax")
    with pytest.raises(RuntimeError, match="lacks mathjax/tex-mml-chtml.js"):
        sphinxext.require_offline_build(offline)


def test_a_build_removes_the_marker_it_has_not_yet_earned(tmp_path, monkeypatch):
    static = _complete_offline_folder(tmp_path / "static")
    html = tmp_path / "html"
    html.mkdir()
    _finish_build(html, static, monkeypatch)
    assert (html / sphinxext.MARKER).is_file()
    app = SimpleNamespace(
        builder=SimpleNamespace(format="html"),
        outdir=str(html),
        config=SimpleNamespace(html_theme_options={}),
    )
    sphinxext._builder_inited(app)  # a new build starts: the old marker no longer vouches
    assert not (html / sphinxext.MARKER).exists()
    sphinxext._build_finished(app, RuntimeError("the build failed"))
    assert not (html / sphinxext.MARKER).exists()
    with pytest.raises(RuntimeError, match="has no vgh-build.json"):
        sphinxext.require_offline_build(html)


def test_the_browser_test_refuses_the_online_build_before_its_self_test(tmp_path, monkeypatch):
    html = tmp_path / "html"
    html.mkdir()
    _finish_build(html, None, monkeypatch)
    monkeypatch.setattr(browser, "self_test", lambda: pytest.fail("the self-test ran"))
    with pytest.raises(SystemExit, match="browser test: .*online build"):
        browser.main(["--html", str(html), "--self-test"])


def test_the_two_builds_write_to_two_folders_and_the_browser_test_checks_the_offline_one(
    tmp_path, monkeypatch
):
    make = (REPO_ROOT / "Makefile").read_text()
    var = dict(re.findall(r"^(\w+) := (\S+)$", make, re.MULTILINE))
    book = re.search(r"^book: .*\n((?:\t.*\n)+)", make, re.MULTILINE)[1]
    offline = re.search(r"^book-offline: .*\n((?:\t.*\n)+)", make, re.MULTILINE)[1]
    test = re.search(r"^test-browser: .*\n((?:\t.*\n)+)", make, re.MULTILINE)[1]
    assert "--path-output" not in book  # jupyter-book's default: _build/html
    assert "--path-output $(OFFLINE_BOOK)" in offline
    # jupyter-book --path-output P writes P/_build/html
    assert var["OFFLINE_HTML"] == "$(OFFLINE_BOOK)/_build/html"
    offline_html = REPO_ROOT / var["OFFLINE_BOOK"] / "_build" / "html"
    assert offline_html == sphinxext.OFFLINE_HTML != REPO_ROOT / "_build" / "html"
    assert "--html $(OFFLINE_HTML)" in test
    # without --html, the browser test checks that folder too
    monkeypatch.setattr(sphinxext, "OFFLINE_HTML", tmp_path / "elsewhere")
    with pytest.raises(SystemExit, match=f"No built book at {tmp_path / 'elsewhere'}"):
        browser.main([])
