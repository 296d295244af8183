"""Section 8, Database connection optimization: decided from notebook 08's records.

TODO: the rules below are placeholders (always "not measured") until the notebook records
the numbers they read; each must be replaced by a real rule.
"""

from __future__ import annotations

from lessons.claims._rules import Missing, Records, Verdict, claim

NB = "08_db_connections"


@claim('conn-max-age', section=8, notebook=NB,
       guide="'CONN_MAX_AGE': 60,  # Persistent connections (seconds)",
       gives=("confirmed", "refuted", "depends"))
def conn_max_age(r: Records) -> Verdict:
    raise Missing(NB, "TODO: a rule for conn-max-age")


@claim('conn-health-checks', section=8, notebook=NB,
       guide="'CONN_HEALTH_CHECKS': True,  # Django 4.1+",
       gives=("confirmed", "refuted", "depends"))
def conn_health_checks(r: Records) -> Verdict:
    raise Missing(NB, "TODO: a rule for conn-health-checks")


@claim('statement-timeout', section=8, notebook=NB,
       guide="'options': '-c statement_timeout=30000',  # 30s query timeout",
       gives=("confirmed", "refuted", "depends"))
def statement_timeout(r: Records) -> Verdict:
    raise Missing(NB, "TODO: a rule for statement-timeout")


@claim('dj-db-conn-pool', section=8, notebook=NB,
       guide='Connection pooling: pip install django-db-connection-pool; ENGINE dj_db_conn_pool.backends.postgresql, POOL_SIZE 10, MAX_OVERFLOW 10',
       gives=("confirmed", "refuted", "depends"))
def dj_db_conn_pool(r: Records) -> Verdict:
    raise Missing(NB, "TODO: a rule for dj-db-conn-pool")
