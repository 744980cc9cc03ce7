"""lindbg's benchmark harness.

Run ``python -m bench`` from the repository root (``--quick`` for a short
smoke run). It compiles the target programs and the C ptrace loops into
``bench/build/``, runs every workload with every tool side by side, prints a
table with the ratios against the C loop and gdb, and writes
``bench/results.json``.
"""
