/* placeholder: archive/wal_inventory.c is being written */
