/*
 * registry.c: the per-backend copy of the entity registry.
 *
 * Two levels, each invalidated on its own (see registry.h):
 *
 * - The catalog level (entities, settings, parts, metadata) lives in one
 *   memory context, read as the extension owner with a fresh snapshot
 *   (GetLatestSnapshot, as ri_triggers.c reads), so that a change committed
 *   while this session's statement or REPEATABLE READ transaction runs is
 *   seen by the next statement.  A relcache invalidation of a catalog table
 *   (the ENABLE ALWAYS triggers send it at commit) marks it stale.
 * - The table level of an entity (fields, relations) lives in a context of
 *   its own, loaded when a request first touches the entity and again after
 *   a relcache invalidation of that table (an ANALYZE of one table rebuilds
 *   only that table's entry, and only when a request next needs it).
 *   Loading opens just that table, so a request never locks tables it does
 *   not touch.
 *
 * A stale context is not freed at once: a request in progress may still
 * hold pointers into it.  It is retired and deleted at the end of the
 * transaction.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/stratnum.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/primnodes.h"
#include "optimizer/optimizer.h"
#include "parser/parse_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/typcache.h"

#include "moment.h"
#include "registry.h"

static MemoryContext catalog_context = NULL;
static List *retired_contexts = NIL;	/* in TopMemoryContext */
static List *entities = NIL;	/* MomentEntity *, in catalog_context */
static bool catalog_valid = false;
static uint64 catalog_generation = 1;
static uint64 invalidations = 0;
static int64 builds = 0;

/* catalog tables whose invalidations matter, and their kinds */
typedef struct WatchedTable
{
	Oid			relid;
	WatchedKind kind;
} WatchedTable;

static WatchedTable *watched = NULL;	/* TopMemoryContext */
static int	nwatched = 0;
static int	watched_capacity = 0;

/*
 * The shape of every table seen, kept across catalog rebuilds: the
 * structure version of an entity changes only when its table's shape does,
 * so that an ANALYZE does not invalidate memoized statements.
 */
typedef struct TableShape
{
	Oid			relid;			/* key */
	uint64		fingerprint;
	uint64		version;
} TableShape;

static HTAB *table_shapes = NULL;
static uint64 next_structure_version = 1;

int64
registry_builds(void)
{
	return builds;
}

uint64
registry_catalog_generation(void)
{
	return catalog_generation;
}

int
registry_catalog_version(void)
{
	return moment_catalog_version();
}

static void
retire_context(MemoryContext context)
{
	MemoryContext old_context;

	if (context == NULL)
		return;
	old_context = MemoryContextSwitchTo(TopMemoryContext);
	retired_contexts = lappend(retired_contexts, context);
	MemoryContextSwitchTo(old_context);
}

void
registry_invalidate(void)
{
	catalog_valid = false;
	invalidations++;
}

void
registry_invalidate_table(Oid relid)
{
	ListCell   *cell;

	if (catalog_context == NULL)
		return;
	foreach(cell, entities)
	{
		MomentEntity *entity = lfirst(cell);

		if (entity->relid == relid)
			entity->table_loaded = false;
	}
}

WatchedKind
registry_watched_kind(Oid relid)
{
	for (int i = 0; i < nwatched; i++)
		if (watched[i].relid == relid)
			return watched[i].kind;
	return WATCHED_NONE;
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
watch(Oid relid, WatchedKind kind)
{
	if (!OidIsValid(relid))
		return;
	if (nwatched == watched_capacity)
	{
		watched_capacity = Max(16, watched_capacity * 2);
		watched = watched ? repalloc(watched, sizeof(WatchedTable) * watched_capacity) :
			MemoryContextAlloc(TopMemoryContext, sizeof(WatchedTable) * watched_capacity);
	}
	watched[nwatched].relid = relid;
	watched[nwatched].kind = kind;
	nwatched++;
}

/* The catalog tables, by name in schema moment (before entities are known). */
static void
watch_catalog_tables(void)
{
	static const char *const catalog_tables[] = {"entities", "entity_settings", "parts", "metadata"};
	static const char *const tenancy_tables[] = {"companies", "company_grants", "grantees"};
	Oid			nsp = moment_namespace();

	nwatched = 0;
	for (int i = 0; i < lengthof(catalog_tables); i++)
		watch(get_relname_relid(catalog_tables[i], nsp), WATCHED_CATALOG);
	for (int i = 0; i < lengthof(tenancy_tables); i++)
		watch(get_relname_relid(tenancy_tables[i], nsp), WATCHED_TENANCY);
}

/* Make sure invalidations reach us before the registry has been built once. */
void
registry_watch_catalog(void)
{
	if (nwatched == 0)
		watch_catalog_tables();
}

static char *
spi_text(HeapTuple tuple, int column)
{
	char	   *value = SPI_getvalue(tuple, SPI_tuptable->tupdesc, column);

	return value ? pstrdup(value) : NULL;
}

/* Runs a catalog query with a fresh snapshot: what has committed by now. */
static void
read_fresh(const char *sql, const char *what)
{
	SPIPlanPtr	plan = SPI_prepare(sql, 0, NULL);

	if (plan == NULL)
		elog(ERROR, "moment: could not prepare the query reading %s: %s", what,
			 SPI_result_code_string(SPI_result));
	spi_check(SPI_execute_snapshot(plan, NULL, NULL, GetLatestSnapshot(), InvalidSnapshot,
								   true, false, 0), what);
}

static MomentEntity *
find_entity(List *list, const char *name)
{
	ListCell   *cell;

	foreach(cell, list)
	{
		MomentEntity *entity = lfirst(cell);

		if (strcmp(entity->name, name) == 0)
			return entity;
	}
	return NULL;
}

/* "timeRecords" -> "timeRecord": the entity's name without its final s. */
static char *
singular_of(const char *name)
{
	size_t		len = strlen(name);

	if (len > 1 && name[len - 1] == 's')
		return pnstrdup(name, len - 1);
	return pstrdup(name);
}

/*
 * Reads the catalog level into the given memory context.  Nothing global
 * changes here, so a failure half-way (a lock timeout, a cancel) leaves the
 * previous copy in place.
 */
static List *
load_catalog(MemoryContext target)
{
	OwnerSwitch saved;
	List	   *result = NIL;
	uint64		row;
	bool		has_settings = registry_catalog_version() >= 2;

	spi_check(SPI_connect(), "SPI_connect");
	run_as_extension_owner(&saved);

	read_fresh(has_settings ?
			   "SELECT e.name, e.table_name::pg_catalog.oid, "
			   "CASE WHEN s.entity IS NULL THEN e.date_field ELSE s.date_field END, e.builtin "
			   "FROM moment.entities e LEFT JOIN moment.entity_settings s "
			   "ON s.entity OPERATOR(pg_catalog.=) e.name ORDER BY e.name" :
			   "SELECT e.name, e.table_name::pg_catalog.oid, e.date_field, e.builtin "
			   "FROM moment.entities e ORDER BY e.name",
			   "moment.entities");
	for (row = 0; row < SPI_processed; row++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[row];
		bool		isnull;
		MemoryContext spi_context = MemoryContextSwitchTo(target);
		MomentEntity *entity = palloc0(sizeof(MomentEntity));

		entity->name = spi_text(tuple, 1);
		entity->singular = singular_of(entity->name);
		entity->relid = DatumGetObjectId(SPI_getbinval(tuple, SPI_tuptable->tupdesc, 2, &isnull));
		entity->date_field_name = spi_text(tuple, 3);
		entity->builtin = DatumGetBool(SPI_getbinval(tuple, SPI_tuptable->tupdesc, 4, &isnull));
		result = lappend(result, entity);
		MemoryContextSwitchTo(spi_context);
	}

	/* a user's part (builtin false) takes the place of a built-in of its name */
	read_fresh("SELECT DISTINCT ON (p.entity, p.name) p.entity, p.name, p.fields, p.builtin "
			   "FROM moment.parts p ORDER BY p.entity, p.name, p.builtin",
			   "moment.parts");
	for (row = 0; row < SPI_processed; row++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[row];
		char	   *entity_name = SPI_getvalue(tuple, SPI_tuptable->tupdesc, 1);
		MomentEntity *entity = find_entity(result, entity_name);
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
		part->builtin = DatumGetBool(SPI_getbinval(tuple, SPI_tuptable->tupdesc, 4, &isnull));
		if (!part->all_fields)
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

	read_fresh("SELECT m.entity, m.set_name, m.key, m.expression FROM "
			   "(SELECT DISTINCT ON (entity, set_name, key) * FROM moment.metadata "
			   " ORDER BY entity, set_name, key, builtin) m "
			   "ORDER BY m.entity, m.set_name, m.position, m.key",
			   "moment.metadata");
	for (row = 0; row < SPI_processed; row++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[row];
		char	   *entity_name = SPI_getvalue(tuple, SPI_tuptable->tupdesc, 1);
		char	   *set_name = SPI_getvalue(tuple, SPI_tuptable->tupdesc, 2);
		MomentEntity *entity = find_entity(result, entity_name);
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

	/* every entity has a "default" part: all fields and its relations' names */
	{
		ListCell   *cell;
		MemoryContext old_context = MemoryContextSwitchTo(target);

		foreach(cell, result)
		{
			MomentEntity *entity = lfirst(cell);

			if (entity_part(entity, "default") == NULL)
			{
				MomentPart *part = palloc0(sizeof(MomentPart));

				part->name = pstrdup("default");
				part->all_fields = true;
				part->with_relation_names = true;
				part->builtin = true;
				entity->parts = lappend(entity->parts, part);
			}
		}
		MemoryContextSwitchTo(old_context);
	}
	return result;
}

static void
catalog_build(void)
{
	for (int attempt = 0; attempt < 3; attempt++)
	{
		uint64		seen = invalidations;
		MemoryContext caller_context = CurrentMemoryContext;
		MemoryContext fresh;
		List	   *loaded;
		ListCell   *cell;

		fresh = AllocSetContextCreate(CacheMemoryContext, "moment registry", ALLOCSET_SMALL_SIZES);
		PG_TRY();
		{
			MemoryContextSwitchTo(fresh);
			loaded = load_catalog(fresh);
			MemoryContextSwitchTo(caller_context);
		}
		PG_CATCH();
		{
			MemoryContextSwitchTo(caller_context);
			MemoryContextDelete(fresh);
			PG_RE_THROW();
		}
		PG_END_TRY();

		/* the old entities' table contexts are its children: they go with it */
		retire_context(catalog_context);
		catalog_context = fresh;
		entities = loaded;
		catalog_generation++;
		builds++;

		watch_catalog_tables();
		foreach(cell, entities)
			watch(((MomentEntity *) lfirst(cell))->relid, WATCHED_ENTITY);

		/* an invalidation that arrived while we read means read again */
		if (seen == invalidations)
		{
			catalog_valid = true;
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
catalog_ensure(void)
{
	AcceptInvalidationMessages();
	if (!catalog_valid)
		catalog_build();
}

/* ---- the table level ---- */

static char *
operator_sql(Oid opr)
{
	HeapTuple	tuple;
	Form_pg_operator form;
	char	   *result;

	if (!OidIsValid(opr))
		return NULL;
	tuple = SearchSysCache1(OPEROID, ObjectIdGetDatum(opr));
	if (!HeapTupleIsValid(tuple))
		return NULL;
	form = (Form_pg_operator) GETSTRUCT(tuple);
	result = psprintf("OPERATOR(%s.%s)", quote_identifier(get_namespace_name(form->oprnamespace)),
					  NameStr(form->oprname));
	ReleaseSysCache(tuple);
	return result;
}

static void
load_operators(MomentField *field)
{
	TypeCacheEntry *typentry = lookup_type_cache(field->base_type,
												 TYPECACHE_EQ_OPR | TYPECACHE_BTREE_OPFAMILY);

	field->op_eq = operator_sql(typentry->eq_opr);
	if (OidIsValid(typentry->eq_opr))
		field->op_ne = operator_sql(get_negator(typentry->eq_opr));
	if (OidIsValid(typentry->btree_opf))
	{
		Oid			intype = typentry->btree_opintype;

		field->op_lt = operator_sql(get_opfamily_member(typentry->btree_opf, intype, intype, BTLessStrategyNumber));
		field->op_le = operator_sql(get_opfamily_member(typentry->btree_opf, intype, intype, BTLessEqualStrategyNumber));
		field->op_gt = operator_sql(get_opfamily_member(typentry->btree_opf, intype, intype, BTGreaterStrategyNumber));
		field->op_ge = operator_sql(get_opfamily_member(typentry->btree_opf, intype, intype, BTGreaterEqualStrategyNumber));
	}
}

static FieldKind
field_kind(Oid base_type)
{
	switch (base_type)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
			return FIELD_INTEGER;
		case DATEOID:
			return FIELD_DATE;
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			return FIELD_TIMESTAMP;
		case TIMEOID:
		case TIMETZOID:
			return FIELD_TIME;
		default:
			return FIELD_OTHER;
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
 * The values of CHECK (col = ANY (ARRAY['a', 'b'])) constraints (col IN
 * ('a', 'b') is stored so too), for enums.  The stored expression holds an
 * ARRAY[...] of constants, folded here into one array constant as the
 * planner would.
 */
static void
load_allowed_values(MomentEntity *entity, Relation rel)
{
	TupleConstr *constr = RelationGetDescr(rel)->constr;

	if (constr == NULL)
		return;
	for (int i = 0; i < constr->num_check; i++)
	{
		Node	   *expr = stringToNode(constr->check[i].ccbin);
		ScalarArrayOpExpr *saop;
		Node	   *left;
		Node	   *right;
		MomentField *field;

		if (!IsA(expr, ScalarArrayOpExpr))
			continue;
		saop = (ScalarArrayOpExpr *) expr;
		if (!saop->useOr || list_length(saop->args) != 2)
			continue;
		left = linitial(saop->args);
		right = lsecond(saop->args);
		while (IsA(left, RelabelType))
			left = (Node *) ((RelabelType *) left)->arg;
		if (IsA(right, ArrayExpr))
			right = eval_const_expressions(NULL, right);
		if (!IsA(left, Var) || !IsA(right, Const) || ((Const *) right)->constisnull)
			continue;
		field = field_by_attnum(entity, ((Var *) left)->varattno);
		if (field == NULL || field->type_category != TYPCATEGORY_STRING)
			continue;
		{
			ArrayType  *array = DatumGetArrayTypeP(((Const *) right)->constvalue);
			Datum	   *items;
			bool	   *nulls;
			int			nitems;
			int16		typlen;
			bool		typbyval;
			char		typalign;
			Oid			typoutput;
			bool		varlena;

			get_typlenbyvalalign(ARR_ELEMTYPE(array), &typlen, &typbyval, &typalign);
			getTypeOutputInfo(ARR_ELEMTYPE(array), &typoutput, &varlena);
			deconstruct_array(array, ARR_ELEMTYPE(array), typlen, typbyval, typalign,
							  &items, &nulls, &nitems);
			field->allowed_values = NIL;
			for (int k = 0; k < nitems; k++)
				if (!nulls[k])
					field->allowed_values = lappend(field->allowed_values,
													OidOutputFunctionCall(typoutput, items[k]));
		}
	}
}

static void
load_fields(MomentEntity *entity, Relation rel)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	int			n = 0;
	char	   *number_name = psprintf("%sNumber", entity->singular);

	entity->fields = palloc0(sizeof(MomentField) * Max(1, tupdesc->natts));
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
		field->base_type = getBaseType(attr->atttypid);
		field->array_type_oid = get_array_type(attr->atttypid);
		get_type_category_preferred(field->base_type, &category, &preferred);
		field->type_category = category;
		field->kind = field_kind(field->base_type);
		field->is_json = (field->base_type == JSONBOID || field->base_type == JSONOID);
		field->not_null = attr->attnotnull;
		field->has_default = attr->atthasdef || attr->attidentity != '\0' || attr->attgenerated != '\0';
		field->writable = (attr->attgenerated == '\0' &&
						   attr->attidentity != ATTRIBUTE_IDENTITY_ALWAYS &&
						   strcmp(field->column_name, "id") != 0 &&
						   strcmp(field->column_name, "created_at") != 0 &&
						   strcmp(field->column_name, "updated_at") != 0);
		getTypeInputInfo(attr->atttypid, &input_function, &field->typioparam);
		fmgr_info_cxt(input_function, &field->input, CurrentMemoryContext);
		load_operators(field);
	}
	entity->nfields = n;
	for (int i = 0; i < n; i++)
	{
		MomentField *field = &entity->fields[i];

		if (strcmp(field->column_name, "id") == 0)
			entity->id_field = field;
		else if (strcmp(field->column_name, "updated_at") == 0)
			entity->updated_at_field = field;
		else if (strcmp(field->column_name, "created_at") == 0)
			entity->created_at_field = field;
		else if (strcmp(field->column_name, "name") == 0)
			entity->name_field = field;
		if (strcmp(field->json_name, number_name) == 0)
			entity->number_field = field;
	}
	load_allowed_values(entity, rel);
}

/*
 * Relations: foreign keys holding company_id -> company_id and x_id -> id of
 * another registered table (further columns are allowed: a time record's
 * (activity, project) pair).  A plain two-column key wins over a wider one
 * on the same x_id.
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
		int			company_pos = -1;
		int			id_pos = -1;
		AttrNumber	target_company;
		AttrNumber	target_id;
		MomentField *fk_field;
		MomentRelation *relation = NULL;
		MomentEntity *target;
		size_t		len;
		ListCell   *rcell;

		target = registry_entity_by_relid(fk->confrelid);
		if (target == NULL)
			continue;
		target_company = get_attnum(fk->confrelid, "company_id");
		target_id = get_attnum(fk->confrelid, "id");
		for (int k = 0; k < fk->nkeys; k++)
		{
			if (fk->conkey[k] == company_attnum && fk->confkey[k] == target_company)
				company_pos = k;
			else if (fk->confkey[k] == target_id)
				id_pos = k;
		}
		if (company_pos < 0 || id_pos < 0)
			continue;
		fk_field = field_by_attnum(entity, fk->conkey[id_pos]);
		if (fk_field == NULL)
			continue;
		len = strlen(fk_field->column_name);
		if (len <= 3 || strcmp(fk_field->column_name + len - 3, "_id") != 0)
			continue;

		foreach(rcell, entity->relations)
			if (((MomentRelation *) lfirst(rcell))->fk_field == fk_field)
				relation = lfirst(rcell);
		if (relation != NULL && fk->nkeys > 2)
			continue;
		if (relation == NULL)
		{
			relation = palloc0(sizeof(MomentRelation));
			entity->relations = lappend(entity->relations, relation);
		}
		relation->json_name = camel_case(pnstrdup(fk_field->column_name, len - 3));
		relation->fk_field = fk_field;
		relation->target_relid = fk->confrelid;
		relation->target = target;
		relation->constraint_name = get_constraint_name(fk->conoid);
	}
}

/* Why a table cannot serve as an entity, or NULL. */
static char *
check_table(MomentEntity *entity, Relation rel)
{
	Oid			owner = rel->rd_rel->relowner;
	AttrNumber	company_attnum = get_attnum(entity->relid, "company_id");
	Oid			company_type;

	if (owner != moment_extension_owner() && !superuser_arg(owner))
		return psprintf("table %s is owned by role %s, not by the owner of extension moment or a superuser",
						entity->qualified_table, GetUserNameFromId(owner, true) ? GetUserNameFromId(owner, true) : "?");
	if (company_attnum == InvalidAttrNumber)
		return psprintf("table %s has no column company_id", entity->qualified_table);
	company_type = get_atttype(entity->relid, company_attnum);
	if (company_type != INT8OID && company_type != INT4OID)
		return psprintf("column company_id of table %s is not bigint", entity->qualified_table);
	if (entity->id_field == NULL)
		return psprintf("table %s has no column id", entity->qualified_table);
	if (entity->id_field->base_type != INT8OID && entity->id_field->base_type != INT4OID &&
		entity->id_field->base_type != INT2OID)
		return psprintf("column id of table %s is not an integer", entity->qualified_table);
	return NULL;
}

/* A hash of what statements depend on: columns, types, relations. */
static uint64
table_fingerprint(MomentEntity *entity)
{
	StringInfoData buf;
	ListCell   *cell;
	uint64		hash;

	initStringInfo(&buf);
	appendStringInfo(&buf, "%s|%s|%d|", entity->qualified_table, entity->broken ? entity->broken : "",
					 entity->has_dropped_columns);
	for (int i = 0; i < entity->nfields; i++)
	{
		MomentField *field = &entity->fields[i];

		appendStringInfo(&buf, "%s:%d:%u:%d:%d:%d;", field->column_name, field->attnum, field->type_oid,
						 field->typmod, field->not_null, field->has_default);
	}
	foreach(cell, entity->relations)
	{
		MomentRelation *relation = lfirst(cell);

		appendStringInfo(&buf, "%s>%u;", relation->fk_field->column_name, relation->target_relid);
	}
	hash = hash_bytes_extended((const unsigned char *) buf.data, buf.len, 3);
	pfree(buf.data);
	return hash;
}

static uint64
structure_version_for(Oid relid, uint64 fingerprint)
{
	TableShape *shape;
	bool		found;

	if (table_shapes == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(TableShape);
		table_shapes = hash_create("moment table shapes", 64, &ctl, HASH_ELEM | HASH_BLOBS);
	}
	shape = hash_search(table_shapes, &relid, HASH_ENTER, &found);
	if (!found || shape->fingerprint != fingerprint)
	{
		shape->fingerprint = fingerprint;
		shape->version = next_structure_version++;
	}
	return shape->version;
}

static void
reset_table_level(MomentEntity *entity)
{
	entity->broken = NULL;
	entity->qualified_table = NULL;
	entity->table_name = NULL;
	entity->nfields = 0;
	entity->fields = NULL;
	entity->id_field = entity->date_field = entity->updated_at_field = NULL;
	entity->created_at_field = entity->number_field = entity->name_field = NULL;
	entity->has_dropped_columns = false;
	entity->relations = NIL;
}

static void
load_table(MomentEntity *entity)
{
	MemoryContext fresh = AllocSetContextCreate(catalog_context, "moment entity table",
												ALLOCSET_SMALL_SIZES);
	MemoryContext old_context = MemoryContextSwitchTo(fresh);
	Relation	rel;

	/* from here on the entity describes the fresh context only */
	retire_context(entity->table_context);
	if (entity->table_context != NULL)
		MemoryContextSetParent(entity->table_context, TopMemoryContext);
	entity->table_context = fresh;
	reset_table_level(entity);

	rel = try_table_open(entity->relid, AccessShareLock);
	if (rel == NULL)
	{
		entity->qualified_table = psprintf("(table %u)", entity->relid);
		entity->broken = psprintf("the table of entity %s no longer exists", entity->name);
	}
	else
	{
		entity->table_name = pstrdup(RelationGetRelationName(rel));
		entity->qualified_table = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
															 RelationGetRelationName(rel));
		if (rel->rd_rel->relkind != RELKIND_RELATION && rel->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
			entity->broken = psprintf("%s is not a table", entity->qualified_table);
		else
		{
			load_fields(entity, rel);
			entity->broken = check_table(entity, rel);
			if (entity->broken == NULL)
			{
				load_relations(entity, rel);
				if (entity->date_field_name != NULL)
				{
					entity->date_field = entity_field(entity, entity->date_field_name);
					if (entity->date_field != NULL && entity->date_field->kind != FIELD_DATE &&
						entity->date_field->kind != FIELD_TIMESTAMP)
						entity->date_field = NULL;
				}
			}
		}
		table_close(rel, NoLock);
	}
	MemoryContextSwitchTo(old_context);
	entity->structure_version = structure_version_for(entity->relid, table_fingerprint(entity));
	entity->table_loaded = true;
}

bool
entity_try_ensure(MomentEntity *entity)
{
	CHECK_FOR_INTERRUPTS();
	if (!entity->table_loaded)
		load_table(entity);
	return entity->broken == NULL;
}

void
entity_ensure(MomentEntity *entity)
{
	if (!entity_try_ensure(entity))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("entity %s cannot be used: %s", entity->name, entity->broken),
				 errhint("Restore the table's company_id and id columns (or its owner), or unregister the entity: DELETE FROM moment.entities WHERE name = '%s'.",
						 entity->name)));
}

MomentEntity *
relation_target(MomentRelation *relation)
{
	entity_ensure(relation->target);
	return relation->target;
}

/* ---- lookups ---- */

List *
registry_entities(void)
{
	catalog_ensure();
	return entities;
}

MomentEntity *
registry_lookup(const char *name)
{
	catalog_ensure();
	return find_entity(entities, name);
}

MomentEntity *
registry_entity_by_relid(Oid relid)
{
	ListCell   *cell;

	if (!catalog_valid && catalog_context == NULL)
		catalog_ensure();
	foreach(cell, entities)
	{
		MomentEntity *entity = lfirst(cell);

		if (entity->relid == relid)
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
	{
		entity_ensure(entity);
		return entity;
	}

	foreach(cell, entities)
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
