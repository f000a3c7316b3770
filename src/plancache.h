/*
 * plancache.h: prepared statements kept per backend, keyed by their text.
 *
 * The text of a statement is a deterministic function of the request's
 * shape (entity, projection, filter fields and operators, order), never of
 * its values, so equal shapes share one plan.
 */
#ifndef MOMENT_PLANCACHE_H
#define MOMENT_PLANCACHE_H

#include "postgres.h"

#include "executor/spi.h"

extern SPIPlanPtr plancache_get(const char *sql, int nargs, Oid *argtypes);
extern SPIPlanPtr plancache_get_with_options(const char *sql, int nargs, Oid *argtypes,
											 int cursor_options, bool *fresh);
extern const char *statement_memo_get(const char *shape);
extern void statement_memo_put(const char *shape, const char *sql);
extern void plancache_release_retired(void);
extern long plancache_size(void);
extern int64 plancache_prepared(void);

#endif							/* MOMENT_PLANCACHE_H */
