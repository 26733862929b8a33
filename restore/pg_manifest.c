/* placeholder: restore/pg_manifest.c is being written */
