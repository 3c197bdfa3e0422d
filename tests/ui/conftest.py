"""The dashboard's tests drive the same live server with nodes as tests/execution."""

from tests.execution.conftest import _tasks_may_write_here, batch  # noqa: F401 - fixtures
