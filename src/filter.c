/*
 * filter.c: the filter document and order_by of a listing.
 *
 *   {"minutes": {"gte": 60}, "project.customer.name": {"ilike": "%as%"},
 *    "projectId": [1, 2], "description": null, "approved": false}
 *
 * Keys are fields or relation paths; values become typed parameters through
 * the column type's input function, never SQL text.  Conditions come out in
 * jsonb's own key order, so the statement text is the same for the same
 * fields and operators whatever the values.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/typcache.h"

#include "moment.h"
#include "shape.h"

typedef struct OperatorName
{
	const char *name;
	ConditionOp op;
} OperatorName;

static const OperatorName operators[] = {
	{"eq", COND_EQ},
	{"neq", COND_NEQ},
	{"lt", COND_LT},
	{"lte", COND_LTE},
	{"gt", COND_GT},
	{"gte", COND_GTE},
	{"in", COND_IN},
	{"like", COND_LIKE},
	{"ilike", COND_ILIKE},
	{"isNull", COND_IS_NULL},
};

#define OPERATOR_NAMES "eq, neq, lt, lte, gt, gte, in, like, ilike, isNull"

static bool
digits(const char **p, int n)
{
	for (int i = 0; i < n; i++, (*p)++)
		if (**p < '0' || **p > '9')
			return false;
	return true;
}

static bool
iso_date_part(const char **p)
{
	if (**p == '+' || **p == '-')
		(*p)++;
	if (!digits(p, 4))
		return false;
	while (**p >= '0' && **p <= '9')
		(*p)++;
	return *(*p)++ == '-' && digits(p, 2) && *(*p)++ == '-' && digits(p, 2);
}

static bool
iso_time_part(const char **p)
{
	if (!digits(p, 2) || *(*p)++ != ':' || !digits(p, 2))
		return false;
	if (**p == ':')
	{
		(*p)++;
		if (!digits(p, 2))
			return false;
		if (**p == '.' || **p == ',')
		{
			(*p)++;
			if (!digits(p, 1))
				return false;
			while (**p >= '0' && **p <= '9')
				(*p)++;
		}
	}
	return true;
}

static bool
iso_zone_part(const char **p)
{
	if (**p == 'Z' || **p == 'z')
	{
		(*p)++;
		return true;
	}
	if (**p == '+' || **p == '-')
	{
		(*p)++;
		if (!digits(p, 2))
			return false;
		if (**p == ':')
			(*p)++;
		if (**p >= '0' && **p <= '9' && !digits(p, 2))
			return false;
	}
	return true;
}

/*
 * Dates and times are read in ISO 8601 only: "03/01/2024" means March or
 * January depending on DateStyle, so it is refused whatever DateStyle says.
 */
static bool
is_iso8601(FieldKind kind, const char *text)
{
	const char *p = text;

	if (strcmp(text, "infinity") == 0 || strcmp(text, "-infinity") == 0)
		return kind == FIELD_DATE || kind == FIELD_TIMESTAMP;
	switch (kind)
	{
		case FIELD_DATE:
			return iso_date_part(&p) && *p == '\0';
		case FIELD_TIMESTAMP:
			if (!iso_date_part(&p))
				return false;
			if (*p == 'T' || *p == 't' || *p == ' ')
			{
				p++;
				if (!iso_time_part(&p) || !iso_zone_part(&p))
					return false;
			}
			return *p == '\0';
		case FIELD_TIME:
			return iso_time_part(&p) && iso_zone_part(&p) && *p == '\0';
		default:
			return true;
	}
}

static const char *
iso_hint(FieldKind kind)
{
	switch (kind)
	{
		case FIELD_DATE:
			return "Dates are written in ISO 8601: YYYY-MM-DD.";
		case FIELD_TIMESTAMP:
			return "Timestamps are written in ISO 8601: YYYY-MM-DDTHH:MM:SS, with an optional fraction and zone (Z, +01:00).";
		default:
			return "Times are written in ISO 8601: HH:MM:SS.";
	}
}

/* An ISO 8601 date given as text (a report's from and to), or 22007. */
Datum
iso_date_input(const char *text, const char *what)
{
	if (!is_iso8601(FIELD_DATE, text))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_DATETIME_FORMAT),
				 errmsg("%s: invalid input syntax for type date: \"%s\"", what, text),
				 errhint("%s", iso_hint(FIELD_DATE))));
	return DirectFunctionCall1(date_in, CStringGetDatum(text));
}

/*
 * A JSON array as the text of a PostgreSQL array ({a,"b c",NULL,{1,2}}), for
 * an array field: the API writes arrays as JSON arrays, and takes them so.
 * Every element is quoted, so the element type's input sees it whole; with
 * JSON elements (jsonb[]) each element is its JSON text, nested arrays
 * included.
 */
static void
append_array_literal(StringInfo buf, JsonbContainer *container, bool json_elements)
{
	JsonbIterator *iterator = JsonbIteratorInit(container);
	JsonbIteratorToken token;
	JsonbValue	element;
	bool		first = true;

	check_stack_depth();
	appendStringInfoChar(buf, '{');
	while ((token = JsonbIteratorNext(&iterator, &element, true)) != WJB_DONE)
	{
		const char *text;

		CHECK_FOR_INTERRUPTS();
		if (token != WJB_ELEM)
			continue;
		if (!first)
			appendStringInfoChar(buf, ',');
		first = false;
		if (element.type == jbvNull)
		{
			appendStringInfoString(buf, "NULL");
			continue;
		}
		if (element.type == jbvBinary && !json_elements && JsonContainerIsArray(element.val.binary.data))
		{
			append_array_literal(buf, element.val.binary.data, false);
			continue;
		}
		if (json_elements || element.type == jbvBinary)
		{
			Jsonb	   *jb = JsonbValueToJsonb(&element);

			text = JsonbToCString(NULL, &jb->root, VARSIZE(jb));
		}
		else
			text = jsonb_value_text(&element);
		appendStringInfoChar(buf, '"');
		for (const char *c = text; *c; c++)
		{
			if (*c == '"' || *c == '\\')
				appendStringInfoChar(buf, '\\');
			appendStringInfoChar(buf, *c);
		}
		appendStringInfoChar(buf, '"');
	}
	appendStringInfoChar(buf, '}');
}

/*
 * A JSON value as a Datum of the field's type, by the type's own input
 * function.  Writes apply the column's type modifier (numeric(14,2)
 * rounds, char(3) refuses four letters); filters compare with the plain
 * type.  JSON null gives SQL NULL; a JSON array, for an array field, a
 * PostgreSQL array.  An integral JSON number (60.0) is fine
 * for an integer field; dates and times must be ISO 8601.  A value that
 * does not convert raises the type's own error (22P02, 22001, 22003, 22007,
 * 22008, ...) with the field named in front.
 */
Datum
field_input(MomentField *field, JsonbValue *value, bool for_write, bool *isnull)
{
	char	   *text;
	MemoryContext caller_context = CurrentMemoryContext;
	Datum volatile result = (Datum) 0;

	*isnull = (value->type == jbvNull);
	if (*isnull)
		return (Datum) 0;
	if (field->is_json)
	{
		Jsonb	   *jb = JsonbValueToJsonb(value);

		text = JsonbToCString(NULL, &jb->root, VARSIZE(jb));
	}
	else if (value->type == jbvBinary && JsonContainerIsArray(value->val.binary.data) &&
			 OidIsValid(get_element_type(field->base_type)))
	{
		Oid			element_type = getBaseType(get_element_type(field->base_type));
		StringInfoData buf;

		initStringInfo(&buf);
		append_array_literal(&buf, value->val.binary.data,
							 element_type == JSONOID || element_type == JSONBOID);
		text = buf.data;
	}
	else
		text = jsonb_value_text(value);

	PG_TRY();
	{
		if (field->kind == FIELD_INTEGER && value->type == jbvNumeric && strchr(text, '.') != NULL)
		{
			/* 60.0 is the integer 60; 60.5 is not an integer */
			Numeric		number = value->val.numeric;
			Datum		truncated = DirectFunctionCall2(numeric_trunc, NumericGetDatum(number),
														Int32GetDatum(0));

			if (DatumGetBool(DirectFunctionCall2(numeric_eq, truncated, NumericGetDatum(number))))
				text = DatumGetCString(DirectFunctionCall1(numeric_out, truncated));
		}
		if ((field->kind == FIELD_DATE || field->kind == FIELD_TIMESTAMP || field->kind == FIELD_TIME) &&
			!is_iso8601(field->kind, text))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_DATETIME_FORMAT),
					 errmsg("invalid input syntax for type %s: \"%s\"", format_type_be(field->type_oid), text),
					 errhint("%s", iso_hint(field->kind))));
		result = InputFunctionCall(&field->input, text, field->typioparam,
								   for_write ? field->typmod : -1);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(caller_context);
		edata = CopyErrorData();
		if (ERRCODE_TO_CATEGORY(edata->sqlerrcode) != ERRCODE_TO_CATEGORY(ERRCODE_DATA_EXCEPTION))
			PG_RE_THROW();
		FlushErrorState();
		ereport(ERROR,
				(errcode(edata->sqlerrcode),
				 errmsg("field \"%s\": %s", field->json_name, edata->message),
				 edata->detail ? errdetail("%s", edata->detail) : 0,
				 edata->hint ? errhint("%s", edata->hint) : 0,
				 err_generic_string(PG_DIAG_COLUMN_NAME, field->json_name),
				 edata->datatype_name ? err_generic_string(PG_DIAG_DATATYPE_NAME, edata->datatype_name) : 0));
	}
	PG_END_TRY();
	return result;
}

static const char *
operator_name(ConditionOp op)
{
	for (int i = 0; i < lengthof(operators); i++)
		if (operators[i].op == op)
			return operators[i].name;
	return "?";
}

static bool
is_scalar(JsonbValue *value)
{
	return value->type != jbvBinary && value->type != jbvArray && value->type != jbvObject;
}

/* The SQL operator of a comparison on the field, or NULL when its type has none. */
const char *
field_operator(MomentField *field, ConditionOp op)
{
	switch (op)
	{
		case COND_EQ:
		case COND_IN:
			return field->op_eq;
		case COND_NEQ:
			return field->op_ne;
		case COND_LT:
			return field->op_lt;
		case COND_LTE:
			return field->op_le;
		case COND_GT:
			return field->op_gt;
		case COND_GTE:
			return field->op_ge;
		case COND_LIKE:
			return "OPERATOR(pg_catalog.~~)";
		case COND_ILIKE:
			return "OPERATOR(pg_catalog.~~*)";
		default:
			return NULL;
	}
}

static void
check_operator_applies(MomentField *field, ConditionOp op, const char *key)
{
	switch (op)
	{
		case COND_EQ:
		case COND_NEQ:
		case COND_IN:
			if (field_operator(field, op) == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("filter on \"%s\": values of type %s cannot be compared for equality",
								key, format_type_be(field->type_oid))));
			if (op == COND_IN && !OidIsValid(field->array_type_oid))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("filter on \"%s\": operator in is not available for type %s",
								key, format_type_be(field->type_oid))));
			break;
		case COND_LT:
		case COND_LTE:
		case COND_GT:
		case COND_GTE:
			if (field_operator(field, op) == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("filter on \"%s\": values of type %s have no order for operator %s",
								key, format_type_be(field->type_oid), operator_name(op))));
			break;
		case COND_LIKE:
		case COND_ILIKE:
			if (field->type_category != TYPCATEGORY_STRING)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("filter on \"%s\": operator %s needs a text field, not %s",
								key, operator_name(op), format_type_be(field->type_oid))));
			break;
		default:
			break;
	}
}

static void
add_condition(RequestShape *shape, int join, MomentField *field, ConditionOp op,
			  JsonbValue *value, const char *key)
{
	ShapeCondition *condition = palloc0(sizeof(ShapeCondition));
	bool		isnull;
	Datum		datum;

	condition->join = join;
	condition->field = field;
	condition->op = op;

	if (op == COND_IS_NULL)
	{
		if (value->type != jbvBool)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("filter on \"%s\": isNull takes true or false, not %s",
							key, jsonb_type_phrase(value))));
		condition->op = value->val.boolean ? COND_IS_NULL : COND_IS_NOT_NULL;
		shape->conditions = lappend(shape->conditions, condition);
		return;
	}

	check_operator_applies(field, op, key);

	if (op == COND_IN)
	{
		JsonbIterator *it;
		JsonbValue	element;
		JsonbIteratorToken token;
		Datum	   *elements;
		int			nelements = 0;
		int			capacity;
		int16		typlen;
		bool		typbyval;
		char		typalign;

		if (value->type != jbvBinary || !JsonContainerIsArray(value->val.binary.data))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("filter on \"%s\": operator in takes an array, not %s",
							key, jsonb_type_phrase(value))));
		capacity = Max(1, JsonContainerSize(value->val.binary.data));
		elements = palloc(sizeof(Datum) * capacity);
		it = JsonbIteratorInit(value->val.binary.data);
		while ((token = JsonbIteratorNext(&it, &element, true)) != WJB_DONE)
		{
			CHECK_FOR_INTERRUPTS();
			if (token != WJB_ELEM)
				continue;
			if (!is_scalar(&element) && !field->is_json)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("filter on \"%s\": the values of in must be scalars, not %s",
								key, jsonb_type_phrase(&element))));
			if (element.type == jbvNull)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("filter on \"%s\": the values of in cannot be null", key),
						 errhint("Use {\"isNull\": true} to find missing values.")));
			elements[nelements++] = field_input(field, &element, false, &isnull);
		}
		get_typlenbyvalalign(field->type_oid, &typlen, &typbyval, &typalign);
		datum = PointerGetDatum(construct_array(elements, nelements, field->type_oid,
												typlen, typbyval, typalign));
		condition->param = shape_param(shape, field->array_type_oid, datum, false);
		shape->conditions = lappend(shape->conditions, condition);
		return;
	}

	if (value->type == jbvNull)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("filter on \"%s\": operator %s needs a value, not null", key, operator_name(op)),
				 errhint("Use null or {\"isNull\": true} to find missing values.")));
	if (!is_scalar(value) && !field->is_json)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("filter on \"%s\": operator %s takes a scalar, not %s",
						key, operator_name(op), jsonb_type_phrase(value))));
	if ((op == COND_LIKE || op == COND_ILIKE) && value->type != jbvString)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("filter on \"%s\": operator %s takes a string pattern, not %s",
						key, operator_name(op), jsonb_type_phrase(value))));
	if (op == COND_LIKE || op == COND_ILIKE)
	{
		/* patterns compare as text: the column is cast to pg_catalog.text */
		condition->param = shape_param(shape, TEXTOID,
									   PointerGetDatum(cstring_to_text_with_len(value->val.string.val,
																				value->val.string.len)),
									   false);
		shape->conditions = lappend(shape->conditions, condition);
		return;
	}
	datum = field_input(field, value, false, &isnull);
	condition->param = shape_param(shape, field->type_oid, datum, false);
	shape->conditions = lappend(shape->conditions, condition);
}

static void
add_operators(RequestShape *shape, int join, MomentField *field, JsonbValue *object,
			  const char *key)
{
	JsonbIterator *it = JsonbIteratorInit(object->val.binary.data);
	JsonbValue	v;
	JsonbIteratorToken token;
	char	   *op_name = NULL;
	int			count = 0;

	while ((token = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (token == WJB_KEY)
			op_name = pnstrdup(v.val.string.val, v.val.string.len);
		else if (token == WJB_VALUE)
		{
			int			i;

			for (i = 0; i < lengthof(operators); i++)
				if (strcmp(operators[i].name, op_name) == 0)
					break;
			if (i == lengthof(operators))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("filter on \"%s\": unknown operator \"%s\"", key, op_name),
						 errhint("Operators: " OPERATOR_NAMES ".")));
			add_condition(shape, join, field, operators[i].op, &v, key);
			count++;
		}
	}
	if (count == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("filter on \"%s\": the operator object is empty", key),
				 errhint("Operators: " OPERATOR_NAMES ".")));
}

/* Resolves a filter key or order path (all but its last name are relations). */
static MomentField *
resolve_field(RequestShape *shape, char **segments, int nsegments, bool for_filter,
			  const char *what, int *join_out)
{
	int			join = shape_walk(shape, 0, segments, nsegments - 1, for_filter, what);
	ShapeJoin  *target = shape_join(shape, join);
	MomentField *field = entity_field(target->entity, segments[nsegments - 1]);

	if (field == NULL)
	{
		if (entity_part(target->entity, segments[nsegments - 1]) != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("\"%s\" is a part of entity %s, not a field, in %s",
							segments[nsegments - 1], target->entity->name, what)));
		raise_unknown_name(target->entity, segments[nsegments - 1], "field", what,
						   entity_field_names(target->entity));
	}
	*join_out = join;
	return field;
}

void
filter_parse(RequestShape *shape, Jsonb *filter)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken token;
	char	   *key = NULL;

	if (filter == NULL)
		return;

	/*
	 * A JSON string holding an object is read as that object: PostgREST's
	 * GET /rpc/list?filter={...} passes every argument as a JSON string.
	 */
	if (JB_ROOT_IS_SCALAR(filter))
	{
		JsonbValue	scalar;

		JsonbExtractScalar(&filter->root, &scalar);
		if (scalar.type == jbvString)
		{
			char	   *text = pnstrdup(scalar.val.string.val, scalar.val.string.len);
			char	   *first = text;

			while (*first == ' ' || *first == '\t' || *first == '\n' || *first == '\r')
				first++;
			if (*first == '{')
				filter = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(text)));
		}
	}
	if (!JB_ROOT_IS_OBJECT(filter) || JB_ROOT_IS_SCALAR(filter))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("filter must be a JSON object"),
				 errhint("For example {\"minutes\": {\"gte\": 60}, \"projectId\": [1, 2]}.")));

	it = JsonbIteratorInit(&filter->root);
	while ((token = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		CHECK_FOR_INTERRUPTS();
		if (token == WJB_KEY)
			key = pnstrdup(v.val.string.val, v.val.string.len);
		else if (token == WJB_VALUE)
		{
			int			nsegments;
			char	  **segments = split_path(key, strlen(key), '.', &nsegments, "filter key", key);
			int			join;
			MomentField *field = resolve_field(shape, segments, nsegments, true, "filter", &join);

			if (v.type == jbvNull)
				add_condition(shape, join, field, COND_IS_NULL, &(JsonbValue) {.type = jbvBool,.val.boolean = true}, key);
			else if (v.type == jbvBinary && JsonContainerIsArray(v.val.binary.data))
				add_condition(shape, join, field, COND_IN, &v, key);
			else if (v.type == jbvBinary && JsonContainerIsObject(v.val.binary.data))
				add_operators(shape, join, field, &v, key);
			else
				add_condition(shape, join, field, COND_EQ, &v, key);
		}
	}
}

static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/*
 * order_by in PostgREST's form: field[.asc|.desc][.nullsfirst|.nullslast],
 * comma separated, relation paths allowed.
 */
void
order_parse(RequestShape *shape, const char *order_by)
{
	const char *p = order_by;
	bool		blank = true;

	if (order_by == NULL)
		return;
	for (const char *q = order_by; *q; q++)
		if (!is_space(*q))
			blank = false;
	if (blank)
		return;
	if (strlen(order_by) > MOMENT_MAX_SPEC_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("order_by is longer than %d bytes", MOMENT_MAX_SPEC_BYTES)));

	for (;;)
	{
		const char *start = p;
		const char *end;
		int			nsegments;
		char	  **segments;
		ShapeOrder *order;
		bool		direction_given = false;
		bool		nulls_given = false;
		MomentEntity *entity;

		while (*p && *p != ',')
			p++;
		end = p;
		while (start < end && is_space(*start))
			start++;
		while (end > start && is_space(end[-1]))
			end--;
		if (start == end)
			ereport(ERROR,
					(errcode(ERRCODE_SYNTAX_ERROR),
					 errmsg("malformed order_by \"%s\"", order_by),
					 errdetail("It has an empty item."),
					 errhint("For example: timeRecordDate.desc,project.name")));
		/* "minutes desc" (SQL's way) is "minutes.desc" here */
		{
			const char *space = start;

			while (space < end && !is_space(*space))
				space++;
			if (space < end)
			{
				const char *word = space;

				while (word < end && is_space(*word))
					word++;
				ereport(ERROR,
						(errcode(ERRCODE_SYNTAX_ERROR),
						 errmsg("malformed order_by \"%s\"", order_by),
						 errdetail("\"%.*s\" holds white space.", (int) (end - start), start),
						 (pg_strncasecmp(word, "asc", end - word) == 0 || pg_strncasecmp(word, "desc", end - word) == 0) ?
						 errhint("Did you mean \"%.*s.%s\"?  Directions follow a dot: field.asc, field.desc.",
								 (int) (space - start), start,
								 pg_strncasecmp(word, "asc", end - word) == 0 ? "asc" : "desc") :
						 errhint("Items are field[.asc|.desc][.nullsfirst|.nullslast], separated by commas.")));
			}
		}
		segments = split_path(start, end - start, '.', &nsegments, "order_by", order_by);

		order = palloc0(sizeof(ShapeOrder));
		while (nsegments > 1)
		{
			char	   *last = segments[nsegments - 1];

			/* read from the end: an optional nulls option, then a direction */
			if (!direction_given && !nulls_given &&
				(strcmp(last, "nullsfirst") == 0 || strcmp(last, "nullslast") == 0))
			{
				order->nulls = (strcmp(last, "nullsfirst") == 0) ? NULLS_FIRST : NULLS_LAST;
				nulls_given = true;
			}
			else if (!direction_given && (strcmp(last, "asc") == 0 || strcmp(last, "desc") == 0))
			{
				order->descending = (strcmp(last, "desc") == 0);
				direction_given = true;
			}
			else
				break;
			nsegments--;
		}

		/* a field before the end of the path is a malformed item, not a relation */
		entity = shape->entity;
		for (int i = 0; i < nsegments - 1 && entity != NULL; i++)
		{
			MomentRelation *relation = entity_relation(entity, segments[i]);

			if (relation != NULL)
			{
				entity = relation_target(relation);
				continue;
			}
			if (entity_field(entity, segments[i]) != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_SYNTAX_ERROR),
						 errmsg("malformed order_by \"%s\"", order_by),
						 errdetail("After field \"%s\" comes \"%s\": expected asc, desc, nullsfirst or nullslast.",
								   segments[i], segments[i + 1])));
			break;
		}

		order->field = resolve_field(shape, segments, nsegments, false, "order_by", &order->join);
		shape->order = lappend(shape->order, order);

		if (*p == '\0')
			break;
		p++;
	}
}
