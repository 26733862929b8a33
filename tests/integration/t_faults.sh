# t_faults.sh — the S3 driver under faults it must survive or report: 503 SlowDown, connection
# resets, response bodies cut or stalled halfway (lib/faultproxy.py in front of the real Swift;
# signatures are still verified by Swift). Every transfer must end byte-identical or with one
# clear error, and a failed upload must leave nothing visible.
start_proxy() {	# start_proxy EVERY FAULTS [STALL]: sets PROXY_PORT
	PROXY_PORT=$(free_port)
	/usr/bin/python3 tests/integration/lib/faultproxy.py --listen "$PROXY_PORT" --upstream "127.0.0.1:$SWIFT_PORT" \
		--every "$1" --faults "$2" --stall-seconds "${3:-30}" 2>> "$T_DIR/proxy.log" &
	PROXY_PID=$!
	echo "$PROXY_PID" >> "$IT_DIR/pids"
	wait_for curl -s -o /dev/null "http://127.0.0.1:$PROXY_PORT/healthcheck"
}
stop_proxy() { kill "$PROXY_PID" 2>/dev/null; wait "$PROXY_PID" 2>/dev/null; }

conf=$T_DIR/faults.conf
write_conf "$conf" <<EOC
[global]
repo1-type=s3
repo1-path=/it/faults
repo1-s3-bucket=drb-swift
repo1-s3-region=$SWIFT_REGION
repo1-s3-uri-style=path
repo1-s3-key=$SWIFT_KEY
repo1-s3-key-secret=$SWIFT_SECRET
repo1-s3-part-size=5MiB
repo1-cipher-type=aes-256-gcm
repo1-cipher-pass=faults-pass
repo1-storage-retries=4
repo1-storage-timeout=3
EOC
direct() { "$DRBACKUP" --config="$conf" --repo1-s3-endpoint="$SWIFT_ENDPOINT" "$@"; }
via() { "$DRBACKUP" --config="$conf" --repo1-s3-endpoint="http://127.0.0.1:$PROXY_PORT" "$@"; }
make_file "$T_DIR/f" 24
direct repo-create > /dev/null

start_proxy 3 slowdown,reset,cut
check "put 24 MiB (multipart) through 503 SlowDown, resets and cut bodies" via repo-put "$T_DIR/f" a/f
check "get through the same faults" via repo-get a/f "$T_DIR/f.out"
check_same "byte-identical after the faults" "$T_DIR/f" "$T_DIR/f.out"
check "small objects through the faults" sh -c "for i in 1 2 3 4 5 6; do echo \$i | '$DRBACKUP' --config='$conf' --repo1-s3-endpoint=http://127.0.0.1:$PROXY_PORT repo-put - s/\$i || exit 1; done"
check "listing through the faults" sh -c "'$DRBACKUP' --config='$conf' --repo1-s3-endpoint=http://127.0.0.1:$PROXY_PORT repo-ls s/ | grep -c . | grep -qx 6"
check_true "faults were really injected ($(grep -c -E ' (slowdown|reset|cut)$' "$T_DIR/proxy.log") of $(grep -c . "$T_DIR/proxy.log") requests)" \
	"[ \$(grep -c -E ' (slowdown|reset|cut)\$' '$T_DIR/proxy.log') -ge 5 ]"
stop_proxy

start_proxy 1 slowdown
start=$(date +%s)
check_fails "SlowDown on every request: one clear error after the retries" 4 "503.*SlowDown" via repo-put "$T_DIR/f" b/f
elapsed=$(( $(date +%s) - start ))
check_true "gave up in bounded time (${elapsed}s < 60s)" "[ $elapsed -lt 60 ]"
stop_proxy
check_fails "the failed upload left no object" 1 "b/f" direct repo-get b/f "$T_DIR/b.out"

start_proxy 4 cut
check "an upload whose part answers are cut still completes" via repo-put "$T_DIR/f" c/f
stop_proxy
check "and reads back verified" direct repo-get c/f "$T_DIR/c.out"
check_same "cut answers: byte-identical" "$T_DIR/f" "$T_DIR/c.out"
no_pending_uploads() { ! aws_swift s3api list-multipart-uploads --bucket drb-swift --prefix it/faults/ | grep -q UploadId; }
check "no multipart upload left pending" no_pending_uploads

start_proxy 2 stall 60
start=$(date +%s)
check "a stalled body is abandoned and resumed" via repo-get a/f "$T_DIR/stall.out"
elapsed=$(( $(date +%s) - start ))
stop_proxy
check_same "stall: byte-identical" "$T_DIR/f" "$T_DIR/stall.out"
check_true "both stalls (key file, object) detected long before they ended: ${elapsed}s < 40s for two 60 s stalls" "[ $elapsed -lt 40 ]"
