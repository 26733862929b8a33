/* placeholder: module being written */
#include "command.h"
#include "error.h"

int
cmd_archive_push_async(config_t *cfg)
{
	(void) cfg;
	return err_set(DRB_ERR_INTERNAL, "cmd_archive_push_async is not written yet");
}
