#!/usr/bin/env python3
"""Command-line entry: `python grade.py grade SUBMISSION ...`. See `python grade.py --help`."""
import sys

from grader.cli import exit_without_teardown, main

if __name__ == "__main__":
    exit_without_teardown(main(sys.argv[1:]))
