"""The fast path on PostgreSQL: statements marked `db.fast` run on the session's asyncpg connection.

Through SQLAlchemy's asyncpg adapter a statement costs about 260 us of this process's CPU, against 140
for asyncpg alone, round trip included; a timeline page runs seven, a post twenty or more, and on a
small box the server's own CPU is what PostgreSQL's figures wait for. As on SQLite (`db.CompiledFast`),
such a statement is compiled once, its parameters and result columns converted by the dialect's own
processors, and its rows returned as named tuples.

Transactions stay SQLAlchemy's: a fast statement that writes, reads FOR UPDATE or is marked
`in_transaction` (pg_notify) runs inside the session's transaction, begun by SQLAlchemy (the statement
goes through SQLAlchemy when none has begun yet). A plain read runs in the transaction when there is
one, and on its own otherwise: at READ COMMITTED every statement sees its own snapshot anyway, and a
read-only request then never sends BEGIN and ROLLBACK.
"""

from __future__ import annotations

import weakref
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import exc
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.util import greenlet_spawn

from .db import FAST, FAST_ALONE, FAST_IN_TRANSACTION, CompiledFast, FastRows

BEFORE_COMMIT = "voisinage_before_commit"  # session.info: {key: async hook(session)}, run by commit


def before_commit(session: AsyncSession, key: str, hook: Any) -> None:
    """Run `await hook(session)` when this PostgreSQL session commits, before the COMMIT (once per key
    and transaction; a rollback drops it)."""
    session.sync_session.info.setdefault(BEFORE_COMMIT, {})[key] = hook


@sa_event.listens_for(Session, "after_rollback")
def _drop_hooks(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a SAVEPOINT rolled back: the transaction goes on, and will commit
    session.info.pop(BEFORE_COMMIT, None)


class PgSession(AsyncSession):
    """An AsyncSession whose `fast` statements run on asyncpg directly (the others as usual)."""

    async def commit(self) -> None:
        hooks = self.sync_session.info.pop(BEFORE_COMMIT, None)
        for hook in (hooks or {}).values():
            await hook(self)
        await super().commit()

    async def execute(self, statement: Any, params: Any = None, **kwargs: Any) -> Any:
        if not kwargs and statement.get_execution_options().get(FAST):
            rows = await self._fast(statement, params)
            if rows is not None:
                return rows
        return await super().execute(statement, params, **kwargs)

    async def scalars(self, statement: Any, params: Any = None, **kwargs: Any) -> Any:
        if not kwargs and statement.get_execution_options().get(FAST):
            rows = await self._fast(statement, params)
            if rows is not None:
                return rows.scalars()
        return await super().scalars(statement, params, **kwargs)

    async def scalar(self, statement: Any, params: Any = None, **kwargs: Any) -> Any:
        if not kwargs and statement.get_execution_options().get(FAST):
            rows = await self._fast(statement, params)
            if rows is not None:
                return rows[0][0] if rows else None
        return await super().scalar(statement, params, **kwargs)

    _held: tuple[Any, Any] | None = None  # (SQLAlchemy's transaction, its connection) of the last fast statement

    async def _connection(self) -> Any:
        """The session's synchronous Connection: asked of SQLAlchemy (a greenlet hand-over, 50 us) once
        per transaction of the session, kept for the transaction's other fast statements."""
        transaction = self.sync_session.get_transaction()
        held = self._held
        if held is not None and transaction is held[0] and transaction is not None:
            return held[1]
        connection = (await self.connection()).sync_connection
        self._held = (self.sync_session.get_transaction(), connection)
        return connection

    async def _fast(self, statement: Any, parameters: Any) -> FastRows | None:
        """The statement's rows through asyncpg, or None where SQLAlchemy must run it."""
        sync = self.sync_session
        if sync.new or sync.deleted or sync.dirty:
            await self.flush()  # what the session's own execute would do first (autoflush)
        connection = await self._connection()
        return await run_fast(connection, statement, parameters)


async def run_fast(connection: Any, statement: Any, parameters: Any, *, alone: bool = False) -> FastRows | None:
    """A fast statement's rows on the asyncpg connection under SQLAlchemy's (synchronous) `connection`,
    or None when it needs a transaction that has not begun. `alone`: the connection is in no
    transaction and a statement marked `fast(..., alone=True)` runs as one by itself."""
    compiled = _COMPILED.get(statement)
    if compiled is None:
        compiled = _COMPILED[statement] = _PgCompiled(statement, connection.dialect)
    driver = connection.connection.driver_connection  # the asyncpg connection
    if compiled.needs_transaction and not driver.is_in_transaction() and not (alone and compiled.alone):
        return None  # SQLAlchemy begins the transaction with it; the next ones come this way
    try:
        return await compiled.run(connection, driver, parameters or {})
    except exc.DBAPIError as error:
        if error.connection_invalidated:  # as SQLAlchemy does: this connection and the pooled ones go
            await greenlet_spawn(connection.invalidate)
            await greenlet_spawn(connection.engine.dispose, close=False)
        raise


class PgReadSession:
    """A read-only request's session on PostgreSQL (`db.read_session`). Its fast statements run on a
    connection of the pool without an ORM session: a session's begin and close were about a tenth of a
    timeline page's CPU in this process. Anything else (an ORM query, `get`, an attribute of a session)
    goes to an ordinary session, made on first use and bound to the same connection: a request never
    holds two of the pool's connections."""

    def __init__(self, sessionmaker: Any) -> None:
        self._sessionmaker = sessionmaker
        self._engine = sessionmaker.kw["bind"]
        self._connection: Any = None  # the AsyncConnection, checked out at the first fast statement
        self._session: PgSession | None = None

    async def __aenter__(self) -> PgReadSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _orm(self) -> PgSession:
        if self._session is None:
            self._session = (self._sessionmaker(bind=self._connection) if self._connection is not None
                             else self._sessionmaker())
        return self._session

    def __getattr__(self, name: str) -> Any:
        return getattr(self._orm(), name)

    async def _fast(self, statement: Any, parameters: Any, kwargs: dict[str, Any]) -> FastRows | None:
        if self._session is not None or kwargs or not statement.get_execution_options().get(FAST):
            return None
        if self._connection is None:
            self._connection = await self._engine.connect()
        return await run_fast(self._connection.sync_connection, statement, parameters)

    async def execute(self, statement: Any, params: Any = None, **kwargs: Any) -> Any:
        rows = await self._fast(statement, params, kwargs)
        return rows if rows is not None else await self._orm().execute(statement, params, **kwargs)

    async def scalars(self, statement: Any, params: Any = None, **kwargs: Any) -> Any:
        rows = await self._fast(statement, params, kwargs)
        return rows.scalars() if rows is not None else await self._orm().scalars(statement, params, **kwargs)

    async def scalar(self, statement: Any, params: Any = None, **kwargs: Any) -> Any:
        rows = await self._fast(statement, params, kwargs)
        if rows is not None:
            return rows[0][0] if rows else None
        return await self._orm().scalar(statement, params, **kwargs)

    async def close(self) -> None:
        session, connection = self._session, self._connection
        self._session = self._connection = None
        try:
            if session is not None:
                await session.close()
        finally:
            if connection is not None:
                await connection.close()


class _PgCompiled(CompiledFast):
    """A fast statement for asyncpg: its SQL for each length of its IN lists is written on first use
    (SQLAlchemy's `construct_expanded_state`) and kept."""

    def __init__(self, statement: Any, dialect: Any) -> None:
        super().__init__(statement, dialect)
        if self.compiled.literal_execute_params:  # written into the SQL per call: the kept SQL would be wrong
            raise ValueError("a fast statement cannot have literal_execute parameters")
        options = statement.get_execution_options()
        self.needs_transaction = bool(self.compiled.isinsert or self.compiled.isupdate or self.compiled.isdelete
                                      or getattr(statement, "_for_update_arg", None) is not None
                                      or options.get(FAST_IN_TRANSACTION))
        self.alone = bool(options.get(FAST_ALONE))
        # lengths of the IN lists -> the SQL, and each $n's parameter (name, index in its list or None)
        self.shapes: dict[tuple[int, ...], tuple[str, list[tuple[str, int | None]]]] = {}

    def _shape(self, parameters: dict[str, Any]) -> tuple[str, list[tuple[str, int | None]]]:
        lengths = tuple(len(parameters[name]) for name in self.expanding)
        shape = self.shapes.get(lengths)
        if shape is None:
            example = {**dict.fromkeys(self.compiled.positiontup or []),
                       **{name: list(range(n)) for name, n in zip(self.expanding, lengths, strict=True)}}
            state = self.compiled.construct_expanded_state(example)
            origin = {expanded: (name, index) for name, names in state.parameter_expansion.items()
                      for index, expanded in enumerate(names)}
            shape = self.shapes[lengths] = (state.statement,
                                            [origin.get(name, (name, None)) for name in state.positiontup or []])
        return shape

    def _arguments(self, slots: list[tuple[str, int | None]], parameters: dict[str, Any]) -> list[Any]:
        args = []
        for name, index in slots:
            value = parameters[name] if name in parameters else self.defaults[name]
            if index is not None:
                value = value[index]
            process = self.bind_processors[name]
            args.append(process(value) if process else value)
        return args

    async def run(self, connection: Any, driver: Any, parameters: dict[str, Any] | list[dict[str, Any]]
                  ) -> FastRows:
        many = isinstance(parameters, list)
        if many and self.expanding:
            raise ValueError("a fast statement with an IN list runs with one parameter set")
        sql, slots = self._shape(parameters[0] if many else parameters)  # type: ignore[index]
        args: Any = ([self._arguments(slots, row) for row in parameters] if many  # type: ignore[union-attr]
                     else self._arguments(slots, parameters))  # type: ignore[arg-type]
        if connection.dispatch.before_cursor_execute:  # statement counters in tests
            connection.dispatch.before_cursor_execute(connection, None, sql, args, None, many)
        try:
            if many:
                await driver.executemany(sql, args)
                return FastRows()
            records = await driver.fetch(sql, *args)
        except Exception as error:  # asyncpg's own: raise what SQLAlchemy would (IntegrityError...)
            raise _translated(connection, sql, args, error) from error
        return self.rows(records)


_COMPILED: weakref.WeakKeyDictionary[Any, _PgCompiled] = weakref.WeakKeyDictionary()


def _translated(connection: Any, sql: str, args: Any, error: Exception) -> Exception:
    """asyncpg's exception as SQLAlchemy raises it: the adapter maps it to its DB-API class (a private
    method of SQLAlchemy's asyncpg adapter, the one place this module needs one), which SQLAlchemy wraps."""
    dbapi, adapted = connection.dialect.loaded_dbapi, connection.connection.dbapi_connection
    try:
        adapted._handle_exception(error)
    except dbapi.Error as mapped:
        gone = connection.dialect.is_disconnect(mapped, adapted, None)
        return exc.DBAPIError.instance(sql, args, mapped, dbapi.Error, dialect=connection.dialect,
                                       connection_invalidated=gone)
    except Exception as other:  # noqa: BLE001  # not a database error: as it is
        return other
    return error
