/* placeholder: src/cmd_key_rotate.c is being written */
#include "command.h"
#include "error.h"
int cmd_key_rotate(config_t *cfg) { (void) cfg; return err_set(DRB_ERR_INTERNAL, "not built yet"); }
