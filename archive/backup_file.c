/* placeholder: archive/backup_file.c is being written */
