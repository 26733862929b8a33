/* placeholder: src/cmd_check.c is being written */
#include "command.h"
#include "error.h"
int cmd_check(config_t *cfg) { (void) cfg; return err_set(DRB_ERR_INTERNAL, "not built yet"); }
