/*
 * api.c: Moment's REST paths answered from SQL.
 *
 *   api('GET', '/api/1.0/companies/cloudware/offers/include/base+currencyCode?noLimit=true')
 *
 * The router parses the method, path and query string and calls the same C
 * functions as get/list/create/update/delete/batch.  It runs the request in
 * a subtransaction: an error becomes an HTTP status and an error body, and
 * whatever the request had written is rolled back.  Only a cancel (query
 * cancel, statement_timeout) is raised again, so that it stops the caller's
 * statement as it would any other.
 */
#include "postgres.h"

#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"

#include "moment.h"
#include "request.h"
#include "shared.h"

/*
 * The status of a routing error (unknown path, bad query parameter, method
 * not allowed), raised as an ordinary error and read back in the catch
 * block; 0 when the error came from the request itself.
 */
static int	route_status = 0;

typedef struct QueryCondition
{
	char	   *key;
	List	   *operators;		/* char * operator names */
	List	   *values;			/* char * values */
} QueryCondition;

typedef struct Route
{
	char	   *method;
	char	   *company;		/* from /api/1.0/companies/{code}, or NULL */
	char	   *entity;
	bool		has_id;
	int64		id;
	bool		is_batch;
	char	   *include;
	/* query string */
	bool		no_limit;
	bool		has_page;
	int32		page;
	bool		has_size;
	int32		size;
	StringInfo	sort;
	List	   *conditions;		/* QueryCondition * */
	bool		has_query;
	char	   *group_by;		/* reports */
	char	   *from_date;
	char	   *to_date;
	char	   *action;			/* getReport, projectRegisteredHoursReport, openapi.json */
} Route;

static void
route_error(int status, const char *message, const char *detail)
{
	route_status = status;
	ereport(ERROR,
			(errcode(status == 404 ? ERRCODE_UNDEFINED_OBJECT : ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s", message),
			 detail ? errdetail("%s", detail) : 0));
}


/* Percent-decoding; in a query string '+' is a space. */
static char *
percent_decode(const char *text, int len, bool plus_is_space)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < len; i++)
	{
		if (text[i] == '%')
		{
			int			high = (i + 1 < len) ? hex_value(text[i + 1]) : -1;
			int			low = (i + 2 < len) ? hex_value(text[i + 2]) : -1;

			if (high < 0 || low < 0)
				route_error(400, "malformed percent-encoding in the path",
							psprintf("\"%.*s\" is not a valid %%XX escape.",
									 pg_mbcharcliplen(text + i, len - i, 3), text + i));
			if (high == 0 && low == 0)
				route_error(400, "the path holds a NUL character (%00)", NULL);
			appendStringInfoChar(&buf, (char) (high * 16 + low));
			i += 2;
		}
		else if (text[i] == '+' && plus_is_space)
			appendStringInfoChar(&buf, ' ');
		else
			appendStringInfoChar(&buf, text[i]);
	}
	if (!pg_verifymbstr(buf.data, buf.len, true))
		route_error(400, "the path is not valid text in the database encoding", NULL);
	return buf.data;
}

static bool
parse_int64(const char *text, int64 *value)
{
	char	   *end;

	errno = 0;
	if (*text == '\0')
		return false;
	*value = strtoi64(text, &end, 10);
	return errno == 0 && *end == '\0';
}

static int32
query_int(const char *key, const char *value)
{
	int64		n;

	if (!parse_int64(value, &n) || n < PG_INT32_MIN || n > PG_INT32_MAX)
		route_error(400, psprintf("query parameter %s must be an integer, not \"%s\"", key, value), NULL);
	return (int32) n;
}

static void
add_query_condition(Route *route, const char *key, const char *op, const char *value)
{
	ListCell   *cell;
	QueryCondition *condition = NULL;

	foreach(cell, route->conditions)
		if (strcmp(((QueryCondition *) lfirst(cell))->key, key) == 0)
			condition = lfirst(cell);
	if (condition == NULL)
	{
		condition = palloc0(sizeof(QueryCondition));
		condition->key = pstrdup(key);
		route->conditions = lappend(route->conditions, condition);
	}
	condition->operators = lappend(condition->operators, pstrdup(op));
	condition->values = lappend(condition->values, pstrdup(value));
}

/* Spring's sort=field[,field...][,asc|desc] -> PostgREST's field.desc,... */
static void
add_sort(Route *route, const char *value)
{
	List	   *fields = NIL;
	const char *direction = NULL;
	char	   *copy = pstrdup(value);
	char	   *token;
	char	   *saveptr = NULL;
	ListCell   *cell;

	for (token = strtok_r(copy, ",", &saveptr); token; token = strtok_r(NULL, ",", &saveptr))
	{
		while (*token == ' ')
			token++;
		if (pg_strcasecmp(token, "asc") == 0 || pg_strcasecmp(token, "desc") == 0)
			direction = pg_strcasecmp(token, "desc") == 0 ? "desc" : "asc";
		else
			fields = lappend(fields, token);
	}
	if (fields == NIL)
		route_error(400, psprintf("sort \"%s\" names no field", value),
					"Sort is field[,asc|desc], for example sort=timeRecordDate,desc.");
	foreach(cell, fields)
	{
		char	   *field = lfirst(cell);

		if (route->sort->len > 0)
			appendStringInfoChar(route->sort, ',');
		/* "-name" means descending, as many REST APIs write it */
		if (field[0] == '-')
			appendStringInfo(route->sort, "%s.desc", field + 1);
		else if (direction)
			appendStringInfo(route->sort, "%s.%s", field, direction);
		else
			appendStringInfoString(route->sort, field);
	}
}

static void
parse_query(Route *route, const char *query)
{
	const char *p = query;

	while (*p)
	{
		const char *start = p;
		const char *eq;
		char	   *key;
		char	   *value;

		while (*p && *p != '&')
			p++;
		if (p > start)
		{
			eq = memchr(start, '=', p - start);
			key = percent_decode(start, (eq ? eq : p) - start, true);
			value = eq ? percent_decode(eq + 1, p - eq - 1, true) : pstrdup("");
			route->has_query = true;

			if (strcmp(key, "noLimit") == 0)
			{
				if (value[0] == '\0' || strcmp(value, "true") == 0)
					route->no_limit = true;
				else if (strcmp(value, "false") == 0)
					route->no_limit = false;
				else
					route_error(400, psprintf("noLimit must be true or false, not \"%s\"", value), NULL);
			}
			else if (strcmp(key, "page") == 0)
			{
				route->has_page = true;
				route->page = query_int(key, value);
			}
			else if (strcmp(key, "size") == 0)
			{
				route->has_size = true;
				route->size = query_int(key, value);
			}
			else if (strcmp(key, "sort") == 0)
				add_sort(route, value);
			else if (strcmp(key, "fromDate") == 0 || strcmp(key, "toDate") == 0)
			{
				if (strcmp(key, "fromDate") == 0)
					route->from_date = value;
				else
					route->to_date = value;
				add_query_condition(route, strcmp(key, "fromDate") == 0 ? "\001fromDate" : "\001toDate",
									strcmp(key, "fromDate") == 0 ? "gte" : "lte", value);
			}
			else if (key[0] == '\0')
				route_error(400, "the query string has a parameter without a name", NULL);
			else if (strcmp(key, "groupBy") == 0)
				route->group_by = value;
			else
			{
				/*
				 * A field: a comma in the raw value separates values (IN), an
				 * encoded one (%2C) is part of a value; "ids" names the id.
				 */
				const char *raw = eq ? eq + 1 : p;
				const char *piece = raw;

				if (strcmp(key, "ids") == 0)
					key = "id";
				for (const char *q = raw;; q++)
				{
					if (q == p || *q == ',')
					{
						add_query_condition(route, key, "eq", percent_decode(piece, q - piece, true));
						piece = q + 1;
						if (q == p)
							break;
					}
				}
			}
		}
		if (*p == '&')
			p++;
	}
}

/*
 * The filter document of the query string's conditions.  fromDate and
 * toDate become gte/lte on the entity's date field; a field given several
 * times means any of the values.
 */
static Jsonb *
query_filter(Route *route, MomentEntity *entity)
{
	JsonbParseState *state = NULL;
	List	   *merged = NIL;
	ListCell   *cell;

	if (route->conditions == NIL)
		return NULL;

	/* move fromDate/toDate onto the date field's own conditions */
	foreach(cell, route->conditions)
	{
		QueryCondition *condition = lfirst(cell);

		if (condition->key[0] == '\001')
		{
			if (entity == NULL)
				continue;		/* a report's own fromDate/toDate: not a filter */
			if (entity->date_field == NULL)
				route_error(400, psprintf("entity %s has no date field for %s", entity->name, condition->key + 1),
							"fromDate and toDate filter on an entity's date field (moment.entities.date_field).");
			condition->key = entity->date_field->json_name;
		}
	}
	foreach(cell, route->conditions)
	{
		QueryCondition *condition = lfirst(cell);
		QueryCondition *target = NULL;
		ListCell   *mcell;

		if (condition->key[0] == '\001')
			continue;

		foreach(mcell, merged)
			if (strcmp(((QueryCondition *) lfirst(mcell))->key, condition->key) == 0)
				target = lfirst(mcell);
		if (target == NULL)
			merged = lappend(merged, condition);
		else
		{
			target->operators = list_concat(target->operators, condition->operators);
			target->values = list_concat(target->values, condition->values);
		}
	}

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	foreach(cell, merged)
	{
		QueryCondition *condition = lfirst(cell);
		List	   *equals = NIL;
		ListCell   *ocell;
		ListCell   *vcell;

		jb_key(&state, condition->key);
		pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
		forboth(ocell, condition->operators, vcell, condition->values)
		{
			if (strcmp(lfirst(ocell), "eq") == 0)
				equals = lappend(equals, lfirst(vcell));
			else
			{
				jb_key(&state, lfirst(ocell));
				jb_string(&state, lfirst(vcell), WJB_VALUE);
			}
		}
		if (list_length(equals) == 1)
		{
			jb_key(&state, "eq");
			jb_string(&state, linitial(equals), WJB_VALUE);
		}
		else if (equals != NIL)
		{
			jb_key(&state, "in");
			pushJsonbValue(&state, WJB_BEGIN_ARRAY, NULL);
			foreach(vcell, equals)
				jb_string(&state, lfirst(vcell), WJB_ELEM);
			pushJsonbValue(&state, WJB_END_ARRAY, NULL);
		}
		pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	}
	return JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_OBJECT, NULL));
}

static Route *
parse_route(const char *method, const char *path)
{
	Route	   *route = palloc0(sizeof(Route));
	const char *query;
	const char *fragment;
	int			path_len;
	List	   *segments = NIL;
	const char *p;
	int			n;
	int			i = 0;

	route->sort = makeStringInfo();
	if (method == NULL || method[0] == '\0')
		route_error(405, "method must be GET, POST, PUT, PATCH or DELETE", NULL);
	route->method = pstrdup(method);
	for (char *m = route->method; *m; m++)
		*m = pg_toupper((unsigned char) *m);
	if (path == NULL)
		route_error(404, "no path", NULL);

	fragment = strchr(path, '#');
	query = strchr(path, '?');
	if (fragment && query && fragment < query)
		query = NULL;
	path_len = query ? query - path : fragment ? fragment - path : strlen(path);
	if (query)
	{
		char	   *query_text = fragment && fragment > query ?
			pnstrdup(query + 1, fragment - query - 1) : pstrdup(query + 1);

		parse_query(route, query_text);
	}

	p = path;
	while (p < path + path_len)
	{
		const char *start = p;

		while (p < path + path_len && *p != '/')
			p++;
		if (p > start)
			segments = lappend(segments, percent_decode(start, p - start, false));
		if (p < path + path_len)
			p++;
	}
	n = list_length(segments);

	if (n >= 1 && strcmp(list_nth(segments, 0), "api") == 0)
	{
		if (n < 4 || strcmp(list_nth(segments, 1), "1.0") != 0 ||
			strcmp(list_nth(segments, 2), "companies") != 0)
			route_error(404, "unknown path", "Paths are /api/1.0/companies/{companyCode}/{entity}/...");
		route->company = list_nth(segments, 3);
		i = 4;
	}
	if (i >= n)
		route_error(404, "unknown path", "The path names no entity.");
	route->entity = list_nth(segments, i++);
	if (strcmp(route->entity, "openapi.json") == 0)
	{
		if (i < n)
			route_error(404, "unknown path", psprintf("Nothing is routed at \"%s\".", (char *) list_nth(segments, i)));
		route->action = "openapi.json";
		return route;
	}

	if (i < n && (strcmp(list_nth(segments, i), "getReport") == 0 ||
				  strcmp(list_nth(segments, i), "projectRegisteredHoursReport") == 0))
	{
		route->action = list_nth(segments, i);
		if ((strcmp(route->action, "getReport") == 0) != (strcmp(route->entity, "timeRecords") == 0) ||
			(strcmp(route->action, "projectRegisteredHoursReport") == 0) != (strcmp(route->entity, "projects") == 0))
			route_error(404, "unknown path",
						"Reports are GET /timeRecords/getReport and GET /projects/projectRegisteredHoursReport.");
		if (i + 1 < n)
			route_error(404, "unknown path", psprintf("Nothing is routed at \"%s\".", (char *) list_nth(segments, i + 1)));
		return route;
	}

	if (i < n && strcmp(list_nth(segments, i), "batch") == 0)
	{
		route->is_batch = true;
		i++;
	}
	else if (i < n && strcmp(list_nth(segments, i), "include") != 0)
	{
		if (!parse_int64(list_nth(segments, i), &route->id))
			route_error(400, psprintf("\"%s\" is not an id", (char *) list_nth(segments, i)),
						"Ids are integers.");
		route->has_id = true;
		i++;
	}
	if (i < n && strcmp(list_nth(segments, i), "include") == 0)
	{
		if (i + 1 >= n)
			route_error(400, "include names no fields", "For example /offers/include/base+currencyCode.");
		route->include = list_nth(segments, i + 1);
		i += 2;
	}
	if (i < n)
		route_error(404, "unknown path",
					psprintf("Nothing is routed at \"%s\".", (char *) list_nth(segments, i)));
	return route;
}

static void
method_not_allowed(Route *route, const char *allowed)
{
	route_error(405, psprintf("method %s is not allowed here", route->method),
				psprintf("Allowed: %s.", allowed));
}

static void
no_query(Route *route)
{
	if (route->has_query)
		route_error(400, "this path takes no query parameters",
					"Query parameters (noLimit, page, size, sort, fromDate, toDate, fields) apply to listings.");
}

/* Runs the route; returns the status and sets *response. */
static int
dispatch(Route *route, Jsonb *body, Jsonb **response)
{
	bool		get = strcmp(route->method, "GET") == 0;
	bool		post = strcmp(route->method, "POST") == 0;
	bool		put = strcmp(route->method, "PUT") == 0 || strcmp(route->method, "PATCH") == 0;
	bool		delete = strcmp(route->method, "DELETE") == 0;

	if (!get && !post && !put && !delete)
		route_error(405, psprintf("method %s is not supported", route->method),
					"Methods: GET, POST, PUT, PATCH, DELETE.");
	/* a path without /include/ returns the entity's default representation */
	if (route->include == NULL && !delete)
		route->include = "default";

	if (route->action != NULL)
	{
		if (!get)
			method_not_allowed(route, "GET");
		if (strcmp(route->action, "openapi.json") == 0)
		{
			no_query(route);
			*response = openapi_document(NULL);
			return 200;
		}
		if (route->has_page || route->has_size || route->sort->len > 0)
			route_error(400, "reports take no page, size or sort", "Reports take fromDate, toDate, groupBy, noLimit and time record fields.");
		if (route->group_by != NULL && strcmp(route->action, "getReport") != 0)
			route_error(400, "groupBy applies to timeRecords/getReport only", NULL);
		if (route->from_date == NULL || route->to_date == NULL)
			route_error(400, "a report needs fromDate and toDate", "For example ?fromDate=2024-03-01&toDate=2024-03-31.");
		*response = report_request(route->action, route->from_date, route->to_date, route->group_by,
								   query_filter(route, NULL), route->no_limit);
		return 200;
	}

	if (route->is_batch)
	{
		if (!post)
			method_not_allowed(route, "POST");
		no_query(route);
		*response = request_batch(route->entity, body, route->include);
		return 200;
	}
	if (route->has_id)
	{
		if (get)
		{
			no_query(route);
			*response = request_get(route->entity, route->id, route->include);
			if (*response == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_NO_DATA_FOUND),
						 errmsg("%s " INT64_FORMAT " does not exist", registry_entity(route->entity)->singular, route->id),
						 errdetail("No %s with that id belongs to the company in force.",
								   registry_entity(route->entity)->singular)));
			return 200;
		}
		if (put)
		{
			no_query(route);
			*response = request_update(route->entity, route->id, body, route->include);
			return 200;
		}
		if (delete)
		{
			JsonbParseState *state = NULL;

			no_query(route);
			if (route->include)
				route_error(400, "DELETE returns only the id: it takes no include", NULL);
			request_delete(route->entity, route->id);
			pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
			jb_key(&state, "id");
			jb_int64(&state, route->id, WJB_VALUE);
			*response = JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_OBJECT, NULL));
			return 200;
		}
		method_not_allowed(route, "GET, PUT, PATCH, DELETE");
	}
	if (get)
	{
		ListRequest request = {0};
		MomentEntity *entity = registry_entity(route->entity);

		request.entity = route->entity;
		request.include = route->include;
		request.filter = query_filter(route, entity);
		request.order_by = route->sort->len > 0 ? route->sort->data : NULL;
		request.has_page = route->has_page;
		request.page = route->page;
		request.has_size = route->has_size;
		request.size = route->size;
		request.no_limit = route->no_limit;
		*response = request_list(&request);
		return 200;
	}
	if (post)
	{
		no_query(route);
		*response = request_create(route->entity, body, route->include);
		return 201;
	}
	method_not_allowed(route, "GET, POST");
	return 0;					/* not reached */
}

typedef struct ErrorMapping
{
	int			sqlstate;		/* a SQLSTATE, or a class for class_mappings */
	int			status;
	const char *type;
} ErrorMapping;

static const ErrorMapping sqlstate_mappings[] = {
	{ERRCODE_UNDEFINED_TABLE, 404, "unknown_entity"},
	{ERRCODE_NO_DATA_FOUND, 404, "not_found"},
	{ERRCODE_INSUFFICIENT_PRIVILEGE, 403, "forbidden"},
	{ERRCODE_UNDEFINED_COLUMN, 400, "unknown_field"},
	{ERRCODE_SYNTAX_ERROR, 400, "malformed_request"},
	{ERRCODE_INVALID_PARAMETER_VALUE, 400, "invalid_value"},
	{ERRCODE_GENERATED_ALWAYS, 400, "read_only_field"},
	{ERRCODE_PROGRAM_LIMIT_EXCEEDED, 400, "too_large"},
	{ERRCODE_UNIQUE_VIOLATION, 409, "conflict"},
	{ERRCODE_EXCLUSION_VIOLATION, 409, "conflict"},
	{ERRCODE_LOCK_NOT_AVAILABLE, 409, "conflict"},
	{ERRCODE_NOT_NULL_VIOLATION, 422, "not_null_violation"},
	{ERRCODE_CHECK_VIOLATION, 422, "check_violation"},
	{ERRCODE_READ_ONLY_SQL_TRANSACTION, 405, "read_only_transaction"},
	{ERRCODE_RAISE_EXCEPTION, 400, "rejected"},	/* a trigger's RAISE EXCEPTION */
	{ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, 500, "entity_unusable"},
	/* sharding: a company being moved, a shard out of reach (moment_router) */
	{ERRCODE_OBJECT_IN_USE, 503, "retry"},
	{ERRCODE_CONNECTION_FAILURE, 503, "unavailable"},
	{ERRCODE_TRANSACTION_RESOLUTION_UNKNOWN, 503, "unavailable"},
};

/* deleting a row still referenced is a conflict; pointing at a missing row is invalid */
static const ErrorMapping foreign_key_mappings[] = {
	{ERRCODE_FOREIGN_KEY_VIOLATION, 409, "foreign_key_violation"},	/* DELETE */
	{ERRCODE_FOREIGN_KEY_VIOLATION, 422, "foreign_key_violation"},	/* any other method */
};

/* the rest of a class, by the class's first SQLSTATE */
static const ErrorMapping class_mappings[] = {
	{ERRCODE_DATA_EXCEPTION, 400, "invalid_input"},
	{ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION, 422, "constraint_violation"},
	{ERRCODE_SYNTAX_ERROR_OR_ACCESS_RULE_VIOLATION, 400, "bad_request"},
};

/* routing errors (route_error), by status, and whatever else */
static const ErrorMapping route_mappings[] = {
	{0, 404, "not_found"},
	{0, 405, "method_not_allowed"},
	{0, 400, "bad_request"},
};
static const ErrorMapping fallback_mapping = {0, 500, "internal_error"};

static int
status_for(ErrorData *edata, const char *method, const char **type)
{
	int			category = ERRCODE_TO_CATEGORY(edata->sqlerrcode);
	const ErrorMapping *mapping = &fallback_mapping;

	if (edata->sqlerrcode == ERRCODE_FOREIGN_KEY_VIOLATION)
		mapping = &foreign_key_mappings[strcmp(method, "DELETE") == 0 ? 0 : 1];
	else
	{
		bool		found = false;

		for (int i = 0; i < lengthof(sqlstate_mappings) && !found; i++)
			if (sqlstate_mappings[i].sqlstate == edata->sqlerrcode)
			{
				mapping = &sqlstate_mappings[i];
				found = true;
			}
		for (int i = 0; i < lengthof(class_mappings) && !found; i++)
			if (ERRCODE_TO_CATEGORY(class_mappings[i].sqlstate) == category)
			{
				mapping = &class_mappings[i];
				found = true;
			}
	}
	*type = mapping->type;
	return mapping->status;
}

static const char *
route_error_type(int status)
{
	for (int i = 0; i < lengthof(route_mappings); i++)
		if (route_mappings[i].status == status)
			return route_mappings[i].type;
	return "bad_request";
}

static void
add_error_type(List **types, const ErrorMapping *mappings, int nmappings, int status)
{
	for (int i = 0; i < nmappings; i++)
	{
		bool		seen = false;
		ListCell   *cell;

		if (mappings[i].status != status)
			continue;
		foreach(cell, *types)
			if (strcmp(lfirst(cell), mappings[i].type) == 0)
				seen = true;
		if (!seen)
			*types = lappend(*types, (char *) mappings[i].type);
	}
}

/*
 * Every error_type that api answers with the given status (char *),
 * from the tables status_for and error_response use: openapi.c documents
 * them.
 */
List *
api_error_types(int status)
{
	List	   *types = NIL;

	add_error_type(&types, sqlstate_mappings, lengthof(sqlstate_mappings), status);
	add_error_type(&types, foreign_key_mappings, lengthof(foreign_key_mappings), status);
	add_error_type(&types, class_mappings, lengthof(class_mappings), status);
	add_error_type(&types, route_mappings, lengthof(route_mappings), status);
	add_error_type(&types, &fallback_mapping, 1, status);
	return types;
}

static Jsonb *
error_response(ErrorData *edata, int *status, const char *method)
{
	JsonbParseState *state = NULL;
	const char *type;

	if (route_status != 0)
	{
		*status = route_status;
		type = route_error_type(route_status);
	}
	else
		*status = status_for(edata, method ? method : "", &type);

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	jb_key(&state, "error");
	jb_string(&state, edata->message ? edata->message : "error", WJB_VALUE);
	jb_key(&state, "error_type");
	jb_string(&state, type, WJB_VALUE);
	jb_key(&state, "details");
	pushJsonbValue(&state, WJB_BEGIN_ARRAY, NULL);
	if (edata->detail)
		jb_string(&state, edata->detail, WJB_ELEM);
	if (edata->hint)
		jb_string(&state, edata->hint, WJB_ELEM);
	jb_string(&state, psprintf("SQLSTATE %s", unpack_sql_state(edata->sqlerrcode)), WJB_ELEM);
	pushJsonbValue(&state, WJB_END_ARRAY, NULL);
	return JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_OBJECT, NULL));
}

typedef struct ApiRequest
{
	const char *method;
	const char *path;
	Jsonb	   *body;
	int			status;
	Jsonb	   *response;
} ApiRequest;

/* Routes and runs the request, with the path's company in force for it alone. */
static bool
api_work(void *arg)
{
	ApiRequest *request = arg;
	Route	   *route = parse_route(request->method, request->path);
	int			nest_level = NewGUCNestLevel();

	if (route->company != NULL)
		(void) set_config_option("moment.company", route->company, PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	request->status = dispatch(route, request->body, &request->response);
	AtEOXact_GUC(true, nest_level);
	return true;
}

PG_FUNCTION_INFO_V1(moment_api);
Datum
moment_api(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ApiRequest	request = {0};
	ErrorData  *error;
	Datum		values[2];
	bool		nulls[2] = {false, false};

	request.method = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	request.path = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	request.body = PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P(2);
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	route_status = 0;

	/* cancels, deadlocks, lack of memory, ... go on as errors (error_must_propagate) */
	error = run_in_subtransaction(api_work, &request);
	if (error != NULL)
	{
		translate_error(error);
		request.response = error_response(error, &request.status, request.method);
		route_status = 0;
	}

	/* PostgREST answers /rpc/api with this status */
	(void) set_config_option("response.status", psprintf("%d", request.status),
							 superuser() ? PGC_SUSET : PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_LOCAL, true, 0, false);

	values[0] = Int32GetDatum(request.status);
	values[1] = JsonbPGetDatum(request.response);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}
