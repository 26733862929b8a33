/* placeholder: restore/verify.c is being written */
#include "command.h"
#include "error.h"
int cmd_verify(config_t *cfg) { (void) cfg; return err_set(DRB_ERR_INTERNAL, "verify is not built yet"); }
