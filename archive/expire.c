/* placeholder: archive/expire.c is being written */
#include "command.h"
#include "error.h"
int cmd_expire(config_t *cfg) { (void) cfg; return err_set(DRB_ERR_INTERNAL, "expire is not built yet"); }
