"""An INSERT sent now and confirmed later: the wait for the commit overlaps other work.

    pending = send_insert(row)      # on its way to PostgreSQL, which commits it on receipt
    ...                             # work that needs no answer from the database
    row = pending.confirm()         # waits for the commit; raises what the INSERT raised

A write-ahead row (the execution log's, say) must be committed before the call it
records goes out, but nothing else has to wait for it: preparing the call needs no
answer from the database. In autocommit, PostgreSQL executes and commits a statement
once it has received it; only the client's wait for the acknowledgement is moved,
to `confirm()`. Until then the connection must not be used for anything else, so the
caller confirms before its next query, whatever happened in between (`settle()` on an
error path).

The statement is the one Django's `save()` would run (the same compiler, field
preparation and pre/post_save signals) and goes through the connection's cursor
wrappers, so `connection.execute_wrapper` instrumentation and the queries log see it.
It is sent with libpq's own asynchronous call on psycopg 3's connection (`pgconn`,
psycopg's public libpq wrapper), as one simple-protocol statement with client-side
bound parameters, which is what Django's psycopg 3 backend does by default.

Everywhere else the INSERT is simply run at once and `confirm()` returns the row:
another database, inside a transaction (the commit then belongs to the transaction,
and waiting for it is the caller's business), server-side binding, or a model whose
INSERT returns anything but an integer primary key.
"""

import logging
import select
import time
from types import SimpleNamespace
from typing import Any, Generic, TypeVar

from django.db import DataError, IntegrityError, connections, router
from django.db.models import Model, signals
from django.db.models.fields import AutoFieldMixin
from django.db.models.sql import InsertQuery

try:
    import psycopg
    from psycopg import errors as psycopg_errors
except ImportError:  # PostgreSQL is optional; SQLite has no asynchronous path
    psycopg = None

M = TypeVar("M", bound=Model)

logger = logging.getLogger(__name__)


def send_insert(instance: M) -> "PendingInsert[M]":
    """INSERT a new, unsaved instance: sent now, confirmed by `confirm()`."""
    model = type(instance)
    meta = model._meta
    alias = router.db_for_write(model, instance=instance)
    connection = connections[alias]
    returning = meta.db_returning_fields
    if (
        psycopg is None
        or connection.vendor != "postgresql"
        or meta.parents
        or not instance._state.adding
        or instance.pk is not None
        or returning != [meta.pk]
        or not isinstance(meta.pk, AutoFieldMixin)
        or not connection.get_autocommit()
    ):
        return _Saved(instance, alias)

    cursor = connection.cursor()  # connects, or health-checks a kept connection
    raw = cursor.cursor
    if not hasattr(raw, "mogrify"):  # server-side binding: no client-side statement text
        cursor.close()
        return _Saved(instance, alias)
    instance._prepare_related_fields_for_save(operation_name="save")  # as save() does
    signals.pre_save.send(
        sender=model, instance=instance, raw=False, using=alias, update_fields=None
    )
    query = InsertQuery(model)
    query.insert_values(
        [f for f in meta.local_concrete_fields if f is not meta.pk and not f.generated],
        [instance],
    )
    compiler = query.get_compiler(using=alias)
    compiler.returning_fields = returning
    ((sql, params),) = compiler.as_sql()
    sender = _Sender(raw, connection.connection)
    wrapped = (
        connection.make_debug_cursor(sender)
        if connection.queries_logged
        else connection.make_cursor(sender)
    )
    try:
        wrapped.execute(sql, params)  # wrappers, error translation, the queries log
    except BaseException:
        if sender.sent:  # an execute wrapper failed after the statement went out
            _drain(connection, sender)
        raise
    finally:
        cursor.close()
    return PendingInsert(instance, alias, sender)


def _drain(connection: Any, sender: "_Sender") -> None:
    """Read what a statement sent ahead answered, so that the connection can serve
    the next query; if that fails, have Django check the connection before reuse."""
    try:
        sender.receive()
    except BaseException as error:
        connection.errors_occurred = True
        if not isinstance(error, Exception):
            raise


class PendingInsert(Generic[M]):
    """An INSERT on its way; `confirm()` waits for it once, later calls repeat its
    outcome."""

    def __init__(self, instance: M, alias: str, sender: "_Sender | None" = None) -> None:
        self.instance = instance
        self.alias = alias
        self._sender = sender
        self._error: BaseException | None = None
        self.waited_seconds = 0.0  # in confirm(), for the commit

    def confirm(self) -> M:
        sender, self._sender = self._sender, None
        if sender is not None:
            connection = connections[self.alias]
            began = time.monotonic()
            try:
                with connection.wrap_database_errors:
                    self.instance.pk = sender.receive()
            except BaseException as error:
                self._error = error
                if not isinstance(error, (IntegrityError, DataError)):
                    # Django marks its own translated errors; anything else (an
                    # interrupt mid-read) may leave the answer half read.
                    connection.errors_occurred = True
                raise
            finally:
                self.waited_seconds = time.monotonic() - began
            self.instance._state.adding = False
            self.instance._state.db = self.alias
            signals.post_save.send(
                sender=type(self.instance), instance=self.instance, created=True,
                update_fields=None, raw=False, using=self.alias,
            )  # fmt: skip
        if self._error is not None:
            raise self._error
        return self.instance

    def settle(self) -> None:
        """Confirm, for a caller on its way out with another error: the connection is
        left ready for its next query; this INSERT's own failure, if nobody was told
        of it yet, is logged rather than raised."""
        if self._sender is None:
            return  # confirmed already: its outcome was returned or raised
        try:
            self.confirm()
        except Exception:
            logger.exception("an INSERT sent ahead failed while another error was raised")


def already_saved(instance: M) -> PendingInsert[M]:
    """A row written earlier, for callers that handle both kinds alike."""
    return PendingInsert(instance, instance._state.db)


class _Saved(PendingInsert[M]):
    """Where the INSERT cannot be sent ahead: saved at once."""

    def __init__(self, instance: M, alias: str) -> None:
        super().__init__(instance, alias)
        instance.save(force_insert=True, using=alias)


class _Sender:
    """Stands in for the psycopg cursor under Django's cursor wrapper: `execute` sends
    the statement and returns; `receive` waits for its result."""

    def __init__(self, cursor: Any, conn: Any) -> None:
        self._cursor = cursor
        self._conn = conn
        self._query: Any = None  # read by Django's last_executed_query (queries log)
        self.sent = False

    def execute(self, sql: str, params: Any = None) -> None:
        text = self._cursor.mogrify(sql, params)
        data = text.encode(self._conn.info.encoding)
        self._query = SimpleNamespace(query=data)
        pgconn = self._conn.pgconn
        if pgconn.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            raise psycopg.ProgrammingError("the connection is busy; an INSERT cannot be sent")
        pgconn.send_query(data)
        self.sent = True
        # The connection is non-blocking: send what is left, reading meanwhile (as
        # psycopg does), so a server that answers early never stalls the send.
        while pgconn.flush():
            if _wait(pgconn.socket, select.POLLIN | select.POLLOUT) & select.POLLIN:
                pgconn.consume_input()

    def receive(self) -> int:
        """Every result of the statement (until libpq has no more), never blocking
        inside libpq: each is read only once `is_busy` says it has arrived."""
        pgconn = self._conn.pgconn
        results = []
        while True:
            pgconn.consume_input()
            while pgconn.is_busy():
                _wait(pgconn.socket, select.POLLIN)
                pgconn.consume_input()
            result = pgconn.get_result()
            if result is None:
                break
            results.append(result)
        for result in results:
            if result.status != psycopg.pq.ExecStatus.TUPLES_OK:
                raise psycopg_errors.error_from_result(result, encoding=self._conn.info.encoding)
        if len(results) != 1 or results[0].ntuples != 1:
            raise psycopg.InterfaceError(f"the INSERT answered {len(results)} results")
        return int(results[0].get_value(0, 0))

    def close(self) -> None:
        pass


def _wait(fileno: int, events: int) -> int:
    """Until the socket is ready (poll: unlike select, any descriptor number); the
    events that happened. An error or hang-up counts as readable: libpq's next read
    reports it."""
    poller = select.poll()
    poller.register(fileno, events)
    ((_fd, happened),) = poller.poll()
    if happened & (select.POLLERR | select.POLLHUP | select.POLLNVAL):
        happened |= select.POLLIN
    return happened
