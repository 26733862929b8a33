# t_gcs.sh — the GCS JSON-API driver through the CLI against the stand-in server
# (tests/gcs-server: it verifies the JWT's RS256 signature and the bearer token on every
# call). test_gcs.sh is self-contained; its "ok"/"not ok" lines are recorded here.
DRBACKUP=$DRBACKUP bash tests/integration/test_gcs.sh > "$T_DIR/gcs.out" 2>&1
rc=$?
while IFS= read -r line; do
	case $line in
		"ok - "*) pass "${line#ok - }" ;;
		"not ok - "*) fail "${line#not ok - }" ;;
		"    "*) echo "$line" ;;
	esac
done < "$T_DIR/gcs.out"
grep -q '^ok - ' "$T_DIR/gcs.out" || fail "test_gcs.sh ran no check (exit $rc)" "$(tail -5 "$T_DIR/gcs.out")"
[ $rc -eq 0 ] || grep -q '^not ok - ' "$T_DIR/gcs.out" || fail "test_gcs.sh exited $rc" "$(tail -5 "$T_DIR/gcs.out")"
