/*
 * tenant.c: which company a request works on, and whether the role may.
 *
 * Companies and their grants are read as the extension owner, with a fresh
 * snapshot, once per company, and kept in a hash table by code (and one by
 * id) until moment.companies, moment.company_grants or a role membership
 * changes.  Each entry remembers the answer for the last role that asked,
 * so that resolving the company in force and checking the grant costs the
 * same for the 10 000th company as for the first.  At most
 * MAX_CACHED_COMPANIES entries are kept; the least recently used goes first.
 *
 * A grant counts for the current role when the role has the privileges of
 * the grantee (has_privs_of_role: NOINHERIT is honoured, as for table
 * privileges), and, from 0.2.0 on, only while the grantee holds this
 * database's mark, SELECT on a column of moment.grantees (grant_company
 * gives it, revoke_company takes it with the last grant): the rows of a
 * dropped role are inert, even for a new role that reuses its oid
 * (grant_company clears them first), and a membership of the cluster's
 * group roles needed by another database counts for nothing here.
 */
#include "postgres.h"

#include "catalog/pg_authid.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "lib/ilist.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "moment.h"
#include "plancache.h"
#include "registry.h"
#include "shared.h"
#include "shard.h"
#include "tenant.h"

#define MAX_CACHED_COMPANIES 65536

typedef struct CompanyGrant
{
	Oid			role;
	bool		writable;
} CompanyGrant;

typedef struct CompanyEntry
{
	char	   *code;			/* NULL for an id that does not exist */
	bool		exists;
	int64		id;
	bool		fenced;			/* being moved to another shard: writes refused */
	bool		moved;			/* moved to another shard: every call refused */
	int			ngrants;
	CompanyGrant *grants;
	dlist_node	lru;
	bool		in_by_code;
	bool		in_by_id;
	/* the answer for the last role that asked */
	Oid			answered_role;
	bool		answered_granted;
	bool		answered_writable;
} CompanyEntry;

typedef struct CompanySlot
{
	uint64		key;			/* hash of the code, or the id */
	CompanyEntry *entry;
} CompanySlot;

static MemoryContext tenant_context = NULL;
static HTAB *by_code = NULL;
static HTAB *by_id = NULL;
static dlist_head lru = DLIST_STATIC_INIT(lru);
static bool tenant_valid = false;

/* the last request.jwt.claims seen, and the company claim in it */
static ClaimsMemo claims_memo;

void
tenant_invalidate(void)
{
	tenant_valid = false;
}

long
tenant_cached_companies(void)
{
	return (tenant_valid && by_code) ? hash_get_num_entries(by_code) + hash_get_num_entries(by_id) : 0;
}

static HTAB *
make_table(const char *name)
{
	HASHCTL		ctl;

	ctl.keysize = sizeof(uint64);
	ctl.entrysize = sizeof(CompanySlot);
	ctl.hcxt = tenant_context;
	return hash_create(name, 256, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

static void
tenant_reset(void)
{
	if (tenant_context == NULL)
		tenant_context = AllocSetContextCreate(CacheMemoryContext, "moment tenants",
											   ALLOCSET_DEFAULT_SIZES);
	else
		MemoryContextReset(tenant_context);
	by_code = make_table("moment companies by code");
	by_id = make_table("moment companies by id");
	dlist_init(&lru);
	tenant_valid = true;
	registry_watch_catalog();
}

static uint64
code_key(const char *code)
{
	return hash_bytes_extended((const unsigned char *) code, strlen(code), 11);
}

static void
forget(CompanyEntry *entry)
{
	uint64		key;

	if (entry->in_by_code)
	{
		key = code_key(entry->code);
		hash_search(by_code, &key, HASH_REMOVE, NULL);
	}
	if (entry->in_by_id)
	{
		key = (uint64) entry->id;
		hash_search(by_id, &key, HASH_REMOVE, NULL);
	}
	dlist_delete(&entry->lru);
	if (entry->code)
		pfree(entry->code);
	if (entry->grants)
		pfree(entry->grants);
	pfree(entry);
}

/* Files an entry under a key, replacing whatever entry was there. */
static void
file_entry(HTAB *table, uint64 key, CompanyEntry *entry)
{
	CompanySlot *slot;
	bool		found;

	slot = hash_search(table, &key, HASH_FIND, NULL);
	if (slot != NULL && slot->entry != entry)
		forget(slot->entry);
	slot = hash_search(table, &key, HASH_ENTER, &found);
	slot->entry = entry;
	if (table == by_code)
		entry->in_by_code = true;
	else
		entry->in_by_id = true;
}

/* The "company" claim of PostgREST's request.jwt.claims, or NULL. */
static const char *
claimed_company(void)
{
	return claims_company(&claims_memo, GetConfigOption("request.jwt.claims", true, false), false);
}

/* moment.grantees, whose column privileges are the marks */
static Oid
grantees_relid(void)
{
	Oid			relid = get_relname_relid("grantees", moment_namespace());

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table moment.grantees is missing"),
				 errhint("Reinstall the extension moment.")));
	return relid;
}

/*
 * Whether a role holds the mark: SELECT on its column of moment.grantees
 * (relid; m000 to m255 by the oid, as moment_internal.mark_column computes
 * it), read from the column's ACL in the syscache.  Each column holds a 256th
 * of the roles with grants, so this reads a short list; a GRANT or REVOKE on
 * the table invalidates the tenant cache, as a change of the grants does.
 */
static bool
role_marked(Oid relid, Oid role)
{
	char		column[8];
	HeapTuple	tuple;
	Datum		acl_datum;
	bool		isnull;
	bool		marked = false;

	snprintf(column, sizeof(column), "m%03u", (unsigned) (role % 256));
	tuple = SearchSysCacheAttName(relid, column);
	if (!HeapTupleIsValid(tuple))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("column %s of table moment.grantees is missing", column),
				 errhint("Reinstall the extension moment.")));
	acl_datum = SysCacheGetAttr(ATTNAME, tuple, Anum_pg_attribute_attacl, &isnull);
	if (!isnull)
	{
		Acl		   *acl = DatumGetAclP(acl_datum);
		AclItem    *items = ACL_DAT(acl);
		int			n = ACL_NUM(acl);

		for (int i = 0; i < n && !marked; i++)
			if (items[i].ai_grantee == role && (ACLITEM_GET_PRIVS(items[i]) & ACL_SELECT) != 0)
				marked = true;
		if ((Pointer) acl != DatumGetPointer(acl_datum))
			pfree(acl);
	}
	ReleaseSysCache(tuple);
	return marked;
}

/*
 * Reads a company and its grants, by code or (code NULL) by id, as the
 * extension owner and with a fresh snapshot.  A company that does not exist
 * is cached too.
 */
static CompanyEntry *
load_company(const char *code, int64 id)
{
	OwnerSwitch saved;
	Oid			argtypes[1];
	Datum		values[1];
	CompanyEntry *entry;
	MemoryContext old_context;
	KeptPlan   *plan;
	bool		v1 = moment_catalog_version() < 2;
	Oid			marks;
	StringInfoData sql;

	if (hash_get_num_entries(by_code) + hash_get_num_entries(by_id) >= MAX_CACHED_COMPANIES)
		forget(dlist_container(CompanyEntry, lru, dlist_tail_node(&lru)));

	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT c.id, c.code, g.role::pg_catalog.oid, g.writable, %s "
					 "FROM moment.companies c LEFT JOIN moment.company_grants g "
					 "ON g.company_id OPERATOR(pg_catalog.=) c.id", v1 ? "false, false" : "c.fenced, c.moved");
	appendStringInfoString(&sql, code ? " WHERE c.code OPERATOR(pg_catalog.=) $1" :
						   " WHERE c.id OPERATOR(pg_catalog.=) $1");
	argtypes[0] = code ? TEXTOID : INT8OID;
	values[0] = code ? CStringGetTextDatum(code) : Int64GetDatum(id);

	spi_check(SPI_connect(), "SPI_connect");
	run_as_extension_owner(&saved);
	plan = plancache_get(sql.data, 1, argtypes);
	spi_check(SPI_execute_snapshot(kept_plan_spi(plan), values, NULL, GetLatestSnapshot(),
								   InvalidSnapshot, true, false, 0),
			  "reading moment.companies");
	restore_user(&saved);

	old_context = MemoryContextSwitchTo(tenant_context);
	entry = palloc0(sizeof(CompanyEntry));
	entry->code = code ? pstrdup(code) : NULL;
	entry->id = id;
	entry->exists = SPI_processed > 0;
	entry->grants = palloc0(sizeof(CompanyGrant) * Max(1, SPI_processed));
	/* 0.1.0's catalog has no marks: every grant row counts there */
	marks = v1 ? InvalidOid : grantees_relid();
	for (uint64 row = 0; row < SPI_processed; row++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[row];
		TupleDesc	tupdesc = SPI_tuptable->tupdesc;
		bool		isnull;
		Oid			role;

		entry->id = DatumGetInt64(SPI_getbinval(tuple, tupdesc, 1, &isnull));
		entry->fenced = DatumGetBool(SPI_getbinval(tuple, tupdesc, 5, &isnull));
		entry->moved = DatumGetBool(SPI_getbinval(tuple, tupdesc, 6, &isnull));
		if (entry->code == NULL)
			entry->code = pstrdup(SPI_getvalue(tuple, tupdesc, 2));
		role = DatumGetObjectId(SPI_getbinval(tuple, tupdesc, 3, &isnull));
		if (isnull || (OidIsValid(marks) && !role_marked(marks, role)))
			continue;			/* no grant, or the row of a role without the mark */
		entry->grants[entry->ngrants].role = role;
		entry->grants[entry->ngrants].writable = DatumGetBool(SPI_getbinval(tuple, tupdesc, 4, &isnull));
		entry->ngrants++;
	}
	MemoryContextSwitchTo(old_context);
	SPI_finish();

	/* an entry for the code, and for the id (also of an id no company has) */
	dlist_push_head(&lru, &entry->lru);
	if (entry->code != NULL)
		file_entry(by_code, code_key(entry->code), entry);
	if (entry->exists || entry->code == NULL)
		file_entry(by_id, (uint64) entry->id, entry);
	return entry;

}

/* The cached company of that code, or (code NULL) of that id. */
static CompanyEntry *
find_company(const char *code, int64 id)
{
	uint64		key;
	CompanySlot *slot;

	if (!tenant_valid)
		tenant_reset();
	key = code ? code_key(code) : (uint64) id;
	slot = hash_search(code ? by_code : by_id, &key, HASH_FIND, NULL);
	if (slot != NULL && (code ? (slot->entry->code != NULL && strcmp(slot->entry->code, code) == 0) :
						 slot->entry->id == id))
	{
		dlist_move_head(&lru, &slot->entry->lru);
		return slot->entry;
	}
	return load_company(code, id);
}

/* Whether the current role holds a grant of the company, and a writable one. */
static bool
role_granted(CompanyEntry *entry, bool *writable)
{
	Oid			user = GetUserId();
	bool		granted = false;

	*writable = false;
	if (!entry->exists)
		return false;
	if (entry->answered_role == user && OidIsValid(user))
	{
		*writable = entry->answered_writable;
		return entry->answered_granted;
	}
	for (int i = 0; i < entry->ngrants; i++)
	{
		if (has_privs_of_role(user, entry->grants[i].role))
		{
			granted = true;
			*writable |= entry->grants[i].writable;
		}
	}
	entry->answered_role = user;
	entry->answered_granted = granted;
	entry->answered_writable = *writable;
	return granted;
}

/*
 * A write to a company takes the company's write lock (shard.c), then looks
 * at its fence with the invalidations committed before the lock was granted:
 * a write either sees the fence, or began before it went up and is waited
 * for by moment_internal.shard_wait_for_writers().  Returns the entry,
 * reloaded; NULL when the company changed meanwhile (look it up again).
 */
static CompanyEntry *
check_write_fence(const char *code, int64 id)
{
	CompanyEntry *entry;

	shard_lock_company_for_write(id);
	AcceptInvalidationMessages();
	entry = find_company(code, 0);
	if (!entry->exists || entry->id != id)
		return NULL;
	if (entry->fenced)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("company \"%s\" is being moved to another shard", code),
				 errdetail("Writes to it are refused until the move is done; reads keep working."),
				 errhint("Retry the request in a moment.")));
	return entry;
}

CompanyInForce
tenant_company(bool for_write)
{
	CompanyInForce result;
	const char *code = moment_company_setting;
	CompanyEntry *entry;
	Oid			user = GetUserId();
	bool		granted = false;
	bool		writable = false;

	/*
	 * A grant revoked (or a catalog changed) by a transaction that committed
	 * since our last lock acquisition must count for this request, as a
	 * committed row would in READ COMMITTED.
	 */
	AcceptInvalidationMessages();
	if (!tenant_valid)
		tenant_reset();
	if (code == NULL || code[0] == '\0')
		code = claimed_company();
	if (code == NULL || code[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("no company in force"),
				 errhint("SET moment.company = '<company code>', or pass a \"company\" claim in request.jwt.claims.")));

	for (;;)
	{
		entry = find_company(code, 0);
		/* a call routed here before the company moved away: to be retried */
		if (entry->exists && entry->moved)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_IN_USE),
					 errmsg("company \"%s\" has moved to another shard", code),
					 errdetail("The call reached the shard the company left."),
					 errhint("Retry the request: it goes to the company's new shard.")));
		if (moment_is_admin())
		{
			if (!entry->exists)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("company \"%s\" does not exist", code)));
			granted = writable = true;
		}
		else
			granted = role_granted(entry, &writable);
		if (!granted)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("company \"%s\" is not granted to role \"%s\"", code,
							GetUserNameFromId(user, false)),
					 errhint("The extension owner can grant it with moment.grant_company().")));
		if (for_write && !writable)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("role \"%s\" may only read company \"%s\"",
							GetUserNameFromId(user, false), code)));
		if (!for_write || (entry = check_write_fence(code, entry->id)) != NULL)
			break;
	}

	result.id = entry->id;
	/* the entry may be evicted by a later lookup: the caller keeps a copy */
	result.code = pstrdup(entry->code);
	result.writable = writable;
	return result;
}

PG_FUNCTION_INFO_V1(moment_current_company_id);
Datum
moment_current_company_id(PG_FUNCTION_ARGS)
{
	bool		for_write = PG_ARGISNULL(0) ? false : PG_GETARG_BOOL(0);

	PG_RETURN_INT64(tenant_company(for_write).id);
}

/*
 * Row-level security of moment.companies: a role sees the companies it is
 * granted (superusers and the owner bypass row-level security anyway).
 */
PG_FUNCTION_INFO_V1(moment_company_visible);
Datum
moment_company_visible(PG_FUNCTION_ARGS)
{
	bool		writable;

	if (PG_ARGISNULL(0))
		PG_RETURN_BOOL(false);
	if (moment_is_admin())
		PG_RETURN_BOOL(true);
	AcceptInvalidationMessages();
	PG_RETURN_BOOL(role_granted(find_company(NULL, PG_GETARG_INT64(0)), &writable));
}
