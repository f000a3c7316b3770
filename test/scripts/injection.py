#!/usr/bin/python3
"""SQL injection attempts against every input of the moment API.

A canary table (public.canary, one row) and a canary owned by the test role
(public.canary_owned) must survive injection payloads placed in entity names,
include specs, filter keys, operators and values, order_by, body keys and
values, batch keys and ids, REST methods, paths and query strings, the
company setting and PostgREST's JWT claims -- sent both as a superuser (who
could do anything an injected statement asked) and as a role granted one
company.  Identifiers are attacked too: a registered table, its columns and a
granted role all have hostile names.

Afterwards: both canaries are intact, no payload ran (no file written by
COPY TO PROGRAM, no pg_sleep, no new objects), the other company's rows are
unchanged, every moment table of the attacked company changed exactly by the
creates that succeeded, and values containing payloads come back verbatim.

Run as the postgres OS user with PGHOST/PGPORT/PGUSER/PGDATABASE set
(scripts/test does it).  Needs python3-psycopg2.  Exit 0 when nothing was
found, 1 on a finding, 2 on a setup error.
"""

import json
import os
import re
import signal
import sys
import time
import urllib.parse

try:
    import psycopg2
except ImportError:
    print("injection.py needs psycopg2: apt-get install python3-psycopg2", file=sys.stderr)
    sys.exit(2)

A_CODE, B_CODE = "inj_a", "inj_b"
ROLE = "moment_inj_%d" % os.getpid()
EVIL_ROLE = 'moment_inj_%d"; DROP TABLE public.canary; --' % os.getpid()
PWNED = "/tmp/moment_injection_pwned_%d" % os.getpid()
ALLOWED = {"42P01", "42703", "42601", "22023", "428C9", "P0002", "42501", "54000"}
SLOW = 2.5   # seconds: a payload asking for pg_sleep(3) must never sleep

PAYLOADS = [
    "'; DROP TABLE public.canary; --",
    "'); DROP TABLE public.canary; --",
    "\"; DROP TABLE public.canary; --",
    "\") OR 1=1 --",
    "') OR ('1'='1",
    "' OR '1'='1",
    "1 OR 1=1",
    "1; DELETE FROM public.canary",
    "customer.name); DELETE FROM moment.customers; --",
    "name\" FROM moment.customers; DELETE FROM public.canary; --",
    "name, (SELECT pg_sleep(3))",
    "(SELECT pg_sleep(3))",
    "pg_catalog.pg_sleep(3)",
    "name || pg_sleep(3)",
    "$1",
    "$2; DROP TABLE public.canary",
    "$$; DROP TABLE public.canary; $$",
    "$q$; DROP TABLE public.canary; $q$",
    "\\'; DROP TABLE public.canary; --",
    "E'\\x27; DROP TABLE public.canary; --'",
    "%s", "%1$s", "%I", "%L",
    "\"name\"", "\"na\"\"me\"", "\"canary\"", "U&\"\\0061\"",
    "name; TRUNCATE public.canary",
    "id::text; DROP TABLE public.canary",
    "name /* */ ; DELETE FROM public.canary",
    "name -- ",
    "name\n; DROP TABLE public.canary",
    "name\r\n--",
    "canary.note", "public.canary.note", "moment.customers.name",
    "t.company_id", "t.*", "company_id", "companyId", "j1.name",
    "1); INSERT INTO public.canary VALUES (2, 'pwned'); --",
    "'||(SELECT note FROM public.canary)||'",
    "x' UNION SELECT note FROM public.canary --",
    "name UNION SELECT * FROM moment.customers",
    "'; COPY public.canary TO PROGRAM 'touch %s'; --" % PWNED,
    "\"; COPY public.canary TO PROGRAM 'touch %s'; --" % PWNED,
    "null); DROP TABLE public.canary; --",
    "'; SET ROLE postgres; --",
    "'; RESET ROLE; DELETE FROM public.canary; --",
    "'; SELECT set_config('moment.company', '%s', false); --" % B_CODE,
    "\u2019; DROP TABLE public.canary; --",   # a right single quote, not an apostrophe
    "\uff07; DROP TABLE public.canary; --",   # fullwidth apostrophe
]

findings = []
counts = {}
legit = {}          # entity -> net rows created in company A
verbatim = []       # (entity, id, field, value) to read back


def finding(what, call, extra=""):
    text = "%s\n    call: %s" % (what, str(call)[:1500])
    if extra:
        text += "\n    " + str(extra)[:1500]
    findings.append(text)
    print("FINDING " + text, flush=True)


def connect():
    conn = psycopg2.connect("")
    conn.set_client_encoding("UTF8")
    conn.autocommit = True
    return conn


def pct(text):
    return urllib.parse.quote(text, safe="")


class Caller:
    """Runs calls with autocommit (writes that succeed stay), as one identity."""

    def __init__(self, label, role=None):
        self.label = label
        self.role = role
        self.conn = None
        self.reconnect()

    def reconnect(self):
        self.conn = connect()
        cur = self.conn.cursor()
        cur.execute("SET statement_timeout = '20s'")
        cur.execute("SET log_min_error_statement = panic")
        if self.role:
            cur.execute("SET ROLE %s" % self.role)
        cur.execute("SET moment.company = %s", (A_CODE,))

    def call(self, kind, sql, params):
        counts[kind] = counts.get(kind, 0) + 1
        desc = "[%s] %s %r" % (self.label, kind, params)
        cur = self.conn.cursor()
        start = time.monotonic()
        try:
            cur.execute(sql, params)
            rows = cur.fetchall() if cur.description else []
            state = None
        except psycopg2.Error as err:
            rows = None
            state = err.pgcode
            if state is None or self.conn.closed:
                finding("the connection was lost: %s" % str(err).strip(), desc)
                self.reconnect()
                return None, None
            if not (state in ALLOWED or state[:2] in ("22", "23")):
                finding("unexpected SQLSTATE %s: %s" % (state, err.diag.message_primary), desc)
        except UnicodeDecodeError as err:
            finding("the server sent text that is not valid UTF-8: %s" % err, desc)
            return None, None
        elapsed = time.monotonic() - start
        if elapsed > SLOW:
            finding("the call took %.1f s: did a pg_sleep payload run?" % elapsed, desc)
        if rows:
            text = json.dumps(rows, default=str, ensure_ascii=False)
            if "SECRET" in text:
                finding("the result holds company B's data", desc, text[:500])
        return state, rows


def setup(admin):
    cur = admin.cursor()
    cur.execute("CREATE EXTENSION IF NOT EXISTS moment")
    cur.execute("DROP TABLE IF EXISTS public.canary, public.canary_owned")
    cur.execute("CREATE TABLE public.canary (id int PRIMARY KEY, note text NOT NULL)")
    cur.execute("INSERT INTO public.canary VALUES (1, 'tweet')")
    cur.execute("INSERT INTO moment.companies (code, name) VALUES (%s, 'Injection A'), (%s, 'SECRET-B Injection B') "
                "ON CONFLICT (code) DO NOTHING", (A_CODE, B_CODE))
    cur.execute("SELECT id FROM moment.companies WHERE code = %s", (A_CODE,))
    a = cur.fetchone()[0]
    cur.execute("SELECT id FROM moment.companies WHERE code = %s", (B_CODE,))
    b = cur.fetchone()[0]
    cur.execute("""
        INSERT INTO moment.user_accounts (company_id, name) VALUES (%(a)s, 'Ola'), (%(b)s, 'SECRET-B user');
        INSERT INTO moment.customers (company_id, name) VALUES (%(a)s, 'Fjord'), (%(b)s, 'SECRET-B customer');
        INSERT INTO moment.projects (company_id, customer_id, name)
        SELECT company_id, id, CASE WHEN company_id = %(a)s THEN 'Website' ELSE 'SECRET-B project' END
          FROM moment.customers WHERE company_id IN (%(a)s, %(b)s);
        INSERT INTO moment.offers (company_id, customer_id, name, currency_code)
        SELECT company_id, id, CASE WHEN company_id = %(a)s THEN 'Offer' ELSE 'SECRET-B offer' END, 'NOK'
          FROM moment.customers WHERE company_id IN (%(a)s, %(b)s);
        INSERT INTO moment.time_records (company_id, project_id, user_account_id, time_record_date, minutes, description)
        SELECT p.company_id, p.id, u.id, '2024-01-01', 60,
               CASE WHEN p.company_id = %(a)s THEN 'Work' ELSE 'SECRET-B work' END
          FROM moment.projects p JOIN moment.user_accounts u ON u.company_id = p.company_id
         WHERE p.company_id IN (%(a)s, %(b)s);
        INSERT INTO moment.project_extensions (company_id, project_id, name)
        SELECT company_id, id, CASE WHEN company_id = %(a)s THEN 'Design' ELSE 'SECRET-B activity' END
          FROM moment.projects WHERE company_id IN (%(a)s, %(b)s);
        INSERT INTO moment.tasks (company_id, project_extension_id, name)
        SELECT company_id, id, CASE WHEN company_id = %(a)s THEN 'Sketch' ELSE 'SECRET-B task' END
          FROM moment.project_extensions WHERE company_id IN (%(a)s, %(b)s);
        INSERT INTO moment.project_memberships (company_id, project_id, user_account_id, project_membership_role_name)
        SELECT p.company_id, p.id, u.id, CASE WHEN p.company_id = %(a)s THEN 'Default' ELSE 'SECRET-B role' END
          FROM moment.projects p JOIN moment.user_accounts u ON u.company_id = p.company_id
         WHERE p.company_id IN (%(a)s, %(b)s);
    """, {"a": a, "b": b})
    # a registered table whose table and column names are themselves payloads
    cur.execute("""
        CREATE TABLE public."inj ""table""; DROP TABLE public.canary; --" (
            company_id bigint NOT NULL REFERENCES moment.companies (id),
            id bigserial,
            customer_id bigint,
            "it's" text,
            "back\\slash" text,
            "semi;colon -- x" text,
            "$1" text,
            "$$" text,
            "x"")); DROP TABLE public.canary; --" text,
            label text,
            PRIMARY KEY (company_id, id),
            FOREIGN KEY (company_id, customer_id) REFERENCES moment.customers (company_id, id)
        )""")
    cur.execute("""SELECT moment.register_entity('injThings', 'public."inj ""table""; DROP TABLE public.canary; --"')""")
    cur.execute("""INSERT INTO public."inj ""table""; DROP TABLE public.canary; --" (company_id, label, "it's")
                   VALUES (%s, 'thing', 'a'), (%s, 'SECRET-B thing', 'SECRET-B')""", (a, b))
    # the test role, and a granted role whose name is a payload
    cur.execute("CREATE ROLE %s" % ROLE)
    cur.execute("SELECT moment.grant_company(%s, %s)", (A_CODE, ROLE))
    cur.execute("CREATE TABLE public.canary_owned (id int PRIMARY KEY, note text NOT NULL)")
    cur.execute("INSERT INTO public.canary_owned VALUES (1, 'tweet')")
    cur.execute("ALTER TABLE public.canary_owned OWNER TO %s" % ROLE)
    cur.execute("GRANT ALL ON public.canary TO %s" % ROLE)
    cur.execute("CREATE ROLE %s" % quote_ident(EVIL_ROLE))
    # grant_company takes the role's name (type name), not an SQL identifier
    try:
        cur.execute("SELECT moment.grant_company(%s, %s)", (A_CODE, EVIL_ROLE))
    except psycopg2.Error as err:
        finding("grant_company(%r, <role name>) fails for a role whose name needs quoting: %s %s"
                % (A_CODE, err.pgcode, err.diag.message_primary), "grant_company", "carrying on with the quoted form")
        cur.execute("SELECT moment.grant_company(%s, %s)", (A_CODE, quote_ident(EVIL_ROLE)))
    cur.execute("SELECT count(*) FROM moment.company_grants WHERE role = (SELECT oid FROM pg_roles WHERE rolname = %s)",
                (EVIL_ROLE,))
    if cur.fetchone()[0] != 1:
        finding("grant_company did not grant the role it was given", "grant_company")
    return a, b


def quote_ident(name):
    return '"' + name.replace('"', '""') + '"'


def snapshot(admin, a, b):
    cur = admin.cursor()
    cur.execute("SELECT e.name, e.table_name::text FROM moment.entities e ORDER BY e.name")
    result = {}
    for entity, table in cur.fetchall():
        cur.execute("SELECT count(*) FILTER (WHERE company_id = %%s), "
                    "md5(coalesce(string_agg(t::text, '|' ORDER BY t.id) FILTER (WHERE company_id = %%s), '')) "
                    "FROM %s t" % table, (a, b))
        result[entity] = cur.fetchone()
    cur.execute("SELECT count(*) FROM pg_class WHERE relnamespace IN ('public'::regnamespace, 'moment'::regnamespace)")
    result["#relations"] = cur.fetchone()[0]
    cur.execute("SELECT count(*) FROM pg_proc WHERE pronamespace IN ('public'::regnamespace, 'moment'::regnamespace)")
    result["#functions"] = cur.fetchone()[0]
    cur.execute("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'moment\\_inj\\_%%'")
    result["#roles"] = cur.fetchone()[0]
    cur.execute("SELECT count(*), md5(string_agg(company_id || ':' || role::oid, ',' ORDER BY company_id, role::oid)) "
                "FROM moment.company_grants")
    result["grants"] = cur.fetchone()
    return result


ENTITIES = ["customers", "projects", "offers", "timeRecords", "userAccounts", "projectExtensions",
            "projectMemberships", "tasks", "injThings"]
TEXT_FIELD = {"customers": "name", "projects": "name", "offers": "name", "timeRecords": "description",
              "userAccounts": "name", "projectExtensions": "name", "projectMemberships": "projectMembershipRoleName",
              "tasks": "name", "injThings": "label"}
TYPED = {}          # entity -> its typed listing moment.list_<table>


def valid_body(entity, ids, text):
    if entity == "customers":
        return {"name": text, "email": text, "customerNumber": text}
    if entity == "userAccounts":
        return {"name": text, "email": text}
    if entity == "projects":
        return {"name": text, "customerId": ids["customers"], "projectNumber": text}
    if entity == "offers":
        return {"name": text, "customerId": ids["customers"], "currencyCode": "NOK", "offerNumber": text}
    if entity == "timeRecords":
        return {"projectId": ids["projects"], "userAccountId": ids["userAccounts"], "timeRecordDate": "2024-02-01",
                "minutes": 5, "description": text, "internalNote": text,
                "projectExtensionId": ids["projectExtensions"], "taskId": ids["tasks"],
                "projectMembershipId": ids["projectMemberships"]}
    if entity == "projectExtensions":
        return {"name": text, "projectId": ids["projects"], "projectExtensionNumber": text}
    if entity == "tasks":
        return {"name": text, "projectExtensionId": ids["projectExtensions"], "taskNumber": text}
    if entity == "projectMemberships":
        # inactive: an extra active role would make time records without a membership ambiguous
        return {"projectMembershipRoleName": text, "projectId": ids["projects"], "userAccountId": ids["userAccounts"],
                "projectMembershipState": "inactive"}
    return {"label": text, "it's": text, "back\\slash": text, "semi;colon -- x": text, "$1": text, "$$": text,
            'x")); DROP TABLE public.canary; --': text}


def note_created(entity, obj, text):
    legit[entity] = legit.get(entity, 0) + 1
    if isinstance(obj, dict) and "id" in obj:
        verbatim.append((entity, obj["id"], TEXT_FIELD[entity], text))


def attack(c, ids):
    j = json.dumps
    for p in PAYLOADS:
        # entity names
        c.call("entity", "SELECT moment.get(%s, 1)", (p,))
        c.call("entity", "SELECT moment.list(%s)", (p,))
        c.call("entity", "SELECT count(*) FROM moment.rows(%s)", (p,))
        c.call("entity", "SELECT moment.create(%s, '{}')", (p,))
        c.call("entity", "SELECT moment.update(%s, 1, '{}')", (p,))
        c.call("entity", "SELECT moment.delete(%s, 1)", (p,))
        c.call("entity", "SELECT moment.batch(%s, '{}')", (p,))
        c.call("entity", "SELECT moment.describe(%s)", (p,))
        for entity in ENTITIES:
            # include specs, whole and inside paths
            for spec in (p, "name+" + p, "customer." + p, p + ".name", "metadata." + p, "base," + p):
                c.call("include", "SELECT moment.list(%s, %s)", (entity, spec))
            c.call("include", "SELECT moment.get(%s, %s, %s)", (entity, ids[entity], p))
            # filter keys, operators and values
            field = TEXT_FIELD[entity]
            for flt in ({p: 1}, {"customer." + p: 1}, {field: p}, {field: {"like": p}}, {field: {"ilike": p}},
                        {field: {"in": [p, p]}}, {field: [p]}, {field: {p: 1}}, {"id": p}, {"id": {"in": [p]}},
                        {field: {"neq": p}, "id": {"gte": p}}):
                c.call("filter", "SELECT moment.list(%s, 'base', %s::jsonb)", (entity, j(flt)))
            c.call("filter", "SELECT count(*) FROM moment.rows(%s, 'base', %s::jsonb)", (entity, j({field: p})))
            # order_by
            for order in (p, "name," + p, "name." + p, p + ".desc", "customer." + p):
                c.call("order_by", "SELECT moment.list(%s, 'base', '{}', %s)", (entity, order))
            # body keys and values: values are legit data and come back verbatim
            # (a payload may be a real column name: "$1" is one of injThings')
            state, rows = c.call("body", "SELECT moment.create(%s, %s::jsonb)", (entity, j({p: "x", field: "x"})))
            if state is None and rows:
                legit[entity] = legit.get(entity, 0) + 1
            state, rows = c.call("body", "SELECT moment.create(%s, %s::jsonb, 'base')",
                                 (entity, j(valid_body(entity, ids, p))))
            if state is None and rows:
                note_created(entity, rows[0][0], p)
            c.call("body", "SELECT moment.update(%s, %s, %s::jsonb)", (entity, ids[entity], j({p: "x"})))
            # batch keys, ids and bodies
            for doc in ({p: []}, {"update": {p: {}}}, {"delete": [p]}, {"create": [{p: 1}]},
                        {"create": [], p: {}}):
                state, rows = c.call("batch", "SELECT moment.batch(%s, %s::jsonb)", (entity, j(doc)))
                if state is None and rows:
                    legit[entity] = legit.get(entity, 0) + len(rows[0][0]["created"]) - len(rows[0][0]["deleted"])
            state, rows = c.call("batch", "SELECT moment.batch(%s, %s::jsonb)",
                                 (entity, j({"create": [valid_body(entity, ids, p)]})))
            if state is None and rows:
                for obj in rows[0][0]["created"]:
                    note_created(entity, obj, p)
            # typed listings: filters and order_by
            if entity in TYPED:
                c.call("typed", "SELECT count(*) FROM moment.%s(%%s::jsonb)" % quote_ident(TYPED[entity]),
                       (j({field: p}),))
                c.call("typed", "SELECT count(*) FROM moment.%s('{}', %%s)" % quote_ident(TYPED[entity]), (p,))
                c.call("typed", "SELECT count(*) FROM moment.%s(%%s::jsonb)" % quote_ident(TYPED[entity]),
                       (j({p: 1}),))
        # the reports: dates, group_by, filters
        for group_by in (p, "project," + p, p + ",day", "userAccount, " + p):
            c.call("report", "SELECT count(*) FROM moment.hours_report('2024-01-01', '2024-12-31', %s)", (group_by,))
        for flt in ({p: 1}, {"description": p}, {"description": {"like": p}}, {"project." + p: 1},
                    {"minutes": {p: 1}}, {"id": {"in": [p]}}):
            c.call("report", "SELECT count(*) FROM moment.hours_report('2024-01-01', '2024-12-31', 'project', %s::jsonb)",
                   (j(flt),))
            c.call("report", "SELECT count(*) FROM moment.project_registered_hours('2024-01-01', '2024-12-31', %s::jsonb)",
                   (j(flt),))
        c.call("report", "SELECT count(*) FROM moment.hours_report(%s, '2024-12-31')", (p,))
        c.call("report", "SELECT count(*) FROM moment.project_registered_hours('2024-01-01', %s)", (p,))
        c.call("setting", "SELECT set_config('moment.limit_exceeded', %s, true), count(*) FROM moment.rows('customers')",
               (p,))
        # the router: methods, paths, query strings
        c.call("api", "SELECT status FROM moment.api(%s, '/customers')", (p,))
        for path in ("/" + pct(p), "/" + p, "/customers/" + pct(p), "/customers/" + p,
                     "/customers/include/" + pct(p), "/customers/include/" + p,
                     "/api/1.0/companies/" + pct(p) + "/customers", "/api/1.0/companies/%s/%s" % (A_CODE, pct(p)),
                     "/customers?name=" + pct(p), "/customers?" + pct(p) + "=1", "/customers?sort=" + pct(p),
                     "/customers?fromDate=" + pct(p), "/timeRecords?toDate=" + pct(p), "/customers?page=" + pct(p),
                     "/customers?name=" + p, "/customers/batch?" + pct(p),
                     "/customers?ids=" + pct(p), "/customers?ids=1," + pct(p), "/customers?name=a&name=" + pct(p),
                     "/customers?name=a," + pct(p), "/customers/include/" + pct(p) + "?ids=1,2",
                     "/timeRecords/getReport?fromDate=2024-01-01&toDate=2024-12-31&groupBy=" + pct(p),
                     "/timeRecords/getReport?fromDate=" + pct(p) + "&toDate=2024-12-31",
                     "/timeRecords/getReport?fromDate=2024-01-01&toDate=2024-12-31&description=" + pct(p),
                     "/timeRecords/getReport?fromDate=2024-01-01&toDate=2024-12-31&" + pct(p) + "=1",
                     "/projects/projectRegisteredHoursReport?fromDate=2024-01-01&toDate=" + pct(p),
                     "/projects/projectRegisteredHoursReport?fromDate=2024-01-01&toDate=2024-12-31&groupBy=" + pct(p),
                     "/timeRecords/" + pct(p) + "?fromDate=2024-01-01&toDate=2024-12-31"):
            c.call("api", "SELECT status, response FROM moment.api('GET', %s)", (path,))
        state, rows = c.call("api", "SELECT status, response FROM moment.api('POST', '/customers/include/name', %s::jsonb)",
                             (j({"name": p}),))
        if state is None and rows and rows[0][0] == 201:
            note_created("customers", rows[0][1], p)
        for body in ({p: 1}, {"name": "x", p: 1}):
            state, rows = c.call("api", "SELECT status, response FROM moment.api('POST', '/customers', %s::jsonb)",
                                 (j(body),))
            if state is None and rows and rows[0][0] == 201:
                legit["customers"] = legit.get("customers", 0) + 1
        state, rows = c.call("api", "SELECT status, response FROM moment.api('POST', '/customers/batch', %s::jsonb)",
                             (j({"delete": [p]}),))
        if state is None and rows and rows[0][0] == 200:
            finding("a batch deleted rows named by a payload", "api batch", rows)
        # the company setting and PostgREST's claims
        c.call("company", "SELECT set_config('moment.company', %s, true), moment.list('customers')", (p,))
        c.call("company", "SELECT set_config('moment.company', '', true), "
                          "set_config('request.jwt.claims', %s, true), moment.list('customers')",
               (j({"company": p}),))
        c.call("company", "SELECT set_config('moment.company', '', true), "
                          "set_config('request.jwt.claims', %s, true), moment.list('customers')", (p,))
        c.call("company", "SELECT status FROM moment.api('GET', %s)",
               ("/api/1.0/companies/%s/customers" % pct(p),))
        c.conn.cursor().execute("SET moment.company = %s", (A_CODE,))


HIJACK = """
CREATE SCHEMA {schema};
CREATE TABLE {schema}.calls (who text, what text);
CREATE FUNCTION {schema}.texteq(text, text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO {schema}.calls VALUES (current_user, 'text =');
	RETURN pg_catalog.texteq($1, $2);
END $$;
CREATE FUNCTION {schema}.int8eq(bigint, bigint) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO {schema}.calls VALUES (current_user, 'bigint =');
	RETURN pg_catalog.int8eq($1, $2);
END $$;
CREATE FUNCTION {schema}.int8lt(bigint, bigint) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO {schema}.calls VALUES (current_user, 'bigint <');
	RETURN pg_catalog.int8lt($1, $2);
END $$;
CREATE OPERATOR {schema}.= (LEFTARG = text, RIGHTARG = text, FUNCTION = {schema}.texteq);
CREATE OPERATOR {schema}.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = {schema}.int8eq);
CREATE OPERATOR {schema}.< (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = {schema}.int8lt);
"""


def search_path_hijack(admin, ids):
    """A role with a schema of its own shadows pg_catalog's operators through
    search_path: whatever moment runs as the extension owner must not call
    them (that would run the role's code as a superuser)."""
    schema = "moment_inj_evil_%d" % os.getpid()
    cur = admin.cursor()
    cur.execute("GRANT CREATE ON DATABASE %s TO %s" % (quote_ident(admin.info.dbname), ROLE))
    c = Caller("role with search_path hijack", ROLE)
    rc = c.conn.cursor()
    rc.execute(HIJACK.format(schema=schema))
    rc.execute("SET search_path = %s, pg_catalog" % schema)
    n = 0
    for code in [A_CODE] + ["hijack_%d_%d" % (os.getpid(), i) for i in range(5)]:
        for sql in ("SELECT moment.list('customers', 'name+metadata.count', '{\"id\": {\"gte\": 1}}')",
                    "SELECT count(*) FROM moment.customers",
                    "SELECT moment.get('projects', %d, 'name+customer.name')" % ids["projects"],
                    "SELECT status FROM moment.api('GET', '/api/1.0/companies/%s/customers')" % code):
            rc.execute("SET moment.company = %s", (code,))
            c.call("search_path", sql, ())
            n += 1
    cur.execute("SELECT who, what, count(*) FROM %s.calls WHERE who <> %%s GROUP BY 1, 2" % schema, (ROLE,))
    for who, what, count in cur.fetchall():
        finding("the role's own operator %s (search_path hijack) ran %d times as %s: "
                "code run as the extension owner resolves operators through the caller's search_path"
                % (what, count, who), "search_path = %s, pg_catalog" % schema)
    cur.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", (ROLE,))
    if cur.fetchone()[0]:
        finding("the role became a superuser", "search_path hijack")
    cur.execute("REVOKE CREATE ON DATABASE %s FROM %s" % (quote_ident(admin.info.dbname), ROLE))
    c.conn.close()
    return n


def main():
    signal.signal(signal.SIGTERM, lambda s, f: sys.exit("injection: stopped by signal %d" % s))
    started = time.monotonic()
    admin = connect()
    cur = admin.cursor()
    cur.execute("SELECT pg_postmaster_start_time()")
    postmaster_started = cur.fetchone()[0]
    try:
        a, b = setup(admin)
        ids = {}
        for entity in ENTITIES:
            cur.execute("SELECT table_name::text FROM moment.entities WHERE name = %s", (entity,))
            table = cur.fetchone()[0]
            cur.execute("SELECT min(id) FROM %s WHERE company_id = %%s" % table, (a,))
            ids[entity] = cur.fetchone()[0]
        # the typed listings, the injThings one (list_<its hostile table name>) included
        cur.execute("SELECT e.name, p.proname::text FROM moment.entities e JOIN pg_class c ON c.oid = e.table_name "
                    "JOIN pg_proc p ON p.pronamespace = 'moment'::regnamespace AND p.proname = 'list_' || c.relname "
                    "AND p.prorettype = c.reltype")
        TYPED.update(dict(cur.fetchall()))
        if "injThings" not in TYPED:
            finding("register_entity made no typed listing for the table with a hostile name", "register_entity")
        before = snapshot(admin, a, b)

        attack(Caller("superuser"), ids)
        attack(Caller("role", ROLE), ids)
        attack(Caller("hostile-named role", quote_ident(EVIL_ROLE)), ids)
        search_path_hijack(admin, ids)

        # the canaries, the other company, the objects of the database
        cur.execute("SELECT to_regclass('public.canary') IS NOT NULL, to_regclass('public.canary_owned') IS NOT NULL")
        canary, owned = cur.fetchone()
        if not canary or not owned:
            finding("a canary table was dropped (canary %s, canary_owned %s)" % (canary, owned), "-")
        else:
            for table in ("public.canary", "public.canary_owned"):
                cur.execute("SELECT array_agg(id || ':' || note ORDER BY id) FROM %s" % table)
                rows = cur.fetchone()[0]
                if rows != ["1:tweet"]:
                    finding("%s was changed: %s" % (table, rows), "-")
        cur.execute("SELECT pg_postmaster_start_time()")
        if cur.fetchone()[0] != postmaster_started:
            finding("the server restarted during the run (a backend crashed)", "-")
        if os.path.exists(PWNED):
            finding("a COPY TO PROGRAM payload ran: %s exists" % PWNED, "-")
            os.unlink(PWNED)
        after = snapshot(admin, a, b)
        for key in before:
            if key in ENTITIES:
                want = before[key][0] + legit.get(key, 0)
                if after[key][0] != want:
                    finding("%s of company A: %d rows, expected %d (%d before + %d legit creates)"
                            % (key, after[key][0], want, before[key][0], legit.get(key, 0)), "-")
                if after[key][1] != before[key][1]:
                    finding("rows of company B in %s changed" % key, "-")
            elif after[key] != before[key]:
                finding("%s changed: %s -> %s" % (key, before[key], after[key]), "-")
        # values holding payloads are stored and returned verbatim
        cur.execute("SET moment.company = %s", (A_CODE,))
        mismatches = 0
        for entity, obj_id, field, value in verbatim:
            cur.execute("SELECT moment.get(%s, %s, %s) ->> %s", (entity, obj_id, field, field))
            got = cur.fetchone()[0]
            if got != value:
                mismatches += 1
                if mismatches <= 5:
                    finding("%s %s: %s came back as %r, not %r" % (entity, obj_id, field, got, value), "-")
    finally:
        for role in (ROLE, EVIL_ROLE):
            try:
                cur.execute("DELETE FROM moment.company_grants WHERE role = (SELECT oid FROM pg_roles WHERE rolname = %s)",
                            (role,))
                cur.execute("DROP OWNED BY %s" % quote_ident(role))
                cur.execute("DROP ROLE %s" % quote_ident(role))
            except psycopg2.Error as err:
                print("injection: cleanup of role %s failed: %s" % (role, err))

    elapsed = time.monotonic() - started
    total = sum(counts.values())
    print("attempts per input:   " + ", ".join("%s %d" % kv for kv in sorted(counts.items())))
    print("legit creates:        " + ", ".join("%s %d" % kv for kv in sorted(legit.items())) +
          "; %d payload values read back" % len(verbatim))
    if findings:
        print("\ninjection: %d findings in %d attempts (%.1f s)" % (len(findings), total, elapsed))
        print("FAIL")
        return 1
    print("\ninjection: %d attempts with %d payloads, canaries intact, no payload ran (%.1f s)"
          % (total, len(PAYLOADS), elapsed))
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
