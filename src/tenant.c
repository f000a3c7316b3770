/*
 * tenant.c: which company a request works on, and whether the role may.
 *
 * Companies and their grants are read (as the extension owner) once per
 * backend and company code, and kept until moment.companies or
 * moment.company_grants change or role membership changes.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "moment.h"
#include "registry.h"
#include "tenant.h"

typedef struct CompanyGrant
{
	Oid			role;
	bool		writable;
} CompanyGrant;

typedef struct CompanyEntry
{
	char	   *code;
	bool		exists;
	int64		id;
	int			ngrants;
	CompanyGrant *grants;
} CompanyEntry;

#define MAX_CACHED_COMPANIES 256

static MemoryContext tenant_context = NULL;
static List *companies = NIL;	/* CompanyEntry *, in tenant_context */
static bool tenant_valid = false;

/* the last request.jwt.claims seen, and the company claim in it */
static char *last_claims = NULL;
static char *last_claimed_code = NULL;

void
tenant_invalidate(void)
{
	tenant_valid = false;
}

static void
tenant_reset(void)
{
	if (tenant_context == NULL)
		tenant_context = AllocSetContextCreate(CacheMemoryContext, "moment tenants",
											   ALLOCSET_SMALL_SIZES);
	else
		MemoryContextReset(tenant_context);
	companies = NIL;
	last_claims = NULL;
	last_claimed_code = NULL;
	tenant_valid = true;
	registry_watch_catalog();
}

/* The "company" claim of PostgREST's request.jwt.claims, or NULL. */
static const char *
claimed_company(void)
{
	const char *claims = GetConfigOption("request.jwt.claims", true, false);
	Jsonb	   *jb;
	JsonbValue	key;
	JsonbValue *value;
	MemoryContext old_context;

	if (claims == NULL || claims[0] == '\0')
		return NULL;
	if (last_claims != NULL && strcmp(last_claims, claims) == 0)
		return last_claimed_code;

	jb = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(claims)));
	old_context = MemoryContextSwitchTo(tenant_context);
	last_claims = pstrdup(claims);
	last_claimed_code = NULL;
	if (JB_ROOT_IS_OBJECT(jb))
	{
		key.type = jbvString;
		key.val.string.val = "company";
		key.val.string.len = strlen("company");
		value = findJsonbValueFromContainer(&jb->root, JB_FOBJECT, &key);
		if (value != NULL && (value->type == jbvString || value->type == jbvNumeric))
			last_claimed_code = jsonb_value_text(value);
	}
	MemoryContextSwitchTo(old_context);
	return last_claimed_code;
}

/*
 * Reads a company and its grants, by code or (code NULL) by id, as the
 * extension owner.  A company that does not exist is cached too.
 */
static CompanyEntry *
load_company(const char *code, int64 id)
{
	OwnerSwitch saved;
	Oid			argtypes[1];
	Datum		values[1];
	CompanyEntry *entry;
	MemoryContext old_context;

	if (list_length(companies) >= MAX_CACHED_COMPANIES)
		tenant_reset();

	argtypes[0] = code ? TEXTOID : INT8OID;
	values[0] = code ? CStringGetTextDatum(code) : Int64GetDatum(id);
	spi_check(SPI_connect(), "SPI_connect");
	run_as_extension_owner(&saved);
	spi_check(SPI_execute_with_args(code ?
									"SELECT c.id, g.role::oid, g.writable, c.code "
									"FROM moment.companies c "
									"LEFT JOIN moment.company_grants g ON g.company_id OPERATOR(pg_catalog.=) c.id "
									"WHERE c.code OPERATOR(pg_catalog.=) $1" :
									"SELECT c.id, g.role::oid, g.writable, c.code "
									"FROM moment.companies c "
									"LEFT JOIN moment.company_grants g ON g.company_id OPERATOR(pg_catalog.=) c.id "
									"WHERE c.id OPERATOR(pg_catalog.=) $1",
									1, argtypes, values, NULL, true, 0),
			  "reading moment.companies");
	restore_user(&saved);

	old_context = MemoryContextSwitchTo(tenant_context);
	entry = palloc0(sizeof(CompanyEntry));
	entry->code = code ? pstrdup(code) : NULL;
	entry->id = id;
	entry->exists = SPI_processed > 0;
	entry->grants = palloc0(sizeof(CompanyGrant) * Max(1, SPI_processed));
	for (uint64 row = 0; row < SPI_processed; row++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[row];
		TupleDesc	tupdesc = SPI_tuptable->tupdesc;
		bool		isnull;

		entry->id = DatumGetInt64(SPI_getbinval(tuple, tupdesc, 1, &isnull));
		if (entry->code == NULL)
			entry->code = pstrdup(SPI_getvalue(tuple, tupdesc, 4));
		entry->grants[entry->ngrants].role = DatumGetObjectId(SPI_getbinval(tuple, tupdesc, 2, &isnull));
		if (isnull)
			continue;
		entry->grants[entry->ngrants].writable = DatumGetBool(SPI_getbinval(tuple, tupdesc, 3, &isnull));
		entry->ngrants++;
	}
	companies = lappend(companies, entry);
	MemoryContextSwitchTo(old_context);
	SPI_finish();
	return entry;
}

/* The cached company of that code, or (code NULL) of that id. */
static CompanyEntry *
find_company(const char *code, int64 id)
{
	ListCell   *cell;

	if (!tenant_valid)
		tenant_reset();
	foreach(cell, companies)
	{
		CompanyEntry *entry = lfirst(cell);

		if (code ? (entry->code != NULL && strcmp(entry->code, code) == 0) :
			(entry->exists && entry->id == id))
			return entry;
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
	for (int i = 0; i < entry->ngrants; i++)
	{
		if (is_member_of_role(user, entry->grants[i].role))
		{
			granted = true;
			*writable |= entry->grants[i].writable;
		}
	}
	return granted;
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

	/* our own copy: finding the company may reset the cache it came from */
	code = pstrdup(code);
	entry = find_company(code, 0);
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

	result.id = entry->id;
	result.code = code;
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
	PG_RETURN_BOOL(role_granted(find_company(NULL, PG_GETARG_INT64(0)), &writable));
}
