/*
 * moment.h: settings, limits and small helpers shared by every module.
 */
#ifndef MOMENT_H
#define MOMENT_H

#include "postgres.h"

#include "compat.h"
#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "utils/jsonb.h"

/* The hard ceiling of a listing: nothing can lift it. */
#define MOMENT_HARD_LIMIT 30000

/* Include specs longer than this, or deeper than this, are refused (54000). */
#define MOMENT_MAX_SPEC_BYTES 8192
#define MOMENT_MAX_RELATION_DEPTH 3

/* GUCs (moment.c) */
extern char *moment_company_setting;
extern int	moment_default_limit;
extern int	moment_max_limit;
extern int	moment_max_batch_size;
extern int	moment_plan_cache_size;	/* kB */
extern int	moment_limit_exceeded;

typedef enum LimitExceededAction
{
	LIMIT_EXCEEDED_WARNING,
	LIMIT_EXCEEDED_ERROR
} LimitExceededAction;

/* The version of this library, from moment.control (the Makefile passes it). */
#ifndef MOMENT_VERSION
#error "MOMENT_VERSION is not defined: build with the project's Makefile"
#endif

/* util.c */
extern char *camel_case(const char *snake);
extern char *camel_join(const char *prefix, const char *name);
typedef struct OwnerSwitch
{
	Oid			user;
	int			context;
	int			guc_nest_level;
} OwnerSwitch;

extern void run_as_extension_owner(OwnerSwitch *saved);
extern void restore_user(OwnerSwitch *saved);
extern Oid	moment_extension_owner(void);
extern Oid	moment_namespace(void);
extern int	moment_catalog_version(void);
extern bool moment_is_admin(void);
extern void moment_reset_extension_cache(void);
extern void spi_check(int rc, const char *what);
extern bool loading_by_copy(void);
extern bool error_must_propagate(ErrorData *edata);
extern ErrorData *run_in_subtransaction(bool (*work) (void *arg), void *arg);
extern void rethrow_without_sql_context(ErrorData *edata) pg_attribute_noreturn();

/* errors.c */
extern void translate_error(ErrorData *edata);
extern void raise_translated(MemoryContext caller_context) pg_attribute_noreturn();

/*
 * The body of an API entry point: an error leaves it in the API's words
 * (errors.c).  Use as
 *     API_ENTRY_BEGIN; result = ...; API_ENTRY_END;
 */
#define API_ENTRY_BEGIN \
	do { \
		MemoryContext api_entry_context = CurrentMemoryContext; \
		PG_TRY();
#define API_ENTRY_END \
		PG_CATCH(); \
		{ \
			raise_translated(api_entry_context); \
		} \
		PG_END_TRY(); \
	} while (0)
extern char *closest_name(const char *given, List *candidates);
extern char *name_list(List *candidates, int max_names);

/* JSON building helpers (util.c) */
extern void jb_key(JsonbParseState **state, const char *key);
extern void jb_string(JsonbParseState **state, const char *value, JsonbIteratorToken token);
extern void jb_int64(JsonbParseState **state, int64 value, JsonbIteratorToken token);
extern void jb_bool(JsonbParseState **state, bool value, JsonbIteratorToken token);
extern void jb_null(JsonbParseState **state, JsonbIteratorToken token);
extern void jb_jsonb(JsonbParseState **state, Jsonb *value, JsonbIteratorToken token);
extern char *jsonb_value_text(JsonbValue *value);
extern const char *jsonb_type_name(JsonbValue *value);
extern const char *jsonb_type_phrase(JsonbValue *value);

#endif							/* MOMENT_H */
