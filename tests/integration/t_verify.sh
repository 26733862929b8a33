# t_verify.sh — drbackup verify against a real PostgreSQL 15 cluster archiving to repo1 =
# posix (cipher none, so the test can damage stored bytes meaningfully) and repo2 = Swift
# s3api (encrypted), both written by every backup and every archive-push.
#
# A full and an incr backup, a few WAL switches; then verify passes on the healthy
# repositories (exit 0, text summary per repository, JSON ok true), and each fault, alone
# and undone before the next, makes it fail with exit 5 naming the object:
#   a byte flipped in the middle of a bundle of the full backup (repo1),
#   the same bundle stored again through the pipeline with one plain byte changed (the
#   object is authentic, a file in it is not the manifest's: the file is named),
#   a WAL object truncated by 100 bytes (repo1),
#   a WAL object deleted from the middle of the archive (a gap, named by segment),
#   a backup taken with --repo=1 only (repo2 lacks it: a difference naming label and region),
#   a WAL object deleted from repo2 only (a WAL difference and a gap in repo2).
# Also: --set and --repo limit the work; an object no manifest names is a warning only.
pg_start vf || { fail "start a PostgreSQL cluster for the verify test"; return 0; }
psql_v() { "$PG_BIN/psql" -X -q -At -h "$PG_VF_SOCK" -p "$PG_VF_PORT" -U postgres -d postgres "$@"; }
as_pg() { su postgres -s /bin/sh -c "$1"; }

mkdir -p "$T_DIR/bin" "$T_DIR/repo1" "$T_DIR/spool" "$T_DIR/tmp" "$T_DIR/saved"
BIN=$T_DIR/bin/drbackup
cp "$DRBACKUP" "$BIN"
chmod 755 "$T_DIR/bin" "$BIN"
chown postgres:postgres "$T_DIR/repo1" "$T_DIR/spool" "$T_DIR/tmp"

conf=$T_DIR/verify.conf
write_conf "$conf" <<EOC
[global]
repo1-path=$T_DIR/repo1
$(swift_repo 2 /it/verify)
repo2-cipher-type=aes-256-gcm
repo2-cipher-pass=verify-region-two
spool-path=$T_DIR/spool
lock-path=$T_DIR/tmp
process-max=2
start-fast=y
archive-timeout=60
expire-auto=n

[vf]
pg1-path=$PG_VF_DATA
pg1-port=$PG_VF_PORT
pg1-socket-path=$PG_VF_SOCK
pg1-user=postgres
EOC
chown postgres:postgres "$conf"
drb() { su postgres -s /bin/sh -c "TMPDIR=$T_DIR/tmp $BIN --config=$conf --stanza=vf $*"; }
# verify's JSON (stdout of the last check) queried with python: vq 'EXPR over d'
vq() { python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$IT_DIR/last.out" "$1"; }
last_label() {
	drb --repo=1 repo-get stanza/vf/backup/backup.catalog "$T_DIR/tmp/catalog.json" &&
		python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["backups"][-1]["label"])' "$T_DIR/tmp/catalog.json"
}
json_fails() { drb verify --output=json "$@"; [ $? = 5 ]; }	# stdout: the JSON
wait_archived() {
	local seg
	seg=$(psql_v -c "SELECT pg_walfile_name(pg_switch_wal())")
	for _ in $(seq 120); do
		[ "$(psql_v -c "SELECT coalesce(last_archived_wal, '') >= '$seg' FROM pg_stat_archiver")" = t ] && return 0
		sleep 0.5
	done
	return 1
}

check "stanza-create (posix + Swift)" drb stanza-create
cat >> "$PG_VF_DATA/postgresql.conf" <<EOC
archive_mode = on
archive_command = '$BIN --config=$conf --stanza=vf archive-push %p'
max_wal_size = 256MB
EOC
as_pg "$PG_BIN/pg_ctl -D '$PG_VF_DATA' -l '$IT_DIR/pg-vf/server.log' -w -t 60 restart >/dev/null"
"$PG_BIN/pgbench" -i -q -s 3 -h "$PG_VF_SOCK" -p "$PG_VF_PORT" -U postgres postgres > "$T_DIR/pgbench-init.log" 2>&1

check "full backup to both repositories" drb backup --type=full
FULL=$(last_label)
"$PG_BIN/pgbench" -n -t 200 -h "$PG_VF_SOCK" -p "$PG_VF_PORT" -U postgres postgres > /dev/null 2>&1
check "incr backup to both repositories" drb backup --type=incr
INCR=$(last_label)
for i in 1 2 3 4 5; do
	psql_v -c "CREATE TABLE t$i AS SELECT g FROM generate_series(1, 1000) g"
	wait_archived || break
done
check "five more WAL switches archived" wait_archived
check_true "backups $FULL and $INCR" '[[ "$INCR" == ${FULL}_*I ]]'

# ---------------------------------------------------------------------------------------
# healthy
# ---------------------------------------------------------------------------------------
check "verify passes on the healthy repositories" drb verify
check_true "a summary line per repository, 2 backups and no problem in each" \
	'grep -Eq "^verify: 2 backups, [0-9]+ WAL files, [0-9.]+ MiB read in repository 1: 0 problems$" "$IT_DIR/last.out" &&
	 grep -Eq "^verify: 2 backups, [0-9]+ WAL files, [0-9.]+ MiB read in repository 2: 0 problems$" "$IT_DIR/last.out"'
check_true "nothing on stderr when not on a terminal" '[ ! -s "$IT_DIR/last.err" ]'
check "verify --output=json passes" drb verify --output=json
check_true "JSON: ok true, two repositories, 2 backups and the WAL checked in each, bytes read" \
	'[ "$(vq "d[\"ok\"] and [r[\"repo\"] for r in d[\"repositories\"]] == [1, 2] and all(r[\"backups-checked\"] == 2 and r[\"wal-checked\"] > 5 and r[\"bytes\"] > 1000000 and r[\"problems\"] == [] for r in d[\"repositories\"]) and d[\"differences\"] == []")" = True ]'
check "verify --set=$FULL --repo=1" drb verify --repo=1 --set=$FULL --output=json
check_true "--set --repo: one repository, one backup" \
	'[ "$(vq "len(d[\"repositories\"]) == 1 and d[\"repositories\"][0][\"backups-checked\"] == 1 and d[\"ok\"]")" = True ]'

B1=$T_DIR/repo1/stanza/vf/backup
# an object nobody names: a warning, not a failure
cp "$B1/$FULL/backup.manifest" "$B1/$FULL/data/x-stray"
check "an orphan object does not fail verify" drb verify --repo=1
check_true "the orphan is named as a warning" 'grep -q "repository 1: stanza/vf/backup/$FULL/data/x-stray: warning:" "$IT_DIR/last.out"'
rm -f "$B1/$FULL/data/x-stray"

# ---------------------------------------------------------------------------------------
# faults, one at a time
# ---------------------------------------------------------------------------------------
# 1. a flipped byte in the middle of the full backup's biggest bundle
bundle=$(cd "$B1/$FULL" && ls -S data | grep '^b' | head -1)
obj="stanza/vf/backup/$FULL/data/$bundle"
cp -p "$B1/$FULL/data/$bundle" "$T_DIR/saved/bundle"
size=$(stat -c %s "$B1/$FULL/data/$bundle")
byte=$(od -An -tu1 -j $((size / 2)) -N1 "$B1/$FULL/data/$bundle" | tr -d ' ')
printf "\\$(printf %03o $(( (byte ^ 0x5a) & 255 )))" | dd of="$B1/$FULL/data/$bundle" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
check_true "the bundle $bundle ($size bytes) differs from its copy" '! cmp -s "$B1/$FULL/data/$bundle" "$T_DIR/saved/bundle"'
check_fails "verify fails (exit 5) on a flipped byte in a bundle" 5 "verify found .*$obj" drb verify
check_true "the damaged bundle is named in repository 1, once, as damaged" \
	'[ "$(grep -c "^repository 1: $obj: " "$IT_DIR/last.out")" = 1 ] && grep -q "repository 1: 1 problem$" "$IT_DIR/last.out" && grep -q "repository 2: 0 problems$" "$IT_DIR/last.out"'
check "verify --output=json with the damaged bundle exits 5" json_fails --repo=1
check_true "JSON: ok false, the problem's object and kind" \
	'[ "$(vq "not d[\"ok\"] and [(p[\"object\"], p[\"kind\"]) for p in d[\"repositories\"][0][\"problems\"]] == [(\"$obj\", \"damaged\")]")" = True ]'
cp -p "$T_DIR/saved/bundle" "$B1/$FULL/data/$bundle"

# 1b. a whole, authentic object whose bytes are not the manifest's: the bundle's plain bytes
# with one byte changed, stored again through the pipeline (repo-put): the file is named
drb --repo=1 repo-get "$obj" "$T_DIR/tmp/plain"
rel=$(python3 - "$T_DIR/tmp/plain" <<'EOP'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
b[len(b) // 2] ^= 0x5a
open(p, "wb").write(b)
print(len(b) // 2)
EOP
)
drb --repo=1 repo-put "$T_DIR/tmp/plain" "$obj"
wantfile=$(drb --repo=1 repo-get "stanza/vf/backup/$FULL/backup.manifest" "$T_DIR/tmp/m.jsonl" >/dev/null &&
	python3 -c 'import json, sys
for l in open(sys.argv[1]):
    e = json.loads(l)
    if e.get("o") == sys.argv[2] and e["off"] <= int(sys.argv[3]) < e["off"] + e["s"]: print(e["p"])' "$T_DIR/tmp/m.jsonl" "data/$bundle" "$rel")
check_fails "verify fails (exit 5) when a file of an authentic object differs from the manifest" 5 "file-mismatch" drb verify --repo=1
check_true "the file ($wantfile) and its object are named, with both checksums" \
	'[ -n "$wantfile" ] && grep -q "^repository 1: $obj: file '"'"'$wantfile'"'"' (.*) has SHA-256 [0-9a-f]\{64\}, the manifest says [0-9a-f]\{64\}$" "$IT_DIR/last.out"'
cp -p "$T_DIR/saved/bundle" "$B1/$FULL/data/$bundle"

# WAL objects of repo1's archive, in name order, after the full backup's start
A1=$(echo "$T_DIR"/repo1/stanza/vf/archive/15-*)
wal_start=$(python3 -c 'import json, sys; print([b for b in json.load(open(sys.argv[1]))["backups"] if b["label"] == sys.argv[2]][0]["wal-start"])' "$T_DIR/tmp/catalog.json" "$FULL")
mapfile -t segs < <(cd "$A1" && find . -type f -path './00000001*' | sed 's#^\./##' | sort | awk -F/ -v s="$wal_start" 'substr($2, 1, 24) > s')
mid=${segs[$(( ${#segs[@]} / 2 ))]}
midseg=${mid#*/}; midseg=${midseg%%-*}
check_true "WAL after the full's start ($wal_start): ${#segs[@]} segments, the middle one $midseg" '[ ${#segs[@]} -ge 4 ]'

# 2. a truncated WAL object
cp -p "$A1/$mid" "$T_DIR/saved/wal"
truncate -s -100 "$A1/$mid"
check_fails "verify fails (exit 5) on a truncated WAL object" 5 "verify found" drb verify --repo=1
check_true "the truncated WAL object is named, and the truncation said" \
	'grep "^repository 1: stanza/vf/archive/15-[0-9]*/$mid: " "$IT_DIR/last.out" | grep -qi "truncat"'
cp -p "$T_DIR/saved/wal" "$A1/$mid"

# 3. a deleted WAL object: a gap named by its segment
mv "$A1/$mid" "$T_DIR/saved/wal"
check_fails "verify fails (exit 5) on a WAL gap" 5 "verify found" drb verify --repo=1
check_true "the gap names segment $midseg" 'grep "wal-gap\|gap" "$IT_DIR/last.out" | grep -q "$midseg"'
check_true "only the gap, no other problem" 'grep -q "repository 1: 1 problem$" "$IT_DIR/last.out"'
mv "$T_DIR/saved/wal" "$A1/$mid"
check "verify passes again once every fault is undone" drb verify

# 4. a region missing one backup
check "a third backup to repository 1 only" drb --repo=1 backup --type=incr
THIRD=$(last_label)
drb verify --output=json > "$IT_DIR/last.out" 2> "$IT_DIR/last.err"
rc=$?
check_true "verify fails (exit 5, one stderr line) when repository 2 lacks backup $THIRD" \
	'[ $rc = 5 ] && [ "$(grep -c "" "$IT_DIR/last.err")" = 1 ] && grep -q "difference" "$IT_DIR/last.err"'
check_true "JSON differences: backup $THIRD missing in repository 2, ok false, no object problem" \
	'[ "$(vq "not d[\"ok\"] and [(x[\"kind\"], x[\"repo\"], x[\"object\"]) for x in d[\"differences\"]] == [(\"backup-missing\", 2, \"$THIRD\")] and all(r[\"problems\"] == [] for r in d[\"repositories\"])")" = True ]'
check_fails "text: the difference names the region and the label" 5 "difference" drb verify
check_true "text line: repository 2: $THIRD: ..." 'grep -q "^repository 2: $THIRD: backup $THIRD is not in the catalog (repository 1 has it)" "$IT_DIR/last.out"'

# 5. a WAL object missing in repository 2 only (deleted with the independent S3 client)
check "delete $midseg from repository 2 (aws s3 rm)" aws_swift s3 rm --quiet "s3://drb-swift/it/verify/${A1#"$T_DIR"/repo1/}/$mid"
json_fails > "$IT_DIR/last.out" 2> "$IT_DIR/last.err"
check_true "JSON differences: WAL $midseg missing in repository 2 (besides the backup)" \
	'[ "$(vq "[(x[\"kind\"], x[\"repo\"], x[\"object\"], x[\"count\"]) for x in d[\"differences\"] if x[\"kind\"] != \"backup-missing\"] == [(\"wal-missing\", 2, \"$midseg\", 1)]")" = True ]'
check_true "repository 2 reports the gap at $midseg, repository 1 none" \
	'[ "$(vq "[p[\"kind\"] for p in d[\"repositories\"][1][\"problems\"]] == [\"wal-gap\"] and \"$midseg\" in d[\"repositories\"][1][\"problems\"][0][\"object\"] and d[\"repositories\"][0][\"problems\"] == []")" = True ]'
pg_stop "$PG_VF_DATA"
