/*
 * registry.h: the entity catalog as seen from C.
 *
 * Entities come from moment.entities (and moment.entity_settings); their
 * parts and metadata sets from moment.parts and moment.metadata.  That is
 * the catalog level, read with a fresh snapshot whenever one of those
 * tables changes.  An entity's fields and relations come from its table
 * (columns, foreign keys on (company_id, x_id)): the table level, read from
 * the relcache the first time a request touches the entity, and again after
 * an invalidation of that table alone.  A table that no longer qualifies
 * (no id column, say) makes its entity "broken": every request naming it, or
 * reaching it through a relation, gets a clear error.
 */
#ifndef MOMENT_REGISTRY_H
#define MOMENT_REGISTRY_H

#include "postgres.h"

#include "access/attnum.h"
#include "fmgr.h"
#include "nodes/pg_list.h"

typedef struct MomentEntity MomentEntity;

/* what kind of text a field's JSON value must be */
typedef enum FieldKind
{
	FIELD_OTHER,
	FIELD_INTEGER,				/* int2, int4, int8 */
	FIELD_DATE,
	FIELD_TIMESTAMP,			/* timestamp, timestamptz */
	FIELD_TIME					/* time, timetz */
} FieldKind;

typedef struct MomentField
{
	char	   *json_name;		/* timeRecordDate */
	char	   *column_name;	/* time_record_date */
	char	   *quoted_column;	/* quote_identifier(column_name) */
	AttrNumber	attnum;
	Oid			type_oid;
	int32		typmod;
	Oid			base_type;		/* type_oid with domains looked through */
	Oid			array_type_oid; /* InvalidOid when the type has none */
	char		type_category;	/* pg_type.typcategory */
	FieldKind	kind;
	bool		is_json;		/* json or jsonb: JSON values go in whole */
	bool		not_null;
	bool		has_default;
	bool		writable;		/* false for id, createdAt, updatedAt, generated columns */
	Oid			typioparam;
	FmgrInfo	input;			/* the type's input function */
	/* operators as SQL ("OPERATOR(pg_catalog.=)"), NULL when the type has none */
	char	   *op_eq;
	char	   *op_ne;
	char	   *op_lt;
	char	   *op_le;
	char	   *op_gt;
	char	   *op_ge;
	List	   *allowed_values; /* char *: from a CHECK (col = ANY (ARRAY[...])) */
} MomentField;

typedef struct MomentRelation
{
	char	   *json_name;		/* customer */
	MomentField *fk_field;		/* customer_id of the referencing entity */
	Oid			target_relid;
	MomentEntity *target;		/* its table level loaded by relation_target() */
	char	   *constraint_name;
} MomentRelation;

typedef struct MomentPart
{
	char	   *name;
	bool		all_fields;		/* fields NULL in the catalog */
	bool		with_relation_names;	/* the synthesized "default" part */
	bool		builtin;
	List	   *items;			/* char *: field names or relation paths */
} MomentPart;

typedef struct MomentAggregate
{
	char	   *key;
	char	   *expression;		/* SQL over the table aliased t */
} MomentAggregate;

typedef struct MomentMetadataSet
{
	char	   *name;
	List	   *aggregates;		/* MomentAggregate * */
} MomentMetadataSet;

struct MomentEntity
{
	/* catalog level */
	char	   *name;			/* timeRecords */
	char	   *singular;		/* timeRecord */
	Oid			relid;
	bool		builtin;
	char	   *date_field_name;
	List	   *parts;			/* MomentPart * */
	List	   *metadata_sets;	/* MomentMetadataSet * */

	/* table level: valid while table_loaded (see entity_ensure) */
	bool		table_loaded;
	uint64		structure_version;	/* changes when the table's shape does */
	MemoryContext table_context;
	char	   *broken;			/* why the table no longer qualifies, or NULL */
	char	   *qualified_table;	/* "moment"."time_records" */
	char	   *table_name;		/* time_records */
	int			nfields;
	MomentField *fields;		/* in column order */
	MomentField *id_field;
	MomentField *date_field;	/* NULL when the entity has none */
	MomentField *updated_at_field;	/* NULL when the table has none */
	MomentField *created_at_field;
	MomentField *number_field;	/* <singular>Number, or NULL */
	MomentField *name_field;	/* name, or NULL */
	bool		has_dropped_columns;	/* its row type has dropped attributes */
	List	   *relations;		/* MomentRelation * */
};

/* An entity by name, table level loaded and usable, or an error (42P01, 55000). */
extern MomentEntity *registry_entity(const char *name);
/* An entity by name (catalog level only), or NULL. */
extern MomentEntity *registry_lookup(const char *name);
/* The entity of a table (catalog level only), or NULL. */
extern MomentEntity *registry_entity_by_relid(Oid relid);
/* Every entity, catalog level only. */
extern List *registry_entities(void);
/* Loads the table level; raises 55000 when the table no longer qualifies. */
extern void entity_ensure(MomentEntity *entity);
/* As entity_ensure, but returns false instead of raising for a broken table. */
extern bool entity_try_ensure(MomentEntity *entity);
/* The target of a relation, table level loaded. */
extern MomentEntity *relation_target(MomentRelation *relation);

extern MomentField *entity_field(MomentEntity *entity, const char *json_name);
extern MomentRelation *entity_relation(MomentEntity *entity, const char *json_name);
extern MomentPart *entity_part(MomentEntity *entity, const char *name);
extern MomentMetadataSet *entity_metadata_set(MomentEntity *entity, const char *name);
extern List *entity_field_names(MomentEntity *entity);
extern List *entity_item_names(MomentEntity *entity);

/* The version of the catalog level; changes with every catalog rebuild. */
extern uint64 registry_catalog_generation(void);
extern int64 registry_builds(void);
/* The catalog version of the SQL objects installed: 1 for 0.1.0, 2 for 0.2.0. */
extern int	registry_catalog_version(void);

/* invalidation (moment.c) */
typedef enum WatchedKind
{
	WATCHED_NONE,
	WATCHED_CATALOG,			/* entities, entity_settings, parts, metadata */
	WATCHED_TENANCY,			/* companies, company_grants */
	WATCHED_ENTITY				/* a registered table */
} WatchedKind;

extern WatchedKind registry_watched_kind(Oid relid);
extern void registry_invalidate(void);
extern void registry_invalidate_table(Oid relid);
extern void registry_release_retired(void);
extern void registry_watch_catalog(void);

#endif							/* MOMENT_REGISTRY_H */
