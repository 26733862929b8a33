/*
 * filter.h — the streaming filter chain.
 *
 * Bytes flow by push: filter_push(f, buf, len) hands bytes to filter f, which does its
 * job (observe: hash, size; or transform: compress, encrypt, ...) and pushes its output
 * on to f->next. filter_finish(f) signals end of input: the filter flushes what it still
 * holds, verifies what it must (e.g. a checksum trailer), and then finishes f->next.
 * The last filter of a chain is a sink (a storage writer, a file, a memory buffer).
 *
 * Errors: a filter that fails calls err_set() and returns -1; the chain stops there.
 * Ownership: the chain's creator owns every filter; filter_chain_free() frees a chain
 * from its head, following next pointers. Memory per filter is bounded (no filter buffers
 * a whole object).
 *
 * Writing a filter: embed filter_t as the first member of your state struct, point ops
 * at a static filter_ops, and implement process/finish/destroy.
 */
#ifndef DRB_FILTER_H
#define DRB_FILTER_H

#include <stddef.h>
#include <stdint.h>

typedef struct filter filter_t;

typedef struct filter_ops
{
	const char *name;
	/* Consume len bytes; push any output to f->next. */
	int			(*process) (filter_t *f, const uint8_t *in, size_t len);
	/* End of input: flush, verify, then filter_finish(f->next). */
	int			(*finish) (filter_t *f);
	/* Free the filter's own state (not next). */
	void		(*destroy) (filter_t *f);
} filter_ops;

struct filter
{
	const filter_ops *ops;
	filter_t   *next;
};

int			filter_push(filter_t *f, const void *buf, size_t len);
int			filter_finish(filter_t *f);
/* Link a..z: filter_chain(a, b, c, NULL) sets a->next=b, b->next=c; returns a. */
filter_t   *filter_chain(filter_t *first,...);
void		filter_chain_free(filter_t *head);

/* Sinks and simple filters shared by everyone (filter.c). */
/* Appends everything to a caller-owned buffer (buf_t from mem.h). */
struct buf;
filter_t   *filter_sink_buf_new(struct buf *out);
/* Writes everything to an open fd (not closed, not fsynced). */
filter_t   *filter_sink_fd_new(int fd);
/* Discards everything (verification reads). */
filter_t   *filter_sink_null_new(void);
/*
 * Pushes the same bytes into each of chains[0..n-1] (1 <= n <= 8) and finishes them in
 * order; takes ownership of the chains (freed with the tee). A tee has no next.
 */
filter_t   *filter_tee_new(filter_t *const *chains, int n);
/* Counts bytes passing through. */
filter_t   *filter_size_new(uint64_t *count);

#endif
