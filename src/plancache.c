/*
 * plancache.c: SPI plans prepared once per statement shape and kept.
 *
 * Entries remember the registry generation they were prepared under; a
 * registry change makes them stale.  Stale or evicted plans are not freed
 * at once (a request in progress may be executing them) but at the end of
 * the transaction.
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "moment.h"
#include "plancache.h"
#include "registry.h"

#define MAX_CACHED_PLANS 2000

typedef struct PlanEntry
{
	uint64		key;			/* hash of the text and argument types */
	char	   *sql;			/* in TopMemoryContext */
	int			nargs;
	Oid		   *argtypes;
	SPIPlanPtr	plan;
	uint64		generation;
	int			cursor_options;
} PlanEntry;

static HTAB *plans = NULL;
static List *retired = NIL;		/* SPIPlanPtr, in TopMemoryContext */
static int64 prepared_count = 0;

static void
retire(PlanEntry *entry)
{
	MemoryContext old_context = MemoryContextSwitchTo(TopMemoryContext);

	retired = lappend(retired, entry->plan);
	MemoryContextSwitchTo(old_context);
	pfree(entry->sql);
	pfree(entry->argtypes);
	entry->plan = NULL;
	entry->sql = NULL;
}

void
plancache_release_retired(void)
{
	ListCell   *cell;

	foreach(cell, retired)
		SPI_freeplan((SPIPlanPtr) lfirst(cell));
	list_free(retired);
	retired = NIL;
}

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

static void
retire_all(void)
{
	HASH_SEQ_STATUS status;
	PlanEntry  *entry;

	hash_seq_init(&status, plans);
	while ((entry = hash_seq_search(&status)) != NULL)
	{
		if (entry->plan != NULL)
			retire(entry);
		hash_search(plans, &entry->key, HASH_REMOVE, NULL);
	}
}

/*
 * The kept plan for this statement text, preparing it on first use.  Must
 * be called inside SPI_connect.
 */
SPIPlanPtr
plancache_get(const char *sql, int nargs, Oid *argtypes)
{
	return plancache_get_with_options(sql, nargs, argtypes, 0, NULL);
}

/*
 * As plancache_get, with cursor options: CURSOR_OPT_CUSTOM_PLAN for
 * statements whose best plan depends on the values (a listing's date range
 * may match ten rows or a million), so that the kept statement is planned
 * for each call's values rather than once for all.
 */
SPIPlanPtr
plancache_get_with_options(const char *sql, int nargs, Oid *argtypes, int cursor_options,
						   bool *fresh)
{
	uint64		key;
	PlanEntry  *entry;
	bool		found;
	SPIPlanPtr	plan;
	uint64		generation = registry_generation();

	if (plans == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(uint64);
		ctl.entrysize = sizeof(PlanEntry);
		plans = hash_create("moment plans", 256, &ctl, HASH_ELEM | HASH_BLOBS);
	}

	key = hash_bytes_extended((const unsigned char *) sql, strlen(sql), cursor_options);
	if (nargs > 0)
		key ^= hash_bytes_extended((const unsigned char *) argtypes, sizeof(Oid) * nargs, 1);

	entry = hash_search(plans, &key, HASH_FIND, NULL);
	if (entry != NULL)
	{
		if (entry->plan != NULL && entry->generation == generation &&
			entry->nargs == nargs && entry->cursor_options == cursor_options &&
			strcmp(entry->sql, sql) == 0 &&
			memcmp(entry->argtypes, argtypes, sizeof(Oid) * nargs) == 0)
		{
			if (fresh)
				*fresh = false;
			return entry->plan;
		}
		/* stale, or a hash collision: prepare afresh */
		if (entry->plan != NULL)
			retire(entry);
		hash_search(plans, &key, HASH_REMOVE, NULL);
	}

	/* prepare before touching the table: a failed prepare leaves no entry */
	plan = SPI_prepare_cursor(sql, nargs, argtypes, cursor_options);
	if (plan == NULL)
		elog(ERROR, "moment: SPI_prepare failed for \"%s\": %s", sql,
			 SPI_result_code_string(SPI_result));
	SPI_keepplan(plan);
	prepared_count++;

	if (hash_get_num_entries(plans) >= MAX_CACHED_PLANS)
		retire_all();

	entry = hash_search(plans, &key, HASH_ENTER, &found);
	entry->sql = MemoryContextStrdup(TopMemoryContext, sql);
	entry->nargs = nargs;
	entry->argtypes = MemoryContextAlloc(TopMemoryContext, sizeof(Oid) * Max(1, nargs));
	if (nargs > 0)
		memcpy(entry->argtypes, argtypes, sizeof(Oid) * nargs);
	entry->plan = plan;
	entry->generation = generation;
	entry->cursor_options = cursor_options;
	if (fresh)
		*fresh = true;
	return plan;
}

/*
 * Statement text memo: a request's shape key (e.g. "get", entity, include
 * spec) -> the statement text it produces, so that a repeated request skips
 * parsing its include spec and writing SQL.  Entries are valid for one
 * registry generation.
 */
typedef struct MemoEntry
{
	uint64		key;
	char	   *shape;			/* the full shape key, in TopMemoryContext */
	char	   *sql;
	uint64		generation;
} MemoEntry;

static HTAB *memo = NULL;

#define MAX_MEMO_ENTRIES 2000

static uint64
memo_hash(const char *shape)
{
	return hash_bytes_extended((const unsigned char *) shape, strlen(shape), 7);
}

const char *
statement_memo_get(const char *shape)
{
	uint64		key;
	MemoEntry  *entry;

	if (memo == NULL)
		return NULL;
	key = memo_hash(shape);
	entry = hash_search(memo, &key, HASH_FIND, NULL);
	if (entry == NULL || entry->generation != registry_generation() ||
		strcmp(entry->shape, shape) != 0)
		return NULL;
	return entry->sql;
}

void
statement_memo_put(const char *shape, const char *sql)
{
	uint64		key = memo_hash(shape);
	MemoEntry  *entry;
	bool		found;

	if (memo == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(uint64);
		ctl.entrysize = sizeof(MemoEntry);
		memo = hash_create("moment statement memo", 256, &ctl, HASH_ELEM | HASH_BLOBS);
	}
	if (hash_get_num_entries(memo) >= MAX_MEMO_ENTRIES)
	{
		/* nothing points into the memo between calls: drop it whole */
		HASH_SEQ_STATUS status;
		MemoEntry  *old;

		hash_seq_init(&status, memo);
		while ((old = hash_seq_search(&status)) != NULL)
		{
			pfree(old->shape);
			pfree(old->sql);
			hash_search(memo, &old->key, HASH_REMOVE, NULL);
		}
	}
	entry = hash_search(memo, &key, HASH_ENTER, &found);
	if (found)
	{
		pfree(entry->shape);
		pfree(entry->sql);
	}
	entry->shape = MemoryContextStrdup(TopMemoryContext, shape);
	entry->sql = MemoryContextStrdup(TopMemoryContext, sql);
	entry->generation = registry_generation();
}
