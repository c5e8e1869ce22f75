"""The sandbox's runtime: the only grader code that runs inside the sandbox. bwrap binds this
folder read-only at /opt/grader/runtime (and the entry script, grader/sandbox/probe.py, at
/opt/grader/probe.py); nothing else of the grader is visible inside.

One module per job:
- protocol: what both sides agree on (wire formats, the job's steps, its budgets, shared limits);
  standard library only, no side effects: the trusted side imports it, and nothing else of here;
- __main__: the entry (the environment's sys.path, torch imported with the collector turned down);
- zygote: the process tree (zygote, keeper, worker) and the worker's job loop;
- confine: Linux confinement (prctl, mounts, capabilities, seccomp, a runner's uid and rlimits);
- supervise: one job on the worker's side (fork the runner, watch it, replay, reap, answer);
- execute: the runner running the student's blocks and calls, and reporting each step;
- codec: the student's values into plain data and safetensors, the inputs back into tensors.

Every module that runs next to the student's code (all but protocol and __main__) replaces its
own `__builtins__` with a copy of the builtins taken at import, before any student code ran (a
function looks builtins up in its module's `__builtins__` as it was when the function was
defined): a runner's code that replaces `builtins.len` or `builtins.open` changes its own
namespace, not ours. What those modules call after student code has started is bound at import
too (os.write, os._exit, json's encoder, torch.Tensor's methods): see execute and codec.

Importing this package runs nothing.
"""
