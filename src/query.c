/*
 * query.c: SQL text from a request shape.
 *
 * Only registry identifiers (quoted) and fixed keywords are written; every
 * value is a $n parameter.  Functions are schema-qualified so a caller's
 * search_path cannot redirect them.
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "utils/builtins.h"

#include "moment.h"
#include "shape.h"

/* jsonb_build_object takes at most 100 arguments: 50 pairs */
#define PAIRS_PER_CALL 48

static void
append_alias(StringInfo buf, int join)
{
	if (join == 0)
		appendStringInfoChar(buf, 't');
	else
		appendStringInfo(buf, "j%d", join);
}

static void
append_column(StringInfo buf, int join, MomentField *field)
{
	append_alias(buf, join);
	appendStringInfoChar(buf, '.');
	appendStringInfoString(buf, field->quoted_column);
}

/* The metadata aggregates as one jsonb object; keys of several sets merge. */
void
query_metadata_object(StringInfo buf, RequestShape *shape)
{
	List	   *keys = NIL;
	ListCell   *set_cell;
	int			pairs = 0;

	appendStringInfoString(buf, "pg_catalog.jsonb_build_object(");
	foreach(set_cell, shape->metadata_sets)
	{
		MomentMetadataSet *set = lfirst(set_cell);
		ListCell   *cell;

		foreach(cell, set->aggregates)
		{
			MomentAggregate *aggregate = lfirst(cell);
			ListCell   *kcell;
			bool		seen = false;

			foreach(kcell, keys)
				if (strcmp((char *) lfirst(kcell), aggregate->key) == 0)
					seen = true;
			if (seen)
				continue;
			keys = lappend(keys, aggregate->key);
			if (pairs > 0 && pairs % PAIRS_PER_CALL == 0)
				appendStringInfoString(buf, ") OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(");
			else if (pairs > 0)
				appendStringInfoString(buf, ", ");
			appendStringInfo(buf, "%s, (%s)", quote_literal_cstr(aggregate->key), aggregate->expression);
			pairs++;
		}
	}
	appendStringInfoChar(buf, ')');
}

/*
 * The object expression: jsonb_build_object('id', t."id", 'customerName',
 * j1."name", ...).  With metadata, a single object's metadata aggregates
 * that object alone.
 */
void
query_object(StringInfo buf, RequestShape *shape, bool with_metadata)
{
	ListCell   *cell;
	int			pairs = 0;

	appendStringInfoString(buf, "pg_catalog.jsonb_build_object(");
	foreach(cell, shape->columns)
	{
		ShapeColumn *column = lfirst(cell);

		if (pairs > 0 && pairs % PAIRS_PER_CALL == 0)
			appendStringInfoString(buf, ") OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(");
		else if (pairs > 0)
			appendStringInfoString(buf, ", ");
		appendStringInfo(buf, "%s, ", quote_literal_cstr(column->key));
		append_column(buf, column->join, column->field);
		pairs++;
	}
	if (with_metadata && shape->metadata_sets != NIL)
	{
		if (pairs > 0 && pairs % PAIRS_PER_CALL == 0)
			appendStringInfoString(buf, ") OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(");
		else if (pairs > 0)
			appendStringInfoString(buf, ", ");
		appendStringInfoString(buf, "'metadata', (SELECT ");
		query_metadata_object(buf, shape);
		appendStringInfoString(buf, " FROM (SELECT t.*) t)");
	}
	appendStringInfoChar(buf, ')');
}

/*
 * FROM the base (a table, or a CTE named t) and a LEFT JOIN per relation
 * path on (company_id, id), the company bound as $1.  filter_joins_only
 * leaves out joins only the projection needs (for counts and aggregates).
 */
void
query_from(StringInfo buf, RequestShape *shape, const char *base_source,
		   bool filter_joins_only)
{
	ListCell   *cell;

	appendStringInfo(buf, " FROM %s t", base_source ? base_source : shape->entity->qualified_table);
	foreach(cell, shape->joins)
	{
		ShapeJoin  *join = lfirst(cell);

		if (join->index == 0)
			continue;
		if (filter_joins_only && !join->for_filter)
			continue;
		appendStringInfo(buf, " LEFT JOIN %s j%d ON j%d.company_id OPERATOR(pg_catalog.=) $1 AND j%d.%s OPERATOR(pg_catalog.=) ",
						 join->entity->qualified_table, join->index, join->index, join->index,
						 join->entity->id_field->quoted_column);
		append_column(buf, join->parent, join->relation->fk_field);
	}
}

/* WHERE t.company_id = $1 AND the filter's conditions, every operator qualified. */
void
query_where(StringInfo buf, RequestShape *shape)
{
	ListCell   *cell;

	appendStringInfoString(buf, " WHERE t.company_id OPERATOR(pg_catalog.=) $1");
	foreach(cell, shape->conditions)
	{
		ShapeCondition *condition = lfirst(cell);

		appendStringInfoString(buf, " AND ");
		switch (condition->op)
		{
			case COND_IS_NULL:
				append_column(buf, condition->join, condition->field);
				appendStringInfoString(buf, " IS NULL");
				break;
			case COND_IS_NOT_NULL:
				append_column(buf, condition->join, condition->field);
				appendStringInfoString(buf, " IS NOT NULL");
				break;
			case COND_LIKE:
			case COND_ILIKE:
				appendStringInfoString(buf, "CAST(");
				append_column(buf, condition->join, condition->field);
				appendStringInfo(buf, " AS pg_catalog.text) %s $%d",
								 field_operator(condition->field, condition->op), condition->param);
				break;
			case COND_IN:
				append_column(buf, condition->join, condition->field);
				appendStringInfo(buf, " %s ANY ($%d)",
								 field_operator(condition->field, condition->op), condition->param);
				break;
			default:
				append_column(buf, condition->join, condition->field);
				appendStringInfo(buf, " %s $%d",
								 field_operator(condition->field, condition->op), condition->param);
				break;
		}
	}
}

/* ORDER BY the requested keys, then t.id so that paging is stable. */
void
query_order(StringInfo buf, RequestShape *shape)
{
	ListCell   *cell;
	bool		has_id = false;

	appendStringInfoString(buf, " ORDER BY ");
	foreach(cell, shape->order)
	{
		ShapeOrder *order = lfirst(cell);

		append_column(buf, order->join, order->field);
		if (order->descending)
			appendStringInfoString(buf, " DESC");
		if (order->nulls == NULLS_FIRST)
			appendStringInfoString(buf, " NULLS FIRST");
		else if (order->nulls == NULLS_LAST)
			appendStringInfoString(buf, " NULLS LAST");
		appendStringInfoString(buf, ", ");
		if (order->join == 0 && order->field == shape->entity->id_field)
		{
			has_id = true;
			break;				/* nothing after a unique key changes the order */
		}
	}
	if (!has_id)
		appendStringInfo(buf, "t.%s", shape->entity->id_field->quoted_column);
	else
		buf->len -= 2, buf->data[buf->len] = '\0';
}
