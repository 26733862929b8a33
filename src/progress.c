/*
 * progress.c — the progress bar on stderr (progress.h).
 */
#include <stdio.h>
#include <unistd.h>

#include "log.h"
#include "progress.h"
#include "timeutil.h"

#define BAR_WIDTH	30

void
progress_start(progress *p, uint64_t total)
{
	p->on = isatty(STDERR_FILENO) && log_console_level() < LOG_INFO;
	p->start = clock_seconds();
	p->total = total;
}

/* "12.3 GiB", "4.0 MiB" or "0.5 KiB" into out. */
static void
format_bytes(uint64_t b, char *out, size_t len)
{
	if (b >= (uint64_t) 1 << 30)
		snprintf(out, len, "%.1f GiB", (double) b / (1 << 30));
	else if (b >= (uint64_t) 1 << 20)
		snprintf(out, len, "%.1f MiB", (double) b / (1 << 20));
	else
		snprintf(out, len, "%.1f KiB", (double) b / 1024);
}

static void
draw(const progress *p, uint64_t done, bool last)
{
	uint64_t	total = p->total > done ? p->total : done;
	double		el = clock_seconds() - p->start;
	double		rate = el > 0 ? done / el : 0;
	double		eta = rate > 0 ? (total - done) / rate : 0;
	int			fill = total ? (int) ((double) done * BAR_WIDTH / total) : BAR_WIDTH;
	char		a[32],
				b[32],
				c[32];

	if (!p->on)
		return;
	format_bytes(done, a, sizeof(a));
	format_bytes(total, b, sizeof(b));
	format_bytes((uint64_t) rate, c, sizeof(c));
	fprintf(stderr, "\r[%-*.*s] %s / %s  %s/s  ETA %02d:%02d%s", BAR_WIDTH, fill,
			"##############################", a, b, c, (int) eta / 60, (int) eta % 60,
			last ? "\n" : "");
	fflush(stderr);
}

void
progress_update(const progress *p, uint64_t done)
{
	draw(p, done, false);
}

void
progress_finish(const progress *p, uint64_t done)
{
	draw(p, done, true);
}
