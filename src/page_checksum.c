/* placeholder: src/page_checksum.c is being written */
