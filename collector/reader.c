/* reader: spool file → validated events (the spreadsheet reader is common/sheet.h). */
#include "reader.h"
#include "err.h"

#include <errno.h>

/* Until common/sheet.h lands in the tree this reader declines every file with -ENOSYS, which the
 * spool treats as "try again later": files wait in the spool, nothing is taken half-read. */
int as_reader_read(void *arg, const char *path, const char *name, as_spool_result_t *r)
{
    (void)arg, (void)path, (void)name, (void)r;
    return -ENOSYS;
}
