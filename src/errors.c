/*
 * errors.c: errors in the API's own words.
 *
 * Constraint violations raised by the statements moment runs speak of
 * columns and tables (user_account_id, relation "time_records") and show
 * the failing row, company_id included.  Before such an error leaves the
 * API, its detail is rewritten in fields and entities
 * (Key (userAccountId)=(99) is not present in entity userAccounts.), and the
 * "SQL statement" lines of its context (moment's generated SQL) are
 * dropped.  The SQLSTATE and the diagnostic fields (table, column,
 * constraint) stay as PostgreSQL set them.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_constraint.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "moment.h"
#include "registry.h"

/* The entity whose table is schema.table, if the catalog is at hand. */
static MomentEntity *
entity_of_table(const char *schema, const char *table)
{
	Oid			nsp;
	Oid			relid;

	if (schema == NULL || table == NULL)
		return NULL;
	nsp = get_namespace_oid(schema, true);
	if (!OidIsValid(nsp))
		return NULL;
	relid = get_relname_relid(table, nsp);
	if (!OidIsValid(relid))
		return NULL;
	return registry_entity_by_relid(relid);
}

static const char *
entity_label(const char *schema, const char *table)
{
	MomentEntity *entity = entity_of_table(schema, table);

	return entity ? entity->name : table;
}

/* Splits "a, b, c" on ", " (the separator PostgreSQL writes). */
static List *
split_list(const char *text, int len)
{
	List	   *items = NIL;
	int			start = 0;

	for (int i = 0; i <= len; i++)
	{
		if (i == len || (text[i] == ',' && i + 1 < len && text[i + 1] == ' '))
		{
			items = lappend(items, pnstrdup(text + start, i - start));
			start = i + 2;
			i++;
		}
	}
	return items;
}

/*
 * "Key (company_id, user_account_id)=(1, 99) <rest>" ->
 * "Key (userAccountId)=(99) <rest>", with company_id and its value left
 * out.  NULL when the text is not of that form (or values hold ", ").
 */
static char *
rewrite_key(const char *detail, const char **rest)
{
	const char *open = strchr(detail, '(');
	const char *close;
	const char *values_open;
	const char *values_close;
	List	   *columns;
	List	   *values;
	StringInfoData buf;
	ListCell   *ccell;
	ListCell   *vcell;
	bool		first = true;

	if (strncmp(detail, "Key (", 5) != 0 || open == NULL)
		return NULL;
	close = strstr(open, ")=(");
	if (close == NULL)
		return NULL;
	values_open = close + 2;
	values_close = strchr(values_open, ')');
	while (values_close && values_close[1] != ' ' && values_close[1] != '\0')
		values_close = strchr(values_close + 1, ')');
	if (values_close == NULL)
		return NULL;
	columns = split_list(open + 1, close - open - 1);
	values = split_list(values_open + 1, values_close - values_open - 1);
	if (list_length(columns) != list_length(values))
		return NULL;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "Key (");
	foreach(ccell, columns)
	{
		char	   *column = lfirst(ccell);

		if (strcmp(column, "company_id") == 0)
			continue;
		appendStringInfo(&buf, "%s%s", first ? "" : ", ", camel_case(column));
		first = false;
	}
	appendStringInfoString(&buf, ")=(");
	first = true;
	forboth(ccell, columns, vcell, values)
	{
		if (strcmp((char *) lfirst(ccell), "company_id") == 0)
			continue;
		appendStringInfo(&buf, "%s%s", first ? "" : ", ", (char *) lfirst(vcell));
		first = false;
	}
	appendStringInfoChar(&buf, ')');
	*rest = values_close + 1;
	return buf.data;
}

/* The one column a constraint of a table is on, or NULL. */
static char *
constraint_column(const char *schema, const char *table, const char *constraint)
{
	Oid			nsp = schema ? get_namespace_oid(schema, true) : InvalidOid;
	Oid			relid = OidIsValid(nsp) ? get_relname_relid(table, nsp) : InvalidOid;
	Oid			conoid;
	HeapTuple	tuple;
	bool		isnull;
	Datum		conkey;
	char	   *result = NULL;

	if (!OidIsValid(relid) || constraint == NULL)
		return NULL;
	conoid = get_relation_constraint_oid(relid, constraint, true);
	if (!OidIsValid(conoid))
		return NULL;
	tuple = SearchSysCache1(CONSTROID, ObjectIdGetDatum(conoid));
	if (!HeapTupleIsValid(tuple))
		return NULL;
	conkey = SysCacheGetAttr(CONSTROID, tuple, Anum_pg_constraint_conkey, &isnull);
	if (!isnull)
	{
		ArrayType  *array = DatumGetArrayTypeP(conkey);

		if (ARR_NDIM(array) == 1 && ARR_DIMS(array)[0] == 1)
			result = get_attname(relid, ((int16 *) ARR_DATA_PTR(array))[0], true);
	}
	ReleaseSysCache(tuple);
	return result;
}

void
translate_error(ErrorData *edata)
{
	const char *entity;

	if (ERRCODE_TO_CATEGORY(edata->sqlerrcode) != ERRCODE_TO_CATEGORY(ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION))
		return;
	entity = entity_label(edata->schema_name, edata->table_name);

	switch (edata->sqlerrcode)
	{
		case ERRCODE_NOT_NULL_VIOLATION:
			if (edata->column_name != NULL && edata->table_name != NULL)
				edata->detail = psprintf("Field %s of entity %s is required.",
										 camel_case(edata->column_name), entity);
			break;
		case ERRCODE_FOREIGN_KEY_VIOLATION:
		case ERRCODE_UNIQUE_VIOLATION:
		case ERRCODE_EXCLUSION_VIOLATION:
			if (edata->detail != NULL)
			{
				const char *rest = NULL;
				char	   *key = rewrite_key(edata->detail, &rest);

				if (key != NULL)
				{
					const char *table_word;

					/* ' is not present in table "user_accounts".' names the other table */
					if ((table_word = strstr(rest, " table \"")) != NULL)
					{
						char	   *other = pstrdup(table_word + 8);
						char	   *quote = strchr(other, '"');
						char	   *verb = pnstrdup(rest, table_word - rest);

						if (quote)
							*quote = '\0';
						edata->detail = psprintf("%s%s entity %s.", key, verb,
												 entity_label(edata->schema_name, other));
					}
					else
						edata->detail = psprintf("%s%s", key, rest);
				}
				else if (strncmp(edata->detail, "Failing row contains", 20) == 0)
					edata->detail = NULL;
			}
			break;
		case ERRCODE_CHECK_VIOLATION:
			if (edata->detail != NULL && strncmp(edata->detail, "Failing row contains", 20) == 0)
			{
				char	   *column = constraint_column(edata->schema_name, edata->table_name,
													   edata->constraint_name);

				MomentEntity *owner = entity_of_table(edata->schema_name, edata->table_name);
				MomentField *field = (column && owner && owner->table_loaded) ?
					entity_field(owner, camel_case(column)) : NULL;

				edata->detail = column ?
					psprintf("Field %s of entity %s fails check %s.", camel_case(column), entity,
							 edata->constraint_name) :
					psprintf("A row of entity %s fails check %s.", entity,
							 edata->constraint_name ? edata->constraint_name : "?");
				if (field != NULL && field->allowed_values != NIL && edata->hint == NULL)
					edata->hint = psprintf("%s is one of: %s.", field->json_name,
										   name_list(field->allowed_values, 20));
			}
			break;
		default:
			if (edata->detail != NULL && strncmp(edata->detail, "Failing row contains", 20) == 0)
				edata->detail = NULL;
			break;
	}
}

/*
 * In a PG_CATCH block of an API entry point: raises the error again in the
 * API's words.  caller_context is the memory context of the entry point.
 */
void
raise_translated(MemoryContext caller_context)
{
	ErrorData  *edata;

	MemoryContextSwitchTo(caller_context);
	edata = CopyErrorData();
	FlushErrorState();
	translate_error(edata);
	rethrow_without_sql_context(edata);
}
