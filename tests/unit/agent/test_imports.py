"""The agent is free of server code: importing it loads none of the server's modules or libraries."""

import subprocess
import sys

SERVER = ("sqlalchemy", "starlette", "alembic", "uvicorn", "psycopg", "openbatch.services", "openbatch.store",
          "openbatch.api", "openbatch.nodes", "openbatch.scheduler", "openbatch.runtime", "openbatch.server")


def test_importing_the_agent_loads_no_server_code() -> None:
    code = ("import sys, openbatch.agent.main, openbatch.agent.files, openbatch.agent.resource_files; "
            f"print(sorted(m for m in sys.modules if m.startswith({SERVER!r})))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]", loaded
