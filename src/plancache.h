/*
 * plancache.h: prepared statements and statement texts kept per backend.
 *
 * A statement's text is a deterministic function of the request's shape
 * (entity, projection, filter fields and operators, order), never of its
 * values, so equal shapes share one plan.  Plans are kept per role as well:
 * row-level security makes a plan depend on the role it was planned for,
 * and PostgreSQL re-plans a statement whose role changed.  Everything kept
 * counts against moment.plan_cache_size; the least recently used entry is
 * evicted first, one at a time, and an evicted plan is freed as soon as no
 * statement runs it.
 */
#ifndef MOMENT_PLANCACHE_H
#define MOMENT_PLANCACHE_H

#include "postgres.h"

#include "executor/spi.h"
#include "nodes/pg_list.h"

typedef struct KeptPlan KeptPlan;

/* The kept plan for this text, prepared on first use (inside SPI_connect). */
extern KeptPlan *plancache_get(const char *sql, int nargs, Oid *argtypes);
extern KeptPlan *plancache_get_with_options(const char *sql, int nargs, Oid *argtypes,
											int cursor_options, bool *fresh);
/* SPI_execute_plan / SPI_execute_plan_extended on a kept plan. */
extern int	kept_plan_execute(KeptPlan *kept, Datum *values, const char *nulls, bool read_only,
							  long tcount);
extern int	kept_plan_execute_extended(KeptPlan *kept, const SPIExecuteOptions *options);
extern SPIPlanPtr kept_plan_spi(KeptPlan *kept);

/*
 * Statement text memo: a request's shape key -> the statement it produces,
 * valid while the registry's catalog and the structure of every entity the
 * statement reaches (entities: MomentEntity *) stay as they were.
 */
extern const char *statement_memo_get(const char *shape);
extern void statement_memo_put(const char *shape, const char *sql, List *entities);

extern void plancache_release_retired(void);
extern long plancache_size(void);
extern int64 plancache_prepared(void);
extern int64 plancache_evicted(void);
extern int64 plancache_bytes(void);

#endif							/* MOMENT_PLANCACHE_H */
