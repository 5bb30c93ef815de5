"""scripts/publish.py points every Colab badge and every notebook's setup cell at one repository and branch."""
import importlib.util
import json
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BADGE = re.compile(r"colab\.research\.google\.com/github/([^/\s)]+/[^/\s)]+)/blob/([^\s)]+?)/(notebooks/[^\s)]+\.ipynb)")


def load_publish():
    spec = importlib.util.spec_from_file_location("publish", ROOT / "scripts" / "publish.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def course(tmp_path):
    """A copy of the files publish.py edits."""
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks", ignore=shutil.ignore_patterns("runs", "checkpoints"))
    return tmp_path


def names(root: Path):
    """Return {file: (badge repos, setup-cell URLs, setup-cell branches, badge branches)} as read from the files."""
    found = {}
    for path in [root / "README.md", *sorted((root / "notebooks").glob("**/*.ipynb"))]:
        text = path.read_text(encoding="utf-8")
        badges = BADGE.findall(text)
        clone_url, clone_branch = set(), set()
        if path.suffix == ".ipynb":
            setup = "".join(next(c for c in json.loads(text)["cells"] if c["cell_type"] == "code")["source"])
            clone_url = set(re.findall(r'"COURSE_REPO", "https://github\.com/([^"]+)"', setup))
            clone_branch = set(re.findall(r'"--branch", "([^"]+)"', setup))
            own = path.relative_to(root).as_posix()
            assert any(p == own for _, _, p in badges), f"{own} has no badge that opens itself"
        for _, _, target in badges:
            assert (root / target).is_file(), f"{path.name}: a badge opens {target}, which does not exist"
        found[path.relative_to(root).as_posix()] = ({r for r, _, _ in badges}, clone_url, clone_branch,
                                                    {b for _, b, _ in badges})
    return found


def assert_everything_names(root: Path, repo: str, branch: str):
    for name, (badge_repos, clone_urls, clone_branches, badge_branches) in names(root).items():
        assert badge_repos == {repo} and badge_branches == {branch}, f"{name}: badges name {badge_repos} {badge_branches}"
        if name.endswith(".ipynb"):
            assert clone_urls == {repo} and clone_branches == {branch}, f"{name}: setup cell clones {clone_urls} {clone_branches}"
    for path in [root / "README.md", *(root / "notebooks").glob("**/*.ipynb")]:
        assert "OWNER/REPO" not in path.read_text(encoding="utf-8") or repo == "OWNER/REPO", f"{path.name} keeps a placeholder"


def test_the_committed_course_names_one_repository_and_branch_everywhere():
    repo, branch = load_publish().current(ROOT)          # OWNER/REPO and main until the course is published
    assert_everything_names(ROOT, repo, branch)


def test_publish_names_the_repository_everywhere_and_moves_it(course, capsys):
    publish = load_publish()
    assert publish.main(["my-name/pytorch-course", "--root", str(course)]) == 0
    assert_everything_names(course, "my-name/pytorch-course", "main")
    assert "pytorch-course" in capsys.readouterr().out

    before = {p: p.read_bytes() for p in course.rglob("*") if p.is_file()}
    assert publish.main(["my-name/pytorch-course", "--root", str(course)]) == 0      # again: nothing changes
    assert "nothing to change" in capsys.readouterr().out
    assert before == {p: p.read_bytes() for p in course.rglob("*") if p.is_file()}

    assert publish.main(["other-org/course", "--branch", "v2", "--root", str(course)]) == 0   # moved
    assert_everything_names(course, "other-org/course", "v2")
    assert not any("my-name" in p.read_text(encoding="utf-8") for p in course.rglob("*.ipynb"))
    for path in course.rglob("*.ipynb"):
        json.loads(path.read_text(encoding="utf-8"))                 # still valid notebooks


def test_publish_refuses_bad_names_and_a_half_edited_course(course, capsys):
    publish = load_publish()
    for bad in (["not a repo name"], ["a/b", "--branch", "bad branch"]):
        with pytest.raises(SystemExit):
            publish.main([*bad, "--root", str(course)])
        assert "is not a" in capsys.readouterr().err
    lesson = course / "notebooks" / "02_transforms.ipynb"
    lesson.write_text(lesson.read_text(encoding="utf-8").replace("OWNER/REPO", "someone/else"), encoding="utf-8")
    with pytest.raises(SystemExit):
        publish.main(["a/b", "--root", str(course)])
    assert "name 2 repositories" in capsys.readouterr().err
