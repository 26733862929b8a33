/*
 * page_checksum.c — PostgreSQL data page checksums (see page_checksum.h).
 *
 * The algorithm is PostgreSQL's (storage/checksum_impl.h): the page is read as a table of
 * 64 rows of 32 native-order uint32 words; column j is folded into its own running sum
 * with sum = (sum ^ w) * FNV_PRIME ^ ((sum ^ w) >> 17), starting from a fixed per-column
 * offset; two more rounds with w = 0 mix the last word; the 32 sums are xor-ed together.
 * pd_checksum (bytes 8-9) counts as zero. The 32 columns are independent, so they are
 * kept in vector registers: the sums live in four 8-lane vectors (GCC/Clang vector
 * extensions), which the compiler turns into SSE2 code at -O2 whatever its
 * auto-vectorisation settings, and into AVX2 code (one vpmulld per 8 lanes) on CPUs that
 * have it, chosen once at load time (target_clones, x86-64 with GNU ifunc only).
 *
 * page_check follows PostgreSQL's PageIsVerified: an all-zero page is valid (new); any
 * other page must have a sane header (no unknown pd_flags bits, pd_lower <= pd_upper <=
 * pd_special <= 8192, pd_special MAXALIGNed to 8, pd_upper != 0) and a matching checksum.
 * Before those tests a page whose pd_lsn is at or above the backup's start LSN is
 * PAGE_SKIPPED (written after the start: replay rewrites it). To check every page of a
 * stopped cluster, pass start_lsn = UINT64_MAX.
 */
#include <stdbool.h>
#include <string.h>

#include "page_checksum.h"

#define N_SUMS			32
#define FNV_PRIME		16777619u
#define PD_CHECKSUM_OFF 8
#define PD_VALID_FLAG_BITS 0x0007u
#define PG_MAXALIGN		8u

/* Starting values of the 32 sums: data fixed by PostgreSQL's on-disk format. */
static const uint32_t checksum_base_offsets[N_SUMS] = {
	0x5B1F36E9, 0xB8525960, 0x02AB50AA, 0x1DE66D2A,
	0x79FF467A, 0x9BB9F8A3, 0x217E7CD2, 0x83E13D2C,
	0xF8D4474F, 0xE39EB970, 0x42C6AE16, 0x993216FA,
	0x7B093B5D, 0x98DAFF3C, 0xF718902A, 0x0B1C9CDB,
	0xE58F764B, 0x187636BC, 0x5D7B3BB1, 0xE73DE7DE,
	0x92BEC979, 0xCCA6C0B2, 0x304A0979, 0x85AA43D4,
	0x783125BB, 0x6CA8EAA2, 0xE407EAC6, 0x4B5CFC3E,
	0x9FBF8C76, 0x15CA20BE, 0xF2CA9FD3, 0x959BD756
};

/* Eight lanes of uint32; may_alias because page bytes are read through it. */
typedef uint32_t u32x8 __attribute__((vector_size(32), aligned(4), may_alias));

#define ROW_VECS		(N_SUMS / 8)
#define ROWS			(PG_PAGE_SIZE / (N_SUMS * 4))

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#define CHECKSUM_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define CHECKSUM_CLONES
#endif

/* One round on eight lanes (a macro: passing 32-byte vectors by value is not portable ABI). */
#define CHECKSUM_ROUND(sum, value) \
	do { \
		u32x8		tmp_ = (sum) ^ (value); \
		(sum) = (tmp_ * FNV_PRIME) ^ (tmp_ >> 17); \
	} while (0)

/*
 * The unreduced 32-bit checksum of a page, with pd_checksum taken as zero (the page
 * itself is not modified).
 */
CHECKSUM_CLONES
static uint32_t
checksum_block(const uint8_t *page)
{
	u32x8		sums[ROW_VECS];
	u32x8		row0[ROW_VECS];
	u32x8		zero = {0};
	uint32_t	result = 0;

	memcpy(sums, checksum_base_offsets, sizeof(sums));

	/* row 0 holds the page header: clear pd_checksum in a copy */
	memcpy(row0, page, sizeof(row0));
	memset((uint8_t *) row0 + PD_CHECKSUM_OFF, 0, 2);
	for (int v = 0; v < ROW_VECS; v++)
		CHECKSUM_ROUND(sums[v], row0[v]);

	for (int r = 1; r < ROWS; r++)
	{
		/* copied out, not cast: the page may not be aligned for the vector type (memcpy
		 * compiles to unaligned vector loads) */
		u32x8		row[ROW_VECS];

		memcpy(row, page + (size_t) r * N_SUMS * 4, sizeof(row));
		for (int v = 0; v < ROW_VECS; v++)
			CHECKSUM_ROUND(sums[v], row[v]);
	}

	for (int i = 0; i < 2; i++)
		for (int v = 0; v < ROW_VECS; v++)
			CHECKSUM_ROUND(sums[v], zero);

	for (int v = 0; v < ROW_VECS; v++)
		for (int l = 0; l < 8; l++)
			result ^= sums[v][l];
	return result;
}

/* Computes the value PostgreSQL stores in pd_checksum for this page at block blkno. */
uint16_t
pg_checksum_page(const uint8_t *page, uint32_t blkno)
{
	uint32_t	checksum = checksum_block(page) ^ blkno;

	return (uint16_t) (checksum % 65535u + 1);
}

/* pd_lsn: xlogid (high half) then xrecoff (low half), each in native byte order. */
uint64_t
page_lsn(const uint8_t *page)
{
	uint32_t	xlogid;
	uint32_t	xrecoff;

	memcpy(&xlogid, page, 4);
	memcpy(&xrecoff, page + 4, 4);
	return ((uint64_t) xlogid << 32) | xrecoff;
}

static uint16_t
read_u16(const uint8_t *page, size_t off)
{
	uint16_t	v;

	memcpy(&v, page + off, 2);
	return v;
}

static bool
page_all_zero(const uint8_t *page)
{
	static const uint8_t zeros[256];

	for (size_t off = 0; off < PG_PAGE_SIZE; off += sizeof(zeros))
		if (memcmp(page + off, zeros, sizeof(zeros)) != 0)
			return false;
	return true;
}

/* The header checks of PostgreSQL's PageIsVerified (pd_upper == 0 is a "new" page there). */
static bool
page_header_sane(const uint8_t *page)
{
	uint16_t	flags = read_u16(page, 10);
	uint16_t	lower = read_u16(page, 12);
	uint16_t	upper = read_u16(page, 14);
	uint16_t	special = read_u16(page, 16);

	return upper != 0 &&
		(flags & ~PD_VALID_FLAG_BITS) == 0 &&
		lower <= upper &&
		upper <= special &&
		special <= PG_PAGE_SIZE &&
		special % PG_MAXALIGN == 0;
}

/* Classifies a page read during a backup that started at start_lsn (see header). */
page_status
page_check(const uint8_t *page, uint32_t blkno, uint64_t start_lsn)
{
	/* a page with pd_upper set cannot be all zero: skip the scan for the usual case */
	if (read_u16(page, 14) == 0 && page_all_zero(page))
		return PAGE_NEW;
	if (page_lsn(page) >= start_lsn)
		return PAGE_SKIPPED;
	if (!page_header_sane(page))
		return PAGE_BAD;
	if (pg_checksum_page(page, blkno) != read_u16(page, PD_CHECKSUM_OFF))
		return PAGE_BAD;
	return PAGE_OK;
}
