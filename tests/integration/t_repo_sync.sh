# t_repo_sync.sh — repo-sync brings a lagging repository level: real WAL from a PostgreSQL 15
# cluster is archived to repo1 only (Swift, encrypted, zstd), then copied to repo2 (s3rver,
# plain, lz4) and read back byte-identical; a second run copies nothing; a file stored with
# other content in the target is a conflict (nothing overwritten); a source object that does
# not match the checksum in its name is not copied; another cluster's stanza is refused.
pg_start rs || { fail "start a PostgreSQL cluster for repo-sync"; return 0; }
wal_src=$T_DIR/wal
mkdir -p "$wal_src" && chown postgres:postgres "$wal_src"
cat >> "$PG_RS_DATA/postgresql.conf" <<EOC
archive_mode = on
archive_command = 'cp %p $wal_src/%f'
EOC
su postgres -s /bin/sh -c "$PG_BIN/pg_ctl -D '$PG_RS_DATA' -l '$IT_DIR/pg-rs/server.log' -w -t 60 restart >/dev/null"
psql_rs() { PGOPTIONS="-c client_min_messages=warning" "$PG_BIN/psql" -X -q -At -h "$PG_RS_SOCK" -p "$PG_RS_PORT" -U postgres -d postgres "$@"; }

# a few real segments and one .backup file (pg_backup_stop waits until they are archived)
psql_rs -c "create table t (i int, s text)" >/dev/null
for i in 1 2 3 4 5; do
	psql_rs -c "insert into t select g, md5(g::text) from generate_series(1, 20000) g" -c "select pg_switch_wal()" >/dev/null
done
psql_rs -c "select pg_backup_start('repo-sync', true)" -c "select lsn from pg_backup_stop()" >/dev/null
nwal=$(ls "$wal_src" | grep -c .)
check_true "PostgreSQL archived segments and a .backup file to the test directory ($nwal files)" \
	"[ $nwal -ge 6 ] && ls '$wal_src' | grep -q '\.backup\$'"

conf1=$T_DIR/one.conf
conf2=$T_DIR/two.conf
pg_section="[rs]
pg1-path=$PG_RS_DATA
pg1-port=$PG_RS_PORT
pg1-socket-path=$PG_RS_SOCK
pg1-user=postgres"
repo1="$(swift_repo 1 /it/repo-sync)
repo1-cipher-type=aes-256-gcm
repo1-cipher-pass=sync-region-one"
repo2="repo2-type=s3
repo2-path=/it/repo-sync
repo2-s3-endpoint=$S3RVER_ENDPOINT
repo2-s3-bucket=drb-s3rver
repo2-s3-region=eu-west-1
repo2-s3-uri-style=path
repo2-s3-key=$S3RVER_KEY
repo2-s3-key-secret=$S3RVER_SECRET
repo2-cipher-type=none"
printf '[global]\n%s\nspool-path=%s\n\n%s\n' "$repo1" "$T_DIR/spool" "$pg_section" | write_conf "$conf1"
# repo2 holds the same cluster in plain text with another compression
printf '[global]\n%s\n%s\ncompress-type=lz4\nspool-path=%s\n\n%s\n' "$repo1" "$repo2" "$T_DIR/spool" "$pg_section" \
	| write_conf "$conf2"
d1() { "$DRBACKUP" --config="$conf1" --stanza=rs "$@"; }
d2() { "$DRBACKUP" --config="$conf2" --stanza=rs "$@"; }

check "stanza-create in repo1 only" d1 stanza-create
push_all() {
	local f
	for f in $(ls "$wal_src"); do d1 archive-push "$wal_src/$f" || { echo "push $f failed" >&2; return 1; }; done
}
check "archive-push of every file to repo1" push_all
check_fails "repo-sync needs --to" 2 "--to" d2 repo-sync --from=1
check_fails "repo-sync refuses the same repository twice" 2 "same repository" d2 repo-sync --from=1 --to=1

# 1. the first sync copies everything (and the stanza record), in parallel
check "repo-sync --from=1 --to=2 (process-max 3)" /usr/bin/time -f '%M' -o "$T_DIR/sync.rss" "$DRBACKUP" --config="$conf2" --stanza=rs \
	--process-max=3 repo-sync --from=1 --to=2
check_true "it reports $nwal WAL files copied, 0 present: $(cat "$IT_DIR/last.out")" \
	"grep -Eq '^repo-sync: $nwal WAL files copied from repository 1 to 2, 0 already present\$' '$IT_DIR/last.out'"
rss=$(cat "$T_DIR/sync.rss")
check_true "memory stays bounded: max RSS ${rss} KiB for $nwal files (16 MiB segments), 3 at a time < 96 MiB" "[ '$rss' -lt 98304 ]"
sysid=$(su postgres -s /bin/sh -c "$PG_BIN/pg_controldata '$PG_RS_DATA'" | awk -F: '/system identifier/ {gsub(/ /,"",$2); print $2}')
check "the stanza record was copied to repo2" d2 --repo=2 repo-get stanza/rs/stanza.info "$T_DIR/info2"
check_true "repo2's record names the cluster ($sysid)" "grep -q '\"system-id\": \"$sysid\"' '$T_DIR/info2'"
mkdir -p "$T_DIR/got"
get_all() {	# get_all REPO [FILE...]: archive-get the files (default: all archived) and compare
	local r=$1 f bad=0
	shift
	[ $# -gt 0 ] || set -- $(ls "$wal_src")
	for f in "$@"; do
		rm -f "$T_DIR/got/$f"
		d2 --repo="$r" archive-get "$f" "$T_DIR/got/$f" || { echo "archive-get $f failed" >&2; bad=1; continue; }
		cmp "$wal_src/$f" "$T_DIR/got/$f" >&2 || bad=1
	done
	return $bad
}
check "archive-get --repo=2 returns every file byte-identical" get_all 2
# the copies were written with repo2's settings, not repo1's: object header byte 13 is the
# compress type (1 zstd, 2 lz4), byte 14 the cipher (0 none, 1 aes-256-gcm)
obj=$(d2 --repo=2 repo-ls stanza/rs/archive/ | awk '{print $NF}' | head -1)
header_bytes() { od -An -tu1 -j13 -N2 | tr -s ' ' | sed 's/^ //; s/ $//'; }
h1=$(aws_swift s3 cp "s3://drb-swift/it/repo-sync/$obj" - 2>/dev/null | head -c 72 | header_bytes)
h2=$(aws_s3rver s3 cp "s3://drb-s3rver/it/repo-sync/$obj" - 2>/dev/null | head -c 72 | header_bytes)
check_true "repo1 object is zstd + aes-256-gcm ($h1), its copy in repo2 lz4 + plain ($h2)" \
	"[ '$h1' = '1 1' ] && [ '$h2' = '2 0' ]"

# 2. idempotent
check "second repo-sync succeeds" d2 repo-sync --from=1 --to=2
check_true "and copies nothing: $(cat "$IT_DIR/last.out")" \
	"grep -Eq '^repo-sync: 0 WAL files copied from repository 1 to 2, $nwal already present\$' '$IT_DIR/last.out'"

# 3. a conflict: repo2 holds one segment with other content; new files in repo1 still get
# copied, the conflicting one is reported and left alone
ls "$wal_src" > "$T_DIR/before"
seg=$(ls "$wal_src" | grep -E '^[0-9A-F]{24}$' | head -1)
path2=$(d2 --repo=2 repo-ls stanza/rs/archive/ | awk '{print $NF}' | grep "/$seg-")
other=$T_DIR/other-$seg
cp "$wal_src/$seg" "$other"
printf 'X' | dd of="$other" bs=1 seek=100000 conv=notrunc 2>/dev/null
other_sha=$(sha256sum "$other" | cut -d' ' -f1)
other_path=${path2%-*}-$other_sha
d2 --repo=2 repo-rm "$path2" && d2 --repo=2 repo-put "$other" "$other_path"
psql_rs -c "insert into t select g, md5(g::text) from generate_series(1, 20000) g" -c "select pg_switch_wal()" >/dev/null
psql_rs -c "select pg_backup_start('new-seg', true)" -c "select lsn from pg_backup_stop()" >/dev/null
check "archive-push of the new files to repo1" push_all
new_files=$(ls "$wal_src" | grep -vxF -f "$T_DIR/before")
new=$(echo "$new_files" | grep -c .)
check_fails "repo-sync with a conflicting file fails (exit 8) naming it and both checksums" 8 \
	"$seg.*$other_sha.*$(sha256sum "$wal_src/$seg" | cut -c1-64)" d2 repo-sync --from=1 --to=2
check_true "it still copied the $new new files and counted the conflict: $(cat "$IT_DIR/last.out")" \
	"grep -Eq '^repo-sync: $new WAL files copied from repository 1 to 2, $(( nwal - 1 )) already present, 1 conflicting' '$IT_DIR/last.out'"
check "the conflicting object in repo2 is untouched" sh -c "'$DRBACKUP' --config='$conf2' --repo=2 repo-get '$other_path' | cmp - '$other'"
check_true "and repo1's version was not added next to it" \
	"[ \$(d2 --repo=2 repo-ls stanza/rs/archive/ | grep -c '/$seg-') -eq 1 ]"
check "the new files reached repo2 byte-identical" get_all 2 $new_files
d2 --repo=2 repo-rm "$other_path" >/dev/null
check "once the conflicting object is removed, repo-sync restores the segment" d2 repo-sync --from=1 --to=2
check_true "one copied: $(cat "$IT_DIR/last.out")" "grep -Eq '^repo-sync: 1 WAL file copied from repository 1 to 2, $(( nwal + new - 1 )) already present\$' '$IT_DIR/last.out'"
check "every file in repo2 is byte-identical" get_all 2

# 4. a damaged source object (content does not match the checksum in its name) is not copied
fake=${seg:0:16}000000FF
fake_path=${path2%/*}/$fake-$(sha256sum "$wal_src/$seg" | cut -d' ' -f1)
d1 repo-put "$other" "$fake_path"
check_fails "a source object whose content does not match its name stops repo-sync (exit 5)" 5 "$fake" \
	d2 repo-sync --from=1 --to=2
check_true "nothing was written for it in repo2" "! d2 --repo=2 repo-ls stanza/rs/archive/ | grep -q '/$fake-'"
d1 repo-rm "$fake_path" >/dev/null

# 5. a repository holding the stanza for another cluster is refused
conf3=$T_DIR/three.conf
printf '[global]\n%s\nrepo3-path=%s\nspool-path=%s\n\n%s\n' "$repo1" "$T_DIR/repo3" "$T_DIR/spool" "$pg_section" | write_conf "$conf3"
"$DRBACKUP" --config="$conf3" --stanza=rs --repo=3 --pg1-path="$PG_OTHER_DATA" --pg1-port="$PG_OTHER_PORT" \
	--pg1-socket-path="$PG_OTHER_SOCK" stanza-create >/dev/null
check_fails "repo-sync to a repository holding another cluster's stanza is refused (exit 8)" 8 "system identifier" \
	"$DRBACKUP" --config="$conf3" --stanza=rs repo-sync --from=1 --to=3
check_true "nothing was copied there" "[ ! -d '$T_DIR/repo3/stanza/rs/archive' ]"

pg_stop "$PG_RS_DATA"
