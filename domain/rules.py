"""The version of the rules the read models' figures are computed with.

Reports and exports name it (`rules_version`), so that a figure can be reproduced: with the
rules unchanged since, a report as known at an earlier instant answers exactly what was
answered then. Bump it on any change of an SLA, ledger or availability rule (a calendar
reading, a charge, a verdict), in the commit that changes the rule.

- 2026.12.1: the rules as first versioned.
- 2026.12.2: a stopped SLA clock keeps the priority (and category) that judged it.
- 2026.12.3: a pause that begins at the instant a ticket is reopened stops its resolution clock.
"""

RULES_VERSION = "2026.12.3"
