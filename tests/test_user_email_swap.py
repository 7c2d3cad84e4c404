"""Two events that swap the emails of two users, applied at the same time, must not deadlock.

Each upsert releases its new address from the other user's row and writes its own row. Without a fixed
order one transaction locks A then B, the other B then A. A hook stops each transaction after its first
statement on "User" until the other one has run its own first statement too (or is blocked on a lock,
which is what a fixed lock order makes it do), so the interleaving that deadlocks happens every time.
"""

from __future__ import annotations

import threading

from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.orm import Session

from models import users
from tests.support.processes import wait_for


def user_emails(engine: Engine) -> dict[str, str | None]:
    with engine.connect() as connection:
        return dict(connection.execute(text('SELECT "clerkId", email FROM "User"')).all())


def waiting_on_lock(engine: Engine, pid: int) -> bool:
    with engine.connect() as connection:
        return bool(
            connection.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid AND wait_event_type = 'Lock'"),
                {"pid": pid},
            ).scalar_one()
        )


def swap_at_once(engine: Engine, moves: dict[str, str]) -> list[BaseException]:
    """Apply `{clerk_id: new_email}` for two users in two transactions, interleaved as described above."""
    names = list(moves)
    pids: dict[str, int] = {}
    first_done = {name: threading.Event() for name in names}
    both_connected = threading.Barrier(2, timeout=30)
    errors: list[BaseException] = []

    def pause_after_first_user_statement(name: str, connection: Connection) -> None:
        other = names[1 - names.index(name)]

        @event.listens_for(connection, "after_cursor_execute")
        def pause(conn, cursor, statement, parameters, context, executemany) -> None:
            if '"User"' not in statement or first_done[name].is_set():
                return
            first_done[name].set()
            wait_for(
                lambda: first_done[other].is_set() or waiting_on_lock(engine, pids[other]),
                30,
                interval=0.02,
                what=f"{other} to reach its first User statement",
            )

    def run(name: str) -> None:
        try:
            with engine.connect() as connection:
                pids[name] = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
                connection.commit()
                both_connected.wait()
                pause_after_first_user_statement(name, connection)
                with Session(bind=connection) as session, session.begin():
                    users.upsert_from_clerk(session, name, email=moves[name], name=None, active=True)
        except BaseException as error:  # noqa: BLE001 - reported to the test thread
            errors.append(error)
            first_done[name].set()

    threads = [threading.Thread(target=run, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return errors


def test_two_users_swapping_emails_concurrently_do_not_deadlock(engine: Engine) -> None:
    with Session(bind=engine) as session, session.begin():
        users.upsert_from_clerk(session, "user_swap_a", email="a@example.org", name=None, active=True)
        users.upsert_from_clerk(session, "user_swap_b", email="b@example.org", name=None, active=True)

    for round_ in range(3):  # back and forth: each round is the deadlocking interleaving
        a_gets, b_gets = ("b@example.org", "a@example.org") if round_ % 2 == 0 else ("a@example.org", "b@example.org")
        errors = swap_at_once(engine, {"user_swap_a": a_gets, "user_swap_b": b_gets})
        assert [type(getattr(error, "orig", error)).__name__ for error in errors] == []  # not DeadlockDetected
        assert user_emails(engine) == {"user_swap_a": a_gets, "user_swap_b": b_gets}
