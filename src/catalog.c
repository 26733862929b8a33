/*
 * catalog.c — the backup catalog of a stanza, and backup labels (see catalog.h; the format,
 * field by field, is in docs/backup-format.md).
 *
 * The catalog is one JSON document (two-space indentation, newline-terminated) written
 * with repo_put_buf to backup.catalog, then to backup.catalog.copy. Reading parses and
 * checks all of it before anything reaches the caller, the copy standing in for a main
 * object that is missing, damaged or refused.
 *
 * Decisions beyond catalog.h:
 * - A catalog is refused (DRB_ERR_INTEGRITY) unless: format 1; "stanza" is the stanza
 *   asked for; labels valid and strictly increasing; each type matching its label's letter;
 *   a parent exactly for diff/incr, an earlier backup of the same chain; references
 *   strictly increasing labels of the backup's chain, ending with its own label; LSNs,
 *   system id, WAL segment names and size, SHA-256 well formed; no unknown field.
 * - catalog_write checks the text it is about to store with the same parser and refuses
 *   (DRB_ERR_INTERNAL) a catalog that catalog_read would refuse.
 * - When neither object exists the catalog is empty. When both fail the error is the main
 *   object's with the copy's failure appended, except when the main object is missing:
 *   then it is the copy's. On failure *out is left zeroed (catalog_free is safe, and not
 *   needed).
 * - Free text of a restore test (target, failed check) that is not valid UTF-8 is stored
 *   with its non-ASCII bytes replaced by '?'.
 * - catalog_latest: the newest backup is the one whose own time (the last timestamp of its
 *   label) is latest; ties go to the later label.
 * - backup_label_make returns NULL (DRB_ERR_INTERNAL) for a diff/incr without a valid
 *   full_label (any label of the chain will do: its first 16 characters are used) or a time
 *   outside the years 1000-9999.
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "catalog.h"
#include "error.h"
#include "jsonutil.h"
#include "log.h"
#include "mem.h"
#include "pg.h"


/* ------------------------------------------------------------------------------------ */
/* Labels                                                                               */
/* ------------------------------------------------------------------------------------ */

/* Two decimal digits at s. */
static int
two_digits(const char *s)
{
	return (s[0] - '0') * 10 + (s[1] - '0');
}

/* "YYYYMMDD-HHMMSS" (15 characters) with plausible month, day and time. */
static bool
stamp_valid(const char *s)
{
	for (int i = 0; i < 15; i++)
		if (i == 8 ? s[i] != '-' : (s[i] < '0' || s[i] > '9'))
			return false;
	return two_digits(s + 4) >= 1 && two_digits(s + 4) <= 12 &&
		two_digits(s + 6) >= 1 && two_digits(s + 6) <= 31 &&
		two_digits(s + 9) <= 23 && two_digits(s + 11) <= 59 && two_digits(s + 13) <= 59;
}

bool
backup_label_valid(const char *label)
{
	size_t		len = label ? strnlen(label, 34) : 0;

	if (len == 16)
		return stamp_valid(label) && label[15] == 'F';
	if (len == 33)
		return stamp_valid(label) && label[15] == 'F' && label[16] == '_' &&
			stamp_valid(label + 17) && (label[32] == 'D' || label[32] == 'I');
	return false;
}

int
backup_label_type(const char *label)
{
	if (!backup_label_valid(label))
		return -1;
	switch (label[strlen(label) - 1])
	{
		case 'F':
			return BACKUP_FULL;
		case 'D':
			return BACKUP_DIFF;
		default:
			return BACKUP_INCR;
	}
}

bool
backup_label_in_chain(const char *label, const char *ref)
{
	return backup_label_valid(label) && backup_label_valid(ref) &&
		strncmp(label, ref, 16) == 0 && strcmp(ref, label) <= 0;
}

char *
backup_label_make(backup_type type, const char *full_label, int64_t when)
{
	time_t		t = (time_t) when;
	struct tm	tm;
	char		stamp[32];

	if (gmtime_r(&t, &tm) == NULL || tm.tm_year + 1900 < 1000 || tm.tm_year + 1900 > 9999)
	{
		err_set(DRB_ERR_INTERNAL, "time %" PRId64 " cannot make a backup label", when);
		return NULL;
	}
	strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
	if (type == BACKUP_FULL)
		return xasprintf("%sF", stamp);
	if (!backup_label_valid(full_label))
	{
		err_set(DRB_ERR_INTERNAL, "a %s backup needs the label of its full backup, not '%s'",
				backup_type_name(type), full_label ? full_label : "");
		return NULL;
	}
	return xasprintf("%.16s_%s%c", full_label, stamp, type == BACKUP_DIFF ? 'D' : 'I');
}

/* The label's own timestamp (its last 15 characters before the type letter). */
static const char *
label_own_stamp(const char *label)
{
	size_t		len = strlen(label);

	return len >= 16 ? label + len - 16 : label;
}

/* ------------------------------------------------------------------------------------ */
/* Records in memory                                                                    */
/* ------------------------------------------------------------------------------------ */

void
catalog_init(catalog *c, const char *stanza)
{
	memset(c, 0, sizeof(*c));
	c->stanza = xstrdup(stanza);
}

void
catalog_backup_clear(catalog_backup *b)
{
	if (b == NULL)
		return;
	free(b->label);
	free(b->parent);
	for (size_t i = 0; i < b->nreferences; i++)
		free(b->references[i]);
	free(b->references);
	free(b->restore_test.target);
	free(b->restore_test.failed_check);
	memset(b, 0, sizeof(*b));
}

void
catalog_free(catalog *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->nbackups; i++)
		catalog_backup_clear(&c->backups[i]);
	free(c->backups);
	free(c->stanza);
	memset(c, 0, sizeof(*c));
}

static char *
dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static void
backup_copy(catalog_backup *dst, const catalog_backup *src)
{
	*dst = *src;
	dst->label = dup_or_null(src->label);
	dst->parent = dup_or_null(src->parent);
	dst->references = src->nreferences ? xcalloc(src->nreferences, sizeof(char *)) : NULL;
	for (size_t i = 0; i < src->nreferences; i++)
		dst->references[i] = xstrdup(src->references[i]);
	dst->restore_test.target = dup_or_null(src->restore_test.target);
	dst->restore_test.failed_check = dup_or_null(src->restore_test.failed_check);
}

catalog_backup *
catalog_find(const catalog *c, const char *label)
{
	for (size_t i = 0; i < c->nbackups; i++)
		if (strcmp(c->backups[i].label, label) == 0)
			return &c->backups[i];
	return NULL;
}

catalog_backup *
catalog_latest(const catalog *c, int type)
{
	catalog_backup *best = NULL;

	for (size_t i = 0; i < c->nbackups; i++)
	{
		catalog_backup *b = &c->backups[i];

		if (type >= 0 && (int) b->type != type)
			continue;
		if (best == NULL ||
			strncmp(label_own_stamp(b->label), label_own_stamp(best->label), 15) >= 0)
			best = b;
	}
	return best;
}

void
catalog_add(catalog *c, const catalog_backup *b)
{
	size_t		i = 0;

	while (i < c->nbackups && strcmp(c->backups[i].label, b->label) < 0)
		i++;
	if (i < c->nbackups && strcmp(c->backups[i].label, b->label) == 0)
	{
		catalog_backup_clear(&c->backups[i]);
		backup_copy(&c->backups[i], b);
		return;
	}
	c->backups = xrealloc(c->backups, (c->nbackups + 1) * sizeof(catalog_backup));
	memmove(&c->backups[i + 1], &c->backups[i], (c->nbackups - i) * sizeof(catalog_backup));
	backup_copy(&c->backups[i], b);
	c->nbackups++;
}

void
catalog_remove(catalog *c, const char *label)
{
	catalog_backup *b = catalog_find(c, label);
	size_t		i;

	if (b == NULL)
		return;
	i = (size_t) (b - c->backups);
	catalog_backup_clear(b);
	memmove(&c->backups[i], &c->backups[i + 1], (c->nbackups - i - 1) * sizeof(catalog_backup));
	c->nbackups--;
}

void
catalog_backup_from_header(catalog_backup *b, const manifest_header *h,
						   const catalog_backup *parent, double duration,
						   const uint8_t manifest_sha256[32])
{
	size_t		n = parent ? parent->nreferences : 0;

	memset(b, 0, sizeof(*b));
	b->label = xstrdup(h->label);
	b->type = h->type;
	b->parent = dup_or_null(h->parent);
	b->references = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		if (strcmp(parent->references[i], h->label) != 0)
			b->references[b->nreferences++] = xstrdup(parent->references[i]);
	b->references[b->nreferences++] = xstrdup(h->label);
	b->system_id = h->system_id;
	b->pg_version = h->pg_version;
	b->timeline = h->timeline;
	b->start_lsn = h->start_lsn;
	b->stop_lsn = h->stop_lsn;
	b->start_time = h->start_time;
	b->stop_time = h->stop_time;
	memcpy(b->wal_start, h->wal_start, sizeof(b->wal_start));
	memcpy(b->wal_stop, h->wal_stop, sizeof(b->wal_stop));
	b->wal_segment_size = h->wal_segment_size;
	b->file_count = h->file_count;
	b->size = h->size;
	b->size_copied = h->size_copied;
	b->repo_size = h->repo_size;
	b->damaged_pages = h->damaged_pages;
	b->duration = duration;
	if (manifest_sha256)
		memcpy(b->manifest_sha256, manifest_sha256, 32);
}

/* ------------------------------------------------------------------------------------ */
/* JSON out                                                                             */
/* ------------------------------------------------------------------------------------ */

static json_t *
u64_json(uint64_t v)
{
	return json_integer(v > INT64_MAX ? -1 : (json_int_t) v);	/* -1: refused by the check */
}

static json_t *
backup_to_json(const catalog_backup *b)
{
	json_t	   *o = json_object();
	json_t	   *refs = json_array();
	char		text[65];

	json_object_set_new(o, "label", jval_text(b->label));
	json_object_set_new(o, "type", json_string(backup_type_name(b->type)));
	json_object_set_new(o, "parent", jval_text(b->parent));
	for (size_t i = 0; i < b->nreferences; i++)
		json_array_append_new(refs, jval_text(b->references[i]));
	json_object_set_new(o, "references", refs);
	snprintf(text, sizeof(text), "%" PRIu64, b->system_id);
	json_object_set_new(o, "system-id", json_string(text));
	json_object_set_new(o, "pg-version", json_integer(b->pg_version));
	json_object_set_new(o, "timeline", json_integer(b->timeline));
	lsn_format(b->start_lsn, text, sizeof(text));
	json_object_set_new(o, "start-lsn", json_string(text));
	lsn_format(b->stop_lsn, text, sizeof(text));
	json_object_set_new(o, "stop-lsn", json_string(text));
	json_object_set_new(o, "start-time", json_integer(b->start_time));
	json_object_set_new(o, "stop-time", json_integer(b->stop_time));
	snprintf(text, sizeof(text), "%.24s", b->wal_start);
	json_object_set_new(o, "wal-start", jval_text(text));
	snprintf(text, sizeof(text), "%.24s", b->wal_stop);
	json_object_set_new(o, "wal-stop", jval_text(text));
	json_object_set_new(o, "wal-segment-size", json_integer(b->wal_segment_size));
	json_object_set_new(o, "file-count", u64_json(b->file_count));
	json_object_set_new(o, "size", u64_json(b->size));
	json_object_set_new(o, "size-copied", u64_json(b->size_copied));
	json_object_set_new(o, "repo-size", u64_json(b->repo_size));
	json_object_set_new(o, "damaged-pages", u64_json(b->damaged_pages));
	json_object_set_new(o, "duration", json_real(b->duration));
	hex_encode(b->manifest_sha256, 32, text);
	json_object_set_new(o, "manifest-sha256", json_string(text));
	if (b->restore_test.present)
	{
		const catalog_restore_test *t = &b->restore_test;
		json_t	   *rt = json_object();

		json_object_set_new(rt, "success", json_boolean(t->success));
		json_object_set_new(rt, "time", json_integer(t->time));
		json_object_set_new(rt, "duration", json_real(t->duration));
		json_object_set_new(rt, "target", jval_text(t->target));
		json_object_set_new(rt, "failed-check", jval_text(t->failed_check));
		json_object_set_new(o, "restore-test", rt);
	}
	return o;
}

/* ------------------------------------------------------------------------------------ */
/* JSON in (hostile input)                                                              */
/* ------------------------------------------------------------------------------------ */

static bool
i64_get(json_t *obj, const char *key, int64_t *out, char *why)
{
	json_int_t	v;

	if (!jfield_int(obj, key, INT64_MIN, INT64_MAX, &v, why))
		return false;
	*out = v;
	return true;
}

static bool
duration_get(json_t *obj, const char *key, double *out, char *why)
{
	json_t	   *v = json_object_get(obj, key);

	if (!json_is_number(v) || !isfinite(json_number_value(v)) || json_number_value(v) < 0)
		return jfield_why(why, "\"%s\" is not a number of seconds", key);
	*out = json_number_value(v);
	return true;
}

static bool
wal_get(json_t *obj, const char *key, char out[25], char *why)
{
	const char *text;

	if (!jfield_str(obj, key, true, &text, why))
		return false;
	if (!manifest_wal_segment_valid(text))
		return jfield_why(why, "\"%s\" is not a WAL segment name", key);
	memcpy(out, text, 25);
	return true;
}

static const char *const restore_test_keys[] = {
	"success", "time", "duration", "target", "failed-check", NULL
};

static bool
restore_test_get(json_t *o, catalog_restore_test *t, char *why)
{
	json_t	   *rt = json_object_get(o, "restore-test");
	json_t	   *success;
	const char *text;

	if (rt == NULL)
		return true;
	if (!json_is_object(rt) || !jfield_keys_allowed(rt, restore_test_keys, why))
		return jfield_why(why, "\"restore-test\" is not a restore test record");
	success = json_object_get(rt, "success");
	if (!json_is_boolean(success))
		return jfield_why(why, "\"success\" is not true or false");
	t->present = true;
	t->success = json_is_true(success);
	if (!i64_get(rt, "time", &t->time, why) || !duration_get(rt, "duration", &t->duration, why))
		return false;
	if (!jfield_str(rt, "target", false, &text, why))
		return false;
	t->target = dup_or_null(text);
	if (!jfield_str(rt, "failed-check", false, &text, why))
		return false;
	t->failed_check = dup_or_null(text);
	return true;
}

static bool
references_get(json_t *o, catalog_backup *b, char *why)
{
	json_t	   *refs = json_object_get(o, "references");
	json_t	   *r;
	size_t		i;

	if (!json_is_array(refs) || json_array_size(refs) == 0)
		return jfield_why(why, "\"references\" is not a list of labels");
	b->references = xcalloc(json_array_size(refs), sizeof(char *));
	json_array_foreach(refs, i, r)
	{
		const char *ref = json_is_string(r) ? json_string_value(r) : NULL;

		if (!backup_label_in_chain(b->label, ref))
			return jfield_why(why, "reference %zu is not a backup of the chain of '%s'", i, b->label);
		if (i > 0 && strcmp(b->references[i - 1], ref) >= 0)
			return jfield_why(why, "the references of '%s' are not in label order", b->label);
		b->references[b->nreferences++] = xstrdup(ref);
	}
	if (strcmp(b->references[b->nreferences - 1], b->label) != 0)
		return jfield_why(why, "the references of '%s' do not include itself", b->label);
	return true;
}

static const char *const backup_keys[] = {
	"label", "type", "parent", "references", "system-id", "pg-version", "timeline",
	"start-lsn", "stop-lsn", "start-time", "stop-time", "wal-start", "wal-stop",
	"wal-segment-size", "file-count", "size", "size-copied", "repo-size", "damaged-pages",
	"duration", "manifest-sha256", "restore-test", NULL
};

/* One record; b zeroed here, cleared by the caller on failure too. */
static bool
backup_from_json(json_t *o, catalog_backup *b, char *why)
{
	const char *text;
	json_int_t	v;

	memset(b, 0, sizeof(*b));
	if (!json_is_object(o))
		return jfield_why(why, "not an object");
	if (!jfield_keys_allowed(o, backup_keys, why) || !jfield_str(o, "label", true, &text, why))
		return false;
	if (!backup_label_valid(text))
		return jfield_why(why, "\"label\" is not a backup label");
	b->label = xstrdup(text);
	if (!jfield_str(o, "type", true, &text, why))
		return false;
	if (backup_type_parse(text) < 0 || backup_type_parse(text) != backup_label_type(b->label))
		return jfield_why(why, "the type of '%s' is not the one its label names", b->label);
	b->type = (backup_type) backup_type_parse(text);
	if (!jfield_str(o, "parent", false, &text, why))
		return false;
	if (b->type == BACKUP_FULL ? text != NULL :
		text == NULL || strcmp(text, b->label) == 0 || !backup_label_in_chain(b->label, text))
		return jfield_why(why, "the parent of '%s' is not an earlier backup of its chain", b->label);
	b->parent = dup_or_null(text);
	if (!references_get(o, b, why))
		return false;
	if (!jfield_str(o, "system-id", true, &text, why))
		return false;
	if (!manifest_sysid_parse(text, &b->system_id))
		return jfield_why(why, "\"system-id\" is not a decimal number");
	if (!jfield_int(o, "pg-version", 1, INT32_MAX, &v, why))
		return false;
	b->pg_version = (int) v;
	if (!jfield_int(o, "timeline", 1, UINT32_MAX, &v, why))
		return false;
	b->timeline = (uint32_t) v;
	if (!manifest_jfield_lsn(o, "start-lsn", &b->start_lsn, why) ||
		!manifest_jfield_lsn(o, "stop-lsn", &b->stop_lsn, why))
		return false;
	if (b->start_lsn > b->stop_lsn)
		return jfield_why(why, "the start LSN of '%s' is after its stop LSN", b->label);
	if (!i64_get(o, "start-time", &b->start_time, why) ||
		!i64_get(o, "stop-time", &b->stop_time, why) ||
		!wal_get(o, "wal-start", b->wal_start, why) || !wal_get(o, "wal-stop", b->wal_stop, why))
		return false;
	if (!jfield_int(o, "wal-segment-size", 0, UINT32_MAX, &v, why))
		return false;
	if (!manifest_wal_segment_size_valid((uint64_t) v))
		return jfield_why(why, "\"wal-segment-size\" is not a power of two from 1 MiB to 1 GiB");
	b->wal_segment_size = (uint32_t) v;
	if (!jfield_u64(o, "file-count", &b->file_count, why) || !jfield_u64(o, "size", &b->size, why) ||
		!jfield_u64(o, "size-copied", &b->size_copied, why) ||
		!jfield_u64(o, "repo-size", &b->repo_size, why) ||
		!jfield_u64(o, "damaged-pages", &b->damaged_pages, why) ||
		!duration_get(o, "duration", &b->duration, why))
		return false;
	if (!jfield_str(o, "manifest-sha256", true, &text, why))
		return false;
	if (strlen(text) != 64 || hex_decode(text, b->manifest_sha256, 32) != 0)
		return jfield_why(why, "\"manifest-sha256\" is not a SHA-256 in hex");
	return restore_test_get(o, &b->restore_test, why);
}

static const char *const catalog_keys[] = {"format", "stanza", "backups", NULL};

/* Parse and check a whole catalog into out (an initialised catalog, filled on success). */
static int
catalog_parse(const char *path, const char *stanza, const buf_t *data, catalog *out)
{
	json_error_t jerr;
	json_t	   *root = json_loadb((const char *) data->data, data->len, JSON_REJECT_DUPLICATES,
								  &jerr);
	json_t	   *backups;
	json_t	   *o;
	json_int_t	format;
	const char *name;
	char		why[JFIELD_WHY_SIZE];
	catalog		c;
	size_t		i;
	bool		ok;

	if (root == NULL)
		return err_set(DRB_ERR_INTEGRITY, "backup catalog '%s' is not valid JSON: %s (line %d)",
					   path, jerr.text, jerr.line);
	if (!json_is_object(root) || !jfield_keys_allowed(root, catalog_keys, why) ||
		!jfield_int(root, "format", CATALOG_FORMAT, CATALOG_FORMAT, &format, why) ||
		!jfield_str(root, "stanza", true, &name, why) ||
		!json_is_array(backups = json_object_get(root, "backups")))
	{
		json_decref(root);
		return err_set(DRB_ERR_INTEGRITY, "backup catalog '%s' is not a catalog of format %d "
					   "(a JSON object with format, stanza and backups)", path, CATALOG_FORMAT);
	}
	if (strcmp(name, stanza) != 0)
	{
		json_decref(root);
		return err_set(DRB_ERR_INTEGRITY, "backup catalog '%s' is the catalog of another stanza",
					   path);
	}
	catalog_init(&c, stanza);
	c.backups = xcalloc(json_array_size(backups) + 1, sizeof(catalog_backup));
	ok = true;
	json_array_foreach(backups, i, o)
	{
		catalog_backup *b = &c.backups[i];

		ok = backup_from_json(o, b, why);
		c.nbackups = i + 1;
		if (ok && i > 0 && strcmp(c.backups[i - 1].label, b->label) >= 0)
			ok = jfield_why(why, "'%s' does not come after '%s' (labels out of order)", b->label,
						 c.backups[i - 1].label);
		if (!ok)
			break;
	}
	json_decref(root);
	if (!ok)
	{
		catalog_free(&c);
		return err_set(DRB_ERR_INTEGRITY, "backup catalog '%s', backup %zu: %s", path, i, why);
	}
	catalog_free(out);
	*out = c;
	return 0;
}

/* ------------------------------------------------------------------------------------ */
/* Repository                                                                           */
/* ------------------------------------------------------------------------------------ */

static char *
catalog_path(const char *stanza, const char *file)
{
	return xasprintf("stanza/%s/backup/%s", stanza, file);
}

static int
catalog_read_one(repo_t *repo, const char *path, const char *stanza, catalog *out)
{
	buf_t		data;
	int			rc;

	buf_init(&data);
	rc = repo_get_buf(repo, path, &data, NULL);
	if (rc == 0 && catalog_parse(path, stanza, &data, out) != 0)
		rc = err_wrap("repository %d", repo_index(repo));
	buf_free(&data);
	return rc;
}

int
catalog_read(repo_t *repo, const char *stanza, catalog *out)
{
	char	   *main_path = catalog_path(stanza, CATALOG_FILE);
	char	   *copy_path = catalog_path(stanza, CATALOG_FILE_COPY);
	int			rc;

	catalog_init(out, stanza);
	rc = catalog_read_one(repo, main_path, stanza, out);
	if (rc != 0)
	{
		drb_err		main_kind = err_kind();
		char	   *main_msg = xstrdup(err_msg());

		rc = catalog_read_one(repo, copy_path, stanza, out);
		if (rc == 0 && main_kind == DRB_ERR_NOT_FOUND)
			log_warn("backup catalog '%s' is missing from repository %d; using the copy '%s'",
					 main_path, repo_index(repo), copy_path);
		else if (rc == 0)
			log_warn("%s; using the copy '%s'", main_msg, copy_path);
		else if (main_kind == DRB_ERR_NOT_FOUND && err_kind() == DRB_ERR_NOT_FOUND)
		{
			err_clear();		/* no backup yet */
			rc = 0;
		}
		else if (main_kind != DRB_ERR_NOT_FOUND)
		{
			char	   *copy_msg = xstrdup(err_msg());

			if (err_kind() == DRB_ERR_NOT_FOUND)
				err_set(main_kind, "%s (and there is no copy '%s')", main_msg, copy_path);
			else
				err_set(main_kind, "%s (the copy failed too: %s)", main_msg, copy_msg);
			free(copy_msg);
		}
		free(main_msg);
	}
	if (rc != 0)
		catalog_free(out);		/* zeroed: nothing for the caller to free */
	free(main_path);
	free(copy_path);
	return rc;
}

int
catalog_write(repo_t *repo, const catalog *c)
{
	const char *files[] = {CATALOG_FILE, CATALOG_FILE_COPY};
	json_t	   *root = json_object();
	json_t	   *backups = json_array();
	char	   *text;
	char	   *path;
	buf_t		data;
	catalog		check;
	int			rc = 0;

	for (size_t i = 0; i < c->nbackups; i++)
		json_array_append_new(backups, backup_to_json(&c->backups[i]));
	json_object_set_new(root, "format", json_integer(CATALOG_FORMAT));
	json_object_set_new(root, "stanza", jval_text(c->stanza));
	json_object_set_new(root, "backups", backups);
	text = json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(15));
	json_decref(root);
	if (text == NULL)
		return err_set(DRB_ERR_INTERNAL, "unable to format the backup catalog of stanza '%s'",
					   c->stanza);
	buf_init(&data);
	buf_append_str(&data, text);
	buf_append(&data, "\n", 1);
	free(text);

	/* never store what catalog_read would refuse */
	path = catalog_path(c->stanza, CATALOG_FILE);
	catalog_init(&check, c->stanza);
	if (catalog_parse(path, c->stanza, &data, &check) != 0)
	{
		char	   *msg = xstrdup(err_msg());

		rc = err_set(DRB_ERR_INTERNAL, "refusing to write an invalid catalog: %s", msg);
		free(msg);
	}
	catalog_free(&check);
	free(path);

	for (int i = 0; i < 2 && rc == 0; i++)
	{
		path = catalog_path(c->stanza, files[i]);
		rc = repo_put_buf(repo, path, data.data, data.len, NULL);
		if (rc != 0)
			err_wrap("unable to write backup catalog '%s'", path);
		free(path);
	}
	buf_free(&data);
	return rc;
}
