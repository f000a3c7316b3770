#!/usr/bin/python3
"""The API regression files (test/sql/*.sql) through the router, compared with
a direct run, statement by statement.

Each file runs twice, in file order and in one database per run, as
pg_regress runs them: directly on a moment database (shard3), and "routed":
every statement that only calls the API (moment.get, list, rows, list_*,
create, update, delete, batch, api, the reports, ...; pg_temp.try around them
included) goes to a router, everything else (the seed's INSERTs, direct reads
of the tables, administration, statements inside an explicit transaction,
whose calls a router would commit one by one) to the shard behind it.
Session state (SET, SET ROLE, set_config, pg_temp functions, roles) is kept
the same on both.  The two runs must give the same result, or the same error
(SQLSTATE, message, detail, hint, context, schema, table, column, datatype,
constraint), and the same warnings and notices, for every statement.

The routed shard is not configured (moment.configure_shard): the files rely
on ids counted from 1, so it is recorded in the router's registry directly
(add_shard wants a configured shard).  It is the router's only shard: calls
without a company, or for one the directory does not know, go to the first
shard (06_tenancy.py checks that with several).  The directory follows the
shard's companies as the files create them.
"""

import os
import re
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import routerlib  # noqa: E402
from routerlib import REPO, check, connect, create_database, execute, finish, run  # noqa: E402

# Statements whose result depends on the session that ran the API calls
# (moment's per-backend caches, read directly or through robustness.sql's
# pg_temp.stats_delta) or on the database's history (the cumulative
# statistics of tenancy.sql's pg_temp.seq_scans): run, not compared.
SESSION_LOCAL = re.compile(r"moment\.cache_stats\s*\(|pg_temp\.stats_delta\s*\(|pg_temp\.seq_scans", re.I)

# A cancel (statement_timeout) of a routed call is the router's own: it stops
# the remote call, which never reports where it was, so such an error is
# compared without its CONTEXT.
CANCELED = "57014"

# Settings a routed call does not carry, because they are the shard server's
# (superuser only, for the whole server): a file's SET of one is made the
# shard's server setting too (ALTER SYSTEM, reloaded), as an administrator
# would set it there.
SERVER_SETTING = re.compile(r"\s*(SET|RESET)\s+(moment\.webhook_allowed_hosts)\s*(?:(?:=|TO)\s*('(?:[^']|'')*'))?\s*$",
                            re.I)


# ---------------------------------------------------------------------------
# psql's reading of a file: statements, \i, \gset and :variables
# ---------------------------------------------------------------------------

class Statement:
    def __init__(self, text, source, gset=False):
        self.text = text
        self.source = source
        self.gset = gset


def split(path):
    """The statements of a file as psql reads them, with \\i files inlined."""
    text = open(path).read()
    out = []
    buf = []
    i = 0
    n = len(text)
    line = 1
    start_line = 1

    def emit(gset=False):
        statement = "".join(buf).strip()
        if statement:
            out.append(Statement(statement, "%s:%d" % (os.path.relpath(path, REPO), start_line), gset))
        del buf[:]

    while i < n:
        c = text[i]
        if not "".join(buf).strip():
            start_line = line
        if c == "\n":
            line += 1
            buf.append(c)
            i += 1
        elif c == "-" and text.startswith("--", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif c == "/" and text.startswith("/*", i):
            j = text.find("*/", i + 2)
            line += text.count("\n", i, j)
            i = n if j < 0 else j + 2
        elif c == "\\":
            j = text.find("\n", i)
            command = text[i:n if j < 0 else j].strip()
            i = n if j < 0 else j
            if command.startswith("\\gset"):
                emit(gset=True)
            elif command.startswith("\\i ") or command.startswith("\\ir "):
                emit()
                out.extend(split(os.path.join(REPO, command.split(None, 1)[1].strip())))
            # \set ECHO / VERBOSITY: how psql prints, nothing to run
        elif c in "'\"":
            j = i + 1
            while j < n:
                if text[j] == c:
                    if j + 1 < n and text[j + 1] == c:
                        j += 2
                        continue
                    break
                j += 1
            buf.append(text[i:j + 1])
            line += text.count("\n", i, j + 1)
            i = j + 1
        elif c == "$" and re.match(r"\$([A-Za-z_][A-Za-z_0-9]*)?\$", text[i:]):
            tag = re.match(r"\$([A-Za-z_][A-Za-z_0-9]*)?\$", text[i:]).group(0)
            j = text.find(tag, i + len(tag))
            j = n if j < 0 else j + len(tag)
            buf.append(text[i:j])
            line += text.count("\n", i, j)
            i = j
        elif c == ";":
            emit()
            i += 1
        else:
            buf.append(c)
            i += 1
    emit()
    return out


def substitute(text, variables):
    """psql's :name outside quotes (our files use it in plain SELECTs only)."""
    return re.sub(r"(?<![:\w]):([A-Za-z_]\w*)",
                  lambda m: variables.get(m.group(1), m.group(0)), text)


# ---------------------------------------------------------------------------
# Where a statement goes when routed
# ---------------------------------------------------------------------------

MOMENT_NAME = re.compile(r'\bmoment\s*\.\s*("?)(\w+)\1\s*(\()?')


def classify(text, api, in_transaction):
    """router, shard or both (and which one's outcome counts, for both)."""
    head = text.lstrip().split(None, 1)[0].upper() if text.strip() else ""
    if in_transaction:
        return "shard"
    if head in ("SET", "RESET", "SHOW") or re.search(r"\bset_config\s*\(", text):
        return "both:router"
    if re.match(r"\s*(CREATE|DROP)\s+(OR\s+REPLACE\s+)?FUNCTION\s+pg_temp\.", text, re.I):
        return "both:router"
    if re.match(r"\s*(CREATE|DROP|ALTER)\s+ROLE\b", text, re.I) or \
            re.match(r"\s*(GRANT|REVOKE)\s+(?!.*\bON\b)", text, re.I | re.S):
        return "both:shard"
    if head in ("CREATE", "ALTER", "DROP", "COMMENT", "GRANT", "REVOKE", "TRUNCATE"):
        # DDL is the shard's, even when a function body calls the API
        return "shard"
    names = MOMENT_NAME.findall(text)
    if names and all(call and name in api for _, name, call in names) and \
            not re.search(r"\bmoment_internal\b|\bmoment_gen\b|\bpg_catalog\.pg_|\bpg_(proc|class|settings)\b",
                          text):
        return "router"
    return "shard"


class Routed:
    """A router session and a shard session kept in the same state."""

    def __init__(self, router_db, shard_db):
        self.router = connect("router", router_db)
        self.shard = connect("shard1", shard_db)
        self.router_admin = connect("router", router_db)
        self.shard_admin = connect("shard1", shard_db)
        for conn in (self.router, self.shard):
            routerlib.text_values(conn)
        self.server_settings = set()

    def sync_directory(self):
        """The router's directory: the shard's companies, on the regress shard."""
        companies = execute(self.shard_admin, "SELECT code, id FROM moment.companies")
        execute(self.router_admin, "DELETE FROM moment_router.company_directory")
        for code, company_id in companies:
            execute(self.router_admin, "INSERT INTO moment_router.company_directory VALUES (%s, %s, 'regress')",
                    (code, company_id))

    def run(self, text, where):
        if where == "router":
            return run(self.router, text)
        if where == "shard":
            outcome = run(self.shard, text)
            if re.search(r"compan|truncate", text, re.I):
                self.sync_directory()
            return outcome
        counted = where.split(":")[1]
        server_setting = SERVER_SETTING.match(text)
        shard_outcome = run(self.shard, text)
        if server_setting and not shard_outcome.error:
            self.set_server_setting(server_setting)
        if re.match(r"\s*CREATE\s+ROLE\s+(\w+)", text, re.I) and not shard_outcome.error:
            # roles exist on every shard with LOGIN: PL/Proxy connects as the caller
            role = re.match(r"\s*CREATE\s+ROLE\s+(\w+)", text, re.I).group(1)
            execute(self.shard_admin, "ALTER ROLE %s LOGIN" % role)
        router_outcome = run(self.router, text)
        return router_outcome if counted == "router" else shard_outcome

    def set_server_setting(self, match):
        """A superuser's SET of a server setting routed calls do not carry
        (moment.webhook_allowed_hosts: the shard's own): the shard's server
        setting, for the sessions PL/Proxy keeps open there too."""
        name = match.group(2)
        execute(self.shard_admin, "LOAD 'moment'")  # (the setting is moment's)
        if match.group(1).upper() == "RESET":
            execute(self.shard_admin, "ALTER SYSTEM RESET %s" % name)
        else:
            execute(self.shard_admin, "ALTER SYSTEM SET %s = %s" % (name, match.group(3)))
        execute(self.shard_admin, "SELECT pg_reload_conf()")
        self.server_settings.add(name)
        time.sleep(0.3)  # the shard's backends read the file at their next command

    def close(self):
        for name in self.server_settings:
            execute(self.shard_admin, "ALTER SYSTEM RESET %s" % name)
            execute(self.shard_admin, "SELECT pg_reload_conf()")
        for conn in (self.router, self.shard, self.router_admin, self.shard_admin):
            conn.close()


def transaction_change(text, in_transaction):
    head = text.lstrip().split(None, 1)[0].upper() if text.strip() else ""
    if head in ("BEGIN", "START") and not re.match(r"\s*BEGIN\s+ATOMIC", text, re.I):
        return True
    if head in ("COMMIT", "ROLLBACK", "END", "ABORT") and not re.match(r"\s*ROLLBACK\s+TO", text, re.I):
        return False
    return in_transaction


def roles_created(statements):
    names = set()
    for statement in statements:
        m = re.match(r"\s*CREATE\s+ROLE\s+(\w+)", statement.text, re.I)
        if m:
            names.add(m.group(1))
    return names


# ---------------------------------------------------------------------------

files = sorted(f for f in os.listdir(os.path.join(REPO, "test", "sql")) if f.endswith(".sql"))
direct_db = create_database("shard3", "regress_direct", "CREATE EXTENSION moment")
direct_db.close()
create_database("shard1", "regress_shard", "CREATE EXTENSION moment").close()
router = routerlib.make_router("regress_router", [])
execute(router, "INSERT INTO moment_router.shard_registry (name, conninfo) VALUES ('regress', %s)",
        (routerlib.shard_conninfo("shard1", "regress_shard"),))
api = {name for (name,) in execute(router, """
    SELECT p.proname FROM moment_router.routes r JOIN pg_proc p ON p.oid = r.function
     WHERE r.routing IN ('c', 'p')""")}
router.close()

totals = {"statements": 0, "router": 0, "shard": 0, "both": 0, "compared": 0}
for name in files:
    statements = split(os.path.join(REPO, "test", "sql", name))
    roles = roles_created(statements)
    direct = connect("shard3", "regress_direct")
    routerlib.text_values(direct)
    routed = Routed("regress_router", "regress_shard")
    direct_vars = {}
    routed_vars = {}
    in_transaction = False
    mismatches = []
    counts = {"router": 0, "shard": 0, "both": 0}
    for statement in statements:
        where = classify(statement.text, api, in_transaction)
        in_transaction = transaction_change(statement.text, in_transaction)
        counts[where.split(":")[0]] += 1
        expected = run(direct, substitute(statement.text, direct_vars))
        got = routed.run(substitute(statement.text, routed_vars), where)
        for outcome, variables in ((expected, direct_vars), (got, routed_vars)):
            if statement.gset and outcome.rows:
                variables.update({c: str(v) for c, v in zip(outcome.columns, outcome.rows[0])})
        if SESSION_LOCAL.search(statement.text):
            continue
        totals["compared"] += 1
        if expected.error and got.error and expected.error[0] == CANCELED == got.error[0] \
                and where == "router":
            expected.error = expected.error[:4] + (None,) + expected.error[5:]
        if expected != got:
            mismatches.append((statement, where, expected, got))
    for conn in (direct,):
        conn.close()
    routed.close()
    for role in roles:
        routerlib.drop_role(role, ["shard3"])
        routerlib.drop_role(role, ["shard1", "router"])
    for key in counts:
        totals[key] += counts[key]
    totals["statements"] += len(statements)
    detail = None
    if mismatches:
        detail = "\n".join("%s [%s] %s\n         direct: %r\n         routed: %r" % (
            s.source, where, s.text[:300].replace("\n", " "), e, g) for s, where, e, g in mismatches[:10])
    check(not mismatches and counts["router"] > 0,
          "test/sql/%s: %d statements, %d through the router, %d on the shard, %d on both: "
          "the same results, errors and notices as a direct run" % (
              name, len(statements), counts["router"], counts["shard"], counts["both"]), detail)

print("# %(statements)d statements, %(router)d through the router, %(shard)d on the shard, "
      "%(both)d on both, %(compared)d compared" % totals)
finish()
