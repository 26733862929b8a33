# t_memory.sh — memory stays bounded whatever the object size: a 1 GiB repo-put to Swift
# (zstd + AES-256-GCM, multipart) and its repo-get must each stay under 64 MiB RSS.
# (A bound on memory, not a timing: it does not depend on machine speed.)
conf=$T_DIR/mem.conf
write_conf "$conf" <<EOC
[global]
$(swift_repo 1 /it/mem)
repo1-cipher-type=aes-256-gcm
repo1-cipher-pass=memory-pass
EOC
size_mib=${MEMORY_TEST_MIB:-1024}
make_file "$T_DIR/big" "$size_mib"
"$DRBACKUP" --config="$conf" repo-create > /dev/null
check "put ${size_mib} MiB" /usr/bin/time -f '%M' -o "$T_DIR/put.rss" "$DRBACKUP" --config="$conf" repo-put "$T_DIR/big" big
rss=$(cat "$T_DIR/put.rss")
check_true "put max RSS ${rss} KiB < 65536 KiB" "[ '$rss' -lt 65536 ]"
check "get ${size_mib} MiB" sh -c "/usr/bin/time -f '%M' -o '$T_DIR/get.rss' '$DRBACKUP' --config='$conf' repo-get big - | cmp - '$T_DIR/big'"
rss=$(cat "$T_DIR/get.rss")
check_true "get max RSS ${rss} KiB < 65536 KiB" "[ '$rss' -lt 65536 ]"
rm -f "$T_DIR/big"
"$DRBACKUP" --config="$conf" repo-rm big
