#!/usr/bin/python3
"""Generates moment_router's API from the catalog of a database with moment.

    router/generate.py                 writes router/sql/generated.sql and router/src/settings.h
    router/generate.py --check         exits 1 (and says what differs) when they are stale
    scripts/generate-router [--check]  the same on a throwaway server with moment installed

Connects with the libpq environment (PGHOST, PGPORT, PGUSER, PGDATABASE) to a
database where CREATE EXTENSION moment was done, and reads from its catalog:

- the API: every function of extension moment in schema moment that PUBLIC may
  execute (administration is REVOKEd from PUBLIC), with its arguments,
  defaults, result, volatility, strictness and comment.  Each becomes a
  function of the same signature in the router's schema moment (the C
  function moment_router_call, which routes by the company in force), a
  PL/Proxy function in moment_router_proxy that calls
  moment_internal.routed_call on the shard, and a row of moment_router.routes;
- the row types of the typed listings (SETOF moment.<table>), as composite
  types of the same name and columns;
- what the router's administration needs on a shard (moment_internal.shard_*,
  company_tables, moment.grant_company / revoke_company), as functions of
  moment_router_internal taking the shard's name first;
- moment's settings, with the same types, bounds and contexts, as
  router/src/settings.h; those that shape a request are passed on to the
  shard with every call: the ones any user may set, and the integer bounds
  only a superuser may set (moment.max_limit, max_batch_size, ...) when a
  superuser changed them in the session (a shard applies those only when
  they lower its own value).

So a function, column or setting that moment declares later (webhooks,
openapi, ...) reaches the router by running this again: nothing is written by
hand.  scripts/test runs --check, which fails when the files are stale.
"""

import os
import sys

import psycopg2

HERE = os.path.dirname(os.path.abspath(__file__))
SQL_OUT = os.path.join(HERE, "sql", "generated.sql")
HEADER_OUT = os.path.join(HERE, "src", "settings.h")

# Functions the router's administration calls on a given shard.
ADMIN_FUNCTIONS = """
    (n.nspname = 'moment_internal' AND (p.proname LIKE 'shard\\_%' OR p.proname = 'company_tables'))
    OR (n.nspname = 'moment' AND p.proname IN ('grant_company', 'revoke_company'))
"""


EXTENSION_MEMBER = """
    EXISTS (SELECT FROM pg_depend d
             WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
               AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
               AND d.refobjid = (SELECT e.oid FROM pg_extension e WHERE e.extname = 'moment'))
"""

FUNCTIONS = """
SELECT p.oid, n.nspname, p.proname,
       pg_get_function_arguments(p.oid) AS arguments,
       pg_get_function_identity_arguments(p.oid) AS identity,
       pg_get_function_result(p.oid) AS result,
       p.provolatile, p.proisstrict, p.proretset, p.prorows,
       ARRAY(SELECT format_type(t, NULL) FROM unnest(p.proargtypes) WITH ORDINALITY a(t, i) ORDER BY i) AS argtypes,
       p.proargnames[1:p.pronargs] AS argnames,
       p.prorettype, format_type(p.prorettype, NULL) AS rettype,
       t.typtype, t.typrelid, tn.nspname AS rettype_schema,
       obj_description(p.oid, 'pg_proc') AS comment,
       ARRAY(SELECT format_type(a, NULL) FROM unnest(p.proargtypes) a JOIN pg_type t ON t.oid = a
              WHERE t.typtype = 'p' OR t.typnamespace <> 'pg_catalog'::regnamespace) AS foreign_argtypes
  FROM pg_proc p
  JOIN pg_namespace n ON n.oid = p.pronamespace
  JOIN pg_type t ON t.oid = p.prorettype
  JOIN pg_namespace tn ON tn.oid = t.typnamespace
 WHERE p.prokind = 'f' AND %s AND (%s)
 ORDER BY n.nspname, p.proname, p.oid
"""

API_FILTER = """
    n.nspname = 'moment'
    AND (p.proacl IS NULL OR EXISTS (SELECT FROM aclexplode(p.proacl) a
                                      WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE'))
    AND p.prorettype NOT IN ('trigger'::regtype, 'event_trigger'::regtype)
"""

# The result columns of a function: its OUT/TABLE parameters, the columns of
# the row type it returns, or itself.
RESULT_COLUMNS = """
SELECT a.name, a.type, a.typeid, a.typschema FROM (
    SELECT p.proargnames[i] AS name, format_type(p.proallargtypes[i], NULL) AS type,
           p.proallargtypes[i] AS typeid, tn.nspname AS typschema, i AS position
      FROM pg_proc p, generate_subscripts(p.proallargtypes, 1) i, pg_type t, pg_namespace tn
     WHERE p.oid = %(oid)s AND p.proargmodes[i] IN ('o', 'b', 't')
       AND t.oid = p.proallargtypes[i] AND tn.oid = t.typnamespace
) a ORDER BY a.position
"""

ROW_TYPE_COLUMNS = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.atttypid, tn.nspname
  FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid JOIN pg_namespace tn ON tn.oid = t.typnamespace
 WHERE a.attrelid = %(relid)s AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY a.attnum
"""

SETTINGS = """
SELECT name, vartype, context, boot_val, min_val, max_val, enumvals, unit, short_desc, extra_desc
  FROM pg_settings
 WHERE name LIKE 'moment.%%'
 ORDER BY name
"""

UNITS = {None: "0", "kB": "GUC_UNIT_KB", "MB": "GUC_UNIT_MB", "8kB": "GUC_UNIT_BLOCKS", "ms": "GUC_UNIT_MS",
         "s": "GUC_UNIT_S", "min": "GUC_UNIT_MIN"}

CONTEXTS = {"user": "PGC_USERSET", "superuser": "PGC_SUSET", "sighup": "PGC_SIGHUP",
            "postmaster": "PGC_POSTMASTER", "backend": "PGC_BACKEND", "superuser-backend": "PGC_SU_BACKEND"}


def quote_literal(text):
    return "'" + text.replace("'", "''") + "'"


def quote_ident(name):
    if name.isidentifier() and name == name.lower() and name.isascii() and name not in RESERVED:
        return name
    return '"' + name.replace('"', '""') + '"'


# identifiers that must be quoted in a function or column name
RESERVED = {"all", "analyse", "analyze", "and", "any", "array", "as", "asc", "asymmetric", "both", "case",
            "cast", "check", "collate", "column", "constraint", "create", "current_catalog", "current_date",
            "current_role", "current_time", "current_timestamp", "current_user", "default", "deferrable",
            "desc", "distinct", "do", "else", "end", "except", "false", "fetch", "for", "foreign", "from",
            "grant", "group", "having", "in", "initially", "intersect", "into", "lateral", "leading", "limit",
            "localtime", "localtimestamp", "not", "null", "offset", "on", "only", "or", "order", "placing",
            "primary", "references", "returning", "select", "session_user", "some", "symmetric", "table",
            "then", "to", "trailing", "true", "union", "unique", "user", "using", "variadic", "when", "where",
            "window", "with", "authorization", "binary", "collation", "concurrently", "cross",
            "current_schema", "freeze", "full", "ilike", "inner", "is", "isnull", "join", "left", "like",
            "natural", "notnull", "outer", "overlaps", "right", "similar", "tablesample", "verbose"}


class Generator:
    def __init__(self, conn):
        self.conn = conn
        self.cur = conn.cursor()
        self.types = {}         # composite types to create: name -> columns
        self.sql = []

    def query(self, sql, params=None):
        self.cur.execute(sql, params)
        return self.cur.fetchall()

    def version(self):
        return self.query("SELECT extversion FROM pg_extension WHERE extname = 'moment'")[0][0]

    def check_type(self, type_name, schema, what):
        if schema not in ("pg_catalog",):
            raise SystemExit("generate.py: %s is of type %s, which the router does not know; "
                             "teach generate.py to create it" % (what, type_name))

    def result_columns(self, fn):
        """The result columns (name, type as the shard writes it, wire type), and
        whether the result is a row."""
        outs = self.query(RESULT_COLUMNS, {"oid": fn["oid"]})
        if outs:
            columns = [(name, typ, typeid, schema) for name, typ, typeid, schema in outs]
        elif fn["typtype"] == "c":
            columns = self.query(ROW_TYPE_COLUMNS, {"relid": fn["typrelid"]})
            if fn["rettype_schema"] != "moment":
                raise SystemExit("generate.py: %s returns %s, which is not a row type of schema moment"
                                 % (fn["proname"], fn["rettype"]))
            self.types[fn["rettype"]] = [(name, typ) for name, typ, _, _ in columns]
        elif fn["rettype"] == "void":
            columns = []
        else:
            columns = [(None, fn["rettype"], fn["prorettype"], fn["rettype_schema"])]
        result = []
        for i, (name, typ, typeid, schema) in enumerate(columns):
            self.check_type(typ, schema, "column %s of the result of %s" % (name or i + 1, fn["proname"]))
            # jsonb travels as its in-memory bytes (see moment's src/shard.c)
            result.append((typ, "bytea" if typ == "jsonb" else typ))
        return result

    def functions(self, where):
        names = ["oid", "nspname", "proname", "arguments", "identity", "result", "provolatile", "proisstrict",
                 "proretset", "prorows", "argtypes", "argnames", "prorettype", "rettype", "typtype", "typrelid",
                 "rettype_schema", "comment", "foreign_argtypes"]
        return [dict(zip(names, row)) for row in self.query(FUNCTIONS % (EXTENSION_MEMBER, where))]

    def proxy(self, name, fn, columns):
        """The PL/Proxy function that runs fn on a shard through routed_call."""
        args = ["conninfo text", "settings text[]"]
        args += ["a%d %s" % (i + 1, t) for i, t in enumerate(fn["argtypes"])]
        call_args = ["settings"] + ["a%d" % (i + 1) for i in range(len(fn["argtypes"]))]
        target = "%s.%s(%s)" % (fn["nspname"], quote_ident(fn["proname"]), ",".join(fn["argtypes"]))
        definition = ["reply text[]"] + ["c%d %s" % (i + 1, wire) for i, (_, wire) in enumerate(columns)]
        if columns:
            outs = ", ".join(["OUT reply text[]"] + ["OUT c%d %s" % (i + 1, wire) for i, (_, wire) in enumerate(columns)])
            returns = ("SETOF record" if fn["proretset"] else "record")
            select = "SELECT * FROM"
        else:
            outs = None
            returns = "SETOF text[]" if fn["proretset"] else "text[]"
            select = "SELECT r.reply FROM"
        signature = ", ".join(args + ([outs] if outs else []))
        self.sql.append(
            "CREATE FUNCTION moment_router_proxy.%s(%s)\nRETURNS %s\nLANGUAGE plproxy VOLATILE\nAS $proxy$\n"
            "\tCONNECT conninfo;\n\t%s moment_internal.routed_call(%s, %s) AS r(%s);\n$proxy$;\n"
            % (name, signature, returns, select, quote_literal(target), ", ".join(call_args),
               ", ".join(definition)))
        return target, "moment_router_proxy.%s(%s)" % (name, ", ".join(["text", "text[]"] + fn["argtypes"]))

    def routed(self, schema, name, arguments, result, fn, routing, comment):
        volatility = {"i": "IMMUTABLE", "s": "STABLE", "v": "VOLATILE"}[fn["provolatile"]]
        strict = " STRICT" if fn["proisstrict"] else ""
        rows = " ROWS %d" % fn["prorows"] if fn["proretset"] and fn["prorows"] != 1000 else ""
        columns = self.result_columns(fn)
        proxy_name = ("api_" if routing != "s" else "admin_") + fn["proname"]
        target, proxy = self.proxy(proxy_name, fn, columns)
        qualified = "%s.%s" % (schema, quote_ident(name))
        self.sql.append(
            "CREATE FUNCTION %s(%s)\nRETURNS %s\nAS 'MODULE_PATHNAME', 'moment_router_call'\nLANGUAGE C %s%s%s;\n"
            % (qualified, arguments, result, volatility, strict, rows))
        identity_types = (["text"] if routing == "s" else []) + fn["argtypes"]
        identity = "%s(%s)" % (qualified, ", ".join(identity_types))
        if comment:
            self.sql.append("COMMENT ON FUNCTION %s IS %s;\n" % (identity, quote_literal(comment)))
        self.sql.append(
            "INSERT INTO moment_router.routes (function, proxy, target, routing, writes) VALUES (%s, %s, %s, %s, %s);\n"
            % (quote_literal(identity), quote_literal(proxy), quote_literal(target), quote_literal(routing),
               "true" if fn["provolatile"] == "v" else "false"))
        return identity

    def generate(self):
        version = self.version()
        api = self.functions(API_FILTER)
        admin = self.functions(ADMIN_FUNCTIONS)
        body = []

        # the API, routed by the company in force (api: by its path's company)
        self.sql = []
        for fn in api + admin:
            # PL/Proxy passes any built-in type as text or binary; the router has no other types
            if fn["foreign_argtypes"]:
                raise SystemExit("generate.py: %s.%s takes %s, which the router does not know; "
                                 "teach generate.py" % (fn["nspname"], fn["proname"], ", ".join(fn["foreign_argtypes"])))
        for fn in api:
            routing = "p" if "path" in (fn["argnames"] or []) and fn["proname"] == "api" else "c"
            self.routed("moment", fn["proname"], fn["arguments"], fn["result"], fn, routing, fn["comment"])
        api_sql = self.sql

        # the administration's calls on one shard
        self.sql = []
        admin_identities = []
        for fn in admin:
            arguments = "shard text" + (", " + fn["arguments"] if fn["arguments"] else "")
            comment = "On the shard named first: %s" % (fn["comment"] or fn["proname"])
            admin_identities.append(self.routed("moment_router_internal", fn["proname"], arguments, fn["result"],
                                                fn, "s", comment))
        admin_sql = self.sql

        body.append("-- Generated by router/generate.py from the catalog of moment %s: do not edit.\n"
                    "-- Run router/generate.py on a database with moment installed to refresh it.\n" % version)
        body.append("\n-- The row types of the typed listings\n")
        for name in sorted(self.types):
            columns = ",\n".join("\t%s %s" % (quote_ident(c), t) for c, t in self.types[name])
            body.append("CREATE TYPE %s AS (\n%s\n);\n" % (name, columns))
            body.append("COMMENT ON TYPE %s IS %s;\n" % (name, quote_literal(
                "The rows of %s on the shards, as the typed listing returns them." % name)))
        body.append("\n-- The API: sections 6 and 12 of the contract, as moment declares them, routed by company\n")
        body.extend(api_sql)
        body.append("\n-- What the router's administration runs on a given shard\n")
        body.extend(admin_sql)
        body.append("\nREVOKE EXECUTE ON FUNCTION %s FROM PUBLIC;\n" % ",\n\t".join(admin_identities))
        return "".join(body), self.header(version)

    def header(self, version):
        self.cur.execute("LOAD 'moment'")
        rows = self.query(SETTINGS)
        lines = ["/*",
                 " * settings.h: moment %s's settings, as the router defines them; forward says" % version,
                 " * which a call passes on to its shard ('v' its value, 'c' its value when it",
                 " * lowers the shard's, 'n' not at all).",
                 " * Generated by router/generate.py from pg_settings: do not edit.",
                 " */",
                 "#ifndef MOMENT_ROUTER_SETTINGS_H",
                 "#define MOMENT_ROUTER_SETTINGS_H",
                 ""]
        entries = []
        for name, vartype, context, boot, min_val, max_val, enumvals, unit, short_desc, extra_desc in rows:
            if context == "postmaster":
                # a server's own (the webhook worker's): no library may define those after startup
                continue
            if unit not in UNITS:
                raise SystemExit("generate.py: setting %s has unit %s; teach generate.py" % (name, unit))
            enum_name = "NULL"
            if vartype == "enum":
                enum_name = "enum_" + name.replace(".", "_")
                lines.append("static const struct config_enum_entry %s[] = {" % enum_name)
                for i, value in enumerate(enumvals):
                    lines.append("\t{%s, %d, false}," % (c_string(value), i))
                lines.append("\t{NULL, 0, false}")
                lines.append("};")
                lines.append("")
                boot = str(enumvals.index(boot))
            # any user's settings go with every call; a superuser's bounds (integers)
            # when changed in the session, and the shard takes them only to lower its own
            forward = "'v'" if context == "user" else "'c'" if context == "superuser" and vartype == "integer" else "'n'"
            entries.append("\t{%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s}," % (
                c_string(name), c_string(short_desc), c_string(extra_desc) if extra_desc else "NULL",
                {"string": "'s'", "integer": "'i'", "enum": "'e'", "bool": "'b'", "real": "'r'"}[vartype],
                CONTEXTS[context], c_string(boot or ""), min_val or "0", max_val or "0", enum_name,
                UNITS[unit], forward))
        lines.append("static const RouterSetting router_settings[] = {")
        lines.extend(entries)
        lines.append("};")
        lines.append("")
        lines.append("#endif\t\t\t\t\t\t\t/* MOMENT_ROUTER_SETTINGS_H */")
        return "\n".join(lines) + "\n"


def c_string(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def main():
    check = "--check" in sys.argv[1:]
    conn = psycopg2.connect("")
    conn.autocommit = True
    sql, header = Generator(conn).generate()
    stale = []
    for path, text in ((SQL_OUT, sql), (HEADER_OUT, header)):
        if check:
            old = open(path).read() if os.path.exists(path) else ""
            if old != text:
                stale.append(path)
                import difflib
                sys.stdout.writelines(difflib.unified_diff(old.splitlines(True), text.splitlines(True),
                                                           path, "generated"))
        else:
            with open(path, "w") as f:
                f.write(text)
            print("wrote %s" % path)
    if stale:
        print("stale: %s (run scripts/generate-router, or router/generate.py on a database with moment)"
              % ", ".join(stale))
        return 1
    if check:
        print("router/sql/generated.sql and router/src/settings.h match moment's catalog")
    return 0


if __name__ == "__main__":
    sys.exit(main())
