"""Write the repository's GitHub owner/name and branch into every Colab badge and every setup cell.

The course cannot know where it will be published, so it ships with ``OWNER/REPO`` and the branch
``main`` in three kinds of places: the Colab badges (README and each notebook's title cell,
``colab.research.google.com/github/OWNER/REPO/blob/main/...``), the URL each notebook's setup cell
clones in Colab (``https://github.com/OWNER/REPO``), and the branch it clones (``--branch main``).
Whoever publishes it runs, once, from the checkout:

    python scripts/publish.py my-name/pytorch-course            # add --branch NAME for another branch

and commits the result. The script reads the owner/name and branch the files hold now, so running it
again changes nothing, and running it with another name or branch moves the course there.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from helpers import files  # noqa: E402

PLACEHOLDER = "OWNER/REPO"
NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
BRANCH = re.compile(r"^[A-Za-z0-9._/-]{1,100}$")
BADGE = re.compile(r"colab\.research\.google\.com/github/([A-Za-z0-9._-]+/[A-Za-z0-9._-]+)/blob/([A-Za-z0-9._/-]+?)/notebooks/")
CLONE_URL = re.compile(r'"COURSE_REPO", \\?"https://github\.com/([A-Za-z0-9._-]+/[A-Za-z0-9._-]+)\\?"')
CLONE_BRANCH = re.compile(r'"--branch\\?", \\?"([A-Za-z0-9._/-]+)\\?"')


def targets(root: Path) -> list[Path]:
    """Return the files that name the repository: the README and every notebook."""
    return [root / "README.md", *sorted((root / "notebooks").glob("**/*.ipynb"))]


def current(root: Path) -> tuple[str, str]:
    """Return the (owner/name, branch) that every badge and setup cell under `root` names now.

    Raises ValueError when the files disagree, or name none, so that a half-edited course is noticed.
    """
    repos, branches = {}, {}
    for path in targets(root):
        text = path.read_text(encoding="utf-8")
        where = path.relative_to(root).as_posix()
        for repo, branch in BADGE.findall(text):
            repos.setdefault(repo, set()).add(where)
            branches.setdefault(branch, set()).add(where)
        for repo in CLONE_URL.findall(text):
            repos.setdefault(repo, set()).add(where)
        for branch in CLONE_BRANCH.findall(text):
            branches.setdefault(branch, set()).add(where)
    for kind, found in (("repositories", repos), ("branches", branches)):
        if len(found) != 1:
            detail = "; ".join(f"{value}: {', '.join(sorted(places)[:3])}" for value, places in sorted(found.items()))
            raise ValueError(f"the badges and setup cells name {len(found)} {kind} ({detail or 'none'}); "
                             f"they should all name one")
    return next(iter(repos)), next(iter(branches))


def publish(root: Path, repo: str, branch: str = "main") -> dict[str, int]:
    """Point every badge and setup cell under `root` at `repo` and `branch`; return the places changed per file."""
    if not NAME.match(repo):
        raise ValueError(f"repository {repo!r} is not a GitHub owner/name such as 'my-name/pytorch-course'")
    if not BRANCH.match(branch) or ".." in branch:
        raise ValueError(f"branch {branch!r} is not a git branch name such as 'main'")
    old_repo, old_branch = current(root)
    changed = {}
    for path in targets(root):
        text = path.read_text(encoding="utf-8")
        new = BADGE.sub(f"colab.research.google.com/github/{repo}/blob/{branch}/notebooks/", text)
        new = re.sub(rf"github\.com/{re.escape(old_repo)}(?![A-Za-z0-9._-])", f"github.com/{repo}", new)
        new = CLONE_BRANCH.sub(lambda m: m.group(0).replace(f'"{m.group(1)}', f'"{branch}'), new)
        if new != text:
            changed[path.relative_to(root).as_posix()] = sum(1 for a, b in zip(text.splitlines(), new.splitlines()) if a != b)
            files.atomic_write_text(path, new)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo", help="the GitHub owner/name the course is published as, e.g. my-name/pytorch-course")
    parser.add_argument("--branch", default="main", help="the branch the badges open and Colab clones (default: main)")
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1], help="the course checkout")
    args = parser.parse_args(argv)
    try:
        changed = publish(args.root, args.repo, args.branch)
    except ValueError as err:
        parser.error(str(err))
    for name, count in changed.items():
        print(f"{name}: {count} line(s) now name github.com/{args.repo}, branch {args.branch}")
    if not changed:
        print(f"nothing to change: every badge and setup cell already names {args.repo}, branch {args.branch}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
