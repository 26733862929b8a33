/*
 * timeutil.c — clocks and time formats (timeutil.h).
 */
#include <time.h>

#include "timeutil.h"

double
clock_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

bool
format_utc(int64_t t, char *out, size_t len)
{
	time_t		tt = (time_t) t;
	struct tm	tm;

	return gmtime_r(&tt, &tm) != NULL && strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm) != 0;
}
