/*
 * verify.h — the two halves of `drbackup verify` (internal to restore/):
 *
 *   verify.c          the command: what to check in each repository (catalogs, manifests,
 *                     the backups' objects, the WAL archive and its continuity, the
 *                     regions against each other), the problems and the report
 *   verify_objects.c  reading objects: a job is one object, read once through repo_get
 *                     (authentication, decompression and the object's own checksum are
 *                     checked there) into a sink that checks what the object holds — the
 *                     files of a backup object at their offsets against the manifest's
 *                     size and SHA-256, a WAL segment's header and size; jobs run on
 *                     process-max threads, biggest first, with a progress bar on a terminal
 *
 * Memory: a backup object's job holds only its files' offsets and their positions in a
 * records file (struct verify_rec + path, written while the manifest is read); the sink
 * reads one record at a time. Problems never stop the run: each is reported through
 * verify_pool.report and the next object is read.
 */
#ifndef DRB_VERIFY_H
#define DRB_VERIFY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "progress.h"
#include "repo.h"
#include "wal.h"

/* A file of a backup object in the records file, followed by path_len bytes of its path. */
typedef struct verify_rec
{
	uint64_t	offset;			/* in the object's plain stream */
	uint64_t	size;
	uint8_t		sha256[32];
	uint32_t	path_len;
	uint32_t	pad;
} verify_rec;

/* One file of a backup object: where it starts and where its record is. */
typedef struct verify_span
{
	uint64_t	offset;
	uint64_t	pos;			/* of its verify_rec in the records file */
} verify_span;

typedef enum verify_job_kind
{
	VJ_META,					/* catalog, manifest, stanza record: the object alone */
	VJ_BACKUP,					/* a data object of a backup: its files too */
	VJ_WAL,						/* a WAL archive object: a segment's header and size too */
} verify_job_kind;

typedef struct verify_job
{
	verify_job_kind kind;
	int			repo_pos;		/* the repository's position in the run (for reports) */
	repo_t	   *repo;
	char	   *path;			/* object path (owned) */
	bool		has_sha;
	uint8_t		sha256[32];		/* expected checksum of the plain bytes */
	uint64_t	estimate;		/* plain bytes expected (order and progress) */
	/* VJ_BACKUP: spans sorted by offset (owned), records in records_fd */
	verify_span *spans;
	size_t		nspans;
	int			records_fd;
	/* VJ_WAL */
	wal_name	w;
	uint64_t	system_id;
	int			pg_major;
	uint32_t	seg_size;
} verify_job;

typedef struct verify_pool
{
	int			process_max;
	progress	bar;			/* plain bytes expected in all are the bar's 100% */
	atomic_uint_fast64_t done;	/* plain bytes checked so far */
	atomic_uint_fast64_t *stored;	/* per repository position: bytes read from storage */
	/* a problem with job's object; thread-safe (called from the worker threads) */
	void		(*report) (void *arg, const verify_job *job, const char *kind,
						   const char *message);
	void	   *arg;
} verify_pool;

/*
 * Read every job's object (process-max threads, biggest first) and report each problem.
 * Returns 0 when every job ran (whatever it found), -1 + err only for a failure of verify
 * itself (no thread could start). Frees nothing: the caller frees the jobs.
 */
int			verify_jobs_run(verify_pool *pool, verify_job *jobs, size_t n);

/* Draw the bar one last time and end its line (only when pool->bar.on). */
void		verify_progress_end(verify_pool *pool);

void		verify_job_free(verify_job *job);

#endif
