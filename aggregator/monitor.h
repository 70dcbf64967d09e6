/* monitor: what the provincial office watches beside the totals — nil reports (a county-month
 * without activity), which county reported which month, and the events flagged for review — kept
 * in a small LMDB environment of its own (DATA/monitor), filled by following the ledger's event
 * log, so the ledger stays as it is. */
#ifndef AS_MONITOR_H
#define AS_MONITOR_H

#include "ledger.h"
#include "measures_json.h"

#include <jansson.h>
#include <stdint.h>

typedef struct as_monitor_s as_monitor_t;

/* Opens (creating if needed) the monitor store in directory dir. no_sync: tests only.
 * Returns it or NULL with *err set (AS_E_DB, -errno). Caller owns it. */
as_monitor_t *as_monitor_new(const char *dir, bool no_sync, int *err);

/* Closes it; safe on NULL and twice. */
void as_monitor_destroy(as_monitor_t **self_p);

/* Records that county had no activity in year-month (durable on return). Returns 0,
 * AS_E_INVALID (month not 1..12, county not a county of the province), AS_E_DB. */
int as_monitor_put_nil(as_monitor_t *m, uint32_t county, uint32_t year, uint32_t month);

/* Reads the ledger's event log from where it stopped last time up to its newest sequence and
 * records reported months and flagged events, in one durable transaction. Cheap when nothing is
 * new; call it after commits and before answering. Safe from any thread: catch-ups run one at a
 * time. Returns 0 or a negative error. */
int as_monitor_catch_up(as_monitor_t *m, as_ledger_t *l);

/* A catch-up on another thread, so that its fsync does not stall the caller's loop: call
 * as_monitor_async_begin on the loop thread before handing the work over (it holds the ledger's
 * map size, as_ledger_hold_map, until the work's reads are over), then as_monitor_async_run on
 * the worker. as_monitor_destroy waits for every begun catch-up to end; destroy the monitor
 * before the ledger. as_monitor_async_run returns as as_monitor_catch_up. */
void as_monitor_async_begin(as_monitor_t *m, as_ledger_t *l);
int as_monitor_async_run(as_monitor_t *m, as_ledger_t *l);

/* Newest event-log sequence read so far. */
uint64_t as_monitor_seq(as_monitor_t *m);

/* The completeness grid of year over every county of the province:
 * {"year":Y,"months":["Y-01",...],"counties":[{"code":"360730","name":"宁都县","city":"360700",
 *   "city_name":"赣州市","cells":["reported"|"nil"|"silent"|"future",...],"reported":n,"nil":n,
 *   "silent":n}], "summary":{"reported":n,"nil":n,"silent":n}}.
 * A month after today's month (today = yyyymmdd) is "future". Returns a new reference or NULL. */
json_t *as_monitor_completeness_json(as_monitor_t *m, uint32_t year, uint32_t today);

/* The newest flagged events (at most limit), newest first, optionally only those of year
 * (0: all): {"total":n,"flags":[{"seq":..,"event_id":..,"county":..,"county_name":..,
 * "org_code":..,"org_name":..,"date":"YYYY-MM-DD","flags":["unregistered",...],"funds_fen":..,
 * "beneficiaries":..,"commit_ms":..}]}. Returns a new reference or NULL. */
json_t *as_monitor_flags_json(as_monitor_t *m, uint32_t year, size_t limit);

/* The JSON kept for one flagged event (an element of as_monitor_flags_json's "flags", with
 * "id" and "source_file" too; when a text of the event is not valid UTF-8, only seq, id, county
 * and flags), written into o (its buffer reused). Returns 0 or AS_E_NOMEM. */
int as_monitor_flag_json(const as_log_entry_t *e, as_jtext_t *o);

/* Wire name of one AS_FLAG_* bit ("unregistered"), NULL for an unknown bit. */
const char *as_flag_name(uint32_t bit);

#endif
