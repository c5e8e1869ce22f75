"""`batch --dask tcp://host:8786`: the same grading on a Dask distributed cluster.

Each Dask worker thread keeps its own warm Grader (`executors.cached_grader`: one sandbox worker per
thread, slots claimed per machine), so a worker grades many submissions for one sandbox start.
Workers only compute: a `Graded` (result JSON, the student's own code, the feedback page as bytes)
travels back, and the coordinator alone writes the gradebook and the output folder. Submission
paths must be readable by the workers at the same path: a shared filesystem, as on a Slurm cluster.
"""
from __future__ import annotations

from .executors import Config, Graded, Task, close_graders, grade_cached


def run_dask(tasks: list[Task], cfg: Config, jobs: int = 0, *, address):
    """Yield Graded as they finish on the cluster at `address` (or a Client/LocalCluster object);
    an `executors.Executor` once the address is bound. `jobs` is the cluster's business (its
    workers' threads), not ours."""
    from distributed import Client, as_completed
    if not tasks:
        return
    client = address if isinstance(address, Client) else Client(address)
    owns = client is not address
    try:
        # pure=False: a task is an action (sandboxed run), not a cacheable value; the key is the
        # student so the dashboard says who is being graded.
        futures = [client.submit(grade_cached, t, cfg, key=f"grade-{t.student}-{t.content_sha256[:8]}", pure=False)
                   for t in tasks]
        try:
            for f in as_completed(futures):
                try:
                    yield f.result()
                except Exception as e:    # the worker died under this task: report it, keep going
                    t = tasks[futures.index(f)]
                    yield Graded(t.student, t.content_sha256, 0.0, None, {}, None,
                                 error=f"dask: {type(e).__name__}: {e}"[:500])
        finally:
            for f in futures:
                f.cancel()
            # free the sandbox workers and slots the cluster's processes hold for this rubric
            try:
                client.run(close_graders)
            except Exception:
                pass
    finally:
        if owns:
            client.close()
