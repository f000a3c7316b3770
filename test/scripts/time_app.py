#!/usr/bin/python3
"""A time-logging app written against Moment's live API, replayed (issue 12).

The app, as it really talks to Moment:
  1. GET userAccounts/include/base+email?size=500&page=0     finds the user by e-mail
  2. GET projectMemberships/include/base?userAccountId=U&projectMembershipState=active&size=500&page=0
                                                            reads projectId, projectMembershipRoleName
  3. GET projectExtensions/include/base?projectId=P&size=500&page=0
                                                            the activities; drops the closed ones
  4. GET timeRecords?userAccountId=U&fromDate=D1&toDate=D2&size=500&page=0
                                                            recent records, no include: the default
                                                            representation (projectName, taskName, ...)
  5. GET userAccounts/U                                     reads timeLockDate
  6. POST timeRecords {projectId, projectExtensionId, projectMembershipId, taskId,
                       userAccountId, timeRecordDate, minutes, description, internalNote}

The whole sequence runs twice: through moment.api() on a plain SQL connection
(response.status read back inside the request's transaction), and through
the exact statements PostgREST v12 sends for /rpc/api (lib/postgrest_v12.py),
where response.status must become the HTTP status.  Variants: two users (one
with one role on the project, one with two), a closed activity, a locked
date (42501 -> 403).

Then the rules behind it: the time lock through every path (create, update
from and to a locked date, delete, a batch naming the instruction and
applying nothing, direct SQL); an activity of another project and a task of
another activity (23503); membership defaults (one active role filled in,
several -> 23514 naming them, none -> null); IN by ids=1,2,3 and repeated
parameters; value errors naming the field (22P02, 22001, 22003, 22007, 22008)
in bodies and filters; 60.0 for an integer; "03/01/2024" refused under any
DateStyle; the hint for order_by 'minutes desc'; the reports
(hours_report, project_registered_hours: group_by combinations, periods,
filters, the cap as WARNING and as 54000) and their REST paths; and
register_entity's typed listing list_<table>, gone with DROP TABLE.

Environment (set by scripts/test): PGHOST, PGPORT, PGUSER (a superuser),
PGDATABASE (a fresh database with CREATE EXTENSION moment done).
"""

import json
import os
import secrets
import sys

sys.dont_write_bytecode = True     # the tree may be read-only (runs as postgres)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import libpq  # noqa: E402
from postgrest_v12 import PostgREST  # noqa: E402

from checks import check, finish  # noqa: E402


def conninfo(user=None, password=None):
    parts = []
    for key, env in (("host", "PGHOST"), ("port", "PGPORT"), ("dbname", "PGDATABASE")):
        if os.environ.get(env):
            parts.append("%s=%s" % (key, os.environ[env]))
    parts.append("user=%s" % (user or os.environ.get("PGUSER", "postgres")))
    if password:
        parts.append("password=%s" % password)
    parts.append("application_name=time_app_test")
    return " ".join(parts)


suffix = secrets.token_hex(3)
AUTH = "time_auth_" + suffix           # PostgREST's authenticator
WEB = "time_web_" + suffix             # the app's web role: cloudware, read-write
PASSWORD = secrets.token_hex(12)
PREFIX = "/api/1.0/companies/cloudware"

admin = libpq.Connection(conninfo())
roles = [AUTH, WEB]


def sql(statement, params=()):
    return admin.execute(statement, [None if p is None else str(p) for p in params],
                         [libpq.UNKNOWN] * len(params))


def cleanup():
    try:
        if admin.transaction_status() != libpq.PQTRANS_IDLE:
            admin.execute("ROLLBACK")
        admin.execute("DROP TABLE IF EXISTS public.time_app_gadgets, public.time_app_widgets")
        existing = [role for role in roles if sql("SELECT 1 FROM pg_roles WHERE rolname = $1", [role]).rows]
        for role in existing:
            sql("DELETE FROM moment.company_grants WHERE role::text = $1", [role])
            admin.execute("DROP OWNED BY %s CASCADE" % libpq.quote_ident(role))
        for role in existing:
            admin.execute("DROP ROLE %s" % libpq.quote_ident(role))
    except Exception as error:  # leave no role behind if we can, but never mask the result
        print("note: cleanup: %s" % error)


def create(entity, body, company="cloudware"):
    admin.execute("SELECT set_config('moment.company', $1, false)", [company], [libpq.TEXT])
    row = admin.execute("SELECT moment.create($1, $2::jsonb, 'id')", [entity, json.dumps(body)],
                        [libpq.TEXT, libpq.TEXT]).scalar()
    return json.loads(row)["id"]


def count_records():
    return int(sql("SELECT count(*) FROM moment.time_records").scalar())


# ---------------------------------------------------------------------------
# Two transports for the same REST requests
# ---------------------------------------------------------------------------

STRING_IDS = []     # (path, key, value) of ids that came back as anything but a JSON number


def note_ids(path, value, key=None):
    """Ids are JSON numbers everywhere (contract section 10)."""
    if isinstance(value, dict):
        for k, v in value.items():
            note_ids(path, v, k)
    elif isinstance(value, list):
        for v in value:
            note_ids(path, v, key)
    elif key is not None and (key == "id" or key.endswith("Id")) and key != "details" \
            and value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        STRING_IDS.append((path, key, value))


class DirectApi:
    """moment.api() called over SQL as the web role, one transaction per
    request; response.status is read inside that transaction."""
    name = "api()"

    def __init__(self):
        self.conn = libpq.Connection(conninfo(AUTH, PASSWORD))
        self.conn.execute("SET ROLE %s" % libpq.quote_ident(WEB))

    def __call__(self, method, path, body=None):
        conn = self.conn
        conn.execute("BEGIN")
        try:
            row = conn.execute("SELECT status, response::text FROM moment.api($1, $2, $3::jsonb)",
                               [method, PREFIX + path, None if body is None else json.dumps(body)],
                               [libpq.TEXT, libpq.TEXT, libpq.TEXT]).rows[0]
            setting = conn.execute("SELECT current_setting('response.status', true)").scalar()
            conn.execute("COMMIT")
        except libpq.PgError:
            conn.execute("ROLLBACK")
            raise
        status = int(row[0])
        note_ids(path, json.loads(row[1]))
        check(setting == str(status), "  [api()] %s %s: response.status is %s" % (method, path, status),
              setting)
        return status, json.loads(row[1])

    def close(self):
        self.conn.close()


class ThroughPostgREST:
    """POST /rpc/api as PostgREST v12 sends it; the HTTP status is
    PostgREST's (from response.status)."""
    name = "PostgREST /rpc/api"

    def __init__(self):
        self.api = PostgREST(conninfo(AUTH, PASSWORD), schema="moment")
        self.claims = {"role": WEB, "company": "cloudware"}

    def __call__(self, method, path, body=None):
        request = {"method": method, "path": PREFIX + path}
        if body is not None:
            request["body"] = body
        response = self.api.request("POST", "api", body=request, claims=self.claims)
        check(response.error is None and isinstance(response.body, list) and len(response.body) == 1,
              "  [PostgREST] %s %s answered one row" % (method, path), response.body)
        row = response.body[0] if isinstance(response.body, list) and response.body else {}
        note_ids(path, row.get("response"))
        check(row.get("status") == response.status,
              "  [PostgREST] %s %s: HTTP status %d is api()'s status" % (method, path, response.status),
              row.get("status"))
        return response.status, row.get("response")

    def close(self):
        self.api.close()


# ---------------------------------------------------------------------------
# The app
# ---------------------------------------------------------------------------

RECORD_KEYS = {"projectId", "projectName", "projectExtensionId", "projectExtensionName", "taskId",
               "taskName", "minutes", "description", "userAccountId", "timeRecordDate",
               "projectMembershipId", "internalNote"}


def app_session(rest, email, day, expect):
    """The app's whole sequence for the user with that e-mail; posts one
    record per open activity of each active membership, dated day.
    expect: {"roles": n, "lock": date or None, "post_status": status}."""
    tag = "[%s, %s]" % (rest.name, email)
    status, users = rest("GET", "/userAccounts/include/base+email?size=500&page=0")
    check(status == 200 and users.get("page", {}).get("number") == 0
          and users["page"].get("size") == 500,
          "%s GET userAccounts/include/base+email?size=500&page=0 -> page 0 of size 500" % tag, users)
    user = next((u for u in users.get("content", []) if u.get("email") == email), None)
    check(user is not None and set(user) >= {"id", "name", "email"} and isinstance(user["id"], int),
          "%s the user is found by e-mail, id a JSON number" % tag, users)
    if user is None:
        return None
    uid = user["id"]

    status, memberships = rest("GET", "/projectMemberships/include/base?userAccountId=%d"
                                      "&projectMembershipState=active&size=500&page=0" % uid)
    content = memberships.get("content", []) if status == 200 else []
    check(status == 200 and len(content) == expect["roles"]
          and all(set(m) >= {"id", "projectId", "projectMembershipRoleName", "projectMembershipState",
                             "userAccountId"} and m["projectMembershipState"] == "active"
                  and m["userAccountId"] == uid for m in content),
          "%s %d active membership(s), with projectId and projectMembershipRoleName" % (tag, expect["roles"]),
          memberships)

    activities = {}
    for project_id in sorted({m["projectId"] for m in content}):
        status, found = rest("GET", "/projectExtensions/include/base?projectId=%d&size=500&page=0" % project_id)
        items = found.get("content", []) if status == 200 else []
        check(status == 200 and items and all(a["projectId"] == project_id and
                                              a["projectExtensionState"] in ("open", "closed") for a in items),
              "%s activities of project %d, each with its state" % (tag, project_id), found)
        # the app drops the closed activities itself
        activities[project_id] = [a for a in items if a["projectExtensionState"] != "closed"]
        if project_id == expect.get("project_with_closed"):
            check(len(activities[project_id]) < len(items),
                  "%s a closed activity is listed with its state, and dropped by the app" % tag, items)

    status, recent = rest("GET", "/timeRecords?userAccountId=%d&fromDate=2024-03-01&toDate=2024-03-31"
                                 "&size=500&page=0" % uid)
    check(status == 200 and all(set(r) >= RECORD_KEYS for r in recent.get("content", [])),
          "%s recent records without an include carry projectName, projectExtensionName, taskName, ..." % tag,
          recent)
    before = {r["id"] for r in recent.get("content", [])}

    status, account = rest("GET", "/userAccounts/%d" % uid)
    check(status == 200 and "timeLockDate" in account and account["timeLockDate"] == expect["lock"],
          "%s GET userAccounts/%d has timeLockDate %s" % (tag, uid, expect["lock"]), account)

    posted = []
    for membership in content:
        for activity in activities.get(membership["projectId"], []):
            status, tasks = rest("GET", "/tasks/include/base?projectExtensionId=%d&taskState=open" % activity["id"])
            task = (tasks.get("content") or [{}])[0].get("id") if status == 200 else None
            body = {"projectId": membership["projectId"], "projectExtensionId": activity["id"],
                    "projectMembershipId": membership["id"], "taskId": task, "userAccountId": uid,
                    "timeRecordDate": day, "minutes": 45, "description": "Work on " + activity["name"],
                    "internalNote": "logged by the app"}
            status, record = rest("POST", "/timeRecords", body)
            check(status == expect["post_status"],
                  "%s POST timeRecords (%s, role %s) -> %d" % (tag, activity["name"],
                                                               membership["projectMembershipRoleName"],
                                                               expect["post_status"]), record)
            if status == 201:
                check(record.get("projectName") and record.get("projectExtensionName") == activity["name"]
                      and record.get("projectMembershipId") == membership["id"] and record.get("taskId") == task
                      and (task is None or record.get("taskName")) and record.get("internalNote") == "logged by the app",
                      "%s the created record comes back in the default representation" % tag, record)
                posted.append(record["id"])
            elif expect["lock"]:
                check(record.get("error_type") == "forbidden" and expect["lock"] in record.get("error", ""),
                      "%s the refusal names the time lock date %s" % (tag, expect["lock"]), record)
    status, after = rest("GET", "/timeRecords?userAccountId=%d&fromDate=2024-03-01&toDate=2024-03-31"
                                "&size=500&page=0" % uid)
    check({r["id"] for r in after.get("content", [])} == before | set(posted),
          "%s the recent records now include what was posted" % tag, after)
    check(all(set(r) >= RECORD_KEYS and r["projectName"] and r["userAccountId"] == uid
              for r in after.get("content", [])),
          "%s each recent record carries the default representation's names" % tag, after)
    return uid


def in_and_value_errors(rest):
    """IN by comma-separated and repeated parameters, and value errors that
    name their field, through one transport."""
    tag = "[%s]" % rest.name
    kari, ola, audit = IDS["kari"], IDS["ola"], IDS["audit"]
    ids = [r[0] for r in sql("SELECT t.id::text FROM moment.time_records t ORDER BY t.id LIMIT 3").rows]
    status, body = rest("GET", "/timeRecords/include/minutes?ids=%s" % ",".join(ids))
    check(status == 200 and [str(r["id"]) for r in body["content"]] == ids,
          "%s ids=%s" % (tag, ",".join(ids)), body)
    status, body = rest("GET", "/timeRecords/include/minutes?id=%s&id=%s" % (ids[0], ids[2]))
    check(status == 200 and [str(r["id"]) for r in body["content"]] == [ids[0], ids[2]],
          "%s id=%s&id=%s (repeated)" % (tag, ids[0], ids[2]), body)
    status, body = rest("GET", "/timeRecords/include/userAccountId?userAccountId=%d,%d&size=500" % (kari, ola))
    want = int(sql("SELECT count(*) FROM moment.time_records t JOIN moment.companies c ON c.id = t.company_id "
                   "WHERE c.code = 'cloudware'").scalar())
    check(status == 200 and len(body["content"]) == want, "%s userAccountId=K,O: both users' records" % tag, body)
    status, body = rest("GET", "/timeRecords/include/userAccountId+minutes?userAccountId=%d&userAccountId=%d"
                               "&minutes=45&minutes=15" % (kari, ola))
    want = int(sql("SELECT count(*) FROM moment.time_records t JOIN moment.companies c ON c.id = t.company_id "
                   "WHERE c.code = 'cloudware' AND t.minutes IN (45, 15)").scalar())
    check(status == 200 and len(body["content"]) == want
          and all(r["userAccountId"] in (kari, ola) and r["minutes"] in (45, 15) for r in body["content"]),
          "%s two fields, each repeated: IN on each, ANDed" % tag, body)
    status, body = rest("GET", "/customers/include/name?name=Fjord%2CAS")
    check(status == 200 and body["content"] == [], "%s an encoded comma (%%2C) is part of the value" % tag, body)

    good = {"projectId": audit, "userAccountId": kari, "timeRecordDate": "2024-03-08", "minutes": 5}
    for entity, body, sqlstate, field in (
            ("timeRecords", dict(good, minutes="lots"), "22P02", "minutes"),
            ("timeRecords", dict(good, minutes=99999999999), "22003", "minutes"),
            ("timeRecords", dict(good, timeRecordDate="03/01/2024"), "22007", "timeRecordDate"),
            ("timeRecords", dict(good, timeRecordDate="2024-02-30"), "22008", "timeRecordDate"),
            ("timeRecords", dict(good, minutes=60.5), "22P02", "minutes"),
            ("customers", {"name": "X", "currencyCode": "NOKK"}, "22001", "currencyCode")):
        status, response = rest("POST", "/" + entity, body)
        check(status == 400 and ("SQLSTATE " + sqlstate) in response.get("details", [])
              and ('"%s"' % field) in response.get("error", ""),
              "%s body %s -> 400, %s naming %s" % (tag, json.dumps(body), sqlstate, field), response)
    for query, sqlstate, field in (
            ("minutes=lots", "22P02", "minutes"),
            ("minutes=99999999999", "22003", "minutes"),
            ("timeRecordDate=03/01/2024", "22007", "timeRecordDate"),
            ("fromDate=2024-02-30&toDate=2024-03-31", "22008", "timeRecordDate"),
            ("projectId=one", "22P02", "projectId")):
        status, response = rest("GET", "/timeRecords?" + query)
        check(status == 400 and ("SQLSTATE " + sqlstate) in response.get("details", [])
              and ('"%s"' % field) in response.get("error", ""),
              "%s filter %s -> 400, %s naming %s" % (tag, query, sqlstate, field), response)


IDS = {}

try:
    admin.execute("CREATE ROLE %s LOGIN NOINHERIT PASSWORD %s"
                  % (libpq.quote_ident(AUTH), libpq.quote_literal(PASSWORD)))
    admin.execute("CREATE ROLE %s NOLOGIN" % libpq.quote_ident(WEB))
    admin.execute("GRANT %s TO %s" % (libpq.quote_ident(WEB), libpq.quote_ident(AUTH)))
    sql("INSERT INTO moment.companies (code, name) VALUES ('cloudware', 'Cloudware AS'), "
        "('othercorp', 'Other Corp AS')")
    sql("SELECT moment.grant_company('cloudware', $1)", [WEB])

    kari = create("userAccounts", {"name": "Kari", "email": "kari@cloudware.no"})
    ola = create("userAccounts", {"name": "Ola", "email": "ola@cloudware.no"})
    customer = create("customers", {"name": "Fjord AS"})
    website = create("projects", {"name": "Website", "customerId": customer})
    audit = create("projects", {"name": "Audit", "customerId": customer})
    design = create("projectExtensions", {"name": "Design", "projectId": website})
    create("projectExtensions", {"name": "Old phase", "projectId": website,
                                   "projectExtensionState": "closed"})
    review = create("projectExtensions", {"name": "Review", "projectId": audit})
    sketch = create("tasks", {"name": "Sketch", "projectExtensionId": design})
    check_task = create("tasks", {"name": "Check", "projectExtensionId": review})
    kari_website = create("projectMemberships", {"projectId": website, "userAccountId": kari})
    ola_developer = create("projectMemberships", {"projectId": website, "userAccountId": ola,
                                                  "projectMembershipRoleName": "Developer"})
    ola_tester = create("projectMemberships", {"projectId": website, "userAccountId": ola,
                                               "projectMembershipRoleName": "Tester"})
    create("projectMemberships", {"projectId": audit, "userAccountId": ola, "projectMembershipState": "inactive"})
    # Ola's records from before the lock, then the lock
    ola_locked = create("timeRecords", {"projectId": website, "userAccountId": ola,
                                        "projectMembershipId": ola_developer,
                                        "timeRecordDate": "2024-02-15", "minutes": 30})
    ola_open = create("timeRecords", {"projectId": website, "userAccountId": ola,
                                      "projectMembershipId": ola_developer,
                                      "timeRecordDate": "2024-03-04", "minutes": 30})
    sql("SELECT moment.update('userAccounts', $1::bigint, '{\"timeLockDate\": \"2024-02-29\"}')", [ola])
    create("customers", {"name": "Secret AS"}, "othercorp")
    IDS.update(kari=kari, ola=ola, audit=audit)
    admin.execute("RESET moment.company")

    # -----------------------------------------------------------------------
    print("# the app's sequence, through api() and through PostgREST's /rpc/api")
    # -----------------------------------------------------------------------
    for transport, day in ((DirectApi, "2024-03-05"), (ThroughPostgREST, "2024-03-06")):
        rest = transport()
        # Kari: one role on Website; Design is open, "Old phase" closed
        app_session(rest, "kari@cloudware.no", day, {"roles": 1, "lock": None, "post_status": 201,
                                                     "project_with_closed": website})
        # Ola: two roles on Website (the app posts under each), locked until 2024-02-29
        app_session(rest, "ola@cloudware.no", day, {"roles": 2, "lock": "2024-02-29", "post_status": 201})
        # the locked date: every post refused with 403
        app_session(rest, "ola@cloudware.no", "2024-02-28", {"roles": 2, "lock": "2024-02-29", "post_status": 403})
        status, body = rest("GET", "/projectExtensions/include/base?projectId=%d&projectExtensionState=open" % website)
        check(status == 200 and [a["id"] for a in body["content"]] == [design],
              "[%s] projectExtensionState=open leaves the closed activity out" % rest.name, body)
        status, body = rest("GET", "/projects/include/base?projectState=inProgress")
        check(status == 200 and len(body["content"]) == 2 and all("projectState" in p for p in body["content"]),
              "[%s] projects' base holds projectState (clients filter on it)" % rest.name, body)
        rest.close()

    # -----------------------------------------------------------------------
    print("# the time lock through every path")
    # -----------------------------------------------------------------------
    rest = DirectApi()
    web = rest.conn
    before = count_records()
    lock_body = {"projectId": website, "userAccountId": ola, "projectMembershipId": ola_tester,
                 "timeRecordDate": "2024-02-29", "minutes": 10}
    status, body = rest("POST", "/timeRecords", lock_body)
    check(status == 403 and "2024-02-29" in body.get("error", ""), "create dated on the lock date -> 403", body)
    status, body = rest("PATCH", "/timeRecords/%d" % ola_locked, {"minutes": 31})
    check(status == 403, "update of a locked record -> 403", body)
    status, body = rest("PUT", "/timeRecords/%d" % ola_locked, {"timeRecordDate": "2024-03-10"})
    check(status == 403, "moving a record from a locked date -> 403", body)
    status, body = rest("PATCH", "/timeRecords/%d" % ola_open, {"timeRecordDate": "2024-02-20"})
    check(status == 403, "moving a record to a locked date -> 403", body)
    status, body = rest("DELETE", "/timeRecords/%d" % ola_locked)
    check(status == 403, "delete of a locked record -> 403", body)
    status, body = rest("PATCH", "/timeRecords/%d" % ola_open, {"timeRecordDate": "2024-03-04", "minutes": 35})
    check(status == 200 and body.get("minutes") == 35, "an unlocked record still changes", body)
    for instructions, name in (
            ({"create": [dict(lock_body, timeRecordDate="2024-03-11"), lock_body]}, "create[1]"),
            ({"update": {str(ola_open): {"minutes": 40}, str(ola_locked): {"minutes": 40}}}, "update[%d]" % ola_locked),
            ({"create": [dict(lock_body, timeRecordDate="2024-03-12")], "delete": [ola_locked]}, "delete[%d]" % ola_locked)):
        status, body = rest("POST", "/timeRecords/batch", instructions)
        check(status == 403 and name in body.get("error", "") + json.dumps(body.get("details")),
              "batch touching a locked record -> 403 naming %s" % name, body)
    check(count_records() == before, "nothing of the refused writes was applied", count_records())
    check(int(sql("SELECT minutes FROM moment.time_records WHERE id = $1", [ola_open]).scalar()) == 35,
          "the batches' updates of unlocked records were not applied either")
    web.execute("SELECT set_config('moment.company', 'cloudware', false)")
    for statement, params, what in (
            ("INSERT INTO moment.time_records (company_id, project_id, user_account_id, project_membership_id, "
             "time_record_date, minutes) SELECT c.id, $1, $2, $3, '2024-01-10', 5 FROM moment.companies c "
             "WHERE c.code = 'cloudware'", [website, ola, ola_tester], "INSERT"),
            ("UPDATE moment.time_records SET minutes = 1 WHERE id = $1", [ola_locked], "UPDATE of a locked record"),
            ("UPDATE moment.time_records SET time_record_date = '2024-01-01' WHERE id = $1", [ola_open],
             "UPDATE to a locked date"),
            ("DELETE FROM moment.time_records WHERE id = $1", [ola_locked], "DELETE")):
        try:
            web.execute(statement, [str(p) for p in params], [libpq.UNKNOWN] * len(params))
            check(False, "direct SQL %s of a locked record -> 42501" % what, "no error")
        except libpq.PgError as error:
            check(error.sqlstate == "42501" and "2024-02-29" in error.message,
                  "direct SQL %s -> 42501 naming the lock date" % what, (error.sqlstate, error.message))
    try:
        web.execute("SELECT moment.update('timeRecords', $1, '{\"minutes\": 2}')", [str(ola_locked)], [libpq.UNKNOWN])
        check(False, "moment.update of a locked record -> 42501", "no error")
    except libpq.PgError as error:
        check(error.sqlstate == "42501" and "SQL statement" not in (error.context or ""),
              "moment.update of a locked record -> 42501, no generated SQL in its context",
              (error.sqlstate, error.context))
    check(count_records() == before, "direct SQL wrote nothing either", count_records())
    # PostgREST's own endpoints: 42501 is 403 for an authenticated request
    postgrest = PostgREST(conninfo(AUTH, PASSWORD), schema="moment")
    claims = {"role": WEB, "company": "cloudware"}
    for function, body, what in (
            ("create", {"entity": "timeRecords", "body": lock_body}, "POST /rpc/create dated on the lock date"),
            ("update", {"entity": "timeRecords", "id": ola_locked, "body": {"minutes": 1}},
             "POST /rpc/update of a locked record"),
            ("delete", {"entity": "timeRecords", "id": ola_locked}, "POST /rpc/delete of a locked record"),
            ("batch", {"entity": "timeRecords", "instructions": {"delete": [ola_open, ola_locked]}},
             "POST /rpc/batch deleting a locked record")):
        response = postgrest.request("POST", function, body=body, claims=claims)
        check(response.status == 403 and response.sqlstate == "42501" and "2024-02-29" in response.body["message"],
              "%s -> HTTP 403 (42501) naming the lock date" % what, (response.status, response.body))
    postgrest.close()
    check(count_records() == before, "PostgREST's calls wrote nothing either", count_records())
    # lifting the lock is an update of the user account, allowed
    status, body = rest("PATCH", "/userAccounts/%d" % ola, {"timeLockDate": "2024-02-10"})
    check(status == 200 and body.get("timeLockDate") == "2024-02-10", "the lock date itself can be moved", body)
    status, body = rest("PATCH", "/timeRecords/%d" % ola_locked, {"minutes": 32})
    check(status == 200 and body.get("minutes") == 32, "after moving the lock, the record changes", body)
    rest("PATCH", "/userAccounts/%d" % ola, {"timeLockDate": "2024-02-29"})

    # -----------------------------------------------------------------------
    print("# activities, tasks and memberships must fit the record (23503), memberships default")
    # -----------------------------------------------------------------------
    base = {"userAccountId": kari, "timeRecordDate": "2024-03-07", "minutes": 15}
    for body, what in (
            (dict(base, projectId=website, projectExtensionId=review), "an activity of another project"),
            (dict(base, projectId=website, projectExtensionId=design, taskId=check_task), "a task of another activity"),
            (dict(base, projectId=website, projectMembershipId=ola_developer), "another user's membership"),
            (dict(base, projectId=audit, projectMembershipId=kari_website), "a membership of another project")):
        status, response = rest("POST", "/timeRecords", body)
        details = " ".join(response.get("details", []))
        check(status == 422 and "SQLSTATE 23503" in details and "_id" not in details,
              "POST with %s -> 422 (23503), API field names in the detail" % what, response)
    status, body = rest("POST", "/timeRecords", dict(base, projectId=website))
    check(status == 201 and body.get("projectMembershipId") == kari_website,
          "one active role on the project: projectMembershipId filled in", body)
    status, body = rest("POST", "/timeRecords", dict(base, projectId=website, taskId=sketch))
    check(status == 201 and body.get("projectExtensionId") == design and body.get("taskName") == "Sketch",
          "a task without its activity: the activity filled in", body)
    status, body = rest("POST", "/timeRecords", dict(base, userAccountId=ola, projectId=website))
    check(status == 422 and "SQLSTATE 23514" in json.dumps(body) and "Developer" in body.get("error", "")
          and "Tester" in body.get("error", "") and "more than one role" in body.get("error", ""),
          "several active roles: 422 (23514) naming the roles", body)
    status, body = rest("POST", "/timeRecords", dict(base, projectId=audit))
    check(status == 201 and body.get("projectMembershipId") is None,
          "no role on the project: projectMembershipId stays null", body)
    status, body = rest("POST", "/timeRecords", dict(base, userAccountId=ola, projectId=audit))
    check(status == 201 and body.get("projectMembershipId") is None,
          "only an inactive role: projectMembershipId stays null", body)

    # -----------------------------------------------------------------------
    print("# IN: ids=1,2,3 and repeated parameters; value errors naming the field (both transports)")
    # -----------------------------------------------------------------------
    for each in (rest, ThroughPostgREST()):
        in_and_value_errors(each)
        if each is not rest:
            each.close()
    good = {"projectId": audit, "userAccountId": kari, "timeRecordDate": "2024-03-08", "minutes": 5}
    status, body = rest("POST", "/timeRecords", dict(good, minutes=60.0, description="sixty"))
    check(status == 201 and body.get("minutes") == 60, "minutes 60.0 is accepted as 60", body)
    status, body = rest("PATCH", "/timeRecords/%d" % body.get("id", 0), {"minutes": 1.2e1})
    check(status == 200 and body.get("minutes") == 12, "minutes 1.2e1 is accepted as 12", body)
    for datestyle in ("ISO, MDY", "SQL, DMY", "German", "Postgres, YMD"):
        web.execute("SELECT set_config('datestyle', $1, false)", [datestyle], [libpq.TEXT])
        try:
            web.execute("SELECT moment.create('timeRecords', $1::jsonb)",
                        [json.dumps(dict(good, timeRecordDate="03/01/2024"))], [libpq.TEXT])
            check(False, "DateStyle %s: \"03/01/2024\" -> 22007" % datestyle, "accepted")
        except libpq.PgError as error:
            check(error.sqlstate == "22007" and "timeRecordDate" in error.message,
                  "DateStyle %s: \"03/01/2024\" -> 22007 naming timeRecordDate" % datestyle,
                  (error.sqlstate, error.message))
        rows = web.execute("SELECT moment.list('timeRecords', 'timeRecordDate', '{\"timeRecordDate\": \"2024-03-05\"}')"
                           " -> 'content' -> 0 ->> 'timeRecordDate'").scalar()
        check(rows == "2024-03-05", "DateStyle %s: ISO dates in, ISO dates out" % datestyle, rows)
    web.execute("RESET datestyle")
    try:
        web.execute("SELECT moment.list('timeRecords', 'minutes', '{}', 'minutes desc')")
        check(False, "order_by 'minutes desc' -> 42601", "no error")
    except libpq.PgError as error:
        check(error.sqlstate == "42601" and "minutes.desc" in (error.hint or ""),
              "order_by 'minutes desc' -> 42601, the hint suggests minutes.desc", (error.sqlstate, error.hint))

    # -----------------------------------------------------------------------
    print("# reports: SQL functions, REST paths, the cap")
    # -----------------------------------------------------------------------
    def report(sql_text, params=()):
        result = web.execute(sql_text, [str(p) for p in params], [libpq.UNKNOWN] * len(params))
        return [dict(zip(result.columns, row)) for row in result.rows], result.notices

    def hand(group_sql, where=""):
        """The same figures by a hand-written GROUP BY (admin, all of cloudware)."""
        return sql("SELECT " + group_sql + ", count(*)::text, sum(t.minutes)::text, "
                   "(coalesce(sum(t.minutes) FILTER (WHERE t.billable), 0))::text FROM moment.time_records t "
                   "JOIN moment.companies c ON c.id = t.company_id AND c.code = 'cloudware' "
                   "WHERE t.time_record_date BETWEEN '2024-03-01' AND '2024-03-31' " + where +
                   " GROUP BY 1 ORDER BY 1").rows

    rows, _ = report("SELECT * FROM moment.hours_report('2024-03-01', '2024-03-31')")
    expected = sql("SELECT t.project_id::text, t.user_account_id::text, count(*)::text, sum(t.minutes)::text "
                   "FROM moment.time_records t JOIN moment.companies c ON c.id = t.company_id AND c.code = 'cloudware' "
                   "WHERE t.time_record_date BETWEEN '2024-03-01' AND '2024-03-31' GROUP BY 1, 2 ORDER BY 1::bigint, 2::bigint").rows
    check([[r["project_id"], r["user_account_id"], r["records"], r["minutes"]] for r in rows] == expected
          and all(r["customer_id"] is None and r["period"] is None and r["project_name"] for r in rows),
          "hours_report by project and user (the default) equals a hand-written GROUP BY", rows)
    for group_by, column, key_sql in (("customer", "customer_id", "p.customer_id::text"),
                                      ("projectExtension", "project_extension_id", "t.project_extension_id::text"),
                                      ("userAccount,month", "period", "date_trunc('month', t.time_record_date)::date::text"),
                                      ("day", "period", "t.time_record_date::text"),
                                      ("week", "period", "date_trunc('week', t.time_record_date)::date::text")):
        rows, _ = report("SELECT * FROM moment.hours_report('2024-03-01', '2024-03-31', $1)", [group_by])
        if group_by == "customer":
            want = sql("SELECT p.customer_id::text, count(*)::text, sum(t.minutes)::text FROM moment.time_records t "
                       "JOIN moment.projects p ON p.company_id = t.company_id AND p.id = t.project_id "
                       "JOIN moment.companies c ON c.id = t.company_id AND c.code = 'cloudware' "
                       "WHERE t.time_record_date BETWEEN '2024-03-01' AND '2024-03-31' GROUP BY 1 ORDER BY 1").rows
            got = [[r["customer_id"], r["records"], r["minutes"]] for r in rows]
            check(got == want and rows and rows[0]["customer_name"] == "Fjord AS",
                  "hours_report by customer (with its name)", rows)
        elif group_by == "userAccount,month":
            check(len(rows) == 2 and all(r["period"] == "2024-03-01" and r["user_account_name"] for r in rows),
                  "hours_report by user and month: period is the month's first day", rows)
        else:
            got = [[r[column], r["records"], r["minutes"], r["billable_minutes"]] for r in rows]
            want = hand(key_sql)
            # NULLs sort last in both
            check(sorted(got, key=json.dumps) == sorted([list(w) for w in want], key=json.dumps),
                  "hours_report by %s equals a hand-written GROUP BY" % group_by, (got, want))
    rows, _ = report("SELECT * FROM moment.hours_report('2024-03-01', '2024-03-31', "
                     "'project,projectExtension,userAccount,customer,month', $1::jsonb)",
                     [json.dumps({"userAccountId": ola, "minutes": {"gte": 30}})])
    check(rows and all(r["user_account_id"] == str(ola) and r["project_id"] and r["customer_id"]
                       and r["period"] == "2024-03-01" for r in rows)
          and sum(int(r["minutes"]) for r in rows) == int(sql(
              "SELECT sum(minutes) FROM moment.time_records WHERE user_account_id = $1 AND minutes >= 30 "
              "AND time_record_date BETWEEN '2024-03-01' AND '2024-03-31'", [ola]).scalar()),
          "every dimension at once, with a time record filter", rows)
    for bad, sqlstate in (("day,month", "22023"), ("nosuch", "22023")):
        try:
            report("SELECT * FROM moment.hours_report('2024-03-01', '2024-03-31', $1)", [bad])
            check(False, "group_by %s -> error" % bad, "no error")
        except libpq.PgError as error:
            check(error.sqlstate in (sqlstate, "42703", "42601"), "group_by %r -> %s" % (bad, error.sqlstate),
                  (error.sqlstate, error.message))
    rows, _ = report("SELECT * FROM moment.project_registered_hours('2024-03-01', '2024-03-31')")
    want = sql("SELECT t.project_id::text, count(*)::text, sum(t.minutes)::text, min(t.time_record_date)::text, "
               "max(t.time_record_date)::text FROM moment.time_records t JOIN moment.companies c ON c.id = t.company_id "
               "AND c.code = 'cloudware' WHERE t.time_record_date BETWEEN '2024-03-01' AND '2024-03-31' "
               "GROUP BY 1 ORDER BY 1::bigint").rows
    check([[r["project_id"], r["records"], r["minutes"], r["first_date"], r["last_date"]] for r in rows] == want,
          "project_registered_hours equals a hand-written GROUP BY (first and last dates)", rows)
    # the cap: a WARNING with limitWasExceeded, or 54000 with moment.limit_exceeded = error
    web.execute("SET moment.default_limit = 1")
    rows, notices = report("SELECT * FROM moment.hours_report('2024-03-01', '2024-03-31', 'day')")
    check(len(rows) == 1 and any("limitWasExceeded" in (n["message"] or "") and n["severity"] == "WARNING"
                                 for n in notices),
          "hours_report cut at the cap: one row and a WARNING with limitWasExceeded", (rows, notices))
    rows, notices = report("SELECT * FROM moment.project_registered_hours('2024-03-01', '2024-03-31')")
    check(len(rows) == 1 and any("limitWasExceeded" in (n["message"] or "") for n in notices),
          "project_registered_hours cut at the cap, with the WARNING", (rows, notices))
    web.execute("SET moment.limit_exceeded = 'error'")
    for statement in ("SELECT * FROM moment.hours_report('2024-03-01', '2024-03-31', 'day')",
                      "SELECT * FROM moment.project_registered_hours('2024-03-01', '2024-03-31')",
                      "SELECT * FROM moment.list_time_records()",
                      "SELECT * FROM moment.rows('timeRecords')"):
        try:
            report(statement)
            check(False, "limit_exceeded = error: %s -> 54000" % statement, "no error")
        except libpq.PgError as error:
            check(error.sqlstate == "54000" and "limitWasExceeded" in error.message,
                  "limit_exceeded = error: %s -> 54000 with limitWasExceeded" % statement,
                  (error.sqlstate, error.message))
    flag = web.execute("SELECT moment.list('timeRecords', 'minutes') -> 'limitWasExceeded'").scalar()
    check(flag == "true", "list keeps its flag under limit_exceeded = error", flag)
    rows, notices = report("SELECT * FROM moment.hours_report('2024-03-07', '2024-03-07', 'customer')")
    check(len(rows) == 1 and not notices, "a report within the cap: no warning, no error", (rows, notices))
    web.execute("RESET moment.limit_exceeded")
    web.execute("RESET moment.default_limit")
    # the REST paths, through both transports
    for transport in (DirectApi, ThroughPostgREST):
        rest2 = transport()
        status, body = rest2("GET", "/timeRecords/getReport?fromDate=2024-03-01&toDate=2024-03-31&groupBy=project,day")
        want = sql("SELECT count(*) FROM (SELECT DISTINCT t.project_id, t.time_record_date FROM moment.time_records t "
                   "JOIN moment.companies c ON c.id = t.company_id AND c.code = 'cloudware' "
                   "WHERE t.time_record_date BETWEEN '2024-03-01' AND '2024-03-31') d").scalar()
        check(status == 200 and len(body.get("content", [])) == int(want) and body.get("limitWasExceeded") is False
              and all(set(r) >= {"period", "projectId", "projectName", "minutes", "billableMinutes", "records"}
                      for r in body["content"]),
              "[%s] GET timeRecords/getReport?groupBy=project,day: rows with camelCase keys" % rest2.name, body)
        status, body = rest2("GET", "/timeRecords/getReport?fromDate=2024-03-01&toDate=2024-03-31&userAccountId=%d" % ola)
        check(status == 200 and body.get("content") and all(r["userAccountId"] == ola for r in body["content"]),
              "[%s] getReport with a field filter" % rest2.name, body)
        status, body = rest2("GET", "/projects/projectRegisteredHoursReport?fromDate=2024-03-01&toDate=2024-03-31")
        check(status == 200 and [r["projectId"] for r in body.get("content", [])] == sorted({website, audit})
              and all(isinstance(r["minutes"], int) and r["firstDate"] <= r["lastDate"] for r in body["content"]),
              "[%s] GET projects/projectRegisteredHoursReport" % rest2.name, body)
        status, body = rest2("GET", "/timeRecords/getReport?fromDate=2024-03-01")
        check(status == 400, "[%s] a report without toDate -> 400" % rest2.name, body)
        status, body = rest2("GET", "/timeRecords/getReport?fromDate=2024-03-01&toDate=2024-03-31&groupBy=day,week")
        check(status == 400, "[%s] groupBy=day,week -> 400" % rest2.name, body)
        rest2.close()

    # -----------------------------------------------------------------------
    print("# register_entity makes a typed listing list_<table>; DROP TABLE takes it away")
    # -----------------------------------------------------------------------
    sql("CREATE TABLE public.time_app_gadgets (company_id bigint NOT NULL REFERENCES moment.companies (id), "
        "id bigserial, name text NOT NULL, weight numeric(6,2), bought_on date, PRIMARY KEY (company_id, id))")
    sql("SELECT moment.register_entity('timeAppGadgets', 'public.time_app_gadgets')")
    listing = sql("SELECT p.oid::regprocedure::text, p.prorettype::regtype::text, p.proretset::text, "
                  "p.provolatile::text FROM pg_proc p WHERE p.proname = 'list_time_app_gadgets' "
                  "AND p.pronamespace = 'moment'::regnamespace").rows
    check(listing == [["moment.list_time_app_gadgets(jsonb,text,boolean)", "time_app_gadgets", "true", "s"]],
          "register_entity created moment.list_time_app_gadgets(filter, order_by, no_limit), STABLE, "
          "RETURNS SETOF the table", listing)
    create("timeAppGadgets", {"name": "Drill", "weight": 2.5, "boughtOn": "2024-03-01"})
    create("timeAppGadgets", {"name": "Saw", "weight": 1.25, "boughtOn": "2024-03-02"})
    create("timeAppGadgets", {"name": "Secret tool"}, "othercorp")
    admin.execute("RESET moment.company")
    result = web.execute("SELECT * FROM moment.list_time_app_gadgets('{\"weight\": {\"gt\": 2}}')")
    check([row[2] for row in result.rows] == ["Drill"] and result.columns[:5] ==
          ["company_id", "id", "name", "weight", "bought_on"] and result.types[3] == 1700 and result.types[4] == 1082,
          "the web role reads typed rows (numeric, date) of its company, filtered", (result.columns, result.rows))
    result = web.execute("SELECT name FROM moment.list_time_app_gadgets(order_by => 'boughtOn.desc')")
    check([r[0] for r in result.rows] == ["Saw", "Drill"], "ordered, only cloudware's", result.rows)
    # a function of that name already there is left alone
    sql("CREATE FUNCTION moment.list_time_app_widgets() RETURNS int LANGUAGE sql AS 'SELECT 7'")
    sql("CREATE TABLE public.time_app_widgets (company_id bigint NOT NULL REFERENCES moment.companies (id), "
        "id bigserial, label text, PRIMARY KEY (company_id, id))")
    sql("SELECT moment.register_entity('timeAppWidgets', 'public.time_app_widgets')")
    check(sql("SELECT moment.list_time_app_widgets()::text").scalar() == "7",
          "an existing function named list_<table> is not replaced")
    sql("DROP TABLE public.time_app_gadgets")
    gone = sql("SELECT count(*) FROM pg_proc WHERE proname = 'list_time_app_gadgets'").scalar()
    check(gone == "0", "DROP TABLE (no CASCADE needed) took list_time_app_gadgets with it", gone)
    check(sql("SELECT count(*) FROM moment.entities WHERE name = 'timeAppGadgets'").scalar() == "0",
          "and the entity")
    sql("DROP TABLE public.time_app_widgets")
    check(sql("SELECT moment.list_time_app_widgets()::text").scalar() == "7",
          "the user's own function of that name survives its table")
    sql("DROP FUNCTION moment.list_time_app_widgets()")
    rest.close()
    check(not STRING_IDS, "every id in every response was a JSON number", STRING_IDS[:10])
finally:
    cleanup()
    admin.close()

finish()
