/*
 * registry.c: the per-backend copy of the entity registry.
 *
 * The copy lives in its own memory context under CacheMemoryContext.  A
 * relcache invalidation of a catalog table (sent at commit by the
 * moment.catalog_changed trigger) or of a registered table (any DDL on it)
 * marks the copy stale; the next request rebuilds it.  A stale copy is not
 * freed at once, because a request in progress (or one that called a
 * trigger that called moment again) may still hold pointers into it: its
 * context is retired and deleted at the end of the transaction.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "parser/parse_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/relcache.h"

#include "moment.h"
#include "registry.h"

static MemoryContext registry_context = NULL;
static List *retired_contexts = NIL;	/* in TopMemoryContext */
static List *registry = NIL;	/* MomentEntity *, in registry_context */
static bool registry_valid = false;
static uint64 generation = 1;
static uint64 invalidations = 0;
static int64 builds = 0;

/* Relations whose invalidation makes the copy stale (TopMemoryContext). */
static Oid *watched = NULL;
static int	nwatched = 0;

int64
registry_builds(void)
{
	return builds;
}

uint64
registry_generation(void)
{
	return generation;
}

void
registry_invalidate(void)
{
	registry_valid = false;
	generation++;
	invalidations++;
}

bool
registry_watches(Oid relid)
{
	for (int i = 0; i < nwatched; i++)
		if (watched[i] == relid)
			return true;
	return false;
}

/* Called at the end of every top-level transaction. */
void
registry_release_retired(void)
{
	ListCell   *cell;

	foreach(cell, retired_contexts)
		MemoryContextDelete((MemoryContext) lfirst(cell));
	list_free(retired_contexts);
	retired_contexts = NIL;
}

static void
set_watched(List *relids)
{
	Oid		   *fresh;
	int			n = 0;
	ListCell   *cell;

	fresh = MemoryContextAlloc(TopMemoryContext, sizeof(Oid) * Max(1, list_length(relids)));
	foreach(cell, relids)
		fresh[n++] = lfirst_oid(cell);
	if (watched != NULL)
		pfree(watched);
	watched = fresh;
	nwatched = n;
}

static List *
catalog_relids(void)
{
	static const char *const catalog_tables[] = {
		"entities", "parts", "metadata", "companies", "company_grants"
	};
	List	   *relids = NIL;
	Oid			nsp = moment_namespace();

	for (int i = 0; i < lengthof(catalog_tables); i++)
	{
		Oid			relid = get_relname_relid(catalog_tables[i], nsp);

		if (OidIsValid(relid))
			relids = lappend_oid(relids, relid);
	}
	return relids;
}

/* Make sure invalidations of the catalog tables reach us even before the
 * registry has been built once (the tenant cache depends on them too). */
void
registry_watch_catalog(void)
{
	if (nwatched == 0)
		set_watched(catalog_relids());
}

static void
load_fields(MomentEntity *entity, Relation rel)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	int			n = 0;

	entity->fields = palloc0(sizeof(MomentField) * tupdesc->natts);
	for (int i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(tupdesc, i);
		MomentField *field;
		Oid			input_function;
		char		category;
		bool		preferred;

		if (attr->attisdropped)
			entity->has_dropped_columns = true;
		if (attr->attisdropped || attr->attnum <= 0)
			continue;
		if (strcmp(NameStr(attr->attname), "company_id") == 0)
			continue;

		field = &entity->fields[n++];
		field->column_name = pstrdup(NameStr(attr->attname));
		field->json_name = camel_case(field->column_name);
		field->quoted_column = pstrdup(quote_identifier(field->column_name));
		field->attnum = attr->attnum;
		field->type_oid = attr->atttypid;
		field->typmod = attr->atttypmod;
		field->array_type_oid = get_array_type(attr->atttypid);
		get_type_category_preferred(getBaseType(attr->atttypid), &category, &preferred);
		field->type_category = category;
		field->is_json = (getBaseType(attr->atttypid) == JSONBOID ||
						  getBaseType(attr->atttypid) == JSONOID);
		field->not_null = attr->attnotnull;
		field->writable = (attr->attgenerated == '\0' &&
						   attr->attidentity != ATTRIBUTE_IDENTITY_ALWAYS &&
						   strcmp(field->column_name, "id") != 0);
		getTypeInputInfo(attr->atttypid, &input_function, &field->typioparam);
		fmgr_info_cxt(input_function, &field->input, CurrentMemoryContext);
	}
	entity->nfields = n;
	for (int i = 0; i < n; i++)
	{
		if (strcmp(entity->fields[i].column_name, "id") == 0)
			entity->id_field = &entity->fields[i];
		else if (strcmp(entity->fields[i].column_name, "updated_at") == 0)
			entity->updated_at_field = &entity->fields[i];
	}
}

static MomentField *
field_by_attnum(MomentEntity *entity, AttrNumber attnum)
{
	for (int i = 0; i < entity->nfields; i++)
		if (entity->fields[i].attnum == attnum)
			return &entity->fields[i];
	return NULL;
}

/*
 * Relations: foreign keys of exactly (company_id, x_id) referencing
 * (company_id, id) of another table.  The target is resolved to an entity
 * once every entity is loaded.
 */
static void
load_relations(MomentEntity *entity, Relation rel)
{
	List	   *fkeys = RelationGetFKeyList(rel);
	ListCell   *cell;
	AttrNumber	company_attnum = get_attnum(entity->relid, "company_id");

	foreach(cell, fkeys)
	{
		ForeignKeyCacheInfo *fk = lfirst(cell);
		int			company_pos;
		MomentField *fk_field;
		MomentRelation *relation;
		size_t		len;
		char	   *base;

		if (fk->nkeys != 2)
			continue;
		company_pos = (fk->conkey[0] == company_attnum) ? 0 :
			(fk->conkey[1] == company_attnum) ? 1 : -1;
		if (company_pos < 0)
			continue;
		if (fk->confkey[company_pos] != get_attnum(fk->confrelid, "company_id") ||
			fk->confkey[1 - company_pos] != get_attnum(fk->confrelid, "id"))
			continue;
		fk_field = field_by_attnum(entity, fk->conkey[1 - company_pos]);
		if (fk_field == NULL)
			continue;
		len = strlen(fk_field->column_name);
		if (len <= 3 || strcmp(fk_field->column_name + len - 3, "_id") != 0)
			continue;
		base = pnstrdup(fk_field->column_name, len - 3);

		relation = palloc0(sizeof(MomentRelation));
		relation->json_name = camel_case(base);
		relation->fk_field = fk_field;
		relation->target_relid = fk->confrelid;
		entity->relations = lappend(entity->relations, relation);
	}
}

static MomentEntity *
entity_by_relid(List *entities, Oid relid)
{
	ListCell   *cell;

	foreach(cell, entities)
	{
		MomentEntity *entity = lfirst(cell);

		if (entity->relid == relid)
			return entity;
	}
	return NULL;
}

static MomentEntity *
entity_by_name(List *entities, const char *name)
{
	ListCell   *cell;

	foreach(cell, entities)
	{
		MomentEntity *entity = lfirst(cell);

		if (strcmp(entity->name, name) == 0)
			return entity;
	}
	return NULL;
}

static char *
spi_text(HeapTuple tuple, int column)
{
	char	   *value = SPI_getvalue(tuple, SPI_tuptable->tupdesc, column);

	return value ? pstrdup(value) : NULL;
}

/*
 * Reads the registry into the given memory context and returns its
 * entities, and in *relids the relations to watch.  Nothing global changes
 * here, so a failure half-way (a lock timeout, a cancel) leaves the
 * previous copy in place.
 */
static List *
load_registry(MemoryContext target, List **relids_out)
{
	OwnerSwitch saved;
	List	   *entities = NIL;
	List	   *relids;
	ListCell   *cell;
	uint64		row;

	relids = catalog_relids();

	spi_check(SPI_connect(), "SPI_connect");
	run_as_extension_owner(&saved);

	spi_check(SPI_execute("SELECT name, table_name::oid, date_field FROM moment.entities ORDER BY name",
						  true, 0), "reading moment.entities");
	for (row = 0; row < SPI_processed; row++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[row];
		bool		isnull;
		Oid			relid = DatumGetObjectId(SPI_getbinval(tuple, SPI_tuptable->tupdesc, 2, &isnull));
		char	   *date_field;
		MemoryContext spi_context;
		MomentEntity *entity;
		Relation	rel;

		/* a table dropped after it was registered is not an entity any more */
		rel = try_table_open(relid, AccessShareLock);
		if (rel == NULL)
			continue;
		spi_context = MemoryContextSwitchTo(target);
		entity = palloc0(sizeof(MomentEntity));
		entity->name = spi_text(tuple, 1);
		entity->relid = relid;
		entity->qualified_table = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
															 RelationGetRelationName(rel));
		load_fields(entity, rel);
		load_relations(entity, rel);
		date_field = spi_text(tuple, 3);
		if (date_field != NULL)
			entity->date_field = entity_field(entity, date_field);
		entities = lappend(entities, entity);
		relids = lappend_oid(relids, relid);
		MemoryContextSwitchTo(spi_context);
		table_close(rel, NoLock);
	}

	spi_check(SPI_execute("SELECT entity, name, fields FROM moment.parts ORDER BY entity, name",
						  true, 0), "reading moment.parts");
	for (row = 0; row < SPI_processed; row++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[row];
		char	   *entity_name = SPI_getvalue(tuple, SPI_tuptable->tupdesc, 1);
		MomentEntity *entity = entity_by_name(entities, entity_name);
		bool		isnull;
		Datum		fields;
		MemoryContext spi_context;
		MomentPart *part;

		if (entity == NULL)
			continue;
		fields = SPI_getbinval(tuple, SPI_tuptable->tupdesc, 3, &isnull);
		spi_context = MemoryContextSwitchTo(target);
		part = palloc0(sizeof(MomentPart));
		part->name = spi_text(tuple, 2);
		part->all_fields = isnull;
		if (!isnull)
		{
			Datum	   *items;
			bool	   *nulls;
			int			nitems;

			deconstruct_array(DatumGetArrayTypeP(fields), TEXTOID, -1, false, TYPALIGN_INT,
							  &items, &nulls, &nitems);
			for (int i = 0; i < nitems; i++)
				if (!nulls[i])
					part->items = lappend(part->items, TextDatumGetCString(items[i]));
		}
		entity->parts = lappend(entity->parts, part);
		MemoryContextSwitchTo(spi_context);
	}

	spi_check(SPI_execute("SELECT entity, set_name, key, expression FROM moment.metadata "
						  "ORDER BY entity, set_name, position, key", true, 0),
			  "reading moment.metadata");
	for (row = 0; row < SPI_processed; row++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[row];
		char	   *entity_name = SPI_getvalue(tuple, SPI_tuptable->tupdesc, 1);
		char	   *set_name = SPI_getvalue(tuple, SPI_tuptable->tupdesc, 2);
		MomentEntity *entity = entity_by_name(entities, entity_name);
		MomentMetadataSet *set;
		MomentAggregate *aggregate;
		MemoryContext spi_context;

		if (entity == NULL)
			continue;
		spi_context = MemoryContextSwitchTo(target);
		set = entity_metadata_set(entity, set_name);
		if (set == NULL)
		{
			set = palloc0(sizeof(MomentMetadataSet));
			set->name = pstrdup(set_name);
			entity->metadata_sets = lappend(entity->metadata_sets, set);
		}
		aggregate = palloc0(sizeof(MomentAggregate));
		aggregate->key = spi_text(tuple, 3);
		aggregate->expression = spi_text(tuple, 4);
		set->aggregates = lappend(set->aggregates, aggregate);
		MemoryContextSwitchTo(spi_context);
	}

	restore_user(&saved);
	SPI_finish();

	/* relations only lead to registered entities */
	foreach(cell, entities)
	{
		MomentEntity *entity = lfirst(cell);
		List	   *kept = NIL;
		ListCell   *rcell;

		foreach(rcell, entity->relations)
		{
			MomentRelation *relation = lfirst(rcell);

			relation->target = entity_by_relid(entities, relation->target_relid);
			if (relation->target != NULL)
				kept = lappend(kept, relation);
		}
		entity->relations = kept;
	}
	*relids_out = relids;
	return entities;
}

static void
registry_build(void)
{
	for (int attempt = 0; attempt < 3; attempt++)
	{
		uint64		seen = invalidations;
		MemoryContext caller_context = CurrentMemoryContext;
		MemoryContext fresh;
		List	   *entities;
		List	   *relids;

		fresh = AllocSetContextCreate(CacheMemoryContext, "moment registry", ALLOCSET_DEFAULT_SIZES);
		PG_TRY();
		{
			MemoryContextSwitchTo(fresh);
			entities = load_registry(fresh, &relids);
			MemoryContextSwitchTo(caller_context);
		}
		PG_CATCH();
		{
			MemoryContextSwitchTo(caller_context);
			MemoryContextDelete(fresh);
			PG_RE_THROW();
		}
		PG_END_TRY();

		if (registry_context != NULL)
		{
			MemoryContext old_context = MemoryContextSwitchTo(TopMemoryContext);

			retired_contexts = lappend(retired_contexts, registry_context);
			MemoryContextSwitchTo(old_context);
		}
		registry_context = fresh;
		registry = entities;
		set_watched(relids);
		builds++;
		/* an invalidation that arrived while we read means read again */
		if (seen == invalidations)
		{
			registry_valid = true;
			return;
		}
	}
	/* still moving: use this copy for now, rebuild at the next request */
}

/*
 * Catalog changes committed since our last lock acquisition count for this
 * request, as committed rows would.
 */
static void
registry_ensure(void)
{
	AcceptInvalidationMessages();
	if (!registry_valid)
		registry_build();
}

List *
registry_entities(void)
{
	registry_ensure();
	return registry;
}

/* The entity of that name, or NULL. */
MomentEntity *
registry_lookup(const char *name)
{
	ListCell   *cell;

	registry_ensure();
	foreach(cell, registry)
	{
		MomentEntity *entity = lfirst(cell);

		if (strcmp(entity->name, name) == 0)
			return entity;
	}
	return NULL;
}

/* The entity of that name, or an error 42P01 naming the valid ones. */
MomentEntity *
registry_entity(const char *name)
{
	MomentEntity *entity;
	List	   *names = NIL;
	ListCell   *cell;
	char	   *closest;

	if (name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("entity must not be null")));
	entity = registry_lookup(name);
	if (entity != NULL)
		return entity;

	foreach(cell, registry)
		names = lappend(names, ((MomentEntity *) lfirst(cell))->name);
	closest = closest_name(name, names);
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_TABLE),
			 errmsg("unknown entity \"%s\"", name),
			 closest ? errhint("Did you mean \"%s\"?  Entities: %s.", closest, name_list(names, 20)) :
			 errhint("Entities: %s.", name_list(names, 20))));
	return NULL;				/* keep compiler quiet */
}

MomentField *
entity_field(MomentEntity *entity, const char *json_name)
{
	for (int i = 0; i < entity->nfields; i++)
		if (strcmp(entity->fields[i].json_name, json_name) == 0)
			return &entity->fields[i];
	return NULL;
}

MomentRelation *
entity_relation(MomentEntity *entity, const char *json_name)
{
	ListCell   *cell;

	foreach(cell, entity->relations)
	{
		MomentRelation *relation = lfirst(cell);

		if (strcmp(relation->json_name, json_name) == 0)
			return relation;
	}
	return NULL;
}

MomentPart *
entity_part(MomentEntity *entity, const char *name)
{
	ListCell   *cell;

	foreach(cell, entity->parts)
	{
		MomentPart *part = lfirst(cell);

		if (strcmp(part->name, name) == 0)
			return part;
	}
	return NULL;
}

MomentMetadataSet *
entity_metadata_set(MomentEntity *entity, const char *name)
{
	ListCell   *cell;

	foreach(cell, entity->metadata_sets)
	{
		MomentMetadataSet *set = lfirst(cell);

		if (strcmp(set->name, name) == 0)
			return set;
	}
	return NULL;
}

List *
entity_field_names(MomentEntity *entity)
{
	List	   *names = NIL;

	for (int i = 0; i < entity->nfields; i++)
		names = lappend(names, entity->fields[i].json_name);
	return names;
}

/* Every name an include item may start with, for hints. */
List *
entity_item_names(MomentEntity *entity)
{
	List	   *names = entity_field_names(entity);
	ListCell   *cell;

	foreach(cell, entity->parts)
		names = lappend(names, ((MomentPart *) lfirst(cell))->name);
	foreach(cell, entity->relations)
		names = lappend(names, ((MomentRelation *) lfirst(cell))->json_name);
	foreach(cell, entity->metadata_sets)
		names = lappend(names, psprintf("metadata.%s", ((MomentMetadataSet *) lfirst(cell))->name));
	return names;
}
