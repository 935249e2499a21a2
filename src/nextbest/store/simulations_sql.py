"""Population simulations of the SQL store: one row per run and tenant with its inputs, status,
progress, heartbeat and result (``nextbest.simulate`` runs them; docs/simulation.md).

A run is ``queued``, then ``running`` (``done``/``total`` its progress, ``updated_at`` the
heartbeat of the process running it), then ``done`` (with its result) or ``failed`` (with its
error). Finished runs never change again. A run whose heartbeat stopped (its process died) is
marked failed by :meth:`SimulationsSql.fail_stale_simulations`.
"""

from __future__ import annotations

import json
from typing import Any

from nextbest.store.base import Page, SimulationRecord
from nextbest.store.core_sql import (
    Cursor,
    SqlCore,
    check_id,
    check_int,
    check_tenant_id,
    decode_cursor,
    encode_cursor,
    json_text,
    page_limit,
    valid_tenant_id,
)
from nextbest.store.errors import InvalidInputError

#: The statuses of a run; the last two are final.
SIMULATION_STATUSES = ("queued", "running", "done", "failed")
_FINAL = ("done", "failed")
_COLUMNS = "simulation_id, status, inputs, created_at, updated_at, finished_at, done, total, error"
#: The longest error text kept (the first errors of a run are in its result, not here).
MAX_ERROR_CHARS = 2000
_MAX_COUNT = 2**62


def _record(row: Any, result: Any = None) -> SimulationRecord:
    return SimulationRecord(
        simulation_id=row[0],
        status=row[1],
        inputs=json.loads(row[2]),
        created_at=float(row[3]),
        updated_at=float(row[4]),
        finished_at=None if row[5] is None else float(row[5]),
        done=int(row[6]),
        total=None if row[7] is None else int(row[7]),
        error=row[8],
        result=None if result is None else json.loads(result),
    )


class SimulationsSql(SqlCore):
    """Simulation runs (see the module docstring)."""

    def create_simulation(
        self, tenant_id: str, simulation_id: str, inputs: dict[str, Any]
    ) -> SimulationRecord:
        check_tenant_id(tenant_id)
        check_id("simulation id", simulation_id)
        text = json_text("simulation inputs", inputs, "inputs")
        now = self.clock()

        def insert(cur: Cursor) -> None:
            cur.execute(
                "INSERT INTO simulations (tenant_id, simulation_id, status, inputs, created_at, "
                "updated_at) VALUES (?, ?, 'queued', ?, ?, ?)",
                (tenant_id, simulation_id, text, now, now),
            )

        self._write(insert)
        return SimulationRecord(simulation_id, "queued", dict(inputs), now, now)

    def update_simulation(
        self,
        tenant_id: str,
        simulation_id: str,
        *,
        status: str | None = None,
        done: int | None = None,
        total: int | None = None,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> bool:
        check_tenant_id(tenant_id)
        check_id("simulation id", simulation_id)
        if status is not None and status not in SIMULATION_STATUSES:
            raise InvalidInputError(
                f"status {status!r} is not one of {', '.join(SIMULATION_STATUSES)}",
                field="status",
            )
        sets = ["updated_at = ?"]
        now = self.clock()
        args: list[Any] = [now]
        if status is not None:
            sets.append("status = ?")
            args.append(status)
            if status in _FINAL:
                sets.append("finished_at = ?")
                args.append(now)
        for name, value in (("done", done), ("total", total)):
            if value is not None:
                sets.append(f"{name} = ?")
                args.append(check_int(name, value, 0, _MAX_COUNT))
        if result is not None:
            sets.append("result = ?")
            args.append(json_text("simulation result", result, "result"))
        if error is not None:
            sets.append("error = ?")
            args.append(str(error)[:MAX_ERROR_CHARS])

        def update(cur: Cursor) -> bool:
            cur.execute(
                f"UPDATE simulations SET {', '.join(sets)} WHERE tenant_id = ? "
                "AND simulation_id = ? AND status NOT IN ('done', 'failed')",
                (*args, tenant_id, simulation_id),
            )
            return cur.rowcount == 1

        return self._write(update)

    def get_simulation(self, tenant_id: str, simulation_id: str) -> SimulationRecord | None:
        check_id("simulation id", simulation_id)
        if not valid_tenant_id(tenant_id):
            return None
        with self._read() as cur:
            row = cur.execute(
                f"SELECT {_COLUMNS}, result FROM simulations "
                "WHERE tenant_id = ? AND simulation_id = ?",
                (tenant_id, simulation_id),
            ).fetchone()
        return None if row is None else _record(row, row[9])

    def list_simulations(
        self, tenant_id: str, cursor: str | None = None, limit: int = 50
    ) -> Page[SimulationRecord]:
        check_tenant_id(tenant_id)
        limit = page_limit(limit)
        before = decode_cursor(cursor)
        with self._read() as cur:
            if before:
                rows = cur.execute(
                    f"SELECT {_COLUMNS} FROM simulations WHERE tenant_id = ? "
                    "AND simulation_id < ? ORDER BY simulation_id DESC LIMIT ?",
                    (tenant_id, before, limit + 1),
                ).fetchall()
            else:
                rows = cur.execute(
                    f"SELECT {_COLUMNS} FROM simulations WHERE tenant_id = ? "
                    "ORDER BY simulation_id DESC LIMIT ?",
                    (tenant_id, limit + 1),
                ).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        return Page([_record(r) for r in rows], encode_cursor(rows[-1][0]) if more else None)

    def fail_stale_simulations(self, stale_before: float, error: str) -> int:
        if not isinstance(stale_before, int | float) or isinstance(stale_before, bool):
            raise InvalidInputError("stale_before must be epoch seconds", field="stale_before")
        now = self.clock()

        def fail(cur: Cursor) -> int:
            cur.execute(
                "UPDATE simulations SET status = 'failed', error = ?, finished_at = ?, "
                "updated_at = ? WHERE status IN ('queued', 'running') AND updated_at < ?",
                (str(error)[:MAX_ERROR_CHARS], now, now, float(stale_before)),
            )
            return int(cur.rowcount)

        return self._write(fail)
