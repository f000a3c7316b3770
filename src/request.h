/*
 * request.h: the SQL-callable operations as C functions, so that the
 * router (api.c) and batch.c call exactly what get/list/create/... call.
 */
#ifndef MOMENT_REQUEST_H
#define MOMENT_REQUEST_H

#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/jsonb.h"

#include "registry.h"
#include "shape.h"

typedef struct ListRequest
{
	const char *entity;
	const char *include;
	Jsonb	   *filter;
	const char *order_by;
	bool		has_page;
	int32		page;
	bool		has_size;
	int32		size;
	bool		no_limit;
} ListRequest;

/* read.c */
extern Jsonb *request_get(const char *entity_name, int64 id, const char *include);
extern Jsonb *request_list(ListRequest *request);
extern int	listing_cap(bool no_limit);
extern RequestShape *listing_prepare(MomentEntity *entity, const char *include, Jsonb *filter,
									 const char *order_by, int kind, const char **sql_out,
									 bool *with_metadata);
/* which cap a listing was under, for the hint when rows are cut */
typedef enum CapKind
{
	CAP_DEFAULT,				/* without no_limit */
	CAP_NO_LIMIT,				/* with no_limit */
	CAP_REPORT					/* a report: no no_limit to pass */
} CapKind;

extern void stream_listing(FunctionCallInfo fcinfo, RequestShape *shape, const char *sql, int cap,
						   CapKind cap_kind, bool whole_rows, bool pin);
extern void report_cut(int cap, CapKind cap_kind);
extern void push_listing_start(JsonbParseState **state, Datum *objects, int nobjects, bool exceeded);
extern int	pin_search_path(bool pin);
extern void unpin_search_path(int nest_level);

/* describe.c */
extern const char *type_json_type(Oid base_type, const char **format);
extern const char *field_json_type(MomentField *field, const char **format);
extern void require_company_or_admin(void);

/* write.c */
typedef struct BodyValue
{
	MomentField *field;
	JsonbValue	value;
} BodyValue;

extern BodyValue *body_parse(MomentEntity *entity, Jsonb *body, int *nvalues, const char *what);
extern Jsonb *execute_for_object(const char *sql, int nargs, Oid *argtypes, Datum *values,
								 char *nulls, bool read_only, bool pin, MemoryContext result_context);
extern char *create_sql(MomentEntity *entity, BodyValue *values, int nvalues, const char *projection);
extern char *update_sql(MomentEntity *entity, BodyValue *values, int nvalues, const char *projection);
extern void update_set_clause(StringInfo sql, MomentEntity *entity, BodyValue *values, int nvalues,
							  bool from_unnest);
extern char *delete_sql(MomentEntity *entity);
extern Jsonb *request_create(const char *entity_name, Jsonb *body, const char *include);
extern Jsonb *request_update(const char *entity_name, int64 id, Jsonb *body, const char *include);
extern int64 request_delete(const char *entity_name, int64 id);
extern Jsonb *update_one(MomentEntity *entity, int64 company_id, int64 id, BodyValue *values,
						 int nvalues, const char *projection, bool pin, const char *label,
						 MemoryContext result_context);
extern void delete_one(MomentEntity *entity, int64 company_id, int64 id, const char *label);
extern RequestShape *write_projection(MomentEntity *entity, int64 company_id, const char *include);
typedef struct WriteProjection
{
	char	   *object;			/* the object expression over t */
	char	   *from;			/* " FROM t t LEFT JOIN ..." */
	char	   *sql;			/* "SELECT <object> FROM t t ..." */
	bool		with_metadata;	/* run with search_path pinned */
} WriteProjection;

extern void write_projection_sql(MomentEntity *entity, int64 company_id, const char *include,
								 WriteProjection *out);
extern void raise_not_found(MomentEntity *entity, int64 id, const char *label);

/* report.c */
typedef struct ReportColumn
{
	const char *key;			/* the JSON key of the column in a REST report row */
	Oid			type;
	bool		nullable;
} ReportColumn;

#define REPORT_DEFAULT_GROUP_BY "project,userAccount"

extern const ReportColumn *report_columns(const char *action, int *ncolumns);
extern const char *const *report_group_by_names(int *nnames);
extern Jsonb *report_request(const char *action, const char *from_date, const char *to_date,
							 const char *group_by, Jsonb *filter, bool no_limit);

/* api.c */
extern List *api_error_types(int status);

/* openapi.c */
extern Jsonb *openapi_document(const char *server_url);

/* batch.c */
extern Jsonb *request_batch(const char *entity_name, Jsonb *instructions, const char *include);

#endif							/* MOMENT_REQUEST_H */
