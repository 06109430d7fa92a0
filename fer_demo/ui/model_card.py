"""The model-card panel (the About tab): MODEL_CARD.md with its images served by Gradio, or, without the
file, what the checkpoint says about itself."""

from __future__ import annotations

import re
from pathlib import Path

from ..core.paths import MODEL_CARD, REPO_ROOT
from ..serving.predictor import Predictor
from ..serving.testset import HeldOutSet


_IMAGE_LINK = re.compile(r'(!\[[^\]]*\]\()\s*([^)\s]+)((?:\s+"[^"]*")?\s*\))')
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".svg")


def card_images(text: str, base: Path = REPO_ROOT) -> dict[str, Path]:
    """Relative image links of a Markdown text that point at image files inside `base`: link -> file."""
    found = {}
    for match in _IMAGE_LINK.finditer(text):
        link = match.group(2)
        if re.match(r"^[a-z][a-z0-9+.-]*:", link, re.I) or link.startswith("/"):
            continue  # a URL, data: URI or absolute path: leave it alone
        file = (base / link.split("#")[0].split("?")[0]).resolve()
        if file.suffix.lower() in IMAGE_SUFFIXES and file.is_file() and file.is_relative_to(base.resolve()):
            found[link] = file
    return found


def link_card_images(text: str, base: Path = REPO_ROOT) -> str:
    """Point a card's relative image links at gradio's file route (app.py allows exactly those files)."""
    files = card_images(text, base)

    def swap(match):
        file = files.get(match.group(2))
        return f"{match.group(1)}/gradio_api/file={file}{match.group(3)}" if file else match.group(0)

    return _IMAGE_LINK.sub(swap, text)


def model_card_files() -> list[str]:
    """The image files MODEL_CARD.md shows (for launch(allowed_paths=...))."""
    if not MODEL_CARD.is_file():
        return []
    return [str(f) for f in card_images(MODEL_CARD.read_text(encoding="utf-8", errors="replace")).values()]


def model_card_markdown(predictor: Predictor, heldout: HeldOutSet) -> str:
    if MODEL_CARD.is_file():
        return link_card_images(MODEL_CARD.read_text(encoding="utf-8", errors="replace"))
    c = predictor.config
    lines = ["## Model card", "",
             "*`MODEL_CARD.md` is not in this checkout yet; here is what the checkpoint says about itself.*", "",
             f"- Architecture: timm `{c['arch']}`, stem `{c['stem']}`, 1-channel {c['input_size']}x"
             f"{c['input_size']} input, 7 classes ({', '.join(predictor.labels)}).",
             f"- Trained on: `{c.get('dataset', 'FER2013')}`; checkpoint folder `{predictor.folder.name}`."]
    for row in heldout.summary_rows():
        lines.append(f"- Test split, {row[0]}: accuracy {row[1]:.4f}, macro-F1 {row[2]:.4f}, ECE {row[3]:.4f} "
                     f"(n={row[5]}).")
    lines += ["", "Intended use: a demo and teaching aid for facial-expression recognition and saliency "
              "maps. Not for decisions about people: expression is not emotion, and FER2013 has known label "
              "noise and demographic skews."]
    return "\n".join(lines)
