/* placeholder: module being written */
#include "command.h"
#include "error.h"

int
cmd_repo_sync(config_t *cfg)
{
	(void) cfg;
	return err_set(DRB_ERR_INTERNAL, "cmd_repo_sync is not written yet");
}
