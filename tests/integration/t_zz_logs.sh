# t_zz_logs.sh — log files, and no secret in any log or output of the whole run. Runs last
# (alphabetically) so that every other test's files are still under $IT_DIR.
#
# With log-level-file=debug and log-path=$PGH/log/drbackup (created by drbackup), a
# PostgreSQL 15 cluster archives a short pgbench load through archive_command into repo1 =
# posix and repo2 = Swift, both encrypted with distinctive passphrases; then backup, info,
# restore into a scratch directory, archive-get of a missing segment, repo-ls without a
# stanza, and repo-get with a wrong passphrase. Checked: one log file per stanza and command
# (all-COMMAND.log without a stanza), modes 0750/0640, every line "YYYY-MM-DD
# HH:MM:SS.mmm UTC P<pid> LEVEL: ...", begin/end lines, the error line in the failing
# command's log, a log file that cannot be opened only warns. Then every secret of the
# run (this test's passphrases, the wrong one, the harness's SWIFT_SECRET and
# S3RVER_SECRET, every passphrase and secret key in the other tests' config files) is
# searched in every text file under $IT_DIR, except:
#   $IT_DIR/swift, $IT_DIR/s3rver   the object servers' own configs, data and logs: they
#                                   hold the keys by design and are not drbackup's output
#   *.conf (not postgresql*.conf)   drbackup config files: where secrets are meant to be
#   */.aws/*, */credentials,        AWS shared credentials files and key-rotate passphrase
#   */pass-*                        files: inputs the tests write, secrets by design
#   binary files (grep -I)          database pages, compressed and encrypted objects
pg_start logs || { fail "start a PostgreSQL cluster for the log test"; return 0; }
psql_l() { "$PG_BIN/psql" -X -q -At -h "$PG_LOGS_SOCK" -p "$PG_LOGS_PORT" -U postgres -d postgres "$@"; }
as_pg() { su postgres -s /bin/sh -c "$1"; }

PASS1=zz-logs-posix-Passphrase-5e1f09c3
PASS2=zz-logs-swift-Passphrase-a27bd4e8
WRONG=zz-logs-wrong-Passphrase-0c9d11aa
PGH=$T_DIR/pg				# everything postgres writes
LOG=$PGH/log/drbackup		# does not exist yet: drbackup creates it
mkdir -p "$T_DIR/bin" "$PGH/repo1" "$PGH/spool" "$PGH/tmp" "$PGH/restore"
BIN=$T_DIR/bin/drbackup
cp "$DRBACKUP" "$BIN"
chmod 755 "$T_DIR/bin" "$BIN"
chown -R postgres:postgres "$PGH"

conf=$T_DIR/logs.conf
write_conf "$conf" <<EOC
[global]
repo1-path=$PGH/repo1
repo1-cipher-type=aes-256-gcm
repo1-cipher-pass=$PASS1
$(swift_repo 2 /it/logs)
repo2-cipher-type=aes-256-gcm
repo2-cipher-pass=$PASS2
spool-path=$PGH/spool
lock-path=$PGH/tmp
start-fast=y
archive-timeout=60
log-level-file=debug
log-path=$LOG

[logs]
pg1-path=$PG_LOGS_DATA
pg1-port=$PG_LOGS_PORT
pg1-socket-path=$PG_LOGS_SOCK
pg1-user=postgres
EOC
chown postgres:postgres "$conf"
drb() { su postgres -s /bin/sh -c "TMPDIR=$PGH/tmp $BIN --config=$conf --stanza=logs $*"; }
drb_nostanza() { su postgres -s /bin/sh -c "TMPDIR=$PGH/tmp $BIN --config=$conf $*"; }

check "repo-create (posix + Swift, encrypted)" drb repo-create
check "stanza-create" drb stanza-create
cat >> "$PG_LOGS_DATA/postgresql.conf" <<EOC
archive_mode = on
archive_command = '$BIN --config=$conf --stanza=logs archive-push %p'
archive_timeout = 5
EOC
as_pg "$PG_BIN/pg_ctl -D '$PG_LOGS_DATA' -l '$IT_DIR/pg-logs/server.log' -w -t 60 restart >/dev/null"
"$PG_BIN/pgbench" -i -q -s 2 -h "$PG_LOGS_SOCK" -p "$PG_LOGS_PORT" -U postgres postgres \
	> "$T_DIR/pgbench-init.log" 2>&1
"$PG_BIN/pgbench" -T 8 -c 2 -h "$PG_LOGS_SOCK" -p "$PG_LOGS_PORT" -U postgres postgres \
	> "$T_DIR/pgbench.log" 2>&1
check "backup (full, WAL archived through archive_command)" drb backup --type=full
psql_l -c "SELECT pg_switch_wal()" > /dev/null
check "info" drb info
check "restore into a scratch directory" drb restore --pgdata="$PGH/restore/data"
check_fails "archive-get of a missing segment answers 'not found'" 1 "^drbackup: archive-get: " \
	drb archive-get 0000000100000099000000FF "$PGH/tmp/none"
check "repo-ls without a stanza" drb_nostanza repo-ls
check_fails "wrong passphrase: one error line" 6 "ERROR: .*passphrase" \
	su postgres -s /bin/sh -c "DRBACKUP_REPO1_CIPHER_PASS=$WRONG TMPDIR=$PGH/tmp $BIN --config=$conf --stanza=logs --repo=1 repo-get stanza/logs/stanza.info $PGH/tmp/got"
check_true "the wrong passphrase is not on stderr" "! grep -qF -e '$WRONG' -e '$PASS1' '$IT_DIR/last.err'"

# a log file that cannot be opened: the command works, one warning on stderr
touch "$PGH/not-a-dir"; chown postgres "$PGH/not-a-dir"
su postgres -s /bin/sh -c "TMPDIR=$PGH/tmp $BIN --config=$conf --stanza=logs --log-path=$PGH/not-a-dir info" \
	> "$T_DIR/nolog.out" 2> "$T_DIR/nolog.err"
rc=$?
check_true "unusable log-path: the command still succeeds" "[ $rc -eq 0 ] && [ -s '$T_DIR/nolog.out' ]"
check_true "unusable log-path: exactly one warning on stderr naming the file" \
	"[ \$(grep -c '' '$T_DIR/nolog.err') -eq 1 ] && grep -q '^drbackup: WARN: .*not-a-dir/logs-info.log.*logging to file disabled' '$T_DIR/nolog.err'"
as_pg "$PG_BIN/pg_ctl -D '$PG_LOGS_DATA' -m fast -w stop >/dev/null"

# ---------------------------------------------------------------------------------------
# the log files
# ---------------------------------------------------------------------------------------
for c in repo-create stanza-create archive-push backup info restore archive-get repo-get; do
	check_true "log file logs-$c.log written" "[ -s '$LOG/logs-$c.log' ]"
done
check_true "log file of a command without a stanza: all-repo-ls.log" "[ -s '$LOG/all-repo-ls.log' ]"
check_true "log directories created 0750, files 0640, owned by postgres" \
	"[ \$(stat -c %a '$LOG') = 750 ] && [ \$(stat -c %a '$PGH/log') = 750 ] && \
	[ -z \"\$(find '$LOG' -type f ! -perm 0640)\" ] && [ -z \"\$(find '$LOG' ! -user postgres)\" ]"
LINE_RE='^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3} UTC P[0-9]+ (ERROR|WARN|INFO|DETAIL|DEBUG|TRACE): '
bad=$(cat "$LOG"/*.log | grep -Evc "$LINE_RE")
check_true "every log line: UTC time in ms, pid, level ($bad bad lines)" "[ '$bad' = 0 ]"
check_true "debug lines were written" "grep -q ' DEBUG: ' '$LOG/logs-backup.log'"
check_true "begin and end of each command, secrets shown as <redacted>" \
	"grep -q 'INFO: backup command begin .*--repo1-cipher-pass=<redacted>' '$LOG/logs-backup.log' && \
	grep -q 'INFO: backup command end: completed successfully' '$LOG/logs-backup.log'"
npush=$(grep -c 'archive-push command end: completed successfully' "$LOG/logs-archive-push.log")
npid=$(grep -o ' P[0-9]* ' "$LOG/logs-archive-push.log" | sort -u | wc -l)
check_true "archive-push: every process appends its lines ($npush pushes, $npid pids)" \
	"[ '$npush' -ge 3 ] && [ '$npid' -ge '$npush' ]"
check_true "archive-get: the 'not found' answer is in its log" \
	"grep -q 'INFO: archive-get command end: answered with exit code 1 (.*s): .*not found' '$LOG/logs-archive-get.log'"
check_true "the failing command's error and exit code are in its log" \
	"grep -q 'ERROR: wrong passphrase' '$LOG/logs-repo-get.log' && grep -q 'repo-get command end: aborted with exit code 6' '$LOG/logs-repo-get.log'"

# ---------------------------------------------------------------------------------------
# no secret anywhere in the run's logs and outputs
# ---------------------------------------------------------------------------------------
secrets=("$PASS1" "$PASS2" "$WRONG" "$SWIFT_SECRET" "$S3RVER_SECRET")
while IFS= read -r v; do
	[ -n "$v" ] && secrets+=("$v")
done < <(find "$IT_DIR" -path "$IT_DIR/swift" -prune -o -path "$IT_DIR/s3rver" -prune -o \
	-path "$IT_DIR/work-*" -name '*.conf' -type f -print0 |
	xargs -0 -r grep -hE '^[[:space:]]*(repo[0-9]+-)?(cipher-pass|cipher-pass-new|s3-key-secret|s3-token|gcs-key-secret)[[:space:]]*=' |
	sed -E 's/^[^=]*=[[:space:]]*//; s/[[:space:]]+$//' | sort -u)
patterns=()
short=()
for s in "${secrets[@]}"; do
	# a secret of fewer than 6 characters would match ordinary text; none is used as one
	if [ ${#s} -ge 6 ]; then patterns+=(-e "$s"); else short+=("$s"); fi
done
echo "    (searching $(( ${#patterns[@]} / 2 )) secrets; too short to search: ${#short[@]})"
find "$IT_DIR" \( -path "$IT_DIR/swift" -o -path "$IT_DIR/s3rver" \) -prune -o -type f \
	! \( -name '*.conf' ! -name 'postgresql*.conf' \) ! -path '*/.aws/*' ! -name credentials ! -name 'pass-*' \
	-print0 > "$T_DIR/scanned.list"
nfiles=$(tr -cd '\0' < "$T_DIR/scanned.list" | wc -c)
leaks=$(xargs -0 -r env LC_ALL=C grep -I -l -F "${patterns[@]}" < "$T_DIR/scanned.list" 2>/dev/null)
check_true "no secret in any log or output of the run ($nfiles files searched)" "[ -z \"\$leaks\" ]"
[ -n "$leaks" ] && printf '    leaked in: %s\n' $leaks | head -20
check_true "the scan sees the log files and the server logs" \
	"tr '\\0' '\\n' < '$T_DIR/scanned.list' | grep -q '$LOG/logs-archive-push.log' && \
	tr '\\0' '\\n' < '$T_DIR/scanned.list' | grep -q '$IT_DIR/pg-logs/server.log'"
rm -f "$T_DIR/scanned.list"
