"""Demo dates relative to the load date.

The demo files in ``data/demo`` are written as of :data:`DEMO_BASE_DATE` (the generator's
``BASE_DATE``, ``scripts/gen_demo.py``): an open bounty closes 90–300 days after it. Loaded
as they are, every open bounty would be past its closing date a year later and every
application refused (申报已截止). ``duijie demo`` therefore imports a staged copy of the
directory (:func:`staged_demo_dir`) in which the closing date (截止日期) of every bounty still
in its application period (征集中 / 申报中) is moved by ``load date − DEMO_BASE_DATE``, so the
demo always has bounties open for applications, in the same order and spacing. Awarded and
closed bounties keep their historical dates; the committed files are not changed.
"""

from __future__ import annotations

import csv
import io
import logging
from datetime import date, timedelta
from pathlib import Path

log = logging.getLogger(__name__)

DEMO_BASE_DATE = date(2026, 1, 1)
BOUNTIES_FILE = "bounties.csv"
DEADLINE_HEADER = "截止日期"
STATUS_HEADER = "状态"
#: Bounty states (as the demo file writes them) that are still taking applications.
OPEN_STATES = frozenset({"征集中", "申报中", "open"})


def shifted_bounties(text: str, *, offset: timedelta) -> tuple[str, int]:
    """``bounties.csv`` text with the closing dates of open bounties moved by ``offset``;
    returns the new text and how many dates moved.

    Raises
    ------
    ValueError
        The file has no 截止日期 or 状态 column, or a closing date is not ``YYYY-MM-DD``.
    """
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return text, 0
    header = rows[0]
    if DEADLINE_HEADER not in header or STATUS_HEADER not in header:
        raise ValueError(f"{BOUNTIES_FILE}: columns {DEADLINE_HEADER}/{STATUS_HEADER} missing")
    at, state = header.index(DEADLINE_HEADER), header.index(STATUS_HEADER)
    moved = 0
    for row in rows[1:]:
        if len(row) > max(at, state) and row[at].strip() and row[state].strip() in OPEN_STATES:
            row[at] = (date.fromisoformat(row[at].strip()) + offset).isoformat()
            moved += 1
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue(), moved


def staged_demo_dir(demo_dir: Path, stage: Path, *, today: date) -> Path:
    """``stage`` filled with the demo files (links) and a bounties file whose open bounties
    close relative to ``today`` (see the module docstring); returns ``stage``.

    Sub-directories (the commissioners) are not staged: their loader reads them in place.
    """
    offset = today - DEMO_BASE_DATE
    stage.mkdir(parents=True, exist_ok=True)
    for path in sorted(demo_dir.iterdir()):
        if not path.is_file():
            continue
        target = stage / path.name
        if path.name == BOUNTIES_FILE:
            raw = path.read_bytes()
            bom = raw.startswith(b"\xef\xbb\xbf")
            text, moved = shifted_bounties(raw.decode("utf-8-sig"), offset=offset)
            target.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
            log.info("demo: %d open bounties close relative to %s (%+d days)", moved, today,
                     offset.days)  # fmt: skip
        else:
            target.symlink_to(path.resolve())
    return stage
