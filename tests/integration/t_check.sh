# t_check.sh — check and metrics against a real PostgreSQL 15 cluster; repo1 = posix,
# repo2 = Swift s3api (encrypted); archive_command = drbackup archive-push.
#
# check: every line ok and exit 0 on a correct set-up, the probe object gone afterwards;
# then it fails naming the cause for a wrong archive_command (not drbackup; another
# stanza), an unreachable repository, a read-only repository and the stanza of another
# cluster (the harness's "other" PostgreSQL). metrics: the output parses as Prometheus text
# (a small parser below), repositories are up, the series move with a backup and with a WAL
# switch, --output writes the same text atomically, and an unreachable repository is
# reported as down without failing the command.
pg_start ck || { fail "start a PostgreSQL cluster for the check test"; return 0; }
psql_c() { "$PG_BIN/psql" -X -q -At -h "$PG_CK_SOCK" -p "$PG_CK_PORT" -U postgres -d postgres "$@"; }
as_pg() { su postgres -s /bin/sh -c "$1"; }

mkdir -p "$T_DIR/bin" "$T_DIR/repo1" "$T_DIR/spool" "$T_DIR/lock" "$T_DIR/tmp" "$T_DIR/prom"
BIN=$T_DIR/bin/drbackup
cp "$DRBACKUP" "$BIN"
chmod 755 "$T_DIR/bin" "$BIN"
chown postgres:postgres "$T_DIR/repo1" "$T_DIR/spool" "$T_DIR/lock" "$T_DIR/tmp" "$T_DIR/prom"

conf=$T_DIR/check.conf
base_conf() {	# base_conf REPO2-LINES PG-DATA PG-PORT PG-SOCK
	cat <<EOC
[global]
repo1-path=$T_DIR/repo1
$1
repo2-cipher-type=aes-256-gcm
repo2-cipher-pass=check-region-two
spool-path=$T_DIR/spool
lock-path=$T_DIR/lock
start-fast=y
archive-timeout=30
expire-auto=n

[ck]
pg1-path=$2
pg1-port=$3
pg1-socket-path=$4
pg1-user=postgres
EOC
}
base_conf "$(swift_repo 2 /it/check)" "$PG_CK_DATA" "$PG_CK_PORT" "$PG_CK_SOCK" | write_conf "$conf"
# repo2 pointed at a port nothing listens on, failing fast
closed=$(free_port)
conf_down=$T_DIR/check-down.conf
base_conf "$(swift_repo 2 /it/check | sed "s|^repo2-s3-endpoint=.*|repo2-s3-endpoint=http://127.0.0.1:$closed|")
repo2-storage-timeout=2
repo2-storage-retries=0" "$PG_CK_DATA" "$PG_CK_PORT" "$PG_CK_SOCK" | write_conf "$conf_down"
# the same stanza configured against the harness's other cluster
conf_other=$T_DIR/check-other.conf
base_conf "$(swift_repo 2 /it/check)" "$PG_OTHER_DATA" "$PG_OTHER_PORT" "$PG_OTHER_SOCK" | write_conf "$conf_other"
chown postgres:postgres "$conf" "$conf_down" "$conf_other"

# every drbackup command runs as postgres (not root: root ignores file modes)
drbc() { local c=$1; shift; su postgres -s /bin/sh -c "TMPDIR=$T_DIR/tmp $BIN --config=$c --stanza=ck $*"; }
drb() { drbc "$conf" "$@"; }
# run_check CONF [OPTIONS]: check's stdout in check.out, stderr in check.err, exit in $rc
run_check() {
	local c=$1; shift
	drbc "$c" check "$@" > "$T_DIR/check.out" 2> "$T_DIR/check.err"
	rc=$?
}
line() { grep -E "^$1: " "$T_DIR/check.out"; }
show() { printf 'exit %s\n%s\n--- stderr\n%s\n' "$rc" "$(cat "$T_DIR/check.out")" "$(tail -3 "$T_DIR/check.err")"; }
# set_archive_command VALUE (SQL literal) or RESET, then wait until the server uses it
set_archive_command() {
	if [ "$1" = RESET ]; then psql_c -c "ALTER SYSTEM RESET archive_command"
	else psql_c -c "ALTER SYSTEM SET archive_command = $1"; fi
	local want
	want=$(psql_c -c "SELECT pg_reload_conf()" > /dev/null; sleep 0.3; psql_c -c "SHOW archive_command")
	for _ in $(seq 1 20); do
		[ "$(psql_c -c "SHOW archive_command")" = "$want" ] && return 0
		sleep 0.2
	done
}

check "stanza-create (posix + Swift)" drb stanza-create
cat >> "$PG_CK_DATA/postgresql.conf" <<EOC
archive_mode = on
archive_command = '$BIN --config=$conf --stanza=ck archive-push %p'
EOC
as_pg "$PG_BIN/pg_ctl -D '$PG_CK_DATA' -l '$IT_DIR/pg-ck/server.log' -w -t 60 restart >/dev/null"

# ---------------------------------------------------------------------------------------
# check on a correct set-up
# ---------------------------------------------------------------------------------------
run_check "$conf"
check_true "check passes on a correct set-up (exit 0)" '[ "$rc" -eq 0 ] || { show; false; }'
check_true "check prints the 11 checks in order, every one ok" '[ "$(cut -d: -f1 "$T_DIR/check.out" | tr "\n" ,)" = "config,repo1 open,repo1 write/read/delete,repo2 open,repo2 write/read/delete,cluster,archive_mode,archive_command,wal switch,repo1 wal archived,repo2 wal archived," ] && ! grep -vq ": ok" "$T_DIR/check.out" || { show; false; }'
check_true "config line names the file" 'line config | grep -qF "config: ok ($conf)"'
check_true "cluster line names the system identifier of both repositories' record" \
	'line cluster | grep -q "system identifier $(psql_c -c "SELECT system_identifier FROM pg_control_system()"), as recorded in repo1, repo2"'
seg=$(line "wal switch" | grep -oE "[0-9A-F]{24}")
check_true "the switched segment ($seg) is in repo1's archive" \
	'[ -n "$seg" ] && find "$T_DIR/repo1/stanza/ck/archive" -name "$seg-*" | grep -q .'
check_true "the probe object is gone from repo1" \
	'[ -z "$(find "$T_DIR/repo1/stanza/ck" -path "*check/probe-*")" ]'
check_true "the probe object is gone from repo2 (Swift)" \
	'! aws_swift s3 ls --recursive s3://drb-swift/it/check/stanza/ck/check/ 2>/dev/null | grep -q probe-'
check_true "check wrote nothing on stderr" '[ ! -s "$T_DIR/check.err" ] || { show; false; }'

# ---------------------------------------------------------------------------------------
# check failing, naming the cause
# ---------------------------------------------------------------------------------------
set_archive_command "'cp %p $T_DIR/x'"
run_check "$conf"
check_true "wrong archive_command: exit 3 (config)" '[ "$rc" -eq 3 ] || { show; false; }'
check_true "wrong archive_command: the line says it does not call drbackup" \
	'line archive_command | grep -qF "archive_command: error: archive_command '"'"'cp %p $T_DIR/x'"'"' does not call drbackup"'
check_true "wrong archive_command: repositories and cluster still ok, WAL switch not run" \
	'line "repo2 write/read/delete" | grep -q ": ok" && line cluster | grep -q ": ok" && line "wal switch" | grep -q "not run"'
check_true "wrong archive_command: one stderr line 'check failed: 4 of 11 checks'" \
	'[ "$(cat "$T_DIR/check.err")" = "drbackup: ERROR: check failed: 4 of 11 checks" ] || { show; false; }'

set_archive_command "'$BIN --config=$conf --stanza=main archive-push %p'"
run_check "$conf"
check_true "archive_command of another stanza: named" \
	'[ "$rc" -eq 3 ] && line archive_command | grep -q "archives to stanza '"'"'main'"'"', not '"'"'ck'"'"'" || { show; false; }'
set_archive_command "'$BIN --config=$conf archive-push %p'"
run_check "$conf"
check_true "archive_command without a stanza: named" \
	'[ "$rc" -eq 3 ] && line archive_command | grep -q "names no stanza: add --stanza=ck" || { show; false; }'
set_archive_command "'$BIN --config=$conf --stanza ck archive-push %p'"
run_check "$conf"
check_true "archive_command with '--stanza ck' (space) is accepted, check passes" '[ "$rc" -eq 0 ] || { show; false; }'
set_archive_command RESET

run_check "$conf_down"
check_true "unreachable repository: exit 4 (storage)" '[ "$rc" -eq 4 ] || { show; false; }'
check_true "unreachable repository: repo2 open names 127.0.0.1:$closed" \
	'line "repo2 open" | grep -q "repo2 open: error: .*127.0.0.1.*$closed" || { show; false; }'
check_true "unreachable repository: repo1 checks and its WAL arrival still ok" \
	'line "repo1 write/read/delete" | grep -q ": ok" && line "repo1 wal archived" | grep -q ": ok" && line "repo2 wal archived" | grep -q "not run: the repository could not be opened" || { show; false; }'
check_true "unreachable repository: final line counts 3 of 11" \
	'tail -1 "$T_DIR/check.err" | grep -qx "drbackup: ERROR: check failed: 3 of 11 checks" || { show; false; }'

chmod -R a-w "$T_DIR/repo1"
run_check "$conf" --archive-timeout=3
chmod -R u+w "$T_DIR/repo1"
check_true "read-only repository: exit 4 (storage)" '[ "$rc" -eq 4 ] || { show; false; }'
check_true "read-only repository: repo1 write names the probe object and the permission" \
	'line "repo1 write/read/delete" | grep -q "error: .*probe-.*[Pp]ermission denied" || { show; false; }'
check_true "read-only repository: repo1 could still be opened (read), repo2 fully ok" \
	'line "repo1 open" | grep -q ": ok" && line "repo2 write/read/delete" | grep -q ": ok" || { show; false; }'

run_check "$conf_other"
other_id=$("$PG_BIN/pg_controldata" "$PG_OTHER_DATA" | awk -F: '/system identifier/ {gsub(/ /,"",$2); print $2}')
check_true "stanza of another cluster: exit 8 (stanza)" '[ "$rc" -eq 8 ] || { show; false; }'
check_true "stanza of another cluster: the cluster line names both system identifiers" \
	'line cluster | grep -q "cluster: error: the running cluster (system identifier $other_id, .* is not the one recorded for stanza '"'"'ck'"'"' in repository 1" || { show; false; }'
check_true "stanza of another cluster: WAL switch not run" 'line "wal switch" | grep -q "not run: the cluster does not match"'

# ---------------------------------------------------------------------------------------
# metrics
# ---------------------------------------------------------------------------------------
cat > "$T_DIR/prom.py" <<'EOP'
# Parse Prometheus text format strictly enough for a test: HELP/TYPE before samples, one
# block per family, every sample "name{label="v",...} number". Prints JSON {series: value}.
import json, re, sys
lab = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"'
sample = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{' + lab + r'(?:,' + lab + r')*\})? (-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)$')
typed, helped, seen_done, cur, out = {}, set(), set(), None, {}
text = open(sys.argv[1]).read()
assert text.endswith("\n"), "no final newline"
for n, l in enumerate(text.splitlines(), 1):
    if l.startswith("# HELP "):
        name = l.split()[2]
        assert name not in helped, f"line {n}: second HELP for {name}"
        helped.add(name)
        continue
    if l.startswith("# TYPE "):
        _, _, name, kind = l.split()
        assert kind == "gauge" and name not in typed, f"line {n}: {l}"
        typed[name] = kind
        if cur:
            seen_done.add(cur)
        cur = name
        continue
    m = sample.match(l)
    assert m, f"line {n} is not a sample: {l!r}"
    name = m.group(1)
    assert name == cur and name not in seen_done and name in helped, f"line {n}: {name} outside its family"
    key = name + (m.group(2) or "")
    assert key not in out, f"line {n}: duplicate series {key}"
    out[key] = float(m.group(3))
print(json.dumps(out))
EOP
# metrics_json NAME [CONF]: run metrics, parse its output into $T_DIR/NAME.json
metrics_json() {
	drbc "${2:-$conf}" metrics > "$T_DIR/$1.prom" 2> "$T_DIR/$1.err" && python3 "$T_DIR/prom.py" "$T_DIR/$1.prom" > "$T_DIR/$1.json"
}
# mval NAME METRIC REPO [TYPE]: the value (an integer) of one series in NAME, or "absent"
mval() {
	python3 - "$T_DIR/$1.json" "$2" "$3" "${4:-}" <<'EOP'
import json, sys
d = json.load(open(sys.argv[1]))
k = '%s{stanza="ck",repo="%s"%s}' % (sys.argv[2], sys.argv[3], ',type="%s"' % sys.argv[4] if sys.argv[4] else "")
print(int(d[k]) if k in d else "absent")
EOP
}
# families NAME REPO: the metric names present for repository REPO in NAME, sorted
families() {
	python3 -c 'import json,sys; print(" ".join(sorted({k.split("{")[0] for k in json.load(open(sys.argv[1])) if "repo=\"%s\"" % sys.argv[2] in k})))' "$T_DIR/$1.json" "$2"
}

# the archiver catches up with what the read-only repository held back: wait until idle
archiver_idle() { ! ls "$PG_CK_DATA/pg_wal/archive_status" | grep -q '\.ready$'; }
check "the archiver has nothing left to archive" wait_for archiver_idle
check "metrics before any backup: parses as Prometheus text" metrics_json m0
check_true "metrics: both repositories up" '[ "$(mval m0 drbackup_up 1)" = 1 ] && [ "$(mval m0 drbackup_up 2)" = 1 ]'
check_true "metrics: before any backup, no backup age and no restore test series; window 0" \
	'[ "$(families m0 1)" = "drbackup_last_archived_wal_age_seconds drbackup_recoverable_window_seconds drbackup_repo_size_bytes drbackup_up" ] && [ "$(mval m0 drbackup_recoverable_window_seconds 1)" = 0 ]'
repo1_bytes=$(find "$T_DIR/repo1/stanza/ck" -type f -printf "%s\n" | awk '{ s += $1 } END { print s }')
check_true "metrics: repo1 size ($repo1_bytes) is the sum of its objects under stanza/ck" \
	'[ "$(mval m0 drbackup_repo_size_bytes 1)" = "$repo1_bytes" ]'
check_true "metrics: repo2 size positive" '[ "$(mval m0 drbackup_repo_size_bytes 2)" -gt 0 ]'

check "full backup" drb backup --type=full
check "metrics after the backup" metrics_json m1
for r in 1 2; do
	v=$(mval m1 drbackup_last_backup_age_seconds $r full)
	check_true "metrics: repo$r last_backup_age{type=full} present and small ($v)" '[ "$v" != absent ] && [ "$v" -lt 60 ]'
done
check_true "metrics: no diff or incr series; repo1 size grew" \
	'[ "$(mval m1 drbackup_last_backup_age_seconds 1 diff)$(mval m1 drbackup_last_backup_age_seconds 1 incr)" = absentabsent ] && [ "$(mval m1 drbackup_repo_size_bytes 1)" -gt "$(mval m0 drbackup_repo_size_bytes 1)" ]'
check_true "metrics: still no restore test series (none ran)" \
	'[ "$(mval m1 drbackup_restore_test_last_success_timestamp_seconds 1)" = absent ]'

sleep 3
check "metrics before a WAL switch" metrics_json m2
psql_c -c "SELECT pg_logical_emit_message(false, 'it', 'metrics')" > /dev/null
seg=$(psql_c -c "SELECT pg_walfile_name(pg_switch_wal())")
archived() { [ "$(psql_c -c "SELECT last_archived_wal FROM pg_stat_archiver")" = "$seg" ]; }
check "segment $seg archived" wait_for archived
check "metrics after the WAL switch" metrics_json m3
for r in 1 2; do
	a=$(mval m2 drbackup_last_archived_wal_age_seconds $r)
	b=$(mval m3 drbackup_last_archived_wal_age_seconds $r)
	check_true "metrics: repo$r last_archived_wal_age went down after the switch ($a -> $b)" '[ "$a" -ge 3 ] && [ "$b" -lt "$a" ]'
done
w=$(mval m3 drbackup_recoverable_window_seconds 1)
check_true "metrics: repo1 recoverable window is a number >= 0 once a backup exists ($w)" '[ "$w" != absent ] && [ "$w" -ge 0 ]'

# --output=FILE: the same text, atomically, nothing else left in the directory
drb metrics --output="$T_DIR/prom/drbackup.prom" > "$T_DIR/file.out" 2> "$T_DIR/file.err"
frc=$?
drb metrics > "$T_DIR/stdout.prom" 2>/dev/null
check_true "metrics --output=FILE: exit 0, nothing on stdout" '[ "$frc" -eq 0 ] && [ ! -s "$T_DIR/file.out" ]'
check_true "metrics --output=FILE: the directory holds only the file, mode 644" \
	'[ "$(ls -A "$T_DIR/prom")" = "drbackup.prom" ] && [ "$(stat -c %a "$T_DIR/prom/drbackup.prom")" = 644 ]'
norm() { sed -E 's/^(drbackup_[a-z_]*age_seconds\{[^}]*\}) [0-9]+$/\1 N/' "$1"; }
check_true "metrics --output=FILE: same text as standard output (ages aside)" \
	'[ "$(norm "$T_DIR/prom/drbackup.prom")" = "$(norm "$T_DIR/stdout.prom")" ] && python3 "$T_DIR/prom.py" "$T_DIR/prom/drbackup.prom" > /dev/null'
cp "$T_DIR/prom/drbackup.prom" "$T_DIR/prom-before"
check_fails "metrics --output into a missing directory fails" 1 "unable to write the metrics file" \
	drb metrics --output="$T_DIR/prom/missing/drbackup.prom"
chmod a-w "$T_DIR/prom"
check_fails "metrics --output into a read-only directory fails" 4 "unable to write the metrics file" \
	drb metrics --output="$T_DIR/prom/drbackup.prom"
chmod u+w "$T_DIR/prom"
check_true "metrics: failed writes leave the old file whole and nothing else" \
	'[ "$(ls -A "$T_DIR/prom")" = "drbackup.prom" ] && cmp -s "$T_DIR/prom/drbackup.prom" "$T_DIR/prom-before"'
check_fails "metrics --output=text is refused" 2 "not a format" drb metrics --output=text

check "metrics with repo2 unreachable: exit 0" metrics_json m4 "$conf_down"
check_true "metrics: repo2 down (0) with no other series; repo1 up with its series" \
	'[ "$(mval m4 drbackup_up 2)" = 0 ] && [ "$(families m4 2)" = drbackup_up ] && [ "$(mval m4 drbackup_up 1)" = 1 ] && [ "$(mval m4 drbackup_last_backup_age_seconds 1 full)" != absent ]'
check_true "metrics: the unreachable repository is a warning on stderr" \
	'grep -q "WARN: metrics: repository 2 reported as down" "$T_DIR/m4.err"'

pg_stop "$PG_CK_DATA"
