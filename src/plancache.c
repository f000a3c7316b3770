/*
 * plancache.c: SPI plans and statement texts kept per backend, bounded by
 * moment.plan_cache_size.
 *
 * Both kinds of entry share one least-recently-used list and one budget.
 * When a new entry would take the total over the budget, entries are
 * evicted from the cold end one at a time (as pg_stat_statements'
 * entry_dealloc does), never the whole cache.  A plan is pinned while a
 * statement executes it (a trigger may call moment again, and that call may
 * evict); an evicted plan is freed when its last execution ends, or at the
 * end of the transaction if that execution failed.
 *
 * There is no generation check on plans: a plan's text fully determines
 * what it does under the current catalogs, and PostgreSQL's plan cache
 * re-plans it when a table, function or policy it depends on changes.
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "executor/spi_priv.h"
#include "lib/ilist.h"
#include "miscadmin.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/plancache.h"

#include "moment.h"
#include "plancache.h"
#include "registry.h"

typedef enum EntryKind
{
	ENTRY_PLAN,
	ENTRY_MEMO
} EntryKind;

typedef struct CacheEntry
{
	EntryKind	kind;
	uint64		key;
	dlist_node	lru;
	Size		bytes;			/* counted against the budget */
	bool		in_cache;		/* false once evicted */
} CacheEntry;

struct KeptPlan
{
	CacheEntry	common;
	char	   *sql;
	int			nargs;
	Oid		   *argtypes;
	int			cursor_options;
	Oid			role;
	SPIPlanPtr	plan;
	int			pins;			/* executions running */
};

typedef struct MemoDependency
{
	MomentEntity *entity;
	uint64		structure_version;
} MemoDependency;

typedef struct MemoEntry
{
	CacheEntry	common;
	char	   *shape;
	char	   *sql;
	uint64		catalog_generation;
	int			ndependencies;
	MemoDependency *dependencies;
} MemoEntry;

typedef struct HashSlot
{
	uint64		key;
	CacheEntry *entry;
} HashSlot;

static HTAB *plans = NULL;
static HTAB *memo = NULL;
static dlist_head lru = DLIST_STATIC_INIT(lru);
static Size total_bytes = 0;
static List *doomed = NIL;		/* evicted KeptPlans to free at transaction end */
static int64 prepared_count = 0;
static int64 evicted_count = 0;

long
plancache_size(void)
{
	return plans ? hash_get_num_entries(plans) : 0;
}

int64
plancache_prepared(void)
{
	return prepared_count;
}

int64
plancache_evicted(void)
{
	return evicted_count;
}

int64
plancache_bytes(void)
{
	return (int64) total_bytes;
}

static HTAB *
make_table(const char *name)
{
	HASHCTL		ctl;

	ctl.keysize = sizeof(uint64);
	ctl.entrysize = sizeof(HashSlot);
	return hash_create(name, 256, &ctl, HASH_ELEM | HASH_BLOBS);
}

static Size
budget(void)
{
	return (Size) moment_plan_cache_size * 1024;
}

static void
free_kept_plan(KeptPlan *kept)
{
	if (kept->plan != NULL)
		SPI_freeplan(kept->plan);
	pfree(kept->sql);
	pfree(kept->argtypes);
	pfree(kept);
}

static void
free_memo(MemoEntry *entry)
{
	pfree(entry->shape);
	pfree(entry->sql);
	if (entry->dependencies)
		pfree(entry->dependencies);
	pfree(entry);
}

/* Takes an entry out of its table and the list; frees it unless it runs. */
static void
evict(CacheEntry *entry)
{
	HTAB	   *table = entry->kind == ENTRY_PLAN ? plans : memo;

	hash_search(table, &entry->key, HASH_REMOVE, NULL);
	dlist_delete(&entry->lru);
	total_bytes -= entry->bytes;
	entry->in_cache = false;
	if (entry->kind == ENTRY_MEMO)
		free_memo((MemoEntry *) entry);
	else if (((KeptPlan *) entry)->pins == 0)
		free_kept_plan((KeptPlan *) entry);
	/* else freed by the execution running it, when it ends */
}

/* Evicts cold entries until `needed` more bytes fit, sparing `keep`. */
static void
make_room(Size needed, CacheEntry *keep)
{
	dlist_node *node;

	if (total_bytes + needed <= budget() || dlist_is_empty(&lru))
		return;
	node = dlist_tail_node(&lru);
	while (node != NULL && total_bytes + needed > budget())
	{
		CacheEntry *entry = dlist_container(CacheEntry, lru, node);
		dlist_node *colder = dlist_has_prev(&lru, node) ? dlist_prev_node(&lru, node) : NULL;

		if (entry != keep && !(entry->kind == ENTRY_PLAN && ((KeptPlan *) entry)->pins > 0))
		{
			evict(entry);
			evicted_count++;
		}
		node = colder;
	}
}

static void
insert(HTAB *table, CacheEntry *entry)
{
	HashSlot   *slot;
	bool		found;

	slot = hash_search(table, &entry->key, HASH_ENTER, &found);
	if (found)
		evict(slot->entry);		/* a collision, or a stale memo: the new one wins */
	slot = hash_search(table, &entry->key, HASH_ENTER, &found);
	slot->entry = entry;
	entry->in_cache = true;
	dlist_push_head(&lru, &entry->lru);
	total_bytes += entry->bytes;
}

static void
touch(CacheEntry *entry)
{
	dlist_move_head(&lru, &entry->lru);
}

/* Called at the end of every top-level transaction. */
void
plancache_release_retired(void)
{
	ListCell   *cell;

	foreach(cell, doomed)
		free_kept_plan((KeptPlan *) lfirst(cell));
	list_free(doomed);
	doomed = NIL;
}

/* The memory a prepared plan holds: its source, and its generic plan once made. */
static Size
plan_bytes(SPIPlanPtr plan)
{
	Size		bytes = plan->plancxt ? MemoryContextMemAllocated(plan->plancxt, true) : 0;
	ListCell   *cell;

	foreach(cell, SPI_plan_get_plan_sources(plan))
	{
		CachedPlanSource *source = lfirst(cell);

		bytes += MemoryContextMemAllocated(source->context, true);
		if (source->gplan != NULL)
			bytes += MemoryContextMemAllocated(source->gplan->context, true);
	}
	return bytes;
}

KeptPlan *
plancache_get(const char *sql, int nargs, Oid *argtypes)
{
	return plancache_get_with_options(sql, nargs, argtypes, 0, NULL);
}

/*
 * As plancache_get, with cursor options: CURSOR_OPT_CUSTOM_PLAN for
 * statements whose best plan depends on the values (a listing's date range
 * may match ten rows or a million), CURSOR_OPT_GENERIC_PLAN for single-row
 * statements.
 */
KeptPlan *
plancache_get_with_options(const char *sql, int nargs, Oid *argtypes, int cursor_options,
						   bool *fresh)
{
	Oid			role = GetUserId();
	uint64		key;
	HashSlot   *slot;
	KeptPlan   *kept;
	SPIPlanPtr	plan;
	size_t		sql_len = strlen(sql);

	if (plans == NULL)
		plans = make_table("moment plans");

	key = hash_bytes_extended((const unsigned char *) sql, sql_len, cursor_options);
	key ^= hash_bytes_extended((const unsigned char *) &role, sizeof(Oid), 2);
	if (nargs > 0)
		key ^= hash_bytes_extended((const unsigned char *) argtypes, sizeof(Oid) * nargs, 1);

	slot = hash_search(plans, &key, HASH_FIND, NULL);
	if (slot != NULL)
	{
		kept = (KeptPlan *) slot->entry;
		if (kept->role == role && kept->nargs == nargs && kept->cursor_options == cursor_options &&
			strcmp(kept->sql, sql) == 0 &&
			(nargs == 0 || memcmp(kept->argtypes, argtypes, sizeof(Oid) * nargs) == 0))
		{
			touch(&kept->common);
			if (fresh)
				*fresh = false;
			return kept;
		}
		/* a hash collision: the new statement takes the slot */
	}

	/* prepare before touching the cache: a failed prepare leaves no entry */
	plan = SPI_prepare_cursor(sql, nargs, argtypes, cursor_options);
	if (plan == NULL)
		elog(ERROR, "moment: SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	SPI_keepplan(plan);
	prepared_count++;

	kept = MemoryContextAllocZero(TopMemoryContext, sizeof(KeptPlan));
	kept->common.kind = ENTRY_PLAN;
	kept->common.key = key;
	kept->sql = MemoryContextStrdup(TopMemoryContext, sql);
	kept->nargs = nargs;
	kept->argtypes = MemoryContextAlloc(TopMemoryContext, sizeof(Oid) * Max(1, nargs));
	if (nargs > 0)
		memcpy(kept->argtypes, argtypes, sizeof(Oid) * nargs);
	kept->cursor_options = cursor_options;
	kept->role = role;
	kept->plan = plan;
	kept->common.bytes = sizeof(KeptPlan) + sql_len + plan_bytes(plan);

	make_room(kept->common.bytes, NULL);
	insert(plans, &kept->common);
	if (fresh)
		*fresh = true;
	return kept;
}

SPIPlanPtr
kept_plan_spi(KeptPlan *kept)
{
	return kept->plan;
}

/* After an execution: count what the plan holds now (its generic plan, say). */
static void
after_execution(KeptPlan *kept, bool failed)
{
	kept->pins--;
	if (kept->pins > 0)
		return;
	if (!kept->common.in_cache)
	{
		if (failed)
		{
			MemoryContext old_context = MemoryContextSwitchTo(TopMemoryContext);

			doomed = lappend(doomed, kept);
			MemoryContextSwitchTo(old_context);
		}
		else
			free_kept_plan(kept);
		return;
	}
	if (!failed)
	{
		Size		bytes = sizeof(KeptPlan) + strlen(kept->sql) + plan_bytes(kept->plan);

		if (bytes != kept->common.bytes)
		{
			total_bytes += bytes - kept->common.bytes;
			kept->common.bytes = bytes;
			make_room(0, &kept->common);
		}
	}
}

/* Runs a kept plan, pinned while it runs: SPI_execute_plan, or with options SPI_execute_plan_extended. */
static int
execute_pinned(KeptPlan *kept, const SPIExecuteOptions *options, Datum *values, const char *nulls,
			   bool read_only, long tcount)
{
	int			rc;

	kept->pins++;
	PG_TRY();
	{
		rc = options ? SPI_execute_plan_extended(kept->plan, options) :
			SPI_execute_plan(kept->plan, values, nulls, read_only, tcount);
	}
	PG_CATCH();
	{
		after_execution(kept, true);
		PG_RE_THROW();
	}
	PG_END_TRY();
	after_execution(kept, false);
	return rc;
}

int
kept_plan_execute(KeptPlan *kept, Datum *values, const char *nulls, bool read_only, long tcount)
{
	return execute_pinned(kept, NULL, values, nulls, read_only, tcount);
}

int
kept_plan_execute_extended(KeptPlan *kept, const SPIExecuteOptions *options)
{
	return execute_pinned(kept, options, NULL, NULL, false, 0);
}

/* ---- the statement text memo ---- */

static uint64
memo_hash(const char *shape)
{
	return hash_bytes_extended((const unsigned char *) shape, strlen(shape), 7);
}

const char *
statement_memo_get(const char *shape)
{
	uint64		key;
	HashSlot   *slot;
	MemoEntry  *entry;

	if (memo == NULL)
		return NULL;
	key = memo_hash(shape);
	slot = hash_search(memo, &key, HASH_FIND, NULL);
	if (slot == NULL)
		return NULL;
	entry = (MemoEntry *) slot->entry;
	if (strcmp(entry->shape, shape) != 0)
		return NULL;
	if (entry->catalog_generation != registry_catalog_generation())
	{
		evict(&entry->common);
		return NULL;
	}
	for (int i = 0; i < entry->ndependencies; i++)
	{
		MemoDependency *dependency = &entry->dependencies[i];

		/* reloads a table invalidated since; its shape may still be the same */
		if (!entity_try_ensure(dependency->entity) ||
			dependency->entity->structure_version != dependency->structure_version)
		{
			evict(&entry->common);
			return NULL;
		}
	}
	touch(&entry->common);
	return entry->sql;
}

void
statement_memo_put(const char *shape, const char *sql, List *entities)
{
	MemoEntry  *entry;
	ListCell   *cell;
	int			n = 0;

	if (memo == NULL)
		memo = make_table("moment statement memo");
	entry = MemoryContextAllocZero(TopMemoryContext, sizeof(MemoEntry));
	entry->common.kind = ENTRY_MEMO;
	entry->common.key = memo_hash(shape);
	entry->shape = MemoryContextStrdup(TopMemoryContext, shape);
	entry->sql = MemoryContextStrdup(TopMemoryContext, sql);
	entry->catalog_generation = registry_catalog_generation();
	entry->dependencies = MemoryContextAlloc(TopMemoryContext,
											 sizeof(MemoDependency) * Max(1, list_length(entities)));
	foreach(cell, entities)
	{
		MomentEntity *entity = lfirst(cell);
		bool		seen = false;

		for (int i = 0; i < n; i++)
			if (entry->dependencies[i].entity == entity)
				seen = true;
		if (seen)
			continue;
		entry->dependencies[n].entity = entity;
		entry->dependencies[n].structure_version = entity->structure_version;
		n++;
	}
	entry->ndependencies = n;
	entry->common.bytes = sizeof(MemoEntry) + strlen(shape) + strlen(sql) + sizeof(MemoDependency) * n;
	make_room(entry->common.bytes, NULL);
	insert(memo, &entry->common);
}
