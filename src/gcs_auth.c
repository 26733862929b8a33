/* placeholder: module being written */
typedef int drb_placeholder_gcs_auth;
