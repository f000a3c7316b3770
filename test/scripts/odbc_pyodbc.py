#!/usr/bin/python3
"""Reporting tools through the real ODBC stack: unixODBC + psqlODBC
(psqlodbcw.so) + pyodbc, from a DSN in our own odbc.ini whose ConnSettings
selects the company, logged in as a non-superuser role granted the company
read-only.

Checks typed rows (dates as datetime.date, numeric(14,2) as Decimal with its
scale, booleans as bool with BoolsAsChar=0), the cap WARNING arriving as
SQL_SUCCESS_WITH_INFO (cursor.messages), errors with their SQLSTATE, bound
parameters, tenant isolation, and a 30 000-row listing
(list_time_records(no_limit => true) on a company with more rows) fetched with
UseDeclareFetch=1 in bounded client memory, compared with UseDeclareFetch=0.

Environment (set by scripts/test): PGHOST, PGPORT, PGUSER (a superuser),
PGDATABASE (a fresh database with CREATE EXTENSION moment done).
Needs: unixodbc, odbc-postgresql, python3-pyodbc (Debian), /usr/bin/python3.
"""

import datetime
import decimal
import json
import os
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time

import pyodbc

sys.dont_write_bytecode = True     # the tree may be read-only (runs as postgres)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import libpq  # noqa: E402

DRIVER = "/usr/lib/x86_64-linux-gnu/odbc/psqlodbcw.so"
BULK_ROWS = 30500            # more than the 30 000 ceiling, so no_limit is cut too
HARD_LIMIT = 30000


def fetch_child(mode):
    """Run in a child process (its own peak RSS): fetch the whole no_limit
    listing with fetchmany and report peak RSS before and after, in kB."""
    cn = pyodbc.connect("DSN=moment_report;UseDeclareFetch=%s;Fetch=1000"
                        % ("1" if mode == "declare" else "0"), autocommit=True)
    cur = cn.cursor()
    cur.execute("SELECT 1")
    cur.fetchall()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    cur.execute("SELECT * FROM moment.list_time_records(no_limit => true)")
    messages = [m[1] for m in cur.messages]
    rows = 0
    minutes = 0
    while True:
        batch = cur.fetchmany(1000)
        if not batch:
            break
        rows += len(batch)
        minutes += sum(r.minutes for r in batch)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cn.close()
    print(json.dumps({"rows": rows, "minutes": minutes, "before_kb": before, "after_kb": after,
                      "seconds": round(time.monotonic() - started, 2), "messages": messages}))


if len(sys.argv) == 3 and sys.argv[1] == "--fetch":
    fetch_child(sys.argv[2])
    sys.exit(0)

from checks import check, finish  # noqa: E402


def expect_error(cursor, statement, sqlstate, what, *params):
    try:
        cursor.execute(statement, *params)
        cursor.fetchall()
    except pyodbc.Error as error:
        check(error.args[0] == sqlstate, "%s -> SQLSTATE %s" % (what, sqlstate), error.args)
        return error
    check(False, "%s -> SQLSTATE %s" % (what, sqlstate), "no error")
    return None


def conninfo():
    parts = ["%s=%s" % (k, os.environ[e]) for k, e in
             (("host", "PGHOST"), ("port", "PGPORT"), ("dbname", "PGDATABASE")) if os.environ.get(e)]
    parts.append("user=%s" % os.environ.get("PGUSER", "postgres"))
    return " ".join(parts)


suffix = secrets.token_hex(3)
REPORT = "odbc_report_" + suffix
PASSWORD = secrets.token_hex(12)
admin = libpq.Connection(conninfo())
workdir = tempfile.mkdtemp(prefix="moment_odbc_")


def sql(statement, params=()):
    return admin.execute(statement, list(params), [libpq.TEXT] * len(params))


try:
    # ---- data and role, as the superuser --------------------------------
    admin.execute("CREATE ROLE %s LOGIN PASSWORD %s" % (libpq.quote_ident(REPORT),
                                                        libpq.quote_literal(PASSWORD)))
    sql("INSERT INTO moment.companies (code, name) VALUES ('cloudware', 'Cloudware AS'), "
        "('othercorp', 'Other Corp AS')")
    sql("SELECT moment.grant_company('cloudware', $1, false)", [REPORT])

    def create(company, entity, body):
        admin.execute("SELECT set_config('moment.company', $1, false)", [company], [libpq.TEXT])
        return json.loads(admin.execute("SELECT moment.create($1, $2::jsonb, 'id')",
                                        [entity, json.dumps(body)], [libpq.TEXT, libpq.TEXT]).scalar())["id"]

    customer = create("cloudware", "customers", {"name": "Fjord AS"})
    project = create("cloudware", "projects", {"name": "Website", "customerId": customer})
    user = create("cloudware", "userAccounts", {"name": "Kari"})
    offers = [create("cloudware", "offers", {"name": "Offer %d" % i, "customerId": customer,
                                             "currencyCode": c, "exchangeRate": r, "totalSum": t})
              for i, (c, r, t) in enumerate([("NOK", "1", "1000.00"), ("EUR", "11.5", "19.90"),
                                             ("NOK", "1", "0.05")], 1)]
    march = [  # date, minutes, billable, approved, description
        ("2024-03-01", 90, True, False, "Planning"),
        ("2024-03-04", 15, False, True, None),
        ("2024-03-05", 480, True, True, "Development \u00e6\u00f8\u00e5"),
    ]
    records = [create("cloudware", "timeRecords", {
        "projectId": project, "userAccountId": user, "timeRecordDate": d, "minutes": m,
        "billable": b, "approved": a, "description": text}) for d, m, b, a, text in march]
    activity = create("cloudware", "projectExtensions", {"name": "Design", "projectId": project,
                                                         "projectExtensionNumber": "A1", "billable": False})
    task = create("cloudware", "tasks", {"name": "Sketch \u00e6", "projectExtensionId": activity})
    membership = create("cloudware", "projectMemberships", {"projectId": project, "userAccountId": user,
                                                            "projectMembershipRoleName": "Developer",
                                                            "hourlyRate": "950.50"})
    records.append(create("cloudware", "timeRecords", {
        "projectId": project, "userAccountId": user, "projectExtensionId": activity, "taskId": task,
        "projectMembershipId": membership, "timeRecordDate": "2024-04-02", "minutes": 45, "billable": True}))
    other = create("othercorp", "customers", {"name": "Secret Other AS"})
    other_project = create("othercorp", "projects", {"name": "Secret", "customerId": other})
    other_user = create("othercorp", "userAccounts", {"name": "Eve"})
    create("othercorp", "timeRecords", {"projectId": other_project, "userAccountId": other_user,
                                        "timeRecordDate": "2024-03-02", "minutes": 600})
    admin.execute("RESET moment.company")
    # the bulk: one INSERT ... SELECT, in 2023 so the March 2024 rows stay apart
    sql("""INSERT INTO moment.time_records (company_id, project_id, user_account_id, time_record_date,
                                            minutes, description, billable)
           SELECT c.id, $1::bigint, $2::bigint, date '2023-01-01' + (g % 365), 1 + g % 480,
                  'Bulk row ' || g, g % 3 <> 0
             FROM moment.companies c, generate_series(1, $3::int) g
            WHERE c.code = 'cloudware'""", [str(project), str(user), str(BULK_ROWS)])
    bulk_minutes_first = int(sql(
        "SELECT sum(minutes) FROM (SELECT minutes FROM moment.time_records t JOIN moment.companies c "
        "ON c.id = t.company_id WHERE c.code = 'cloudware' ORDER BY t.id LIMIT %d) s" % HARD_LIMIT).scalar())

    # ---- the DSN ----------------------------------------------------------
    with open(os.path.join(workdir, "odbcinst.ini"), "w") as f:
        f.write("[PostgreSQL Unicode]\nDescription=psqlODBC\nDriver=%s\n" % DRIVER)
    with open(os.path.join(workdir, "odbc.ini"), "w") as f:
        f.write("""[moment_report]
Driver=PostgreSQL Unicode
Servername=%s
Port=%s
Database=%s
Username=%s
Password=%s
ConnSettings=SET moment.company = 'cloudware'
BoolsAsChar=0
UseDeclareFetch=1
Fetch=1000
""" % (os.environ.get("PGHOST") or "/var/run/postgresql", os.environ.get("PGPORT") or "5432",
       os.environ["PGDATABASE"], REPORT, PASSWORD))
    os.environ["ODBCSYSINI"] = workdir
    os.environ["ODBCINI"] = os.path.join(workdir, "odbc.ini")

    print("# typed rows through psqlODBC (DSN with ConnSettings, BoolsAsChar=0)")
    cn = pyodbc.connect("DSN=moment_report;UseDeclareFetch=0", autocommit=True)
    cur = cn.cursor()
    cur.execute("SELECT current_setting('moment.company'), current_user::text, "
                "(SELECT rolsuper FROM pg_roles WHERE rolname = current_user)")
    row = cur.fetchone()
    check(tuple(row) == ("cloudware", REPORT, False),
          "ConnSettings selected cloudware for the non-superuser %s" % REPORT, tuple(row))

    cur.execute("SELECT * FROM moment.list_time_records("
                "'{\"timeRecordDate\": {\"gte\": \"2024-03-01\", \"lt\": \"2024-04-01\"}}', 'timeRecordDate')")
    columns = {d[0]: d[1] for d in cur.description}
    rows = cur.fetchall()
    check(columns.get("time_record_date") is datetime.date and columns.get("minutes") is int
          and columns.get("billable") is bool and columns.get("id") is int
          and columns.get("created_at") is datetime.datetime and columns.get("description") is str,
          "list_time_records column types: date, int, bool, bigint, timestamp, text",
          {k: v.__name__ for k, v in columns.items()})
    got = [(r.time_record_date, r.minutes, r.billable, r.approved, r.description) for r in rows]
    want = [(datetime.date.fromisoformat(d), m, b, a, t) for d, m, b, a, t in march]
    check(got == want, "March 2024 rows as Python values (dates, ints, bools, UTF-8 text)", got)
    check(all(type(r.billable) is bool and type(r.time_record_date) is datetime.date for r in rows),
          "values are bool and datetime.date, not '1'/'0' or strings")

    cur.execute("SELECT id, total_sum, exchange_rate FROM moment.list_offers(order_by => 'id')")
    desc = {d[0]: d for d in cur.description}
    rows = cur.fetchall()
    check(desc["total_sum"][1] is decimal.Decimal and desc["total_sum"][4] == 14 and desc["total_sum"][5] == 2,
          "list_offers total_sum is a Decimal column, precision 14, scale 2", desc.get("total_sum"))
    check([r.total_sum for r in rows] == [decimal.Decimal("1000.00"), decimal.Decimal("19.90"),
                                          decimal.Decimal("0.05")]
          and all(type(r.total_sum) is decimal.Decimal for r in rows),
          "total_sum values are exact Decimals", [r.total_sum for r in rows])
    check([r.exchange_rate for r in rows] == [1, decimal.Decimal("11.5"), 1],
          "exchange_rate (numeric) as Decimal", [r.exchange_rate for r in rows])

    print("# the typed listings of 0.2.0's entities")
    cur.execute("SELECT * FROM moment.list_project_extensions()")
    desc = {d[0]: d[1] for d in cur.description}
    rows = cur.fetchall()
    check([(r.id, r.project_id, r.project_extension_number, r.name, r.project_extension_state, r.billable)
           for r in rows] == [(activity, project, "A1", "Design", "open", False)]
          and desc.get("billable") is bool and desc.get("created_at") is datetime.datetime,
          "list_project_extensions: typed row (bigint, text, bool, timestamp)", [tuple(r) for r in rows])
    cur.execute("SELECT id, hourly_rate, project_membership_role_name FROM moment.list_project_memberships()")
    desc = {d[0]: d for d in cur.description}
    rows = cur.fetchall()
    check([tuple(r) for r in rows] == [(membership, decimal.Decimal("950.50"), "Developer")]
          and desc["hourly_rate"][1] is decimal.Decimal and desc["hourly_rate"][5] == 2,
          "list_project_memberships: hourly_rate numeric(14,2) as Decimal", [tuple(r) for r in rows])
    cur.execute("SELECT id, name, project_extension_id FROM moment.list_tasks(filter => ?)",
                json.dumps({"projectExtensionId": activity}))
    rows = cur.fetchall()
    check([tuple(r) for r in rows] == [(task, "Sketch \u00e6", activity)], "list_tasks with a bound filter",
          [tuple(r) for r in rows])
    cur.execute("SELECT time_record_date, project_extension_id, task_id, project_membership_id "
                "FROM moment.list_time_records('{\"taskId\": {\"isNull\": false}}')")
    rows = [tuple(r) for r in cur.fetchall()]
    check(rows == [(datetime.date(2024, 4, 2), activity, task, membership)],
          "list_time_records carries the activity, task and membership", rows)

    print("# reports through ODBC: typed columns, parameters, the cap")
    cur.execute("SELECT * FROM moment.hours_report(?, ?, ?)", datetime.date(2024, 3, 1),
                datetime.date(2024, 4, 30), "project,month")
    desc = {d[0]: d[1] for d in cur.description}
    rows = cur.fetchall()
    check(desc.get("period") is datetime.date and desc.get("project_id") is int and desc.get("minutes") is int
          and desc.get("project_name") is str and desc.get("records") is int,
          "hours_report columns: period date, ids and sums bigint, names text",
          {k: v.__name__ for k, v in desc.items()})
    check([(r.period, r.project_id, r.project_name, r.records, r.minutes, r.billable_minutes, r.approved_minutes,
            r.user_account_id) for r in rows]
          == [(datetime.date(2024, 3, 1), project, "Website", 3, 585, 570, 495, None),
              (datetime.date(2024, 4, 1), project, "Website", 1, 45, 45, 0, None)],
          "hours_report by project and month: March and April rows, ungrouped columns NULL",
          [tuple(r) for r in rows])
    cur.execute("SELECT user_account_name, minutes FROM moment.hours_report(from_date => ?, to_date => ?, "
                "group_by => 'userAccount,projectExtension', filter => ?)",
                "2024-03-01", "2024-04-30", json.dumps({"billable": True}))
    rows = sorted((tuple(r) for r in cur.fetchall()), key=lambda r: r[1])
    check(rows == [("Kari", 45), ("Kari", 570)], "hours_report with named, bound arguments and a filter", rows)
    cur.execute("SELECT project_id, customer_name, records, minutes, first_date, last_date "
                "FROM moment.project_registered_hours('2024-03-01', '2024-04-30')")
    rows = [tuple(r) for r in cur.fetchall()]
    check(rows == [(project, "Fjord AS", 4, 630, datetime.date(2024, 3, 1), datetime.date(2024, 4, 2))],
          "project_registered_hours: first and last date as datetime.date", rows)
    cur.execute("SET moment.default_limit = 1")
    cur.execute("SELECT period FROM moment.hours_report('2024-03-01', '2024-04-30', 'day')")
    messages = list(cur.messages)
    rows = cur.fetchall()
    check(len(rows) == 1 and any("limitWasExceeded" in m[1] for m in messages),
          "a report cut at the cap: one row and SQL_SUCCESS_WITH_INFO with limitWasExceeded", messages)
    cur.execute("SET moment.limit_exceeded = 'error'")
    expect_error(cur, "SELECT period FROM moment.hours_report('2024-03-01', '2024-04-30', 'day')", "54000",
                 "with moment.limit_exceeded = error a cut report fails (pandas gets no silent cut)")
    expect_error(cur, "SELECT * FROM moment.list_time_records()", "54000",
                 "and so does a cut typed listing")
    cur.execute("RESET moment.limit_exceeded")
    cur.execute("RESET moment.default_limit")
    expect_error(cur, "SELECT * FROM moment.hours_report('2024-03-01', '2024-03-31', 'day,week')", "22023",
                 "two periods in group_by")

    print("# bound parameters")
    cur.execute("SELECT count(*), sum(minutes) FROM moment.list_time_records(filter => ?, no_limit => ?)",
                json.dumps({"timeRecordDate": {"gte": "2024-03-01"}, "minutes": {"gte": 60}}), True)
    row = cur.fetchone()
    check(tuple(row) == (2, 570), "filter and no_limit as ODBC parameters", tuple(row))

    print("# the cap WARNING as SQL_SUCCESS_WITH_INFO")
    cur.execute("SELECT id FROM moment.list_offers()")
    cur.fetchall()
    check(cur.messages == [], "no diagnostic when nothing was cut", cur.messages)
    cur.execute("SET moment.default_limit = 2")
    cur.execute("SELECT id FROM moment.list_offers(order_by => 'id')")
    messages = list(cur.messages)
    rows = cur.fetchall()
    check(len(rows) == 2 and any("limitWasExceeded" in m[1] for m in messages),
          "2 of 3 offers, cursor.messages carries the limitWasExceeded warning", messages)
    cur.execute("RESET moment.default_limit")

    print("# errors with their SQLSTATE")
    expect_error(cur, "SELECT * FROM moment.list_time_records('{\"nosuch\": 1}')", "42703",
                 "unknown field in a filter")
    expect_error(cur, "SELECT * FROM moment.list_time_records('{\"minutes\": {\"between\": [1, 2]}}')",
                 "22023", "unknown filter operator")
    expect_error(cur, "SELECT * FROM moment.list_offers(order_by => 'name;drop')", "42601",
                 "malformed order_by")
    expect_error(cur, "SELECT * FROM moment.list_customers(?::jsonb)", "22P02",
                 "filter parameter that is not JSON", "{not json")
    cur.execute("SELECT count(*) FROM moment.list_customers()")
    check(cur.fetchone()[0] == 1, "the connection is usable after errors")
    cur.execute("SET moment.company = 'othercorp'")
    error = expect_error(cur, "SELECT * FROM moment.list_customers()", "42501",
                         "SET moment.company to a company not granted")
    check(error is None or "Secret" not in str(error.args), "no othercorp data in the error")
    cur.execute("RESET moment.company")
    expect_error(cur, "SELECT * FROM moment.list_customers()", "22023", "no company in force after RESET")
    cn.close()
    # direct table access is held to the company by row-level security
    cn = pyodbc.connect("DSN=moment_report", autocommit=True)
    cur = cn.cursor()
    cur.execute("SELECT count(*) FROM moment.customers")
    check(cur.fetchone()[0] == 1, "direct SELECT on moment.customers shows cloudware's row only")
    cn.close()

    print("# %d-row listing: UseDeclareFetch=1 (Fetch=1000) against UseDeclareFetch=0" % HARD_LIMIT)
    results = {}
    for mode in ("declare", "full"):
        child = subprocess.run([sys.executable, os.path.abspath(__file__), "--fetch", mode],
                               capture_output=True, text=True, timeout=120)
        if child.returncode != 0:
            check(False, "fetch child %s ran" % mode, child.stderr[-2000:])
            continue
        results[mode] = json.loads(child.stdout.strip().splitlines()[-1])
        r = results[mode]
        print("  %-7s rows=%d  peak RSS before=%d kB after=%d kB growth=%d kB  %.2f s"
              % (mode, r["rows"], r["before_kb"], r["after_kb"], r["after_kb"] - r["before_kb"],
                 r["seconds"]))
        check(r["rows"] == HARD_LIMIT and r["minutes"] == bulk_minutes_first,
              "%s: exactly %d rows (the ceiling), the first by id" % (mode, HARD_LIMIT),
              (r["rows"], r["minutes"], bulk_minutes_first))
        check(any("limitWasExceeded" in m for m in r["messages"]),
              "%s: the cut %d-row listing warns limitWasExceeded" % (mode, HARD_LIMIT), r["messages"])
    if len(results) == 2:
        declare = results["declare"]["after_kb"] - results["declare"]["before_kb"]
        full = results["full"]["after_kb"] - results["full"]["before_kb"]
        check(declare < 8 * 1024, "UseDeclareFetch=1 peak RSS growth %d kB stays under 8 MB" % declare)
        check(declare * 4 < full,
              "UseDeclareFetch=1 grows the client at most a quarter of UseDeclareFetch=0 (%d kB vs %d kB)"
              % (declare, full))
finally:
    try:
        if admin.transaction_status() != libpq.PQTRANS_IDLE:
            admin.execute("ROLLBACK")
        sql("DELETE FROM moment.company_grants WHERE role::text = $1", [REPORT])
        admin.execute("DROP OWNED BY %s CASCADE" % libpq.quote_ident(REPORT))
        admin.execute("DROP ROLE IF EXISTS %s" % libpq.quote_ident(REPORT))
    except Exception as error:
        print("note: cleanup: %s" % error)
    admin.close()
    shutil.rmtree(workdir, ignore_errors=True)

finish()
