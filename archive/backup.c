/* placeholder: archive/backup.c is being written */
#include "command.h"
#include "error.h"
int cmd_backup(config_t *cfg) { (void) cfg; return err_set(DRB_ERR_INTERNAL, "backup is not built yet"); }
