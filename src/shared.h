/*
 * shared.h: small pieces both libraries need, moment (tenant.c, api.c) and
 * moment_router (router.c), which must read a request the same way: the
 * company claim of request.jwt.claims, and percent-encoding's hex digits.
 * Static inline, so that each library gets its own copy of one text
 * (include after postgres.h).
 */
#ifndef MOMENT_SHARED_H
#define MOMENT_SHARED_H

#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

/* The value of a hex digit, or -1. */
static inline int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * The last request.jwt.claims string seen and the company claim in it, in
 * TopMemoryContext: one string of each, replaced, so that memory does not
 * grow with distinct claims (PostgREST sends new ones with every token).
 */
typedef struct ClaimsMemo
{
	char	   *claims;
	char	   *code;
} ClaimsMemo;

/*
 * The "company" claim (a string, or a number as its text) of a claims
 * string, or NULL.  Malformed JSON raises jsonb_in's error, unless
 * tolerate_malformed (then NULL: the router sends such a call to a shard,
 * which raises what moment raises).
 */
static inline const char *
claims_company(ClaimsMemo *memo, const char *claims, bool tolerate_malformed)
{
	char	   *code = NULL;

	if (claims == NULL || claims[0] == '\0')
		return NULL;
	if (memo->claims != NULL && strcmp(memo->claims, claims) == 0)
		return memo->code;
	if (!tolerate_malformed ||
		pg_parse_json(makeJsonLexContextCstringLen(pstrdup(claims), strlen(claims), GetDatabaseEncoding(), false),
					  &nullSemAction) == JSON_SUCCESS)
	{
		Jsonb	   *jb = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(claims)));

		if (JB_ROOT_IS_OBJECT(jb) && !JB_ROOT_IS_SCALAR(jb))
		{
			JsonbValue	key;
			JsonbValue *value;

			key.type = jbvString;
			key.val.string.val = "company";
			key.val.string.len = strlen("company");
			value = findJsonbValueFromContainer(&jb->root, JB_FOBJECT, &key);
			if (value != NULL && value->type == jbvString)
				code = pnstrdup(value->val.string.val, value->val.string.len);
			else if (value != NULL && value->type == jbvNumeric)
				code = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(value->val.numeric)));
		}
	}
	if (memo->claims != NULL)
		pfree(memo->claims);
	if (memo->code != NULL)
		pfree(memo->code);
	memo->claims = MemoryContextStrdup(TopMemoryContext, claims);
	memo->code = code ? MemoryContextStrdup(TopMemoryContext, code) : NULL;
	return memo->code;
}

#endif							/* MOMENT_SHARED_H */
