"""The database of a command: the ``--database`` option and :func:`open_database`, the one
place where every ``nextbest`` command (and a plugin's, through ``nextbest.open_database``)
resolves the URL, says on stderr which database it uses, and checks that it exists at this
version's schema, or creates it when the command may."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import click

from nextbest.store import (
    DATABASE_URL_ENV,
    DEFAULT_DATABASE_URL,
    Store,
    StoreConfigurationError,
    StoreError,
    open_store,
)

#: What a command needs of the database's schema: ``current`` (it exists at this version's
#: schema; nothing is created), ``create`` (a database that does not exist yet, or has no
#: schema, is created at the current version; an older one must be upgraded on purpose) or
#: ``any`` (opened as it is, for the commands that migrate it).
SchemaNeed = Literal["current", "create", "any"]

#: What to run when the database does not exist yet (the commands that may create one).
CREATE_HINT = "create it with `nextbest db upgrade`"


class NoDatabaseError(click.ClickException):
    """The database a command needs does not exist: a usage error (exit status 2), reported
    without the usage banner, since the default location may be all the user gave."""

    exit_code = 2


database_option = click.option(
    "--database",
    "database",
    envvar=DATABASE_URL_ENV,
    default=None,
    metavar="URL",
    help=f"sqlite:///path.db (relative to the working directory) or postgresql://... [env "
    f"{DATABASE_URL_ENV}; default {DEFAULT_DATABASE_URL}, i.e. ./nextbest.db]. Every command "
    "prints the database it uses on stderr.",
)


def describe_database(store: Store) -> str:
    """The store's URL (passwords redacted) and, for SQLite, the file's absolute path."""
    path = getattr(store, "path", None)
    return store.url if path is None else f"{store.url} ({Path(path).resolve()})"


@contextmanager
def open_database(
    database: str | None, *, schema: SchemaNeed = "current", missing_hint: str = CREATE_HINT
) -> Iterator[Store]:
    """Open the store at ``database`` (else NEXTBEST_DATABASE_URL, else the default), print
    ``database: <url> (<file>)`` on stderr, check its schema as ``schema`` says, and close it
    afterwards. ``missing_hint`` says what to run when it does not exist yet.

    Errors are click errors: a URL that cannot be used is a usage error of ``--database`` and
    a SQLite file that does not exist when one is needed a :class:`NoDatabaseError` (both exit
    status 2); a schema not at this version, or a store error inside the block, exits 1.
    """
    try:
        store = open_store(database)
    except StoreConfigurationError as exc:
        raise click.BadParameter(str(exc), param_hint="--database") from None
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        shown = describe_database(store)
        click.echo(f"database: {shown}", err=True)
        if schema != "any":
            _check_schema(store, shown, schema, missing_hint)
        yield store
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()


def _check_schema(store: Store, shown: str, schema: SchemaNeed, missing_hint: str) -> None:
    path = getattr(store, "path", None)
    file = None if path is None else Path(path).resolve()
    no_file = file is not None and not file.is_file()
    if no_file and schema == "current":
        # Never create an empty file as a side effect: say where the database was looked for.
        raise NoDatabaseError(
            f"no database file at {file} (the default is "
            f"{DEFAULT_DATABASE_URL} in the working directory): {missing_hint}"
        )
    try:
        version = 0 if no_file else store.schema_version()
        latest = store.latest_schema_version()
        if version == 0 and schema == "create":
            store.upgrade()
            click.echo(f"created database {shown} (schema version {latest})", err=True)
            return
    except StoreError:
        raise
    except Exception as exc:  # e.g. a file that is not a database, a server not answering
        raise click.ClickException(f"cannot use the database {shown}: {exc}") from None
    if version == latest:
        return
    if version == 0:
        raise click.ClickException(
            f"the database {store.url} has no nextbest schema yet: {missing_hint}"
        )
    if version > latest:
        raise click.ClickException(
            f"the database {store.url} is at schema version {version}, newer than this "
            f"nextbest knows ({latest}): upgrade nextbest"
        )
    raise click.ClickException(
        f"the database at {store.url} is not at schema version {latest} (it is at {version}): "
        "back it up and run `nextbest db upgrade`"
    )


__all__ = [
    "CREATE_HINT",
    "NoDatabaseError",
    "SchemaNeed",
    "database_option",
    "describe_database",
    "open_database",
]
