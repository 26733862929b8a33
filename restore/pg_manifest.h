/*
 * pg_manifest.h — backup_manifest in PostgreSQL's own format, for pg_verifybackup.
 *
 * The format PostgreSQL 13+ writes (src/backend/backup/backup_manifest.c): JSON with
 *   {"PostgreSQL-Backup-Manifest-Version": 1,
 *    "Files": [{"Path": .., "Size": .., "Last-Modified": "YYYY-MM-DD HH:MM:SS GMT",
 *               "Checksum-Algorithm": "SHA256", "Checksum": "<hex>"}, ...],
 *    "WAL-Ranges": [{"Timeline": N, "Start-LSN": "X/Y", "End-LSN": "X/Y"}],
 *    "Manifest-Checksum": "<SHA-256 hex of every byte before this line>"}
 * one file per line, as PostgreSQL writes it. Paths are relative to the data directory;
 * tablespace files appear as "pg_tblspc/<oid>/..." as PostgreSQL lists them. Files
 * pg_verifybackup ignores by default (postgresql.auto.conf, recovery.signal,
 * standby.signal, pg_wal/...) may be listed or not; backup_label and tablespace_map are
 * listed with the contents restore wrote. SHA-256 comes from the drbackup manifest
 * (no file is read again).
 *
 * pg_manifest_open writes into "<pgdata>/backup_manifest.drbtmp"; add each file in any
 * order; pg_manifest_close appends WAL-Ranges and the checksum, fsyncs and renames to
 * "<pgdata>/backup_manifest". PostgreSQL 12 (no pg_verifybackup) gets one as well.
 */
#ifndef DRB_PG_MANIFEST_H
#define DRB_PG_MANIFEST_H

#include <stdint.h>

typedef struct pg_manifest pg_manifest;

pg_manifest *pg_manifest_open(const char *pgdata);
int			pg_manifest_add(pg_manifest *m, const char *path, uint64_t size, int64_t mtime,
							const uint8_t sha256[32]);
int			pg_manifest_close(pg_manifest *m, uint32_t timeline, uint64_t start_lsn,
							  uint64_t end_lsn);
void		pg_manifest_abort(pg_manifest *m);

#endif
