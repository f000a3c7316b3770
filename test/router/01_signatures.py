#!/usr/bin/python3
"""The router's schema moment is the shard's API: same functions (names,
argument names, types, defaults, results, volatility, strictness, SECURITY
INVOKER, executable by PUBLIC), the typed listings' row types with the same
columns, and the settings that shape a request with the same bounds.  And the
files generated from moment's catalog (router/generate.py) are not stale.
"""

import os
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from routerlib import REPO, check, connect, execute, finish, make_router, make_shard, port, HOST  # noqa: E402

API = """
SELECT p.proname::text, pg_get_function_arguments(p.oid), pg_get_function_result(p.oid),
       p.provolatile::text, p.proisstrict, p.proretset, p.prosecdef,
       has_function_privilege('public', p.oid, 'EXECUTE') AS public_may
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'moment' AND %s
 ORDER BY 1, 2
"""
# on a shard: what the router must route (extension moment's, executable by PUBLIC)
SHARD_API = API % """
    EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
              AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
              AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'moment'))
    AND has_function_privilege('public', p.oid, 'EXECUTE')
    AND p.prorettype NOT IN ('trigger'::regtype, 'event_trigger'::regtype)"""
ROUTER_API = API % "true"

ROW_TYPES = """
SELECT t.typname::text, a.attnum::int, a.attname::text, format_type(a.atttypid, a.atttypmod)
  FROM pg_type t JOIN pg_attribute a ON a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE t.oid IN (SELECT p.prorettype FROM pg_proc p WHERE p.pronamespace = 'moment'::regnamespace AND p.proretset)
   AND t.typtype = 'c'
 ORDER BY 1, 2
"""

SETTINGS = """
SELECT name, vartype, context, min_val, max_val, enumvals, boot_val, unit
  FROM pg_settings WHERE name LIKE 'moment.%' AND context <> 'postmaster' ORDER BY name
"""

shard = make_shard("shard1", "signatures_shard", 1)
router = make_router("signatures_router", [("one", "shard1", "signatures_shard")])
execute(shard, "LOAD 'moment'")
execute(router, "LOAD 'moment_router'")

shard_api = execute(shard, SHARD_API)
router_api = execute(router, ROUTER_API)
check(len(shard_api) >= 21, "the shard declares the API of sections 6 and 12 (%d functions)" % len(shard_api))
shard_names = {row[0] for row in shard_api}
router_names = {row[0] for row in router_api}
check(shard_names == router_names, "the router's schema moment has the shard's API functions and no other",
      {"missing": sorted(shard_names - router_names), "extra": sorted(router_names - shard_names)})
by_name = {row[0]: row for row in router_api}
for row in shard_api:
    name, arguments, result, volatility, strict, retset, secdef, public_may = row
    got = by_name.get(name)
    check(got == row, "moment.%s(%s) RETURNS %s %s: the same on the router" % (
        name, arguments, result, {"s": "STABLE", "v": "VOLATILE", "i": "IMMUTABLE"}[volatility]), got)
check(all(not row[6] and row[7] for row in router_api),
      "every router function is SECURITY INVOKER and executable by PUBLIC")
check(all(row[3] == "s" for row in router_api if row[0] in ("get", "list", "rows", "hours_report",
                                                            "project_registered_hours")
          or row[0].startswith("list_")), "reads are STABLE on the router (PostgREST runs them READ ONLY)")

shard_types = execute(shard, ROW_TYPES)
router_types = execute(router, ROW_TYPES)
check(len(shard_types) > 0 and shard_types == router_types,
      "the typed listings' row types have the shard's columns, names and types (%d columns)" % len(shard_types),
      [t for t in shard_types if t not in router_types] + [t for t in router_types if t not in shard_types])

shard_settings = execute(shard, SETTINGS)
router_settings = execute(router, SETTINGS)
check(len(shard_settings) >= 4 and shard_settings == router_settings,
      "moment's settings have the shard's types, contexts, units and bounds on the router: %s"
      % ", ".join(s[0] for s in shard_settings), router_settings)
for value, sqlstate in (("0", "22023"), ("30001", "22023"), ("30000", None)):
    for conn, where in ((shard, "shard"), (router, "router")):
        try:
            execute(conn, "SET moment.default_limit = %s" % value)
            got = None
        except Exception as error:
            got = error.pgcode
        check(got == sqlstate, "SET moment.default_limit = %s on the %s: %s" % (value, where, sqlstate or "ok"), got)
execute(router, "RESET moment.default_limit")

# the generated files match what moment declares now
env = dict(os.environ, PGHOST=HOST, PGPORT=str(port("shard1")), PGDATABASE="signatures_shard", PGUSER="postgres")
generated = subprocess.run(["/usr/bin/python3", os.path.join(REPO, "router", "generate.py"), "--check"],
                           env=env, capture_output=True, text=True)
check(generated.returncode == 0, "router/generate.py --check: the generated router files are not stale",
      (generated.stdout + generated.stderr)[-3000:])

shard.close()
router.close()
finish()
