#!/usr/bin/python3
"""moment_router.move_company under load, killed, and with its last step
failing.

A. A writer (creating customers, retrying what is refused) and a reader run
   through the router while cloudware moves from shard 1 to shard 2: every
   refused write is 55006, the reader never fails, no acknowledged write is
   lost or stored twice, ids stay unique, and the old shard keeps only the
   company's row, marked moved.
B. A move killed in the middle of its copy leaves the company on its old
   shard, readable, its writes refused (55006) until the move is run again,
   which finishes it (the abandoned copy on the new shard goes first).
C. A move whose old shard is down when it commits: the company lives on the
   new shard at once (reads and writes work), a WARNING says the old rows
   remain, and moving the company to where it is deletes them.
"""

import json
import os
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import psycopg2  # noqa: E402
import routerlib  # noqa: E402
from routerlib import REPO, check, connect, execute, finish, scalar  # noqa: E402

APP = "router_mover_app"
BLOCK = 10 ** 12

# ---------------------------------------------------------------------------
# shards 1..3; on shard 1 cloudware (5 000 time records) and company0002
# (12 000: its copy takes three chunks)
# ---------------------------------------------------------------------------
s1 = routerlib.make_shard("shard1", "move_s1", 1)
s2 = routerlib.make_shard("shard2", "move_s2", 2)
s3 = routerlib.make_shard("shard3", "move_s3", 3)
execute(s1, open(os.path.join(REPO, "scripts", "generate.sql")).read())
execute(s1, "SELECT * FROM moment_gen.generate(1, 5000, 1)")
execute(s1, "SELECT * FROM moment_gen.generate(2, 12000, 2)")
execute(s1, "DROP SCHEMA moment_gen CASCADE")
router = routerlib.make_router("move_router", [("s1", "shard1", "move_s1"), ("s2", "shard2", "move_s2"),
                                               ("s3", "shard3", "move_s3")])
routerlib.create_role(APP)
for code in ("cloudware", "company0002"):
    execute(router, "SELECT moment_router.grant_company(%s, %s)", (code, APP))
ids = dict(execute(router, "SELECT code, id FROM moment_router.companies"))


def counts(conn, company):
    return dict(execute(conn, "SELECT table_name, row_count FROM moment_internal.shard_count_rows(%s)", (company,)))


def home(code):
    return scalar(router, "SELECT shard FROM moment_router.companies WHERE code = %s", (code,))


def app_session(code):
    conn = connect("router", "move_router", user=APP)
    execute(conn, "SET moment.company = %s", (code,))
    return conn


# ---------------------------------------------------------------------------
print("# A. cloudware moves from s1 to s2 under a writer and a reader")
# ---------------------------------------------------------------------------
before = counts(s1, ids["cloudware"])
known = scalar(s1, "SELECT min(id) FROM moment.customers WHERE company_id = %s", (ids["cloudware"],))
stop = threading.Event()
writes = []          # (n, id) acknowledged
refused = []         # (time, sqlstate)
writer_errors = []
reads = [0]
reader_errors = []


def writer():
    conn = app_session("cloudware")
    n = 0
    while not stop.is_set():
        n += 1
        while True:
            try:
                row = scalar(conn, "SELECT moment.create('customers', %s, 'id')", (json.dumps({"name": "w-%d" % n}),))
                writes.append((n, row["id"] if isinstance(row, dict) else json.loads(row)["id"]))
                break
            except psycopg2.Error as error:
                if error.pgcode == "55006":
                    refused.append((time.monotonic(), error.pgcode))
                    time.sleep(0.01)
                    continue
                writer_errors.append((n, error.pgcode, str(error)))
                return


def reader():
    conn = app_session("cloudware")
    while not stop.is_set():
        try:
            found = scalar(conn, "SELECT moment.get('customers', %s, 'name')", (known,))
            listed = scalar(conn, "SELECT jsonb_array_length(moment.list('customers', 'id', no_limit => true) -> 'content')")
            if found is None or listed is None or listed < before["moment.customers"]:
                reader_errors.append(("missing", found, listed))
            reads[0] += 1
        except psycopg2.Error as error:
            reader_errors.append((error.pgcode, str(error)))


threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
for thread in threads:
    thread.start()
time.sleep(0.7)
writes_before = len(writes)
started = time.monotonic()
execute(router, "SELECT moment_router.move_company('cloudware', 's2')")
move_seconds = time.monotonic() - started
time.sleep(0.7)
stop.set()
for thread in threads:
    thread.join()

after_s2 = counts(s2, ids["cloudware"])
left_s1 = counts(s1, ids["cloudware"])
stored = dict(execute(s2, "SELECT name, id FROM moment.customers WHERE company_id = %s AND name LIKE 'w-%%'",
                      (ids["cloudware"],)))
acknowledged = {"w-%d" % n: i for n, i in writes}
lost = [name for name in acknowledged if stored.get(name) != acknowledged[name]]
duplicates = len(writes) - len({i for _, i in writes})
moved_rows = sum(before.values())
refused_seconds = (refused[-1][0] - refused[0][0]) if refused else 0.0
check(home("cloudware") == "s2", "the directory names s2", home("cloudware"))
check(writes_before > 0 and len(writes) > writes_before and any(i >= 2 * BLOCK for _, i in writes),
      "writes went on before and after the move (%d before, %d in all; the later ones with s2's ids)"
      % (writes_before, len(writes)))
check(not writer_errors, "every refused write was 55006 (%d refusals)" % len(refused), writer_errors)
check(not reader_errors and reads[0] > 0, "the reader never failed (%d reads)" % reads[0], reader_errors[:5])
check(not lost and len(stored) == len(writes), "no acknowledged write lost (%d written, %d stored)"
      % (len(writes), len(stored)), lost[:10])
check(duplicates == 0 and len(set(stored.values())) == len(stored), "no id given twice")
check(all(after_s2[t] == before[t] for t in before if t != "moment.customers") and
      after_s2["moment.customers"] == before["moment.customers"] + len(writes),
      "s2 holds every row of cloudware (%d moved, plus the writes)" % moved_rows, (before, after_s2))
check(left_s1["moment.companies"] == 1 and sum(left_s1.values()) == 1,
      "s1 keeps only cloudware's own row", left_s1)
check(scalar(s1, "SELECT moved AND fenced FROM moment.companies WHERE id = %s", (ids["cloudware"],)) is True,
      "that row is marked moved (a call routed there before the switch gets 55006)")
try:
    execute(connect("shard1", "move_s1"), "SET moment.company = 'cloudware'; SELECT moment.get('customers', %s)"
            % known)
    late = None
except psycopg2.Error as error:
    late = error.pgcode
check(late == "55006", "a call reaching s1 after the move gets 55006", late)
print("# move figures: %d rows moved in %.2f s, %.2f s of refused writes (%d refusals), %d lost writes, "
      "%d duplicate ids" % (moved_rows, move_seconds, refused_seconds, len(refused), len(lost), duplicates))

# ---------------------------------------------------------------------------
print("# B. a move killed during its copy, then run again")
# ---------------------------------------------------------------------------
company = ids["company0002"]
before = counts(s1, company)
some_customer = scalar(s1, "SELECT min(id) FROM moment.customers WHERE company_id = %s", (company,))
# the copy stops at the first time record: s2 holds an uncommitted row of that key
first = execute(s1, "SELECT id, project_id, user_account_id, time_record_date, minutes FROM moment.time_records "
                    "WHERE company_id = %s ORDER BY id LIMIT 1", (company,))[0]
holder = connect("shard2", "move_s2", autocommit=False)
execute(holder, "SET session_replication_role = replica")
execute(holder, "INSERT INTO moment.time_records (company_id, id, project_id, user_account_id, time_record_date, "
                "minutes) VALUES (%s, %s, %s, %s, %s, %s)", (company,) + tuple(first))
mover = connect("router", "move_router")
mover_pid = scalar(mover, "SELECT pg_backend_pid()")
outcome = {}


def move():
    try:
        execute(mover, "SELECT moment_router.move_company('company0002', 's2')")
        outcome["error"] = None
    except psycopg2.Error as error:
        outcome["error"] = error


thread = threading.Thread(target=move)
thread.start()
routerlib.wait_for(lambda: scalar(s2, "SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = 'transactionid'")
                   > 0, what="the copy to wait at the time records")
execute(router, "SELECT pg_terminate_backend(%s)", (mover_pid,))
thread.join(30)
holder.rollback()
holder.close()
app = app_session("company0002")
check(outcome.get("error") is not None, "the move was killed", outcome)
check(home("company0002") == "s1", "the company is still on s1", home("company0002"))
check(scalar(app, "SELECT moment.get('customers', %s, 'id')", (some_customer,)) is not None,
      "it is readable through the router")
try:
    scalar(app, "SELECT moment.create('customers', '{\"name\": \"during\"}')")
    refusal = None
except psycopg2.Error as error:
    refusal = error.pgcode
check(refusal == "55006", "its writes are refused (55006) until the move is finished", refusal)
status, body = execute(app, "SELECT status, response FROM moment.api('POST', '/customers', '{\"name\": \"during\"}')")[0]
check(status == 503 and body.get("error_type") == "retry" and "SQLSTATE 55006" in body.get("details", []),
      "api answers such a write 503, error_type retry, SQLSTATE 55006 in details", (status, body))
routerlib.wait_for(lambda: counts(s2, company)["moment.time_records"] > 0, what="the abandoned chunk")
check(0 < sum(counts(s2, company).values()) < sum(before.values()),
      "s2 holds part of a copy, not in the directory", counts(s2, company))
execute(router, "SELECT moment_router.move_company('company0002', 's2')")
check(home("company0002") == "s2" and counts(s2, company) == before,
      "run again, the move finishes: s2 holds every row, once", counts(s2, company))
check(sum(counts(s1, company).values()) == 1, "s1 keeps only the company's row", counts(s1, company))
check(scalar(app, "SELECT moment.create('customers', '{\"name\": \"after\"}', 'id') IS NOT NULL"),
      "writes work again")
app.close()

# ---------------------------------------------------------------------------
print("# C. a move whose old shard is down at commit")
# ---------------------------------------------------------------------------
before = counts(s2, company)
s2.close()
mover = connect("router", "move_router", autocommit=False)
execute(mover, "SELECT moment_router.move_company('company0002', 's3')")
routerlib.stop_cluster("shard2")
try:
    mover.commit()
    warnings = list(mover.notices)
finally:
    mover.close()
    routerlib.start_cluster("shard2")
s2 = connect("shard2", "move_s2")
check(any("could not be deleted from shard \"s2\"" in w for w in warnings),
      "a WARNING says the rows on s2 could not be deleted", warnings)
app = app_session("company0002")
check(home("company0002") == "s3" and counts(s3, company) == before, "the company lives on s3, every row")
check(scalar(app, "SELECT moment.create('customers', '{\"name\": \"on s3\"}', 'id') IS NOT NULL")
      and scalar(app, "SELECT moment.get('customers', %s, 'id') IS NOT NULL", (some_customer,)),
      "reads and writes work on s3")
check(sum(counts(s2, company).values()) == sum(before.values()), "its old rows are still on s2")
# the router's connection to s2 died with the server: the first call on it
# says so (08006/08007), as any call a client retries; the move is idempotent
for attempt in range(3):
    try:
        execute(router, "SELECT moment_router.move_company('company0002', 's3')")
        break
    except psycopg2.Error as error:
        check(error.pgcode in ("08006", "08007") and attempt == 0,
              "the first call over the connection the restart killed: %s" % error.pgcode, str(error))
check(sum(counts(s2, company).values()) == 0 and sum(counts(s1, company).values()) == 0,
      "moving it to where it is deletes what other shards hold of it",
      (counts(s1, company), counts(s2, company)))
app.close()

for conn in (s1, s2, s3, router):
    conn.close()
routerlib.drop_role(APP)
finish()
