/* placeholder: restore/export.c is being written */
#include "command.h"
#include "error.h"
int cmd_export(config_t *cfg) { (void) cfg; return err_set(DRB_ERR_INTERNAL, "not built yet"); }
