/* placeholder: src/catalog.c is being written */
