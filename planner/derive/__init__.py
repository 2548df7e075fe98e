"""derive stage of the planner pipeline (see planner/__init__.py)."""
