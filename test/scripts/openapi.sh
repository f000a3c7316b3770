#!/usr/bin/env bash
# The OpenAPI document (moment.openapi(), GET /openapi.json) checked by the
# tools people use: @apidevtools/swagger-parser, @redocly/cli lint, every
# example against its schema, and real answers of moment.api() for every
# operation (success and error) validated against the document's schemas
# with ajv.  See test/scripts/openapi/openapi.mjs.
#
# The npm packages (test/scripts/openapi/package-lock.json) are installed from
# the npm registry into $MOMENT_TEST_CACHE (scripts/test: its work directory).
# Environment (scripts/test): PGHOST PGPORT PGUSER PGDATABASE MOMENT_REPO.
set -euo pipefail
REPO=${MOMENT_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)}
# shellcheck source=scripts/lib.sh
source "$REPO/scripts/lib.sh"

CACHE=${MOMENT_TEST_CACHE:-${TMPDIR:-/tmp}/moment-test-cache-$(id -un)}
MOMENT_NODE_MODULES=$(node_tools "$CACHE/node")
OUT=$(mktemp -d "${TMPDIR:-/tmp}/moment-openapi.XXXXXX")
trap 'rm -rf "$OUT"' EXIT
export MOMENT_NODE_MODULES MOMENT_REPO=$REPO MOMENT_OPENAPI_OUT=$OUT

psql -X -q -v ON_ERROR_STOP=1 -f "$REPO/test/scripts/openapi/fixture.sql" >/dev/null
node "$REPO/test/scripts/openapi/openapi.mjs"
