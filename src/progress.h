/*
 * progress.h — the progress bar of the long-running commands (backup, restore, verify).
 *
 * One line on stderr, redrawn in place:
 *
 *   [###########                   ] 1.2 GiB / 3.4 GiB  85.0 MiB/s  ETA 00:26
 *
 * drawn only when stderr is a terminal and the console log level is below info (at info
 * and above the log lines would tear the bar); otherwise every call is a no-op, so callers
 * need no test of their own. The caller owns the byte counter (typically an atomic its
 * worker threads add to) and passes its value; the rate and ETA are computed from the
 * monotonic clock since progress_start. Not thread-safe: draw from one thread.
 */
#ifndef DRB_PROGRESS_H
#define DRB_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct progress
{
	bool		on;				/* drawing (stderr a terminal, console level < info) */
	double		start;			/* clock_seconds() at progress_start */
	uint64_t	total;			/* bytes expected (the bar's 100%) */
} progress;

/* Start the clock and decide whether to draw; total may be 0 when not known yet. */
void		progress_start(progress *p, uint64_t total);

/* Redraw with done bytes of total (a done beyond total counts as the total). */
void		progress_update(const progress *p, uint64_t done);

/* Draw done one last time and end the line. */
void		progress_finish(const progress *p, uint64_t done);

#endif
