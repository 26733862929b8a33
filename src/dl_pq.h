/*
 * dl_pq.h — libpq through dynlib.h: include this instead of <libpq-fe.h>, and call
 * dl_pq_load() before the first PQ* call (pg_connect and rt_server_connect do).
 */
#ifndef DRB_DL_PQ_H
#define DRB_DL_PQ_H

#include <libpq-fe.h>

#include "dynlib.h"

typedef struct dl_pq_api
{
	PGconn	   *(*connectdbParams) (const char *const *keywords, const char *const *values,
									int expand_dbname);
	ConnStatusType (*status) (const PGconn *conn);
	char	   *(*errorMessage) (const PGconn *conn);
	void		(*finish) (PGconn *conn);
	int			(*serverVersion) (const PGconn *conn);
	PGresult   *(*exec) (PGconn *conn, const char *query);
	PGresult   *(*execParams) (PGconn *conn, const char *command, int nParams,
							   const Oid *paramTypes, const char *const *paramValues,
							   const int *paramLengths, const int *paramFormats,
							   int resultFormat);
	ExecStatusType (*resultStatus) (const PGresult *res);
	char	   *(*resultErrorMessage) (const PGresult *res);
	int			(*ntuples) (const PGresult *res);
	int			(*nfields) (const PGresult *res);
	char	   *(*getvalue) (const PGresult *res, int tup_num, int field_num);
	int			(*getisnull) (const PGresult *res, int tup_num, int field_num);
	void		(*clear) (PGresult *res);
} dl_pq_api;

extern dl_pq_api dl_pq;

#define PQconnectdbParams	(dl_pq.connectdbParams)
#define PQstatus			(dl_pq.status)
#define PQerrorMessage		(dl_pq.errorMessage)
#define PQfinish			(dl_pq.finish)
#define PQserverVersion		(dl_pq.serverVersion)
#define PQexec				(dl_pq.exec)
#define PQexecParams		(dl_pq.execParams)
#define PQresultStatus		(dl_pq.resultStatus)
#define PQresultErrorMessage (dl_pq.resultErrorMessage)
#define PQntuples			(dl_pq.ntuples)
#define PQnfields			(dl_pq.nfields)
#define PQgetvalue			(dl_pq.getvalue)
#define PQgetisnull			(dl_pq.getisnull)
#define PQclear				(dl_pq.clear)

#endif
