"""Partner scorecards, the vendor overview and partner-scoped exports, built from the marts.

`write_reports` writes one self-contained HTML page per partner plus the vendor overview;
`export_partner` writes one partner's sell-out lines as CSV and Parquet. Reports read frames and
write files only: no Dagster, no warehouse access (the caller passes the frames in).
"""

from reports.export import export_partner
from reports.scorecards import ReportsWritten, write_reports

__all__ = ["ReportsWritten", "export_partner", "write_reports"]
