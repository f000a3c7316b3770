/*
 * describe.c: describe() and check_include(): what an entity offers, and
 * whether an include spec resolves.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "moment.h"
#include "request.h"
#include "shape.h"
#include "tenant.h"

static char *
text_arg(FunctionCallInfo fcinfo, int n)
{
	return PG_ARGISNULL(n) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(n));
}

/*
 * The JSON type of a value of a type (domains looked through) as the API
 * returns it (jsonb of the column), and an OpenAPI format when there is one.
 * NULL means any JSON value (json, jsonb).
 */
const char *
type_json_type(Oid base_type, const char **format)
{
	*format = NULL;
	if (OidIsValid(get_element_type(base_type)))
		return "array";
	switch (base_type)
	{
		case INT2OID:
		case INT4OID:
			*format = "int32";
			return "integer";
		case INT8OID:
			*format = "int64";
			return "integer";
		case NUMERICOID:
			return "number";
		case FLOAT4OID:
			*format = "float";
			return "number";
		case FLOAT8OID:
			*format = "double";
			return "number";
		case BOOLOID:
			return "boolean";
		case DATEOID:
			*format = "date";
			return "string";
		case TIMESTAMPTZOID:
			*format = "date-time";
			return "string";
		case TIMESTAMPOID:
			/* no offset in the text: not an RFC 3339 date-time */
			return "string";
		case UUIDOID:
			*format = "uuid";
			return "string";
		case JSONOID:
		case JSONBOID:
			return NULL;		/* any JSON value */
		default:
			return "string";
	}
}

/* The JSON type of a field's values, and an OpenAPI format when there is one. */
const char *
field_json_type(MomentField *field, const char **format)
{
	return type_json_type(field->base_type, format);
}

/* Describe, check_include and openapi serve the company's roles and administrators. */
void
require_company_or_admin(void)
{
	if (!moment_is_admin())
		(void) tenant_company(false);
}

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
	int			pinned;

	shape_param(shape, INT8OID, Int64GetDatum(0), false);
	include_parse(shape, spec);
	shape_finalize(shape);
	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT ");
	query_object(&sql, shape, true);
	query_from(&sql, shape, NULL, false);
	query_where(&sql, shape);
	appendStringInfo(&sql, " AND t.%s OPERATOR(pg_catalog.=) $2", entity->id_field->quoted_column);

	spi_check(SPI_connect(), "SPI_connect");
	pinned = pin_search_path(shape->metadata_sets != NIL);
	plan = SPI_prepare(sql.data, shape->nparams, shape->param_types);
	if (plan == NULL)
		elog(ERROR, "moment: include spec \"%s\" of %s does not prepare", spec, entity->name);
	SPI_freeplan(plan);
	unpin_search_path(pinned);
	SPI_finish();

	foreach(cell, shape->columns)
		keys = lappend(keys, ((ShapeColumn *) lfirst(cell))->key);
	return keys;
}

/*
 * check_spec, with an error caught (in a subtransaction) and returned as
 * its message instead: one broken part must not hide the rest of describe.
 * Errors that must not be caught (error_must_propagate) go on.
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
	int			category;

	*keys = check.keys;
	if (error == NULL)
		return NULL;
	/*
	 * A part is broken when its definition is: a name or expression that no
	 * longer resolves (42, 22), a spec too large (54), an unusable related
	 * entity (55000).  Anything else (a lock timeout, say) is the request's
	 * error, not the part's.
	 */
	category = ERRCODE_TO_CATEGORY(error->sqlerrcode);
	if (category != ERRCODE_TO_CATEGORY(ERRCODE_SYNTAX_ERROR_OR_ACCESS_RULE_VIOLATION) &&
		category != ERRCODE_TO_CATEGORY(ERRCODE_DATA_EXCEPTION) &&
		category != ERRCODE_TO_CATEGORY(ERRCODE_PROGRAM_LIMIT_EXCEEDED) &&
		error->sqlerrcode != ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE &&
		error->sqlerrcode != ERRCODE_FEATURE_NOT_SUPPORTED)
		rethrow_without_sql_context(error);
	return error->message;
}

PG_FUNCTION_INFO_V1(moment_check_include);
Datum
moment_check_include(PG_FUNCTION_ARGS)
{
	API_ENTRY_BEGIN
	{
		MomentEntity *entity = registry_entity(text_arg(fcinfo, 0));

		require_company_or_admin();
		check_spec(entity, text_arg(fcinfo, 1));
	}
	API_ENTRY_END;
	PG_RETURN_BOOL(true);
}

/* A part's or metadata set's keys, or {"error": message} when it is broken. */
static void
push_checked(JsonbParseState **state, MomentEntity *entity, const char *name, const char *spec,
			 List *names)
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
	foreach(cell, names ? names : keys)
		jb_string(state, lfirst(cell), WJB_ELEM);
	pushJsonbValue(state, WJB_END_ARRAY, NULL);
}

PG_FUNCTION_INFO_V1(moment_describe);
Datum
moment_describe(PG_FUNCTION_ARGS)
{
	JsonbValue *volatile result = NULL;

	API_ENTRY_BEGIN
	{
		MomentEntity *entity = registry_entity(text_arg(fcinfo, 0));
		JsonbParseState *state = NULL;
		ListCell   *cell;

		require_company_or_admin();
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
			const char *format;
			const char *json_type = field_json_type(field, &format);

			pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
			jb_key(&state, "name");
			jb_string(&state, field->json_name, WJB_VALUE);
			jb_key(&state, "column");
			jb_string(&state, field->column_name, WJB_VALUE);
			jb_key(&state, "type");
			jb_string(&state, format_type_with_typemod(field->type_oid, field->typmod), WJB_VALUE);
			jb_key(&state, "jsonType");
			if (json_type)
				jb_string(&state, json_type, WJB_VALUE);
			else
				jb_null(&state, WJB_VALUE);
			jb_key(&state, "writable");
			jb_bool(&state, field->writable, WJB_VALUE);
			jb_key(&state, "readOnly");
			jb_bool(&state, !field->writable, WJB_VALUE);
			jb_key(&state, "required");
			jb_bool(&state, field->writable && field->not_null && !field->has_default, WJB_VALUE);
			jb_key(&state, "nullable");
			jb_bool(&state, !field->not_null, WJB_VALUE);
			if (field->allowed_values != NIL)
			{
				ListCell   *vcell;

				jb_key(&state, "enum");
				pushJsonbValue(&state, WJB_BEGIN_ARRAY, NULL);
				foreach(vcell, field->allowed_values)
					jb_string(&state, lfirst(vcell), WJB_ELEM);
				pushJsonbValue(&state, WJB_END_ARRAY, NULL);
			}
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

			push_checked(&state, entity, part->name, part->name, NIL);
		}
		pushJsonbValue(&state, WJB_END_OBJECT, NULL);

		/* metadata sets: their keys, each set prepared once to check it */
		jb_key(&state, "metadata");
		pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
		foreach(cell, entity->metadata_sets)
		{
			MomentMetadataSet *set = lfirst(cell);
			List	   *keys = NIL;
			ListCell   *acell;

			foreach(acell, set->aggregates)
				keys = lappend(keys, ((MomentAggregate *) lfirst(acell))->key);
			push_checked(&state, entity, set->name, psprintf("metadata.%s", set->name), keys);
		}
		pushJsonbValue(&state, WJB_END_OBJECT, NULL);

		result = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	}
	API_ENTRY_END;
	PG_RETURN_JSONB_P(JsonbValueToJsonb(result));
}
