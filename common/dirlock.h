/* dirlock: one owner per data folder — an exclusive lock on DIR/.lock held for the process's life.
 *
 * Each daemon takes it before it touches anything in its data folder (the LMDB ledger, the
 * outbox, the control socket): a second daemon started on the same folder then refuses to run
 * instead of corrupting the first one's state. The lock is a flock(2) on DIR/.lock, which the
 * kernel drops when the process ends however it ends (no stale lock after a crash or kill -9);
 * the file holds the owner's pid for the message of the one refused. The file stays in place
 * after exit (removing it would let two processes lock two different files). */
#ifndef AS_DIRLOCK_H
#define AS_DIRLOCK_H

typedef struct as_dirlock_s as_dirlock_t;

/* Creates dir (and its parents, mode 0750) when missing, opens or creates DIR/.lock (0600,
 * O_NOFOLLOW, O_CLOEXEC: a program started by the daemon does not inherit it) and takes an
 * exclusive lock without waiting; once held it writes this process's pid into the file.
 * Returns the lock, the caller's to release; or NULL with *err = AS_E_BUSY when another process
 * holds it (*holder, when not NULL, is then the pid written in the file, 0 when unknown), or
 * -errno (e.g. -EACCES, -ELOOP for a symlinked .lock, -ENOTDIR). Nothing in the folder is
 * changed when the lock is not taken. */
as_dirlock_t *as_dirlock_take(const char *dir, long *holder, int *err);

/* The path of the lock file ("DIR/.lock"); borrowed, valid while the lock lives. */
const char *as_dirlock_path(const as_dirlock_t *lock);

/* Releases the lock (closes the file; the file itself stays). Safe on NULL and twice. */
void as_dirlock_release(as_dirlock_t **self_p);

#endif
