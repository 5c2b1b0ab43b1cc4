"""Benchmarks: one script per question, all run by ``python -m benchmarks.run``.

=====================  ==========================================================
``per_call``           (1) µs per call against a loopback keep-alive server
``in_process``         (2) in-process cost with a canned response, per step and middleware
``cold_start``         (3) import + client + first call in a fresh process
``bench_eventstream``  (4) event-stream decoding, 64-byte messages and one 16 MiB message
``concurrency``        (5) 16 threads sharing one client: calls/s, connections opened
``stream_memory``      (6) one streaming call carrying 1 GiB: peak RSS growth
=====================  ==========================================================

Each runs alone (``python -m benchmarks.per_call``) and prints its Markdown table; ``run``
writes every table, the targets and a chart to ``benchmarks/results/``. ``server`` is the
loopback server they share (a separate process); ``common`` holds the timing harness.
"""
