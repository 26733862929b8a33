# t_s3.sh — the S3 driver against OpenStack Swift + s3api (verifies SigV4, Content-MD5,
# multipart like AWS), cross-checked with awscli.
conf=$T_DIR/s3.conf
write_conf "$conf" <<EOC
[global]
$(swift_repo 1 /it/s3)
repo1-cipher-type=aes-256-gcm
repo1-cipher-pass=s3-test-passphrase
repo1-storage-retries=2
EOC
make_file "$T_DIR/small" 1
make_file "$T_DIR/big" 100
check "repo-create on Swift" "$DRBACKUP" --config="$conf" repo-create
check "put small" "$DRBACKUP" --config="$conf" repo-put "$T_DIR/small" a/small
check "get small" "$DRBACKUP" --config="$conf" repo-get a/small "$T_DIR/small.out"
check_same "small round trip" "$T_DIR/small" "$T_DIR/small.out"
check "put 100 MiB (multipart)" "$DRBACKUP" --config="$conf" repo-put "$T_DIR/big" a/big
multipart_etag() { aws_swift s3api head-object --bucket drb-swift --key it/s3/a/big | grep -Eq '"ETag": ".*-[0-9]+'; }
check "awscli sees a multipart ETag on the 100 MiB object" multipart_etag
check "get 100 MiB" "$DRBACKUP" --config="$conf" repo-get a/big "$T_DIR/big.out"
check_same "100 MiB round trip" "$T_DIR/big" "$T_DIR/big.out"
check "head via ls shows sizes" sh -c "'$DRBACKUP' --config='$conf' repo-ls a/ | grep -q 'a/big'"
check_fails "missing object exits 1 (404)" 1 "a/none" "$DRBACKUP" --config="$conf" repo-get a/none "$T_DIR/none"

# wrong secret: Swift verifies SigV4
check_fails "wrong secret is a clear 403" 4 "403.*SignatureDoesNotMatch|SignatureDoesNotMatch.*403" env DRBACKUP_REPO1_S3_KEY_SECRET=wrong "$DRBACKUP" --config="$conf" repo-ls a/

# endpoint down: retries, then a clear error, bounded in time
port=$(free_port)
start=$(date +%s)
check_fails "endpoint down: clear error after retries" 4 "127.0.0.1:$port|onnect" env DRBACKUP_REPO1_S3_ENDPOINT="http://127.0.0.1:$port" "$DRBACKUP" --config="$conf" repo-ls a/
elapsed=$(( $(date +%s) - start ))
check_true "endpoint down: gave up within 30 s (took ${elapsed}s)" "[ $elapsed -lt 30 ]"

# plain-text repository: objects are interchangeable with awscli in both directions
pconf=$T_DIR/plain.conf
sed -e 's/^repo1-cipher-type=.*/repo1-cipher-type=none/' -e 's#^repo1-path=.*#repo1-path=/it/plain#' "$conf" | write_conf "$pconf"
make_file "$T_DIR/text" 3 text
"$DRBACKUP" --config="$pconf" repo-create > /dev/null
check "put plain-text object" "$DRBACKUP" --config="$pconf" repo-put "$T_DIR/text" t/text
check "awscli downloads it" aws_swift s3 cp s3://drb-swift/it/plain/t/text "$T_DIR/aws.dl" --only-show-errors
check "downloaded object decodes with zstd to the original" sh -c "zstd -dc < '$T_DIR/aws.dl' | cmp - '$T_DIR/text'"
check "awscli uploads it under another name" aws_swift s3 cp "$T_DIR/aws.dl" s3://drb-swift/it/plain/t/copied --only-show-errors
check "drbackup reads the awscli-uploaded object" "$DRBACKUP" --config="$pconf" repo-get t/copied "$T_DIR/copied.out"
check_same "awscli-uploaded object verifies" "$T_DIR/text" "$T_DIR/copied.out"
echo "not a drbackup object" > "$T_DIR/junk"
aws_swift s3 cp "$T_DIR/junk" s3://drb-swift/it/plain/t/junk --only-show-errors
check_fails "a foreign object is refused" 5 "t/junk" "$DRBACKUP" --config="$pconf" repo-get t/junk "$T_DIR/junk.out"

# more than 1000 objects: ListObjectsV2 continuation
seq 1 1005 | xargs -P 8 -I{} "$DRBACKUP" --config="$pconf" repo-put "$T_DIR/small" "many/obj-{}" 2>"$T_DIR/many.err"
n=$("$DRBACKUP" --config="$pconf" repo-ls many/ | wc -l)
check_true "1005 objects listed across pages (got $n)" "[ '$n' -eq 1005 ]"
check "delete many" sh -c "'$DRBACKUP' --config='$pconf' repo-ls many/ | awk '{print \$NF}' | xargs '$DRBACKUP' --config='$pconf' repo-rm"
n=$("$DRBACKUP" --config="$pconf" repo-ls many/ | wc -l)
check_true "all deleted (left: $n)" "[ '$n' -eq 0 ]"

