# t_s3rver.sh — the S3 driver against s3rver (second implementation, second "region"), and
# GCS's XML API mode (repo-gcs-key-type=hmac: S3 code, region "auto") against a Swift s3api
# proxy that answers for region "auto" and verifies the SigV4 signature like GCS does.
conf=$T_DIR/s3rver.conf
write_conf "$conf" <<EOC
[global]
repo2-type=s3
repo2-path=/it/region2
repo2-s3-endpoint=$S3RVER_ENDPOINT
repo2-s3-bucket=drb-s3rver
repo2-s3-region=eu-west-1
repo2-s3-uri-style=path
repo2-s3-key=$S3RVER_KEY
repo2-s3-key-secret=$S3RVER_SECRET
repo2-cipher-type=aes-256-gcm
repo2-cipher-pass=region-two-pass
repo3-type=gcs
repo3-gcs-key-type=hmac
repo3-gcs-endpoint=$SWIFT_GCS_ENDPOINT
repo3-gcs-bucket=drb-swift
repo3-gcs-key=$SWIFT_KEY
repo3-gcs-key-secret=$SWIFT_SECRET
repo3-path=/it/gcs-hmac
EOC
make_file "$T_DIR/f" 20
check "repo-create repo2 and repo3" "$DRBACKUP" --config="$conf" repo-create --repo=2
check "repo-create repo3" "$DRBACKUP" --config="$conf" repo-create --repo=3
for r in 2 3; do
	check "repo$r: put (multipart)" "$DRBACKUP" --config="$conf" --repo=$r repo-put "$T_DIR/f" x/f
	check "repo$r: get" "$DRBACKUP" --config="$conf" --repo=$r repo-get x/f "$T_DIR/f.$r"
	check_same "repo$r: round trip" "$T_DIR/f" "$T_DIR/f.$r"
	check "repo$r: ls" sh -c "'$DRBACKUP' --config='$conf' --repo=$r repo-ls x/ | grep -q x/f"
	check "repo$r: rm" "$DRBACKUP" --config="$conf" --repo=$r repo-rm x/f
	check_fails "repo$r: gone after rm" 1 "x/f" "$DRBACKUP" --config="$conf" --repo=$r repo-get x/f "$T_DIR/g.$r"
done
"$DRBACKUP" --config="$conf" --repo=3 repo-put "$T_DIR/f" z/f
gcs_object_listed() { aws_swift s3 ls s3://drb-swift/it/gcs-hmac/z/ | grep -q ' f$'; }
check "repo3 (GCS HMAC) object is where awscli expects it" gcs_object_listed
check_fails "repo3 with a wrong HMAC secret is refused by the server" 4 "403" env DRBACKUP_REPO3_GCS_KEY_SECRET=wrong "$DRBACKUP" --config="$conf" --repo=3 repo-ls z/

# corrupt the object on s3rver's disk: the flipped byte is detected and named
"$DRBACKUP" --config="$conf" --repo=2 repo-put "$T_DIR/f" y/f
obj=$(find "$S3RVER_DATA/drb-s3rver" -path '*region2/y/f._S3rver_object' | head -1)
if [ -n "$obj" ]; then
	printf '\x00' | dd of="$obj" bs=1 seek=100000 conv=notrunc 2>/dev/null
	check_fails "corruption on the server is detected" 5 "y/f" "$DRBACKUP" --config="$conf" --repo=2 repo-get y/f "$T_DIR/y"
else
	fail "locate s3rver object file for corruption" "$(find "$S3RVER_DATA" | head)"
fi
