/*
 * worker.c: webhooks, the delivering side (contract section 16).
 *
 * One background worker, registered when moment is in
 * shared_preload_libraries, posts the pending rows of
 * moment.webhook_deliveries of one database (moment.webhook_database).
 * Everything it knows lives in that table: a delivery is marked done only
 * after a 2xx answer, so a crash, a restart or a kill at any moment loses
 * nothing (it may send a delivery again: at least once).
 *
 * Per webhook, one delivery at a time in id order: the lowest pending
 * delivery of a webhook (its "head") is sent, and while it waits for a
 * retry the webhook's later deliveries wait too.  Different webhooks are
 * served in parallel by one curl multi handle, so a slow receiver holds up
 * only its own webhook.  Each round is one short transaction: record the
 * answers that came in, then read the head of every webhook that is not
 * in flight.  Committing backends wake the worker through its latch
 * (webhook_wake_worker); it also polls every second, for deliveries that
 * arrived without a wake-up (a company copied in by the router).
 *
 * The worker cannot know whether its database exists before connecting,
 * and a failed connection is a FATAL error: so it first starts without a
 * database, looks for it (every 5 s, and on a reload), notes its oid in
 * shared memory and exits to be restarted connected to it.
 */
#include "postgres.h"

#include <curl/curl.h>

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "common/hmac.h"
#include "common/sha2.h"
#include "executor/spi.h"
#include "lib/ilist.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "moment.h"
#include "plancache.h"
#include "webhook.h"

PGDLLEXPORT void moment_webhook_worker_main(Datum main_arg);

/* seconds before the postmaster starts the worker again after it exits */
#define WORKER_RESTART_SECONDS 1
/* how often the worker looks for its database or the extension */
#define READY_CHECK_MS 5000
/* how often it looks for deliveries nobody woke it for */
#define POLL_MS 1000
/* how long it waits on receivers before looking at its latch again */
#define TRANSFER_WAIT_MS 50
/* after an error in a round, before the next one */
#define ERROR_PAUSE_MS 1000
/* receivers answered at the same time */
#define MAX_TRANSFERS 64

typedef struct WebhookShared
{
	slock_t		mutex;
	Latch	   *latch;			/* the worker's, while it delivers ... */
	Oid			served;			/* ... the deliveries of this database */
	Oid			database;		/* found by its probe, for its next start */
} WebhookShared;

static WebhookShared *shared = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* one attempt of one delivery, in flight */
typedef struct Transfer
{
	dlist_node	node;
	int64		company_id;
	int64		delivery_id;
	int64		webhook_id;
	int			attempts;		/* attempts before this one */
	char	   *url;
	char	   *event;
	char	   *body;			/* UTF-8, the exact bytes sent and signed */
	char	   *signature;		/* lower-case hex, or NULL without a secret */
	CURL	   *easy;
	CURLU	   *parsed_url;
	struct curl_slist *headers;
	char		error[CURL_ERROR_SIZE];
} Transfer;

/* the result of an attempt, to record in the next round */
typedef struct Outcome
{
	dlist_node	node;
	int64		company_id;
	int64		delivery_id;
	int			previous_attempts;
	bool		delivered;
	int			status;			/* the HTTP status, 0 when there was no answer */
	char	   *error;			/* why the attempt failed */
} Outcome;

/* transfers and outcomes; scratch memory is reset every turn of the loop */
static MemoryContext worker_context = NULL;
static MemoryContext scratch_context = NULL;
static CURLM *multi = NULL;
static dlist_head transfers = DLIST_STATIC_INIT(transfers);
static int	ntransfers = 0;
static dlist_head outcomes = DLIST_STATIC_INIT(outcomes);
/* heads claimed in the last round, to start once it committed */
static dlist_head claimed = DLIST_STATIC_INIT(claimed);
/* the earliest retry due among the heads seen, 0 when none */
static TimestampTz next_retry = 0;

/* ---- shared memory and registration ---- */

static void
webhook_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(WebhookShared)));
}

static void
webhook_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("moment webhooks", sizeof(WebhookShared), &found);
	if (!found)
	{
		SpinLockInit(&shared->mutex);
		shared->latch = NULL;
		shared->served = InvalidOid;
		shared->database = InvalidOid;
	}
	LWLockRelease(AddinShmemInitLock);
}

void
webhook_worker_register(void)
{
	BackgroundWorker worker;

	/* a library loaded later (LOAD, first use) has no worker and no shared memory */
	if (!process_shared_preload_libraries_in_progress)
		return;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = webhook_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = webhook_shmem_startup;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	/* a standby cannot write the outcomes: the primary delivers */
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = WORKER_RESTART_SECONDS;
	strlcpy(worker.bgw_library_name, "moment", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "moment_webhook_worker_main", BGW_MAXLEN);
	strlcpy(worker.bgw_name, "moment webhook worker", BGW_MAXLEN);
	strlcpy(worker.bgw_type, "moment webhook worker", BGW_MAXLEN);
	RegisterBackgroundWorker(&worker);
}

void
webhook_wake_worker(void)
{
	Latch	   *latch;

	if (shared == NULL)
		return;
	SpinLockAcquire(&shared->mutex);
	latch = shared->served == MyDatabaseId ? shared->latch : NULL;
	SpinLockRelease(&shared->mutex);
	if (latch != NULL)
		SetLatch(latch);
}

static void
forget_latch(int code, Datum arg)
{
	SpinLockAcquire(&shared->mutex);
	shared->latch = NULL;
	shared->served = InvalidOid;
	SpinLockRelease(&shared->mutex);
}

/* ---- waiting for the database ---- */

static void
reload_settings(void)
{
	if (ConfigReloadPending)
	{
		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
	}
}

/*
 * The oid of a database, or InvalidOid.  Connected to no database, only the
 * shared catalogs the relcache always holds can be read, and without their
 * indexes: a heap scan of pg_database, as the logical replication launcher
 * scans pg_subscription.
 */
static Oid
database_named(const char *name)
{
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tuple;
	Oid			database = InvalidOid;

	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database form = (Form_pg_database) GETSTRUCT(tuple);

		if (strcmp(NameStr(form->datname), name) == 0)
		{
			database = form->oid;
			break;
		}
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	return database;
}

/*
 * Connected to no database: looks for moment.webhook_database every 5 s
 * and on every reload; once it exists, leaves its oid for the next start
 * and exits, to be restarted by the postmaster connected to it.
 */
static void pg_attribute_noreturn()
probe_database(void)
{
	char	   *reported = NULL;

	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	for (;;)
	{
		Oid			database = InvalidOid;
		const char *name = moment_webhook_database ? moment_webhook_database : "";

		CHECK_FOR_INTERRUPTS();
		reload_settings();
		if (name[0] != '\0')
			database = database_named(name);
		MemoryContextSwitchTo(TopMemoryContext);
		if (OidIsValid(database))
		{
			SpinLockAcquire(&shared->mutex);
			shared->database = database;
			SpinLockRelease(&shared->mutex);
			ereport(DEBUG1,
					(errmsg("moment webhook worker: database \"%s\" found, restarting connected to it", name)));
			proc_exit(1);
		}
		if (reported == NULL || strcmp(reported, name) != 0)
		{
			if (name[0] == '\0')
				ereport(LOG,
						(errmsg("moment webhook worker: moment.webhook_database is empty, no webhooks are delivered")));
			else
				ereport(LOG,
						(errmsg("moment webhook worker: waiting for database \"%s\" (moment.webhook_database)", name)));
			reported = MemoryContextStrdup(TopMemoryContext, name);
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 READY_CHECK_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/* Whether this database holds moment's webhook tables (0.2.0 or later). */
static bool
extension_ready(void)
{
	bool		ready = false;
	Oid			namespace;

	StartTransactionCommand();
	namespace = get_namespace_oid("moment", true);
	if (OidIsValid(get_extension_oid("moment", true)) && OidIsValid(namespace))
		ready = OidIsValid(get_relname_relid("webhook_deliveries", namespace)) &&
			OidIsValid(get_relname_relid("webhooks", namespace));
	CommitTransactionCommand();
	return ready;
}

/* ---- one round: record what came back, claim what is due ---- */

static int64
retry_delay_ms(int attempts)
{
	int64		delay = moment_webhook_retry_delay;

	for (int i = 1; i < attempts && delay < moment_webhook_retry_max_delay; i++)
		delay *= 2;
	return Min(delay, (int64) moment_webhook_retry_max_delay);
}

static void
record_outcomes(void)
{
	Oid			argtypes[9] = {INT8OID, INT8OID, INT4OID, TEXTOID, INT4OID, INT4OID, TEXTOID,
	TIMESTAMPTZOID, TIMESTAMPTZOID};
	KeptPlan   *plan;
	dlist_mutable_iter iter;

	if (dlist_is_empty(&outcomes))
		return;
	/* only the attempt it answers: not one cancelled or redelivered since */
	plan = plancache_get("UPDATE moment.webhook_deliveries d SET state = $4, attempts = $5, last_status = $6, "
						 "last_error = $7, next_attempt_at = $8, delivered_at = $9 "
						 "WHERE d.company_id OPERATOR(pg_catalog.=) $1 AND d.id OPERATOR(pg_catalog.=) $2 "
						 "AND d.state OPERATOR(pg_catalog.=) 'pending' AND d.attempts OPERATOR(pg_catalog.=) $3",
						 9, argtypes);
	dlist_foreach_modify(iter, &outcomes)
	{
		Outcome    *outcome = dlist_container(Outcome, node, iter.cur);
		int			attempts = outcome->previous_attempts + 1;
		TimestampTz now = GetCurrentTimestamp();
		Datum		args[9];
		char		nulls[9] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
		const char *state;

		if (outcome->delivered)
			state = "done";
		else if (attempts >= moment_webhook_max_attempts)
			state = "failed";
		else
			state = "pending";
		args[0] = Int64GetDatum(outcome->company_id);
		args[1] = Int64GetDatum(outcome->delivery_id);
		args[2] = Int32GetDatum(outcome->previous_attempts);
		args[3] = CStringGetTextDatum(state);
		args[4] = Int32GetDatum(attempts);
		args[5] = Int32GetDatum(outcome->status);
		if (outcome->status == 0)
			nulls[5] = 'n';
		if (outcome->error != NULL)
			args[6] = CStringGetTextDatum(outcome->error);
		else
			nulls[6] = 'n';
		if (strcmp(state, "pending") == 0)
			args[7] = TimestampTzGetDatum(TimestampTzPlusMilliseconds(now, retry_delay_ms(attempts)));
		else
			nulls[7] = 'n';
		if (outcome->delivered)
			args[8] = TimestampTzGetDatum(now);
		else
			nulls[8] = 'n';
		spi_check(kept_plan_execute(plan, args, nulls, false, 0), "recording a webhook delivery");
		CHECK_FOR_INTERRUPTS();
	}
	/* recorded: only now, so that a failed round records them again */
	dlist_foreach_modify(iter, &outcomes)
	{
		Outcome    *outcome = dlist_container(Outcome, node, iter.cur);

		dlist_delete(&outcome->node);
		if (outcome->error)
			pfree(outcome->error);
		pfree(outcome);
	}
}

static bool
in_flight(int64 webhook_id)
{
	dlist_iter	iter;

	dlist_foreach(iter, &transfers)
		if (dlist_container(Transfer, node, iter.cur)->webhook_id == webhook_id)
		return true;
	return false;
}

/* The HMAC-SHA256 of the body keyed with the secret, in lower-case hex (worker memory). */
static char *
signature_of(const char *secret, const char *body)
{
	pg_hmac_ctx *ctx = pg_hmac_create(PG_SHA256);
	uint8		digest[PG_SHA256_DIGEST_LENGTH];
	char	   *hex = MemoryContextAlloc(worker_context, PG_SHA256_DIGEST_LENGTH * 2 + 1);

	if (ctx == NULL)
		elog(ERROR, "moment webhook worker: out of memory for an HMAC");
	if (pg_hmac_init(ctx, (const uint8 *) secret, strlen(secret)) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) body, strlen(body)) < 0 ||
		pg_hmac_final(ctx, digest, sizeof(digest)) < 0)
		elog(ERROR, "moment webhook worker: could not sign a delivery: %s", pg_hmac_error(ctx));
	pg_hmac_free(ctx);
	for (int i = 0; i < PG_SHA256_DIGEST_LENGTH; i++)
		snprintf(hex + 2 * i, 3, "%02x", digest[i]);
	return hex;
}

/* A column as text, copied to worker memory (in UTF-8 with utf8); NULL stays NULL. */
static char *
column_copy(HeapTuple tuple, TupleDesc tupdesc, int column, bool utf8)
{
	char	   *value = SPI_getvalue(tuple, tupdesc, column);

	if (value == NULL)
		return NULL;
	if (utf8)
		value = pg_server_to_any(value, strlen(value), PG_UTF8);
	return MemoryContextStrdup(worker_context, value);
}

/*
 * The head (lowest pending delivery) of every webhook, by a skip scan of
 * the pending index; heads of webhooks in flight are left alone, heads of
 * webhooks that no longer exist fail with their webhook's other pending
 * deliveries, heads due now are claimed, and the earliest retry is noted.
 */
static void
claim_heads(void)
{
	Oid			argtypes[1] = {INT8OID};
	KeptPlan   *plan;
	KeptPlan   *orphan_plan = NULL;
	TimestampTz now = GetCurrentTimestamp();
	uint64		nheads;
	SPITupleTable *heads;
	int			nclaimed = 0;

	next_retry = 0;
	plan = plancache_get("WITH RECURSIVE heads AS ("
						 "(SELECT d.webhook_id, d.id, d.company_id, d.event, d.body, d.attempts, d.next_attempt_at "
						 "FROM moment.webhook_deliveries d WHERE d.state OPERATOR(pg_catalog.=) 'pending' "
						 "ORDER BY d.webhook_id, d.id LIMIT 1) "
						 "UNION ALL "
						 "(SELECT n.* FROM heads h CROSS JOIN LATERAL ("
						 "SELECT d.webhook_id, d.id, d.company_id, d.event, d.body, d.attempts, d.next_attempt_at "
						 "FROM moment.webhook_deliveries d WHERE d.state OPERATOR(pg_catalog.=) 'pending' "
						 "AND d.webhook_id OPERATOR(pg_catalog.>) h.webhook_id "
						 "ORDER BY d.webhook_id, d.id LIMIT 1) n)) "
						 "SELECT h.company_id, h.id, h.webhook_id, h.event, h.body::pg_catalog.text, h.attempts, "
						 "h.next_attempt_at, w.url, w.secret, w.id IS NOT NULL "
						 "FROM heads h LEFT JOIN moment.webhooks w ON w.company_id OPERATOR(pg_catalog.=) h.company_id "
						 "AND w.id OPERATOR(pg_catalog.=) h.webhook_id",
						 0, NULL);
	/* not read-only: the outcomes just recorded must be seen */
	spi_check(kept_plan_execute(plan, NULL, NULL, false, 0), "reading pending webhook deliveries");
	nheads = SPI_processed;
	heads = SPI_tuptable;
	for (uint64 row = 0; row < nheads; row++)
	{
		HeapTuple	tuple = heads->vals[row];
		TupleDesc	tupdesc = heads->tupdesc;
		bool		isnull;
		int64		webhook_id = DatumGetInt64(SPI_getbinval(tuple, tupdesc, 3, &isnull));
		TimestampTz due;
		Transfer   *transfer;
		char	   *secret;

		CHECK_FOR_INTERRUPTS();
		if (in_flight(webhook_id))
			continue;
		if (!DatumGetBool(SPI_getbinval(tuple, tupdesc, 10, &isnull)))
		{
			Datum		args[1] = {Int64GetDatum(webhook_id)};

			if (orphan_plan == NULL)
				orphan_plan = plancache_get("UPDATE moment.webhook_deliveries d SET state = 'failed', next_attempt_at = NULL, "
											"last_error = 'webhook ' OPERATOR(pg_catalog.||) d.webhook_id::pg_catalog.text "
											"OPERATOR(pg_catalog.||) ' was dropped' "
											"WHERE d.state OPERATOR(pg_catalog.=) 'pending' AND d.webhook_id OPERATOR(pg_catalog.=) $1 "
											"AND NOT EXISTS (SELECT FROM moment.webhooks w WHERE w.company_id OPERATOR(pg_catalog.=) d.company_id "
											"AND w.id OPERATOR(pg_catalog.=) d.webhook_id)",
											1, argtypes);
			spi_check(kept_plan_execute(orphan_plan, args, NULL, false, 0), "failing deliveries of a dropped webhook");
			continue;
		}
		due = DatumGetTimestampTz(SPI_getbinval(tuple, tupdesc, 7, &isnull));
		if (!isnull && due > now)
		{
			if (next_retry == 0 || due < next_retry)
				next_retry = due;
			continue;
		}
		if (ntransfers + nclaimed >= MAX_TRANSFERS)
		{
			/* the others in a later round, as soon as a transfer ends */
			continue;
		}

		transfer = MemoryContextAllocZero(worker_context, sizeof(Transfer));
		transfer->company_id = DatumGetInt64(SPI_getbinval(tuple, tupdesc, 1, &isnull));
		transfer->delivery_id = DatumGetInt64(SPI_getbinval(tuple, tupdesc, 2, &isnull));
		transfer->webhook_id = webhook_id;
		transfer->attempts = DatumGetInt32(SPI_getbinval(tuple, tupdesc, 6, &isnull));
		transfer->event = column_copy(tuple, tupdesc, 4, false);
		transfer->url = column_copy(tuple, tupdesc, 8, false);
		/* JSON travels in UTF-8, and the secret keys the HMAC in UTF-8 */
		transfer->body = column_copy(tuple, tupdesc, 5, true);
		secret = SPI_getvalue(tuple, tupdesc, 9);
		if (secret != NULL)
			transfer->signature = signature_of(pg_server_to_any(secret, strlen(secret), PG_UTF8),
											   transfer->body);
		dlist_push_tail(&claimed, &transfer->node);
		nclaimed++;
	}
}

/* ---- transfers ---- */

static void
add_outcome(int64 company_id, int64 delivery_id, int previous_attempts, bool delivered, int status,
			char *error)
{
	Outcome    *outcome = MemoryContextAllocZero(worker_context, sizeof(Outcome));

	outcome->company_id = company_id;
	outcome->delivery_id = delivery_id;
	outcome->previous_attempts = previous_attempts;
	outcome->delivered = delivered;
	outcome->status = status;
	outcome->error = error ? MemoryContextStrdup(worker_context, error) : NULL;
	dlist_push_tail(&outcomes, &outcome->node);
}

static void
free_transfer(Transfer *transfer)
{
	if (transfer->easy)
	{
		curl_multi_remove_handle(multi, transfer->easy);
		curl_easy_cleanup(transfer->easy);
	}
	if (transfer->parsed_url)
		curl_url_cleanup(transfer->parsed_url);
	if (transfer->headers)
		curl_slist_free_all(transfer->headers);
	pfree(transfer->url);
	pfree(transfer->event);
	pfree(transfer->body);
	if (transfer->signature)
		pfree(transfer->signature);
	pfree(transfer);
}

/* a receiver's answer body is read and dropped */
static size_t
discard_answer(char *data, size_t size, size_t nmemb, void *arg)
{
	return size * nmemb;
}

static struct curl_slist *
add_header(struct curl_slist *headers, const char *header)
{
	struct curl_slist *result = curl_slist_append(headers, header);

	if (result == NULL)
		elog(ERROR, "moment webhook worker: out of memory for a header");
	return result;
}

/*
 * Starts an attempt.  The URL is checked again first (the allow-list may
 * have changed since the webhook was made), by our rules and then by
 * curl's own parser, which must find the same host: what curl connects to
 * is what was allowed.  A refused URL is a failed attempt.
 */
static void
start_transfer(Transfer *transfer)
{
	const char *problem;
	char	   *host;
	char	   *curl_host = NULL;
	CURL	   *easy;
	bool		same_host;

	problem = webhook_url_problem(transfer->url, &host, NULL);
	if (problem != NULL)
	{
		add_outcome(transfer->company_id, transfer->delivery_id, transfer->attempts, false, 0,
					psprintf("URL refused: %s", problem));
		free_transfer(transfer);
		return;
	}
	transfer->parsed_url = curl_url();
	if (transfer->parsed_url == NULL ||
		curl_url_set(transfer->parsed_url, CURLUPART_URL, transfer->url, 0) != CURLUE_OK ||
		curl_url_get(transfer->parsed_url, CURLUPART_HOST, &curl_host, 0) != CURLUE_OK)
	{
		add_outcome(transfer->company_id, transfer->delivery_id, transfer->attempts, false, 0,
					"URL refused: curl cannot parse it");
		free_transfer(transfer);
		return;
	}
	/* curl writes an IPv6 host with its brackets */
	same_host = pg_strcasecmp(curl_host, host) == 0 ||
		(curl_host[0] == '[' && strlen(curl_host) == strlen(host) + 2 &&
		 pg_strncasecmp(curl_host + 1, host, strlen(host)) == 0);
	curl_free(curl_host);
	if (!same_host)
	{
		add_outcome(transfer->company_id, transfer->delivery_id, transfer->attempts, false, 0,
					"URL refused: curl reads another host in it");
		free_transfer(transfer);
		return;
	}

	transfer->headers = add_header(NULL, "Content-Type: application/json");
	transfer->headers = add_header(transfer->headers, psprintf("X-Moment-Event: %s", transfer->event));
	transfer->headers = add_header(transfer->headers,
								   psprintf("X-Moment-Delivery: " INT64_FORMAT, transfer->delivery_id));
	if (transfer->signature)
		transfer->headers = add_header(transfer->headers,
									   psprintf("X-Moment-Signature: sha256=%s", transfer->signature));
	/* no "Expect: 100-continue" round trip for larger bodies */
	transfer->headers = add_header(transfer->headers, "Expect:");

	easy = curl_easy_init();
	if (easy == NULL)
		elog(ERROR, "moment webhook worker: curl_easy_init failed");
	transfer->easy = easy;
	curl_easy_setopt(easy, CURLOPT_PRIVATE, transfer);
	curl_easy_setopt(easy, CURLOPT_CURLU, transfer->parsed_url);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS, (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
	/* no proxy from the server's environment: the host reached is the host allowed */
	curl_easy_setopt(easy, CURLOPT_PROXY, "");
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long) moment_webhook_timeout);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long) moment_webhook_timeout);
	curl_easy_setopt(easy, CURLOPT_POST, 1L);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDS, transfer->body);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, (long) strlen(transfer->body));
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, transfer->headers);
	curl_easy_setopt(easy, CURLOPT_USERAGENT, "moment/" MOMENT_VERSION);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, discard_answer);
	curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, transfer->error);
	if (curl_multi_add_handle(multi, easy) != CURLM_OK)
		elog(ERROR, "moment webhook worker: curl_multi_add_handle failed");
	dlist_push_tail(&transfers, &transfer->node);
	ntransfers++;
}

static void
start_claimed(void)
{
	dlist_mutable_iter iter;

	dlist_foreach_modify(iter, &claimed)
	{
		Transfer   *transfer = dlist_container(Transfer, node, iter.cur);

		dlist_delete(&transfer->node);
		start_transfer(transfer);
	}
}

/* Turns every finished transfer into an outcome. */
static void
collect_finished(void)
{
	CURLMsg    *message;
	int			left;

	while ((message = curl_multi_info_read(multi, &left)) != NULL)
	{
		Transfer   *transfer;
		long		status = 0;
		CURLcode	code;

		if (message->msg != CURLMSG_DONE)
			continue;
		code = message->data.result;
		curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, (char **) &transfer);
		curl_easy_getinfo(message->easy_handle, CURLINFO_RESPONSE_CODE, &status);
		if (code != CURLE_OK)
			add_outcome(transfer->company_id, transfer->delivery_id, transfer->attempts, false,
						(int) status,
						transfer->error[0] ? psprintf("%s: %s", curl_easy_strerror(code), transfer->error) :
						(char *) curl_easy_strerror(code));
		else if (status >= 200 && status < 300)
			add_outcome(transfer->company_id, transfer->delivery_id, transfer->attempts, true,
						(int) status, NULL);
		else if (status >= 300 && status < 400)
			add_outcome(transfer->company_id, transfer->delivery_id, transfer->attempts, false,
						(int) status, psprintf("HTTP status %ld: redirects are not followed", status));
		else
			add_outcome(transfer->company_id, transfer->delivery_id, transfer->attempts, false,
						(int) status, psprintf("HTTP status %ld", status));
		dlist_delete(&transfer->node);
		ntransfers--;
		free_transfer(transfer);
	}
}

/* ---- the worker ---- */

/*
 * One round in one transaction.  An error (a deadlock with a user's
 * redeliver, the extension dropped) is logged and rolled back; the
 * outcomes stay to be recorded by a later round.  Returns false then.
 */
static bool
run_round(void)
{
	MemoryContext round_context = CurrentMemoryContext;
	volatile bool ok = true;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PG_TRY();
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		pgstat_report_activity(STATE_RUNNING, "delivering webhooks");
		spi_check(SPI_connect(), "SPI_connect");
		record_outcomes();
		claim_heads();
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		dlist_mutable_iter iter;

		MemoryContextSwitchTo(round_context);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		/* heads claimed by a failed round wait for the next one */
		dlist_foreach_modify(iter, &claimed)
		{
			Transfer   *transfer = dlist_container(Transfer, node, iter.cur);

			dlist_delete(&transfer->node);
			free_transfer(transfer);
		}
		ok = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(round_context);
	pgstat_report_activity(STATE_IDLE, NULL);
	return ok;
}

static void
drop_everything_in_flight(void)
{
	dlist_mutable_iter iter;

	dlist_foreach_modify(iter, &transfers)
	{
		Transfer   *transfer = dlist_container(Transfer, node, iter.cur);

		dlist_delete(&transfer->node);
		free_transfer(transfer);
	}
	ntransfers = 0;
	dlist_foreach_modify(iter, &outcomes)
	{
		Outcome    *outcome = dlist_container(Outcome, node, iter.cur);

		dlist_delete(&outcome->node);
		pfree(outcome);
	}
}

static long
ms_until(TimestampTz when, TimestampTz now)
{
	if (when <= now)
		return 0;
	return (long) Min((when - now + 999) / 1000, (TimestampTz) INT_MAX);
}

void
moment_webhook_worker_main(Datum main_arg)
{
	Oid			database;
	char	   *database_name;
	bool		ready = false;
	bool		wake = true;
	TimestampTz next_ready_check = 0;
	TimestampTz next_round = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	SpinLockAcquire(&shared->mutex);
	database = shared->database;
	/* should this start fail, the next one looks for the database again */
	shared->database = InvalidOid;
	SpinLockRelease(&shared->mutex);
	if (!OidIsValid(database))
		probe_database();

	BackgroundWorkerInitializeConnectionByOid(database, InvalidOid, 0);
	StartTransactionCommand();
	database_name = MemoryContextStrdup(TopMemoryContext, get_database_name(database));
	CommitTransactionCommand();
	/* a done mark lost in a crash only means one more delivery: at least once holds */
	SetConfigOption("synchronous_commit", "off", PGC_SUSET, PGC_S_OVERRIDE);

	worker_context = AllocSetContextCreate(TopMemoryContext, "moment webhook worker",
										   ALLOCSET_DEFAULT_SIZES);
	scratch_context = AllocSetContextCreate(TopMemoryContext, "moment webhook worker scratch",
											ALLOCSET_DEFAULT_SIZES);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || (multi = curl_multi_init()) == NULL)
		ereport(FATAL, (errmsg("moment webhook worker: could not initialize libcurl")));

	SpinLockAcquire(&shared->mutex);
	shared->latch = MyLatch;
	shared->served = MyDatabaseId;
	SpinLockRelease(&shared->mutex);
	before_shmem_exit(forget_latch, (Datum) 0);
	ereport(LOG, (errmsg("moment webhook worker: delivering the webhooks of database \"%s\"", database_name)));

	for (;;)
	{
		TimestampTz now;
		int			rc;

		/* transactions leave CurrentMemoryContext in TopMemoryContext */
		MemoryContextSwitchTo(scratch_context);
		MemoryContextReset(scratch_context);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			reload_settings();
			if (moment_webhook_database == NULL || strcmp(moment_webhook_database, database_name) != 0)
			{
				ereport(LOG,
						(errmsg("moment webhook worker: moment.webhook_database changed, restarting")));
				proc_exit(1);
			}
			wake = true;
		}

		now = GetCurrentTimestamp();
		if (!ready && now >= next_ready_check)
		{
			ready = extension_ready();
			MemoryContextSwitchTo(scratch_context);
			next_ready_check = TimestampTzPlusMilliseconds(now, READY_CHECK_MS);
			if (!ready)
				drop_everything_in_flight();	/* rows of a dropped extension */
		}
		if (ready && (wake || !dlist_is_empty(&outcomes) || now >= next_round))
		{
			wake = false;
			if (run_round())
			{
				now = GetCurrentTimestamp();
				next_round = TimestampTzPlusMilliseconds(now, POLL_MS);
				if (next_retry != 0 && next_retry < next_round)
					next_round = next_retry;
				start_claimed();
			}
			else
			{
				/* is it still there?  look again after a pause */
				ready = false;
				next_ready_check = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ERROR_PAUSE_MS);
			}
		}

		if (ntransfers > 0)
		{
			int			running;

			curl_multi_perform(multi, &running);
			collect_finished();
			if (ready && !dlist_is_empty(&outcomes))
				continue;		/* record them and send the next at once */
			curl_multi_wait(multi, NULL, 0, TRANSFER_WAIT_MS, NULL);
			curl_multi_perform(multi, &running);
			collect_finished();
			rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 0, PG_WAIT_EXTENSION);
		}
		else if (ready && !dlist_is_empty(&outcomes))
			continue;
		else
		{
			long		timeout = ready ? ms_until(next_round, GetCurrentTimestamp()) :
				ms_until(next_ready_check, GetCurrentTimestamp());

			rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						   Max(timeout, 1), PG_WAIT_EXTENSION);
		}
		if (rc & WL_LATCH_SET)
		{
			ResetLatch(MyLatch);
			wake = true;
		}
	}
}
