/*
 * report.c: hours_report and project_registered_hours (section 12), and
 * their REST paths timeRecords/getReport and
 * projects/projectRegisteredHoursReport.
 *
 * Each report is one GROUP BY statement over the time records of the
 * company in force, dated from..to, filtered like a time record listing
 * (the filter goes through the same shape, so its joins, operators and
 * parameters are the listing's), under the listing cap.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"

#include "moment.h"
#include "plancache.h"
#include "request.h"
#include "shape.h"
#include "tenant.h"

typedef enum ReportKind
{
	REPORT_HOURS,
	REPORT_PROJECT_HOURS
} ReportKind;

typedef enum Period
{
	PERIOD_NONE,
	PERIOD_DAY,
	PERIOD_WEEK,
	PERIOD_MONTH
} Period;

typedef struct ReportGrouping
{
	Period		period;
	bool		project;
	bool		project_extension;
	bool		user_account;
	bool		customer;
} ReportGrouping;

/* The dimensions of group_by, in the order of GroupByDimension */
typedef enum GroupByDimension
{
	DIMENSION_PROJECT,
	DIMENSION_PROJECT_EXTENSION,
	DIMENSION_USER_ACCOUNT,
	DIMENSION_CUSTOMER,
	DIMENSION_DAY,
	DIMENSION_WEEK,
	DIMENSION_MONTH
} GroupByDimension;

static const char *const group_by_names[] = {
	"project", "projectExtension", "userAccount", "customer", "day", "week", "month"
};

#define GROUP_BY_NAMES "project, projectExtension, userAccount, customer, and one of day, week, month"

/* The names group_by takes (openapi.c lists them). */
const char *const *
report_group_by_names(int *nnames)
{
	*nnames = lengthof(group_by_names);
	return group_by_names;
}

static ReportGrouping
parse_group_by(const char *group_by)
{
	ReportGrouping grouping = {0};
	const char *p = group_by ? group_by : "";

	while (*p)
	{
		const char *start;
		const char *end;
		char	   *name;
		Period		period = PERIOD_NONE;
		int			dimension = -1;

		CHECK_FOR_INTERRUPTS();
		while (*p == ' ' || *p == ',')
			p++;
		if (*p == '\0')
			break;
		start = p;
		while (*p && *p != ',')
			p++;
		end = p;
		while (end > start && end[-1] == ' ')
			end--;
		name = pnstrdup(start, end - start);
		for (int i = 0; i < lengthof(group_by_names); i++)
			if (strcmp(name, group_by_names[i]) == 0)
				dimension = i;
		switch (dimension)
		{
			case DIMENSION_PROJECT:
				grouping.project = true;
				break;
			case DIMENSION_PROJECT_EXTENSION:
				grouping.project_extension = true;
				break;
			case DIMENSION_USER_ACCOUNT:
				grouping.user_account = true;
				break;
			case DIMENSION_CUSTOMER:
				grouping.customer = true;
				break;
			case DIMENSION_DAY:
				period = PERIOD_DAY;
				break;
			case DIMENSION_WEEK:
				period = PERIOD_WEEK;
				break;
			case DIMENSION_MONTH:
				period = PERIOD_MONTH;
				break;
			default:
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("group_by \"%s\": unknown dimension \"%s\"", group_by, name),
						 errhint("group_by is a comma list of " GROUP_BY_NAMES ".")));
		}
		if (period != PERIOD_NONE)
		{
			if (grouping.period != PERIOD_NONE && grouping.period != period)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("group_by \"%s\" names more than one of day, week and month", group_by)));
			grouping.period = period;
		}
	}
	return grouping;
}

/* $1 company, $2 limit, $3 from, $4 to, then the filter's values. */
static RequestShape *
report_shape(Datum from_date, Datum to_date, Jsonb *filter)
{
	MomentEntity *entity = registry_entity("timeRecords");
	CompanyInForce company = tenant_company(false);
	RequestShape *shape = shape_create(entity, company.id);

	shape_param(shape, INT8OID, Int64GetDatum(0), false);
	shape_param(shape, DATEOID, from_date, false);
	shape_param(shape, DATEOID, to_date, false);
	filter_parse(shape, filter);
	shape_finalize(shape);
	if (DatumGetDateADT(from_date) > DatumGetDateADT(to_date))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("from_date %s is after to_date %s",
						DatumGetCString(DirectFunctionCall1(date_out, from_date)),
						DatumGetCString(DirectFunctionCall1(date_out, to_date)))));
	return shape;
}

/* FROM time records t, the filter's joins, the report's own joins, WHERE ... */
static void
report_from_where(StringInfo sql, RequestShape *shape, bool projects, bool extensions, bool users,
				  bool customers)
{
	query_from(sql, shape, NULL, true);
	if (projects || customers)
		appendStringInfoString(sql, " LEFT JOIN moment.projects rp ON rp.company_id OPERATOR(pg_catalog.=) $1"
							   " AND rp.id OPERATOR(pg_catalog.=) t.project_id");
	if (extensions)
		appendStringInfoString(sql, " LEFT JOIN moment.project_extensions re ON re.company_id OPERATOR(pg_catalog.=) $1"
							   " AND re.id OPERATOR(pg_catalog.=) t.project_extension_id");
	if (users)
		appendStringInfoString(sql, " LEFT JOIN moment.user_accounts ru ON ru.company_id OPERATOR(pg_catalog.=) $1"
							   " AND ru.id OPERATOR(pg_catalog.=) t.user_account_id");
	if (customers)
		appendStringInfoString(sql, " LEFT JOIN moment.customers rc ON rc.company_id OPERATOR(pg_catalog.=) $1"
							   " AND rc.id OPERATOR(pg_catalog.=) rp.customer_id");
	query_where(sql, shape);
	appendStringInfoString(sql, " AND t.time_record_date OPERATOR(pg_catalog.>=) $3"
						   " AND t.time_record_date OPERATOR(pg_catalog.<=) $4");
}

static char *
hours_sql(RequestShape *shape, ReportGrouping *grouping)
{
	StringInfoData sql;
	const char *period;
	List	   *groups = NIL;
	ListCell   *cell;
	bool		first = true;

	switch (grouping->period)
	{
		case PERIOD_DAY:
			period = "t.time_record_date";
			break;
		case PERIOD_WEEK:
			period = "CAST(pg_catalog.date_trunc('week', CAST(t.time_record_date AS pg_catalog.timestamp)) AS pg_catalog.date)";
			break;
		case PERIOD_MONTH:
			period = "CAST(pg_catalog.date_trunc('month', CAST(t.time_record_date AS pg_catalog.timestamp)) AS pg_catalog.date)";
			break;
		default:
			period = NULL;
	}
	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT %s", period ? period : "CAST(NULL AS pg_catalog.date)");
	if (period)
		groups = lappend(groups, "1");
	if (grouping->project)
	{
		appendStringInfoString(&sql, ", t.project_id, rp.project_number, rp.name");
		groups = lappend(groups, "2");
		groups = lappend(groups, "3");
		groups = lappend(groups, "4");
	}
	else
		appendStringInfoString(&sql, ", CAST(NULL AS pg_catalog.int8), CAST(NULL AS pg_catalog.text), CAST(NULL AS pg_catalog.text)");
	if (grouping->project_extension)
	{
		appendStringInfoString(&sql, ", t.project_extension_id, re.name");
		groups = lappend(groups, "5");
		groups = lappend(groups, "6");
	}
	else
		appendStringInfoString(&sql, ", CAST(NULL AS pg_catalog.int8), CAST(NULL AS pg_catalog.text)");
	if (grouping->user_account)
	{
		appendStringInfoString(&sql, ", t.user_account_id, ru.name");
		groups = lappend(groups, "7");
		groups = lappend(groups, "8");
	}
	else
		appendStringInfoString(&sql, ", CAST(NULL AS pg_catalog.int8), CAST(NULL AS pg_catalog.text)");
	if (grouping->customer)
	{
		appendStringInfoString(&sql, ", rp.customer_id, rc.name");
		groups = lappend(groups, "9");
		groups = lappend(groups, "10");
	}
	else
		appendStringInfoString(&sql, ", CAST(NULL AS pg_catalog.int8), CAST(NULL AS pg_catalog.text)");
	appendStringInfoString(&sql, ", pg_catalog.count(*)"
						   ", coalesce(pg_catalog.sum(t.minutes), 0)"
						   ", coalesce(pg_catalog.sum(t.minutes) FILTER (WHERE t.billable), 0)"
						   ", coalesce(pg_catalog.sum(t.minutes) FILTER (WHERE t.approved), 0)");
	report_from_where(&sql, shape, grouping->project, grouping->project_extension, grouping->user_account,
					  grouping->customer);
	if (groups != NIL)
	{
		appendStringInfoString(&sql, " GROUP BY ");
		foreach(cell, groups)
		{
			appendStringInfo(&sql, "%s%s", first ? "" : ", ", (char *) lfirst(cell));
			first = false;
		}
		appendStringInfoString(&sql, " ORDER BY ");
		first = true;
		foreach(cell, groups)
		{
			appendStringInfo(&sql, "%s%s", first ? "" : ", ", (char *) lfirst(cell));
			first = false;
		}
	}
	appendStringInfoString(&sql, " LIMIT $2");
	return sql.data;
}

static char *
project_hours_sql(RequestShape *shape)
{
	StringInfoData sql;

	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT t.project_id, rp.project_number, rp.name, rp.customer_id, rc.name"
						   ", pg_catalog.count(*)"
						   ", coalesce(pg_catalog.sum(t.minutes), 0)"
						   ", coalesce(pg_catalog.sum(t.minutes) FILTER (WHERE t.billable), 0)"
						   ", pg_catalog.min(t.time_record_date), pg_catalog.max(t.time_record_date)");
	report_from_where(&sql, shape, true, false, false, true);
	appendStringInfoString(&sql, " GROUP BY 1, 2, 3, 4, 5 ORDER BY 1 LIMIT $2");
	return sql.data;
}

static Datum
date_arg(FunctionCallInfo fcinfo, int n, const char *name)
{
	if (PG_ARGISNULL(n))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be null", name)));
	return PG_GETARG_DATUM(n);
}

PG_FUNCTION_INFO_V1(moment_hours_report);
Datum
moment_hours_report(PG_FUNCTION_ARGS)
{
	API_ENTRY_BEGIN
	{
		ReportGrouping grouping = parse_group_by(PG_ARGISNULL(2) ? "" : text_to_cstring(PG_GETARG_TEXT_PP(2)));
		RequestShape *shape = report_shape(date_arg(fcinfo, 0, "from_date"), date_arg(fcinfo, 1, "to_date"),
										   PG_ARGISNULL(3) ? NULL : PG_GETARG_JSONB_P(3));

		stream_listing(fcinfo, shape, hours_sql(shape, &grouping), listing_cap(false), CAP_REPORT, false, false);
	}
	API_ENTRY_END;
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(moment_project_registered_hours);
Datum
moment_project_registered_hours(PG_FUNCTION_ARGS)
{
	API_ENTRY_BEGIN
	{
		RequestShape *shape = report_shape(date_arg(fcinfo, 0, "from_date"), date_arg(fcinfo, 1, "to_date"),
										   PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P(2));

		stream_listing(fcinfo, shape, project_hours_sql(shape), listing_cap(false), CAP_REPORT, false, false);
	}
	API_ENTRY_END;
	return (Datum) 0;
}

/*
 * The JSON keys of a report's columns, in column order, with the type and
 * nullability of their values (openapi.c documents the rows from these).
 */
static const ReportColumn hours_columns[] = {
	{"period", DATEOID, true},
	{"projectId", INT8OID, true},
	{"projectNumber", TEXTOID, true},
	{"projectName", TEXTOID, true},
	{"projectExtensionId", INT8OID, true},
	{"projectExtensionName", TEXTOID, true},
	{"userAccountId", INT8OID, true},
	{"userAccountName", TEXTOID, true},
	{"customerId", INT8OID, true},
	{"customerName", TEXTOID, true},
	{"records", INT8OID, false},
	{"minutes", INT8OID, false},
	{"billableMinutes", INT8OID, false},
	{"approvedMinutes", INT8OID, false}
};
static const ReportColumn project_hours_columns[] = {
	{"projectId", INT8OID, false},
	{"projectNumber", TEXTOID, true},
	{"projectName", TEXTOID, false},
	{"customerId", INT8OID, false},
	{"customerName", TEXTOID, false},
	{"records", INT8OID, false},
	{"minutes", INT8OID, false},
	{"billableMinutes", INT8OID, false},
	{"firstDate", DATEOID, false},
	{"lastDate", DATEOID, false}
};

/* The columns of the REST form of a report ("getReport" or "projectRegisteredHoursReport"). */
const ReportColumn *
report_columns(const char *action, int *ncolumns)
{
	if (strcmp(action, "getReport") == 0)
	{
		*ncolumns = lengthof(hours_columns);
		return hours_columns;
	}
	*ncolumns = lengthof(project_hours_columns);
	return project_hours_columns;
}

/*
 * The REST form of a report: {"content": [...], "limitWasExceeded": b},
 * one object per row, keyed like the API's fields.
 */
Jsonb *
report_request(const char *action, const char *from_date, const char *to_date, const char *group_by,
			   Jsonb *filter, bool no_limit)
{
	bool		hours = strcmp(action, "getReport") == 0;
	ReportGrouping grouping = parse_group_by(group_by ? group_by : REPORT_DEFAULT_GROUP_BY);
	RequestShape *shape = report_shape(iso_date_input(from_date, "fromDate"),
									   iso_date_input(to_date, "toDate"), filter);
	int			nkeys;
	const ReportColumn *columns = report_columns(action, &nkeys);
	int			cap = listing_cap(no_limit);
	StringInfoData sql;
	KeptPlan   *plan;
	MemoryContext caller = CurrentMemoryContext;
	JsonbParseState *state = NULL;
	Datum		content;
	bool		isnull;
	Datum	   *objects = NULL;
	int			nobjects = 0;
	bool		exceeded = false;
	Jsonb	   *result;

	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT ARRAY(SELECT pg_catalog.jsonb_build_object(");
	for (int i = 0; i < nkeys; i++)
		appendStringInfo(&sql, "%s'%s', r.c%d", i > 0 ? ", " : "", columns[i].key, i + 1);
	appendStringInfo(&sql, ") FROM (%s) r(", hours ? hours_sql(shape, &grouping) : project_hours_sql(shape));
	for (int i = 0; i < nkeys; i++)
		appendStringInfo(&sql, "%sc%d", i > 0 ? ", " : "", i + 1);
	appendStringInfoString(&sql, "))");
	shape->param_values[1] = Int64GetDatum((int64) cap + 1);

	spi_check(SPI_connect(), "SPI_connect");
	plan = plancache_get_with_options(sql.data, shape->nparams, shape->param_types, CURSOR_OPT_CUSTOM_PLAN, NULL);
	spi_check(kept_plan_execute(plan, shape->param_values, shape->param_nulls, true, 1), "report");
	content = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull)
		deconstruct_array(DatumGetArrayTypeP(content), JSONBOID, -1, false, TYPALIGN_INT,
						  &objects, NULL, &nobjects);
	MemoryContextSwitchTo(caller);
	if (nobjects > cap)
	{
		exceeded = true;
		nobjects = cap;
	}
	push_listing_start(&state, objects, nobjects, exceeded);
	result = JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_OBJECT, NULL));
	SPI_finish();
	return result;
}
