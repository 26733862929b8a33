/*
 * ini.h — a small INI reader: "[section]" headers, "key = value" lines, '#'/';' comments,
 * whitespace trimmed around keys and values. Used for drbackup's configuration file and
 * the AWS shared-credentials file.
 */
#ifndef DRB_INI_H
#define DRB_INI_H

/* Called once per key; section is "" before the first header. Return -1 to stop (after
 * err_set). */
typedef int (*ini_entry_cb) (const char *section, const char *key, const char *value,
							 int line, void *arg);

/* Parse a file. A syntax error fails with DRB_ERR_CONFIG naming file and line; a missing
 * file fails with DRB_ERR_NOT_FOUND. */
int			ini_parse_file(const char *path, ini_entry_cb cb, void *arg);

#endif
