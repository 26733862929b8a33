# t_stanza.sh — stanza-create against a real PostgreSQL 15 cluster, in a posix and an S3
# repository at once; idempotent; refuses a repository that holds another cluster's stanza.
conf=$T_DIR/stanza.conf
write_conf "$conf" <<EOC
[global]
repo1-path=$T_DIR/repo
repo1-cipher-type=aes-256-gcm
repo1-cipher-pass=stanza-pass
$(swift_repo 2 /it/stanza)

[main]
pg1-path=$PG_MAIN_DATA
pg1-port=$PG_MAIN_PORT
pg1-socket-path=$PG_MAIN_SOCK
pg1-user=postgres
EOC
sysid=$(su postgres -s /bin/sh -c "$PG_BIN/pg_controldata '$PG_MAIN_DATA'" | awk -F: '/system identifier/ {gsub(/ /,"",$2); print $2}')
check "stanza-create in both repositories" "$DRBACKUP" --config="$conf" --stanza=main stanza-create
check_true "it reports the cluster's system identifier ($sysid)" "grep -c '$sysid' '$IT_DIR/last.out' | grep -qx 2"
check "stanza record in repo1" "$DRBACKUP" --config="$conf" repo-get stanza/main/stanza.info "$T_DIR/info1"
check_true "repo1 record holds the system identifier" "grep -q '\"system-id\": \"$sysid\"' '$T_DIR/info1'"
check "stanza record in repo2" "$DRBACKUP" --config="$conf" --repo=2 repo-get stanza/main/stanza.info.copy "$T_DIR/info2"
check_true "repo2 copy holds version 15" "grep -q '\"pg-version\": 15' '$T_DIR/info2'"
check "stanza-create again is a no-op success" "$DRBACKUP" --config="$conf" --stanza=main stanza-create
check_true "second run says it exists" "grep -q 'already exists' '$IT_DIR/last.out'"

# a different cluster pointed at the same stanza name: refused, nothing changes
before=$(md5sum "$T_DIR/repo/stanza/main/stanza.info" | cut -d' ' -f1)
check_fails "another cluster's stanza is refused" 8 "another cluster" "$DRBACKUP" --config="$conf" --stanza=main \
	--pg1-path="$PG_OTHER_DATA" --pg1-port="$PG_OTHER_PORT" --pg1-socket-path="$PG_OTHER_SOCK" --repo=1 stanza-create
after=$(md5sum "$T_DIR/repo/stanza/main/stanza.info" | cut -d' ' -f1)
check_true "the record is unchanged" "[ '$before' = '$after' ]"
check_fails "pg1-path that is not the server's data directory" 7 "pg1-path" "$DRBACKUP" --config="$conf" --stanza=main \
	--pg1-path="$PG_OTHER_DATA" stanza-create
check_fails "no server at the port" 7 "unable to connect" "$DRBACKUP" --config="$conf" --stanza=main --pg1-port=1 stanza-create
# damaged main record: the copy is used
printf 'garbage' > "$T_DIR/repo/stanza/main/stanza.info"
check "damaged record falls back to the copy" "$DRBACKUP" --config="$conf" --stanza=main --repo=1 stanza-create
check_true "and says which copy it used" "grep -q 'copy' '$IT_DIR/last.err'"
