#!/usr/bin/python3
"""Tenancy through the router: a role granted company acme (on shard 1) never
reads anything of company bravo (on shard 2), whatever it sets: moment.company,
the claims, api paths, ids of bravo's rows; nor can it reach the router's
internals.  A company the directory does not know, and none in force, are
answered as moment answers them, by the first shard.
"""

import json
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import psycopg2  # noqa: E402
import routerlib  # noqa: E402
from routerlib import check, connect, execute, finish, scalar  # noqa: E402

A = "router_tenant_a"
shards = [("t1", "shard1", "tenancy_t1"), ("t2", "shard2", "tenancy_t2")]
for n, (name, cluster, db) in enumerate(shards, 1):
    routerlib.make_shard(cluster, db, n).close()
router = routerlib.make_router("tenancy_router", shards)
routerlib.create_role(A)
ids = {}
for code, shard, prefix in (("acme", "t1", "Acme"), ("bravo", "t2", "SECRET-B")):
    execute(router, "SELECT moment_router.create_company(%s, %s, %s)", (code, code.title(), shard))
    execute(router, "SET moment.company = %s", (code,))
    customer = scalar(router, "SELECT moment.create('customers', %s, 'id')",
                      (json.dumps({"name": prefix + " customer"}),))["id"]
    user = scalar(router, "SELECT moment.create('userAccounts', %s, 'id')", (json.dumps({"name": prefix + " user"}),))["id"]
    project = scalar(router, "SELECT moment.create('projects', %s, 'id')",
                     (json.dumps({"name": prefix + " project", "customerId": customer}),))["id"]
    record = scalar(router, "SELECT moment.create('timeRecords', %s, 'id')", (json.dumps(
        {"projectId": project, "userAccountId": user, "timeRecordDate": "2024-03-01", "minutes": 60,
         "description": prefix + " work"}),))["id"]
    ids[code] = {"customer": customer, "project": project, "record": record}
execute(router, "RESET moment.company")
execute(router, "SELECT moment_router.grant_company('acme', %s)", (A,))

app = connect("router", "tenancy_router", user=A)
outputs = []


def attempt(sql, params=None):
    """(SQLSTATE or None, the rows as text)."""
    try:
        rows = execute(app, sql, params)
        outputs.append(json.dumps(rows, default=str))
        return None, rows
    except psycopg2.Error as error:
        outputs.append(str(error))
        return error.pgcode, None


b = ids["bravo"]
calls = [
    ("get", "SELECT moment.get('customers', %s, 'name')" % b["customer"]),
    ("list", "SELECT moment.list('customers', 'name')"),
    ("rows", "SELECT * FROM moment.rows('timeRecords', 'description')"),
    ("list_customers", "SELECT * FROM moment.list_customers()"),
    ("list_time_records", "SELECT * FROM moment.list_time_records()"),
    ("hours_report", "SELECT * FROM moment.hours_report('2024-01-01', '2024-12-31')"),
    ("project_registered_hours", "SELECT * FROM moment.project_registered_hours('2024-01-01', '2024-12-31')"),
    ("describe", "SELECT moment.describe('customers')"),
    ("create", "SELECT moment.create('customers', '{\"name\": \"intruder\"}')"),
    ("update", "SELECT moment.update('customers', %s, '{\"name\": \"defaced\"}')" % b["customer"]),
    ("delete", "SELECT moment.delete('timeRecords', %s)" % b["record"]),
    ("batch", "SELECT moment.batch('customers', '{\"create\": [{\"name\": \"intruder\"}]}')"),
]

# moment.company = bravo
execute(app, "SET moment.company = 'bravo'")
for name, sql in calls:
    state, _ = attempt(sql)
    check(state == "42501", "moment.company = bravo: %s is 42501" % name, state)
status, body = execute(app, "SELECT status, response FROM moment.api('GET', '/customers')")[0]
check(status == 403, "moment.company = bravo: api GET /customers is 403", (status, body))
execute(app, "RESET moment.company")

# the claim
execute(app, "SELECT set_config('request.jwt.claims', %s, false)", (json.dumps({"role": A, "company": "bravo"}),))
for name, sql in calls:
    state, _ = attempt(sql)
    check(state == "42501", "claim company = bravo: %s is 42501" % name, state)
execute(app, "SELECT set_config('request.jwt.claims', '', false)")

# api paths
execute(app, "SET moment.company = 'acme'")
for method, path, body in (("GET", "/api/1.0/companies/bravo/customers", None),
                           ("GET", "/api/1.0/companies/bravo/customers/%d" % b["customer"], None),
                           ("GET", "/api/1.0/companies/bravo/timeRecords/getReport?fromDate=2024-01-01&toDate=2024-12-31", None),
                           ("POST", "/api/1.0/companies/bravo/customers", {"name": "intruder"}),
                           ("DELETE", "/api/1.0/companies/bravo/timeRecords/%d" % b["record"], None),
                           ("GET", "/api/1.0/companies/br%61vo/customers", None)):
    state, rows = attempt("SELECT status, response FROM moment.api(%s, %s, %s)",
                          (method, path, json.dumps(body) if body else None))
    check(state is None and rows[0][0] == 403, "moment.company = acme, %s %s: 403" % (method, path), rows)
# acme's own, by path while bravo is in force
execute(app, "SET moment.company = 'bravo'")
state, rows = attempt("SELECT status, response FROM moment.api('GET', '/api/1.0/companies/acme/customers')")
check(state is None and rows[0][0] == 200 and rows[0][1]["content"][0]["name"] == "Acme customer",
      "the path's company wins: acme's customers, while moment.company = bravo", rows)

# acme in force, bravo's ids
execute(app, "SET moment.company = 'acme'")
state, rows = attempt("SELECT moment.get('customers', %s), moment.get('timeRecords', %s)" % (b["customer"], b["record"]))
check(state is None and rows == [(None, None)], "acme in force: bravo's ids give NULL", rows)
state, _ = attempt("SELECT moment.update('customers', %s, '{\"name\": \"defaced\"}')" % b["customer"])
check(state == "P0002", "acme in force: updating bravo's id is P0002 (no such row)", state)
state, rows = attempt("SELECT moment.list('customers', 'name', '{\"name\": {\"like\": \"SECRET%%\"}}')")
check(state is None and rows[0][0]["content"] == [], "acme in force: a filter for bravo's names finds nothing", rows)

# unknown and missing companies, answered by the first shard as moment answers them
execute(app, "SET moment.company = 'nosuch'")
state, _ = attempt(calls[0][1])
check(state == "42501", "a company the directory does not know: 42501 (not granted), as moment says", state)
execute(app, "RESET moment.company")
state, _ = attempt(calls[0][1])
check(state == "22023", "no company in force: 22023", state)

# the router's internals
for sql in ("SELECT * FROM moment_router.companies", "SELECT * FROM moment_router.shards",
            "SELECT * FROM moment_router.company_directory",
            "SELECT * FROM moment_router_proxy.api_get('host=127.0.0.1', '{}', 'customers', 1, 'base')",
            "SELECT * FROM moment_router_internal.shard_export_rows('t2', %d, 'moment.customers', NULL, 10)"
            % scalar(router, "SELECT id FROM moment_router.companies WHERE code = 'bravo'"),
            "SELECT moment_router.grant_company('bravo', '%s')" % A,
            "SELECT moment_router.move_company('bravo', 't1')"):
    state, _ = attempt(sql)
    check(state == "42501", "%s: 42501" % sql.split("(")[0].replace("SELECT * FROM ", "").replace("SELECT ", ""), state)

check(not any("SECRET" in output for output in outputs), "nothing of bravo ever reached acme's role",
      [o for o in outputs if "SECRET" in o][:3])
app.close()
router.close()
routerlib.drop_role(A)
finish()
