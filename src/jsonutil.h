/*
 * jsonutil.h — reading fields of hostile JSON documents and writing common JSON values.
 *
 * Readers (jfield_*) check one field of an object (a manifest line, a catalog) and, when
 * it is refused, write why into a caller's buffer of JFIELD_WHY_SIZE bytes and return
 * false; the caller adds where (file, line) and calls err_set once. The reasons are
 * stable texts tests and users rely on:
 *
 *   "\"KEY\" is missing"                      "\"KEY\" is not a string"
 *   "\"KEY\" is not an integer from MIN to MAX"  "unknown field \"KEY\"" (or "an unknown
 *                                              field" when KEY is not printable)
 *
 * Writers (jval_*) return a new reference (json_null() where there is nothing to say).
 */
#ifndef DRB_JSONUTIL_H
#define DRB_JSONUTIL_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#define JFIELD_WHY_SIZE		256

/* Write the reason (printf-style, truncated to JFIELD_WHY_SIZE) into why; returns false. */
bool		jfield_why(char *why, const char *fmt,...) __attribute__((format(printf, 2, 3)));

/* Every key of obj is one of allowed (a NULL-terminated list). */
bool		jfield_keys_allowed(json_t *obj, const char *const *allowed, char *why);

/* An integer from min to max under key. */
bool		jfield_int(json_t *obj, const char *key, json_int_t min, json_int_t max,
					   json_int_t *out, char *why);

/* A non-negative integer (0 to INT64_MAX) under key. */
bool		jfield_u64(json_t *obj, const char *key, uint64_t *out, char *why);

/*
 * A string under key (*out points into obj). When !required, absence and JSON null are
 * accepted with *out = NULL.
 */
bool		jfield_str(json_t *obj, const char *key, bool required, const char **out,
					   char *why);

/* Free text as a JSON string (null for NULL): bytes that are not valid UTF-8 become '?'. */
json_t	   *jval_text(const char *s);

/* Seconds since the epoch as ISO-8601 UTC, "2026-11-21T05:00:12Z" (null if impossible). */
json_t	   *jval_utc(int64_t t);

/* PostgreSQL's LSN notation, "0/4000028". */
json_t	   *jval_lsn(uint64_t lsn);

#endif
