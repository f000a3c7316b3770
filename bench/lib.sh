# shellcheck shell=bash
# bench/lib.sh: a throwaway PostgreSQL cluster for the benchmark (sourced by bench/run).
#
#   bench_start_cluster DIR [postgresql.conf lines...]   # exports PGHOST PGPORT PGUSER PGDATA
#   bench_stop_cluster DIR
#
# initdb refuses root, so the cluster runs as the postgres user.  It listens
# on a Unix socket in DIR only (no TCP), on a port no other server here uses.
# Only the server whose data directory is DIR is ever stopped.

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}

bench_as_postgres() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

bench_free_port() {
	local port
	for _ in $(seq 1 200); do
		port=$((20000 + RANDOM % 30000))
		# a socket file anywhere in /tmp or /var/run, or a TCP listener, means taken
		if ! ls /tmp/.s.PGSQL."$port" /var/run/postgresql/.s.PGSQL."$port" >/dev/null 2>&1 &&
			! ss -ltnH 2>/dev/null | awk '{print $4}' | grep -q ":$port\$"; then
			echo "$port"
			return 0
		fi
	done
	echo "bench: no free port found" >&2
	return 1
}

bench_start_cluster() {
	local dir=$1
	shift
	local port
	port=$(bench_free_port)
	mkdir -p "$dir"
	chown postgres: "$dir" 2>/dev/null || true
	bench_as_postgres "$PGBIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-locale \
		>"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; return 1; }
	{
		echo "port = $port"
		echo "listen_addresses = ''"
		echo "unix_socket_directories = '$dir'"
		for line in "$@"; do echo "$line"; done
	} >>"$dir/data/postgresql.conf"
	bench_as_postgres "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null ||
		{ cat "$dir/server.log" >&2; return 1; }
	export PGHOST=$dir PGPORT=$port PGUSER=postgres PGDATA=$dir/data
}

bench_stop_cluster() {
	local dir=$1
	if [ -f "$dir/data/postmaster.pid" ]; then
		bench_as_postgres "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
	fi
}
