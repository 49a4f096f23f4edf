/*
 * The SQL migrations compiled into hvd.  Entry i holds migration number
 * i + 1; PRAGMA user_version records the last one applied.
 */
#ifndef HV_SCHEMA_H
#define HV_SCHEMA_H

struct schema_migration {
	int version;
	const char *file;
	const char *sql;
};

extern const struct schema_migration schema_migrations[];
extern const int schema_migration_count;

#endif
