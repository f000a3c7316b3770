/*
 * shard.c: a moment database as a shard of moment_router.
 *
 * The router sends every API call to the company's shard through PL/Proxy as
 *
 *   SELECT * FROM moment_internal.routed_call('moment.get(text,bigint,text)',
 *          settings, $1, $2, $3) AS r(reply text[], c1 bytea)
 *
 * routed_call puts the call's settings (moment.company, request.jwt.claims,
 * moment.default_limit, ..., a read-only transaction) in force for this call
 * only, calls the function in-process through fmgr, and returns its result
 * after a "reply" column.  The reply holds, as data, what the call raised:
 * its warnings and notices (kept from the client, which is the router's
 * PL/Proxy connection) and its error, each with every field, so that the
 * router raises them as a direct call would have: a remote ERROR would reach
 * the router prefixed by PL/Proxy ("REMOTE ERROR: ...") and cost it its
 * connection.  Results of type jsonb travel as their in-memory bytes (a
 * bytea column), which the router takes as they are instead of parsing the
 * JSON text again.
 *
 * The write fence of a company being moved (moment.companies.fenced) is
 * checked by tenant.c for every write, routed or not; here is the lock that
 * lets the mover wait for the writes that started before the fence went up.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/elog.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/syscache.h"
#include "utils/tuplestore.h"

#include "moment.h"
#include "request.h"
#include "shard.h"

/* field4 of the advisory lock tag: SQL's advisory lock functions use 1 and 2 */
#define FENCE_LOCK_CLASS 77

/*
 * The fields of one entry of the reply: severity, SQLSTATE, message, detail,
 * hint, context, schema, table, column, datatype, constraint, and where it
 * was raised (file, line, function).
 */
#define REPLY_FIELDS 14

/* Longest target signature kept in the cache. */
#define SIGNATURE_MAX 512

typedef struct RoutedTarget
{
	char		signature[SIGNATURE_MAX];	/* hash key */
	Oid			fn_oid;
	FmgrInfo	flinfo;			/* copied per call: SRFs keep state in fn_extra */
} RoutedTarget;

/* A warning or notice the call raised, or its error. */
typedef struct ReplyEntry
{
	const char *severity;
	int			sqlerrcode;
	char	   *message;
	char	   *detail;
	char	   *hint;
	char	   *context;
	char	   *schema;
	char	   *table;
	char	   *column;
	char	   *datatype;
	char	   *constraint;
	char	   *filename;		/* where the shard raised it: psql's LOCATION */
	int			lineno;
	char	   *funcname;
} ReplyEntry;

typedef struct RoutedCall
{
	Oid			fn_oid;
	FmgrInfo   *flinfo;
	FunctionCallInfo outer;		/* routed_call's own call: the arguments */
	int			nargs;
	Oid			collation;
	bool		retset;
	Oid			rettype;
	TupleDesc	result_desc;	/* the target's result row; NULL for a scalar */
	int			nresults;		/* result columns (0 for void) */
	bool	   *raw_jsonb;		/* result column i (0-based) is jsonb sent as bytea */
	Tuplestorestate *out;
	TupleDesc	out_desc;
	/* a non-set result, emitted after the call with the reply */
	Datum	   *single_values;
	bool	   *single_nulls;
} RoutedCall;

static HTAB *targets = NULL;
static MemoryContext target_context = NULL;
static bool target_callback_registered = false;
static bool targets_stale = false;

/* messages captured while a routed call runs */
static List *captured = NIL;
static MemoryContext capture_context = NULL;
static bool capturing = false;
static emit_log_hook_type previous_emit_log_hook = NULL;

/*
 * A change of pg_proc only marks the cache stale: it is dropped when
 * routed_target is entered next, never under an entry being filled in (the
 * lookups that fill one in may deliver invalidations).
 */
static void
forget_targets(Datum arg, int cacheid, uint32 hashvalue)
{
	targets_stale = true;
}

/*
 * The function a signature names, which must be in schema moment or
 * moment_internal: the router only ever routes those.  Resolved with
 * search_path pinned, so that the caller's cannot choose what "text" means.
 */
static RoutedTarget *
routed_target(const char *signature)
{
	RoutedTarget *target;
	bool		found;
	Oid			fn_oid;
	Oid			namespace;
	int			pinned;

	if (strlen(signature) >= SIGNATURE_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("routed function signature is too long")));
	if (targets_stale && target_context != NULL)
	{
		MemoryContextReset(target_context);
		targets = NULL;
	}
	targets_stale = false;
	if (targets == NULL)
	{
		HASHCTL		ctl;

		if (target_context == NULL)
			target_context = AllocSetContextCreate(CacheMemoryContext, "moment routed targets",
												   ALLOCSET_SMALL_SIZES);
		if (!target_callback_registered)
		{
			CacheRegisterSyscacheCallback(PROCOID, forget_targets, (Datum) 0);
			target_callback_registered = true;
		}
		ctl.keysize = SIGNATURE_MAX;
		ctl.entrysize = sizeof(RoutedTarget);
		ctl.hcxt = target_context;
		targets = hash_create("moment routed targets", 64, &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}
	target = hash_search(targets, signature, HASH_FIND, NULL);
	if (target != NULL)
		return target;

	pinned = pin_search_path(true);
	fn_oid = DatumGetObjectId(DirectFunctionCall1(regprocedurein, CStringGetDatum(signature)));
	unpin_search_path(pinned);
	namespace = get_func_namespace(fn_oid);
	if (namespace != moment_namespace() && namespace != get_namespace_oid("moment_internal", true))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("function %s is not one moment_router routes", signature)));

	target = hash_search(targets, signature, HASH_ENTER, &found);
	target->fn_oid = fn_oid;
	fmgr_info_cxt(fn_oid, &target->flinfo, target_context);
	return target;
}

/* ---- settings ---- */

/*
 * Puts the call's settings in force: name, value pairs.  moment.* settings
 * and request.jwt.claims as the caller could SET them; "lower:moment.x", a
 * setting only a superuser may change (the router passes those a superuser
 * changed in the session: moment.max_limit, max_batch_size, ...), only when
 * it lowers this server's value, whoever the caller; a read-only transaction.
 * The caller restores them (GUC nest level).
 */
static void
apply_settings(ArrayType *settings)
{
	Datum	   *elems;
	bool	   *elem_nulls;
	int			n;

	if (settings == NULL)
		return;
	deconstruct_array(settings, TEXTOID, -1, false, TYPALIGN_INT, &elems, &elem_nulls, &n);
	if (n % 2 != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("routed settings must be name, value pairs")));
	for (int i = 0; i < n; i += 2)
	{
		char	   *name;
		char	   *value;

		if (elem_nulls[i] || elem_nulls[i + 1])
			continue;
		name = TextDatumGetCString(elems[i]);
		value = TextDatumGetCString(elems[i + 1]);
		if (strcmp(name, "transaction_read_only") == 0)
		{
			bool		read_only;

			if (parse_bool(value, &read_only) && read_only)
				(void) set_config_option(name, "on", PGC_USERSET, PGC_S_SESSION,
										 GUC_ACTION_LOCAL, true, 0, false);
			continue;
		}
		if (strncmp(name, "lower:moment.", 13) == 0)
		{
			/* a superuser's bound: taken only to lower this server's */
			const char *current = GetConfigOption(name + 6, true, false);
			int			flags = GetConfigOptionFlags(name + 6, true);
			int			wanted;
			int			now;

			if (current != NULL && (flags & GUC_CUSTOM_PLACEHOLDER) == 0 &&
				parse_int(value, &wanted, flags, NULL) && parse_int(current, &now, flags, NULL) && wanted < now)
				(void) set_config_option(name + 6, value, PGC_SUSET, PGC_S_SESSION,
										 GUC_ACTION_SAVE, true, 0, false);
			continue;
		}
		if (strcmp(name, "request.jwt.claims") != 0 && strncmp(name, "moment.", 7) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("setting \"%s\" is not passed to routed calls", name)));
		/* most calls pass the values this session has already */
		{
			const char *current = GetConfigOption(name, true, false);

			if (current != NULL ? strcmp(current, value) == 0 : value[0] == '\0')
				continue;
		}
		(void) set_config_option(name, value, PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	}
}

/* ---- messages ---- */

static char *
copy_or_null(const char *text)
{
	return text ? pstrdup(text) : NULL;
}

static ReplyEntry *
reply_entry(ErrorData *edata, const char *severity)
{
	ReplyEntry *entry = palloc0(sizeof(ReplyEntry));

	entry->severity = severity;
	entry->sqlerrcode = edata->sqlerrcode;
	entry->message = copy_or_null(edata->message);
	entry->detail = copy_or_null(edata->detail);
	entry->hint = copy_or_null(edata->hint);
	entry->context = copy_or_null(edata->context);
	entry->schema = copy_or_null(edata->schema_name);
	entry->table = copy_or_null(edata->table_name);
	entry->column = copy_or_null(edata->column_name);
	entry->datatype = copy_or_null(edata->datatype_name);
	entry->constraint = copy_or_null(edata->constraint_name);
	entry->filename = copy_or_null(edata->filename);
	entry->lineno = edata->lineno;
	entry->funcname = copy_or_null(edata->funcname);
	return entry;
}

/*
 * emit_log_hook while a routed call runs: a warning, notice or info is kept
 * for the reply instead of going to the client (the router's connection).
 * The hook only sees messages bound for the server log, so the call runs
 * with log_min_messages lowered to INFO, and a message the log would not
 * have had is kept from it again here.
 */
static int	saved_log_min_messages = WARNING;

static bool
would_have_been_logged(int elevel)
{
	/* elog.c's is_log_level_output, for the levels below ERROR */
	if (saved_log_min_messages == LOG || saved_log_min_messages == LOG_SERVER_ONLY)
		return false;
	return elevel >= saved_log_min_messages;
}

static void
capture_message(ErrorData *edata)
{
	if (capturing && edata->elevel >= INFO && edata->elevel < ERROR)
	{
		MemoryContext old = MemoryContextSwitchTo(capture_context);
		const char *severity = edata->elevel == INFO ? "INFO" :
			edata->elevel == NOTICE ? "NOTICE" : "WARNING";

		captured = lappend(captured, reply_entry(edata, severity));
		MemoryContextSwitchTo(old);
		edata->output_to_client = false;
		if (!would_have_been_logged(edata->elevel))
			edata->output_to_server = false;
	}
	if (previous_emit_log_hook)
		previous_emit_log_hook(edata);
}

/* The reply column: every entry's fields in a row, REPLY_FIELDS apart. */
static Datum
reply_array(List *entries)
{
	int			n = list_length(entries) * REPLY_FIELDS;
	Datum	   *elems = palloc0(sizeof(Datum) * n);
	bool	   *nulls = palloc0(sizeof(bool) * n);
	int			dims[1] = {n};
	int			lbs[1] = {1};
	int			i = 0;
	ListCell   *cell;

	foreach(cell, entries)
	{
		ReplyEntry *entry = lfirst(cell);
		const char *fields[REPLY_FIELDS];

		fields[0] = entry->severity;
		fields[1] = entry->sqlerrcode ? unpack_sql_state(entry->sqlerrcode) : NULL;
		fields[2] = entry->message;
		fields[3] = entry->detail;
		fields[4] = entry->hint;
		fields[5] = entry->context;
		fields[6] = entry->schema;
		fields[7] = entry->table;
		fields[8] = entry->column;
		fields[9] = entry->datatype;
		fields[10] = entry->constraint;
		fields[11] = entry->filename;
		fields[12] = entry->filename ? psprintf("%d", entry->lineno) : NULL;
		fields[13] = entry->funcname;
		for (int f = 0; f < REPLY_FIELDS; f++, i++)
		{
			nulls[i] = fields[f] == NULL;
			if (!nulls[i])
				elems[i] = CStringGetTextDatum(fields[f]);
		}
	}
	return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT));
}

/* A setting the call left for the client (PostgREST's response.status), as a SET entry. */
static void
reply_setting(List **entries, const char *name)
{
	const char *value = GetConfigOption(name, true, false);
	ReplyEntry *entry;

	if (value == NULL || value[0] == '\0')
		return;
	entry = palloc0(sizeof(ReplyEntry));
	entry->severity = "SET";
	entry->message = pstrdup(name);
	entry->detail = pstrdup(value);
	*entries = lappend(*entries, entry);
}

/* ---- results ---- */

/*
 * Checks that the column definition list the router sent (reply text[],
 * then the result columns) fits the target's result, and notes the jsonb
 * columns it asks for as bytea.
 */
static void
check_result_columns(RoutedCall *call)
{
	int			out_col = 1;

	if (call->out_desc->natts < 1 || TupleDescAttr(call->out_desc, 0)->atttypid != TEXTARRAYOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("the first column of a routed call is its reply, of type text[]")));
	if (call->result_desc == NULL)
		call->nresults = call->rettype == VOIDOID ? 0 : 1;
	else
	{
		call->nresults = 0;
		for (int i = 0; i < call->result_desc->natts; i++)
			if (!TupleDescAttr(call->result_desc, i)->attisdropped)
				call->nresults++;
	}
	if (call->out_desc->natts != call->nresults + 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("routed call of %s returns %d columns, not %d", format_procedure(call->fn_oid),
						call->nresults, call->out_desc->natts - 1)));
	call->raw_jsonb = palloc0(sizeof(bool) * Max(1, call->nresults));
	for (int i = 0; i < (call->result_desc ? call->result_desc->natts : call->nresults); i++)
	{
		Oid			type;
		Oid			wanted;

		if (call->result_desc != NULL)
		{
			if (TupleDescAttr(call->result_desc, i)->attisdropped)
				continue;
			type = TupleDescAttr(call->result_desc, i)->atttypid;
		}
		else
			type = call->rettype;
		wanted = TupleDescAttr(call->out_desc, out_col)->atttypid;
		if (wanted == BYTEAOID && type == JSONBOID)
			call->raw_jsonb[out_col - 1] = true;
		else if (wanted != type)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column %d of a routed call of %s is %s, not %s", out_col,
							format_procedure(call->fn_oid), format_type_be(type), format_type_be(wanted))));
		out_col++;
	}
}

/* The value of result column i as the router asked for it. */
static Datum
out_value(RoutedCall *call, int column, Datum value)
{
	/* a jsonb's varlena is a valid bytea of its in-memory bytes */
	if (call->raw_jsonb[column])
		return PointerGetDatum(PG_DETOAST_DATUM(value));
	return value;
}

/*
 * One result of the target: a scalar, or a row (values of result_desc,
 * dropped columns included).  Non-set results are kept for the reply row;
 * set results go to the output now, after a NULL reply.
 */
static void
emit_result(RoutedCall *call, Datum *values, bool *nulls)
{
	Datum	   *out_values = call->retset ? palloc(sizeof(Datum) * (call->nresults + 1)) : call->single_values;
	bool	   *out_nulls = call->retset ? palloc(sizeof(bool) * (call->nresults + 1)) : call->single_nulls;
	int			out_col = 0;
	int			natts = call->result_desc ? call->result_desc->natts : call->nresults;

	out_nulls[0] = true;
	out_values[0] = (Datum) 0;
	for (int i = 0; i < natts; i++)
	{
		if (call->result_desc != NULL && TupleDescAttr(call->result_desc, i)->attisdropped)
			continue;
		out_nulls[out_col + 1] = nulls[i];
		out_values[out_col + 1] = nulls[i] ? (Datum) 0 : out_value(call, out_col, values[i]);
		out_col++;
	}
	if (call->retset)
		tuplestore_putvalues(call->out, call->out_desc, out_values, out_nulls);
	else
	{
		/* the single row outlives the call's memory: copy what is by reference */
		for (int i = 1; i <= call->nresults; i++)
			if (!out_nulls[i])
			{
				Form_pg_attribute attr = TupleDescAttr(call->out_desc, i);

				out_values[i] = datumCopy(out_values[i], attr->attbyval, attr->attlen);
			}
	}
}

/* A composite datum returned by the target, taken apart. */
static void
emit_composite(RoutedCall *call, Datum value, bool isnull)
{
	int			natts = call->result_desc->natts;
	Datum	   *values = palloc(sizeof(Datum) * natts);
	bool	   *nulls = palloc(sizeof(bool) * natts);

	if (isnull)
	{
		for (int i = 0; i < natts; i++)
			nulls[i] = true;
	}
	else
	{
		HeapTupleHeader header = DatumGetHeapTupleHeader(value);
		HeapTupleData tuple;

		tuple.t_len = HeapTupleHeaderGetDatumLength(header);
		ItemPointerSetInvalid(&tuple.t_self);
		tuple.t_tableOid = InvalidOid;
		tuple.t_data = header;
		heap_deform_tuple(&tuple, call->result_desc, values, nulls);
	}
	emit_result(call, values, nulls);
}

static void
emit_value(RoutedCall *call, Datum value, bool isnull)
{
	if (call->result_desc != NULL)
		emit_composite(call, value, isnull);
	else if (call->nresults > 0)
		emit_result(call, &value, &isnull);
}

/*
 * Calls the target on routed_call's arguments, the way the executor calls
 * a function in FROM (ExecMakeTableFunctionResult): a set in either
 * protocol, strict functions not called on a NULL.
 */
static bool
routed_work(void *arg)
{
	RoutedCall *call = arg;
	LOCAL_FCINFO(fcinfo, FUNC_MAX_ARGS);
	ReturnSetInfo rsinfo;
	ExprContext *econtext = NULL;
	AclResult	acl;

	/* what the executor checks before calling a function */
	acl = pg_proc_aclcheck(call->fn_oid, GetUserId(), ACL_EXECUTE);
	if (acl != ACLCHECK_OK)
		aclcheck_error(acl, OBJECT_FUNCTION, get_func_name(call->fn_oid));

	InitFunctionCallInfoData(*fcinfo, call->flinfo, call->nargs, call->collation, NULL, NULL);
	for (int i = 0; i < call->nargs; i++)
	{
		fcinfo->args[i].isnull = call->outer->args[i + 2].isnull;
		fcinfo->args[i].value = fcinfo->args[i].isnull ? (Datum) 0 : call->outer->args[i + 2].value;
		if (fcinfo->args[i].isnull && call->flinfo->fn_strict)
		{
			/* a strict function's result on a NULL argument: NULL, or no rows */
			if (!call->retset)
				emit_value(call, (Datum) 0, true);
			return true;
		}
	}

	if (!call->retset)
	{
		Datum		result = FunctionCallInvoke(fcinfo);

		emit_value(call, result, fcinfo->isnull);
		return true;
	}

	econtext = CreateStandaloneExprContext();
	memset(&rsinfo, 0, sizeof(rsinfo));
	rsinfo.type = T_ReturnSetInfo;
	rsinfo.econtext = econtext;
	rsinfo.expectedDesc = call->result_desc;
	rsinfo.allowedModes = (int) (SFRM_ValuePerCall | SFRM_Materialize);
	rsinfo.returnMode = SFRM_ValuePerCall;
	fcinfo->resultinfo = (Node *) &rsinfo;
	if (call->result_desc == NULL)
	{
		/* a set of scalars: what FunctionScan expects of them */
		rsinfo.expectedDesc = CreateTemplateTupleDesc(1);
		TupleDescInitEntry(rsinfo.expectedDesc, (AttrNumber) 1, "result", call->rettype, -1, 0);
	}

	for (;;)
	{
		Datum		result;

		CHECK_FOR_INTERRUPTS();
		fcinfo->isnull = false;
		rsinfo.isDone = ExprSingleResult;
		result = FunctionCallInvoke(fcinfo);
		if (rsinfo.returnMode == SFRM_Materialize)
		{
			if (rsinfo.setResult != NULL)
			{
				TupleTableSlot *slot = MakeSingleTupleTableSlot(rsinfo.setDesc ? rsinfo.setDesc :
																rsinfo.expectedDesc,
																&TTSOpsMinimalTuple);

				while (tuplestore_gettupleslot(rsinfo.setResult, true, false, slot))
				{
					CHECK_FOR_INTERRUPTS();
					slot_getallattrs(slot);
					if (call->result_desc != NULL)
						emit_result(call, slot->tts_values, slot->tts_isnull);
					else
						emit_value(call, slot->tts_values[0], slot->tts_isnull[0]);
				}
				ExecDropSingleTupleTableSlot(slot);
				tuplestore_end(rsinfo.setResult);
			}
			break;
		}
		if (rsinfo.isDone == ExprEndResult)
			break;
		emit_value(call, result, fcinfo->isnull);
		if (rsinfo.isDone != ExprMultipleResult)
			break;
	}
	FreeExprContext(econtext, true);
	return true;
}

PG_FUNCTION_INFO_V1(moment_routed_call);
Datum
moment_routed_call(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	RoutedTarget *target;
	RoutedCall	call;
	TypeFuncClass functype;
	int			nest_level;
	List	   *entries = NIL;
	ErrorData  *error = NULL;
	HeapTuple	proc;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("routed call names no function")));
	if (get_fn_expr_variadic(fcinfo->flinfo))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the arguments of a routed call are passed one by one, not as a VARIADIC array")));
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);

	target = routed_target(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	memset(&call, 0, sizeof(call));
	call.fn_oid = target->fn_oid;
	call.flinfo = palloc(sizeof(FmgrInfo));
	fmgr_info_copy(call.flinfo, &target->flinfo, CurrentMemoryContext);
	call.outer = fcinfo;
	call.nargs = PG_NARGS() - 2;
	call.collation = PG_GET_COLLATION();
	call.out = rsinfo->setResult;
	call.out_desc = rsinfo->setDesc;

	/* the arguments must be of the target's declared types (unchecked, fmgr would misread them) */
	proc = SearchSysCache1(PROCOID, ObjectIdGetDatum(call.fn_oid));
	if (!HeapTupleIsValid(proc))
		elog(ERROR, "cache lookup failed for function %u", call.fn_oid);
	{
		Form_pg_proc form = (Form_pg_proc) GETSTRUCT(proc);

		if (form->pronargs != call.nargs)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("%s takes %d arguments, not %d", format_procedure(call.fn_oid),
							form->pronargs, call.nargs)));
		for (int i = 0; i < call.nargs; i++)
		{
			Oid			given = get_fn_expr_argtype(fcinfo->flinfo, i + 2);

			if (given != form->proargtypes.values[i])
				ereport(ERROR,
						(errcode(ERRCODE_DATATYPE_MISMATCH),
						 errmsg("argument %d of %s must be %s, not %s", i + 1, format_procedure(call.fn_oid),
								format_type_be(form->proargtypes.values[i]), format_type_be(given))));
		}
		call.retset = form->proretset;
	}
	ReleaseSysCache(proc);
	functype = get_func_result_type(call.fn_oid, &call.rettype, &call.result_desc);
	if (functype != TYPEFUNC_SCALAR && functype != TYPEFUNC_COMPOSITE && functype != TYPEFUNC_COMPOSITE_DOMAIN)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s returns a type moment_router cannot route", format_procedure(call.fn_oid))));
	check_result_columns(&call);
	call.single_values = palloc0(sizeof(Datum) * (call.nresults + 1));
	call.single_nulls = palloc(sizeof(bool) * (call.nresults + 1));
	for (int i = 0; i <= call.nresults; i++)
		call.single_nulls[i] = true;

	nest_level = NewGUCNestLevel();
	apply_settings(PG_ARGISNULL(1) ? NULL : PG_GETARG_ARRAYTYPE_P(1));

	/* warnings and notices go into the reply; errors come back from the subtransaction */
	captured = NIL;
	capture_context = CurrentMemoryContext;
	previous_emit_log_hook = emit_log_hook;
	emit_log_hook = capture_message;
	saved_log_min_messages = log_min_messages;
	if (log_min_messages > INFO || log_min_messages == LOG)
		log_min_messages = INFO;
	capturing = true;
	PG_TRY();
	{
		error = run_in_subtransaction(routed_work, &call);
	}
	PG_FINALLY();
	{
		capturing = false;
		log_min_messages = saved_log_min_messages;
		emit_log_hook = previous_emit_log_hook;
	}
	PG_END_TRY();
	entries = captured;
	captured = NIL;

	if (error != NULL)
	{
		/* nothing of a failed call is returned but what it raised */
		tuplestore_clear(call.out);
		for (int i = 1; i <= call.nresults; i++)
			call.single_nulls[i] = true;
		entries = lappend(entries, reply_entry(error, "ERROR"));
	}
	else
	{
		/* PostgREST reads these on the router */
		reply_setting(&entries, "response.status");
		reply_setting(&entries, "response.headers");
	}
	AtEOXact_GUC(true, nest_level);

	if (!call.retset)
	{
		call.single_nulls[0] = (entries == NIL);
		call.single_values[0] = entries != NIL ? reply_array(entries) : (Datum) 0;
		tuplestore_putvalues(call.out, call.out_desc, call.single_values, call.single_nulls);
	}
	else if (entries != NIL)
	{
		Datum	   *values = palloc0(sizeof(Datum) * (call.nresults + 1));
		bool	   *nulls = palloc(sizeof(bool) * (call.nresults + 1));

		for (int i = 1; i <= call.nresults; i++)
			nulls[i] = true;
		nulls[0] = false;
		values[0] = reply_array(entries);
		tuplestore_putvalues(call.out, call.out_desc, values, nulls);
	}
	return (Datum) 0;
}

/* ---- the write fence ---- */

static void
fence_lock_tag(LOCKTAG *tag, int64 company_id)
{
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, (uint32) ((uint64) company_id >> 32), (uint32) company_id,
						 FENCE_LOCK_CLASS);
}

void
shard_lock_company_for_write(int64 company_id)
{
	LOCKTAG		tag;

	fence_lock_tag(&tag, company_id);
	(void) LockAcquire(&tag, ShareLock, false, false);
}

PG_FUNCTION_INFO_V1(moment_shard_wait_for_writers);
Datum
moment_shard_wait_for_writers(PG_FUNCTION_ARGS)
{
	LOCKTAG		tag;

	if (!moment_is_admin())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied: only a superuser or the owner of extension moment may do this")));
	if (PG_ARGISNULL(0))
		PG_RETURN_VOID();
	/* conflicts with every writer's ShareLock; held until this call's transaction ends */
	fence_lock_tag(&tag, PG_GETARG_INT64(0));
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(moment_shard_format);
Datum
moment_shard_format(PG_FUNCTION_ARGS)
{
#ifdef WORDS_BIGENDIAN
	PG_RETURN_TEXT_P(cstring_to_text("big-endian"));
#else
	PG_RETURN_TEXT_P(cstring_to_text("little-endian"));
#endif
}
