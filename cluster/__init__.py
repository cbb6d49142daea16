"""`make cluster-test`: the messenger on three app hosts (network namespaces) behind nginx, with
MariaDB and a Redis that fails over (sentinels); faults injected under the fault suite's load."""
