/* placeholder: restore/restore.c is being written */
#include "command.h"
#include "error.h"
int cmd_restore(config_t *cfg) { (void) cfg; return err_set(DRB_ERR_INTERNAL, "restore is not built yet"); }
