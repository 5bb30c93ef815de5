"""Write the repository's real GitHub owner/name into the Colab badges and lesson 01's clone cell.

The course ships with placeholders (``OWNER/REPO`` in the README's Colab links, ``<this repository's
URL>`` in lesson 01's clone cell) because it cannot know where it will be published. Whoever
publishes it runs, once, from the checkout:

    python scripts/publish.py my-name/pytorch-course

and commits the result. Running it again with the same name changes nothing; to move the course
elsewhere, pass ``--from old-owner/old-name``.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from helpers import files  # noqa: E402

PLACEHOLDER = "OWNER/REPO"
CLONE_PLACEHOLDER = "<this repository's URL>"
TARGETS = ("README.md", "notebooks/01_install.ipynb")     # the files that name the repository
NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")


def placeholders_left(root: Path) -> dict[str, int]:
    """Return {file: number of placeholders} for each target file under `root` that still has some."""
    left = {}
    for name in TARGETS:
        text = (root / name).read_text(encoding="utf-8")
        count = text.count(PLACEHOLDER) + text.count(CLONE_PLACEHOLDER)
        if count:
            left[name] = count
    return left


def publish(root: Path, repo: str, old: str = PLACEHOLDER) -> dict[str, int]:
    """Replace the placeholders (or `old` owner/name) with `repo` in the target files; return replacements per file."""
    for label, value in (("repository", repo), ("--from", old)):
        if value != PLACEHOLDER and not NAME.match(value):
            raise ValueError(f"{label} {value!r} is not a GitHub owner/name such as 'my-name/pytorch-course'")
    changed = {}
    for name in TARGETS:
        path = root / name
        text = path.read_text(encoding="utf-8")
        new = text.replace(f"github.com/{old}/", f"github.com/{repo}/").replace(f"github/{old}/", f"github/{repo}/")
        new = new.replace(f"`github.com/{old}`", f"`github.com/{repo}`")
        new = new.replace(CLONE_PLACEHOLDER, f"https://github.com/{repo}")
        if new != text:
            changed[name] = sum(text.count(s) for s in (f"/{old}/", f"/{old}`", CLONE_PLACEHOLDER))
            files.atomic_write_text(path, new)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo", help="the GitHub owner/name the course is published as, e.g. my-name/pytorch-course")
    parser.add_argument("--from", dest="old", default=PLACEHOLDER, help=f"the owner/name to replace (default: {PLACEHOLDER})")
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1], help="the course checkout")
    args = parser.parse_args(argv)
    try:
        changed = publish(args.root, args.repo, args.old)
    except ValueError as err:
        parser.error(str(err))
    for name, count in changed.items():
        print(f"{name}: {count} link(s) now point at github.com/{args.repo}")
    left = placeholders_left(args.root)
    if left:
        print(f"placeholders still left: {left}", file=sys.stderr)
        return 1
    if not changed:
        print(f"nothing to change: no {args.old} links left")
    return 0


if __name__ == "__main__":
    sys.exit(main())
