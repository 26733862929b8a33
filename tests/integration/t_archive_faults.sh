# t_archive_faults.sh — synchronous archive-push as PostgreSQL's archive_command under pgbench
# load, with repo1 behind lib/faultproxy.py in front of Swift (503 SlowDown, connection
# resets, cut bodies, 5 s stalls for a share of requests) and repo2 on s3rver. The
# archive_command keeps a reference copy of every segment it is handed; at the end every
# one of them must be in both repositories, byte-identical. Failed pushes are fine
# (PostgreSQL retries them, pg_stat_archiver counts them); a missing segment is not.
LOAD_SECONDS=${ARCHIVE_FAULTS_LOAD_SECONDS:-35}
pg_start af || { fail "start a PostgreSQL cluster for the archive fault test"; return 0; }
psql_af() { "$PG_BIN/psql" -X -q -At -h "$PG_AF_SOCK" -p "$PG_AF_PORT" -U postgres -d postgres "$@"; }

# the server runs as postgres: it needs the binary, the config and the directories
mkdir -p "$T_DIR/bin" "$T_DIR/ref" "$T_DIR/spool" "$T_DIR/got"
cp "$DRBACKUP" "$T_DIR/bin/drbackup"
chown postgres:postgres "$T_DIR/ref" "$T_DIR/spool"

PROXY_PORT=$(free_port)
/usr/bin/python3 tests/integration/lib/faultproxy.py --listen "$PROXY_PORT" --upstream "127.0.0.1:$SWIFT_PORT" \
	--every 5 --faults slowdown,reset,cut,stall --stall-seconds 5 2>> "$T_DIR/proxy.log" &
PROXY_PID=$!
echo "$PROXY_PID" >> "$IT_DIR/pids"
wait_for curl -s -o /dev/null "http://127.0.0.1:$PROXY_PORT/healthcheck"

conf=$T_DIR/faults.conf
write_conf "$conf" <<EOC
[global]
$(swift_repo 1 /it/archive-faults)
repo1-cipher-type=aes-256-gcm
repo1-cipher-pass=archive-faults-one
repo1-storage-retries=5
repo1-storage-timeout=3
repo2-type=s3
repo2-path=/it/archive-faults
repo2-s3-endpoint=$S3RVER_ENDPOINT
repo2-s3-bucket=drb-s3rver
repo2-s3-region=eu-west-1
repo2-s3-uri-style=path
repo2-s3-key=$S3RVER_KEY
repo2-s3-key-secret=$S3RVER_SECRET
repo2-cipher-type=aes-256-gcm
repo2-cipher-pass=archive-faults-two
spool-path=$T_DIR/spool

[af]
pg1-path=$PG_AF_DATA
pg1-port=$PG_AF_PORT
pg1-socket-path=$PG_AF_SOCK
pg1-user=postgres
EOC
chown postgres:postgres "$conf"
direct() { "$DRBACKUP" --config="$conf" --stanza=af "$@"; }
check "stanza-create in both repositories (direct)" direct stanza-create

# archive_command: reference copy first, then drbackup through the proxy
via="--repo1-s3-endpoint=http://127.0.0.1:$PROXY_PORT"
cat >> "$PG_AF_DATA/postgresql.conf" <<EOC
archive_mode = on
archive_command = 'cp %p $T_DIR/ref/%f && $T_DIR/bin/drbackup --config=$conf --stanza=af $via archive-push %p'
max_wal_size = 256MB
EOC
su postgres -s /bin/sh -c "$PG_BIN/pg_ctl -D '$PG_AF_DATA' -l '$IT_DIR/pg-af/server.log' -w -t 60 restart >/dev/null"

"$PG_BIN/pgbench" -i -q -s 5 -h "$PG_AF_SOCK" -p "$PG_AF_PORT" -U postgres postgres > "$T_DIR/pgbench-init.log" 2>&1
# pgbench alone fills a segment every few seconds here: a WAL switch every 1.5 s on top
# makes PostgreSQL hand over several dozen segments during the load
switch_wal() {
	local end=$(( $(date +%s) + LOAD_SECONDS ))
	while [ "$(date +%s)" -lt "$end" ]; do psql_af -c "select pg_switch_wal()" >/dev/null; sleep 1.5; done
}
switch_wal &
switcher=$!
check "pgbench for ${LOAD_SECONDS} s while archive_command pushes through the faults" \
	"$PG_BIN/pgbench" -n -c 4 -j 2 -T "$LOAD_SECONDS" -h "$PG_AF_SOCK" -p "$PG_AF_PORT" -U postgres postgres
wait "$switcher"

# close the last segment, then wait for the archiver to catch up (up to 120 s)
last=$(psql_af -c "select pg_walfile_name(pg_current_wal_lsn())")
psql_af -c "select pg_switch_wal()" >/dev/null
caught_up() {
	[ "$(psql_af -c "select coalesce(last_archived_wal, '') >= '$last' from pg_stat_archiver")" = t ] &&
		[ -z "$(ls "$PG_AF_DATA/pg_wal/archive_status" | grep '\.ready$')" ]
}
start=$(date +%s)
for _ in $(seq 1 240); do caught_up && break; sleep 0.5; done
check_true "the archiver caught up to $last in $(( $(date +%s) - start )) s" caught_up
stats=$(psql_af -c "select archived_count || ' archived, ' || failed_count || ' failed attempts' from pg_stat_archiver")
nref=$(ls "$T_DIR/ref" | grep -c .)
check_true "PostgreSQL handed over enough segments to mean something ($nref; pg_stat_archiver: $stats)" \
	"[ $nref -ge 20 ]"
fault_count() { grep -c -E " ($1)\$" "$T_DIR/proxy.log"; }
check_true "faults were really injected: $(fault_count slowdown) SlowDown, $(fault_count reset) resets, $(fault_count cut) cut and $(fault_count stall) stalled answers in $(grep -c . "$T_DIR/proxy.log") requests" \
	"[ $(fault_count 'slowdown|reset|cut|stall') -ge 20 ] && [ $(fault_count slowdown) -gt 0 ] && [ $(fault_count reset) -gt 0 ] && [ $(fault_count cut) -gt 0 ] && [ $(fault_count stall) -gt 0 ]"

# every segment PostgreSQL handed over is in both repositories, byte-identical; a sample is
# also read back from repo1 through the faults (cut and stalled WAL bodies are resumed)
missing_in() {	# missing_in REPO EVERY [OPTIONS]: archive-get every EVERY-th reference file, compare
	local r=$1 every=$2 f bad=0
	shift 2
	for f in $(ls "$T_DIR/ref" | awk -v n="$every" 'NR % n == 0'); do
		rm -f "$T_DIR/got/$f"
		if ! direct --repo="$r" "$@" archive-get "$f" "$T_DIR/got/$f" 2>> "$T_DIR/get.err"; then
			echo "repo$r: $f missing or unreadable" >&2; bad=$((bad + 1)); continue
		fi
		cmp -s "$T_DIR/ref/$f" "$T_DIR/got/$f" || { echo "repo$r: $f differs" >&2; bad=$((bad + 1)); }
	done
	rm -f "$T_DIR"/got/*
	return $bad
}
check "repo1, read back through the faults: every 4th segment byte-identical" missing_in 1 4 "$via"
kill "$PROXY_PID" 2>/dev/null; wait "$PROXY_PID" 2>/dev/null
check "repo1: all $nref segments present and byte-identical" missing_in 1 1
check "repo2: all $nref segments present and byte-identical" missing_in 2 1
no_pending_uploads() { ! aws_swift s3api list-multipart-uploads --bucket drb-swift --prefix it/archive-faults/ | grep -q UploadId; }
check "no multipart upload left pending in repo1" no_pending_uploads

pg_stop "$PG_AF_DATA"
