"""PostgreSQL, with the connection health check skipped right after a proven use.

With CONN_HEALTH_CHECKS, Django pings a persistent connection (`SELECT 1`) before the
first query of every request, so a connection the server or a firewall dropped while
it sat idle is replaced instead of failing the request. A connection that finished a
request without a database error moments ago has just shown that it works: pinging it
again costs a round trip per request (on a busy API, the most frequent query there is)
and catches nothing the next query would not. As connection pools do (HikariCP skips
its check for a connection used within the last 500 ms), a connection that ended a
request cleanly within `PROVEN_FOR_SECONDS` is trusted without the ping; one idle for
longer is checked as before. A database restart inside that window fails that one
query, after which Django closes the connection at the end of the request, exactly as
an error mid-request always has.
"""

import time

from django.db.backends.postgresql import base

PROVEN_FOR_SECONDS = 0.5


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.proven_at: float | None = None  # when a request last ended with it working

    def close_if_unusable_or_obsolete(self) -> None:
        # Called at the start and the end of each request (and Celery task). At the end,
        # a connection that was used (health_check_done: checked, or trusted, on first
        # use) with no database error since has proven itself; after an error, Django
        # pings it here, and keeps it only if the ping worked.
        proven = self.connection is not None and (self.health_check_done or self.errors_occurred)
        super().close_if_unusable_or_obsolete()
        if self.connection is None:
            self.proven_at = None
        elif proven and not self.errors_occurred:
            self.proven_at = time.monotonic()

    def close_if_health_check_failed(self) -> None:
        if (
            self.connection is not None
            and not self.health_check_done
            and self.proven_at is not None
            and time.monotonic() - self.proven_at < PROVEN_FOR_SECONDS
        ):
            self.health_check_done = True
            return
        super().close_if_health_check_failed()
