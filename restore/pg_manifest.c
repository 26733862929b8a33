/*
 * pg_manifest.c — backup_manifest in PostgreSQL's own format (pg_manifest.h).
 *
 * The text is byte for byte the layout PostgreSQL 13 to 16 writes (version 1; PostgreSQL
 * 17's pg_verifybackup reads version 1 too):
 *
 *   { "PostgreSQL-Backup-Manifest-Version": 1,\n
 *   "Files": [\n
 *   { "Path": "base/1/112", "Size": 8192, "Last-Modified": "2026-11-21 08:33:16 GMT", "Checksum-Algorithm": "SHA256", "Checksum": "<hex>" },\n
 *   ...last file without the comma...\n
 *   ],\n
 *   "WAL-Ranges": [\n
 *   { "Timeline": 1, "Start-LSN": "0/2000028", "End-LSN": "0/2000100" }\n
 *   ],\n
 *   "Manifest-Checksum": "<SHA-256 of every byte above>"}\n
 *
 * A path that is valid UTF-8 is written as a JSON string (", \, and control characters
 * escaped as PostgreSQL's escape_json does); any other path as "Encoded-Path", its bytes in
 * hex, as PostgreSQL does. The text is hashed as it is written, so nothing is read back.
 * pg_manifest_add may be called from several threads at once (restore writes files in
 * parallel); a mutex keeps each line whole.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "error.h"
#include "mem.h"
#include "pg_manifest.h"

#define PG_MANIFEST_FILE	"backup_manifest"
#define PG_MANIFEST_TMP		"backup_manifest.drbtmp"
#define FLUSH_AT			(1024 * 1024)

struct pg_manifest
{
	char	   *dir;
	char	   *path;			/* final name */
	char	   *tmp;			/* the file being written */
	int			fd;
	EVP_MD_CTX *md;				/* SHA-256 of the text up to the checksum line */
	buf_t		pending;		/* text not yet written (hashed already) */
	bool		first_file;
	bool		failed;			/* a write failed: close fails */
	pthread_mutex_t lock;
};

/* Write what is pending to the file. */
static int
flush_pending(pg_manifest *m)
{
	const uint8_t *p = m->pending.data;
	size_t		left = m->pending.len;

	while (left > 0)
	{
		ssize_t		n = write(m->fd, p, left);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
		{
			m->failed = true;
			return err_set(DRB_ERR_STORAGE, "unable to write '%s': %s", m->tmp,
						   strerror(errno));
		}
		p += n;
		left -= (size_t) n;
	}
	buf_reset(&m->pending);
	return 0;
}

/* Append text (hashed when hash) and write it out once enough is pending. */
static int
emit(pg_manifest *m, const char *text, size_t len, bool hash)
{
	if (hash && EVP_DigestUpdate(m->md, text, len) != 1)
	{
		m->failed = true;
		return err_set(DRB_ERR_INTERNAL, "unable to hash '%s'", m->tmp);
	}
	buf_append(&m->pending, text, len);
	if (m->pending.len >= FLUSH_AT)
		return flush_pending(m);
	return 0;
}

/* Is s (len bytes) well-formed UTF-8 (no overlong forms, surrogates or NUL)? */
static bool
utf8_valid(const unsigned char *s, size_t len)
{
	size_t		i = 0;

	while (i < len)
	{
		unsigned char c = s[i];
		size_t		n;
		unsigned char lo = 0x80,
					hi = 0xBF;

		if (c == 0)
			return false;
		if (c < 0x80)
		{
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF)
			n = 2;
		else if (c >= 0xE0 && c <= 0xEF)
		{
			n = 3;
			if (c == 0xE0)
				lo = 0xA0;		/* no overlong form */
			else if (c == 0xED)
				hi = 0x9F;		/* no surrogate */
		}
		else if (c >= 0xF0 && c <= 0xF4)
		{
			n = 4;
			if (c == 0xF0)
				lo = 0x90;
			else if (c == 0xF4)
				hi = 0x8F;		/* nothing above U+10FFFF */
		}
		else
			return false;
		if (i + n > len || s[i + 1] < lo || s[i + 1] > hi)
			return false;
		for (size_t k = 2; k < n; k++)
			if (s[i + k] < 0x80 || s[i + k] > 0xBF)
				return false;
		i += n;
	}
	return true;
}

/* A JSON string as PostgreSQL's escape_json writes it. */
static void
append_json_string(buf_t *b, const char *s)
{
	buf_append_str(b, "\"");
	for (const char *p = s; *p; p++)
	{
		switch (*p)
		{
			case '\b':
				buf_append_str(b, "\\b");
				break;
			case '\f':
				buf_append_str(b, "\\f");
				break;
			case '\n':
				buf_append_str(b, "\\n");
				break;
			case '\r':
				buf_append_str(b, "\\r");
				break;
			case '\t':
				buf_append_str(b, "\\t");
				break;
			case '"':
				buf_append_str(b, "\\\"");
				break;
			case '\\':
				buf_append_str(b, "\\\\");
				break;
			default:
				if ((unsigned char) *p < ' ')
					buf_printf(b, "\\u%04x", (unsigned char) *p);
				else
					buf_append(b, p, 1);
		}
	}
	buf_append_str(b, "\"");
}

pg_manifest *
pg_manifest_open(const char *pgdata)
{
	pg_manifest *m = xcalloc(1, sizeof(*m));
	static const char head[] = "{ \"PostgreSQL-Backup-Manifest-Version\": 1,\n\"Files\": [";

	m->dir = xstrdup(pgdata);
	m->path = xasprintf("%s/%s", pgdata, PG_MANIFEST_FILE);
	m->tmp = xasprintf("%s/%s", pgdata, PG_MANIFEST_TMP);
	m->first_file = true;
	buf_init(&m->pending);
	pthread_mutex_init(&m->lock, NULL);
	m->fd = open(m->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (m->fd < 0)
	{
		err_set(DRB_ERR_STORAGE, "unable to create '%s': %s", m->tmp, strerror(errno));
		pg_manifest_abort(m);
		return NULL;
	}
	m->md = EVP_MD_CTX_new();
	if (m->md == NULL || EVP_DigestInit_ex(m->md, EVP_sha256(), NULL) != 1)
	{
		err_set(DRB_ERR_INTERNAL, "unable to start a SHA-256 digest for '%s'", m->tmp);
		pg_manifest_abort(m);
		return NULL;
	}
	if (emit(m, head, strlen(head), true) != 0)
	{
		pg_manifest_abort(m);
		return NULL;
	}
	return m;
}

int
pg_manifest_add(pg_manifest *m, const char *path, uint64_t size, int64_t mtime,
				const uint8_t sha256[32])
{
	buf_t		line;
	time_t		tt = (time_t) mtime;
	struct tm	tm;
	char		when[64];
	char		hex[65];
	size_t		plen = strlen(path);
	int			rc;

	if (gmtime_r(&tt, &tm) == NULL)
		return err_set(DRB_ERR_INTERNAL, "unable to add '%s' to '%s': modification time %"
					   PRId64 " out of range", path, m->tmp, mtime);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S GMT", &tm);
	hex_encode(sha256, 32, hex);

	buf_init(&line);
	if (utf8_valid((const unsigned char *) path, plen))
	{
		buf_append_str(&line, "{ \"Path\": ");
		append_json_string(&line, path);
		buf_append_str(&line, ", ");
	}
	else
	{
		char	   *enc = xmalloc(2 * plen + 1);

		hex_encode((const uint8_t *) path, plen, enc);
		buf_printf(&line, "{ \"Encoded-Path\": \"%s\", ", enc);
		free(enc);
	}
	buf_printf(&line, "\"Size\": %" PRIu64 ", \"Last-Modified\": \"%s\", "
			   "\"Checksum-Algorithm\": \"SHA256\", \"Checksum\": \"%s\" }", size, when, hex);

	pthread_mutex_lock(&m->lock);
	if (m->failed)
		rc = err_set(DRB_ERR_STORAGE, "unable to add '%s' to '%s': an earlier write failed",
					 path, m->tmp);
	else
	{
		/* each entry ends the previous line: a comma before every entry but the first */
		rc = emit(m, m->first_file ? "\n" : ",\n", m->first_file ? 1 : 2, true);
		if (rc == 0)
			rc = emit(m, (const char *) line.data, line.len, true);
		m->first_file = false;
	}
	pthread_mutex_unlock(&m->lock);
	buf_free(&line);
	return rc;
}

int
pg_manifest_close(pg_manifest *m, uint32_t timeline, uint64_t start_lsn, uint64_t end_lsn)
{
	char		ranges[256];
	uint8_t		digest[32];
	unsigned int dlen = 0;
	char		hex[65];
	char		tail[128];
	int			dfd;

	if (m->failed)
	{
		err_set(DRB_ERR_STORAGE, "unable to finish '%s': an earlier write failed", m->tmp);
		pg_manifest_abort(m);
		return -1;
	}
	snprintf(ranges, sizeof(ranges),
			 "\n],\n\"WAL-Ranges\": [\n{ \"Timeline\": %" PRIu32 ", \"Start-LSN\": \"%X/%X\", "
			 "\"End-LSN\": \"%X/%X\" }\n],\n", timeline,
			 (unsigned int) (start_lsn >> 32), (unsigned int) start_lsn,
			 (unsigned int) (end_lsn >> 32), (unsigned int) end_lsn);
	if (emit(m, ranges, strlen(ranges), true) != 0)
		goto fail;
	if (EVP_DigestFinal_ex(m->md, digest, &dlen) != 1 || dlen != 32)
	{
		err_set(DRB_ERR_INTERNAL, "unable to finish the SHA-256 digest of '%s'", m->tmp);
		goto fail;
	}
	hex_encode(digest, 32, hex);
	snprintf(tail, sizeof(tail), "\"Manifest-Checksum\": \"%s\"}\n", hex);
	if (emit(m, tail, strlen(tail), false) != 0 || flush_pending(m) != 0)
		goto fail;
	if (fsync(m->fd) != 0)
	{
		err_set(DRB_ERR_STORAGE, "unable to fsync '%s': %s", m->tmp, strerror(errno));
		goto fail;
	}
	if (close(m->fd) != 0)
	{
		m->fd = -1;
		err_set(DRB_ERR_STORAGE, "unable to close '%s': %s", m->tmp, strerror(errno));
		goto fail;
	}
	m->fd = -1;
	if (rename(m->tmp, m->path) != 0)
	{
		err_set(DRB_ERR_STORAGE, "unable to rename '%s' to '%s': %s", m->tmp, m->path,
				strerror(errno));
		goto fail;
	}
	dfd = open(m->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) != 0)
	{
		err_set(DRB_ERR_STORAGE, "unable to fsync directory '%s': %s", m->dir,
				strerror(errno));
		if (dfd >= 0)
			close(dfd);
		unlink(m->path);
		goto fail;
	}
	close(dfd);
	free(m->tmp);
	m->tmp = NULL;				/* nothing left to remove */
	pg_manifest_abort(m);
	return 0;

fail:
	pg_manifest_abort(m);
	return -1;
}

void
pg_manifest_abort(pg_manifest *m)
{
	if (m == NULL)
		return;
	if (m->fd >= 0)
		close(m->fd);
	if (m->tmp)
		unlink(m->tmp);
	EVP_MD_CTX_free(m->md);
	buf_free(&m->pending);
	pthread_mutex_destroy(&m->lock);
	free(m->dir);
	free(m->path);
	free(m->tmp);
	free(m);
}
