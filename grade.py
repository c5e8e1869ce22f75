#!/usr/bin/env python3
"""Command-line entry: `python grade.py grade SUBMISSION ...`. See `python grade.py --help`."""
import sys

from grader.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
