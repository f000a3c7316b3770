#!/usr/bin/python3
"""Resource bounds of the moment API (contract sections 4, 6, 7 and 8).

  * include spec: 8192 bytes are fine, 8193 are 54000 (also through the router)
  * relation depth: 3 relations are fine, 4 are 54000, in includes, filters,
    order_by and through parts.  The built-in entities only go 2 deep
    (timeRecords -> project -> customer), so a registered table that points
    at itself (limChain.parent) and one that points at timeRecords
    (limNotes.timeRecord.project.customer) make the deeper paths.
  * moment.max_batch_size: a superuser sets 5; 6 instructions are 54000 and
    nothing is applied; roles cannot change it; the default allows 10 000
    and refuses 10 001
  * the 30 000 ceiling: default_limit and max_limit refuse 30 001 (even from
    a superuser), only a superuser may set max_limit, and no listing returns
    more than 30 000 rows (list, paged list, rows, list_*, the router)
  * a filter with 100 000 ids in an "in" completes, and finds the right rows
  * a 10 000-instruction batch completes and the backend's peak memory
    (VmHWM in /proc/<pid>/status) stays bounded
  * statement_timeout cancels a long batch and a slow listing cleanly with
    57014, nothing half-written, the session usable, the role unchanged

Run as the postgres OS user with PGHOST/PGPORT/PGUSER/PGDATABASE set
(scripts/test does it).  Needs python3-psycopg2.  Exit 0 when every check
passed, 1 otherwise, 2 on a setup error.
"""

import os
import signal
import sys
import time

try:
    import psycopg2
except ImportError:
    print("limits.py needs psycopg2: apt-get install python3-psycopg2", file=sys.stderr)
    sys.exit(2)

A_CODE, B_CODE = "lim_a", "lim_b"
ROLE = "moment_lim_%d" % os.getpid()
BIG = 30005                      # customers of company A: more than the ceiling
MEMORY_BOUND_MB = int(os.environ.get("MOMENT_LIMITS_MEMORY_MB") or "384")

failures = []
passes = 0


def check(name, ok, detail=""):
    global passes
    if ok:
        passes += 1
        print("ok    %s" % name, flush=True)
    else:
        failures.append(name)
        print("FAIL  %s%s" % (name, (": " + str(detail)[:800]) if detail else ""), flush=True)


def connect():
    conn = psycopg2.connect("")
    conn.set_client_encoding("UTF8")
    conn.autocommit = True
    return conn


def run(cur, sql, params=()):
    """(sqlstate or None, rows, notices, seconds)."""
    conn = cur.connection
    del conn.notices[:]
    start = time.monotonic()
    try:
        cur.execute(sql, params)
        rows = cur.fetchall() if cur.description else []
        return None, rows, list(conn.notices), time.monotonic() - start
    except psycopg2.Error as err:
        return err.pgcode, str(err.diag.message_primary), list(conn.notices), time.monotonic() - start


def expect_state(cur, name, sql, params, state):
    got, rows, _, _ = run(cur, sql, params)
    check("%s -> %s" % (name, state or "ok"), got == state, "got %s: %s" % (got, rows if got else str(rows)[:300]))
    return rows


def setup(admin):
    cur = admin.cursor()
    cur.execute("CREATE EXTENSION IF NOT EXISTS moment")
    cur.execute("INSERT INTO moment.companies (code, name) VALUES (%s, 'Limits A'), (%s, 'SECRET-B Limits B') "
                "ON CONFLICT (code) DO NOTHING", (A_CODE, B_CODE))
    cur.execute("SELECT id FROM moment.companies WHERE code = %s", (A_CODE,))
    a = cur.fetchone()[0]
    cur.execute("SELECT id FROM moment.companies WHERE code = %s", (B_CODE,))
    b = cur.fetchone()[0]
    cur.execute("SELECT count(*) FROM moment.customers WHERE company_id = %s", (a,))
    if cur.fetchone()[0] == 0:
        cur.execute("""
            INSERT INTO moment.customers (company_id, name, customer_number)
            SELECT %(a)s, 'Customer ' || g, 'C' || g FROM generate_series(1, %(big)s) g;
            INSERT INTO moment.customers (company_id, name) SELECT %(b)s, 'SECRET-B ' || g FROM generate_series(1, 50) g;
            INSERT INTO moment.user_accounts (company_id, name) VALUES (%(a)s, 'Ola'), (%(b)s, 'SECRET-B');
            INSERT INTO moment.projects (company_id, customer_id, name)
            SELECT %(a)s, min(id), 'Project' FROM moment.customers WHERE company_id = %(a)s;
            INSERT INTO moment.time_records (company_id, project_id, user_account_id, time_record_date, minutes)
            SELECT %(a)s, p.id, u.id, DATE '2024-01-01' + g %% 300, 10
              FROM generate_series(1, 2000) g, moment.projects p, moment.user_accounts u
             WHERE p.company_id = %(a)s AND u.company_id = %(a)s;
        """, {"a": a, "b": b, "big": BIG})
    cur.execute("SELECT to_regclass('public.lim_chain') IS NULL")
    if cur.fetchone()[0]:
        cur.execute("""
            CREATE TABLE public.lim_chain (
                company_id bigint NOT NULL REFERENCES moment.companies (id),
                id bigserial,
                parent_id bigint,
                label text NOT NULL,
                PRIMARY KEY (company_id, id),
                FOREIGN KEY (company_id, parent_id) REFERENCES public.lim_chain (company_id, id)
            );
            CREATE TABLE public.lim_notes (
                company_id bigint NOT NULL REFERENCES moment.companies (id),
                id bigserial,
                time_record_id bigint NOT NULL,
                label text,
                PRIMARY KEY (company_id, id),
                FOREIGN KEY (company_id, time_record_id) REFERENCES moment.time_records (company_id, id)
            );
            SELECT moment.register_entity('limChain', 'public.lim_chain');
            SELECT moment.register_entity('limNotes', 'public.lim_notes');
            SELECT moment.define_part('limChain', 'up2', ARRAY['label', 'parent.parent.label']);
        """)
        cur.execute("""
            INSERT INTO public.lim_chain (company_id, label) SELECT %(a)s, 'chain ' || g FROM generate_series(1, 6) g;
            UPDATE public.lim_chain c SET parent_id = (SELECT max(id) FROM public.lim_chain p
                                                       WHERE p.company_id = c.company_id AND p.id < c.id)
             WHERE company_id = %(a)s;
            INSERT INTO public.lim_notes (company_id, time_record_id, label)
            SELECT %(a)s, min(id), 'note' FROM moment.time_records WHERE company_id = %(a)s;
        """, {"a": a})
    cur.execute("CREATE ROLE %s" % ROLE)
    cur.execute("SELECT moment.grant_company(%s, %s)", (A_CODE, ROLE))
    return a, b


def role_session():
    conn = connect()
    cur = conn.cursor()
    cur.execute("SET log_min_error_statement = panic")
    cur.execute("SET ROLE %s" % ROLE)
    cur.execute("SET moment.company = %s", (A_CODE,))
    return conn, cur


def backend_hwm_kb(cur):
    cur.execute("SELECT pg_backend_pid()")
    pid = cur.fetchone()[0]
    try:
        with open("/proc/%d/status" % pid) as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def table_counts(admin, a):
    cur = admin.cursor()
    cur.execute("SELECT e.name, e.table_name::text FROM moment.entities e ORDER BY e.name")
    counts = {}
    for entity, table in cur.fetchall():
        cur.execute("SELECT count(*) FROM %s WHERE company_id = %%s" % table, (a,))
        counts[entity] = cur.fetchone()[0]
    return counts


def spec_checks(cur):
    print("\n-- include spec and order_by length (8192 bytes)")
    for n, state in ((8192, None), (8193, "54000")):
        spec = "name"
        while len(spec) + 5 <= n:
            spec += "+name"
        spec = spec + " " * (n - len(spec))
        assert len(spec.encode()) == n
        expect_state(cur, "get include spec of %d bytes" % n, "SELECT moment.get('customers', 1, %s)", (spec,), state)
        expect_state(cur, "list include spec of %d bytes" % n, "SELECT moment.list('customers', %s, size => 1)",
                     (spec,), state)
        expect_state(cur, "rows include spec of %d bytes" % n,
                     "SELECT count(*) FROM moment.rows('customers', %s, '{\"id\": 1}')", (spec,), state)
        expect_state(cur, "create include spec of %d bytes" % n,
                     "SELECT moment.create('customers', '{\"name\": \"x\"}', %s)", (spec,), state)
        expect_state(cur, "batch include spec of %d bytes" % n,
                     "SELECT moment.batch('customers', '{}', %s)", (spec,), state)
        got, rows, _, _ = run(cur, "SELECT status, response ->> 'error_type' FROM moment.api('GET', %s)",
                              ("/customers/include/" + spec.replace(" ", "%20") + "?size=1",))
        want = 200 if state is None else 400
        check("api include spec of %d bytes -> %d" % (n, want), got is None and rows[0][0] == want, rows)
        order = "name"
        while len(order) + 5 <= n:
            order += ",name"
        order = order + " " * (n - len(order))
        got, rows, _, _ = run(cur, "SELECT moment.list('customers', 'name', '{}', %s, size => 1)", (order,))
        check("order_by of %d bytes -> %s" % (n, state or "ok"),
              got == state or (state is not None and got == "42601"), "got %s %s" % (got, str(rows)[:200]))
    over = "é" * 4097   # 8194 bytes, 4097 characters
    expect_state(cur, "include spec of 4097 two-byte characters (8194 bytes)",
                 "SELECT moment.get('customers', 1, %s)", (over,), "54000")


def depth_checks(cur):
    print("\n-- relation depth (3 relations deep)")
    cur.execute("SELECT max(id) FROM public.lim_chain")
    last = cur.fetchone()[0]
    expect_state(cur, "built-in timeRecords project.customer.name (2 deep)",
                 "SELECT moment.list('timeRecords', 'project.customer.name', size => 1)", (), None)
    rows = expect_state(cur, "limChain include parent.parent.parent.label (3 deep)",
                        "SELECT moment.get('limChain', %s, 'parent.parent.parent.label')", (last,), None)
    if rows and not isinstance(rows, str):
        check("  ... gives the great-grandparent", rows[0][0].get("parentParentParentLabel") == "chain 3", rows)
    expect_state(cur, "limChain include parent.parent.parent.parent.label (4 deep)",
                 "SELECT moment.get('limChain', %s, 'parent.parent.parent.parent.label')", (last,), "54000")
    expect_state(cur, "limChain include parent.parent.parent.base (3 deep, a part)",
                 "SELECT moment.get('limChain', %s, 'parent.parent.parent.base')", (last,), None)
    expect_state(cur, "limChain include parent.up2 (a part going 2 deeper: 3)",
                 "SELECT moment.get('limChain', %s, 'parent.up2')", (last,), None)
    expect_state(cur, "limChain include parent.parent.up2 (a part going 2 deeper: 4)",
                 "SELECT moment.get('limChain', %s, 'parent.parent.up2')", (last,), "54000")
    rows = expect_state(cur, "limChain filter parent.parent.parent.label (3 deep)",
                        "SELECT moment.list('limChain', 'label', '{\"parent.parent.parent.label\": \"chain 1\"}')",
                        (), None)
    if rows and not isinstance(rows, str):
        check("  ... finds chain 4", [o["label"] for o in rows[0][0]["content"]] == ["chain 4"], rows)
    expect_state(cur, "limChain filter parent.parent.parent.parent.label (4 deep)",
                 "SELECT moment.list('limChain', 'label', '{\"parent.parent.parent.parent.label\": \"chain 1\"}')",
                 (), "54000")
    expect_state(cur, "limChain filter operator on 4 deep",
                 "SELECT moment.list('limChain', 'label', '{\"parent.parent.parent.parent.id\": {\"isNull\": true}}')",
                 (), "54000")
    expect_state(cur, "limChain order_by parent.parent.parent.label.desc (3 deep)",
                 "SELECT moment.list('limChain', 'label', '{}', 'parent.parent.parent.label.desc')", (), None)
    expect_state(cur, "limChain order_by parent.parent.parent.parent.label (4 deep)",
                 "SELECT moment.list('limChain', 'label', '{}', 'parent.parent.parent.parent.label')", (), "54000")
    expect_state(cur, "limChain rows with 4 deep filter",
                 "SELECT count(*) FROM moment.rows('limChain', 'label', '{\"parent.parent.parent.parent.label\": \"x\"}')",
                 (), "54000")
    rows = expect_state(cur, "limNotes timeRecord.project.customer.name (3 deep across built-ins)",
                        "SELECT moment.list('limNotes', 'timeRecord.project.customer.name')", (), None)
    if rows and not isinstance(rows, str):
        check("  ... gives the customer", rows[0][0]["content"][0].get("timeRecordProjectCustomerName") == "Customer 1",
              rows)
    got, rows, _, _ = run(cur, "SELECT status, response ->> 'error_type' FROM moment.api('GET', %s)",
                          ("/limChain/include/parent.parent.parent.parent.label",))
    check("api 4 deep include -> 400 too_large", got is None and rows[0] == (400, "too_large"), rows)


def batch_size_checks(admin, a, cur):
    print("\n-- moment.max_batch_size")
    expect_state(cur, "a role sets moment.max_batch_size", "SET moment.max_batch_size = 100000", (), "42501")
    expect_state(cur, "a role sets moment.max_batch_size via set_config",
                 "SELECT set_config('moment.max_batch_size', '5', false)", (), "42501")
    conn = connect()
    su = conn.cursor()
    su.execute("SET moment.max_batch_size = 5")
    su.execute("SET ROLE %s" % ROLE)
    su.execute("SET moment.company = %s", (A_CODE,))
    before = table_counts(admin, a)
    six = '{"create": [{"name": "b1"}, {"name": "b2"}, {"name": "b3"}], "delete": [-1, -2, -3]}'
    expect_state(su, "6 instructions with max_batch_size 5", "SELECT moment.batch('customers', %s)", (six,), "54000")
    six = '{"create": [{"name": "b1"}, {"name": "b2"}, {"name": "b3"}, {"name": "b4"}, {"name": "b5"}, {"name": "b6"}]}'
    expect_state(su, "6 creates with max_batch_size 5", "SELECT moment.batch('customers', %s)", (six,), "54000")
    got, rows, _, _ = run(su, "SELECT status, response ->> 'error_type' FROM moment.api('POST', '/customers/batch', %s)",
                          (six,))
    check("api batch of 6 with max_batch_size 5 -> 400 too_large", got is None and rows[0] == (400, "too_large"), rows)
    check("nothing of the refused batches was applied", table_counts(admin, a) == before)
    five = '{"create": [{"name": "b1"}, {"name": "b2"}, {"name": "b3"}, {"name": "b4"}, {"name": "b5"}]}'
    su.execute("BEGIN")
    expect_state(su, "5 creates with max_batch_size 5", "SELECT moment.batch('customers', %s)", (five,), None)
    su.execute("ROLLBACK")
    conn.close()
    # the default: 10 000
    big = '{"delete": [%s]}' % ",".join(str(-i) for i in range(1, 10002))
    expect_state(cur, "10 001 instructions with the default max_batch_size", "SELECT moment.batch('customers', %s)",
                 (big,), "54000")


def ceiling_checks(admin, a, cur):
    print("\n-- the 30 000 ceiling")
    total = table_counts(admin, a)["customers"]
    expect_state(cur, "a role sets default_limit 30001", "SET moment.default_limit = 30001", (), "22023")
    expect_state(cur, "a role sets default_limit 0", "SET moment.default_limit = 0", (), "22023")
    expect_state(cur, "a role sets max_limit 30000", "SET moment.max_limit = 30000", (), "42501")
    expect_state(cur, "a role sets max_limit 10", "SET moment.max_limit = 10", (), "42501")
    # Before the module is loaded in a session, SET moment.x only makes a
    # placeholder; loading the module refuses out-of-range values and values
    # set without the privilege (WARNING), so they never take effect.
    conn = connect()
    su = conn.cursor()
    su.execute("SET ROLE %s" % ROLE)
    run(su, "SET moment.max_limit = 5")
    run(su, "SET moment.max_batch_size = 1000000")
    run(su, "SET moment.default_limit = 100000")
    su.execute("SET moment.company = %s", (A_CODE,))
    got, rows, notices, _ = run(su, "SELECT jsonb_array_length(moment.list('customers', 'id', no_limit => true) -> 'content'), "
                                    "current_setting('moment.max_limit'), current_setting('moment.max_batch_size'), "
                                    "current_setting('moment.default_limit')")
    check("a role's placeholders for max_limit 5, max_batch_size 1000000, default_limit 100000 never apply",
          got is None and rows[0] == (30000, "30000", "10000", "1000"), (got, rows, notices))
    big = '{"delete": [%s]}' % ",".join(str(-i) for i in range(1, 10002))
    expect_state(su, "  ... a batch of 10 001 is still refused", "SELECT moment.batch('customers', %s)", (big,), "54000")
    conn.close()
    conn = connect()
    su = conn.cursor()
    run(su, "SET moment.max_limit = 30001")
    su.execute("SET moment.company = %s", (A_CODE,))
    got, rows, notices, _ = run(su, "SELECT jsonb_array_length(moment.list('customers', 'id', no_limit => true) -> 'content'), "
                                    "current_setting('moment.max_limit')")
    check("a superuser's placeholder max_limit 30001 never applies", got is None and rows[0] == (30000, "30000"),
          (got, rows, notices))
    # once the module is loaded, out-of-range values are refused at once
    expect_state(su, "a superuser sets max_limit 30001", "SET moment.max_limit = 30001", (), "22023")
    expect_state(su, "a superuser sets max_limit 1000000 via set_config",
                 "SELECT set_config('moment.max_limit', '1000000', false)", (), "22023")
    expect_state(su, "a superuser sets default_limit 30001", "SET moment.default_limit = 30001", (), "22023")
    expect_state(su, "ALTER ROLE ... SET moment.max_limit = 30001", "ALTER ROLE %s SET moment.max_limit = 30001" % ROLE,
                 (), "22023")
    su.execute("SET moment.company = %s", (A_CODE,))
    su.execute("SET moment.max_limit = 100")
    rows = expect_state(su, "a superuser lowers max_limit to 100",
                        "SELECT jsonb_array_length(l -> 'content'), l -> 'limitWasExceeded' "
                        "FROM moment.list('customers', 'id', no_limit => true) l", (), None)
    check("  ... no_limit gives 100 rows, limitWasExceeded", rows and rows[0] == (100, True), rows)
    conn.close()

    cur.execute("SET moment.default_limit = 30000")
    rows = expect_state(cur, "default_limit 30000, %d rows match" % total,
                        "SELECT jsonb_array_length(l -> 'content'), l -> 'limitWasExceeded' "
                        "FROM moment.list('customers', 'id') l", (), None)
    check("  ... 30000 rows and limitWasExceeded", rows and rows[0] == (30000, True), rows)
    cur.execute("RESET moment.default_limit")
    rows = expect_state(cur, "list no_limit over %d rows" % total,
                        "SELECT jsonb_array_length(l -> 'content'), l -> 'limitWasExceeded' "
                        "FROM moment.list('customers', 'id', no_limit => true) l", (), None)
    check("  ... 30000 rows and limitWasExceeded", rows and rows[0] == (30000, True), rows)
    rows = expect_state(cur, "list no_limit size 50000",
                        "SELECT jsonb_array_length(l -> 'content'), l -> 'limitWasExceeded', l -> 'page' "
                        "FROM moment.list('customers', 'id', size => 50000, no_limit => true) l", (), None)
    check("  ... a page of 30000, limitWasExceeded, exact totals",
          rows and rows[0][0] == 30000 and rows[0][1] is True and rows[0][2]["size"] == 30000
          and rows[0][2]["totalElements"] == total and rows[0][2]["totalPages"] == 2, rows)
    rows = expect_state(cur, "list no_limit page 1 size 30000",
                        "SELECT jsonb_array_length(l -> 'content') FROM moment.list('customers', 'id', page => 1, "
                        "size => 30000, no_limit => true) l", (), None)
    check("  ... the last %d rows" % (total - 30000), rows and rows[0][0] == total - 30000, rows)
    got, rows, notices, _ = run(cur, "SELECT count(*) FROM moment.rows('customers', 'id', no_limit => true)")
    check("rows no_limit returns 30000 with a limitWasExceeded WARNING",
          got is None and rows[0][0] == 30000 and any("limitWasExceeded" in n for n in notices), (got, rows, notices))
    got, rows, notices, _ = run(cur, "SELECT count(*) FROM moment.list_customers(no_limit => true)")
    check("list_customers no_limit returns 30000 with a limitWasExceeded WARNING",
          got is None and rows[0][0] == 30000 and any("limitWasExceeded" in n for n in notices), (got, rows, notices))
    got, rows, _, _ = run(cur, "SELECT status, jsonb_array_length(response -> 'content'), response -> 'limitWasExceeded' "
                               "FROM moment.api('GET', '/customers/include/id?noLimit=true&size=100000')")
    check("api noLimit size 100000 gives 30000 rows", got is None and rows[0] == (200, 30000, True), rows)
    got, rows, _, _ = run(cur, "SELECT status, jsonb_array_length(response -> 'content') "
                               "FROM moment.api('GET', '/customers/include/id?noLimit=true&page=0&size=2147483647')")
    check("api noLimit size 2147483647 gives 30000 rows", got is None and rows[0] == (200, 30000), rows)


def huge_filter_checks(cur):
    print("\n-- a filter of 100 000 ids")
    cur.execute("SELECT min(id), max(id) FROM moment.customers")
    lo, hi = cur.fetchone()
    ids = list(range(lo, lo + 100000))
    flt = '{"id": {"in": [%s]}}' % ",".join(map(str, ids))
    got, rows, _, secs = run(cur, "SELECT (l -> 'page' ->> 'totalElements')::int FROM "
                                  "moment.list('customers', 'id', %s::jsonb, size => 1) l", (flt,))
    check("in with 100 000 ids completes (%.2f s)" % secs, got is None, (got, rows))
    cur.execute("SELECT count(*) FROM moment.customers WHERE id BETWEEN %s AND %s", (lo, lo + 99999))
    want = cur.fetchone()[0]
    check("  ... and counts the %d rows of company A among them" % want, got is None and rows[0][0] == want, rows)
    flt = '{"id": [%s]}' % ",".join(map(str, ids))
    got, rows, _, secs = run(cur, "SELECT count(*) FROM moment.rows('customers', 'id', %s::jsonb, no_limit => true)",
                             (flt,))
    check("an array of 100 000 ids in rows() completes (%.2f s)" % secs, got is None, (got, rows))
    flt = '{"name": {"in": [%s]}}' % ",".join('"Customer %d"' % i for i in range(100000))
    got, rows, _, secs = run(cur, "SELECT count(*) FROM moment.list_customers(%s::jsonb, no_limit => true)", (flt,))
    check("100 000 names in list_customers completes (%.2f s)" % secs, got is None and rows[0][0] == 30000,
          (got, rows))
    query = "&".join("id=%d" % i for i in ids[:20000])
    got, rows, _, secs = run(cur, "SELECT status FROM moment.api('GET', %s)", ("/customers/include/id?" + query,))
    check("api with 20 000 id= parameters completes (%.2f s)" % secs, got is None and rows[0][0] == 200, (got, rows))


def big_batch_checks(admin, a, cur):
    print("\n-- a 10 000-instruction batch")
    before = table_counts(admin, a)
    # a fresh backend, so that its peak memory is this section's
    conn, cur = role_session()
    cur.execute("SELECT moment.get('customers', 1)")
    hwm0 = backend_hwm_kb(cur)
    creates = ",".join('{"name": "bulk %d", "email": "b%d@x"}' % (i, i) for i in range(10000))
    cur.execute("BEGIN")
    got, rows, _, secs = run(cur, "SELECT jsonb_array_length(b -> 'created') FROM "
                                  "moment.batch('customers', %s, 'name') b", ('{"create": [%s]}' % creates,))
    check("10 000 creates in one batch (%.2f s)" % secs, got is None and rows[0][0] == 10000, (got, rows))
    cur.execute("SELECT moment.list('customers', 'id', '{\"name\": {\"like\": \"bulk %\"}}', no_limit => true)")
    created = [o["id"] for o in cur.fetchone()[0]["content"]]
    half = created[:5000]
    body = '{"update": {%s}, "delete": [%s]}' % (",".join('"%d": {"email": null}' % i for i in half),
                                                 ",".join(map(str, created[5000:])))
    got, rows, _, secs2 = run(cur, "SELECT jsonb_array_length(b -> 'updated'), jsonb_array_length(b -> 'deleted') "
                                   "FROM moment.batch('customers', %s) b", (body,))
    check("5 000 updates + 5 000 deletes in one batch (%.2f s)" % secs2, got is None and rows[0] == (5000, 5000),
          (got, rows))
    mixed = '{"create": [%s]}' % ",".join('{"name": "mix %d"%s}' % (i, ', "email": "e"' if i % 2 else "")
                                           for i in range(10000))
    got, rows, _, secs3 = run(cur, "SELECT jsonb_array_length(b -> 'created') FROM moment.batch('customers', %s) b",
                              (mixed,))
    check("10 000 creates of alternating shapes (%.2f s)" % secs3, got is None and rows[0][0] == 10000, (got, rows))
    wide = '{"create": [%s]}' % ",".join(
        '{"projectId": %d, "userAccountId": %d, "timeRecordDate": "2024-01-01", "minutes": %d, "description": "%s"}'
        % (PROJECT, USER, i % 1440, "d" * 100) for i in range(10000))
    got, rows, _, secs4 = run(cur, "SELECT length(b::text) FROM moment.batch('timeRecords', %s, "
                                   "'all+project.all+project.customer.all+userAccount.all') b", (wide,))
    check("10 000 timeRecords creates projected with every related field (%.2f s, %s MB of JSON)"
          % (secs4, rows[0][0] // 1048576 if got is None else "?"), got is None, (got, rows))
    hwm1 = backend_hwm_kb(cur)
    cur.execute("ROLLBACK")
    if hwm0 is None or hwm1 is None:
        print("skip  backend memory: /proc/<backend pid>/status is not readable here")
    else:
        grown = (hwm1 - hwm0) / 1024.0
        check("backend peak memory grew %.0f MB (VmHWM %d -> %d kB), bound %d MB" % (grown, hwm0, hwm1, MEMORY_BOUND_MB),
              grown < MEMORY_BOUND_MB)
    check("the rolled-back batches left nothing", table_counts(admin, a) == before)
    conn.close()


def timeout_checks(admin, a, cur):
    print("\n-- statement_timeout")
    before = table_counts(admin, a)
    creates = '{"create": [%s]}' % ",".join('{"name": "slow %d"}' % i for i in range(10000))
    cur.execute("SET statement_timeout = '50ms'")
    got, rows, _, secs = run(cur, "SELECT moment.batch('customers', %s)", (creates,))
    check("a 10 000-create batch under statement_timeout 50ms -> 57014 (%.2f s)" % secs, got == "57014", (got, rows))
    got, rows, _, secs = run(cur, "SELECT status FROM moment.api('POST', '/customers/batch', %s)", (creates,))
    check("the same batch through the router -> 57014, not a status (%.2f s)" % secs, got == "57014", (got, rows))
    creates_timerecords = '{"create": [%s]}' % ",".join(
        '{"projectId": %d, "userAccountId": %d, "timeRecordDate": "2024-01-01", "minutes": 1}' % (PROJECT, USER)
        for _ in range(10000))
    got, rows, _, secs = run(cur, "SELECT moment.batch('timeRecords', %s)", (creates_timerecords,))
    check("a 10 000-create timeRecords batch (foreign keys) -> 57014 (%.2f s)" % secs, got == "57014", (got, rows))
    # the router's company prefix does not outlive a cancelled request
    cur.execute("RESET moment.company")
    got, rows, _, secs = run(cur, "SELECT status FROM moment.api('POST', %s, %s)",
                             ("/api/1.0/companies/%s/customers/batch" % A_CODE, creates))
    got2, rows2, _, _ = run(cur, "SELECT current_setting('moment.company')")
    check("a cancelled router request with a company prefix -> 57014, the company setting unchanged",
          got == "57014" and got2 is None and rows2[0][0] == "", (got, rows, got2, rows2))
    cur.execute("SET moment.company = %s", (A_CODE,))
    cur.execute("SET statement_timeout = '5ms'")
    slow = '{"name": {"ilike": "%%9%%9%%"}, "customerNumber": {"ilike": "%%c%%"}}'
    got, rows, _, secs = run(cur, "SELECT moment.list('customers', 'base+metadata.count', %s::jsonb, "
                                  "'name.desc,customerNumber', page => 3, size => 1000, no_limit => true)", (slow,))
    check("a slow listing under statement_timeout 5ms -> 57014 (%.2f s)" % secs, got == "57014", (got, rows))
    got, rows, _, secs = run(cur, "SELECT count(*) FROM moment.rows('customers', 'base', %s::jsonb, 'name.desc', "
                                  "no_limit => true)", (slow,))
    check("a slow rows() under statement_timeout 5ms -> 57014 (%.2f s)" % secs, got == "57014", (got, rows))
    got, rows, _, secs = run(cur, "SELECT count(*) FROM moment.list_customers(%s::jsonb, 'name.desc', true)", (slow,))
    check("a slow list_customers under statement_timeout 5ms -> 57014 (%.2f s)" % secs, got == "57014", (got, rows))
    # inside a transaction, a savepoint recovers
    cur.execute("SET statement_timeout = '50ms'")
    cur.execute("BEGIN")
    cur.execute("SAVEPOINT s")
    got, rows, _, _ = run(cur, "SELECT moment.batch('customers', %s)", (creates,))
    cur.execute("ROLLBACK TO SAVEPOINT s")
    got2, rows2, _, _ = run(cur, "SELECT moment.create('customers', '{\"name\": \"after timeout\"}', 'name') ->> 'name'")
    check("after a timeout in a savepoint the transaction goes on", got == "57014" and got2 is None, (got, got2, rows2))
    cur.execute("ROLLBACK")
    cur.execute("RESET statement_timeout")
    got, rows, _, _ = run(cur, "SELECT current_user::text, current_setting('moment.company'), 1")
    check("the session is usable, still the role, still company A", got is None and rows[0] == (ROLE, A_CODE, 1),
          rows)
    check("nothing was half-written", table_counts(admin, a) == before, (before, table_counts(admin, a)))


PROJECT = USER = None


def main():
    global PROJECT, USER
    signal.signal(signal.SIGTERM, lambda s, f: sys.exit("limits: stopped by signal %d" % s))
    started = time.monotonic()
    admin = connect()
    acur = admin.cursor()
    acur.execute("SELECT pg_postmaster_start_time()")
    postmaster_started = acur.fetchone()[0]
    try:
        a, b = setup(admin)
        acur.execute("SELECT min(id) FROM moment.projects WHERE company_id = %s", (a,))
        PROJECT = acur.fetchone()[0]
        acur.execute("SELECT min(id) FROM moment.user_accounts WHERE company_id = %s", (a,))
        USER = acur.fetchone()[0]
        conn, cur = role_session()
        sections = [("spec", lambda: spec_checks(cur)),
                    ("depth", lambda: depth_checks(cur)),
                    ("batch size", lambda: batch_size_checks(admin, a, cur)),
                    ("ceiling", lambda: ceiling_checks(admin, a, cur)),
                    ("huge filter", lambda: huge_filter_checks(cur)),
                    ("big batch", lambda: big_batch_checks(admin, a, cur)),
                    ("timeout", lambda: timeout_checks(admin, a, cur))]
        for name, section in sections:
            t0 = time.monotonic()
            try:
                section()
            except psycopg2.Error as err:
                check("section %s ran to its end" % name, False, "%s %s" % (err.pgcode, err))
                if conn.closed:
                    conn, cur = role_session()
                else:
                    conn.rollback() if not conn.autocommit else None
                    try:
                        cur.execute("ROLLBACK")
                    except psycopg2.Error:
                        pass
            print("      (%s: %.1f s)" % (name, time.monotonic() - t0))
        acur.execute("SELECT pg_postmaster_start_time()")
        check("the server did not restart", acur.fetchone()[0] == postmaster_started)
    finally:
        try:
            acur.execute("DELETE FROM moment.company_grants WHERE role = (SELECT oid FROM pg_roles WHERE rolname = %s)",
                         (ROLE,))
            acur.execute("ALTER ROLE %s RESET ALL" % ROLE)
            acur.execute("DROP OWNED BY %s" % ROLE)
            acur.execute("DROP ROLE %s" % ROLE)
        except psycopg2.Error as err:
            print("limits: cleanup of role %s failed: %s" % (ROLE, err))
    elapsed = time.monotonic() - started
    if failures:
        print("\nlimits: %d of %d checks failed (%.1f s): %s" % (len(failures), len(failures) + passes, elapsed,
                                                                "; ".join(failures)))
        print("FAIL")
        return 1
    print("\nlimits: all %d checks passed (%.1f s)" % (passes, elapsed))
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
