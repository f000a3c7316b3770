/*
 * write.c: create, update and delete, and the pieces batch.c shares.
 *
 * Each write is one statement: the INSERT/UPDATE in a CTE named t, and the
 * projection selected from it, joined to related rows like a read.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"

#include "moment.h"
#include "plancache.h"
#include "request.h"
#include "shape.h"
#include "tenant.h"

static int
compare_body_values(const void *a, const void *b)
{
	return ((const BodyValue *) a)->field->attnum - ((const BodyValue *) b)->field->attnum;
}

/*
 * The fields of a request body, in column order.  Unknown fields are
 * 42703, id and companyId (and generated columns) 428C9, a body that is not
 * an object 22023.
 */
BodyValue *
body_parse(MomentEntity *entity, Jsonb *body, int *nvalues, const char *what)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken token;
	BodyValue  *values;
	int			n = 0;
	char	   *key = NULL;

	if (body == NULL || !JB_ROOT_IS_OBJECT(body) || JB_ROOT_IS_SCALAR(body))
	{
		JsonbValue	root;

		if (body == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s must be a JSON object, not null", what)));
		if (JB_ROOT_IS_SCALAR(body))
			JsonbExtractScalar(&body->root, &root);
		else
		{
			root.type = jbvBinary;
			root.val.binary.data = &body->root;
		}
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a JSON object, not %s", what, jsonb_type_phrase(&root))));
	}

	values = palloc(sizeof(BodyValue) * Max(1, JB_ROOT_COUNT(body)));
	it = JsonbIteratorInit(&body->root);
	while ((token = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (token == WJB_KEY)
			key = pnstrdup(v.val.string.val, v.val.string.len);
		else if (token == WJB_VALUE)
		{
			MomentField *field = entity_field(entity, key);

			CHECK_FOR_INTERRUPTS();
			if (strcmp(key, "companyId") == 0 || (field != NULL && !field->writable))
				ereport(ERROR,
						(errcode(ERRCODE_GENERATED_ALWAYS),
						 errmsg("field \"%s\" of entity %s cannot be set", key, entity->name),
						 strcmp(key, "companyId") == 0 ?
						 errdetail("The company is the company in force.") :
						 strcmp(key, "id") == 0 ?
						 errdetail("Ids are assigned on create and name the object on update.") :
						 (field == entity->created_at_field || field == entity->updated_at_field) ?
						 errdetail("createdAt and updatedAt are kept by the database: they are read-only.") :
						 errdetail("The field is computed by the database.")));
			if (field == NULL)
				raise_unknown_name(entity, key, "field", what, entity_field_names(entity));
			values[n].field = field;
			values[n].value = v;
			n++;
		}
	}
	qsort(values, n, sizeof(BodyValue), compare_body_values);
	*nvalues = n;
	return values;
}

/*
 * The projection of a written row: its object expression and "FROM t LEFT
 * JOIN ...", t being the CTE of the INSERT or UPDATE.
 */
static void
projection_parts(RequestShape *projection, WriteProjection *out)
{
	StringInfoData buf;

	initStringInfo(&buf);
	query_object(&buf, projection, true);
	out->object = buf.data;
	initStringInfo(&buf);
	query_from(&buf, projection, "t", false);
	out->from = buf.data;
	out->sql = psprintf("SELECT %s%s", out->object, out->from);
	out->with_metadata = projection->metadata_sets != NIL;
}

/*
 * Runs a statement expected to give at most one jsonb; returns it copied to
 * result_context, or NULL when no row came back.  pin: the statement holds
 * metadata expressions, run with search_path pinned.
 */
Jsonb *
execute_for_object(const char *sql, int nargs, Oid *argtypes, Datum *values, char *nulls,
				   bool read_only, bool pin, MemoryContext result_context)
{
	KeptPlan   *plan;
	Jsonb	   *result = NULL;
	bool		fresh;
	int			guc_nest_level = -1;
	int			pinned;

	spi_check(SPI_connect(), "SPI_connect");
	pinned = pin_search_path(pin);

	/*
	 * These statements read one row of each relation: plan them once,
	 * generically, and without Memoize, whose per-execution set-up (a hash
	 * table and its memory) costs a single-row lookup about a fifth of its
	 * time and can never pay off.  The plan is made at its first execution.
	 */
	plan = plancache_get_with_options(sql, nargs, argtypes, CURSOR_OPT_GENERIC_PLAN, &fresh);
	if (fresh)
	{
		guc_nest_level = NewGUCNestLevel();
		(void) set_config_option("enable_memoize", "off", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	}
	spi_check(kept_plan_execute(plan, values, nulls, read_only, 2), "statement");
	if (guc_nest_level >= 0)
		AtEOXact_GUC(true, guc_nest_level);
	unpin_search_path(pinned);
	if (SPI_processed > 1)
		elog(ERROR, "moment: statement returned %llu rows where one was expected",
			 (unsigned long long) SPI_processed);
	if (SPI_processed == 1)
	{
		bool		isnull;
		Datum		datum = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
		{
			MemoryContext old_context = MemoryContextSwitchTo(result_context);

			result = DatumGetJsonbPCopy(datum);
			MemoryContextSwitchTo(old_context);
		}
	}
	SPI_finish();
	return result;
}

char *
create_sql(MomentEntity *entity, BodyValue *values, int nvalues, const char *projection)
{
	StringInfoData sql;

	initStringInfo(&sql);
	appendStringInfo(&sql, "WITH t AS (INSERT INTO %s (company_id", entity->qualified_table);
	for (int i = 0; i < nvalues; i++)
		appendStringInfo(&sql, ", %s", values[i].field->quoted_column);
	appendStringInfoString(&sql, ") VALUES ($1");
	for (int i = 0; i < nvalues; i++)
		appendStringInfo(&sql, ", $%d", i + 2);
	appendStringInfo(&sql, ") RETURNING *) %s", projection);
	return sql.data;
}

/*
 * "UPDATE <table> AS u SET ...": each given field from $3.. (or, for a
 * set-based update, from the unnested columns v.v1..), and updated_at.
 */
void
update_set_clause(StringInfo sql, MomentEntity *entity, BodyValue *values, int nvalues,
				  bool from_unnest)
{
	appendStringInfo(sql, "UPDATE %s AS u SET ", entity->qualified_table);
	for (int i = 0; i < nvalues; i++)
		appendStringInfo(sql, from_unnest ? "%s%s = v.v%d" : "%s%s = $%d", i > 0 ? ", " : "",
						 values[i].field->quoted_column, from_unnest ? i + 1 : i + 3);
	if (entity->updated_at_field != NULL)
		appendStringInfo(sql, "%s%s = pg_catalog.now()", nvalues > 0 ? ", " : "",
						 entity->updated_at_field->quoted_column);
	else if (nvalues == 0)
		appendStringInfo(sql, "%s = u.%s", entity->id_field->quoted_column,
						 entity->id_field->quoted_column);
}

/* $1 company, $2 id, $3.. the values. */
char *
update_sql(MomentEntity *entity, BodyValue *values, int nvalues, const char *projection)
{
	StringInfoData sql;

	initStringInfo(&sql);
	appendStringInfoString(&sql, "WITH t AS (");
	update_set_clause(&sql, entity, values, nvalues, false);
	appendStringInfo(&sql, " WHERE u.company_id OPERATOR(pg_catalog.=) $1 AND u.%s OPERATOR(pg_catalog.=) $2 RETURNING u.*) %s",
					 entity->id_field->quoted_column, projection);
	return sql.data;
}

char *
delete_sql(MomentEntity *entity)
{
	return psprintf("DELETE FROM %s AS t WHERE t.company_id OPERATOR(pg_catalog.=) $1 AND t.%s OPERATOR(pg_catalog.=) $2 "
					"RETURNING CAST(t.%s AS pg_catalog.int8)",
					entity->qualified_table, entity->id_field->quoted_column,
					entity->id_field->quoted_column);
}

/* The projection of an include spec, for writes. */
RequestShape *
write_projection(MomentEntity *entity, int64 company_id, const char *include)
{
	RequestShape *shape = shape_create(entity, company_id);

	include_parse(shape, include);
	shape_finalize(shape);
	return shape;
}

/*
 * The projection of an entity and include spec for writes, memoized (as
 * "M" or "-" for metadata, the object, \x1f, the FROM clause).
 */
void
write_projection_sql(MomentEntity *entity, int64 company_id, const char *include, WriteProjection *out)
{
	char	   *shape_key = psprintf("projection\x1f%s\x1f%s", entity->name, include ? include : "");
	const char *memo = statement_memo_get(shape_key);
	RequestShape *shape;
	List	   *entities = NIL;
	ListCell   *cell;

	if (memo != NULL)
	{
		const char *separator = strchr(memo, '\x1f');

		out->with_metadata = (memo[0] == 'M');
		out->object = pnstrdup(memo + 1, separator - memo - 1);
		out->from = pstrdup(separator + 1);
		out->sql = psprintf("SELECT %s%s", out->object, out->from);
		return;
	}
	shape = write_projection(entity, company_id, include);
	projection_parts(shape, out);
	foreach(cell, shape->joins)
		entities = lappend(entities, ((ShapeJoin *) lfirst(cell))->entity);
	statement_memo_put(shape_key, psprintf("%c%s\x1f%s", out->with_metadata ? 'M' : '-', out->object, out->from),
					   entities);
}

Jsonb *
request_create(const char *entity_name, Jsonb *body, const char *include)
{
	MomentEntity *entity = registry_entity(entity_name);
	CompanyInForce company = tenant_company(true);
	WriteProjection projection;
	int			nvalues;
	BodyValue  *values;
	Oid		   *argtypes;
	Datum	   *args;
	char	   *nulls;
	Jsonb	   *result;

	write_projection_sql(entity, company.id, include, &projection);
	values = body_parse(entity, body, &nvalues, "body");
	argtypes = palloc(sizeof(Oid) * (nvalues + 1));
	args = palloc(sizeof(Datum) * (nvalues + 1));
	nulls = palloc(sizeof(char) * (nvalues + 1));

	argtypes[0] = INT8OID;
	args[0] = Int64GetDatum(company.id);
	nulls[0] = ' ';
	for (int i = 0; i < nvalues; i++)
	{
		bool		isnull;

		argtypes[i + 1] = values[i].field->type_oid;
		args[i + 1] = field_input(values[i].field, &values[i].value, true, &isnull);
		nulls[i + 1] = isnull ? 'n' : ' ';
	}
	result = execute_for_object(create_sql(entity, values, nvalues, projection.sql),
								nvalues + 1, argtypes, args, nulls, false, projection.with_metadata,
								CurrentMemoryContext);
	if (result == NULL)
		elog(ERROR, "moment: insert into %s returned no row", entity->qualified_table);
	return result;
}

void
raise_not_found(MomentEntity *entity, int64 id, const char *label)
{
	ereport(ERROR,
			(errcode(ERRCODE_NO_DATA_FOUND),
			 label ?
			 errmsg("%s: %s " INT64_FORMAT " does not exist", label, entity->singular, id) :
			 errmsg("%s " INT64_FORMAT " does not exist", entity->singular, id),
			 errdetail("No %s with that id belongs to the company in force.", entity->singular)));
}

/* Shared by update and batch: one update of a row by id. */
Jsonb *
update_one(MomentEntity *entity, int64 company_id, int64 id, BodyValue *values, int nvalues,
		   const char *projection, bool pin, const char *label, MemoryContext result_context)
{
	Oid		   *argtypes = palloc(sizeof(Oid) * (nvalues + 2));
	Datum	   *args = palloc(sizeof(Datum) * (nvalues + 2));
	char	   *nulls = palloc(sizeof(char) * (nvalues + 2));
	Jsonb	   *result;

	argtypes[0] = INT8OID;
	args[0] = Int64GetDatum(company_id);
	nulls[0] = ' ';
	argtypes[1] = INT8OID;
	args[1] = Int64GetDatum(id);
	nulls[1] = ' ';
	for (int i = 0; i < nvalues; i++)
	{
		bool		isnull;

		argtypes[i + 2] = values[i].field->type_oid;
		args[i + 2] = field_input(values[i].field, &values[i].value, true, &isnull);
		nulls[i + 2] = isnull ? 'n' : ' ';
	}
	result = execute_for_object(update_sql(entity, values, nvalues, projection),
								nvalues + 2, argtypes, args, nulls, false, pin, result_context);
	if (result == NULL)
		raise_not_found(entity, id, label);
	return result;
}

/* Shared by delete and batch. */
void
delete_one(MomentEntity *entity, int64 company_id, int64 id, const char *label)
{
	Oid			argtypes[2] = {INT8OID, INT8OID};
	Datum		args[2];
	KeptPlan   *plan;
	uint64		processed;

	args[0] = Int64GetDatum(company_id);
	args[1] = Int64GetDatum(id);
	spi_check(SPI_connect(), "SPI_connect");
	plan = plancache_get(delete_sql(entity), 2, argtypes);
	spi_check(kept_plan_execute(plan, args, NULL, false, 0), "delete");
	processed = SPI_processed;
	SPI_finish();
	if (processed == 0)
		raise_not_found(entity, id, label);
}

Jsonb *
request_update(const char *entity_name, int64 id, Jsonb *body, const char *include)
{
	MomentEntity *entity = registry_entity(entity_name);
	CompanyInForce company = tenant_company(true);
	WriteProjection projection;
	int			nvalues;
	BodyValue  *values;

	write_projection_sql(entity, company.id, include, &projection);
	values = body_parse(entity, body, &nvalues, "body");
	return update_one(entity, company.id, id, values, nvalues, projection.sql, projection.with_metadata,
					  NULL, CurrentMemoryContext);
}

int64
request_delete(const char *entity_name, int64 id)
{
	MomentEntity *entity = registry_entity(entity_name);
	CompanyInForce company = tenant_company(true);

	delete_one(entity, company.id, id, NULL);
	return id;
}

static char *
text_arg(FunctionCallInfo fcinfo, int n)
{
	return PG_ARGISNULL(n) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(n));
}

static void
require_id(FunctionCallInfo fcinfo, int n)
{
	if (PG_ARGISNULL(n))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("id must not be null")));
}

PG_FUNCTION_INFO_V1(moment_create);
Datum
moment_create(PG_FUNCTION_ARGS)
{
	Jsonb	   *volatile result = NULL;

	API_ENTRY_BEGIN
	{
		result = request_create(text_arg(fcinfo, 0), PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1),
								text_arg(fcinfo, 2));
	}
	API_ENTRY_END;
	PG_RETURN_JSONB_P(result);
}

PG_FUNCTION_INFO_V1(moment_update);
Datum
moment_update(PG_FUNCTION_ARGS)
{
	Jsonb	   *volatile result = NULL;

	API_ENTRY_BEGIN
	{
		registry_entity(text_arg(fcinfo, 0));
		require_id(fcinfo, 1);
		result = request_update(text_arg(fcinfo, 0), PG_GETARG_INT64(1),
								PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P(2), text_arg(fcinfo, 3));
	}
	API_ENTRY_END;
	PG_RETURN_JSONB_P(result);
}

PG_FUNCTION_INFO_V1(moment_delete);
Datum
moment_delete(PG_FUNCTION_ARGS)
{
	int64 volatile result = 0;

	API_ENTRY_BEGIN
	{
		registry_entity(text_arg(fcinfo, 0));
		require_id(fcinfo, 1);
		result = request_delete(text_arg(fcinfo, 0), PG_GETARG_INT64(1));
	}
	API_ENTRY_END;
	PG_RETURN_INT64(result);
}
