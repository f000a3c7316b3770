/*
 * shard.h: a moment database as a shard of moment_router.
 */
#ifndef MOMENT_SHARD_H
#define MOMENT_SHARD_H

#include "postgres.h"

/*
 * Takes the lock a write to the company holds until its transaction ends,
 * which moment_internal.shard_wait_for_writers() waits for once the
 * company's fence is up (tenant.c calls it before looking at the fence).
 */
extern void shard_lock_company_for_write(int64 company_id);

#endif							/* MOMENT_SHARD_H */
