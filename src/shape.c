/*
 * shape.c: joins, columns and parameters of a request, and their canonical
 * order.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "lib/stringinfo.h"

#include "moment.h"
#include "shape.h"

RequestShape *
shape_create(MomentEntity *entity, int64 company_id)
{
	RequestShape *shape = palloc0(sizeof(RequestShape));
	ShapeJoin  *base = palloc0(sizeof(ShapeJoin));

	shape->entity = entity;
	base->index = 0;
	base->parent = -1;
	base->entity = entity;
	base->path = "";
	base->key_prefix = "";
	base->for_projection = base->for_filter = true;
	shape->joins = list_make1(base);

	shape->maxparams = 16;
	shape->param_types = palloc(sizeof(Oid) * shape->maxparams);
	shape->param_values = palloc(sizeof(Datum) * shape->maxparams);
	shape->param_nulls = palloc(sizeof(char) * shape->maxparams);
	shape_param(shape, INT8OID, Int64GetDatum(company_id), false);
	return shape;
}

/* Adds a parameter and returns its number ($n). */
int
shape_param(RequestShape *shape, Oid type, Datum value, bool isnull)
{
	if (shape->nparams == shape->maxparams)
	{
		shape->maxparams *= 2;
		shape->param_types = repalloc(shape->param_types, sizeof(Oid) * shape->maxparams);
		shape->param_values = repalloc(shape->param_values, sizeof(Datum) * shape->maxparams);
		shape->param_nulls = repalloc(shape->param_nulls, sizeof(char) * shape->maxparams);
	}
	if (shape->nparams >= 65535)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("request needs too many parameters")));
	shape->param_types[shape->nparams] = type;
	shape->param_values[shape->nparams] = value;
	shape->param_nulls[shape->nparams] = isnull ? 'n' : ' ';
	shape->nparams++;
	return shape->nparams;
}

ShapeJoin *
shape_join(RequestShape *shape, int index)
{
	return (ShapeJoin *) list_nth(shape->joins, index);
}

void
raise_unknown_name(MomentEntity *entity, const char *name, const char *kind,
				   const char *where, List *candidates)
{
	char	   *closest = closest_name(name, candidates);

	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_COLUMN),
			 errmsg("unknown %s \"%s\" of entity %s%s%s", kind, name, entity->name,
					where ? " in " : "", where ? where : ""),
			 closest ?
			 errhint("Did you mean \"%s\"?  Valid names: %s.", closest, name_list(candidates, 40)) :
			 errhint("Valid names: %s.", name_list(candidates, 40))));
}

static bool
is_name_start(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool
is_name_char(char c)
{
	return is_name_start(c) || (c >= '0' && c <= '9');
}

/*
 * Splits "project.customer.name" into its names.  Every name must be an
 * identifier; anything else (empty names, quotes, operators) is a syntax
 * error (42601) naming what was being parsed.
 */
char **
split_path(const char *text, int len, char separator, int *nsegments,
		   const char *what, const char *whole)
{
	int			count = 1;
	char	  **segments;
	int			n = 0;
	int			start = 0;

	for (int i = 0; i < len; i++)
		if (text[i] == separator)
			count++;
	segments = palloc(sizeof(char *) * count);
	for (int i = 0; i <= len; i++)
	{
		if (i == len || text[i] == separator)
		{
			int			seglen = i - start;
			bool		valid = seglen > 0 && is_name_start(text[start]);

			for (int k = start; valid && k < i; k++)
				valid = is_name_char(text[k]);
			if (!valid)
				ereport(ERROR,
						(errcode(ERRCODE_SYNTAX_ERROR),
						 errmsg("malformed %s \"%s\"", what, whole),
						 seglen == 0 ?
						 errdetail("\"%.*s\" has an empty name.", len, text) :
						 errdetail("\"%.*s\" is not a name: names are letters, digits and underscores.",
								   seglen, text + start)));
			segments[n++] = pnstrdup(text + start, seglen);
			start = i + 1;
		}
	}
	*nsegments = n;
	return segments;
}

static void
mark_used(RequestShape *shape, int index, bool for_filter)
{
	while (index >= 0)
	{
		ShapeJoin  *join = shape_join(shape, index);

		if (for_filter)
			join->for_filter = true;
		else
			join->for_projection = true;
		index = join->parent;
	}
}

/*
 * Follows nrelations relation names from a join and returns the join the
 * path ends at, adding joins as needed.
 */
int
shape_walk(RequestShape *shape, int from_join, char **segments, int nrelations,
		   bool for_filter, const char *what)
{
	int			current = from_join;

	if (shape_join(shape, from_join)->depth + nrelations > MOMENT_MAX_RELATION_DEPTH)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s goes more than %d relations deep", what, MOMENT_MAX_RELATION_DEPTH)));

	for (int i = 0; i < nrelations; i++)
	{
		ShapeJoin  *parent = shape_join(shape, current);
		MomentRelation *relation = entity_relation(parent->entity, segments[i]);
		ShapeJoin  *join = NULL;
		ListCell   *cell;

		if (relation == NULL)
		{
			List	   *names = NIL;

			if (entity_field(parent->entity, segments[i]) != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_COLUMN),
						 errmsg("\"%s\" is a field of entity %s, not a relation, in %s",
								segments[i], parent->entity->name, what)));
			foreach(cell, parent->entity->relations)
				names = lappend(names, ((MomentRelation *) lfirst(cell))->json_name);
			if (names == NIL)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_COLUMN),
						 errmsg("unknown relation \"%s\" of entity %s in %s",
								segments[i], parent->entity->name, what),
						 errhint("Entity %s has no relations.", parent->entity->name)));
			raise_unknown_name(parent->entity, segments[i], "relation", what, names);
		}

		foreach(cell, shape->joins)
		{
			ShapeJoin  *candidate = lfirst(cell);

			if (candidate->parent == current && candidate->relation == relation)
			{
				join = candidate;
				break;
			}
		}
		if (join == NULL)
		{
			join = palloc0(sizeof(ShapeJoin));
			join->index = list_length(shape->joins);
			join->parent = current;
			join->relation = relation;
			join->entity = relation_target(relation);
			join->depth = parent->depth + 1;
			join->path = parent->path[0] ? psprintf("%s.%s", parent->path, relation->json_name) :
				pstrdup(relation->json_name);
			join->key_prefix = camel_join(parent->key_prefix, relation->json_name);
			shape->joins = lappend(shape->joins, join);
		}
		current = join->index;
	}
	mark_used(shape, current, for_filter);
	return current;
}

/*
 * Two columns give the same value when they are the same column, or when
 * one is a relation's id and the other the foreign key it was joined on
 * (customer.id and customerId both give the key customerId).
 */
static bool
same_value(RequestShape *shape, ShapeColumn *a, int join, MomentField *field)
{
	ShapeJoin  *ja = shape_join(shape, a->join);
	ShapeJoin  *jb = shape_join(shape, join);

	if (a->join == join && a->field == field)
		return true;
	if (jb->relation != NULL && field == jb->entity->id_field &&
		jb->parent == a->join && jb->relation->fk_field == a->field)
		return true;
	if (ja->relation != NULL && a->field == ja->entity->id_field &&
		ja->parent == join && ja->relation->fk_field == field)
		return true;
	return false;
}

void
shape_add_column(RequestShape *shape, int join, MomentField *field)
{
	ShapeJoin  *owner = shape_join(shape, join);
	char	   *key = camel_join(owner->key_prefix, field->json_name);
	ShapeColumn *column;
	ListCell   *cell;

	foreach(cell, shape->columns)
	{
		ShapeColumn *existing = lfirst(cell);

		if (strcmp(existing->key, key) != 0)
			continue;
		if (same_value(shape, existing, join, field))
			return;
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("include spec gives two different values the key \"%s\"", key),
				 errdetail("Field %s%s%s and field %s%s%s both flatten to \"%s\".",
						   shape_join(shape, existing->join)->path,
						   shape_join(shape, existing->join)->path[0] ? "." : "",
						   existing->field->json_name,
						   owner->path, owner->path[0] ? "." : "", field->json_name, key)));
	}
	column = palloc(sizeof(ShapeColumn));
	column->key = key;
	column->join = join;
	column->field = field;
	shape->columns = lappend(shape->columns, column);
}

static int
compare_joins(const ListCell *a, const ListCell *b)
{
	return strcmp(((ShapeJoin *) lfirst(a))->path, ((ShapeJoin *) lfirst(b))->path);
}

static int
compare_columns(const ListCell *a, const ListCell *b)
{
	return strcmp(((ShapeColumn *) lfirst(a))->key, ((ShapeColumn *) lfirst(b))->key);
}

/*
 * Puts joins in path order (a parent always sorts before its children) and
 * columns in key order, so that the statement text depends only on what was
 * asked for, not on the order it was asked in.
 */
void
shape_finalize(RequestShape *shape)
{
	int			njoins = list_length(shape->joins);
	int		   *remap = palloc(sizeof(int) * njoins);
	ListCell   *cell;
	int			i = 0;

	if (shape->finalized)
		return;
	list_sort(shape->joins, compare_joins);
	foreach(cell, shape->joins)
		remap[((ShapeJoin *) lfirst(cell))->index] = i++;
	foreach(cell, shape->joins)
	{
		ShapeJoin  *join = lfirst(cell);

		join->index = remap[join->index];
		if (join->parent >= 0)
			join->parent = remap[join->parent];
	}
	foreach(cell, shape->columns)
		((ShapeColumn *) lfirst(cell))->join = remap[((ShapeColumn *) lfirst(cell))->join];
	foreach(cell, shape->conditions)
		((ShapeCondition *) lfirst(cell))->join = remap[((ShapeCondition *) lfirst(cell))->join];
	foreach(cell, shape->order)
		((ShapeOrder *) lfirst(cell))->join = remap[((ShapeOrder *) lfirst(cell))->join];
	list_sort(shape->columns, compare_columns);
	shape->finalized = true;
}
