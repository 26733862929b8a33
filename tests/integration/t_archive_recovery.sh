# t_archive_recovery.sh — a repository failure during archive recovery must stop PostgreSQL,
# not end recovery early. PostgreSQL takes restore_command exit codes 1..125 for "file not
# available": in a PITR restore that means "end of archive", and it would promote early.
# archive-get exits 126 then (PostgreSQL stops with FATAL); on a standby it keeps ordinary
# codes (the standby retries). Posix repository, cluster archiving through drbackup.
pg_start rec || { fail "start a PostgreSQL cluster for the recovery test"; return 0; }
psql_r() { "$PG_BIN/psql" -X -q -At -h "$PG_REC_SOCK" -p "$PG_REC_PORT" -U postgres -d postgres "$@"; }
as_pg() { su postgres -s /bin/sh -c "$1"; }
mkdir -p "$T_DIR/bin" "$T_DIR/repo" "$T_DIR/spool" "$T_DIR/restore"
BIN=$T_DIR/bin/drbackup
cp "$DRBACKUP" "$BIN"; chmod 755 "$T_DIR/bin" "$BIN"
chown postgres:postgres "$T_DIR/repo" "$T_DIR/spool" "$T_DIR/restore"; chmod 700 "$T_DIR/restore"
conf=$T_DIR/rec.conf
write_conf "$conf" <<EOC
[global]
repo1-path=$T_DIR/repo
repo1-cipher-type=aes-256-gcm
repo1-cipher-pass=recovery-test-pass
spool-path=$T_DIR/spool
[rec]
pg1-path=$PG_REC_DATA
pg1-port=$PG_REC_PORT
pg1-socket-path=$PG_REC_SOCK
pg1-user=postgres
EOC
chown postgres:postgres "$conf"
drb() { as_pg "$BIN --config=$conf --stanza=rec $*"; }
check "stanza-create" drb stanza-create
cat >> "$PG_REC_DATA/postgresql.conf" <<EOC
archive_mode = on
archive_command = '$BIN --config=$conf --stanza=rec archive-push %p'
EOC
as_pg "$PG_BIN/pg_ctl -D '$PG_REC_DATA' -l '$IT_DIR/pg-rec/server.log' -w -t 60 restart >/dev/null"
psql_r -c "create table marker(t text)"
check "base backup (pg_basebackup, no WAL: archive only)" as_pg "$PG_BIN/pg_basebackup -h '$PG_REC_SOCK' -p $PG_REC_PORT -U postgres -D '$T_DIR/restore' -X none -c fast"
psql_r -c "insert into marker values ('after-base'); select pg_switch_wal();" > /dev/null
last=$(psql_r -c "insert into marker values ('later'); select pg_walfile_name(pg_switch_wal());" | tail -1)
archived() { [ "$(psql_r -c "select coalesce(last_archived_wal >= '$last', false) from pg_stat_archiver")" = t ]; }
check "the WAL after the base backup is archived" wait_for archived
as_pg "$PG_BIN/pg_ctl -D '$PG_REC_DATA' -m fast -w stop >/dev/null"
seg=$(ls "$T_DIR/repo/stanza/rec/archive/"*/*/ | grep -v '\.backup' | sort | tail -1 | cut -c1-24)

# exit codes by mode, straight from the shell (cwd = the data directory, as PostgreSQL runs it)
D=$T_DIR/restore
chmod 000 "$T_DIR/repo"	# the repository is unreadable for postgres: a hard failure
get_in_restore() { as_pg "cd '$D' && $BIN --config=$conf --stanza=rec archive-get $1 '$T_DIR/x'"; }
touch "$D/recovery.signal"; chown postgres "$D/recovery.signal"
check_fails "archive recovery + repository failure: exit 126 (PostgreSQL stops)" 126 "stopping recovery" get_in_restore "$seg"
touch "$D/standby.signal"
get_in_restore "$seg" 2> "$T_DIR/sb.err"; rc=$?
check_true "standby + repository failure: an ordinary code (got $rc), the standby retries" "[ $rc -ge 2 ] && [ $rc -le 125 ]"
rm -f "$D/standby.signal"
chmod 750 "$T_DIR/repo"
check_fails "archive recovery + missing file: still the quiet exit 1" 1 "not found" get_in_restore 0000000100000099000000FE

# end to end: PostgreSQL must stop, not promote, while the repository fails; then recover fully
port=$(free_port)
cat >> "$D/postgresql.conf" <<EOC
port = $port
unix_socket_directories = '$T_DIR/restore-sock'
archive_mode = off
restore_command = '$BIN --config=$conf --stanza=rec archive-get %f "%p"'
EOC
mkdir -p "$T_DIR/restore-sock"; chown -R postgres:postgres "$D" "$T_DIR/restore-sock"; chmod 700 "$D"
# damage only the last segment, the one after consistency holding the 'later' row: taking its
# failure for "end of archive" would promote without that row
obj=$(ls "$T_DIR/repo/stanza/rec/archive/"*/*/"$seg"-*)
cp -p "$obj" "$T_DIR/good-object"
printf '\xff' | dd of="$obj" bs=1 seek=300 conv=notrunc 2>/dev/null
as_pg "$PG_BIN/pg_ctl -D '$D' -l '$T_DIR/restore-sock/restore.log' -w -t 60 start >/dev/null 2>&1"
sleep 1
check_true "with a damaged segment in the repository, the server does not come up" "! as_pg \"$PG_BIN/pg_ctl -D '$D' status >/dev/null\""
check_true "PostgreSQL logged FATAL for the restore command" "grep -q 'FATAL' '$T_DIR/restore-sock/restore.log'"
check_true "drbackup's line in the server log names the object and says why it stops" "grep -q 'stopping recovery' '$T_DIR/restore-sock/restore.log'"
check_true "and it did not promote (no new timeline)" "! ls '$D/pg_wal/'*.history >/dev/null 2>&1"
cp -p "$T_DIR/good-object" "$obj"
check "repository back: the server starts and recovers" as_pg "$PG_BIN/pg_ctl -D '$D' -l '$T_DIR/restore-sock/restore.log' -w -t 120 start >/dev/null"
psql_d() { "$PG_BIN/psql" -X -q -At -h "$T_DIR/restore-sock" -p "$port" -U postgres -d postgres "$@"; }
promoted() { [ "$(psql_d -c 'select pg_is_in_recovery()')" = f ]; }
check "recovery reached the end of the archive and promoted" wait_for promoted
check_true "every archived change is there" "[ \"\$(psql_d -c 'select count(*) from marker')\" = 2 ]"
as_pg "$PG_BIN/pg_ctl -D '$D' -m fast -w stop >/dev/null"
