"""The repository's pytest plugins: the real stack (Rasa, action server, console on free ports)
and its customers, shared by tests/e2e, tests/security and tests/faults — one stack per run."""

pytest_plugins = ["tests.stack"]
