"""The runtime's entry: put the grader's Python environment on sys.path, import torch (through the
zygote's modules) with the garbage collector turned down, and run the zygote.

The sandbox starts `python -I -S -B /opt/grader/probe.py ARGS` (grader/sandbox/probe.py), which
loads this package from the folder beside it and calls `main(ARGS)`; outside a sandbox,
`python -m grader.sandbox.runtime ARGS` does the same.
"""
from __future__ import annotations

import gc
import sys


def use_environment(argv: list[str]) -> None:
    """Put the grader's own environment on sys.path: `--path DIR` for each of its directories, in
    order, and `--site DIR` for those whose .pth files count (their import lines run, as `site`
    runs them). The interpreter is started with -S, so nothing else (the base interpreter's
    site-packages) is on it; the trusted side computed the list (bwrap.python_environment)."""
    import site
    given = lambda flag: [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == flag]  # noqa: E731
    sys.path.extend(given("--path"))
    for folder in given("--site"):
        site.addsitedir(folder)


def main(argv: list[str]) -> int:
    use_environment(argv)
    # torch's import makes ~1M objects and keeps them all: with fewer collections meanwhile it takes
    # 5% less CPU (60 ms a worker start). The defaults are back before any runner forks
    # (zygote.warm_up), so a student's code sees Python's usual collector.
    defaults = gc.get_threshold()
    gc.set_threshold(50_000, *defaults[1:])
    from . import zygote
    return zygote.main(argv, defaults)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
