/*
 * read.c: get, list, rows and the typed list_* functions.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "nodes/params.h"
#include "tcop/dest.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/tuplestore.h"

#include "moment.h"
#include "plancache.h"
#include "request.h"
#include "shape.h"
#include "tenant.h"

static char *
text_arg(FunctionCallInfo fcinfo, int n)
{
	return PG_ARGISNULL(n) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(n));
}

int
listing_cap(bool no_limit)
{
	return Min(no_limit ? moment_max_limit : moment_default_limit, MOMENT_HARD_LIMIT);
}

Jsonb *
request_get(const char *entity_name, int64 id, const char *include)
{
	MomentEntity *entity = registry_entity(entity_name);
	CompanyInForce company = tenant_company(false);
	char	   *shape_key = psprintf("get\x1f%s\x1f%s", entity->name, include ? include : "");
	const char *memo = statement_memo_get(shape_key);
	char	   *sql;
	Oid			argtypes[2] = {INT8OID, INT8OID};
	Datum		values[2];

	if (memo != NULL)
		sql = pstrdup(memo);
	else
	{
		RequestShape *shape = shape_create(entity, company.id);
		StringInfoData buf;

		shape_param(shape, INT8OID, Int64GetDatum(id), false);
		include_parse(shape, include);
		shape_finalize(shape);

		initStringInfo(&buf);
		appendStringInfoString(&buf, "SELECT ");
		query_object(&buf, shape, true);
		query_from(&buf, shape, NULL, false);
		query_where(&buf, shape);
		appendStringInfo(&buf, " AND t.%s = $2", entity->id_field->quoted_column);
		sql = buf.data;
		statement_memo_put(shape_key, sql);
	}
	values[0] = Int64GetDatum(company.id);
	values[1] = Int64GetDatum(id);
	return execute_for_object(sql, 2, argtypes, values, NULL, true, CurrentMemoryContext);
}

PG_FUNCTION_INFO_V1(moment_get);
Datum
moment_get(PG_FUNCTION_ARGS)
{
	char	   *entity = text_arg(fcinfo, 0);
	Jsonb	   *result;

	if (entity == NULL)
		registry_entity(NULL);
	if (PG_ARGISNULL(1))
	{
		registry_entity(entity);
		PG_RETURN_NULL();
	}
	result = request_get(entity, PG_GETARG_INT64(1), text_arg(fcinfo, 2));
	if (result == NULL)
		PG_RETURN_NULL();
	PG_RETURN_JSONB_P(result);
}

/* The shape of a listing: entity, include, filter and order, $2 the limit. */
static RequestShape *
listing_shape(const char *entity_name, const char *include, Jsonb *filter,
			  const char *order_by, bool typed, bool with_offset)
{
	MomentEntity *entity = registry_entity(entity_name);
	CompanyInForce company = tenant_company(false);
	RequestShape *shape = shape_create(entity, company.id);

	shape_param(shape, INT8OID, Int64GetDatum(0), false);	/* $2 limit */
	if (with_offset)
		shape_param(shape, INT8OID, Int64GetDatum(0), false);	/* $3 offset */
	if (typed)
		include_all_fields(shape);
	else
		include_parse(shape, include);
	filter_parse(shape, filter);
	order_parse(shape, order_by);
	shape_finalize(shape);
	return shape;
}

static void
check_paging(ListRequest *request)
{
	if (request->has_page && request->page < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("page must be 0 or more, not %d", request->page),
				 errhint("Pages are numbered from 0.")));
	if (request->has_size && request->size < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("size must be 1 or more, not %d", request->size)));
}

/*
 * The listing document.  One statement: the page of objects (one more than
 * the cap when not paging, to learn whether more matched), and, when paging
 * or metadata asks for it, the count and aggregates over every matching row.
 */
Jsonb *
request_list(ListRequest *request)
{
	RequestShape *shape;
	int			cap = listing_cap(request->no_limit);
	bool		paging = request->has_page || request->has_size;
	int64		limit;
	int64		offset = 0;
	int64		size = 0;
	bool		exceeded = false;
	bool		need_aggregate;
	StringInfoData sql;
	MemoryContext caller = CurrentMemoryContext;
	SPIPlanPtr	plan;
	Datum		content_datum;
	Datum		aggregate_datum;
	bool		content_null;
	bool		aggregate_null;
	Datum	   *objects = NULL;
	int			nobjects = 0;
	Jsonb	   *aggregate = NULL;
	JsonbParseState *state = NULL;
	JsonbValue *document;
	int64		total = 0;

	check_paging(request);
	shape = listing_shape(request->entity, request->include, request->filter,
						  request->order_by, false, true);
	if (paging)
	{
		size = request->has_size ? request->size : cap;
		if (size > cap)
		{
			size = cap;
			exceeded = true;
		}
		limit = size;
		offset = (int64) (request->has_page ? request->page : 0) * size;
	}
	else
		limit = (int64) cap + 1;
	shape->param_values[1] = Int64GetDatum(limit);
	shape->param_values[2] = Int64GetDatum(offset);
	need_aggregate = paging || shape->metadata_sets != NIL;

	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT ARRAY(SELECT ");
	query_object(&sql, shape, false);
	query_from(&sql, shape, NULL, false);
	query_where(&sql, shape);
	query_order(&sql, shape);
	appendStringInfoString(&sql, " LIMIT $2 OFFSET $3), ");
	if (need_aggregate)
	{
		appendStringInfoString(&sql, "(SELECT pg_catalog.jsonb_build_array(count(*), ");
		if (shape->metadata_sets != NIL)
			query_metadata_object(&sql, shape);
		else
			appendStringInfoString(&sql, "NULL::jsonb");
		appendStringInfoChar(&sql, ')');
		query_from(&sql, shape, NULL, true);
		query_where(&sql, shape);
		appendStringInfoChar(&sql, ')');
	}
	else
		appendStringInfoString(&sql, "NULL::jsonb");

	spi_check(SPI_connect(), "SPI_connect");
	plan = plancache_get_with_options(sql.data, shape->nparams, shape->param_types,
									  CURSOR_OPT_CUSTOM_PLAN, NULL);
	spi_check(SPI_execute_plan(plan, shape->param_values, shape->param_nulls, true, 1),
			  "listing");
	content_datum = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &content_null);
	aggregate_datum = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &aggregate_null);
	if (!content_null)
		deconstruct_array(DatumGetArrayTypeP(content_datum), JSONBOID, -1, false, TYPALIGN_INT,
						  &objects, NULL, &nobjects);
	if (!aggregate_null)
		aggregate = DatumGetJsonbP(aggregate_datum);

	/* build the document in the caller's memory, before SPI_finish frees the results */
	MemoryContextSwitchTo(caller);
	if (!paging && nobjects > cap)
	{
		exceeded = true;
		nobjects = cap;
	}
	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	jb_key(&state, "content");
	pushJsonbValue(&state, WJB_BEGIN_ARRAY, NULL);
	for (int i = 0; i < nobjects; i++)
		jb_jsonb(&state, DatumGetJsonbP(objects[i]), WJB_ELEM);
	pushJsonbValue(&state, WJB_END_ARRAY, NULL);
	jb_key(&state, "limitWasExceeded");
	jb_bool(&state, exceeded, WJB_VALUE);
	if (aggregate != NULL)
	{
		JsonbValue *count = getIthJsonbValueFromContainer(&aggregate->root, 0);
		JsonbValue *metadata = getIthJsonbValueFromContainer(&aggregate->root, 1);

		total = DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(count->val.numeric)));
		if (shape->metadata_sets != NIL)
		{
			jb_key(&state, "metadata");
			pushJsonbValue(&state, WJB_VALUE, metadata);
		}
	}
	if (paging)
	{
		jb_key(&state, "page");
		pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
		jb_key(&state, "number");
		jb_int64(&state, request->has_page ? request->page : 0, WJB_VALUE);
		jb_key(&state, "size");
		jb_int64(&state, size, WJB_VALUE);
		jb_key(&state, "totalElements");
		jb_int64(&state, total, WJB_VALUE);
		jb_key(&state, "totalPages");
		jb_int64(&state, (total + size - 1) / size, WJB_VALUE);
		pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	}
	document = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	{
		Jsonb	   *result = JsonbValueToJsonb(document);

		SPI_finish();
		return result;
	}
}

PG_FUNCTION_INFO_V1(moment_list);
Datum
moment_list(PG_FUNCTION_ARGS)
{
	ListRequest request = {0};

	request.entity = text_arg(fcinfo, 0);
	request.include = text_arg(fcinfo, 1);
	request.filter = PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P(2);
	request.order_by = text_arg(fcinfo, 3);
	request.has_page = !PG_ARGISNULL(4);
	request.page = request.has_page ? PG_GETARG_INT32(4) : 0;
	request.has_size = !PG_ARGISNULL(5);
	request.size = request.has_size ? PG_GETARG_INT32(5) : 0;
	request.no_limit = PG_ARGISNULL(6) ? false : PG_GETARG_BOOL(6);
	PG_RETURN_JSONB_P(request_list(&request));
}

static void
warn_cut(int cap, bool no_limit)
{
	if (no_limit)
		ereport(WARNING,
				(errmsg("limitWasExceeded: more than %d rows matched, only the first %d are returned", cap, cap),
				 errhint("%d rows is the most any listing returns: narrow the filter, or page through the rows with moment.list(..., page => N, size => M).",
						 cap)));
	else
		ereport(WARNING,
				(errmsg("limitWasExceeded: more than %d rows matched, only the first %d are returned", cap, cap),
				 errhint("Pass no_limit => true for up to %d rows, narrow the filter, or page through the rows with moment.list(..., page => N, size => M).",
						 listing_cap(true))));
}

/*
 * A DestReceiver that puts the first cap rows of a listing straight into
 * the function's tuplestore (which spills to disk past work_mem) and notes
 * whether more came.  In whole_row mode each row is one composite column
 * holding a table row (for tables with dropped columns, whose row type the
 * statement's column list cannot match).
 */
typedef struct CapReceiver
{
	DestReceiver pub;
	Tuplestorestate *store;
	int64		cap;
	int64		count;
	bool		cut;
	bool		whole_row;
} CapReceiver;

static bool
cap_receive(TupleTableSlot *slot, DestReceiver *self)
{
	CapReceiver *receiver = (CapReceiver *) self;

	if (receiver->count >= receiver->cap)
	{
		receiver->cut = true;
		return true;
	}
	if (receiver->whole_row)
	{
		bool		isnull;
		HeapTupleHeader header = DatumGetHeapTupleHeader(slot_getattr(slot, 1, &isnull));
		HeapTupleData tuple;

		tuple.t_len = HeapTupleHeaderGetDatumLength(header);
		ItemPointerSetInvalid(&tuple.t_self);
		tuple.t_tableOid = InvalidOid;
		tuple.t_data = header;
		tuplestore_puttuple(receiver->store, &tuple);
	}
	else
		tuplestore_puttupleslot(receiver->store, slot);
	receiver->count++;
	return true;
}

static void
cap_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
}

static void
cap_shutdown(DestReceiver *self)
{
}

static void
cap_destroy(DestReceiver *self)
{
}

/*
 * Runs a listing statement with its rows going straight to the function's
 * result, at most cap of them (the statement fetches cap + 1, to learn
 * whether more matched), and warns when rows were cut.
 */
static void
stream_listing(FunctionCallInfo fcinfo, RequestShape *shape, const char *sql, int cap,
			   bool no_limit, bool whole_rows)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	SPIPlanPtr	plan;
	SPIExecuteOptions options;
	CapReceiver receiver;
	ParamListInfo params;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	shape->param_values[1] = Int64GetDatum((int64) cap + 1);

	params = makeParamList(shape->nparams);
	for (int i = 0; i < shape->nparams; i++)
	{
		params->params[i].value = shape->param_values[i];
		params->params[i].isnull = (shape->param_nulls[i] == 'n');
		params->params[i].pflags = PARAM_FLAG_CONST;
		params->params[i].ptype = shape->param_types[i];
	}

	memset(&receiver, 0, sizeof(receiver));
	receiver.pub.receiveSlot = cap_receive;
	receiver.pub.rStartup = cap_startup;
	receiver.pub.rShutdown = cap_shutdown;
	receiver.pub.rDestroy = cap_destroy;
	receiver.pub.mydest = DestNone;
	receiver.store = rsinfo->setResult;
	receiver.cap = cap;
	receiver.whole_row = whole_rows;

	memset(&options, 0, sizeof(options));
	options.params = params;
	options.read_only = true;
	options.tcount = (uint64) cap + 1;
	options.dest = (DestReceiver *) &receiver;

	spi_check(SPI_connect(), "SPI_connect");
	plan = plancache_get_with_options(sql, shape->nparams, shape->param_types,
									  CURSOR_OPT_CUSTOM_PLAN, NULL);
	spi_check(SPI_execute_plan_extended(plan, &options), "listing");
	SPI_finish();
	if (receiver.cut)
		warn_cut(cap, no_limit);
}

PG_FUNCTION_INFO_V1(moment_rows);
Datum
moment_rows(PG_FUNCTION_ARGS)
{
	char	   *entity = text_arg(fcinfo, 0);
	bool		no_limit = PG_ARGISNULL(4) ? false : PG_GETARG_BOOL(4);
	RequestShape *shape = listing_shape(entity, text_arg(fcinfo, 1),
										PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P(2),
										text_arg(fcinfo, 3), false, false);
	StringInfoData sql;

	if (shape->metadata_sets != NIL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("rows returns objects only: metadata cannot be included"),
				 errhint("Use moment.list for metadata over the whole listing.")));

	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT ");
	query_object(&sql, shape, false);
	query_from(&sql, shape, NULL, false);
	query_where(&sql, shape);
	query_order(&sql, shape);
	appendStringInfoString(&sql, " LIMIT $2");
	stream_listing(fcinfo, shape, sql.data, listing_cap(no_limit), no_limit, false);
	return (Datum) 0;
}

/*
 * list_customers, list_projects, ...: one C function for all of them; the
 * entity is the one whose table is the declared row type.
 */
PG_FUNCTION_INFO_V1(moment_list_typed);
Datum
moment_list_typed(PG_FUNCTION_ARGS)
{
	Oid			rettype = get_func_rettype(fcinfo->flinfo->fn_oid);
	Oid			relid = get_typ_typrelid(rettype);
	bool		no_limit = PG_ARGISNULL(2) ? false : PG_GETARG_BOOL(2);
	MomentEntity *entity = NULL;
	ListCell   *cell;
	RequestShape *shape;
	StringInfoData sql;

	foreach(cell, registry_entities())
		if (((MomentEntity *) lfirst(cell))->relid == relid)
			entity = lfirst(cell);
	if (entity == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("table %s is not a registered entity", format_type_be(rettype))));

	shape = listing_shape(entity->name, NULL, PG_ARGISNULL(0) ? NULL : PG_GETARG_JSONB_P(0),
						  text_arg(fcinfo, 1), true, false);
	initStringInfo(&sql);
	appendStringInfoString(&sql, entity->has_dropped_columns ? "SELECT t" : "SELECT t.*");
	query_from(&sql, shape, NULL, false);
	query_where(&sql, shape);
	query_order(&sql, shape);
	appendStringInfoString(&sql, " LIMIT $2");
	stream_listing(fcinfo, shape, sql.data, listing_cap(no_limit), no_limit,
				   entity->has_dropped_columns);
	return (Datum) 0;
}

/* ---- describe and check_include ---- */

/*
 * Resolves an include spec for an entity and prepares the statement get()
 * would run (which also checks metadata expressions); raises what a request
 * would raise.  Returns the output keys.
 */
static List *
check_spec(MomentEntity *entity, const char *spec)
{
	RequestShape *shape = shape_create(entity, 0);
	StringInfoData sql;
	SPIPlanPtr	plan;
	List	   *keys = NIL;
	ListCell   *cell;

	shape_param(shape, INT8OID, Int64GetDatum(0), false);
	include_parse(shape, spec);
	shape_finalize(shape);
	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT ");
	query_object(&sql, shape, true);
	query_from(&sql, shape, NULL, false);
	query_where(&sql, shape);
	appendStringInfo(&sql, " AND t.%s = $2", entity->id_field->quoted_column);

	spi_check(SPI_connect(), "SPI_connect");
	plan = SPI_prepare(sql.data, shape->nparams, shape->param_types);
	if (plan == NULL)
		elog(ERROR, "moment: include spec \"%s\" of %s does not prepare", spec, entity->name);
	SPI_freeplan(plan);
	SPI_finish();

	foreach(cell, shape->columns)
		keys = lappend(keys, ((ShapeColumn *) lfirst(cell))->key);
	return keys;
}

/*
 * check_spec, with an error caught (in a subtransaction) and returned as
 * its message instead: one broken part must not hide the rest of describe.
 */
typedef struct SpecCheck
{
	MomentEntity *entity;
	const char *spec;
	List	   *keys;
} SpecCheck;

static bool
check_spec_work(void *arg)
{
	SpecCheck  *check = arg;

	check->keys = check_spec(check->entity, check->spec);
	return true;
}

static char *
check_spec_quietly(MomentEntity *entity, const char *spec, List **keys)
{
	SpecCheck	check = {entity, spec, NIL};
	ErrorData  *error = run_in_subtransaction(check_spec_work, &check);

	*keys = check.keys;
	if (error == NULL)
		return NULL;
	if (error->sqlerrcode == ERRCODE_QUERY_CANCELED)
		ReThrowError(error);
	return error->message;
}

PG_FUNCTION_INFO_V1(moment_check_include);
Datum
moment_check_include(PG_FUNCTION_ARGS)
{
	MomentEntity *entity = registry_entity(text_arg(fcinfo, 0));

	check_spec(entity, text_arg(fcinfo, 1));
	PG_RETURN_BOOL(true);
}

/* A part's or metadata set's keys, or {"error": message} when it is broken. */
static void
push_checked(JsonbParseState **state, MomentEntity *entity, const char *name, const char *spec)
{
	List	   *keys;
	char	   *error = check_spec_quietly(entity, spec, &keys);
	ListCell   *cell;

	jb_key(state, name);
	if (error != NULL)
	{
		pushJsonbValue(state, WJB_BEGIN_OBJECT, NULL);
		jb_key(state, "error");
		jb_string(state, error, WJB_VALUE);
		pushJsonbValue(state, WJB_END_OBJECT, NULL);
		return;
	}
	pushJsonbValue(state, WJB_BEGIN_ARRAY, NULL);
	foreach(cell, keys)
		jb_string(state, lfirst(cell), WJB_ELEM);
	pushJsonbValue(state, WJB_END_ARRAY, NULL);
}

PG_FUNCTION_INFO_V1(moment_describe);
Datum
moment_describe(PG_FUNCTION_ARGS)
{
	MomentEntity *entity = registry_entity(text_arg(fcinfo, 0));
	JsonbParseState *state = NULL;
	ListCell   *cell;
	JsonbValue *result;

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	jb_key(&state, "entity");
	jb_string(&state, entity->name, WJB_VALUE);
	jb_key(&state, "table");
	jb_string(&state, entity->qualified_table, WJB_VALUE);
	jb_key(&state, "dateField");
	if (entity->date_field)
		jb_string(&state, entity->date_field->json_name, WJB_VALUE);
	else
		jb_null(&state, WJB_VALUE);

	jb_key(&state, "fields");
	pushJsonbValue(&state, WJB_BEGIN_ARRAY, NULL);
	for (int i = 0; i < entity->nfields; i++)
	{
		MomentField *field = &entity->fields[i];

		pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
		jb_key(&state, "name");
		jb_string(&state, field->json_name, WJB_VALUE);
		jb_key(&state, "column");
		jb_string(&state, field->column_name, WJB_VALUE);
		jb_key(&state, "type");
		jb_string(&state, format_type_with_typemod(field->type_oid, field->typmod), WJB_VALUE);
		jb_key(&state, "writable");
		jb_bool(&state, field->writable, WJB_VALUE);
		pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	}
	pushJsonbValue(&state, WJB_END_ARRAY, NULL);

	jb_key(&state, "relations");
	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	foreach(cell, entity->relations)
	{
		MomentRelation *relation = lfirst(cell);

		jb_key(&state, relation->json_name);
		pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
		jb_key(&state, "entity");
		jb_string(&state, relation->target->name, WJB_VALUE);
		jb_key(&state, "field");
		jb_string(&state, relation->fk_field->json_name, WJB_VALUE);
		pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	}
	pushJsonbValue(&state, WJB_END_OBJECT, NULL);

	/* parts, expanded through the include parser (which checks them) */
	jb_key(&state, "parts");
	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	foreach(cell, entity->parts)
	{
		MomentPart *part = lfirst(cell);

		push_checked(&state, entity, part->name, part->name);
	}
	pushJsonbValue(&state, WJB_END_OBJECT, NULL);

	/* metadata sets: their keys, each set prepared once to check it */
	jb_key(&state, "metadata");
	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	foreach(cell, entity->metadata_sets)
	{
		MomentMetadataSet *set = lfirst(cell);
		List	   *keys;
		char	   *error = check_spec_quietly(entity, psprintf("metadata.%s", set->name), &keys);
		ListCell   *acell;

		jb_key(&state, set->name);
		if (error != NULL)
		{
			pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
			jb_key(&state, "error");
			jb_string(&state, error, WJB_VALUE);
			pushJsonbValue(&state, WJB_END_OBJECT, NULL);
			continue;
		}
		pushJsonbValue(&state, WJB_BEGIN_ARRAY, NULL);
		foreach(acell, set->aggregates)
			jb_string(&state, ((MomentAggregate *) lfirst(acell))->key, WJB_ELEM);
		pushJsonbValue(&state, WJB_END_ARRAY, NULL);
	}
	pushJsonbValue(&state, WJB_END_OBJECT, NULL);

	result = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	PG_RETURN_JSONB_P(JsonbValueToJsonb(result));
}
