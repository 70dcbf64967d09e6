/* spool: the spool folder watcher — complete files read off the loop, committed, moved. */
#include "spool.h"
#include "csvout.h"
#include "err.h"
#include "log.h"
#include "refusal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_NAME 255

typedef struct {
    uint32_t row;
    char *column, *value, *zh, *en;
} s_error_t;

struct as_spool_result_s {
    as_outbox_blob_t *items; /* data owned */
    size_t n, cap;
    s_error_t *errs;
    size_t n_errs, cap_errs;
};

/* A file seen in the spool and not yet taken. */
typedef struct s_seen_s {
    struct s_seen_s *next;
    char name[MAX_NAME + 1];
    off_t size;
    struct timespec mtime;
    uint64_t since_ms; /* loop time since size and mtime have stood still */
    uint64_t retry_ms; /* do not try before this (after a transient failure) */
    bool mark;         /* seen in the current scan */
    bool refused;      /* not a regular file: warned and counted once, never opened */
} s_seen_t;

/* The file being read on the worker thread. */
typedef struct {
    uv_work_t req;
    as_spool_t *sp;
    char name[MAX_NAME + 1];
    uint8_t hash[AS_OUTBOX_HASH_LEN];
    as_spool_result_t res;
    int rc;
    const char *refused; /* what the name turned out to be when it is not a regular file */
    dev_t dev;           /* the file read, so that only that file is moved */
    ino_t ino;
} s_job_t;

struct as_spool_s {
    uv_loop_t *loop;
    char *dir;
    int dfd;        /* the spool folder, opened once (O_DIRECTORY|O_NOFOLLOW) */
    int done_fd;    /* its done/ folder, opened the same way */
    dev_t done_dev; /* done/ as opened: a done/ replaced later is noticed, never followed */
    ino_t done_ino;
    bool done_swapped_warned;
    as_outbox_t *ob;
    as_spool_reader_fn reader;
    void *reader_arg;
    as_spool_taken_cb taken_cb;
    void *taken_arg;
    uv_fs_event_t watch;
    uv_timer_t scan_timer;   /* periodic rescan */
    uv_timer_t settle_timer; /* a look soon after a change */
    uint64_t scan_ms, stable_ms;
    s_seen_t *seen;
    s_job_t *job; /* at most one file at a time */
    bool closing;
    int refs; /* open handles + the job in flight; freed at 0 */
    uint64_t taken;
};

static void s_scan(as_spool_t *sp);
static void s_check_done(as_spool_t *sp);
static void s_settle_cb(uv_timer_t *t);

/* ---- results -------------------------------------------------------------------------------- */

int as_spool_result_add(as_spool_result_t *r, const uint8_t *data, size_t len)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 256;
        as_outbox_blob_t *p = realloc(r->items, cap * sizeof *p);
        if (!p)
            return AS_E_NOMEM;
        r->items = p;
        r->cap = cap;
    }
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return AS_E_NOMEM;
    memcpy(copy, data, len);
    r->items[r->n++] = (as_outbox_blob_t){AS_ITEM_EVENT, copy, len};
    return 0;
}

int as_spool_result_add_error(as_spool_result_t *r, uint32_t row, const char *column,
                              const char *value, const char *reason_zh, const char *reason_en)
{
    if (r->n_errs == r->cap_errs) {
        size_t cap = r->cap_errs ? r->cap_errs * 2 : 64;
        s_error_t *p = realloc(r->errs, cap * sizeof *p);
        if (!p)
            return AS_E_NOMEM;
        r->errs = p;
        r->cap_errs = cap;
    }
    s_error_t *e = &r->errs[r->n_errs];
    e->row = row;
    e->column = strdup(column ? column : "");
    e->value = strdup(value ? value : "");
    e->zh = strdup(reason_zh ? reason_zh : "");
    e->en = strdup(reason_en ? reason_en : "");
    if (!e->column || !e->value || !e->zh || !e->en) {
        free(e->column), free(e->value), free(e->zh), free(e->en);
        return AS_E_NOMEM;
    }
    r->n_errs++;
    return 0;
}

static void s_result_free(as_spool_result_t *r)
{
    for (size_t i = 0; i < r->n; i++)
        free((void *)r->items[i].data);
    for (size_t i = 0; i < r->n_errs; i++) {
        s_error_t *e = &r->errs[i];
        free(e->column), free(e->value), free(e->zh), free(e->en);
    }
    free(r->items);
    free(r->errs);
    memset(r, 0, sizeof *r);
}

static const char s_errors_header[] = "\xEF\xBB\xBFrow,column,value,reason_zh,reason_en\r\n";

/* One errors.csv line: the row is our own number, the rest is text (the value is the office's,
 * and is neutralised like every text cell: docs/spreadsheet.md). */
static void s_errors_line(FILE *f, uint32_t row, const char *column, const char *value,
                          const char *zh, const char *en)
{
    fprintf(f, "%u,", row);
    as_csv_text(f, column);
    fputc(',', f);
    as_csv_text(f, value);
    fputc(',', f);
    as_csv_text(f, zh);
    fputc(',', f);
    as_csv_text(f, en);
    fputs("\r\n", f);
}

static void s_refuse(const char *name, const char *what, const char *doing)
{
    as_refusal_count(AS_REFUSE_SPOOL_NOT_REGULAR);
    AS_WARN("spool", "%s in the spool is %s, not a regular file: refused, never followed; %s", name,
            what, doing);
}

static const char *s_kind(mode_t m)
{
    return S_ISLNK(m)                 ? "a symbolic link"
           : S_ISDIR(m)               ? "a folder"
           : S_ISFIFO(m)              ? "a named pipe"
           : S_ISSOCK(m)              ? "a socket"
           : S_ISCHR(m) || S_ISBLK(m) ? "a device"
                                      : "not a regular file";
}

/* Creates name.tmp in dirfd exclusively and without following a link: a leftover of that name
 * (a crash, or something planted) is removed first — the link itself, never what it names. */
static int s_create_tmp(int dirfd, const char *tmp)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd >= 0 || errno != EEXIST)
            return fd >= 0 ? fd : -errno;
        struct stat st;
        if (fstatat(dirfd, tmp, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG(st.st_mode))
            s_refuse(tmp, s_kind(st.st_mode), "removing that name (not what it points to)");
        if (unlinkat(dirfd, tmp, 0) != 0 && errno != ENOENT)
            return -errno;
    }
    return -EEXIST;
}

int as_spool_write_errors(const as_spool_result_t *r, int dirfd, const char *name)
{
    char tmp[MAX_NAME + 64];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", name) >= (int)sizeof tmp)
        return -ENAMETOOLONG;
    int fd = s_create_tmp(dirfd, tmp);
    if (fd < 0)
        return fd;
    FILE *f = fdopen(fd, "w");
    if (!f) {
        int e = -errno;
        close(fd);
        unlinkat(dirfd, tmp, 0);
        return e;
    }
    fputs(s_errors_header, f);
    for (size_t i = 0; i < r->n_errs; i++) {
        const s_error_t *e = &r->errs[i];
        s_errors_line(f, e->row, e->column, e->value, e->zh, e->en);
    }
    int rc = 0;
    if (fflush(f) != 0 || fsync(fileno(f)) != 0)
        rc = -errno;
    if (fclose(f) != 0 && !rc)
        rc = -errno;
    if (!rc && renameat(dirfd, tmp, dirfd, name) != 0)
        rc = -errno;
    if (rc)
        unlinkat(dirfd, tmp, 0);
    return rc;
}

int as_spool_append_error(as_spool_t *sp, const char *source_file, uint32_t row, const char *value,
                          const char *reason_zh, const char *reason_en)
{
    char name[MAX_NAME + 64];
    if (!*source_file || strchr(source_file, '/') || source_file[0] == '.' ||
        snprintf(name, sizeof name, "%s.errors.csv", source_file) >= (int)sizeof name)
        return AS_E_INVALID;
    int fd =
        openat(sp->done_fd, name, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        if (e == ELOOP)
            s_refuse(name, "a symbolic link (in done/)", "not writing through it");
        return -e;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        s_refuse(name, "not a regular file (in done/)", "not writing into it");
        return -EINVAL;
    }
    FILE *f = fdopen(fd, "a");
    if (!f) {
        int e = -errno;
        close(fd);
        return e;
    }
    if (st.st_size == 0)
        fputs(s_errors_header, f);
    s_errors_line(f, row, "", value, reason_zh, reason_en);
    return fclose(f) != 0 ? -errno : 0;
}

/* ---- reading on the worker thread ----------------------------------------------------------- */

static int s_hash_fd(int fd, uint8_t out[AS_OUTBOX_HASH_LEN])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, AS_OUTBOX_HASH_LEN);
    uint8_t buf[65536];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
        if (n > 0)
            crypto_generichash_update(&st, buf, (size_t)n);
    int rc = n < 0 ? -errno : 0;
    crypto_generichash_final(&st, out, AS_OUTBOX_HASH_LEN);
    if (rc == 0 && lseek(fd, 0, SEEK_SET) != 0)
        rc = -errno;
    return rc;
}

/* Test hook: called between the scan and the open (tests swap the file for a link there). */
void (*as_spool_before_open_hook)(const char *name) = NULL;

/* The file is opened once, relative to the spool's descriptor and without following a link; it
 * is hashed and read through that one descriptor, never by its path again. */
static void s_work(uv_work_t *req)
{
    s_job_t *j = req->data;
    if (as_spool_before_open_hook)
        as_spool_before_open_hook(j->name);
    int fd = openat(j->sp->dfd, j->name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        j->rc = -errno;
        if (errno == ELOOP)
            j->refused = "a symbolic link";
        return;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        j->rc = -errno;
    } else if (!S_ISREG(st.st_mode)) {
        j->refused = s_kind(st.st_mode);
        j->rc = -EINVAL;
    } else {
        j->dev = st.st_dev;
        j->ino = st.st_ino;
        j->rc = s_hash_fd(fd, j->hash);
        if (j->rc == 0)
            j->rc = j->sp->reader(j->sp->reader_arg, fd, j->name, &j->res);
    }
    close(fd);
}

/* ---- committing on the loop ----------------------------------------------------------------- */

static void s_unref(as_spool_t *sp);

/* A free name in done/ for name: name itself, else "stem (2).ext", "stem (3).ext", ... so that
 * nothing the office dropped is overwritten. */
static void s_done_name(as_spool_t *sp, const char *name, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s", name);
    const char *dot = strrchr(name, '.');
    int stem = dot && dot != name ? (int)(dot - name) : (int)strlen(name);
    struct stat st;
    for (int i = 2; fstatat(sp->done_fd, out, &st, AT_SYMLINK_NOFOLLOW) == 0 && i < 10000; i++)
        snprintf(out, outlen, "%.*s (%d)%s", stem, name, i, name + stem);
}

/* Whether name in the spool is still the file that was read (not swapped since). */
static bool s_same_file(as_spool_t *sp, const s_job_t *j)
{
    struct stat st;
    return fstatat(sp->dfd, j->name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
           st.st_dev == j->dev && st.st_ino == j->ino;
}

static s_seen_t *s_find(as_spool_t *sp, const char *name)
{
    for (s_seen_t *s = sp->seen; s; s = s->next)
        if (strcmp(s->name, name) == 0)
            return s;
    return NULL;
}

static void s_forget(as_spool_t *sp, const char *name)
{
    for (s_seen_t **pp = &sp->seen; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->name, name) == 0) {
            s_seen_t *dead = *pp;
            *pp = dead->next;
            free(dead);
            return;
        }
    }
}

static void s_retry_later(as_spool_t *sp, const char *name, uint64_t ms)
{
    for (s_seen_t *s = sp->seen; s; s = s->next)
        if (strcmp(s->name, name) == 0)
            s->retry_ms = uv_now(sp->loop) + ms;
}

static void s_after_work(uv_work_t *req, int status)
{
    s_job_t *j = req->data;
    as_spool_t *sp = j->sp;
    sp->job = NULL;
    if (status == UV_ECANCELED || sp->closing)
        goto out; /* stopping: the file stays in the spool and is read again next run */
    if (j->refused) {
        s_seen_t *s = s_find(sp, j->name);
        if (s)
            s->refused = true;
        s_refuse(j->name, j->refused, "leaving it where it is");
        goto out;
    }
    if (j->rc == AS_E_PARSE || j->rc == AS_E_ENCODING) {
        AS_WARN("spool",
                "%s cannot be read as a spreadsheet (%s); taking it with a file-level "
                "error so that it is not tried again",
                j->name, as_strerror(j->rc));
        s_result_free(&j->res);
        as_spool_result_add_error(&j->res, 0, "", j->name, "文件无法读取（格式或编码错误）",
                                  "the file cannot be read (format or encoding)");
    } else if (j->rc != 0) {
        AS_WARN("spool", "cannot read %s: %s; trying again in a few seconds", j->name,
                as_strerror(j->rc));
        s_retry_later(sp, j->name, 5000);
        goto out;
    }
    size_t events = j->res.n;
    int rc = as_outbox_put_file(sp->ob, j->hash, j->name, j->res.items, j->res.n);
    if (rc == AS_E_EXISTS) {
        char before[MAX_NAME + 1] = "";
        as_outbox_file_taken(sp->ob, j->hash, before, sizeof before);
        AS_INFO("spool",
                "%s has the same content as %s, taken before; moving it to done/ "
                "without adding its rows again",
                j->name, before);
        events = 0;
    } else if (rc != 0) {
        AS_ERROR("spool",
                 "cannot commit %s to the outbox (%s); leaving it in the spool and "
                 "trying again in a few seconds",
                 j->name, as_strerror(rc));
        s_retry_later(sp, j->name, 5000);
        goto out;
    }
    /* From here the rows are durable: the rest only tidies the spool, and is redone from the
     * record of the taken file if we die half-way. */
    char dest[MAX_NAME + 32], errname[MAX_NAME + 64];
    s_done_name(sp, j->name, dest, sizeof dest);
    if (j->res.n_errs) {
        snprintf(errname, sizeof errname, "%s.errors.csv", dest);
        int erc = as_spool_write_errors(&j->res, sp->done_fd, errname);
        if (erc)
            AS_ERROR("spool", "cannot write done/%s: %s; the rows were rejected all the same",
                     errname, strerror(-erc));
    }
    if (!s_same_file(sp, j)) {
        AS_WARN("spool",
                "%s was replaced in the spool after it was read: its rows are taken, the new "
                "%s is left where it is and looked at again",
                j->name, j->name);
    } else if (renameat(sp->dfd, j->name, sp->done_fd, dest) != 0) {
        AS_ERROR("spool", "cannot move %s to done/: %s; it will be found again and moved then",
                 j->name, strerror(errno));
        s_retry_later(sp, j->name, 5000);
    } else {
        s_forget(sp, j->name);
        fsync(sp->done_fd);
        fsync(sp->dfd);
    }
    sp->taken++;
    if (rc == 0)
        AS_INFO("spool", "took %s: %zu rows into the outbox, %zu values rejected%s", j->name,
                events, j->res.n_errs, j->res.n_errs ? " (listed in done/NAME.errors.csv)" : "");
    if (sp->taken_cb)
        sp->taken_cb(sp->taken_arg, j->name, events, j->res.n_errs);
out:
    s_result_free(&j->res);
    free(j);
    if (sp->closing)
        s_unref(sp);
    else
        s_scan(sp); /* the next complete file, if any */
}

/* ---- watching ------------------------------------------------------------------------------- */

static bool s_ignored(const char *name)
{
    size_t n = strlen(name);
    return name[0] == '.' || strncmp(name, "~$", 2) == 0 ||
           (n >= 4 && strcmp(name + n - 4, ".tmp") == 0) || n > MAX_NAME;
}

static void s_start_job(as_spool_t *sp, s_seen_t *s)
{
    s_job_t *j = calloc(1, sizeof *j);
    if (!j)
        return;
    j->sp = sp;
    j->req.data = j;
    snprintf(j->name, sizeof j->name, "%s", s->name);
    if (uv_queue_work(sp->loop, &j->req, s_work, s_after_work) != 0) {
        free(j);
        return;
    }
    sp->job = j;
}

static void s_scan(as_spool_t *sp)
{
    if (sp->closing)
        return;
    s_check_done(sp);
    int lfd = openat(sp->dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = lfd >= 0 ? fdopendir(lfd) : NULL;
    if (!d) {
        if (lfd >= 0)
            close(lfd);
        AS_WARN("spool", "cannot list %s: %s; trying again at the next scan", sp->dir,
                strerror(errno));
        return;
    }
    uint64_t now = uv_now(sp->loop);
    for (s_seen_t *s = sp->seen; s; s = s->next)
        s->mark = false;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (s_ignored(de->d_name))
            continue;
        struct stat st;
        if (strcmp(de->d_name, "done") == 0 ||
            fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue; /* done/ is checked by s_check_done() */
        s_seen_t *s = s_find(sp, de->d_name);
        if (!s) {
            if (!(s = calloc(1, sizeof *s)))
                break;
            snprintf(s->name, sizeof s->name, "%s", de->d_name);
            s->size = -1;
            s->next = sp->seen;
            sp->seen = s;
        }
        s->mark = true;
        if (!S_ISREG(st.st_mode)) { /* a link, folder, pipe or device: never opened */
            if (!s->refused) {
                s->refused = true;
                s_refuse(s->name, s_kind(st.st_mode), "leaving it where it is");
            }
            continue;
        }
        s->refused = false; /* a regular file now (replaced): read it as any other */
        if (st.st_size != s->size || st.st_mtim.tv_sec != s->mtime.tv_sec ||
            st.st_mtim.tv_nsec != s->mtime.tv_nsec) {
            s->size = st.st_size;
            s->mtime = st.st_mtim;
            s->since_ms = now;
        }
    }
    closedir(d);
    /* forget what disappeared; pick the oldest stable file */
    s_seen_t *pick = NULL;
    bool waiting = false;
    for (s_seen_t **pp = &sp->seen; *pp;) {
        s_seen_t *s = *pp;
        if (!s->mark && (!sp->job || strcmp(sp->job->name, s->name) != 0)) {
            *pp = s->next;
            free(s);
            continue;
        }
        pp = &s->next;
        if (sp->job && strcmp(sp->job->name, s->name) == 0)
            continue;
        if (now < s->retry_ms || s->refused)
            continue;
        if (now - s->since_ms >= sp->stable_ms) {
            if (!pick || s->since_ms < pick->since_ms)
                pick = s;
        } else
            waiting = true;
    }
    if (pick && !sp->job)
        s_start_job(sp, pick);
    /* a file still growing gets another look soon rather than at the next periodic scan */
    if (waiting && !uv_is_active((uv_handle_t *)&sp->settle_timer))
        uv_timer_start(&sp->settle_timer, s_settle_cb, sp->stable_ms, 0);
}

static void s_settle_cb(uv_timer_t *t)
{
    s_scan(t->data);
}

static void s_scan_cb(uv_timer_t *t)
{
    s_scan(t->data);
}

static void s_fs_cb(uv_fs_event_t *h, const char *filename, int events, int status)
{
    as_spool_t *sp = h->data;
    /* look once things have had time to settle; the look itself checks stability */
    if (!sp->closing)
        uv_timer_start(&sp->settle_timer, s_settle_cb, sp->stable_ms + 10, 0);
}

/* ---- life cycle ----------------------------------------------------------------------------- */

/* done/ replaced since the start (by a link, say) is said once and counted; the files keep going
 * into the folder opened at the start, which is never looked up by name again. */
static void s_check_done(as_spool_t *sp)
{
    struct stat st;
    bool same = fstatat(sp->dfd, "done", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode) &&
                st.st_dev == sp->done_dev && st.st_ino == sp->done_ino;
    if (same || sp->done_swapped_warned)
        return;
    sp->done_swapped_warned = true;
    as_refusal_count(AS_REFUSE_SPOOL_NOT_REGULAR);
    AS_WARN("spool",
            "%s/done is no longer the folder opened at the start (replaced, perhaps by a "
            "symbolic link): refused, never followed; taken files still go into the original "
            "done/ folder until the collector is restarted",
            sp->dir);
}

/* Opens dir/name as a folder without following a link (mkdirat first when create). */
static int s_open_dir(int at, const char *name, bool create)
{
    if (create && mkdirat(at, name, 0750) != 0 && errno != EEXIST)
        return -errno;
    int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    return fd >= 0 ? fd : -errno;
}

as_spool_t *as_spool_new(uv_loop_t *loop, const char *dir, as_outbox_t *ob,
                         as_spool_reader_fn reader, void *reader_arg, const as_spool_opts_t *opts,
                         int *err)
{
    as_spool_t *sp = calloc(1, sizeof *sp);
    if (!sp) {
        *err = AS_E_NOMEM;
        return NULL;
    }
    sp->dfd = sp->done_fd = -1;
    sp->loop = loop;
    sp->ob = ob;
    sp->reader = reader;
    sp->reader_arg = reader_arg;
    sp->scan_ms = opts && opts->scan_ms ? opts->scan_ms : 1000;
    sp->stable_ms = opts && opts->stable_ms ? opts->stable_ms : 300;
    if (!(sp->dir = strdup(dir))) {
        *err = AS_E_NOMEM;
        goto fail;
    }
    if ((*err = s_open_dir(AT_FDCWD, dir, true)) < 0) {
        AS_ERROR("spool", "cannot open the spool folder %s: %s%s", dir, strerror(-*err),
                 *err == -ELOOP || *err == -ENOTDIR
                     ? " (it must be a folder itself, not a symbolic link to one: give its real "
                       "path)"
                     : "");
        goto fail;
    }
    sp->dfd = *err;
    if ((*err = s_open_dir(sp->dfd, "done", true)) < 0) {
        AS_ERROR("spool", "cannot open %s/done: %s%s", dir, strerror(-*err),
                 *err == -ELOOP || *err == -ENOTDIR
                     ? " (done/ is a symbolic link or not a folder: refusing to follow it; "
                       "remove it and start again, the collector creates done/ itself)"
                     : "");
        if (*err == -ELOOP || *err == -ENOTDIR)
            as_refusal_count(AS_REFUSE_SPOOL_NOT_REGULAR);
        goto fail;
    }
    sp->done_fd = *err;
    *err = 0;
    struct stat st;
    if (fstat(sp->done_fd, &st) == 0)
        sp->done_dev = st.st_dev, sp->done_ino = st.st_ino;
    uv_timer_init(loop, &sp->scan_timer);
    uv_timer_init(loop, &sp->settle_timer);
    uv_fs_event_init(loop, &sp->watch);
    sp->scan_timer.data = sp->settle_timer.data = sp->watch.data = sp;
    sp->refs = 3;
    /* The fs events only make us look sooner; the periodic scan alone would be enough. */
    int rc = uv_fs_event_start(&sp->watch, s_fs_cb, dir, 0);
    if (rc)
        AS_WARN("spool", "cannot watch %s (%s); relying on the scan every %llu ms", dir,
                uv_strerror(rc), (unsigned long long)sp->scan_ms);
    uv_timer_start(&sp->scan_timer, s_scan_cb, 0, sp->scan_ms);
    AS_INFO("spool", "watching %s (complete files are taken, then moved to done/)", dir);
    return sp;
fail:
    if (sp->dfd >= 0)
        close(sp->dfd);
    free(sp->dir);
    free(sp);
    return NULL;
}

static void s_unref(as_spool_t *sp)
{
    if (--sp->refs > 0)
        return;
    while (sp->seen) {
        s_seen_t *n = sp->seen->next;
        free(sp->seen);
        sp->seen = n;
    }
    close(sp->dfd);
    close(sp->done_fd);
    free(sp->dir);
    free(sp);
}

static void s_closed(uv_handle_t *h)
{
    s_unref(h->data);
}

void as_spool_destroy(as_spool_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    as_spool_t *sp = *self_p;
    *self_p = NULL;
    sp->closing = true;
    if (sp->job)
        sp->refs++; /* released in s_after_work */
    uv_close((uv_handle_t *)&sp->watch, s_closed);
    uv_close((uv_handle_t *)&sp->scan_timer, s_closed);
    uv_close((uv_handle_t *)&sp->settle_timer, s_closed);
}

void as_spool_on_taken(as_spool_t *sp, as_spool_taken_cb cb, void *arg)
{
    sp->taken_cb = cb;
    sp->taken_arg = arg;
}

uint64_t as_spool_taken(const as_spool_t *sp)
{
    return sp->taken;
}
