#!/usr/bin/python3
"""bench/router.py: moment through moment_router against moment directly, in
the same run, and a company's move under load.  Not a test: it prints
figures and never fails on them.

    sudo bench/router.py [--secs 3] [--rounds 5] [--records 10000] [--socket] [--keep]

Starts two throwaway clusters (a shard and a router, TCP on 127.0.0.1, ports
of their own, stopped and removed on exit), loads scripts/generate.sql data
(three companies of --records time records) into shard 1, adds shards 1 and 2
(two databases of the shard cluster) to the router, then for each case runs
pgbench -n -M prepared -c 1 on the shard directly and on the router, in
alternating order, --rounds rounds of --secs seconds (batch: 20 transactions
a round), and reports the median latencies and the median of the per-round
ratios, wall clock and CPU (the backends' /proc/PID/schedstat: the router's
and the shard's for a routed call), against the targets.

  get         moment.get of a time record with three relations' names
  list-1000   moment.list of 1000 time records (of ~10 000) with a relation's name
  batch-1000  moment.batch of 1000 time record creates, committed (routed calls
              commit on the shard; a ROLLBACK on the router would not undo them)

--socket: the router reaches the shard over its Unix socket instead of TCP
(clients always use TCP).

Then company0003 moves from shard 1 to shard 2 while a writer creates
customers through the router (retrying what is refused): rows moved, the
seconds during which writes were refused, lost writes, duplicate ids.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import psycopg2

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PG_CONFIG = os.environ.get("PG_CONFIG", "pg_config")
PG_BIN = subprocess.run([PG_CONFIG, "--bindir"], capture_output=True, text=True, check=True).stdout.strip()
HOST = "127.0.0.1"
TARGETS = {"get": 1.8, "list-1000": 1.25, "batch-1000": 1.2}


def as_postgres(args, **kwargs):
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.run(prefix + args, check=True, **kwargs)


def free_port():
    import socket
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self, root, name):
        self.dir = os.path.join(root, name)
        os.makedirs(self.dir)
        shutil.chown(self.dir, "postgres", "postgres") if os.geteuid() == 0 else None
        self.port = free_port()
        as_postgres([os.path.join(PG_BIN, "initdb"), "-D", os.path.join(self.dir, "data"), "-A", "trust",
                     "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C"], stdout=subprocess.DEVNULL)
        as_postgres([os.path.join(PG_BIN, "pg_ctl"), "-D", os.path.join(self.dir, "data"), "-l",
                     os.path.join(self.dir, "log"), "-w", "-o",
                     "-p %d -k '%s' -c listen_addresses=%s -c fsync=off -c synchronous_commit=off "
                     "-c full_page_writes=off -c jit=off -c autovacuum=off -c shared_buffers=256MB"
                     % (self.port, self.dir, HOST), "start"], stdout=subprocess.DEVNULL)

    def dsn(self, db):
        return "host=%s port=%d dbname=%s user=postgres" % (HOST, self.port, db)

    def connect(self, db):
        conn = psycopg2.connect(self.dsn(db))
        conn.autocommit = True
        return conn

    def stop(self):
        if os.path.exists(os.path.join(self.dir, "data", "postmaster.pid")):
            as_postgres([os.path.join(PG_BIN, "pg_ctl"), "-D", os.path.join(self.dir, "data"), "-m", "fast",
                         "-w", "stop"], stdout=subprocess.DEVNULL)


def q(conn, sql, params=None):
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall() if cur.description else None


def cpu_ns(pid):
    """CPU time of a process so far (ns); None once it is gone."""
    try:
        with open("/proc/%d/schedstat" % pid) as f:
            return int(f.read().split()[0])
    except (OSError, TypeError):
        return None


last_backend = [None]


def pgbench(cluster, db, script, secs, transactions, company, shard=None, shard_db=None):
    """(latency ms, CPU us per transaction of the backend, and of the shard's backend when routed)."""
    args = [os.path.join(PG_BIN, "pgbench"), "-n", "-M", "prepared", "-c", "1", "-j", "1",
            "-h", HOST, "-p", str(cluster.port), "-U", "postgres", "-f", script, db]
    args += ["-t", str(transactions)] if transactions else ["-T", str(secs)]
    env = dict(os.environ, PGOPTIONS="-c moment.company=%s" % company)
    since = None
    if shard is not None:
        watcher = shard.connect(shard_db)
        since = q(watcher, "SELECT clock_timestamp()")[0][0]
    run = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    monitor = cluster.connect(db)
    backend = None
    while backend is None and run.poll() is None:
        # this pgbench's backend (a previous one may linger in pg_stat_activity)
        rows = q(monitor, "SELECT pid FROM pg_stat_activity WHERE application_name = 'pgbench' "
                          "ORDER BY backend_start DESC LIMIT 1")
        backend = rows[0][0] if rows and cpu_ns(rows[0][0]) is not None and rows[0][0] != last_backend[0] else None
        time.sleep(0.005)
    last_backend[0] = backend
    shard_backend = None
    if shard is not None:
        # the router's PL/Proxy connection: opened by this pgbench's backend
        while shard_backend is None and run.poll() is None:
            rows = q(watcher, "SELECT pid FROM pg_stat_activity WHERE datname = %s AND backend_type = 'client backend' "
                              "AND pid <> pg_backend_pid() AND backend_start >= %s", (shard_db, since))
            shard_backend = rows[0][0] if rows else None
            time.sleep(0.005)
        watcher.close()
    start = (cpu_ns(backend) or 0, cpu_ns(shard_backend) or 0)
    last = start
    while run.poll() is None:
        now = (cpu_ns(backend), cpu_ns(shard_backend) if shard_backend else 0)
        if None in now:
            break
        last = now
        time.sleep(0.02)
    output = run.communicate()[0]
    monitor.close()
    latency = float(output.split("latency average = ")[1].split()[0])
    done = int(output.split("number of transactions actually processed: ")[1].split("/")[0].split()[0])
    return latency, (last[0] - start[0]) / 1000.0 / done, (last[1] - start[1]) / 1000.0 / done


def move_under_load(router, s1, s2, company, company_id):
    """The move figures: rows moved, seconds of refused writes, lost writes, duplicate ids."""
    before = dict(q(s1, "SELECT table_name, row_count FROM moment_internal.shard_count_rows(%s)", (company_id,)))
    stop = threading.Event()
    writes, refused, errors = [], [], []

    def writer():
        conn = psycopg2.connect(router.dsn("bench_router"))
        conn.autocommit = True
        q(conn, "SET moment.company = %s", (company,))
        n = 0
        while not stop.is_set():
            n += 1
            while True:
                try:
                    row = q(conn, "SELECT moment.create('customers', %s, 'id')", (json.dumps({"name": "w-%d" % n}),))
                    writes.append(("w-%d" % n, row[0][0]["id"]))
                    break
                except psycopg2.Error as error:
                    if error.pgcode != "55006":
                        errors.append(str(error))
                        return
                    refused.append(time.monotonic())
                    time.sleep(0.005)
        conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    time.sleep(1)
    admin = psycopg2.connect(router.dsn("bench_router"))
    admin.autocommit = True
    started = time.monotonic()
    q(admin, "SELECT moment_router.move_company(%s, 's2')", (company,))
    seconds = time.monotonic() - started
    time.sleep(1)
    stop.set()
    thread.join()
    admin.close()
    stored = dict(q(s2, "SELECT name, id FROM moment.customers WHERE company_id = %s AND name LIKE 'w-%%'", (company_id,)))
    lost = [name for name, i in writes if stored.get(name) != i]
    duplicates = len(writes) - len({i for _, i in writes})
    return {"rows": sum(before.values()), "move_seconds": seconds,
            "refused_seconds": (refused[-1] - refused[0]) if refused else 0.0, "refusals": len(refused),
            "writes": len(writes), "lost": len(lost), "duplicates": duplicates, "errors": errors}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--secs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--records", type=int, default=10000)
    parser.add_argument("--socket", action="store_true", help="router to shard over a Unix socket")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    root = tempfile.mkdtemp(prefix="moment-router-bench.")
    os.chmod(root, 0o755)
    clusters = []
    try:
        shard = Cluster(root, "shard")
        clusters.append(shard)
        router = Cluster(root, "router")
        clusters.append(router)
        print("==> shard on port %d, router on port %d; the router reaches the shard over %s"
              % (shard.port, router.port, "its Unix socket" if args.socket else "TCP"), flush=True)
        admin = shard.connect("postgres")
        for n in (1, 2):
            q(admin, "CREATE DATABASE bench_s%d" % n)
            conn = shard.connect("bench_s%d" % n)
            q(conn, "CREATE EXTENSION moment")
            q(conn, "SELECT moment.configure_shard(%d)" % n)
            conn.close()
        s1 = shard.connect("bench_s1")
        s2 = shard.connect("bench_s2")
        q(s1, open(os.path.join(REPO, "scripts", "generate.sql")).read())
        q(s1, "SELECT * FROM moment_gen.generate(3, %s, 1)", (args.records,))
        q(s1, "DROP SCHEMA moment_gen CASCADE")
        q(s1, "VACUUM ANALYZE")
        q(router.connect("postgres"), "CREATE DATABASE bench_router")
        r = router.connect("bench_router")
        q(r, "CREATE EXTENSION moment_router CASCADE")
        for n in (1, 2):
            q(r, "SELECT moment_router.add_shard(%s, %s)", ("s%d" % n, "host=%s port=%d dbname=bench_s%d"
                                                          % (shard.dir if args.socket else HOST, shard.port, n)))
        company = "company0002"
        company_id, = q(s1, "SELECT id FROM moment.companies WHERE code = %s", (company,))[0]
        lo, hi = q(s1, "SELECT min(id), max(id) FROM moment.time_records WHERE company_id = %s", (company_id,))[0]
        dates = q(s1, "SELECT time_record_date FROM moment.time_records WHERE company_id = %s "
                      "ORDER BY time_record_date OFFSET 1200 LIMIT 1", (company_id,))[0][0]
        payload = q(s1, """
            WITH p AS (SELECT array_agg(id ORDER BY id) AS ids FROM moment.projects WHERE company_id = %(c)s),
                 u AS (SELECT array_agg(id ORDER BY id) AS ids FROM moment.user_accounts WHERE company_id = %(c)s)
            SELECT jsonb_build_object('create', jsonb_agg(jsonb_build_object(
                       'projectId', p.ids[1 + n %% cardinality(p.ids)], 'userAccountId', u.ids[1 + n %% cardinality(u.ids)],
                       'timeRecordDate', date '2026-06-03' + n %% 28, 'minutes', 15 * (1 + n %% 32),
                       'description', 'Bench batch ' || n) ORDER BY n))::text
              FROM generate_series(1, 1000) n, p, u""", {"c": company_id})[0][0]
        scripts = {
            "get": "\\set id random(%d, %d)\nSELECT moment.get('timeRecords', :id, "
                   "'base+project.name+project.customer.name+userAccount.name');\n" % (lo, hi),
            "list-1000": "SELECT moment.list('timeRecords', 'base+project.name', "
                         "'{\"timeRecordDate\": {\"lte\": \"%s\"}}');\n" % dates,
            "batch-1000": "SELECT moment.batch('timeRecords', '%s', 'id');\n" % payload.replace("'", "''"),
        }
        rows = q(s1, "SET moment.company = %s; SELECT jsonb_array_length(moment.list('timeRecords', 'id', "
                     "%s::jsonb) -> 'content')", (company, json.dumps({"timeRecordDate": {"lte": str(dates)}})))
        print("==> list-1000 returns %d rows; the company has %d time records" % (rows[0][0], hi - lo + 1), flush=True)
        results = {}
        for case, text in scripts.items():
            path = os.path.join(root, case + ".sql")
            with open(path, "w") as f:
                f.write(text)
            os.chmod(path, 0o644)
            transactions = 20 if case.startswith("batch") else None
            pgbench(shard, "bench_s1", path, 1, 3 if transactions else None, company)      # warm-up
            pgbench(router, "bench_router", path, 1, 3 if transactions else None, company, shard, "bench_s1")
            rounds = []
            for n in range(args.rounds):
                order = ["direct", "routed"] if n % 2 == 0 else ["routed", "direct"]
                got = {}
                for side in order:
                    if side == "direct":
                        got[side] = pgbench(shard, "bench_s1", path, args.secs, transactions, company)
                    else:
                        got[side] = pgbench(router, "bench_router", path, args.secs, transactions, company,
                                            shard, "bench_s1")
                rounds.append(got)
                print("  %-10s round %d: direct %.3f ms (cpu %.0f us), routed %.3f ms (cpu %.0f + %.0f us)" % (
                    case, n + 1, got["direct"][0], got["direct"][1], got["routed"][0], got["routed"][1],
                    got["routed"][2]), flush=True)
            results[case] = rounds
        figures = move_under_load(router, s1, s2, "company0003",
                                  q(s1, "SELECT id FROM moment.companies WHERE code = 'company0003'")[0][0])

        print("\n| case | direct latency | routed latency | latency ratio | target | met | cpu ratio (router + shard / direct) |")
        print("|---|---|---|---|---|---|---|")
        for case, rounds in results.items():
            direct = statistics.median(r["direct"][0] for r in rounds)
            routed = statistics.median(r["routed"][0] for r in rounds)
            ratio = statistics.median(r["routed"][0] / r["direct"][0] for r in rounds)
            measured = [r for r in rounds if r["direct"][1] > 0 and r["routed"][1] > 0 and r["routed"][2] > 0]
            cpu = statistics.median((r["routed"][1] + r["routed"][2]) / r["direct"][1] for r in measured) \
                if measured else float("nan")
            print("| %s | %.3f ms | %.3f ms | %.2fx | <= %.2fx | %s | %.2fx |" % (
                case, direct, routed, ratio, TARGETS[case], "yes" if ratio <= TARGETS[case] else "no", cpu))
        print("\nmove of company0003 (shard 1 -> shard 2) under a writer: %(rows)d rows moved in %(move_seconds).2f s; "
              "writes refused for %(refused_seconds).2f s (%(refusals)d refusals, all 55006: %(ok)s); "
              "%(writes)d writes acknowledged, %(lost)d lost, %(duplicates)d duplicate ids"
              % dict(figures, ok="yes" if not figures["errors"] else "no: %s" % figures["errors"][:2]))
    finally:
        if args.keep:
            print("clusters kept in %s" % root)
        else:
            for cluster in clusters:
                cluster.stop()
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
