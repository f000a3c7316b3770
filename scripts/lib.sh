# shellcheck shell=bash
# Helpers shared by scripts/test and scripts/demo.  Source it; do not run it.
#
#   ensure_packages pkg...   install the Debian packages that are missing
#   pg_env                   set PG_CONFIG, PG_BIN, PGXS_DIR once pg_config exists
#   as_postgres cmd...       run a command as the postgres OS user
#   start_cluster DIR [PORT [ADDR]] throwaway cluster: data in DIR/data, socket in DIR,
#                            log in DIR/log, TCP on ADDR if given (else none);
#                            exports PGHOST, PGPORT, PGUSER
#   stop_cluster DIR         stop the cluster of DIR (and no other)
#   node_tools DIR           the npm packages of test/scripts/openapi/package-lock.json
#                            installed in DIR (once); prints DIR/node_modules
#   write_api_page DIR DOC NODE_MODULES
#                            a static API page: Swagger UI with the document DOC
#
# initdb refuses to run as root, so clusters belong to the postgres user.

# The pg_config to build and test against (the Makefile honours PG_CONFIG too).
PG_CONFIG=${PG_CONFIG:-pg_config}

# log MESSAGE: a progress line (on stdout, in order with the rest)
log() {
	printf '==> %s\n' "$*"
}

die() {
	printf 'error: %s\n' "$*" >&2
	exit 1
}

# ensure_packages pkg...: installs the packages that are not installed yet.
# apt-get update runs at most once per shell, and only when something is missing.
_APT_UPDATED=${_APT_UPDATED:-no}
ensure_packages() {
	local missing=() pkg
	for pkg in "$@"; do
		if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
			missing+=("$pkg")
		fi
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	[ "$(id -u)" -eq 0 ] || die "packages missing (${missing[*]}) and not running as root to install them"
	log "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	local apt_log
	apt_log=$(mktemp)
	# apt's chatter only matters when it fails
	if [ "$_APT_UPDATED" != yes ]; then
		apt-get update -qq >"$apt_log" 2>&1 || { cat "$apt_log" >&2; rm -f "$apt_log"; die "apt-get update failed"; }
		_APT_UPDATED=yes
	fi
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$apt_log" 2>&1 \
		|| { cat "$apt_log" >&2; rm -f "$apt_log"; die "apt-get install ${missing[*]} failed"; }
	rm -f "$apt_log"
}

# pg_env: PG_BIN (server binaries) and PGXS_DIR (pgxs/src: test tools, perl
# modules).  A function, because pg_config may only exist after ensure_packages.
pg_env() {
	command -v "$PG_CONFIG" >/dev/null || die "$PG_CONFIG not found (install postgresql-server-dev-15)"
	PG_BIN=$("$PG_CONFIG" --bindir)
	PGXS_DIR=$(dirname "$(dirname "$("$PG_CONFIG" --pgxs)")")
	export PG_CONFIG PG_BIN PGXS_DIR
}
if command -v "$PG_CONFIG" >/dev/null 2>&1; then
	pg_env
fi

# as_postgres cmd...: runs cmd as the postgres OS user, keeping the
# environment (runuser resets only HOME, SHELL, USER and LOGNAME).  In a
# directory postgres cannot enter, it runs from / instead: initdb and pg_ctl
# fail when they cannot read their working directory.
as_postgres() {
	if [ "$(id -un)" = postgres ]; then
		"$@"
		return
	fi
	(
		if ! (_run_as_postgres test -x "$PWD") 2>/dev/null; then
			cd /
		fi
		_run_as_postgres "$@"
	)
}
# (called last in as_postgres's subshell: exec, so that signalling the
# subshell's process reaches the command)
_run_as_postgres() {
	if [ "$(id -u)" -eq 0 ]; then
		exec runuser -u postgres -- "$@"
	else
		exec sudo -E -u postgres -- "$@"
	fi
}

# postgres_can_reach PATH: true when the postgres user can enter PATH (a
# clone under /root, say, is out of its reach).
postgres_can_reach() {
	(cd / && as_postgres test -x "$1" -a -r "$1") 2>/dev/null
}

# free_port: prints a port that nothing listens on, neither on TCP nor as a
# Unix socket .s.PGSQL.<port> (clusters with listen_addresses='' only have
# the latter, and share a port namespace in psql users' heads).
free_port() {
	local port
	for _ in $(seq 1 200); do
		port=$((20000 + RANDOM % 30000))
		if command -v ss >/dev/null 2>&1; then
			ss -Hltn "sport = :$port" 2>/dev/null | grep -q . && continue
			ss -Hlx 2>/dev/null | grep -q "\.s\.PGSQL\.$port\b" && continue
		else
			# no ss (minimal image): a successful connect means it is taken
			(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && continue
		fi
		if [ -e "/tmp/.s.PGSQL.$port" ] || [ -e "/var/run/postgresql/.s.PGSQL.$port" ]; then
			continue
		fi
		echo "$port"
		return 0
	done
	die "no free port found"
}

# start_cluster DIR [PORT [LISTEN]]: initdb (if DIR/data is not there yet) and
# start a throwaway cluster, on a free port (or PORT), listening only on its
# socket in DIR (or also on the addresses LISTEN, e.g. 127.0.0.1).
# Exports PGHOST=DIR PGPORT PGUSER=postgres.
start_cluster() {
	local dir=$1 port=${2:-} listen=${3:-}
	[ -n "${PG_BIN:-}" ] || pg_env
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd -P)
	chown postgres: "$dir" 2>/dev/null || true
	chmod 755 "$dir"
	if [ ! -f "$dir/data/PG_VERSION" ]; then
		as_postgres "$PG_BIN/initdb" -D "$dir/data" -A trust -U postgres --no-sync \
			--encoding=UTF8 --locale=C >"$dir/initdb.log" 2>&1 \
			|| { cat "$dir/initdb.log" >&2; die "initdb failed in $dir/data"; }
	fi
	[ -n "$port" ] || port=$(free_port)
	# -w waits until the server accepts connections
	as_postgres "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 \
		-o "-p $port -k '$dir' -c listen_addresses='$listen' -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
		start >/dev/null \
		|| { tail -n 30 "$dir/log" >&2; die "could not start the cluster in $dir"; }
	export PGHOST=$dir PGPORT=$port PGUSER=postgres
}

# stop_cluster DIR: fast shutdown of the cluster whose data is DIR/data.
# Quiet and harmless when it is not running.
stop_cluster() {
	local dir=$1
	[ -n "${PG_BIN:-}" ] || pg_env
	[ -f "$dir/data/postmaster.pid" ] || return 0
	as_postgres "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
}

# kill_tree PID: SIGTERM to PID and all its descendants (found through /proc,
# so it needs no procps), for background jobs left running on interrupt.
kill_tree() {
	local stat line pid ppid i=0
	local pids=("$1")
	declare -A children=()
	# one pass over /proc: parent -> children
	for stat in /proc/[0-9]*/stat; do
		{ read -r line <"$stat"; } 2>/dev/null || continue
		pid=${line%% *}
		line=${line##*) }	# past the command name, which may hold spaces: "S PPID ..."
		ppid=${line#* }
		ppid=${ppid%% *}
		children[$ppid]+=" $pid"
	done
	while [ $i -lt ${#pids[@]} ]; do
		# shellcheck disable=SC2206 # word splitting of the pid list is wanted
		pids+=(${children[${pids[$i]}]:-})
		i=$((i + 1))
	done
	kill -TERM "${pids[@]}" 2>/dev/null || true
}

# node_tools DIR: installs the exact npm packages of the OpenAPI tools
# (test/scripts/openapi/package.json and its lock file: validators, Swagger
# UI, playwright-core) from the npm registry into DIR, unless the same lock
# file is installed there already, and prints DIR/node_modules.  Needs Node 20
# or later with npm.  No install scripts run, nothing is fetched at run time.
node_tools() {
	local dir=$1 src major
	src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../test/scripts/openapi" && pwd -P)
	command -v node >/dev/null || die "node is not installed: the OpenAPI tools need Node 20 or later with npm"
	command -v npm >/dev/null || die "npm is not installed: the OpenAPI tools need Node 20 or later with npm"
	major=$(node -p 'process.versions.node.split(".")[0]')
	[ "$major" -ge 20 ] || die "node $(node --version) is too old: the OpenAPI tools need Node 20 or later"
	if [ ! -f "$dir/.installed" ] || ! cmp -s "$src/package-lock.json" "$dir/package-lock.json"; then
		rm -rf "$dir"
		mkdir -p "$dir"
		cp "$src/package.json" "$src/package-lock.json" "$dir/"
		# the cache and logs stay in DIR: the user running this may have no writable HOME
		if ! (cd "$dir" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error \
				--cache "$dir/.npm-cache" --logs-dir "$dir/.npm-logs" >"$dir/install.log" 2>&1); then
			cat "$dir/install.log" >&2
			die "npm ci of the OpenAPI tools failed (log above)"
		fi
		touch "$dir/.installed"
	fi
	echo "$dir/node_modules"
}

# write_api_page DIR DOC NODE_MODULES: writes into DIR a static page that shows
# the OpenAPI document DOC (a file, copied beside the page as openapi.json)
# with Swagger UI from NODE_MODULES/swagger-ui-dist.  The page sends no request
# but for its own files: no validator badge, no "Try it out" (nothing serves
# the API's paths at the page's address).
write_api_page() {
	local dir=$1 doc=$2 modules=$3 file
	mkdir -p "$dir"
	for file in swagger-ui.css swagger-ui-bundle.js favicon-32x32.png; do
		cp "$modules/swagger-ui-dist/$file" "$dir/" || die "swagger-ui-dist has no $file"
	done
	cp "$doc" "$dir/openapi.json"
	cat >"$dir/index.html" <<'HTML'
<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Moment API</title>
  <link rel="icon" type="image/png" href="favicon-32x32.png">
  <link rel="stylesheet" href="swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="swagger-ui-bundle.js"></script>
  <script src="api-page.js"></script>
</body>
</html>
HTML
	cat >"$dir/api-page.js" <<'JS'
window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    docExpansion: "list",
    validatorUrl: null,
    supportedSubmitMethods: [],
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  });
};
JS
}
