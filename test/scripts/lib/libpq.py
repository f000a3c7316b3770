"""A small ctypes binding of libpq, enough to send statements the way a real
client driver does: extended query protocol, named prepared statements,
parameters bound with explicit type OIDs and formats (never spliced into the
SQL text), errors with their SQLSTATE/detail/hint, and notices (WARNINGs)
collected per statement.

Used by the PostgREST test to reproduce what PostgREST (Haskell, hasql on top
of libpq) sends: hasql prepares every statement (db-prepared-statements is on
by default) and binds its parameters in binary format with the OID of the
encoder: `unknown` (705) for query-string values and set_config values,
`json` (114) for the request body.  For both types the binary
representation is the plain UTF-8 text, so the bytes below are what hasql
puts on the wire.

Only needs libpq5, which every PostgreSQL client installation has.
"""

import ctypes
import ctypes.util

_path = ctypes.util.find_library("pq") or "libpq.so.5"
_pq = ctypes.CDLL(_path)

_c = ctypes.c_char_p
_v = ctypes.c_void_p
_i = ctypes.c_int

_pq.PQconnectdb.restype = _v
_pq.PQconnectdb.argtypes = [_c]
_pq.PQstatus.restype = _i
_pq.PQstatus.argtypes = [_v]
_pq.PQerrorMessage.restype = _c
_pq.PQerrorMessage.argtypes = [_v]
_pq.PQfinish.restype = None
_pq.PQfinish.argtypes = [_v]
_pq.PQprepare.restype = _v
_pq.PQprepare.argtypes = [_v, _c, _c, _i, ctypes.POINTER(ctypes.c_uint)]
_pq.PQexecPrepared.restype = _v
_pq.PQexecPrepared.argtypes = [_v, _c, _i, ctypes.POINTER(_c), ctypes.POINTER(_i),
                               ctypes.POINTER(_i), _i]
_pq.PQresultStatus.restype = _i
_pq.PQresultStatus.argtypes = [_v]
_pq.PQresultErrorField.restype = _c
_pq.PQresultErrorField.argtypes = [_v, _i]
_pq.PQresultErrorMessage.restype = _c
_pq.PQresultErrorMessage.argtypes = [_v]
_pq.PQntuples.restype = _i
_pq.PQntuples.argtypes = [_v]
_pq.PQnfields.restype = _i
_pq.PQnfields.argtypes = [_v]
_pq.PQfname.restype = _c
_pq.PQfname.argtypes = [_v, _i]
_pq.PQftype.restype = ctypes.c_uint
_pq.PQftype.argtypes = [_v, _i]
_pq.PQgetvalue.restype = _v
_pq.PQgetvalue.argtypes = [_v, _i, _i]
_pq.PQgetlength.restype = _i
_pq.PQgetlength.argtypes = [_v, _i, _i]
_pq.PQgetisnull.restype = _i
_pq.PQgetisnull.argtypes = [_v, _i, _i]
_pq.PQclear.restype = None
_pq.PQclear.argtypes = [_v]
_pq.PQtransactionStatus.restype = _i
_pq.PQtransactionStatus.argtypes = [_v]
_pq.PQsetClientEncoding.restype = _i
_pq.PQsetClientEncoding.argtypes = [_v, _c]

_NOTICE_RECEIVER = ctypes.CFUNCTYPE(None, _v, _v)
_pq.PQsetNoticeReceiver.restype = _v
_pq.PQsetNoticeReceiver.argtypes = [_v, _NOTICE_RECEIVER, _v]

CONNECTION_OK = 0
PGRES_COMMAND_OK = 1
PGRES_TUPLES_OK = 2

PG_DIAG_SEVERITY = ord("S")
PG_DIAG_SQLSTATE = ord("C")
PG_DIAG_MESSAGE_PRIMARY = ord("M")
PG_DIAG_MESSAGE_DETAIL = ord("D")
PG_DIAG_MESSAGE_HINT = ord("H")
PG_DIAG_CONTEXT = ord("W")

PQTRANS_IDLE = 0
PQTRANS_INTRANS = 2
PQTRANS_INERROR = 3

# type OIDs hasql uses for PostgREST's parameters
UNKNOWN = 705
JSON = 114
TEXT = 25


def _field(res, code):
    value = _pq.PQresultErrorField(res, code)
    return value.decode() if value is not None else None


class PgError(Exception):
    """A server error: sqlstate, message, detail, hint as PostgreSQL sent them."""

    def __init__(self, sqlstate, message, detail=None, hint=None, context=None):
        super().__init__("%s: %s" % (sqlstate, message))
        self.sqlstate = sqlstate
        self.message = message
        self.detail = detail
        self.hint = hint
        self.context = context


class Result:
    def __init__(self, columns, types, rows, notices):
        self.columns = columns
        self.types = types
        self.rows = rows
        self.notices = notices

    def scalar(self):
        return self.rows[0][0]


class Connection:
    """One libpq connection.  Statements are prepared once per SQL text and
    then executed with bound parameters, like hasql's prepared statements."""

    def __init__(self, conninfo):
        self._conn = _pq.PQconnectdb(conninfo.encode())
        if _pq.PQstatus(self._conn) != CONNECTION_OK:
            message = _pq.PQerrorMessage(self._conn).decode()
            _pq.PQfinish(self._conn)
            self._conn = None
            raise ConnectionError(message)
        _pq.PQsetClientEncoding(self._conn, b"UTF8")
        self._statements = {}
        self.notices = []
        self._receiver = _NOTICE_RECEIVER(self._on_notice)
        _pq.PQsetNoticeReceiver(self._conn, self._receiver, None)

    def _on_notice(self, arg, res):
        self.notices.append({
            "severity": _field(res, PG_DIAG_SEVERITY),
            "sqlstate": _field(res, PG_DIAG_SQLSTATE),
            "message": _field(res, PG_DIAG_MESSAGE_PRIMARY),
            "hint": _field(res, PG_DIAG_MESSAGE_HINT),
        })

    def close(self):
        if self._conn is not None:
            _pq.PQfinish(self._conn)
            self._conn = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def transaction_status(self):
        return _pq.PQtransactionStatus(self._conn)

    def _check(self, res):
        status = _pq.PQresultStatus(res)
        if status in (PGRES_COMMAND_OK, PGRES_TUPLES_OK):
            return
        sqlstate = _field(res, PG_DIAG_SQLSTATE)
        if sqlstate is None:
            message = (_pq.PQresultErrorMessage(res) or _pq.PQerrorMessage(self._conn)).decode()
            _pq.PQclear(res)
            raise ConnectionError(message)
        error = PgError(sqlstate, _field(res, PG_DIAG_MESSAGE_PRIMARY),
                        _field(res, PG_DIAG_MESSAGE_DETAIL), _field(res, PG_DIAG_MESSAGE_HINT),
                        _field(res, PG_DIAG_CONTEXT))
        _pq.PQclear(res)
        raise error

    def execute(self, sql, params=(), types=None, binary=False):
        """Prepares sql (once) with the given parameter type OIDs and runs it
        with params (str or None each).  Returns a Result with text values;
        raises PgError with the SQLSTATE on a server error."""
        n = len(params)
        if types is None:
            types = [UNKNOWN] * n
        key = (sql, tuple(types))
        name = self._statements.get(key)
        if name is None:
            name = ("s%d" % len(self._statements)).encode()
            oids = (ctypes.c_uint * n)(*types) if n else None
            res = _pq.PQprepare(self._conn, name, sql.encode(), n, oids)
            self._check(res)
            _pq.PQclear(res)
            self._statements[key] = name
        values = (_c * n)()
        lengths = (_i * n)()
        formats = (_i * n)()
        for i, value in enumerate(params):
            if value is None:
                values[i] = None
            else:
                data = value.encode() if isinstance(value, str) else value
                values[i] = data
                lengths[i] = len(data)
            formats[i] = 1 if binary else 0
        self.notices = []
        res = _pq.PQexecPrepared(self._conn, name, n, values if n else None,
                                 lengths if n else None, formats if n else None, 0)
        self._check(res)
        columns = [_pq.PQfname(res, j).decode() for j in range(_pq.PQnfields(res))]
        column_types = [_pq.PQftype(res, j) for j in range(len(columns))]
        rows = []
        for r in range(_pq.PQntuples(res)):
            row = []
            for j in range(len(columns)):
                if _pq.PQgetisnull(res, r, j):
                    row.append(None)
                else:
                    length = _pq.PQgetlength(res, r, j)
                    row.append(ctypes.string_at(_pq.PQgetvalue(res, r, j), length).decode())
            rows.append(row)
        _pq.PQclear(res)
        return Result(columns, column_types, rows, list(self.notices))


def quote_literal(text):
    """For the few DDL statements that cannot take parameters (CREATE ROLE)."""
    return "'" + text.replace("'", "''") + "'"


def quote_ident(name):
    return '"' + name.replace('"', '""') + '"'
