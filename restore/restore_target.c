/* placeholder: restore/restore_target.c is being written */
