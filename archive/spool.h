/*
 * spool.h — the local spool of the asynchronous workers (spool-path option).
 *
 *   <spool>/archive/<stanza>/worker.lock     flock()ed by the running push worker (holds its pid)
 *   <spool>/archive/<stanza>/worker.log      the push worker's log
 *   <spool>/archive/<stanza>/out/<wal>.ok    the worker's acknowledgement ("<size> <mtime>
 *                                            <sha256>"): <wal> is durable in every repository,
 *                                            or in the reachable ones plus a local copy queued
 *                                            for each lagging one
 *   <spool>/archive/<stanza>/out/<wal>.error why the last attempt failed ("<kind> <message>")
 *   <spool>/archive/<stanza>/lag/repo<N>/<wal>-<sha256>  local copies (fsynced) repository N
 *                                            still lacks, checked against the name before upload
 *   <spool>/archive/<stanza>/in/<wal>        segments prefetched by archive-get (verified)
 *   <spool>/archive/<stanza>/get.lock        flock()ed by the running prefetch worker (its pid)
 *   <spool>/archive/<stanza>/get.pos, get.log  recovery's position, the prefetch worker's log
 *   <spool>/keys/...                         the key cache (repo.c)
 * Every file is written atomically (temp + fsync + rename + fsync dir). A worker killed at
 * any moment leaves at worst a stale temp file, which the next worker removes.
 */
#ifndef DRB_SPOOL_H
#define DRB_SPOOL_H

#include <stdbool.h>

#include "repo_config.h"		/* config.h of src/, not autoconf's */
#include "wal.h"

/*
 * archive-push in asynchronous mode (archive_push.c calls this when archive-async=y):
 * answers from the worker's acknowledgement for the WAL file at wal_path, starting the
 * worker (archive-push-async, one per stanza, lock file) when it is not running, and
 * waiting up to archive-timeout. 0 only when out/<wal>.ok exists (consumed); otherwise
 * -1 with the worker's recorded error or a timeout message.
 */
int			spool_push_wait(const config_t *cfg, const char *wal_path);

/*
 * archive-get in asynchronous mode (archive_get.c calls this first when archive-async=y):
 * if the prefetch worker already fetched w into in/, move it to dest atomically and set
 * *hit; in any case make sure the prefetch worker (archive-get-async) is fetching the
 * segments after w. *hit false means: fetch it directly.
 */
int			spool_get_prefetched(const config_t *cfg, const wal_name *w, const char *dest,
								 bool *hit);

#endif
