# t_archive.sh — synchronous archive-push and archive-get as PostgreSQL's archive_command and
# restore_command, with repo1 = Swift (encrypted, region 1) and repo2 = s3rver (region 2).
#
# A PostgreSQL 15 cluster archives a 60 s pgbench load while region 2 is frozen for 30 s;
# archive_command keeps a reference copy of every file it is handed, so at the end every
# one of them must be in both repositories and byte-identical after archive-get, and
# pg_waldump must read the retrieved segments. Then: idempotent and conflicting re-push, a
# segment of another cluster and of another PostgreSQL version, missing files, a failing
# region, .history, .partial and .backup files, and a standby built from pg_basebackup that
# replays the archive through archive-get, is promoted and archives its new timeline.
LOAD_SECONDS=${ARCHIVE_LOAD_SECONDS:-60}
pg_start arch || { fail "start a PostgreSQL cluster for the archive test"; return 0; }
psql_a() { "$PG_BIN/psql" -X -q -At -h "$PG_ARCH_SOCK" -p "$PG_ARCH_PORT" -U postgres -d postgres "$@"; }
as_pg() { su postgres -s /bin/sh -c "$1"; }

# the server runs as postgres: it gets its own copy of the binary, the config (mode 600,
# owned by postgres) and directories it can write; root uses a config with its own spool
mkdir -p "$T_DIR/bin" "$T_DIR/ref" "$T_DIR/ref2" "$T_DIR/spool" "$T_DIR/rootspool" "$T_DIR/got1" \
	"$T_DIR/got2" "$T_DIR/misc" "$T_DIR/sb-run"
BIN=$T_DIR/bin/drbackup
cp "$DRBACKUP" "$BIN"
chmod 755 "$T_DIR/bin" "$BIN"
chown postgres:postgres "$T_DIR/ref" "$T_DIR/ref2" "$T_DIR/spool" "$T_DIR/sb-run"

conf=$T_DIR/archive.conf
write_conf "$conf" <<EOC
[global]
$(swift_repo 1 /it/archive)
repo1-cipher-type=aes-256-gcm
repo1-cipher-pass=archive-region-one
repo2-type=s3
repo2-path=/it/archive
repo2-s3-endpoint=$S3RVER_ENDPOINT
repo2-s3-bucket=drb-s3rver
repo2-s3-region=eu-west-1
repo2-s3-uri-style=path
repo2-s3-key=$S3RVER_KEY
repo2-s3-key-secret=$S3RVER_SECRET
repo2-storage-retries=1
repo2-storage-timeout=3
spool-path=$T_DIR/spool

[arch]
pg1-path=$PG_ARCH_DATA
pg1-port=$PG_ARCH_PORT
pg1-socket-path=$PG_ARCH_SOCK
pg1-user=postgres
EOC
root_conf=$T_DIR/archive-root.conf
sed "s#^spool-path=.*#spool-path=$T_DIR/rootspool#" "$conf" | write_conf "$root_conf"
chown postgres:postgres "$conf"
direct() { "$BIN" --config="$root_conf" --stanza=arch "$@"; }
sysid=$("$PG_BIN/pg_controldata" "$PG_ARCH_DATA" | awk -F: '/system identifier/ {gsub(/ /,"",$2); print $2}')
other_sysid=$("$PG_BIN/pg_controldata" "$PG_OTHER_DATA" | awk -F: '/system identifier/ {gsub(/ /,"",$2); print $2}')
archive_dir=stanza/arch/archive/15-$sysid
check "stanza-create in both regions" direct stanza-create

cat >> "$PG_ARCH_DATA/postgresql.conf" <<EOC
archive_mode = on
archive_command = 'cp %p $T_DIR/ref/%f && $BIN --config=$conf --stanza=arch archive-push %p'
archive_timeout = 5
max_wal_size = 256MB
EOC
as_pg "$PG_BIN/pg_ctl -D '$PG_ARCH_DATA' -l '$IT_DIR/pg-arch/server.log' -w -t 60 restart >/dev/null"
"$PG_BIN/pgbench" -i -q -s 5 -h "$PG_ARCH_SOCK" -p "$PG_ARCH_PORT" -U postgres postgres \
	> "$T_DIR/pgbench-init.log" 2>&1

# the base of the standby at the end: taken before the load, so it must replay all of it
SB=$T_DIR/standby
mkdir -p "$SB" && chown postgres:postgres "$SB" && chmod 700 "$SB"
check "pg_basebackup of the primary (base for the standby)" as_pg "$PG_BIN/pg_basebackup -h '$PG_ARCH_SOCK' \
	-p $PG_ARCH_PORT -U postgres -D '$SB' -X stream -c fast"

# ---------------------------------------------------------------------------------------
# load with synchronous archiving; region 2 frozen for 30 s in the middle
# ---------------------------------------------------------------------------------------
s3rver_pid() {	# the s3rver this run's harness started (from its pid list)
	local p
	while read -r p; do
		case $p in pg:*) continue ;; esac
		tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | grep -q 's3rver.js' && { echo "$p"; return 0; }
	done < "$IT_DIR/pids"
	return 1
}
S3RVER_PID=$(s3rver_pid) || { fail "find the s3rver process of this run"; return 0; }
"$PG_BIN/pgbench" -n -c 2 -j 2 -T "$LOAD_SECONDS" -h "$PG_ARCH_SOCK" -p "$PG_ARCH_PORT" -U postgres postgres \
	> "$T_DIR/pgbench.log" 2>&1 &
PGBENCH_PID=$!
sleep 15
failed_before=$(psql_a -c "select failed_count from pg_stat_archiver")
kill -STOP "$S3RVER_PID"
# longer than two attempts against a hung server (2 x (3 s stall limit + curl's averaging)),
# so at least one archive-push must give up while the region is frozen
sleep 30
kill -CONT "$S3RVER_PID"
failed_during=$(psql_a -c "select failed_count from pg_stat_archiver")
wait "$PGBENCH_PID"
check_true "pgbench ran ${LOAD_SECONDS} s with archive_command = drbackup archive-push ($(grep -E '^tps' "$T_DIR/pgbench.log" | head -1))" \
	"grep -q '^number of failed transactions: 0' '$T_DIR/pgbench.log'"
check_true "region 2 frozen for 30 s: archiving failed meanwhile (failed_count $failed_before -> $failed_during)" \
	"[ $failed_during -gt $failed_before ]"
check_true "each failure was one line naming repository 2" \
	"grep -q 'drbackup: ERROR: .*repository 2' '$IT_DIR/pg-arch/server.log'"

# close the last segment, then wait for the archiver to catch up
caught_up() {	# caught_up PSQL-FUNCTION DATA-DIR LAST-WAL
	[ "$($1 -c "select coalesce(last_archived_wal, '') >= '$3' from pg_stat_archiver")" = t ] &&
		! ls "$2/pg_wal/archive_status" | grep -q '\.ready$'
}
wait_archived() {	# wait_archived PSQL-FUNCTION DATA-DIR: switch, then wait up to 120 s
	local last
	last=$($1 -c "select pg_walfile_name(pg_current_wal_lsn())")
	$1 -c "select pg_switch_wal()" > /dev/null
	for _ in $(seq 1 240); do caught_up "$1" "$2" "$last" && return 0; sleep 0.5; done
	caught_up "$1" "$2" "$last"
}
start=$(date +%s)
wait_archived psql_a "$PG_ARCH_DATA"; rc=$?
check_true "after the load the archiver caught up (in $(( $(date +%s) - start )) s)" "[ $rc -eq 0 ]"
stats=$(psql_a -c "select archived_count || ' archived, ' || failed_count || ' failed attempts' from pg_stat_archiver")
nref=$(ls "$T_DIR/ref" | grep -c .)
nseg=$(ls "$T_DIR/ref" | grep -cE '^[0-9A-F]{24}$')
check_true "PostgreSQL handed over $nref files, $nseg of them segments ($stats)" "[ $nseg -ge 15 ]"
check_true "the base backup's .backup file was archived too" "ls '$T_DIR/ref' | grep -qE '^[0-9A-F]{24}\.[0-9A-F]{8}\.backup$'"

# ---------------------------------------------------------------------------------------
# every file PostgreSQL handed over: in both regions, byte-identical
# ---------------------------------------------------------------------------------------
verify_repo() {	# verify_repo N: archive-get every reference file from repository N into gotN
	local f bad=0
	for f in $(ls "$T_DIR/ref"); do
		if ! direct --repo="$1" archive-get "$f" "$T_DIR/got$1/$f" 2>> "$T_DIR/get$1.err"; then
			echo "repo$1: $f missing or unreadable" >> "$T_DIR/verify$1.log"; bad=$((bad + 1)); continue
		fi
		cmp -s "$T_DIR/ref/$f" "$T_DIR/got$1/$f" || { echo "repo$1: $f differs" >> "$T_DIR/verify$1.log"; bad=$((bad + 1)); }
	done
	echo "$bad" > "$T_DIR/verify$1.bad"
}
verify_repo 1 & v1=$!
verify_repo 2 & v2=$!
wait "$v1" "$v2"
check_true "repo1 (Swift): all $nref files present and byte-identical ($(cat "$T_DIR/verify1.bad") bad)" \
	"[ \"\$(cat '$T_DIR/verify1.bad')\" = 0 ]"
check_true "repo2 (s3rver): all $nref files present and byte-identical ($(cat "$T_DIR/verify2.bad") bad)" \
	"[ \"\$(cat '$T_DIR/verify2.bad')\" = 0 ]"
[ -s "$T_DIR/verify1.log" ] && head -5 "$T_DIR/verify1.log"
[ -s "$T_DIR/verify2.log" ] && head -5 "$T_DIR/verify2.log"
check_true "nothing left behind by archive-get (no temporary files)" \
	"! ls '$T_DIR/got1' '$T_DIR/got2' | grep -q drbtmp"
first=$(ls "$T_DIR/got1" | grep -E '^[0-9A-F]{24}$' | sort | head -1)
last=$(ls "$T_DIR/got1" | grep -E '^[0-9A-F]{24}$' | sort | tail -1)
check "pg_waldump reads the retrieved segments $first .. $last" \
	"$PG_BIN/pg_waldump" -q -p "$T_DIR/got1" "$first" "$last"

# ---------------------------------------------------------------------------------------
# re-push: idempotent, conflicting; files that are not this cluster's
# ---------------------------------------------------------------------------------------
seg=$(ls "$T_DIR/ref" | grep -E '^[0-9A-F]{24}$' | sort | sed -n 3p)
listing() { "$BIN" --config="$root_conf" --repo="$1" repo-ls "$archive_dir/${seg:0:16}/$seg-"; }
l1=$(listing 1); l2=$(listing 2)
unchanged() { [ "$(listing 1)" = "$l1" ] && [ "$(listing 2)" = "$l2" ] && [ -n "$l1" ] && [ -n "$l2" ]; }
check "re-push of an archived segment succeeds" direct archive-push "$T_DIR/ref/$seg"
check "  without writing anything (same objects, same times)" unchanged
cp "$T_DIR/ref/$seg" "$T_DIR/misc/$seg"
printf 'XXXX' | dd of="$T_DIR/misc/$seg" bs=1 seek=100000 conv=notrunc status=none
check_fails "pushing other content under an archived name is refused (exit 8)" 8 \
	"$seg.*different content.*refusing to overwrite" direct archive-push "$T_DIR/misc/$seg"
check "  nothing was overwritten" unchanged
rm -f "$T_DIR/misc/back"
direct archive-get "$seg" "$T_DIR/misc/back"
check_same "  and archive-get still returns the original" "$T_DIR/ref/$seg" "$T_DIR/misc/back"

mkdir -p "$T_DIR/misc/other" "$T_DIR/misc/v16"
cp "$PG_OTHER_DATA/pg_wal/000000010000000000000001" "$T_DIR/misc/other/"
check_fails "a segment of another cluster is refused, naming both system identifiers" 8 \
	"$other_sysid.*$sysid" direct archive-push "$T_DIR/misc/other/000000010000000000000001"
cp "$T_DIR/ref/$seg" "$T_DIR/misc/v16/$seg"
printf '\x13\xd1' | dd of="$T_DIR/misc/v16/$seg" bs=1 seek=0 conv=notrunc status=none
check_fails "a segment of another PostgreSQL version is refused, naming both versions" 8 \
	"PostgreSQL 16.*PostgreSQL 15" direct archive-push "$T_DIR/misc/v16/$seg"
printf 'not a wal file\n' > "$T_DIR/misc/RECOVERYXLOG"
check_fails "a file that is not a WAL file is refused" 2 "not a WAL file name" \
	direct archive-push "$T_DIR/misc/RECOVERYXLOG"

# ---------------------------------------------------------------------------------------
# archive-get: missing files are a quiet answer, failures are errors
# ---------------------------------------------------------------------------------------
check_fails "missing segment: exit 1 with one quiet line" 1 \
	"^drbackup: archive-get: WAL file 0000000100000099000000FE not found in any repository$" \
	direct archive-get 0000000100000099000000FE "$T_DIR/misc/none"
check_fails "missing history file: exit 1 with one quiet line" 1 \
	"^drbackup: archive-get: WAL file 0000000A.history not found in any repository$" \
	direct archive-get 0000000A.history "$T_DIR/misc/none"
check_true "  and nothing written" "[ ! -e '$T_DIR/misc/none' ]"
dead=$(free_port)
check_fails "region 2 unreachable and the file not in region 1: an error (exit 4), not 'missing'" 4 \
	"ERROR: .*repository 2" direct --repo2-s3-endpoint="http://127.0.0.1:$dead" --repo2-storage-retries=0 \
	archive-get 0000000100000099000000FE "$T_DIR/misc/none"
rm -f "$T_DIR/misc/back"
check "region 2 unreachable: archive-get is served by region 1" direct \
	--repo2-s3-endpoint="http://127.0.0.1:$dead" --repo2-storage-retries=0 archive-get "$seg" "$T_DIR/misc/back"
check_same "  byte-identical" "$T_DIR/ref/$seg" "$T_DIR/misc/back"
check_fails "--repo=2 pinned while region 2 is unreachable: an error (exit 4)" 4 "ERROR: .*repository 2" \
	direct --repo2-s3-endpoint="http://127.0.0.1:$dead" --repo2-storage-retries=0 --repo=2 \
	archive-get "$seg" "$T_DIR/misc/back2"

# ---------------------------------------------------------------------------------------
# .partial (pushed while region 2 is down, then again), .history
# ---------------------------------------------------------------------------------------
partial=$(ls "$T_DIR/ref" | grep -E '^[0-9A-F]{24}$' | sort | tail -1)
cp "$T_DIR/ref/$partial" "$T_DIR/misc/$partial.partial"
check_fails "push with region 2 unreachable: one line naming repository 2 (exit 4)" 4 \
	"repository 2.*\(it is in repository 1\)" direct --repo2-s3-endpoint="http://127.0.0.1:$dead" \
	--repo2-storage-retries=0 archive-push "$T_DIR/misc/$partial.partial"
check "the retry once it is back succeeds" direct archive-push "$T_DIR/misc/$partial.partial"
printf '1\t0/9000000\tno recovery target specified\n\n2\t0/A000000\tbefore 2026-11-21 05:00:00+00\n' \
	> "$T_DIR/misc/00000005.history"
check "push a .history file" direct archive-push "$T_DIR/misc/00000005.history"
for f in "$partial.partial" 00000005.history; do
	for r in 1 2; do
		rm -f "$T_DIR/misc/back"
		check "$f from repo$r" direct --repo=$r archive-get "$f" "$T_DIR/misc/back"
		check_same "  byte-identical" "$T_DIR/misc/$f" "$T_DIR/misc/back"
	done
done

# ---------------------------------------------------------------------------------------
# a standby replays the archive through archive-get; promoted, it archives timeline 2
# ---------------------------------------------------------------------------------------
mark="written after the base backup $(date +%s%N)"
psql_a -c "create table marker(v text); insert into marker values ('$mark')"
check "the marker's segment is archived" wait_archived psql_a "$PG_ARCH_DATA"
SB_PORT=$(free_port)
cat >> "$SB/postgresql.conf" <<EOC
port = $SB_PORT
unix_socket_directories = '$T_DIR/sb-run'
archive_command = 'cp %p $T_DIR/ref2/%f && $BIN --config=$conf --stanza=arch archive-push %p'
restore_command = '$BIN --config=$conf --stanza=arch archive-get %f "%p"'
wal_retrieve_retry_interval = 1s
EOC
touch "$SB/standby.signal" && chown postgres:postgres "$SB/standby.signal"
echo "pg:$SB" >> "$IT_DIR/pids"
check "the standby starts with restore_command = drbackup archive-get" \
	as_pg "$PG_BIN/pg_ctl -D '$SB' -l '$T_DIR/sb-run/server.log' -w -t 120 start >/dev/null"
psql_sb() { "$PG_BIN/psql" -X -q -At -h "$T_DIR/sb-run" -p "$SB_PORT" -U postgres -d postgres "$@"; }
has_marker() { [ "$(psql_sb -c "select count(*) from marker where v = '$mark'" 2>/dev/null)" = 1 ]; }
start=$(date +%s)
for _ in $(seq 1 240); do has_marker && break; sleep 0.5; done
check "the standby replayed the archived WAL up to the marker ($(( $(date +%s) - start )) s)" has_marker
backup_start=$(ls "$T_DIR/ref" | grep -E '\.backup$' | head -1 | cut -c1-24)
n_after=$(ls "$T_DIR/ref" | grep -E '^[0-9A-F]{24}$' | awk -v s="$backup_start" '$0 >= s' | grep -c .)
restored=$(grep -o 'restored log file "[0-9A-F]*"' "$T_DIR/sb-run/server.log" | sort -u | grep -c .)
check_true "  fetching every segment from the base backup's start on from the archive ($restored of $n_after)" \
	"[ $restored -ge $n_after ]"
check_true "  'not found' answers were quiet lines, never ERROR" \
	"grep -q 'drbackup: archive-get: .* not found in any repository' '$T_DIR/sb-run/server.log' &&
	! grep -q 'drbackup: ERROR' '$T_DIR/sb-run/server.log'"

check "promote the standby" as_pg "$PG_BIN/pg_ctl -D '$SB' -w -t 60 promote >/dev/null"
for _ in $(seq 1 120); do [ "$(psql_sb -c 'select pg_is_in_recovery()')" = f ] && break; sleep 0.5; done
psql_sb -c "insert into marker values ('on timeline 2')"
check "the promoted standby archives its new timeline" wait_archived psql_sb "$SB"
check_true "  starting with its history file 00000002.history" "[ -f '$T_DIR/ref2/00000002.history' ]"
check_true "  and a segment of timeline 2" "ls '$T_DIR/ref2' | grep -qE '^00000002[0-9A-F]{16}$'"
bad=0
for f in $(ls "$T_DIR/ref2"); do
	for r in 1 2; do
		rm -f "$T_DIR/misc/back"
		if ! direct --repo=$r archive-get "$f" "$T_DIR/misc/back" || ! cmp -s "$T_DIR/ref2/$f" "$T_DIR/misc/back"; then
			echo "repo$r: $f missing or different"; bad=$((bad + 1))
		fi
	done
done
check_true "every file of the promoted standby ($(ls "$T_DIR/ref2" | tr '\n' ' ')) is in both regions, byte-identical" \
	"[ $bad -eq 0 ]"

pg_stop "$SB"
pg_stop "$PG_ARCH_DATA"
rm -rf "$T_DIR/got1" "$T_DIR/got2" "$T_DIR/ref" "$T_DIR/ref2"
