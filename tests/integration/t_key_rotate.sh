# t_key_rotate.sh — `drbackup key-rotate` on repo1 = posix and repo2 = Swift s3api, both
# encrypted, holding archived WAL and a full backup.
#
# Before and after the rotation the data objects are listed with their checksums (posix:
# sha256sum of every file but the key files; Swift: key, size and ETag from awscli): the
# lists are identical, while both key files of each repository changed. Afterwards the old
# passphrase is refused with a clear message, also through this host's key cache (filled
# by archive-push with the old passphrase); with the new one archive-get fetches a WAL
# segment from each repository and each repository restores the backup (pg_verifybackup).
# A second run with the old config reports "already uses the new passphrase"; the new
# passphrase equal to the current one, a group-readable cipher-pass-new-file, an empty one
# and cipher-pass-new on the command line are refused; a private file rotates repo1 alone.
pg_start kr || { fail "start a PostgreSQL cluster for the key-rotate test"; return 0; }
psql_k() { "$PG_BIN/psql" -X -q -At -h "$PG_KR_SOCK" -p "$PG_KR_PORT" -U postgres -d postgres "$@"; }
as_pg() { su postgres -s /bin/sh -c "$1"; }

mkdir -p "$T_DIR/bin" "$T_DIR/repo1" "$T_DIR/spool" "$T_DIR/tmp" "$T_DIR/rst"
BIN=$T_DIR/bin/drbackup
cp "$DRBACKUP" "$BIN"
chmod 755 "$T_DIR/bin" "$BIN"
chown -R postgres:postgres "$T_DIR/repo1" "$T_DIR/spool" "$T_DIR/tmp" "$T_DIR/rst"

OLD1=kr-old-passphrase-one
OLD2=kr-old-passphrase-two
NEW=kr-new-passphrase-2026
conf_with() {	# conf_with FILE PASS1 PASS2
	write_conf "$1" <<EOC
[global]
repo1-path=$T_DIR/repo1
repo1-cipher-type=aes-256-gcm
repo1-cipher-pass=$2
$(swift_repo 2 /it/kr)
repo2-cipher-type=aes-256-gcm
repo2-cipher-pass=$3
spool-path=$T_DIR/spool
lock-path=$T_DIR/tmp
start-fast=y
archive-timeout=60
expire-auto=n

[kr]
pg1-path=$PG_KR_DATA
pg1-port=$PG_KR_PORT
pg1-socket-path=$PG_KR_SOCK
pg1-user=postgres
EOC
	chown postgres:postgres "$1"
}
old=$T_DIR/old.conf
new=$T_DIR/new.conf
conf_with "$old" "$OLD1" "$OLD2"
conf_with "$new" "$NEW" "$NEW"
drb_old() { su postgres -s /bin/sh -c "TMPDIR=$T_DIR/tmp $BIN --config=$old --stanza=kr $*"; }
drb_new() { su postgres -s /bin/sh -c "TMPDIR=$T_DIR/tmp $BIN --config=$new --stanza=kr $*"; }

check "stanza-create (posix + Swift, encrypted)" drb_old stanza-create
cat >> "$PG_KR_DATA/postgresql.conf" <<EOC
archive_mode = on
archive_command = '$BIN --config=$old --stanza=kr archive-push %p'
EOC
as_pg "$PG_BIN/pg_ctl -D '$PG_KR_DATA' -l '$IT_DIR/pg-kr/server.log' -w -t 60 restart >/dev/null"
"$PG_BIN/pgbench" -i -q -s 1 -h "$PG_KR_SOCK" -p "$PG_KR_PORT" -U postgres postgres > /dev/null 2>&1
check "full backup to both repositories" drb_old backup --type=full
psql_k -c "SELECT pg_switch_wal()" > /dev/null
# a quiet time: the cluster stops (archiving what is ready) before the rotation
pg_stop "$PG_KR_DATA"
LABEL=$(ls "$T_DIR/repo1/stanza/kr/backup" | grep -E '^[0-9]{8}-[0-9]{6}F$' | tail -1)
SEG=$(ls "$T_DIR/repo1/stanza/kr/archive/"*/0000000100000000/ | sed -n 's/^\([0-9A-F]\{24\}\)-.*/\1/p' | tail -1)
check_true "a backup ($LABEL) and an archived segment ($SEG)" '[ -n "$LABEL" ] && [ -n "$SEG" ]'
check_true "this host's key cache holds entries (archive-push used it)" '[ -n "$(ls -A "$T_DIR/spool/keys" 2>/dev/null)" ]'

posix_data() { (cd "$T_DIR/repo1" && find . -type f ! -name 'drbackup.repo*' -print0 | sort -z | xargs -0 sha256sum); }
posix_keys() { (cd "$T_DIR/repo1" && sha256sum drbackup.repo drbackup.repo.copy); }
swift_list() {	# key, size, ETag of every object under it/kr/
	aws_swift s3api list-objects-v2 --bucket drb-swift --prefix it/kr/ \
		--query 'Contents[].[Key,Size,ETag]' --output text | sort
}
posix_data > "$T_DIR/posix-before"
posix_keys > "$T_DIR/posix-keys-before"
swift_list > "$T_DIR/swift-all-before"
grep -v '/drbackup\.repo' "$T_DIR/swift-all-before" > "$T_DIR/swift-before"
grep '/drbackup\.repo' "$T_DIR/swift-all-before" > "$T_DIR/swift-keys-before"
check_true "object lists recorded ($(grep -c . "$T_DIR/posix-before") posix, $(grep -c . "$T_DIR/swift-before") Swift data objects)" \
	'[ "$(grep -c . "$T_DIR/posix-before")" -gt 5 ] && [ "$(grep -c . "$T_DIR/swift-before")" -gt 5 ] && [ "$(grep -c . "$T_DIR/swift-keys-before")" = 2 ]'

# ---------------------------------------------------------------------------------------
# refusals before anything changes
# ---------------------------------------------------------------------------------------
check_fails "no new passphrase: usage error" 2 "DRBACKUP_CIPHER_PASS_NEW" drb_old key-rotate
check_fails "cipher-pass-new on the command line: refused" 2 "cipher-pass-new" drb_old key-rotate --cipher-pass-new=x
echo "$NEW" > "$T_DIR/tmp/pass-open"; chown postgres "$T_DIR/tmp/pass-open"; chmod 640 "$T_DIR/tmp/pass-open"
check_fails "group-readable cipher-pass-new-file: refused" 3 "accessible by other users" \
	drb_old key-rotate --cipher-pass-new-file="$T_DIR/tmp/pass-open"
printf '\nsecond line\n' > "$T_DIR/tmp/pass-empty"; chown postgres "$T_DIR/tmp/pass-empty"; chmod 600 "$T_DIR/tmp/pass-empty"
check_fails "cipher-pass-new-file with an empty first line: refused" 3 "no passphrase" \
	drb_old key-rotate --cipher-pass-new-file="$T_DIR/tmp/pass-empty"
check_fails "new passphrase = current one: refused" 2 "is the current one" \
	su postgres -s /bin/sh -c "DRBACKUP_CIPHER_PASS_NEW=$OLD1 $BIN --config=$old --stanza=kr --repo=1 key-rotate"
check_true "the refusals changed nothing" '[ "$(posix_keys)" = "$(cat "$T_DIR/posix-keys-before")" ] && [ "$(swift_list)" = "$(cat "$T_DIR/swift-all-before")" ]'

# ---------------------------------------------------------------------------------------
# the rotation
# ---------------------------------------------------------------------------------------
check "key-rotate (DRBACKUP_CIPHER_PASS_NEW) of both repositories" \
	su postgres -s /bin/sh -c "DRBACKUP_CIPHER_PASS_NEW=$NEW $BIN --config=$old --stanza=kr key-rotate"
n1=$(grep -c . "$T_DIR/posix-before")
n2=$(grep -c . "$T_DIR/swift-before")
check_true "one line per repository with the count of untouched data objects ($n1, $n2)" \
	'grep -q "^repository 1: data key re-wrapped under the new passphrase ($n1 data objects untouched)$" "$IT_DIR/last.out" &&
	 grep -q "^repository 2: data key re-wrapped under the new passphrase ($n2 data objects untouched)$" "$IT_DIR/last.out"'
check_true "no passphrase in the output" '! grep -Eq "$NEW|$OLD1|$OLD2" "$IT_DIR/last.out" "$IT_DIR/last.err"'
posix_data > "$T_DIR/posix-after"
swift_list > "$T_DIR/swift-all-after"
grep -v '/drbackup\.repo' "$T_DIR/swift-all-after" > "$T_DIR/swift-after"
check_same "posix: every data object unchanged (sha256sum)" "$T_DIR/posix-before" "$T_DIR/posix-after"
check_same "Swift: every data object unchanged (key, size, ETag)" "$T_DIR/swift-before" "$T_DIR/swift-after"
check_true "posix: drbackup.repo and drbackup.repo.copy both rewritten, identical" \
	'! posix_keys | grep -Fqf <(cut -d" " -f1 "$T_DIR/posix-keys-before") && cmp -s "$T_DIR/repo1/drbackup.repo" "$T_DIR/repo1/drbackup.repo.copy"'
check_true "Swift: both key objects rewritten (new ETags)" \
	'[ "$(grep "/drbackup\.repo" "$T_DIR/swift-all-after" | awk "{print \$3}" | sort -u | grep -cvFf <(awk "{print \$3}" "$T_DIR/swift-keys-before"))" = 1 ] &&
	 [ "$(grep -c "/drbackup\.repo" "$T_DIR/swift-all-after")" = 2 ]'

# ---------------------------------------------------------------------------------------
# the old passphrase is refused, the new one reads everything
# ---------------------------------------------------------------------------------------
CAT=stanza/kr/backup/backup.catalog
check_fails "old passphrase refused by repository 1 (exit 6)" 6 "wrong passphrase for repository 1" drb_old --repo=1 repo-get $CAT "$T_DIR/rst/cat-old1"
check_fails "old passphrase refused by repository 2 (exit 6)" 6 "wrong passphrase for repository 2" drb_old --repo=2 repo-get $CAT "$T_DIR/rst/cat-old2"
drb_old info > "$T_DIR/old-info.out" 2>&1
rc=$?
check_true "old passphrase: info fails (exit $rc) with wrong passphrase for both repositories" \
	'[ "$rc" -ne 0 ] && grep -q "wrong passphrase for repository 1" "$T_DIR/old-info.out" && grep -q "wrong passphrase for repository 2" "$T_DIR/old-info.out"'
as_pg "TMPDIR=$T_DIR/tmp $BIN --config=$old --stanza=kr --repo=1 archive-get $SEG '$T_DIR/rst/old-seg'" > /dev/null 2> "$T_DIR/old-get.err"
rc=$?
check_true "old passphrase: archive-get through the old key cache fails (exit $rc), nothing fetched" \
	'[ "$rc" -ne 0 ] && [ ! -e "$T_DIR/rst/old-seg" ] && grep -q "wrong passphrase" "$T_DIR/old-get.err"'
for r in 1 2; do
	check "new passphrase: archive-get $SEG from repository $r" drb_new --repo=$r archive-get "$SEG" "$T_DIR/rst/seg$r"
	check_true "repository $r: the segment is 16 MiB" '[ "$(stat -c %s "$T_DIR/rst/seg$r")" = 16777216 ]'
	check "new passphrase: restore of $LABEL from repository $r" \
		drb_new --repo=$r restore --set="$LABEL" --pgdata="$T_DIR/rst/r$r"
	check "repository $r: pg_verifybackup accepts the restored directory" \
		as_pg "$PG_BIN/pg_verifybackup -n -q '$T_DIR/rst/r$r'"
done
check_same "both repositories return the same segment" "$T_DIR/rst/seg1" "$T_DIR/rst/seg2"

# ---------------------------------------------------------------------------------------
# reruns and the passphrase file
# ---------------------------------------------------------------------------------------
check "rerun with the old config: not an error" \
	su postgres -s /bin/sh -c "DRBACKUP_CIPHER_PASS_NEW=$NEW $BIN --config=$old --stanza=kr key-rotate"
check_true "rerun: both repositories already use the new passphrase" \
	'[ "$(grep -c "already uses the new passphrase" "$IT_DIR/last.out")" = 2 ]'
THIRD=kr-third-passphrase
printf '%s\n' "$THIRD" > "$T_DIR/tmp/pass-third"; chown postgres "$T_DIR/tmp/pass-third"; chmod 600 "$T_DIR/tmp/pass-third"
check "cipher-pass-new-file (0600) rotates repository 1 alone" \
	drb_new --repo=1 key-rotate --cipher-pass-new-file="$T_DIR/tmp/pass-third"
third=$T_DIR/third.conf
conf_with "$third" "$THIRD" "$NEW"
check "third passphrase (without its trailing newline) opens repository 1" \
	su postgres -s /bin/sh -c "$BIN --config=$third --stanza=kr --repo=1 repo-get $CAT '$T_DIR/rst/cat-third1'"
check "repository 2 still opens with the second passphrase" drb_new --repo=2 repo-get $CAT "$T_DIR/rst/cat-new2"
check_fails "the second passphrase is refused by repository 1 now" 6 "wrong passphrase" drb_new --repo=1 repo-get $CAT "$T_DIR/rst/cat-new1"
