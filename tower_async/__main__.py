"""``python -m tower_async COMMAND``; the one command is ``stubs`` (see tower_async.stubs)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help") or args[0] != "stubs":
        print("usage: python -m tower_async stubs --spec PATH|URL|VERSION [--out DIR]")
        return 0 if args and args[0] in ("-h", "--help") else 2
    from .stubs.cli import main as stubs_main

    return stubs_main(args[1:])


if __name__ == "__main__":
    sys.exit(main())
