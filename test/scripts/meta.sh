#!/bin/sh
# META.json (PGXN) is in step with moment.control, the Makefile and sql/.
exec "$MOMENT_REPO/scripts/check-meta" "$MOMENT_REPO"
