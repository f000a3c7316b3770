#!/usr/bin/python3
"""Seeded random fuzzer of the moment API.

Generates thousands of hostile inputs -- include specs, filters (also as
PostgREST's JSON strings), order_by strings, bodies, batch documents, REST
methods, paths and query strings -- from the real entity, field, part,
relation and metadata names mixed with garbage (quotes, comments, unicode,
control characters, 8 KB+ texts, deep paths, 1e400, 100 000-element arrays,
10 001-instruction batches), and calls get, list, rows, list_*, create,
update, delete, batch and api with them as a role granted company A, while
company B holds rows marked SECRET-B (dated 1999-12-31, sums not multiples
of 10).  Besides the built-in entities it registers a table of its own with
many column types, a generated column, a relation to itself and a validation
trigger.  A share of the writes runs as a role granted A read-only.

Every call must end in a result or in a clean error whose SQLSTATE is one of
the contract's (section 8) or of class 22/23; the REST router must answer a
status it documents, never 500.  No result, message or warning may hold
anything of company B; reads return only A's ids; aggregates cover A's rows
only; a read-only role never writes; a batch error names one instruction; a
router error leaves no partial write behind in the still-open transaction.
Each call runs in its own transaction and is rolled back, so the data stays
the same for every input.  Afterwards the server must still be up, no
backend may have crashed (pg_postmaster_start_time, and the server log:
pg_current_logfile() or $PGHOST/log), and both companies' rows must be as
they were.

Run as the postgres OS user with PGHOST/PGPORT/PGUSER/PGDATABASE set
(scripts/test does it).  Needs python3-psycopg2.

  MOMENT_FUZZ_SEED=123 test/scripts/fuzz.py     replay a run
  MOMENT_FUZZ_SCALE=0.2 test/scripts/fuzz.py    fewer inputs (default 1.0)

Exit status 0 when nothing was found, 1 on any finding, 2 on a setup error.
"""

import collections
import decimal
import json
import os
import random
import re
import signal
import sys
import time

try:
    import psycopg2
    import psycopg2.extensions
except ImportError:
    print("fuzz.py needs psycopg2: apt-get install python3-psycopg2", file=sys.stderr)
    sys.exit(2)

SEED = int(os.environ.get("MOMENT_FUZZ_SEED") or (int(time.time() * 1000) % 1000000007))
SCALE = float(os.environ.get("MOMENT_FUZZ_SCALE") or "1.0")
TIME_CAP = float(os.environ.get("MOMENT_FUZZ_MAX_SECONDS") or "240")

# Inputs per function; the whole run takes about a minute.
PLAN = {
    "get": 3000,
    "list": 6000,
    "rows": 1800,
    "list_typed": 1800,
    "create": 3000,
    "update": 2400,
    "delete": 800,
    "batch": 2400,
    "api": 5000,
    "report": 1500,
}

ALLOWED = {"42P01", "42703", "42601", "22023", "428C9", "P0002", "42501", "54000"}
API_STATUSES = {200, 201, 400, 403, 404, 405, 409, 422}
MARKER = "SECRET"            # every text value of company B contains SECRET-B
B_DATE = "1999-12-31"        # every date of company B
A_CODE, B_CODE = "fuzz_a", "fuzz_b"

rng = random.Random(SEED)
started = time.monotonic()
ROLE = "moment_fuzz_%d" % os.getpid()
RO_ROLE = "moment_fuzz_ro_%d" % os.getpid()     # company A read-only: every write must fail

stats_calls = collections.Counter()          # function -> inputs tried
stats_kinds = collections.Counter()          # input kind -> generated
stats_states = collections.Counter()         # SQLSTATE (or "ok") -> count
stats_api = collections.Counter()            # api status -> count
findings = []


def finding(kind, what, call, extra=""):
    text = "%s: %s\n    call: %s" % (kind, what, shorten(call, 1500))
    if extra:
        text += "\n    " + shorten(extra, 1500)
    findings.append(text)
    print("FINDING " + text, flush=True)


def shorten(text, limit):
    text = str(text)
    if len(text) <= limit:
        return text
    return text[:limit] + "...(%d chars)" % len(text)


# ---------------------------------------------------------------------------
# JSON text with exact control: raw number literals (1e400, -0), duplicate
# keys, non-ASCII as is or escaped.
# ---------------------------------------------------------------------------

class Raw(str):
    """A JSON number literal written as is."""


class Obj(list):
    """A JSON object as a list of (key, value) pairs; keys may repeat."""


def dump(value):
    if isinstance(value, Raw):
        return str(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=rng.random() < 0.3)
    if isinstance(value, Obj):
        return "{" + ", ".join(dump(str(k)) + ": " + dump(v) for k, v in value) + "}"
    if isinstance(value, dict):
        return "{" + ", ".join(dump(str(k)) + ": " + dump(v) for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(dump(v) for v in value) + "]"
    raise TypeError(type(value))


# ---------------------------------------------------------------------------
# Connections and the fixture
# ---------------------------------------------------------------------------

def connect():
    conn = psycopg2.connect("")
    conn.set_client_encoding("UTF8")
    return conn


def admin_setup(admin):
    cur = admin.cursor()
    cur.execute("CREATE EXTENSION IF NOT EXISTS moment")
    cur.execute("INSERT INTO moment.companies (code, name) VALUES (%s, 'Fuzz A AS'), (%s, 'SECRET-B Fuzz AB') "
                "ON CONFLICT (code) DO NOTHING", (A_CODE, B_CODE))
    cur.execute("SELECT id FROM moment.companies WHERE code = %s", (A_CODE,))
    a = cur.fetchone()[0]
    cur.execute("SELECT id FROM moment.companies WHERE code = %s", (B_CODE,))
    b = cur.fetchone()[0]
    cur.execute("SELECT count(*) FROM moment.customers WHERE company_id IN (%s, %s)", (a, b))
    if cur.fetchone()[0] == 0:
        cur.execute(FIXTURE, {"a": a, "b": b})
    cur.execute("SELECT to_regclass('public.fuzz_things') IS NULL")
    if cur.fetchone()[0]:
        cur.execute(USER_ENTITY)
        cur.execute(USER_ENTITY_ROWS, {"a": a, "b": b})
    cur.execute("CREATE ROLE %s" % ROLE)
    cur.execute("SELECT moment.grant_company(%s, %s)", (A_CODE, ROLE))
    cur.execute("CREATE ROLE %s" % RO_ROLE)
    cur.execute("SELECT moment.grant_company(%s, %s, false)", (A_CODE, RO_ROLE))
    cur.execute("GRANT %s TO %s" % (RO_ROLE, ROLE))   # so that the session may SET LOCAL ROLE to it
    return a, b


# A: minutes multiples of 10, sums multiples of 10, dates in 2024.
# B: every text SECRET-B..., dates 1999-12-31, minutes 1437, sums 12345.67;
# "twins" of B reuse ids of A's rows (keys are (company_id, id)).
FIXTURE = """
INSERT INTO moment.user_accounts (company_id, name, email)
SELECT %(a)s, 'User ' || g, 'user' || g || '@a.example' FROM generate_series(1, 6) g;
INSERT INTO moment.customers (company_id, customer_number, name, organization_number, email, currency_code)
SELECT %(a)s, 'C' || g, 'Customer ' || g, '9' || g, 'c' || g || '@a.example', 'NOK' FROM generate_series(1, 12) g;
INSERT INTO moment.projects (company_id, customer_id, project_number, name, start_date, end_date, fixed_price)
SELECT %(a)s, (SELECT min(id) FROM moment.customers WHERE company_id = %(a)s) + g %% 12, 'P' || g,
	   'Project ' || g, DATE '2024-01-01' + g, CASE WHEN g %% 3 = 0 THEN NULL ELSE DATE '2024-06-01' + g END,
	   CASE WHEN g %% 2 = 0 THEN g * 1000 END
  FROM generate_series(1, 20) g;
INSERT INTO moment.offers (company_id, customer_id, project_id, offer_number, name, offer_state, issue_date,
						   currency_code, exchange_rate, total_sum)
SELECT %(a)s, (SELECT min(id) FROM moment.customers WHERE company_id = %(a)s) + g %% 12,
	   CASE WHEN g %% 4 = 0 THEN NULL ELSE (SELECT min(id) FROM moment.projects WHERE company_id = %(a)s) + g %% 20 END,
	   'O' || g, 'Offer ' || g, (ARRAY['draft', 'readyToSend', 'accepted', 'rejected'])[1 + g %% 4],
	   DATE '2024-02-01' + g, 'NOK', 1, g * 10
  FROM generate_series(1, 15) g;
INSERT INTO moment.time_records (company_id, project_id, user_account_id, time_record_date, minutes, description,
								 internal_note, billable, approved)
SELECT %(a)s, (SELECT min(id) FROM moment.projects WHERE company_id = %(a)s) + g %% 20,
	   (SELECT min(id) FROM moment.user_accounts WHERE company_id = %(a)s) + g %% 6,
	   DATE '2024-01-01' + g %% 200, 10 * (1 + g %% 48), CASE WHEN g %% 5 = 0 THEN NULL ELSE 'Work ' || g END,
	   'note ' || g, g %% 3 <> 0, g %% 2 = 0
  FROM generate_series(1, 300) g;

INSERT INTO moment.user_accounts (company_id, name, email)
SELECT %(b)s, 'SECRET-B user ' || g, 'SECRET-B' || g || '@b.example' FROM generate_series(1, 3) g;
INSERT INTO moment.customers (company_id, customer_number, name, organization_number, email, currency_code)
SELECT %(b)s, 'SECRET-B-C' || g, 'SECRET-B customer ' || g, 'SECRET-B-' || g, 'SECRET-B' || g || '@b.example', 'SEK'
  FROM generate_series(1, 4) g;
INSERT INTO moment.projects (company_id, customer_id, project_number, name, start_date, end_date, fixed_price)
SELECT %(b)s, (SELECT min(id) FROM moment.customers WHERE company_id = %(b)s) + g %% 4, 'SECRET-B-P' || g,
	   'SECRET-B project ' || g, DATE '1999-12-31', DATE '1999-12-31', 12345.67
  FROM generate_series(1, 4) g;
INSERT INTO moment.offers (company_id, customer_id, project_id, offer_number, name, offer_state, issue_date,
						   valid_until, currency_code, exchange_rate, total_sum)
SELECT %(b)s, (SELECT min(id) FROM moment.customers WHERE company_id = %(b)s) + g %% 4,
	   (SELECT min(id) FROM moment.projects WHERE company_id = %(b)s) + g %% 4,
	   'SECRET-B-O' || g, 'SECRET-B offer ' || g, 'draft', DATE '1999-12-31', DATE '1999-12-31', 'SEK', 1.01, 12345.67
  FROM generate_series(1, 5) g;
INSERT INTO moment.time_records (company_id, project_id, user_account_id, time_record_date, minutes, description,
								 internal_note, billable, approved)
SELECT %(b)s, (SELECT min(id) FROM moment.projects WHERE company_id = %(b)s) + g %% 4,
	   (SELECT min(id) FROM moment.user_accounts WHERE company_id = %(b)s) + g %% 3,
	   DATE '1999-12-31', 1437, 'SECRET-B work ' || g, 'SECRET-B note', true, true
  FROM generate_series(1, 40) g;

-- 0.2.0's entities: activities, tasks, memberships; records naming them; a
-- user of A whose time lock (2024-01-31) refuses writes of his early records
INSERT INTO moment.project_extensions (company_id, project_id, project_extension_number, name, project_extension_state, billable)
SELECT %(a)s, (SELECT min(id) FROM moment.projects WHERE company_id = %(a)s) + g %% 20, 'E' || g, 'Activity ' || g,
	   CASE WHEN g %% 4 = 0 THEN 'closed' ELSE 'open' END, g %% 3 <> 0
  FROM generate_series(1, 30) g;
INSERT INTO moment.tasks (company_id, project_extension_id, task_number, name, task_state)
SELECT %(a)s, e.id, 'T' || e.id, 'Task of ' || e.name, CASE WHEN e.id %% 5 = 0 THEN 'closed' ELSE 'open' END
  FROM moment.project_extensions e WHERE e.company_id = %(a)s;
INSERT INTO moment.project_memberships (company_id, project_id, user_account_id, project_membership_role_name, hourly_rate,
										project_membership_state)
SELECT %(a)s, p.id, u.id, (ARRAY['Default', 'Developer'])[1 + (p.id + u.id) %% 2], 100 * (1 + u.id %% 5),
	   CASE WHEN (p.id + u.id) %% 7 = 0 THEN 'inactive' ELSE 'active' END
  FROM moment.projects p JOIN moment.user_accounts u ON u.company_id = p.company_id
 WHERE p.company_id = %(a)s AND (p.id + u.id) %% 3 = 0;
UPDATE moment.time_records t SET project_extension_id = e.id, task_id = k.id
  FROM moment.project_extensions e JOIN moment.tasks k ON k.company_id = e.company_id AND k.project_extension_id = e.id
 WHERE t.company_id = %(a)s AND e.company_id = t.company_id AND e.project_id = t.project_id AND t.id %% 2 = 0;
UPDATE moment.time_records t SET project_membership_id = m.id
  FROM moment.project_memberships m
 WHERE t.company_id = %(a)s AND m.company_id = t.company_id AND m.project_id = t.project_id
   AND m.user_account_id = t.user_account_id AND t.id %% 3 = 0;
UPDATE moment.user_accounts SET time_lock_date = DATE '2024-01-31'
 WHERE company_id = %(a)s AND id = (SELECT max(id) FROM moment.user_accounts WHERE company_id = %(a)s);

INSERT INTO moment.project_extensions (company_id, project_id, project_extension_number, name)
SELECT %(b)s, (SELECT min(id) FROM moment.projects WHERE company_id = %(b)s) + g %% 4, 'SECRET-B-E' || g, 'SECRET-B activity ' || g
  FROM generate_series(1, 4) g;
INSERT INTO moment.tasks (company_id, project_extension_id, task_number, name)
SELECT %(b)s, e.id, 'SECRET-B-T', 'SECRET-B task' FROM moment.project_extensions e WHERE e.company_id = %(b)s;
INSERT INTO moment.project_memberships (company_id, project_id, user_account_id, project_membership_role_name, hourly_rate)
SELECT %(b)s, p.id, u.id, 'SECRET-B role', 12345.67
  FROM moment.projects p JOIN moment.user_accounts u ON u.company_id = p.company_id WHERE p.company_id = %(b)s;
UPDATE moment.time_records t SET project_extension_id = e.id
  FROM moment.project_extensions e
 WHERE t.company_id = %(b)s AND e.company_id = t.company_id AND e.project_id = t.project_id;
UPDATE moment.user_accounts SET time_lock_date = DATE '1999-12-31' WHERE company_id = %(b)s;

-- twins: B rows with the ids of A's first rows
INSERT INTO moment.user_accounts (company_id, id, name, email)
SELECT %(b)s, id, 'SECRET-B twin user', 'SECRET-B@twin' FROM moment.user_accounts WHERE company_id = %(a)s ORDER BY id LIMIT 2;
INSERT INTO moment.customers (company_id, id, customer_number, name, email)
SELECT %(b)s, id, 'SECRET-B', 'SECRET-B twin customer', 'SECRET-B@twin' FROM moment.customers WHERE company_id = %(a)s ORDER BY id LIMIT 3;
INSERT INTO moment.projects (company_id, id, customer_id, project_number, name, start_date, fixed_price)
SELECT %(b)s, p.id, (SELECT min(id) FROM moment.customers WHERE company_id = %(b)s), 'SECRET-B', 'SECRET-B twin project',
	   DATE '1999-12-31', 12345.67
  FROM moment.projects p WHERE p.company_id = %(a)s ORDER BY p.id LIMIT 3;
INSERT INTO moment.offers (company_id, id, customer_id, offer_number, name, issue_date, currency_code, total_sum)
SELECT %(b)s, o.id, (SELECT min(id) FROM moment.customers WHERE company_id = %(b)s), 'SECRET-B', 'SECRET-B twin offer',
	   DATE '1999-12-31', 'SEK', 12345.67
  FROM moment.offers o WHERE o.company_id = %(a)s ORDER BY o.id LIMIT 3;
INSERT INTO moment.time_records (company_id, id, project_id, user_account_id, time_record_date, minutes, description,
								 internal_note)
SELECT %(b)s, t.id, (SELECT min(id) FROM moment.projects WHERE company_id = %(b)s),
	   (SELECT min(id) FROM moment.user_accounts WHERE company_id = %(b)s), DATE '1999-12-31', 1437,
	   'SECRET-B twin work', 'SECRET-B'
  FROM moment.time_records t WHERE t.company_id = %(a)s ORDER BY t.id LIMIT 5;
INSERT INTO moment.project_extensions (company_id, id, project_id, name)
SELECT %(b)s, e.id, (SELECT min(id) FROM moment.projects WHERE company_id = %(b)s), 'SECRET-B twin activity'
  FROM moment.project_extensions e WHERE e.company_id = %(a)s ORDER BY e.id LIMIT 3;
INSERT INTO moment.project_memberships (company_id, id, project_id, user_account_id, project_membership_role_name)
SELECT %(b)s, m.id, (SELECT min(id) FROM moment.projects WHERE company_id = %(b)s),
	   (SELECT min(id) FROM moment.user_accounts WHERE company_id = %(b)s), 'SECRET-B twin role ' || m.id
  FROM moment.project_memberships m WHERE m.company_id = %(a)s ORDER BY m.id LIMIT 3;
"""

# A user's own table with many column types, a generated column, and a
# relation to itself (parent.parent.parent... reaches the depth limit).
USER_ENTITY = """
CREATE TYPE public.fuzz_mood AS ENUM ('calm', 'angry', 'æøå');
CREATE DOMAIN public.fuzz_code AS text CHECK (VALUE ~ '^[A-Z]{3}$');
CREATE TABLE public.fuzz_things (
	company_id bigint NOT NULL REFERENCES moment.companies (id),
	id bigint GENERATED BY DEFAULT AS IDENTITY,
	customer_id bigint,
	parent_id bigint,
	label text NOT NULL,
	tags text[],
	data jsonb,
	amount numeric(10,3) CHECK (amount >= 0),
	at timestamptz,
	span interval,
	uid uuid,
	addr inet,
	raw bytea,
	mood public.fuzz_mood,
	code public.fuzz_code,
	day date,
	"Mixed Case" text,
	total numeric GENERATED ALWAYS AS (amount * 2) STORED,
	PRIMARY KEY (company_id, id),
	FOREIGN KEY (company_id, customer_id) REFERENCES moment.customers (company_id, id),
	FOREIGN KEY (company_id, parent_id) REFERENCES public.fuzz_things (company_id, id)
);
-- a validation trigger of the kind users write: errors outside classes 22/23
CREATE FUNCTION public.fuzz_things_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.label = 'invalid' THEN
		RAISE EXCEPTION 'label may not be invalid';
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER fuzz_things_check BEFORE INSERT OR UPDATE ON public.fuzz_things
	FOR EACH ROW EXECUTE FUNCTION public.fuzz_things_check();
SELECT moment.register_entity('fuzzThings', 'public.fuzz_things');
SELECT moment.define_part('fuzzThings', 'small', ARRAY['label', 'customer.name', 'parent.label']);
SELECT moment.define_part('fuzzThings', 'nested', ARRAY['small', 'parent.small', 'parent.parent.label']);
SELECT moment.define_metadata('fuzzThings', 'stats', 'sumAmount', 'coalesce(sum(t.amount), 0)');
"""

USER_ENTITY_ROWS = """
INSERT INTO public.fuzz_things (company_id, customer_id, label, tags, data, amount, at, span, uid, addr, raw, mood,
								code, day, "Mixed Case")
SELECT %(a)s, (SELECT min(id) FROM moment.customers WHERE company_id = %(a)s) + g %% 12, 'thing ' || g,
	   ARRAY['t' || g, 'x'], jsonb_build_object('n', g, 'a', jsonb_build_array(g, 'v')), g * 10,
	   TIMESTAMPTZ '2024-01-01 00:00Z' + g * INTERVAL '1 hour', g * INTERVAL '1 minute',
	   md5(g::text)::uuid, ('10.0.0.' || g)::inet, decode(md5(g::text), 'hex'),
	   (ARRAY['calm', 'angry', 'æøå']::public.fuzz_mood[])[1 + g %% 3], 'ABC', DATE '2024-05-01' + g, 'mixed ' || g
  FROM generate_series(1, 20) g;
UPDATE public.fuzz_things t SET parent_id = (SELECT max(id) FROM public.fuzz_things p
											  WHERE p.company_id = t.company_id AND p.id < t.id)
 WHERE company_id = %(a)s;
INSERT INTO public.fuzz_things (company_id, customer_id, label, tags, data, amount, day, "Mixed Case", code)
SELECT %(b)s, (SELECT min(id) FROM moment.customers WHERE company_id = %(b)s), 'SECRET-B thing ' || g,
	   ARRAY['SECRET-B'], '{"s": "SECRET-B"}', 12345.67, DATE '1999-12-31', 'SECRET-B', 'SEC'
  FROM generate_series(1, 5) g;
INSERT INTO public.fuzz_things (company_id, id, label, data, amount, day)
SELECT %(b)s, t.id, 'SECRET-B twin thing', '{"s": "SECRET-B"}', 12345.67, DATE '1999-12-31'
  FROM public.fuzz_things t WHERE t.company_id = %(a)s ORDER BY t.id LIMIT 3;
UPDATE public.fuzz_things t SET parent_id = t.id WHERE company_id = %(b)s AND label = 'SECRET-B twin thing';
"""

TABLE_CHECKSUM = ("SELECT c.code, count(t.*), md5(coalesce(string_agg(t::text, '|' ORDER BY t.id), '')) "
                  "FROM moment.companies c LEFT JOIN {table} t ON t.company_id = c.id "
                  "WHERE c.code IN ('fuzz_a', 'fuzz_b') GROUP BY c.code ORDER BY c.code")


def checksums(admin):
    cur = admin.cursor()
    result = {}
    cur.execute("SELECT e.name, e.table_name::text FROM moment.entities e ORDER BY e.name")
    for entity, table in cur.fetchall():
        cur.execute(TABLE_CHECKSUM.format(table=table))
        result[entity] = cur.fetchall()
    return result


# ---------------------------------------------------------------------------
# What the registry offers (read from moment.describe, so user entities count)
# ---------------------------------------------------------------------------

class Entity:
    pass


def load_entities(admin, a):
    cur = admin.cursor()
    cur.execute("SELECT e.name, e.table_name::text FROM moment.entities e ORDER BY e.name")
    entities = {}
    for name, table in cur.fetchall():
        cur.execute("SELECT moment.describe(%s)", (name,))
        d = cur.fetchone()[0]
        e = Entity()
        e.name = name
        e.table = table
        e.fields = [f["name"] for f in d["fields"]]
        e.types = {f["name"]: f["type"] for f in d["fields"]}
        e.writable = [f["name"] for f in d["fields"] if f["writable"]]
        e.relations = {r: v["entity"] for r, v in d["relations"].items()}
        e.fk = {v["field"]: v["entity"] for r, v in d["relations"].items()}
        e.parts = list(d["parts"].keys())
        e.metadata = list(d["metadata"].keys())
        e.date_field = d.get("dateField")
        cur.execute("SELECT id FROM %s WHERE company_id = %%s ORDER BY id" % table, (a,))
        e.a_ids = [r[0] for r in cur.fetchall()]
        cur.execute("SELECT id FROM %s WHERE company_id <> %%s ORDER BY id" % table, (a,))
        e.b_ids = [r[0] for r in cur.fetchall()]
        e.only_b_ids = sorted(set(e.b_ids) - set(e.a_ids))
        entities[name] = e
    return entities


# entity -> its typed listing moment.list_<table> (built-in ones, and the
# one register_entity made for the fuzz table); filled in by load_typed
TYPED = {}


def load_typed(admin):
    cur = admin.cursor()
    cur.execute("SELECT e.name, p.proname::text FROM moment.entities e "
                "JOIN pg_class c ON c.oid = e.table_name "
                "JOIN pg_proc p ON p.pronamespace = 'moment'::regnamespace AND p.proname = 'list_' || c.relname "
                "AND p.prorettype = c.reltype")
    TYPED.update(dict(cur.fetchall()))

# ---------------------------------------------------------------------------
# Generators
# ---------------------------------------------------------------------------

GARBAGE_TOKENS = [
    "'", '"', "''", '""', ";", "--", "/*", "*/", "*", "t.*", "(", ")", "()", "$1", "$2", "%s", "%", "\\",
    "\\\\", "`", "[", "]", "{", "}", "<", ">", "=", "!", "?", "#", "&", "|", "^", "~", "@",
    "id", "companyId", "company_id", "ID", "Id", "name;", "name--", "name/*", "nAmE", "NAME", "base ",
    "metadata", "metadata.", ".metadata", "metadata.count.count", "metadata.*", "metadata.nope",
    "all", "base", "BASE", "Base", "select", "SELECT 1", "DROP TABLE x", "pg_sleep(10)", "null", "NULL",
    "true", "1", "0", "-1", "1e400", "_", "__", "_name", "name_", "a_b", "é", "æøå", "名前", "\u00a0name",
    "name\u200b", "😀", "\u202e", "Ω", "ﬁ", "ß", "\t", "\n", "\r", "\x0b", "\x0c", "\x01", "\x1f", "\x7f",
    " ", "  ", ".", "..", "...", "+", "++", ",", ",,", "+,", " + ", " , ",
]

SQL_SNIPPETS = [
    "'; DROP TABLE moment.customers; --", '") OR 1=1 --', "name) FROM moment.customers; --",
    "1; SELECT pg_sleep(5)", "' OR ''='", "\"name\"", "\"name", "name\"", "E'\\\\x41'", "$$", "$tag$",
    "U&\"\\0061\"", "name::text", "name||name", "lower(name)", "(SELECT 1)", "customer.name); --",
]

UNICODE_POOL = "aZ09_-.:+, é漢字😀\u0301\u200d\u2028\u2029\ufeff\uffff\u00ad\t\n\r\x01\x02\x1b\x7f'\";/*\\%$&#?="


def rand_char():
    r = rng.random()
    if r < 0.6:
        return rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.+, ")
    if r < 0.9:
        return rng.choice(UNICODE_POOL)
    while True:
        c = rng.randint(1, 0x10FFFF)
        if not (0xD800 <= c <= 0xDFFF):
            return chr(c)


def rand_text(max_len=20):
    n = rng.choice([0, 1, 2, 3, 5, 8, 13, max_len])
    return "".join(rand_char() for _ in range(n))


def long_text(n=None):
    if n is None:
        n = rng.choice([255, 256, 1000, 8191, 8192, 8193, 9000, 20000, 70000])
    unit = rng.choice(["a", "name+", "é", "😀", "customer.", "'", "x" * 63 + "."])
    text = (unit * (n // len(unit) + 1))[:n]
    return text


def garbage():
    r = rng.random()
    if r < 0.45:
        return rng.choice(GARBAGE_TOKENS)
    if r < 0.6:
        return rng.choice(SQL_SNIPPETS)
    if r < 0.95:
        return rand_text()
    return long_text(rng.choice([300, 1000, 9000]))


def deep_path(n=None):
    n = n or rng.choice([4, 5, 8, 30, 200, 2000])
    return ".".join(rng.choice(["a", "b", "project", "customer", "name", "x" * 10]) for _ in range(n))


def rand_path(entities, e, max_depth=4, leaf="field", hostile=True):
    """A relation path from e, real names mostly, sometimes a wrong turn."""
    names = []
    if not hostile:
        max_depth = min(max_depth, 3)
    cur = e
    for _ in range(rng.randint(0, max_depth)):
        if cur is None or not cur.relations or rng.random() < 0.25:
            break
        rel = rng.choice(list(cur.relations))
        names.append(rel)
        cur = entities.get(cur.relations[rel])
    if cur is None or (hostile and rng.random() < 0.1):
        names.append(garbage() if rng.random() < 0.5 else rng.choice(["name", "id", "base"]))
    elif leaf == "field":
        names.append(rng.choice(cur.fields) if rng.random() < 0.92 else rng.choice(cur.parts + ["metadata"]))
    else:
        names.append(rng.choice(cur.fields + cur.parts) if not hostile or rng.random() < 0.95 else garbage())
    return ".".join(names)


def gen_spec(entities, e):
    stats_kinds["include spec"] += 1
    r = rng.random()
    if r < 0.04:
        return None
    if r < 0.07:
        return rng.choice(["", " ", "\t\n", "+", ",", "++", " + ", ".", "+base", "base+", "base,,name"])
    if r < 0.11:
        return long_text()
    if r < 0.14:
        return deep_path()
    if r < 0.17:
        # right at the size limit: a valid spec padded with spaces
        n = rng.choice([8191, 8192, 8193])
        return ("base" + " " * n)[:n]
    items = []
    hostile = rng.random() < 0.4
    for _ in range(rng.randint(1, 6)):
        x = rng.random() if hostile else rng.random() * 0.75
        if x < 0.3:
            items.append(rng.choice(e.fields))
        elif x < 0.45:
            items.append(rng.choice(e.parts))
        elif x < 0.65:
            items.append(rand_path(entities, e, leaf="item", hostile=hostile))
        elif x < 0.75:
            items.append("metadata." + (rng.choice(e.metadata) if not hostile or rng.random() < 0.85 else garbage()))
        else:
            items.append(garbage())
    seps = ["+", ",", " + ", " ,", "+ ", "\t+\n", "++", ",+"]
    spec = items[0]
    for item in items[1:]:
        spec += (rng.choice(seps) if not hostile or rng.random() < 0.9 else rng.choice([";", " ", "|", "&"])) + item
    return spec


NUMBERS = [Raw(x) for x in ["0", "-0", "-0.0", "1", "-1", "1.5", "1e400", "-1e400", "1E-400", "1e308",
                            "123456789012345678901234567890", "-9223372036854775808",
                            "9223372036854775807", "9223372036854775808", "2147483647", "2147483648",
                            "1440", "1441", "0.000000000000000000001", "1.0", "3.14159", "100000000000000.005"]]


def rand_scalar(e=None, field=None):
    r = rng.random()
    if field is not None and e is not None and r < 0.5:
        return typed_value(e, field)
    r = rng.random()
    if r < 0.15:
        return None
    if r < 0.25:
        return rng.choice([True, False])
    if r < 0.5:
        return rng.choice(NUMBERS) if rng.random() < 0.5 else rng.randint(-5, 10 ** rng.randint(1, 12))
    if r < 0.55:
        return long_text()
    if r < 0.6:
        return "\\u0000"  # a backslash-u text, not a NUL
    return rng.choice([rand_text(), garbage(), "2024-01-05", "2024-02-30", "yesterday", "infinity",
                       "epoch", "NaN", "-infinity", "00:00", "true", "t", "1", "NOK", "EURO", "%", "_", "%a%"])


def typed_value(e, field):
    t = e.types.get(field, "text")
    if field in e.fk and rng.random() < 0.9:
        target = ENTITIES.get(e.fk[field])
        if target is not None:
            pool = target.a_ids if rng.random() < 0.7 else (target.only_b_ids or target.a_ids)
            if pool:
                v = rng.choice(pool)
                return str(v) if rng.random() < 0.2 else v
    if t in ("bigint", "integer", "smallint"):
        return rng.choice([0, 1, 5, 60, 480, 1440, 1441, -1, rng.randint(1, 2 ** 31), Raw("1e3"), "42", "4.0"])
    if t.startswith("numeric"):
        return rng.choice([0, 10, Raw("1234.567"), Raw("99999999999999.99"), Raw("1e20"), "12.5", -3])
    if t == "date":
        return rng.choice(["2024-01-05", "2024-02-29", "2023-02-29", "0001-01-01", "5874897-12-31", "20240105",
                           "January 5, 2024", "2024-13-01", "infinity"])
    if t == "boolean":
        return rng.choice([True, False, "yes", "no", "on", "1", "t", 0])
    if t.startswith("character"):
        return rng.choice(["NOK", "EUR", "SEK", "US", "EURO", "æøå", ""])
    if t.endswith("[]"):
        return rng.choice(["{a,b}", "{}", "{\"x,y\",NULL}", ["a", "b"], "{{a},{b}}", "a", "{a"])
    if t in ("jsonb", "json"):
        return nested(rng.choice([0, 1, 2, 3, 40]))
    if t == "interval":
        return rng.choice(["1 hour", "P1DT2H", "-1 day", "1 fortnight", "178000000 years", 5])
    if t == "uuid":
        return rng.choice(["c4ca4238-a0b9-3382-8dcc-509a6f75849b", "c4ca4238a0b93382", "{c4ca4238-a0b9-3382-8dcc-509a6f75849b}"])
    if t == "inet":
        return rng.choice(["10.0.0.1", "::1", "10.0.0.0/33", "999.1.1.1", "fe80::1%eth0"])
    if t == "bytea":
        return rng.choice(["\\x00ff", "\\xzz", "abc", "\\"])
    if t.endswith("fuzz_mood"):
        return rng.choice(["calm", "angry", "æøå", "happy", ""])
    if t.endswith("fuzz_code"):
        return rng.choice(["ABC", "abc", "ABCD", None])
    if t.startswith("timestamp"):
        return rng.choice(["2024-01-05T10:00:00Z", "now", "2024-01-05 25:00", "infinity", "allballs"])
    if field == "label" and rng.random() < 0.3:
        return "invalid"
    if field.endswith("State") or field == "priceModel":
        return rng.choice(["active", "potential", "blocked", "inactive", "notStarted", "inProgress", "finished",
                           "archived", "hourlyRate", "fixedPrice", "subscription", "nonBillable", "draft",
                           "readyToSend", "accepted", "rejected", "angry"])
    return rng.choice([rand_text(), "Fuzz " + rand_text(8), long_text(rng.choice([100, 9000]))])


STATES = {"customerState": "active", "projectState": "inProgress", "priceModel": "hourlyRate",
          "offerState": "draft"}


def valid_value(e, field):
    """A value the column accepts (foreign keys point at company A's rows)."""
    t = e.types.get(field, "text")
    if field in e.fk:
        target = ENTITIES.get(e.fk[field])
        if target is not None and target.a_ids:
            return rng.choice(target.a_ids)
    if field in STATES:
        return STATES[field]
    if field == "label":
        return "invalid" if rng.random() < 0.3 else "thing"
    if field == "minutes":
        return rng.choice([0, 60, 1440])
    if t in ("bigint", "integer", "smallint"):
        return rng.randint(0, 1000)
    if t.startswith("numeric"):
        return Raw("10.5")
    if t == "date":
        return "2024-01-05"
    if t == "boolean":
        return rng.choice([True, False])
    if t.startswith("character"):
        return "NOK"
    if t.startswith("timestamp"):
        return "2024-01-05T10:00:00Z"
    if t.endswith("[]"):
        return "{a,b}"
    if t in ("jsonb", "json"):
        return nested(2)
    if t == "interval":
        return "1 hour"
    if t == "uuid":
        return "c4ca4238-a0b9-3382-8dcc-509a6f75849b"
    if t == "inet":
        return "10.0.0.1"
    if t == "bytea":
        return "\\x00ff"
    if t.endswith("fuzz_mood"):
        return "calm"
    if t.endswith("fuzz_code"):
        return "ABC"
    return "Fuzz " + rand_text(6)


def nested(depth, width=3):
    """Nested arrays and objects; deep ones are chains, so size stays small."""
    if depth <= 0:
        return rand_scalar()
    n = rng.randint(0, width) if depth <= 3 else 1
    if rng.random() < 0.5:
        return [nested(depth - 1) for _ in range(n)]
    return Obj((rand_text(5), nested(depth - 1)) for _ in range(n))


OPERATORS = ["eq", "neq", "lt", "lte", "gt", "gte", "in", "like", "ilike", "isNull"]
BAD_OPERATORS = ["EQ", "Eq", "ne", "regex", "~", "=", "", " eq", "in ", "between", "contains", "isnull", "not",
                 "or", "and", "$eq", "eq;", "like'--"]


def filter_value(e, field, hostile=True):
    r = rng.random()
    if r < 0.4:
        return rand_scalar(e, field) if hostile else typed_value(e, field) if field else rand_scalar()
    if r < 0.55:
        n = rng.choice([0, 1, 2, 5, 50])
        return [rand_scalar(e, field) if rng.random() < 0.9 else nested(2) for _ in range(n)]
    if r < 0.58:
        return nested(rng.choice([2, 5, 30]))
    ops = Obj()
    for _ in range(rng.randint(0, 4)):
        op = rng.choice(OPERATORS) if not hostile or rng.random() < 0.8 else rng.choice(BAD_OPERATORS)
        if op == "in":
            v = [rand_scalar(e, field) for _ in range(rng.choice([0, 1, 3, 20]))] if rng.random() < 0.85 \
                else rand_scalar(e, field)
        elif op == "isNull":
            v = rng.choice([True, False]) if rng.random() < 0.8 else rand_scalar()
        elif op in ("like", "ilike"):
            v = rng.choice(["%", "_", "%a%", "Customer%", "\\", "%\\%", "[a-z]", rand_text(), 5, None])
        else:
            v = rand_scalar(e, field) if rng.random() < 0.9 else nested(2)
        ops.append((op, v))
    return ops


def gen_filter(entities, e, allow_huge=True):
    stats_kinds["filter"] += 1
    r = rng.random()
    if r < 0.03:
        return None
    if r < 0.07:
        return rng.choice(["[]", "[1, 2]", "\"x\"", "1", "null", "true", "{}", "[{}]", "{\"a\": {}}"])
    if allow_huge and r < 0.075:
        stats_kinds["huge filter array"] += 1
        field = "id" if rng.random() < 0.5 else rng.choice(e.fields)
        n = rng.choice([10000, 100000])
        values = ",".join(str(i) for i in range(n)) if field == "id" or rng.random() < 0.5 \
            else ",".join('"v%d"' % i for i in range(n))
        op = rng.choice(["in", None])
        return '{"%s": %s}' % (field, ('{"in": [%s]}' % values) if op else "[%s]" % values)
    if r < 0.12:
        # PostgREST's GET passes the filter as a JSON string holding the document
        inner = gen_filter(entities, e, allow_huge=False) or "{"
        inner = rng.choice([inner, inner, " \n" + inner, inner[:max(1, len(inner) // 2)], "{" + rand_text(), json.dumps(inner)])
        return json.dumps(inner, ensure_ascii=rng.random() < 0.5)
    obj = Obj()
    hostile = rng.random() < 0.4
    for _ in range(rng.randint(0, 5)):
        x = rng.random() if hostile else rng.random() * 0.75
        if x < 0.5:
            key = rng.choice(e.fields)
        elif x < 0.75:
            key = rand_path(entities, e, hostile=hostile)
        elif x < 0.8:
            key = deep_path(rng.choice([4, 5, 50]))
        else:
            key = garbage()
        field = key if key in e.fields else None
        obj.append((key, filter_value(e, field, hostile)))
    return dump(obj)


def gen_order(entities, e):
    stats_kinds["order_by"] += 1
    r = rng.random()
    if r < 0.1:
        return None
    if r < 0.14:
        return rng.choice(["", " ", ",", "id,", ",id", "id..desc", "id.desc.desc", "id.asc.desc", ".", "id desc",
                           "id.DESC", "id.nullsfirst.desc", "id.desc.nullsfirst", "id.nulls_first"])
    if r < 0.17:
        return long_text()
    items = []
    hostile = rng.random() < 0.4
    for _ in range(rng.randint(1, 5)):
        x = rng.random() if hostile else rng.random() * 0.75
        if x < 0.5:
            item = rng.choice(e.fields)
        elif x < 0.75:
            item = rand_path(entities, e, hostile=hostile)
        else:
            item = garbage()
        for _ in range(rng.choice([0, 0, 1, 1, 2, 3] if hostile else [0, 1, 1, 2])):
            item += "." + (rng.choice(["asc", "desc", "nullsfirst", "nullslast", "ASC", "x", ""]) if hostile
                           else rng.choice(["asc", "desc", "nullsfirst", "nullslast"]))
        items.append(item)
    return rng.choice([",", ", ", " ,"]).join(items)


def gen_body(entities, e, for_update=False):
    stats_kinds["body"] += 1
    r = rng.random()
    if r < 0.05:
        return rng.choice(["[]", "[{\"name\": \"x\"}]", "\"x\"", "1", "null", "true", "1e400"])
    if r < 0.07:
        return None
    obj = Obj()
    if rng.random() < 0.2:
        # valid bodies: every write path gets to run its statement
        for f in e.writable:
            if (not for_update and rng.random() < 0.8) or rng.random() < 0.3:
                obj.append((f, valid_value(e, f)))
        return dump(obj)
    if not for_update and rng.random() < 0.5:
        # mostly-valid bodies reach the insert and the projection
        for f in e.writable:
            if rng.random() < 0.75:
                obj.append((f, typed_value(e, f)))
    for _ in range(rng.randint(0, 4)):
        x = rng.random()
        if x < 0.6:
            f = rng.choice(e.writable or e.fields)
            obj.append((f, typed_value(e, f) if rng.random() < 0.7 else rand_scalar()))
        elif x < 0.7:
            obj.append((rng.choice(["id", "companyId", "company_id", "createdAt", "updatedAt"]), rand_scalar()))
        elif x < 0.8:
            obj.append((rand_path(entities, e), rand_scalar()))
        elif x < 0.85:
            obj.append((rng.choice(e.fields), nested(rng.choice([1, 3, 20]))))
        else:
            obj.append((garbage(), rand_scalar()))
    return dump(obj)


def rand_id(e):
    r = rng.random()
    if r < 0.5 and e.a_ids:
        return rng.choice(e.a_ids)
    if r < 0.7 and e.b_ids:
        return rng.choice(e.b_ids)
    return rng.choice([0, -1, 1, 2 ** 63 - 1, -2 ** 63, 2 ** 31, rng.randint(1, 10 ** 6), None])


def json_id():
    return rng.choice([1, Raw("1.5"), Raw("1e400"), Raw("-0"), "abc", "", " 1", "1 ", "0x10", "+1", "1_000",
                       "9223372036854775808", "-9223372036854775809", True, None, [1], Obj([("id", 1)]),
                       Raw("9223372036854775807"), Raw("1e3"), "١٢٣"])


def gen_batch(entities, e):
    stats_kinds["batch document"] += 1
    r = rng.random()
    if r < 0.05:
        return rng.choice(["[]", "\"create\"", "1", "null", "{\"create\": {}}", "{\"update\": []}",
                           "{\"delete\": \"1\"}", "{\"delete\": {}}", "{\"create\": [1, 2]}",
                           "{\"create\": [[]]}", "{\"update\": {\"1\": []}}", "{\"update\": {\"\": {}}}",
                           "{\"Create\": []}", "{\"create\": [], \"create\": [{}]}", "{}"])
    if r < 0.06:
        return None
    if r < 0.068:
        stats_kinds["oversize batch"] += 1
        n = rng.choice([10001, 10002, 20000])
        kind = rng.choice(["create", "delete", "mixed"])
        if kind == "create":
            return '{"create": [%s]}' % ",".join(['{"name": "x"}'] * n)
        if kind == "delete":
            return '{"delete": [%s]}' % ",".join(str(i) for i in range(1, n + 1))
        return '{"create": [%s], "delete": [%s]}' % (",".join(['{}'] * (n // 2)),
                                                     ",".join(str(i) for i in range(1, n - n // 2 + 1)))
    obj = Obj()
    keys = ["create", "update", "delete"]
    rng.shuffle(keys)
    for key in keys:
        if rng.random() < 0.5:
            continue
        if key == "create" and rng.random() < 0.4:
            # creates of one shape go as one multi-row INSERT
            fields = [f for f in e.writable if rng.random() < 0.8]
            creates = [Obj((f, valid_value(e, f)) for f in fields) for _ in range(rng.choice([2, 3, 10, 200]))]
            obj.append(("create", creates))
        elif key == "create":
            obj.append(("create", [Raw(gen_body(entities, e) or "null") for _ in range(rng.choice([0, 1, 2, 3, 10, 50]))]))
        elif key == "update":
            upd = Obj()
            for _ in range(rng.choice([0, 1, 2, 5])):
                i = rand_id(e)
                k = str(i) if rng.random() < 0.85 else str(dump(json_id())).strip('"')
                upd.append((k, Raw(gen_body(entities, e, True) or "null")))
            obj.append(("update", upd))
        else:
            ids = []
            for _ in range(rng.choice([0, 1, 2, 5])):
                ids.append(rand_id(e) if rng.random() < 0.8 else json_id())
            obj.append(("delete", ids))
    if rng.random() < 0.1:
        obj.append((garbage(), rng.choice([[], Obj(), 1])))
    return dump(obj)


GROUP_ITEMS = ["project", "projectExtension", "userAccount", "customer", "day", "week", "month"]


def gen_group_by():
    stats_kinds["group_by"] += 1
    r = rng.random()
    if r < 0.1:
        return None
    if r < 0.25:
        return rng.choice(["", " ", ",", "project,", "day,week", "month,month", "Project", "project;", "task",
                           "project, userAccount", "user_account", garbage(), long_text()])
    items = rng.sample(GROUP_ITEMS, rng.randint(1, 4))
    return rng.choice([",", ", ", " ,"]).join(items)


def gen_date():
    return rng.choice(["2024-01-01", "2024-03-31", "2024-12-31", "2023-12-31", None, "2024-02-30", "03/01/2024",
                       "infinity", "-infinity", "epoch", "0001-01-01", "294276-12-31", "x", ""])


def report_check(rows, desc, cur):
    names = [c.name for c in cur.description]
    for row in rows:
        record = dict(zip(names, row))
        check_text(" ".join(str(v) for v in row), desc, "a report row")
        for key in ("minutes", "billable_minutes", "approved_minutes"):
            value = record.get(key)
            if value is not None and value % 10 != 0:
                finding("leak", "report %s = %s includes rows of B" % (key, value), desc, str(record))
                return


METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def pct(text):
    out = []
    for ch in text:
        if ch.isalnum() or ch in "-_.~" or rng.random() < 0.3:
            out.append(ch)
        else:
            out.extend("%%%02X" % b for b in ch.encode("utf-8"))
    return "".join(out)


def gen_api_clean(entities, e):
    """A well-formed request: the right method for the path, sensible queries."""
    prefix = rng.choice(["", "/api/1.0/companies/" + A_CODE, "/api/1.0/companies/" + A_CODE,
                         "/api/1.0/companies/" + B_CODE])
    kind = rng.choice(["list", "list", "list", "get", "create", "update", "delete", "batch", "report"])
    if kind == "report":
        path = rng.choice(["/timeRecords/getReport", "/projects/projectRegisteredHoursReport"])
        q = []
        for key in ("fromDate", "toDate"):
            if rng.random() < 0.9:
                q.append("%s=%s" % (key, pct(str(gen_date() or ""))))
        if rng.random() < 0.6:
            q.append("groupBy=" + pct(gen_group_by() or ""))
        if rng.random() < 0.4:
            f = rng.choice(ENTITIES["timeRecords"].fields)
            q.append("%s=%s" % (pct(f), pct(dump(typed_value(ENTITIES["timeRecords"], f)).strip('"'))))
        if rng.random() < 0.2:
            q.append(rng.choice(["noLimit=true", "page=0", "size=5", "sort=minutes"]))
        return "GET", prefix + path + "?" + "&".join(q), None
    include = ""
    if kind != "delete" and rng.random() < 0.6:
        include = "/include/" + pct(gen_spec(entities, e) or "base").replace("/", "%2F")
    body = None
    query = ""
    if kind == "list":
        method, path = "GET", "/" + e.name
        q = []
        for _ in range(rng.randint(0, 4)):
            k = rng.choice(["noLimit", "page", "size", "sort", "fromDate", "toDate", "field", "field"])
            if k == "noLimit":
                q.append("noLimit=" + rng.choice(["true", "false", ""]))
            elif k in ("page", "size"):
                q.append("%s=%d" % (k, rng.choice([0, 1, 2, 5, 100, 30000, 30001, -1])))
            elif k == "sort":
                q.append("sort=" + pct(rng.choice(e.fields) + rng.choice(["", ",desc", ",asc"])))
            elif k in ("fromDate", "toDate"):
                q.append("%s=%s" % (k, rng.choice(["2024-01-01", "2024-03-01", "2024-13-01", "x"])))
            else:
                f = rng.choice(e.fields)
                v = typed_value(e, f)
                q.append("%s=%s" % (pct(f), pct(dump(v).strip('"'))))
                if rng.random() < 0.3:
                    # IN: the same field again, or several values separated by commas
                    if rng.random() < 0.5:
                        q.append("%s=%s" % (pct(f), pct(dump(typed_value(e, f)).strip('"'))))
                    else:
                        q[-1] += "," + ",".join(pct(dump(typed_value(e, f)).strip('"'))
                                                for _ in range(rng.choice([1, 2, 5])))
        if rng.random() < 0.15:
            q.append("ids=" + ",".join(str(rand_id(e)) for _ in range(rng.choice([1, 2, 3, 30]))))
        if q:
            query = "?" + "&".join(q)
    elif kind == "get":
        method, path = "GET", "/%s/%s" % (e.name, rand_id(e))
    elif kind == "create":
        method, path, body = "POST", "/" + e.name, gen_body(entities, e)
    elif kind == "update":
        method, path, body = rng.choice(["PUT", "PATCH"]), "/%s/%s" % (e.name, rand_id(e)), gen_body(entities, e, True)
    elif kind == "delete":
        method, path = "DELETE", "/%s/%s" % (e.name, rand_id(e))
    else:
        method, path, body = "POST", "/%s/batch" % e.name, gen_batch(entities, e)
    return method, prefix + path + include + query, body


def gen_api(entities, e):
    stats_kinds["api path"] += 1
    if rng.random() < 0.5:
        return gen_api_clean(entities, e)
    method = rng.choice(METHODS) if rng.random() < 0.9 else rng.choice(["get", "Post", "HEAD", "OPTIONS", "", None,
                                                                         "GET ", "TRACE", garbage()])
    parts = []
    r = rng.random()
    if r < 0.4:
        parts += ["api", "1.0", "companies", A_CODE]
    elif r < 0.5:
        parts += ["api", "1.0", "companies", B_CODE]
    elif r < 0.55:
        parts += ["api", rng.choice(["1.0", "2.0", "", "1.0;"]), rng.choice(["companies", "company", ""]),
                  rng.choice([A_CODE, B_CODE, garbage(), ""])]
    parts.append(e.name if rng.random() < 0.85 else garbage())
    x = rng.random()
    if x < 0.35:
        i = rand_id(e)
        parts.append(str(i) if i is not None else rng.choice(["", "null", "1.5", "-0", "0x1", "99999999999999999999"]))
    elif x < 0.5:
        parts.append("batch")
    if rng.random() < 0.4:
        parts.append("include")
        if rng.random() < 0.95:
            parts.append(gen_spec(entities, e) or "")
    if rng.random() < 0.05:
        parts.append(garbage())
    path = "/".join(pct(p) if rng.random() < 0.2 else p.replace("/", "%2F") for p in parts)
    path = rng.choice(["/", "/", "/", "", "//"]) + path
    if rng.random() < 0.45:
        q = []
        for _ in range(rng.randint(0, 5)):
            k = rng.choice(["noLimit", "page", "size", "sort", "fromDate", "toDate"] + e.fields[:6] + [garbage(), ""])
            v = rng.choice(["true", "false", "", "0", "-1", "2147483648", "1", "10", "x", "2024-01-01",
                            "name,desc", "-name", "desc", ",", rand_text(), "%", "%zz", "%00", "%41", "a+b"])
            q.append(pct(k) + ("=" + (pct(v) if rng.random() < 0.5 else v) if rng.random() < 0.9 else ""))
        path += "?" + "&".join(q)
        if rng.random() < 0.1:
            path += "#frag"
    if rng.random() < 0.02:
        path = rng.choice([None, "", "?", "#", "/api", "/api/1.0/companies", long_text(10000), "/%", "/%2"])
    body = None
    if method in ("POST", "PUT", "PATCH") or rng.random() < 0.1:
        body = gen_batch(entities, e) if "batch" in parts else gen_body(entities, e)
    return method, path, body


# ---------------------------------------------------------------------------
# Oracles
# ---------------------------------------------------------------------------

def check_text(text, call, what):
    if text and (MARKER in text or B_DATE in text):
        finding("leak", "%s holds company B's data" % what, call, text)
        return False
    return True


def walk_numbers(value, key=None):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from walk_numbers(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from walk_numbers(v, key)
    elif isinstance(value, (int, float, decimal.Decimal)) and not isinstance(value, bool):
        yield key, value


def check_read_object(e, obj, call):
    """A read object: its id is one of A's, its metadata aggregates A's rows only."""
    if not isinstance(obj, dict):
        finding("shape", "object expected", call, json.dumps(obj)[:500])
        return
    if "id" not in obj:
        finding("contract", "the id is always returned", call, json.dumps(obj)[:500])
    elif obj["id"] not in e.a_id_set:
        finding("leak", "id %s is not one of company A's %s" % (obj["id"], e.name), call, json.dumps(obj)[:500])
    meta = obj.get("metadata")
    if meta is not None:
        check_metadata(e, meta, call)


def check_metadata(e, meta, call):
    if not isinstance(meta, dict):
        return
    for key, value in meta.items():
        if not isinstance(value, (int, float, decimal.Decimal)) or isinstance(value, bool):
            continue
        if key == "count" and value > len(e.a_ids):
            finding("leak", "metadata count %s > %d rows of A" % (value, len(e.a_ids)), call, json.dumps(meta))
        if key in ("totalMinutes", "billableMinutes", "totalSum", "totalSumInCompanyCurrency", "sumAmount") and \
                decimal.Decimal(str(value)) % 10 != 0:
            finding("leak", "metadata %s = %s includes rows of B" % (key, value), call, json.dumps(meta))


BATCH_RANGE = re.compile(r"(create|update|delete)\[\d+\.\.\d+\]")


def check_sqlstate(state, call, err):
    if BATCH_RANGE.search(err):
        finding("contract", "a batch error names a range of instructions, not the failing one", call, err)
    if state == "P0001" and "label may not be invalid" in err:
        return      # the fixture's own validation trigger
    if state in ALLOWED or state[:2] in ("22", "23"):
        return
    finding("sqlstate", "unexpected SQLSTATE %s" % state, call, err)


# ---------------------------------------------------------------------------
# Running calls
# ---------------------------------------------------------------------------

class Session:
    def __init__(self):
        self.conn = None
        self.reconnect()

    def reconnect(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:
                pass
        self.conn = connect()
        cur = self.conn.cursor()
        cur.execute("SET statement_timeout = '20s'")
        # keep the server log small: no copy of every failing (huge) statement
        cur.execute("SET log_min_error_statement = panic")
        cur.execute("SET ROLE %s" % ROLE)
        cur.execute("SET moment.company = %s", (A_CODE,))
        self.conn.commit()

    def call(self, function, sql, params, check, read_only=False):
        """Runs one call in its own transaction, rolled back afterwards.
        read_only: as a role granted company A read-only, for which every
        write must fail."""
        stats_calls[function + (" (read-only role)" if read_only else "")] += 1
        desc = "%s%s %s" % (function, " as read-only role" if read_only else "", shorten(repr(params), 3000))
        conn = self.conn
        cur = conn.cursor()
        del conn.notices[:]
        try:
            if read_only:
                cur.execute("SET LOCAL ROLE %s" % RO_ROLE)
            if rng.random() < 0.1:
                cur.execute("SET LOCAL moment.limit_exceeded = error")
                desc += " (limit_exceeded = error)"
            if rng.random() < 0.05:
                cur.execute("SET LOCAL moment.default_limit = %d" % rng.choice([1, 2, 7]))
                desc += " (small default_limit)"
            cur.execute(sql, params)
            rows = cur.fetchall()
            stats_states["ok"] += 1
            if read_only and function in ("create", "update", "delete", "batch"):
                finding("tenancy", "a write succeeded for a read-only role", desc, shorten(rows, 500))
            if read_only and function == "api" and rows and rows[0][0] in (200, 201) and \
                    str(params[0]).upper().strip() in ("POST", "PUT", "PATCH", "DELETE"):
                finding("tenancy", "api answered %s to a write of a read-only role" % rows[0][0], desc,
                        shorten(rows, 500))
            for notice in conn.notices:
                check_text(notice, desc, "a notice")
            check(rows, desc, cur)
            if function == "api":
                cur.execute("SELECT current_user::text, moment_internal.current_company_id()")
                user, _ = cur.fetchone()
                want = RO_ROLE if read_only else ROLE
                if user != want:
                    finding("privilege", "after api the current user is %s, not %s" % (user, want), desc)
        except psycopg2.Error as err:
            state = err.pgcode
            if state is None or conn.closed:
                stats_states["connection lost"] += 1
                finding("crash", "the connection was lost (backend crash?): %s" % str(err).strip(), desc)
                self.reconnect()
                return
            stats_states[state] += 1
            message = "%s | %s | %s" % (err.diag.message_primary, err.diag.message_detail, err.diag.message_hint)
            check_text(message, desc, "an error message")
            for notice in conn.notices:
                check_text(notice, desc, "a notice")
            check_sqlstate(state, desc, message)
        except UnicodeDecodeError as err:
            stats_states["invalid UTF-8"] += 1
            finding("encoding", "the server sent text that is not valid UTF-8: %s" % err, desc)
        finally:
            try:
                conn.rollback()
            except psycopg2.Error:
                finding("crash", "rollback failed", desc)
                self.reconnect()


def typed_check(e):
    def check(rows, desc, cur):
        names = [c.name for c in cur.description]
        ci = names.index("company_id")
        ii = names.index("id")
        for row in rows:
            if row[ci] != A_ID or row[ii] not in e.a_id_set:
                finding("leak", "typed row of company %s id %s" % (row[ci], row[ii]), desc)
                return
            check_text(" ".join(str(v) for v in row), desc, "a typed row")
    return check


def json_result(kind, e):
    def check(rows, desc, cur):
        for (value,) in rows:
            text = json.dumps(value, ensure_ascii=False) if value is not None else None
            if text is None:
                continue
            if not check_text(text, desc, "a result"):
                return
            if kind == "get" or kind == "rows":
                check_read_object(e, value, desc)
            elif kind == "list":
                if not isinstance(value, dict) or "content" not in value or "limitWasExceeded" not in value:
                    finding("contract", "list document lacks content/limitWasExceeded", desc, text[:500])
                    return
                for obj in value["content"]:
                    check_read_object(e, obj, desc)
                if "metadata" in value:
                    check_metadata(e, value["metadata"], desc)
            elif kind == "write":
                if isinstance(value, dict) and "id" in value and value["id"] in e.only_b_id_set:
                    # an update can only have changed a row of A
                    pass
    return check


VISIBLE_CHECKSUM = "SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t.id), '')) FROM %s t"
BASELINE = {}        # entity -> checksum of its rows as the fuzz role sees them


def api_check(e, method, path, body):
    def check(rows, desc, cur):
        if len(rows) != 1:
            finding("contract", "api returned %d rows" % len(rows), desc)
            return
        status, response = rows[0]
        stats_api[status] += 1
        if status >= 400 and e.name in BASELINE:
            # the request failed: whatever it had written must be gone, in
            # this very transaction, which goes on
            stats_kinds["api error: checked for partial writes"] += 1
            cur.execute(VISIBLE_CHECKSUM % e.table)
            if cur.fetchone() != BASELINE[e.name]:
                finding("partial write", "api answered %s but rows of %s changed" % (status, e.name), desc,
                        json.dumps(response)[:500])
        text = json.dumps(response, ensure_ascii=False)
        check_text(text, desc, "an api response")
        if status not in API_STATUSES and not (status == 500 and "label may not be invalid" in text):
            finding("api", "status %s" % status, desc, text[:1000])
        if status >= 400 and isinstance(response, dict) and BATCH_RANGE.search(str(response.get("error"))):
            finding("contract", "a batch error names a range of instructions, not the failing one", desc,
                    response.get("error"))
        if status >= 400 and isinstance(response, dict):
            for d in response.get("details") or []:
                m = re.match(r"SQLSTATE (\w{5})", str(d))
                if m:
                    stats_states["api:" + m.group(1)] += 1
        p = path or ""
        segments = p.split("?")[0].split("#")[0].split("/")
        if status == 200 and ("getReport" in segments or "projectRegisteredHoursReport" in segments):
            for row in (response or {}).get("content", []) if isinstance(response, dict) else []:
                for key in ("minutes", "billableMinutes", "approvedMinutes"):
                    if isinstance(row.get(key), int) and row[key] % 10 != 0:
                        finding("leak", "report %s = %s includes rows of B" % (key, row[key]), desc, text[:500])
            return
        if status == 200 and method == "GET" and e.name in segments and isinstance(response, dict):
            if "content" in response:
                for obj in response["content"]:
                    check_read_object(e, obj, desc)
                if "metadata" in response:
                    check_metadata(e, response["metadata"], desc)
            else:
                check_read_object(e, response, desc)
        if status in (200, 201) and ("/companies/%s/" % B_CODE) in p.split("?")[0] + "/":
            finding("leak", "api answered %s for company B's path" % status, desc, text[:500])
    return check


def run(session, entities):
    names = sorted(entities)
    plan = {k: max(1, int(v * SCALE)) for k, v in PLAN.items()}
    order = []
    for function, n in plan.items():
        order += [function] * n
    rng.shuffle(order)
    for i, function in enumerate(order):
        if time.monotonic() - started > TIME_CAP:
            print("time cap of %ds reached after %d inputs; stopping early" % (TIME_CAP, i))
            break
        e = entities[rng.choice(names)] if rng.random() < 0.97 else None
        entity = e.name if e else rng.choice([None, "", "customer", "Customers", "time_records", "customers;",
                                              "moment.customers", "pg_class", garbage()])
        e = e or entities[rng.choice(names)]
        if function == "get":
            session.call("get", "SELECT moment.get(%s, %s, %s)",
                         (entity, rand_id(e), gen_spec(entities, e)), json_result("get", e))
        elif function == "list":
            page = rng.choice([None, None, None, 0, 1, 2, -1, 2 ** 31 - 1, 1000])
            size = rng.choice([None, None, None, 1, 2, 10, 0, -5, 30000, 30001, 2 ** 31 - 1])
            session.call("list", "SELECT moment.list(%s, %s, %s::jsonb, %s, %s, %s, %s)",
                         (entity, gen_spec(entities, e), gen_filter(entities, e), gen_order(entities, e),
                          page, size, rng.choice([None, False, True])), json_result("list", e))
        elif function == "rows":
            session.call("rows", "SELECT r FROM moment.rows(%s, %s, %s::jsonb, %s, %s) r",
                         (entity, gen_spec(entities, e), gen_filter(entities, e), gen_order(entities, e),
                          rng.choice([None, False, True])), json_result("rows", e))
        elif function == "list_typed":
            if e.name not in TYPED:
                e = entities[rng.choice(sorted(TYPED))]
            typed = TYPED[e.name]
            session.call("list_typed", "SELECT * FROM moment.%s(%%s::jsonb, %%s, %%s)" % typed,
                         (gen_filter(entities, e), gen_order(entities, e), rng.choice([None, False, True])),
                         typed_check(e))
        elif function == "create":
            session.call("create", "SELECT moment.create(%s, %s::jsonb, %s)",
                         (entity, gen_body(entities, e), gen_spec(entities, e)), json_result("write", e),
                         read_only=rng.random() < 0.15)
        elif function == "update":
            session.call("update", "SELECT moment.update(%s, %s, %s::jsonb, %s)",
                         (entity, rand_id(e), gen_body(entities, e, True), gen_spec(entities, e)),
                         json_result("write", e), read_only=rng.random() < 0.15)
        elif function == "delete":
            session.call("delete", "SELECT moment.delete(%s, %s)", (entity, rand_id(e)), lambda r, d, c: None,
                         read_only=rng.random() < 0.15)
        elif function == "batch":
            session.call("batch", "SELECT moment.batch(%s, %s::jsonb, %s)",
                         (entity, gen_batch(entities, e), gen_spec(entities, e) if rng.random() < 0.6 else None),
                         json_result("write", e),
                         read_only=rng.random() < 0.15)
        elif function == "report":
            records = entities["timeRecords"]
            if rng.random() < 0.6:
                session.call("report", "SELECT * FROM moment.hours_report(%s, %s, %s, %s::jsonb)",
                             (gen_date(), gen_date(), gen_group_by(), gen_filter(entities, records)), report_check)
            else:
                session.call("report", "SELECT * FROM moment.project_registered_hours(%s, %s, %s::jsonb)",
                             (gen_date(), gen_date(), gen_filter(entities, records)), report_check)
        elif function == "api":
            method, path, body = gen_api(entities, e)
            session.call("api", "SELECT status, response FROM moment.api(%s, %s, %s::jsonb)",
                         (method, path, body), api_check(e, method, path, body), read_only=rng.random() < 0.15)
        if i % 200 == 0:
            session.conn.notices.clear()


# ---------------------------------------------------------------------------
# Server health
# ---------------------------------------------------------------------------

def log_files(admin):
    """Candidate server log files: the logging collector's, else $PGHOST/log."""
    cur = admin.cursor()
    files = []
    try:
        cur.execute("SELECT pg_current_logfile(), current_setting('data_directory')")
        current, data_dir = cur.fetchone()
        if current:
            files.append(current if current.startswith("/") else os.path.join(data_dir, current))
    except psycopg2.Error:
        admin.rollback()
    host = os.environ.get("PGHOST", "")
    if host.startswith("/"):
        for name in ("log", "postgresql.log", "server.log", "logfile"):
            files.append(os.path.join(host, name))
    return [f for f in files if os.path.isfile(f) and os.access(f, os.R_OK)]


def log_sizes(files):
    return {f: os.path.getsize(f) for f in files}


CRASH_PATTERNS = re.compile(r"terminated by signal|server process .* was terminated|"
                            r"was terminated by exception|PANIC:|TRAP:|all server processes terminated")


def on_signal(signum, frame):
    raise SystemExit("fuzz: stopped by signal %d" % signum)


def main():
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    print("fuzz: seed %d (MOMENT_FUZZ_SEED=%d replays this run), scale %s" % (SEED, SEED, SCALE), flush=True)
    global A_ID, ENTITIES
    admin = connect()
    admin.autocommit = True
    cur = admin.cursor()
    cur.execute("SELECT pg_postmaster_start_time()")
    postmaster_started = cur.fetchone()[0]
    logs = log_files(admin)
    sizes = log_sizes(logs)
    if not logs:
        print("fuzz: no readable server log found (checked pg_current_logfile() and $PGHOST/log); "
              "relying on pg_postmaster_start_time() to detect crashes")
    try:
        A_ID, b_id = admin_setup(admin)
        ENTITIES = load_entities(admin, A_ID)
        load_typed(admin)
        for e in ENTITIES.values():
            e.a_id_set = set(e.a_ids)
            e.only_b_id_set = set(e.only_b_ids)
        before = checksums(admin)
        session = Session()
        cur_role = session.conn.cursor()
        for e in ENTITIES.values():
            cur_role.execute(VISIBLE_CHECKSUM % e.table)
            BASELINE[e.name] = cur_role.fetchone()
        session.conn.rollback()
        run(session, ENTITIES)
        try:
            session.conn.close()
        except Exception:
            pass

        # the server is up, no backend crashed, nothing was written
        try:
            cur.execute("SELECT pg_postmaster_start_time()")
            if cur.fetchone()[0] != postmaster_started:
                finding("crash", "the postmaster restarted (a backend crashed)", "-")
        except psycopg2.Error as err:
            finding("crash", "the admin connection is gone: %s" % err, "-")
            admin = connect()
            admin.autocommit = True
            cur = admin.cursor()
        for f in logs:
            with open(f, "rb") as fh:
                fh.seek(sizes.get(f, 0))
                tail = fh.read().decode("utf-8", "replace")
            lines = tail.splitlines()
            for line in lines:
                if CRASH_PATTERNS.search(line):
                    finding("crash", "server log: " + line.strip(), "-")
            print("fuzz: server log %s: %d new lines scanned for crashes" % (f, len(lines)))
        after = checksums(admin)
        for entity in before:
            if before[entity] != after.get(entity):
                finding("write", "rows of %s changed although every call was rolled back" % entity, "-",
                        "%s -> %s" % (before[entity], after.get(entity)))
    finally:
        for role in (ROLE, RO_ROLE):
            try:
                cur = admin.cursor()
                cur.execute("DELETE FROM moment.company_grants WHERE role = (SELECT oid FROM pg_roles WHERE rolname = %s)",
                            (role,))
                cur.execute("DROP OWNED BY %s" % role)
                cur.execute("DROP ROLE %s" % role)
            except psycopg2.Error as err:
                print("fuzz: cleanup of role %s failed: %s" % (role, err))

    elapsed = time.monotonic() - started
    print()
    print("inputs per function:  " + ", ".join("%s %d" % kv for kv in sorted(stats_calls.items())))
    print("generated inputs:     " + ", ".join("%s %d" % kv for kv in sorted(stats_kinds.items())))
    print("outcomes (SQLSTATE):  " + ", ".join("%s %d" % kv for kv in sorted(stats_states.items())
                                               if not kv[0].startswith("api:")))
    print("api statuses:         " + ", ".join("%s %d" % kv for kv in sorted(stats_api.items())))
    print("api error SQLSTATEs:  " + ", ".join("%s %d" % (k[4:], v) for k, v in sorted(stats_states.items())
                                               if k.startswith("api:")))
    total = sum(stats_calls.values())
    if findings:
        print("\nfuzz: %d findings in %d inputs (seed %d, %.1f s)" % (len(findings), total, SEED, elapsed))
        print("FAIL")
        return 1
    print("\nfuzz: %d inputs, no findings (seed %d, %.1f s)" % (total, SEED, elapsed))
    print("PASS")
    return 0


A_ID = None
ENTITIES = {}

if __name__ == "__main__":
    sys.exit(main())
