/*
 * pg.c — libpq connection and cluster identity (see pg.h).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dl_pq.h"
#include "error.h"
#include "mem.h"
#include "pg.h"

struct pg_conn
{
	PGconn	   *conn;
	char	   *where;			/* "socket /x port 5432" for messages */
};

pg_conn *
pg_connect(const config_t *cfg)
{
	const char *keys[8];
	const char *vals[8];
	char		port[16];
	int			n = 0;
	const char *host = cfg_str(cfg, "pg1-host");
	const char *sock = cfg_str(cfg, "pg1-socket-path");
	pg_conn    *pc;

	if (dl_pq_load() != 0)
		return NULL;
	snprintf(port, sizeof(port), "%lld", (long long) cfg_int(cfg, "pg1-port"));
	if (host || sock)
	{
		keys[n] = "host";
		vals[n++] = host ? host : sock;
	}
	keys[n] = "port";
	vals[n++] = port;
	keys[n] = "dbname";
	vals[n++] = cfg_str(cfg, "pg1-database");
	if (cfg_str(cfg, "pg1-user"))
	{
		keys[n] = "user";
		vals[n++] = cfg_str(cfg, "pg1-user");
	}
	keys[n] = "application_name";
	vals[n++] = "drbackup";
	keys[n] = "connect_timeout";
	vals[n++] = "30";
	keys[n] = NULL;
	vals[n] = NULL;

	pc = xcalloc(1, sizeof(*pc));
	pc->where = xasprintf("%s '%s' port %s", host ? "host" : "socket directory",
						  host ? host : (sock ? sock : "(libpq default)"), port);
	pc->conn = PQconnectdbParams(keys, vals, 0);
	if (pc->conn == NULL || PQstatus(pc->conn) != CONNECTION_OK)
	{
		char	   *msg = xstrdup(pc->conn ? PQerrorMessage(pc->conn) : "out of memory");
		size_t		len = strlen(msg);

		while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
			msg[--len] = '\0';
		for (char *p = msg; *p; p++)
			if (*p == '\n')
				*p = ' ';
		err_set(DRB_ERR_PG, "unable to connect to PostgreSQL at %s: %s", pc->where, msg);
		free(msg);
		pg_disconnect(pc);
		return NULL;
	}
	return pc;
}

void
pg_disconnect(pg_conn *pc)
{
	if (pc == NULL)
		return;
	if (pc->conn)
		PQfinish(pc->conn);
	free(pc->where);
	free(pc);
}

int
pg_cluster_identify(pg_conn *pc, pg_cluster_info *out)
{
	PGresult   *res;
	int			rc = 0;

	memset(out, 0, sizeof(*out));
	res = PQexec(pc->conn,
				 "SELECT system_identifier::text, current_setting('server_version_num'), "
				 "current_setting('data_directory'), current_setting('data_checksums') "
				 "FROM pg_catalog.pg_control_system()");
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
	{
		rc = err_set(DRB_ERR_PG, "unable to read the cluster identity at %s: %s", pc->where,
					 PQresultErrorMessage(res));
		PQclear(res);
		return rc;
	}
	out->system_id = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
	out->version_num = atoi(PQgetvalue(res, 0, 1));
	out->version_major = out->version_num / 10000;
	snprintf(out->data_directory, sizeof(out->data_directory), "%s", PQgetvalue(res, 0, 2));
	out->data_checksums = strcmp(PQgetvalue(res, 0, 3), "on") == 0;
	PQclear(res);
	if (out->version_major < 12)
		return err_set(DRB_ERR_PG, "PostgreSQL %d at %s is not supported (12 or later required)",
					   out->version_major, pc->where);
	return 0;
}

int
pg_cluster_check(pg_conn *pc, const config_t *cfg, pg_cluster_info *out)
{
	const char *want = cfg_str(cfg, "pg1-path");
	char		want_real[PATH_MAX];
	char		have_real[PATH_MAX];

	if (pg_cluster_identify(pc, out) != 0)
		return -1;
	if (want == NULL)
		return 0;
	if (realpath(want, want_real) == NULL)
		snprintf(want_real, sizeof(want_real), "%s", want);
	if (realpath(out->data_directory, have_real) == NULL)
		snprintf(have_real, sizeof(have_real), "%s", out->data_directory);
	if (strcmp(want_real, have_real) != 0)
		return err_set(DRB_ERR_PG, "pg1-path '%s' is not the data directory of the server at %s "
					   "(it runs on '%s'): check pg1-path and pg1-port", want, pc->where,
					   out->data_directory);
	return 0;
}

/* One query returning exactly one row; NULL + err naming what failed. */
static PGresult *
query_row(pg_conn *pc, const char *what, const char *sql, int nparams, const char *const *params)
{
	PGresult   *res = PQexecParams(pc->conn, sql, nparams, NULL, params, NULL, NULL, 0);

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
	{
		char	   *msg = xstrdup(PQresultErrorMessage(res));

		msg[strcspn(msg, "\n")] = '\0';
		err_set(DRB_ERR_PG, "unable to %s at %s: %s", what, pc->where,
				msg[0] ? msg : "unexpected result");
		free(msg);
		PQclear(res);
		return NULL;
	}
	return res;
}

int
lsn_parse(const char *text, uint64_t *lsn)
{
	uint64_t	part[2] = {0, 0};
	const char *p = text;

	if (text == NULL)
		return -1;
	/* "X/Y", each 1 to 8 hex digits of either case, nothing else (no sign, space, 0x) */
	for (int i = 0; i < 2; i++)
	{
		int			n = 0;

		for (;; n++, p++)
		{
			int			d;

			if (*p >= '0' && *p <= '9')
				d = *p - '0';
			else if (*p >= 'a' && *p <= 'f')
				d = *p - 'a' + 10;
			else if (*p >= 'A' && *p <= 'F')
				d = *p - 'A' + 10;
			else
				break;
			part[i] = part[i] * 16 + (uint64_t) d;
		}
		if (n < 1 || n > 8)
			return -1;
		if (i == 0 && *p++ != '/')
			return -1;
	}
	if (*p != '\0')
		return -1;
	*lsn = (part[0] << 32) | part[1];
	return 0;
}

void
lsn_format(uint64_t lsn, char *out, size_t outlen)
{
	snprintf(out, outlen, "%X/%X", (unsigned int) (lsn >> 32), (unsigned int) lsn);
}

int
pg_backup_start(pg_conn *pc, const char *label, bool fast, uint64_t *start_lsn,
				int64_t *server_time)
{
	int			vnum = PQserverVersion(pc->conn);
	const char *params[2] = {label, fast ? "true" : "false"};
	const char *sql = vnum >= 150000
		? "SELECT pg_catalog.pg_backup_start($1, $2::boolean)::text, "
		"floor(extract(epoch from clock_timestamp()))::bigint"
		: "SELECT pg_catalog.pg_start_backup($1, $2::boolean, false)::text, "
		"floor(extract(epoch from clock_timestamp()))::bigint";
	PGresult   *res = query_row(pc, "start the backup", sql, 2, params);

	if (res == NULL)
		return -1;
	if (lsn_parse(PQgetvalue(res, 0, 0), start_lsn) != 0)
	{
		err_set(DRB_ERR_PG, "unable to start the backup at %s: unexpected LSN '%s'", pc->where,
				PQgetvalue(res, 0, 0));
		PQclear(res);
		return -1;
	}
	*server_time = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	PQclear(res);
	return 0;
}

int
pg_backup_stop(pg_conn *pc, uint64_t *stop_lsn, char **backup_label, char **tablespace_map,
			   int64_t *server_time)
{
	int			vnum = PQserverVersion(pc->conn);
	const char *sql = vnum >= 150000
		? "SELECT lsn::text, labelfile, spcmapfile, "
		"floor(extract(epoch from clock_timestamp()))::bigint "
		"FROM pg_catalog.pg_backup_stop(false)"
		: "SELECT lsn::text, labelfile, spcmapfile, "
		"floor(extract(epoch from clock_timestamp()))::bigint "
		"FROM pg_catalog.pg_stop_backup(false, false)";
	PGresult   *res = query_row(pc, "stop the backup", sql, 0, NULL);
	const char *map;

	if (res == NULL)
		return -1;
	if (lsn_parse(PQgetvalue(res, 0, 0), stop_lsn) != 0)
	{
		err_set(DRB_ERR_PG, "unable to stop the backup at %s: unexpected LSN '%s'", pc->where,
				PQgetvalue(res, 0, 0));
		PQclear(res);
		return -1;
	}
	*backup_label = xstrdup(PQgetvalue(res, 0, 1));
	map = PQgetisnull(res, 0, 2) ? "" : PQgetvalue(res, 0, 2);
	*tablespace_map = map[0] ? xstrdup(map) : NULL;
	*server_time = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
	PQclear(res);
	return 0;
}

int
pg_tablespaces(pg_conn *pc, pg_tablespace **out, size_t *n)
{
	PGresult   *res = PQexec(pc->conn,
							 "SELECT oid, spcname, pg_catalog.pg_tablespace_location(oid) "
							 "FROM pg_catalog.pg_tablespace "
							 "WHERE spcname NOT IN ('pg_default', 'pg_global') ORDER BY oid");
	int			rows;

	*out = NULL;
	*n = 0;
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		err_set(DRB_ERR_PG, "unable to list tablespaces at %s: %s", pc->where,
				PQresultErrorMessage(res));
		PQclear(res);
		return -1;
	}
	rows = PQntuples(res);
	if (rows > 0)
		*out = xcalloc((size_t) rows, sizeof(**out));
	for (int i = 0; i < rows; i++)
	{
		(*out)[i].oid = (uint32_t) strtoul(PQgetvalue(res, i, 0), NULL, 10);
		(*out)[i].name = xstrdup(PQgetvalue(res, i, 1));
		(*out)[i].location = xstrdup(PQgetvalue(res, i, 2));
	}
	*n = (size_t) rows;
	PQclear(res);
	return 0;
}

void
pg_tablespaces_free(pg_tablespace *t, size_t n)
{
	for (size_t i = 0; i < n; i++)
	{
		free(t[i].name);
		free(t[i].location);
	}
	free(t);
}

int
pg_query_value(pg_conn *pc, const char *sql, char **out)
{
	PGresult   *res = query_row(pc, "run a query", sql, 0, NULL);

	*out = NULL;
	if (res == NULL)
		return -1;
	if (PQnfields(res) != 1)
	{
		int			n = PQnfields(res);

		PQclear(res);
		return err_set(DRB_ERR_PG, "unexpected result of a query at %s: %d columns, 1 expected",
					   pc->where, n);
	}
	*out = xstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return 0;
}

int
pg_wal_segment_size(pg_conn *pc, uint32_t *bytes)
{
	PGresult   *res = query_row(pc, "read wal_segment_size",
								"SELECT setting FROM pg_catalog.pg_settings "
								"WHERE name = 'wal_segment_size'", 0, NULL);
	unsigned long v;

	if (res == NULL)
		return -1;
	v = strtoul(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	if (v < 1024 * 1024 || v > 1024UL * 1024 * 1024 || (v & (v - 1)) != 0)
		return err_set(DRB_ERR_PG, "unexpected wal_segment_size %lu at %s", v, pc->where);
	*bytes = (uint32_t) v;
	return 0;
}
