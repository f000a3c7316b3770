/*
 * triggers.c: the extension's trigger functions, and the dependency of a
 * typed listing on its table.
 *
 * Trigger functions are not executable by PUBLIC (so nobody can attach them
 * to a table of their own), and each checks the table and column types it
 * touches before touching them, as contrib's moddatetime does.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/regproc.h"
#include "utils/date.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "tcop/pquery.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "moment.h"
#include "plancache.h"

/*
 * Row trigger (and TRUNCATE statement trigger) on the catalog tables: a
 * relcache invalidation of the table, sent to every backend at commit,
 * drops the cache that depends on it.  It only ever invalidates the table
 * it is attached to.
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

/* BEFORE UPDATE row trigger: updated_at = the transaction's start time. */
PG_FUNCTION_INFO_V1(moment_set_updated_at);
Datum
moment_set_updated_at(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Relation	rel;
	TupleDesc	tupdesc;
	int			attnum;
	Oid			type;
	Datum		value;
	bool		isnull = false;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) || !TRIGGER_FIRED_BEFORE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("moment.set_updated_at() must be fired BEFORE UPDATE FOR EACH ROW")));

	rel = trigdata->tg_relation;
	tupdesc = RelationGetDescr(rel);
	attnum = SPI_fnumber(tupdesc, "updated_at");
	if (attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_TRIGGERED_ACTION_EXCEPTION),
				 errmsg("table \"%s\" has no column updated_at for moment.set_updated_at()",
						RelationGetRelationName(rel))));
	/* the value written must be of the column's type */
	type = getBaseType(TupleDescAttr(tupdesc, attnum - 1)->atttypid);
	if (type == TIMESTAMPTZOID)
		value = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	else if (type == TIMESTAMPOID)
		value = DirectFunctionCall1(timestamptz_timestamp,
									TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()));
	else
		ereport(ERROR,
				(errcode(ERRCODE_TRIGGERED_ACTION_EXCEPTION),
				 errmsg("column updated_at of table \"%s\" is of type %s, not timestamptz",
						RelationGetRelationName(rel), format_type_be(TupleDescAttr(tupdesc, attnum - 1)->atttypid))));
	/* a domain's constraints hold for the value written, as for any other */
	if (type != TupleDescAttr(tupdesc, attnum - 1)->atttypid)
		domain_check(value, false, TupleDescAttr(tupdesc, attnum - 1)->atttypid,
					 &fcinfo->flinfo->fn_extra, fcinfo->flinfo->fn_mcxt);
	return PointerGetDatum(heap_modify_tuple_by_cols(trigdata->tg_newtuple, tupdesc,
													 1, &attnum, &value, &isnull));
}

/* ---- time records ---- */

typedef struct RecordColumns
{
	int			company_id;
	int			id;
	int			project_id;
	int			user_account_id;
	int			project_membership_id;
	int			project_extension_id;
	int			task_id;
	int			time_record_date;
} RecordColumns;

static int
bigint_column(TupleDesc tupdesc, const char *name, Oid type)
{
	int			attnum = SPI_fnumber(tupdesc, name);

	if (attnum <= 0 || TupleDescAttr(tupdesc, attnum - 1)->atttypid != type)
		ereport(ERROR,
				(errcode(ERRCODE_TRIGGERED_ACTION_EXCEPTION),
				 errmsg("moment's time record triggers need column %s of type %s", name, format_type_be(type))));
	return attnum;
}

/* The trigger must sit on moment.time_records, with its columns as made. */
static RecordColumns
time_record_columns(TriggerData *trigdata, const char *function)
{
	Relation	rel = trigdata->tg_relation;
	TupleDesc	tupdesc = RelationGetDescr(rel);
	RecordColumns columns;

	if (RelationGetRelid(rel) != get_relname_relid("time_records", moment_namespace()))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s only works on moment.time_records", function)));
	columns.company_id = bigint_column(tupdesc, "company_id", INT8OID);
	columns.id = bigint_column(tupdesc, "id", INT8OID);
	columns.project_id = bigint_column(tupdesc, "project_id", INT8OID);
	columns.user_account_id = bigint_column(tupdesc, "user_account_id", INT8OID);
	columns.project_membership_id = bigint_column(tupdesc, "project_membership_id", INT8OID);
	columns.project_extension_id = bigint_column(tupdesc, "project_extension_id", INT8OID);
	columns.task_id = bigint_column(tupdesc, "task_id", INT8OID);
	columns.time_record_date = bigint_column(tupdesc, "time_record_date", DATEOID);
	return columns;
}

static bool
get_int8(HeapTuple tuple, TupleDesc tupdesc, int attnum, int64 *value)
{
	bool		isnull;
	Datum		datum = heap_getattr(tuple, attnum, tupdesc, &isnull);

	if (!isnull)
		*value = DatumGetInt64(datum);
	return !isnull;
}

static bool
changed(HeapTuple old_tuple, HeapTuple new_tuple, TupleDesc tupdesc, int attnum)
{
	int64		a = 0,
				b = 0;
	bool		has_a = get_int8(old_tuple, tupdesc, attnum, &a);
	bool		has_b = get_int8(new_tuple, tupdesc, attnum, &b);

	return has_a != has_b || a != b;
}

/*
 * BEFORE INSERT OR UPDATE row trigger (WHEN the membership is missing or a
 * task has no activity): fills in the user's one active membership on the
 * project, and a task's activity.  Runs its lookups as the extension owner,
 * as foreign key checks run as the table owner.
 */
PG_FUNCTION_INFO_V1(moment_time_record_defaults);
Datum
moment_time_record_defaults(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	tupdesc;
	RecordColumns columns;
	HeapTuple	tuple;
	HeapTuple	old_tuple = NULL;
	int64		company_id,
				project_id,
				user_account_id,
				value;
	int			attnums[2];
	Datum		values[2];
	bool		nulls[2] = {false, false};
	int			nchanges = 0;
	bool		fill_membership;
	bool		fill_activity;
	OwnerSwitch saved;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_BEFORE(trigdata->tg_event) || TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("moment.time_record_defaults() must be fired BEFORE INSERT OR UPDATE FOR EACH ROW")));
	columns = time_record_columns(trigdata, "moment.time_record_defaults()");
	tupdesc = RelationGetDescr(trigdata->tg_relation);
	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		tuple = trigdata->tg_newtuple;
		old_tuple = trigdata->tg_trigtuple;
	}
	else
		tuple = trigdata->tg_trigtuple;

	if (loading_by_copy())
		return PointerGetDatum(tuple);
	if (!get_int8(tuple, tupdesc, columns.company_id, &company_id) ||
		!get_int8(tuple, tupdesc, columns.project_id, &project_id) ||
		!get_int8(tuple, tupdesc, columns.user_account_id, &user_account_id))
		return PointerGetDatum(tuple);	/* NOT NULL will speak */

	/* on update, only a record whose project, user or membership changed */
	fill_membership = !get_int8(tuple, tupdesc, columns.project_membership_id, &value) &&
		(old_tuple == NULL ||
		 changed(old_tuple, tuple, tupdesc, columns.project_id) ||
		 changed(old_tuple, tuple, tupdesc, columns.user_account_id) ||
		 changed(old_tuple, tuple, tupdesc, columns.project_membership_id));
	fill_activity = get_int8(tuple, tupdesc, columns.task_id, &value) &&
		!get_int8(tuple, tupdesc, columns.project_extension_id, &value);
	if (!fill_membership && !fill_activity)
		return PointerGetDatum(tuple);

	spi_check(SPI_connect(), "SPI_connect");
	run_as_extension_owner(&saved);
	if (fill_activity)
	{
		Oid			argtypes[2] = {INT8OID, INT8OID};
		Datum		args[2];
		int64		task_id;
		KeptPlan   *plan;

		get_int8(tuple, tupdesc, columns.task_id, &task_id);
		args[0] = Int64GetDatum(company_id);
		args[1] = Int64GetDatum(task_id);
		plan = plancache_get("SELECT t.project_extension_id FROM moment.tasks t "
							 "WHERE t.company_id OPERATOR(pg_catalog.=) $1 AND t.id OPERATOR(pg_catalog.=) $2",
							 2, argtypes);
		spi_check(kept_plan_execute(plan, args, NULL, true, 1), "reading moment.tasks");
		if (SPI_processed == 1)
		{
			bool		isnull;
			Datum		extension = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

			if (!isnull)
			{
				attnums[nchanges] = columns.project_extension_id;
				values[nchanges] = extension;
				nchanges++;
			}
		}
		/* no such task: the foreign key says so */
	}
	if (fill_membership)
	{
		Oid			argtypes[3] = {INT8OID, INT8OID, INT8OID};
		Datum		args[3];
		KeptPlan   *plan;

		args[0] = Int64GetDatum(company_id);
		args[1] = Int64GetDatum(project_id);
		args[2] = Int64GetDatum(user_account_id);
		plan = plancache_get("SELECT m.id, m.project_membership_role_name FROM moment.project_memberships m "
							 "WHERE m.company_id OPERATOR(pg_catalog.=) $1 AND m.project_id OPERATOR(pg_catalog.=) $2 "
							 "AND m.user_account_id OPERATOR(pg_catalog.=) $3 "
							 "AND m.project_membership_state OPERATOR(pg_catalog.=) 'active' "
							 "ORDER BY m.project_membership_role_name, m.id LIMIT 21",
							 3, argtypes);
		spi_check(kept_plan_execute(plan, args, NULL, true, 21), "reading moment.project_memberships");
		if (SPI_processed == 1)
		{
			bool		isnull;

			attnums[nchanges] = columns.project_membership_id;
			values[nchanges] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
			nchanges++;
		}
		else if (SPI_processed > 1)
		{
			StringInfoData roles;

			initStringInfo(&roles);
			for (uint64 row = 0; row < Min(SPI_processed, 20); row++)
				appendStringInfo(&roles, "%s\"%s\" (projectMembershipId %s)", row > 0 ? ", " : "",
								 SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, 2),
								 SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, 1));
			if (SPI_processed > 20)
				appendStringInfoString(&roles, ", ...");
			ereport(ERROR,
					(errcode(ERRCODE_CHECK_VIOLATION),
					 errmsg("user has more than one role on the project: %s", roles.data),
					 errdetail("User account " INT64_FORMAT " has %s active roles on project " INT64_FORMAT ".",
							   user_account_id, SPI_processed > 20 ? "more than 20" : psprintf("%d", (int) SPI_processed),
							   project_id),
					 errhint("Name the role with projectMembershipId.")));
		}
	}
	restore_user(&saved);
	SPI_finish();
	if (nchanges == 0)
		return PointerGetDatum(tuple);
	return PointerGetDatum(heap_modify_tuple_by_cols(tuple, tupdesc, nchanges, attnums, values, nulls));
}

/*
 * AFTER INSERT, UPDATE or DELETE statement trigger with transition tables:
 * one query per statement (a batch of a thousand records costs one lookup),
 * run as the extension owner so that no role's view of user_accounts can
 * hide a lock.  A record is locked when it is dated on or before its user's
 * time_lock_date; creating one, changing one from or to such a date, and
 * deleting one are refused with 42501.
 */
PG_FUNCTION_INFO_V1(moment_time_lock_check);
Datum
moment_time_lock_check(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	const char *rows;
	char	   *sql;
	KeptPlan   *plan;
	OwnerSwitch saved;

	if (!CALLED_AS_TRIGGER(fcinfo) || TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		TRIGGER_FIRED_BEFORE(trigdata->tg_event) || TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("moment.time_lock_check() must be fired AFTER INSERT, UPDATE or DELETE FOR EACH STATEMENT")));
	(void) time_record_columns(trigdata, "moment.time_lock_check()");
	if (loading_by_copy())
		return PointerGetDatum(NULL);

	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
	{
		if (trigdata->tg_newtable == NULL)
			goto no_transition;
		rows = "new_rows";
	}
	else if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
	{
		if (trigdata->tg_oldtable == NULL)
			goto no_transition;
		rows = "old_rows";
	}
	else
	{
		if (trigdata->tg_newtable == NULL || trigdata->tg_oldtable == NULL)
			goto no_transition;
		rows = "(SELECT * FROM old_rows UNION ALL SELECT * FROM new_rows)";
	}
	sql = psprintf("SELECT r.id, r.time_record_date, u.time_lock_date, u.id "
				   "FROM %s r JOIN moment.user_accounts u "
				   "ON u.company_id OPERATOR(pg_catalog.=) r.company_id AND u.id OPERATOR(pg_catalog.=) r.user_account_id "
				   "WHERE u.time_lock_date IS NOT NULL AND r.time_record_date OPERATOR(pg_catalog.<=) u.time_lock_date "
				   "ORDER BY r.id LIMIT 1", rows);

	spi_check(SPI_connect(), "SPI_connect");
	spi_check(SPI_register_trigger_data(trigdata), "SPI_register_trigger_data");
	run_as_extension_owner(&saved);
	plan = plancache_get(sql, 0, NULL);
	spi_check(kept_plan_execute(plan, NULL, NULL, true, 1), "checking the time lock");
	if (SPI_processed == 1)
	{
		HeapTuple	tuple = SPI_tuptable->vals[0];
		TupleDesc	tupdesc = SPI_tuptable->tupdesc;
		const char *action = TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) ? "created" :
			TRIGGER_FIRED_BY_DELETE(trigdata->tg_event) ? "deleted" : "changed";

		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("time record %s cannot be %s: it is dated %s, on or before the time lock date %s of user account %s",
						SPI_getvalue(tuple, tupdesc, 1), action, SPI_getvalue(tuple, tupdesc, 2),
						SPI_getvalue(tuple, tupdesc, 3), SPI_getvalue(tuple, tupdesc, 4)),
				 errhint("Time records dated on or before a user's timeLockDate cannot be created, changed or deleted.")));
	}
	restore_user(&saved);
	SPI_finish();
	return PointerGetDatum(NULL);

no_transition:
	ereport(ERROR,
			(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
			 errmsg("moment.time_lock_check() needs its transition tables (REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows)")));
	return PointerGetDatum(NULL);
}

/*
 * The typed listing register_entity creates for a table goes with the
 * table: its dependency on the table's row type becomes automatic, so that
 * DROP TABLE needs no CASCADE.  Only for a listing of moment_list_typed
 * returning SETOF exactly that table.
 */
PG_FUNCTION_INFO_V1(moment_adopt_typed_listing);
Datum
moment_adopt_typed_listing(PG_FUNCTION_ARGS)
{
	Oid			listing = PG_GETARG_OID(0);
	Oid			table = PG_GETARG_OID(1);
	Oid			rowtype = get_rel_type_id(table);
	HeapTuple	tuple;
	Form_pg_proc form;
	bool		isnull;
	Datum		prosrc;
	ObjectAddress function_address;
	ObjectAddress type_address;

	if (!moment_is_admin())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied: only a superuser or the owner of extension moment may do this")));
	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(listing));
	if (!HeapTupleIsValid(tuple))
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_FUNCTION), errmsg("function %u does not exist", listing)));
	form = (Form_pg_proc) GETSTRUCT(tuple);
	prosrc = SysCacheGetAttr(PROCOID, tuple, Anum_pg_proc_prosrc, &isnull);
	if (isnull || strcmp(TextDatumGetCString(prosrc), "moment_list_typed") != 0 ||
		!form->proretset || form->prorettype != rowtype || !OidIsValid(rowtype) ||
		form->pronamespace != moment_namespace())
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s is not a typed listing of table %s", format_procedure(listing),
						get_rel_name(table))));
	ReleaseSysCache(tuple);

	deleteDependencyRecordsForSpecific(ProcedureRelationId, listing, DEPENDENCY_NORMAL,
									   TypeRelationId, rowtype);
	function_address.classId = ProcedureRelationId;
	function_address.objectId = listing;
	function_address.objectSubId = 0;
	type_address.classId = TypeRelationId;
	type_address.objectId = rowtype;
	type_address.objectSubId = 0;
	recordDependencyOn(&function_address, &type_address, DEPENDENCY_AUTO);
	PG_RETURN_VOID();
}
