"""The fault suite (`make faults`): a messenger under load on its own MariaDB and Redis, parts broken mid-load.

See faults/run.py for the experiments and README.md ("Faults") for how to read the table.
"""
