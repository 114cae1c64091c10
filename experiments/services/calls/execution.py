"""Executing a queued call (the RQ job's body): claim the row, run the engine, record the outcome."""

from __future__ import annotations

import asyncio
import threading
import weakref
from functools import cache, partial

from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction

from experiments.db_retry import db_retry
from experiments.models import Arm, Experiment, RoutedCall
from experiments.services.calls.fields import Kind, Status
from experiments.services.calls.records import finish_prepare, finish_prepared
from routing_platform import runtime
from routing_platform.engine.errors import RoutingError

_JOB_ROW_MODELS = (("c", RoutedCall), ("e", Experiment), ("a", Arm))


_job_row_readers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _job_row_reader(conn) -> tuple[str, list]:
    """(SQL, per model: its alias, model, fields, and each field's converters) of the job's
    one-row read, built once per database connection."""
    reader = _job_row_readers.get(conn)
    if reader is None:
        columns, parts = [], []
        for alias, model in _JOB_ROW_MODELS:
            fields = list(model._meta.concrete_fields)
            converters = []
            for field in fields:
                column = field.get_col(alias)
                converters.append(
                    (
                        column,
                        conn.ops.get_db_converters(column) + field.get_db_converters(conn),
                    )
                )
                columns.append(f"{alias}.{conn.ops.quote_name(field.column)}")
            parts.append((alias, model, fields, converters))
        sql = _job_row_sql(conn.ops.quote_name, columns)
        reader = _job_row_readers[conn] = (sql, parts)
    return reader


def _job_row_sql(quote, columns: list[str]) -> str:
    """SELECT ``columns`` of a call, its experiment and its arm (aliases c, e, a) by the
    call's id, with the models' own table and column names."""
    call = RoutedCall._meta

    def table(model) -> str:
        return quote(model._meta.db_table)

    def join(model, alias: str, foreign_key: str) -> str:
        return (
            f"LEFT JOIN {table(model)} {alias} ON {alias}.{quote(model._meta.pk.column)} = "
            f"c.{quote(call.get_field(foreign_key).column)} "
        )

    return (
        f"SELECT {', '.join(columns)} FROM {table(RoutedCall)} c "  # noqa: S608 - model names
        + join(Experiment, "e", "experiment")
        + join(Arm, "a", "arm")
        + f"WHERE c.{quote(call.pk.column)} = %s"
    )


def routed_call_for_job(*, call_id: int) -> RoutedCall | None:
    """The call of a job with its experiment and arm, or None if the row is gone.

    What ``RoutedCall.objects.select_related("experiment", "arm").filter(pk=...).first()``
    returns, read with one prepared statement: compiling that ORM query cost more CPU per
    job (~1.5 ms) than the rest of the recording.
    """
    conn = connections[DEFAULT_DB_ALIAS]
    sql, parts = _job_row_reader(conn)
    with conn.cursor() as cursor:
        cursor.execute(sql, [call_id])
        row = cursor.fetchone()
    if row is None:
        return None
    instances, start = [], 0
    for _alias, model, fields, converters in parts:
        values = list(row[start : start + len(fields)])
        start += len(fields)
        if values[0] is None:  # the LEFT JOIN found no row (no experiment / arm)
            instances.append(None)
            continue
        for index, (column, functions) in enumerate(converters):
            for function in functions:
                values[index] = function(values[index], column, conn)
        instances.append(model.from_db(conn.alias, [f.attname for f in fields], values))
    call, experiment, arm = instances
    RoutedCall._meta.get_field("experiment").set_cached_value(call, experiment)
    RoutedCall._meta.get_field("arm").set_cached_value(call, arm)
    return call


def run_engine(call: RoutedCall) -> dict:
    """Run the call's request through the engine with its arm's strategy and parameters."""
    payload = call.request_payload or {}
    route = payload.get("_route") or {}
    strategy = call.strategy or route.get("strategy") or "smart_routing"
    router_params = route.get("router_params") or None
    if call.kind == Kind.EVALUATE:
        coroutine = runtime.run_evaluate(
            script=payload.get("script") or "",
            niche=payload.get("niche") or "general",
            strategy=strategy,
            router_params=router_params,
        )
    else:
        coroutine = runtime.run_execute(
            text=payload.get("text"),
            messages=payload.get("messages"),
            task_type=call.task_type or payload.get("task_type") or "analysis",
            strategy=strategy,
            router_params=router_params,
            model=payload.get("model"),
            max_tokens=payload.get("max_tokens"),
            temperature=payload.get("temperature"),
        )
    return run_coroutine(coroutine)


_loops = threading.local()


def run_coroutine(coroutine):
    """Run ``coroutine`` to completion on this thread's long-lived event loop.

    A worker runs jobs back to back: one loop per thread (instead of ``asyncio.run``'s new
    loop per job, and without ``asyncio.Runner``'s per-run signal-handler swap) keeps the
    engine's per-loop provider pool, and its HTTP keep-alive connections, across jobs. A
    job interrupted inside the loop (its timeout, a signal) leaves its task pending: that
    loop is closed, cancelling whatever it left running, and the next job starts a new
    one. Like ``asyncio.run``, it refuses to run inside a running loop.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        coroutine.close()
        raise RuntimeError("routed calls cannot be executed from a running event loop")
    loop = getattr(_loops, "loop", None)
    if loop is None or loop.is_closed():
        loop = _loops.loop = asyncio.new_event_loop()
    task = loop.create_task(coroutine)
    try:
        return loop.run_until_complete(task)
    finally:
        if not task.done():
            _loops.loop = None
            _close_loop(loop)


def _close_loop(loop) -> None:
    """Cancel every task left on ``loop``, let them finish cancelling, and close it."""
    try:
        pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()


@cache
def _claim_sql(vendor: str) -> str:
    """Move a row to a status, attempts + 1, if its status is one of two (model names)."""
    quote = connection.ops.quote_name
    meta = RoutedCall._meta
    status, attempts = (quote(meta.get_field(name).column) for name in ("status", "attempts"))
    return (
        f"UPDATE {quote(meta.db_table)} SET {status} = %s, "  # noqa: S608 - model names
        f"{attempts} = {attempts} + 1 "
        f"WHERE {quote(meta.pk.column)} = %s AND {status} IN (%s, %s)"
    )


def routed_call_execute(*, call: RoutedCall) -> RoutedCall:
    """Run a queued call through the engine and record its outcome (the job's body).

    A finished call is returned untouched (a job that runs twice records once). Routing
    errors (providers failing after the engine's own retries and fallbacks, bad requests)
    are recorded as ``error`` rows; anything else propagates, so RQ retries the job.
    """
    if not db_retry(partial(_claim, call)):
        db_retry(call.refresh_from_db)
        return call
    call.status, call.attempts = Status.RUNNING, call.attempts + 1
    result, error = None, None
    try:
        result = run_engine(call)
    except RoutingError as err:
        error = err
    # Everything but the two writes happens before the transaction (on SQLite it holds
    # the database's write lock from its first statement to its commit). The upstream call
    # is paid for: a database restart now is waited out (db_retry), not turned into a retry
    # of the whole job.
    prepared = finish_prepare(call, result=result, error=error)
    return db_retry(partial(_finish_atomically, call, prepared))


def _claim(call: RoutedCall) -> bool:
    """Move ``call`` to ``running`` (attempts + 1) unless it is finished; True if claimed."""
    with connection.cursor() as cursor:
        cursor.execute(
            _claim_sql(connection.vendor), [Status.RUNNING, call.pk, Status.QUEUED, Status.RUNNING]
        )
        return cursor.rowcount == 1


def _finish_atomically(call: RoutedCall, prepared: tuple[list, tuple | None]) -> RoutedCall:
    with transaction.atomic():
        return finish_prepared(call, prepared)
