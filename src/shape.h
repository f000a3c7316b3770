/*
 * shape.h: the shape of one request, between parsing and SQL.
 *
 * A RequestShape holds everything the generated statement depends on: the
 * entity, the joins (one per relation path, shared by include, filter and
 * order), the output columns, metadata sets, conditions and order, and the
 * statement's parameters.  After shape_finalize its joins and columns are
 * in a canonical order, so equal shapes give equal statement text.
 */
#ifndef MOMENT_SHAPE_H
#define MOMENT_SHAPE_H

#include "postgres.h"

#include "registry.h"
#include "utils/jsonb.h"

typedef struct ShapeJoin
{
	int			index;			/* alias: t for 0, j<index> otherwise */
	int			parent;			/* index of the join it hangs off */
	MomentRelation *relation;	/* NULL for the base */
	MomentEntity *entity;
	char	   *path;			/* "project.customer"; "" for the base */
	char	   *key_prefix;		/* "projectCustomer"; "" for the base */
	int			depth;
	bool		for_projection;
	bool		for_filter;		/* filters and order need it in every query */
} ShapeJoin;

typedef struct ShapeColumn
{
	char	   *key;			/* the output JSON key */
	int			join;
	MomentField *field;
} ShapeColumn;

typedef enum ConditionOp
{
	COND_EQ,
	COND_NEQ,
	COND_LT,
	COND_LTE,
	COND_GT,
	COND_GTE,
	COND_IN,
	COND_LIKE,
	COND_ILIKE,
	COND_IS_NULL,
	COND_IS_NOT_NULL
} ConditionOp;

typedef struct ShapeCondition
{
	int			join;
	MomentField *field;
	ConditionOp op;
	int			param;			/* $n, 0 for IS [NOT] NULL */
} ShapeCondition;

typedef enum NullsOrder
{
	NULLS_DEFAULT,
	NULLS_FIRST,
	NULLS_LAST
} NullsOrder;

typedef struct ShapeOrder
{
	int			join;
	MomentField *field;
	bool		descending;
	NullsOrder	nulls;
} ShapeOrder;

typedef struct RequestShape
{
	MomentEntity *entity;
	List	   *joins;			/* ShapeJoin *; the base is first */
	List	   *columns;		/* ShapeColumn * */
	List	   *metadata_sets;	/* MomentMetadataSet * */
	List	   *conditions;		/* ShapeCondition * */
	List	   *order;			/* ShapeOrder * */
	bool		finalized;

	int			nparams;
	int			maxparams;
	Oid		   *param_types;
	Datum	   *param_values;
	char	   *param_nulls;	/* ' ' or 'n', as SPI wants them */
} RequestShape;

/* shape.c */
extern RequestShape *shape_create(MomentEntity *entity, int64 company_id);
extern int	shape_param(RequestShape *shape, Oid type, Datum value, bool isnull);
extern ShapeJoin *shape_join(RequestShape *shape, int index);
extern int	shape_walk(RequestShape *shape, int from_join, char **segments, int nrelations,
					   bool for_filter, const char *what);
extern char **split_path(const char *text, int len, char separator, int *nsegments,
						 const char *what, const char *whole);
extern void shape_add_column(RequestShape *shape, int join, MomentField *field);
extern void shape_finalize(RequestShape *shape);
extern void raise_unknown_name(MomentEntity *entity, const char *name, const char *kind,
							   const char *where, List *candidates);

/* include.c */
extern void include_parse(RequestShape *shape, const char *spec);
extern void include_all_fields(RequestShape *shape);

/* filter.c */
extern void filter_parse(RequestShape *shape, Jsonb *filter);
extern void order_parse(RequestShape *shape, const char *order_by);
extern Datum field_input(MomentField *field, JsonbValue *value, bool for_write, bool *isnull);
extern const char *field_operator(MomentField *field, ConditionOp op);
extern Datum iso_date_input(const char *text, const char *what);

/* query.c */
extern void query_object(StringInfo buf, RequestShape *shape, bool with_metadata);
extern void query_metadata_object(StringInfo buf, RequestShape *shape);
extern void query_from(StringInfo buf, RequestShape *shape, const char *base_source,
					   bool filter_joins_only);
extern void query_where(StringInfo buf, RequestShape *shape);
extern void query_order(StringInfo buf, RequestShape *shape);

#endif							/* MOMENT_SHAPE_H */
