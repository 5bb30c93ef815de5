"""Test settings: every notebook and test runs in smoke mode and never tries a download.

These are set before nbval starts any kernel, and kernels and subprocesses inherit them.
"""
import os

os.environ["COURSE_SMOKE"] = "1"
os.environ["COURSE_OFFLINE"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")

# pytest-xdist runs one worker per core, and each would start as many torch threads as the machine has
# cores: on 2 cores, 4 busy threads whose OpenMP waits slow each other down (the whole suite took 357 s
# that way and 269 s with one thread per worker, on this course's 2-core test machine). Each worker, and
# every kernel and process it starts, gets its share of the cores instead.
_workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _workers > 1:
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // _workers)))
