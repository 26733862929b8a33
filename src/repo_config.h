/*
 * repo_config.h — from configuration to repositories.
 *
 * Maps the repoN-* options onto a storage driver (posix, s3, gcs native or gcs via its
 * S3-compatible XML API with HMAC keys) and onto repo_settings (cipher, compression).
 * S3 credentials come from repoN-s3-key/-key-secret/-token when set, else from the
 * standard AWS chain: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, then
 * the shared credentials file (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials, profile
 * AWS_PROFILE or "default").
 */
#ifndef DRB_REPO_CONFIG_H
#define DRB_REPO_CONFIG_H

#include "config.h"
#include "repo.h"
#include "storage.h"

/* The storage driver of repository n; NULL + err (DRB_ERR_CONFIG) on missing settings. */
storage_t  *repo_config_storage(const config_t *cfg, int n);

/* Settings for repository n; out->storage is a new driver the caller owns until
 * repo_open succeeds (then the repo owns it). */
int			repo_config_settings(const config_t *cfg, int n, repo_settings *out);

/* Open repository n (initialised, key unwrapped). */
repo_t	   *repo_config_open(const config_t *cfg, int n);

/* Initialise repository n when needed (repo_create), then open it. */
repo_t	   *repo_config_create_open(const config_t *cfg, int n);

/* Repositories a command works on: --repo=N alone, else every configured one (when
 * all_when_unset) or repo 1. Fills idx[] and returns the count. */
int			repo_config_selected(const config_t *cfg, bool all_when_unset, int idx[REPO_MAX]);

#endif
