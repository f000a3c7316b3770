#!/usr/bin/python3
"""The PostgREST replay (test/scripts/postgrest.py) through the router,
compared with a direct run: the same requests (as PostgREST v12 sends them,
one pooled authenticator connection switching roles and claims) give the
same statuses, bodies and SQLSTATEs, so every check passes in both runs, and
both runs make the same checks (the router's schema moment holds no
administration functions: those two signature checks are the direct run's
only).
"""

import os
import re
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import routerlib  # noqa: E402
from routerlib import HOST, REPO, check, finish, port  # noqa: E402

SCRIPT = os.path.join(REPO, "test", "scripts", "postgrest.py")


def replay(cluster, db, extra=None):
    env = dict(os.environ, PGHOST=HOST, PGPORT=str(port(cluster)), PGDATABASE=db, PGUSER="postgres")
    env.update(extra or {})
    done = subprocess.run(["/usr/bin/python3", SCRIPT], env=env, capture_output=True, text=True, timeout=240)
    checks = re.findall(r"^(ok  |FAIL) - (.*)$", done.stdout, re.M)
    return done.returncode, checks, done.stdout + done.stderr


routerlib.create_database("shard3", "pgrst_direct", "CREATE EXTENSION moment").close()
direct_status, direct_checks, direct_output = replay("shard3", "pgrst_direct")

routerlib.make_shard("shard1", "pgrst_shard", 1).close()
routerlib.make_router("pgrst_router", []).close()
routed_status, routed_checks, routed_output = replay("shard1", "pgrst_shard", {
    "MOMENT_ROUTER": routerlib.dsn("router", "pgrst_router"),
    "MOMENT_ROUTER_SHARD": "one " + routerlib.shard_conninfo("shard1", "pgrst_shard"),
})

check(direct_status == 0 and direct_checks and all(s == "ok  " for s, _ in direct_checks),
      "the direct replay passes (%d checks)" % len(direct_checks), direct_output[-3000:])
check(routed_status == 0 and routed_checks and all(s == "ok  " for s, _ in routed_checks),
      "the replay through the router passes (%d checks)" % len(routed_checks), routed_output[-3000:])
administration = {"moment.grant_company(company_code, role, writable): one function, SECURITY INVOKER",
                  "moment.register_entity(name, tbl): one function, SECURITY INVOKER"}
direct_names = [name for _, name in direct_checks if name not in administration]
routed_names = [name for _, name in routed_checks]
check(direct_names == routed_names and len(routed_names) > 80,
      "both replays make the same %d checks, in the same order" % len(routed_names),
      {"direct only": [n for n in direct_names if n not in routed_names],
       "routed only": [n for n in routed_names if n not in direct_names]})
# the statuses PostgREST gave, request by request
statuses = re.compile(r"^  (\S+ /rpc/\S+.*?) -> (\d+)$", re.M)
direct_requests = statuses.findall(direct_output)
routed_requests = statuses.findall(routed_output)
check(len(routed_requests) > 50 and
      [status for _, status in direct_requests] == [status for _, status in routed_requests],
      "every request got the same HTTP status (%d requests)" % len(routed_requests),
      [(d, r) for d, r in zip(direct_requests, routed_requests) if d[1] != r[1]][:10])
finish()
