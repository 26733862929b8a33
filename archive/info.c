/* placeholder: archive/info.c is being written */
#include "command.h"
#include "error.h"
int cmd_info(config_t *cfg) { (void) cfg; return err_set(DRB_ERR_INTERNAL, "info is not built yet"); }
