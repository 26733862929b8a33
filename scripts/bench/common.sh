# scripts/bench/common.sh — helpers the benchmark scripts share; sourced, never run.
#
# The functions read the sourcing script's variables when called: WORK (the run's private
# work directory), PGBIN, PGSOCK and PORT (its scratch cluster).

as_pg() { runuser -u postgres -- "$@"; }
psql_pg() { as_pg "$PGBIN/psql" -h "$PGSOCK" -p "$PORT" -U postgres -Atqc "$1" postgres; }

# Processes started on our behalf and left running: every process whose command line
# names this run's private work directory, stopped by id.
stop_ours() {
	local p cmd
	for p in /proc/[0-9]*; do
		[ "${p#/proc/}" = "$$" ] && continue
		cmd=$( { tr '\0' ' ' < "$p/cmdline"; } 2>/dev/null) || continue
		case $cmd in *"$WORK"*) kill "${p#/proc/}" 2>/dev/null ;; esac
	done
}

# wait_archived: every segment PostgreSQL has finished is archived (no .ready left)
wait_archived() {
	local i
	for i in $(seq 1 1200); do
		[ "$(psql_pg "SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'")" = 0 ] \
			&& return 0
		sleep 0.5
	done
	echo "   the archive did not catch up in 10 minutes (last failure: $(psql_pg \
		"SELECT last_failed_wal FROM pg_stat_archiver"))"
}

# median of numbers on stdin, to 3 decimals (FAIL lines make the figure FAIL)
median() {
	sort -g | awk '/FAIL/ { bad = 1 } !/FAIL/ { v[++n] = $1 }
		END { if (bad || n == 0) { print "FAIL"; exit }
			  printf "%.3f\n", (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "FAIL" || b == "FAIL" || b == 0) print "n/a"; else printf "%.2f\n", a / b }'; }
mib() { awk -v k="$1" -v d="$2" 'BEGIN { if (k == "FAIL") print "FAIL"; else printf "%.1f\n", k / d }'; }
