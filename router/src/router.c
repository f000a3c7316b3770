/*
 * router.c: moment's API over several shards, routed by PL/Proxy.
 *
 * Every API function of the router's schema moment is this one C function,
 * moment_router_call, declared with the signature moment gives it (the
 * declarations are generated from moment's catalog: router/generate.py).  A
 * call
 *
 *   1. finds the shard: the company of the REST path for api, else the
 *      company in force (moment.company, else the "company" claim of
 *      request.jwt.claims), looked up in the directory; an unknown company,
 *      or none, goes to the first shard, which answers as a direct call would;
 *   2. calls the function's PL/Proxy function (moment_router_proxy.*) with
 *      the shard's connection string and the settings that shape a request;
 *      PL/Proxy connects as the calling role, so the shard decides grants;
 *   3. raises what the shard's moment_internal.routed_call returned as data
 *      (warnings, notices, the error with every field) as the shard raised
 *      it, and returns the result.  jsonb results arrive as their in-memory
 *      bytes and are returned as they are.
 *
 * A shard out of reach is 08006; a connection lost during a write is 08007
 * (the write may have committed).  api never raises for these: it answers
 * 503 (error_type unavailable), as it answers a write refused during a move
 * (55006, error_type retry, answered by the shard itself).
 *
 * The directory and the list of shards are cached per backend and dropped
 * when their tables change (moment_router.directory_changed).
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "common/jsonapi.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "libpq-fe.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/resowner.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/tuplestore.h"

PG_MODULE_MAGIC;

/* One setting that shapes a request, as moment defines it (settings.h). */
typedef struct RouterSetting
{
	const char *name;
	const char *short_desc;
	const char *long_desc;
	char		type;			/* s string, i integer, e enum, b bool, r real */
	GucContext	context;
	const char *boot;
	double		min;
	double		max;
	const struct config_enum_entry *options;
	int			flags;			/* units */
	char		forward;		/* v passed on, c passed on when changed in the session, n not */
} RouterSetting;

#include "settings.h"
#include "shared.h"

#define NSETTINGS lengthof(router_settings)

/* The fields of one entry of a reply (moment's src/shard.c). */
#define REPLY_FIELDS 14

#define MAX_CACHED_COMPANIES 65536
#define CODE_MAX 256

void		_PG_init(void);

/* storage of the settings this library defines */
static char *string_values[NSETTINGS];
static int	int_values[NSETTINGS];
static bool bool_values[NSETTINGS];
static double real_values[NSETTINGS];

typedef struct Route
{
	Oid			fn_oid;			/* hash key */
	Oid			proxy_oid;
	char		routing;		/* c company in force, p REST path, s shard named first */
	bool		writes;
	int			path_arg;		/* p: the path and method arguments */
	int			method_arg;
	bool		retset;
	bool		returns_row;	/* a row, not a scalar (OUT parameters, a row type) */
	bool		reply_only;		/* the proxy returns just the reply */
	int			nresults;		/* result columns after the reply */
	bool		raw_jsonb[FUNC_MAX_ARGS];	/* result column i is jsonb sent as bytea */
	TupleDesc	proxy_desc;		/* (reply, c1, ...); NULL when reply_only */
	FmgrInfo	proxy;			/* copied per call: a SETOF proxy keeps state in fn_extra */
} Route;

typedef struct Shard
{
	char	   *name;
	char	   *conninfo;
	text	   *conninfo_text;
} Shard;

typedef struct CompanyRoute
{
	char		code[CODE_MAX];	/* hash key */
	int			shard;			/* index in shards, -1 when no shard has it */
} CompanyRoute;

static MemoryContext router_context = NULL;
static HTAB *routes = NULL;
static HTAB *directory = NULL;
static List *shards = NIL;
static bool shards_loaded = false;
static Oid	registry_relid = InvalidOid;
static Oid	directory_relid = InvalidOid;
static Oid	routes_relid = InvalidOid;

/* the last request.jwt.claims seen and its company claim (shared.h) */
static ClaimsMemo claims_memo;

/* PL/Proxy's own notices ("dropping stale conn") stay in the server log */
static bool quiet_proxy = false;
static emit_log_hook_type previous_emit_log_hook = NULL;

/* purges of moved companies' rows, run once the move has committed */
typedef struct PendingPurge
{
	char	   *shard;
	char	   *conninfo;
	char	   *user;
	int64		company_id;
	char	   *code;
} PendingPurge;

static List *pending_purges = NIL;

/* ---- caches ---- */

/*
 * An invalidation (which any lock taken during a call, in PL/Proxy's SPI
 * queries too, may deliver) only marks a cache stale: it is dropped at the
 * start of the next call, or before the directory is read again, never
 * under the pointers of a call that runs.
 */
static MemoryContext route_context = NULL;
static bool directory_stale = false;
static bool routes_stale = false;

static void
reset_directory(void)
{
	directory = NULL;
	shards = NIL;
	shards_loaded = false;
	directory_stale = false;
	if (router_context != NULL)
		MemoryContextReset(router_context);
}

static void
reset_routes(void)
{
	routes = NULL;
	routes_stale = false;
	if (route_context != NULL)
		MemoryContextReset(route_context);
}

static void
relcache_callback(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == registry_relid || relid == directory_relid)
		directory_stale = true;
	if (!OidIsValid(relid) || relid == routes_relid)
		routes_stale = true;
}

static void
proc_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	routes_stale = true;
}

/* The owner of extension moment_router: the directory is read as that role. */
static Oid
router_owner(void)
{
	Oid			owner = InvalidOid;
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum("moment_router"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
		owner = ((Form_pg_extension) GETSTRUCT(tuple))->extowner;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	if (!OidIsValid(owner))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("extension \"moment_router\" is not installed in this database")));
	return owner;
}

/*
 * Runs a read of the router's catalog as its owner, with a fresh snapshot
 * (a directory change committed since our statement began counts), in a
 * restricted context; every statement is fully qualified.
 */
static void
catalog_read(const char *sql, int nargs, Oid *argtypes, Datum *values)
{
	Oid			saved_user;
	int			saved_context;
	int			rc;
	SPIPlanPtr	plan;

	GetUserIdAndSecContext(&saved_user, &saved_context);
	SetUserIdAndSecContext(router_owner(), saved_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	plan = SPI_prepare(sql, nargs, argtypes);
	if (plan == NULL)
		elog(ERROR, "moment_router: preparing a read of the router's catalog failed: %s",
			 SPI_result_code_string(SPI_result));
	rc = SPI_execute_snapshot(plan, values, NULL, GetLatestSnapshot(), InvalidSnapshot, true, false, 0);
	SPI_freeplan(plan);
	SetUserIdAndSecContext(saved_user, saved_context);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "moment_router: reading the router's catalog failed: %s", SPI_result_code_string(rc));
}

static void
ensure_context(void)
{
	if (router_context == NULL)
	{
		router_context = AllocSetContextCreate(CacheMemoryContext, "moment_router directory",
											   ALLOCSET_DEFAULT_SIZES);
		route_context = AllocSetContextCreate(CacheMemoryContext, "moment_router routes",
											  ALLOCSET_SMALL_SIZES);
	}
}

/* The shards, in the order they were added (valid until the directory is read again). */
static List *
shard_list(void)
{
	MemoryContext old;

	if (directory_stale)
		reset_directory();
	if (shards_loaded)
		return shards;
	ensure_context();
	SPI_connect();
	catalog_read("SELECT s.name, s.conninfo FROM moment_router.shard_registry s ORDER BY s.position",
				 0, NULL, NULL);
	old = MemoryContextSwitchTo(router_context);
	shards = NIL;
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		Shard	   *shard = palloc0(sizeof(Shard));

		shard->name = pstrdup(SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
		shard->conninfo = pstrdup(SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2));
		shard->conninfo_text = cstring_to_text(shard->conninfo);
		shards = lappend(shards, shard);
	}
	MemoryContextSwitchTo(old);
	SPI_finish();
	if (!OidIsValid(registry_relid))
	{
		Oid			nsp = get_namespace_oid("moment_router", false);

		registry_relid = get_relname_relid("shard_registry", nsp);
		directory_relid = get_relname_relid("company_directory", nsp);
		routes_relid = get_relname_relid("routes", nsp);
	}
	/* a change that came in during the read: read again next time */
	shards_loaded = !directory_stale;
	return shards;
}

/* A copy of a shard in the caller's memory: a call keeps it while caches change. */
static Shard *
copy_shard(Shard *shard)
{
	Shard	   *copy = palloc(sizeof(Shard));

	copy->name = pstrdup(shard->name);
	copy->conninfo = pstrdup(shard->conninfo);
	copy->conninfo_text = (text *) PG_DETOAST_DATUM_COPY(PointerGetDatum(shard->conninfo_text));
	return copy;
}

static Shard *
shard_named(const char *name)
{
	ListCell   *cell;

	foreach(cell, shard_list())
		if (strcmp(((Shard *) lfirst(cell))->name, name) == 0)
			return copy_shard(lfirst(cell));
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown shard \"%s\"", name)));
	return NULL;				/* not reached */
}

/* The first shard added, or NULL. */
static Shard *
first_shard(void)
{
	List	   *all = shard_list();

	return all != NIL ? copy_shard(linitial(all)) : NULL;
}

/* The shard of a company (a copy), or NULL when the directory does not know it. */
static Shard *
company_shard(const char *code)
{
	CompanyRoute *entry;
	bool		found;
	bool		cacheable = strlen(code) < CODE_MAX;
	char	   *name = NULL;
	List	   *all;

	all = shard_list();
	if (cacheable && directory != NULL && !directory_stale)
	{
		entry = hash_search(directory, code, HASH_FIND, NULL);
		if (entry != NULL)
			return entry->shard >= 0 ? copy_shard(list_nth(all, entry->shard)) : NULL;
	}

	{
		Oid			argtypes[1] = {TEXTOID};
		Datum		values[1];

		MemoryContext caller = CurrentMemoryContext;

		values[0] = CStringGetTextDatum(code);
		SPI_connect();
		catalog_read("SELECT d.shard FROM moment_router.company_directory d WHERE d.code OPERATOR(pg_catalog.=) $1",
					 1, argtypes, values);
		if (SPI_processed > 0)
			name = MemoryContextStrdup(caller, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
		SPI_finish();
	}

	/* the list again: the read may have brought a change */
	all = shard_list();
	{
		int			index = -1;
		ListCell   *cell;

		foreach(cell, all)
			if (name != NULL && strcmp(((Shard *) lfirst(cell))->name, name) == 0)
				index = foreach_current_index(cell);
		if (cacheable && !directory_stale)
		{
			if (directory == NULL || hash_get_num_entries(directory) >= MAX_CACHED_COMPANIES)
			{
				HASHCTL		ctl;

				ctl.keysize = CODE_MAX;
				ctl.entrysize = sizeof(CompanyRoute);
				ctl.hcxt = router_context;
				directory = hash_create("moment_router companies", 256, &ctl,
										HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
			}
			entry = hash_search(directory, code, HASH_ENTER, &found);
			entry->shard = index;
		}
		return index >= 0 ? copy_shard(list_nth(all, index)) : NULL;
	}
}

/* The route of a router function, from moment_router.routes. */
pg_noinline static Route *
route_of(Oid fn_oid)
{
	Route	   *route;
	bool		found;
	Oid			argtypes[1] = {OIDOID};
	Datum		values[1];
	TypeFuncClass proxy_class;
	Oid			proxy_type;
	TupleDesc	proxy_desc;
	HeapTuple	proc;

	ensure_context();
	if (routes == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(Route);
		ctl.hcxt = route_context;
		routes = hash_create("moment_router routes", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	route = hash_search(routes, &fn_oid, HASH_FIND, NULL);
	if (route != NULL)
		return route;

	values[0] = ObjectIdGetDatum(fn_oid);
	SPI_connect();
	catalog_read("SELECT r.proxy::pg_catalog.oid, r.routing, r.writes FROM moment_router.routes r "
				 "WHERE r.function::pg_catalog.oid OPERATOR(pg_catalog.=) $1", 1, argtypes, values);
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("function %s is not routed by moment_router", format_procedure(fn_oid))));
	{
		bool		isnull;
		Oid			proxy_oid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		char		routing = DatumGetChar(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
		bool		writes = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));

		SPI_finish();
		route = hash_search(routes, &fn_oid, HASH_ENTER, &found);
		memset(((char *) route) + sizeof(Oid), 0, sizeof(Route) - sizeof(Oid));
		route->proxy_oid = proxy_oid;
		route->routing = routing;
		route->writes = writes;
	}
	route->path_arg = route->method_arg = -1;

	/* api: where its path and method are */
	proc = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn_oid));
	if (!HeapTupleIsValid(proc))
		elog(ERROR, "cache lookup failed for function %u", fn_oid);
	route->retset = ((Form_pg_proc) GETSTRUCT(proc))->proretset;
	if (route->routing == 'p')
	{
		Oid		   *types;
		char	  **names;
		char	   *modes;
		int			n = get_func_arg_info(proc, &types, &names, &modes);

		for (int i = 0; i < n && names; i++)
		{
			if (strcmp(names[i], "path") == 0)
				route->path_arg = i;
			else if (strcmp(names[i], "method") == 0)
				route->method_arg = i;
		}
	}
	ReleaseSysCache(proc);

	proxy_class = get_func_result_type(route->proxy_oid, &proxy_type, &proxy_desc);
	if (proxy_class == TYPEFUNC_SCALAR && proxy_type == TEXTARRAYOID)
		route->reply_only = true;
	else if (proxy_class == TYPEFUNC_COMPOSITE && proxy_desc->natts >= 2 && proxy_desc->natts <= FUNC_MAX_ARGS)
	{
		MemoryContext old = MemoryContextSwitchTo(route_context);

		route->proxy_desc = CreateTupleDescCopy(proxy_desc);
		MemoryContextSwitchTo(old);
		route->nresults = proxy_desc->natts - 1;
		for (int i = 0; i < route->nresults; i++)
			route->raw_jsonb[i] = TupleDescAttr(proxy_desc, i + 1)->atttypid == BYTEAOID;
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("proxy %s of %s does not return a reply", format_procedure(route->proxy_oid),
						format_procedure(fn_oid))));
	/* the router's function returns what the proxy brings back */
	{
		Oid			rettype;
		TupleDesc	desc;
		TypeFuncClass class = get_func_result_type(fn_oid, &rettype, &desc);
		int			columns = 0;

		if (class == TYPEFUNC_COMPOSITE)
		{
			for (int i = 0; i < desc->natts; i++)
				columns += TupleDescAttr(desc, i)->attisdropped ? 0 : 1;
			route->returns_row = true;
		}
		else
			columns = rettype == VOIDOID ? 0 : 1;
		if (columns != route->nresults)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("%s returns %d columns, its proxy %s brings back %d", format_procedure(fn_oid),
							columns, format_procedure(route->proxy_oid), route->nresults),
					 errhint("Run router/generate.py again: the router no longer matches moment.")));
	}
	fmgr_info_cxt(route->proxy_oid, &route->proxy, route_context);
	return route;
}

/* ---- the company in force ---- */


/*
 * The company of a REST path /api/1.0/companies/{code}/..., percent-decoded,
 * or NULL (the shard's api says what is wrong with a malformed path).
 */
static char *
path_company(const char *path)
{
	const char *p = path;
	const char *prefix[] = {"api", "1.0", "companies"};
	const char *start;
	StringInfoData code;

	for (int i = 0; i < 3; i++)
	{
		int			len = strlen(prefix[i]);

		while (*p == '/')
			p++;
		if (strncmp(p, prefix[i], len) != 0 || (p[len] != '/'))
			return NULL;
		p += len;
	}
	while (*p == '/')
		p++;
	start = p;
	while (*p && *p != '/' && *p != '?' && *p != '#')
		p++;
	if (p == start)
		return NULL;
	initStringInfo(&code);
	for (const char *c = start; c < p; c++)
	{
		if (*c == '%')
		{
			int			high = c + 1 < p ? hex_value(c[1]) : -1;
			int			low = c + 2 < p ? hex_value(c[2]) : -1;

			if (high < 0 || low < 0 || (high == 0 && low == 0))
				return NULL;
			appendStringInfoChar(&code, (char) (high * 16 + low));
			c += 2;
		}
		else
			appendStringInfoChar(&code, *c);
	}
	if (!pg_verifymbstr(code.data, code.len, true))
		return NULL;
	return code.data;
}

/* The "company" claim of request.jwt.claims, or NULL (as moment's tenant.c reads it). */
static const char *
claimed_company(void)
{
	/* malformed claims route to the first shard, which raises what moment raises for them */
	return claims_company(&claims_memo, GetConfigOption("request.jwt.claims", true, false), true);
}

static const char *
company_in_force(void)
{
	const char *code = GetConfigOption("moment.company", true, false);

	if (code != NULL && code[0] != '\0')
		return code;
	return claimed_company();
}

/* ---- the settings of a call ---- */

/* name, value pairs of the settings that shape a request, for routed_call */
static Datum
call_settings(void)
{
	Datum		elems[2 * (NSETTINGS + 2)];
	int			n = 0;
	const char *claims = GetConfigOption("request.jwt.claims", true, false);
	int			dims[1];
	int			lbs[1] = {1};

	for (int i = 0; i < NSETTINGS; i++)
	{
		const char *value;

		if (router_settings[i].forward == 'n')
			continue;
		value = GetConfigOption(router_settings[i].name, true, false);
		if (value == NULL)
			continue;
		/* a superuser's bound: only when this session changed it, to lower the shard's */
		if (router_settings[i].forward == 'c')
		{
			const char *reset = GetConfigOptionResetString(router_settings[i].name);

			if (reset != NULL && strcmp(reset, value) == 0)
				continue;
			elems[n++] = CStringGetTextDatum(psprintf("lower:%s", router_settings[i].name));
			elems[n++] = CStringGetTextDatum(value);
			continue;
		}
		elems[n++] = CStringGetTextDatum(router_settings[i].name);
		elems[n++] = CStringGetTextDatum(value);
	}
	elems[n++] = CStringGetTextDatum("request.jwt.claims");
	elems[n++] = CStringGetTextDatum(claims ? claims : "");
	if (XactReadOnly)
	{
		elems[n++] = CStringGetTextDatum("transaction_read_only");
		elems[n++] = CStringGetTextDatum("on");
	}
	dims[0] = n;
	return PointerGetDatum(construct_md_array(elems, NULL, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT));
}

/* ---- what the shard raised ---- */

/*
 * A file or function name of the shard's, kept for good: the error machinery
 * keeps such names as pointers (they are string constants where it comes
 * from).  Few distinct ones exist; past MAX_SOURCE_NAMES, NULL.
 */
#define MAX_SOURCE_NAMES 4096
static HTAB *source_names = NULL;

static const char *
source_name(const char *name)
{
	char		key[NAMEDATALEN * 2];
	bool		found;
	char	   *entry;

	if (name == NULL || strlen(name) >= sizeof(key))
		return NULL;
	if (source_names == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(key);
		ctl.entrysize = sizeof(key);
		source_names = hash_create("moment_router source names", 64, &ctl, HASH_ELEM | HASH_STRINGS);
	}
	strlcpy(key, name, sizeof(key));
	entry = hash_search(source_names, key, HASH_FIND, NULL);
	if (entry == NULL && hash_get_num_entries(source_names) < MAX_SOURCE_NAMES)
		entry = hash_search(source_names, key, HASH_ENTER, &found);
	return entry;
}

/*
 * Raises one entry of a reply as the shard raised it: severity, SQLSTATE,
 * message, detail, hint, context and the diagnostic fields.
 */
static void
raise_entry(int elevel, char **f)
{
	const char *state = f[1] ? f[1] : "XX000";

	if (strlen(state) != 5)
		state = "XX000";
	if (errstart(elevel, TEXTDOMAIN))
	{
		errcode(MAKE_SQLSTATE(state[0], state[1], state[2], state[3], state[4]));
		errmsg_internal("%s", f[2] ? f[2] : "");
		if (f[3])
			errdetail_internal("%s", f[3]);
		if (f[4])
			errhint("%s", f[4]);
		if (f[5])
		{
			set_errcontext_domain(TEXTDOMAIN);
			errcontext_msg("%s", f[5]);
		}
		if (f[6])
			err_generic_string(PG_DIAG_SCHEMA_NAME, f[6]);
		if (f[7])
			err_generic_string(PG_DIAG_TABLE_NAME, f[7]);
		if (f[8])
			err_generic_string(PG_DIAG_COLUMN_NAME, f[8]);
		if (f[9])
			err_generic_string(PG_DIAG_DATATYPE_NAME, f[9]);
		if (f[10])
			err_generic_string(PG_DIAG_CONSTRAINT_NAME, f[10]);
		/* where the shard raised it, as psql's VERBOSITY verbose shows it */
		if (source_name(f[11]) && f[12] && source_name(f[13]))
			errfinish(source_name(f[11]), atoi(f[12]), source_name(f[13]));
		else
			errfinish(__FILE__, __LINE__, PG_FUNCNAME_MACRO);
	}
}

/* Raises a reply's warnings and notices, applies its settings, then raises its error. */
static void
raise_reply(Datum reply)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	char	   *error[REPLY_FIELDS] = {NULL};
	bool		failed = false;

	deconstruct_array(DatumGetArrayTypeP(reply), TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (int i = 0; i + REPLY_FIELDS <= n; i += REPLY_FIELDS)
	{
		char	   *f[REPLY_FIELDS];

		for (int k = 0; k < REPLY_FIELDS; k++)
			f[k] = nulls[i + k] ? NULL : TextDatumGetCString(elems[i + k]);
		if (f[0] == NULL)
			continue;
		if (strcmp(f[0], "SET") == 0)
		{
			/* PostgREST's response.status and response.headers */
			if (f[2] && f[3] && strncmp(f[2], "response.", 9) == 0)
				(void) set_config_option(f[2], f[3], superuser() ? PGC_SUSET : PGC_USERSET,
										 PGC_S_SESSION, GUC_ACTION_LOCAL, true, 0, false);
		}
		else if (strcmp(f[0], "ERROR") == 0)
		{
			memcpy(error, f, sizeof(f));
			failed = true;
		}
		else
			raise_entry(strcmp(f[0], "WARNING") == 0 ? WARNING :
						strcmp(f[0], "INFO") == 0 ? INFO : NOTICE, f);
	}
	if (failed)
		raise_entry(ERROR, error);
}

/* ---- PL/Proxy's own errors ---- */

static bool
starts_with(const char *text, const char *prefix)
{
	return text != NULL && strncmp(text, prefix, strlen(prefix)) == 0;
}

static char *
without_prefix(const char *text, const char *prefix)
{
	return pstrdup(starts_with(text, prefix) ? text + strlen(prefix) : text);
}

/* an error of the router's own (raised with ThrowErrorData, which reports it) */
static ErrorData *
connection_error(int sqlerrcode, char *message, char *detail, char *hint)
{
	ErrorData  *edata = palloc0(sizeof(ErrorData));

	edata->elevel = ERROR;
	edata->sqlerrcode = sqlerrcode;
	edata->filename = __FILE__;
	edata->lineno = __LINE__;
	edata->funcname = PG_FUNCNAME_MACRO;
	edata->assoc_context = CurrentMemoryContext;
	edata->message = message;
	edata->detail = detail;
	edata->hint = hint;
	return edata;
}

static ErrorData *
lost_connection(Shard *shard, bool writes, const char *reason)
{
	if (writes)
		return connection_error(ERRCODE_TRANSACTION_RESOLUTION_UNKNOWN,
								psprintf("connection to shard \"%s\" was lost during a write", shard->name),
								psprintf("The write may have committed: %s", reason),
								pstrdup("Read the object back before writing it again."));
	return connection_error(ERRCODE_CONNECTION_FAILURE,
							psprintf("connection to shard \"%s\" was lost", shard->name),
							pstrdup(reason), NULL);
}

/*
 * An error of the PL/Proxy call, in the API's terms.  PL/Proxy's own errors
 * ("PL/Proxy function f(n): [db] PQconnectPoll: ...") are 08006 when no
 * connection was made; otherwise the connection was lost: 08007 during a
 * write (it may have committed), 08006 during a read.  A remote error
 * PL/Proxy passed on ("f(n): [db] REMOTE ERROR: msg", "Remote detail: ...")
 * comes without those prefixes: the shard raised it outside routed_call (its
 * server shutting down, a cancel, a deadlock).  Anything else is as it was.
 */
static ErrorData *
proxy_error(ErrorData *edata, Shard *shard, bool writes)
{
	const char *message = edata->message ? edata->message : "";
	const char *remote = strstr(message, "] REMOTE ");

	if (edata->sqlerrcode == ERRCODE_INTERNAL_ERROR && starts_with(message, "PL/Proxy function "))
	{
		const char *step = strstr(message, "] ");
		const char *reason = step ? step + 2 : message;

		if (starts_with(reason, "PQconnectStart") || starts_with(reason, "PQconnectPoll") ||
			strstr(message, "connect timeout") != NULL)
			return connection_error(ERRCODE_CONNECTION_FAILURE,
									psprintf("could not connect to shard \"%s\"", shard->name),
									pstrdup(reason), NULL);
		return lost_connection(shard, writes, reason);
	}
	if (remote != NULL)
	{
		const char *colon = strstr(remote, ": ");
		const char *text = colon ? colon + 2 : message;

		if (ERRCODE_TO_CATEGORY(edata->sqlerrcode) == ERRCODE_TO_CATEGORY(ERRCODE_CONNECTION_EXCEPTION) ||
			edata->sqlerrcode == ERRCODE_ADMIN_SHUTDOWN || edata->sqlerrcode == ERRCODE_CRASH_SHUTDOWN ||
			edata->sqlerrcode == ERRCODE_CANNOT_CONNECT_NOW ||
			(edata->sqlerrcode == ERRCODE_INTERNAL_ERROR && strstr(message, "] REMOTE (null)") != NULL))
			return lost_connection(shard, writes, text);
		edata->message = pstrdup(text);
		if (edata->detail)
			edata->detail = without_prefix(edata->detail, "Remote detail: ");
		if (edata->hint)
			edata->hint = without_prefix(edata->hint, "Remote hint: ");
		if (edata->context)
			edata->context = without_prefix(edata->context, "Remote context: ");
	}
	return edata;
}

/*
 * emit_log_hook during a PL/Proxy call: its own notices ("PL/Proxy:
 * dropping stale conn") go to the server log only.  The hook only sees
 * messages bound for the log, so the call runs with log_min_messages at
 * NOTICE at most; other messages the log would not have had are kept from
 * it again.
 */
static int	saved_log_min_messages = WARNING;

static void
quiet_proxy_messages(ErrorData *edata)
{
	if (quiet_proxy && edata->elevel >= INFO && edata->elevel < ERROR)
	{
		if (starts_with(edata->message, "PL/Proxy"))
			edata->output_to_client = false;
		else if (saved_log_min_messages == LOG || saved_log_min_messages == LOG_SERVER_ONLY ||
				 edata->elevel < saved_log_min_messages)
			edata->output_to_server = false;
	}
	if (previous_emit_log_hook)
		previous_emit_log_hook(edata);
}

static void
quiet_proxy_begin(void)
{
	previous_emit_log_hook = emit_log_hook;
	emit_log_hook = quiet_proxy_messages;
	saved_log_min_messages = log_min_messages;
	if (log_min_messages > NOTICE || log_min_messages == LOG || log_min_messages == LOG_SERVER_ONLY)
		log_min_messages = NOTICE;
	quiet_proxy = true;
}

static void
quiet_proxy_end(void)
{
	quiet_proxy = false;
	log_min_messages = saved_log_min_messages;
	emit_log_hook = previous_emit_log_hook;
}

/* ---- the call ---- */

/*
 * A row the proxy returned: its reply (or (Datum) 0), and its result
 * columns in values/nulls.
 */
static Datum
take_row(Route *route, Datum row, bool isnull, Datum *values, bool *nulls, bool *has_reply)
{
	HeapTupleHeader header;
	HeapTupleData tuple;
	Datum		all[FUNC_MAX_ARGS + 1];
	bool		all_nulls[FUNC_MAX_ARGS + 1];

	*has_reply = false;
	if (route->reply_only)
	{
		*has_reply = !isnull;
		return row;
	}
	if (isnull)
	{
		for (int i = 0; i < route->nresults; i++)
			nulls[i] = true;
		return (Datum) 0;
	}
	header = DatumGetHeapTupleHeader(row);
	tuple.t_len = HeapTupleHeaderGetDatumLength(header);
	ItemPointerSetInvalid(&tuple.t_self);
	tuple.t_tableOid = InvalidOid;
	tuple.t_data = header;
	heap_deform_tuple(&tuple, route->proxy_desc, all, all_nulls);
	*has_reply = !all_nulls[0];
	for (int i = 0; i < route->nresults; i++)
	{
		nulls[i] = all_nulls[i + 1];
		/* jsonb sent as its in-memory bytes: the bytea's varlena is the jsonb */
		values[i] = nulls[i] ? (Datum) 0 :
			route->raw_jsonb[i] ? PointerGetDatum(PG_DETOAST_DATUM(all[i + 1])) : all[i + 1];
	}
	return all_nulls[0] ? (Datum) 0 : all[0];
}

/*
 * Whether a call may write: a volatile function, except api with GET.  A
 * connection lost during a write is 08007.
 */
static bool
call_writes(Route *route, FunctionCallInfo fcinfo)
{
	if (route->routing == 'p' && route->method_arg >= 0 && !PG_ARGISNULL(route->method_arg))
		return pg_strcasecmp(TextDatumGetCString(PG_GETARG_DATUM(route->method_arg)), "GET") != 0;
	return route->writes;
}

static void
push_string(JsonbParseState **state, JsonbIteratorToken token, const char *text)
{
	JsonbValue	v;

	v.type = jbvString;
	v.val.string.val = (char *) text;
	v.val.string.len = strlen(text);
	pushJsonbValue(state, token, &v);
}

/*
 * api answers every error as a status and a body: a shard out of reach too,
 * as 503 with error_type unavailable, in the form of moment's api.c.
 */
static Datum
api_unavailable(FunctionCallInfo fcinfo, ErrorData *edata)
{
	JsonbParseState *state = NULL;
	JsonbValue *document;
	Datum		values[2];
	bool		nulls[2] = {false, false};
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	push_string(&state, WJB_KEY, "error");
	push_string(&state, WJB_VALUE, edata->message ? edata->message : "error");
	push_string(&state, WJB_KEY, "error_type");
	push_string(&state, WJB_VALUE, "unavailable");
	push_string(&state, WJB_KEY, "details");
	pushJsonbValue(&state, WJB_BEGIN_ARRAY, NULL);
	if (edata->detail)
		push_string(&state, WJB_ELEM, edata->detail);
	if (edata->hint)
		push_string(&state, WJB_ELEM, edata->hint);
	push_string(&state, WJB_ELEM, psprintf("SQLSTATE %s", unpack_sql_state(edata->sqlerrcode)));
	pushJsonbValue(&state, WJB_END_ARRAY, NULL);
	document = pushJsonbValue(&state, WJB_END_OBJECT, NULL);

	/* PostgREST answers /rpc/api with this status */
	(void) set_config_option("response.status", "503", superuser() ? PGC_SUSET : PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_LOCAL, true, 0, false);
	if (rsinfo->setResult == NULL)
		InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	else
		tuplestore_clear(rsinfo->setResult);
	values[0] = Int32GetDatum(503);
	values[1] = JsonbPGetDatum(JsonbValueToJsonb(document));
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}

/* Raises an error: one of ours afresh, one caught from PL/Proxy as it was. */
static void
raise_error(ErrorData *edata) pg_attribute_noreturn();
static void
raise_error(ErrorData *edata)
{
	if (edata->filename != NULL && strcmp(edata->filename, __FILE__) == 0)
		ThrowErrorData(edata);
	ReThrowError(edata);
}

static bool
is_connection_error(ErrorData *edata)
{
	return edata->sqlerrcode == ERRCODE_CONNECTION_FAILURE ||
		edata->sqlerrcode == ERRCODE_TRANSACTION_RESOLUTION_UNKNOWN;
}

/*
 * The shard a call goes to (NULL: none has been added); *code is the
 * company it was chosen by (NULL when none).
 */
static Shard *
call_shard(Route *route, FunctionCallInfo fcinfo, const char **code_out)
{
	const char *code = NULL;
	Shard	   *shard = NULL;

	*code_out = NULL;
	if (route->routing == 's')
	{
		if (PG_ARGISNULL(0))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("no shard named")));
		return shard_named(TextDatumGetCString(PG_GETARG_DATUM(0)));
	}
	if (route->routing == 'p' && route->path_arg >= 0 && !PG_ARGISNULL(route->path_arg))
		code = path_company(TextDatumGetCString(PG_GETARG_DATUM(route->path_arg)));
	if (code == NULL)
		code = company_in_force();
	if (code != NULL && code[0] != '\0')
	{
		shard = company_shard(code);
		*code_out = shard ? pstrdup(code) : NULL;
	}
	/* no company, or one the directory does not know: the first shard answers as moment does */
	if (shard == NULL)
		shard = first_shard();
	return shard;
}

/* What one PL/Proxy call brought back. */
typedef struct CallResult
{
	Datum		values[FUNC_MAX_ARGS];	/* a non-set result */
	bool		nulls[FUNC_MAX_ARGS];
	Datum		reply;			/* valid when has_reply */
	bool		has_reply;
	ErrorData  *failure;		/* the call itself failed (PL/Proxy's error) */
} CallResult;

/*
 * Calls the function's PL/Proxy function on a shard: its connection string,
 * the settings, then the function's arguments.  A set goes into the
 * function's result store.  api's call runs in a subtransaction, so that a
 * failure (a shard out of reach, which api answers as 503) takes PL/Proxy's
 * state (its SPI connection) with it; other calls raise every failure, which
 * the caller does.
 */
static void
call_proxy(Route *route, Shard *shard, FunctionCallInfo fcinfo, CallResult *result)
{
	LOCAL_FCINFO(call, FUNC_MAX_ARGS);
	FmgrInfo	flinfo;
	int			first_arg = route->routing == 's' ? 1 : 0;
	MemoryContext caller_context = CurrentMemoryContext;
	ResourceOwner caller_owner = CurrentResourceOwner;
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	volatile Datum reply = (Datum) 0;
	volatile bool has_reply = false;
	ErrorData  *volatile failure = NULL;

	fmgr_info_copy(&flinfo, &route->proxy, CurrentMemoryContext);
	InitFunctionCallInfoData(*call, &flinfo, 2 + PG_NARGS() - first_arg, PG_GET_COLLATION(), NULL, NULL);
	call->args[0].value = PointerGetDatum(shard->conninfo_text);
	call->args[0].isnull = false;
	call->args[1].value = call_settings();
	call->args[1].isnull = false;
	for (int i = first_arg; i < PG_NARGS(); i++)
		call->args[2 + i - first_arg] = fcinfo->args[i];

	if (route->routing == 'p')
	{
		BeginInternalSubTransaction(NULL);
		MemoryContextSwitchTo(caller_context);
	}
	quiet_proxy_begin();
	PG_TRY();
	{
		if (!route->retset)
		{
			Datum		row = FunctionCallInvoke(call);
			bool		row_reply;

			reply = take_row(route, row, call->isnull, result->values, result->nulls, &row_reply);
			has_reply = row_reply;
		}
		else
		{
			ReturnSetInfo proxy_rsinfo;
			ExprContext *econtext = CreateStandaloneExprContext();

			memset(&proxy_rsinfo, 0, sizeof(proxy_rsinfo));
			proxy_rsinfo.type = T_ReturnSetInfo;
			proxy_rsinfo.econtext = econtext;
			proxy_rsinfo.expectedDesc = route->proxy_desc;
			proxy_rsinfo.allowedModes = (int) SFRM_ValuePerCall;
			proxy_rsinfo.returnMode = SFRM_ValuePerCall;
			call->resultinfo = (Node *) &proxy_rsinfo;
			for (;;)
			{
				Datum		row;
				Datum		values[FUNC_MAX_ARGS];
				bool		nulls[FUNC_MAX_ARGS];
				bool		row_reply;
				Datum		this_reply;

				CHECK_FOR_INTERRUPTS();
				call->isnull = false;
				proxy_rsinfo.isDone = ExprSingleResult;
				row = FunctionCallInvoke(call);
				if (proxy_rsinfo.isDone == ExprEndResult)
					break;
				this_reply = take_row(route, row, call->isnull, values, nulls, &row_reply);
				if (row_reply)
				{
					reply = this_reply;
					has_reply = true;
				}
				else if (!route->reply_only)
					tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
				if (proxy_rsinfo.isDone != ExprMultipleResult)
					break;
			}
			FreeExprContext(econtext, true);
		}
		if (route->routing == 'p')
		{
			ReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(caller_context);
			CurrentResourceOwner = caller_owner;
		}
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(caller_context);
		failure = CopyErrorData();
		FlushErrorState();
		if (route->routing == 'p')
		{
			RollbackAndReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(caller_context);
			CurrentResourceOwner = caller_owner;
		}
	}
	PG_END_TRY();
	quiet_proxy_end();
	result->reply = reply;
	result->has_reply = has_reply;
	result->failure = failure;
}

/*
 * Whether the shard refused the call with 55006 (an error; for api, its 503
 * answer): a write to a company being moved, or any call that reached the
 * shard a company left (moment.companies.moved) because it was routed just
 * before the switch.  The caller asks the directory again.
 */
static bool
refused_for_move(Route *route, CallResult *result)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	if (!result->has_reply || result->failure != NULL)
		return false;
	deconstruct_array(DatumGetArrayTypeP(result->reply), TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (int i = 0; i + REPLY_FIELDS <= n; i += REPLY_FIELDS)
	{
		char	   *severity = nulls[i] ? NULL : TextDatumGetCString(elems[i]);

		if (severity == NULL)
			continue;
		if (strcmp(severity, "ERROR") == 0 && !nulls[i + 1] &&
			strcmp(TextDatumGetCString(elems[i + 1]), "55006") == 0)
			return true;
		/* api answers 503 only for 55006 */
		if (route->routing == 'p' && strcmp(severity, "SET") == 0 && !nulls[i + 2] && !nulls[i + 3] &&
			strcmp(TextDatumGetCString(elems[i + 2]), "response.status") == 0 &&
			strcmp(TextDatumGetCString(elems[i + 3]), "503") == 0)
			return true;
	}
	return false;
}

/* Drops a company's cached route: the next lookup reads the directory. */
static void
forget_company(const char *code)
{
	if (directory != NULL && strlen(code) < CODE_MAX)
		hash_search(directory, code, HASH_REMOVE, NULL);
}

PG_FUNCTION_INFO_V1(moment_router_call);
Datum
moment_router_call(PG_FUNCTION_ARGS)
{
	Route	   *route;
	Shard	   *shard;
	const char *code;
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	CallResult	result;

	/* a directory change committed by another session counts from here */
	AcceptInvalidationMessages();
	if (directory_stale)
		reset_directory();
	if (routes_stale)
		reset_routes();
	route = route_of(fcinfo->flinfo->fn_oid);
	shard = call_shard(route, fcinfo, &code);
	if (shard == NULL)
	{
		ErrorData  *edata = connection_error(ERRCODE_CONNECTION_FAILURE,
											 pstrdup("no shard has been added to moment_router"), NULL,
											 pstrdup("Add one with moment_router.add_shard(name, conninfo)."));

		if (route->routing == 'p')
			return api_unavailable(fcinfo, edata);
		raise_error(edata);
	}
	if (route->retset)
		InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);

	for (int attempt = 0;; attempt++)
	{
		Shard	   *now;

		call_proxy(route, shard, fcinfo, &result);
		/*
		 * Refused by a shard for a move: when the directory, read afresh,
		 * names another shard by now, the call goes there (nothing was done
		 * where it was refused).
		 */
		if (code == NULL || attempt >= 2 || !refused_for_move(route, &result))
			break;
		forget_company(code);
		now = company_shard(code);
		if (now == NULL || now == shard || strcmp(now->name, shard->name) == 0)
			break;
		shard = now;
		if (route->retset)
			tuplestore_clear(rsinfo->setResult);
	}

	if (result.failure != NULL)
	{
		ErrorData  *failure = proxy_error(result.failure, shard, call_writes(route, fcinfo));

		if (route->routing == 'p' && is_connection_error(failure))
			return api_unavailable(fcinfo, failure);
		raise_error(failure);
	}

	/* what the shard raised, then the result */
	if (result.has_reply)
		raise_reply(result.reply);
	if (route->retset)
		return (Datum) 0;
	if (route->reply_only)
		PG_RETURN_VOID();
	if (!route->returns_row)
	{
		if (result.nulls[0])
			PG_RETURN_NULL();
		return result.values[0];
	}
	{
		TupleDesc	desc;

		if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
			elog(ERROR, "moment_router: %s does not return a row", format_procedure(fcinfo->flinfo->fn_oid));
		return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), result.values, result.nulls));
	}
}

/* ---- purges after a move ---- */

/*
 * A move deletes the company's rows from its old shard only once the
 * directory naming the new one has committed: until then the old shard is
 * where the company lives.  So the purge runs after the commit, on a
 * connection of its own (as the role that moved the company); if it cannot
 * run, a WARNING says so and moving the company again finishes it.  The
 * company's own row stays there, marked moved: a call routed before the
 * switch (by any router) gets 55006 and retries, instead of finding the
 * company gone.
 */
static void
run_purge(PendingPurge *purge)
{
	StringInfoData conninfo;
	PGconn	   *conn;
	PGresult   *result = NULL;
	char		id[32];
	const char *values[2];
	char	   *failure = NULL;

	initStringInfo(&conninfo);
	appendStringInfoString(&conninfo, purge->conninfo);
	if (strstr(purge->conninfo, "user=") == NULL)
	{
		appendStringInfoString(&conninfo, " user='");
		for (const char *c = purge->user; *c; c++)
		{
			if (*c == '\'' || *c == '\\')
				appendStringInfoChar(&conninfo, '\\');
			appendStringInfoChar(&conninfo, *c);
		}
		appendStringInfoChar(&conninfo, '\'');
	}
	if (strstr(purge->conninfo, "connect_timeout=") == NULL)
		appendStringInfoString(&conninfo, " connect_timeout=10");
	conn = PQconnectdb(conninfo.data);
	if (PQstatus(conn) != CONNECTION_OK)
		failure = pstrdup(PQerrorMessage(conn));
	else
	{
		snprintf(id, sizeof(id), INT64_FORMAT, purge->company_id);
		values[0] = id;
		values[1] = purge->code;
		result = PQexecParams(conn, "SELECT moment_internal.shard_purge_company($1::pg_catalog.int8, $2::pg_catalog.text, true)",
							  2, NULL, values, NULL, NULL, 0);
		if (PQresultStatus(result) != PGRES_TUPLES_OK)
			failure = pstrdup(PQresultErrorMessage(result));
		PQclear(result);
	}
	PQfinish(conn);
	if (failure != NULL)
		ereport(WARNING,
				(errmsg("company \"%s\" moved, but its rows could not be deleted from shard \"%s\"",
						purge->code, purge->shard),
				 errdetail_internal("%s", failure),
				 errhint("Run moment_router.move_company('%s', <its shard>) again to delete them.", purge->code)));
}

static void
xact_callback(XactEvent event, void *arg)
{
	List	   *purges = pending_purges;
	ListCell   *cell;

	if (pending_purges == NIL)
		return;
	switch (event)
	{
		case XACT_EVENT_PRE_PREPARE:
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot PREPARE a transaction that moved a company")));
			break;
		case XACT_EVENT_COMMIT:
			pending_purges = NIL;
			foreach(cell, purges)
				run_purge(lfirst(cell));
			break;
		case XACT_EVENT_ABORT:
			pending_purges = NIL;
			break;
		default:
			return;
	}
	/* everything of the list lives in TopMemoryContext */
	foreach(cell, purges)
	{
		PendingPurge *purge = lfirst(cell);

		pfree(purge->shard);
		pfree(purge->conninfo);
		pfree(purge->user);
		pfree(purge->code);
		pfree(purge);
	}
	list_free(purges);
}

PG_FUNCTION_INFO_V1(moment_router_purge_after_commit);
Datum
moment_router_purge_after_commit(PG_FUNCTION_ARGS)
{
	Shard	   *shard;
	PendingPurge *purge;
	MemoryContext old;

	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied: only a superuser may administer moment_router")));
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("a purge needs a shard, a company id and its code")));
	shard = shard_named(TextDatumGetCString(PG_GETARG_DATUM(0)));
	old = MemoryContextSwitchTo(TopMemoryContext);
	purge = palloc0(sizeof(PendingPurge));
	purge->shard = pstrdup(shard->name);
	purge->conninfo = pstrdup(shard->conninfo);
	purge->user = pstrdup(GetUserNameFromId(GetUserId(), false));
	purge->company_id = PG_GETARG_INT64(1);
	purge->code = TextDatumGetCString(PG_GETARG_DATUM(2));
	pending_purges = lappend(pending_purges, purge);
	MemoryContextSwitchTo(old);
	PG_RETURN_VOID();
}

/* Whether this transaction moved the company (its purge waits for the commit). */
PG_FUNCTION_INFO_V1(moment_router_moved_here);
Datum
moment_router_moved_here(PG_FUNCTION_ARGS)
{
	ListCell   *cell;

	foreach(cell, pending_purges)
		if (((PendingPurge *) lfirst(cell))->company_id == PG_GETARG_INT64(0))
			PG_RETURN_BOOL(true);
	PG_RETURN_BOOL(false);
}

/* ---- the rest ---- */

PG_FUNCTION_INFO_V1(moment_router_directory_changed);
Datum
moment_router_directory_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "moment_router_directory_changed: not called as a trigger");
	CacheInvalidateRelcacheByRelid(RelationGetRelid(trigdata->tg_relation));
	return PointerGetDatum(NULL);
}

PG_FUNCTION_INFO_V1(moment_router_format);
Datum
moment_router_format(PG_FUNCTION_ARGS)
{
#ifdef WORDS_BIGENDIAN
	PG_RETURN_TEXT_P(cstring_to_text("big-endian"));
#else
	PG_RETURN_TEXT_P(cstring_to_text("little-endian"));
#endif
}

/*
 * The settings that shape a request, with moment's definitions, unless
 * moment's library, loaded in this backend too, defined them already.
 */
static void
define_settings(void)
{
	for (int i = 0; i < NSETTINGS; i++)
	{
		const RouterSetting *s = &router_settings[i];

		if (GetConfigOption(s->name, true, false) != NULL &&
			!(GetConfigOptionFlags(s->name, true) & GUC_CUSTOM_PLACEHOLDER))
			continue;
		switch (s->type)
		{
			case 's':
				DefineCustomStringVariable(s->name, s->short_desc, s->long_desc, &string_values[i], s->boot,
										   s->context, s->flags, NULL, NULL, NULL);
				break;
			case 'i':
				DefineCustomIntVariable(s->name, s->short_desc, s->long_desc, &int_values[i], atoi(s->boot),
										(int) s->min, (int) s->max, s->context, s->flags, NULL, NULL, NULL);
				break;
			case 'e':
				DefineCustomEnumVariable(s->name, s->short_desc, s->long_desc, &int_values[i], atoi(s->boot),
										 s->options, s->context, s->flags, NULL, NULL, NULL);
				break;
			case 'b':
				DefineCustomBoolVariable(s->name, s->short_desc, s->long_desc, &bool_values[i],
										 strcmp(s->boot, "on") == 0, s->context, s->flags, NULL, NULL, NULL);
				break;
			case 'r':
				DefineCustomRealVariable(s->name, s->short_desc, s->long_desc, &real_values[i], atof(s->boot),
										 s->min, s->max, s->context, s->flags, NULL, NULL, NULL);
				break;
		}
	}
}

void
_PG_init(void)
{
	define_settings();
	MarkGUCPrefixReserved("moment");
	CacheRegisterRelcacheCallback(relcache_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(PROCOID, proc_callback, (Datum) 0);
	RegisterXactCallback(xact_callback, NULL);
}
