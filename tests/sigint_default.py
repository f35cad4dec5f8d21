"""``python tests/sigint_default.py SCRIPT ARGS...``: run SCRIPT with SIGINT raising
KeyboardInterrupt, as in a terminal.

A process started in the background by a non-interactive shell (``nohup``, ``cmd &`` in a
script, some CI runners) inherits SIGINT *ignored*, and Python then leaves it ignored: the
kill tests' Ctrl-C would never arrive.  This restores Python's own handler first.
"""

from __future__ import annotations

import os
import runpy
import signal
import sys

if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    script = sys.argv[1]
    sys.argv = sys.argv[1:]
    sys.path[0] = os.path.dirname(os.path.abspath(script))  # as `python SCRIPT` has it
    runpy.run_path(script, run_name="__main__")
