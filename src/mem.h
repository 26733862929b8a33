/*
 * mem.h — allocation helpers and a growable byte buffer.
 *
 * The x* allocators never return NULL: running out of memory prints one line and exits
 * with the internal-error code (drbackup cannot continue safely without memory).
 * Ownership rule: whoever calls an x* function or buf_init owns the result and frees it.
 */
#ifndef DRB_MEM_H
#define DRB_MEM_H

#include <stddef.h>
#include <stdint.h>

void	   *xmalloc(size_t size);
void	   *xcalloc(size_t n, size_t size);
void	   *xrealloc(void *ptr, size_t size);
/* size bytes aligned to align (a power of two; size a multiple of it), e.g. for O_DIRECT */
void	   *xaligned_alloc(size_t align, size_t size);
char	   *xstrdup(const char *s);
char	   *xstrndup(const char *s, size_t n);
char	   *xasprintf(const char *fmt,...) __attribute__((format(printf, 1, 2)));

/* Overwrite memory holding secrets before it is freed (not optimised away). */
void		secure_zero(void *ptr, size_t len);

typedef struct buf
{
	uint8_t    *data;
	size_t		len;
	size_t		cap;
} buf_t;

void		buf_init(buf_t *b);
void		buf_reserve(buf_t *b, size_t extra);
void		buf_append(buf_t *b, const void *data, size_t len);
void		buf_append_str(buf_t *b, const char *s);
void		buf_printf(buf_t *b, const char *fmt,...) __attribute__((format(printf, 2, 3)));
/* NUL-terminates without counting the NUL in len; returns data as a C string. */
const char *buf_cstr(buf_t *b);
void		buf_reset(buf_t *b);
void		buf_free(buf_t *b);

/* Lower-case hex of len bytes into out (2*len+1 bytes). */
void		hex_encode(const uint8_t *in, size_t len, char *out);
/* Decode exactly outlen bytes of hex; returns 0 or -1 on bad input (no err_set). */
int			hex_decode(const char *in, uint8_t *out, size_t outlen);

#endif
