"""The ingest use cases: route a file, receive it into landing, load it, complete core, inspect.

`pipelines/` (Dagster) and `cli/` decide when these run; this package decides what happens. It may
import `schemas`, `transforms`, `warehouse` and `connectors`, never `pipelines` or `cli`.
"""
