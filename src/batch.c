/*
 * batch.c: {"create": [...], "update": {"id": {...}}, "delete": [...]},
 * all or nothing.
 *
 * The whole batch runs in an internal subtransaction.  If any instruction
 * fails, the subtransaction is rolled back and the error raised again with
 * its SQLSTATE kept and the instruction named (create[2], update[11362],
 * delete[11357]) at the front of its message.
 *
 * Creates of the same fields in a row go as one multi-row INSERT (arrays
 * unnested WITH ORDINALITY, so rows are inserted, and ids drawn, in request
 * order).  Should that statement fail, its rows are rolled back and applied
 * one by one to find the instruction to blame.  Updates and deletes go one
 * by one in ascending id order, so that two batches over the same rows lock
 * them in the same order and cannot deadlock each other.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "moment.h"
#include "plancache.h"
#include "request.h"
#include "shape.h"
#include "tenant.h"

/* most rows one multi-row INSERT carries */
#define CREATE_CHUNK 1000

typedef struct BatchUpdate
{
	int64		id;
	Jsonb	   *body;
} BatchUpdate;

typedef struct Batch
{
	MomentEntity *entity;
	int64		company_id;
	char	   *projection;		/* SELECT <object> FROM t ... */
	MemoryContext result_context;

	int			ncreates;
	Jsonb	  **creates;
	int			nupdates;
	BatchUpdate *updates;
	int			ndeletes;
	int64	   *deletes;

	/* the instruction being applied, for the error */
	char		label[64];

	List	   *created;		/* Jsonb *, request order */
	List	   *updated;
	List	   *deleted;		/* int64 as Jsonb-less list of ids */
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

/* Reads the instructions; shape errors are 22023, nothing is applied yet. */
static void
parse_instructions(Batch *batch, Jsonb *instructions)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken token;
	char	   *key = NULL;
	int64		total;

	if (instructions == NULL)
		bad_batch("instructions must be a JSON object, not null",
				  "{\"create\": [...], \"update\": {\"id\": {...}}, \"delete\": [...]}");
	if (!JB_ROOT_IS_OBJECT(instructions) || JB_ROOT_IS_SCALAR(instructions))
		bad_batch("instructions must be a JSON object",
				  "{\"create\": [...], \"update\": {\"id\": {...}}, \"delete\": [...]}");

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
			batch->creates = palloc(sizeof(Jsonb *) * Max(1, JsonContainerSize(v.val.binary.data)));
			eit = JsonbIteratorInit(v.val.binary.data);
			while ((token = JsonbIteratorNext(&eit, &element, true)) != WJB_DONE)
				if (token == WJB_ELEM)
					batch->creates[batch->ncreates++] = JsonbValueToJsonb(&element);
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
			batch->updates = palloc(sizeof(BatchUpdate) * Max(1, JsonContainerSize(v.val.binary.data)));
			eit = JsonbIteratorInit(v.val.binary.data);
			while ((token = JsonbIteratorNext(&eit, &element, true)) != WJB_DONE)
			{
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
			batch->deletes = palloc(sizeof(int64) * Max(1, JsonContainerSize(v.val.binary.data)));
			eit = JsonbIteratorInit(v.val.binary.data);
			while ((token = JsonbIteratorNext(&eit, &element, true)) != WJB_DONE)
				if (token == WJB_ELEM)
					batch->deletes[batch->ndeletes++] = json_id(&element, "each delete");
		}
		else
			bad_batch(psprintf("unknown key \"%s\"", key),
					  "A batch holds \"create\", \"update\" and \"delete\".");
	}

	total = (int64) batch->ncreates + batch->nupdates + batch->ndeletes;
	if (total > moment_max_batch_size)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("batch of " INT64_FORMAT " instructions is larger than moment.max_batch_size (%d)",
						total, moment_max_batch_size),
				 errhint("Split the work into several batches.")));

	qsort(batch->updates, batch->nupdates, sizeof(BatchUpdate), compare_updates);
	for (int i = 1; i < batch->nupdates; i++)
		if (batch->updates[i].id == batch->updates[i - 1].id)
			bad_batch(psprintf("id " INT64_FORMAT " is updated twice", batch->updates[i].id), NULL);
	qsort(batch->deletes, batch->ndeletes, sizeof(int64), compare_ids);
	for (int i = 1; i < batch->ndeletes; i++)
		if (batch->deletes[i] == batch->deletes[i - 1])
			bad_batch(psprintf("id " INT64_FORMAT " is deleted twice", batch->deletes[i]), NULL);
}

static void
set_label(Batch *batch, const char *kind, int64 n)
{
	snprintf(batch->label, sizeof(batch->label), "%s[" INT64_FORMAT "]", kind, n);
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
	result = execute_for_object(create_sql(batch->entity, values, nvalues, batch->projection),
								nvalues + 1, argtypes, args, nulls, false, batch->result_context);
	if (result == NULL)
		elog(ERROR, "moment: insert into %s returned no row", batch->entity->qualified_table);
	old_context = MemoryContextSwitchTo(batch->result_context);
	batch->created = lappend(batch->created, result);
	MemoryContextSwitchTo(old_context);
}

static char *
create_many_sql(Batch *batch, BodyValue *values, int nvalues)
{
	StringInfoData sql;

	initStringInfo(&sql);
	appendStringInfo(&sql, "WITH t AS (INSERT INTO %s (company_id", batch->entity->qualified_table);
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
	appendStringInfo(&sql, " ORDER BY u.ord RETURNING *) %s ORDER BY t.%s", batch->projection,
					 batch->entity->id_field->quoted_column);
	return sql.data;
}

/*
 * $1 company, $2 the ids, $3.. one array per field.  The rows are locked
 * first, in ascending id order, so that two batches over the same rows
 * queue up instead of deadlocking; the UPDATE then joins the unnested
 * arrays on id.
 */
static char *
update_lock_sql(Batch *batch)
{
	return psprintf("SELECT u.%s FROM %s AS u WHERE u.company_id = $1 AND u.%s = ANY ($2) ORDER BY u.%s FOR UPDATE",
					batch->entity->id_field->quoted_column, batch->entity->qualified_table,
					batch->entity->id_field->quoted_column, batch->entity->id_field->quoted_column);
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
	appendStringInfo(&sql, ") WHERE u.company_id = $1 AND u.%s = v.id RETURNING u.*) %s ORDER BY t.%s",
					 entity->id_field->quoted_column, batch->projection,
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

/* Appends the jsonb objects of the current SPI result to a list, in order. */
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

typedef struct RunStatement
{
	const char *sql;
	int			nargs;
	Oid		   *argtypes;
	Datum	   *args;
	uint64		expected;		/* rows it must return, or 0 for any */
} RunStatement;

/*
 * Runs a run of instructions as set-based statements in a subtransaction of
 * their own.  Returns true, with the last statement's objects appended to
 * *objects, when every statement returned the rows expected; otherwise
 * rolls the run back and returns false, so that the caller replays it one
 * instruction at a time and the failing one raises under its own name --
 * except for errors that are not about any one row and would only strike
 * again (cancels and timeouts, lack of resources, internal errors, a
 * deadlock or serialization failure): those are raised at once.
 */
typedef struct SetBasedRun
{
	Batch	   *batch;
	RunStatement *statements;
	int			nstatements;
	bool		ok;				/* every statement returned the rows expected */
	List	   *found;
} SetBasedRun;

static bool
run_set_based_work(void *arg)
{
	SetBasedRun *run = arg;

	run->ok = true;
	spi_check(SPI_connect(), "SPI_connect");
	for (int i = 0; i < run->nstatements && run->ok; i++)
	{
		RunStatement *statement = &run->statements[i];
		SPIPlanPtr	plan = plancache_get(statement->sql, statement->nargs, statement->argtypes);

		spi_check(SPI_execute_plan(plan, statement->args, NULL, false, 0), "batch statement");
		if (statement->expected > 0 && SPI_processed != statement->expected)
			run->ok = false;
		else if (i == run->nstatements - 1)
			run->found = collect_objects(run->batch, NIL);
	}
	SPI_finish();
	return run->ok;
}

static bool
run_set_based(Batch *batch, RunStatement *statements, int nstatements, List **objects)
{
	SetBasedRun run = {batch, statements, nstatements, false, NIL};
	ErrorData  *error = run_in_subtransaction(run_set_based_work, &run);
	MemoryContext old_context;

	if (error != NULL)
	{
		int			class = ERRCODE_TO_CATEGORY(error->sqlerrcode);

		if (class == ERRCODE_TO_CATEGORY(ERRCODE_OPERATOR_INTERVENTION) ||
			class == ERRCODE_TO_CATEGORY(ERRCODE_INSUFFICIENT_RESOURCES) ||
			class == ERRCODE_TO_CATEGORY(ERRCODE_PROGRAM_LIMIT_EXCEEDED) ||
			class == ERRCODE_TO_CATEGORY(ERRCODE_SYSTEM_ERROR) ||
			class == ERRCODE_TO_CATEGORY(ERRCODE_INTERNAL_ERROR) ||
			class == ERRCODE_TO_CATEGORY(ERRCODE_TRANSACTION_ROLLBACK))
			ReThrowError(error);
		return false;
	}
	if (!run.ok)
		return false;			/* rolled back: a statement returned other rows than expected */

	/* the list may grow (or, from NIL, be copied): it lives with the results */
	old_context = MemoryContextSwitchTo(batch->result_context);
	*objects = list_concat(*objects, run.found);
	MemoryContextSwitchTo(old_context);
	return true;
}

/* Creates [first, first + count) with the same fields as one statement. */
static bool
create_many(Batch *batch, int first, int count, BodyValue **values, int nvalues)
{
	int			nargs = Max(nvalues, 1) + 1;
	int64	   *numbers = palloc(sizeof(int64) * count);
	RunStatement statement;

	statement.nargs = nargs;
	statement.argtypes = palloc(sizeof(Oid) * nargs);
	statement.args = palloc(sizeof(Datum) * nargs);
	statement.argtypes[0] = INT8OID;
	statement.args[0] = Int64GetDatum(batch->company_id);
	if (nvalues == 0)
	{
		statement.argtypes[1] = INT4OID;
		statement.args[1] = Int32GetDatum(count);
	}
	for (int i = 0; i < count; i++)
		numbers[i] = first + i;
	for (int f = 0; f < nvalues; f++)
	{
		statement.argtypes[f + 1] = values[0][f].field->array_type_oid;
		statement.args[f + 1] = field_array(batch, "create", numbers, values, count, f);
	}
	snprintf(batch->label, sizeof(batch->label), "create[%d..%d]", first, first + count - 1);
	statement.sql = create_many_sql(batch, values[0], nvalues);
	statement.expected = count;
	return run_set_based(batch, &statement, 1, &batch->created);
}

/* Updates a run of ids (ascending) that set the same fields, set-based. */
static bool
update_many(Batch *batch, BatchUpdate *updates, int count, BodyValue **values, int nvalues)
{
	int			nargs = nvalues + 2;
	int64	   *ids = palloc(sizeof(int64) * count);
	Datum	   *id_datums = palloc(sizeof(Datum) * count);
	RunStatement statements[2];
	Oid		   *argtypes = palloc(sizeof(Oid) * nargs);
	Datum	   *args = palloc(sizeof(Datum) * nargs);

	for (int i = 0; i < count; i++)
	{
		ids[i] = updates[i].id;
		id_datums[i] = Int64GetDatum(ids[i]);
	}
	argtypes[0] = INT8OID;
	args[0] = Int64GetDatum(batch->company_id);
	argtypes[1] = INT8ARRAYOID;
	args[1] = PointerGetDatum(construct_array(id_datums, count, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	for (int f = 0; f < nvalues; f++)
	{
		argtypes[f + 2] = values[0][f].field->array_type_oid;
		args[f + 2] = field_array(batch, "update", ids, values, count, f);
	}
	snprintf(batch->label, sizeof(batch->label), "update[" INT64_FORMAT ".." INT64_FORMAT "]",
			 ids[0], ids[count - 1]);

	statements[0].sql = update_lock_sql(batch);
	statements[0].nargs = 2;
	statements[0].argtypes = argtypes;
	statements[0].args = args;
	statements[0].expected = count;
	statements[1].sql = update_many_sql(batch, values[0], nvalues);
	statements[1].nargs = nargs;
	statements[1].argtypes = argtypes;
	statements[1].args = args;
	statements[1].expected = count;
	return run_set_based(batch, statements, 2, &batch->updated);
}

static bool
has_array_types(BodyValue *values, int nvalues)
{
	for (int i = 0; i < nvalues; i++)
		if (!OidIsValid(values[i].field->array_type_oid))
			return false;
	return true;
}

/*
 * Each chunk, update and delete works in the step context, reset after it,
 * so that a batch's memory is its input and its results, not the sum of
 * every statement's working memory.
 */
static void
apply_creates(Batch *batch, MemoryContext step)
{
	BodyValue **values = palloc(sizeof(BodyValue *) * Max(1, batch->ncreates));
	int		   *nvalues = palloc(sizeof(int) * Max(1, batch->ncreates));
	int			first = 0;

	for (int i = 0; i < batch->ncreates; i++)
	{
		set_label(batch, "create", i);
		values[i] = body_parse(batch->entity, batch->creates[i], &nvalues[i], "body");
	}

	while (first < batch->ncreates)
	{
		int			count = 1;
		int			created_before = list_length(batch->created);
		MemoryContext old_context;

		while (first + count < batch->ncreates && count < CREATE_CHUNK &&
			   same_fields(values[first], nvalues[first], values[first + count], nvalues[first + count]))
			count++;

		old_context = MemoryContextSwitchTo(step);
		if (count == 1 || !has_array_types(values[first], nvalues[first]) ||
			!create_many(batch, first, count, &values[first], nvalues[first]))
		{
			/* one by one: the failing instruction raises under its own name */
			batch->created = list_truncate(batch->created, created_before);
			for (int i = first; i < first + count; i++)
				create_single(batch, i, values[i], nvalues[i]);
		}
		MemoryContextSwitchTo(old_context);
		MemoryContextReset(step);
		first += count;
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * Updates in ascending id order; runs of updates setting the same fields go
 * set-based, or one by one if that fails.
 */
static void
apply_updates(Batch *batch, MemoryContext step)
{
	BodyValue **values = palloc(sizeof(BodyValue *) * Max(1, batch->nupdates));
	int		   *nvalues = palloc(sizeof(int) * Max(1, batch->nupdates));
	int			first = 0;

	for (int i = 0; i < batch->nupdates; i++)
	{
		set_label(batch, "update", batch->updates[i].id);
		values[i] = body_parse(batch->entity, batch->updates[i].body, &nvalues[i], "body");
	}

	while (first < batch->nupdates)
	{
		int			count = 1;
		int			updated_before = list_length(batch->updated);
		MemoryContext old_context;

		while (first + count < batch->nupdates && count < CREATE_CHUNK &&
			   same_fields(values[first], nvalues[first], values[first + count], nvalues[first + count]))
			count++;

		old_context = MemoryContextSwitchTo(step);
		if (count == 1 || !has_array_types(values[first], nvalues[first]) ||
			!update_many(batch, &batch->updates[first], count, &values[first], nvalues[first]))
		{
			batch->updated = list_truncate(batch->updated, updated_before);
			for (int i = first; i < first + count; i++)
			{
				Jsonb	   *result;

				set_label(batch, "update", batch->updates[i].id);
				result = update_one(batch->entity, batch->company_id, batch->updates[i].id,
									values[i], nvalues[i], batch->projection, NULL,
									batch->result_context);
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

static bool
apply(void *arg)
{
	Batch	   *batch = arg;
	MemoryContext step = AllocSetContextCreate(CurrentMemoryContext, "moment batch step",
											   ALLOCSET_DEFAULT_SIZES);
	MemoryContext old_context;

	apply_creates(batch, step);

	apply_updates(batch, step);

	for (int i = 0; i < batch->ndeletes; i++)
	{
		set_label(batch, "delete", batch->deletes[i]);
		old_context = MemoryContextSwitchTo(step);
		delete_one(batch->entity, batch->company_id, batch->deletes[i], NULL);
		MemoryContextSwitchTo(old_context);
		MemoryContextReset(step);
		CHECK_FOR_INTERRUPTS();
	}
	MemoryContextDelete(step);
	batch->label[0] = '\0';
	return true;
}

/* Raises the error of a failed instruction again, naming the instruction. */
static void
raise_labeled(ErrorData *edata, const char *label)
{
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
	batch->projection = write_projection_sql(batch->entity, company.id, include);

	error = run_in_subtransaction(apply, batch);
	if (error != NULL)
	{
		if (batch->label[0] == '\0')
			ReThrowError(error);
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
	jb_bool(&state, true, WJB_VALUE);
	return JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_OBJECT, NULL));
}

PG_FUNCTION_INFO_V1(moment_batch);
Datum
moment_batch(PG_FUNCTION_ARGS)
{
	char	   *entity = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));

	PG_RETURN_JSONB_P(request_batch(entity, PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1),
									PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2))));
}
