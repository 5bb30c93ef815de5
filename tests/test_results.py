"""helpers.results.record_result: one entry per lesson in results.json, replaced whole, others kept."""
import json
import os
import stat
import sys

import torch

from helpers import results


def test_record_result_replaces_the_lessons_entry_and_keeps_the_others(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_SMOKE", "1")
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path))           # smoke mode writes to a scratch folder
    results.record_result("03_a", torch.device("cpu"), test_acc=0.9, epochs=3)
    results.record_result("04_b", torch.device("cpu"), test_acc=0.5)
    entry = results.record_result("03_a", torch.device("cpu"), test_acc=0.93)
    saved = json.loads(results.results_path().read_text(encoding="utf-8"))
    assert set(saved) == {"03_a", "04_b"} and saved["04_b"]["test_acc"] == 0.5
    assert saved["03_a"] == entry and "epochs" not in entry, "the new entry replaces the old one whole"
    assert entry["hardware"].startswith("CPU") and entry["torch"] == torch.__version__ and len(entry["date"]) == 10
    assert results.results_path().is_relative_to(tmp_path), "smoke runs never touch figures/results.json"
    if sys.platform != "win32":
        assert stat.S_IMODE(os.stat(results.results_path()).st_mode) & stat.S_IROTH, "readable like other files"


def test_read_results_is_empty_before_any_run(tmp_path):
    assert results.read_results(tmp_path / "results.json") == {}
