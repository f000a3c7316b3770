"""What the router tests share: the clusters scripts/test started (three
shards and a router, each on its own port on 127.0.0.1), databases made
fresh for a test, and starting and stopping a shard's server.

Environment (set by scripts/test): SHARD1_PORT .. SHARD3_PORT, ROUTER_PORT,
SHARD1_DIR .. ROUTER_DIR (a cluster's directory: data/, log), PG_BIN,
MOMENT_REPO (the source tree).
"""

import os
import subprocess
import sys
import time

import psycopg2
import psycopg2.extensions

HOST = "127.0.0.1"
CLUSTERS = ("shard1", "shard2", "shard3", "router")
REPO = os.environ.get("MOMENT_REPO", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

sys.path.insert(0, os.path.join(REPO, "test", "scripts", "lib"))
from checks import check, finish  # noqa: E402,F401


def port(cluster):
    return int(os.environ["%s_PORT" % cluster.upper()])


def directory(cluster):
    return os.environ["%s_DIR" % cluster.upper()]


def dsn(cluster, db, user="postgres"):
    """A libpq connection string: over TCP, as the router reaches a shard."""
    return "host=%s port=%d dbname=%s user=%s" % (HOST, port(cluster), db, user)


def shard_conninfo(cluster, db):
    """What the router's add_shard gets: no user, calls connect as the caller."""
    return "host=%s port=%d dbname=%s" % (HOST, port(cluster), db)


def connect(cluster, db, user="postgres", autocommit=True, **kwargs):
    conn = psycopg2.connect(dsn(cluster, db, user), **kwargs)
    conn.autocommit = autocommit
    return conn


def execute(conn, sql, params=None):
    """Runs one statement; returns its rows (or None)."""
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall() if cur.description is not None else None


def scalar(conn, sql, params=None):
    rows = execute(conn, sql, params)
    return rows[0][0] if rows else None


def create_database(cluster, db, *statements):
    """A fresh database on a cluster, with statements run in it."""
    admin = connect(cluster, "postgres")
    execute(admin, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % db)
    execute(admin, "CREATE DATABASE %s" % db)
    admin.close()
    conn = connect(cluster, db)
    for statement in statements:
        execute(conn, statement)
    return conn


def make_shard(cluster, db, number):
    """A database with moment, configured as shard number."""
    return create_database(cluster, db, "SET client_min_messages = warning", "CREATE EXTENSION moment",
                           "SELECT moment.configure_shard(%d)" % number)


def make_router(db, shards):
    """A router database with shards [(name, cluster, db), ...] added in that order."""
    conn = create_database("router", db, "SET client_min_messages = warning",
                           "CREATE EXTENSION moment_router CASCADE")
    for name, cluster, shard_db in shards:
        execute(conn, "SELECT moment_router.add_shard(%s, %s)", (name, shard_conninfo(cluster, shard_db)))
    return conn


def create_role(name, clusters=CLUSTERS, login=True):
    """A role on every cluster given (roles exist on every shard, with LOGIN)."""
    for cluster in clusters:
        conn = connect(cluster, "postgres")
        drop_role(name, [cluster])
        execute(conn, "CREATE ROLE %s %s" % (name, "LOGIN" if login else "NOLOGIN"))
        conn.close()


def drop_role(name, clusters=CLUSTERS):
    for cluster in clusters:
        conn = connect(cluster, "postgres")
        if scalar(conn, "SELECT count(*) FROM pg_roles WHERE rolname = %s", (name,)):
            # its grants in every database of the cluster
            for (db,) in execute(conn, "SELECT datname FROM pg_database WHERE datallowconn"):
                other = connect(cluster, db)
                execute(other, "DROP OWNED BY %s CASCADE" % name)
                other.close()
            execute(conn, "DROP ROLE %s" % name)
        conn.close()


def pg_ctl(cluster, *args):
    # the servers belong to postgres (scripts/test runs the tests as postgres)
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run(as_postgres + [os.path.join(os.environ["PG_BIN"], "pg_ctl"), "-D",
                                  os.path.join(directory(cluster), "data")] + list(args),
                   check=True, stdout=subprocess.DEVNULL)


def stop_cluster(cluster):
    pg_ctl(cluster, "-m", "fast", "-w", "stop")


def start_cluster(cluster):
    """Starts a stopped cluster again as scripts/test started it."""
    d = directory(cluster)
    pg_ctl(cluster, "-l", os.path.join(d, "log"), "-w", "-t", "60", "-o",
           "-p %d -k '%s' -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
           "-c full_page_writes=off" % (port(cluster), d), "start")


class Outcome:
    """What a statement gave: rows, or an error with every field, and the
    notices it raised."""

    def __init__(self, columns=None, rows=None, error=None, notices=()):
        self.columns = columns
        self.rows = rows
        self.error = error
        self.notices = list(notices)

    def __eq__(self, other):
        return (self.columns, self.rows, self.error, self.notices) == \
            (other.columns, other.rows, other.error, other.notices)

    def __repr__(self):
        if self.error:
            return "ERROR %r%s" % (self.error, " notices %r" % self.notices if self.notices else "")
        return "%r %r%s" % (self.columns, self.rows, " notices %r" % self.notices if self.notices else "")


def error_fields(error):
    diag = error.diag
    return (diag.sqlstate, diag.message_primary, diag.message_detail, diag.message_hint, diag.context,
            diag.schema_name, diag.table_name, diag.column_name, diag.datatype_name, diag.constraint_name)


def run(conn, sql, params=None):
    """Runs a statement on conn and returns its Outcome (text values, as psql shows them)."""
    del conn.notices[:]
    cur = conn.cursor()
    try:
        cur.execute(sql, params)
        if cur.description is None:
            outcome = Outcome()
        else:
            outcome = Outcome([d.name for d in cur.description], cur.fetchall())
    except psycopg2.Error as error:
        if error.diag.sqlstate is None:
            raise
        outcome = Outcome(error=error_fields(error))
    finally:
        cur.close()
    outcome.notices = list(conn.notices)
    return outcome


_AS_TEXT = psycopg2.extensions.new_type(tuple(range(1, 16384)), "AS_TEXT", lambda value, cur: value)


def text_values(conn):
    """Every value as the text PostgreSQL prints (psql's view), not as Python
    objects (types of the databases' own, above 16384, are text already)."""
    psycopg2.extensions.register_type(_AS_TEXT, conn)


def wait_for(condition, timeout=30, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    raise TimeoutError("timed out waiting for " + what)
