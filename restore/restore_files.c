/* placeholder: restore/restore_files.c is being written */
