"""Opening a run database: one clear error naming the path or URL, tables created race-free.

Every problem with `--db` (a directory, a parent that is a file, a file that is not SQLite, a
read-only file or folder, an unknown URL scheme, PostgreSQL without its extra, a server that does
not answer) becomes a `DatabaseError` whose message names the path, or the URL with its password
masked. Two processes may create the tables of a fresh database at the same moment: creation is
retried until every table exists, the same way on SQLite and PostgreSQL.
"""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import MetaData, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from storage.paths import is_url, mask_url

BUSY_TIMEOUT_SECONDS = 30
SQLITE_HEADER = b"SQLite format 3\x00"
POSTGRES_SCHEMES = ("postgresql", "postgres")
POSTGRES_EXTRA = "PostgreSQL needs the extra: pip install 'masgraph[postgres]'"
CREATE_ATTEMPTS = 8
T = TypeVar("T")


class DatabaseError(ValueError):
    """A database that cannot be opened or used; the message names it (credentials masked)."""


def describe(db: str) -> str:
    """How a database is named in messages: the path, or the URL with its password masked."""
    return mask_url(db) if is_url(db) else str(Path(db).expanduser())


def check_database(db: str) -> None:
    """Refuse, with one line, a database that cannot work, before anything connects to it."""
    if is_url(db):
        _check_url(db)
    else:
        sqlite_file(db)


def sqlite_file(db: str) -> Path:
    """The SQLite file of `db`, its folder created; a DatabaseError if it cannot be a writable database."""
    path = Path(db).expanduser()
    name = describe(db)
    if path.is_dir():
        raise DatabaseError(f"database {name} is a directory; give the path of a database file")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise DatabaseError(f"cannot create database {name}: {parent} is a file, not a directory")
            break
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatabaseError(f"cannot create database {name}: {exc.strerror} ({exc.filename})") from None
    if path.is_file():
        with path.open("rb") as file:
            header = file.read(len(SQLITE_HEADER))
        if header and header != SQLITE_HEADER[: len(header)]:
            raise DatabaseError(f"{name} is not a SQLite database")
        if not os.access(path, os.W_OK):
            raise DatabaseError(f"database {name} is read-only")
    # SQLite writes its journal (<name>-wal, <name>-shm) beside the database file.
    if not os.access(path.parent, os.W_OK):
        raise DatabaseError(f"database {name}: the folder {path.parent} is read-only")
    return path.resolve()


def _check_url(db: str) -> None:
    scheme = db.split("://", 1)[0].lower()
    if scheme not in POSTGRES_SCHEMES:
        raise DatabaseError(
            f"unsupported database URL {describe(db)}: give a SQLite file path or a postgresql:// URL"
        )
    try:
        import langgraph.checkpoint.postgres  # noqa: F401
        import psycopg  # noqa: F401
    except ImportError:
        raise DatabaseError(f"{POSTGRES_EXTRA} (database {describe(db)})") from None


def sqlalchemy_url(db: str) -> str:
    if is_url(db):
        scheme, rest = db.split("://", 1)
        return f"postgresql+psycopg://{rest}" if scheme.lower() in POSTGRES_SCHEMES else db
    return f"sqlite:///{sqlite_file(db)}"


def open_engine(db: str) -> Engine:
    """A SQLAlchemy engine for `db`, checked and connected once (errors name the database)."""
    check_database(db)
    with database_errors(db):
        if is_url(db):
            engine = create_engine(sqlalchemy_url(db), pool_pre_ping=True)
        else:
            engine = create_engine(sqlalchemy_url(db), connect_args={"timeout": BUSY_TIMEOUT_SECONDS})
            event.listen(engine, "connect", _sqlite_pragmas)
        with engine.connect():
            pass
    return engine


def create_tables(engine: Engine, metadata: MetaData, db: str) -> None:
    """Create the missing tables, race-free (`retry_races`)."""
    retry_races(lambda: metadata.create_all(engine), db)


def retry_races(create: Callable[[], T], db: str) -> T:
    """Run a schema-creating step; when another process creates the same table or type at the same
    moment ("already exists", a duplicate type name), run it again: it then finds the schema there.
    A real problem fails every attempt and is raised as a DatabaseError."""
    for attempt in range(CREATE_ATTEMPTS):
        try:
            return create()
        except Exception as exc:
            if attempt == CREATE_ATTEMPTS - 1 or not _is_driver_error(exc):
                with database_errors(db):
                    raise
        time.sleep(0.02 * (attempt + 1) * (1 + random.random()))
    raise AssertionError("unreachable")


def _is_driver_error(exc: BaseException) -> bool:
    return isinstance(exc, SQLAlchemyError | sqlite3.Error) or type(exc).__module__.startswith("psycopg")


@contextlib.contextmanager
def database_errors(db: str) -> Iterator[None]:
    """Turn driver errors into one DatabaseError line naming `db` (password masked)."""
    try:
        yield
    except DBAPIError as exc:
        raise DatabaseError(_message(db, exc.orig)) from None
    except sqlite3.Error as exc:
        raise DatabaseError(_message(db, exc)) from None
    except Exception as exc:
        if type(exc).__module__.startswith("psycopg"):
            raise DatabaseError(_message(db, exc)) from None
        raise


def _message(db: str, error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    reason = lines[0] if lines else type(error).__name__
    password = _password(db)
    if password:
        reason = reason.replace(password, "***")
    if "readonly" in reason or "read-only" in reason:
        return f"database {describe(db)} is read-only ({reason})"
    if "file is not a database" in reason:
        return f"{describe(db)} is not a SQLite database"
    return f"database {describe(db)}: {reason}"


def _password(db: str) -> str | None:
    if not is_url(db):
        return None
    from urllib.parse import urlsplit

    with contextlib.suppress(ValueError):
        return urlsplit(db).password
    return None


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
