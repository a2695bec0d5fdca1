"""The docs live in the repository: no tracked file points at a place outside it, and every relative
link of the README and docs/*.md (anchors included) leads to a file — and heading — of the repo."""

import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

REPO = Path(ROOT).resolve()
# Spelled in pieces so this file does not match itself.
OUTSIDE = ["../" + "shared", "shared/" + "docs", "shared/" + "contract", "shared/" + "ci", "/work" + "/"]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def tracked_text_files() -> list[Path]:
    names = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    files = []
    for name in filter(None, names.decode().split("\0")):
        path = REPO / name
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            if b"\0" not in data[:8192]:
                files.append(path)
    return files


def doc_files() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"(?ms)^```.*?^```", "", path.read_text())
    return {slug(m) for m in re.findall(r"(?m)^#{1,6}\s+(.+?)\s*#*$", text)}


def test_no_tracked_file_points_outside_the_repository():
    found = []
    for path in tracked_text_files():
        if path == Path(__file__).resolve():
            continue
        text = path.read_text(errors="replace")
        found += [f"{path.relative_to(REPO)}: {needle}" for needle in OUTSIDE if needle in text]
    assert found == []


def test_the_docs_the_readme_promises_are_there():
    for name in ["LICENSE", "docs/api-contract.md", "docs/design.md", "docs/operations.md",
                 "docs/webhooks.md", "docs/mock-gateway.md"]:  # fmt: skip
        assert (REPO / name).is_file(), name
    assert "MIT License" in (REPO / "LICENSE").read_text()


@pytest.mark.parametrize("doc", doc_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves_inside_the_repository(doc):
    text = re.sub(r"(?ms)^```.*?^```", "", doc.read_text())  # links in code blocks are code
    broken = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:, …
            continue
        file_part, _, anchor = target.partition("#")
        path = (doc.parent / file_part).resolve() if file_part else doc
        if not path.is_relative_to(REPO) or not path.exists():
            broken.append(target)
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(target)
    assert broken == [], f"{doc.relative_to(REPO)}: {broken}"


def test_the_readme_links_every_doc():
    readme = (REPO / "README.md").read_text()
    for doc in sorted((REPO / "docs").glob("*.md")):
        if doc.name != "house-style.md":
            assert f"(docs/{doc.name})" in readme, doc.name
