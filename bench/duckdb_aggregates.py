"""The aggregates vigil's builtin rules need, computed by DuckDB (all cores) from the CSVs.

One GROUP BY per table, as vigil makes one pass per table:
sessions per day (rows, distinct sessions, purchase sessions, funnel steps, null client ids)
and per day and channel (distinct sessions); orders per day (distinct orders, revenue sum and
mean, duplicate, negative, zero and null revenue); last-click revenue and orders per day and
channel through the attribution-orders join.

Usage: python3 duckdb_aggregates.py WAREHOUSE_DIR
"""

import os
import sys

import duckdb


def main(warehouse: str) -> None:
    con = duckdb.connect()
    con.execute(f"SET threads = {os.cpu_count()}")
    con.execute("SET TimeZone = 'UTC'")
    s = os.path.join(warehouse, "fct_sessions.csv")
    o = os.path.join(warehouse, "fct_orders.csv")
    a = os.path.join(warehouse, "fct_attribution.csv")
    sessions = con.execute(
        f"""
        SELECT CAST(session_start AS DATE) AS day, marketing_source,
               count(*) AS rows, count(DISTINCT session_id) AS sessions,
               count(*) FILTER (WHERE purchases > 0) AS purchase_sessions,
               count(*) FILTER (WHERE pageviews > 0) AS viewed,
               count(*) FILTER (WHERE add_to_cart > 0) AS carted,
               count(*) FILTER (WHERE checkout_started > 0) AS checked_out,
               count(*) FILTER (WHERE client_id IS NULL) AS null_client_ids
        FROM read_csv('{s}', header = true)
        GROUP BY GROUPING SETS ((day), (day, marketing_source))
        """
    ).fetchall()
    orders = con.execute(
        f"""
        SELECT CAST(order_ts AS DATE) AS day,
               count(*) AS rows, count(DISTINCT transaction_id) AS orders,
               count(*) - count(DISTINCT transaction_id) AS duplicates,
               sum(revenue) AS revenue, avg(revenue) AS aov,
               count(*) FILTER (WHERE revenue < 0) AS negative,
               count(*) FILTER (WHERE revenue = 0) AS zero,
               count(*) FILTER (WHERE revenue IS NULL) AS null_revenue
        FROM read_csv('{o}', header = true)
        GROUP BY day
        """
    ).fetchall()
    channels = con.execute(
        f"""
        WITH o AS (SELECT transaction_id, order_ts, revenue FROM read_csv('{o}', header = true)),
             a AS (SELECT transaction_id, model, attributed_source FROM read_csv('{a}', header = true))
        SELECT CAST(o.order_ts AS DATE) AS day, a.attributed_source,
               sum(o.revenue) AS revenue, count(DISTINCT a.transaction_id) AS orders
        FROM a JOIN o USING (transaction_id)
        WHERE lower(a.model) LIKE '%last%'
        GROUP BY ALL
        """
    ).fetchall()
    print(f"duckdb: {len(sessions)} session groups, {len(orders)} order days, {len(channels)} channel days")


if __name__ == "__main__":
    main(sys.argv[1])
