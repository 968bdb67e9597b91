"""What people use today on a database: the reference monitor's approach, pandas `read_sql`
pulling every row of the three warehouse tables (`SELECT *` of fct_sessions, fct_orders,
fct_attribution, through SQLAlchemy and psycopg2) into DataFrames, then the per-day aggregates
of sessions and orders (as pandas_read.py does from the CSVs). Only part of what vigil computes
(a lower bound of pandas' time), so its values are not checked.

Usage: python3 pandas_sql.py postgres://USER@HOST:PORT/DB
Needs: pip install pandas sqlalchemy psycopg2-binary
"""

import sys

import pandas as pd
import sqlalchemy


def main(url: str) -> None:
    engine = sqlalchemy.create_engine(url.replace("postgres://", "postgresql+psycopg2://", 1))
    with engine.connect() as con:
        sessions = pd.read_sql("SELECT * FROM fct_sessions", con)
        orders = pd.read_sql("SELECT * FROM fct_orders", con)
        attribution = pd.read_sql("SELECT * FROM fct_attribution", con)
    sessions["day"] = pd.to_datetime(sessions["session_start"], utc=True).dt.date
    orders["day"] = pd.to_datetime(orders["order_ts"], utc=True).dt.date
    per_day = sessions.groupby("day").agg(sessions=("session_id", "nunique"))
    order_days = orders.groupby("day").agg(orders=("transaction_id", "nunique"), revenue=("revenue", "sum"))
    print(f"pandas: {len(sessions)} sessions, {len(orders)} orders, {len(attribution)} attribution rows, "
          f"{len(per_day)} + {len(order_days)} days")


if __name__ == "__main__":
    main(sys.argv[1])
