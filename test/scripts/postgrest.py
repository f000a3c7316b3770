#!/usr/bin/python3
"""PostgREST users are served: every /rpc call is sent as PostgREST v12 sends
it (see lib/postgrest_v12.py: one transaction per request, READ ONLY for GET
and STABLE functions, set_config of search_path, role, request.jwt.claims,
request.method/path/headers/cookies, the JSON arguments unpacked with
json_to_record and passed by name, PostgREST's own filters/order/LIMIT applied
outside a SETOF call), over one pooled connection logged in as a NOINHERIT
authenticator, through libpq with real bound parameters.

Identity as PostgREST passes it: set_config('role', <web role>) and the
"company" claim of request.jwt.claims selecting the tenant (moment.company
unset).  Errors are checked by SQLSTATE and by the HTTP status PostgREST
gives them.

Also checks that the signatures suit PostgREST (pg_proc): no overloads, the
contract's argument names, reads STABLE, writes VOLATILE, SECURITY INVOKER.

Environment (set by scripts/test): PGHOST, PGPORT, PGUSER (a superuser),
PGDATABASE (a fresh database with CREATE EXTENSION moment done).

Through moment_router (test/router/03_postgrest.py): MOMENT_ROUTER (the
router database's connection string, as a superuser) and MOMENT_ROUTER_SHARD
("<name> <connection string>" of this database, a configured shard).  Then
the data is made on the shard as above, the shard is added to the router
(which records its companies), the roles exist on both (with LOGIN on the
shard, where the router connects as them), and PostgREST's connection and
the signature checks go to the router.
"""

import json
import os
import secrets
import sys
import time

sys.dont_write_bytecode = True     # the tree may be read-only (runs as postgres)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import libpq  # noqa: E402
from postgrest_v12 import PostgREST  # noqa: E402

from checks import check, finish  # noqa: E402


def expect(response, status, sqlstate, what):
    """An error response: PostgREST's status and the SQLSTATE in "code"."""
    check(response.status == status and response.sqlstate == sqlstate,
          "%s -> HTTP %d, code %s" % (what, status, sqlstate),
          "HTTP %d %s" % (response.status, json.dumps(response.body)))


def ok(response, what, status=200):
    """A successful call; /rpc/api answers with the status api() set in response.status."""
    check(response.status == status and response.error is None, what + " -> HTTP %d" % status,
          "HTTP %d %s" % (response.status, json.dumps(response.body)))
    return response.body


ROUTER = os.environ.get("MOMENT_ROUTER")


def conninfo(user=None, password=None, base=None):
    parts = [base] if base else []
    for key, env in (("host", "PGHOST"), ("port", "PGPORT"), ("dbname", "PGDATABASE")):
        if os.environ.get(env) and not base:
            parts.append("%s=%s" % (key, os.environ[env]))
    parts.append("user=%s" % (user or os.environ.get("PGUSER", "postgres")))
    if password:
        parts.append("password=%s" % password)
    parts.append("application_name=postgrest_test")
    return " ".join(parts)


# ---------------------------------------------------------------------------
# Setup, as the superuser: two companies, data, roles.  Role names carry a
# random suffix: roles are cluster-wide and other tests may run alongside.
# ---------------------------------------------------------------------------

suffix = secrets.token_hex(3)
AUTH = "authenticator_" + suffix       # what PostgREST logs in as (db-uri)
WEB = "web_user_" + suffix             # granted cloudware, read-write
READER = "web_reader_" + suffix        # granted cloudware, read-only
OTHER = "other_user_" + suffix         # granted othercorp
ANON = "web_anon_" + suffix            # db-anon-role, no company
PASSWORD = secrets.token_hex(12)

admin = libpq.Connection(conninfo())
# through the router: its database; the API and the signatures are read there
router = libpq.Connection(conninfo(base=ROUTER)) if ROUTER else None
catalog = router or admin
roles = [AUTH, WEB, READER, OTHER, ANON]


def sql(statement, params=()):
    return admin.execute(statement, list(params), [libpq.TEXT] * len(params))


def cleanup():
    try:
        if admin.transaction_status() != libpq.PQTRANS_IDLE:
            admin.execute("ROLLBACK")
        existing = [role for role in roles
                    if sql("SELECT 1 FROM pg_roles WHERE rolname = $1", [role]).rows]
        for role in existing:
            sql("DELETE FROM moment.company_grants WHERE role::text = $1", [role])
            admin.execute("DROP OWNED BY %s CASCADE" % libpq.quote_ident(role))
        for role in existing:
            admin.execute("DROP ROLE %s" % libpq.quote_ident(role))
        for role in roles if router else []:
            if router.execute("SELECT 1 FROM pg_roles WHERE rolname = $1", [role], [libpq.TEXT]).rows:
                router.execute("DROP OWNED BY %s CASCADE" % libpq.quote_ident(role))
                router.execute("DROP ROLE %s" % libpq.quote_ident(role))
    except Exception as error:  # leave no role behind if we can, but never mask the result
        print("note: cleanup: %s" % error)


try:
    for conn in ([admin, router] if router else [admin]):
        conn.execute("CREATE ROLE %s LOGIN NOINHERIT PASSWORD %s"
                     % (libpq.quote_ident(AUTH), libpq.quote_literal(PASSWORD)))
        for role in (WEB, READER, OTHER, ANON):
            # on a shard, the router logs in as the role PostgREST switched to
            conn.execute("CREATE ROLE %s %s" % (libpq.quote_ident(role),
                                                 "LOGIN" if conn is admin and router else "NOLOGIN"))
            conn.execute("GRANT %s TO %s" % (libpq.quote_ident(role), libpq.quote_ident(AUTH)))

    sql("INSERT INTO moment.companies (code, name) VALUES ('cloudware', 'Cloudware AS'), "
        "('othercorp', 'Other Corp AS')")
    sql("SELECT moment.grant_company('cloudware', $1)", [WEB])
    sql("SELECT moment.grant_company('cloudware', $1, false)", [READER])
    sql("SELECT moment.grant_company('othercorp', $1)", [OTHER])

    def create(company, entity, body):
        admin.execute("SELECT set_config('moment.company', $1, false)", [company], [libpq.TEXT])
        row = admin.execute("SELECT moment.create($1, $2::jsonb, 'id')", [entity, json.dumps(body)],
                            [libpq.TEXT, libpq.TEXT]).scalar()
        return json.loads(row)["id"]

    customers = [create("cloudware", "customers", {"name": n, "customerNumber": "C%d" % i})
                 for i, n in enumerate(["Fjord AS", "Aurora AS", "Birch AS"], 1)]
    users = [create("cloudware", "userAccounts", {"name": n}) for n in ["Kari", "Ola"]]
    projects = [create("cloudware", "projects", {"name": n, "customerId": customers[i]})
                for i, n in enumerate(["Website", "Audit"])]
    offers = [create("cloudware", "offers", {"name": "Offer %d" % i, "customerId": customers[0],
                                             "currencyCode": cur, "exchangeRate": rate,
                                             "totalSum": total, "offerState": state})
              for i, (cur, rate, total, state) in enumerate(
                  [("NOK", 1, "1000.00", "draft"), ("EUR", "11.5", "200.00", "draft"),
                   ("NOK", 1, "50.25", "accepted")], 1)]
    minutes = [30, 45, 60, 75, 90, 120, 15, 240, 60, 480, 5, 90]
    time_records = [create("cloudware", "timeRecords",
                           {"projectId": projects[i % 2], "userAccountId": users[i % 2],
                            "timeRecordDate": "2024-03-%02d" % (i + 1), "minutes": m,
                            "billable": i % 3 != 0})
                    for i, m in enumerate(minutes)]
    other_customer = create("othercorp", "customers", {"name": "Secret Other AS"})
    other_project = create("othercorp", "projects", {"name": "Secret", "customerId": other_customer})
    other_user = create("othercorp", "userAccounts", {"name": "Eve"})
    other_offer = create("othercorp", "offers", {"name": "Secret offer", "customerId": other_customer,
                                                 "currencyCode": "NOK"})
    other_record = create("othercorp", "timeRecords", {"projectId": other_project,
                                                       "userAccountId": other_user,
                                                       "timeRecordDate": "2024-03-10", "minutes": 600})
    admin.execute("RESET moment.company")
    if router:
        # the router records the shard's companies
        shard_name, shard_conninfo = os.environ["MOMENT_ROUTER_SHARD"].split(" ", 1)
        router.execute("SELECT moment_router.add_shard($1, $2)", [shard_name, shard_conninfo],
                       [libpq.TEXT, libpq.TEXT])

    def count(table, company="cloudware"):
        return int(sql("SELECT count(*) FROM moment.%s t JOIN moment.companies c ON c.id = t.company_id "
                       "WHERE c.code = $1" % table, [company]).scalar())

    # -----------------------------------------------------------------------
    print("# signatures as PostgREST's schema cache sees them (pg_proc)")
    # -----------------------------------------------------------------------
    contract = {
        "get": (["entity", "id", "include"], "s"),
        "list": (["entity", "include", "filter", "order_by", "page", "size", "no_limit"], "s"),
        "rows": (["entity", "include", "filter", "order_by", "no_limit"], "s"),
        "list_customers": (["filter", "order_by", "no_limit"], "s"),
        "list_projects": (["filter", "order_by", "no_limit"], "s"),
        "list_offers": (["filter", "order_by", "no_limit"], "s"),
        "list_time_records": (["filter", "order_by", "no_limit"], "s"),
        "list_user_accounts": (["filter", "order_by", "no_limit"], "s"),
        "create": (["entity", "body", "include"], "v"),
        "update": (["entity", "id", "body", "include"], "v"),
        "delete": (["entity", "id"], "v"),
        "batch": (["entity", "instructions", "include"], "v"),
        "api": (["method", "path", "body"], "v"),
        "grant_company": (["company_code", "role", "writable"], None),
        "register_entity": (["name", "tbl"], None),
    }
    procs = catalog.execute("""
        SELECT p.proname::text, count(*) OVER (PARTITION BY p.proname) AS overloads,
               p.provolatile::text, p.prosecdef::text,
               array_to_json(coalesce((SELECT array_agg(a.name ORDER BY a.n)
                   FROM unnest(p.proargnames, coalesce(p.proargmodes,
                               array_fill('i'::"char", ARRAY[p.pronargs]))) WITH ORDINALITY a(name, mode, n)
                  WHERE a.mode IN ('i', 'b', 'v')), '{}'))::text
          FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = 'moment'""").rows
    if router:
        # the router's schema moment holds the API; administration is moment_router's
        contract = {name: spec for name, spec in contract.items() if spec[1] is not None}
    by_name = {}
    for name, overloads, volatility, secdef, argnames in procs:
        by_name.setdefault(name, []).append((int(overloads), volatility, secdef, json.loads(argnames)))
    overloaded = sorted(n for n, rows in by_name.items() if len(rows) > 1)
    check(not overloaded, "no function in schema moment is overloaded", overloaded)
    for name, (argnames, volatility) in contract.items():
        rows = by_name.get(name, [])
        problems = []
        if len(rows) != 1:
            problems.append("%d functions of that name" % len(rows))
        else:
            _, got_volatility, secdef, got_args = rows[0]
            if got_args != argnames:
                problems.append("arguments %s" % got_args)
            if volatility and got_volatility != volatility:
                problems.append("volatility %s" % got_volatility)
            if secdef != "false":
                problems.append("SECURITY DEFINER")
            reserved = set(got_args) & {"select", "columns", "order", "limit", "offset",
                                        "on_conflict", "and", "or", "not"}
            if reserved:
                problems.append("argument named like a PostgREST query parameter: %s" % reserved)
        check(not problems, "moment.%s(%s): one function,%s SECURITY INVOKER" % (
            name, ", ".join(argnames),
            {"s": " STABLE,", "v": " VOLATILE,", None: ""}[volatility]), "; ".join(problems))

    # -----------------------------------------------------------------------
    print("# PostgREST requests, one pooled authenticator connection")
    # -----------------------------------------------------------------------
    api = PostgREST(conninfo(AUTH, PASSWORD, base=ROUTER and " ".join(
        part for part in ROUTER.split() if not part.startswith("user="))), schema="moment", anon_role=ANON)
    check(api.conn.execute("SELECT coalesce(current_setting('moment.company', true), '')").scalar() == "",
          "moment.company is unset on the authenticator's connection")
    web = {"role": WEB, "company": "cloudware"}
    shown = set()

    def call(method, function, query=(), body=None, claims=web):
        response = api.request(method, function, query, body, claims)
        line = "%s /rpc/%s%s" % (method, function, "?" + "&".join(
            "%s=%s" % kv for kv in query) if query else "")
        if body is not None:
            line += " " + json.dumps(body)
        print("  %s  [role %s, company %s] -> %d" % (
            line, (claims or {}).get("role", ANON), (claims or {}).get("company"), response.status))
        if function not in shown:          # the SQL PostgREST sends, once per function
            shown.add(function)
            for statement, params in response.statements:
                print("    | " + statement + ("   -- " + json.dumps(params) if params else ""))
        return response

    # get: GET /rpc/get?entity=offers&id=N&include=base  (STABLE, read-only transaction)
    response = call("GET", "get", [("entity", "offers"), ("id", str(offers[0])), ("include", "base")])
    body = ok(response, "GET /rpc/get in a READ ONLY transaction")
    check(response.statements[0][0] == "BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY",
          "GET runs in BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY")
    check(isinstance(body, dict) and body.get("id") == offers[0] and body.get("name") == "Offer 1"
          and set(body) == {"id", "customerId", "offerNumber", "name", "issueDate", "offerState"},
          "get returns the offer with the base part", body)
    body = ok(call("GET", "get", [("entity", "offers"), ("id", str(offers[1])),
                                  ("include", "base,currencyCode,metadata.overviewPage")]),
              "GET /rpc/get with include=base,currencyCode,metadata.overviewPage")
    check(body.get("currencyCode") == "EUR"
          and float(body.get("metadata", {}).get("totalSumInCompanyCurrency", -1)) == 2300.0,
          "include with ',' separators: currencyCode and metadata of the one object", body)
    # A literal '+' in a URL query string reaches PostgREST as a space, which
    # separates include items just as '+' does.
    body = ok(call("GET", "get", [("entity", "offers"), ("id", str(offers[0])),
                                  ("include", "base currencyCode")]),
              "GET /rpc/get?include=base+currencyCode ('+' decoded to ' ' by PostgREST)")
    check(body is not None and "currencyCode" in body and "offerNumber" in body,
          "a space separates include items: base and currencyCode", body)
    body = ok(call("GET", "get", [("entity", "offers"), ("id", str(other_offer))]),
              "GET /rpc/get of another company's id")
    check(body is None, "another company's offer is not visible (null)", body)
    body = ok(call("GET", "get", [("entity", "offers"), ("id", "987654321")]),
              "GET /rpc/get of an id that does not exist")
    check(body is None, "a missing id gives null", body)
    expect(call("GET", "get", [("entity", "invoices"), ("id", "1")]), 404, "42P01",
           "GET /rpc/get?entity=invoices (unknown entity)")
    expect(call("GET", "get", [("entity", "offers"), ("id", "1"), ("include", "nosuchfield")]),
           400, "42703", "GET /rpc/get?include=nosuchfield (unknown field)")

    # list: POST with a JSON body (STABLE: still READ ONLY)
    response = call("POST", "list", body={"entity": "offers", "include": "base+totalSum+metadata.overviewPage",
                                          "filter": {"offerState": "draft"}, "order_by": "name.desc"})
    body = ok(response, "POST /rpc/list (STABLE) with filter, order_by, metadata")
    check(response.statements[0][0] == "BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY",
          "POST to a STABLE function runs READ ONLY")
    check("json_to_record(pgrst_payload.json_data)" in response.statements[2][0]
          and '"filter" := pgrst_body."filter"' in response.statements[2][0],
          "arguments unpacked with json_to_record and passed by name")
    content = body.get("content", [])
    check([o["name"] for o in content] == ["Offer 2", "Offer 1"] and body.get("limitWasExceeded") is False,
          "list: the draft offers, name descending, limitWasExceeded false", body)
    check(body.get("metadata", {}).get("count") == 2
          and float(body["metadata"]["totalSumInCompanyCurrency"]) == 3300.0,
          "list metadata aggregates the filtered offers (1000 + 200 * 11.5)", body.get("metadata"))
    body = ok(call("POST", "list", body={"entity": "timeRecords", "page": 1, "size": 5}),
              "POST /rpc/list with page and size")
    check(len(body.get("content", [])) == 5 and body.get("page", {}).get("totalElements") == len(minutes)
          and body["page"].get("totalPages") == 3 and body["page"].get("number") == 1,
          "list paging: page 1 of 3, 12 elements", body.get("page"))
    body = ok(call("GET", "list", [("entity", "customers")]), "GET /rpc/list?entity=customers")
    check(sorted(c["name"] for c in body.get("content", [])) == ["Aurora AS", "Birch AS", "Fjord AS"],
          "list shows cloudware's customers only", body)
    # GET passes every argument as a JSON string; a string holding an object is that filter
    body = ok(call("GET", "list", [("entity", "customers"), ("include", "name"),
                                   ("filter", '{"name": "Birch AS"}')]),
              "GET /rpc/list?filter={...} (the filter arrives as a JSON string)")
    check([c["name"] for c in body.get("content", [])] == ["Birch AS"],
          "GET filter selects Birch AS only", body)
    expect(call("POST", "list", body={"entity": "offers", "filter": {"nosuch": 1}}), 400, "42703",
           "POST /rpc/list filter on an unknown field")
    expect(call("POST", "list", body={"entity": "offers", "order_by": "name.sideways"}), 400, "42601",
           "POST /rpc/list malformed order_by")
    expect(call("POST", "list", body={"entity": "offers", "page": -1}), 400, "22023",
           "POST /rpc/list page -1")

    # rows: SETOF jsonb, PostgREST's limit outside the call
    body = ok(call("GET", "rows", [("entity", "timeRecords"), ("include", "base"), ("limit", "5")]),
              "GET /rpc/rows?entity=timeRecords&limit=5")
    check(isinstance(body, list) and [r["id"] for r in body] == time_records[:5],
          "rows: the first 5 objects by id", body)
    body = ok(call("POST", "rows", body={"entity": "timeRecords", "filter": {"minutes": {"gte": 60}},
                                         "order_by": "minutes.desc"}),
              "POST /rpc/rows with filter and order_by")
    expected = sorted((m for m in minutes if m >= 60), reverse=True)
    check([r["minutes"] for r in body] == expected, "rows: minutes >= 60, descending", body)

    # list_time_records: typed rows, PostgREST filters/order/limit applied outside the call
    response = call("GET", "list_time_records", [("minutes", "gte.60"), ("order", "minutes.desc,id.asc"),
                                                 ("limit", "5")])
    body = ok(response, "GET /rpc/list_time_records?minutes=gte.60&order=minutes.desc,id.asc&limit=5")
    main = response.statements[2][0]
    # PostgREST names the result after the table of the row type; on the
    # router the row type is a composite type, so after the function
    alias = "list_time_records" if router else "time_records"
    check('FROM "moment"."list_time_records"() pgrst_call' in main
          and '"%s"."minutes" >= $1' % alias in main and "LIMIT $2 OFFSET $3" in main,
          "the filter and LIMIT are PostgREST's, outside the SETOF call", main)
    check([r["minutes"] for r in body] == expected[:5] and len(body) == 5,
          "5 rows with minutes >= 60, largest first", [r.get("minutes") for r in body])
    check(all(r["id"] in time_records for r in body), "only cloudware's time records")
    response = call("POST", "list_time_records", body={
        "filter": {"timeRecordDate": {"gte": "2024-03-01", "lt": "2024-03-07"}},
        "order_by": "timeRecordDate", "no_limit": True})
    body = ok(response, "POST /rpc/list_time_records with filter, order_by, no_limit")
    check([r["time_record_date"] for r in body] == ["2024-03-%02d" % d for d in range(1, 7)],
          "typed rows: dates 2024-03-01..06 in order", [r.get("time_record_date") for r in body])
    first = body[0] if body else {}
    check(isinstance(first.get("minutes"), int) and isinstance(first.get("billable"), bool)
          and first.get("billable") is False and first.get("approved") is False,
          "typed rows keep JSON types (minutes number, billable/approved booleans)", first)
    body = ok(call("GET", "list_offers", [("total_sum", "gt.100"), ("order", "total_sum.desc")]),
              "GET /rpc/list_offers?total_sum=gt.100")
    check([o["total_sum"] for o in body] == [1000.00, 200.00],
          "numeric total_sum filtered and ordered by PostgREST", [o.get("total_sum") for o in body])

    # writes: POST to VOLATILE functions runs READ WRITE
    before = count("customers")
    response = call("POST", "batch", body={
        "entity": "customers",
        "instructions": {"create": [{"name": "Batch One AS"}, {"name": "Batch Two AS"}],
                         "update": {str(customers[0]): {"email": "post@fjord.no"}},
                         "delete": [customers[2]]},
        "include": "base+email"})
    body = ok(response, "POST /rpc/batch create+update+delete")
    check(response.statements[0][0] == "BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE",
          "POST to a VOLATILE function runs READ WRITE")
    check([c["name"] for c in body.get("created", [])] == ["Batch One AS", "Batch Two AS"]
          and [c["email"] for c in body.get("updated", [])] == ["post@fjord.no"]
          and body.get("deleted") == [customers[2]] and body.get("createOrderIntact") is True,
          "batch result: created in order, updated, deleted", body)
    check(count("customers") == before + 1, "batch committed: +2 -1 customers", count("customers"))
    before = count("customers")
    response = call("POST", "batch", body={"entity": "customers",
                                           "instructions": {"create": [{"name": "Fails Later AS"}, {}]}})
    expect(response, 400, "23502", "POST /rpc/batch whose create[1] lacks a name (not-null)")
    check("create[1]" in (response.body.get("message") or "") + (response.body.get("details") or ""),
          "the error names create[1]", response.body)
    check(count("customers") == before, "failed batch left no row behind", count("customers"))
    expect(call("POST", "batch", body={"entity": "customers", "instructions": {"upsert": []}}),
           400, "22023", "POST /rpc/batch with an unknown key")
    body = ok(call("POST", "create", body={"entity": "customers", "body": {"name": "Created AS"}}),
              "POST /rpc/create")
    created = body.get("id")
    check(body.get("name") == "Created AS" and isinstance(created, int), "create returns the object", body)
    body = ok(call("POST", "update", body={"entity": "customers", "id": created,
                                           "body": {"customerState": "blocked"}, "include": "customerState"}),
              "POST /rpc/update")
    check(body == {"id": created, "customerState": "blocked"}, "update returns the projected object", body)
    expect(call("POST", "update", body={"entity": "customers", "id": 987654321, "body": {"name": "x"}}),
           500, "P0002", "POST /rpc/update of a missing id (P0002: PostgREST has no 404 for it)")
    expect(call("POST", "create", body={"entity": "customers", "body": {"name": "X", "id": 5}}),
           400, "428C9", "POST /rpc/create setting id")
    expect(call("POST", "create", body={"entity": "projects", "body": {"name": "X", "customerId": 987654}}),
           409, "23503", "POST /rpc/create with a dangling customerId (foreign key)")
    # A write function reached by GET gets PostgREST's READ ONLY transaction.
    expect(call("GET", "delete", [("entity", "customers"), ("id", str(created))]), 405, "25006",
           "GET /rpc/delete (READ ONLY transaction)")
    body = ok(call("POST", "delete", body={"entity": "customers", "id": created}), "POST /rpc/delete")
    check(body == created, "delete returns the id", body)

    # api: the REST router, RETURNS TABLE (status, response)
    response = call("POST", "api", body={"method": "GET",
                                         "path": "/offers/include/base+currencyCode?noLimit=true"})
    body = ok(response, "POST /rpc/api GET /offers/include/base+currencyCode")
    check(isinstance(body, list) and len(body) == 1 and body[0].get("status") == 200
          and len(body[0]["response"]["content"]) == 3
          and all("currencyCode" in o for o in body[0]["response"]["content"]),
          "api answers [{status: 200, response: {content: 3 offers with currencyCode}}]", body)
    body = ok(call("GET", "api", [("method", "GET"), ("path", "/api/1.0/companies/cloudware/customers/%d"
                                                      % customers[0])]),
              "GET /rpc/api (VOLATILE, but GET: READ ONLY) reading one customer")
    check(body and body[0].get("status") == 200 and body[0]["response"].get("name") == "Fjord AS",
          "api GET /customers/{id} through GET /rpc/api", body)
    body = ok(call("POST", "api", body={"method": "POST", "path": "/customers",
                                        "body": {"name": "Via Api AS"}}), "POST /rpc/api POST /customers", 201)
    check(body and body[0].get("status") in (200, 201) and body[0]["response"].get("name") == "Via Api AS",
          "api creates a customer", body)
    body = ok(call("POST", "api", body={"method": "GET", "path": "/api/1.0/companies/othercorp/customers"}),
              "POST /rpc/api for another company's path", 403)
    check(body and body[0].get("status") == 403 and "Secret" not in json.dumps(body),
          "api answers 403 for a company not granted, no rows leak", body)

    # -----------------------------------------------------------------------
    print("# identity: roles and the company claim")
    # -----------------------------------------------------------------------
    foreign = {"role": WEB, "company": "othercorp"}
    expect(call("GET", "list", [("entity", "customers")], claims=foreign), 403, "42501",
           "claim company=othercorp for a role granted only cloudware")
    expect(call("GET", "get", [("entity", "customers"), ("id", str(other_customer))], claims=foreign),
           403, "42501", "get with another company's claim")
    expect(call("GET", "list_time_records", claims=foreign), 403, "42501",
           "list_time_records with another company's claim")
    expect(call("POST", "batch", body={"entity": "customers", "instructions": {"create": [{"name": "X"}]}},
                claims=foreign), 403, "42501", "batch with another company's claim")
    expect(call("GET", "list", [("entity", "customers")], claims={"role": WEB}), 400, "22023",
           "no company claim and moment.company unset")
    expect(call("GET", "list", [("entity", "customers")], claims={"role": WEB, "company": "nosuchco"}),
           403, "42501", "claim naming a company that does not exist")
    expect(call("GET", "list", [("entity", "customers")], claims=None), 400, "22023",
           "anonymous request (db-anon-role, no claims)")

    reader = {"role": READER, "company": "cloudware"}
    for method, function, query, body in [
            ("GET", "get", [("entity", "customers"), ("id", str(customers[0]))], None),
            ("GET", "list", [("entity", "customers")], None),
            ("GET", "rows", [("entity", "customers")], None),
            ("GET", "list_time_records", [("limit", "3")], None)]:
        response = call(method, function, query, body, claims=reader)
        ok(response, "read-only grant: %s /rpc/%s" % (method, function))
        check(response.body not in (None, []) and "Secret" not in json.dumps(response.body),
              "read-only grant sees cloudware rows through %s" % function)
    before = count("customers")
    expect(call("POST", "batch", body={"entity": "customers", "instructions": {"create": [{"name": "No"}]}},
                claims=reader), 403, "42501", "read-only grant: POST /rpc/batch")
    expect(call("POST", "create", body={"entity": "customers", "body": {"name": "No"}}, claims=reader),
           403, "42501", "read-only grant: POST /rpc/create")
    expect(call("POST", "update", body={"entity": "customers", "id": customers[0], "body": {"name": "No"}},
                claims=reader), 403, "42501", "read-only grant: POST /rpc/update")
    expect(call("POST", "delete", body={"entity": "customers", "id": customers[0]}, claims=reader),
           403, "42501", "read-only grant: POST /rpc/delete")
    body = ok(call("POST", "api", body={"method": "POST", "path": "/customers", "body": {"name": "No"}},
                   claims=reader), "read-only grant: POST /rpc/api POST /customers", 403)
    check(body and body[0].get("status") == 403, "api answers 403 to a read-only grant's write", body)
    check(count("customers") == before, "read-only grant wrote nothing", count("customers"))

    other = {"role": OTHER, "company": "othercorp"}
    body = ok(call("GET", "list", [("entity", "customers")], claims=other),
              "othercorp's role on the same pooled connection")
    check([c["name"] for c in body.get("content", [])] == ["Secret Other AS"],
          "othercorp sees only its own customer", body)
    body = ok(call("GET", "list_time_records", claims=other), "othercorp: GET /rpc/list_time_records")
    check([r["id"] for r in body] == [other_record], "othercorp sees only its own time record", body)
    body = ok(call("GET", "list", [("entity", "customers")], claims=web),
              "back to cloudware on the same connection")
    check("Secret" not in json.dumps(body) and len(body.get("content", [])) == count("customers"),
          "cloudware sees its own customers again, nothing of othercorp", body)
    expect(call("GET", "list", [("entity", "customers")], claims=None), 400, "22023",
           "after claimed requests, an anonymous request on the same connection has no company")

    # Grants change while PostgREST's connections stay open.
    sql("SELECT moment.revoke_company('cloudware', $1)", [WEB])
    expect(call("GET", "list", [("entity", "customers")], claims=web), 403, "42501",
           "after moment.revoke_company, the pooled connection refuses cloudware")
    sql("SELECT moment.grant_company('othercorp', $1, false)", [WEB])
    body = ok(call("GET", "list", [("entity", "customers")], claims=foreign),
              "after moment.grant_company('othercorp'), the same connection serves othercorp")
    check([c["name"] for c in body.get("content", [])] == ["Secret Other AS"],
          "the new grant shows othercorp's customer", body)
    expect(call("POST", "create", body={"entity": "customers", "body": {"name": "No"}}, claims=foreign),
           403, "42501", "the new grant is read-only: POST /rpc/create refused")
    sql("SELECT moment.grant_company('cloudware', $1)", [WEB])
    ok(call("GET", "list", [("entity", "customers")], claims=web), "cloudware granted again")

    settings = api.conn.execute("SELECT current_user::text, current_setting('request.jwt.claims', true), "
                                "coalesce(current_setting('moment.company', true), '')").rows[0]
    check(settings[0] == AUTH and (settings[1] or "") == "" and settings[2] == "",
          "between requests the connection is back to the authenticator with no claims", settings)
    api.close()
finally:
    cleanup()
    admin.close()
    if router:
        router.close()

finish()
