/*
 * test_util.c — helpers shared by the unit tests (see test_util.h).
 */
#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>

#include "test_util.h"

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void) st;
	(void) flag;
	(void) ftw;
	return remove(path);
}

int
test_rm_rf(const char *path)
{
	return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}
