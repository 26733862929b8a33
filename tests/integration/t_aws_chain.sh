# t_aws_chain.sh — S3 credentials from the standard AWS chain when repo1-s3-key is not set:
# AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, then the shared credentials file and AWS_PROFILE.
# Swift verifies every signature, so a wrong or missing credential cannot pass by accident.
conf=$T_DIR/chain.conf
write_conf "$conf" <<EOC
[global]
repo1-type=s3
repo1-path=/it/chain
repo1-s3-endpoint=$SWIFT_ENDPOINT
repo1-s3-bucket=drb-swift
repo1-s3-region=$SWIFT_REGION
repo1-s3-uri-style=path
EOC
no_aws() { env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN -u AWS_PROFILE \
	AWS_SHARED_CREDENTIALS_FILE="$T_DIR/none" HOME="$T_DIR/home" "$@"; }
mkdir -p "$T_DIR/home"
echo chain > "$T_DIR/f"

check_fails "no credentials anywhere: clear error" 3 "no S3 credentials" no_aws "$DRBACKUP" --config="$conf" repo-ls
check "credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY" no_aws env AWS_ACCESS_KEY_ID="$SWIFT_KEY" \
	AWS_SECRET_ACCESS_KEY="$SWIFT_SECRET" "$DRBACKUP" --config="$conf" repo-create
check_fails "a wrong secret in the environment is refused by the server" 4 "403" no_aws env \
	AWS_ACCESS_KEY_ID="$SWIFT_KEY" AWS_SECRET_ACCESS_KEY=wrong "$DRBACKUP" --config="$conf" repo-ls

cat > "$T_DIR/credentials" <<EOC
[default]
aws_access_key_id = $SWIFT_KEY
aws_secret_access_key = wrong-default-secret

[backup]
aws_access_key_id = $SWIFT_KEY
aws_secret_access_key = $SWIFT_SECRET
EOC
chmod 600 "$T_DIR/credentials"
check_fails "shared credentials file, default profile (wrong secret) is used" 4 "403" no_aws env \
	AWS_SHARED_CREDENTIALS_FILE="$T_DIR/credentials" "$DRBACKUP" --config="$conf" repo-ls
check "shared credentials file, AWS_PROFILE=backup" no_aws env AWS_SHARED_CREDENTIALS_FILE="$T_DIR/credentials" \
	AWS_PROFILE=backup "$DRBACKUP" --config="$conf" repo-put "$T_DIR/f" f
mkdir -p "$T_DIR/home/.aws"; cp "$T_DIR/credentials" "$T_DIR/home/.aws/credentials"
check "~/.aws/credentials found through HOME" env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY \
	-u AWS_SHARED_CREDENTIALS_FILE HOME="$T_DIR/home" AWS_PROFILE=backup "$DRBACKUP" --config="$conf" repo-get f "$T_DIR/f.out"
check_same "object read with profile credentials" "$T_DIR/f" "$T_DIR/f.out"
check "repo-s3-key options take precedence over the environment" env AWS_ACCESS_KEY_ID=nobody \
	AWS_SECRET_ACCESS_KEY=nothing DRBACKUP_REPO1_S3_KEY="$SWIFT_KEY" DRBACKUP_REPO1_S3_KEY_SECRET="$SWIFT_SECRET" \
	"$DRBACKUP" --config="$conf" repo-ls

# secrets never reach a log file, even at debug level
mkdir -p "$T_DIR/log"
env DRBACKUP_REPO1_S3_KEY="$SWIFT_KEY" DRBACKUP_REPO1_S3_KEY_SECRET="$SWIFT_SECRET" \
	"$DRBACKUP" --config="$conf" --log-level-file=debug --log-path="$T_DIR/log" repo-get f "$T_DIR/f.log.out" > /dev/null 2>&1
check_true "a debug log file was written" "ls '$T_DIR/log'/*.log >/dev/null 2>&1 && [ -s \"\$(ls '$T_DIR/log'/*.log | head -1)\" ]"
check_true "no secret in the log files" "! grep -r -q -e '$SWIFT_SECRET' '$T_DIR/log'"
