"""The README and docs/ stay true to the tree: its layout table names every top-level
folder, its picture is drawn from the committed source, and every link resolves."""

from __future__ import annotations

import hashlib
import re
import subprocess
import xml.etree.ElementTree as ET

from tests.commands import REPO

README = REPO / "README.md"
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def tracked_top_level_folders() -> set[str]:
    files = subprocess.run(
        ["git", "-C", str(REPO), "ls-files"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    return {f.split("/", 1)[0] + "/" for f in files if "/" in f}


def layout_table(text: str) -> set[str]:
    """The folders the README's Layout table lists, by their first column."""
    section = text.split("## Layout", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {re.match(r"\| `([^`]+)`", row).group(1) for row in rows}


def test_the_layout_table_lists_each_top_level_folder_and_no_other():
    assert layout_table(README.read_text()) == tracked_top_level_folders()


def test_the_layout_table_comes_before_the_detail():
    headings = re.findall(r"^## (.+)$", README.read_text(), flags=re.MULTILINE)
    assert headings.index("Layout") <= 2, headings


def test_the_readme_is_an_entry_not_a_manual():
    text = README.read_text()
    assert len(text.splitlines()) <= 200
    assert text.index("](docs/architecture.svg)") < text.index("## The two commands")


def test_the_picture_is_drawn_from_the_committed_source():
    """`make docs` stamps the SVG with its source's sha256: a changed source needs a new
    picture."""
    source = (REPO / "docs" / "architecture.dot").read_bytes()
    picture = (REPO / "docs" / "architecture.svg").read_text()
    stamp = re.search(r"drawn from docs/architecture\.dot, sha256 ([0-9a-f]{64})", picture)
    assert stamp, "docs/architecture.svg was not drawn by `make docs`"
    assert stamp.group(1) == hashlib.sha256(source).hexdigest(), "run `make docs`"
    root = ET.fromstring(picture.split("?>", 1)[1].split("-->", 1)[1])
    assert root.tag.endswith("svg")
    nodes = {title.text for title in root.iter("{http://www.w3.org/2000/svg}title")}
    declared = set(re.findall(r"^\s+(\w+) \[label=", source.decode(), flags=re.MULTILINE))
    assert declared and declared <= nodes


def test_every_relative_link_in_the_readme_and_docs_resolves():
    broken = []
    for page in [README, *sorted((REPO / "docs").glob("*.md"))]:
        for target in LINK.findall(page.read_text()):
            if "://" in target:
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(REPO)} -> {target}")
    assert not broken, broken


def test_each_area_has_its_document():
    areas = ("pipeline", "model", "serving", "app-and-feedback", "learning", "watching",
             "deploying", "access", "testing")  # fmt: skip
    readme = README.read_text()
    for area in areas:
        assert (REPO / "docs" / f"{area}.md").exists(), area
        assert f"](docs/{area}.md)" in readme, area
