#!/usr/bin/env python3
# ctest-labels: integration browser security
"""The dashboard with a bearer token (--http-token), in headless Chromium: the page first asks
for the token, takes it once from its form as /?token=, answers with a redirect to / that sets
an HttpOnly, SameSite=Strict cookie (the address bar and the page's script never hold the token
afterwards), and the dashboard then loads its figures and follows /api/stream with that cookie;
the totals that a real collector delivers show up without a reload."""
import os
import time

from aidstat_testlib import gen_csv, main, wait_for
from cdp import CHROMIUM, Browser

YEAR = int(time.strftime("%Y"))
COUNTY = 360730
TOKEN = "c0ffee00dashboard0token0123456789"


def value(b, measure):
    return b.eval(f"(document.getElementById('m-{measure}')||{{dataset:{{}}}}).dataset.value")


def test(c):
    if not os.access(CHROMIUM, os.X_OK):
        raise AssertionError(f"{CHROMIUM} is missing: install the Debian package chromium")
    path = os.path.join(c.dir, "http.token")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, (TOKEN + "\n").encode())
    os.close(fd)
    c.start_aggregator(extra=("--http-token", path))
    c.start_collector(COUNTY)
    b = Browser()
    try:
        b.navigate(f"http://{c.http}/")
        wait_for(lambda: b.eval("document.querySelector('input[name=token]') !== null"), 30,
                 "the page asking for the token")
        b.eval(f"document.querySelector('input[name=token]').value = '{TOKEN}';"
               "document.querySelector('form').submit(); true")
        wait_for(lambda: value(b, "activities") == "0", 30, "the dashboard after the token")
        assert b.eval("location.search") == "", "the token stayed in the address"
        assert TOKEN not in b.eval("document.cookie"), "the page's script can read the token"
        wait_for(lambda: "实时" in b.eval("document.getElementById('live').textContent"), 30,
                 "the page to follow /api/stream")
        c.drop(COUNTY, "activities.csv", gen_csv([COUNTY], 200, YEAR, seed=5))
        wait_for(lambda: c.query_json(YEAR)["total"]["activities"] == 200, 60, "delivery")
        wait_for(lambda: value(b, "activities") == "200", 30, "the new totals on the page")
    finally:
        b.quit()
    assert c.aggregator.stop() == 0


if __name__ == "__main__":
    main(test)
