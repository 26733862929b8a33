# t_archive_async.sh — asynchronous archiving (archive-async=y) as PostgreSQL's
# archive_command and restore_command, repo1 on Swift, repo2 on a private s3rver (a
# second region this test may kill and restart on the same port and data directory).
# The archive_command keeps a reference copy of every file it is handed; each case ends
# with every one of them in BOTH repositories, byte-identical after archive-get:
#   1. pgbench load with the push worker pushing ahead (process-max=2);
#   2. the worker killed with SIGKILL several times while it uploads;
#   3. region 2 killed during the load and restarted later: archive-push keeps succeeding
#      (repo1 + a local copy in the spool's lag/), the copies drain when it is back;
#   4. a copy of the cluster (pg_basebackup) recovers from the archive with archive-get in
#      asynchronous mode: the prefetch worker fills the spool's in/ and recovery uses it.
LOAD_SECONDS=${ARCHIVE_ASYNC_LOAD_SECONDS:-60}
pg_start async || { fail "start a PostgreSQL cluster for the async archive test"; return 0; }
psql_async() { "$PG_BIN/psql" -X -q -At -h "$PG_ASYNC_SOCK" -p "$PG_ASYNC_PORT" -U postgres -d postgres "$@"; }
pgbench_async() { "$PG_BIN/pgbench" -n -c 2 -j 2 -h "$PG_ASYNC_SOCK" -p "$PG_ASYNC_PORT" -U postgres "$@" postgres; }

# the server runs as postgres: it needs the binary, the config and the directories
mkdir -p "$T_DIR/bin" "$T_DIR/ref" "$T_DIR/spool" "$T_DIR/got" "$T_DIR/log" "$T_DIR/s3rver"
cp "$DRBACKUP" "$T_DIR/bin/drbackup"
chown postgres:postgres "$T_DIR/ref" "$T_DIR/spool" "$T_DIR/log"
SPOOL=$T_DIR/spool/archive/async

# region 2: a private s3rver, restartable on the same port and data directory
R2_PORT=$(free_port)
R2_PID=
r2_start() {
	local src
	src=$(cd tests/integration/s3rver && pwd)
	node --openssl-legacy-provider "$src/node_modules/s3rver/bin/s3rver.js" -d "$T_DIR/s3rver" \
		-a 127.0.0.1 -p "$R2_PORT" --no-vhost-buckets -s >> "$T_DIR/s3rver.log" 2>&1 &
	R2_PID=$!
	echo "$R2_PID" >> "$IT_DIR/pids"
	wait_for curl -s -o /dev/null "http://127.0.0.1:$R2_PORT/"
}
r2_kill() { kill -9 "$R2_PID" 2>/dev/null; wait "$R2_PID" 2>/dev/null; R2_PID=; }
r2_start || { fail "start a private s3rver for region 2"; return 0; }
aws_r2() { S3RVER_ENDPOINT=http://127.0.0.1:$R2_PORT aws_s3rver "$@"; }
make_bucket aws_r2 drb-region2

conf=$T_DIR/async.conf
write_conf "$conf" <<EOC
[global]
$(swift_repo 1 /it/archive-async)
repo1-cipher-type=aes-256-gcm
repo1-cipher-pass=archive-async-one
repo2-type=s3
repo2-path=/it/archive-async
repo2-s3-endpoint=http://127.0.0.1:$R2_PORT
repo2-s3-bucket=drb-region2
repo2-s3-region=eu-west-1
repo2-s3-uri-style=path
repo2-s3-key=$S3RVER_KEY
repo2-s3-key-secret=$S3RVER_SECRET
repo2-cipher-type=aes-256-gcm
repo2-cipher-pass=archive-async-two
repo2-storage-retries=2
repo2-storage-timeout=5
archive-async=y
process-max=2
spool-path=$T_DIR/spool
archive-timeout=60
log-path=$T_DIR/log

[async]
pg1-path=$PG_ASYNC_DATA
pg1-port=$PG_ASYNC_PORT
pg1-socket-path=$PG_ASYNC_SOCK
pg1-user=postgres
EOC
chown postgres:postgres "$conf"
direct() { "$DRBACKUP" --config="$conf" --stanza=async "$@"; }
check "stanza-create in both repositories" direct stanza-create

cat >> "$PG_ASYNC_DATA/postgresql.conf" <<EOC
archive_mode = on
archive_command = 'cp %p $T_DIR/ref/%f && $T_DIR/bin/drbackup --config=$conf --stanza=async archive-push %p'
max_wal_size = 256MB
wal_keep_size = 0
EOC
su postgres -s /bin/sh -c "$PG_BIN/pg_ctl -D '$PG_ASYNC_DATA' -l '$IT_DIR/pg-async/server.log' -w -t 60 restart >/dev/null"
"$PG_BIN/pgbench" -i -q -s 5 -h "$PG_ASYNC_SOCK" -p "$PG_ASYNC_PORT" -U postgres postgres > "$T_DIR/pgbench-init.log" 2>&1

# close the current segment, then wait until PostgreSQL has archived it (up to 120 s)
archive_caught_up() {
	local last
	last=$(psql_async -c "select pg_walfile_name(pg_current_wal_lsn())")
	psql_async -c "select pg_switch_wal()" >/dev/null
	for _ in $(seq 1 240); do
		[ "$(psql_async -c "select coalesce(last_archived_wal, '') >= '$last' from pg_stat_archiver")" = t ] &&
			[ -z "$(ls "$PG_ASYNC_DATA/pg_wal/archive_status" | grep '\.ready$')" ] && return 0
		sleep 0.5
	done
	echo "the archiver did not reach $last: $(psql_async -c 'select * from pg_stat_archiver')" >&2
	return 1
}
failed_count() { psql_async -c "select failed_count from pg_stat_archiver"; }

# every reference file not checked yet is in both repositories, byte-identical (direct
# archive-get, synchronous); prints how many it checked
: > "$T_DIR/verified"
missing_in_both() {
	local f r bad=0 n=0
	for f in $(ls "$T_DIR/ref"); do
		grep -qx "$f" "$T_DIR/verified" && continue
		n=$((n + 1))
		for r in 1 2; do
			rm -f "$T_DIR/got/$f"
			if ! direct --no-archive-async --repo=$r archive-get "$f" "$T_DIR/got/$f" 2>> "$T_DIR/get.err"; then
				echo "repo$r: $f missing or unreadable" >&2; bad=$((bad + 1)); continue
			fi
			cmp -s "$T_DIR/ref/$f" "$T_DIR/got/$f" || { echo "repo$r: $f differs" >&2; bad=$((bad + 1)); }
		done
		[ $bad -eq 0 ] && echo "$f" >> "$T_DIR/verified"
	done
	rm -f "$T_DIR"/got/*
	echo "$n files checked" >&2
	return $bad
}
worker_pid() { [ -f "$SPOOL/worker.lock" ] && tr -dc 0-9 < "$SPOOL/worker.lock"; }
worker_alive() { local p; p=$(worker_pid); [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }

# --- 1. load with the worker pushing ahead --------------------------------------------
fails0=$(failed_count)
check "pgbench for $LOAD_SECONDS s with asynchronous archiving" pgbench_async -T "$LOAD_SECONDS"
check "the archiver caught up" archive_caught_up
nref=$(ls "$T_DIR/ref" | grep -c .)
check_true "PostgreSQL archived enough segments to mean something ($nref)" "[ $nref -ge 5 ]"
check_true "no archive_command failed ($(( $(failed_count) - fails0 )))" "[ $(failed_count) -eq $fails0 ]"
check_true "a push worker ran (worker.lock names a pid)" "[ -n \"\$(worker_pid)\" ]"
acked=$(grep -c ' archived ' "$SPOOL/worker.log")
check_true "the worker archived the segments ahead of archive-push ($acked acknowledged)" "[ $acked -ge $((nref - 2)) ]"
check "case 1: every segment in both repositories, byte-identical" missing_in_both
check_true "nothing left in the spool's out/ ($(ls "$SPOOL/out" | wc -l) files)" \
	"[ -z \"\$(ls '$SPOOL/out' | grep -v '\\.ok$')\" ]"

echo "# case 1 done after $SECONDS s"

# --- 2. the worker killed with SIGKILL while it uploads --------------------------------
fails0=$(failed_count)
starts0=$(grep -c 'worker started' "$SPOOL/worker.log")
pgbench_async -T 25 > "$T_DIR/pgbench-kill.log" 2>&1 &
bench=$!
kills=0
for _ in $(seq 1 10); do
	sleep 2
	# a fresh segment, then the kill while the worker uploads it
	if worker_alive; then
		psql_async -c "select pg_switch_wal()" >/dev/null
		sleep 0.1
		kill -9 "$(worker_pid)" 2>/dev/null && kills=$((kills + 1))
	fi
done
wait "$bench"
check_true "the worker was killed $kills times during the load" "[ $kills -ge 3 ]"
check "the archiver caught up after the kills" archive_caught_up
starts=$(( $(grep -c 'worker started' "$SPOOL/worker.log") - starts0 ))
check_true "archive-push started a new worker each time ($starts starts)" "[ $starts -ge $kills ]"
fails=$(( $(failed_count) - fails0 ))
check_true "pg_stat_archiver shows no or few failures ($fails)" "[ $fails -le 2 ]"
check_true "no temp file left in the spool" "[ -z \"\$(find '$SPOOL' -name '*.tmp')\" ]"
check "case 2: every segment in both repositories, byte-identical" missing_in_both
echo "# case 2 done after $SECONDS s"

# --- 3. region 2 killed during the load, restarted later -------------------------------
fails0=$(failed_count)
pgbench_async -T 30 > "$T_DIR/pgbench-region.log" 2>&1 &
bench=$!
sleep 5
r2_kill
lag_max=0
for i in $(seq 1 30); do
	sleep 0.5
	# more segments while region 2 is down (pgbench alone may fill few)
	[ $((i % 4)) -eq 0 ] && psql_async -c "select pg_switch_wal()" >/dev/null
	n=$(ls "$SPOOL/lag/repo2" 2>/dev/null | grep -c .)
	[ "$n" -gt "$lag_max" ] && lag_max=$n
done
r2_start
wait "$bench"
check_true "archive-push kept succeeding with region 2 down: the spool held up to $lag_max copies for it" \
	"[ $lag_max -ge 3 ]"
check "the archiver caught up" archive_caught_up
fails=$(( $(failed_count) - fails0 ))
check_true "pg_stat_archiver shows no or few failures ($fails)" "[ $fails -le 2 ]"
lag_drained() { [ -z "$(ls "$SPOOL/lag/repo2" 2>/dev/null)" ]; }
for _ in $(seq 1 120); do lag_drained && break; sleep 0.5; done
check_true "the copies drained into region 2 once it answered" lag_drained
check_true "the worker logged the catch-up" "grep -q 'repository 2: pushed' '$SPOOL/worker.log'"
check "case 3: every segment in both repositories, byte-identical" missing_in_both
echo "# case 3 done after $SECONDS s"

# --- 4. recovery from the archive with prefetching --------------------------------------
COPY=$T_DIR/copy
mkdir -p "$COPY" "$T_DIR/copy-sock" "$T_DIR/spool-get"
chown postgres:postgres "$COPY" "$T_DIR/copy-sock" "$T_DIR/spool-get"
chmod 700 "$COPY"
check "pg_basebackup of the cluster" su postgres -s /bin/sh -c \
	"$PG_BIN/pg_basebackup -D '$COPY/data' -h '$PG_ASYNC_SOCK' -p $PG_ASYNC_PORT -U postgres -X none -c fast"
psql_async -c "create table marker (note text)"
pgbench_async -T 15 > "$T_DIR/pgbench-copy.log" 2>&1
psql_async -c "insert into marker values ('replayed from the archive')"
check "the archiver caught up after the marker" archive_caught_up

COPY_PORT=$(free_port)
get_conf=$T_DIR/get.conf
sed -e "s|^spool-path=.*|spool-path=$T_DIR/spool-get|" -e "s|^pg1-path=.*|pg1-path=$COPY/data|" \
	"$conf" | write_conf "$get_conf"
chown postgres:postgres "$get_conf"
cat >> "$COPY/data/postgresql.conf" <<EOC
port = $COPY_PORT
unix_socket_directories = '$T_DIR/copy-sock'
archive_mode = off
restore_command = '$T_DIR/bin/drbackup --config=$get_conf --stanza=async --log-level-file=detail archive-get %f "%p"'
EOC
touch "$COPY/data/recovery.signal"
chown postgres:postgres "$COPY/data/postgresql.conf" "$COPY/data/recovery.signal"
check "the copy starts and recovers from the archive" su postgres -s /bin/sh -c \
	"$PG_BIN/pg_ctl -D '$COPY/data' -l '$COPY/server.log' -w -t 120 start >/dev/null"
echo "pg:$COPY/data" >> "$IT_DIR/pids"
psql_copy() { "$PG_BIN/psql" -X -q -At -h "$T_DIR/copy-sock" -p "$COPY_PORT" -U postgres -d postgres "$@"; }
promoted() { [ "$(psql_copy -c 'select pg_is_in_recovery()' 2>/dev/null)" = f ]; }
for _ in $(seq 1 240); do promoted && break; sleep 0.5; done
check_true "recovery reached the end of the archive and promoted" promoted
check_true "the copy holds the row written after the base backup" \
	"[ \"\$(psql_copy -c 'select note from marker' 2>/dev/null)\" = 'replayed from the archive' ]"
hits=$(grep -c 'found in the spool' "$T_DIR/log/async-archive-get.log" 2>/dev/null)
fetched=$(grep -c 'prefetched' "$T_DIR/spool-get/archive/async/get.log" 2>/dev/null)
check_true "archive-get took segments from the prefetch spool ($hits hits, $fetched prefetched)" \
	"[ ${hits:-0} -ge 3 ] && [ ${fetched:-0} -ge ${hits:-0} ]"
pg_stop "$COPY/data"
echo "# case 4 done after $SECONDS s"

# --- the end: stop what this test started -------------------------------------------------
pg_stop "$PG_ASYNC_DATA"
for lock in "$SPOOL/worker.lock" "$T_DIR/spool-get/archive/async/get.lock"; do
	p=$([ -f "$lock" ] && tr -dc 0-9 < "$lock")
	[ -n "$p" ] && kill "$p" 2>/dev/null
done
r2_kill
