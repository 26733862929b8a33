/*
 * log.c — console/file logging with secret redaction (see log.h).
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "log.h"
#include "mem.h"

static const char *const level_names[] = {"off", "error", "warn", "info", "detail", "debug", "trace"};

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static log_level console_level = LOG_WARN;
static log_level file_level = LOG_OFF;
static FILE *log_file = NULL;
static char **secrets = NULL;
static size_t nsecrets = 0;

int
log_level_parse(const char *name)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (strcmp(name, level_names[i]) == 0)
			return (int) i;
	return -1;
}

const char *
log_level_name(log_level level)
{
	return level_names[level];
}

void
log_set_console_level(log_level level)
{
	console_level = level;
}

log_level
log_console_level(void)
{
	return console_level;
}

int
log_open_file(const char *path, log_level level)
{
	FILE	   *f = fopen(path, "a");

	if (f == NULL)
		return err_set(DRB_ERR_CONFIG, "unable to open log file '%s': %m", path);
	pthread_mutex_lock(&log_lock);
	if (log_file)
		fclose(log_file);
	log_file = f;
	file_level = level;
	pthread_mutex_unlock(&log_lock);
	return 0;
}

void
log_close(void)
{
	pthread_mutex_lock(&log_lock);
	if (log_file)
		fclose(log_file);
	log_file = NULL;
	file_level = LOG_OFF;
	pthread_mutex_unlock(&log_lock);
}

void
log_register_secret(const char *secret)
{
	if (secret == NULL || secret[0] == '\0')
		return;
	pthread_mutex_lock(&log_lock);
	secrets = xrealloc(secrets, (nsecrets + 1) * sizeof(char *));
	secrets[nsecrets++] = xstrdup(secret);
	pthread_mutex_unlock(&log_lock);
}

void
log_forget_secrets(void)
{
	pthread_mutex_lock(&log_lock);
	for (size_t i = 0; i < nsecrets; i++)
	{
		secure_zero(secrets[i], strlen(secrets[i]));
		free(secrets[i]);
	}
	free(secrets);
	secrets = NULL;
	nsecrets = 0;
	pthread_mutex_unlock(&log_lock);
}

/* Caller holds log_lock (or accepts a racy read of the secret list at start-up). */
static char *
redact_locked(const char *text)
{
	buf_t		out;
	const char *p = text;

	buf_init(&out);
	while (*p)
	{
		size_t		matched = 0;

		for (size_t i = 0; i < nsecrets; i++)
		{
			size_t		n = strlen(secrets[i]);

			if (n && strncmp(p, secrets[i], n) == 0 && n > matched)
				matched = n;
		}
		if (matched)
		{
			buf_append_str(&out, "<redacted>");
			p += matched;
		}
		else
			buf_append(&out, p++, 1);
	}
	buf_cstr(&out);
	return (char *) out.data;
}

char *
log_redact(const char *text)
{
	char	   *r;

	pthread_mutex_lock(&log_lock);
	r = redact_locked(text);
	pthread_mutex_unlock(&log_lock);
	return r;
}

void
log_write(log_level level, const char *fmt,...)
{
	char		msg[4096];
	va_list		ap;

	if (level > console_level && level > file_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	pthread_mutex_lock(&log_lock);
	char	   *clean = redact_locked(msg);

	if (level <= console_level)
	{
		if (level == LOG_ERROR)
			fprintf(stderr, "drbackup: ERROR: %s\n", clean);
		else if (level == LOG_WARN)
			fprintf(stderr, "drbackup: WARN: %s\n", clean);
		else
			fprintf(stderr, "drbackup: %s\n", clean);
	}
	if (log_file && level <= file_level)
	{
		struct timeval tv;
		struct tm	tm;
		char		stamp[32];

		gettimeofday(&tv, NULL);
		gmtime_r(&tv.tv_sec, &tm);
		strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
		fprintf(log_file, "%s.%03d P%05d %6s: %s\n", stamp, (int) (tv.tv_usec / 1000),
				(int) getpid(), level_names[level], clean);
		fflush(log_file);
	}
	free(clean);
	pthread_mutex_unlock(&log_lock);
}
