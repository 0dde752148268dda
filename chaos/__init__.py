"""Fault injection for fireline: kill workers, restart Temporal, break vendors, then check.

``python -m chaos --seed N --kills 20`` runs :func:`chaos.scenario.run_scenario` and prints
the table of faults injected against invariants held (see ``chaos.table``). Modules:
``scenario`` (the run), ``invariants`` (the checks), ``providers`` (flaky vendor fakes and
proxies), ``prometheus`` (the real Prometheus behind a flaky proxy), ``processes`` and
``worker_process`` (the killable worker), ``table`` (the report).
"""
