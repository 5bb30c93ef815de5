"""Test settings: every notebook and test runs in smoke mode and never tries a download.

These are set before nbval starts any kernel, and kernels inherit them.
"""
import os

os.environ["COURSE_SMOKE"] = "1"
os.environ["COURSE_OFFLINE"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")
