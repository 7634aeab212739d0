"""The paper's workflow as plain functions over data, stats, pools, models and tracking."""
