"""Session-level state on pooled connections, and what giving one back resets.

asyncpg's pool, by default, resets every connection it gets back with a round
trip (`pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`): for a
one-statement read, as many round trips as the read itself. The service takes
no session-level state on pooled connections (advisory locks are
transaction-scoped, settings `SET LOCAL` or `set_config(..., true)`,
temporary tables `ON COMMIT DROP`; tests/unit/test_session_state.py holds every
SQL text of the package to that) but for the job lock (db/jobs.py). So the
statement that takes such state marks its connection first, and only a marked
connection is reset. asyncpg still rolls back an open transaction on release.
"""

from __future__ import annotations

import asyncpg

from customer_core.db import Conn

# Server process ids of pooled connections that may hold session-level state.
# A pid outlives its connection only until that pid is reused, which then
# costs the new connection one needless reset.
_marked: set[int] = set()


def mark_session_state(conn: Conn) -> None:
    """Call before a statement that takes session-level state (it may succeed on
    the server even when the caller is cancelled while it runs)."""
    _marked.add(conn.get_server_pid())


async def reset_if_marked(conn: asyncpg.Connection) -> None:
    """The pool's `reset`: the full reset for a marked connection, none otherwise."""
    pid = conn.get_server_pid()
    if pid in _marked:
        query = conn.get_reset_query()
        if query:
            await conn.execute(query)
        _marked.discard(pid)  # after: a reset that fails terminates the connection
