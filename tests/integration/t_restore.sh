# t_restore.sh — restore and point-in-time recovery against a real PostgreSQL 15 cluster with
# data checksums; archive_command pushes to repo1 = posix and repo2 = Swift s3api
# (encrypted). Every drbackup command and every restored server runs as postgres.
#
# Marker rows (id, clock_timestamp()) are committed one by one while pgbench runs, with a
# full and an incr backup in between; the moments between markers are remembered as time,
# LSN, xid and restore-point targets. Each restore is started as a server on a free port
# and must promote holding exactly the markers committed at or before its target, with the
# pgbench invariant, pg_amcheck and (after shutdown) pg_checksums clean:
#   --to-time from repo1 (incr chosen) and from repo2 (full chosen), --to-lsn, --to-xid,
#   --to-name, --immediate, latest, and --to-time on timeline 2 (a PITR promoted with
#   archiving on, then restored again with --target-timeline=latest).
# pg_verifybackup accepts a fresh restore and rejects it once a byte is flipped; --delta
# onto that copy (a few files changed, a few extra) writes exactly the changed files,
# fetches only their objects and removes the extras without following a link out.
# Refusals, each one line, non-zero, nothing written: a target outside the window, a
# non-empty target, the running server's own directory, and hostile manifests ('..' path,
# a link that is not a tablespace, a tablespace pointing into the target).
pg_start rst || { fail "start a PostgreSQL cluster for the restore test"; return 0; }
psql_r() { "$PG_BIN/psql" -X -q -At -h "$PG_RST_SOCK" -p "$PG_RST_PORT" -U postgres -d postgres "$@"; }
as_pg() { su postgres -s /bin/sh -c "$1"; }
py() { python3 - "$@"; }

RST=$T_DIR/rst				# restored clusters, their sockets and logs (postgres's)
mkdir -p "$T_DIR/bin" "$T_DIR/repo1" "$T_DIR/spool" "$T_DIR/tmp" "$RST/sock" "$RST/logs"
BIN=$T_DIR/bin/drbackup
cp "$DRBACKUP" "$BIN"
chmod 755 "$T_DIR/bin" "$BIN"
chown -R postgres:postgres "$T_DIR/repo1" "$T_DIR/spool" "$T_DIR/tmp" "$RST"

conf=$T_DIR/restore.conf
write_conf "$conf" <<EOC
[global]
repo1-path=$T_DIR/repo1
$(swift_repo 2 /it/restore)
repo2-cipher-type=aes-256-gcm
repo2-cipher-pass=restore-region-two
spool-path=$T_DIR/spool
lock-path=$T_DIR/tmp
process-max=2
start-fast=y
archive-timeout=60
expire-auto=n

[rs]
pg1-path=$PG_RST_DATA
pg1-port=$PG_RST_PORT
pg1-socket-path=$PG_RST_SOCK
pg1-user=postgres
EOC
chown postgres:postgres "$conf"
drb() { su postgres -s /bin/sh -c "TMPDIR=$T_DIR/tmp $BIN --config=$conf --stanza=rs $*"; }

check "stanza-create (posix + Swift)" drb stanza-create
cat >> "$PG_RST_DATA/postgresql.conf" <<EOC
archive_mode = on
archive_command = '$BIN --config=$conf --stanza=rs archive-push %p'
archive_timeout = 5
max_wal_size = 256MB
EOC
as_pg "$PG_BIN/pg_ctl -D '$PG_RST_DATA' -l '$IT_DIR/pg-rst/server.log' -w -t 60 restart >/dev/null"
"$PG_BIN/pgbench" -i -q -s 5 -h "$PG_RST_SOCK" -p "$PG_RST_PORT" -U postgres postgres > "$T_DIR/pgbench-init.log" 2>&1
psql_r -c "CREATE TABLE marker (id int PRIMARY KEY, at timestamptz NOT NULL)"
# a tablespace: every restore relocates it next to its data directory (DIR.ts1)
mkdir -p "$T_DIR/ts1"; chown postgres:postgres "$T_DIR/ts1"
psql_r -c "CREATE TABLESPACE ts1 LOCATION '$T_DIR/ts1'"
psql_r -c "CREATE TABLE ts_table TABLESPACE ts1 AS SELECT g FROM generate_series(1, 10000) g"
TSOID=$(psql_r -c "SELECT oid FROM pg_tablespace WHERE spcname = 'ts1'")

# mark N: commit marker N on its own; prints the xid of its transaction
mark() { psql_r -c "INSERT INTO marker VALUES ($1, clock_timestamp()) RETURNING txid_current()"; }
# a moment strictly between the marker just committed and the next one (UTC text)
moment() {
	sleep 0.3
	psql_r -c "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'"
	sleep 0.3
}
last_label() {	# the newest backup in repo1's catalog
	drb --repo=1 repo-get stanza/rs/backup/backup.catalog "$T_DIR/tmp/catalog.json" &&
		python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["backups"][-1]["label"])' "$T_DIR/tmp/catalog.json"
}

# ---------------------------------------------------------------------------------------
# markers, backups and targets while pgbench writes
# ---------------------------------------------------------------------------------------
"$PG_BIN/pgbench" -n -c 2 -T 30 -h "$PG_RST_SOCK" -p "$PG_RST_PORT" -U postgres postgres > "$T_DIR/pgbench.log" 2>&1 &
load=$!
sleep 1
mark 1 >/dev/null
check "full backup to both repositories while pgbench runs" drb backup --type=full
FULL=$(last_label)
sleep 1.1	# a backup reaches only targets after its stop's second (stop times are whole seconds)
mark 2 >/dev/null
T2=$(moment)
check "incr backup while pgbench runs" drb backup --type=incr
INCR=$(last_label)
sleep 1.1
mark 3 >/dev/null
T3=$(moment)
mark 4 >/dev/null
L4=$(psql_r -c "SELECT pg_current_wal_lsn()")
sleep 0.3
X5=$(mark 5)
sleep 0.3
mark 6 >/dev/null
psql_r -c "SELECT pg_create_restore_point('before seven')" >/dev/null
sleep 0.3
mark 7 >/dev/null
wait $load
mark 8 >/dev/null
check_true "backups $FULL and $INCR, targets T2=$T2 T3=$T3 L4=$L4 X5=$X5" \
	'[[ "$INCR" == ${FULL}_*I ]] && [ -n "$T2" ] && [ -n "$T3" ] && [ -n "$L4" ] && [ -n "$X5" ]'

# all of it archived: switch and wait until the segment is in both repositories
wait_archived() {	# wait_archived SOCK PORT
	local seg
	seg=$("$PG_BIN/psql" -X -q -At -h "$1" -p "$2" -U postgres -c "SELECT pg_walfile_name(pg_switch_wal())")
	for _ in $(seq 120); do
		[ "$("$PG_BIN/psql" -X -q -At -h "$1" -p "$2" -U postgres -c "SELECT last_archived_wal >= '$seg' FROM pg_stat_archiver")" = t ] && return 0
		sleep 0.5
	done
	return 1
}
check "the WAL up to the last marker is archived" wait_archived "$PG_RST_SOCK" "$PG_RST_PORT"

# ---------------------------------------------------------------------------------------
# restore, start, check
# ---------------------------------------------------------------------------------------
psql_p() { local port=$1; shift; "$PG_BIN/psql" -X -q -At -h "$RST/sock" -p "$port" -U postgres -d postgres "$@"; }
restore_to() {	# restore_to DIR ARGS...: a new directory (tablespace in DIR.ts1), as postgres
	local dir=$1; shift
	rm -rf "$dir" "$dir.ts1"
	drb restore --pgdata="$dir" --tablespace-map="$TSOID=$dir.ts1" "$@"
}
start_restored() {	# start_restored DIR PORT [archive]
	cat >> "$1/postgresql.auto.conf" <<EOC
port = $2
listen_addresses = ''
unix_socket_directories = '$RST/sock'
EOC
	[ "${3:-}" = archive ] || echo "archive_mode = off" >> "$1/postgresql.auto.conf"
	as_pg "$PG_BIN/pg_ctl -D '$1' -l '$RST/logs/$(basename "$1").log' -w -t 120 start >/dev/null"
}
wait_promoted() {
	for _ in $(seq 240); do
		[ "$(psql_p "$1" -c 'SELECT pg_is_in_recovery()' 2>/dev/null)" = f ] && return 0
		sleep 0.5
	done
	return 1
}
invariant_sql="SELECT (SELECT sum(abalance) FROM pgbench_accounts) = (SELECT sum(tbalance) FROM pgbench_tellers)
	AND (SELECT sum(tbalance) FROM pgbench_tellers) = (SELECT sum(bbalance) FROM pgbench_branches)
	AND (SELECT sum(bbalance) FROM pgbench_branches) = (SELECT coalesce(sum(delta), 0) FROM pgbench_history)"
# verify_restored NAME DIR EXPECTED-MARKERS [archive]: start, promote, check data, stop
verify_restored() {
	local name=$1 dir=$2 want=$3 port got inv
	port=$(free_port)
	check "$name: the restored cluster starts" start_restored "$dir" "$port" "${4:-}"
	check "$name: recovery reaches the target and the server promotes" wait_promoted "$port"
	got=$(psql_p "$port" -c "SELECT string_agg(id::text, ',' ORDER BY id) FROM marker" 2>&1)
	check_true "$name: exactly the markers committed up to the target ($want; got $got)" '[ "$got" = "$want" ]'
	inv=$(psql_p "$port" -c "$invariant_sql" 2>&1)
	check_true "$name: pgbench invariant sum(abalance) = sum(tbalance) = sum(bbalance) = sum(delta)" '[ "$inv" = t ]'
	got=$(psql_p "$port" -c "SELECT count(*) FROM ts_table" 2>&1)
	check_true "$name: the tablespace is relocated to $dir.ts1 and holds its table ($got rows)" \
		'[ "$(readlink "$dir/pg_tblspc/$TSOID")" = "$dir.ts1" ] && [ "$got" = 10000 ] && [ -z "$(ls -A "$T_DIR/ts1" | grep -v "^PG_15_")" ]'
	check "$name: pg_amcheck --all is clean" \
		as_pg "$PG_BIN/pg_amcheck --all --install-missing -h '$RST/sock' -p $port -U postgres"
	RESTORED_PORT=$port
	[ "${5:-}" = keep ] && return 0
	pg_stop "$dir"
	check "$name: pg_checksums --check is clean after shutdown" as_pg "$PG_BIN/pg_checksums --check -D '$dir'"
}

# --to-time from each repository in turn: T3 (after the incr) from repo1, T2 (between the
# full and the incr, so the full is the newest backup before it) from repo2
check "restore --to-time T3 from repo1" restore_to "$RST/time1" --repo=1 --to-time="'$T3'" --target-action=promote
check_true "repo1: the incr $INCR is chosen and the reason printed" 'grep -q "restoring backup $INCR .*repository 1" "$IT_DIR/last.out"'
T3re=${T3//+/\\+}
check_true "one summary line naming the backup, the target and the time" \
	'grep -Eq "^restore of backup $INCR to $RST/time1 complete: [0-9]+ files, [0-9.]+ MiB \([0-9.]+ MiB fetched\), [0-9.]+ s; start PostgreSQL to recover to time $T3re" "$IT_DIR/last.out"'
check_true "restore_command is this binary's archive-get with this config, in postgresql.auto.conf" \
	"grep -qF \"restore_command = '$BIN --config=$conf --stanza=rs --repo=1 archive-get %f \\\"%p\\\"'\" '$RST/time1/postgresql.auto.conf' && [ -f '$RST/time1/recovery.signal' ]"
check "pg_verifybackup -n accepts the freshly restored directory" as_pg "$PG_BIN/pg_verifybackup -n '$RST/time1'"
verify_restored "to-time repo1" "$RST/time1" "1,2,3"
rm -rf "$RST/time1" "$RST/time1.ts1"

check "restore --to-time T2 from repo2 (Swift, encrypted)" restore_to "$RST/time2" --repo=2 --to-time="'$T2'" --target-action=promote
check_true "repo2: the full $FULL is chosen (the incr stopped after T2)" 'grep -q "restoring backup $FULL .*repository 2" "$IT_DIR/last.out"'
verify_restored "to-time repo2" "$RST/time2" "1,2"
rm -rf "$RST/time2" "$RST/time2.ts1"

check "restore --to-lsn (after marker 4)" restore_to "$RST/lsn" --to-lsn="$L4" --target-action=promote
verify_restored "to-lsn" "$RST/lsn" "1,2,3,4"
rm -rf "$RST/lsn" "$RST/lsn.ts1"

check "restore --to-xid (marker 5's transaction)" restore_to "$RST/xid" --to-xid="$X5" --target-action=promote
verify_restored "to-xid" "$RST/xid" "1,2,3,4,5"
rm -rf "$RST/xid" "$RST/xid.ts1"

check "restore --to-name (restore point after marker 6)" restore_to "$RST/name" "--to-name='before seven'" --target-action=promote
verify_restored "to-name" "$RST/name" "1,2,3,4,5,6"
rm -rf "$RST/name" "$RST/name.ts1"

check "restore --immediate (the incr's consistency point)" restore_to "$RST/imm" --immediate --target-action=promote
verify_restored "immediate" "$RST/imm" "1,2"
rm -rf "$RST/imm" "$RST/imm.ts1"

# ---------------------------------------------------------------------------------------
# latest, with pg_verifybackup and --delta on the way
# ---------------------------------------------------------------------------------------
V=$RST/latest
check "restore latest" restore_to "$V"
check "pg_verifybackup -n accepts it" as_pg "$PG_BIN/pg_verifybackup -n '$V'"
tellers=$(psql_r -c "SELECT pg_relation_filepath('pgbench_tellers')")
printf '\xff' | dd of="$V/$tellers" bs=1 seek=100 conv=notrunc 2>/dev/null
check_fails "pg_verifybackup rejects it once a byte of $tellers is flipped" 1 "checksum mismatch for file \"$tellers\"" \
	as_pg "$PG_BIN/pg_verifybackup -n -q '$V'"
# more damage, and files the backup does not have (one a link to a directory outside)
printf '99\n' > "$V/PG_VERSION"
head -c 100 "$V/pg_hba.conf" > "$T_DIR/tmp/hba" && cat "$T_DIR/tmp/hba" > "$V/pg_hba.conf"
mkdir -p "$V/junkdir/deeper" "$T_DIR/outside"
echo extra > "$V/extra_file"; echo extra > "$V/junkdir/deeper/x"; echo extra > "$V/base/5/99999999"
echo keep > "$T_DIR/outside/must_stay"; ln -s "$T_DIR/outside" "$V/base/link_out"
chown -R postgres:postgres "$V"
drb --repo=1 repo-get "stanza/rs/backup/$INCR/backup.manifest" "$T_DIR/tmp/m-incr.jsonl"
mstat() {	# mstat EXPR over files (dict path -> size) and changed (the 4 paths)
	py "$T_DIR/tmp/m-incr.jsonl" "$tellers" "$1" <<'EOP'
import json, sys
files = {}
for l in open(sys.argv[1]).read().splitlines()[1:-1]:
    e = json.loads(l)
    if e["t"] == "f":
        files[e["p"]] = e["s"]
changed = [sys.argv[2], "PG_VERSION", "pg_hba.conf", "postgresql.auto.conf"]
print(eval(sys.argv[3]))
EOP
}
nfiles=$(mstat 'len(files)'); total=$(mstat 'sum(files.values())'); changed_bytes=$(mstat 'sum(files[p] for p in changed)')
check "restore --delta onto the damaged copy" drb restore --pgdata="$V" --tablespace-map="$TSOID=$V.ts1" --delta --log-level-console=info
stats=$(grep -o "[0-9]* files, [0-9]* bytes written, [0-9]* bytes fetched, [0-9]* kept, [0-9]* removed" "$IT_DIR/last.err")
read -r d_files _ d_written _ _ d_fetched _ _ d_kept _ d_removed _ <<< "$stats"
check_true "delta: all $nfiles files restored, $((nfiles - 4)) kept ($stats)" '[ "$d_files" = "$nfiles" ] && [ "$d_kept" = $((nfiles - 4)) ]'
check_true "delta: exactly the 4 changed files written ($changed_bytes bytes; got $d_written)" '[ "$d_written" = "$changed_bytes" ]'
check_true "delta: only their objects fetched ($d_fetched of $total bytes)" '[ "$d_fetched" -ge "$changed_bytes" ] && [ $((d_fetched * 2)) -lt "$total" ]'
check_true "delta: the summary line counts kept and removed" 'grep -q "complete: $nfiles files ($d_kept kept, $d_removed removed)" "$IT_DIR/last.out"'
check_true "delta: the extra files and the link are gone ($d_removed removed), nothing followed out" \
	'[ ! -e "$V/extra_file" ] && [ ! -e "$V/junkdir" ] && [ ! -e "$V/base/5/99999999" ] && [ ! -L "$V/base/link_out" ] && [ -f "$T_DIR/outside/must_stay" ] && [ "$d_removed" -ge 4 ]'
check_true "delta: no temporary file left" '[ -z "$(find "$V" -name "*.drbtmp*")" ]'
check "pg_verifybackup -n accepts the directory after --delta" as_pg "$PG_BIN/pg_verifybackup -n '$V'"
verify_restored "latest (after --delta)" "$V" "1,2,3,4,5,6,7,8"
rm -rf "$V" "$V.ts1"

# ---------------------------------------------------------------------------------------
# a second timeline: PITR to T3, promoted with archiving on, writes; then a restore to a
# moment on its timeline with --target-timeline=latest
# ---------------------------------------------------------------------------------------
check "restore --to-time T3 for a new timeline" restore_to "$RST/tl" --to-time="'$T3'" --target-action=promote
verify_restored "timeline 2 origin" "$RST/tl" "1,2,3" archive keep
tlport=$RESTORED_PORT
psql_p "$tlport" -c "CHECKPOINT" >/dev/null
tli=$(psql_p "$tlport" -c "SELECT timeline_id FROM pg_control_checkpoint()")
psql_p "$tlport" -c "INSERT INTO marker VALUES (101, clock_timestamp())"
sleep 0.3
T101=$(psql_p "$tlport" -c "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'")
sleep 0.3
psql_p "$tlport" -c "INSERT INTO marker VALUES (102, clock_timestamp())"
check "the promoted cluster (timeline $tli) archives its WAL to the same repositories" wait_archived "$RST/sock" "$tlport"
pg_stop "$RST/tl"
check "restore --to-time on timeline $tli with --target-timeline=latest" \
	restore_to "$RST/tl2" --to-time="'$T101'" --target-timeline=latest --target-action=promote
verify_restored "to-time on timeline $tli" "$RST/tl2" "1,2,3,101"
rm -rf "$RST/tl" "$RST/tl2" "$RST/tl.ts1" "$RST/tl2.ts1"

# ---------------------------------------------------------------------------------------
# refusals: one line, non-zero, nothing written
# ---------------------------------------------------------------------------------------
check_fails "a tablespace relocated into the target is refused" 2 "tablespace $TSOID .*is inside the target" \
	drb restore --pgdata="$RST/reloc" --tablespace-map="$TSOID=$RST/reloc/inside"
check_true "nothing written for the refused relocation" '[ ! -e "$RST/reloc" ]'
check_fails "a target before the oldest backup is refused with the window" 2 "recoverable window" \
	restore_to "$RST/early" --to-time="'2001-01-01 00:00:00+00'"
check_true "nothing written for the refused target" '[ ! -e "$RST/early" ]'

mkdir -p "$RST/full"; echo mine > "$RST/full/precious"; chown -R postgres "$RST/full"
check_fails "a non-empty target without --delta or --force is refused" 2 "not empty.*--delta.*--force" \
	drb restore --pgdata="$RST/full"
check_true "the non-empty target is untouched" '[ "$(ls -A "$RST/full")" = precious ] && [ "$(cat "$RST/full/precious")" = mine ]'

before=$(ls -A "$PG_RST_DATA" | md5sum)
check_fails "the directory of a running server is refused, even with --delta --force" 9 \
	"PostgreSQL is running in $PG_RST_DATA \(pid [0-9]+\): stop it first" drb restore --pgdata="$PG_RST_DATA" --delta --force
check_true "the running server's directory is untouched and the server still answers" \
	'[ "$(ls -A "$PG_RST_DATA" | md5sum)" = "$before" ] && [ "$(psql_r -c "SELECT 1")" = 1 ]'

# hostile manifests in repo1 under a fake label listed in the catalog (ordinary objects:
# repo-get, edit, repo-put)
FAKE=${FULL}_20301231-235959I
for f in backup.catalog backup.catalog.copy; do
	drb --repo=1 repo-get "stanza/rs/backup/$f" "$T_DIR/tmp/$f.orig"
	py "$T_DIR/tmp/$f.orig" "$T_DIR/tmp/$f" "$INCR" "$FAKE" <<'EOP'
import copy, json, sys
src, dst, incr, fake = sys.argv[1:5]
c = json.load(open(src))
b = copy.deepcopy(next(x for x in c["backups"] if x["label"] == incr))
b["label"] = fake
b["references"] = [fake if r == incr else r for r in b["references"]]
c["backups"].append(b)
json.dump(c, open(dst, "w"))
EOP
	chown postgres "$T_DIR/tmp/$f"
	drb --repo=1 repo-put "$T_DIR/tmp/$f" "stanza/rs/backup/$f"
done
hostile() {	# hostile KIND: the incr's manifest as FAKE's, with one hostile change
	py "$T_DIR/tmp/m-incr.jsonl" "$T_DIR/tmp/hostile.jsonl" "$FAKE" "$1" "$RST/hostile/inside" <<'EOP'
import json, sys
src, dst, fake, kind, inside = sys.argv[1:6]
lines = open(src).read().splitlines()
head = json.loads(lines[0]); head["label"] = fake
entries = [json.loads(l) for l in lines[1:-1]]
if kind == "dotdot":
    f = next(e for e in entries if e["t"] == "f")
    f["p"] = "../../escaped"
elif kind == "link":
    i = next(i for i, e in enumerate(entries) if e["p"] == "base/1")
    entries[i] = {"t": "l", "p": "base/1", "m": 511, "mt": entries[i]["mt"], "dst": "/etc"}
elif kind == "tblspc":
    i = max(i for i, e in enumerate(entries) if e["p"] == "pg_tblspc" or e["p"].startswith("pg_tblspc/"))
    entries.insert(i + 1, {"t": "l", "p": "pg_tblspc/99999", "m": 511, "mt": 0, "dst": inside})
with open(dst, "w") as out:
    out.write(json.dumps(head, separators=(",", ":")) + "\n")
    for e in entries:
        out.write(json.dumps(e, separators=(",", ":")) + "\n")
    out.write(json.dumps({"end": True, "entries": len(entries)}, separators=(",", ":")) + "\n")
EOP
	chown postgres "$T_DIR/tmp/hostile.jsonl"
	drb --repo=1 repo-put "$T_DIR/tmp/hostile.jsonl" "stanza/rs/backup/$FAKE/backup.manifest" &&
		drb --repo=1 repo-put "$T_DIR/tmp/hostile.jsonl" "stanza/rs/backup/$FAKE/backup.manifest.copy"
}
hostile dotdot
check_fails "a manifest path with '..' is refused" 5 "not a safe relative path" \
	restore_to "$RST/hostile" --repo=1 --set="$FAKE"
check_true "nothing written for the '..' manifest" '[ ! -e "$RST/hostile" ] && [ ! -e "$RST/escaped" ]'
hostile link
check_fails "a manifest link that is not a tablespace is refused" 5 "link 'base/1' is not a tablespace link" \
	restore_to "$RST/hostile" --repo=1 --set="$FAKE"
check_true "nothing written for the link manifest" '[ ! -e "$RST/hostile" ]'
hostile tblspc
check_fails "a tablespace pointing into the target is refused" 5 "tablespace 99999 .*is inside the target" \
	restore_to "$RST/hostile" --repo=1 --set="$FAKE"
check_true "nothing written for the tablespace manifest" '[ ! -e "$RST/hostile" ]'
for f in backup.catalog backup.catalog.copy; do
	drb --repo=1 repo-put "$T_DIR/tmp/$f.orig" "stanza/rs/backup/$f"
done
drb --repo=1 repo-rm "stanza/rs/backup/$FAKE/backup.manifest" >/dev/null 2>&1
drb --repo=1 repo-rm "stanza/rs/backup/$FAKE/backup.manifest.copy" >/dev/null 2>&1
pg_stop "$PG_RST_DATA"
