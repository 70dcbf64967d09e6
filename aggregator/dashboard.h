/* dashboard: the provincial dashboard, one HTML page (inline CSS and JavaScript, in Chinese)
 * carried in the binary and served at "/"; it fetches the /api endpoints and follows /api/stream.
 */
#ifndef AS_DASHBOARD_H
#define AS_DASHBOARD_H

#include <stddef.h>

/* The page, UTF-8, NUL-terminated; its length without the NUL in *len. Static, borrowed. */
const char *as_dashboard_html(size_t *len);

#endif
