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

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
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

/*
 * The entities some webhook (of any company) subscribes to, so that a write
 * to any other entity skips the queueing statement altogether.  Read with a
 * fresh snapshot; dropped by a relcache invalidation of moment.webhooks,
 * which the catalog_changed triggers on it send at the commit of every
 * change (ENABLE ALWAYS: under replica too).  At most one name per entity.
 */
static MemoryContext subscribed_context = NULL;
static List *subscribed_entities = NIL;
static bool subscribed_valid = false;

/*
 * The tables the queueing writes and reads, and their columns, looked up
 * once; dropped with the subscriptions when either table changes (or is
 * dropped with the extension).
 */
typedef struct OutboxTables
{
	bool		valid;
	Oid			webhooks;
	Oid			webhooks_index;	/* (company_id, entity) */
	AttrNumber	webhook_id;
	AttrNumber	webhook_events;
	Oid			deliveries;
	Oid			sequence;
	AttrNumber	company_id,
				id,
				webhook,
				event,
				body,
				state,
				attempts,
				next_attempt_at,
				created_at;
} OutboxTables;

static OutboxTables outbox;

static void
webhook_relcache_callback(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == outbox.webhooks || relid == outbox.deliveries)
	{
		subscribed_valid = false;
		outbox.valid = false;
	}
}

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
	CacheRegisterRelcacheCallback(webhook_relcache_callback, (Datum) 0);
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

/*
 * Queueing writes moment.webhook_deliveries directly (heap and indexes, as
 * COPY does), not through an INSERT statement: it runs for every write to
 * an entity, and starting an executor (and re-reading the table's CHECK
 * constraints) for each would cost as much as the write itself.  The rows
 * are moment's own: state 'pending', attempts 0, an event of the three.
 * The table has no triggers and no foreign keys to honour; row-level
 * security does not apply to its owner.
 */

/*
 * The entities some webhook (of any company) subscribes to.  Refilled, as
 * the extension owner, after an invalidation.
 */
static bool
entity_subscribed(const char *entity_name)
{
	ListCell   *cell;

	/* a webhook committed since this transaction's last lock counts now */
	AcceptInvalidationMessages();
	if (!subscribed_valid)
	{
		KeptPlan   *plan;
		MemoryContext old_context;
		OwnerSwitch saved;

		/* the relid first: an invalidation arriving during the read must count */
		outbox.webhooks = get_relname_relid("webhooks", moment_namespace());
		subscribed_valid = true;
		spi_check(SPI_connect(), "SPI_connect");
		run_as_extension_owner(&saved);
		plan = plancache_get("SELECT DISTINCT w.entity FROM moment.webhooks w", 0, NULL);
		spi_check(SPI_execute_snapshot(kept_plan_spi(plan), NULL, NULL, GetLatestSnapshot(),
									   InvalidSnapshot, true, false, 0),
				  "reading moment.webhooks");
		restore_user(&saved);
		if (subscribed_context == NULL)
			subscribed_context = AllocSetContextCreate(CacheMemoryContext, "moment webhook subscriptions",
													   ALLOCSET_SMALL_SIZES);
		else
			MemoryContextReset(subscribed_context);
		old_context = MemoryContextSwitchTo(subscribed_context);
		subscribed_entities = NIL;
		for (uint64 row = 0; row < SPI_processed; row++)
			subscribed_entities = lappend(subscribed_entities,
										  SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, 1));
		MemoryContextSwitchTo(old_context);
		SPI_finish();
	}
	foreach(cell, subscribed_entities)
		if (strcmp((char *) lfirst(cell), entity_name) == 0)
			return true;
	return false;
}

static AttrNumber
column_of(Oid relid, const char *name, Oid type)
{
	AttrNumber	attnum = get_attnum(relid, name);

	if (attnum == InvalidAttrNumber || (OidIsValid(type) && get_atttype(relid, attnum) != type))
		ereport(ERROR,
				(errcode(ERRCODE_TRIGGERED_ACTION_EXCEPTION),
				 errmsg("moment.webhook_queue() needs column %s of %s%s%s", name, get_rel_name(relid),
						OidIsValid(type) ? " of type " : "", OidIsValid(type) ? format_type_be(type) : "")));
	return attnum;
}

static Oid
outbox_relation(const char *name)
{
	Oid			relid = get_relname_relid(name, moment_namespace());

	if (!OidIsValid(relid))
		elog(ERROR, "moment: relation moment.%s does not exist", name);
	return relid;
}

/* The outbox's tables and columns, their types checked. */
static void
outbox_ensure(void)
{
	OutboxTables found;

	if (outbox.valid)
		return;
	found.webhooks = outbox_relation("webhooks");
	found.webhooks_index = outbox_relation("webhooks_entity_idx");
	found.webhook_id = column_of(found.webhooks, "id", INT8OID);
	found.webhook_events = column_of(found.webhooks, "events", TEXTARRAYOID);
	found.deliveries = outbox_relation("webhook_deliveries");
	found.sequence = outbox_relation("webhook_deliveries_id_seq");
	found.company_id = column_of(found.deliveries, "company_id", INT8OID);
	found.id = column_of(found.deliveries, "id", INT8OID);
	found.webhook = column_of(found.deliveries, "webhook_id", INT8OID);
	found.event = column_of(found.deliveries, "event", TEXTOID);
	found.body = column_of(found.deliveries, "body", JSONBOID);
	found.state = column_of(found.deliveries, "state", TEXTOID);
	found.attempts = column_of(found.deliveries, "attempts", INT4OID);
	found.next_attempt_at = column_of(found.deliveries, "next_attempt_at", TIMESTAMPTZOID);
	found.created_at = column_of(found.deliveries, "created_at", TIMESTAMPTZOID);
	found.valid = true;
	outbox = found;
}

static int64
integer_value(Datum value, Oid type)
{
	switch (type)
	{
		case INT2OID:
			return DatumGetInt16(value);
		case INT4OID:
			return DatumGetInt32(value);
		default:
			return DatumGetInt64(value);
	}
}

/* A field's value in a body: integers and numerics as numbers, the rest as their text. */
static void
push_value(JsonbParseState **state, MomentField *field, Datum value, bool isnull)
{
	JsonbValue	v;

	if (isnull)
	{
		jb_null(state, WJB_VALUE);
		return;
	}
	switch (field->base_type)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
			jb_int64(state, integer_value(value, field->base_type), WJB_VALUE);
			return;
		case NUMERICOID:
			v.type = jbvNumeric;
			v.val.numeric = DatumGetNumeric(value);
			pushJsonbValue(state, WJB_VALUE, &v);
			return;
		case BOOLOID:
			jb_bool(state, DatumGetBool(value), WJB_VALUE);
			return;
		default:
			{
				Oid			output;
				bool		varlena;

				getTypeOutputInfo(field->type_oid, &output, &varlena);
				jb_string(state, OidOutputFunctionCall(output, value), WJB_VALUE);
			}
	}
}

/* The {"id", number} of one relation's targets: how its number is found. */
typedef struct RelatedNumber
{
	MomentRelation *relation;
	MomentField *number;		/* the target's number field, or NULL: only the id */
	Relation	table;			/* a plain table and a unique index on (company_id, id) ... */
	Relation	index;
	ScanKeyData keys[2];		/* sk_argument set per row */
	int			company_key;
	TupleTableSlot *slot;
	char	   *query;			/* ... or else (a partitioned table) a query */
	Oid			argtypes[2];
} RelatedNumber;

/*
 * The equality scan key of index column k for values of value_type, or
 * false when the index's operator family has no such operator.
 */
static bool
index_equality_key(Relation index, int k, Oid value_type, ScanKey key)
{
	Oid			op = get_opfamily_member(index->rd_opfamily[k], index->rd_opcintype[k], value_type,
										 BTEqualStrategyNumber);

	if (!OidIsValid(op))
		return false;
	ScanKeyEntryInitialize(key, 0, k + 1, BTEqualStrategyNumber,
						   value_type == index->rd_opcintype[k] ? InvalidOid : value_type,
						   index->rd_indcollation[k], get_opcode(op), (Datum) 0);
	return true;
}

/* Looks for a unique index on exactly (company_id, id) of a plain table, with keys for our values. */
static bool
open_number_index(RelatedNumber *related, MomentEntity *entity, MomentEntity *target)
{
	AttrNumber	company = get_attnum(target->relid, "company_id");
	AttrNumber	id = target->id_field->attnum;
	ListCell   *cell;

	if (related->table->rd_rel->relkind != RELKIND_RELATION)
		return false;
	foreach(cell, RelationGetIndexList(related->table))
	{
		Relation	index = index_open(lfirst_oid(cell), AccessShareLock);
		Form_pg_index form = index->rd_index;
		bool		fits = form->indisunique && form->indisvalid && form->indnkeyatts == 2 &&
			heap_attisnull(index->rd_indextuple, Anum_pg_index_indexprs, NULL) &&
			heap_attisnull(index->rd_indextuple, Anum_pg_index_indpred, NULL) &&
			((form->indkey.values[0] == company && form->indkey.values[1] == id) ||
			 (form->indkey.values[0] == id && form->indkey.values[1] == company));

		if (fits)
		{
			int			company_key = form->indkey.values[0] == company ? 0 : 1;
			Oid			company_type = get_atttype(entity->relid, get_attnum(entity->relid, "company_id"));

			if (index_equality_key(index, company_key, company_type, &related->keys[company_key]) &&
				index_equality_key(index, 1 - company_key, related->relation->fk_field->type_oid,
								   &related->keys[1 - company_key]))
			{
				related->index = index;
				related->company_key = company_key;
				related->slot = table_slot_create(related->table, NULL);
				return true;
			}
		}
		index_close(index, AccessShareLock);
	}
	return false;
}

static void
open_related(RelatedNumber *related, MomentEntity *entity, MomentRelation *relation)
{
	MomentEntity *target = relation->target;

	memset(related, 0, sizeof(RelatedNumber));
	related->relation = relation;
	/* a broken target still gives its id; the number needs its table */
	if (!entity_try_ensure(target) || target->number_field == NULL)
		return;
	related->number = target->number_field;
	related->table = table_open(target->relid, AccessShareLock);
	if (!open_number_index(related, entity, target))
	{
		related->argtypes[0] = get_atttype(entity->relid, get_attnum(entity->relid, "company_id"));
		related->argtypes[1] = relation->fk_field->type_oid;
		related->query = psprintf("SELECT t.%s FROM %s t WHERE t.company_id OPERATOR(pg_catalog.=) $1 "
								  "AND t.%s OPERATOR(pg_catalog.=) $2",
								  target->number_field->quoted_column, target->qualified_table,
								  target->id_field->quoted_column);
	}
}

static void
close_related(RelatedNumber *related)
{
	if (related->slot)
		ExecDropSingleTupleTableSlot(related->slot);
	if (related->index)
		index_close(related->index, AccessShareLock);
	if (related->table)
		table_close(related->table, AccessShareLock);
}

/* The number of a related object, by index or (inside SPI, as the owner) by query. */
static void
push_related_number(JsonbParseState **state, RelatedNumber *related, Datum company, Datum fk,
					Snapshot snapshot)
{
	bool		isnull = true;
	Datum		value = (Datum) 0;

	jb_key(state, related->number->json_name);
	if (related->index)
	{
		IndexScanDesc scan;
		ScanKeyData keys[2];

		memcpy(keys, related->keys, sizeof(keys));
		keys[related->company_key].sk_argument = company;
		keys[1 - related->company_key].sk_argument = fk;
		scan = index_beginscan(related->table, related->index, snapshot, 2, 0);
		index_rescan(scan, keys, 2, NULL, 0);
		if (index_getnext_slot(scan, ForwardScanDirection, related->slot))
			value = slot_getattr(related->slot, related->number->attnum, &isnull);
		push_value(state, related->number, value, isnull);
		index_endscan(scan);
		return;
	}
	else
	{
		Datum		args[2] = {company, fk};
		OwnerSwitch saved;
		MemoryContext caller_context = CurrentMemoryContext;
		int16		typlen;
		bool		typbyval;

		spi_check(SPI_connect(), "SPI_connect");
		run_as_extension_owner(&saved);
		spi_check(kept_plan_execute(plancache_get(related->query, 2, related->argtypes), args, NULL, true, 1),
				  "reading a related object");
		if (SPI_processed == 1)
		{
			/* the value outlives SPI's memory */
			value = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
			get_typlenbyval(related->number->type_oid, &typlen, &typbyval);
			if (!isnull)
			{
				MemoryContext spi_context = MemoryContextSwitchTo(caller_context);

				value = datumCopy(value, typbyval, typlen);
				MemoryContextSwitchTo(spi_context);
			}
		}
		restore_user(&saved);
		SPI_finish();
		push_value(state, related->number, value, isnull);
	}
}

/*
 * The body of a change: {"event": ..., "<singular>": {"id", "<singular>Number",
 * and each relation as {"id", "<target>Number"} or null}}.
 */
static Jsonb *
change_body(MomentEntity *entity, const char *event, TupleTableSlot *row, Datum company,
			RelatedNumber *related, Snapshot snapshot)
{
	JsonbParseState *state = NULL;
	JsonbValue *result;
	Datum		value;
	bool		isnull;
	int			n = 0;
	ListCell   *cell;

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	jb_key(&state, "event");
	jb_string(&state, event, WJB_VALUE);
	jb_key(&state, entity->singular);
	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	jb_key(&state, "id");
	value = slot_getattr(row, entity->id_field->attnum, &isnull);
	push_value(&state, entity->id_field, value, isnull);
	if (entity->number_field)
	{
		jb_key(&state, entity->number_field->json_name);
		value = slot_getattr(row, entity->number_field->attnum, &isnull);
		push_value(&state, entity->number_field, value, isnull);
	}
	foreach(cell, entity->relations)
	{
		MomentRelation *relation = lfirst(cell);
		Datum		fk = slot_getattr(row, relation->fk_field->attnum, &isnull);

		jb_key(&state, relation->json_name);
		if (isnull)
			jb_null(&state, WJB_VALUE);
		else
		{
			pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
			jb_key(&state, "id");
			push_value(&state, relation->fk_field, fk, false);
			if (related[n].number)
				push_related_number(&state, &related[n], company, fk, snapshot);
			pushJsonbValue(&state, WJB_END_OBJECT, NULL);
		}
		n++;
	}
	pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	result = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(result);
}

/*
 * The ids of a company's webhooks on the entity that take the event, into
 * *ids (statement memory, grown as needed); returns how many.
 */
static int
company_webhooks(Relation webhooks, Relation index, Snapshot snapshot, int64 company_id,
				 const char *entity_name, const char *event, int64 **ids, int *space)
{
	ScanKeyData keys[2];
	IndexScanDesc scan;
	TupleTableSlot *slot = table_slot_create(webhooks, NULL);
	int			n = 0;

	ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(company_id));
	ScanKeyInit(&keys[1], 2, BTEqualStrategyNumber, F_TEXTEQ, CStringGetTextDatum(entity_name));
	keys[1].sk_collation = index->rd_indcollation[1];
	scan = index_beginscan(webhooks, index, snapshot, 2, 0);
	index_rescan(scan, keys, 2, NULL, 0);
	while (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		Datum		events = slot_getattr(slot, outbox.webhook_events, &isnull);
		Datum	   *items;
		int			nitems;

		if (isnull)
			continue;
		deconstruct_array(DatumGetArrayTypeP(events), TEXTOID, -1, false, TYPALIGN_INT, &items, NULL, &nitems);
		for (int i = 0; i < nitems; i++)
			if (strcmp(TextDatumGetCString(items[i]), event) == 0)
			{
				if (n == *space)
				{
					*space *= 2;
					*ids = repalloc(*ids, sizeof(int64) * *space);
				}
				(*ids)[n++] = DatumGetInt64(slot_getattr(slot, outbox.webhook_id, &isnull));
				break;
			}
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	return n;
}

/* moment.webhook_deliveries, opened for direct inserts */
typedef struct DeliveryWriter
{
	Relation	table;
	ResultRelInfo *result_relation;
	EState	   *estate;
	TupleTableSlot *slot;
} DeliveryWriter;

static void
open_writer(DeliveryWriter *writer)
{
	writer->table = table_open(outbox.deliveries, RowExclusiveLock);
	writer->estate = CreateExecutorState();
	writer->result_relation = makeNode(ResultRelInfo);
	InitResultRelInfo(writer->result_relation, writer->table, 1, NULL, 0);
	ExecOpenIndices(writer->result_relation, false);
	writer->slot = MakeSingleTupleTableSlot(RelationGetDescr(writer->table), &TTSOpsVirtual);
}

static void
write_delivery(DeliveryWriter *writer, int64 company_id, int64 webhook_id, const char *event, Jsonb *body)
{
	TupleTableSlot *slot = writer->slot;
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	int			natts = slot->tts_tupleDescriptor->natts;

	ExecClearTuple(slot);
	for (int i = 0; i < natts; i++)
		slot->tts_isnull[i] = true;
#define SET_COLUMN(attnum, datum) \
	(slot->tts_values[(attnum) - 1] = (datum), slot->tts_isnull[(attnum) - 1] = false)
	SET_COLUMN(outbox.company_id, Int64GetDatum(company_id));
	SET_COLUMN(outbox.id, Int64GetDatum(nextval_internal(outbox.sequence, false)));
	SET_COLUMN(outbox.webhook, Int64GetDatum(webhook_id));
	SET_COLUMN(outbox.event, CStringGetTextDatum(event));
	SET_COLUMN(outbox.body, JsonbPGetDatum(body));
	SET_COLUMN(outbox.state, CStringGetTextDatum("pending"));
	SET_COLUMN(outbox.attempts, Int32GetDatum(0));
	SET_COLUMN(outbox.next_attempt_at, TimestampTzGetDatum(now));
	SET_COLUMN(outbox.created_at, TimestampTzGetDatum(now));
#undef SET_COLUMN
	ExecStoreVirtualTuple(slot);
	table_tuple_insert(writer->table, slot, GetCurrentCommandId(true), 0, NULL);
	ExecInsertIndexTuples(writer->result_relation, slot, writer->estate, false, false, NULL, NIL);
	ResetPerTupleExprContext(writer->estate);
}

static void
close_writer(DeliveryWriter *writer)
{
	ExecDropSingleTupleTableSlot(writer->slot);
	ExecCloseIndices(writer->result_relation);
	FreeExecutorState(writer->estate);
	table_close(writer->table, NoLock);
}

/*
 * Queues the deliveries of one statement's changes: each row of the
 * transition table in the order of the changes, for each webhook of the
 * row's company subscribed to the entity and event.  Returns how many.
 */
static uint64
queue_changes(TriggerData *trigdata, MomentEntity *entity, const char *event, Tuplestorestate *rows)
{
	Relation	rel = trigdata->tg_relation;
	AttrNumber	company_attnum = column_of(RelationGetRelid(rel), "company_id", InvalidOid);
	Oid			company_type = TupleDescAttr(RelationGetDescr(rel), company_attnum - 1)->atttypid;
	Snapshot	snapshot;
	Relation	webhooks;
	Relation	webhooks_index;
	TupleTableSlot *row = MakeSingleTupleTableSlot(RelationGetDescr(rel), &TTSOpsMinimalTuple);
	MemoryContext row_context = AllocSetContextCreate(CurrentMemoryContext, "moment webhook change",
													  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old_context;
	RelatedNumber *related = NULL;
	DeliveryWriter writer = {NULL, NULL, NULL, NULL};
	bool		writing = false;
	int			space = 4;
	int64	   *hooks = palloc(sizeof(int64) * space);
	int			nhooks = 0;
	int64		hooks_company = 0;
	bool		hooks_known = false;
	uint64		queued = 0;
	int			reader;

	outbox_ensure();
	snapshot = RegisterSnapshot(GetTransactionSnapshot());
	webhooks = table_open(outbox.webhooks, AccessShareLock);
	webhooks_index = index_open(outbox.webhooks_index, AccessShareLock);
	/* our own read position: other triggers of the statement read the same rows */
	reader = tuplestore_alloc_read_pointer(rows, EXEC_FLAG_REWIND);
	tuplestore_select_read_pointer(rows, reader);
	tuplestore_rescan(rows);
	while (tuplestore_gettupleslot(rows, true, false, row))
	{
		bool		isnull;
		Datum		company = slot_getattr(row, company_attnum, &isnull);
		int64		company_id;
		Jsonb	   *body;
		ListCell   *cell;

		CHECK_FOR_INTERRUPTS();
		if (isnull)
			continue;
		company_id = integer_value(company, company_type);
		if (!hooks_known || company_id != hooks_company)
		{
			nhooks = company_webhooks(webhooks, webhooks_index, snapshot, company_id, entity->name, event,
									  &hooks, &space);
			hooks_company = company_id;
			hooks_known = true;
		}
		if (nhooks == 0)
			continue;
		if (related == NULL)
		{
			int			n = 0;

			related = palloc0(sizeof(RelatedNumber) * Max(1, list_length(entity->relations)));
			foreach(cell, entity->relations)
				open_related(&related[n++], entity, lfirst(cell));
			open_writer(&writer);
			writing = true;
		}
		old_context = MemoryContextSwitchTo(row_context);
		body = change_body(entity, event, row, company, related, snapshot);
		for (int i = 0; i < nhooks; i++)
			write_delivery(&writer, company_id, hooks[i], event, body);
		queued += nhooks;
		MemoryContextSwitchTo(old_context);
		MemoryContextReset(row_context);
	}
	tuplestore_select_read_pointer(rows, 0);
	if (related != NULL)
		for (int n = 0; n < list_length(entity->relations); n++)
			close_related(&related[n]);
	if (writing)
		close_writer(&writer);
	ExecDropSingleTupleTableSlot(row);
	MemoryContextDelete(row_context);
	index_close(webhooks_index, AccessShareLock);
	table_close(webhooks, AccessShareLock);
	UnregisterSnapshot(snapshot);
	return queued;
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
	const char *event;
	MomentEntity *entity;

	if (!CALLED_AS_TRIGGER(fcinfo) || TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_AFTER(trigdata->tg_event) || TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("moment.webhook_queue() must be fired AFTER INSERT, UPDATE or DELETE FOR EACH STATEMENT")));
	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
	{
		rows = trigdata->tg_newtable;
		event = "CREATE_NEW";
	}
	else if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		rows = trigdata->tg_newtable;
		event = "UPDATE";
	}
	else
	{
		rows = trigdata->tg_oldtable;
		event = "DELETE";
	}
	if (rows == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("moment.webhook_queue() needs a transition table (REFERENCING NEW TABLE for INSERT and UPDATE, OLD TABLE for DELETE)")));
	if (tuplestore_tuple_count(rows) == 0 || loading_by_copy())
		return PointerGetDatum(NULL);	/* nothing changed, or a restore's rows */

	(void) registry_entities();
	entity = registry_entity_by_relid(RelationGetRelid(trigdata->tg_relation));
	if (entity == NULL || !entity_subscribed(entity->name))
		return PointerGetDatum(NULL);	/* not an entity, or nobody listens */
	/* a change nobody listens to may pass a broken table; one a webhook waits for may not */
	entity_ensure(entity);
	if (queue_changes(trigdata, entity, event, rows) > 0)
		deliveries_queued = true;
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
 * Runs one of drop_webhook's or redeliver's statements on a row of the
 * company in force ($1, the company's id; $2, the row's id), as the
 * extension owner (inside SPI); returns the number of rows it touched.
 */
static uint64
company_row_statement(const char *sql, Datum *args, const char *what)
{
	Oid			argtypes[2] = {INT8OID, INT8OID};
	KeptPlan   *plan = plancache_get(sql, 2, argtypes);

	spi_check(kept_plan_execute(plan, args, NULL, false, 0), what);
	return SPI_processed;
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
		Datum		args[2];
		OwnerSwitch saved;
		uint64		found;

		args[0] = Int64GetDatum(company.id);
		args[1] = Int64GetDatum(id);
		spi_check(SPI_connect(), "SPI_connect");
		run_as_extension_owner(&saved);
		found = company_row_statement("DELETE FROM moment.webhooks w WHERE w.company_id OPERATOR(pg_catalog.=) $1 "
									  "AND w.id OPERATOR(pg_catalog.=) $2", args, "deleting from moment.webhooks");
		if (found > 0)
			company_row_statement("UPDATE moment.webhook_deliveries d SET state = 'failed', next_attempt_at = NULL, "
								  "last_error = 'cancelled: webhook ' OPERATOR(pg_catalog.||) $2::pg_catalog.text "
								  "OPERATOR(pg_catalog.||) ' was dropped' "
								  "WHERE d.company_id OPERATOR(pg_catalog.=) $1 AND d.webhook_id OPERATOR(pg_catalog.=) $2 "
								  "AND d.state OPERATOR(pg_catalog.=) 'pending'", args, "cancelling webhook deliveries");
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
		Datum		args[2];
		OwnerSwitch saved;
		uint64		found;

		args[0] = Int64GetDatum(company.id);
		args[1] = Int64GetDatum(id);
		spi_check(SPI_connect(), "SPI_connect");
		run_as_extension_owner(&saved);
		found = company_row_statement("UPDATE moment.webhook_deliveries d SET state = 'pending', attempts = 0, "
									  "next_attempt_at = pg_catalog.now(), delivered_at = NULL "
									  "WHERE d.company_id OPERATOR(pg_catalog.=) $1 AND d.id OPERATOR(pg_catalog.=) $2",
									  args, "updating moment.webhook_deliveries");
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
