/*
 * moment.c: module entry point: settings, cache invalidation, cache statistics.
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/htup_details.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "moment.h"
#include "plancache.h"
#include "registry.h"
#include "tenant.h"
#include "webhook.h"

PG_MODULE_MAGIC;

char	   *moment_company_setting = NULL;
int			moment_default_limit = 1000;
int			moment_max_limit = MOMENT_HARD_LIMIT;
int			moment_max_batch_size = 10000;
int			moment_plan_cache_size = 32 * 1024;
int			moment_limit_exceeded = LIMIT_EXCEEDED_WARNING;

static const struct config_enum_entry limit_exceeded_options[] = {
	{"warning", LIMIT_EXCEEDED_WARNING, false},
	{"error", LIMIT_EXCEEDED_ERROR, false},
	{NULL, 0, false}
};

void		_PG_init(void);

/*
 * A relcache message concerns one watched table: a catalog table drops the
 * catalog level of the registry, companies and grants drop the tenant
 * cache, an entity's table drops that entity's table level only.  Anything
 * else (ANALYZE of an unrelated table) costs a lookup.
 */
static void
relcache_callback(Datum arg, Oid relid)
{
	if (!OidIsValid(relid))
	{
		registry_invalidate();
		tenant_invalidate();
		moment_reset_extension_cache();
		return;
	}
	switch (registry_watched_kind(relid))
	{
		case WATCHED_CATALOG:
			registry_invalidate();
			moment_reset_extension_cache();
			break;
		case WATCHED_TENANCY:
			tenant_invalidate();
			break;
		case WATCHED_ENTITY:
			registry_invalidate_table(relid);
			break;
		case WATCHED_NONE:
			break;
	}
}

static void
role_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	tenant_invalidate();
}

static void
xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			plancache_release_retired();
			registry_release_retired();
			break;
		default:
			break;
	}
}

void
_PG_init(void)
{
	DefineCustomStringVariable("moment.company",
							   "Code of the company (tenant) requests work on.",
							   "When empty, the \"company\" claim of request.jwt.claims is used.",
							   &moment_company_setting,
							   "",
							   PGC_USERSET,
							   0,
							   NULL, NULL, NULL);
	DefineCustomIntVariable("moment.default_limit",
							"Most rows a listing returns without no_limit (never more than moment.max_limit).",
							NULL,
							&moment_default_limit,
							1000, 1, MOMENT_HARD_LIMIT,
							PGC_USERSET,
							0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("moment.max_limit",
							"Most rows a listing returns with no_limit; never above 30000.",
							NULL,
							&moment_max_limit,
							MOMENT_HARD_LIMIT, 1, MOMENT_HARD_LIMIT,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("moment.max_batch_size",
							"Most instructions one batch may hold.",
							NULL,
							&moment_max_batch_size,
							10000, 1, 1000000,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("moment.plan_cache_size",
							"Memory a backend may keep for prepared statements and statement texts.",
							"The least recently used are evicted first.",
							&moment_plan_cache_size,
							32 * 1024, 256, INT_MAX / 1024,
							PGC_SUSET,
							GUC_UNIT_KB,
							NULL, NULL, NULL);
	DefineCustomEnumVariable("moment.limit_exceeded",
							 "What rows, list_* and the reports do when they cut rows at the cap.",
							 "warning: return the first rows and raise a WARNING; error: raise 54000.",
							 &moment_limit_exceeded,
							 LIMIT_EXCEEDED_WARNING,
							 limit_exceeded_options,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);
	webhook_init();
	MarkGUCPrefixReserved("moment");
	webhook_worker_register();

	CacheRegisterRelcacheCallback(relcache_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(AUTHMEMROLEMEM, role_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(AUTHOID, role_callback, (Datum) 0);
	RegisterXactCallback(xact_callback, NULL);
}

/*
 * What this backend has cached: kept plans, plans prepared since it
 * started, and registry builds.  For tests and for operators wondering
 * whether plans are reused.
 */
PG_FUNCTION_INFO_V1(moment_cache_stats);
Datum
moment_cache_stats(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[6];
	bool		nulls[6] = {false, false, false, false, false, false};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "moment_cache_stats: return type must be a row type");
	values[0] = Int64GetDatum(plancache_size());
	values[1] = Int64GetDatum(plancache_prepared());
	values[2] = Int64GetDatum(registry_builds());
	values[3] = Int64GetDatum(plancache_bytes());
	values[4] = Int64GetDatum(plancache_evicted());
	values[5] = Int64GetDatum(tenant_cached_companies());
	/* 0.1.0 declared the first three columns only */
	if (tupdesc->natts > 6)
		elog(ERROR, "moment_cache_stats: the declared row has %d columns", tupdesc->natts);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls)));
}
