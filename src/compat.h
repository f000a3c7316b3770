/*
 * compat.h: the PostgreSQL versions moment builds against.  Every
 * PG_VERSION_NUM test of the project lives here.
 */
#ifndef MOMENT_COMPAT_H
#define MOMENT_COMPAT_H

#include "postgres.h"

#if PG_VERSION_NUM < 150000
#error "moment needs PostgreSQL 15 or later (these headers are older)"
#endif

#endif							/* MOMENT_COMPAT_H */
