"""Alembic environment: runs on the connection that `models.db.migrate` hands over."""

from alembic import context

from voisinage.models import all_models  # noqa: F401  (registers every table on Base.metadata)
from voisinage.models.base import Base

target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("migrations run through voisinage.models.db.migrate")
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
