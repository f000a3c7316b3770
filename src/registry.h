/*
 * registry.h: the entity catalog as seen from C.
 *
 * Entities come from moment.entities; their fields are the table's columns
 * (JSON name = lowerCamelCase of the column), their relations the foreign
 * keys on (company_id, x_id) to another registered table, their parts and
 * metadata sets the rows of moment.parts and moment.metadata.  Each backend
 * keeps one copy, rebuilt after any change to the catalog tables or to a
 * registered table (relcache invalidation).
 */
#ifndef MOMENT_REGISTRY_H
#define MOMENT_REGISTRY_H

#include "postgres.h"

#include "access/attnum.h"
#include "fmgr.h"
#include "nodes/pg_list.h"

typedef struct MomentEntity MomentEntity;

typedef struct MomentField
{
	char	   *json_name;		/* timeRecordDate */
	char	   *column_name;	/* time_record_date */
	char	   *quoted_column;	/* quote_identifier(column_name) */
	AttrNumber	attnum;
	Oid			type_oid;
	int32		typmod;
	Oid			array_type_oid; /* InvalidOid when the type has none */
	char		type_category;	/* pg_type.typcategory */
	bool		is_json;		/* json or jsonb: JSON values go in whole */
	bool		not_null;
	bool		writable;		/* false for id, generated columns */
	Oid			typioparam;
	FmgrInfo	input;			/* the type's input function */
} MomentField;

typedef struct MomentRelation
{
	char	   *json_name;		/* customer */
	MomentField *fk_field;		/* customer_id of the referencing entity */
	Oid			target_relid;
	MomentEntity *target;
} MomentRelation;

typedef struct MomentPart
{
	char	   *name;
	bool		all_fields;		/* fields NULL in the catalog */
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
	char	   *name;			/* timeRecords */
	Oid			relid;
	char	   *qualified_table;	/* "moment"."time_records" */
	int			nfields;
	MomentField *fields;		/* in column order */
	MomentField *id_field;
	MomentField *date_field;	/* NULL when the entity has none */
	MomentField *updated_at_field;	/* NULL when the table has none */
	bool		has_dropped_columns;	/* its row type has dropped attributes */
	List	   *relations;		/* MomentRelation * */
	List	   *parts;			/* MomentPart * */
	List	   *metadata_sets;	/* MomentMetadataSet * */
};

extern MomentEntity *registry_lookup(const char *name);
extern MomentEntity *registry_entity(const char *name);
extern List *registry_entities(void);

extern MomentField *entity_field(MomentEntity *entity, const char *json_name);
extern MomentRelation *entity_relation(MomentEntity *entity, const char *json_name);
extern MomentPart *entity_part(MomentEntity *entity, const char *name);
extern MomentMetadataSet *entity_metadata_set(MomentEntity *entity, const char *name);
extern List *entity_field_names(MomentEntity *entity);
extern List *entity_item_names(MomentEntity *entity);

extern uint64 registry_generation(void);
extern int64 registry_builds(void);
extern void registry_invalidate(void);
extern bool registry_watches(Oid relid);
extern void registry_watch_catalog(void);
extern void registry_release_retired(void);

#endif							/* MOMENT_REGISTRY_H */
