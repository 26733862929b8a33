/*
 * metrics_names.h — HELP texts of the Prometheus series that both `metrics`
 * (archive/metrics.c) and `restore-test --metrics` (restore/restore_test_report.c) write.
 * node_exporter's text-file collector merges a metric family across files; the two files
 * keep their series apart with labels (restore-test adds source="restore-test"), and their
 * HELP texts must be the same.
 */
#ifndef DRB_METRICS_NAMES_H
#define DRB_METRICS_NAMES_H

#define METRICS_HELP_WINDOW \
	"Length of the recoverable window of the repository, from the oldest restorable " \
	"backup's end to the end of the archived WAL (0: nothing restorable)."
#define METRICS_HELP_RESTORE_TEST_LAST_SUCCESS \
	"When the newest successful restore test ran (seconds since the epoch)."

#endif
