/*
 * pg.c — libpq connection and cluster identity (see pg.h).
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

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
