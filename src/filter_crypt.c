/*
 * filter_crypt.c — chunked AES-256-GCM encrypt / decrypt filters (see filter_crypt.h).
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "error.h"
#include "filter_crypt.h"
#include "mem.h"

#define NONCE_SIZE		12
#define AAD_SIZE		(OBJECT_HEADER_SIZE + 8 + 4)
#define REORDER_WINDOW	4		/* neighbouring indices tried when a chunk fails */

typedef struct crypt_filter
{
	filter_t	base;
	EVP_CIPHER_CTX *ctx;
	bool		encrypt;
	uint8_t		aad[AAD_SIZE];	/* header | index | word; the last two set per chunk */
	size_t		chunk_size;
	uint64_t	index;			/* of the next chunk */
	char	   *path;			/* decrypt only */

	/* encrypt: plain bytes waiting for a full chunk; decrypt: one stored chunk */
	uint8_t    *buf;
	size_t		fill;
	size_t		need;			/* decrypt: stored size of the current chunk once known */
	uint8_t    *out;			/* encrypt: stored chunk; decrypt: plain chunk */
	size_t		plain_used;		/* high-water mark of plain bytes in buf (encrypt) or out
								 * (decrypt): what destroy wipes */
	bool		final_seen;		/* decrypt */
} crypt_filter;

/*
 * One chunk through GCM: encrypt (tag written) or decrypt (tag checked; false when it does
 * not verify). index and word go into the nonce and AAD.
 */
static bool
gcm_chunk(crypt_filter *c, bool encrypt, uint64_t index, uint32_t word,
		  const uint8_t *in, size_t len, uint8_t *out, uint8_t *tag)
{
	uint8_t		nonce[NONCE_SIZE] = {0};
	int			n;

	be64_put(nonce + 4, index);
	be64_put(c->aad + OBJECT_HEADER_SIZE, index);
	be32_put(c->aad + OBJECT_HEADER_SIZE + 8, word);

	if (EVP_CipherInit_ex(c->ctx, NULL, NULL, NULL, nonce, encrypt ? 1 : 0) != 1 ||
		EVP_CipherUpdate(c->ctx, NULL, &n, c->aad, AAD_SIZE) != 1)
		return false;
	if (len > 0 && EVP_CipherUpdate(c->ctx, out, &n, in, (int) len) != 1)
		return false;
	if (encrypt)
		return EVP_CipherFinal_ex(c->ctx, out + len, &n) == 1 &&
			EVP_CIPHER_CTX_ctrl(c->ctx, EVP_CTRL_GCM_GET_TAG, CRYPT_TAG_SIZE, tag) == 1;
	return EVP_CIPHER_CTX_ctrl(c->ctx, EVP_CTRL_GCM_SET_TAG, CRYPT_TAG_SIZE, tag) == 1 &&
		EVP_CipherFinal_ex(c->ctx, out + len, &n) == 1;
}

static crypt_filter *
crypt_new(const filter_ops *ops, bool encrypt, const uint8_t key[CRYPT_KEY_SIZE],
		  const uint8_t header[OBJECT_HEADER_SIZE], size_t chunk_size)
{
	crypt_filter *c = xcalloc(1, sizeof(*c));

	c->base.ops = ops;
	c->encrypt = encrypt;
	c->chunk_size = chunk_size;
	memcpy(c->aad, header, OBJECT_HEADER_SIZE);
	c->ctx = EVP_CIPHER_CTX_new();
	if (c->ctx == NULL ||
		EVP_CipherInit_ex(c->ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, encrypt ? 1 : 0) != 1 ||
		EVP_CIPHER_CTX_ctrl(c->ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_SIZE, NULL) != 1 ||
		EVP_CipherInit_ex(c->ctx, NULL, NULL, key, NULL, encrypt ? 1 : 0) != 1)
	{
		EVP_CIPHER_CTX_free(c->ctx);
		free(c);
		err_set(DRB_ERR_CRYPTO, "unable to initialise AES-256-GCM");
		return NULL;
	}
	c->buf = xmalloc(encrypt ? chunk_size : chunk_size + CRYPT_CHUNK_OVERHEAD);
	c->out = xmalloc(encrypt ? chunk_size + CRYPT_CHUNK_OVERHEAD : chunk_size);
	return c;
}

static void
crypt_destroy(filter_t *f)
{
	crypt_filter *c = (crypt_filter *) f;

	EVP_CIPHER_CTX_free(c->ctx);	/* wipes the key schedule */
	secure_zero(c->encrypt ? c->buf : c->out, c->plain_used);
	free(c->buf);
	free(c->out);
	free(c->path);
	free(c);
}

/* --- encrypt --- */

static int
encrypt_chunk(crypt_filter *c, const uint8_t *plain, size_t len, bool final)
{
	uint32_t	word = (uint32_t) len | (final ? CRYPT_CHUNK_FINAL : 0);

	be32_put(c->out, word);
	if (!gcm_chunk(c, true, c->index, word, plain, len, c->out + 4, c->out + 4 + len))
		return err_set(DRB_ERR_CRYPTO, "AES-256-GCM encryption of chunk %llu failed",
					   (unsigned long long) c->index);
	c->index++;
	return filter_push(c->base.next, c->out, len + CRYPT_CHUNK_OVERHEAD);
}

static int
encrypt_process(filter_t *f, const uint8_t *in, size_t len)
{
	crypt_filter *c = (crypt_filter *) f;

	while (len > 0)
	{
		size_t		n;

		/* a full chunk is written as non-final only once more bytes follow it */
		if (c->fill == c->chunk_size)
		{
			if (encrypt_chunk(c, c->buf, c->fill, false) != 0)
				return -1;
			c->fill = 0;
		}
		if (c->fill == 0 && len > c->chunk_size)
		{
			if (encrypt_chunk(c, in, c->chunk_size, false) != 0)
				return -1;
			in += c->chunk_size;
			len -= c->chunk_size;
			continue;
		}
		n = c->chunk_size - c->fill;
		if (n > len)
			n = len;
		memcpy(c->buf + c->fill, in, n);
		c->fill += n;
		if (c->fill > c->plain_used)
			c->plain_used = c->fill;
		in += n;
		len -= n;
	}
	return 0;
}

static int
encrypt_finish(filter_t *f)
{
	crypt_filter *c = (crypt_filter *) f;

	if (encrypt_chunk(c, c->buf, c->fill, true) != 0)
		return -1;
	c->fill = 0;
	return filter_finish(f->next);
}

static const filter_ops encrypt_ops = {"encrypt", encrypt_process, encrypt_finish, crypt_destroy};

filter_t *
filter_encrypt_new(const uint8_t key[CRYPT_KEY_SIZE], const uint8_t header[OBJECT_HEADER_SIZE],
				   size_t chunk_size)
{
	crypt_filter *c = crypt_new(&encrypt_ops, true, key, header, chunk_size);

	return c ? &c->base : NULL;
}

/* --- decrypt --- */

/*
 * Check a chunk's length word before decrypting: the stored size of the chunk, or -1 with
 * the error set.
 */
static int
decrypt_check_word(crypt_filter *c, uint32_t word, size_t *stored)
{
	size_t		len = word & ~CRYPT_CHUNK_FINAL;

	if (len > c->chunk_size)
		return err_set(DRB_ERR_INTEGRITY, "object '%s': chunk %llu has length %zu, more than the "
					   "chunk size %zu (damaged length word)", c->path,
					   (unsigned long long) c->index, len, c->chunk_size);
	if (!(word & CRYPT_CHUNK_FINAL) && len != c->chunk_size)
		return err_set(DRB_ERR_INTEGRITY, "object '%s': non-final chunk %llu has length %zu, "
					   "expected %zu", c->path, (unsigned long long) c->index, len, c->chunk_size);
	*stored = len + CRYPT_CHUNK_OVERHEAD;
	return 0;
}

/* Authenticate and decrypt one complete stored chunk, then push its plain bytes on. */
static int
decrypt_chunk(crypt_filter *c, const uint8_t *stored)
{
	uint32_t	word = be32_get(stored);
	size_t		len = word & ~CRYPT_CHUNK_FINAL;
	const uint8_t *tag = stored + 4 + len;

	if (!gcm_chunk(c, false, c->index, word, stored + 4, len, c->out, (uint8_t *) tag))
	{
		secure_zero(c->out, len);
		/* a valid chunk from another position means chunks were dropped or swapped */
		for (uint64_t d = 1; d <= REORDER_WINDOW; d++)
		{
			uint64_t	tries[2] = {c->index + d, c->index - d};

			for (int i = 0; i < 2; i++)
			{
				if (i == 1 && d > c->index)
					continue;
				if (gcm_chunk(c, false, tries[i], word, stored + 4, len, c->out, (uint8_t *) tag))
				{
					secure_zero(c->out, len);
					return err_set(DRB_ERR_INTEGRITY, "object '%s': chunk %llu is out of order "
								   "(it authenticates as chunk %llu): chunks dropped or reordered",
								   c->path, (unsigned long long) c->index,
								   (unsigned long long) tries[i]);
				}
			}
		}
		if (c->index == 0)
			return err_set(DRB_ERR_INTEGRITY, "object '%s': authentication failed in chunk 0 (the "
						   "chunk or the object header was modified, or the key is wrong)", c->path);
		return err_set(DRB_ERR_INTEGRITY, "object '%s': authentication failed in chunk %llu (the "
					   "chunk was modified or damaged)", c->path, (unsigned long long) c->index);
	}
	if (len > c->plain_used)
		c->plain_used = len;
	c->index++;
	if (word & CRYPT_CHUNK_FINAL)
		c->final_seen = true;
	return filter_push(c->base.next, c->out, len);
}

static int
decrypt_process(filter_t *f, const uint8_t *in, size_t len)
{
	crypt_filter *c = (crypt_filter *) f;

	while (len > 0)
	{
		size_t		n;

		if (c->final_seen)
			return err_set(DRB_ERR_INTEGRITY, "object '%s': data after the final chunk %llu "
						   "(%zu bytes or more)", c->path, (unsigned long long) (c->index - 1), len);

		/* fast path: a whole stored chunk in the input needs no copy */
		if (c->fill == 0 && len >= 4)
		{
			if (decrypt_check_word(c, be32_get(in), &c->need) != 0)
				return -1;
			if (len >= c->need)
			{
				if (decrypt_chunk(c, in) != 0)
					return -1;
				in += c->need;
				len -= c->need;
				continue;
			}
		}

		/* collect the length word, then the rest of the chunk */
		if (c->fill < 4)
		{
			n = 4 - c->fill < len ? 4 - c->fill : len;
			memcpy(c->buf + c->fill, in, n);
			c->fill += n;
			in += n;
			len -= n;
			if (c->fill < 4)
				return 0;
			if (decrypt_check_word(c, be32_get(c->buf), &c->need) != 0)
				return -1;
		}
		n = c->need - c->fill < len ? c->need - c->fill : len;
		memcpy(c->buf + c->fill, in, n);
		c->fill += n;
		in += n;
		len -= n;
		if (c->fill == c->need)
		{
			c->fill = 0;
			if (decrypt_chunk(c, c->buf) != 0)
				return -1;
		}
	}
	return 0;
}

static int
decrypt_finish(filter_t *f)
{
	crypt_filter *c = (crypt_filter *) f;

	if (!c->final_seen)
	{
		if (c->fill > 0 && c->fill < 4)
			return err_set(DRB_ERR_INTEGRITY, "object '%s' is truncated inside the length word of "
						   "chunk %llu (no final chunk)", c->path, (unsigned long long) c->index);
		if (c->fill > 0)
			return err_set(DRB_ERR_INTEGRITY, "object '%s' is truncated inside chunk %llu (%zu "
						   "of its %zu bytes present; no final chunk)", c->path,
						   (unsigned long long) c->index, c->fill, c->need);
		if (c->index == 0)
			return err_set(DRB_ERR_INTEGRITY, "object '%s' is truncated after the header (no "
						   "chunks, no final chunk)", c->path);
		return err_set(DRB_ERR_INTEGRITY, "object '%s' is truncated after chunk %llu (no final "
					   "chunk)", c->path, (unsigned long long) (c->index - 1));
	}
	return filter_finish(f->next);
}

static const filter_ops decrypt_ops = {"decrypt", decrypt_process, decrypt_finish, crypt_destroy};

filter_t *
filter_decrypt_new(const uint8_t key[CRYPT_KEY_SIZE], const uint8_t header[OBJECT_HEADER_SIZE],
				   size_t chunk_size, const char *path)
{
	crypt_filter *c = crypt_new(&decrypt_ops, false, key, header, chunk_size);

	if (c == NULL)
		return NULL;
	c->path = xstrdup(path);
	return &c->base;
}

/* --- single messages --- */

static int
gcm_message(bool encrypt, const uint8_t key[CRYPT_KEY_SIZE], const uint8_t nonce[12],
			const void *aad, size_t aadlen, const uint8_t *in, size_t len, uint8_t *out,
			uint8_t *tag)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int			n;
	bool		ok;

	ok = ctx != NULL &&
		EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, encrypt ? 1 : 0) == 1 &&
		EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) == 1 &&
		EVP_CipherInit_ex(ctx, NULL, NULL, key, nonce, encrypt ? 1 : 0) == 1 &&
		EVP_CipherUpdate(ctx, NULL, &n, aad, (int) aadlen) == 1 &&
		EVP_CipherUpdate(ctx, out, &n, in, (int) len) == 1;
	if (ok && encrypt)
		ok = EVP_CipherFinal_ex(ctx, out + len, &n) == 1 &&
			EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, CRYPT_TAG_SIZE, tag) == 1;
	else if (ok)
		ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, CRYPT_TAG_SIZE, tag) == 1 &&
			EVP_CipherFinal_ex(ctx, out + len, &n) == 1;
	EVP_CIPHER_CTX_free(ctx);
	return ok ? 0 : -1;
}

int
aes_gcm_seal(const uint8_t key[CRYPT_KEY_SIZE], const uint8_t nonce[12], const void *aad,
			 size_t aadlen, const uint8_t *in, size_t len, uint8_t *out, uint8_t tag[CRYPT_TAG_SIZE])
{
	if (gcm_message(true, key, nonce, aad, aadlen, in, len, out, tag) != 0)
		return err_set(DRB_ERR_CRYPTO, "AES-256-GCM encryption failed");
	return 0;
}

int
aes_gcm_open(const uint8_t key[CRYPT_KEY_SIZE], const uint8_t nonce[12], const void *aad,
			 size_t aadlen, const uint8_t *in, size_t len, const uint8_t tag[CRYPT_TAG_SIZE],
			 uint8_t *out)
{
	return gcm_message(false, key, nonce, aad, aadlen, in, len, out, (uint8_t *) tag);
}
