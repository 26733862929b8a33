/*
 * cmd_stanza.c — stanza-create: record the cluster's identity in every repository.
 *
 * Connects to the cluster, reads its system identifier and version, initialises each
 * selected repository if needed, and writes the stanza record. A repository that already
 * holds the stanza for the same cluster is left as is; one that holds it for another
 * cluster is refused (nothing is written there).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "command.h"
#include "error.h"
#include "log.h"
#include "pg.h"
#include "repo_config.h"
#include "stanza.h"

static int
stanza_create_in(const config_t *cfg, int n, const stanza_info *want)
{
	repo_t	   *repo = repo_config_create_open(cfg, n);
	stanza_info have;
	int			rc;

	if (repo == NULL)
		return -1;				/* the repository layer names the repository */
	rc = stanza_info_read(repo, want->name, &have);
	if (rc == 0)
	{
		if (have.system_id != want->system_id || have.pg_version != want->pg_version)
			rc = err_set(DRB_ERR_STANZA, "repository %d already holds stanza '%s' for another "
						 "cluster (system identifier %" PRIu64 ", PostgreSQL %d) but the cluster "
						 "at pg1-path has system identifier %" PRIu64 ", PostgreSQL %d: refusing to "
						 "mix them", n, want->name, have.system_id, have.pg_version,
						 want->system_id, want->pg_version);
		else
			printf("stanza '%s' already exists in repository %d (system identifier %" PRIu64 ")\n",
				   want->name, n, want->system_id);
	}
	else if (err_kind() == DRB_ERR_NOT_FOUND)
	{
		err_clear();
		rc = stanza_info_write(repo, want);
		if (rc == 0)
			printf("stanza '%s' created in repository %d (system identifier %" PRIu64
				   ", PostgreSQL %d)\n", want->name, n, want->system_id, want->pg_version);
	}
	repo_close(repo);
	return rc;
}

int
cmd_stanza_create(config_t *cfg)
{
	const char *stanza = cfg_str(cfg, "stanza");
	int			idx[REPO_MAX];
	int			nrepo;
	pg_conn    *pc;
	pg_cluster_info ci;
	stanza_info want = {0};
	time_t		now = time(NULL);
	struct tm	tm;
	int			failures = 0;
	char		first_error[2048] = "";
	drb_err		first_kind = DRB_OK;

	if (stanza == NULL)
		return err_set(DRB_ERR_USAGE, "stanza-create needs --stanza=NAME");
	if (!stanza_name_valid(stanza))
		return err_set(DRB_ERR_USAGE, "invalid stanza name '%s' (use letters, digits, '_', '.', '-')",
					   stanza);
	if (cfg_str(cfg, "pg1-path") == NULL)
		return err_set(DRB_ERR_CONFIG, "stanza-create needs pg1-path (the cluster's data directory)");

	pc = pg_connect(cfg);
	if (pc == NULL)
		return -1;
	if (pg_cluster_check(pc, cfg, &ci) != 0)
	{
		pg_disconnect(pc);
		return -1;
	}
	pg_disconnect(pc);

	snprintf(want.name, sizeof(want.name), "%s", stanza);
	want.system_id = ci.system_id;
	want.pg_version = ci.version_major;
	want.pg_version_num = ci.version_num;
	gmtime_r(&now, &tm);
	strftime(want.created, sizeof(want.created), "%Y-%m-%dT%H:%M:%SZ", &tm);

	/* every selected repository is tried; the first error is reported */
	nrepo = repo_config_selected(cfg, true, idx);
	for (int i = 0; i < nrepo; i++)
	{
		if (stanza_create_in(cfg, idx[i], &want) != 0)
		{
			if (failures++ == 0)
			{
				snprintf(first_error, sizeof(first_error), "%s", err_msg());
				first_kind = err_kind();
			}
			else
				log_error("%s", err_msg());
		}
	}
	if (failures)
		return err_set(first_kind, "%s", first_error);
	return 0;
}
