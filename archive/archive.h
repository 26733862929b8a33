/*
 * archive.h — the WAL archive of a stanza in its repositories.
 *
 * Object names (docs/archiving.md): every archived file is stored once per repository at
 *     stanza/<stanza>/archive/<archive-id>/<dir>/<wal-name>-<sha256 of the plain bytes, hex>
 * archive-id = "<pg major>-<system identifier>" from the stanza record (a new cluster under
 * the same stanza never mixes its WAL with the old one's); dir = the first 16 hex digits of
 * the name (timeline + log) for segments, .partial and .backup files, "history" for
 * timeline history files. The checksum in the name means one narrow LIST of
 * "<dir>/<wal-name>-" tells whether a file is stored and with which content: no HEAD
 * guessing, no LIST of a large prefix.
 *
 * An archive_ctx holds what every archive operation needs: the configuration, each
 * selected repository opened (key unwrapped) with its stanza record. Open it once per
 * process; it is safe to use from several threads for different files.
 */
#ifndef DRB_ARCHIVE_H
#define DRB_ARCHIVE_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "repo.h"
#include "repo_config.h"		/* config_t; a plain "config.h" from archive/ finds autoconf's */
#include "stanza.h"
#include "wal.h"

typedef struct archive_repo
{
	int			index;			/* 1..4 */
	repo_t	   *repo;			/* NULL when it could not be opened (error kept below) */
	stanza_info stanza;
	char	   *open_error;		/* why it could not be opened, or NULL */
	drb_err		open_kind;		/* the error kind of open_error */
} archive_repo;

typedef struct archive_ctx
{
	const config_t *cfg;
	const char *stanza;
	int			nrepo;
	archive_repo repos[REPO_MAX];	/* in repository order */
} archive_ctx;

/*
 * Open every configured repository (or only --repo when only_selected) and read the
 * stanza record in each, all repositories in parallel. Repositories that fail to open, or
 * hold no record of the stanza, are kept with open_error/open_kind set (repo NULL) so
 * callers can decide (sync push: fail; async push: spool for later; get: try the next).
 * All open repositories must hold the same cluster (DRB_ERR_STANZA otherwise, nothing
 * left open). Returns -1 when no repository could be opened at all (the error names each
 * repository and its cause). archive_ctx_close is safe after a failed open.
 */
int			archive_ctx_open(archive_ctx *ctx, const config_t *cfg, bool only_selected);
void		archive_ctx_close(archive_ctx *ctx);

/* "stanza/<s>/archive/<id>/<dir>/<name>-" and the full object path; caller frees. */
char	   *archive_object_prefix(const archive_repo *r, const wal_name *w);
char	   *archive_object_path(const archive_repo *r, const wal_name *w, const uint8_t sha256[32]);

/*
 * Look for w in one repository with one narrow LIST. *found false when absent; when
 * present, sha256 (from the name) and *path (caller frees; path may be NULL) are set.
 * More than one stored object for the name is DRB_ERR_INTEGRITY naming them all.
 */
int			archive_find(const archive_repo *r, const wal_name *w, bool *found,
						 uint8_t sha256[32], char **path);

/*
 * Store a local WAL file in one repository: same name already stored with the same
 * checksum -> success, *skipped = true, nothing uploaded; with another checksum ->
 * DRB_ERR_STANZA naming both checksums, nothing written; else put through the pipeline
 * (durable on return). data/len is the whole file, sha256 its checksum.
 */
int			archive_push_one(const archive_repo *r, const wal_name *w, const uint8_t *data,
							 size_t len, const uint8_t sha256[32], bool *skipped);

/*
 * Read, check (header against the stanza record of each open repository, for segments
 * and .partial) and hash a local WAL file into memory, in one pass; caller frees *data.
 * path may be relative (PostgreSQL runs archive_command in the data directory); its base
 * name must be a WAL file name. A missing file is DRB_ERR_NOT_FOUND, a file of another
 * cluster or PostgreSQL version DRB_ERR_STANZA. For files up to ARCHIVE_LOAD_MAX, to be
 * stored with archive_push_one (archive-push and the async worker map files instead:
 * archive_file_map); larger segments (initdb --wal-segsize up to 1 GiB) are streamed with
 * archive_check_file + archive_push_path.
 */
int			archive_load_file(const archive_ctx *ctx, const char *path, wal_name *w,
							  uint8_t **data, size_t *len, uint8_t sha256[32]);

#define ARCHIVE_LOAD_MAX	((uint64_t) 64 * 1024 * 1024)

/* archive_load_file without keeping the bytes: one streaming pass; *size is the file size. */
int			archive_check_file(const archive_ctx *ctx, const char *path, wal_name *w,
							   uint8_t sha256[32], uint64_t *size);

/*
 * The way archive-push holds a file: mapped read-only instead of copied (PostgreSQL just
 * wrote it, so its pages are in the page cache; it never changes a WAL file it handed to
 * archive_command). archive_file_map parses the name but
 * needs no repository, so it can run while the repositories are being opened;
 * archive_file_check then checks the header (segments, .partial) against the stanza like
 * archive_load_file. Release with archive_file_unmap. For files up to ARCHIVE_LOAD_MAX.
 */
typedef struct archive_file
{
	const char *path;			/* as given (not copied) */
	wal_name	w;
	const uint8_t *data;
	size_t		len;
} archive_file;

int			archive_file_map(const char *path, archive_file *f);
int			archive_file_check(const archive_ctx *ctx, const archive_file *f);
void		archive_file_unmap(archive_file *f);

/*
 * archive-push's way to store a file in one repository: one narrow LIST; when w is stored
 * already, hash data and compare (same: *skipped; other: DRB_ERR_STANZA naming both
 * checksums); else encode data through the pipeline into memory — hashing in parallel with
 * compression — and put it under the name its checksum gives. Latency: max(hash, compress)
 * instead of their sum; the compressed stream is made of independent 1 MiB zstd frames
 * compressed by two threads at once (repo.c). sha256 receives the file's checksum. The
 * mapping is encoded in 2 MiB steps and each step is dropped from the process once
 * encoded (the page cache keeps it), so memory stays small whatever the segment size.
 * The asynchronous worker stores mapped files this way too.
 */
int			archive_push_encoded(const archive_repo *r, const archive_file *f,
								 uint8_t sha256[32], bool *skipped);

/*
 * archive_push_one for a file streamed from path (read again; sha256 is what
 * archive_check_file computed). A file whose content changed since is refused with
 * DRB_ERR_INTEGRITY and the object removed again.
 */
int			archive_push_path(const archive_repo *r, const wal_name *w, const char *path,
							  const uint8_t sha256[32], bool *skipped);

/*
 * Fetch w into dest atomically (temp file "<dest>.drbtmp.<pid>", verified against the
 * checksum in the object name, fsynced, renamed), from repository `only` (1..4) or the
 * first that has it (only = 0), trying the next repository when one fails. DRB_ERR_NOT_FOUND
 * ("WAL file X not found in ...") only when every repository tried answered that it does
 * not have it; when one failed and none had it, that failure is returned instead.
 */
int			archive_get_one(const archive_ctx *ctx, const wal_name *w, const char *dest, int only);

#endif
