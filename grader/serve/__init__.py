"""The review web app (`grade.py review OUT --serve`): teaching assistants score the written answers
of a batch in a browser, reading and writing its gradebook.

- `text`: words of an answer (jieba for Chinese), the rubric's concepts found in it, likeness.
- `groups`: one question's answers in groups to score together.
- `views`: what each page shows, read from the gradebook.
- `app`: the HTTP server (standard library), its routes and its safety checks.

Nothing is imported here on purpose: `grader.review` uses `text`, and `app` uses `grader.review`.
"""
