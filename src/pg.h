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

#endif
