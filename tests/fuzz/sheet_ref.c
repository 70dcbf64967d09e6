/* sheet_ref: common/sheet.c with buffers that hold a fuzz input whole, its functions renamed
 * ref_as_sheet_*: the reference fuzz_sheet compares the streaming reader of sheet_tiny.c with. */
#define BUF_INIT   (64u << 10)
#define RAW_CHUNK  (64u << 10)
#define MIN_FREE   (8u << 10)
#define UTF8_CHECK (64u << 10)

#define as_sheet_open           ref_as_sheet_open
#define as_sheet_next           ref_as_sheet_next
#define as_sheet_line           ref_as_sheet_line
#define as_sheet_error          ref_as_sheet_error
#define as_sheet_last_error     ref_as_sheet_last_error
#define as_sheet_warnings       ref_as_sheet_warnings
#define as_sheet_format         ref_as_sheet_format
#define as_sheet_encoding       ref_as_sheet_encoding
#define as_sheet_bytes          ref_as_sheet_bytes
#define as_sheet_destroy        ref_as_sheet_destroy
#define as_sheet_read_events    ref_as_sheet_read_events
#define as_sheet_open_fd        ref_as_sheet_open_fd
#define as_sheet_read_events_fd ref_as_sheet_read_events_fd
#include "sheet.c"
