/*
 * include.c: include spec -> output columns, joins and metadata sets.
 *
 *   base+currencyCode+customer.name+project.customer.base+metadata.overviewPage
 *
 * Items are joined by '+' or ','; white space around an item is ignored, and
 * white space between two names separates them (a URL's '+' is a space).
 * An item is a field or part of the entity, a relation path ending in a
 * field or part of the related entity, or metadata.NAME.  Every name is
 * looked up in the registry; nothing unknown is dropped silently.
 */
#include "postgres.h"

#include "miscadmin.h"

#include "moment.h"
#include "shape.h"

/* parts may name other parts; this bounds a cycle in the catalog */
#define MAX_PART_NESTING 8

static void resolve_item(RequestShape *shape, int join, const char *item, int len,
						 const char *spec, int nesting, const char *in_part);

static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static void
add_metadata_set(RequestShape *shape, MomentMetadataSet *set)
{
	if (!list_member_ptr(shape->metadata_sets, set))
		shape->metadata_sets = lappend(shape->metadata_sets, set);
}

static void
expand_part(RequestShape *shape, int join, MomentPart *part, const char *spec, int nesting)
{
	ShapeJoin  *owner = shape_join(shape, join);
	ListCell   *cell;

	if (nesting >= MAX_PART_NESTING)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("part \"%s\" of entity %s nests parts more than %d deep",
						part->name, owner->entity->name, MAX_PART_NESTING)));
	/* a related object's part brings its id along: customer.base gives customerId */
	if (join != 0)
		shape_add_column(shape, join, owner->entity->id_field);
	if (part->all_fields)
	{
		for (int i = 0; i < owner->entity->nfields; i++)
			shape_add_column(shape, join, &owner->entity->fields[i]);
		/* the default part: and the name of every related object that has one */
		if (part->with_relation_names && nesting < MAX_PART_NESTING - 1)
		{
			foreach(cell, owner->entity->relations)
			{
				MomentRelation *relation = lfirst(cell);
				MomentEntity *target;

				if (!entity_try_ensure(relation->target))
					continue;
				target = relation->target;
				if (target->name_field != NULL && owner->depth < MOMENT_MAX_RELATION_DEPTH)
				{
					char	   *segments[1] = {relation->json_name};
					int			related = shape_walk(shape, join, segments, 1, false, "part default");

					shape_add_column(shape, related, target->name_field);
				}
			}
		}
		return;
	}
	foreach(cell, part->items)
	{
		const char *item = lfirst(cell);

		resolve_item(shape, join, item, strlen(item), spec, nesting + 1,
					 psprintf("part %s", part->name));
	}
}

static void
resolve_item(RequestShape *shape, int join, const char *item, int len,
			 const char *spec, int nesting, const char *in_part)
{
	int			nsegments;
	/* an item of a part is blamed on the part, not on the caller's spec */
	const char *what = in_part ? in_part : "include spec";
	char	  **segments = split_path(item, len, '.', &nsegments, what, in_part ? item : spec);
	ShapeJoin  *target;
	char	   *last;
	MomentField *field;
	MomentPart *part;
	char	   *where;

	if (strcmp(segments[0], "metadata") == 0 &&
		entity_relation(shape_join(shape, join)->entity, "metadata") == NULL)
	{
		MomentEntity *entity = shape_join(shape, join)->entity;
		MomentMetadataSet *set;
		List	   *names = NIL;
		ListCell   *cell;

		foreach(cell, entity->metadata_sets)
			names = lappend(names, ((MomentMetadataSet *) lfirst(cell))->name);
		if (join != 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("metadata can only be requested for entity %s itself, not through relation %s",
							shape->entity->name, shape_join(shape, join)->path)));
		if (nsegments != 2)
			ereport(ERROR,
					(errcode(ERRCODE_SYNTAX_ERROR),
					 errmsg("malformed include spec \"%s\"", spec),
					 errdetail("Metadata is requested as metadata.NAME; \"%.*s\" is not.", len, item),
					 errhint("Metadata sets of %s: %s.", entity->name, name_list(names, 40))));
		set = entity_metadata_set(entity, segments[1]);
		if (set == NULL)
			raise_unknown_name(entity, segments[1], "metadata set", what, names);
		add_metadata_set(shape, set);
		return;
	}

	join = shape_walk(shape, join, segments, nsegments - 1, false, what);
	target = shape_join(shape, join);
	last = segments[nsegments - 1];

	field = entity_field(target->entity, last);
	if (field != NULL)
	{
		shape_add_column(shape, join, field);
		return;
	}
	part = entity_part(target->entity, last);
	if (part != NULL)
	{
		expand_part(shape, join, part, spec, nesting);
		return;
	}
	where = target->path[0] ? psprintf("%s (through %s)", what, target->path) : (char *) what;
	raise_unknown_name(target->entity, last, "field or part", where,
					   entity_item_names(target->entity));
}

/*
 * Parses an include spec into the shape.  NULL or blank means base.  The id
 * is always returned.
 */
void
include_parse(RequestShape *shape, const char *spec)
{
	size_t		spec_len = spec ? strlen(spec) : 0;
	const char *p;
	bool		blank = true;

	if (spec_len > MOMENT_MAX_SPEC_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("include spec is %zu bytes long, more than the %d allowed",
						spec_len, MOMENT_MAX_SPEC_BYTES)));
	shape_add_column(shape, 0, shape->entity->id_field);

	for (size_t i = 0; i < spec_len; i++)
		if (!is_space(spec[i]))
			blank = false;
	if (blank)
	{
		MomentPart *base = entity_part(shape->entity, "base");

		if (base != NULL)
			expand_part(shape, 0, base, "base", 0);
		return;
	}
	CHECK_FOR_INTERRUPTS();

	p = spec;
	for (;;)
	{
		const char *start = p;
		const char *end;
		const char *word;

		CHECK_FOR_INTERRUPTS();

		while (*p && *p != '+' && *p != ',')
			p++;
		end = p;
		while (start < end && is_space(*start))
			start++;
		while (end > start && is_space(end[-1]))
			end--;
		if (start == end)
			ereport(ERROR,
					(errcode(ERRCODE_SYNTAX_ERROR),
					 errmsg("malformed include spec \"%s\"", spec),
					 errdetail("The spec has an empty item."),
					 errhint("Items are joined by + or ,: base+customer.name")));

		/*
		 * White space inside an item separates items too: in a URL query
		 * string (PostgREST's GET /rpc/get?include=base+currencyCode) a '+'
		 * arrives as a space.
		 */
		word = start;
		while (word < end)
		{
			const char *word_end = word;

			while (word_end < end && !is_space(*word_end))
				word_end++;
			resolve_item(shape, 0, word, word_end - word, spec, 0, NULL);
			word = word_end;
			while (word < end && is_space(*word))
				word++;
		}
		if (*p == '\0')
			break;
		p++;
	}
}

/* Every field of the entity itself, as a projection: for typed listings. */
void
include_all_fields(RequestShape *shape)
{
	for (int i = 0; i < shape->entity->nfields; i++)
		shape_add_column(shape, 0, &shape->entity->fields[i]);
}
