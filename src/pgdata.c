/* placeholder: src/pgdata.c is being written */
