#!/bin/bash
# test_gcs.sh — drbackup's GCS JSON-API driver end to end, through the CLI, against the
# stand-in server tests/gcs-server/gcs_server.py (a test double, not Google's code).
#
# Runs from the repository root; the binary is $DRBACKUP (default ./drbackup). Prints one
# line per check ("ok - ..." / "not ok - ..."), exits 0 only when every check passed.
# A fresh service-account key pair is generated for each run; nothing is left behind.

set -u

DRBACKUP=${DRBACKUP:-./drbackup}
PYTHON=/usr/bin/python3
SERVER_PY=tests/gcs-server/gcs_server.py
BUCKET=drb-test
EMAIL=backup@drb-test.iam.gserviceaccount.com

WORK=$(mktemp -d /tmp/drbackup-gcs.XXXXXX) || exit 1
SERVER_PID=
FAILURES=0
CHECKS=0

stop_server() {
	if [ -n "$SERVER_PID" ]; then
		kill "$SERVER_PID" 2>/dev/null
		wait "$SERVER_PID" 2>/dev/null
		SERVER_PID=
	fi
}
cleanup() {
	stop_server
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pass() { CHECKS=$((CHECKS + 1)); echo "ok - $1"; }
fail() {
	CHECKS=$((CHECKS + 1)); FAILURES=$((FAILURES + 1)); echo "not ok - $1"
	[ -s "$WORK/out" ] && sed 's/^/    # /' "$WORK/out" | head -n 8
	return 0
}
# check DESCRIPTION CMD...: passes when CMD exits 0
check() { local d=$1; shift; if "$@"; then pass "$d"; else fail "$d"; fi; }

die() { echo "not ok - $*"; exit 1; }

[ -x "$DRBACKUP" ] || die "no drbackup binary at '$DRBACKUP' (set DRBACKUP)"
[ -f "$SERVER_PY" ] || die "run from the repository root ($SERVER_PY not found)"

PORT=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') ||
	die "no free port"
ENDPOINT=http://127.0.0.1:$PORT

# start_server ARGS...: (re)start the stand-in on $PORT with extra flags; waits until it answers.
start_server() {
	stop_server
	"$PYTHON" "$SERVER_PY" --dir "$WORK/srv" --port "$PORT" --bucket "$BUCKET" \
		--client-email "$EMAIL" --public-key "$WORK/sa.pub" -v "$@" >> "$WORK/server.log" 2>&1 &
	SERVER_PID=$!
	for _ in $(seq 1 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then return 0; fi
		kill -0 "$SERVER_PID" 2>/dev/null || break
		sleep 0.1
	done
	tail -n 5 "$WORK/server.log" >&2
	die "the GCS stand-in server did not start"
}

# drb CONF ARGS...: run drbackup with a config file, output (both streams) in $WORK/out.
drb() { local conf=$1; shift; "$DRBACKUP" --config="$conf" "$@" > "$WORK/out" 2>&1; }
out_has() { grep -q -- "$1" "$WORK/out"; }
# mark_log / since_mark: the server log lines written after the mark go to $WORK/log.part
mark_log() { MARK=$(wc -l < "$WORK/server.log"); }
since_mark() { tail -n +"$((MARK + 1))" "$WORK/server.log" > "$WORK/log.part"; }
part_count() { grep -c -- "$1" "$WORK/log.part"; }

# write_conf FILE KEY-TYPE KEY [EXTRA-LINE...]
write_conf() {
	local f=$1 type=$2 key=$3; shift 3
	{
		echo "[global]"
		echo "repo1-type=gcs"
		echo "repo1-gcs-bucket=$BUCKET"
		echo "repo1-gcs-endpoint=$ENDPOINT"
		echo "repo1-gcs-key-type=$type"
		echo "repo1-gcs-key=$key"
		echo "repo1-gcs-chunk-size=256KiB"
		echo "repo1-path=/prefix"
		echo "repo1-storage-retries=3"
		for l in "$@"; do echo "$l"; done
	} > "$f"
	chmod 600 "$f"
}

# ---- keys: the service account's pair, another pair the server may trust instead, the key file
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/sa.pem" 2>/dev/null &&
	openssl pkey -in "$WORK/sa.pem" -pubout -out "$WORK/sa.pub" &&
	openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 2>/dev/null |
	openssl pkey -pubout -out "$WORK/other.pub" || die "openssl could not make test keys"
"$PYTHON" - "$WORK/sa.pem" "$WORK/key.json" "$EMAIL" "$ENDPOINT/token" <<'EOF' || die "could not write the key file"
import json, sys
pem, out, email, uri = sys.argv[1:]
json.dump({"type": "service_account", "project_id": "drb-test", "private_key_id": "test-key-1",
           "private_key": open(pem).read(), "client_email": email, "token_uri": uri}, open(out, "w"))
EOF
chmod 600 "$WORK/key.json"
rm -f "$WORK/sa.pem"			# only the key file holds the private key now

CONF=$WORK/service.conf
write_conf "$CONF" service "$WORK/key.json"
head -c 3000000 /dev/urandom > "$WORK/big"		# incompressible: > chunk size once stored
echo "a small object" > "$WORK/small"
mkdir -p "$WORK/srv"

# ---- service-account key: create, put, get, ls, rm
start_server
check "repo-create on gcs" drb "$CONF" repo-create

mark_log
check "repo-put of a 3 MB file" drb "$CONF" repo-put "$WORK/big" data/big
since_mark
check "the 3 MB put used a resumable session with several 308-acknowledged chunks" \
	test "$(part_count 'uploadType=resumable&name=prefix%2Fdata%2Fbig')" -eq 1 \
	-a "$(part_count '"PUT /upload/.*upload_id=.*" 308')" -ge 5 \
	-a "$(part_count '"PUT /upload/.*upload_id=.*" 200')" -eq 1
check "objects are stored under the repository prefix" test -s "$WORK/srv/$BUCKET/prefix%2Fdata%2Fbig"

check "repo-get of the 3 MB file" drb "$CONF" repo-get data/big "$WORK/big.out"
check "3 MB file: bytes read back are identical" cmp -s "$WORK/big" "$WORK/big.out"

mark_log
check "repo-put of a small file" drb "$CONF" repo-put "$WORK/small" data/small
since_mark
check "the small put was one media upload" \
	test "$(part_count 'uploadType=media&name=prefix%2Fdata%2Fsmall')" -eq 1 -a "$(part_count 'uploadType=resumable')" -eq 0
check "repo-get of the small file" drb "$CONF" repo-get data/small "$WORK/small.out"
check "small file: bytes read back are identical" cmp -s "$WORK/small" "$WORK/small.out"

check "repo-ls data/" drb "$CONF" repo-ls data/
check "repo-ls shows both objects relative to the repository path" \
	bash -c "grep -q ' data/big\$' '$WORK/out' && grep -q ' data/small\$' '$WORK/out' && ! grep -q 'prefix/' '$WORK/out'"

drb "$CONF" repo-get data/missing "$WORK/missing.out"; rc=$?
check "repo-get of a missing object exits 1 and names it" \
	bash -c "[ $rc -eq 1 ] && grep -q 'prefix/data/missing' '$WORK/out' && grep -q '404' '$WORK/out'"

check "repo-rm data/small" drb "$CONF" repo-rm data/small
drb "$CONF" repo-ls data/
check "a removed object is no longer listed" bash -c "! grep -q 'data/small' '$WORK/out' && grep -q 'data/big' '$WORK/out'"
check "repo-rm of a missing object succeeds" drb "$CONF" repo-rm data/small

# ---- listing longer than one page
start_server --page-size 4
for i in $(seq -w 1 11); do
	echo "object $i" > "$WORK/p$i"
	drb "$CONF" repo-put "$WORK/p$i" "many/obj-$i" || fail "repo-put many/obj-$i"
done
mark_log
check "repo-ls over 3 pages" drb "$CONF" repo-ls many/
since_mark
awk '{print $NF}' "$WORK/out" > "$WORK/listed"
seq -w 1 11 | sed 's|^|many/obj-|' > "$WORK/expected"
check "paged listing: all 11 objects, once each, in lexical order" cmp -s "$WORK/listed" "$WORK/expected"
check "paged listing followed nextPageToken" test "$(part_count 'GET /storage/v1/b/.*pageToken=')" -eq 2

# ---- faults: 503s, a failed chunk, a read cut short, a revoked token
mark_log
start_server --fail-first 2 --fail-chunks 1 --cut-reads 1 --revoke-at 8
check "repo-put through 503s and a failed chunk" drb "$CONF" repo-put "$WORK/big" data/big2
check "repo-get through a connection cut mid-body and a revoked token" drb "$CONF" repo-get data/big2 "$WORK/big2.out"
check "faulty server: bytes read back are identical" cmp -s "$WORK/big" "$WORK/big2.out"
since_mark
check "the faults happened: 503s, a cut read, a 401" \
	test "$(part_count '" 503 ')" -ge 3 -a "$(part_count '" 401 ')" -eq 1
check "the driver got a new token after the 401 (2 runs + 1 refresh)" test "$(part_count 'POST /token')" -eq 3

# ---- a failed large upload leaves nothing visible and cancels its session
start_server --fail-chunks 1000
drb "$CONF" --repo1-storage-retries=0 repo-put "$WORK/big" data/failed; rc=$?
check "repo-put fails when every chunk fails" bash -c "[ $rc -ne 0 ] && grep -q 'gs://$BUCKET/prefix/data/failed' '$WORK/out'"
check "the failed upload is not visible" bash -c "[ ! -e '$WORK/srv/$BUCKET/prefix%2Fdata%2Ffailed' ]"
check "the failed upload's session was cancelled" \
	bash -c "grep -q '\"DELETE /upload/.*upload_id=.*\" 499' '$WORK/server.log' && [ -z \"\$(ls -A '$WORK/srv/.sessions')\" ]"

# ---- the server trusts another key: the token exchange fails clearly
start_server --public-key "$WORK/other.pub"
drb "$CONF" repo-ls data/; rc=$?
# (the path itself may show as <redacted>: repo1-gcs-key is a secret option)
check "a key the server does not trust fails with a clear error" \
	bash -c "[ $rc -ne 0 ] && grep -q 'Invalid JWT Signature' '$WORK/out' && grep -q \"key file '\" '$WORK/out' &&
		grep -q '$EMAIL' '$WORK/out' && grep -q '/token.*HTTP 400' '$WORK/out'"
check "the error shows no private key" bash -c "! grep -q 'PRIVATE KEY' '$WORK/out'"

# ---- static token mode
TOKEN=ya29.static-$RANDOM$RANDOM$RANDOM
mark_log
start_server --static-token "$TOKEN"
write_conf "$WORK/token.conf" token "$TOKEN"
check "static token: repo-ls" drb "$WORK/token.conf" repo-ls data/
check "static token: the listing shows data/big" out_has ' data/big$'
check "static token: repo-get" drb "$WORK/token.conf" repo-get data/big "$WORK/big3.out"
check "static token: bytes read back are identical" cmp -s "$WORK/big" "$WORK/big3.out"
since_mark
check "static token: no token endpoint call" test "$(part_count 'POST /token')" -eq 0
write_conf "$WORK/badtoken.conf" token "ya29.wrong-$TOKEN"
drb "$WORK/badtoken.conf" repo-ls data/; rc=$?
check "a wrong static token fails with HTTP 401 and does not print the token" \
	bash -c "[ $rc -ne 0 ] && grep -q 'HTTP 401' '$WORK/out' && ! grep -q 'wrong-$TOKEN' '$WORK/out'"

stop_server
echo "# $((CHECKS - FAILURES))/$CHECKS checks passed"
[ "$FAILURES" -eq 0 ]
