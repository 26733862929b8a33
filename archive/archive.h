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

#include "config.h"
#include "repo.h"
#include "stanza.h"
#include "wal.h"

typedef struct archive_repo
{
	int			index;			/* 1..4 */
	repo_t	   *repo;			/* NULL when it could not be opened (error kept below) */
	stanza_info stanza;
	char	   *open_error;		/* why it could not be opened, or NULL */
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
 * stanza record in each. Repositories that fail to open are kept with open_error set so
 * callers can decide (sync push: fail; async push: spool for later; get: try the next).
 * All open repositories must hold the same cluster (DRB_ERR_STANZA otherwise). Returns -1
 * only when no repository could be opened at all.
 */
int			archive_ctx_open(archive_ctx *ctx, const config_t *cfg, bool only_selected);
void		archive_ctx_close(archive_ctx *ctx);

/* "stanza/<s>/archive/<id>/<dir>/<name>-" and the full object path; caller frees. */
char	   *archive_object_prefix(const archive_repo *r, const wal_name *w);
char	   *archive_object_path(const archive_repo *r, const wal_name *w, const uint8_t sha256[32]);

/*
 * Look for w in one repository with one narrow LIST. *found false when absent; when
 * present, sha256 (from the name) and *path (caller frees) are set.
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
 * Read, check (header against the stanza for segments and .partial) and hash a local WAL
 * file into memory; caller frees *data. This is what archive-push and the async worker
 * push with archive_push_one.
 */
int			archive_load_file(const archive_ctx *ctx, const char *path, wal_name *w,
							  uint8_t **data, size_t *len, uint8_t sha256[32]);

/*
 * Fetch w into dest atomically (temp file in dest's directory, verified, renamed), from
 * repository `only` (1..4) or the first that has it (only = 0). DRB_ERR_NOT_FOUND when no
 * repository has it; any other error means a repository failed (and no other had it).
 */
int			archive_get_one(const archive_ctx *ctx, const wal_name *w, const char *dest, int only);

#endif
