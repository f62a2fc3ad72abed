"""The pieces of `make test-browser` that run without a browser: the offline-build extension
(tools.sphinxext) and the page list (tools.browser). The browser checks themselves are tested by
their own self-test (`python -m tools.browser --self-test`, run by `make test-browser`): a book
with one planted defect per check."""

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
