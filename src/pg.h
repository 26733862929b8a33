/*
 * pg.h — the connection to the PostgreSQL cluster of a stanza (libpq).
 *
 * Connects with the pg1-* options (socket directory or host, port, user, database;
 * application_name "drbackup"). Works with PostgreSQL 12 to 17: only functions present
 * in all of them are used, or the version is checked first.
 */
#ifndef DRB_PG_H
#define DRB_PG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

typedef struct pg_conn pg_conn;

typedef struct pg_cluster_info
{
	uint64_t	system_id;		/* pg_control_system().system_identifier */
	int			version_num;	/* server_version_num, e.g. 150018 */
	int			version_major;	/* 15 (10 and later: version_num / 10000) */
	char		data_directory[4096];
	bool		data_checksums;
} pg_cluster_info;

/* NULL + err (DRB_ERR_PG) naming the host/socket and port when the connection fails. */
pg_conn    *pg_connect(const config_t *cfg);
void		pg_disconnect(pg_conn *conn);

/* Identity of the connected cluster; refuses versions older than 12. */
int			pg_cluster_identify(pg_conn *conn, pg_cluster_info *out);

/* pg_cluster_identify plus: pg1-path (if set) must be the server's data directory. */
int			pg_cluster_check(pg_conn *conn, const config_t *cfg, pg_cluster_info *out);

/*
 * Backups (non-exclusive, on this one session, which must stay open from start to stop):
 * pg_backup_start calls pg_backup_start(label, fast) (PostgreSQL 15 and later) or
 * pg_start_backup(label, fast, false) (12-14) and returns the start LSN and the server's
 * clock (seconds since the epoch). pg_backup_stop calls pg_backup_stop(false) /
 * pg_stop_backup(false, false) — not waiting for archiving, the caller checks its own
 * archive — and returns the stop LSN, the backup_label and tablespace_map contents to
 * store (tablespace_map NULL when empty; caller frees both) and the server's clock.
 */
int			pg_backup_start(pg_conn *conn, const char *label, bool fast, uint64_t *start_lsn,
							int64_t *server_time);
int			pg_backup_stop(pg_conn *conn, uint64_t *stop_lsn, char **backup_label,
						   char **tablespace_map, int64_t *server_time);

/* The cluster's tablespaces other than pg_default/pg_global: oid, name, location. */
typedef struct pg_tablespace
{
	uint32_t	oid;
	char	   *name;
	char	   *location;
} pg_tablespace;

int			pg_tablespaces(pg_conn *conn, pg_tablespace **out, size_t *n);
void		pg_tablespaces_free(pg_tablespace *t, size_t n);

/*
 * Run a query that returns one row of one column; *out receives its text (caller frees;
 * "" for NULL). DRB_ERR_PG naming the server and PostgreSQL's message otherwise.
 */
int			pg_query_value(pg_conn *conn, const char *sql, char **out);

/* wal_segment_size in bytes. */
int			pg_wal_segment_size(pg_conn *conn, uint32_t *bytes);

/* LSN text "X/Y" <-> number. lsn_parse: -1 when not an LSN (each part 1 to 8 hex digits of
 * either case, nothing around them). out: at least 18 bytes. */
int			lsn_parse(const char *text, uint64_t *lsn);
void		lsn_format(uint64_t lsn, char *out, size_t outlen);

#endif
