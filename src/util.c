/*
 * util.c: names, the extension's owner and schema, SPI and JSON helpers.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "tcop/pquery.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/numeric.h"
#include "utils/resowner.h"
#include "utils/varlena.h"

#include "moment.h"

static Oid	cached_extension_owner = InvalidOid;
static Oid	cached_namespace = InvalidOid;
static int	cached_catalog_version = 0;

/*
 * lowerCamelCase of a snake_case name: time_record_date -> timeRecordDate.
 */
char *
camel_case(const char *snake)
{
	StringInfoData buf;
	bool		upper_next = false;

	initStringInfo(&buf);
	for (const char *p = snake; *p; p++)
	{
		if (*p == '_')
		{
			/* a leading underscore stays; others start a new word */
			if (buf.len > 0)
				upper_next = true;
			continue;
		}
		if (upper_next)
			appendStringInfoChar(&buf, pg_toupper((unsigned char) *p));
		else
			appendStringInfoChar(&buf, *p);
		upper_next = false;
	}
	return buf.data;
}

/*
 * The flattened JSON key of a relation path: ("projectCustomer", "name") ->
 * "projectCustomerName".  An empty prefix leaves the name as it is.
 */
char *
camel_join(const char *prefix, const char *name)
{
	StringInfoData buf;

	if (prefix == NULL || prefix[0] == '\0')
		return pstrdup(name);
	initStringInfo(&buf);
	appendStringInfoString(&buf, prefix);
	appendStringInfoChar(&buf, pg_toupper((unsigned char) name[0]));
	appendStringInfoString(&buf, name + 1);
	return buf.data;
}

PG_FUNCTION_INFO_V1(moment_camel_case);
Datum
moment_camel_case(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(camel_case(text_to_cstring(PG_GETARG_TEXT_PP(0)))));
}

void
moment_reset_extension_cache(void)
{
	cached_extension_owner = InvalidOid;
	cached_namespace = InvalidOid;
	cached_catalog_version = 0;
}

Oid
moment_extension_owner(void)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;

	if (OidIsValid(cached_extension_owner))
		return cached_extension_owner;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum("moment"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (!HeapTupleIsValid(tuple))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("extension \"moment\" is not installed in this database")));
	cached_extension_owner = ((Form_pg_extension) GETSTRUCT(tuple))->extowner;
	{
		bool		isnull;
		Datum		version = heap_getattr(tuple, Anum_pg_extension_extversion,
										   RelationGetDescr(rel), &isnull);

		/* the SQL objects of 0.1.0 lack what 0.2.0 added; the library serves both */
		cached_catalog_version = (!isnull && strcmp(TextDatumGetCString(version), "0.1.0") == 0) ? 1 : 2;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return cached_extension_owner;
}

/* 1 when the installed SQL objects are those of 0.1.0, 2 for 0.2.0. */
int
moment_catalog_version(void)
{
	if (cached_catalog_version == 0)
		(void) moment_extension_owner();
	return cached_catalog_version;
}

PG_FUNCTION_INFO_V1(moment_version);
Datum
moment_version(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(MOMENT_VERSION));
}

Oid
moment_namespace(void)
{
	if (!OidIsValid(cached_namespace))
		cached_namespace = get_namespace_oid("moment", false);
	return cached_namespace;
}

/* Superusers and the extension's owner may use any company and administer. */
bool
moment_is_admin(void)
{
	return superuser() || GetUserId() == moment_extension_owner();
}

/*
 * Catalog reads run as the extension owner, the way foreign key checks run
 * as the table owner, so that roles need no privileges on the catalog.  As
 * PostgreSQL does for maintenance run as a table owner, the operation is
 * restricted and search_path pinned to pg_catalog: otherwise a caller's
 * search_path could slip its own operators into a query run as the owner.
 * restore_user undoes both; so does transaction abort.
 */
void
run_as_extension_owner(OwnerSwitch *saved)
{
	Oid			owner = moment_extension_owner();

	GetUserIdAndSecContext(&saved->user, &saved->context);
	SetUserIdAndSecContext(owner, saved->context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	saved->guc_nest_level = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
}

void
restore_user(OwnerSwitch *saved)
{
	AtEOXact_GUC(true, saved->guc_nest_level);
	SetUserIdAndSecContext(saved->user, saved->context);
}

/*
 * The one policy for catching errors: these are never turned into a result,
 * relabelled and replayed, or swallowed, and nothing is committed after
 * them.  A cancel or timeout, a shutdown (class 57), a lack of resources
 * (53, out of memory included), a serialization failure or deadlock (40),
 * a system error (58), an internal error (XX) and "transaction aborted"
 * (25P02) go on to the caller as they are.
 */
bool
error_must_propagate(ErrorData *edata)
{
	int			category = ERRCODE_TO_CATEGORY(edata->sqlerrcode);

	return category == ERRCODE_TO_CATEGORY(ERRCODE_OPERATOR_INTERVENTION) ||
		category == ERRCODE_TO_CATEGORY(ERRCODE_INSUFFICIENT_RESOURCES) ||
		category == ERRCODE_TO_CATEGORY(ERRCODE_TRANSACTION_ROLLBACK) ||
		category == ERRCODE_TO_CATEGORY(ERRCODE_SYSTEM_ERROR) ||
		category == ERRCODE_TO_CATEGORY(ERRCODE_INTERNAL_ERROR) ||
		edata->sqlerrcode == ERRCODE_IN_FAILED_SQL_TRANSACTION ||
		edata->elevel > ERROR;
}

/*
 * Runs work(arg) in an internal subtransaction, committed when work returns
 * true and rolled back when it returns false.  An error rolls it back too;
 * one that error_must_propagate() is raised again at once, any other is
 * returned, copied into the caller's memory, for the caller to raise again,
 * relabel or turn into a result; NULL means no error.  The caller's memory
 * context and resource owner are restored either way.
 */
ErrorData *
run_in_subtransaction(bool (*work) (void *arg), void *arg)
{
	MemoryContext caller_context = CurrentMemoryContext;
	ResourceOwner caller_owner = CurrentResourceOwner;
	ErrorData  *volatile error = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(caller_context);
	PG_TRY();
	{
		if (work(arg))
			ReleaseCurrentSubTransaction();
		else
			RollbackAndReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(caller_context);
		error = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(caller_context);
	CurrentResourceOwner = caller_owner;
	/* as it is, but for the generated statements in its context */
	if (error != NULL && error_must_propagate(error))
		rethrow_without_sql_context(error);
	return error;
}

/*
 * Raises an error again without the "SQL statement ..." lines of its
 * context: the statements moment generates are no business of the user's.
 */
void
rethrow_without_sql_context(ErrorData *edata)
{
	if (edata->context != NULL)
	{
		StringInfoData kept;
		char	   *line = edata->context;

		initStringInfo(&kept);
		while (line && *line)
		{
			char	   *end = strchr(line, '\n');
			int			len = end ? end - line : strlen(line);

			if (strncmp(line, "SQL statement \"", 15) != 0 &&
				strncmp(line, "SQL expression \"", 16) != 0)
			{
				if (kept.len > 0)
					appendStringInfoChar(&kept, '\n');
				appendBinaryStringInfo(&kept, line, len);
			}
			line = end ? end + 1 : NULL;
		}
		edata->context = kept.len > 0 ? kept.data : NULL;
	}
	ReThrowError(edata);
}

void
spi_check(int rc, const char *what)
{
	if (rc < 0)
		elog(ERROR, "moment: %s failed: %s", what, SPI_result_code_string(rc));
}

/*
 * The candidate closest to what the user typed, if it is close enough to be
 * a likely typo; NULL otherwise.
 */
char *
closest_name(const char *given, List *candidates)
{
	ListCell   *cell;
	char	   *best = NULL;
	int			best_distance = 4;
	int			given_len = strlen(given);

	if (given_len > 255)
		return NULL;
	foreach(cell, candidates)
	{
		char	   *candidate = lfirst(cell);
		int			len = strlen(candidate);
		int			distance;

		if (len > 255)
			continue;
		/* case-insensitive match first: customername -> customerName */
		if (pg_strcasecmp(candidate, given) == 0)
			return candidate;
		distance = varstr_levenshtein_less_equal(given, given_len, candidate, len,
												 1, 1, 1, best_distance, false);
		if (distance < best_distance && distance <= Max(2, len / 3))
		{
			best_distance = distance;
			best = candidate;
		}
	}
	return best;
}

/* "a, b, c" of at most max_names names, with ", ..." after that. */
char *
name_list(List *candidates, int max_names)
{
	StringInfoData buf;
	ListCell   *cell;
	int			n = 0;

	initStringInfo(&buf);
	foreach(cell, candidates)
	{
		if (n == max_names)
		{
			appendStringInfoString(&buf, ", ...");
			break;
		}
		if (n > 0)
			appendStringInfoString(&buf, ", ");
		appendStringInfoString(&buf, (char *) lfirst(cell));
		n++;
	}
	return buf.data;
}

/* ---- JSON building ---- */

void
jb_key(JsonbParseState **state, const char *key)
{
	JsonbValue	v;

	v.type = jbvString;
	v.val.string.val = (char *) key;
	v.val.string.len = strlen(key);
	pushJsonbValue(state, WJB_KEY, &v);
}

void
jb_string(JsonbParseState **state, const char *value, JsonbIteratorToken token)
{
	JsonbValue	v;

	v.type = jbvString;
	v.val.string.val = (char *) value;
	v.val.string.len = strlen(value);
	pushJsonbValue(state, token, &v);
}

void
jb_int64(JsonbParseState **state, int64 value, JsonbIteratorToken token)
{
	JsonbValue	v;

	v.type = jbvNumeric;
	v.val.numeric = int64_to_numeric(value);
	pushJsonbValue(state, token, &v);
}

void
jb_bool(JsonbParseState **state, bool value, JsonbIteratorToken token)
{
	JsonbValue	v;

	v.type = jbvBool;
	v.val.boolean = value;
	pushJsonbValue(state, token, &v);
}

void
jb_null(JsonbParseState **state, JsonbIteratorToken token)
{
	JsonbValue	v;

	v.type = jbvNull;
	pushJsonbValue(state, token, &v);
}

/* Push a whole jsonb document as an array element or object value. */
void
jb_jsonb(JsonbParseState **state, Jsonb *value, JsonbIteratorToken token)
{
	JsonbValue	v;

	if (JB_ROOT_IS_SCALAR(value))
	{
		JsonbExtractScalar(&value->root, &v);
		pushJsonbValue(state, token, &v);
		return;
	}
	v.type = jbvBinary;
	v.val.binary.data = &value->root;
	v.val.binary.len = VARSIZE(value) - VARHDRSZ;
	pushJsonbValue(state, token, &v);
}

/*
 * The text a JSON scalar stands for, as a PostgreSQL input function wants
 * it: strings as they are, numbers and booleans in their JSON spelling,
 * containers as JSON text.
 */
char *
jsonb_value_text(JsonbValue *value)
{
	switch (value->type)
	{
		case jbvString:
			return pnstrdup(value->val.string.val, value->val.string.len);
		case jbvNumeric:
			return DatumGetCString(DirectFunctionCall1(numeric_out,
													   NumericGetDatum(value->val.numeric)));
		case jbvBool:
			return pstrdup(value->val.boolean ? "true" : "false");
		case jbvNull:
			return NULL;
		default:
			{
				Jsonb	   *jb = JsonbValueToJsonb(value);

				return JsonbToCString(NULL, &jb->root, VARSIZE(jb));
			}
	}
}

const char *
jsonb_type_name(JsonbValue *value)
{
	switch (value->type)
	{
		case jbvNull:
			return "null";
		case jbvString:
			return "string";
		case jbvNumeric:
			return "number";
		case jbvBool:
			return "boolean";
		case jbvArray:
			return "array";
		case jbvObject:
			return "object";
		case jbvBinary:
			return JsonContainerIsArray(value->val.binary.data) ? "array" : "object";
		default:
			return "unknown";
	}
}

/* "a string", "an array", "null": for messages. */
const char *
jsonb_type_phrase(JsonbValue *value)
{
	const char *name = jsonb_type_name(value);

	if (strcmp(name, "null") == 0)
		return "null";
	if (name[0] == 'a' || name[0] == 'o' || name[0] == 'u')
		return psprintf("an %s", name);
	return psprintf("a %s", name);
}

/*
 * A COPY FROM loads rows as they were: a restore of a dump (pg_dump writes
 * COPY), where a time record dated before its user's time lock, or one whose
 * membership was left empty, is history, not new work, and no change to
 * notify a webhook of (pg_restore -j loads tables in any order, the webhooks
 * first too).  Row-level security refuses COPY FROM to every role it applies
 * to, so only roles that bypass it (superusers, the tables' owner) can load
 * this way.
 */
bool
loading_by_copy(void)
{
	return ActivePortal != NULL &&
		(ActivePortal->commandTag == CMDTAG_COPY || ActivePortal->commandTag == CMDTAG_COPY_FROM);
}
