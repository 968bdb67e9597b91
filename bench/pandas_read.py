"""What people use today: pandas reading the three warehouse CSVs (the reference monitor's
first step), with the per-day aggregates of sessions and orders. Only part of what vigil
computes (a lower bound of pandas' time), so its values are not checked.

Usage: python3 pandas_read.py WAREHOUSE_DIR
"""

import os
import sys

import pandas as pd


def main(warehouse: str) -> None:
    sessions = pd.read_csv(os.path.join(warehouse, "fct_sessions.csv"))
    orders = pd.read_csv(os.path.join(warehouse, "fct_orders.csv"))
    attribution = pd.read_csv(os.path.join(warehouse, "fct_attribution.csv"))
    sessions["day"] = pd.to_datetime(sessions["session_start"], utc=True, format="ISO8601").dt.date
    orders["day"] = pd.to_datetime(orders["order_ts"], utc=True, format="ISO8601").dt.date
    per_day = sessions.groupby("day").agg(sessions=("session_id", "nunique"))
    order_days = orders.groupby("day").agg(orders=("transaction_id", "nunique"), revenue=("revenue", "sum"))
    print(f"pandas: {len(sessions)} sessions, {len(orders)} orders, {len(attribution)} attribution rows, "
          f"{len(per_day)} + {len(order_days)} days")


if __name__ == "__main__":
    main(sys.argv[1])
