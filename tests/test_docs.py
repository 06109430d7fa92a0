"""The docs: a README a newcomer reads in two minutes (at most 250 lines, in the issue's order, with the app's
screenshot), a model card in the Hugging Face layout that the static page still reads, and links in every doc
that point at files and headings that exist."""

from __future__ import annotations

import re

import pytest

from fer_demo.core.paths import REPO_ROOT

DOCS = ["README.md", "MODEL_CARD.md", "CHANGELOG.md", *sorted(p.relative_to(REPO_ROOT).as_posix()
                                                              for p in (REPO_ROOT / "docs").glob("*.md"))]
README_ORDER = ["Quick start", "Python and the command line", "The app, gradio_client and MCP", "In the browser",
                "Deploying the Spaces", "Training", "Results", "Licence and credits"]
CARD_ORDER = ["Model details", "Uses", "Bias, risks and limitations", "Training details", "Evaluation",
              "Environmental cost"]
LINK = re.compile(r"\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def _headings(text: str, level: str = "#+") -> list[str]:
    return [m.group(1).strip() for m in re.finditer(rf"^{level} (.+)$", FENCE.sub("", text), re.M)]


def _slug(heading: str) -> str:
    """A heading's anchor as GitHub (and the Hub) make it: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_the_readme_is_short_in_order_and_shows_the_app():
    text = (REPO_ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 250
    assert _headings(text, "##") == README_ORDER
    shot = re.search(r"!\[[^\]]+\]\((docs/[^)]+\.(?:png|jpg))\)", text)
    assert shot and text.index(shot.group(0)) < text.index("## Quick start"), "the screenshot comes first"
    picture = REPO_ROOT / shot.group(1)
    assert 20_000 < picture.stat().st_size < 400_000


def test_the_model_card_follows_the_hub_layout_and_the_page_still_reads_it():
    from tools.export_web import model_card_text

    card = REPO_ROOT / "MODEL_CARD.md"
    assert _headings(card.read_text(), "##") == CARD_ORDER
    text = model_card_text(card)
    assert text["intended"].startswith("Intended:") and text["misuse"].startswith("Not intended:")


@pytest.mark.parametrize("doc", DOCS)
def test_links_point_at_files_and_headings_that_exist(doc):
    path = REPO_ROOT / doc
    broken = []
    for link in LINK.findall(FENCE.sub("", path.read_text())):
        if re.match(r"^[a-z]+:", link):
            continue  # a URL
        target, _, anchor = link.partition("#")
        file = (path.parent / target).resolve() if target else path
        if not file.exists():
            broken.append(f"{link}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in {_slug(h) for h in _headings(file.read_text())}:
            broken.append(f"{link}: no such heading")
    assert broken == []
