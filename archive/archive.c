/* placeholder: module being written */
typedef int drb_placeholder_archive;
