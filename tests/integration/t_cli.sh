# t_cli.sh — command line and configuration behaviour of the real binary.
conf=$T_DIR/drbackup.conf
write_conf "$conf" <<EOC
[global]
repo1-path=$T_DIR/repo
repo1-cipher-type=aes-256-gcm
repo1-cipher-pass=cli-secret-passphrase-1
EOC

check "help lists commands" sh -c "'$DRBACKUP' help | grep -q repo-put && '$DRBACKUP' help | grep -q stanza-create"
check "help COMMAND shows its options" sh -c "'$DRBACKUP' help repo-put | grep -q -- '--repo'"
check "version" sh -c "'$DRBACKUP' version | grep -Eq '^drbackup [0-9]+\.[0-9]+'"
check_fails "unknown option is one clear line" 2 "bogus" "$DRBACKUP" --bogus-option=1 repo-ls
check_fails "unknown command is one clear line" 2 "frobnicate" "$DRBACKUP" frobnicate
check_fails "bad value names the option" 2 "process-max" "$DRBACKUP" --process-max=0 repo-ls
check_fails "bad enum value" 2 "compress-type" "$DRBACKUP" --compress-type=rar repo-ls
check_fails "missing argument" 2 "repo-put" "$DRBACKUP" --config="$conf" repo-put onlyone
check_fails "secret on the command line refused" 2 "cipher-pass" "$DRBACKUP" --repo1-cipher-pass=x repo-ls
check_fails "missing --config file" 3 "nope.conf" "$DRBACKUP" --config="$T_DIR/nope.conf" repo-ls

cp "$conf" "$T_DIR/open.conf"; chmod 644 "$T_DIR/open.conf"
check_fails "world-readable config with secret refused" 3 "readable" "$DRBACKUP" --config="$T_DIR/open.conf" repo-ls
check_true "the refusal does not print the secret" "! grep -q cli-secret-passphrase-1 '$IT_DIR/last.err'"

check "repo-create" "$DRBACKUP" --config="$conf" repo-create
echo data > "$T_DIR/f"
check_fails "wrong passphrase (env overrides file) is a crypto error" 6 "passphrase" env DRBACKUP_REPO1_CIPHER_PASS=wrong-one "$DRBACKUP" --config="$conf" repo-put "$T_DIR/f" x/f
check "put with the passphrase from the file" "$DRBACKUP" --config="$conf" repo-put "$T_DIR/f" x/f
check "command line overrides the environment" env DRBACKUP_REPO1_PATH=/nonexistent/repo "$DRBACKUP" --config="$conf" --repo1-path="$T_DIR/repo" repo-get x/f "$T_DIR/f2"
check_fails "environment overrides the file" 1 "not initiali" env DRBACKUP_REPO1_PATH="$T_DIR/other-repo" "$DRBACKUP" --config="$conf" repo-get x/f "$T_DIR/f3"
check_fails "unreadable local file" 1 "f-missing" "$DRBACKUP" --config="$conf" repo-put "$T_DIR/f-missing" x/g
check_fails "path traversal refused" 2 "invalid repository path" "$DRBACKUP" --config="$conf" repo-put "$T_DIR/f" ../escape
check_fails "repository key file cannot be removed" 2 "repository key" "$DRBACKUP" --config="$conf" repo-rm drbackup.repo
# libcurl, libpq, libxml2 and libarchive are opened only by the commands that need them
# (src/dynlib.h): not linked, and not loaded by a command on a posix repository
check_true "libcurl, libpq, libxml2, libarchive are not linked" "! ldd '$DRBACKUP' | grep -E 'libcurl|libpq|libxml2|libarchive'"
LD_DEBUG=files "$DRBACKUP" --config="$conf" repo-get x/f "$T_DIR/g-ld" > "$T_DIR/ld.out" 2>&1
check_true "a posix repo-get loads none of them" "grep -q 'file=libcrypto' '$T_DIR/ld.out' && ! grep -E 'file=(libcurl|libpq|libxml2|libarchive)' '$T_DIR/ld.out'"
"$DRBACKUP" --config="$conf" --log-level-console=debug repo-get x/f "$T_DIR/g" > "$T_DIR/debug.out" 2>&1
check_true "debug output never shows the passphrase" "! grep -q cli-secret-passphrase-1 '$T_DIR/debug.out'"
