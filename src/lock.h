/*
 * lock.h — one backup-side operation per stanza at a time on this host.
 *
 * lock_acquire takes an exclusive flock() on "<lock-path>/<stanza>-<name>.lock" (the
 * directory is created when missing, mode 0770) and writes the holder's pid into it. The
 * lock lives as long as the process or until lock_release: a crashed holder never leaves
 * a stale lock behind. When another process holds it, DRB_ERR_LOCK: "unable to acquire
 * the <name> lock of stanza 'S': held by process PID (a <what> is running)".
 */
#ifndef DRB_LOCK_H
#define DRB_LOCK_H

typedef struct drb_lock drb_lock;

drb_lock   *lock_acquire(const char *lock_path, const char *stanza, const char *name,
						 const char *what);
void		lock_release(drb_lock *lock);

#endif
