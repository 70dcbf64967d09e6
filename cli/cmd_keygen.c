/* aidstat keygen: a CURVE key pair for a collector or the aggregator, in the simple file format
 * both daemons read ("public = <z85>" / "secret = <z85>"). */
#include "config.h"
#include "err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

int as_cmd_keygen(int argc, char **argv);

typedef struct {
    char out[1024];
    char county[16];
} s_opts_t;

#define F(field) AS_CFG_FIELD(s_opts_t, field)
static const as_cfg_entry_t s_table[] = {
    {"out", AS_CFG_STR, "",
     "write the key pair to this file (mode 0600, must not exist); "
     "empty: print it",
     F(out)},
    {"county", AS_CFG_STR, "", "for a collector: also print its authorized-keys line", F(county)},
    AS_CFG_END,
};

static const char *s_synopsis =
    "usage: aidstat keygen [--out FILE] [--county CODE]\n\nA new CURVE key pair. The file "
    "holds two lines, 'public = <40 Z85 characters>' and 'secret = <40 Z85 characters>'; give "
    "it to the daemon with --curve-secret FILE. For a collector, add '<county> <public key>' to "
    "the aggregator's authorized-keys file; give the aggregator's public key to every collector "
    "(--aggregator-key).";

int as_cmd_keygen(int argc, char **argv)
{
    s_opts_t o;
    char err[600];
    int rc = as_config_load(s_table, &o, &argc, argv, s_synopsis, err, sizeof err);
    if (rc == 1)
        return 0;
    if (rc) {
        fprintf(stderr, "aidstat keygen: %s\n", err);
        return 2;
    }
    if (argc > 1) {
        fprintf(stderr, "aidstat keygen: unexpected argument '%s' (see --help)\n", argv[1]);
        return 2;
    }
    char pub[41], sec[41];
    if (zmq_curve_keypair(pub, sec) != 0) {
        fprintf(stderr, "aidstat keygen: this libzmq has no CURVE support: %s\n",
                zmq_strerror(zmq_errno()));
        return 1;
    }
    char text[256];
    snprintf(text, sizeof text,
             "# aidstat CURVE key pair (aidstat keygen); keep this file secret\n"
             "public = %s\nsecret = %s\n",
             pub, sec);
    if (!o.out[0]) {
        fputs(text, stdout);
        struct stat st; /* `aidstat keygen > FILE` makes FILE with the umask: say so */
        if (fstat(STDOUT_FILENO, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 077))
            fprintf(stderr,
                    "aidstat keygen: warning: the secret key went to a file that group or others "
                    "can read (mode %04o); the daemons refuse such a file: run chmod 600 on it, "
                    "or use --out FILE (created 0600)\n",
                    (unsigned)(st.st_mode & 07777));
    } else {
        /* exclusive, never through a link, 0600 whatever the umask */
        int fd = open(o.out, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd >= 0 && fchmod(fd, 0600) != 0) {
            fprintf(stderr, "aidstat keygen: cannot make %s private: %s\n", o.out, strerror(errno));
            close(fd);
            unlink(o.out);
            return 1;
        }
        if (fd < 0) {
            fprintf(stderr, "aidstat keygen: cannot create %s: %s\n", o.out, strerror(errno));
            return 1;
        }
        size_t len = strlen(text);
        if (write(fd, text, len) != (ssize_t)len || fsync(fd) != 0 || close(fd) != 0) {
            fprintf(stderr, "aidstat keygen: cannot write %s: %s\n", o.out, strerror(errno));
            return 1;
        }
        printf("public = %s\n", pub);
        fprintf(stderr, "key pair written to %s\n", o.out);
    }
    if (o.county[0])
        printf("# for the aggregator's authorized keys:\n%s %s\n", o.county, pub);
    return 0;
}
