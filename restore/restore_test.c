/* placeholder: restore/restore_test.c is being written */
#include "command.h"
#include "error.h"
int cmd_restore_test(config_t *cfg) { (void) cfg; return err_set(DRB_ERR_INTERNAL, "restore_test is not built yet"); }
