#!/usr/bin/python3
"""A shard out of reach: its companies get 08006 (api: 503 unavailable,
the SQLSTATE in details, response.status 503), the other shards' companies
keep working, in the same sessions; a connection lost during a write is 08007
(during a read 08006); the shard back, its companies work again.
"""

import json
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import psycopg2  # noqa: E402
import routerlib  # noqa: E402
from routerlib import check, connect, execute, finish, scalar  # noqa: E402

APP = "router_down_app"
shards = [("s%d" % n, "shard%d" % n, "down_s%d" % n) for n in (1, 2, 3)]
for n, (name, cluster, db) in enumerate(shards, 1):
    routerlib.make_shard(cluster, db, n).close()
router = routerlib.make_router("down_router", shards)
routerlib.create_role(APP)
customer = {}
for code, shard in (("alpha", "s1"), ("beta", "s2"), ("gamma", "s3")):
    execute(router, "SELECT moment_router.create_company(%s, %s, %s)", (code, code.title() + " AS", shard))
    execute(router, "SELECT moment_router.grant_company(%s, %s)", (code, APP))
    execute(router, "SET moment.company = %s", (code,))
    customer[code] = scalar(router, "SELECT moment.create('customers', '{\"name\": \"First\"}', 'id')")["id"]
execute(router, "RESET moment.company")
app = connect("router", "down_router", user=APP)


def attempt(code, sql, params=None):
    """The SQLSTATE of a call for a company (None when it worked)."""
    execute(app, "SET moment.company = %s", (code,))
    try:
        execute(app, sql, params)
        return None
    except psycopg2.Error as error:
        return error.pgcode


GET = "SELECT moment.get('customers', %s)"
CREATE = "SELECT moment.create('customers', '{\"name\": \"More\"}')"

for code in customer:
    check(attempt(code, GET, (customer[code],)) is None, "%s: a read works with every shard up" % code)

routerlib.stop_cluster("shard3")
try:
    check(attempt("gamma", GET, (customer["gamma"],)) == "08006", "gamma (on the stopped shard): a read is 08006")
    check(attempt("gamma", CREATE) == "08006", "gamma: a write that could not be sent is 08006 too")
    check(attempt("alpha", GET, (customer["alpha"],)) is None and attempt("beta", CREATE) is None,
          "alpha and beta keep working, in the same session")
    execute(app, "SET moment.company = 'gamma'")
    execute(app, "BEGIN")
    status, body = execute(app, "SELECT status, response FROM moment.api('GET', '/customers')")[0]
    response_status = scalar(app, "SELECT current_setting('response.status', true)")
    execute(app, "COMMIT")
    check(status == 503 and body.get("error_type") == "unavailable" and "SQLSTATE 08006" in body.get("details", [])
          and response_status == "503", "api for gamma answers 503, unavailable, SQLSTATE 08006 in details",
          (status, body, response_status))
    status, body = execute(app, "SELECT status, response FROM moment.api('GET', '/api/1.0/companies/beta/customers')")[0]
    check(status == 200 and len(body["content"]) >= 1, "api for beta's path answers 200 meanwhile", (status, body))
    check(attempt("alpha", "SELECT count(*) FROM moment.rows('customers')") is None,
          "rows for alpha work after the failures")
finally:
    routerlib.start_cluster("shard3")


def gamma_works():
    for _ in range(3):
        state = attempt("gamma", GET, (customer["gamma"],))
        if state is None:
            return True
        if state not in ("08006", "08007"):
            return False
    return False


check(gamma_works(), "the shard back, gamma's calls work again")

# a connection that dies under a call: the router cannot know whether a write committed
s3 = connect("shard3", "down_s3")


def kill_app_connection():
    execute(app, "SET moment.company = 'gamma'")
    execute(app, GET, (customer["gamma"],))         # the router's connection to s3 as the app role
    pids = [pid for (pid,) in execute(s3, "SELECT pid FROM pg_stat_activity WHERE usename = %s", (APP,))]
    for pid in pids:
        execute(s3, "SELECT pg_terminate_backend(%s)", (pid,))
    routerlib.wait_for(lambda: not execute(s3, "SELECT 1 FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)),
                       what="the shard's backend to end")
    return len(pids)


check(kill_app_connection() == 1, "the router holds one connection to s3 for the role")
state = attempt("gamma", CREATE)
check(state == "08007", "a write whose connection died under it is 08007 (it may have committed)", state)
kill_app_connection()
state = attempt("gamma", GET, (customer["gamma"],))
check(state == "08006", "a read whose connection died under it is 08006", state)
check(gamma_works(), "the next calls reconnect")

app.close()
s3.close()
router.close()
routerlib.drop_role(APP)
finish()
