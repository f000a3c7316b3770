/*
 * openapi.c: moment.openapi(server_url) and GET /openapi.json -- an
 * OpenAPI 3.0.3 document of the REST paths api() answers, built from the
 * registry at call time.
 *
 * Every entity's parts and metadata sets go through the include parser,
 * as a request's would: the document lists the keys a request really
 * returns, with the types of the columns behind them, and names a part or
 * set that does not resolve instead of leaving it out.  Metadata
 * expressions are prepared (not run) to learn their types.  The document is
 * jsonb, so its keys are sorted; every array follows the registry's order
 * (entities and parts by name, fields in column order): the same registry
 * gives the same bytes.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/plancache.h"
#include "utils/syscache.h"

#include "moment.h"
#include "request.h"
#include "shape.h"

#define COMPANY_PREFIX "/api/1.0/companies/{companyCode}"

/* tags of their own: entity names begin in lower case, so these never clash */
#define REPORTS_TAG "Reports"
#define DOCUMENT_TAG "OpenAPI"

/* query parameters api reads itself: a field of one of these names cannot be filtered on */
static const char *const reserved_query_names[] = {
	"noLimit", "page", "size", "sort", "fromDate", "toDate", "groupBy", "ids"
};

/* One output key of an include spec, and the column behind it. */
typedef struct DocColumn
{
	const char *key;			/* customerName */
	const char *path;			/* customer.name */
	MomentField *field;
	bool		related;		/* a related object's field */
	bool		nullable;
} DocColumn;

/* A part (or the default representation) resolved as a request would. */
typedef struct DocPart
{
	const char *name;
	List	   *columns;		/* DocColumn *, in the order the part gives them */
	List	   *metadata_sets;	/* char *: names of the metadata sets it includes */
	char	   *error;			/* why it does not resolve, or NULL */
} DocPart;

typedef struct DocAggregate
{
	const char *key;
	Oid			type;			/* InvalidOid: unknown (the set does not prepare) */
	const char *sets;			/* the sets that have the key, for its description */
} DocAggregate;

typedef struct DocMetadataSet
{
	const char *name;
	List	   *aggregates;		/* DocAggregate * */
	char	   *error;
} DocMetadataSet;

typedef struct DocEntity
{
	MomentEntity *entity;
	DocPart    *representation; /* part "default": what paths without /include/ return */
	List	   *parts;			/* DocPart *, in the entity's order */
	List	   *metadata_sets;	/* DocMetadataSet * */
	List	   *metadata_keys;	/* DocAggregate *, each key once */
	List	   *filters;		/* MomentField *: the fields a query parameter filters on */
} DocEntity;

typedef struct OpenApi
{
	JsonbParseState *state;
	const char *server_url;		/* NULL: paths carry COMPANY_PREFIX */
	const char *prefix;
	List	   *entities;		/* DocEntity *, usable ones only */
	DocEntity  *time_records;	/* the reports' entity, when usable */
} OpenApi;

/* The error statuses api answers with (see status_for in api.c) */
typedef struct ErrorStatus
{
	int			status;
	const char *name;			/* the response component */
	const char *description;
	const char *example;		/* a body, as JSON text */
} ErrorStatus;

static const ErrorStatus error_statuses[] = {
	{400, "BadRequest",
		"Bad input: an unknown field, part or metadata set, a malformed include spec, sort or query "
		"parameter, a value of the wrong type, a read-only field in the body, a request over a limit.",
	"{\"error\": \"unknown field or part \\\"nmae\\\" of entity customers in include spec\", "
	"\"error_type\": \"unknown_field\", \"details\": [\"Did you mean \\\"name\\\"?  Valid names: id, "
	"customerNumber, name, organizationNumber, email, currencyCode, customerState, createdAt, updatedAt, "
	"all, base, contact, default, metadata.count.\", \"SQLSTATE 42703\"]}"},
	{403, "Forbidden",
		"The company is not granted to the role (or only for reading), or a time record is locked "
		"(on or before its user's timeLockDate).",
	"{\"error\": \"company \\\"rival\\\" is not granted to role \\\"alice\\\"\", \"error_type\": \"forbidden\", "
	"\"details\": [\"SQLSTATE 42501\"]}"},
	{404, "NotFound",
		"No such object for the company in force, or no such entity.",
	"{\"error\": \"offer 42 does not exist\", \"error_type\": \"not_found\", "
	"\"details\": [\"No offer with that id belongs to the company in force.\", \"SQLSTATE P0002\"]}"},
	{405, "MethodNotAllowed",
		"A write in a read-only transaction.",
	"{\"error\": \"cannot execute INSERT in a read-only transaction\", \"error_type\": \"read_only_transaction\", "
	"\"details\": [\"SQLSTATE 25006\"]}"},
	{409, "Conflict",
		"A unique or exclusion constraint, a delete of an object still referenced, or a lock that "
		"could not be had (lock_timeout).",
	"{\"error\": \"duplicate key value violates unique constraint \\\"project_memberships_role_key\\\"\", "
	"\"error_type\": \"conflict\", \"details\": [\"SQLSTATE 23505\"]}"},
	{422, "UnprocessableEntity",
		"A constraint violation: a missing required field, a value outside its CHECK, a reference to a "
		"missing object.",
	"{\"error\": \"null value in column \\\"name\\\" of relation \\\"customers\\\" violates not-null constraint\", "
	"\"error_type\": \"not_null_violation\", \"details\": [\"SQLSTATE 23502\"]}"},
	{500, "InternalServerError",
		"An entity whose table no longer qualifies, or an unexpected error.",
	"{\"error\": \"entity gadgets cannot be used: table public.gadgets has no column id\", "
	"\"error_type\": \"entity_unusable\", \"details\": [\"SQLSTATE 55000\"]}"},
};

/* the statuses of each kind of operation */
static const int read_statuses[] = {400, 403, 404, 409, 500};
static const int write_statuses[] = {400, 403, 404, 405, 409, 422, 500};
static const int document_statuses[] = {400, 403, 409, 500};

typedef enum OperationKind
{
	OPERATION_LIST,
	OPERATION_GET,
	OPERATION_CREATE,
	OPERATION_PUT,
	OPERATION_PATCH,
	OPERATION_DELETE,
	OPERATION_BATCH
} OperationKind;

/* ---- building blocks ---- */

static void
begin_object(OpenApi *doc)
{
	pushJsonbValue(&doc->state, WJB_BEGIN_OBJECT, NULL);
}

static void
end_object(OpenApi *doc)
{
	pushJsonbValue(&doc->state, WJB_END_OBJECT, NULL);
}

static void
begin_array(OpenApi *doc)
{
	pushJsonbValue(&doc->state, WJB_BEGIN_ARRAY, NULL);
}

static void
end_array(OpenApi *doc)
{
	pushJsonbValue(&doc->state, WJB_END_ARRAY, NULL);
}

static void
key(OpenApi *doc, const char *name)
{
	jb_key(&doc->state, name);
}

static void
key_object(OpenApi *doc, const char *name)
{
	key(doc, name);
	begin_object(doc);
}

static void
key_array(OpenApi *doc, const char *name)
{
	key(doc, name);
	begin_array(doc);
}

static void
key_string(OpenApi *doc, const char *name, const char *value)
{
	key(doc, name);
	jb_string(&doc->state, value, WJB_VALUE);
}

static void
key_bool(OpenApi *doc, const char *name, bool value)
{
	key(doc, name);
	jb_bool(&doc->state, value, WJB_VALUE);
}

static void
key_int(OpenApi *doc, const char *name, int64 value)
{
	key(doc, name);
	jb_int64(&doc->state, value, WJB_VALUE);
}

static void
element_string(OpenApi *doc, const char *value)
{
	jb_string(&doc->state, value, WJB_ELEM);
}

/* JSON text (a fixed example) as a value */
static void
key_json(OpenApi *doc, const char *name, const char *json)
{
	key(doc, name);
	jb_jsonb(&doc->state, DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(json))), WJB_VALUE);
}

/* {"$ref": "#/components/<kind>/<name>"}, as a value or an element */
static void
ref(OpenApi *doc, const char *kind, const char *name)
{
	begin_object(doc);
	key_string(doc, "$ref", psprintf("#/components/%s/%s", kind, name));
	end_object(doc);
}

static void
key_ref(OpenApi *doc, const char *name, const char *kind, const char *component)
{
	key(doc, name);
	ref(doc, kind, component);
}

/* An entity's own component: "offers.object".  Entity names hold no dot, shared names none either. */
static char *
component(DocEntity *entity, const char *what)
{
	return psprintf("%s.%s", entity->entity->name, what);
}

static const char *
error_component(int status)
{
	for (int i = 0; i < lengthof(error_statuses); i++)
		if (error_statuses[i].status == status)
			return error_statuses[i].name;
	elog(ERROR, "moment: no error response for status %d", status);
	return NULL;				/* keep compiler quiet */
}

static char *
join_names(List *names, const char *separator)
{
	StringInfoData buf;
	ListCell   *cell;

	initStringInfo(&buf);
	foreach(cell, names)
		appendStringInfo(&buf, "%s%s", cell == list_head(names) ? "" : separator, (char *) lfirst(cell));
	return buf.data;
}

/* ---- types ---- */

/*
 * The keys of the schema of a value of a type, as the API writes it, into
 * the object being built: type, format, items, maxLength, enum, nullable.
 * A json or jsonb value may be anything: no type, and so no nullable.
 */
static void
type_keys(OpenApi *doc, Oid type, int32 typmod, bool nullable, List *allowed_values)
{
	Oid			base_type = getBaseTypeAndTypmod(type, &typmod);
	const char *format;
	const char *json_type = type_json_type(base_type, &format);
	ListCell   *cell;

	if (json_type == NULL)
		return;
	key_string(doc, "type", json_type);
	if (format != NULL)
		key_string(doc, "format", format);
	if (strcmp(json_type, "array") == 0)
	{
		key_object(doc, "items");
		type_keys(doc, get_element_type(base_type), -1, true, NIL);
		end_object(doc);
	}
	/* not an RFC 3339 date-time (no offset): ISO 8601 as PostgreSQL writes it in JSON */
	if (base_type == TIMESTAMPOID)
		key_string(doc, "pattern", "^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,6})?$");
	if ((base_type == VARCHAROID || base_type == BPCHAROID) && typmod > (int32) VARHDRSZ)
		key_int(doc, "maxLength", typmod - VARHDRSZ);
	if (allowed_values != NIL)
	{
		key_array(doc, "enum");
		foreach(cell, allowed_values)
			element_string(doc, lfirst(cell));
		/* under OpenAPI 3.0.3's nullable, an enum must name null to allow it */
		if (nullable)
			jb_null(&doc->state, WJB_ELEM);
		end_array(doc);
	}
	if (nullable)
		key_bool(doc, "nullable", true);
}

static MomentRelation *
relation_of_field(MomentEntity *entity, MomentField *field)
{
	ListCell   *cell;

	foreach(cell, entity->relations)
		if (((MomentRelation *) lfirst(cell))->fk_field == field)
			return lfirst(cell);
	return NULL;
}

static char *
field_description(MomentEntity *entity, MomentField *field)
{
	StringInfoData buf;
	MomentRelation *relation = relation_of_field(entity, field);

	initStringInfo(&buf);
	appendStringInfo(&buf, "Column %s, %s.", field->column_name,
					 format_type_with_typemod(field->type_oid, field->typmod));
	if (relation != NULL)
		appendStringInfo(&buf, " The id of the related %s (entity %s).",
						 relation->json_name, relation->target->name);
	if (field == entity->date_field)
		appendStringInfoString(&buf, " The entity's date field: fromDate and toDate filter on it.");
	if (field->writable && field->not_null && !field->has_default)
		appendStringInfoString(&buf, " Required on create.");
	return buf.data;
}

/* The schema of a field of the entity itself. */
static void
field_schema(OpenApi *doc, MomentEntity *entity, MomentField *field)
{
	begin_object(doc);
	type_keys(doc, field->type_oid, field->typmod, !field->not_null, field->allowed_values);
	if (!field->writable)
		key_bool(doc, "readOnly", true);
	key_string(doc, "description", field_description(entity, field));
	end_object(doc);
}

/* The schema of an output key: a field of the entity, or of a related object. */
static void
column_schema(OpenApi *doc, MomentEntity *entity, DocColumn *column)
{
	if (!column->related)
	{
		field_schema(doc, entity, column->field);
		return;
	}
	begin_object(doc);
	type_keys(doc, column->field->type_oid, column->field->typmod, column->nullable,
			  column->field->allowed_values);
	key_bool(doc, "readOnly", true);
	key_string(doc, "description", psprintf("Field %s of the related object (%s).",
											column->field->json_name, column->path));
	end_object(doc);
}

/* ---- resolving parts and metadata sets ---- */

/*
 * Whether a relation always finds its object: a NOT NULL key under a
 * validated, immediate foreign key.  Anything else may give null names.
 */
static bool
relation_always_found(MomentEntity *owner, MomentRelation *relation)
{
	Oid			constraint_oid;
	HeapTuple	tuple;
	bool		found;

	if (!relation->fk_field->not_null || relation->constraint_name == NULL)
		return false;
	constraint_oid = get_relation_constraint_oid(owner->relid, relation->constraint_name, true);
	if (!OidIsValid(constraint_oid))
		return false;
	tuple = SearchSysCache1(CONSTROID, ObjectIdGetDatum(constraint_oid));
	if (!HeapTupleIsValid(tuple))
		return false;
	found = ((Form_pg_constraint) GETSTRUCT(tuple))->convalidated &&
		!((Form_pg_constraint) GETSTRUCT(tuple))->condeferrable;
	ReleaseSysCache(tuple);
	return found;
}

typedef struct SpecWork
{
	MomentEntity *entity;
	DocPart    *part;
} SpecWork;

static bool
resolve_spec_work(void *arg)
{
	SpecWork   *work = arg;
	RequestShape *shape = shape_create(work->entity, 0);
	ListCell   *cell;

	include_parse(shape, work->part->name);
	foreach(cell, shape->columns)
	{
		ShapeColumn *column = lfirst(cell);
		ShapeJoin  *join = shape_join(shape, column->join);
		DocColumn  *doc_column = palloc0(sizeof(DocColumn));

		doc_column->key = column->key;
		doc_column->field = column->field;
		doc_column->related = column->join != 0;
		doc_column->path = join->path[0] ?
			psprintf("%s.%s", join->path, column->field->json_name) : column->field->json_name;
		doc_column->nullable = !column->field->not_null;
		for (; join->relation != NULL; join = shape_join(shape, join->parent))
			if (!relation_always_found(shape_join(shape, join->parent)->entity, join->relation))
				doc_column->nullable = true;
		work->part->columns = lappend(work->part->columns, doc_column);
	}
	foreach(cell, shape->metadata_sets)
		work->part->metadata_sets = lappend(work->part->metadata_sets,
											((MomentMetadataSet *) lfirst(cell))->name);
	return true;
}

/* A part resolved by the include parser, or with the error it raises. */
static DocPart *
resolve_part(MomentEntity *entity, const char *name)
{
	DocPart    *part = palloc0(sizeof(DocPart));
	SpecWork	work = {entity, part};
	ErrorData  *error;

	part->name = name;
	error = run_in_subtransaction(resolve_spec_work, &work);
	if (error != NULL)
	{
		part->columns = NIL;
		part->metadata_sets = NIL;
		part->error = error->message;
	}
	return part;
}

typedef struct MetadataWork
{
	MomentEntity *entity;
	MomentMetadataSet *set;
	DocMetadataSet *doc_set;
} MetadataWork;

/* Prepares (does not run) the set's aggregates over the table to learn their types. */
static bool
type_metadata_work(void *arg)
{
	MetadataWork *work = arg;
	StringInfoData sql;
	ListCell   *cell;
	SPIPlanPtr	plan;
	List	   *sources;
	TupleDesc	result;
	int			pinned;
	int			i = 0;
	Oid		   *types = palloc(sizeof(Oid) * Max(1, list_length(work->set->aggregates)));

	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT ");
	foreach(cell, work->set->aggregates)
		appendStringInfo(&sql, "%s(%s)", cell == list_head(work->set->aggregates) ? "" : ", ",
						 ((MomentAggregate *) lfirst(cell))->expression);
	appendStringInfo(&sql, " FROM %s t", work->entity->qualified_table);

	spi_check(SPI_connect(), "SPI_connect");
	pinned = pin_search_path(true);
	plan = SPI_prepare(sql.data, 0, NULL);
	if (plan == NULL)
		elog(ERROR, "moment: metadata set %s of %s does not prepare: %s", work->set->name,
			 work->entity->name, SPI_result_code_string(SPI_result));
	sources = SPI_plan_get_plan_sources(plan);
	result = list_length(sources) == 1 ? ((CachedPlanSource *) linitial(sources))->resultDesc : NULL;
	if (result == NULL || result->natts != list_length(work->set->aggregates))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("metadata set %s of entity %s is not one expression per key",
						work->set->name, work->entity->name)));
	for (i = 0; i < result->natts; i++)
		types[i] = TupleDescAttr(result, i)->atttypid;
	SPI_freeplan(plan);
	unpin_search_path(pinned);
	SPI_finish();

	i = 0;
	foreach(cell, work->doc_set->aggregates)
		((DocAggregate *) lfirst(cell))->type = types[i++];
	return true;
}

static DocMetadataSet *
resolve_metadata_set(MomentEntity *entity, MomentMetadataSet *set)
{
	DocMetadataSet *doc_set = palloc0(sizeof(DocMetadataSet));
	MetadataWork work = {entity, set, doc_set};
	ListCell   *cell;
	ErrorData  *error;

	doc_set->name = set->name;
	foreach(cell, set->aggregates)
	{
		DocAggregate *aggregate = palloc0(sizeof(DocAggregate));

		aggregate->key = ((MomentAggregate *) lfirst(cell))->key;
		aggregate->type = InvalidOid;
		doc_set->aggregates = lappend(doc_set->aggregates, aggregate);
	}
	error = run_in_subtransaction(type_metadata_work, &work);
	if (error != NULL)
		doc_set->error = error->message;
	return doc_set;
}

static bool
filterable(MomentField *field)
{
	const char *format;
	const char *json_type = type_json_type(field->base_type, &format);

	/* a query value is text for the type's input: JSON and arrays do not fit */
	if (json_type == NULL || strcmp(json_type, "array") == 0 || field->op_eq == NULL)
		return false;
	for (int i = 0; i < lengthof(reserved_query_names); i++)
		if (strcmp(field->json_name, reserved_query_names[i]) == 0)
			return false;
	return true;
}

static DocEntity *
describe_entity(MomentEntity *entity)
{
	DocEntity  *doc_entity = palloc0(sizeof(DocEntity));
	ListCell   *cell;

	doc_entity->entity = entity;
	foreach(cell, entity->parts)
	{
		DocPart    *part = resolve_part(entity, ((MomentPart *) lfirst(cell))->name);

		doc_entity->parts = lappend(doc_entity->parts, part);
		if (strcmp(part->name, "default") == 0)
			doc_entity->representation = part;
	}
	if (doc_entity->representation == NULL)	/* the registry always adds one */
		doc_entity->representation = resolve_part(entity, "default");

	foreach(cell, entity->metadata_sets)
	{
		DocMetadataSet *set = resolve_metadata_set(entity, lfirst(cell));
		ListCell   *acell;

		doc_entity->metadata_sets = lappend(doc_entity->metadata_sets, set);
		foreach(acell, set->aggregates)
		{
			DocAggregate *aggregate = lfirst(acell);
			DocAggregate *merged = NULL;
			ListCell   *kcell;

			foreach(kcell, doc_entity->metadata_keys)
				if (strcmp(((DocAggregate *) lfirst(kcell))->key, aggregate->key) == 0)
					merged = lfirst(kcell);
			if (merged == NULL)
			{
				merged = palloc0(sizeof(DocAggregate));
				merged->key = aggregate->key;
				merged->type = aggregate->type;
				merged->sets = psprintf("metadata.%s", set->name);
				doc_entity->metadata_keys = lappend(doc_entity->metadata_keys, merged);
			}
			else
			{
				/* two sets, two types: say nothing of the type */
				if (merged->type != aggregate->type)
					merged->type = InvalidOid;
				merged->sets = psprintf("%s, metadata.%s", merged->sets, set->name);
			}
		}
	}

	for (int i = 0; i < entity->nfields; i++)
		if (filterable(&entity->fields[i]))
			doc_entity->filters = lappend(doc_entity->filters, &entity->fields[i]);
	return doc_entity;
}

/* ---- descriptions ---- */

static char *
part_keys_text(DocPart *part)
{
	List	   *keys = NIL;
	ListCell   *cell;

	foreach(cell, part->columns)
		keys = lappend(keys, (char *) ((DocColumn *) lfirst(cell))->key);
	foreach(cell, part->metadata_sets)
		keys = lappend(keys, psprintf("metadata.%s", (char *) lfirst(cell)));
	return join_names(keys, ", ");
}

static char *
spec_description(DocEntity *doc_entity)
{
	MomentEntity *entity = doc_entity->entity;
	StringInfoData buf;
	ListCell   *cell;

	initStringInfo(&buf);
	appendStringInfo(&buf, "An include spec for %s: items joined by `+` (or `,`), each a field, a part, "
					 "a relation path ending in a field or part (`relation.field` comes back flattened "
					 "in lowerCamelCase, up to %d relations deep) or `metadata.NAME`. `id` is always "
					 "returned; an unknown name is an error (400).\n\n**Parts** (and the keys they give):\n",
					 entity->name, MOMENT_MAX_RELATION_DEPTH);
	foreach(cell, doc_entity->parts)
	{
		DocPart    *part = lfirst(cell);

		if (part->error != NULL)
			appendStringInfo(&buf, "- `%s`: does not resolve: %s\n", part->name, part->error);
		else
			appendStringInfo(&buf, "- `%s`: %s\n", part->name, part_keys_text(part));
	}
	if (doc_entity->metadata_sets != NIL)
	{
		appendStringInfoString(&buf, "\n**Metadata sets** (aggregates under the key `metadata`):\n");
		foreach(cell, doc_entity->metadata_sets)
		{
			DocMetadataSet *set = lfirst(cell);
			List	   *keys = NIL;
			ListCell   *acell;

			foreach(acell, set->aggregates)
				keys = lappend(keys, (char *) ((DocAggregate *) lfirst(acell))->key);
			appendStringInfo(&buf, "- `metadata.%s`: %s%s\n", set->name, join_names(keys, ", "),
							 set->error ? psprintf(" (does not prepare: %s)", set->error) : "");
		}
	}
	appendStringInfo(&buf, "\n**Fields**: %s\n", join_names(entity_field_names(entity), ", "));
	if (entity->relations != NIL)
	{
		List	   *relations = NIL;

		foreach(cell, entity->relations)
		{
			MomentRelation *relation = lfirst(cell);

			relations = lappend(relations, psprintf("`%s` (%s)", relation->json_name, relation->target->name));
		}
		appendStringInfo(&buf, "\n**Relations**: %s\n", join_names(relations, ", "));
	}
	return buf.data;
}

static char *
tag_description(DocEntity *doc_entity)
{
	MomentEntity *entity = doc_entity->entity;
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfo(&buf, "Entity `%s` (table %s%s).", entity->name, entity->qualified_table,
					 entity->builtin ? ", built in" : ", registered");
	if (entity->date_field != NULL)
		appendStringInfo(&buf, " Its date field, for fromDate and toDate, is `%s`.", entity->date_field->json_name);
	return buf.data;
}

/* ---- paths ---- */

static void
responses(OpenApi *doc, const char *success_status, const char *success_description,
		  const char *success_schema, const int *statuses, int nstatuses)
{
	key_object(doc, "responses");
	key_object(doc, success_status);
	key_string(doc, "description", success_description);
	key_object(doc, "content");
	key_object(doc, "application/json");
	key_ref(doc, "schema", "schemas", success_schema);
	end_object(doc);
	end_object(doc);
	end_object(doc);
	for (int i = 0; i < nstatuses; i++)
		key_ref(doc, psprintf("%d", statuses[i]), "responses", error_component(statuses[i]));
	end_object(doc);
}

static void
request_body(OpenApi *doc, const char *description, const char *schema)
{
	key_object(doc, "requestBody");
	key_bool(doc, "required", true);
	key_string(doc, "description", description);
	key_object(doc, "content");
	key_object(doc, "application/json");
	key_ref(doc, "schema", "schemas", schema);
	end_object(doc);
	end_object(doc);
	end_object(doc);
}

/* The filters of a listing and of the reports: ids, and each field by equality */
static void
filter_parameters(OpenApi *doc, DocEntity *doc_entity)
{
	ListCell   *cell;

	ref(doc, "parameters", "ids");
	foreach(cell, doc_entity->filters)
		ref(doc, "parameters", component(doc_entity, psprintf("filter.%s", ((MomentField *) lfirst(cell))->json_name)));
}

static void
operation(OpenApi *doc, DocEntity *doc_entity, OperationKind kind, bool with_include)
{
	MomentEntity *entity = doc_entity->entity;
	const char *method;
	const char *verb;
	const char *summary;
	const char *description;
	const char *representation = with_include ?
		"projected by the include spec" :
		"in the default representation (the part `default`: every field and the name of every related object that has one)";
	const char *object = with_include ? component(doc_entity, "partial") : component(doc_entity, "object");

	switch (kind)
	{
		case OPERATION_LIST:
			method = "get";
			verb = "list";
			summary = psprintf("List %s", entity->name);
			description = psprintf("The %s of the company in force %s, filtered by the query parameters, "
								   "ordered by `sort` (then id). At most the cap: `moment.default_limit` (1000 "
								   "unless set), or `moment.max_limit` (30000, a ceiling nothing lifts) with "
								   "`noLimit`; `limitWasExceeded` says whether more matched. With `page` or `size` "
								   "the listing is paged and carries `page`.", entity->name, representation);
			break;
		case OPERATION_GET:
			method = "get";
			verb = "get";
			summary = psprintf("Get one %s", entity->singular);
			description = psprintf("One %s %s; 404 when the company in force has none of that id.",
								   entity->singular, representation);
			break;
		case OPERATION_CREATE:
			method = "post";
			verb = "create";
			summary = psprintf("Create one %s", entity->singular);
			description = psprintf("Creates one %s from the body (the company is the one in force) and "
								   "returns it %s.", entity->singular, representation);
			break;
		case OPERATION_PUT:
		case OPERATION_PATCH:
			method = kind == OPERATION_PUT ? "put" : "patch";
			verb = method;
			summary = psprintf("Update one %s (%s)", entity->singular, kind == OPERATION_PUT ? "PUT" : "PATCH");
			description = psprintf("Changes only the fields in the body (PUT and PATCH alike) and returns the "
								   "%s %s.", entity->singular, representation);
			break;
		case OPERATION_DELETE:
			method = "delete";
			verb = "delete";
			summary = psprintf("Delete one %s", entity->singular);
			description = psprintf("Deletes one %s and returns its id; 409 while other objects still refer to it.",
								   entity->singular);
			break;
		case OPERATION_BATCH:
		default:
			method = "post";
			verb = "batch";
			summary = psprintf("Create, update and delete %s in one transaction", entity->name);
			description = psprintf("Applies the batch all or nothing: creates in order, updates by ascending "
								   "id, then deletes. If an instruction fails, none has any effect, and the "
								   "error names it (`create[N]`, `update[ID]`, `delete[ID]`). Objects come "
								   "back %s. At most `moment.max_batch_size` instructions.", representation);
			break;
	}

	key_object(doc, method);
	key_array(doc, "tags");
	element_string(doc, entity->name);
	end_array(doc);
	key_string(doc, "operationId", psprintf("%s.%s%s", entity->name, verb, with_include ? "WithInclude" : ""));
	key_string(doc, "summary", with_include ? psprintf("%s, with an include spec", summary) : summary);
	key_string(doc, "description", description);
	if (kind == OPERATION_LIST)
	{
		key_array(doc, "parameters");
		ref(doc, "parameters", "noLimit");
		ref(doc, "parameters", "page");
		ref(doc, "parameters", "size");
		ref(doc, "parameters", "sort");
		if (entity->date_field != NULL)
		{
			ref(doc, "parameters", component(doc_entity, "fromDate"));
			ref(doc, "parameters", component(doc_entity, "toDate"));
		}
		filter_parameters(doc, doc_entity);
		end_array(doc);
	}
	if (kind == OPERATION_CREATE)
		request_body(doc, psprintf("The new %s: field names and values.", entity->singular),
					 component(doc_entity, "create"));
	else if (kind == OPERATION_PUT || kind == OPERATION_PATCH)
		request_body(doc, "The fields to change.", component(doc_entity, "update"));
	else if (kind == OPERATION_BATCH)
		request_body(doc, "The instructions: `create`, `update` (by id) and `delete`.",
					 component(doc_entity, "batch"));

	switch (kind)
	{
		case OPERATION_LIST:
			responses(doc, "200", "The listing.",
					  component(doc_entity, with_include ? "partialList" : "list"),
					  read_statuses, lengthof(read_statuses));
			break;
		case OPERATION_GET:
			responses(doc, "200", psprintf("The %s.", entity->singular), object,
					  read_statuses, lengthof(read_statuses));
			break;
		case OPERATION_CREATE:
			responses(doc, "201", psprintf("The %s created.", entity->singular), object,
					  write_statuses, lengthof(write_statuses));
			break;
		case OPERATION_PUT:
		case OPERATION_PATCH:
			responses(doc, "200", psprintf("The %s changed.", entity->singular), object,
					  write_statuses, lengthof(write_statuses));
			break;
		case OPERATION_DELETE:
			responses(doc, "200", "The id of the object deleted.", "DeleteResult",
					  write_statuses, lengthof(write_statuses));
			break;
		case OPERATION_BATCH:
			responses(doc, "200", "What the batch did.",
					  component(doc_entity, with_include ? "partialBatchResult" : "batchResult"),
					  write_statuses, lengthof(write_statuses));
			break;
	}
	end_object(doc);
}

/* Starts a path item with its path parameters; the caller adds operations and ends it. */
static void
begin_path(OpenApi *doc, const char *path, DocEntity *doc_entity, bool with_id, bool with_include)
{
	key_object(doc, psprintf("%s%s", doc->prefix, path));
	if (doc->prefix[0] != '\0' || with_id || with_include)
	{
		key_array(doc, "parameters");
		if (doc->prefix[0] != '\0')
			ref(doc, "parameters", "companyCode");
		if (with_id)
			ref(doc, "parameters", "id");
		if (with_include)
			ref(doc, "parameters", component(doc_entity, "spec"));
		end_array(doc);
	}
}

static void
entity_paths(OpenApi *doc, DocEntity *doc_entity)
{
	const char *name = doc_entity->entity->name;

	for (int include = 0; include <= 1; include++)
	{
		const char *tail = include ? "/include/{spec}" : "";

		begin_path(doc, psprintf("/%s%s", name, tail), doc_entity, false, include);
		operation(doc, doc_entity, OPERATION_LIST, include);
		operation(doc, doc_entity, OPERATION_CREATE, include);
		end_object(doc);

		begin_path(doc, psprintf("/%s/{id}%s", name, tail), doc_entity, true, include);
		operation(doc, doc_entity, OPERATION_GET, include);
		operation(doc, doc_entity, OPERATION_PUT, include);
		operation(doc, doc_entity, OPERATION_PATCH, include);
		if (!include)			/* DELETE returns only the id: it takes no include */
			operation(doc, doc_entity, OPERATION_DELETE, false);
		end_object(doc);

		begin_path(doc, psprintf("/%s/batch%s", name, tail), doc_entity, false, include);
		operation(doc, doc_entity, OPERATION_BATCH, include);
		end_object(doc);
	}
}

static void
report_path(OpenApi *doc, const char *entity_name, const char *action, const char *summary,
			const char *description, const char *schema)
{
	begin_path(doc, psprintf("/%s/%s", entity_name, action), NULL, false, false);
	key_object(doc, "get");
	key_array(doc, "tags");
	element_string(doc, REPORTS_TAG);
	end_array(doc);
	key_string(doc, "operationId", psprintf("%s.%s", entity_name, action));
	key_string(doc, "summary", summary);
	key_string(doc, "description", description);
	key_array(doc, "parameters");
	ref(doc, "parameters", "reportFromDate");
	ref(doc, "parameters", "reportToDate");
	if (strcmp(action, "getReport") == 0)
		ref(doc, "parameters", "groupBy");
	ref(doc, "parameters", "noLimit");
	filter_parameters(doc, doc->time_records);
	end_array(doc);
	responses(doc, "200", "The report's rows.", schema, read_statuses, lengthof(read_statuses));
	end_object(doc);
	end_object(doc);
}

static void
paths(OpenApi *doc)
{
	ListCell   *cell;

	key_object(doc, "paths");
	foreach(cell, doc->entities)
		entity_paths(doc, lfirst(cell));
	if (doc->time_records != NULL)
	{
		report_path(doc, "timeRecords", "getReport", "Hours of time records, grouped",
					"The minutes of the time records dated fromDate..toDate (inclusive) that match the "
					"filters, grouped by `groupBy`; columns of dimensions not grouped are null. Rows are "
					"ordered by the grouped columns, under the listing cap.", "HoursReport");
		report_path(doc, "projects", "projectRegisteredHoursReport", "Hours registered per project",
					"The minutes registered per project on time records dated fromDate..toDate (inclusive) "
					"that match the filters, with the first and last date; under the listing cap.",
					"ProjectHoursReport");
	}
	begin_path(doc, "/openapi.json", NULL, false, false);
	key_object(doc, "get");
	key_array(doc, "tags");
	element_string(doc, DOCUMENT_TAG);
	end_array(doc);
	key_string(doc, "operationId", "openapi");
	key_string(doc, "summary", "This document");
	key_string(doc, "description", "The OpenAPI document of these paths, built from the entity registry "
			   "when asked (moment.openapi()).");
	responses(doc, "200", "The OpenAPI document.", "OpenApiDocument", document_statuses,
			  lengthof(document_statuses));
	end_object(doc);
	end_object(doc);
	end_object(doc);
}

/* ---- components: parameters ---- */

static void
query_parameter(OpenApi *doc, const char *component_name, const char *name, const char *description,
				bool required)
{
	key_object(doc, component_name);
	key_string(doc, "name", name);
	key_string(doc, "in", "query");
	key_string(doc, "description", description);
	if (required)
		key_bool(doc, "required", true);
	/* the caller adds the schema and ends the object */
}

/* A query parameter holding a list: comma-separated, or repeated. */
static void
list_style(OpenApi *doc)
{
	key_string(doc, "style", "form");
	key_bool(doc, "explode", false);
}

static void
entity_parameters(OpenApi *doc, DocEntity *doc_entity)
{
	MomentEntity *entity = doc_entity->entity;
	ListCell   *cell;

	key_object(doc, component(doc_entity, "spec"));
	key_string(doc, "name", "spec");
	key_string(doc, "in", "path");
	key_bool(doc, "required", true);
	key_string(doc, "description", spec_description(doc_entity));
	key_object(doc, "schema");
	key_string(doc, "type", "string");
	key_int(doc, "minLength", 1);
	key_int(doc, "maxLength", MOMENT_MAX_SPEC_BYTES);
	end_object(doc);
	/* the parts and metadata sets, as choices */
	key_object(doc, "examples");
	foreach(cell, doc_entity->parts)
	{
		DocPart    *part = lfirst(cell);

		if (part->error != NULL)
			continue;
		key_object(doc, part->name);
		key_string(doc, "summary", psprintf("part %s", part->name));
		key_string(doc, "value", part->name);
		end_object(doc);
	}
	foreach(cell, doc_entity->metadata_sets)
	{
		DocMetadataSet *set = lfirst(cell);

		if (set->error != NULL)
			continue;
		key_object(doc, psprintf("metadata.%s", set->name));
		key_string(doc, "summary", psprintf("part base and metadata set %s", set->name));
		key_string(doc, "value", psprintf("base+metadata.%s", set->name));
		end_object(doc);
	}
	end_object(doc);
	end_object(doc);

	if (entity->date_field != NULL)
	{
		for (int to = 0; to <= 1; to++)
		{
			MomentField *field = entity->date_field;

			query_parameter(doc, component(doc_entity, to ? "toDate" : "fromDate"), to ? "toDate" : "fromDate",
							psprintf("Only %s whose %s is on or %s this (inclusive).", entity->name,
									 field->json_name, to ? "before" : "after"), false);
			key_object(doc, "schema");
			type_keys(doc, field->type_oid, -1, false, NIL);
			end_object(doc);
			end_object(doc);
		}
	}

	foreach(cell, doc_entity->filters)
	{
		MomentField *field = lfirst(cell);

		query_parameter(doc, component(doc_entity, psprintf("filter.%s", field->json_name)), field->json_name,
						psprintf("Only %s whose %s equals the value; several values (comma-separated, or the "
								 "parameter repeated) mean any of them. A comma inside a value is written %%2C.",
								 entity->name, field->json_name), false);
		list_style(doc);
		key_object(doc, "schema");
		key_string(doc, "type", "array");
		key_object(doc, "items");
		type_keys(doc, field->type_oid, -1, false, field->allowed_values);
		end_object(doc);
		end_object(doc);
		end_object(doc);
	}
}

static void
shared_parameters(OpenApi *doc)
{
	if (doc->prefix[0] != '\0')
	{
		key_object(doc, "companyCode");
		key_string(doc, "name", "companyCode");
		key_string(doc, "in", "path");
		key_bool(doc, "required", true);
		key_string(doc, "description", "The company (tenant) the request is for; it must be granted to the role.");
		key_object(doc, "schema");
		key_string(doc, "type", "string");
		key_int(doc, "minLength", 1);
		end_object(doc);
		key_string(doc, "example", "cloudware");
		end_object(doc);
	}
	if (doc->entities != NIL)
	{
		key_object(doc, "id");
		key_string(doc, "name", "id");
		key_string(doc, "in", "path");
		key_bool(doc, "required", true);
		key_string(doc, "description", "The object's id.");
		key_object(doc, "schema");
		key_string(doc, "type", "integer");
		key_string(doc, "format", "int64");
		end_object(doc);
		end_object(doc);

		query_parameter(doc, "noLimit", "noLimit",
						"Raise the cap from `moment.default_limit` to `moment.max_limit` (30000 at most).", false);
		key_object(doc, "schema");
		key_string(doc, "type", "boolean");
		end_object(doc);
		end_object(doc);

		query_parameter(doc, "page", "page",
						"The page to return, from 0; pages are `size` rows (the cap unless given) long.", false);
		key_object(doc, "schema");
		key_string(doc, "type", "integer");
		key_string(doc, "format", "int32");
		key_int(doc, "minimum", 0);
		end_object(doc);
		end_object(doc);

		query_parameter(doc, "size", "size",
						"Rows per page; a size above the cap is lowered to the cap, and then "
						"`limitWasExceeded` is true.", false);
		key_object(doc, "schema");
		key_string(doc, "type", "integer");
		key_string(doc, "format", "int32");
		key_int(doc, "minimum", 1);
		end_object(doc);
		end_object(doc);

		query_parameter(doc, "sort", "sort",
						"The order: `field[,field...][,asc|desc]`, or `-field` for descending; relation "
						"paths (`customer.name`) too. The id is always the last tiebreaker.", false);
		key_object(doc, "schema");
		key_string(doc, "type", "string");
		end_object(doc);
		key_string(doc, "example", "id,desc");
		end_object(doc);

		query_parameter(doc, "ids", "ids",
						"Only the objects of these ids (`ids=1,2,3`, or `ids=1&ids=2`).", false);
		list_style(doc);
		key_object(doc, "schema");
		key_string(doc, "type", "array");
		key_object(doc, "items");
		key_string(doc, "type", "integer");
		key_string(doc, "format", "int64");
		end_object(doc);
		end_object(doc);
		end_object(doc);
	}
	if (doc->time_records != NULL)
	{
		int			nnames;
		const char *const *names = report_group_by_names(&nnames);
		char	   *default_group_by = pstrdup(REPORT_DEFAULT_GROUP_BY);
		char	   *saveptr = NULL;

		for (int to = 0; to <= 1; to++)
		{
			query_parameter(doc, to ? "reportToDate" : "reportFromDate", to ? "toDate" : "fromDate",
							to ? "The last date of the report (inclusive)." :
							"The first date of the report (inclusive).", true);
			key_object(doc, "schema");
			key_string(doc, "type", "string");
			key_string(doc, "format", "date");
			end_object(doc);
			key_string(doc, "example", to ? "2024-03-31" : "2024-03-01");
			end_object(doc);
		}
		query_parameter(doc, "groupBy", "groupBy",
						"The dimensions to group by: any of project, projectExtension, userAccount, "
						"customer, and at most one of day, week, month (which sets `period` to the first "
						"day of the period).", false);
		list_style(doc);
		key_object(doc, "schema");
		key_string(doc, "type", "array");
		key_object(doc, "items");
		key_string(doc, "type", "string");
		key_array(doc, "enum");
		for (int i = 0; i < nnames; i++)
			element_string(doc, names[i]);
		end_array(doc);
		end_object(doc);
		key_array(doc, "default");
		for (char *name = strtok_r(default_group_by, ",", &saveptr); name; name = strtok_r(NULL, ",", &saveptr))
			element_string(doc, name);
		end_array(doc);
		end_object(doc);
		end_object(doc);
	}
}

/* ---- components: schemas ---- */

static void
metadata_schema(OpenApi *doc, DocEntity *doc_entity)
{
	ListCell   *cell;
	List	   *sets = NIL;

	foreach(cell, doc_entity->metadata_sets)
		sets = lappend(sets, psprintf("metadata.%s", ((DocMetadataSet *) lfirst(cell))->name));
	key_object(doc, component(doc_entity, "metadata"));
	key_string(doc, "type", "object");
	key_string(doc, "description", psprintf("Aggregates of the metadata sets included, merged into one "
											"object: over every row that matches a listing's filters, or over "
											"the object itself. Sets of %s: %s.",
											doc_entity->entity->name, join_names(sets, ", ")));
	key_object(doc, "properties");
	foreach(cell, doc_entity->metadata_keys)
	{
		DocAggregate *aggregate = lfirst(cell);

		key_object(doc, aggregate->key);
		if (OidIsValid(aggregate->type))
			type_keys(doc, aggregate->type, -1, true, NIL);
		key_string(doc, "description", psprintf("In %s.", aggregate->sets));
		end_object(doc);
	}
	end_object(doc);
	key_bool(doc, "additionalProperties", false);
	end_object(doc);
}

/* The properties and required keys of an object of a part. */
static void
part_object(OpenApi *doc, DocEntity *doc_entity, DocPart *part)
{
	ListCell   *cell;

	key_object(doc, "properties");
	foreach(cell, part->columns)
	{
		DocColumn  *column = lfirst(cell);

		key(doc, column->key);
		column_schema(doc, doc_entity->entity, column);
	}
	if (part->metadata_sets != NIL)
		key_ref(doc, "metadata", "schemas", component(doc_entity, "metadata"));
	end_object(doc);
	key_array(doc, "required");
	foreach(cell, part->columns)
		element_string(doc, ((DocColumn *) lfirst(cell))->key);
	if (part->metadata_sets != NIL)
		element_string(doc, "metadata");
	end_array(doc);
}

static void
object_schemas(OpenApi *doc, DocEntity *doc_entity)
{
	MomentEntity *entity = doc_entity->entity;
	DocPart    *representation = doc_entity->representation;
	ListCell   *cell;
	List	   *seen = NIL;

	/* the default representation */
	key_object(doc, component(doc_entity, "object"));
	key_string(doc, "type", "object");
	if (representation->error == NULL)
	{
		key_string(doc, "description",
				   psprintf("A %s as paths without /include/ return it: the part `default` (%s).",
							entity->singular, part_keys_text(representation)));
		part_object(doc, doc_entity, representation);
		key_bool(doc, "additionalProperties", false);
	}
	else
	{
		/* nothing is returned without /include/: every such request fails with this error */
		key_string(doc, "description",
				   psprintf("A %s; the part `default` of %s does not resolve (%s), so paths without "
							"/include/ answer with an error.", entity->singular, entity->name,
							representation->error));
		key_object(doc, "properties");
		key(doc, entity->id_field->json_name);
		field_schema(doc, entity, entity->id_field);
		end_object(doc);
		key_array(doc, "required");
		element_string(doc, entity->id_field->json_name);
		end_array(doc);
	}
	end_object(doc);

	/* projected by an include spec: any of the fields and of the keys parts give */
	key_object(doc, component(doc_entity, "partial"));
	key_string(doc, "type", "object");
	key_string(doc, "description",
			   psprintf("A %s projected by an include spec: the id, and the fields, parts, relation paths "
						"and metadata sets asked for. A related object's field comes back under its path in "
						"lowerCamelCase (customer.name: customerName); the keys the parts of %s give are "
						"listed.", entity->singular, entity->name));
	key_object(doc, "properties");
	for (int i = 0; i < entity->nfields; i++)
	{
		key(doc, entity->fields[i].json_name);
		field_schema(doc, entity, &entity->fields[i]);
		seen = lappend(seen, entity->fields[i].json_name);
	}
	foreach(cell, doc_entity->parts)
	{
		ListCell   *ccell;

		foreach(ccell, ((DocPart *) lfirst(cell))->columns)
		{
			DocColumn  *column = lfirst(ccell);
			bool		listed = false;
			ListCell   *scell;

			foreach(scell, seen)
				if (strcmp(lfirst(scell), column->key) == 0)
					listed = true;
			if (listed)
				continue;
			key(doc, column->key);
			column_schema(doc, entity, column);
			seen = lappend(seen, (char *) column->key);
		}
	}
	if (doc_entity->metadata_sets != NIL)
		key_ref(doc, "metadata", "schemas", component(doc_entity, "metadata"));
	end_object(doc);
	key_array(doc, "required");
	element_string(doc, entity->id_field->json_name);
	end_array(doc);
	key_bool(doc, "additionalProperties", true);
	end_object(doc);
}

static void
body_schemas(OpenApi *doc, DocEntity *doc_entity)
{
	MomentEntity *entity = doc_entity->entity;

	for (int update = 0; update <= 1; update++)
	{
		List	   *required = NIL;
		ListCell   *cell;

		key_object(doc, component(doc_entity, update ? "update" : "create"));
		key_string(doc, "type", "object");
		key_string(doc, "description", update ?
				   psprintf("The fields of a %s to change (PUT and PATCH alike: the others keep their values). "
							"Read-only fields cannot be set (400), unknown fields are errors.", entity->singular) :
				   psprintf("A new %s: field names and values; the company is the one in force. Read-only "
							"fields cannot be set (400), unknown fields are errors.", entity->singular));
		key_object(doc, "properties");
		for (int i = 0; i < entity->nfields; i++)
		{
			MomentField *field = &entity->fields[i];

			key(doc, field->json_name);
			field_schema(doc, entity, field);
			if (field->writable && field->not_null && !field->has_default)
				required = lappend(required, field->json_name);
		}
		end_object(doc);
		if (!update && required != NIL)
		{
			key_array(doc, "required");
			foreach(cell, required)
				element_string(doc, lfirst(cell));
			end_array(doc);
		}
		key_bool(doc, "additionalProperties", false);
		end_object(doc);
	}

	key_object(doc, component(doc_entity, "batch"));
	key_string(doc, "type", "object");
	key_string(doc, "description", "Batch instructions, applied all or nothing; any other key is an error.");
	key_object(doc, "properties");
	key_object(doc, "create");
	key_string(doc, "type", "array");
	key_string(doc, "description", "Objects to create, in this order.");
	key_ref(doc, "items", "schemas", component(doc_entity, "create"));
	end_object(doc);
	key_object(doc, "update");
	key_string(doc, "type", "object");
	key_string(doc, "description", "The fields to change, by id (the keys are ids).");
	key_ref(doc, "additionalProperties", "schemas", component(doc_entity, "update"));
	end_object(doc);
	key_object(doc, "delete");
	key_string(doc, "type", "array");
	key_string(doc, "description", "The ids to delete.");
	key_object(doc, "items");
	key_string(doc, "type", "integer");
	key_string(doc, "format", "int64");
	end_object(doc);
	end_object(doc);
	end_object(doc);
	key_bool(doc, "additionalProperties", false);
	end_object(doc);
}

static void
envelope_schemas(OpenApi *doc, DocEntity *doc_entity)
{
	for (int partial = 0; partial <= 1; partial++)
	{
		const char *item = component(doc_entity, partial ? "partial" : "object");
		bool		metadata_always = !partial && doc_entity->representation->metadata_sets != NIL;
		bool		metadata_possible = partial ? doc_entity->metadata_sets != NIL : metadata_always;

		key_object(doc, component(doc_entity, partial ? "partialList" : "list"));
		key_string(doc, "type", "object");
		key_string(doc, "description", "A listing: the objects, whether more matched than the cap let through, "
				   "the page (with page or size) and the metadata (when a metadata set is included).");
		key_object(doc, "properties");
		key_object(doc, "content");
		key_string(doc, "type", "array");
		key_ref(doc, "items", "schemas", item);
		end_object(doc);
		key_object(doc, "limitWasExceeded");
		key_string(doc, "type", "boolean");
		key_string(doc, "description", "True when more rows matched than the listing returns (without paging), "
				   "or when size was lowered to the cap.");
		end_object(doc);
		key_ref(doc, "page", "schemas", "Page");
		if (metadata_possible)
			key_ref(doc, "metadata", "schemas", component(doc_entity, "metadata"));
		end_object(doc);
		key_array(doc, "required");
		element_string(doc, "content");
		element_string(doc, "limitWasExceeded");
		if (metadata_always)
			element_string(doc, "metadata");
		end_array(doc);
		key_bool(doc, "additionalProperties", false);
		end_object(doc);

		key_object(doc, component(doc_entity, partial ? "partialBatchResult" : "batchResult"));
		key_string(doc, "type", "object");
		key_string(doc, "description", "What a batch did.");
		key_object(doc, "properties");
		key_object(doc, "created");
		key_string(doc, "type", "array");
		key_string(doc, "description", "The objects created, in request order.");
		key_ref(doc, "items", "schemas", item);
		end_object(doc);
		key_object(doc, "updated");
		key_string(doc, "type", "array");
		key_string(doc, "description", "The objects updated, by ascending id.");
		key_ref(doc, "items", "schemas", item);
		end_object(doc);
		key_object(doc, "deleted");
		key_string(doc, "type", "array");
		key_string(doc, "description", "The ids deleted.");
		key_object(doc, "items");
		key_string(doc, "type", "integer");
		key_string(doc, "format", "int64");
		end_object(doc);
		end_object(doc);
		key_object(doc, "createOrderIntact");
		key_string(doc, "type", "boolean");
		key_string(doc, "description", "True when the created objects' ids ascend in request order.");
		end_object(doc);
		end_object(doc);
		key_array(doc, "required");
		element_string(doc, "created");
		element_string(doc, "updated");
		element_string(doc, "deleted");
		element_string(doc, "createOrderIntact");
		end_array(doc);
		key_bool(doc, "additionalProperties", false);
		end_object(doc);
	}
}

static void
integer_property(OpenApi *doc, const char *name, const char *format, const char *description)
{
	key_object(doc, name);
	key_string(doc, "type", "integer");
	key_string(doc, "format", format);
	key_int(doc, "minimum", 0);
	key_string(doc, "description", description);
	end_object(doc);
}

static void
report_schemas(OpenApi *doc, const char *name, const char *action, const char *description)
{
	int			ncolumns;
	const ReportColumn *columns = report_columns(action, &ncolumns);
	char	   *row = psprintf("%sRow", name);

	key_object(doc, name);
	key_string(doc, "type", "object");
	key_string(doc, "description", description);
	key_object(doc, "properties");
	key_object(doc, "content");
	key_string(doc, "type", "array");
	key_ref(doc, "items", "schemas", row);
	end_object(doc);
	key_object(doc, "limitWasExceeded");
	key_string(doc, "type", "boolean");
	key_string(doc, "description", "True when more rows matched than the cap let through.");
	end_object(doc);
	end_object(doc);
	key_array(doc, "required");
	element_string(doc, "content");
	element_string(doc, "limitWasExceeded");
	end_array(doc);
	key_bool(doc, "additionalProperties", false);
	end_object(doc);

	key_object(doc, row);
	key_string(doc, "type", "object");
	key_object(doc, "properties");
	for (int i = 0; i < ncolumns; i++)
	{
		key_object(doc, columns[i].key);
		type_keys(doc, columns[i].type, -1, columns[i].nullable, NIL);
		end_object(doc);
	}
	end_object(doc);
	key_array(doc, "required");
	for (int i = 0; i < ncolumns; i++)
		element_string(doc, columns[i].key);
	end_array(doc);
	key_bool(doc, "additionalProperties", false);
	end_object(doc);
}

static void
shared_schemas(OpenApi *doc)
{
	if (doc->entities != NIL)
	{
		key_object(doc, "Page");
		key_string(doc, "type", "object");
		key_string(doc, "description", "The page of a paged listing.");
		key_object(doc, "properties");
		integer_property(doc, "number", "int32", "The page, from 0.");
		integer_property(doc, "size", "int32", "Rows per page.");
		integer_property(doc, "totalElements", "int64", "Rows matching the filters, on every page.");
		integer_property(doc, "totalPages", "int64", "Pages of that many rows.");
		end_object(doc);
		key_array(doc, "required");
		element_string(doc, "number");
		element_string(doc, "size");
		element_string(doc, "totalElements");
		element_string(doc, "totalPages");
		end_array(doc);
		key_bool(doc, "additionalProperties", false);
		end_object(doc);

		key_object(doc, "DeleteResult");
		key_string(doc, "type", "object");
		key_object(doc, "properties");
		key_object(doc, "id");
		key_string(doc, "type", "integer");
		key_string(doc, "format", "int64");
		key_string(doc, "description", "The id deleted.");
		end_object(doc);
		end_object(doc);
		key_array(doc, "required");
		element_string(doc, "id");
		end_array(doc);
		key_bool(doc, "additionalProperties", false);
		key_json(doc, "example", "{\"id\": 42}");
		end_object(doc);
	}
	if (doc->time_records != NULL)
	{
		report_schemas(doc, "HoursReport", "getReport",
					   "Hours of time records grouped by the dimensions of groupBy.");
		report_schemas(doc, "ProjectHoursReport", "projectRegisteredHoursReport",
					   "Hours registered per project.");
	}

	key_object(doc, "OpenApiDocument");
	key_string(doc, "type", "object");
	key_string(doc, "description", "An OpenAPI 3.0.3 document.");
	key_object(doc, "properties");
	key_object(doc, "openapi");
	key_string(doc, "type", "string");
	end_object(doc);
	key_object(doc, "info");
	key_string(doc, "type", "object");
	end_object(doc);
	key_object(doc, "paths");
	key_string(doc, "type", "object");
	end_object(doc);
	end_object(doc);
	key_array(doc, "required");
	element_string(doc, "openapi");
	element_string(doc, "info");
	element_string(doc, "paths");
	end_array(doc);
	end_object(doc);
}

/* The statuses some operation of the document answers with. */
static bool
status_used(OpenApi *doc, int status)
{
	for (int i = 0; i < lengthof(document_statuses); i++)
		if (document_statuses[i] == status)
			return true;
	if (doc->entities == NIL)
		return false;
	for (int i = 0; i < lengthof(write_statuses); i++)
		if (write_statuses[i] == status)
			return true;
	return false;
}

static void
error_components(OpenApi *doc, bool schemas)
{
	for (int i = 0; i < lengthof(error_statuses); i++)
	{
		const ErrorStatus *status = &error_statuses[i];
		char	   *schema = psprintf("%sBody", status->name);
		ListCell   *cell;
		List	   *types;

		if (!status_used(doc, status->status))
			continue;
		if (!schemas)
		{
			key_object(doc, status->name);
			key_string(doc, "description", status->description);
			key_object(doc, "content");
			key_object(doc, "application/json");
			key_ref(doc, "schema", "schemas", schema);
			key_json(doc, "example", status->example);
			end_object(doc);
			end_object(doc);
			end_object(doc);
			continue;
		}
		types = api_error_types(status->status);
		key_object(doc, schema);
		key_string(doc, "type", "object");
		key_string(doc, "description", psprintf("The body of a %d answer.", status->status));
		key_object(doc, "properties");
		key_object(doc, "error");
		key_string(doc, "type", "string");
		key_string(doc, "description", "The error message.");
		end_object(doc);
		key_object(doc, "error_type");
		key_string(doc, "type", "string");
		key_string(doc, "description", "What kind of error it is.");
		key_array(doc, "enum");
		foreach(cell, types)
			element_string(doc, lfirst(cell));
		end_array(doc);
		end_object(doc);
		key_object(doc, "details");
		key_string(doc, "type", "array");
		key_string(doc, "description", "The error's detail and hint when it has them, and last \"SQLSTATE xxxxx\".");
		key_object(doc, "items");
		key_string(doc, "type", "string");
		end_object(doc);
		key_int(doc, "minItems", 1);
		end_object(doc);
		end_object(doc);
		key_array(doc, "required");
		element_string(doc, "error");
		element_string(doc, "error_type");
		element_string(doc, "details");
		end_array(doc);
		key_bool(doc, "additionalProperties", false);
		end_object(doc);
	}
}

static void
components(OpenApi *doc)
{
	ListCell   *cell;

	key_object(doc, "components");

	key_object(doc, "parameters");
	shared_parameters(doc);
	foreach(cell, doc->entities)
		entity_parameters(doc, lfirst(cell));
	end_object(doc);

	key_object(doc, "schemas");
	shared_schemas(doc);
	error_components(doc, true);
	foreach(cell, doc->entities)
	{
		DocEntity  *doc_entity = lfirst(cell);

		object_schemas(doc, doc_entity);
		body_schemas(doc, doc_entity);
		envelope_schemas(doc, doc_entity);
		if (doc_entity->metadata_sets != NIL)
			metadata_schema(doc, doc_entity);
	}
	end_object(doc);

	key_object(doc, "responses");
	error_components(doc, false);
	end_object(doc);

	end_object(doc);
}

/* ---- the document ---- */

static void
info(OpenApi *doc)
{
	key_object(doc, "info");
	key_string(doc, "title", "Moment API");
	key_string(doc, "version", MOMENT_VERSION);
	key_string(doc, "description",
			   "Moment's REST API as the PostgreSQL extension `moment` answers it (`moment.api(method, path, "
			   "body)`, or PostgREST's `/rpc/api`), generated from the entity registry when asked.\n\n"
			   "- **Default representation**: a path without `/include/` returns the part `default`: every "
			   "field, and the name of every related object that has one (`customerName`).\n"
			   "- **Includes**: `/include/{spec}` returns only what the spec names: fields, parts, relation "
			   "paths (`customer.name`, flattened to `customerName`) and metadata sets (`metadata.NAME`, "
			   "aggregates under the key `metadata`); `id` always.\n"
			   "- **Limits**: a listing returns at most `moment.default_limit` rows and says "
			   "`limitWasExceeded` when more matched; `noLimit` raises the cap to `moment.max_limit` "
			   "(30000, a ceiling nothing lifts).\n"
			   "- **Batch**: `POST /{entity}/batch` applies creates, updates and deletes all or nothing.\n"
			   "- **Companies**: every request is for one company (tenant), granted to the database role "
			   "that makes it; it never sees another company's rows.\n"
			   "- **Authentication** is not part of these paths: the database role that calls `moment.api()` "
			   "(for PostgREST, the role of the JWT) is what a company is granted to.\n"
			   "- **Errors**: `{\"error\", \"error_type\", \"details\"}` with the HTTP status; `details` "
			   "ends with the SQLSTATE.\n"
			   "- **Special values** come as strings, outside their field's schema: `infinity` and "
			   "`-infinity` dates and timestamps, dates before Christ (`... BC`), `NaN` and infinite "
			   "numbers.");
	end_object(doc);
}

/*
 * No HTTP-level security: a request is the database role's that calls api()
 * (for PostgREST, the JWT's role), and its grants decide (403 otherwise).
 */
static void
security(OpenApi *doc)
{
	key_array(doc, "security");
	end_array(doc);
}

static void
servers(OpenApi *doc)
{
	key_array(doc, "servers");
	begin_object(doc);
	if (doc->server_url != NULL)
	{
		key_string(doc, "url", doc->server_url);
		key_string(doc, "description", "Paths are relative to this URL; the company is the one in force "
				   "there (moment.company, or the company claim of the JWT).");
	}
	else
	{
		key_string(doc, "url", "/");
		key_string(doc, "description", "The server that passes these paths to moment.api(); the company "
				   "is the path's.");
	}
	end_object(doc);
	end_array(doc);
}

static void
tags(OpenApi *doc)
{
	ListCell   *cell;

	key_array(doc, "tags");
	foreach(cell, doc->entities)
	{
		DocEntity  *doc_entity = lfirst(cell);

		begin_object(doc);
		key_string(doc, "name", doc_entity->entity->name);
		key_string(doc, "description", tag_description(doc_entity));
		end_object(doc);
	}
	if (doc->time_records != NULL)
	{
		begin_object(doc);
		key_string(doc, "name", REPORTS_TAG);
		key_string(doc, "description", "Hours of time records, aggregated in one statement.");
		end_object(doc);
	}
	begin_object(doc);
	key_string(doc, "name", DOCUMENT_TAG);
	key_string(doc, "description", "This document.");
	end_object(doc);
	end_array(doc);
}

Jsonb *
openapi_document(const char *server_url)
{
	MemoryContext caller_context = CurrentMemoryContext;
	MemoryContext work_context;
	OpenApi		doc = {0};
	JsonbValue *document;
	Jsonb	   *built;
	Jsonb	   *result;
	ListCell   *cell;

	require_company_or_admin();
	work_context = AllocSetContextCreate(caller_context, "moment openapi", ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(work_context);

	doc.server_url = server_url;
	doc.prefix = server_url == NULL ? COMPANY_PREFIX : "";
	foreach(cell, registry_entities())
	{
		MomentEntity *entity = lfirst(cell);
		DocEntity  *doc_entity;

		CHECK_FOR_INTERRUPTS();
		/* a broken entity answers every request with 500: it has no paths to document */
		if (!entity_try_ensure(entity))
			continue;
		doc_entity = describe_entity(entity);
		doc.entities = lappend(doc.entities, doc_entity);
		if (strcmp(entity->name, "timeRecords") == 0)
			doc.time_records = doc_entity;
	}

	begin_object(&doc);
	key_string(&doc, "openapi", "3.0.3");
	info(&doc);
	servers(&doc);
	security(&doc);
	tags(&doc);
	paths(&doc);
	components(&doc);
	document = pushJsonbValue(&doc.state, WJB_END_OBJECT, NULL);
	built = JsonbValueToJsonb(document);

	MemoryContextSwitchTo(caller_context);
	result = palloc(VARSIZE(built));
	memcpy(result, built, VARSIZE(built));
	MemoryContextDelete(work_context);
	return result;
}

PG_FUNCTION_INFO_V1(moment_openapi);
Datum
moment_openapi(PG_FUNCTION_ARGS)
{
	char	   *server_url = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	Jsonb	   *volatile result = NULL;

	API_ENTRY_BEGIN
	{
		if (server_url != NULL && server_url[0] == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("server_url must not be empty"),
					 errhint("Pass NULL for paths that carry /api/1.0/companies/{companyCode}.")));
		result = openapi_document(server_url);
	}
	API_ENTRY_END;
	PG_RETURN_JSONB_P(result);
}
