"""Upload the app to a Hugging Face Space, or list what would go up.

    python -m tools.deploy_space USER/NAME [--private]    # make space SPACE=USER/NAME
    python -m tools.deploy_space --dry-run                # make space-dry-run: files and sizes, no network
    python -m tools.deploy_space --static USER/NAME       # the in-browser page (web/dist, `make web`), sdk: static
    python -m tools.deploy_space --static --dry-run

The Space runs `app.py` with requirements.txt, as README.md's front matter says. Only the files the app
needs go up: ALLOW_PATTERNS / IGNORE_PATTERNS select them for both the upload and the dry run, the way
`HfApi.upload_folder` does (which sends files over 10 MB through Xet/LFS). Sign in first with
`hf auth login`, or set env HF_TOKEN to a token with write access.

`--static` uploads the built page instead: every file of web/dist (the page, its script, the ONNX models and
onnxruntime-web's WASM files) and a README.md whose front matter says `sdk: static` (STATIC_README, written
into the upload, not into web/dist), whose `custom_headers` make the page cross-origin isolated (so its WASM
runs on several threads): the same header table `make web-serve` sends (tools/serve_web.py), which the dry run
prints. The same selection function serves both modes, for the upload and the dry run alike.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import HfApi
from huggingface_hub.utils import DEFAULT_IGNORE_PATTERNS, filter_repo_objects

from fer_demo.core.paths import REPO_ROOT
from tools.serve_web import ISOLATION_HEADERS

# The app, its package, the shipped model, the face detector with its licence, the examples it offers,
# the model card it shows, and the Space's README (front matter), requirements and licence.
# Patterns as upload_folder reads them: fnmatch on paths relative to the repo, `*` crossing `/` (so `fer_demo/*.py`
# takes the stage folders core/, vision/, serving/ and ui/ too, and no fer_demo_testing/).
ALLOW_PATTERNS = ["app.py", "README.md", "MODEL_CARD.md", "LICENSE", "requirements.txt", "fer_demo/*.py",
                  "fer_demo/assets/*", "examples/*"]
IGNORE_PATTERNS = [".*", "*/.*", "*__pycache__*", "*.pyc", "examples/*.py"]

WEB_DIST = REPO_ROOT / "web" / "dist"
# The static Space's README: its front matter tells the Hub to serve index.html as it is, with the headers that
# make the page cross-origin isolated (multi-threaded WASM), the same table `make web-serve` sends.
CUSTOM_HEADERS = "".join(f"  {name}: {value}\n" for name, value in ISOLATION_HEADERS.items())
STATIC_README = f"""---
title: fer-demo (in the browser)
emoji: 🙂
colorFrom: indigo
colorTo: pink
sdk: static
app_file: index.html
license: mit
tags:
  - facial-expression-recognition
  - onnxruntime-web
  - fer2013
short_description: Facial expressions in your browser, nothing uploaded
pinned: false
custom_headers:
{CUSTOM_HEADERS}---

# fer-demo in the browser

YuNet face detection and a FER2013 ResNet-18 run in the visitor's browser through onnxruntime-web (WASM):
photos and webcam frames never leave the device. Built from the fer-demo repository
with `make web`; see its README and MODEL_CARD.md for the model, its accuracy and its intended use.
"""


@dataclass(frozen=True)
class Target:
    """What one kind of Space uploads: a folder, the patterns that select its files, the Space SDK, and
    files written into the upload that the folder does not hold (path -> text)."""

    root: Path
    allow: tuple[str, ...]
    ignore: tuple[str, ...]
    sdk: str
    extra: tuple[tuple[str, str], ...] = ()


GRADIO = Target(REPO_ROOT, tuple(ALLOW_PATTERNS), tuple(IGNORE_PATTERNS), "gradio")
STATIC = Target(WEB_DIST, ("*",), (".*", "*/.*", "README.md"), "static", (("README.md", STATIC_README),))


def space_files(root: Path = REPO_ROOT, target: Target | None = None) -> list[tuple[str, int]]:
    """(path relative to the target's folder, size in bytes) of each file the upload sends, in upload_folder's
    order; the Gradio app's selection by default (`root` replaces its folder, for tests)."""
    target = target or Target(root, GRADIO.allow, GRADIO.ignore, GRADIO.sdk)
    paths = sorted(p.relative_to(target.root).as_posix() for p in target.root.glob("**/*") if p.is_file())
    chosen = filter_repo_objects(paths, allow_patterns=list(target.allow),
                                 ignore_patterns=list(target.ignore) + DEFAULT_IGNORE_PATTERNS)
    files = [(path, (target.root / path).stat().st_size) for path in chosen]
    extra = [(path, len(text.encode())) for path, text in target.extra]
    return sorted(files + extra)


def staged(target: Target):
    """(temp folder or None, the folder to upload): a temp copy of exactly the files space_files lists when
    the target writes extra files (the static Space's README), else the target's own folder."""
    if not target.extra:
        return None, target.root
    tmp = Path(tempfile.mkdtemp(prefix="fer-space-"))
    for path, _ in space_files(target=target):
        dest = tmp / path
        dest.parent.mkdir(parents=True, exist_ok=True)
        text = dict(target.extra).get(path)
        if text is not None:
            dest.write_text(text, encoding="utf-8")
        else:
            shutil.copy2(target.root / path, dest)
    return tmp, tmp


def print_listing(files: list[tuple[str, int]]) -> None:
    for path, size in files:
        print(f"{size:>12,}  {path}")
    total = sum(size for _, size in files)
    print(f"{len(files)} files, {total:,} bytes ({total / 1e6:.1f} MB)")


def upload(repo_id: str, private: bool, target: Target = GRADIO) -> str:
    """Create the Space if needed and upload the selection; files of ours no longer selected are removed."""
    api = HfApi()
    url = api.create_repo(repo_id, repo_type="space", space_sdk=target.sdk, private=private, exist_ok=True)
    tmp, folder = staged(target)
    allow = list(target.allow) + [path for path, _ in target.extra]
    ignore = [p for p in target.ignore if p not in dict(target.extra)]
    try:
        api.upload_folder(repo_id=repo_id, repo_type="space", folder_path=folder, allow_patterns=allow,
                          ignore_patterns=ignore, delete_patterns=allow,
                          commit_message="Deploy fer-demo" + (" (static page)" if target.sdk == "static" else ""))
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return str(url)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("space", nargs="?", help="the Space's id on the Hub, USER/NAME (or ORG/NAME)")
    p.add_argument("--dry-run", action="store_true", help="list the files and their sizes; no network")
    p.add_argument("--private", action="store_true", help="create the Space private (when it does not exist)")
    p.add_argument("--static", action="store_true",
                   help="the in-browser page from web/dist (build it with `make web`) as a static Space")
    args = p.parse_args(argv)
    if not args.space and not args.dry_run:
        p.error("give the Space's id: `python -m tools.deploy_space USER/NAME` (make space SPACE=USER/NAME)")
    target = STATIC if args.static else GRADIO
    if args.static and not (target.root / "index.html").is_file():
        print(f"error: no built page in {target.root}: run `make web` first", file=sys.stderr)
        return 2
    print_listing(space_files(target=target))
    if args.static:
        print("README.md front matter custom_headers (cross-origin isolation, multi-threaded WASM):")
        print(CUSTOM_HEADERS, end="")
    if args.dry_run:
        return 0
    print(f"uploading to https://huggingface.co/spaces/{args.space} ...")
    print(f"done: {upload(args.space, args.private, target)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
