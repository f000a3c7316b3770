#!/bin/bash
# Reporting tools through the real ODBC stack: unixODBC's isql + psqlODBC
# (psqlodbcw.so), from DSNs in our own odbc.ini/odbcinst.ini whose
# ConnSettings select the company, logged in as a non-superuser role granted
# the company read-only.
#
# Checks: ConnSettings selects the tenant; typed listings and the README's
# monthly report query (hours per project and user) give the expected rows;
# the cap WARNING reaches the client as SQL_SUCCESS_WITH_INFO with its
# limitWasExceeded text; errors arrive with their SQLSTATE (isql -b exits 0
# even on SQL errors, so the output is what is checked); another company's
# rows never show.
#
# Environment (set by scripts/test): PGHOST, PGPORT, PGUSER (a superuser),
# PGDATABASE (a fresh database with CREATE EXTENSION moment done).
# Needs: unixodbc (isql), odbc-postgresql, postgresql-client (psql).
set -u

started=$(date +%s%N)
suffix=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
role="odbc_isql_$suffix"
password="pw$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
workdir=$(mktemp -d /tmp/moment_isql.XXXXXX)
failures=0
checks=0

psql_admin() {
	psql -X -q -v ON_ERROR_STOP=1 "$@"
}

cleanup() {
	psql_admin -c "DELETE FROM moment.company_grants WHERE role::text = '$role'" \
		-c "DROP OWNED BY $role CASCADE" -c "DROP ROLE IF EXISTS $role" >/dev/null 2>&1 ||
		echo "note: cleanup of role $role failed"
	rm -rf "$workdir"
}
trap cleanup EXIT

ok() { checks=$((checks + 1)); echo "ok   - $1"; }
fail() {
	checks=$((checks + 1)); failures=$((failures + 1))
	echo "FAIL - $1"
	echo "       output was:"; sed 's/^/       | /' <<<"$2" | cut -c1-200
}
# expect TEXT-OUTPUT DESCRIPTION REGEX...: every extended regex must match
expect() {
	local output=$1 what=$2; shift 2
	for pattern in "$@"; do
		if ! grep -Eq -- "$pattern" <<<"$output"; then
			fail "$what (no match for /$pattern/)" "$output"; return
		fi
	done
	ok "$what"
}
# refute TEXT-OUTPUT DESCRIPTION REGEX: the regex must not match
refute() {
	if grep -Eq -- "$3" <<<"$1"; then fail "$2 (unexpected /$3/)" "$1"; else ok "$2"; fi
}

# ---- data and role, as the superuser ----------------------------------------
psql_admin >/dev/null <<SQL || { echo "FAIL - setup"; exit 1; }
CREATE ROLE $role LOGIN PASSWORD '$password';
INSERT INTO moment.companies (code, name) VALUES ('cloudware', 'Cloudware AS'), ('othercorp', 'Other Corp AS');
SELECT moment.grant_company('cloudware', '$role', false);

SET moment.company = 'cloudware';
SELECT moment.create('customers', '{"name": "Fjord AS"}');
SELECT moment.create('projects', jsonb_build_object('name', p, 'customerId', (SELECT id FROM moment.customers WHERE name = 'Fjord AS')))
  FROM unnest(ARRAY['Website', 'Audit']) p;
SELECT moment.create('userAccounts', jsonb_build_object('name', u)) FROM unnest(ARRAY['Kari', 'Ola']) u;
SELECT moment.create('offers', jsonb_build_object('name', 'Offer ' || n, 'customerId', (SELECT id FROM moment.customers WHERE name = 'Fjord AS'),
                                                  'currencyCode', 'NOK', 'totalSum', n * 100.25))
  FROM generate_series(1, 3) n;
SELECT moment.create('timeRecords', jsonb_build_object('projectId', p.id, 'userAccountId', u.id,
                                                       'timeRecordDate', v.d, 'minutes', v.m, 'billable', v.b))
  FROM (VALUES ('Website', 'Kari', '2024-03-01', 90, true), ('Website', 'Kari', '2024-03-15', 60, true),
               ('Website', 'Ola', '2024-03-20', 30, false), ('Audit', 'Kari', '2024-03-31', 120, true),
               ('Audit', 'Ola', '2024-03-02', 45, true), ('Audit', 'Ola', '2024-03-03', 15, false),
               ('Website', 'Kari', '2024-04-01', 600, true), ('Audit', 'Ola', '2024-02-29', 480, true)) v(p, u, d, m, b)
  JOIN moment.projects p ON p.name = v.p
  JOIN moment.user_accounts u ON u.name = v.u;

SELECT moment.create('projectExtensions', jsonb_build_object('name', 'Design', 'projectId', (SELECT id FROM moment.projects WHERE name = 'Website'),
                                                             'projectExtensionState', 'closed'));
SELECT moment.create('tasks', jsonb_build_object('name', 'Sketch', 'projectExtensionId', (SELECT id FROM moment.project_extensions WHERE name = 'Design')));
SELECT moment.create('projectMemberships', jsonb_build_object('projectId', p.id, 'userAccountId', u.id, 'hourlyRate', 1200.5))
  FROM moment.projects p, moment.user_accounts u WHERE p.name = 'Audit' AND u.name = 'Ola';

SET moment.company = 'othercorp';
SELECT moment.create('customers', '{"name": "Secret Other AS"}');
SELECT moment.create('projects', jsonb_build_object('name', 'Secret', 'customerId', (SELECT id FROM moment.customers WHERE name = 'Secret Other AS')));
SELECT moment.create('userAccounts', '{"name": "Eve"}');
SELECT moment.create('timeRecords', jsonb_build_object('projectId', (SELECT id FROM moment.projects WHERE name = 'Secret'),
                                                       'userAccountId', (SELECT id FROM moment.user_accounts WHERE name = 'Eve'),
                                                       'timeRecordDate', '2024-03-10', 'minutes', 600));
SQL

# ---- DSNs -------------------------------------------------------------------
cat >"$workdir/odbcinst.ini" <<INI
[PostgreSQL Unicode]
Description=psqlODBC
Driver=/usr/lib/x86_64-linux-gnu/odbc/psqlodbcw.so
INI
dsn() { # name conn-settings
	cat <<INI
[$1]
Driver=PostgreSQL Unicode
Servername=${PGHOST:-/var/run/postgresql}
Port=${PGPORT:-5432}
Database=$PGDATABASE
Username=$role
Password=$password
ConnSettings=$2
BoolsAsChar=0
UseDeclareFetch=1
Fetch=1000

INI
}
{
	dsn moment "SET moment.company = 'cloudware'"
	dsn moment_two "SET moment.company = 'cloudware'; SET moment.default_limit = 2"
	dsn moment_other "SET moment.company = 'othercorp'"
} >"$workdir/odbc.ini"
export ODBCSYSINI=$workdir ODBCINI=$workdir/odbc.ini

# run_isql DSN: SQL statements on stdin, one per line; stdout and stderr together
run_isql() {
	isql -b -v "$1" 2>&1
}

echo "# ConnSettings selects the company"
out=$(run_isql moment <<'SQL'
SELECT current_setting('moment.company') AS company, current_user AS who FROM pg_roles WHERE rolname = current_user AND NOT rolsuper
SQL
)
expect "$out" "DSN connects as the non-superuser $role with moment.company = cloudware" \
	"\| *cloudware *\| *$role *\|" "1 rows fetched"

echo "# typed listings"
out=$(run_isql moment <<'SQL'
SELECT count(*) AS n, sum(minutes) AS total FROM moment.list_time_records(no_limit => true)
SELECT time_record_date, minutes, billable FROM moment.list_time_records('{"timeRecordDate": {"gte": "2024-03-01", "lt": "2024-04-01"}, "minutes": {"gte": 60}}', 'minutes.desc')
SELECT name, total_sum FROM moment.list_offers(order_by => 'totalSum.desc')
SQL
)
expect "$out" "list_time_records(no_limit => true): cloudware's 8 rows, 1440 minutes" \
	"\| *8 *\| *1440 *\|"
expect "$out" "filtered, ordered time records with dates and booleans" \
	"\| *2024-03-31 *\| *120 *\| *1 *\|" "\| *2024-03-01 *\| *90 *\| *1 *\|" \
	"\| *2024-03-15 *\| *60 *\| *1 *\|" "3 rows fetched"
expect "$out" "list_offers numeric(14,2) totals" "\| *Offer 3 *\| *300\.75 *\|" "\| *Offer 1 *\| *100\.25 *\|"
refute "$out" "no othercorp row in the listings" "Secret|Eve|600"

echo "# the README's monthly report: hours per project and user"
out=$(run_isql moment <<'SQL'
SELECT p.name AS project, u.name AS user_name, round(sum(t.minutes) / 60.0, 2) AS hours FROM moment.list_time_records('{"timeRecordDate": {"gte": "2024-03-01", "lt": "2024-04-01"}}', no_limit => true) t JOIN moment.list_projects(no_limit => true) p ON p.id = t.project_id JOIN moment.list_user_accounts(no_limit => true) u ON u.id = t.user_account_id GROUP BY 1, 2 ORDER BY 1, 2
SQL
)
expect "$out" "report for March 2024: 4 project/user rows with the right hours" \
	"\| *Audit *\| *Kari *\| *2\.00 *\|" "\| *Audit *\| *Ola *\| *1\.00 *\|" \
	"\| *Website *\| *Kari *\| *2\.50 *\|" "\| *Website *\| *Ola *\| *0\.50 *\|" "4 rows fetched"
refute "$out" "report holds no othercorp data and no April/February minutes" "Secret|Eve|10\.00|8\.00|12\.50"

echo "# the same monthly report on moment.hours_report: one statement, no listing to cut"
out=$(run_isql moment <<'SQL'
SELECT project_name AS project, user_account_name AS user_name, round(minutes / 60.0, 2) AS hours, records FROM moment.hours_report('2024-03-01', '2024-03-31') ORDER BY 1, 2
SELECT period, project_name, minutes, billable_minutes FROM moment.hours_report('2024-02-01', '2024-04-30', 'project,month') ORDER BY 1, 2
SELECT project_name, records, minutes, first_date, last_date FROM moment.project_registered_hours('2024-03-01', '2024-03-31')
SQL
)
expect "$out" "hours_report for March 2024: the same 4 project/user rows" \
	"\| *Audit *\| *Kari *\| *2\.00 *\| *1 *\|" "\| *Audit *\| *Ola *\| *1\.00 *\| *2 *\|" \
	"\| *Website *\| *Kari *\| *2\.50 *\| *2 *\|" "\| *Website *\| *Ola *\| *0\.50 *\| *1 *\|" "4 rows fetched"
expect "$out" "hours_report by project and month: a date period, February to April" \
	"\| *2024-02-01 *\| *Audit *\| *480 *\| *480 *\|" "\| *2024-03-01 *\| *Audit *\| *180 *\| *165 *\|" \
	"\| *2024-03-01 *\| *Website *\| *180 *\| *150 *\|" "\| *2024-04-01 *\| *Website *\| *600 *\| *600 *\|"
expect "$out" "project_registered_hours with first and last dates" \
	"\| *Audit *\| *3 *\| *180 *\| *2024-03-02 *\| *2024-03-31 *\|" "\| *Website *\| *3 *\| *180 *\| *2024-03-01 *\| *2024-03-20 *\|"
refute "$out" "the reports hold no othercorp data" "Secret|Eve"
out=$(run_isql moment_two <<'SQL'
SELECT period, minutes FROM moment.hours_report('2024-03-01', '2024-03-31', 'day')
SET moment.limit_exceeded = error
SELECT period, minutes FROM moment.hours_report('2024-03-01', '2024-03-31', 'day')
SQL
)
expect "$out" "a report over the cap: 2 rows and the WARNING; with limit_exceeded = error, [54000]" \
	"limitWasExceeded: more than 2 rows" "2 rows fetched" "\[54000\].*limitWasExceeded"

echo "# typed listings of activities, tasks and memberships"
out=$(run_isql moment <<'SQL'
SELECT name, project_extension_state, billable FROM moment.list_project_extensions()
SELECT t.name, e.name AS activity FROM moment.list_tasks() t JOIN moment.list_project_extensions() e ON e.id = t.project_extension_id
SELECT project_membership_role_name, hourly_rate, project_membership_state FROM moment.list_project_memberships('{"hourlyRate": {"gt": 1000}}')
SQL
)
expect "$out" "list_project_extensions, list_tasks, list_project_memberships: typed rows" \
	"\| *Design *\| *closed *\| *1 *\|" "\| *Sketch *\| *Design *\|" "\| *Default *\| *1200\.50 *\| *active *\|"

echo "# the cap WARNING as SQL_SUCCESS_WITH_INFO"
out=$(run_isql moment <<'SQL'
SET moment.default_limit = 3
SELECT id, minutes FROM moment.list_time_records()
SQL
)
expect "$out" "3 of 8 rows, the limitWasExceeded WARNING printed, SQLExecute returned SQL_SUCCESS_WITH_INFO" \
	"WARNING: limitWasExceeded" "3 rows fetched" "SQL_SUCCESS_WITH_INFO"
out=$(run_isql moment_two <<'SQL'
SELECT name FROM moment.list_offers()
SELECT count(*) AS n FROM moment.list_offers(no_limit => true)
SQL
)
expect "$out" "ConnSettings with two statements (company and default_limit = 2) cuts at 2" \
	"limitWasExceeded: more than 2 rows" "2 rows fetched" "\| *3 *\|"
out=$(run_isql moment <<'SQL'
SELECT id FROM moment.list_time_records(no_limit => true)
SQL
)
refute "$out" "no warning when nothing is cut" "limitWasExceeded|SQL_SUCCESS_WITH_INFO"

echo "# errors with their SQLSTATE (isql -b exits 0 on SQL errors: the output is checked)"
out=$(run_isql moment <<'SQL'
SELECT * FROM moment.list_time_records('{"nosuch": 1}')
SELECT * FROM moment.list_offers(order_by => 'name;drop')
SELECT * FROM moment.list_customers('{"name": {"between": 1}}')
SELECT 'still connected' AS probe
SQL
)
expect "$out" "unknown filter field -> [42703]" "\[42703\].*unknown field \"nosuch\""
expect "$out" "malformed order_by -> [42601]" "\[42601\]"
expect "$out" "unknown operator -> [22023]" "\[22023\]"
expect "$out" "the session goes on after errors" "still connected"
out=$(run_isql moment_other <<'SQL'
SELECT name FROM moment.list_customers()
SELECT count(*) AS n FROM moment.customers
SQL
)
expect "$out" "ConnSettings naming a company not granted -> [42501]" "\[42501\].*not granted"
if [ "$(grep -c '\[42501\]' <<<"$out")" -eq 2 ]; then
	ok "direct SELECT on moment.customers for a company not granted -> [42501] too (row-level security)"
else
	fail "direct SELECT on moment.customers for a company not granted -> [42501] too (row-level security)" "$out"
fi
refute "$out" "othercorp's data never shows" "Secret"

elapsed_ms=$((($(date +%s%N) - started) / 1000000))
echo "# $checks checks, $failures failed, $((elapsed_ms / 1000)).$(printf %03d $((elapsed_ms % 1000))) s"
[ "$failures" -eq 0 ]
