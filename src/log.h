/*
 * log.h — console and file logging.
 *
 * Levels: off < error < warn < info < detail < debug < trace. A message is written where
 * its level is at or below the level set for that destination:
 *
 *   console  stderr, "drbackup: ERROR: msg", "drbackup: WARN: msg", "drbackup: msg"
 *            (the error line main() prints is the only stderr line of a failing command
 *            at the default console level warn)
 *   file     "2026-11-21 09:10:11.123 UTC P12345 INFO: msg" — UTC time with milliseconds,
 *            process id, level in capitals; appended to the file log_open_file() opened
 *
 * Every registered secret is replaced by "<redacted>" in every line written anywhere, and
 * in log_redact()'s result. Thread-safe: each line reaches each destination in one
 * write() (O_APPEND for the file), so lines of threads and processes never interleave.
 * See docs/logging.md.
 */
#ifndef DRB_LOG_H
#define DRB_LOG_H

#include <stdbool.h>

typedef enum log_level
{
	LOG_OFF = 0,
	LOG_ERROR,
	LOG_WARN,
	LOG_INFO,
	LOG_DETAIL,
	LOG_DEBUG,
	LOG_TRACE,
} log_level;

/* Parse a level name ("off", "error", ...); returns -1 when unknown. */
int			log_level_parse(const char *name);
const char *log_level_name(log_level level);

void		log_set_console_level(log_level level);
log_level	log_console_level(void);
/* True when a message of this level would be written somewhere (console or file). */
bool		log_enabled(log_level level);

/*
 * Open the log file for appending at the given level, replacing any file already open.
 * Missing parent directories are created with mode 0750, a missing file with mode 0640
 * (exactly: the umask does not widen or narrow them); an existing file keeps its mode.
 * The descriptor is close-on-exec. Returns -1 with err_set(DRB_ERR_CONFIG) on failure,
 * leaving the previous file (if any) open.
 */
int			log_open_file(const char *path, log_level level);
/* Close the log file (file level becomes off). */
void		log_close(void);

/* A string that must never appear in output (password, key); copied. Empty/NULL: ignored. */
void		log_register_secret(const char *secret);
/* Forget (and zero) every registered secret. */
void		log_forget_secrets(void);
/* Copy of text with every registered secret redacted; caller frees. */
char	   *log_redact(const char *text);

void		log_write(log_level level, const char *fmt,...) __attribute__((format(printf, 2, 3)));

#define log_error(...)	log_write(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)	log_write(LOG_WARN, __VA_ARGS__)
#define log_info(...)	log_write(LOG_INFO, __VA_ARGS__)
#define log_detail(...) log_write(LOG_DETAIL, __VA_ARGS__)
#define log_debug(...)	log_write(LOG_DEBUG, __VA_ARGS__)
#define log_trace(...)	log_write(LOG_TRACE, __VA_ARGS__)

#endif
