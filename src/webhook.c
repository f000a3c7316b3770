/*
 * webhook.c: webhooks, the queueing side (contract section 16).
 *
 * Every entity table carries three statement-level AFTER triggers
 * (moment.webhook_queue) with transition tables: one INSERT ... SELECT per
 * statement writes a delivery for each changed row and each webhook of
 * the row's company subscribed to the entity and event, with the body
 * built from the new row (the old row for DELETE).  The deliveries are rows
 * of the changing transaction, so a rollback (or ROLLBACK TO SAVEPOINT)
 * takes them away with the change: an outbox.  At commit the background
 * worker (worker.c) is woken.
 *
 * Company roles cannot write moment.webhooks or moment.webhook_deliveries:
 * create_webhook, drop_webhook and redeliver do it for them, as the
 * extension owner, for the company in force.  A trigger on moment.webhooks
 * checks the URL of every row written, whoever writes it.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/tuplestore.h"

#include "moment.h"
#include "plancache.h"
#include "registry.h"
#include "tenant.h"
#include "webhook.h"

char	   *moment_webhook_database = NULL;
char	   *moment_webhook_allowed_hosts = NULL;
int			moment_webhook_timeout = 10000;
int			moment_webhook_retry_delay = 1000;
int			moment_webhook_retry_max_delay = 5 * 60 * 1000;
int			moment_webhook_max_attempts = 8;

#define WEBHOOK_EVENTS "CREATE_NEW, UPDATE, DELETE"
#define WEBHOOK_MAX_URL_BYTES 2048

static const char *const webhook_events[] = {"CREATE_NEW", "UPDATE", "DELETE"};

/* this transaction queued deliveries (or made some pending): wake the worker at commit */
static bool deliveries_queued = false;

static void
webhook_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
			if (deliveries_queued)
				webhook_wake_worker();
			deliveries_queued = false;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_ABORT:
			/* a prepared transaction's deliveries wait for the worker's next poll */
			deliveries_queued = false;
			break;
		default:
			break;
	}
}

void
webhook_init(void)
{
	DefineCustomStringVariable("moment.webhook_database",
							   "Database whose webhook deliveries the background worker sends.",
							   "Read by the worker started from shared_preload_libraries; it reconnects when this changes.",
							   &moment_webhook_database,
							   "postgres",
							   PGC_SUSET,
							   0,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("moment.webhook_allowed_hosts",
							   "Comma-separated host names and addresses webhook URLs may name.",
							   "Compared case-insensitively with the host as written in the URL, without DNS. Empty: none.",
							   &moment_webhook_allowed_hosts,
							   "",
							   PGC_SUSET,
							   GUC_LIST_INPUT,
							   NULL, NULL, NULL);
	DefineCustomIntVariable("moment.webhook_timeout",
							"Time a webhook receiver has to answer a delivery, connecting included.",
							NULL,
							&moment_webhook_timeout,
							10000, 1, 3600 * 1000,
							PGC_SUSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("moment.webhook_retry_delay",
							"Wait after a delivery's first failed attempt; it doubles after each further one.",
							NULL,
							&moment_webhook_retry_delay,
							1000, 1, INT_MAX,
							PGC_SUSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("moment.webhook_retry_max_delay",
							"Longest wait between two attempts of a delivery.",
							NULL,
							&moment_webhook_retry_max_delay,
							5 * 60 * 1000, 1, INT_MAX,
							PGC_SUSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("moment.webhook_max_attempts",
							"Attempts (the first included) after which a delivery is failed.",
							NULL,
							&moment_webhook_max_attempts,
							8, 1, 1000,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);
	RegisterXactCallback(webhook_xact_callback, NULL);
}

/* ---- URLs ---- */

/* Whether host (as written, case-insensitively) is an entry of moment.webhook_allowed_hosts. */
static bool
host_allowed(const char *host)
{
	const char *p = moment_webhook_allowed_hosts;

	if (p == NULL)
		return false;
	while (*p)
	{
		const char *start;
		const char *end;
		const char *next;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '\0')
			break;
		next = strchr(p, ',');
		if (next == NULL)
			next = p + strlen(p);
		start = p;
		end = next;
		while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		/* an IPv6 entry may be written with or without its brackets */
		if (end - start > 2 && *start == '[' && end[-1] == ']')
		{
			start++;
			end--;
		}
		if ((size_t) (end - start) == strlen(host) && pg_strncasecmp(start, host, end - start) == 0)
			return true;
		p = next;
	}
	return false;
}

const char *
webhook_url_problem(const char *url, char **host, const char **hint)
{
	const char *p;
	const char *authority_end;
	const char *host_start;
	const char *host_end;
	const char *port_start = NULL;
	char	   *host_name;

	if (hint)
		*hint = NULL;
	if (host)
		*host = NULL;
	if (url == NULL)
		return "url must not be null";
	if (strlen(url) > WEBHOOK_MAX_URL_BYTES)
		return psprintf("it is longer than %d bytes", WEBHOOK_MAX_URL_BYTES);
	if (pg_strncasecmp(url, "http://", 7) == 0)
		p = url + 7;
	else if (pg_strncasecmp(url, "https://", 8) == 0)
		p = url + 8;
	else
	{
		if (hint)
			*hint = "A webhook URL starts with http:// or https://.";
		return "it is not an http:// or https:// URL";
	}
	/* what curl and we might read differently is refused outright */
	for (const char *c = url; *c; c++)
		if ((unsigned char) *c <= ' ' || (unsigned char) *c >= 0x7f || *c == '\\')
		{
			if (hint)
				*hint = "Percent-encode spaces, control characters, backslashes and non-ASCII characters.";
			return "it contains a space, control character, backslash or non-ASCII character";
		}

	authority_end = p + strcspn(p, "/?#");
	if (memchr(p, '@', authority_end - p) != NULL)
	{
		if (hint)
			*hint = "Webhook URLs cannot carry a user name or password; use a secret to sign deliveries instead.";
		return "it contains user info (user@ before the host)";
	}
	if (*p == '[')
	{
		host_start = p + 1;
		host_end = memchr(host_start, ']', authority_end - host_start);
		if (host_end == NULL || host_end == host_start)
			return "its IPv6 address is not closed by ]";
		for (const char *c = host_start; c < host_end; c++)
			if (!isxdigit((unsigned char) *c) && *c != ':' && *c != '.')
				return "its IPv6 address holds characters other than hexadecimal digits, colons and dots";
		p = host_end + 1;
	}
	else
	{
		host_start = p;
		host_end = host_start + strcspn(host_start, ":/?#");
		if (host_end == host_start)
			return "it has no host";
		for (const char *c = host_start; c < host_end; c++)
			if (!isalnum((unsigned char) *c) && *c != '.' && *c != '-' && *c != '_')
				return "its host holds characters other than letters, digits, dots, hyphens and underscores";
		p = host_end;
	}
	if (p < authority_end)
	{
		long		port = 0;

		if (*p != ':')
			return "something other than a port follows its host";
		port_start = ++p;
		if (p == authority_end)
			return "its port is empty";
		for (; p < authority_end; p++)
		{
			if (!isdigit((unsigned char) *p) || p - port_start >= 5)
				return "its port is not a number from 1 to 65535";
			port = port * 10 + (*p - '0');
		}
		if (port < 1 || port > 65535)
			return "its port is not a number from 1 to 65535";
	}

	host_name = pnstrdup(host_start, host_end - host_start);
	if (host)
		*host = host_name;
	if (!host_allowed(host_name))
	{
		if (hint)
			*hint = "A superuser lists the hosts webhooks may reach in moment.webhook_allowed_hosts.";
		return psprintf("host \"%s\" is not in moment.webhook_allowed_hosts", host_name);
	}
	return NULL;
}

static void
check_url(const char *url)
{
	const char *hint;
	const char *problem = webhook_url_problem(url, NULL, &hint);

	if (problem == NULL)
		return;
	if (url == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s", problem)));
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid webhook URL \"%s\": %s", url, problem),
			 hint ? errhint("%s", hint) : 0));
}

/* ---- events ---- */

static bool
known_event(const char *name)
{
	for (int i = 0; i < lengthof(webhook_events); i++)
		if (strcmp(webhook_events[i], name) == 0)
			return true;
	return false;
}

/* The events of a webhook, checked (22023), duplicates dropped, as a text[]. */
static ArrayType *
checked_events(ArrayType *events)
{
	Datum	   *items;
	bool	   *nulls;
	int			nitems;
	Datum	   *kept;
	int			nkept = 0;

	if (events == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("events must not be null"),
				 errhint("Events: " WEBHOOK_EVENTS ".")));
	if (ARR_NDIM(events) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("events must be a one-dimensional array")));
	deconstruct_array(events, TEXTOID, -1, false, TYPALIGN_INT, &items, &nulls, &nitems);
	if (nitems == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("events must name at least one event"),
				 errhint("Events: " WEBHOOK_EVENTS ".")));
	kept = palloc(sizeof(Datum) * nitems);
	for (int i = 0; i < nitems; i++)
	{
		char	   *name;
		bool		seen = false;

		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("events must not hold null"),
					 errhint("Events: " WEBHOOK_EVENTS ".")));
		name = TextDatumGetCString(items[i]);
		if (!known_event(name))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown webhook event \"%s\"", name),
					 errhint("Events: " WEBHOOK_EVENTS ".")));
		for (int k = 0; k < nkept; k++)
			if (strcmp(TextDatumGetCString(kept[k]), name) == 0)
				seen = true;
		if (!seen)
			kept[nkept++] = CStringGetTextDatum(name);
	}
	return construct_array(kept, nkept, TEXTOID, -1, false, TYPALIGN_INT);
}

/* ---- queueing ---- */

static void
append_key(StringInfo sql, const char *key)
{
	appendStringInfo(sql, "%s::pg_catalog.text, ", quote_literal_cstr(key));
}

/*
 * The statement that queues the deliveries of one statement's changes to
 * an entity: for each row of the transition table (in the order of the
 * changes) and each subscribed webhook of its company (in id order), the
 * body {"event": $1, "<singular>": {"id", "<singular>Number", and each
 * relation as {"id", "<target>Number"} or null}}.  $1 is the event, $2 the
 * entity name.  Its text depends only on the entity's shape, so one plan
 * per entity and event serves every statement.
 */
static const char *
queue_statement(MomentEntity *entity, const char *event, const char *rows_name)
{
	char	   *shape = psprintf("webhook queue %s %s %s", entity->name, event, rows_name);
	const char *memo = statement_memo_get(shape);
	StringInfoData sql;
	StringInfoData columns;
	List	   *entities = list_make1(entity);
	ListCell   *cell;

	if (memo != NULL)
		return memo;

	initStringInfo(&sql);
	initStringInfo(&columns);
	appendStringInfo(&columns, "r.company_id, r.%s", entity->id_field->quoted_column);
	appendStringInfoString(&sql,
						   "INSERT INTO moment.webhook_deliveries (company_id, webhook_id, event, body) "
						   "SELECT r.company_id, w.id, $1, pg_catalog.jsonb_build_object('event'::pg_catalog.text, $1, ");
	append_key(&sql, entity->singular);
	appendStringInfoString(&sql, "pg_catalog.jsonb_build_object('id'::pg_catalog.text, ");
	appendStringInfo(&sql, "r.%s", entity->id_field->quoted_column);
	if (entity->number_field != NULL)
	{
		appendStringInfoString(&sql, ", ");
		append_key(&sql, entity->number_field->json_name);
		appendStringInfo(&sql, "r.%s", entity->number_field->quoted_column);
		appendStringInfo(&columns, ", r.%s", entity->number_field->quoted_column);
	}
	foreach(cell, entity->relations)
	{
		MomentRelation *relation = lfirst(cell);
		const char *fk = relation->fk_field->quoted_column;
		MomentEntity *target = relation->target;

		appendStringInfoString(&sql, ", ");
		append_key(&sql, relation->json_name);
		appendStringInfo(&sql, "CASE WHEN r.%s IS NULL THEN NULL ELSE pg_catalog.jsonb_build_object('id'::pg_catalog.text, r.%s",
						 fk, fk);
		/* a broken target still gives its id; the number needs its table */
		if (entity_try_ensure(target) && target->number_field != NULL)
		{
			appendStringInfoString(&sql, ", ");
			append_key(&sql, target->number_field->json_name);
			appendStringInfo(&sql, "(SELECT t.%s FROM %s t WHERE t.company_id OPERATOR(pg_catalog.=) r.company_id "
							 "AND t.%s OPERATOR(pg_catalog.=) r.%s)",
							 target->number_field->quoted_column, target->qualified_table,
							 target->id_field->quoted_column, fk);
			entities = lappend(entities, target);
		}
		appendStringInfoString(&sql, ") END");
		appendStringInfo(&columns, ", r.%s", fk);
	}
	appendStringInfo(&sql, ")) FROM (SELECT %s, pg_catalog.row_number() OVER () AS moment_change FROM %s r) r "
					 "JOIN moment.webhooks w ON w.company_id OPERATOR(pg_catalog.=) r.company_id "
					 "AND w.entity OPERATOR(pg_catalog.=) $2 AND $1 OPERATOR(pg_catalog.=) ANY (w.events) "
					 "ORDER BY r.moment_change, w.id",
					 columns.data, quote_identifier(rows_name));
	statement_memo_put(shape, sql.data, entities);
	return sql.data;
}

/* Whether any webhook (of any company) subscribes to the entity. */
static bool
entity_subscribed(const char *entity_name)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	KeptPlan   *plan;

	args[0] = CStringGetTextDatum(entity_name);
	plan = plancache_get("SELECT FROM moment.webhooks w WHERE w.entity OPERATOR(pg_catalog.=) $1 LIMIT 1",
						 1, argtypes);
	spi_check(kept_plan_execute(plan, args, NULL, true, 1), "reading moment.webhooks");
	return SPI_processed > 0;
}

/*
 * Statement-level AFTER INSERT, UPDATE or DELETE trigger with a transition
 * table, on every entity table (moment.enable_webhooks attaches it).  An
 * ordinary trigger, not ENABLE ALWAYS: rows copied under
 * session_replication_role = replica (a company moved by the router,
 * logical replication) were queued where they were first written.
 */
PG_FUNCTION_INFO_V1(moment_webhook_queue);
Datum
moment_webhook_queue(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Tuplestorestate *rows;
	const char *rows_name;
	const char *event;
	MomentEntity *entity;
	const char *sql;
	Oid			argtypes[2] = {TEXTOID, TEXTOID};
	Datum		args[2];
	KeptPlan   *plan;
	OwnerSwitch saved;

	if (!CALLED_AS_TRIGGER(fcinfo) || TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_AFTER(trigdata->tg_event) || TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("moment.webhook_queue() must be fired AFTER INSERT, UPDATE or DELETE FOR EACH STATEMENT")));
	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
	{
		rows = trigdata->tg_newtable;
		rows_name = trigdata->tg_trigger->tgnewtable;
		event = "CREATE_NEW";
	}
	else if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		rows = trigdata->tg_newtable;
		rows_name = trigdata->tg_trigger->tgnewtable;
		event = "UPDATE";
	}
	else
	{
		rows = trigdata->tg_oldtable;
		rows_name = trigdata->tg_trigger->tgoldtable;
		event = "DELETE";
	}
	if (rows == NULL || rows_name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("moment.webhook_queue() needs a transition table (REFERENCING NEW TABLE for INSERT and UPDATE, OLD TABLE for DELETE)")));
	if (tuplestore_tuple_count(rows) == 0)
		return PointerGetDatum(NULL);

	(void) registry_entities();
	entity = registry_entity_by_relid(RelationGetRelid(trigdata->tg_relation));
	if (entity == NULL)
		return PointerGetDatum(NULL);	/* not (or no longer) an entity */

	spi_check(SPI_connect(), "SPI_connect");
	spi_check(SPI_register_trigger_data(trigdata), "SPI_register_trigger_data");
	run_as_extension_owner(&saved);
	if (!entity_try_ensure(entity))
	{
		/* a change nobody listens to may pass; one a webhook waits for may not */
		if (entity_subscribed(entity->name))
			entity_ensure(entity);
		restore_user(&saved);
		SPI_finish();
		return PointerGetDatum(NULL);
	}
	sql = queue_statement(entity, event, rows_name);
	args[0] = CStringGetTextDatum(event);
	args[1] = CStringGetTextDatum(entity->name);
	plan = plancache_get(sql, 2, argtypes);
	spi_check(kept_plan_execute(plan, args, NULL, false, 0), "queueing webhook deliveries");
	if (SPI_processed > 0)
		deliveries_queued = true;
	restore_user(&saved);
	SPI_finish();
	return PointerGetDatum(NULL);
}

/*
 * BEFORE INSERT OR UPDATE row trigger on moment.webhooks: whoever writes a
 * webhook (create_webhook, a superuser, a restore), its URL passes the
 * allow-list as it stands for the writer.
 */
PG_FUNCTION_INFO_V1(moment_webhook_check);
Datum
moment_webhook_check(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Relation	rel;
	TupleDesc	tupdesc;
	HeapTuple	tuple;
	int			attnum;
	bool		isnull;
	Datum		url;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_BEFORE(trigdata->tg_event) || TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("moment.webhook_check() must be fired BEFORE INSERT OR UPDATE FOR EACH ROW")));
	rel = trigdata->tg_relation;
	if (RelationGetRelid(rel) != get_relname_relid("webhooks", moment_namespace()))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("moment.webhook_check() only works on moment.webhooks")));
	tupdesc = RelationGetDescr(rel);
	attnum = SPI_fnumber(tupdesc, "url");
	if (attnum <= 0 || TupleDescAttr(tupdesc, attnum - 1)->atttypid != TEXTOID)
		ereport(ERROR,
				(errcode(ERRCODE_TRIGGERED_ACTION_EXCEPTION),
				 errmsg("moment.webhook_check() needs column url of type text")));
	tuple = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ? trigdata->tg_newtuple : trigdata->tg_trigtuple;
	url = heap_getattr(tuple, attnum, tupdesc, &isnull);
	if (!isnull)
		check_url(TextDatumGetCString(url));
	/* NULL: the NOT NULL constraint speaks */
	return PointerGetDatum(tuple);
}

/* ---- the SQL functions ---- */

static char *
text_or_null(FunctionCallInfo fcinfo, int n)
{
	return PG_ARGISNULL(n) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(n));
}

/*
 * moment.create_webhook(entity, url, events, secret): a webhook of the
 * company in force (writable grant) on an entity; returns its id.
 */
PG_FUNCTION_INFO_V1(moment_create_webhook);
Datum
moment_create_webhook(PG_FUNCTION_ARGS)
{
	int64 volatile result = 0;

	API_ENTRY_BEGIN
	{
		MomentEntity *entity = registry_entity(text_or_null(fcinfo, 0));
		CompanyInForce company = tenant_company(true);
		char	   *url = text_or_null(fcinfo, 1);
		ArrayType  *events = checked_events(PG_ARGISNULL(2) ? NULL : PG_GETARG_ARRAYTYPE_P(2));
		char	   *secret = text_or_null(fcinfo, 3);
		Oid			argtypes[5] = {INT8OID, TEXTOID, TEXTOID, TEXTARRAYOID, TEXTOID};
		Datum		args[5];
		char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
		KeptPlan   *plan;
		OwnerSwitch saved;
		bool		isnull;

		check_url(url);
		if (secret != NULL && secret[0] == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("secret must not be empty"),
					 errhint("Pass NULL for unsigned deliveries.")));
		args[0] = Int64GetDatum(company.id);
		args[1] = CStringGetTextDatum(entity->name);
		args[2] = CStringGetTextDatum(url);
		args[3] = PointerGetDatum(events);
		args[4] = secret ? CStringGetTextDatum(secret) : (Datum) 0;
		if (secret == NULL)
			nulls[4] = 'n';

		spi_check(SPI_connect(), "SPI_connect");
		run_as_extension_owner(&saved);
		plan = plancache_get("INSERT INTO moment.webhooks (company_id, entity, url, events, secret) "
							 "VALUES ($1, $2, $3, $4, $5) RETURNING id", 5, argtypes);
		spi_check(kept_plan_execute(plan, args, nulls, false, 1), "inserting into moment.webhooks");
		result = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		restore_user(&saved);
		SPI_finish();
	}
	API_ENTRY_END;
	PG_RETURN_INT64(result);
}

static int64
require_id_argument(FunctionCallInfo fcinfo, const char *name)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be null", name)));
	return PG_GETARG_INT64(0);
}

/*
 * moment.drop_webhook(id): deletes a webhook of the company in force and
 * cancels its pending deliveries (failed, saying why); their rows stay.
 */
PG_FUNCTION_INFO_V1(moment_drop_webhook);
Datum
moment_drop_webhook(PG_FUNCTION_ARGS)
{
	int64 volatile result = 0;

	API_ENTRY_BEGIN
	{
		int64		id = require_id_argument(fcinfo, "id");
		CompanyInForce company = tenant_company(true);
		Oid			argtypes[2] = {INT8OID, INT8OID};
		Datum		args[2];
		KeptPlan   *plan;
		OwnerSwitch saved;
		uint64		found;

		args[0] = Int64GetDatum(company.id);
		args[1] = Int64GetDatum(id);
		spi_check(SPI_connect(), "SPI_connect");
		run_as_extension_owner(&saved);
		plan = plancache_get("DELETE FROM moment.webhooks w WHERE w.company_id OPERATOR(pg_catalog.=) $1 "
							 "AND w.id OPERATOR(pg_catalog.=) $2", 2, argtypes);
		spi_check(kept_plan_execute(plan, args, NULL, false, 0), "deleting from moment.webhooks");
		found = SPI_processed;
		if (found > 0)
		{
			plan = plancache_get("UPDATE moment.webhook_deliveries d SET state = 'failed', next_attempt_at = NULL, "
								 "last_error = 'cancelled: webhook ' OPERATOR(pg_catalog.||) $2::pg_catalog.text "
								 "OPERATOR(pg_catalog.||) ' was dropped' "
								 "WHERE d.company_id OPERATOR(pg_catalog.=) $1 AND d.webhook_id OPERATOR(pg_catalog.=) $2 "
								 "AND d.state OPERATOR(pg_catalog.=) 'pending'", 2, argtypes);
			spi_check(kept_plan_execute(plan, args, NULL, false, 0), "cancelling webhook deliveries");
		}
		restore_user(&saved);
		SPI_finish();
		if (found == 0)
			ereport(ERROR,
					(errcode(ERRCODE_NO_DATA_FOUND),
					 errmsg("webhook " INT64_FORMAT " does not exist", id),
					 errdetail("No webhook of company \"%s\" has that id.", company.code)));
		result = id;
	}
	API_ENTRY_END;
	PG_RETURN_INT64(result);
}

/*
 * moment.redeliver(delivery_id): a delivery of the company in force, in
 * any state, pending again with its attempts reset; same id.
 */
PG_FUNCTION_INFO_V1(moment_redeliver);
Datum
moment_redeliver(PG_FUNCTION_ARGS)
{
	int64 volatile result = 0;

	API_ENTRY_BEGIN
	{
		int64		id = require_id_argument(fcinfo, "delivery_id");
		CompanyInForce company = tenant_company(true);
		Oid			argtypes[2] = {INT8OID, INT8OID};
		Datum		args[2];
		KeptPlan   *plan;
		OwnerSwitch saved;
		uint64		found;

		args[0] = Int64GetDatum(company.id);
		args[1] = Int64GetDatum(id);
		spi_check(SPI_connect(), "SPI_connect");
		run_as_extension_owner(&saved);
		plan = plancache_get("UPDATE moment.webhook_deliveries d SET state = 'pending', attempts = 0, "
							 "next_attempt_at = pg_catalog.now(), delivered_at = NULL "
							 "WHERE d.company_id OPERATOR(pg_catalog.=) $1 AND d.id OPERATOR(pg_catalog.=) $2",
							 2, argtypes);
		spi_check(kept_plan_execute(plan, args, NULL, false, 0), "updating moment.webhook_deliveries");
		found = SPI_processed;
		restore_user(&saved);
		SPI_finish();
		if (found == 0)
			ereport(ERROR,
					(errcode(ERRCODE_NO_DATA_FOUND),
					 errmsg("webhook delivery " INT64_FORMAT " does not exist", id),
					 errdetail("No webhook delivery of company \"%s\" has that id.", company.code)));
		deliveries_queued = true;
		result = id;
	}
	API_ENTRY_END;
	PG_RETURN_INT64(result);
}
