"""Reference package for __ID__ (made by `grade.py new __ID__`).

The grader imports this folder by path (rubrics/__ID__.toml: assignment.reference), under a private
name, and the rubric names its functions as "module.function"; a function item's `reference` is a
name exported here. Import with relative imports (`from .rows import ...`) only: the package has
no fixed name on sys.path.
"""
from .rows import normalize_rows

__all__ = ["normalize_rows"]
