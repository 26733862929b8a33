/*
 * stanza.h — the stanza record in a repository: which cluster a stanza belongs to.
 *
 * Stored as "stanza/<name>/stanza.info" plus the redundant copy "stanza.info.copy",
 * both through the repository pipeline (checksummed, encrypted when the repository is).
 * JSON: {"format":1,"stanza":..,"system-id":"..","pg-version":15,"pg-version-num":150018,
 * "created":"2026-11-21T05:00:00Z"}. Reading falls back to the copy when the main record
 * is missing or damaged.
 */
#ifndef DRB_STANZA_H
#define DRB_STANZA_H

#include <stdbool.h>
#include <stdint.h>

#include "repo.h"

typedef struct stanza_info
{
	char		name[128];
	uint64_t	system_id;
	int			pg_version;		/* major, e.g. 15 */
	int			pg_version_num; /* e.g. 150018 */
	char		created[32];
} stanza_info;

/* Valid stanza names: 1..64 of [A-Za-z0-9_.-], not starting with '.'. */
bool		stanza_name_valid(const char *name);

/* Path of a file inside the stanza's directory; caller frees. */
char	   *stanza_path(const char *stanza, const char *file);

/* Read the record; DRB_ERR_NOT_FOUND when neither copy exists. */
int			stanza_info_read(repo_t *repo, const char *stanza, stanza_info *out);

/* Write both copies (main first). */
int			stanza_info_write(repo_t *repo, const stanza_info *info);

#endif
