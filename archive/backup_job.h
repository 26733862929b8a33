/*
 * backup_job.h — the copying part of a backup: from the data directory to the repositories.
 *
 * This is the middle of the three files a reader follows from PGDATA to the bucket:
 *     backup.c (the command) -> backup_job.c (this: what is copied, in parallel, bundled)
 *     -> repo.c (the filter chain of each object) -> storage driver.
 *
 * backup_job_scan walks the data directory (pgdata_walk) in manifest order, merging it
 * with the parent backup's manifest when there is one: a file whose size and mtime equal
 * the parent's, and whose recorded mtime is older than the parent's start (so no write
 * could have followed the parent's read within the same second), is *referenced* — the
 * new manifest points at the parent's object — and everything else is planned for
 * copying. Each entry is one record in an unlinked temporary file, never in memory, so a
 * cluster of a million files costs a few MB. Copy jobs: every file of bundle-limit bytes
 * or more is an object of its own ("data/f<NNNNNN>"); smaller ones are bundled, in walk
 * order, into objects of about bundle-size bytes ("data/b<NNNNNN>").
 *
 * backup_job_run runs the jobs biggest first on process-max threads. Each object goes to
 * every repository at once (one read of each file; filter_tee into one repo_put chain per
 * repository) and is committed (visible) before its files are recorded as copied. Page
 * checksums are verified while reading (backup_file_copy). Progress: a bar with bytes,
 * rate and ETA on a terminal (stderr), nothing otherwise. The first error stops the
 * other threads after their current file and is returned.
 *
 * backup_job_write_manifest writes the manifest (manifest_writer) from the records, and
 * fills the header's totals.
 */
#ifndef DRB_BACKUP_JOB_H
#define DRB_BACKUP_JOB_H

#include <stdbool.h>
#include <stdint.h>

#include "manifest.h"
#include "repo.h"

typedef struct backup_job backup_job;

typedef struct backup_job_settings
{
	repo_t	   *const *repos;	/* where objects go (all of them) */
	int			nrepo;
	const char *stanza;
	const char *label;
	const char *pgdata;
	int			pg_major;
	int			process_max;
	uint64_t	bundle_limit;	/* 0: no bundling */
	uint64_t	bundle_size;
	bool		check_pages;
	uint64_t	start_lsn;
	/* diff/incr: the parent's manifest, positioned before its first entry, and its
	 * header; NULL for a full backup. The job reads the parent to its end. */
	manifest_reader *parent;
	const manifest_header *parent_header;
} backup_job_settings;

/* NULL + err. */
backup_job *backup_job_scan(const backup_job_settings *s);
int			backup_job_run(backup_job *j);
/* h: everything but the totals filled by the caller. sha256: of the manifest text. */
int			backup_job_write_manifest(backup_job *j, manifest_header *h, uint8_t sha256[32]);
/* Bytes stored in repository i (0-based, as in settings.repos) by this backup. */
uint64_t	backup_job_repo_size(const backup_job *j, int i);
void		backup_job_free(backup_job *j);

#endif
