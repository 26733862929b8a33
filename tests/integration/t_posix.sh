# t_posix.sh — the pipeline through the posix driver: every compression × cipher, verification,
# missing objects, atomic repo-get, and the plain-text format readable by the zstd CLI.
make_file "$T_DIR/rand" 5
make_file "$T_DIR/text" 5 text
: > "$T_DIR/empty"
for cipher in none aes-256-gcm; do
	for comp in zstd lz4 gz none; do
		repo=$T_DIR/repo-$cipher
		conf=$T_DIR/$cipher.conf
		write_conf "$conf" <<EOC
[global]
repo1-path=$repo
repo1-cipher-type=$cipher
repo1-cipher-pass=posix-test-pass
compress-type=$comp
EOC
		"$DRBACKUP" --config="$conf" repo-create > /dev/null
		for f in rand text empty; do
			"$DRBACKUP" --config="$conf" repo-put "$T_DIR/$f" "obj/$comp/$f" &&
				"$DRBACKUP" --config="$conf" repo-get "obj/$comp/$f" "$T_DIR/out-$cipher-$comp-$f"
			check_same "round trip $cipher/$comp/$f" "$T_DIR/$f" "$T_DIR/out-$cipher-$comp-$f"
		done
	done
done
conf=$T_DIR/aes-256-gcm.conf
check "repo-get to stdout" sh -c "'$DRBACKUP' --config='$conf' repo-get obj/zstd/text | cmp - '$T_DIR/text'"
check "repo-put from stdin" sh -c "'$DRBACKUP' --config='$conf' repo-put - stdin/obj < '$T_DIR/rand'"
check "stdin object verifies" sh -c "'$DRBACKUP' --config='$conf' repo-get stdin/obj | cmp - '$T_DIR/rand'"
check "repo-ls lists with prefix" sh -c "'$DRBACKUP' --config='$conf' repo-ls obj/zstd | grep -c obj/zstd/ | grep -qx 3"
check "repo-ls json" sh -c "'$DRBACKUP' --config='$conf' --output=json repo-ls obj/lz4 | python3 -c 'import json,sys; d=json.load(sys.stdin); assert len(d)==3, d'"
check_fails "missing object exits 1" 1 "no-such" "$DRBACKUP" --config="$conf" repo-get obj/no-such "$T_DIR/x"
check_true "nothing left behind by a failed get" "[ ! -e '$T_DIR/x' ] && ! ls '$T_DIR'/x.drbtmp.* 2>/dev/null"

# corruption of a stored object is detected and named; repo-get leaves no output file
stored=$T_DIR/repo-aes-256-gcm/obj/zstd/rand
printf '\xff' | dd of="$stored" bs=1 seek=200000 conv=notrunc 2>/dev/null
check_fails "flipped byte detected (encrypted)" 5 "obj/zstd/rand" "$DRBACKUP" --config="$conf" repo-get obj/zstd/rand "$T_DIR/bad"
check_true "no file written for a corrupt object" "[ ! -e '$T_DIR/bad' ]"
truncate -s -100 "$T_DIR/repo-none/obj/gz/text"
check_fails "truncation detected (plain text)" 5 "obj/gz/text" "$DRBACKUP" --config="$T_DIR/none.conf" repo-get obj/gz/text "$T_DIR/bad2"

# a plain-text zstd object is an ordinary .zst file (header and trailer are skippable frames)
check "plain-text zstd object decodes with the zstd CLI" sh -c "zstd -dc < '$T_DIR/repo-none/obj/zstd/text' | cmp - '$T_DIR/text'"
check "repo-rm removes" "$DRBACKUP" --config="$conf" repo-rm obj/lz4/rand obj/lz4/text
check "removed objects are gone" sh -c "! '$DRBACKUP' --config='$conf' repo-ls obj/lz4 | grep -q rand"
check "repo-rm of a missing object succeeds" "$DRBACKUP" --config="$conf" repo-rm obj/lz4/rand

# a device as the target is written to, never replaced (a temp file renamed over /dev/null
# would turn the device into a regular file for everyone)
mknod "$T_DIR/nulldev" c 1 3
check "repo-get into a character device" "$DRBACKUP" --config="$conf" repo-get obj/zstd/text "$T_DIR/nulldev"
check_true "the device is still a device" "[ -c '$T_DIR/nulldev' ]"
mkfifo "$T_DIR/fifo"
( cat "$T_DIR/fifo" > "$T_DIR/fifo.out" ) &
check "repo-get into a FIFO" "$DRBACKUP" --config="$conf" repo-get obj/zstd/text "$T_DIR/fifo"
wait
check_same "the FIFO reader got the object" "$T_DIR/text" "$T_DIR/fifo.out"
check_fails "a directory as the target is refused" 2 "is a directory" "$DRBACKUP" --config="$conf" repo-get obj/zstd/text "$T_DIR"
