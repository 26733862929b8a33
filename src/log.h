/*
 * log.h — console and file logging.
 *
 * Levels: off < error < warn < info < detail < debug < trace. Console messages go to
 * stderr (warn and error prefixed "drbackup: WARN:"/"drbackup: ERROR:"), the log file (if
 * opened) gets timestamp, pid and level. Every registered secret is replaced by
 * "<redacted>" in every line written anywhere. Thread-safe.
 */
#ifndef DRB_LOG_H
#define DRB_LOG_H

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
/* Open (append) the log file; returns -1 with err_set on failure. */
int			log_open_file(const char *path, log_level level);
void		log_close(void);

/* A string that must never appear in output (password, key); copied. */
void		log_register_secret(const char *secret);
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
