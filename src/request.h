/*
 * request.h: the SQL-callable operations as C functions, so that the
 * router (api.c) and batch.c call exactly what get/list/create/... call.
 */
#ifndef MOMENT_REQUEST_H
#define MOMENT_REQUEST_H

#include "postgres.h"

#include "executor/spi.h"
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

/* write.c */
typedef struct BodyValue
{
	MomentField *field;
	JsonbValue	value;
} BodyValue;

extern BodyValue *body_parse(MomentEntity *entity, Jsonb *body, int *nvalues, const char *what);
extern char *projection_sql(RequestShape *projection);
extern Jsonb *execute_for_object(const char *sql, int nargs, Oid *argtypes, Datum *values,
								 char *nulls, bool read_only, MemoryContext result_context);
extern char *create_sql(MomentEntity *entity, BodyValue *values, int nvalues, const char *projection);
extern char *update_sql(MomentEntity *entity, BodyValue *values, int nvalues, const char *projection);
extern void update_set_clause(StringInfo sql, MomentEntity *entity, BodyValue *values, int nvalues,
							  bool from_unnest);
extern char *delete_sql(MomentEntity *entity);
extern Jsonb *request_create(const char *entity_name, Jsonb *body, const char *include);
extern Jsonb *request_update(const char *entity_name, int64 id, Jsonb *body, const char *include);
extern int64 request_delete(const char *entity_name, int64 id);
extern Jsonb *update_one(MomentEntity *entity, int64 company_id, int64 id, BodyValue *values,
						 int nvalues, const char *projection, const char *label,
						 MemoryContext result_context);
extern void delete_one(MomentEntity *entity, int64 company_id, int64 id, const char *label);
extern RequestShape *write_projection(MomentEntity *entity, int64 company_id, const char *include);
extern char *write_projection_sql(MomentEntity *entity, int64 company_id, const char *include);

/* batch.c */
extern Jsonb *request_batch(const char *entity_name, Jsonb *instructions, const char *include);

#endif							/* MOMENT_REQUEST_H */
