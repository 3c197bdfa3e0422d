"""Alembic environment: the engine comes from the caller (see openbatch.store.migrate)."""

from alembic import context

from openbatch.store.schema import metadata

engine = context.config.attributes["engine"]

with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
