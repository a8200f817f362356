"""Batch jobs: ``seqgpt-serve classify|extract INPUT -o OUTPUT``, every row of a file answered.

Owns the job (``job``: workers, progress, resume, stop), the files (``files``: JSONL or CSV rows
in, results appended out; ``input_records``: INPUT cut into records of bounded size, none over it
held whole; ``owned``: the files this command wrote, known by how they begin, the ones it rewrites
written whole), a row's checked request and its answer in the API's terms (``row_requests``), and
the two ways rows are answered (``RowAnswerer``): vLLM in this process (``engine``, run in a child
process of its own, ``child``) or a running server (``remote``, through the Python client); and
``seqgpt-serve eval``: gold answers and scoring (``evaluate``, pure scores in ``metrics``) and the
report (``report``). It may import ``serving.contract``, ``serving.core``, ``serving.client`` and
``serving.process`` (the server's defaults and environment, so an in-process engine runs as the
server does); never the HTTP surface or the web UI.
"""

__all__: list[str] = []  # the modules are the surface: import from them
