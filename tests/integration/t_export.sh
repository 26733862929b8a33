# t_export.sh — `drbackup export`: a backup as a plain tar that restores with nothing but
# tar and PostgreSQL 15. repo1 = posix, encrypted; archive_command pushes to it; a full
# backup is taken while pgbench runs; the cluster has a tablespace.
#
# FILE.tar, FILE.tar.zst and '-' (piped into tar) are each untarred into an empty directory
# owned by postgres and started with pg_ctl and no restore_command, no recovery.signal,
# archive_mode off and allow_in_place_tablespaces on (PostgreSQL 15 refuses directories in
# pg_tblspc at the end of recovery otherwise): the server reaches consistency from pg_wal/ alone and answers, the
# tablespace is a plain directory under pg_tblspc/ holding its table, pg_amcheck --all is
# clean, the pgbench invariant holds, and pg_verifybackup accepts the untarred directory
# (backup_manifest and the WAL). Refusals, one line each, non-zero, no FILE and no
# FILE.tmp left: an unknown label, an existing FILE, a manifest listing a file under
# pg_wal/ (hostile), and a damaged data object (a flipped byte in repo1).
pg_start ex || { fail "start a PostgreSQL cluster for the export test"; return 0; }
psql_e() { "$PG_BIN/psql" -X -q -At -h "$PG_EX_SOCK" -p "$PG_EX_PORT" -U postgres -d postgres "$@"; }
as_pg() { su postgres -s /bin/sh -c "$1"; }

X=$T_DIR/x					# exports, untarred clusters, sockets, logs (postgres's)
mkdir -p "$T_DIR/bin" "$T_DIR/repo1" "$T_DIR/spool" "$T_DIR/tmp" "$X/sock" "$X/logs" "$T_DIR/ts1"
BIN=$T_DIR/bin/drbackup
cp "$DRBACKUP" "$BIN"
chmod 755 "$T_DIR/bin" "$BIN"
chown -R postgres:postgres "$T_DIR/repo1" "$T_DIR/spool" "$T_DIR/tmp" "$X" "$T_DIR/ts1"

conf=$T_DIR/export.conf
write_conf "$conf" <<EOC
[global]
repo1-path=$T_DIR/repo1
repo1-cipher-type=aes-256-gcm
repo1-cipher-pass=export-test-passphrase
spool-path=$T_DIR/spool
lock-path=$T_DIR/tmp
process-max=2
start-fast=y
archive-timeout=60
expire-auto=n

[ex]
pg1-path=$PG_EX_DATA
pg1-port=$PG_EX_PORT
pg1-socket-path=$PG_EX_SOCK
pg1-user=postgres
EOC
chown postgres:postgres "$conf"
drb() { su postgres -s /bin/sh -c "TMPDIR=$T_DIR/tmp $BIN --config=$conf --stanza=ex $*"; }

check "stanza-create (posix, encrypted)" drb stanza-create
cat >> "$PG_EX_DATA/postgresql.conf" <<EOC
archive_mode = on
archive_command = '$BIN --config=$conf --stanza=ex archive-push %p'
archive_timeout = 5
max_wal_size = 256MB
EOC
as_pg "$PG_BIN/pg_ctl -D '$PG_EX_DATA' -l '$IT_DIR/pg-ex/server.log' -w -t 60 restart >/dev/null"
"$PG_BIN/pgbench" -i -q -s 3 -h "$PG_EX_SOCK" -p "$PG_EX_PORT" -U postgres postgres > "$T_DIR/pgbench-init.log" 2>&1
psql_e -c "CREATE TABLESPACE ts1 LOCATION '$T_DIR/ts1'"
psql_e -c "CREATE TABLE ts_table TABLESPACE ts1 AS SELECT g FROM generate_series(1, 10000) g"
TSOID=$(psql_e -c "SELECT oid FROM pg_tablespace WHERE spcname = 'ts1'")

# a full backup while pgbench writes
"$PG_BIN/pgbench" -n -c 2 -T 25 -h "$PG_EX_SOCK" -p "$PG_EX_PORT" -U postgres postgres > "$T_DIR/pgbench.log" 2>&1 &
bench=$!
sleep 2
check "full backup under pgbench load" drb backup --type=full
wait "$bench"
drb info --output=json > "$T_DIR/info.json"
LABEL=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["stanzas"][0]["repositories"][0]["backups"][-1]["label"])' "$T_DIR/info.json")
check_true "a backup label ($LABEL)" '[ -n "$LABEL" ]'
psql_e -c "SELECT pg_switch_wal()" > /dev/null

# ---------------------------------------------------------------------------------------
# export, untar, start with PostgreSQL alone
# ---------------------------------------------------------------------------------------
psql_p() { local port=$1; shift; "$PG_BIN/psql" -X -q -At -h "$X/sock" -p "$port" -U postgres -d postgres "$@"; }
invariant_sql="SELECT (SELECT sum(abalance) FROM pgbench_accounts) = (SELECT sum(tbalance) FROM pgbench_tellers)
	AND (SELECT sum(tbalance) FROM pgbench_tellers) = (SELECT sum(bbalance) FROM pgbench_branches)
	AND (SELECT sum(bbalance) FROM pgbench_branches) = (SELECT coalesce(sum(delta), 0) FROM pgbench_history)"

untar() {	# untar DIR TAR-ARGS...: a new empty directory (0700, postgres's) and tar -x into it
	local dir=$1; shift
	rm -rf "$dir"; mkdir -m 700 "$dir"; chown postgres:postgres "$dir"
	as_pg "tar -x -C '$dir' $*"
}
start_export() {	# start_export DIR PORT: pg_ctl start, the server log on stderr on failure
	as_pg "$PG_BIN/pg_ctl -D '$1' -l '$X/logs/$(basename "$1").log' -w -t 120 \
		-o '-c port=$2 -c listen_addresses= -c unix_socket_directories=$X/sock -c archive_mode=off -c allow_in_place_tablespaces=on' start >/dev/null" ||
		{ tail -5 "$X/logs/$(basename "$1").log" >&2; return 1; }
}
# verify_export NAME DIR: start the untarred cluster (no restore_command, archive_mode off)
verify_export() {
	local name=$1 dir=$2 port got inv
	port=$(free_port)
	check_true "$name: backup_label, pg_wal segments marked .done, backup_manifest; no tablespace_map, recovery.signal" \
		'[ -f "$dir/backup_label" ] && [ -f "$dir/backup_manifest" ] && [ ! -e "$dir/tablespace_map" ] &&
		 [ ! -e "$dir/recovery.signal" ] && ls "$dir/pg_wal" | grep -Eq "^[0-9A-F]{24}$" &&
		 [ "$(ls "$dir/pg_wal" | grep -Ec "^[0-9A-F]{24}$")" = "$(ls "$dir/pg_wal/archive_status" | grep -c "\.done$")" ]'
	check_true "$name: the tablespace is a plain directory pg_tblspc/$TSOID" \
		'[ -d "$dir/pg_tblspc/$TSOID" ] && [ ! -L "$dir/pg_tblspc/$TSOID" ]'
	check "$name: pg_verifybackup accepts it (files and WAL)" as_pg "$PG_BIN/pg_verifybackup -q '$dir'"
	check "$name: PostgreSQL starts on it with no restore_command" start_export "$dir" "$port"
	got=$(psql_p "$port" -c "SELECT pg_is_in_recovery()" 2>&1)
	check_true "$name: consistent and out of recovery ($got)" '[ "$got" = f ]'
	check_true "$name: the log shows consistency reached from backup_label" \
		'grep -q "consistent recovery state reached" "$X/logs/$(basename "$dir").log"'
	inv=$(psql_p "$port" -c "$invariant_sql" 2>&1)
	check_true "$name: pgbench invariant ($inv)" '[ "$inv" = t ]'
	got=$(psql_p "$port" -c "SELECT count(*) FROM ts_table" 2>&1)
	check_true "$name: the tablespace table answers from pg_tblspc/$TSOID ($got rows)" \
		'[ "$got" = 10000 ] && [ ! -L "$dir/pg_tblspc/$TSOID" ]'
	check "$name: pg_amcheck --all is clean" \
		as_pg "$PG_BIN/pg_amcheck --all --install-missing -h '$X/sock' -p $port -U postgres"
	pg_stop "$dir"
	check "$name: pg_checksums --check is clean after shutdown" as_pg "$PG_BIN/pg_checksums --check -D '$dir'"
}

check "export to FILE.tar" drb export --set="$LABEL" "$X/b.tar"
check_true "FILE.tar exists (0600), no FILE.tar.tmp, no work directory left" \
	'[ -f "$X/b.tar" ] && [ "$(stat -c %a "$X/b.tar")" = 600 ] && [ ! -e "$X/b.tar.tmp" ] && ! ls -A "$X" | grep -q "^\.drbackup-export"'
check_true "the summary line names the backup and the in-place tablespace setting" \
	'grep -q "export of backup $LABEL.*complete.*allow_in_place_tablespaces=on" "$IT_DIR/last.out"'
check "untar FILE.tar" untar "$X/plain" -f "$X/b.tar"
verify_export "tar" "$X/plain"
rm -rf "$X/plain"

check "export to FILE.tar.zst" drb export --set="$LABEL" "$X/b.tar.zst"
check_true "FILE.tar.zst is zstd" '[ "$(head -c 4 "$X/b.tar.zst" | od -An -tx1 | tr -d " ")" = 28b52ffd ]'
check "untar FILE.tar.zst (tar --zstd)" untar "$X/zst" --zstd -f "$X/b.tar.zst"
verify_export "tar.zst" "$X/zst"
rm -rf "$X/zst" "$X/b.tar.zst"

rm -rf "$X/pipe"; mkdir -m 700 "$X/pipe"; chown postgres:postgres "$X/pipe"
check "export - piped into tar -x" as_pg "TMPDIR=$T_DIR/tmp $BIN --config=$conf --stanza=ex export --set=$LABEL - | tar -x -C '$X/pipe'"
check_true "the tar stream on stdout holds the same files as FILE.tar" \
	'[ "$(cd "$X/pipe" && find . | sort | md5sum)" = "$(tar -tf "$X/b.tar" | sed "s|/\$||; s|^|./|" | sort -u | (echo .; cat) | sort | md5sum)" ]'
check "pg_verifybackup accepts the piped export" as_pg "$PG_BIN/pg_verifybackup -q '$X/pipe'"
rm -rf "$X/pipe"

# ---------------------------------------------------------------------------------------
# refusals: nothing left behind
# ---------------------------------------------------------------------------------------
nothing_left() { [ ! -e "$1" ] && [ ! -e "$1.tmp" ] && ! ls -A "$X" | grep -q "^\.drbackup-export"; }
check_fails "unknown label: one line, exit 1" 1 "20991231-000000F" drb export --set=20991231-000000F "$X/none.tar"
check_true "unknown label: no file left" 'nothing_left "$X/none.tar"'
check_fails "existing FILE: refused" 2 "exists" drb export --set="$LABEL" "$X/b.tar"
check_fails "no FILE argument: usage error" 2 "argument" drb export --set="$LABEL"

# a hostile manifest: the backup's own, listing a file under pg_wal/ (the export writes
# pg_wal/ itself), under a fake label added to the catalog
FAKE=${LABEL}_20301231-235959I
drb --repo=1 repo-get "stanza/ex/backup/$LABEL/backup.manifest" "$T_DIR/tmp/m.jsonl"
python3 - "$T_DIR/tmp/m.jsonl" "$T_DIR/tmp/hostile.jsonl" "$FAKE" "$LABEL" <<'EOP'
import json, sys
src, dst, fake, label = sys.argv[1:5]
lines = open(src).read().splitlines()
head = json.loads(lines[0]); head["label"] = fake; head["type"] = "incr"; head["parent"] = label
entries = [json.loads(l) for l in lines[1:-1]]
f = next(e for e in entries if e["t"] == "f" and e.get("o"))
i = next(i for i, e in enumerate(entries) if e["p"] == "pg_wal/archive_status")
w = dict(f); w["p"] = "pg_wal/archive_status/x"
entries.insert(i + 1, w)
with open(dst, "w") as o:
    o.write(json.dumps(head) + "\n")
    for e in entries:
        o.write(json.dumps(e) + "\n")
    o.write(json.dumps({"end": True, "entries": len(entries)}) + "\n")
EOP
for f in backup.catalog backup.catalog.copy; do
	drb --repo=1 repo-get "stanza/ex/backup/$f" "$T_DIR/tmp/$f.orig"
	python3 - "$T_DIR/tmp/$f.orig" "$T_DIR/tmp/$f" "$LABEL" "$FAKE" <<'EOP'
import copy, json, sys
src, dst, label, fake = sys.argv[1:5]
c = json.load(open(src))
b = copy.deepcopy(next(x for x in c["backups"] if x["label"] == label))
b["label"] = fake; b["type"] = "incr"; b["parent"] = label
b["references"] = [label, fake]
c["backups"].append(b)
json.dump(c, open(dst, "w"))
EOP
done
chown postgres "$T_DIR/tmp/"*
drb --repo=1 repo-put "$T_DIR/tmp/hostile.jsonl" "stanza/ex/backup/$FAKE/backup.manifest"
drb --repo=1 repo-put "$T_DIR/tmp/backup.catalog" "stanza/ex/backup/backup.catalog"
drb --repo=1 repo-put "$T_DIR/tmp/backup.catalog.copy" "stanza/ex/backup/backup.catalog.copy"
check_fails "hostile manifest (a file under pg_wal/): refused" 5 "pg_wal/archive_status/x" \
	drb export --set="$FAKE" "$X/hostile.tar"
check_true "hostile manifest: no file left" 'nothing_left "$X/hostile.tar"'
drb --repo=1 repo-put "$T_DIR/tmp/backup.catalog.orig" "stanza/ex/backup/backup.catalog"
drb --repo=1 repo-put "$T_DIR/tmp/backup.catalog.copy.orig" "stanza/ex/backup/backup.catalog.copy"

# a damaged data object: one byte flipped in the middle of the biggest object
obj=$(find "$T_DIR/repo1/stanza/ex/backup/$LABEL/data" -type f -printf '%s %p\n' | sort -n | tail -1 | cut -d' ' -f2)
size=$(stat -c %s "$obj")
printf '\x5a' | dd of="$obj" bs=1 seek=$((size / 2)) conv=notrunc status=none
check_fails "damaged object: refused, naming the object" 5 "$(basename "$obj")" \
	drb export --set="$LABEL" "$X/damaged.tar.zst"
check_true "damaged object: no FILE, no FILE.tmp, no work directory left" 'nothing_left "$X/damaged.tar.zst"'
