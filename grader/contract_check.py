"""Holding a call's arguments, the reference's returns and the starter's `def` lines to a function
item's contract (grader/contract.py): what `grade.py validate` runs over every case of every seed
(grading never does). `def` lines are read with `ast`, never run.
"""
from __future__ import annotations

import ast
import difflib
import math
from pathlib import Path

from .contract import NO_DEFAULT, Env, Problem, Signature, check_value, describe_value, frozen_value, python_literal


def check_call(sig: Signature, args: tuple, kwargs: dict) -> tuple[list[Problem], Env]:
    """The problems of one call `f(*args, **kwargs)` against the declared arguments, and what the
    call bound (for check_returns)."""
    problems: list[Problem] = []
    values: dict = {}
    names = sig.names
    specs = {a.name: a for a in sig.args}
    for i, v in enumerate(args):
        if i >= len(names):
            problems.append(Problem(f"#{i + 1}", f"{len(names)} arguments {sig.text()}", describe_value(v),
                                    f"{len(args)} positional arguments"))
            continue
        values[names[i]] = v
    for k, v in kwargs.items():
        if k not in specs:
            close = difflib.get_close_matches(k, names, n=1)
            problems.append(Problem(k, f"no argument {k!r} in {sig.text()}", describe_value(v),
                                    f"did you mean {close[0]!r}?" if close else ""))
        elif k in values:
            problems.append(Problem(k, "the argument once", "it both by position and by keyword"))
        else:
            values[k] = v
    env = Env(values)
    for a in sig.args:
        if a.name not in values and not a.may_omit:
            problems.append(Problem(a.name, a.describe(), "nothing", "it is required"))
    # Tensors that only broadcast are checked last, against the dims the others have bound.
    for a in sorted(sig.args, key=lambda a: a.broadcast):
        if a.name in values:
            why = check_value(a, values[a.name], env, f"argument {a.name}")
            if why is not None:
                problems.append(Problem(a.name, a.describe(), describe_value(values[a.name]), why))
    return problems, env


def check_returns(sig: Signature, value, env: Env) -> list[Problem]:
    """The problems of a returned value against the declared returns, with the call's dims."""
    if not sig.returns:
        return []
    if len(sig.returns) == 1:
        values = [value[0] if isinstance(value, tuple) and len(value) == 1 else value]
    elif isinstance(value, (tuple, list)) and len(value) == len(sig.returns):
        values = list(value)
    else:
        return [Problem("(" + ", ".join(sig.return_names) + ")", f"a tuple of {len(sig.returns)} values",
                        describe_value(value))]
    problems = []
    for spec, v in zip(sig.returns, values):
        why = check_value(spec, v, env, f"the returned {spec.name}")
        if why is not None:
            problems.append(Problem(spec.name, spec.describe(), describe_value(v), why))
    return problems


# === the starter's def lines ======================================================================
def function_defs(path: str | Path) -> dict:
    """{name: (cell index, ast.FunctionDef)} of the top-level functions a notebook or script
    defines (the last definition of a name wins, as when it runs). Read with ast, never run."""
    from .blanks import parse, strip_magics
    from .load import load_submission
    found = {}
    for cell in load_submission(path).code_cells:
        source, _ = strip_magics(cell)
        try:
            tree = parse(source)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found[node.name] = (cell.index, node)
    return found


def def_problems(sig: Signature, fn: ast.FunctionDef) -> list[str]:
    """How a `def` line disagrees with the declared arguments: names, order, defaults."""
    a = fn.args
    params = a.posonlyargs + a.args + a.kwonlyargs
    names = tuple(p.arg for p in params)
    problems = []
    if a.vararg or a.kwarg:
        extra = ", ".join(f"{'*' if v is a.vararg else '**'}{v.arg}" for v in (a.vararg, a.kwarg) if v)
        problems.append(f"it takes {extra}, which the signature does not declare")
    if names != sig.names:
        return problems + [f"its parameters are ({', '.join(names)}); the signature declares {sig.text()}"]
    positional = a.posonlyargs + a.args
    defaults = dict(zip((p.arg for p in positional[len(positional) - len(a.defaults):]), a.defaults))
    defaults.update({p.arg: d for p, d in zip(a.kwonlyargs, a.kw_defaults) if d is not None})
    for spec in sig.args:
        node = defaults.get(spec.name)
        if node is None and spec.may_omit:
            want = None if spec.default is NO_DEFAULT else spec.default
            problems.append(f"`{spec.name}` has no default, but the signature lets it be left out ({spec.name}={python_literal(want)})")
        elif node is not None and not spec.may_omit:
            problems.append(f"`{spec.name}` has a default ({ast.unparse(node)}), but the signature declares it "
                            "required (give it `optional = true` or a `default`)")
        elif node is not None:
            want = None if spec.default is NO_DEFAULT else spec.default
            try:
                got = frozen_value(ast.literal_eval(node))
            except ValueError:
                continue          # not a literal: nothing to compare with
            if not (got == want and type(got) is type(want)) and not (isinstance(got, float) and isinstance(want, float)
                                                                      and math.isclose(got, want)):
                problems.append(f"`{spec.name}` defaults to {ast.unparse(node)}, but the signature declares {python_literal(want)}")
    return problems
