#!/usr/bin/env bash
# The API page in a real browser: scripts/lib.sh's write_api_page (what
# `scripts/demo api-page` serves: Swagger UI from swagger-ui-dist with the
# document beside it) for a database with a built-in and a registered entity,
# served on 127.0.0.1 and loaded in headless Chromium (Debian's chromium,
# driven by playwright-core): every entity's operations render, there is no
# console error, and a screenshot is kept in $MOMENT_ARTIFACTS (scripts/test
# copies it to log/artifacts/).  See test/scripts/openapi/browser.mjs.
# Environment (scripts/test): PGHOST PGPORT PGUSER PGDATABASE MOMENT_REPO
# MOMENT_TEST_CACHE MOMENT_ARTIFACTS.
set -euo pipefail
REPO=${MOMENT_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)}
# shellcheck source=scripts/lib.sh
source "$REPO/scripts/lib.sh"

[ -x /usr/bin/chromium ] || die "/usr/bin/chromium is missing (Debian package chromium)"
CACHE=${MOMENT_TEST_CACHE:-${TMPDIR:-/tmp}/moment-test-cache-$(id -un)}
ARTIFACTS=${MOMENT_ARTIFACTS:-${TMPDIR:-/tmp}/moment-artifacts-$(id -un)}
MOMENT_NODE_MODULES=$(node_tools "$CACHE/node")
export MOMENT_NODE_MODULES
WORKDIR=$(mktemp -d "${TMPDIR:-/tmp}/moment-api-page.XXXXXX")
SERVER=""
cleanup() {
	[ -z "$SERVER" ] || kill "$SERVER" 2>/dev/null || true
	[ -z "$SERVER" ] || wait "$SERVER" 2>/dev/null || true
	rm -rf "$WORKDIR"
}
trap cleanup EXIT

psql -X -q -v ON_ERROR_STOP=1 -f "$REPO/test/scripts/openapi/fixture.sql" >/dev/null
psql -X -q -At -v ON_ERROR_STOP=1 -c 'SELECT moment.openapi()' >"$WORKDIR/openapi.json"
write_api_page "$WORKDIR/page" "$WORKDIR/openapi.json" "$MOMENT_NODE_MODULES"

PORT=$(free_port)
python3 -m http.server --bind 127.0.0.1 --directory "$WORKDIR/page" "$PORT" >"$WORKDIR/http.log" 2>&1 &
SERVER=$!
for _ in $(seq 1 100); do
	(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
	sleep 0.1
done
echo "# API page served at http://127.0.0.1:$PORT/"
node "$REPO/test/scripts/openapi/browser.mjs" "http://127.0.0.1:$PORT/" "$WORKDIR/openapi.json" \
	"$ARTIFACTS/openapi-browser.png"
