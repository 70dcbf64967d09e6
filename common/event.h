/* event: the activity event shared by collector and aggregator, and its validation from a
 * spreadsheet row (column name → text) into a validated event or a list of precise errors. */
#ifndef AS_EVENT_H
#define AS_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AS_ID_LEN       16   /* wire event id: county (3 bytes BE) + 13 bytes BLAKE2b */
#define AS_EVENT_ID_MAX 64   /* office's event id, characters (bytes, ASCII expected) */
#define AS_NAME_MAX     255  /* org_name, bytes of UTF-8 */
#define AS_NOTE_MAX     2047 /* note, bytes of UTF-8; longer notes are rejected */
#define AS_CODE_LEN     18   /* unified social credit code */
#define AS_VILLAGE_LEN  12   /* statistical village code */

/* Enum values are the numbers of proto/aidstat/v1/event.proto; 0 means "not given". */
typedef enum {
    AS_AREA_NONE = 0,
    AS_AREA_DEEP_VILLAGE,
    AS_AREA_INDUSTRY,
    AS_AREA_EDUCATION,
    AS_AREA_HEALTH,
    AS_AREA_RELOCATION,
    AS_AREA_CAPACITY_CARE,
    AS_AREA_OTHER,
    AS_AREA_COUNT
} as_area_t;

typedef enum {
    AS_PROJECT_NONE = 0,
    AS_PROJECT_PAIRING,
    AS_PROJECT_REVITALIZATION,
    AS_PROJECT_SOCIAL_WORK,
    AS_PROJECT_VOLUNTEER_CONTEST,
    AS_PROJECT_COUNT
} as_project_t;

typedef enum {
    AS_GROUP_NONE = 0,
    AS_GROUP_REGISTERED_POOR,
    AS_GROUP_LOW_INCOME,
    AS_GROUP_EXTREME_POOR,
    AS_GROUP_DISABLED,
    AS_GROUP_LEFT_BEHIND_CHILDREN,
    AS_GROUP_ELDERLY,
    AS_GROUP_WOMEN,
    AS_GROUP_OTHER,
    AS_GROUP_COUNT
} as_group_t;

typedef enum {
    AS_FUNDING_NONE = 0,
    AS_FUNDING_GOVERNMENT_PURCHASE,
    AS_FUNDING_CHARITY,
    AS_FUNDING_OWN,
    AS_FUNDING_OTHER,
    AS_FUNDING_COUNT
} as_funding_t;

/* Review flags (bit values of the proto's Flag enum). */
enum {
    AS_FLAG_CHECK_CHAR_FAILED = 1,
    AS_FLAG_UNREGISTERED = 2,
    AS_FLAG_ONLINE_UNQUALIFIED = 4,
    AS_FLAG_OUTLIER = 8,
    AS_FLAG_CORRECTION_TARGET_MISSING = 16,
    AS_FLAG_DUPLICATE_ACROSS_COUNTIES = 32,
    AS_FLAG_AMENDMENT = 64,
};

/* A validated activity event. A plain value: no pointers, safe to copy with memcpy. */
typedef struct {
    uint8_t id[AS_ID_LEN];              /* wire id, see as_event_derive_id() */
    char event_id[AS_EVENT_ID_MAX + 1]; /* as the office gave it; "" when derived */
    uint32_t county;                    /* 6-digit county-level code, e.g. 360730 */
    char org_code[AS_CODE_LEN + 1];     /* credit code, upper case */
    char org_name[AS_NAME_MAX + 1];
    uint8_t area;                     /* as_area_t */
    uint8_t project;                  /* as_project_t */
    uint8_t group;                    /* as_group_t */
    uint8_t funding;                  /* as_funding_t */
    uint32_t date;                    /* yyyymmdd */
    char village[AS_VILLAGE_LEN + 1]; /* "" when not given */
    bool deep_village;
    bool online_fundraising;
    bool retract;
    bool has_correction;              /* correction_of is set */
    uint8_t correction_of[AS_ID_LEN]; /* id of the replaced/withdrawn event */
    uint64_t beneficiaries;
    uint64_t registered_poor;
    int64_t funds_fen;
    int64_t goods_fen;
    uint64_t volunteers;
    uint64_t volunteer_tenths; /* volunteer hours × 10 */
    uint64_t social_workers;
    uint64_t persons_lifted;
    uint64_t jobs;
    uint64_t trainees;
    int64_t income_fen;
    uint32_t flags; /* AS_FLAG_* */
    char note[AS_NOTE_MAX + 1];
    char source_file[128]; /* spool file name (basename), "" if none */
    uint32_t source_row;   /* 1-based data row in that file */
} as_event_t;

/* One validation error: which column, what value (truncated), and why in both languages. */
typedef struct {
    char column[48];     /* English column name, or "" for a row-level error */
    char value[96];      /* the offending value, truncated to fit, UTF-8 safe */
    char reason_zh[160]; /* 中文原因 */
    char reason_en[160]; /* English reason */
} as_field_error_t;

#define AS_MAX_ROW_ERRORS 16

/* The errors of one row (at most AS_MAX_ROW_ERRORS are kept; n counts them all). */
typedef struct {
    size_t n;
    as_field_error_t e[AS_MAX_ROW_ERRORS];
} as_row_errors_t;

/* Validation context: what a row is checked against. */
typedef struct {
    uint32_t county; /* the collector's county; 0 accepts any county of the province */
    uint32_t today;  /* yyyymmdd of "today" (+08:00); dates after it are rejected */
    /* Optional registry look-up: returns true when the credit code stands in the organisation
     * registry (a code failing its check character is then accepted and flagged). May be NULL. */
    bool (*in_registry)(void *ctx, const char *code);
    void *registry_ctx;
    /* Validation only (aidstat check): as_event_from_row leaves ev->id and ev->correction_of
     * zero, hashing only when a rule needs an id (a correction row without an event_id). */
    bool skip_id;
} as_validate_ctx_t;

/* Canonical English column names, in template order; AS_COL_COUNT of them. */
typedef enum {
    AS_COL_EVENT_ID = 0,
    AS_COL_COUNTY_CODE,
    AS_COL_ORG_CREDIT_CODE,
    AS_COL_ORG_NAME,
    AS_COL_AREA,
    AS_COL_PROJECT,
    AS_COL_ACTIVITY_DATE,
    AS_COL_VILLAGE_CODE,
    AS_COL_DEEP_POVERTY_VILLAGE,
    AS_COL_BENEFICIARIES,
    AS_COL_REGISTERED_POOR,
    AS_COL_BENEFICIARY_GROUP,
    AS_COL_FUNDS_YUAN,
    AS_COL_GOODS_YUAN,
    AS_COL_FUNDING_SOURCE,
    AS_COL_ONLINE_FUNDRAISING,
    AS_COL_VOLUNTEERS,
    AS_COL_VOLUNTEER_HOURS,
    AS_COL_SOCIAL_WORKERS,
    AS_COL_PERSONS_LIFTED,
    AS_COL_JOBS,
    AS_COL_TRAINEES,
    AS_COL_INCOME_INCREASE_YUAN,
    AS_COL_NOTE,
    AS_COL_CORRECTION_OF,
    AS_COL_RETRACT,
    AS_COL_COUNT
} as_column_t;

/* English and Chinese header names of a column. */
const char *as_column_name_en(as_column_t c);
const char *as_column_name_zh(as_column_t c);

/* Maps a header cell (English or Chinese, surrounding spaces ignored) to its column; returns -1
 * for an unknown header. */
int as_column_lookup(const char *header);

/* A row as text cells indexed by as_column_t; NULL or "" means absent. Borrowed pointers. */
typedef struct {
    const char *cell[AS_COL_COUNT];
    size_t len[AS_COL_COUNT];
} as_row_t;

/* Validates one row into *ev (every field set; bytes after a string's NUL are unspecified, so
 * compare events field by field, not with memcmp; set source_file/source_row afterwards). On
 * success returns 0 with errs->n == 0; when any field is bad returns AS_E_INVALID with every
 * error found in *errs (errs->n counts them all, the first AS_MAX_ROW_ERRORS are kept), in
 * column order. Derives the wire id (as_event_derive_id) and resolves correction_of to a wire id
 * unless ctx->skip_id. Cells are trimmed; numbers take no sign, no exponent and no more decimals
 * than allowed, and thousands separators only in groups of three ("1,234.50"). No allocation. */
int as_event_from_row(const as_row_t *row, const as_validate_ctx_t *ctx, as_event_t *ev,
                      as_row_errors_t *errs);

/* Re-checks an event received over the wire (never trust the edge): ranges, enums, codes,
 * cross-field rules, the note guard, and that the id's first 3 bytes are ev->county. A credit
 * code failing only its check character passes when ctx->in_registry says it is registered or,
 * with no registry at hand, when the event already carries AS_FLAG_CHECK_CHAR_FAILED (it stays
 * flagged for review). Same error reporting as as_event_from_row. */
int as_event_validate(const as_event_t *ev, const as_validate_ctx_t *ctx, as_row_errors_t *errs);

/* Computes ev->id: county (3 bytes, big-endian), then with ev->event_id given the id that text
 * names (as_event_id_for: 0xff, series, number, hash). Else
 * the activity date's day (days from 2000-01-01, big-endian) and the hash of the event's
 * normalised content: canonical values, not the row's text ("1.5" and "1.50" alike), every field
 * but the note, the flags, source_file and source_row (an office that fixes a note and drops the
 * file again counts the activity once). The day first keeps a county's ids of one period
 * together, so the ledger's dedup records of a group land on few pages (a random id put every
 * event on a page of its own). */
void as_event_derive_id(as_event_t *ev);

/* Computes the wire id that an office's event id string names within a county (used for
 * correction_of, and by as_event_derive_id for a given event_id). A 32-hex-digit string whose
 * first 3 bytes are the county is taken as a wire id itself (so a correction may name an event
 * whose id was derived); any other text gives: county, 0xff, a byte of the hash of the text
 * before its trailing digits, that trailing number (up to 12 digits, 5 bytes big-endian), and
 * 6 bytes of BLAKE2b over "CCCCCC|text" — an office's numbered series sorts by number. */
void as_event_id_for(uint32_t county, const char *event_id, uint8_t out[AS_ID_LEN]);

/* What as_note_guard() found. */
enum { AS_GUARD_NONE = 0, AS_GUARD_RESIDENT_ID = 1, AS_GUARD_MOBILE = 2 };

/* The personal-data guard of a note: looks for a GB 11643 resident ID number (17 digits and a
 * MOD 11-2 check character, with a plausible birth date) or a mainland mobile number (11 digits
 * 1[3-9]..., also written 3-4-4 with blanks or dashes, or after +86), not part of a longer run
 * of digits; full-width digits count. Returns AS_GUARD_NONE or what it found first. */
int as_note_guard(const char *text, size_t len);

/* Formats a wire id as 32 lower-case hex digits plus NUL into out[33]. */
void as_id_to_hex(const uint8_t id[AS_ID_LEN], char out[33]);

/* Enum names: English wire names ("deep_village") and Chinese ("深度贫困村"). */
const char *as_area_name(as_area_t a);
const char *as_area_name_zh(as_area_t a);
const char *as_project_name(as_project_t p);
const char *as_project_name_zh(as_project_t p);
const char *as_group_name(as_group_t g);
const char *as_group_name_zh(as_group_t g);
const char *as_funding_name(as_funding_t f);
const char *as_funding_name_zh(as_funding_t f);

/* Today's date as yyyymmdd in China Standard Time (+08:00). */
uint32_t as_today_cst(void);

#endif
