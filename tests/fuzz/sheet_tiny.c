/* sheet_tiny: common/sheet.c with buffers of a few bytes, the reader fuzz_sheet runs: inputs of a
 * few KB then cross every refill, growth, GB18030 chunk and the UTF-8 settling (and ASan need
 * not poison a 4 MiB buffer for each input: 10,000 inputs/s instead of 120). Its as_sheet_*
 * functions take the place of the library's. */
#define BUF_INIT   64u
#define RAW_CHUNK  16u
#define MIN_FREE   16u
#define UTF8_CHECK 256u
#include "sheet.c"
