/*
 * log.c — console/file logging with secret redaction (see log.h).
 *
 * One mutex guards the secret list and the file descriptor. Each line is formatted,
 * redacted and then written with a single write() per destination, so neither threads
 * (mutex) nor processes sharing a log file (O_APPEND) interleave partial lines.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "log.h"
#include "mem.h"

#define LOG_DIR_MODE	0750
#define LOG_FILE_MODE	0640

static const char *const level_names[] = {"off", "error", "warn", "info", "detail", "debug", "trace"};
static const char *const level_tags[] = {"OFF", "ERROR", "WARN", "INFO", "DETAIL", "DEBUG", "TRACE"};

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static log_level console_level = LOG_WARN;
static log_level file_level = LOG_OFF;
static int	log_fd = -1;
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

bool
log_enabled(log_level level)
{
	return level != LOG_OFF && (level <= console_level || level <= file_level);
}

/* mkdir -p of the directory part of path; directories made here get exactly dir mode. */
static int
make_parent_dirs(const char *path)
{
	char	   *dir = xstrdup(path);
	char	   *slash = strrchr(dir, '/');

	if (slash == NULL || slash == dir)
	{
		free(dir);
		return 0;
	}
	*slash = '\0';
	for (char *p = dir + 1;; p++)
	{
		if (*p != '/' && *p != '\0')
			continue;

		char		saved = *p;

		*p = '\0';
		if (mkdir(dir, LOG_DIR_MODE) == 0)
			chmod(dir, LOG_DIR_MODE);	/* the umask may have narrowed it */
		else if (errno != EEXIST)
		{
			err_set(DRB_ERR_CONFIG, "unable to create log directory '%s': %m", dir);
			free(dir);
			return -1;
		}
		*p = saved;
		if (saved == '\0')
			break;
	}
	free(dir);
	return 0;
}

/* Open path for appending; a file created here gets exactly LOG_FILE_MODE. */
static int
open_append(const char *path)
{
	int			flags = O_WRONLY | O_APPEND | O_CLOEXEC;
	int			fd = open(path, flags);

	if (fd < 0 && errno == ENOENT)
	{
		fd = open(path, flags | O_CREAT | O_EXCL, LOG_FILE_MODE);
		if (fd >= 0)
			fchmod(fd, LOG_FILE_MODE);
		else if (errno == EEXIST)	/* another process created it meanwhile */
			fd = open(path, flags);
	}
	return fd;
}

int
log_open_file(const char *path, log_level level)
{
	struct stat st;
	int			fd;

	if (make_parent_dirs(path) != 0)
		return err_wrap("unable to open log file '%s': ", path);
	fd = open_append(path);
	if (fd < 0)
		return err_set(DRB_ERR_CONFIG, "unable to open log file '%s': %m", path);
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
	{
		close(fd);
		return err_set(DRB_ERR_CONFIG, "log file '%s' is not a regular file", path);
	}
	pthread_mutex_lock(&log_lock);
	if (log_fd >= 0)
		close(log_fd);
	log_fd = fd;
	file_level = level;
	pthread_mutex_unlock(&log_lock);
	return 0;
}

void
log_close(void)
{
	pthread_mutex_lock(&log_lock);
	if (log_fd >= 0)
		close(log_fd);
	log_fd = -1;
	file_level = LOG_OFF;
	pthread_mutex_unlock(&log_lock);
}

void
log_register_secret(const char *secret)
{
	if (secret == NULL || secret[0] == '\0')
		return;
	pthread_mutex_lock(&log_lock);
	for (size_t i = 0; i < nsecrets; i++)
	{
		if (strcmp(secrets[i], secret) == 0)
		{
			pthread_mutex_unlock(&log_lock);
			return;
		}
	}
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

/* Append text to out with every secret replaced; the longest secret matching wins. */
static void
redact_into(buf_t *out, const char *text)
{
	const char *p = text;

	while (*p)
	{
		size_t		matched = 0;

		for (size_t i = 0; i < nsecrets; i++)
		{
			size_t		n = strlen(secrets[i]);

			if (n > matched && strncmp(p, secrets[i], n) == 0)
				matched = n;
		}
		if (matched)
		{
			buf_append_str(out, "<redacted>");
			p += matched;
		}
		else
		{
			/* copy up to the next byte that could start a secret */
			size_t		run = 1;

			while (p[run])
			{
				bool		may_start = false;

				for (size_t i = 0; i < nsecrets && !may_start; i++)
					may_start = secrets[i][0] == p[run];
				if (may_start)
					break;
				run++;
			}
			buf_append(out, p, run);
			p += run;
		}
	}
}

char *
log_redact(const char *text)
{
	buf_t		out;

	buf_init(&out);
	pthread_mutex_lock(&log_lock);
	redact_into(&out, text);
	pthread_mutex_unlock(&log_lock);
	buf_cstr(&out);
	return (char *) out.data;
}

/* write() all of b to fd: one call unless the kernel takes less (then the rest follows). */
static void
write_line(int fd, const buf_t *b)
{
	size_t		done = 0;

	while (done < b->len)
	{
		ssize_t		n = write(fd, b->data + done, b->len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;				/* nowhere to report a failing log: drop the line */
		done += (size_t) n;
	}
}

void
log_write(log_level level, const char *fmt,...)
{
	char		small[1024];
	char	   *msg = small;
	va_list		ap;
	int			len;
	int			saved_errno = errno;
	buf_t		line;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	len = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (len < 0)
		return;
	if ((size_t) len >= sizeof(small))
	{
		/* format the whole message: a secret cut in two by truncation would escape */
		msg = xmalloc((size_t) len + 1);
		errno = saved_errno;	/* for %m */
		va_start(ap, fmt);
		vsnprintf(msg, (size_t) len + 1, fmt, ap);
		va_end(ap);
	}

	buf_init(&line);
	pthread_mutex_lock(&log_lock);
	if (level <= console_level)
	{
		buf_append_str(&line, level == LOG_ERROR ? "drbackup: ERROR: " :
					   level == LOG_WARN ? "drbackup: WARN: " : "drbackup: ");
		redact_into(&line, msg);
		buf_append(&line, "\n", 1);
		write_line(STDERR_FILENO, &line);
	}
	if (log_fd >= 0 && level <= file_level)
	{
		struct timeval tv;
		struct tm	tm;
		char		stamp[32];

		buf_t		clean;
		char		head[96];
		const char *p;

		gettimeofday(&tv, NULL);
		gmtime_r(&tv.tv_sec, &tm);
		strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
		snprintf(head, sizeof(head), "%s.%03d UTC P%d %s: ", stamp, (int) (tv.tv_usec / 1000),
				 (int) getpid(), level_tags[level]);
		buf_init(&clean);
		redact_into(&clean, msg);
		buf_cstr(&clean);
		/* every line of a multi-line message gets the header: grep finds each with its time */
		buf_reset(&line);
		p = (const char *) clean.data;
		do
		{
			size_t		n = strcspn(p, "\n");

			buf_append_str(&line, head);
			buf_append(&line, p, n);
			buf_append(&line, "\n", 1);
			p += n;
		} while (*p++ == '\n' && *p != '\0');
		buf_free(&clean);
		write_line(log_fd, &line);
	}
	pthread_mutex_unlock(&log_lock);
	buf_free(&line);
	if (msg != small)
		free(msg);
	errno = saved_errno;
}
