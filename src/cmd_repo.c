/*
 * cmd_repo.c — the repository debugging commands: repo-create, repo-ls, repo-put,
 * repo-get, repo-rm. They read options, call repo/storage, report.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "command.h"
#include "error.h"
#include "log.h"
#include "mem.h"
#include "repo_config.h"

/* Files whose loss would make a repository unreadable: refused by repo-rm. */
static bool
is_key_file(const char *path)
{
	return strcmp(path, "drbackup.repo") == 0 || strcmp(path, "drbackup.repo.copy") == 0;
}

int
cmd_repo_create(config_t *cfg)
{
	int			idx[REPO_MAX];
	int			n = repo_config_selected(cfg, true, idx);

	for (int i = 0; i < n; i++)
	{
		repo_settings s;
		int			rc;

		if (repo_config_settings(cfg, idx[i], &s) != 0)
			return -1;
		rc = repo_create(&s);
		if (rc == 0)
			printf("repository %d (%s): ready (cipher %s)\n", idx[i], s.storage->description,
				   cipher_type_name(s.cipher));
		storage_free(s.storage);
		if (rc != 0)
			return -1;			/* the repository layer names the repository */
	}
	return 0;
}

typedef struct ls_state
{
	bool		json;
	json_t	   *array;
	uint64_t	count;
} ls_state;

static int
ls_entry(const storage_info *info, void *arg)
{
	ls_state   *st = arg;

	st->count++;
	if (st->json)
	{
		json_array_append_new(st->array, json_pack("{s:s, s:I, s:I}", "path", info->path,
												   "size", (json_int_t) info->size,
												   "mtime", (json_int_t) info->mtime));
		return 0;
	}

	char		when[32] = "-";

	if (info->mtime > 0)
	{
		time_t		t = (time_t) info->mtime;
		struct tm	tm;

		gmtime_r(&t, &tm);
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	}
	printf("%12llu  %s  %s\n", (unsigned long long) info->size, when, info->path);
	return 0;
}

int
cmd_repo_ls(config_t *cfg)
{
	int			idx[REPO_MAX];
	storage_t  *st;
	ls_state	state = {0};
	int			rc;

	repo_config_selected(cfg, false, idx);
	st = repo_config_storage(cfg, idx[0]);
	if (st == NULL)
		return -1;
	if (cfg_output_json(cfg, &state.json) != 0)
	{
		storage_free(st);
		return -1;
	}
	if (state.json)
		state.array = json_array();
	rc = storage_list(st, config_nargs(cfg) > 0 ? config_arg(cfg, 0) : "", ls_entry, &state);
	if (rc == 0 && state.json)
	{
		json_dumpf(state.array, stdout, JSON_INDENT(2));
		putchar('\n');
	}
	json_decref(state.array);
	storage_free(st);
	return rc;
}

int
cmd_repo_put(config_t *cfg)
{
	int			idx[REPO_MAX];
	const char *local = config_arg(cfg, 0);
	const char *path = config_arg(cfg, 1);
	repo_object_result res;
	repo_t	   *repo;
	int			fd;
	int			rc;

	repo_config_selected(cfg, false, idx);
	fd = strcmp(local, "-") == 0 ? STDIN_FILENO : open(local, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_set(errno == ENOENT ? DRB_ERR_NOT_FOUND : DRB_ERR_STORAGE,
					   "unable to open '%s' for reading: %m", local);
	repo = repo_config_open(cfg, idx[0]);
	if (repo == NULL)
	{
		if (fd != STDIN_FILENO)
			close(fd);
		return -1;
	}
	rc = repo_put_fd(repo, path, fd, &res);
	if (rc == 0)
	{
		char		hex[65];

		hex_encode(res.sha256, sizeof(res.sha256), hex);
		log_info("put '%s' to repository %d as '%s': %llu bytes, %llu stored, sha256 %s", local,
				 idx[0], path, (unsigned long long) res.size, (unsigned long long) res.stored_size, hex);
	}
	if (fd != STDIN_FILENO)
		close(fd);
	repo_close(repo);
	return rc;
}

/* Stream to an existing non-regular target (a device such as /dev/null, a FIFO): renaming a
 * temporary file over it would replace the device with a regular file. */
static int
get_to_special(repo_t *repo, const char *path, const char *local, repo_object_result *res)
{
	int			fd = open(local, O_WRONLY | O_CLOEXEC);
	filter_t   *sink;
	int			rc;

	if (fd < 0)
		return err_set(DRB_ERR_STORAGE, "unable to open '%s' for writing: %m", local);
	sink = filter_sink_fd_new(fd);
	rc = repo_get(repo, path, sink, NULL, res);
	filter_chain_free(sink);
	if (close(fd) != 0 && rc == 0)
		rc = err_set(DRB_ERR_STORAGE, "unable to close '%s': %m", local);
	return rc;
}

int
cmd_repo_get(config_t *cfg)
{
	int			idx[REPO_MAX];
	const char *path = config_arg(cfg, 0);
	const char *local = config_nargs(cfg) > 1 ? config_arg(cfg, 1) : "-";
	repo_object_result res;
	repo_t	   *repo;
	struct stat st;
	int			rc;

	repo_config_selected(cfg, false, idx);
	repo = repo_config_open(cfg, idx[0]);
	if (repo == NULL)
		return -1;
	if (strcmp(local, "-") != 0 && stat(local, &st) == 0 && !S_ISREG(st.st_mode))
	{
		if (S_ISDIR(st.st_mode))
			rc = err_set(DRB_ERR_USAGE, "'%s' is a directory: give a file name", local);
		else
			rc = get_to_special(repo, path, local, &res);
	}
	else if (strcmp(local, "-") == 0)
	{
		/* stdout cannot be taken back: a failure after some bytes still exits non-zero */
		filter_t   *sink = filter_sink_fd_new(STDOUT_FILENO);

		rc = repo_get(repo, path, sink, NULL, &res);
		filter_chain_free(sink);
	}
	else
		rc = repo_get_file(repo, path, local, NULL, true, &res);
	if (rc == 0)
		log_info("got '%s' from repository %d: %llu bytes verified", path, idx[0],
				 (unsigned long long) res.size);
	repo_close(repo);
	return rc;
}

int
cmd_repo_rm(config_t *cfg)
{
	int			idx[REPO_MAX];
	int			nargs = config_nargs(cfg);
	storage_t  *st;
	const char **paths;
	int			rc;

	for (int i = 0; i < nargs; i++)
		if (is_key_file(config_arg(cfg, i)))
			return err_set(DRB_ERR_USAGE, "refusing to remove '%s': it holds the repository key "
						   "and every object depends on it", config_arg(cfg, i));
	repo_config_selected(cfg, false, idx);
	st = repo_config_storage(cfg, idx[0]);
	if (st == NULL)
		return -1;
	paths = xcalloc((size_t) nargs, sizeof(char *));
	for (int i = 0; i < nargs; i++)
		paths[i] = config_arg(cfg, i);
	rc = storage_remove_many(st, paths, (size_t) nargs);
	free(paths);
	storage_free(st);
	return rc;
}
