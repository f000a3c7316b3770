/*
 * moment.c: module entry point: settings, cache invalidation, triggers.
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

PG_MODULE_MAGIC;

char	   *moment_company_setting = NULL;
int			moment_default_limit = 1000;
int			moment_max_limit = MOMENT_HARD_LIMIT;
int			moment_max_batch_size = 10000;

void		_PG_init(void);

static void
invalidate_everything(void)
{
	registry_invalidate();
	tenant_invalidate();
	moment_reset_extension_cache();
}

static void
relcache_callback(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || registry_watches(relid))
		invalidate_everything();
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
							"Most rows a listing returns without no_limit.",
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
	MarkGUCPrefixReserved("moment");

	CacheRegisterRelcacheCallback(relcache_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(AUTHMEMROLEMEM, role_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(AUTHOID, role_callback, (Datum) 0);
	RegisterXactCallback(xact_callback, NULL);
}

/*
 * Statement trigger on the catalog tables: a relcache invalidation of the
 * catalog table, sent to every backend at commit, drops their caches.
 */
PG_FUNCTION_INFO_V1(moment_catalog_changed);
Datum
moment_catalog_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "moment_catalog_changed: not called as a trigger");
	CacheInvalidateRelcacheByRelid(RelationGetRelid(trigdata->tg_relation));
	return PointerGetDatum(NULL);
}

/* BEFORE UPDATE row trigger: updated_at = now(). */
PG_FUNCTION_INFO_V1(moment_set_updated_at);
Datum
moment_set_updated_at(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Relation	rel;
	int			attnum;
	Datum		value;
	bool		isnull = false;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) || !TRIGGER_FIRED_BEFORE(trigdata->tg_event))
		elog(ERROR, "moment_set_updated_at: must be fired BEFORE UPDATE FOR EACH ROW");

	rel = trigdata->tg_relation;
	attnum = SPI_fnumber(RelationGetDescr(rel), "updated_at");
	if (attnum <= 0)
		return PointerGetDatum(trigdata->tg_newtuple);
	value = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	return PointerGetDatum(heap_modify_tuple_by_cols(trigdata->tg_newtuple, RelationGetDescr(rel),
													 1, &attnum, &value, &isnull));
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
	Datum		values[3];
	bool		nulls[3] = {false, false, false};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "moment_cache_stats: return type must be a row type");
	values[0] = Int64GetDatum(plancache_size());
	values[1] = Int64GetDatum(plancache_prepared());
	values[2] = Int64GetDatum(registry_builds());
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls)));
}
