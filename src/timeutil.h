/*
 * timeutil.h — clocks and time formats shared by the commands.
 *
 * clock_seconds is the monotonic clock (CLOCK_MONOTONIC) in seconds, for durations,
 * rates and deadlines: it never jumps with the wall clock. Differences between two
 * readings are meaningful; a single reading is not a date. format_utc writes a date as
 * drbackup's JSON output shows it: ISO-8601 in UTC.
 */
#ifndef DRB_TIMEUTIL_H
#define DRB_TIMEUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Seconds on the monotonic clock, with nanosecond resolution. */
double		clock_seconds(void);

/*
 * Seconds since the epoch t as "2026-11-21T05:00:12Z" into out (len >= 21); false (out
 * untouched or partial) when t is not representable.
 */
bool		format_utc(int64_t t, char *out, size_t len);

#endif
