/*
 * ini.c — INI file reader (see ini.h).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "ini.h"
#include "mem.h"

static char *
trim(char *s)
{
	char	   *end;

	while (isspace((unsigned char) *s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char) end[-1]))
		*--end = '\0';
	return s;
}

int
ini_parse_file(const char *path, ini_entry_cb cb, void *arg)
{
	FILE	   *f = fopen(path, "r");
	char	   *line = NULL;
	size_t		cap = 0;
	char	   *section = xstrdup("");
	int			lineno = 0;
	int			rc = 0;

	if (f == NULL)
	{
		free(section);
		return err_set(errno == ENOENT ? DRB_ERR_NOT_FOUND : DRB_ERR_CONFIG,
					   "unable to open config file '%s': %m", path);
	}
	while (rc == 0 && getline(&line, &cap, f) >= 0)
	{
		char	   *s = trim(line);
		char	   *eq;

		lineno++;
		if (*s == '\0' || *s == '#' || *s == ';')
			continue;
		if (*s == '[')
		{
			char	   *close = strchr(s, ']');

			if (close == NULL || close[1] != '\0')
			{
				rc = err_set(DRB_ERR_CONFIG, "config file '%s' line %d: malformed section header",
							 path, lineno);
				break;
			}
			*close = '\0';
			free(section);
			section = xstrdup(trim(s + 1));
			continue;
		}
		eq = strchr(s, '=');
		if (eq == NULL)
		{
			rc = err_set(DRB_ERR_CONFIG, "config file '%s' line %d: expected 'key=value'",
						 path, lineno);
			break;
		}
		*eq = '\0';
		char	   *key = trim(s);

		if (*key == '\0')
		{
			rc = err_set(DRB_ERR_CONFIG, "config file '%s' line %d: empty key", path, lineno);
			break;
		}
		rc = cb(section, key, trim(eq + 1), lineno, arg);
	}
	if (rc == 0 && ferror(f))
		rc = err_set(DRB_ERR_CONFIG, "unable to read config file '%s': %m", path);
	if (line)
		secure_zero(line, cap);
	free(line);
	free(section);
	fclose(f);
	return rc;
}
