/* placeholder: src/manifest.c is being written */
