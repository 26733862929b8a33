/*
 * jsonutil.c — JSON field readers and value writers (jsonutil.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonutil.h"
#include "mem.h"
#include "pg.h"
#include "timeutil.h"

bool
jfield_why(char *why, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(why, JFIELD_WHY_SIZE, fmt, ap);
	va_end(ap);
	return false;
}

/* Short and without control characters: safe to quote in a message. */
static bool
key_printable(const char *key)
{
	size_t		n = strlen(key);

	if (n > 40)
		return false;
	for (size_t i = 0; i < n; i++)
	{
		unsigned char c = (unsigned char) key[i];

		if (c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

bool
jfield_keys_allowed(json_t *obj, const char *const *allowed, char *why)
{
	const char *key;
	json_t	   *v;

	json_object_foreach(obj, key, v)
	{
		const char *const *a = allowed;

		while (*a && strcmp(*a, key) != 0)
			a++;
		if (*a == NULL)
			return key_printable(key) ? jfield_why(why, "unknown field \"%s\"", key) :
				jfield_why(why, "an unknown field");
	}
	return true;
}

bool
jfield_int(json_t *obj, const char *key, json_int_t min, json_int_t max, json_int_t *out,
		   char *why)
{
	json_t	   *v = json_object_get(obj, key);

	if (v == NULL)
		return jfield_why(why, "\"%s\" is missing", key);
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
		return jfield_why(why, "\"%s\" is not an integer from %lld to %lld", key,
						  (long long) min, (long long) max);
	*out = json_integer_value(v);
	return true;
}

bool
jfield_u64(json_t *obj, const char *key, uint64_t *out, char *why)
{
	json_int_t	v;

	if (!jfield_int(obj, key, 0, INT64_MAX, &v, why))
		return false;
	*out = (uint64_t) v;
	return true;
}

bool
jfield_str(json_t *obj, const char *key, bool required, const char **out, char *why)
{
	json_t	   *v = json_object_get(obj, key);

	*out = NULL;
	if (v == NULL || (json_is_null(v) && !required))
		return required ? jfield_why(why, "\"%s\" is missing", key) : true;
	if (!json_is_string(v))
		return jfield_why(why, "\"%s\" is not a string", key);
	*out = json_string_value(v);
	return true;
}

json_t *
jval_text(const char *s)
{
	json_t	   *v;
	char	   *copy;

	if (s == NULL)
		return json_null();
	if ((v = json_string(s)) != NULL)
		return v;
	copy = xstrdup(s);
	for (char *p = copy; *p; p++)
		if ((unsigned char) *p >= 0x80)
			*p = '?';
	v = json_string(copy);
	free(copy);
	return v;
}

json_t *
jval_utc(int64_t t)
{
	char		out[32];

	if (!format_utc(t, out, sizeof(out)))
		return json_null();
	return json_string(out);
}

json_t *
jval_lsn(uint64_t lsn)
{
	char		out[24];

	lsn_format(lsn, out, sizeof(out));
	return json_string(out);
}
