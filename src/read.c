/*
 * read.c: get, list, rows and the typed list_* functions.
 *
 * Each builds its statement from the request's shape once per shape and
 * backend: the text is memoized by (kind, entity, include, order, paging,
 * and the filter's fields and operators), so that a repeated request only
 * parses its filter (for the values) and runs the kept plan.
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
#include "utils/guc.h"
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

/* The cap: least(default_limit, max_limit), or max_limit with no_limit; never above 30 000. */
int
listing_cap(bool no_limit)
{
	int			cap = no_limit ? moment_max_limit : Min(moment_default_limit, moment_max_limit);

	return Min(cap, MOMENT_HARD_LIMIT);
}

/*
 * Statement texts are memoized with a flag in front: 'M' when the statement
 * holds metadata expressions (SQL written into moment.metadata, run with
 * search_path pinned), '-' otherwise.
 */
static void
memo_put_statement(const char *key, RequestShape *shape, const char *sql)
{
	List	   *entities = NIL;
	ListCell   *cell;

	foreach(cell, shape->joins)
		entities = lappend(entities, ((ShapeJoin *) lfirst(cell))->entity);
	statement_memo_put(key, psprintf("%c%s", shape->metadata_sets != NIL ? 'M' : '-', sql), entities);
}

static const char *
memo_get_statement(const char *key, bool *with_metadata)
{
	const char *memo = statement_memo_get(key);

	if (memo == NULL)
		return NULL;
	*with_metadata = (memo[0] == 'M');
	return memo + 1;
}

/*
 * Runs fn with search_path pinned to pg_catalog, pg_temp when pin is set:
 * metadata expressions are SQL text, and a caller's search_path must not
 * choose what their names mean.
 */
int
pin_search_path(bool pin)
{
	int			nest_level;

	if (!pin)
		return -1;
	nest_level = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return nest_level;
}

void
unpin_search_path(int nest_level)
{
	if (nest_level >= 0)
		AtEOXact_GUC(true, nest_level);
}

Jsonb *
request_get(const char *entity_name, int64 id, const char *include)
{
	MomentEntity *entity = registry_entity(entity_name);
	CompanyInForce company = tenant_company(false);
	char	   *key = psprintf("get\x1f%s\x1f%s", entity->name, include ? include : "");
	bool		with_metadata = false;
	const char *memo = memo_get_statement(key, &with_metadata);
	const char *sql;
	Oid			argtypes[2] = {INT8OID, INT8OID};
	Datum		values[2];

	if (memo != NULL)
		sql = memo;
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
		appendStringInfo(&buf, " AND t.%s OPERATOR(pg_catalog.=) $2", entity->id_field->quoted_column);
		sql = buf.data;
		with_metadata = shape->metadata_sets != NIL;
		memo_put_statement(key, shape, sql);
	}
	values[0] = Int64GetDatum(company.id);
	values[1] = Int64GetDatum(id);
	return execute_for_object(sql, 2, argtypes, values, NULL, true, with_metadata, CurrentMemoryContext);
}

PG_FUNCTION_INFO_V1(moment_get);
Datum
moment_get(PG_FUNCTION_ARGS)
{
	char	   *entity = text_arg(fcinfo, 0);
	Jsonb	   *volatile result = NULL;

	API_ENTRY_BEGIN
	{
		if (entity == NULL)
			registry_entity(NULL);
		if (PG_ARGISNULL(1))
			registry_entity(entity);
		else
			result = request_get(entity, PG_GETARG_INT64(1), text_arg(fcinfo, 2));
	}
	API_ENTRY_END;
	if (result == NULL)
		PG_RETURN_NULL();
	PG_RETURN_JSONB_P(result);
}

/* ---- listings ---- */

typedef enum ListingKind
{
	LISTING_DOCUMENT,			/* list: $2 limit, $3 offset */
	LISTING_DOCUMENT_TOTALS,	/* list with paging: the count too */
	LISTING_ROWS,				/* rows: $2 limit */
	LISTING_TYPED				/* list_*: $2 limit, table rows */
} ListingKind;

/* The filter's fields and operators, in order: what the statement text depends on. */
static char *
conditions_signature(RequestShape *shape)
{
	StringInfoData buf;
	ListCell   *cell;

	initStringInfo(&buf);
	foreach(cell, shape->conditions)
	{
		ShapeCondition *condition = lfirst(cell);

		appendStringInfo(&buf, "%s.%s:%d;", shape_join(shape, condition->join)->path,
						 condition->field->json_name, (int) condition->op);
	}
	return buf.data;
}

static void
build_listing_sql(StringInfo sql, RequestShape *shape, ListingKind kind)
{
	MomentEntity *entity = shape->entity;

	switch (kind)
	{
		case LISTING_DOCUMENT:
		case LISTING_DOCUMENT_TOTALS:
			appendStringInfoString(sql, "SELECT ARRAY(SELECT ");
			query_object(sql, shape, false);
			query_from(sql, shape, NULL, false);
			query_where(sql, shape);
			query_order(sql, shape);
			appendStringInfoString(sql, " LIMIT $2 OFFSET $3), ");
			if (kind == LISTING_DOCUMENT_TOTALS || shape->metadata_sets != NIL)
			{
				appendStringInfoString(sql, "(SELECT pg_catalog.jsonb_build_array(pg_catalog.count(*), ");
				if (shape->metadata_sets != NIL)
					query_metadata_object(sql, shape);
				else
					appendStringInfoString(sql, "NULL::pg_catalog.jsonb");
				appendStringInfoChar(sql, ')');
				query_from(sql, shape, NULL, true);
				query_where(sql, shape);
				appendStringInfoChar(sql, ')');
			}
			else
				appendStringInfoString(sql, "NULL::pg_catalog.jsonb");
			break;
		case LISTING_ROWS:
			appendStringInfoString(sql, "SELECT ");
			query_object(sql, shape, false);
			query_from(sql, shape, NULL, false);
			query_where(sql, shape);
			query_order(sql, shape);
			appendStringInfoString(sql, " LIMIT $2");
			break;
		case LISTING_TYPED:
			appendStringInfoString(sql, entity->has_dropped_columns ? "SELECT t" : "SELECT t.*");
			query_from(sql, shape, NULL, false);
			query_where(sql, shape);
			query_order(sql, shape);
			appendStringInfoString(sql, " LIMIT $2");
			break;
	}
}

/*
 * The shape (with the request's parameters: $1 company, $2 limit, $3
 * offset for documents, then the filter's values) and the statement of a
 * listing.  *with_metadata says whether metadata sets were included.
 */
RequestShape *
listing_prepare(MomentEntity *entity, const char *include, Jsonb *filter, const char *order_by,
				int kind_number, const char **sql_out, bool *with_metadata)
{
	ListingKind kind = (ListingKind) kind_number;
	CompanyInForce company = tenant_company(false);
	RequestShape *shape = shape_create(entity, company.id);
	char	   *key;
	const char *memo;

	shape_param(shape, INT8OID, Int64GetDatum(0), false);	/* $2 limit */
	if (kind == LISTING_DOCUMENT || kind == LISTING_DOCUMENT_TOTALS)
		shape_param(shape, INT8OID, Int64GetDatum(0), false);	/* $3 offset */
	filter_parse(shape, filter);

	key = psprintf("list%d\x1f%s\x1f%s\x1f%s\x1f%s", (int) kind, entity->name,
				   kind == LISTING_TYPED ? "" : (include ? include : ""),
				   order_by ? order_by : "", conditions_signature(shape));
	memo = memo_get_statement(key, with_metadata);
	if (memo != NULL)
	{
		*sql_out = memo;
		return shape;
	}
	if (kind == LISTING_TYPED)
		include_all_fields(shape);
	else
		include_parse(shape, include);
	order_parse(shape, order_by);
	shape_finalize(shape);
	if (kind == LISTING_ROWS && shape->metadata_sets != NIL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("rows returns objects only: metadata cannot be included"),
				 errhint("Use moment.list for metadata over the whole listing.")));
	{
		StringInfoData sql;

		initStringInfo(&sql);
		build_listing_sql(&sql, shape, kind);
		*sql_out = sql.data;
	}
	*with_metadata = shape->metadata_sets != NIL;
	memo_put_statement(key, shape, *sql_out);
	return shape;
}

/*
 * The start of a listing document: {"content": [the objects],
 * "limitWasExceeded": b, ... (the caller may add keys and ends the object).
 */
void
push_listing_start(JsonbParseState **state, Datum *objects, int nobjects, bool exceeded)
{
	pushJsonbValue(state, WJB_BEGIN_OBJECT, NULL);
	jb_key(state, "content");
	pushJsonbValue(state, WJB_BEGIN_ARRAY, NULL);
	for (int i = 0; i < nobjects; i++)
		jb_jsonb(state, DatumGetJsonbP(objects[i]), WJB_ELEM);
	pushJsonbValue(state, WJB_END_ARRAY, NULL);
	jb_key(state, "limitWasExceeded");
	jb_bool(state, exceeded, WJB_VALUE);
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
	MomentEntity *entity;
	RequestShape *shape;
	const char *sql;
	bool		with_metadata;
	int			cap = listing_cap(request->no_limit);
	bool		paging = request->has_page || request->has_size;
	int64		limit;
	int64		offset = 0;
	int64		size = 0;
	bool		exceeded = false;
	MemoryContext caller = CurrentMemoryContext;
	KeptPlan   *plan;
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
	int			pinned;
	Jsonb	   *result;

	check_paging(request);
	entity = registry_entity(request->entity);
	shape = listing_prepare(entity, request->include, request->filter, request->order_by,
							paging ? LISTING_DOCUMENT_TOTALS : LISTING_DOCUMENT, &sql, &with_metadata);
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

	spi_check(SPI_connect(), "SPI_connect");
	pinned = pin_search_path(with_metadata);
	plan = plancache_get_with_options(sql, shape->nparams, shape->param_types,
									  CURSOR_OPT_CUSTOM_PLAN, NULL);
	spi_check(kept_plan_execute(plan, shape->param_values, shape->param_nulls, true, 1), "listing");
	unpin_search_path(pinned);
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
	push_listing_start(&state, objects, nobjects, exceeded);
	if (aggregate != NULL)
	{
		JsonbValue *count = getIthJsonbValueFromContainer(&aggregate->root, 0);
		JsonbValue *metadata = getIthJsonbValueFromContainer(&aggregate->root, 1);

		total = DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(count->val.numeric)));
		if (with_metadata)
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
	result = JsonbValueToJsonb(document);
	SPI_finish();
	return result;
}

PG_FUNCTION_INFO_V1(moment_list);
Datum
moment_list(PG_FUNCTION_ARGS)
{
	ListRequest request = {0};
	Jsonb	   *volatile result = NULL;

	request.entity = text_arg(fcinfo, 0);
	request.include = text_arg(fcinfo, 1);
	request.filter = PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P(2);
	request.order_by = text_arg(fcinfo, 3);
	request.has_page = !PG_ARGISNULL(4);
	request.page = request.has_page ? PG_GETARG_INT32(4) : 0;
	request.has_size = !PG_ARGISNULL(5);
	request.size = request.has_size ? PG_GETARG_INT32(5) : 0;
	request.no_limit = PG_ARGISNULL(6) ? false : PG_GETARG_BOOL(6);
	API_ENTRY_BEGIN
	{
		result = request_list(&request);
	}
	API_ENTRY_END;
	PG_RETURN_JSONB_P(result);
}

/*
 * Rows were cut at the cap: a WARNING, or with moment.limit_exceeded =
 * error, an error 54000; both contain limitWasExceeded.
 */
void
report_cut(int cap, CapKind cap_kind)
{
	const char *hint;

	/* say where the cap comes from: a default_limit above max_limit does not count */
	if (cap_kind == CAP_REPORT)
		hint = psprintf("A report returns at most least(moment.default_limit, moment.max_limit) = %d rows: narrow the dates, the filter or the grouping, or raise moment.default_limit (at most moment.max_limit, %d).",
						cap, listing_cap(true));
	else if (cap_kind == CAP_NO_LIMIT)
		hint = psprintf("%d rows is the most any listing returns: narrow the filter, or page through the rows with moment.list(..., page => N, size => M).",
						cap);
	else if (listing_cap(true) > cap)
		hint = psprintf("The cap is least(moment.default_limit, moment.max_limit) = %d rows; pass no_limit => true for up to %d rows, narrow the filter, or page through the rows with moment.list(..., page => N, size => M).",
						cap, listing_cap(true));
	else
		hint = psprintf("The cap is least(moment.default_limit, moment.max_limit) = %d rows, and no_limit => true gives no more: narrow the filter, or page through the rows with moment.list(..., page => N, size => M).",
						cap);

	if (moment_limit_exceeded == LIMIT_EXCEEDED_ERROR)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("limitWasExceeded: more than %d rows matched, and moment.limit_exceeded is error", cap),
				 errhint("%s", hint)));
	ereport(WARNING,
			(errmsg("limitWasExceeded: more than %d rows matched, only the first %d are returned", cap, cap),
			 errhint("%s", hint)));
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
 * result, at most cap of them (the statement fetches cap + 1 through $2, to
 * learn whether more matched), and reports a cut.
 */
void
stream_listing(FunctionCallInfo fcinfo, RequestShape *shape, const char *sql, int cap,
			   CapKind cap_kind, bool whole_rows, bool pin)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	KeptPlan   *plan;
	SPIExecuteOptions options;
	CapReceiver receiver;
	ParamListInfo params;
	int			pinned;

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
	pinned = pin_search_path(pin);
	plan = plancache_get_with_options(sql, shape->nparams, shape->param_types,
									  CURSOR_OPT_CUSTOM_PLAN, NULL);
	spi_check(kept_plan_execute_extended(plan, &options), "listing");
	unpin_search_path(pinned);
	SPI_finish();
	if (receiver.cut)
		report_cut(cap, cap_kind);
}

PG_FUNCTION_INFO_V1(moment_rows);
Datum
moment_rows(PG_FUNCTION_ARGS)
{
	API_ENTRY_BEGIN
	{
		bool		no_limit = PG_ARGISNULL(4) ? false : PG_GETARG_BOOL(4);
		MomentEntity *entity = registry_entity(text_arg(fcinfo, 0));
		const char *sql;
		bool		with_metadata;
		RequestShape *shape = listing_prepare(entity, text_arg(fcinfo, 1),
											  PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P(2),
											  text_arg(fcinfo, 3), LISTING_ROWS, &sql, &with_metadata);

		if (with_metadata)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("rows returns objects only: metadata cannot be included"),
					 errhint("Use moment.list for metadata over the whole listing.")));
		stream_listing(fcinfo, shape, sql, listing_cap(no_limit), no_limit ? CAP_NO_LIMIT : CAP_DEFAULT,
					   false, false);
	}
	API_ENTRY_END;
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
	API_ENTRY_BEGIN
	{
		Oid			rettype = get_func_rettype(fcinfo->flinfo->fn_oid);
		Oid			relid = get_typ_typrelid(rettype);
		bool		no_limit = PG_ARGISNULL(2) ? false : PG_GETARG_BOOL(2);
		MomentEntity *entity;
		RequestShape *shape;
		const char *sql;
		bool		with_metadata;

		(void) registry_entities();
		entity = registry_entity_by_relid(relid);
		if (entity == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("table %s is not a registered entity", format_type_be(rettype))));
		entity_ensure(entity);
		shape = listing_prepare(entity, NULL, PG_ARGISNULL(0) ? NULL : PG_GETARG_JSONB_P(0),
								text_arg(fcinfo, 1), LISTING_TYPED, &sql, &with_metadata);
		stream_listing(fcinfo, shape, sql, listing_cap(no_limit), no_limit ? CAP_NO_LIMIT : CAP_DEFAULT,
					   entity->has_dropped_columns, false);
	}
	API_ENTRY_END;
	return (Datum) 0;
}
