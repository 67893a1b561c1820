"""Moving a tenant between placements (any isolation level to any other, pool → pool,
dedicated → another dedicated database), as a saga on the job engine. See docs/lifecycle.md.

- copy.py      the row copy between two placements: COPY-based bulk copy, delta, verification, purge
- fence.py     the write fence that makes the freeze exact across processes, and host-cache clearing
- tracking.py  change tracking in the source while the copy runs, so the freeze copies only changed rows
- sagas.py     the `tenant.move` saga's steps and their compensations
- services.py  `tenant_move` (screen, API, command), `tenant_move_and_wait`, the purge job
"""
