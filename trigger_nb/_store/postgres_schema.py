"""The PostgreSQL store's schema, URL and SQL (its behaviour: ``trigger_nb._store.postgres``).

Layout, in one schema per store (``?schema=NAME`` in the URL, default ``trigger_nb``), so one
database can hold several stores::

    meta(name, value)              schema_version: refused (StoreVersionError) if not ours
    entry(key, data, is_text, size)
                                   one row per key; ``data`` holds the value, or is NULL with
                                   ``size`` set when the value is big and lives in chunks
    chunk(key, seq, data)          a big value in CHUNK_BYTES pieces

Keys are ``COLLATE "C"`` so their order is code point order, as in Python and in SQLite: a
prefix scan is one range read over the primary key. Creating the schema is serialized by a
transaction-level advisory lock, so two kernels opening a new store at once both succeed.

``SCHEMA_VERSION`` is the version of these tables; what is stored in them is versioned as every
store's content is (``__format__``, ``trigger_nb._store.store``). Both are checked when a store
is opened, and a mismatch is a ``StoreVersionError``. No migration command exists because none
is needed: every PostgreSQL store was written with schema version 1, and store format 2 is
upgraded in place when opened (here only its marker changes: format 3 moved a diskcache store's
entries, not their content); a change needing more ships with the command that migrates to it.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from trigger_nb.errors import StoreError

SCHEMA_VERSION = 1
DEFAULT_SCHEMA = "trigger_nb"
INSTALL_HINT = "pip install 'trigger_nb[postgres]'"
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def load_psycopg() -> Any:
    try:
        import psycopg
    except ImportError as error:
        raise ImportError(
            f"a postgresql:// store needs psycopg 3, which is not installed: {INSTALL_HINT}"
        ) from error
    return psycopg


def split_url(url: str) -> tuple[str, str, str]:
    """``(conninfo for psycopg, schema, location shown to users)``: the ``schema`` query
    parameter is ours and taken out; the shown location has no password."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schemas = [value for name, value in query if name == "schema"]
    schema = schemas[-1] if schemas else DEFAULT_SCHEMA
    if not _SCHEMA_NAME.fullmatch(schema):
        raise StoreError(
            f"store URL {url!r}: schema {schema!r} is not a plain lower-case SQL name "
            "(letters, digits and _, not starting with a digit): use ?schema=my_store"
        )
    rest = urlencode([(name, value) for name, value in query if name != "schema"])
    conninfo = urlunsplit(parts._replace(query=rest))
    shown_netloc = parts.netloc.rsplit("@", 1)
    if len(shown_netloc) == 2:
        user = shown_netloc[0].split(":", 1)[0]
        netloc = f"{user}@{shown_netloc[1]}"
    else:
        netloc = parts.netloc
    shown = urlunsplit(parts._replace(netloc=netloc, query=urlencode([("schema", schema)])))
    return conninfo, schema, shown


def lock_key(schema: str, name: str) -> int:
    """The advisory lock id of ``name`` in this store: a signed 64-bit hash (a collision only
    makes two runs wait for each other, never run together)."""
    digest = hashlib.blake2b(f"trigger_nb:{schema}:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def statements(psycopg: Any, schema: str) -> dict[str, Any]:
    """The SQL of one store, its schema name quoted once here."""
    sql = psycopg.sql

    def q(text: str) -> Any:
        return sql.SQL(text).format(s=sql.Identifier(schema))

    return {
        "find_meta": "SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = %s "
        "AND tablename = 'meta'",
        "create_lock": "SELECT pg_advisory_xact_lock(%s)",
        "create": [
            q("CREATE SCHEMA IF NOT EXISTS {s}"),
            q("CREATE TABLE IF NOT EXISTS {s}.meta (name text PRIMARY KEY, value text NOT NULL)"),
            q(
                'CREATE TABLE IF NOT EXISTS {s}.entry (key text COLLATE "C" PRIMARY KEY, '
                "data bytea, is_text boolean NOT NULL DEFAULT false, size bigint)"
            ),
            q(
                'CREATE TABLE IF NOT EXISTS {s}.chunk (key text COLLATE "C", seq integer, '
                "data bytea NOT NULL, PRIMARY KEY (key, seq))"
            ),
            # Chunks are pickles, rarely compressible: skip the compression attempt.
            q("ALTER TABLE {s}.chunk ALTER COLUMN data SET STORAGE EXTERNAL"),
        ],
        "put_version": q(
            "INSERT INTO {s}.meta VALUES ('schema_version', %s) ON CONFLICT (name) DO NOTHING"
        ),
        "get_version": q("SELECT value FROM {s}.meta WHERE name = 'schema_version'"),
        "get": q("SELECT data, is_text, size FROM {s}.entry WHERE key = %s"),
        "scan": q(
            "SELECT key, data, is_text, size FROM {s}.entry WHERE key >= %s AND key < %s "
            "ORDER BY key"
        ),
        # One statement: drop the chunks of a big value it replaces, upsert the row.
        "put_one": q(
            "WITH gone AS (DELETE FROM {s}.chunk WHERE key = %s) "
            "INSERT INTO {s}.entry (key, data, is_text, size) VALUES (%s, %s, %s, NULL) "
            "ON CONFLICT (key) DO UPDATE SET data = excluded.data, is_text = excluded.is_text, "
            "size = NULL"
        ),
        "put_big": q(
            "WITH gone AS (DELETE FROM {s}.chunk WHERE key = %s) "
            "INSERT INTO {s}.entry (key, data, is_text, size) VALUES (%s, NULL, %s, %s) "
            "ON CONFLICT (key) DO UPDATE SET data = NULL, is_text = excluded.is_text, "
            "size = excluded.size"
        ),
        "put_chunk": q("INSERT INTO {s}.chunk (key, seq, data) VALUES (%s, %s, %s)"),
        "get_chunk": q("SELECT data FROM {s}.chunk WHERE key = %s AND seq = %s"),
        "delete": q("DELETE FROM {s}.entry WHERE key = ANY(%s)"),
        "delete_chunks": q("DELETE FROM {s}.chunk WHERE key = ANY(%s)"),
        "delete_range": q("DELETE FROM {s}.entry WHERE key >= %s AND key < %s"),
        "delete_range_chunks": q("DELETE FROM {s}.chunk WHERE key >= %s AND key < %s"),
    }
