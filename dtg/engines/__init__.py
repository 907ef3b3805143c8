"""Scoring engines other than the local one: where `dtg score --engine NAME` runs its windows.

The job around an engine (lock, ledger, ingest, temp files, commits) is `dtg.scoring.run_score`; an
engine only turns the job's vehicle-days into output chunks, so every engine writes the same files
and ledger rows. `ray_engine` scales that step out on a Ray cluster (optional extra `dtg[ray]`).
"""
