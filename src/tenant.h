/*
 * tenant.h: the company in force and the current role's access to it.
 */
#ifndef MOMENT_TENANT_H
#define MOMENT_TENANT_H

#include "postgres.h"

typedef struct CompanyInForce
{
	int64		id;
	const char *code;
	bool		writable;
} CompanyInForce;

/*
 * The company in force (moment.company, else the "company" claim of
 * request.jwt.claims), checked against the current role's grants.  Raises
 * 22023 when there is none, 42501 when the role may not use it (or, with
 * for_write, may only read it).
 */
extern CompanyInForce tenant_company(bool for_write);
extern void tenant_invalidate(void);
extern long tenant_cached_companies(void);

#endif							/* MOMENT_TENANT_H */
