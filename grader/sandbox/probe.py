"""The sandbox's entry script: `python -I -S -B /opt/grader/probe.py [--isolate TMP_MB]
[--seccomp-fd N] [--path DIR --site DIR ...]` starts the zygote (grader/sandbox/runtime/).

bwrap binds this file at /opt/grader/probe.py and the runtime package beside it at
/opt/grader/runtime, both read-only. The interpreter runs isolated (-I: not even this file's folder
is on sys.path) and without `site` (-S), so this file loads the package from the folder beside it
by path, as `runtime`, without putting that folder on sys.path (nothing a job writes anywhere can
shadow it), and calls its entry (runtime/__main__.py). Imported rather than run, it does nothing.
"""
import sys


def load(folder: str, name: str = "runtime"):
    """Import the package in `folder` as `name`, every module of it compiled first, one after the
    other: their code objects then lie together in memory, so a job's runner, which writes to
    each code object it runs (the interpreter's counters), copies fewer pages after its fork
    (~65 a job fewer than modules compiled each at its import, between other imports)."""
    import importlib.machinery
    import importlib.util
    import os
    codes = {}
    for file in sorted(os.listdir(folder)):
        if file.endswith(".py"):
            path = os.path.join(folder, file)
            with open(path, "rb") as f:
                codes[path] = compile(f.read(), path, "exec", dont_inherit=True)

    class Loader(importlib.machinery.SourceFileLoader):
        def get_code(self, fullname):
            code = codes.pop(self.path, None)
            return code if code is not None else super().get_code(fullname)

    # the package's own modules are found in `folder` (its __path__) through this finder
    sys.path_importer_cache[folder] = importlib.machinery.FileFinder(folder, (Loader, [".py"]))
    init = os.path.join(folder, "__init__.py")
    spec = importlib.util.spec_from_file_location(name, init, loader=Loader(name, init),
                                                  submodule_search_locations=[folder])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


if __name__ == "__main__":
    import os
    load(os.path.join(os.path.dirname(os.path.abspath(__file__)), "runtime"))
    from runtime.__main__ import main
    sys.exit(main(sys.argv[1:]))
