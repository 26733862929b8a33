# t_backup.sh — base backups, catalog, info and expire against a real PostgreSQL 15 cluster
# with data checksums; repo1 = posix (cipher none, so the test can read what is stored),
# repo2 = Swift s3api (encrypted), written in the same pass.
#
# full -> diff -> incr after pgbench changes: manifests reference unchanged files and copy
# changed ones; a data directory rebuilt from the incr's manifest by an independent helper
# (lib/manifest_restore.py, not drbackup's code) starts, replays the archive to the
# backup's consistency point and holds exactly the data of the backup; info --output=json
# agrees with the catalog and the repository contents. Then: a page corrupted with dd is
# reported by block, pgbench writing during a backup gives no false positive, a backup
# killed mid-way is never listed and is removed by the next one, two backups at once fail
# with the lock message, 20,000 small tables cost far fewer objects than files, and expire
# by count and by time removes exactly the right backups and WAL.
pg_start bk || { fail "start a PostgreSQL cluster for the backup test"; return 0; }
psql_b() { "$PG_BIN/psql" -X -q -At -h "$PG_BK_SOCK" -p "$PG_BK_PORT" -U postgres -d postgres "$@"; }
as_pg() { su postgres -s /bin/sh -c "$1"; }
py() { python3 - "$@"; }

mkdir -p "$T_DIR/bin" "$T_DIR/repo1" "$T_DIR/spool" "$T_DIR/lock" "$T_DIR/tmp"
BIN=$T_DIR/bin/drbackup
cp "$DRBACKUP" "$BIN"
chmod 755 "$T_DIR/bin" "$BIN"
chown postgres:postgres "$T_DIR/repo1" "$T_DIR/spool" "$T_DIR/lock" "$T_DIR/tmp"

conf=$T_DIR/backup.conf
write_conf "$conf" <<EOC
[global]
repo1-path=$T_DIR/repo1
$(swift_repo 2 /it/backup)
repo2-cipher-type=aes-256-gcm
repo2-cipher-pass=backup-region-two
spool-path=$T_DIR/spool
lock-path=$T_DIR/lock
process-max=2
start-fast=y
archive-timeout=60
expire-auto=n

[bk]
pg1-path=$PG_BK_DATA
pg1-port=$PG_BK_PORT
pg1-socket-path=$PG_BK_SOCK
pg1-user=postgres
EOC
chown postgres:postgres "$conf"
# every drbackup command runs as postgres, like cron would run it
drb() { su postgres -s /bin/sh -c "TMPDIR=$T_DIR/tmp $BIN --config=$conf --stanza=bk $*"; }
drb1() { drb --repo=1 "$@"; }
info_json() { drb info --output=json > "$T_DIR/info.json" 2> "$T_DIR/info.err"; }
# jq-like access to info.json with python: info_q 'EXPR over d (the parsed JSON)'
info_q() { py "$T_DIR/info.json" "$1" <<'EOP'
import json, sys
d = json.load(open(sys.argv[1]))
print(eval(sys.argv[2]))
EOP
}
manifest() {	# manifest LABEL -> $T_DIR/m-LABEL.jsonl (plain JSON lines, from repo1)
	drb1 repo-get "stanza/bk/backup/$1/backup.manifest" "$T_DIR/tmp/m-$1.jsonl" && cp "$T_DIR/tmp/m-$1.jsonl" "$T_DIR/m-$1.jsonl"
}
labels() { info_q "' '.join(b['label'] for b in d['stanzas'][0]['repositories'][0]['backups'])"; }
sysid=$("$PG_BIN/pg_controldata" "$PG_BK_DATA" | awk -F: '/system identifier/ {gsub(/ /,"",$2); print $2}')

check "stanza-create (posix + Swift)" drb stanza-create
cat >> "$PG_BK_DATA/postgresql.conf" <<EOC
archive_mode = on
archive_command = '$BIN --config=$conf --stanza=bk archive-push %p'
archive_timeout = 5
max_wal_size = 256MB
EOC
as_pg "$PG_BIN/pg_ctl -D '$PG_BK_DATA' -l '$IT_DIR/pg-bk/server.log' -w -t 60 restart >/dev/null"
"$PG_BIN/pgbench" -i -q -s 5 -h "$PG_BK_SOCK" -p "$PG_BK_PORT" -U postgres postgres > "$T_DIR/pgbench-init.log" 2>&1

check_fails "backup before any option error: unknown type" 2 "type" drb backup --type=weekly

# ---------------------------------------------------------------------------------------
# full, diff, incr
# ---------------------------------------------------------------------------------------
check "full backup to both repositories" drb backup --type=full
grep -q "complete:" "$IT_DIR/last.out" && pass "full backup prints one summary line" \
	|| fail "full backup prints one summary line" "$(cat "$IT_DIR/last.out")"
check "info --output=json" info_json
FULL=$(labels)
check_true "one full backup listed, label like YYYYMMDD-HHMMSSF" '[[ "$FULL" =~ ^[0-9]{8}-[0-9]{6}F$ ]]'
check_true "repo2 (Swift) lists the same backup" '[ "$(info_q "d[\"stanzas\"][0][\"repositories\"][1][\"backups\"][0][\"label\"]")" = "$FULL" ]'
check "full manifest readable" manifest "$FULL"
check_true "every file of the full backup is stored by the full itself" \
	'[ "$(grep -c "\"t\":\"f\"" "$T_DIR/m-$FULL.jsonl")" -gt 900 ] && ! grep "\"t\":\"f\"" "$T_DIR/m-$FULL.jsonl" | grep "\"o\"" | grep -vq "\"r\":\"$FULL\""'
check_true "no pg_wal segment, postmaster.pid or pg_internal.init in the manifest" \
	'! grep -Eq "\"p\":\"(pg_wal/0|postmaster.pid|.*pg_internal.init)" "$T_DIR/m-$FULL.jsonl"'
check_true "pg_wal and pg_wal/archive_status kept as directories" \
	'grep -q "\"p\":\"pg_wal\"" "$T_DIR/m-$FULL.jsonl" && grep -q "\"p\":\"pg_wal/archive_status\"" "$T_DIR/m-$FULL.jsonl"'

# the repository holds exactly the objects the manifest names
objects_of() {	# objects_of LABEL: data objects stored under the backup in repo1
	(cd "$T_DIR/repo1/stanza/bk/backup/$1" 2>/dev/null && find data -type f | sort)
}
cat > "$T_DIR/refs.py" <<'EOP'
import json, sys
owner = sys.argv[2]
s = set()
for l in open(sys.argv[1]):
    e = json.loads(l)
    if e.get("t") == "f" and e.get("o") and e.get("r") == owner:
        s.add(e["o"])
print("\n".join(sorted(s)))
EOP
referenced_by() {	# referenced_by LABEL OWNER: objects of OWNER named in LABEL's manifest
	python3 "$T_DIR/refs.py" "$T_DIR/m-$1.jsonl" "$2"
}
check_true "repo1 holds exactly the objects the full manifest names" \
	'[ "$(objects_of "$FULL")" = "$(referenced_by "$FULL" "$FULL")" ] && [ -n "$(objects_of "$FULL")" ]'
files_full=$(grep -c '"t":"f"' "$T_DIR/m-$FULL.jsonl")
objs_full=$(objects_of "$FULL" | grep -c .)
check_true "bundling: far fewer objects ($objs_full) than files ($files_full)" '[ $((objs_full * 10)) -lt "$files_full" ]'

sleep 1.1	# mtimes of files changed from now on differ from the full's
"$PG_BIN/pgbench" -n -t 300 -h "$PG_BK_SOCK" -p "$PG_BK_PORT" -U postgres postgres > /dev/null 2>&1
psql_b -c "CHECKPOINT"
check "diff backup" drb backup --type=diff
info_json
DIFF=$(labels | awk '{print $2}')
check_true "diff label is the full's label + _YYYYMMDD-HHMMSSD" '[[ "$DIFF" =~ ^${FULL}_[0-9]{8}-[0-9]{6}D$ ]]'
check_true "diff's parent is the full" '[ "$(info_q "d[\"stanzas\"][0][\"repositories\"][0][\"backups\"][1][\"parent\"]")" = "$FULL" ]'
manifest "$DIFF"
accounts=$(psql_b -c "SELECT pg_relation_filepath('pgbench_accounts')")
check_true "diff copies the changed pgbench_accounts file" 'grep "\"p\":\"$accounts\"" "$T_DIR/m-$DIFF.jsonl" | grep -q "\"r\":\"$DIFF\""'
check_true "diff references unchanged files of the full (PG_VERSION)" 'grep "\"p\":\"PG_VERSION\"" "$T_DIR/m-$DIFF.jsonl" | grep -q "\"r\":\"$FULL\""'
check_true "diff stores only what it copied" '[ "$(objects_of "$DIFF")" = "$(referenced_by "$DIFF" "$DIFF")" ]'
check_true "diff copies less than the whole cluster" \
	'[ "$(info_q "0 < d[\"stanzas\"][0][\"repositories\"][0][\"backups\"][1][\"size-copied\"] < d[\"stanzas\"][0][\"repositories\"][0][\"backups\"][1][\"size\"]")" = True ]'

sleep 1.1
"$PG_BIN/pgbench" -n -t 200 -h "$PG_BK_SOCK" -p "$PG_BK_PORT" -U postgres postgres > /dev/null 2>&1
psql_b -c "CREATE TABLE marker AS SELECT 42 AS v"
psql_b -c "CHECKPOINT"
SUMQ="SELECT sum(abalance) || '/' || (SELECT count(*) FROM pgbench_history) || '/' || (SELECT v FROM marker) FROM pgbench_accounts"
sum_before=$(psql_b -c "$SUMQ")
check "incr backup (no --type: incr since a full exists)" drb backup
info_json
INCR=$(labels | awk '{print $3}')
check_true "incr label ends in I, parent is the diff" \
	'[[ "$INCR" =~ ^${FULL}_[0-9]{8}-[0-9]{6}I$ ]] && [ "$(info_q "d[\"stanzas\"][0][\"repositories\"][0][\"backups\"][2][\"parent\"]")" = "$DIFF" ]'
manifest "$INCR"
check_true "incr references objects of all three backups" \
	'for l in $FULL $DIFF $INCR; do grep -q "\"r\":\"$l\"" "$T_DIR/m-$INCR.jsonl" || exit 1; done'
check_true "info: the three backups complete in both repositories, same labels" \
	'[ "$(info_q "[b[\"label\"] for b in d[\"stanzas\"][0][\"repositories\"][1][\"backups\"]] == [b[\"label\"] for b in d[\"stanzas\"][0][\"repositories\"][0][\"backups\"]] and all(b[\"status\"] == \"complete\" for r in d[\"stanzas\"][0][\"repositories\"] for b in r[\"backups\"])")" = True ]'
check_true "info: a recoverable window from the full's stop" \
	'[ "$(info_q "d[\"stanzas\"][0][\"repositories\"][0][\"recoverable\"][\"earliest\"] is not None and d[\"stanzas\"][0][\"repositories\"][0][\"recoverable\"][\"latest\"] is not None")" = True ]'
check "info (text) shows the backups" drb info
check_true "info text names the incr" 'grep -q "$INCR" "$IT_DIR/last.out"'

# an independent rebuild of the incr's data directory; recovery to its consistency point
RB=$T_DIR/rebuilt
check "rebuild the incr's data directory from its manifest (checksums verified)" \
	python3 "$ROOT/tests/integration/lib/manifest_restore.py" "$BIN --config=$conf --repo=1" bk "$INCR" "$RB"
chown -R postgres:postgres "$RB"; chmod 700 "$RB"
rb_port=$(free_port)
cat >> "$RB/postgresql.auto.conf" <<EOC
port = $rb_port
unix_socket_directories = '$T_DIR/tmp'
archive_mode = off
restore_command = '$BIN --config=$conf --stanza=bk archive-get %f "%p"'
recovery_target = 'immediate'
recovery_target_action = 'promote'
EOC
touch "$RB/recovery.signal"; chown postgres "$RB/recovery.signal"
check "the rebuilt cluster starts and reaches consistency" \
	as_pg "$PG_BIN/pg_ctl -D '$RB' -l '$T_DIR/tmp/rebuilt.log' -w -t 120 start"
for _ in $(seq 60); do
	[ "$("$PG_BIN/psql" -X -At -h "$T_DIR/tmp" -p "$rb_port" -U postgres -c 'SELECT pg_is_in_recovery()' 2>/dev/null)" = f ] && break
	sleep 1
done
sum_after=$("$PG_BIN/psql" -X -At -h "$T_DIR/tmp" -p "$rb_port" -U postgres -d postgres \
	-c "$SUMQ" 2>&1)
check_true "the rebuilt cluster holds the incr's data ($sum_after = $sum_before)" '[ "$sum_after" = "$sum_before" ]'
pg_stop "$RB"
check "pg_checksums --check on the rebuilt cluster" as_pg "$PG_BIN/pg_checksums --check -D '$RB'"
rm -rf "$RB"

# ---------------------------------------------------------------------------------------
# page checksums: a real corruption is reported by block; concurrent writes are not
# ---------------------------------------------------------------------------------------
psql_b -c "CREATE TABLE damaged AS SELECT g AS id, repeat('x', 200) AS pad FROM generate_series(1, 2000) g"
psql_b -c "CHECKPOINT"
dfile=$PG_BK_DATA/$(psql_b -c "SELECT pg_relation_filepath('damaged')")
as_pg "$PG_BIN/pg_ctl -D '$PG_BK_DATA' -w -m fast stop >/dev/null"
printf 'XXXXXXXX' | dd of="$dfile" bs=1 seek=$((8192 * 3 + 4000)) conv=notrunc 2>/dev/null
as_pg "$PG_BIN/pg_ctl -D '$PG_BK_DATA' -l '$IT_DIR/pg-bk/server.log' -w -t 60 start >/dev/null"
check "backup of a cluster with a damaged page succeeds" drb --repo=1 backup --type=full
cp "$IT_DIR/last.err" "$T_DIR/bad.err"
info_json
BAD=$(labels | awk '{print $NF}')
grep -q "block 3\b\|block 3$\|blocks 3" "$T_DIR/bad.err" && pass "the damaged block (3) is named in the backup's warning" \
	|| fail "the damaged block (3) is named in the backup's warning" "$(cat "$T_DIR/bad.err")"
manifest "$BAD"
rel=${dfile#"$PG_BK_DATA"/}
check_true "the manifest records block 3 of $rel as bad" 'grep "\"p\":\"$rel\"" "$T_DIR/m-$BAD.jsonl" | grep -q "\"bad\":\[3\]"'
check_true "the manifest records no other bad page" '[ "$(grep -c "\"bad\"" "$T_DIR/m-$BAD.jsonl")" = 1 ]'
check_true "info shows 1 damaged page" '[ "$(info_q "d[\"stanzas\"][0][\"repositories\"][0][\"backups\"][-1][\"damaged-pages\"]")" = 1 ]'
psql_b -c "DROP TABLE damaged"

"$PG_BIN/pgbench" -n -c 2 -T 30 -h "$PG_BK_SOCK" -p "$PG_BK_PORT" -U postgres postgres > "$T_DIR/pgbench-during.log" 2>&1 &
load=$!
sleep 2
check "full backup while pgbench writes" drb backup --type=full
info_json
LOADED=$(labels | awk '{print $NF}')
check_true "no false positive: 0 damaged pages under concurrent writes" \
	'! grep -qi "invalid page" "$IT_DIR/last.err" && [ "$(grep -c "\"bad\"" <(manifest "$LOADED" && cat "$T_DIR/m-$LOADED.jsonl"))" = 0 ]'
wait $load

# ---------------------------------------------------------------------------------------
# a backup killed mid-way; two backups at once
# ---------------------------------------------------------------------------------------
psql_b -c "CREATE TABLE bulk AS SELECT g, md5(g::text) AS m FROM generate_series(1, 600000) g"
psql_b -c "CHECKPOINT"
su postgres -s /bin/sh -c "TMPDIR=$T_DIR/tmp exec $BIN --config=$conf --stanza=bk --repo=1 --process-max=1 --bundle-size=1MiB --bundle-limit=64KiB backup --type=full" \
	> "$T_DIR/killed.out" 2>&1 &
victim=$!
stopped=0
info_json
listed=" $(labels) "
for _ in $(seq 600); do
	new=$(ls "$T_DIR/repo1/stanza/bk/backup" | grep -v catalog | while read -r l; do
		[[ "$listed" == *" $l "* ]] || echo "$l"; done | head -1)
	# a committed object (not the driver's temporary file of one being written)
	if [ -n "$new" ] && [ -n "$(ls "$T_DIR/repo1/stanza/bk/backup/$new/data" 2>/dev/null | grep -v drbtmp)" ]; then
		pkill -STOP -f "stanza=bk --repo=1 --process-max=1" && stopped=1
		break
	fi
	sleep 0.05
done
check_true "a backup was caught mid-way (objects stored, not listed)" '[ $stopped = 1 ] && [ -n "$new" ]'
check_fails "a second backup while one runs fails with the lock message" 9 "lock.*held by process" drb --repo=1 backup --type=full
pkill -KILL -f "stanza=bk --repo=1 --process-max=1"
wait $victim 2>/dev/null
info_json
check_true "the killed backup is not listed by info" '! labels | grep -qw "$new"'
check "the next backup succeeds" drb --repo=1 backup --type=incr
grep -q "removing backup $new" "$IT_DIR/last.err" && pass "the next backup removes the interrupted one (warning names it)" \
	|| fail "the next backup removes the interrupted one (warning names it)" "$(cat "$IT_DIR/last.err")"
check_true "no object of the interrupted backup is left" '[ ! -e "$T_DIR/repo1/stanza/bk/backup/$new" ] || [ -z "$(find "$T_DIR/repo1/stanza/bk/backup/$new" -type f ! -name "*.drbtmp.*")" ]'
check_true "no backup is left open in PostgreSQL" '[ "$(psql_b -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = '"'"'client backend'"'"' AND application_name = '"'"'drbackup'"'"'")" = 0 ]'
psql_b -c "DROP TABLE bulk"

# ---------------------------------------------------------------------------------------
# 20,000 small tables
# ---------------------------------------------------------------------------------------
psql_b -c "CREATE DATABASE many"
for b in $(seq 0 19); do
	"$PG_BIN/psql" -X -q -h "$PG_BK_SOCK" -p "$PG_BK_PORT" -U postgres -d many -c \
		"DO \$\$ BEGIN FOR i IN $((b * 1000))..$((b * 1000 + 999)) LOOP EXECUTE format('CREATE TABLE t%s AS SELECT 1 AS x', i); END LOOP; END \$\$" \
		>/dev/null 2>&1
done
check_true "20,000 small tables created" '[ "$("$PG_BIN/psql" -X -At -h "$PG_BK_SOCK" -p "$PG_BK_PORT" -U postgres -d many -c "SELECT count(*) FROM pg_class WHERE relname ~ '"'"'^t[0-9]+$'"'"'")" = 20000 ]'
psql_b -c "CHECKPOINT"
check "full backup of the cluster with 20,000 small tables" drb --repo=1 backup --type=full
info_json
MANY=$(labels | awk '{print $NF}')
manifest "$MANY"
files_many=$(grep -c '"t":"f"' "$T_DIR/m-$MANY.jsonl")
objs_many=$(objects_of "$MANY" | grep -c .)
check_true "20,000 tables: $objs_many objects for $files_many files (< 1 per 100)" '[ "$files_many" -gt 20000 ] && [ $((objs_many * 100)) -lt "$files_many" ]'
psql_b -c "DROP DATABASE many"

# ---------------------------------------------------------------------------------------
# expire: by count (with dependents), WAL kept exactly from the oldest retained backup
# ---------------------------------------------------------------------------------------
info_json
all_labels=$(labels)
fulls=$(for l in $all_labels; do [[ $l == *F ]] && echo "$l"; done)
nfull=$(echo "$fulls" | grep -c .)
keep2=$(echo "$fulls" | tail -2 | head -1)	# oldest of the two newest fulls
check "expire --dry-run with repo1-retention-full=2" drb1 --repo1-retention-full=2 expire --dry-run
check_true "dry run names the first full and its diff and incr" \
	'grep -q "$FULL" "$IT_DIR/last.out" && grep -q "$DIFF" "$IT_DIR/last.out" && grep -q "$INCR" "$IT_DIR/last.out"'
info_json
check_true "dry run changed nothing" '[ "$(labels)" = "$all_labels" ]'
check "expire with repo1-retention-full=2" drb1 --repo1-retention-full=2 expire
info_json
left=$(labels)
check_true "two fulls left (and what depends on them), the oldest kept is $keep2" \
	'[ "$(echo "$left" | tr " " "\n" | grep -c "F$")" = 2 ] && [ "$(echo "$left" | awk "{print \$1}")" = "$keep2" ]'
check_true "the expired backups' objects are gone from repo1" '[ ! -d "$T_DIR/repo1/stanza/bk/backup/$FULL" ] || [ -z "$(find "$T_DIR/repo1/stanza/bk/backup/$FULL" -type f)" ]'
wal_start=$(info_q "d['stanzas'][0]['repositories'][0]['backups'][0]['wal-start']")
walnames() { (cd "$T_DIR/repo1/stanza/bk/archive/15-$sysid" && find . -type f -name '0*' | sed 's#.*/##; s/-[0-9a-f]*$//' | grep -E '^[0-9A-F]{24}$' | sort); }
check_true "no WAL segment before $wal_start is left" '[ -z "$(walnames | awk -v s="$wal_start" "\$0 < s")" ]'
check_true "WAL from $wal_start on is kept" 'walnames | grep -qx "$wal_start"'
check_true "repo2 untouched by --repo=1 expire (first full still there)" \
	'[ "$(info_q "d[\"stanzas\"][0][\"repositories\"][1][\"backups\"][0][\"label\"]")" = "$FULL" ]'

# by time: backdate the catalog (repo-get, edit, repo-put: the catalog is an ordinary
# object) so that all but the newest full stopped 10 days ago
for f in backup.catalog backup.catalog.copy; do
	drb1 repo-get stanza/bk/backup/$f "$T_DIR/tmp/cat.json"
	py "$T_DIR/tmp/cat.json" <<'EOP'
import json, sys, time
p = sys.argv[1]
c = json.load(open(p))
fulls = [b for b in c["backups"] if b["type"] == "full"]
for b in c["backups"]:
    if b is not fulls[-1] and not b["label"].startswith(fulls[-1]["label"]):
        for k in ("start-time", "stop-time"):
            if isinstance(b[k], int):
                b[k] -= 10 * 86400
json.dump(c, open(p, "w"))
EOP
	drb1 repo-put "$T_DIR/tmp/cat.json" stanza/bk/backup/$f
done
newest_full=$(echo "$left" | tr ' ' '\n' | grep 'F$' | tail -1)
check "expire with retention-full-type=time, 1 day" drb1 --repo1-retention-full-type=time --repo1-retention-full=1 expire
info_json
check_true "time retention keeps the newest full and the newest one older than a day" \
	'[ "$(labels | tr " " "\n" | grep -c "F$")" = 2 ]'
check "expire with retention-full-type=time, 30 days, keeps everything" drb1 --repo1-retention-full-type=time --repo1-retention-full=30 expire
info_json
check_true "nothing more expired with 30 days" '[ "$(labels | tr " " "\n" | grep -c "F$")" = 2 ]'
check "expire with retention-full=1 never removes the newest backup" drb1 --repo1-retention-full=1 expire
info_json
check_true "the newest full ($newest_full) remains" 'labels | grep -qw "$newest_full"'
pg_stop "$PG_BK_DATA"
