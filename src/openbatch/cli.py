"""``openbatch serve`` (and, with the execution layer, ``openbatch agent``)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Sequence

from .config import Settings, default_data_dir, parse_accounts


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"OPENBATCH_{name}", default)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="openbatch", description="A self-hosted Azure Batch compatible service.")
    commands = root.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the API server with its embedded defaults")
    serve.add_argument("--host", default=_env("HOST", "127.0.0.1"), help="address to listen on (OPENBATCH_HOST)")
    serve.add_argument("--port", type=int, default=int(_env("PORT", "8080")), help="port (OPENBATCH_PORT)")
    serve.add_argument("--data-dir", type=Path, default=Path(_env("DATA_DIR") or default_data_dir()),
                       help="where the SQLite store and the generated key live (OPENBATCH_DATA_DIR)")
    serve.add_argument("--account", default=_env("ACCOUNT", "openbatch"), help="default account name (OPENBATCH_ACCOUNT)")
    serve.add_argument("--key", default=_env("KEY"), help="default account key, base64 (OPENBATCH_KEY); "
                       "generated on first start when absent")
    serve.add_argument("--database-url", default=_env("DATABASE_URL"),
                       help="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db (OPENBATCH_DATABASE_URL)")
    serve.add_argument("--extra-accounts", default=_env("EXTRA_ACCOUNTS", ""),
                       help="more accounts as NAME:KEY,NAME:KEY (OPENBATCH_EXTRA_ACCOUNTS)")
    return root


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.command == "serve":
        from .server import serve

        serve(
            Settings(
                host=args.host,
                port=args.port,
                data_dir=args.data_dir,
                account=args.account,
                key=args.key,
                database_url=args.database_url,
                extra_accounts=parse_accounts(args.extra_accounts or ""),
            )
        )


if __name__ == "__main__":
    main()
