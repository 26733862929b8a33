# t_restore_test.sh — `drbackup restore-test` against a real PostgreSQL 15 cluster with data
# checksums; archive_command pushes to repo1 = posix (no cipher, no compression, so the test
# can damage an object meaningfully). Every drbackup command runs as postgres, as a
# scheduled restore test would.
#
# pgbench -i -s 3, a full backup, then pgbench load with marker rows and WAL switches.
#   --random-target passes: its report's reached point is consistent with the target
#     (last replayed commit <= target < first commit after it, or the end of the archive
#     when no commit follows), the target lies in the window, info shows the test, the
#     Prometheus file parses strictly, the scratch directory is gone and no server is left;
#   it fails, one error line naming the check, non-zero, recorded in the catalog and the
#   metrics (success 0, last success kept):
#     a checks-file query returning false (check 'query 2 (line N)');
#     a WAL segment deleted between the backup and the target (check 'choose': the window
#       now ends at the gap; and recovering to the end of the archive: check 'target', as
#       PostgreSQL stops at the gap while the archive goes on);
#     bytes flipped inside pgbench_accounts' object (check 'restore', naming the file).
pg_start rt || { fail "start a PostgreSQL cluster for the restore-test test"; return 0; }
psql_r() { "$PG_BIN/psql" -X -q -At -h "$PG_RT_SOCK" -p "$PG_RT_PORT" -U postgres -d postgres "$@"; }
as_pg() { su postgres -s /bin/sh -c "$1"; }

mkdir -p "$T_DIR/bin" "$T_DIR/repo1" "$T_DIR/tmp" "$T_DIR/scratch" "$T_DIR/out" "$T_DIR/log" "$T_DIR/saved"
BIN=$T_DIR/bin/drbackup
cp "$DRBACKUP" "$BIN"
chmod 755 "$T_DIR/bin" "$BIN"
chown -R postgres:postgres "$T_DIR/repo1" "$T_DIR/tmp" "$T_DIR/scratch" "$T_DIR/out" "$T_DIR/log"
OUT=$T_DIR/out

conf=$T_DIR/rt.conf
write_conf "$conf" <<EOC
[global]
repo1-path=$T_DIR/repo1
compress-type=none
lock-path=$T_DIR/tmp
log-path=$T_DIR/log
process-max=2
start-fast=y
archive-timeout=60
expire-auto=n
test-path=$T_DIR/scratch
test-timeout=120

[rt]
pg1-path=$PG_RT_DATA
pg1-port=$PG_RT_PORT
pg1-socket-path=$PG_RT_SOCK
pg1-user=postgres
EOC
chown postgres:postgres "$conf"
drb() { su postgres -s /bin/sh -c "TMPDIR=$T_DIR/tmp $BIN --config=$conf --stanza=rt $*"; }

check "stanza-create (posix, no cipher)" drb stanza-create
cat >> "$PG_RT_DATA/postgresql.conf" <<EOC
archive_mode = on
archive_command = '$BIN --config=$conf --stanza=rt archive-push %p'
max_wal_size = 256MB
EOC
as_pg "$PG_BIN/pg_ctl -D '$PG_RT_DATA' -l '$IT_DIR/pg-rt/server.log' -w -t 60 restart >/dev/null"
"$PG_BIN/pgbench" -i -q -s 3 -h "$PG_RT_SOCK" -p "$PG_RT_PORT" -U postgres postgres > "$T_DIR/pgbench-init.log" 2>&1
psql_r -c "CREATE TABLE marker (id int PRIMARY KEY, at timestamptz NOT NULL)"
check "full backup" drb backup --type=full
drb --repo=1 repo-get stanza/rt/backup/backup.catalog "$T_DIR/tmp/catalog.json"
read -r FULL WAL_STOP < <(python3 -c 'import json, sys; b = json.load(open(sys.argv[1]))["backups"][-1]; print(b["label"], b["wal-stop"])' "$T_DIR/tmp/catalog.json")

# load: pgbench, a marker every 0.2 s, a WAL switch every 2 s (several segments after the backup)
"$PG_BIN/pgbench" -n -c 2 -T 8 -h "$PG_RT_SOCK" -p "$PG_RT_PORT" -U postgres postgres > "$T_DIR/pgbench.log" 2>&1 &
load=$!
for i in $(seq 1 40); do
	psql_r -c "INSERT INTO marker VALUES ($i, clock_timestamp())"
	[ $((i % 10)) -eq 0 ] && psql_r -c "SELECT pg_switch_wal()" >/dev/null
	sleep 0.2
done
wait $load
psql_r -c "INSERT INTO marker VALUES (1000, clock_timestamp())"
sleep 0.3
T_LATE=$(psql_r -c "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'")
sleep 0.3
psql_r -c "INSERT INTO marker VALUES (1001, clock_timestamp())"
wait_archived() {
	local seg
	seg=$(psql_r -c "SELECT pg_walfile_name(pg_switch_wal())")
	for _ in $(seq 120); do
		[ "$(psql_r -c "SELECT last_archived_wal >= '$seg' FROM pg_stat_archiver")" = t ] && return 0
		sleep 0.5
	done
	return 1
}
check "the WAL of the load is archived" wait_archived

# ---------------------------------------------------------------------------------------
# a passing restore test at a random moment
# ---------------------------------------------------------------------------------------
check "restore-test --random-target passes" drb restore-test --random-target \
	--report="$OUT/r1.json" --metrics="$OUT/m1.prom"
cp "$IT_DIR/last.out" "$T_DIR/r1.out"
check_true "it prints one summary line naming the backup and the RTO" \
	'grep -Eq "^restore-test of backup $FULL from repository 1 passed: target .* \(random\) reached .*RTO [0-9.]+ s \(choose [0-9.]+, restore [0-9.]+, replay [0-9.]+, checks [0-9.]+\)" "$T_DIR/r1.out"'
reached=$(python3 - "$OUT/r1.json" "$FULL" <<'EOP'
import datetime, json, sys
r = json.load(open(sys.argv[1]))
def t(s):
    return datetime.datetime.strptime(s[:26], "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=datetime.timezone.utc).timestamp() if s else None
def iso(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc).timestamp()
assert r["success"] is True and r["failed-check"] is None, "not a success"
assert r["target"]["random"] is True and r["target"]["type"] == "time"
target = t(r["target"]["time"])
assert r["backup"]["label"] == sys.argv[2] and r["backup"]["repo"] == 1
w = r["window"]
assert iso(w["earliest"]) + 1 <= target <= iso(w["latest"]) + 1, "target outside the window"
rc = r["reached"]
replay, nxt = t(rc["last-replayed-commit"]), t(rc["next-commit"])
if rc["stop"] == "target":
    assert replay is not None and replay <= target < nxt, (replay, target, nxt)
else:
    assert rc["stop"] == "end-of-archive" and rc["redo-done-lsn"], rc
    assert replay is None or replay <= target
assert set(r["phases"]) == {"choose", "restore", "replay", "checks"}
assert abs(sum(r["phases"].values()) - r["rto-seconds"]) < 0.01
assert r["restored"]["bytes"] > 40 * 1024 * 1024, r["restored"]
names = [c["name"] for c in r["checks"]]
assert names == ["recovery", "target", "amcheck", "shutdown", "checksums"], names
assert all(c["ok"] for c in r["checks"])
assert r["scratch"]["kept"] is False
print(rc["stop"])
EOP
)
check_true "the report's reached point matches the target (stopped at: $reached)" \
	'[ "$reached" = target ] || [ "$reached" = end-of-archive ]'
check_true "the scratch directory is removed and no scratch server is left running" \
	'[ -z "$(ls -A "$T_DIR/scratch")" ] && ! pgrep -f "$T_DIR/scratch" >/dev/null'

# a strict reading of the Prometheus text format
prom_check() {	# prom_check FILE: prints "name{labels}=value" lines
	python3 - "$1" <<'EOP'
import re, sys
name = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
label = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
sample = re.compile(r"^(%s)(\{%s(?:,%s)*\})? (-?[0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?|NaN|[+-]Inf)$" % (name, label, label))
typed, helped = {}, set()
text = open(sys.argv[1]).read()
assert text.endswith("\n")
for line in text.splitlines():
    if line.startswith("# HELP "):
        helped.add(line.split()[2])
    elif line.startswith("# TYPE "):
        _, _, n, t = line.split()
        assert t in ("gauge", "counter"), line
        typed[n] = t
    else:
        m = sample.match(line)
        assert m, "not a sample line: %r" % line
        assert m.group(1) in typed and m.group(1) in helped, "no TYPE/HELP for " + line
        print("%s%s=%s" % (m.group(1), m.group(2) or "", m.group(3)))
EOP
}
check "the metrics file parses as Prometheus text" prom_check "$OUT/m1.prom"
prom_check "$OUT/m1.prom" > "$T_DIR/m1.txt" 2>&1
started=$(python3 -c 'import json, sys, calendar, time; print(calendar.timegm(time.strptime(json.load(open(sys.argv[1]))["started"], "%Y-%m-%dT%H:%M:%SZ")))' "$OUT/r1.json")
check_true "metrics: success 1, every phase and the total, last success = this test, the window of repo1" \
	'grep -qx "drbackup_restore_test_success{source=\"restore-test\",stanza=\"rt\"}=1" "$T_DIR/m1.txt" &&
	 for p in choose restore replay checks total; do grep -q "^drbackup_restore_test_duration_seconds{source=\"restore-test\",stanza=\"rt\",phase=\"$p\"}=[0-9.]*$" "$T_DIR/m1.txt" || exit 1; done &&
	 grep -qx "drbackup_restore_test_last_success_timestamp_seconds{source=\"restore-test\",stanza=\"rt\"}=$started" "$T_DIR/m1.txt" &&
	 grep -Eq "^drbackup_recoverable_window_seconds\{source=\"restore-test\",stanza=\"rt\",repo=\"1\"\}=[1-9][0-9]*$" "$T_DIR/m1.txt"'
check "info after the test" drb info
check_true "info shows the last restore test of backup $FULL" \
	'grep -A12 "full backup: $FULL" "$IT_DIR/last.out" | grep -Eq "restore test: ok at .*target .* \(random\)"'

# ---------------------------------------------------------------------------------------
# failures, each named
# ---------------------------------------------------------------------------------------
cat > "$OUT/checks.sql" <<'EOC'
-- every marker committed before the backup's end is there; a ';' in a string is not an end
SELECT count(*) >= 0 AND ';' = ';' FROM marker;

/* this one is false */
SELECT count(*) = 0
  FROM pgbench_accounts;
EOC
chown postgres "$OUT/checks.sql"
check_fails "a checks-file query returning false fails, naming it" 5 \
	"restore-test failed: check 'query 2 \(line 5\)': returned false: SELECT count\(\*\) = 0 FROM pgbench_accounts" \
	drb restore-test --checks="$OUT/checks.sql" --report="$OUT/r2.json" --metrics="$OUT/m1.prom"
check_true "the report says which check failed; query 1 and the end of the archive passed" \
	"python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); assert r[\"success\"] is False and r[\"failed-check\"] == \"query 2 (line 5)\"; c = {x[\"name\"]: x[\"ok\"] for x in r[\"checks\"]}; assert c[\"query 1 (line 2)\"] and c[\"target\"] and not c[\"query 2 (line 5)\"]; assert r[\"reached\"][\"stop\"] == \"end-of-archive\"' '$OUT/r2.json'"
prom_check "$OUT/m1.prom" > "$T_DIR/m2.txt" 2>&1
check_true "metrics after the failure: success 0, the last success still the first test's" \
	'grep -qx "drbackup_restore_test_success{source=\"restore-test\",stanza=\"rt\"}=0" "$T_DIR/m2.txt" &&
	 grep -qx "drbackup_restore_test_last_success_timestamp_seconds{source=\"restore-test\",stanza=\"rt\"}=$started" "$T_DIR/m2.txt"'
check "info after the failure" drb info
check_true "info shows the failed restore test with its check" \
	'grep -A12 "full backup: $FULL" "$IT_DIR/last.out" | grep -q "restore test: FAILED at .*query 2 (line 5): returned false"'

# a WAL segment between the backup and the target, gone from repo1
ARCH=$(find "$T_DIR/repo1/stanza/rt/archive" -mindepth 1 -maxdepth 1 -type d | head -1)
mapfile -t segs < <(find "$ARCH" -type f -name '[0-9A-F]*' | grep -E '/[0-9A-F]{24}-[0-9a-f]{64}$' | sort)
gone=""
after=()
for s in "${segs[@]}"; do n=$(basename "$s"); [[ "${n:0:24}" > "$WAL_STOP" ]] && after+=("$s"); done
[ ${#after[@]} -ge 3 ] && gone=${after[1]}
check_true "a segment after the backup to remove (${#after[@]} after $WAL_STOP): $(basename "${gone:-none}")" '[ -n "$gone" ]'
GONE_SEG=$(basename "$gone"); GONE_SEG=${GONE_SEG:0:24}
mv "$gone" "$T_DIR/saved/"
check_fails "a target beyond a missing WAL segment ($GONE_SEG) fails at 'choose': the window ends at the gap" 2 \
	"restore-test failed: check 'choose': the target .* is outside the recoverable window: the recoverable window of repository 1 is .* to " \
	drb restore-test --to-time="'$T_LATE'" --report="$OUT/r3.json"
check_fails "recovering to the end of the archive across the gap fails at 'target'" 5 \
	"restore-test failed: check 'target': recovery ended at [0-9A-F]+/[0-9A-F]+, but the archive of repository 1 holds WAL up to [0-9A-F]+/[0-9A-F]+: segment $GONE_SEG \(or the one after it\) is missing" \
	drb restore-test --report="$OUT/r4.json"
check_true "no scratch directory or server left after the failures" \
	'[ -z "$(ls -A "$T_DIR/scratch")" ] && ! pgrep -f "$T_DIR/scratch" >/dev/null'
mv "$T_DIR/saved/$(basename "$gone")" "$gone"

# a data page damaged in the repository: bytes flipped in the middle of pgbench_accounts' object
accounts=$(psql_r -c "SELECT pg_relation_filepath('pgbench_accounts')")
drb --repo=1 repo-get "stanza/rt/backup/$FULL/backup.manifest" "$T_DIR/tmp/full.manifest"
obj=$(python3 - "$T_DIR/tmp/full.manifest" "$accounts" <<'EOP'
import json, sys
for l in open(sys.argv[1]).read().splitlines()[1:-1]:
    e = json.loads(l)
    if e.get("p") == sys.argv[2]:
        print("stanza/rt/backup/%s/%s %d" % (e["r"], e["o"], e["off"] + e["s"] // 2))
EOP
)
read -r objpath middle <<< "$obj"
check_true "pgbench_accounts ($accounts) has its own object in repo1: $objpath" '[ -f "$T_DIR/repo1/$objpath" ]'
cp -p "$T_DIR/repo1/$objpath" "$T_DIR/saved/object"
size=$(stat -c %s "$T_DIR/repo1/$objpath")
printf '\xde\xad\xbe\xef' | dd of="$T_DIR/repo1/$objpath" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
check_fails "a damaged data object fails at 'restore', naming the file" 5 \
	"restore-test failed: check 'restore': restore of backup $FULL to .*failed: .*$accounts" \
	drb restore-test --random-target --report="$OUT/r5.json"
check_true "the report of the damaged restore names the phase and the file" \
	"python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); assert r[\"failed-check\"] == \"restore\" and sys.argv[2] in r[\"error\"] and \"restore\" in r[\"phases\"]' '$OUT/r5.json' '$accounts'"
cp -p "$T_DIR/saved/object" "$T_DIR/repo1/$objpath"

check "after repair, restore-test --to-time passes again" drb restore-test --to-time="'$T_LATE'" --report="$OUT/r6.json"
check_true "--to-time: stopped at the target, before marker 1001" \
	"python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); assert r[\"success\"] and r[\"reached\"][\"stop\"] == \"target\" and r[\"reached\"][\"next-commit\"] > r[\"target\"][\"time\"] >= r[\"reached\"][\"last-replayed-commit\"]' '$OUT/r6.json'"
check_true "no scratch directory or server left at the end" \
	'[ -z "$(ls -A "$T_DIR/scratch")" ] && ! pgrep -f "$T_DIR/scratch" >/dev/null'

# as root (a root cron job): PostgreSQL runs as the owner of pg1-path, never as root; --keep
check "restore-test as root, --keep" "$BIN" --config="$conf" --stanza=rt restore-test --keep --report="$OUT/r7.json"
kept=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["scratch"]["path"])' "$OUT/r7.json")
check_true "as root: the server ran as postgres, the kept copy is postgres's, and it is stopped" \
	'grep -q "(pid [0-9]*, user postgres)" "$IT_DIR/last.out" && [ "$(stat -c %U "$kept/data" "$kept/data/base" "$kept/server.log" | sort -u)" = postgres ] && [ ! -e "$kept/data/postmaster.pid" ] && grep -q "the scratch directory is kept: $kept" "$IT_DIR/last.out"'
rm -rf "$kept"
pg_stop "$PG_RT_DATA"
