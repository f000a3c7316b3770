"""What PostgREST v12 sends to PostgreSQL for an /rpc/<function> request,
reproduced statement by statement, so the extension can be tested against
PostgREST without a PostgREST binary.

Per request, on one pooled connection logged in as the authenticator role
(PostgREST reuses these connections across requests and users):

  1. BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY | READ WRITE
       GET/HEAD, and POST to a STABLE or IMMUTABLE function: READ ONLY;
       POST to a VOLATILE function: READ WRITE
       (docs: references/transactions "Access Mode on Functions").
  2. select set_config('search_path', $1, true), set_config('role', $2, true),
            set_config('request.jwt.claims', $3, true), set_config('request.method', $4, true),
            set_config('request.path', $5, true), set_config('request.headers', $6, true),
            set_config('request.cookies', $7, true)
       (Query/PreQuery.hs txVarQuery; every value an `unknown` parameter)
  3. WITH pgrst_source AS (<call>) SELECT null::bigint AS total_result_set, ...
       body ... FROM (<read plan: filters, order, LIMIT/OFFSET>) _postgrest_t
       (Query/Statements.hs prepareCall, Query/QueryBuilder.hs callPlanToQuery,
        Query/SqlFragment.hs fromJsonBodyF): the arguments are the keys of the
       JSON body (POST) or the query-string parameters named like function
       arguments (GET, values as JSON strings), unpacked with
       json_to_record($1::json) and passed by name ("entity" := pgrst_body."entity");
       the other query-string parameters become filters/order/limit applied
       to the function's result outside the call.
  4. COMMIT (ROLLBACK when the statement failed)

Errors come back as PostgREST's JSON {"code","details","hint","message"}
with the HTTP status PostgREST derives from the SQLSTATE (Error.hs
mapSQLtoHTTP; see HTTP_STATUS below).
"""

import json

import libpq

# PostgREST's reserved query-string parameters (never arguments or filters)
RESERVED = {"select", "columns", "order", "limit", "offset", "on_conflict", "and", "or"}

# Filter operators of the query string -> SQL (SqlFragment.hs)
OPERATORS = {
    "eq": "=", "gte": ">=", "gt": ">", "lte": "<=", "lt": "<", "neq": "<>",
    "like": "like", "ilike": "ilike",
}


def http_status(sqlstate, message, authenticated):
    """PostgREST's mapping of a PostgreSQL error to an HTTP status
    (src/PostgREST/Error.hs mapSQLtoHTTP, v12; documented in
    docs.postgrest.org references/errors "HTTP Status Codes")."""
    c = sqlstate
    if c.startswith("08"):
        return 503
    if c.startswith("09"):
        return 500
    if c.startswith("0L") or c.startswith("0P"):
        return 403
    if c in ("23503", "23505"):
        return 409
    if c == "25006":
        return 405
    if c == "21000":
        return 400 if message.endswith("requires a WHERE clause") else 500
    if c == "22023" and message.startswith("role") and message.endswith("does not exist"):
        return 401
    if c.startswith("25") or c.startswith("2D") or c.startswith("38") or c.startswith("39") \
            or c.startswith("3B") or c.startswith("40"):
        return 500
    if c.startswith("28"):
        return 403
    if c == "53400":
        return 500
    if c.startswith("53"):
        return 503
    if c.startswith("54") or c.startswith("55"):
        return 500
    if c == "57P01":
        return 503
    if c.startswith("57") or c.startswith("58") or c.startswith("F0") or c.startswith("HV"):
        return 500
    if c == "P0001":
        return 400
    if c.startswith("P0") or c.startswith("XX"):
        return 500
    if c == "42883":
        return 404
    if c == "42P01":
        return 404
    if c == "42P17":
        return 500
    if c == "42501":
        return 403 if authenticated else 401
    return 400


def ident(name):
    return libpq.quote_ident(name)


class Routine:
    """A function as PostgREST's schema cache describes it."""

    def __init__(self, schema, name, params, volatility, returns_set, returns_composite,
                 table_name):
        self.schema = schema
        self.name = name
        self.params = params                    # [(name, type)] of input arguments
        self.volatility = volatility            # 'i', 's' or 'v'
        self.returns_set = returns_set
        self.returns_composite = returns_composite
        self.table_name = table_name            # relation of a SETOF table type, or None

    @property
    def returns_scalar(self):
        return not self.returns_set and not self.returns_composite

    @property
    def returns_set_of_scalar(self):
        return self.returns_set and not self.returns_composite


class Response:
    def __init__(self, status, body, error=None, sqlstate=None, statements=None, notices=None):
        self.status = status
        self.body = body                # parsed JSON body (error object on failure)
        self.error = error              # libpq.PgError or None
        self.sqlstate = sqlstate
        self.statements = statements    # [(sql, params)] sent for this request
        self.notices = notices or []    # WARNINGs PostgreSQL sent (PostgREST drops them)

    def __repr__(self):
        return "<%d %s>" % (self.status, json.dumps(self.body)[:200])


class PostgREST:
    """One PostgREST v12 instance: db-schemas, db-anon-role, a pooled
    connection as the authenticator, and a schema cache of routines."""

    def __init__(self, conninfo, schema="moment", anon_role=None, extra_search_path=("public",)):
        self.conn = libpq.Connection(conninfo)
        self.schema = schema
        self.anon_role = anon_role
        self.extra_search_path = list(extra_search_path)
        self.routines = {}

    def close(self):
        self.conn.close()

    # ---- schema cache -------------------------------------------------------

    def routine(self, name):
        """Reads a function's signature from pg_proc (what PostgREST's schema
        cache query reads): input argument names and types, volatility and the
        return type.  Overloads are refused like PostgREST does when the
        arguments cannot tell them apart; here there must be exactly one."""
        if name in self.routines:
            return self.routines[name]
        res = self.conn.execute("""
            SELECT p.oid::int,
                   p.provolatile::text,
                   p.proretset,
                   t.typtype::text,
                   coalesce(r.relname, '') AS table_name,
                   coalesce((SELECT json_agg(json_build_array(a.name, format_type(a.type, NULL)) ORDER BY a.n)
                               FROM unnest(coalesce(p.proallargtypes, p.proargtypes::oid[]),
                                           coalesce(p.proargmodes, array_fill('i'::"char", ARRAY[p.pronargs])),
                                           p.proargnames) WITH ORDINALITY AS a(type, mode, name, n)
                              WHERE a.mode IN ('i', 'b', 'v')), '[]')::text AS params
              FROM pg_proc p
              JOIN pg_namespace n ON n.oid = p.pronamespace
              JOIN pg_type t ON t.oid = p.prorettype
              LEFT JOIN pg_class r ON r.oid = t.typrelid AND r.relkind IN ('r', 'p', 'v', 'm', 'f')
             WHERE n.nspname = $1 AND p.proname = $2""", [self.schema, name], [libpq.TEXT, libpq.TEXT])
        if len(res.rows) != 1:
            raise LookupError("%d functions %s.%s in the schema cache (PostgREST needs one "
                              "per set of argument names)" % (len(res.rows), self.schema, name))
        _, volatility, returns_set, typtype, table_name, params = res.rows[0]
        # a table row type, or RETURNS TABLE / OUT parameters (pseudo-type
        # record): composite; anything else (jsonb, bigint): scalar
        routine = Routine(self.schema, name, [tuple(p) for p in json.loads(params)], volatility,
                          returns_set == "t", typtype in ("c", "p"), table_name or None)
        self.routines[name] = routine
        return routine

    # ---- statements ---------------------------------------------------------

    def _call_query(self, routine, arg_names):
        """callPlanToQuery: the call inside pgrst_source.  arg_names are the
        arguments the request gives (PostgREST passes only those, so the
        function's defaults apply to the others)."""
        qi = "%s.%s" % (ident(routine.schema), ident(routine.name))
        params = [p for p in routine.params if p[0] in arg_names]
        if routine.returns_scalar or routine.returns_set_of_scalar:
            select = "pgrst_call.pgrst_scalar"
        else:
            select = '"pgrst_call".*'

        def call_it(arguments):
            if routine.returns_scalar or routine.returns_set_of_scalar:
                return "(SELECT %s(%s) pgrst_scalar) pgrst_call" % (qi, arguments)
            return "%s(%s) pgrst_call" % (qi, arguments)

        if not params:
            return "SELECT %s FROM %s" % (select, call_it("")), False
        names = ", ".join(ident(p[0]) for p in params)
        typed = ", ".join("%s %s" % (ident(p[0]), p[1]) for p in params)
        arguments = ", ".join("%s := pgrst_body.%s" % (ident(p[0]), ident(p[0])) for p in params)
        return ("SELECT %s FROM (SELECT $1 AS json_data) pgrst_payload, "
                "LATERAL (SELECT %s FROM json_to_record(pgrst_payload.json_data) AS _(%s) LIMIT 1) pgrst_body , "
                "LATERAL %s" % (select, names, typed, call_it(arguments))), True

    def _read_query(self, routine, filters, order, limit, offset, first_param):
        """readPlanToQuery over pgrst_source: PostgREST's own filters, order
        and LIMIT/OFFSET, applied outside the function call."""
        alias = routine.table_name or routine.name
        qa = ident(alias)
        params = []
        n = first_param

        def param(value):
            nonlocal n
            params.append(value)
            n += 1
            return "$%d" % (n - 1)

        # readPlanToQuery: "SELECT " <> select <> " " <> from <> " " <> joins <> " "
        #   <> where <> " " <> order <> " " <> limitOffset
        conditions = []
        for column, expression in filters:
            negate = expression.startswith("not.")
            if negate:
                expression = expression[4:]
            operator, _, value = expression.partition(".")
            field = "%s.%s" % (qa, ident(column))
            if operator == "is":
                sql_value = {"null": "NULL", "not_null": "NOT NULL", "true": "TRUE",
                             "false": "FALSE", "unknown": "UNKNOWN"}[value.lower()]
                condition = "%s IS %s" % (field, sql_value)
            elif operator == "in":
                items = [v.strip().strip('"') for v in value.strip("()").split(",")]
                literal = "{" + ",".join('"%s"' % v.replace("\\", "\\\\").replace('"', '\\"')
                                         for v in items) + "}"
                condition = "%s = ANY (%s) " % (field, param(literal))
            else:
                if operator in ("like", "ilike"):
                    value = value.replace("*", "%")
                condition = "%s %s %s" % (field, OPERATORS[operator], param(value))
            conditions.append(("NOT" if negate else "") + " " + condition)
        where = "WHERE " + " AND ".join(conditions) if conditions else ""
        order_sql = ""
        if order:
            terms = []
            for term in order.split(","):
                parts = term.split(".")
                words = [{"asc": "ASC", "desc": "DESC", "nullsfirst": "NULLS FIRST",
                          "nullslast": "NULLS LAST"}[modifier] for modifier in parts[1:]]
                terms.append("%s.%s %s" % (qa, ident(parts[0]), " ".join(words)))
            order_sql = "ORDER BY " + ", ".join(terms)
        limit_sql = ""
        if limit is not None or offset is not None:
            limit_sql = "LIMIT %s OFFSET %s" % (param(str(limit)) if limit is not None else "ALL",
                                                param(str(offset or 0)))
        sql = " ".join(["SELECT %s.*" % qa, "FROM \"pgrst_source\" AS %s" % qa, "",
                        where, order_sql, limit_sql])
        return sql, params

    def _main_statement(self, routine, arg_names, filters, order, limit, offset):
        call_sql, has_payload = self._call_query(routine, arg_names)
        read_sql, read_params = self._read_query(routine, filters, order, limit, offset,
                                                 2 if has_payload else 1)
        if routine.returns_scalar:
            page_total = "1"
            body = "coalesce(json_agg(_postgrest_t.pgrst_scalar)->0, 'null')"
        elif routine.returns_set_of_scalar:
            page_total = "pg_catalog.count(_postgrest_t)"
            body = "coalesce(json_agg(_postgrest_t.pgrst_scalar), '[]')"
        else:
            page_total = "pg_catalog.count(_postgrest_t)"
            body = "coalesce(json_agg(_postgrest_t), '[]')"
        sql = ("WITH pgrst_source AS (%s) "
               "SELECT null::bigint AS total_result_set, %s AS page_total, %s AS body, "
               "nullif(current_setting('response.headers', true), '') AS response_headers, "
               "nullif(current_setting('response.status', true), '') AS response_status, "
               "'' AS response_inserted "
               "FROM (%s) _postgrest_t" % (call_sql, page_total, body, read_sql))
        return sql, has_payload, read_params

    # ---- a request ----------------------------------------------------------

    def request(self, method, function, query=(), body=None, claims=None, headers=None):
        """One HTTP request to /rpc/<function>.

        query: the decoded query string as (key, value) pairs (what Warp hands
               PostgREST: '+' already turned into a space, %XX decoded).
        body:  for POST, the JSON object (sent as the request body text).
        claims: the verified JWT's claims (None: anonymous, db-anon-role)."""
        routine = self.routine(function)
        query = list(query)
        order = None
        limit = None
        offset = None
        filters = []
        args = {}
        arg_names_known = {p[0] for p in routine.params}
        for key, value in query:
            if key == "order":
                order = value
            elif key == "limit":
                limit = int(value)
            elif key == "offset":
                offset = int(value)
            elif key in RESERVED:
                continue
            elif method in ("GET", "HEAD") and key in arg_names_known:
                args[key] = value           # query-string values are JSON strings
            else:
                filters.append((key, value))
        if method in ("GET", "HEAD"):
            payload = json.dumps(args, separators=(",", ":")) if args else None
            arg_names = set(args)
        else:
            payload = json.dumps(body if body is not None else {}, separators=(",", ":"))
            arg_names = set((body or {}).keys())

        authenticated = claims is not None
        if claims is None:
            role = self.anon_role
            claims_json = json.dumps({"role": role}, separators=(",", ":"))
        else:
            role = claims["role"]
            claims_json = json.dumps(claims, separators=(",", ":"))

        read_only = method in ("GET", "HEAD") or routine.volatility in ("s", "i")
        begin = "BEGIN ISOLATION LEVEL READ COMMITTED " + ("READ ONLY" if read_only else "READ WRITE")
        request_path = "/rpc/" + function
        request_headers = {"host": "localhost:3000", "user-agent": "curl/7.88.1", "accept": "*/*"}
        if method == "POST":
            request_headers["content-type"] = "application/json"
        if authenticated:
            request_headers["authorization"] = "Bearer <jwt>"
        request_headers.update(headers or {})
        search_path = ", ".join(ident(s) for s in [self.schema] + self.extra_search_path)
        tx_vars = ("select set_config('search_path', $1, true), set_config('role', $2, true), "
                   "set_config('request.jwt.claims', $3, true), set_config('request.method', $4, true), "
                   "set_config('request.path', $5, true), set_config('request.headers', $6, true), "
                   "set_config('request.cookies', $7, true)")
        tx_params = [search_path, role, claims_json, method, request_path,
                     json.dumps(request_headers, separators=(",", ":")), "{}"]

        main_sql, has_payload, read_params = self._main_statement(
            routine, arg_names, filters, order, limit, offset)
        main_params = ([payload] if has_payload else []) + read_params
        main_types = ([libpq.JSON] if has_payload else []) + [libpq.UNKNOWN] * len(read_params)

        statements = [(begin, []), (tx_vars, tx_params), (main_sql, main_params)]
        conn = self.conn
        try:
            conn.execute(begin)
            conn.execute(tx_vars, tx_params)
            result = conn.execute(main_sql, main_params, main_types)
            conn.execute("COMMIT")
            statements.append(("COMMIT", []))
        except libpq.PgError as error:
            if conn.transaction_status() != libpq.PQTRANS_IDLE:
                conn.execute("ROLLBACK")
            statements.append(("ROLLBACK", []))
            status = http_status(error.sqlstate, error.message, authenticated)
            return Response(status, {"code": error.sqlstate, "details": error.detail,
                                      "hint": error.hint, "message": error.message},
                            error, error.sqlstate, statements)
        row = dict(zip(result.columns, result.rows[0])) if result.rows else None
        status = 200
        if row and row.get("response_status"):
            status = int(row["response_status"])
        response_body = json.loads(row["body"]) if row else None
        return Response(status, response_body, None, None, statements, result.notices)
