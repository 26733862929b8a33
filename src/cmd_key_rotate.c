/*
 * cmd_key_rotate.c — `drbackup key-rotate`: re-wrap each repository's data key under a new
 * passphrase (SPEC "Data pipeline"; procedure in docs/key-rotation.md).
 *
 * The new passphrase comes from cipher-pass-new (environment DRBACKUP_CIPHER_PASS_NEW or
 * the config file; the config layer refuses it on the command line) or from the first
 * line of cipher-pass-new-file, a file no one but its owner may read. For each selected
 * repository (--repo, else every configured one) with encryption, repo_key_rotate
 * rewrites drbackup.repo then drbackup.repo.copy; no data object is touched (the data key
 * and its id stay the same). Then the command proves the result: the new passphrase opens
 * the repository and the old one no longer does.
 *
 * The local key cache (<spool-path>/keys, keyring_open_cached) cannot keep the old
 * passphrase working: an entry is bound to the SHA-256 of the key file text, which the
 * rotation changes (fresh KDF salt and nonce), and to the passphrase that wrapped it. The
 * check with the new passphrase also rewrites this host's entry for the repository, so
 * what is left there after a rotation is an entry for the new key file only. Caches on
 * other hosts become stale the same way and are rewritten at their next open.
 *
 * A repository that the current passphrase does not open but the new one does was rotated
 * already (a rerun after a partial failure): reported, not an error.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "command.h"
#include "error.h"
#include "log.h"
#include "mem.h"
#include "repo_config.h"

#define PASS_FILE_MAX	4096	/* bytes of a passphrase file read, at most */

/*
 * The first line of a passphrase file (trailing "\n" or "\r\n" removed). Refused: a file
 * that is not a regular file, that its group or others may access, that is empty or
 * whose first line is empty. Caller frees (secure_zero first).
 */
static char *
pass_file_read(const char *path)
{
	int			fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char		buf[PASS_FILE_MAX + 1];
	ssize_t		n = 0;
	size_t		len = 0;
	char	   *pass;

	if (fd < 0)
	{
		err_set(errno == ENOENT ? DRB_ERR_NOT_FOUND : DRB_ERR_CONFIG,
				"unable to open cipher-pass-new-file '%s': %m", path);
		return NULL;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
	{
		close(fd);
		err_set(DRB_ERR_CONFIG, "cipher-pass-new-file '%s' is not a regular file", path);
		return NULL;
	}
	if ((st.st_mode & 077) != 0)
	{
		close(fd);
		err_set(DRB_ERR_CONFIG, "cipher-pass-new-file '%s' is accessible by other users (mode "
				"%04o): refusing to use it (chmod 600 '%s')", path,
				(unsigned int) (st.st_mode & 07777), path);
		return NULL;
	}
	while (len < PASS_FILE_MAX && (n = read(fd, buf + len, PASS_FILE_MAX - len)) != 0)
	{
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		len += (size_t) n;
	}
	close(fd);
	if (n < 0)
	{
		secure_zero(buf, sizeof(buf));
		err_set(DRB_ERR_CONFIG, "unable to read cipher-pass-new-file '%s': %m", path);
		return NULL;
	}
	buf[len] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	len = strlen(buf);
	if (len > 0 && buf[len - 1] == '\r')
		buf[--len] = '\0';
	if (len == 0)
	{
		secure_zero(buf, sizeof(buf));
		err_set(DRB_ERR_CONFIG, "cipher-pass-new-file '%s' holds no passphrase (its first "
				"line is empty)", path);
		return NULL;
	}
	pass = xstrdup(buf);
	secure_zero(buf, sizeof(buf));
	return pass;
}

/* The new passphrase, from exactly one of its two sources. Caller frees. */
static char *
new_passphrase(const config_t *cfg)
{
	const char *value = cfg_str(cfg, "cipher-pass-new");
	const char *file = cfg_str(cfg, "cipher-pass-new-file");
	char	   *pass;

	if (value && file)
	{
		err_set(DRB_ERR_USAGE, "key-rotate: give the new passphrase once: cipher-pass-new "
				"(from %s) or cipher-pass-new-file, not both", cfg_source(cfg, "cipher-pass-new"));
		return NULL;
	}
	if (value == NULL && file == NULL)
	{
		err_set(DRB_ERR_USAGE, "key-rotate needs the new passphrase: environment "
				"DRBACKUP_CIPHER_PASS_NEW, cipher-pass-new in the config file, or "
				"--cipher-pass-new-file=FILE");
		return NULL;
	}
	if (value && value[0] == '\0')
	{
		err_set(DRB_ERR_USAGE, "key-rotate: the new passphrase (cipher-pass-new) is empty");
		return NULL;
	}
	pass = value ? xstrdup(value) : pass_file_read(file);
	if (pass)
		log_register_secret(pass);
	return pass;
}

typedef struct object_count
{
	uint64_t	data;
} object_count;

static int
count_cb(const storage_info *info, void *arg)
{
	object_count *c = arg;

	if (strcmp(info->path, "drbackup.repo") != 0 && strcmp(info->path, "drbackup.repo.copy") != 0)
		c->data++;
	return 0;
}

/*
 * After the rotation of s's repository: the new passphrase opens it (this rewrites the
 * local key cache entry) and the old one is refused. Takes ownership of s->storage.
 */
static int
rotation_check(repo_settings *s, const char *old_pass, const char *new_pass)
{
	repo_settings probe = *s;
	repo_t	   *repo;

	/* old passphrase, without the cache: must be refused */
	probe.passphrase = old_pass;
	probe.key_cache_dir = NULL;
	repo = repo_open(&probe);
	if (repo != NULL)
	{
		repo_close(repo);		/* frees the storage */
		return err_set(DRB_ERR_INTERNAL, "repository %d: the old passphrase still opens the "
					   "repository after key-rotate", s->index);
	}
	if (err_kind() != DRB_ERR_CRYPTO)
	{
		storage_free(s->storage);
		return err_wrap("repository %d: unable to check that the old passphrase is refused",
						s->index);
	}
	err_clear();

	/* new passphrase, through the cache: opens, and replaces this host's entry */
	probe.passphrase = new_pass;
	probe.key_cache_dir = s->key_cache_dir;
	repo = repo_open(&probe);
	if (repo == NULL)
	{
		storage_free(s->storage);
		return err_wrap("repository %d: the new passphrase does not open the repository "
						"after key-rotate", s->index);
	}
	repo_close(repo);
	return 0;
}

/* One repository; prints its line. */
static int
rotate_one(const config_t *cfg, int n, const char *new_pass)
{
	repo_settings s;
	object_count count = {0};
	repo_t	   *repo;

	if (repo_config_settings(cfg, n, &s) != 0)
		return err_wrap("key-rotate of repository %d", n);
	if (s.cipher == CIPHER_NONE)
	{
		storage_free(s.storage);
		printf("repository %d: not encrypted, nothing to rotate\n", n);
		return 0;
	}
	if (strcmp(s.passphrase, new_pass) == 0)
	{
		storage_free(s.storage);
		return err_set(DRB_ERR_USAGE, "repository %d: the new passphrase is the current one "
					   "(repo%d-cipher-pass): nothing would change", n, n);
	}
	if (repo_key_rotate(&s, new_pass) != 0)
	{
		repo_settings probe = s;

		if (err_kind() != DRB_ERR_CRYPTO)
		{
			storage_free(s.storage);
			return err_wrap("key-rotate of repository %d", n);
		}
		/* the current passphrase is refused: rotated already? */
		{
			drb_err		kind = err_kind();
			char	   *msg = xstrdup(err_msg());

			probe.passphrase = new_pass;
			probe.key_cache_dir = NULL;
			repo = repo_open(&probe);
			if (repo != NULL)
			{
				repo_close(repo);
				free(msg);
				printf("repository %d: already uses the new passphrase, nothing to rotate "
					   "(put it in repo%d-cipher-pass)\n", n, n);
				return 0;
			}
			storage_free(s.storage);
			err_set(kind, "key-rotate of repository %d: %s (repo%d-cipher-pass must hold the "
					"current passphrase)", n, msg, n);
			free(msg);
			return -1;
		}
	}
	if (storage_list(s.storage, "", count_cb, &count) != 0)
	{
		log_warn("repository %d: unable to count its objects: %s", n, err_msg());
		err_clear();
	}
	if (rotation_check(&s, s.passphrase, new_pass) != 0)
		return -1;
	printf("repository %d: data key re-wrapped under the new passphrase (%" PRIu64 " data "
		   "objects untouched)\n", n, count.data);
	fflush(stdout);
	log_info("repository %d: key-rotate complete; the old passphrase is refused from now on", n);
	return 0;
}

/*
 * drbackup key-rotate: every selected repository in order; one that fails does not stop
 * the others. Exit: the first failure's kind, 0 when every repository is rotated (or has
 * nothing to rotate).
 */
int
cmd_key_rotate(config_t *cfg)
{
	int			idx[REPO_MAX];
	int			n = repo_config_selected(cfg, true, idx);
	char	   *pass = new_passphrase(cfg);
	drb_err		first_kind = DRB_OK;
	char	   *first_msg = NULL;
	int			failed = 0;

	if (pass == NULL)
		return -1;
	if (n == 0)
	{
		secure_zero(pass, strlen(pass));
		free(pass);
		return err_set(DRB_ERR_CONFIG, "key-rotate: no repository is configured");
	}
	for (int i = 0; i < n; i++)
	{
		if (rotate_one(cfg, idx[i], pass) == 0)
			continue;
		failed++;
		if (n > 1)
			log_error("%s", err_msg());
		if (first_msg == NULL)
		{
			first_kind = err_kind();
			first_msg = xstrdup(err_msg());
		}
	}
	secure_zero(pass, strlen(pass));
	free(pass);
	fflush(stdout);
	if (failed == 0)
		return 0;
	err_set(first_kind, "%s%s", first_msg, failed > 1 ? " (and other repositories failed: "
			"see above)" : "");
	free(first_msg);
	return -1;
}
