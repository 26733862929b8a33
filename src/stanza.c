/*
 * stanza.c — stanza record read/write with redundant copy (see stanza.h).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "error.h"
#include "log.h"
#include "mem.h"
#include "stanza.h"

#define STANZA_INFO_FILE "stanza.info"
#define STANZA_INFO_COPY "stanza.info.copy"

bool
stanza_name_valid(const char *name)
{
	size_t		len = name ? strlen(name) : 0;

	if (len == 0 || len > 64 || name[0] == '.')
		return false;
	for (size_t i = 0; i < len; i++)
	{
		char		c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			  c == '_' || c == '.' || c == '-'))
			return false;
	}
	return true;
}

char *
stanza_path(const char *stanza, const char *file)
{
	return xasprintf("stanza/%s/%s", stanza, file);
}

/* Parse one copy; DRB_ERR_INTEGRITY when it is not a valid record. */
static int
stanza_info_parse(const char *path, const buf_t *data, stanza_info *out)
{
	json_error_t jerr;
	json_t	   *root = json_loadb((const char *) data->data, data->len, 0, &jerr);
	const char *name = NULL;
	const char *sysid = NULL;
	const char *created = NULL;
	json_int_t	format = 0, version = 0, version_num = 0;

	if (root == NULL)
		return err_set(DRB_ERR_INTEGRITY, "stanza record '%s' is not valid JSON: %s", path, jerr.text);
	if (json_unpack(root, "{s:I, s:s, s:s, s:I, s:I, s:s}", "format", &format, "stanza", &name,
					"system-id", &sysid, "pg-version", &version, "pg-version-num", &version_num,
					"created", &created) != 0 || format != 1)
	{
		json_decref(root);
		return err_set(DRB_ERR_INTEGRITY, "stanza record '%s' lacks required fields or has an "
					   "unknown format", path);
	}
	memset(out, 0, sizeof(*out));
	snprintf(out->name, sizeof(out->name), "%s", name);
	out->system_id = strtoull(sysid, NULL, 10);
	out->pg_version = (int) version;
	out->pg_version_num = (int) version_num;
	snprintf(out->created, sizeof(out->created), "%s", created);
	json_decref(root);
	return 0;
}

static int
stanza_info_read_one(repo_t *repo, const char *path, stanza_info *out)
{
	buf_t		data;
	int			rc;

	buf_init(&data);
	rc = repo_get_buf(repo, path, &data, NULL);
	if (rc == 0 && stanza_info_parse(path, &data, out) != 0)
		rc = err_wrap("repository %d", repo_index(repo));
	buf_free(&data);
	return rc;
}

int
stanza_info_read(repo_t *repo, const char *stanza, stanza_info *out)
{
	char	   *main_path = stanza_path(stanza, STANZA_INFO_FILE);
	char	   *copy_path = stanza_path(stanza, STANZA_INFO_COPY);
	int			rc = stanza_info_read_one(repo, main_path, out);

	if (rc != 0)
	{
		drb_err		first = err_kind();
		char	   *first_msg = xstrdup(err_msg());

		rc = stanza_info_read_one(repo, copy_path, out);
		if (rc == 0 && first != DRB_ERR_NOT_FOUND)
			log_warn("%s; using the copy '%s'", first_msg, copy_path);
		else if (rc != 0 && first != DRB_ERR_NOT_FOUND && err_kind() == DRB_ERR_NOT_FOUND)
			err_set(first, "%s", first_msg);	/* report the damage, not the missing copy */
		free(first_msg);
	}
	free(main_path);
	free(copy_path);
	return rc;
}

int
stanza_info_write(repo_t *repo, const stanza_info *info)
{
	char		sysid[32];
	json_t	   *root;
	char	   *text;
	int			rc;

	snprintf(sysid, sizeof(sysid), "%" PRIu64, info->system_id);
	root = json_pack("{s:i, s:s, s:s, s:i, s:i, s:s}", "format", 1, "stanza", info->name,
					 "system-id", sysid, "pg-version", info->pg_version,
					 "pg-version-num", info->pg_version_num, "created", info->created);
	text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(root);

	const char *files[] = {STANZA_INFO_FILE, STANZA_INFO_COPY};

	rc = 0;
	for (int i = 0; i < 2 && rc == 0; i++)
	{
		char	   *path = stanza_path(info->name, files[i]);

		rc = repo_put_buf(repo, path, text, strlen(text), NULL);
		if (rc != 0)
			err_wrap("unable to write stanza record '%s'", path);
		free(path);
	}
	free(text);
	return rc;
}
