/*
 * test_util.h — helpers shared by the unit tests: scratch directories.
 */
#ifndef DRB_TEST_UTIL_H
#define DRB_TEST_UTIL_H

/* Remove a directory tree (like rm -rf); returns 0, or -1 if something stayed. */
int			test_rm_rf(const char *path);

#endif
