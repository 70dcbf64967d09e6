#!/usr/bin/env python3
# ctest-labels: integration browser
"""The dashboard in headless Chromium (driven over the DevTools protocol): it loads with an empty
ledger, events are then delivered by a real collector, and the page shows the new provincial
totals without a reload (a marker set in the page survives). A screenshot is written to the build
folder, and to docs/dashboard.png when AS_SCREENSHOT_DOCS=1."""
import os
import shutil
import time

from aidstat_testlib import SOURCE, gen_csv, main, wait_for
from cdp import CHROMIUM, Browser

YEAR = int(time.strftime("%Y"))
COUNTY = 360730


def value(b, measure):
    return b.eval(f"(document.getElementById('m-{measure}')||{{dataset:{{}}}}).dataset.value")


def test(c):
    if not os.access(CHROMIUM, os.X_OK):
        raise AssertionError(f"{CHROMIUM} is missing: install the Debian package chromium")
    c.start_aggregator()
    c.start_collector(COUNTY)
    b = Browser()
    try:
        b.navigate(f"http://{c.http}/?year={YEAR}")
        wait_for(lambda: value(b, "activities") == "0", 30, "the empty totals on the page")
        wait_for(lambda: "实时" in b.eval("document.getElementById('live').textContent"), 30,
                 "the page to follow /api/stream")
        b.eval("window.__aidstat_marker = 'no-reload'")

        c.drop(COUNTY, "activities.csv", gen_csv([COUNTY], 400, YEAR, seed=7))
        wait_for(lambda: all(x["backlog"] == 0 for x in c.status_json()["collectors"])
                 and c.query_json(YEAR)["total"]["activities"] > 0, 60, "delivery")
        total = c.query_json(YEAR)["total"]
        for m in ("activities", "funds_fen", "beneficiaries", "organisations"):
            wait_for(lambda: value(b, m) == str(total[m]), 30, f"{m} = {total[m]} on the page")
        assert b.eval("window.__aidstat_marker") == "no-reload", "the page was reloaded"
        # the table by city and the trend follow (refreshed after the stream message)
        wait_for(lambda: b.eval("document.querySelector(\"#area-table tr[data-key='360700']\") "
                                "!== null"), 30, "the city row in the table")
        wait_for(lambda: b.eval("document.querySelectorAll('#trend rect').length") == 12, 10,
                 "the monthly chart")
        wait_for(lambda: b.eval("document.querySelector(\"#collectors tr[data-county='360730']\")"
                                " !== null"), 15, "the collector in the liveness table")
        time.sleep(1.5)  # let the flash of the changed cards fade for the picture
        shot = os.path.join(os.environ.get("AS_BUILD_DIR", c.dir), "dashboard.png")
        b.screenshot(shot)
        assert os.path.getsize(shot) > 10000
        if os.environ.get("AS_SCREENSHOT_DOCS") == "1":
            os.makedirs(os.path.join(SOURCE, "docs"), exist_ok=True)
            shutil.copy(shot, os.path.join(SOURCE, "docs", "dashboard.png"))
    finally:
        b.quit()
    assert c.aggregator.stop() == 0


if __name__ == "__main__":
    main(test)
