"""Run as ``python -m tests.zygote_probe`` by tests/test_zygote.py."""

import sys

print("probe", __spec__.name if __spec__ else None, __name__)
sys.exit(0)
