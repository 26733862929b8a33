/*
 * restore_target.c — the recovery target of `drbackup restore`: parsing it from the
 * options, choosing the backup that can reach it (and refusing a target outside the
 * recoverable window), and the recovery settings written into postgresql.auto.conf
 * (restore.h). docs/restore.md describes the rules for users.
 *
 * Times are parsed here rather than by strptime/getdate so that the accepted forms are
 * exactly the documented ones and a time without a zone is UTC whatever TZ says. The time
 * handed to PostgreSQL is the same instant written in UTC with an explicit "+00", so the
 * server's timezone setting cannot change its meaning.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "fileutil.h"
#include "mem.h"
#include "pg.h"
#include "restore.h"

#define AUTO_CONF			"postgresql.auto.conf"
#define AUTO_CONF_TMP		"postgresql.auto.conf.drbtmp"
#define RECOVERY_SIGNAL		"recovery.signal"
#define TIME_FORMAT_HINT	"YYYY-MM-DD HH:MM:SS[.ffffff][+HH[:MM]|Z] (no zone: UTC)"
#define TIME_TEXT_MAX		48
#define RESTORE_POINT_MAX	63	/* PostgreSQL's MAXFNAMELEN - 1 */

/* ---------------------------------------------------------------------------------------
 * Times
 * ------------------------------------------------------------------------------------- */

/* A parsed target time: the instant in whole seconds and the fraction's digits as given. */
typedef struct target_time
{
	int64_t		seconds;		/* UTC, since the epoch */
	char		fraction[7];	/* 0 to 6 digits after the decimal point */
} target_time;

/* Read exactly n digits at *p into *out, advancing *p. */
static bool
read_digits(const char **p, int n, int *out)
{
	int			v = 0;

	for (int i = 0; i < n; i++)
	{
		char		c = (*p)[i];

		if (c < '0' || c > '9')
			return false;
		v = v * 10 + (c - '0');
	}
	*p += n;
	*out = v;
	return true;
}

static int
days_in_month(int year, int month)
{
	static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool		leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

	return month == 2 && leap ? 29 : days[month - 1];
}

static int
time_error(const char *text, const char *why)
{
	return err_set(DRB_ERR_USAGE, "invalid --to-time '%s': %s; expected %s", text, why,
				   TIME_FORMAT_HINT);
}

/*
 * Parse "YYYY-MM-DD HH:MM[:SS[.ffffff]][ ][Z|UTC|GMT|+HH|+HHMM|+HH:MM|-...]" (also 'T'
 * between date and time, ',' as decimal mark, surrounding blanks). No zone means UTC.
 * DRB_ERR_USAGE saying what is wrong.
 */
static int
parse_time(const char *text, target_time *out)
{
	const char *p = text;
	struct tm	tm;
	int			year,
				month,
				day,
				hour,
				minute,
				second = 0;
	int			off_sign = 1,
				off_h = 0,
				off_m = 0;
	size_t		nfrac = 0;
	int64_t		local;

	memset(out, 0, sizeof(*out));
	while (*p == ' ' || *p == '\t')
		p++;
	if (!read_digits(&p, 4, &year) || *p++ != '-' || !read_digits(&p, 2, &month) ||
		*p++ != '-' || !read_digits(&p, 2, &day))
		return time_error(text, "no date YYYY-MM-DD at its start");
	if (*p != ' ' && *p != 'T' && *p != 't')
		return time_error(text, "no time after the date");
	p++;
	if (!read_digits(&p, 2, &hour) || *p++ != ':' || !read_digits(&p, 2, &minute))
		return time_error(text, "no time HH:MM after the date");
	if (*p == ':')
	{
		p++;
		if (!read_digits(&p, 2, &second))
			return time_error(text, "seconds must be two digits");
		if (*p == '.' || *p == ',')
		{
			p++;
			while (p[nfrac] >= '0' && p[nfrac] <= '9')
				nfrac++;
			if (nfrac == 0)
				return time_error(text, "no digits after the decimal mark");
			if (nfrac > 6)
				return time_error(text, "more than 6 fractional digits (PostgreSQL keeps microseconds)");
			memcpy(out->fraction, p, nfrac);
			out->fraction[nfrac] = '\0';
			p += nfrac;
		}
	}
	if (year < 1970 || month < 1 || month > 12 || day < 1 || day > days_in_month(year, month))
		return time_error(text, "no such date");
	if (hour > 23 || minute > 59 || second > 59)
		return time_error(text, "no such time of day");

	while (*p == ' ')
		p++;
	if (*p == 'Z' || *p == 'z')
		p++;
	else if (strncasecmp(p, "UTC", 3) == 0 || strncasecmp(p, "GMT", 3) == 0)
		p += 3;
	else if (*p == '+' || *p == '-')
	{
		off_sign = *p++ == '-' ? -1 : 1;
		if (!read_digits(&p, 2, &off_h))
			return time_error(text, "the offset must start with two digits of hours");
		if (*p == ':')
		{
			p++;
			if (!read_digits(&p, 2, &off_m))
				return time_error(text, "the offset's minutes must be two digits");
		}
		else if (*p >= '0' && *p <= '9' && !read_digits(&p, 2, &off_m))
			return time_error(text, "the offset's minutes must be two digits");
		if (off_h > 15 || off_m > 59)
			return time_error(text, "offset out of range (at most 15:59)");
	}
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p != '\0')
		return time_error(text, "unexpected text after the time");

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = year - 1900;
	tm.tm_mon = month - 1;
	tm.tm_mday = day;
	tm.tm_hour = hour;
	tm.tm_min = minute;
	tm.tm_sec = second;
	local = (int64_t) timegm(&tm);
	out->seconds = local - off_sign * (int64_t) (off_h * 3600 + off_m * 60);
	if (out->seconds < 0)
		return time_error(text, "before 1970-01-01 00:00:00+00");
	return 0;
}

/* "YYYY-MM-DD HH:MM:SS[.fraction]+00" of an instant; out: at least TIME_TEXT_MAX bytes. */
static void
format_utc(int64_t seconds, const char *fraction, char *out, size_t outlen)
{
	time_t		tt = (time_t) seconds;
	struct tm	tm;

	if (gmtime_r(&tt, &tm) == NULL)
	{
		snprintf(out, outlen, "@%" PRId64, seconds);
		return;
	}
	snprintf(out, outlen, "%04d-%02d-%02d %02d:%02d:%02d%s%s+00", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
			 fraction && fraction[0] ? "." : "", fraction ? fraction : "");
}

/* The target time of t in UTC with its fraction, as handed to PostgreSQL. */
static void
target_time_text(const restore_target *t, char *out, size_t outlen)
{
	target_time tt;

	if (t->value && parse_time(t->value, &tt) == 0 && tt.seconds == t->time)
		format_utc(tt.seconds, tt.fraction, out, outlen);
	else
	{
		err_clear();
		format_utc(t->time, NULL, out, outlen);
	}
}

/* ---------------------------------------------------------------------------------------
 * Other target values
 * ------------------------------------------------------------------------------------- */

/*
 * A transaction id as PostgreSQL takes it for recovery_target_xid: decimal, optionally
 * epoch-qualified (64 bits); its 32-bit part must be a normal xid (3 and up).
 */
static bool
xid_valid(const char *text)
{
	size_t		len = strlen(text);
	uint64_t	v;
	char	   *end;

	if (len == 0 || len > 20 || strspn(text, "0123456789") != len)
		return false;
	errno = 0;
	v = strtoull(text, &end, 10);
	return errno == 0 && *end == '\0' && (uint32_t) v >= 3;
}

static bool
has_control_chars(const char *s)
{
	for (; *s; s++)
		if ((unsigned char) *s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

/* current, latest or a timeline number (1 .. 2^32-1, decimal). */
static bool
timeline_valid(const char *text)
{
	size_t		len = strlen(text);
	uint64_t	v;

	if (strcmp(text, "current") == 0 || strcmp(text, "latest") == 0)
		return true;
	if (len == 0 || len > 10 || strspn(text, "0123456789") != len)
		return false;
	v = strtoull(text, NULL, 10);
	return v >= 1 && v <= UINT32_MAX;
}

/* ---------------------------------------------------------------------------------------
 * restore_target_parse
 * ------------------------------------------------------------------------------------- */

int
restore_target_parse(const config_t *cfg, restore_target *t)
{
	static const struct
	{
		const char *option;
		restore_target_kind kind;
	}			targets[] = {
		{"to-time", TARGET_TIME},
		{"to-lsn", TARGET_LSN},
		{"to-xid", TARGET_XID},
		{"to-name", TARGET_NAME},
		{"immediate", TARGET_IMMEDIATE},
	};
	const char *given = NULL;

	memset(t, 0, sizeof(*t));
	t->kind = TARGET_LATEST;
	for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++)
	{
		bool		set;

		if (targets[i].kind == TARGET_IMMEDIATE)
			set = cfg_bool(cfg, targets[i].option);
		else
			set = cfg_str(cfg, targets[i].option) != NULL;
		if (!set)
			continue;
		if (given)
			return err_set(DRB_ERR_USAGE,
						   "--%s and --%s are both given: a restore has one recovery target",
						   given, targets[i].option);
		given = targets[i].option;
		t->kind = targets[i].kind;
		if (targets[i].kind != TARGET_IMMEDIATE)
			t->value = cfg_str(cfg, targets[i].option);
	}

	switch (t->kind)
	{
		case TARGET_TIME:
			{
				target_time tt;

				if (parse_time(t->value, &tt) != 0)
					return -1;
				t->time = tt.seconds;
				break;
			}
		case TARGET_LSN:
			if (lsn_parse(t->value, &t->lsn) != 0)
				return err_set(DRB_ERR_USAGE,
							   "invalid --to-lsn '%s': expected a WAL location X/Y in hex, "
							   "e.g. 0/3000060", t->value);
			break;
		case TARGET_XID:
			if (!xid_valid(t->value))
				return err_set(DRB_ERR_USAGE,
							   "invalid --to-xid '%s': expected a transaction id "
							   "(decimal, 3 or more; as txid_current() shows it)", t->value);
			break;
		case TARGET_NAME:
			if (t->value[0] == '\0' || strlen(t->value) > RESTORE_POINT_MAX ||
				has_control_chars(t->value))
				return err_set(DRB_ERR_USAGE,
							   "invalid --to-name '%s': a restore point name has 1 to %d "
							   "characters and no control characters", t->value,
							   RESTORE_POINT_MAX);
			break;
		case TARGET_LATEST:
		case TARGET_IMMEDIATE:
			break;
	}

	t->action = cfg_str(cfg, "target-action");
	if (t->action == NULL)
		t->action = "pause";
	if (strcmp(t->action, "pause") != 0 && strcmp(t->action, "promote") != 0 &&
		strcmp(t->action, "shutdown") != 0)
		return err_set(DRB_ERR_USAGE,
					   "invalid --target-action '%s': expected pause, promote or shutdown",
					   t->action);
	if (t->kind == TARGET_LATEST && cfg_is_set(cfg, "target-action"))
		return err_set(DRB_ERR_USAGE,
					   "--target-action needs a recovery target (--to-time, --to-lsn, "
					   "--to-xid, --to-name or --immediate): without one PostgreSQL replays "
					   "the whole archive and then promotes");

	t->exclusive = cfg_bool(cfg, "target-exclusive");
	if (t->exclusive && t->kind != TARGET_TIME && t->kind != TARGET_LSN &&
		t->kind != TARGET_XID)
		return err_set(DRB_ERR_USAGE,
					   "--target-exclusive applies to --to-time, --to-lsn and --to-xid only");

	t->timeline = cfg_str(cfg, "target-timeline");
	if (t->timeline && !timeline_valid(t->timeline))
		return err_set(DRB_ERR_USAGE,
					   "invalid --target-timeline '%s': expected current, latest or a "
					   "timeline number", t->timeline);
	return 0;
}

/* ---------------------------------------------------------------------------------------
 * restore_choose_backup
 * ------------------------------------------------------------------------------------- */

/* What one repository can restore. */
typedef struct repo_window
{
	const catalog_backup *oldest;	/* oldest restorable backup; NULL: none */
	const catalog_backup *newest;	/* newest restorable backup */
	int64_t		latest_time;	/* end of the window by archive time */
	uint64_t	latest_lsn;		/* end of the archived WAL */
	int			number;			/* repository number (1..4) for messages */
} repo_window;

/* Is a newer than b? By stop time, then stop LSN, then label. */
static bool
backup_newer(const catalog_backup *a, const catalog_backup *b)
{
	if (a->stop_time != b->stop_time)
		return a->stop_time > b->stop_time;
	if (a->stop_lsn != b->stop_lsn)
		return a->stop_lsn > b->stop_lsn;
	return strcmp(a->label, b->label) > 0;
}

/* All the WAL from the backup's start to its end is in the archive. */
static bool
backup_restorable(const catalog_backup *b, const wal_inventory *inv, char **missing)
{
	if (missing)
		*missing = NULL;
	if (inv == NULL)
		return false;
	return wal_inventory_has_range(inv, b->wal_start, b->wal_stop, missing);
}

/* Segment position of a name for inv's segment size; false when not a segment name. */
static bool
segment_position(const wal_inventory *inv, const char *name, wal_name *w, uint64_t *pos)
{
	if (wal_name_parse(name, w) != 0 || w->kind != WAL_SEGMENT)
	{
		err_clear();
		return false;
	}
	*pos = wal_segment_position(w, inv->seg_size);
	return true;
}

/* How far the archived WAL reaches from a backup. */
typedef struct wal_reach
{
	int64_t		time;			/* by archive time */
	uint64_t	lsn;			/* the end of the last segment */
	char		gap[25];		/* the segment missing after its run ("" when unknown) */
} wal_reach;

/*
 * How far recovery from b can go: the archive time (storage mtime) of the last segment of
 * the unbroken run holding b's first segment — an upper bound of the last commit that run
 * holds — or of the last segment of any run on a later timeline when that is later (a
 * timeline born from a promotion after the backup); never before b's stop. The LSN
 * likewise: the end of that last segment.
 */
static void
backup_reach(const catalog_backup *b, const wal_inventory *inv, wal_reach *out)
{
	wal_name	start;
	uint64_t	start_pos;

	memset(out, 0, sizeof(*out));
	out->time = b->stop_time;
	out->lsn = b->stop_lsn;
	if (inv == NULL || inv->seg_size == 0 ||
		!segment_position(inv, b->wal_start, &start, &start_pos))
		return;
	for (size_t i = 0; i < inv->nranges; i++)
	{
		const wal_range *r = &inv->ranges[i];
		wal_name	first,
					last;
		uint64_t	first_pos,
					last_pos;
		bool		own_run;

		if (!segment_position(inv, r->first, &first, &first_pos) ||
			!segment_position(inv, r->last, &last, &last_pos))
			continue;
		own_run = r->tli == start.tli && first_pos <= start_pos && start_pos <= last_pos;
		if (!own_run && r->tli <= start.tli)
			continue;
		if (own_run)
		{
			wal_name	next;

			wal_segment_next(&last, inv->seg_size, &next);
			snprintf(out->gap, sizeof(out->gap), "%.24s", next.name);
		}
		if (r->last_mtime > out->time)
			out->time = r->last_mtime;
		if ((last_pos + 1) * (uint64_t) inv->seg_size > out->lsn)
			out->lsn = (last_pos + 1) * (uint64_t) inv->seg_size;
	}
}

/*
 * The window of one repository. earliest: the stop of the oldest backup whose WAL is all
 * archived; latest: how far the archived WAL reaches from the newest such backup
 * (backup_reach). A gap in the archive between them leaves targets in it unreachable;
 * restore_choose_backup checks each backup's own reach.
 */
static void
window_compute(const catalog *c, const wal_inventory *inv, repo_window *w)
{
	wal_reach	reach;

	memset(w, 0, sizeof(*w));
	if (c == NULL || inv == NULL || inv->seg_size == 0)
		return;
	for (size_t i = 0; i < c->nbackups; i++)
	{
		const catalog_backup *b = &c->backups[i];

		if (!backup_restorable(b, inv, NULL))
			continue;
		if (w->oldest == NULL || backup_newer(w->oldest, b))
			w->oldest = b;
		if (w->newest == NULL || backup_newer(b, w->newest))
			w->newest = b;
	}
	if (w->newest == NULL)
		return;
	backup_reach(w->newest, inv, &reach);
	w->latest_time = reach.time;
	w->latest_lsn = reach.lsn;
}

bool
restore_window_get(const catalog *c, const wal_inventory *inv, restore_window *out)
{
	repo_window w;

	window_compute(c, inv, &w);
	memset(out, 0, sizeof(*out));
	if (w.oldest == NULL)
		return false;
	out->oldest = w.oldest;
	out->newest = w.newest;
	out->earliest = w.oldest->stop_time;
	out->latest = w.latest_time;
	out->latest_lsn = w.latest_lsn;
	return true;
}

void
restore_backup_reach(const catalog_backup *b, const wal_inventory *inv, int64_t *time,
					 uint64_t *lsn)
{
	wal_reach	reach;

	backup_reach(b, inv, &reach);
	*time = reach.time;
	*lsn = reach.lsn;
}

/* Does b end before the target (so recovery from it can stop there)? */
static bool
backup_reaches(const catalog_backup *b, const restore_target *t)
{
	/* stop_time is the server clock after pg_backup_stop, cut to whole seconds: the
	 * consistency point can lie up to a second after it, so a target in the same second
	 * is not safely reachable from this backup */
	if (t->kind == TARGET_TIME)
		return b->stop_time < t->time;
	if (t->kind == TARGET_LSN)
		return b->stop_lsn <= t->lsn;
	return true;
}

/* Is the target no later than where the archived WAL ends? */
static bool
reach_covers(int64_t time, uint64_t lsn, const restore_target *t)
{
	if (t->kind == TARGET_TIME)
		return t->time <= time;
	if (t->kind == TARGET_LSN)
		return t->lsn <= lsn;
	return true;
}

static bool
window_reaches(const repo_window *w, const restore_target *t)
{
	return reach_covers(w->latest_time, w->latest_lsn, t);
}

/* "the target 2026-11-21 02:30:00+00" / "the target LSN 0/6000000" */
static void
target_describe(const restore_target *t, char *out, size_t outlen)
{
	char		text[TIME_TEXT_MAX];

	if (t->kind == TARGET_TIME)
	{
		target_time_text(t, text, sizeof(text));
		snprintf(out, outlen, "the target %s", text);
	}
	else if (t->kind == TARGET_LSN)
	{
		lsn_format(t->lsn, text, sizeof(text));
		snprintf(out, outlen, "the target LSN %s", text);
	}
	else
		snprintf(out, outlen, "the target");
}

/* "the recoverable window of repository N is A to B" (by time or LSN as the target is). */
static void
window_describe(buf_t *b, const repo_window *w, const restore_target *t)
{
	char		from[TIME_TEXT_MAX],
				to[TIME_TEXT_MAX];

	if (w->oldest == NULL)
	{
		buf_printf(b, "repository %d has no backup whose WAL is all archived", w->number);
		return;
	}
	if (t->kind == TARGET_LSN)
	{
		lsn_format(w->oldest->stop_lsn, from, sizeof(from));
		lsn_format(w->latest_lsn, to, sizeof(to));
	}
	else
	{
		format_utc(w->oldest->stop_time + 1, NULL, from, sizeof(from));	/* see backup_reaches */
		format_utc(w->latest_time, NULL, to, sizeof(to));
	}
	buf_printf(b, "the recoverable window of repository %d is %s to %s", w->number, from, to);
}

/* Why no repository could give a restorable backup at all. */
static int
none_restorable(const catalog *const *cats, const wal_inventory *const *invs, int nrepo,
				const repo_window *w)
{
	buf_t		b;

	buf_init(&b);
	for (int i = 0; i < nrepo; i++)
	{
		if (i > 0)
			buf_append_str(&b, "; ");
		if (cats[i] == NULL || invs[i] == NULL)
			buf_printf(&b, "repository %d could not be read", w[i].number);
		else if (cats[i]->nbackups == 0)
			buf_printf(&b, "repository %d has no backup", w[i].number);
		else
		{
			const catalog_backup *last = &cats[i]->backups[cats[i]->nbackups - 1];
			char	   *missing = NULL;

			backup_restorable(last, invs[i], &missing);
			buf_printf(&b, "repository %d has no backup whose WAL is all archived (backup "
					   "%s lacks WAL segment %s)", w[i].number, last->label,
					   missing ? missing : "?");
			free(missing);
		}
	}
	if (nrepo == 0)
		buf_append_str(&b, "no repository");
	err_set(DRB_ERR_NOT_FOUND, "no backup can be restored: %s", buf_cstr(&b));
	buf_free(&b);
	return -1;
}

/* The why line: which backup, from where, and the reason. */
static char *
why_line(const catalog_backup *b, const restore_target *t, const repo_window *w,
		 bool by_set)
{
	char		stop[TIME_TEXT_MAX],
				lsn[32],
				target[TIME_TEXT_MAX + 32],
				latest[TIME_TEXT_MAX];
	buf_t		out;

	format_utc(b->stop_time, NULL, stop, sizeof(stop));
	lsn_format(b->stop_lsn, lsn, sizeof(lsn));
	target_describe(t, target, sizeof(target));
	format_utc(w->latest_time, NULL, latest, sizeof(latest));
	buf_init(&out);
	buf_printf(&out, "restoring backup %s (%s, stopped %s at %s) from repository %d: ",
			   b->label, backup_type_name(b->type), stop, lsn, w->number);
	if (by_set)
		buf_printf(&out, "chosen with --set");
	else
		switch (t->kind)
		{
			case TARGET_TIME:
			case TARGET_LSN:
				buf_printf(&out, "the newest backup that stopped before %s", target);
				break;
			case TARGET_LATEST:
				buf_printf(&out, "the newest backup; recovery replays the archived WAL to its "
						   "end (last segment archived at %s)", latest);
				break;
			case TARGET_IMMEDIATE:
				buf_printf(&out, "the newest backup; recovery stops as soon as it is "
						   "consistent (at %s)", lsn);
				break;
			case TARGET_XID:
				buf_printf(&out, "the newest backup, as a transaction id cannot be placed in "
						   "time before recovery: if transaction %s committed before this "
						   "backup stopped, recovery ends with an error and an older backup "
						   "must be chosen with --set", t->value);
				break;
			case TARGET_NAME:
				buf_printf(&out, "the newest backup, as a restore point cannot be placed in "
						   "time before recovery: if '%s' was created before this backup "
						   "stopped, recovery ends with an error and an older backup must be "
						   "chosen with --set", t->value);
				break;
		}
	return (char *) buf_cstr(&out);
}

/* --set: the first repository, in order, that lists the backup and can restore it. */
static int
choose_set(const catalog *const *cats, const wal_inventory *const *invs, int nrepo,
		   const repo_window *w, const char *set, const restore_target *t,
		   const catalog_backup **chosen, int *repo_pos)
{
	buf_t		why;
	bool		listed = false;
	drb_err		kind = DRB_ERR_NOT_FOUND;

	buf_init(&why);
	for (int i = 0; i < nrepo; i++)
	{
		const catalog_backup *b = cats[i] ? catalog_find(cats[i], set) : NULL;
		char	   *missing = NULL;
		char		target[TIME_TEXT_MAX + 32];
		char		stop[TIME_TEXT_MAX];
		wal_reach	reach;

		if (b == NULL)
			continue;
		listed = true;
		if (why.len > 0)
			buf_append_str(&why, "; ");
		if (!backup_restorable(b, invs[i], &missing))
		{
			if (invs[i] == NULL)
				buf_printf(&why, "repository %d: its WAL archive could not be listed", w[i].number);
			else
				buf_printf(&why, "repository %d lacks WAL segment %s, needed to make it "
						   "consistent", w[i].number, missing ? missing : "?");
			free(missing);
			continue;
		}
		target_describe(t, target, sizeof(target));
		if (!backup_reaches(b, t))
		{
			if (t->kind == TARGET_LSN)
				lsn_format(b->stop_lsn, stop, sizeof(stop));
			else
				format_utc(b->stop_time, NULL, stop, sizeof(stop));
			buf_printf(&why, "it stopped at %s, after %s (recovery cannot stop before the "
					   "end of the backup; choose an older backup, or leave out --set)",
					   stop, target);
			kind = DRB_ERR_USAGE;
			continue;
		}
		backup_reach(b, invs[i], &reach);
		if (!reach_covers(reach.time, reach.lsn, t))
		{
			buf_printf(&why, "%s is after the end of the WAL archived from it in "
					   "repository %d", target, w[i].number);
			if (reach.gap[0] && window_reaches(&w[i], t))
				buf_printf(&why, " (segment %s is missing)", reach.gap);
			buf_append_str(&why, ": ");
			window_describe(&why, &w[i], t);
			kind = DRB_ERR_USAGE;
			continue;
		}
		*chosen = b;
		*repo_pos = i;
		buf_free(&why);
		return 0;
	}
	if (!listed)
		err_set(DRB_ERR_NOT_FOUND, "backup '%s' is not in the catalog of any repository", set);
	else
		err_set(kind, "backup '%s' cannot be restored: %s", set, buf_cstr(&why));
	buf_free(&why);
	return -1;
}

int
restore_choose_backup(const catalog *const *cats, const wal_inventory *const *invs,
					  const int *numbers, int nrepo, const char *set,
					  const restore_target *t, const catalog_backup **chosen, int *repo_pos,
					  char **why)
{
	repo_window *w = xcalloc(nrepo > 0 ? (size_t) nrepo : 1, sizeof(*w));
	const catalog_backup *best = NULL;
	int			best_pos = -1;
	bool		any_restorable = false;
	const catalog_backup *gap_backup = NULL;
	int			gap_pos = -1;
	char		gap[25] = "";

	*chosen = NULL;
	*repo_pos = -1;
	*why = NULL;
	for (int i = 0; i < nrepo; i++)
	{
		window_compute(cats[i], invs[i], &w[i]);
		w[i].number = numbers ? numbers[i] : i + 1;
		any_restorable |= w[i].oldest != NULL;
	}

	if (set)
	{
		if (choose_set(cats, invs, nrepo, w, set, t, &best, &best_pos) != 0)
		{
			free(w);
			return -1;
		}
		*why = why_line(best, t, &w[best_pos], true);
		*chosen = best;
		*repo_pos = best_pos;
		free(w);
		return 0;
	}

	if (!any_restorable)
	{
		int			rc = none_restorable(cats, invs, nrepo, w);

		free(w);
		return rc;
	}

	/* the newest candidate; on a tie (the same backup) the first repository keeps it */
	for (int i = 0; i < nrepo; i++)
	{
		if (w[i].oldest == NULL || !window_reaches(&w[i], t))
			continue;
		for (size_t j = 0; j < cats[i]->nbackups; j++)
		{
			const catalog_backup *b = &cats[i]->backups[j];
			wal_reach	reach;

			if (!backup_reaches(b, t) || !backup_restorable(b, invs[i], NULL))
				continue;
			backup_reach(b, invs[i], &reach);
			if (!reach_covers(reach.time, reach.lsn, t))
			{
				/* the newest such backup's run ends before the target: a gap */
				if (gap_pos < 0 || backup_newer(b, gap_backup))
				{
					gap_backup = b;
					gap_pos = i;
					snprintf(gap, sizeof(gap), "%s", reach.gap);
				}
				continue;
			}
			if (best == NULL || backup_newer(b, best))
			{
				best = b;
				best_pos = i;
			}
		}
	}

	if (best == NULL)
	{
		char		target[TIME_TEXT_MAX + 32];
		buf_t		msg;

		target_describe(t, target, sizeof(target));
		buf_init(&msg);
		if (gap_pos >= 0 && gap[0])
			buf_printf(&msg, "%s cannot be reached: the WAL archive of repository %d has a "
					   "gap (segment %s is missing) between backup %s and the target; ",
					   target, w[gap_pos].number, gap, gap_backup->label);
		else
			buf_printf(&msg, "%s is outside the recoverable window: ", target);
		for (int i = 0; i < nrepo; i++)
		{
			if (i > 0)
				buf_append_str(&msg, "; ");
			if (cats[i] == NULL || invs[i] == NULL)
				buf_printf(&msg, "repository %d could not be read", w[i].number);
			else
				window_describe(&msg, &w[i], t);
		}
		err_set(DRB_ERR_USAGE, "%s", buf_cstr(&msg));
		buf_free(&msg);
		free(w);
		return -1;
	}

	*why = why_line(best, t, &w[best_pos], false);
	*chosen = best;
	*repo_pos = best_pos;
	free(w);
	return 0;
}

/* ---------------------------------------------------------------------------------------
 * Recovery settings
 * ------------------------------------------------------------------------------------- */

/*
 * name = 'value' as ALTER SYSTEM writes it: inside single quotes PostgreSQL's config lexer
 * (guc-file.l) takes '' for a quote and a backslash as an escape (\n, \t, octal, or the
 * next character itself), so both quotes and backslashes are doubled. A value cannot hold
 * a line break or other control character (ALTER SYSTEM refuses them too).
 */
static int
append_setting(buf_t *b, const char *name, const char *value)
{
	if (has_control_chars(value))
		return err_set(DRB_ERR_USAGE,
					   "the value of %s holds a line break or control character, which "
					   "postgresql.auto.conf cannot hold: %s", name, value);
	buf_printf(b, "%s = '", name);
	for (const char *p = value; *p; p++)
	{
		if (*p == '\'' || *p == '\\')
			buf_append(b, p, 1);
		buf_append(b, p, 1);
	}
	buf_append_str(b, "'\n");
	return 0;
}

char *
restore_recovery_settings(const restore_target *t, const char *restore_cmd)
{
	buf_t		b;
	char		text[TIME_TEXT_MAX];
	int			rc = 0;

	buf_init(&b);
	rc |= append_setting(&b, "restore_command", restore_cmd);
	switch (t->kind)
	{
		case TARGET_LATEST:
			break;
		case TARGET_TIME:
			target_time_text(t, text, sizeof(text));
			rc |= append_setting(&b, "recovery_target_time", text);
			break;
		case TARGET_LSN:
			lsn_format(t->lsn, text, sizeof(text));
			rc |= append_setting(&b, "recovery_target_lsn", text);
			break;
		case TARGET_XID:
			rc |= append_setting(&b, "recovery_target_xid", t->value);
			break;
		case TARGET_NAME:
			rc |= append_setting(&b, "recovery_target_name", t->value);
			break;
		case TARGET_IMMEDIATE:
			rc |= append_setting(&b, "recovery_target", "immediate");
			break;
	}
	if (rc == 0 && (t->kind == TARGET_TIME || t->kind == TARGET_LSN || t->kind == TARGET_XID))
		rc |= append_setting(&b, "recovery_target_inclusive", t->exclusive ? "false" : "true");
	if (rc == 0 && t->kind != TARGET_LATEST)
		rc |= append_setting(&b, "recovery_target_action", t->action ? t->action : "pause");
	if (rc == 0 && t->timeline)
		rc |= append_setting(&b, "recovery_target_timeline", t->timeline);
	if (rc != 0)
	{
		buf_free(&b);
		return NULL;
	}
	return (char *) buf_cstr(&b);
}

/*
 * Is this configuration line a setting of restore_command or recovery_target*? GUC names
 * are case-insensitive; the name may be followed by blanks, '=' or the value.
 */
static bool
is_recovery_line(const char *line, size_t len)
{
	size_t		i = 0,
				start,
				n;
	char		name[64];

	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	start = i;
	while (i < len && (line[i] == '_' || line[i] == '.' ||
					   (line[i] >= 'a' && line[i] <= 'z') ||
					   (line[i] >= 'A' && line[i] <= 'Z') ||
					   (line[i] >= '0' && line[i] <= '9') ||
					   (unsigned char) line[i] >= 0x80))
		i++;
	n = i - start;
	if (n == 0 || n >= sizeof(name))
		return false;
	for (size_t k = 0; k < n; k++)
		name[k] = (line[start + k] >= 'A' && line[start + k] <= 'Z')
			? line[start + k] - 'A' + 'a' : line[start + k];
	name[n] = '\0';
	return strcmp(name, "restore_command") == 0 ||
		(strncmp(name, "recovery_target", 15) == 0 && (name[15] == '\0' || name[15] == '_'));
}

/* Read a whole file; *exists false (and *data NULL) when it does not exist. */
static int
read_file(const char *path, char **data, size_t *len, struct stat *st, bool *exists)
{
	int			fd = open(path, O_RDONLY | O_CLOEXEC);
	buf_t		b;

	*data = NULL;
	*len = 0;
	*exists = false;
	if (fd < 0)
	{
		if (errno == ENOENT)
			return 0;
		return err_set(DRB_ERR_STORAGE, "unable to open '%s': %s", path, strerror(errno));
	}
	if (fstat(fd, st) != 0)
	{
		err_set(DRB_ERR_STORAGE, "unable to stat '%s': %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	buf_init(&b);
	for (;;)
	{
		ssize_t		n;

		buf_reserve(&b, 65536);
		n = read(fd, b.data + b.len, b.cap - b.len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
		{
			err_set(DRB_ERR_STORAGE, "unable to read '%s': %s", path, strerror(errno));
			buf_free(&b);
			close(fd);
			return -1;
		}
		if (n == 0)
			break;
		b.len += (size_t) n;
	}
	close(fd);
	*len = b.len;
	*data = (char *) buf_cstr(&b);
	*exists = true;
	return 0;
}

static int
write_all(int fd, const char *path, const void *data, size_t len)
{
	if (fd_write_all(fd, data, len) != 0)
		return err_set(DRB_ERR_STORAGE, "unable to write '%s': %s", path, strerror(errno));
	return 0;
}

/*
 * Create (or replace) path with data: mode, and owner uid/gid when running as root (the
 * restore may run as root for a cluster owned by postgres); fsynced.
 */
static int
write_new_file(const char *path, const char *data, size_t len, mode_t mode, uid_t uid,
			   gid_t gid)
{
	int			fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	if (fd < 0)
		return err_set(DRB_ERR_STORAGE, "unable to create '%s': %s", path, strerror(errno));
	if (fchmod(fd, mode) != 0 ||
		(geteuid() == 0 && fchown(fd, uid, gid) != 0))
	{
		err_set(DRB_ERR_STORAGE, "unable to set the mode or owner of '%s': %s", path,
				strerror(errno));
		close(fd);
		return -1;
	}
	if (write_all(fd, path, data, len) != 0)
	{
		close(fd);
		return -1;
	}
	if (fsync(fd) != 0)
	{
		err_set(DRB_ERR_STORAGE, "unable to fsync '%s': %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (close(fd) != 0)
		return err_set(DRB_ERR_STORAGE, "unable to close '%s': %s", path, strerror(errno));
	return 0;
}

static int
fsync_dir(const char *dir)
{
	int			fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return err_set(DRB_ERR_STORAGE, "unable to open directory '%s': %s", dir,
					   strerror(errno));
	if (fsync(fd) != 0)
	{
		err_set(DRB_ERR_STORAGE, "unable to fsync directory '%s': %s", dir, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

int
restore_write_recovery(const char *pgdata, const char *settings)
{
	char	   *path = xasprintf("%s/%s", pgdata, AUTO_CONF);
	char	   *tmp = xasprintf("%s/%s", pgdata, AUTO_CONF_TMP);
	char	   *signal = xasprintf("%s/%s", pgdata, RECOVERY_SIGNAL);
	char	   *old = NULL;
	size_t		old_len = 0;
	bool		exists;
	struct stat st,
				dir_st;
	buf_t		out;
	int			rc = -1;

	buf_init(&out);
	if (stat(pgdata, &dir_st) != 0)
	{
		err_set(DRB_ERR_STORAGE, "unable to stat data directory '%s': %s", pgdata,
				strerror(errno));
		goto done;
	}
	if (read_file(path, &old, &old_len, &st, &exists) != 0)
		goto done;
	if (!exists)
	{
		/* what ALTER SYSTEM writes at the top; the file belongs like the directory */
		buf_append_str(&out, "# Do not edit this file manually!\n"
					   "# It will be overwritten by the ALTER SYSTEM command.\n");
		st.st_mode = 0600;
		st.st_uid = dir_st.st_uid;
		st.st_gid = dir_st.st_gid;
	}
	for (size_t pos = 0; pos < old_len;)
	{
		const char *line = old + pos;
		const char *nl = memchr(line, '\n', old_len - pos);
		size_t		len = nl ? (size_t) (nl - line) : old_len - pos;

		if (is_recovery_line(line, len))
			buf_append_str(&out, "# removed by drbackup restore: ");
		buf_append(&out, line, len);
		buf_append_str(&out, "\n");
		pos += len + (nl ? 1 : 0);
	}
	buf_append_str(&out, "# recovery settings written by drbackup restore\n");
	buf_append_str(&out, settings);
	if (out.len > 0 && out.data[out.len - 1] != '\n')
		buf_append_str(&out, "\n");

	if (write_new_file(tmp, (const char *) out.data, out.len, st.st_mode & 07777, st.st_uid,
					   st.st_gid) != 0)
		goto fail_tmp;
	if (rename(tmp, path) != 0)
	{
		err_set(DRB_ERR_STORAGE, "unable to rename '%s' to '%s': %s", tmp, path,
				strerror(errno));
		goto fail_tmp;
	}
	if (write_new_file(signal, "", 0, 0600, dir_st.st_uid, dir_st.st_gid) != 0 ||
		fsync_dir(pgdata) != 0)
		goto done;
	rc = 0;
	goto done;

fail_tmp:
	unlink(tmp);
done:
	if (rc != 0)
		err_wrap("unable to write the recovery settings into '%s'", pgdata);
	buf_free(&out);
	free(old);
	free(path);
	free(tmp);
	free(signal);
	return rc;
}
