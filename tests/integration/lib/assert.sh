# assert.sh — checks for integration tests. Each check prints "ok - NAME" or
# "not ok - NAME" (with the command's output indented) and records the result in
# $IT_DIR/results, which the runner counts.
#
#   check NAME CMD...                 CMD exits 0
#   check_fails NAME CODE REGEX CMD...  CMD exits with CODE and prints exactly one line on
#                                     stderr, matching the extended regex REGEX
#   check_same NAME FILE1 FILE2       byte-identical files
#   check_true NAME TEST-EXPRESSION   [ ... ] style condition given as a string for eval

_record() {
	local verdict=$1 name=$2
	echo "$verdict $IT_TEST: $name" >> "$IT_DIR/results"
	if [ "$verdict" = pass ]; then echo "ok - $IT_TEST: $name"; else echo "not ok - $IT_TEST: $name"; fi
}

pass() { _record pass "$1"; }
fail() {
	_record fail "$1"
	[ -n "${2:-}" ] && printf '%s\n' "$2" | sed 's/^/    /' | head -30
	return 0
}

check() {
	local name=$1; shift
	if "$@" > "$IT_DIR/last.out" 2> "$IT_DIR/last.err"; then
		pass "$name"
	else
		fail "$name" "exit $?: $(tail -5 "$IT_DIR/last.err")"
	fi
}

check_fails() {
	local name=$1 code=$2 regex=$3; shift 3
	"$@" > "$IT_DIR/last.out" 2> "$IT_DIR/last.err"
	local rc=$? lines
	lines=$(grep -c '' "$IT_DIR/last.err")
	if [ "$rc" -eq "$code" ] && [ "$lines" -eq 1 ] && grep -Eq -- "$regex" "$IT_DIR/last.err"; then
		pass "$name"
	else
		fail "$name" "expected exit $code and one stderr line matching /$regex/; got exit $rc, $lines lines:
$(head -5 "$IT_DIR/last.err")"
	fi
}

check_same() {
	local name=$1
	if cmp -s "$2" "$3"; then pass "$name"; else fail "$name" "$2 and $3 differ"; fi
}

check_true() {
	local name=$1
	if eval "$2"; then pass "$name"; else fail "$name" "condition false: $2"; fi
}

# write_conf FILE: the config text on stdin, mode 600 (it may hold secrets).
write_conf() {
	umask 077
	cat > "$1"
	chmod 600 "$1"
}

# make_file PATH SIZE-MIB [KIND]: test data; KIND random (default) or text (compressible).
make_file() {
	if [ "${3:-random}" = text ]; then
		seq 1 $(( $2 * 140000 )) | head -c $(( $2 * 1048576 )) > "$1"
	else
		head -c $(( $2 * 1048576 )) /dev/urandom > "$1"
	fi
}
