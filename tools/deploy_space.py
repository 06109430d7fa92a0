"""Upload the app to a Hugging Face Space, or list what would go up.

    python tools/deploy_space.py USER/NAME [--private]    # make space SPACE=USER/NAME
    python tools/deploy_space.py --dry-run                # make space-dry-run: files and sizes, no network

The Space runs `app.py` with requirements.txt, as README.md's front matter says. Only the files the app
needs go up: ALLOW_PATTERNS / IGNORE_PATTERNS select them for both the upload and the dry run, the way
`HfApi.upload_folder` does (which sends files over 10 MB through Xet/LFS). Sign in first with
`hf auth login`, or set env HF_TOKEN to a token with write access.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from huggingface_hub import HfApi
from huggingface_hub.utils import DEFAULT_IGNORE_PATTERNS, filter_repo_objects

REPO = Path(__file__).resolve().parent.parent

# The app, its package, the shipped model, the face detector with its licence, the examples it offers,
# the model card it shows, and the Space's README (front matter), requirements and licence.
# Patterns as upload_folder reads them: fnmatch on paths relative to the repo, `*` crossing `/`.
ALLOW_PATTERNS = ["app.py", "README.md", "MODEL_CARD.md", "LICENSE", "requirements.txt", "fer_demo/*.py",
                  "checkpoints/fer-resnet18/*", "models/*", "examples/*"]
IGNORE_PATTERNS = [".*", "*/.*", "*__pycache__*", "*.pyc", "examples/*.py"]


def space_files(root: Path = REPO) -> list[tuple[str, int]]:
    """(path relative to `root`, size in bytes) of each file the upload sends, in upload_folder's order."""
    paths = sorted(p.relative_to(root).as_posix() for p in root.glob("**/*") if p.is_file())
    chosen = filter_repo_objects(paths, allow_patterns=ALLOW_PATTERNS,
                                 ignore_patterns=IGNORE_PATTERNS + DEFAULT_IGNORE_PATTERNS)
    return [(path, (root / path).stat().st_size) for path in chosen]


def print_listing(files: list[tuple[str, int]]) -> None:
    for path, size in files:
        print(f"{size:>12,}  {path}")
    total = sum(size for _, size in files)
    print(f"{len(files)} files, {total:,} bytes ({total / 1e6:.1f} MB)")


def upload(repo_id: str, private: bool) -> str:
    """Create the Space if needed and upload the selection; files of ours no longer selected are removed."""
    api = HfApi()
    url = api.create_repo(repo_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True)
    api.upload_folder(repo_id=repo_id, repo_type="space", folder_path=REPO, allow_patterns=list(ALLOW_PATTERNS),
                      ignore_patterns=list(IGNORE_PATTERNS), delete_patterns=list(ALLOW_PATTERNS),
                      commit_message="Deploy fer-demo")
    return str(url)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("space", nargs="?", help="the Space's id on the Hub, USER/NAME (or ORG/NAME)")
    p.add_argument("--dry-run", action="store_true", help="list the files and their sizes; no network")
    p.add_argument("--private", action="store_true", help="create the Space private (when it does not exist)")
    args = p.parse_args(argv)
    if not args.space and not args.dry_run:
        p.error("give the Space's id: `python tools/deploy_space.py USER/NAME` (make space SPACE=USER/NAME)")
    print_listing(space_files())
    if args.dry_run:
        return 0
    print(f"uploading to https://huggingface.co/spaces/{args.space} ...")
    print(f"done: {upload(args.space, args.private)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
