/*
 * error.c — thread-local error state (see error.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "error.h"

#define ERR_MSG_MAX 2048

static __thread drb_err err_current_kind = DRB_OK;
static __thread char err_current_msg[ERR_MSG_MAX];
static __thread bool err_current_quiet = false;

int
err_set(drb_err kind, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(err_current_msg, sizeof(err_current_msg), fmt, ap);
	va_end(ap);
	err_current_kind = kind == DRB_OK ? DRB_ERR_INTERNAL : kind;
	err_current_quiet = false;
	return -1;
}

int
err_wrap(const char *fmt,...)
{
	char		prefix[ERR_MSG_MAX];
	size_t		plen;
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix) - 2, fmt, ap);
	va_end(ap);
	strcat(prefix, ": ");
	plen = strlen(prefix);
	/* shift the old message right, then put the prefix in front (truncating the tail) */
	memmove(err_current_msg + plen, err_current_msg,
			ERR_MSG_MAX - plen - 1 > strlen(err_current_msg) ? strlen(err_current_msg) + 1 : ERR_MSG_MAX - plen - 1);
	err_current_msg[ERR_MSG_MAX - 1] = '\0';
	memcpy(err_current_msg, prefix, plen);
	if (err_current_kind == DRB_OK)
		err_current_kind = DRB_ERR_INTERNAL;
	return -1;
}

void
err_mark_quiet(void)
{
	err_current_quiet = true;
}

bool
err_is_quiet(void)
{
	return err_current_quiet && err_current_kind != DRB_OK;
}

drb_err
err_kind(void)
{
	return err_current_kind;
}

const char *
err_msg(void)
{
	return err_current_kind == DRB_OK ? "no error" : err_current_msg;
}

void
err_clear(void)
{
	err_current_kind = DRB_OK;
	err_current_msg[0] = '\0';
	err_current_quiet = false;
}

static const struct
{
	const char *name;
	int			exit_code;
}			err_table[] = {
	[DRB_OK] = {"ok", 0},
	[DRB_ERR_NOT_FOUND] = {"not-found", 1},
	[DRB_ERR_USAGE] = {"usage", 2},
	[DRB_ERR_CONFIG] = {"config", 3},
	[DRB_ERR_STORAGE] = {"storage", 4},
	[DRB_ERR_INTEGRITY] = {"integrity", 5},
	[DRB_ERR_CRYPTO] = {"crypto", 6},
	[DRB_ERR_PG] = {"postgresql", 7},
	[DRB_ERR_STANZA] = {"stanza", 8},
	[DRB_ERR_LOCK] = {"lock", 9},
	[DRB_ERR_INTERNAL] = {"internal", 10},
	[DRB_ERR_RECOVERY_ABORT] = {"recovery-abort", 126},
};

int
err_exit_code(drb_err kind)
{
	if ((unsigned) kind >= sizeof(err_table) / sizeof(err_table[0]))
		return 10;
	return err_table[kind].exit_code;
}

const char *
err_kind_name(drb_err kind)
{
	if ((unsigned) kind >= sizeof(err_table) / sizeof(err_table[0]))
		return "internal";
	return err_table[kind].name;
}
