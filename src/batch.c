/*
 * batch.c: {"create": [...], "update": {"id": {...}}, "delete": [...]},
 * all or nothing.
 *
 * The whole batch runs in one internal subtransaction (one transaction id,
 * however many statements).  First every id it updates or deletes is
 * locked, once, in ascending id order, FOR NO KEY UPDATE: two batches over
 * the same rows queue up instead of deadlocking, whatever mix of updates and
 * deletes they hold, and a child row being inserted elsewhere (FOR KEY
 * SHARE) does not conflict.  Then creates go in request order, updates in
 * ascending id order, then deletes.
 *
 * Runs of creates (or updates) of the same fields go as one statement, and
 * deletes as one.  If a statement covering several instructions fails, the
 * whole subtransaction is rolled back and the batch applied again one
 * instruction at a time, so that the failing one raises under its own name
 * (create[2], update[11362], delete[11357]) with its SQLSTATE kept -- except
 * for errors no replay could explain (error_must_propagate: cancels,
 * resources, deadlocks, serialization failures, internal errors), which go
 * on at once.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"

#include "moment.h"
#include "plancache.h"
#include "request.h"
#include "shape.h"
#include "tenant.h"

/* most rows one multi-row statement carries */
#define RUN_CHUNK 1000

typedef struct BatchUpdate
{
	int64		id;
	Jsonb	   *body;
	bool		exists;			/* found by the lock statement */
} BatchUpdate;

typedef struct Batch
{
	MomentEntity *entity;
	int64		company_id;
	WriteProjection projection;
	MemoryContext result_context;
	bool		set_based;		/* false when replaying one by one */

	int			ncreates;
	Jsonb	  **creates;
	int			nupdates;
	BatchUpdate *updates;
	int			ndeletes;
	int64	   *deletes;
	bool	   *delete_exists;

	/* the instruction being applied, for the error */
	char		label[64];
	bool		label_is_range; /* a statement of several instructions */

	List	   *created;		/* Jsonb *, request order */
	List	   *updated;
	bool		create_order_intact;
	int64		last_created_id;
	bool		any_created;
} Batch;

static void
bad_batch(const char *message, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("malformed batch: %s", message),
			 hint ? errhint("%s", hint) : 0));
}

static bool
parse_id_text(const char *text, int64 *id)
{
	char	   *end;

	errno = 0;
	if (text == NULL || *text == '\0')
		return false;
	*id = strtoi64(text, &end, 10);
	return errno == 0 && *end == '\0' && end != text;
}

static int64
json_id(JsonbValue *value, const char *where)
{
	int64		id;
	char	   *text = NULL;

	if (value->type == jbvNumeric || value->type == jbvString)
		text = jsonb_value_text(value);
	if (text == NULL || !parse_id_text(text, &id))
		bad_batch(psprintf("%s must be an integer id, not %s", where,
						   text ? psprintf("\"%s\"", text) : jsonb_type_phrase(value)),
				  NULL);
	return id;
}

static int
compare_updates(const void *a, const void *b)
{
	int64		x = ((const BatchUpdate *) a)->id;
	int64		y = ((const BatchUpdate *) b)->id;

	return (x > y) - (x < y);
}

static int
compare_ids(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

/* How many elements a container holds; checked before anything is copied. */
static int
container_size(JsonbValue *v)
{
	return v->type == jbvBinary ? JsonContainerSize(v->val.binary.data) : 0;
}

/* Reads the instructions; shape errors are 22023, nothing is applied yet. */
static void
parse_instructions(Batch *batch, Jsonb *instructions)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken token;
	char	   *key = NULL;
	int64		total = 0;

	if (instructions == NULL)
		bad_batch("instructions must be a JSON object, not null",
				  "{\"create\": [...], \"update\": {\"id\": {...}}, \"delete\": [...]}");
	if (!JB_ROOT_IS_OBJECT(instructions) || JB_ROOT_IS_SCALAR(instructions))
		bad_batch("instructions must be a JSON object",
				  "{\"create\": [...], \"update\": {\"id\": {...}}, \"delete\": [...]}");

	/* the size limit first, before a single instruction is copied */
	it = JsonbIteratorInit(&instructions->root);
	while ((token = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		if (token == WJB_VALUE)
			total += container_size(&v);
	if (total > moment_max_batch_size)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("batch of " INT64_FORMAT " instructions is larger than moment.max_batch_size (%d)",
						total, moment_max_batch_size),
				 errhint("Split the work into several batches.")));

	it = JsonbIteratorInit(&instructions->root);
	while ((token = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (token == WJB_KEY)
		{
			key = pnstrdup(v.val.string.val, v.val.string.len);
			continue;
		}
		if (token != WJB_VALUE)
			continue;

		if (strcmp(key, "create") == 0)
		{
			JsonbIterator *eit;
			JsonbValue	element;

			if (v.type != jbvBinary || !JsonContainerIsArray(v.val.binary.data))
				bad_batch(psprintf("\"create\" must be an array of objects, not %s", jsonb_type_phrase(&v)), NULL);
			batch->creates = palloc(sizeof(Jsonb *) * Max(1, container_size(&v)));
			eit = JsonbIteratorInit(v.val.binary.data);
			while ((token = JsonbIteratorNext(&eit, &element, true)) != WJB_DONE)
			{
				CHECK_FOR_INTERRUPTS();
				if (token == WJB_ELEM)
					batch->creates[batch->ncreates++] = JsonbValueToJsonb(&element);
			}
		}
		else if (strcmp(key, "update") == 0)
		{
			JsonbIterator *eit;
			JsonbValue	element;
			char	   *id_text = NULL;

			if (v.type != jbvBinary || !JsonContainerIsObject(v.val.binary.data))
				bad_batch(psprintf("\"update\" must be an object of id -> body, not %s",
								   jsonb_type_phrase(&v)),
						  "{\"update\": {\"11362\": {\"name\": \"New name\"}}}");
			batch->updates = palloc0(sizeof(BatchUpdate) * Max(1, container_size(&v)));
			eit = JsonbIteratorInit(v.val.binary.data);
			while ((token = JsonbIteratorNext(&eit, &element, true)) != WJB_DONE)
			{
				CHECK_FOR_INTERRUPTS();
				if (token == WJB_KEY)
					id_text = pnstrdup(element.val.string.val, element.val.string.len);
				else if (token == WJB_VALUE)
				{
					BatchUpdate *update = &batch->updates[batch->nupdates++];

					if (!parse_id_text(id_text, &update->id))
						bad_batch(psprintf("update key \"%s\" is not an integer id", id_text), NULL);
					update->body = JsonbValueToJsonb(&element);
				}
			}
		}
		else if (strcmp(key, "delete") == 0)
		{
			JsonbIterator *eit;
			JsonbValue	element;

			if (v.type != jbvBinary || !JsonContainerIsArray(v.val.binary.data))
				bad_batch(psprintf("\"delete\" must be an array of ids, not %s", jsonb_type_phrase(&v)), NULL);
			batch->deletes = palloc(sizeof(int64) * Max(1, container_size(&v)));
			eit = JsonbIteratorInit(v.val.binary.data);
			while ((token = JsonbIteratorNext(&eit, &element, true)) != WJB_DONE)
			{
				CHECK_FOR_INTERRUPTS();
				if (token == WJB_ELEM)
					batch->deletes[batch->ndeletes++] = json_id(&element, "each delete");
			}
		}
		else
			bad_batch(psprintf("unknown key \"%s\"", key),
					  "A batch holds \"create\", \"update\" and \"delete\".");
	}

	qsort(batch->updates, batch->nupdates, sizeof(BatchUpdate), compare_updates);
	for (int i = 1; i < batch->nupdates; i++)
		if (batch->updates[i].id == batch->updates[i - 1].id)
			bad_batch(psprintf("id " INT64_FORMAT " is updated twice", batch->updates[i].id), NULL);
	qsort(batch->deletes, batch->ndeletes, sizeof(int64), compare_ids);
	for (int i = 1; i < batch->ndeletes; i++)
		if (batch->deletes[i] == batch->deletes[i - 1])
			bad_batch(psprintf("id " INT64_FORMAT " is deleted twice", batch->deletes[i]), NULL);
	batch->delete_exists = palloc0(sizeof(bool) * Max(1, batch->ndeletes));
}

static void
set_label(Batch *batch, const char *kind, int64 n)
{
	snprintf(batch->label, sizeof(batch->label), "%s[" INT64_FORMAT "]", kind, n);
	batch->label_is_range = false;
}

static void
set_range_label(Batch *batch, const char *kind, int64 first, int64 last)
{
	snprintf(batch->label, sizeof(batch->label), "%s[" INT64_FORMAT ".." INT64_FORMAT "]", kind, first, last);
	batch->label_is_range = true;
}

static bool
same_fields(BodyValue *a, int na, BodyValue *b, int nb)
{
	if (na != nb)
		return false;
	for (int i = 0; i < na; i++)
		if (a[i].field != b[i].field)
			return false;
	return true;
}

static bool
has_array_types(BodyValue *values, int nvalues)
{
	for (int i = 0; i < nvalues; i++)
		if (!OidIsValid(values[i].field->array_type_oid))
			return false;
	return true;
}

static Datum
id_array(const int64 *ids, int count)
{
	Datum	   *datums = palloc(sizeof(Datum) * Max(1, count));

	for (int i = 0; i < count; i++)
		datums[i] = Int64GetDatum(ids[i]);
	return PointerGetDatum(construct_array(datums, count, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/* Runs a kept statement of the batch; its rows stay in SPI_tuptable. */
static void
run_statement(Batch *batch, const char *sql, int nargs, Oid *argtypes, Datum *args, uint64 expected)
{
	KeptPlan   *plan = plancache_get(sql, nargs, argtypes);
	int			pinned = pin_search_path(batch->projection.with_metadata);

	spi_check(kept_plan_execute(plan, args, NULL, false, 0), "batch statement");
	unpin_search_path(pinned);
	if (expected > 0 && SPI_processed != expected)
		elog(ERROR, "moment: a batch statement (%s) returned %llu rows, not %llu",
			 batch->label, (unsigned long long) SPI_processed, (unsigned long long) expected);
}

/*
 * Locks every updated and deleted row, once, in ascending id order, and
 * notes which ids exist.
 */
static void
lock_rows(Batch *batch)
{
	int			n = batch->nupdates + batch->ndeletes;
	int64	   *ids;
	int			nids = 0;
	Oid			argtypes[2] = {INT8OID, INT8ARRAYOID};
	Datum		args[2];
	char	   *sql;
	int			u = 0;
	int			d = 0;

	if (n == 0)
		return;
	ids = palloc(sizeof(int64) * n);
	for (int i = 0; i < batch->nupdates; i++)
		ids[nids++] = batch->updates[i].id;
	for (int i = 0; i < batch->ndeletes; i++)
		ids[nids++] = batch->deletes[i];
	qsort(ids, nids, sizeof(int64), compare_ids);
	args[0] = Int64GetDatum(batch->company_id);
	args[1] = id_array(ids, nids);
	sql = psprintf("SELECT CAST(u.%s AS pg_catalog.int8) FROM %s AS u "
				   "WHERE u.company_id OPERATOR(pg_catalog.=) $1 AND u.%s OPERATOR(pg_catalog.=) ANY ($2) "
				   "ORDER BY u.%s FOR NO KEY UPDATE",
				   batch->entity->id_field->quoted_column, batch->entity->qualified_table,
				   batch->entity->id_field->quoted_column, batch->entity->id_field->quoted_column);
	batch->label[0] = '\0';
	run_statement(batch, sql, 2, argtypes, args, 0);

	/* both lists are sorted, and so are the rows found */
	for (uint64 row = 0; row < SPI_processed; row++)
	{
		bool		isnull;
		int64		found = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, 1, &isnull));

		while (u < batch->nupdates && batch->updates[u].id < found)
			u++;
		if (u < batch->nupdates && batch->updates[u].id == found)
			batch->updates[u].exists = true;
		while (d < batch->ndeletes && batch->deletes[d] < found)
			d++;
		if (d < batch->ndeletes && batch->deletes[d] == found)
			batch->delete_exists[d] = true;
	}
}

/* The id of a created object, to check that ids follow the request's order. */
static void
note_created_id(Batch *batch, int64 id)
{
	if (batch->any_created && id <= batch->last_created_id)
		batch->create_order_intact = false;
	batch->last_created_id = id;
	batch->any_created = true;
}

static int64
object_id(Jsonb *object)
{
	JsonbValue	key;
	JsonbValue *value;

	key.type = jbvString;
	key.val.string.val = "id";
	key.val.string.len = 2;
	value = findJsonbValueFromContainer(&object->root, JB_FOBJECT, &key);
	if (value == NULL || value->type != jbvNumeric)
		return 0;
	return DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(value->val.numeric)));
}

/* One create, as create() does it. */
static void
create_single(Batch *batch, int index, BodyValue *values, int nvalues)
{
	Oid		   *argtypes = palloc(sizeof(Oid) * (nvalues + 1));
	Datum	   *args = palloc(sizeof(Datum) * (nvalues + 1));
	char	   *nulls = palloc(sizeof(char) * (nvalues + 1));
	Jsonb	   *result;
	MemoryContext old_context;

	set_label(batch, "create", index);
	argtypes[0] = INT8OID;
	args[0] = Int64GetDatum(batch->company_id);
	nulls[0] = ' ';
	for (int i = 0; i < nvalues; i++)
	{
		bool		isnull;

		argtypes[i + 1] = values[i].field->type_oid;
		args[i + 1] = field_input(values[i].field, &values[i].value, true, &isnull);
		nulls[i + 1] = isnull ? 'n' : ' ';
	}
	result = execute_for_object(create_sql(batch->entity, values, nvalues, batch->projection.sql),
								nvalues + 1, argtypes, args, nulls, false,
								batch->projection.with_metadata, batch->result_context);
	if (result == NULL)
		elog(ERROR, "moment: insert into %s returned no row", batch->entity->qualified_table);
	note_created_id(batch, object_id(result));
	old_context = MemoryContextSwitchTo(batch->result_context);
	batch->created = lappend(batch->created, result);
	MemoryContextSwitchTo(old_context);
}

/*
 * A multi-row INSERT of the unnested arrays WITH ORDINALITY, in request
 * order; the objects come back in request order, each row also carrying the
 * ids in that order, to tell whether ids follow the request.
 */
static char *
create_many_sql(Batch *batch, BodyValue *values, int nvalues)
{
	StringInfoData sql;

	initStringInfo(&sql);
	appendStringInfo(&sql, "WITH i AS (INSERT INTO %s (company_id", batch->entity->qualified_table);
	for (int i = 0; i < nvalues; i++)
		appendStringInfo(&sql, ", %s", values[i].field->quoted_column);
	appendStringInfoString(&sql, ") SELECT $1");
	for (int i = 0; i < nvalues; i++)
		appendStringInfo(&sql, ", u.v%d", i + 1);
	if (nvalues == 0)
		appendStringInfoString(&sql, " FROM pg_catalog.generate_series(1, $2) AS u(ord)");
	else
	{
		appendStringInfoString(&sql, " FROM ROWS FROM (");
		for (int i = 0; i < nvalues; i++)
			appendStringInfo(&sql, "%spg_catalog.unnest($%d)", i > 0 ? ", " : "", i + 2);
		appendStringInfoString(&sql, ") WITH ORDINALITY AS u(");
		for (int i = 0; i < nvalues; i++)
			appendStringInfo(&sql, "v%d, ", i + 1);
		appendStringInfoString(&sql, "ord)");
	}

	/*
	 * The rows come back from the INSERT in the order they were inserted,
	 * which is the request's: number them there, return the objects in that
	 * order, and the ids in it too, to tell whether ids follow the request.
	 */
	appendStringInfo(&sql, " ORDER BY u.ord RETURNING *), "
					 "t AS MATERIALIZED (SELECT i.*, pg_catalog.row_number() OVER () AS moment_ord FROM i), "
					 "moment_ids AS MATERIALIZED (SELECT pg_catalog.array_agg(CAST(t.%s AS pg_catalog.int8) ORDER BY t.moment_ord) AS ids FROM t) "
					 "SELECT %s, (SELECT moment_ids.ids FROM moment_ids)%s ORDER BY t.moment_ord",
					 batch->entity->id_field->quoted_column, batch->projection.object,
					 batch->projection.from);
	return sql.data;
}

static char *
update_many_sql(Batch *batch, BodyValue *values, int nvalues)
{
	MomentEntity *entity = batch->entity;
	StringInfoData sql;

	initStringInfo(&sql);
	appendStringInfoString(&sql, "WITH t AS (");
	update_set_clause(&sql, entity, values, nvalues, true);
	appendStringInfoString(&sql, " FROM ROWS FROM (pg_catalog.unnest($2)");
	for (int i = 0; i < nvalues; i++)
		appendStringInfo(&sql, ", pg_catalog.unnest($%d)", i + 3);
	appendStringInfoString(&sql, ") AS v(id");
	for (int i = 0; i < nvalues; i++)
		appendStringInfo(&sql, ", v%d", i + 1);
	appendStringInfo(&sql, ") WHERE u.company_id OPERATOR(pg_catalog.=) $1 AND u.%s OPERATOR(pg_catalog.=) v.id "
					 "RETURNING u.*) %s ORDER BY t.%s",
					 entity->id_field->quoted_column, batch->projection.sql,
					 entity->id_field->quoted_column);
	return sql.data;
}

/*
 * The values of one field across a run of instructions, as an array
 * parameter; a value that does not convert raises under its instruction's
 * name.
 */
static Datum
field_array(Batch *batch, const char *kind, const int64 *numbers, BodyValue **values,
			int count, int f)
{
	MomentField *field = values[0][f].field;
	Datum	   *elements = palloc(sizeof(Datum) * count);
	bool	   *element_nulls = palloc(sizeof(bool) * count);
	int			dims[1] = {count};
	int			lbs[1] = {1};
	int16		typlen;
	bool		typbyval;
	char		typalign;

	for (int i = 0; i < count; i++)
	{
		set_label(batch, kind, numbers[i]);
		elements[i] = field_input(field, &values[i][f].value, true, &element_nulls[i]);
	}
	get_typlenbyvalalign(field->type_oid, &typlen, &typbyval, &typalign);
	return PointerGetDatum(construct_md_array(elements, element_nulls, 1, dims, lbs,
											  field->type_oid, typlen, typbyval, typalign));
}

/* Appends the jsonb objects (column 1) of the current SPI result to a list. */
static List *
collect_objects(Batch *batch, List *objects)
{
	MemoryContext old_context = MemoryContextSwitchTo(batch->result_context);

	for (uint64 row = 0; row < SPI_processed; row++)
	{
		bool		isnull;
		Datum		datum = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, 1, &isnull);

		objects = lappend(objects, DatumGetJsonbPCopy(datum));
	}
	MemoryContextSwitchTo(old_context);
	return objects;
}

/* Creates [first, first + count) with the same fields as one statement. */
static void
create_many(Batch *batch, int first, int count, BodyValue **values, int nvalues)
{
	int			nargs = Max(nvalues, 1) + 1;
	int64	   *numbers = palloc(sizeof(int64) * count);
	Oid		   *argtypes = palloc(sizeof(Oid) * nargs);
	Datum	   *args = palloc(sizeof(Datum) * nargs);

	argtypes[0] = INT8OID;
	args[0] = Int64GetDatum(batch->company_id);
	if (nvalues == 0)
	{
		argtypes[1] = INT4OID;
		args[1] = Int32GetDatum(count);
	}
	for (int i = 0; i < count; i++)
		numbers[i] = first + i;
	for (int f = 0; f < nvalues; f++)
	{
		argtypes[f + 1] = values[0][f].field->array_type_oid;
		args[f + 1] = field_array(batch, "create", numbers, values, count, f);
	}
	set_range_label(batch, "create", first, first + count - 1);
	spi_check(SPI_connect(), "SPI_connect");
	run_statement(batch, create_many_sql(batch, values[0], nvalues), nargs, argtypes, args, count);
	{
		bool		isnull;
		Datum		ids = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
		Datum	   *elements;
		int			nelements;

		deconstruct_array(DatumGetArrayTypeP(ids), INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
						  &elements, NULL, &nelements);
		for (int i = 0; i < nelements; i++)
			note_created_id(batch, DatumGetInt64(elements[i]));
	}
	batch->created = collect_objects(batch, batch->created);
	SPI_finish();
}

/* Updates a run of ids (ascending, every one locked and there) set-based. */
static void
update_many(Batch *batch, BatchUpdate *updates, int count, BodyValue **values, int nvalues)
{
	int			nargs = nvalues + 2;
	int64	   *ids = palloc(sizeof(int64) * count);
	Oid		   *argtypes = palloc(sizeof(Oid) * nargs);
	Datum	   *args = palloc(sizeof(Datum) * nargs);

	for (int i = 0; i < count; i++)
		ids[i] = updates[i].id;
	argtypes[0] = INT8OID;
	args[0] = Int64GetDatum(batch->company_id);
	argtypes[1] = INT8ARRAYOID;
	args[1] = id_array(ids, count);
	for (int f = 0; f < nvalues; f++)
	{
		argtypes[f + 2] = values[0][f].field->array_type_oid;
		args[f + 2] = field_array(batch, "update", ids, values, count, f);
	}
	set_range_label(batch, "update", ids[0], ids[count - 1]);
	spi_check(SPI_connect(), "SPI_connect");
	run_statement(batch, update_many_sql(batch, values[0], nvalues), nargs, argtypes, args, count);
	batch->updated = collect_objects(batch, batch->updated);
	SPI_finish();
}

/*
 * Each run works in the step context, reset after it, so that a batch's
 * memory is its input and its results, not the sum of every statement's
 * working memory.
 */
static void
apply_creates(Batch *batch, MemoryContext step)
{
	BodyValue **values = palloc(sizeof(BodyValue *) * Max(1, batch->ncreates));
	int		   *nvalues = palloc(sizeof(int) * Max(1, batch->ncreates));
	int			first = 0;

	for (int i = 0; i < batch->ncreates; i++)
	{
		CHECK_FOR_INTERRUPTS();
		set_label(batch, "create", i);
		values[i] = body_parse(batch->entity, batch->creates[i], &nvalues[i], "body");
	}

	while (first < batch->ncreates)
	{
		int			count = 1;
		MemoryContext old_context;

		while (batch->set_based && first + count < batch->ncreates && count < RUN_CHUNK &&
			   same_fields(values[first], nvalues[first], values[first + count], nvalues[first + count]))
			count++;

		old_context = MemoryContextSwitchTo(step);
		if (count > 1 && has_array_types(values[first], nvalues[first]))
			create_many(batch, first, count, &values[first], nvalues[first]);
		else
			for (int i = first; i < first + count; i++)
				create_single(batch, i, values[i], nvalues[i]);
		MemoryContextSwitchTo(old_context);
		MemoryContextReset(step);
		first += count;
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * Updates in ascending id order; runs of updates setting the same fields go
 * set-based.  An id that is not there raises when its turn comes.
 */
static void
apply_updates(Batch *batch, MemoryContext step)
{
	BodyValue **values = palloc(sizeof(BodyValue *) * Max(1, batch->nupdates));
	int		   *nvalues = palloc(sizeof(int) * Max(1, batch->nupdates));
	int			first = 0;

	for (int i = 0; i < batch->nupdates; i++)
	{
		CHECK_FOR_INTERRUPTS();
		set_label(batch, "update", batch->updates[i].id);
		values[i] = body_parse(batch->entity, batch->updates[i].body, &nvalues[i], "body");
	}

	while (first < batch->nupdates)
	{
		int			count = 1;
		MemoryContext old_context;

		if (!batch->updates[first].exists)
		{
			set_label(batch, "update", batch->updates[first].id);
			raise_not_found(batch->entity, batch->updates[first].id, batch->label);
		}
		while (batch->set_based && first + count < batch->nupdates && count < RUN_CHUNK &&
			   batch->updates[first + count].exists &&
			   same_fields(values[first], nvalues[first], values[first + count], nvalues[first + count]))
			count++;

		old_context = MemoryContextSwitchTo(step);
		if (count > 1 && has_array_types(values[first], nvalues[first]))
			update_many(batch, &batch->updates[first], count, &values[first], nvalues[first]);
		else
		{
			for (int i = first; i < first + count; i++)
			{
				Jsonb	   *result;

				set_label(batch, "update", batch->updates[i].id);
				result = update_one(batch->entity, batch->company_id, batch->updates[i].id,
									values[i], nvalues[i], batch->projection.sql,
									batch->projection.with_metadata, NULL, batch->result_context);
				MemoryContextSwitchTo(batch->result_context);
				batch->updated = lappend(batch->updated, result);
				MemoryContextSwitchTo(step);
			}
		}
		MemoryContextSwitchTo(old_context);
		MemoryContextReset(step);
		first += count;
		CHECK_FOR_INTERRUPTS();
	}
}

/* Deletes the first n ids: in one statement, or one by one. */
static void
delete_first(Batch *batch, MemoryContext step, int n)
{
	MemoryContext old_context = MemoryContextSwitchTo(step);

	if (batch->set_based && n > 1)
	{
		Oid			argtypes[2] = {INT8OID, INT8ARRAYOID};
		Datum		args[2];

		args[0] = Int64GetDatum(batch->company_id);
		args[1] = id_array(batch->deletes, n);
		set_range_label(batch, "delete", batch->deletes[0], batch->deletes[n - 1]);
		spi_check(SPI_connect(), "SPI_connect");
		run_statement(batch,
					  psprintf("DELETE FROM %s AS t WHERE t.company_id OPERATOR(pg_catalog.=) $1 "
							   "AND t.%s OPERATOR(pg_catalog.=) ANY ($2)",
							   batch->entity->qualified_table, batch->entity->id_field->quoted_column),
					  2, argtypes, args, n);
		SPI_finish();
	}
	else
	{
		for (int i = 0; i < n; i++)
		{
			set_label(batch, "delete", batch->deletes[i]);
			delete_one(batch->entity, batch->company_id, batch->deletes[i], NULL);
			CHECK_FOR_INTERRUPTS();
		}
	}
	MemoryContextSwitchTo(old_context);
	MemoryContextReset(step);
}

/* Deletes in ascending id order; an id that is not there raises in its turn. */
static void
apply_deletes(Batch *batch, MemoryContext step)
{
	for (int i = 0; i < batch->ndeletes; i++)
		if (!batch->delete_exists[i])
		{
			/* those before it first, so that their errors come first */
			delete_first(batch, step, i);
			set_label(batch, "delete", batch->deletes[i]);
			raise_not_found(batch->entity, batch->deletes[i], batch->label);
		}
	delete_first(batch, step, batch->ndeletes);
}

static bool
apply(void *arg)
{
	Batch	   *batch = arg;
	MemoryContext step = AllocSetContextCreate(CurrentMemoryContext, "moment batch step",
											   ALLOCSET_DEFAULT_SIZES);
	batch->created = NIL;
	batch->updated = NIL;
	batch->create_order_intact = true;
	batch->any_created = false;
	batch->label[0] = '\0';
	batch->label_is_range = false;

	spi_check(SPI_connect(), "SPI_connect");
	lock_rows(batch);
	SPI_finish();
	apply_creates(batch, step);
	apply_updates(batch, step);
	apply_deletes(batch, step);
	MemoryContextDelete(step);
	batch->label[0] = '\0';
	return true;
}

/* Raises the error of a failed instruction again, naming the instruction. */
static void
raise_labeled(ErrorData *edata, const char *label)
{
	translate_error(edata);
	/* an instruction raising on its own (update[7]: ... does not exist) is named already */
	if (edata->message != NULL && strncmp(edata->message, label, strlen(label)) == 0)
		rethrow_without_sql_context(edata);
	ereport(ERROR,
			(errcode(edata->sqlerrcode),
			 errmsg("%s: %s", label, edata->message ? edata->message : "error"),
			 edata->detail ? errdetail("%s", edata->detail) :
			 errdetail("Batch instruction %s failed, so nothing of the batch was applied.", label),
			 edata->hint ? errhint("%s", edata->hint) : 0,
			 edata->schema_name ? err_generic_string(PG_DIAG_SCHEMA_NAME, edata->schema_name) : 0,
			 edata->table_name ? err_generic_string(PG_DIAG_TABLE_NAME, edata->table_name) : 0,
			 edata->column_name ? err_generic_string(PG_DIAG_COLUMN_NAME, edata->column_name) : 0,
			 edata->datatype_name ? err_generic_string(PG_DIAG_DATATYPE_NAME, edata->datatype_name) : 0,
			 edata->constraint_name ? err_generic_string(PG_DIAG_CONSTRAINT_NAME, edata->constraint_name) : 0));
}

Jsonb *
request_batch(const char *entity_name, Jsonb *instructions, const char *include)
{
	Batch	   *batch = palloc0(sizeof(Batch));
	MemoryContext caller_context = CurrentMemoryContext;
	CompanyInForce company;
	ErrorData  *error;
	JsonbParseState *state = NULL;
	ListCell   *cell;

	batch->entity = registry_entity(entity_name);
	company = tenant_company(true);
	batch->company_id = company.id;
	batch->result_context = caller_context;
	parse_instructions(batch, instructions);
	write_projection_sql(batch->entity, company.id, include, &batch->projection);

	batch->set_based = true;
	error = run_in_subtransaction(apply, batch);
	if (error != NULL && batch->label_is_range)
	{
		/* a statement of several instructions failed: find the one to blame */
		batch->set_based = false;
		error = run_in_subtransaction(apply, batch);
	}
	if (error != NULL)
	{
		if (batch->label[0] == '\0')
		{
			translate_error(error);
			rethrow_without_sql_context(error);
		}
		raise_labeled(error, batch->label);
	}

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	jb_key(&state, "created");
	pushJsonbValue(&state, WJB_BEGIN_ARRAY, NULL);
	foreach(cell, batch->created)
		jb_jsonb(&state, lfirst(cell), WJB_ELEM);
	pushJsonbValue(&state, WJB_END_ARRAY, NULL);
	jb_key(&state, "updated");
	pushJsonbValue(&state, WJB_BEGIN_ARRAY, NULL);
	foreach(cell, batch->updated)
		jb_jsonb(&state, lfirst(cell), WJB_ELEM);
	pushJsonbValue(&state, WJB_END_ARRAY, NULL);
	jb_key(&state, "deleted");
	pushJsonbValue(&state, WJB_BEGIN_ARRAY, NULL);
	for (int i = 0; i < batch->ndeletes; i++)
		jb_int64(&state, batch->deletes[i], WJB_ELEM);
	pushJsonbValue(&state, WJB_END_ARRAY, NULL);
	jb_key(&state, "createOrderIntact");
	jb_bool(&state, batch->create_order_intact, WJB_VALUE);
	return JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_OBJECT, NULL));
}

PG_FUNCTION_INFO_V1(moment_batch);
Datum
moment_batch(PG_FUNCTION_ARGS)
{
	char	   *entity = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	Jsonb	   *volatile result = NULL;

	API_ENTRY_BEGIN
	{
		result = request_batch(entity, PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1),
							   PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2)));
	}
	API_ENTRY_END;
	PG_RETURN_JSONB_P(result);
}
