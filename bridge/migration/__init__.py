"""Migration of legacy PACS into the archive over DIMSE (issue 15); see docs/migration.md.

* :mod:`bridge.sections.migration` (the settings section, kept with the others) -
  ``LegacySourceSettings``, ``MigrationSettings``, ``MoveReceiverSettings``;
* :mod:`bridge.migration.client` - ``LegacySource``: C-ECHO, Study Root C-FIND, C-GET and
  C-MOVE, async;
* :mod:`bridge.migration.retrieve` - ``get_study``/``get_instances``: C-GET, instances as
  received;
* :mod:`bridge.migration.move` - ``move_study``/``move_instances``: C-MOVE to an AE;
* :mod:`bridge.migration.receiver` - ``MoveReceiver``: the bridge's C-STORE SCP as a
  move destination;
* :mod:`bridge.migration.transfer` - C-GET, C-MOVE to the bridge, C-MOVE direct;
* :mod:`bridge.migration.stow` - ``stow_study``: STOW-RS in chunks, read per instance;
* :mod:`bridge.migration.verify` - SOP Instance UIDs, source vs archive;
* :mod:`bridge.migration.coercion_rules` / :mod:`bridge.migration.coercion` - the
  coercion file (mappings/migration.yaml) and its application, originals kept in
  (0400,0561);
* :mod:`bridge.migration.study` - ``StudyMigrator``: the per-study step (fetch, coerce,
  STOW, verify, retry the missing once);
* :mod:`bridge.migration.queue` / :mod:`bridge.migration.run` /
  :mod:`bridge.migration.report` - the tasks of a source in the task queue, the worker
  loop with the source's time windows, the report;
* :mod:`bridge.migration.engine` - building the step from the settings, the room service;
* :mod:`bridge.migration.inventory` - ``walk_inventory``: every study by date windows;
* :mod:`bridge.migration.throttle` - instances per second, time windows;
* :mod:`bridge.migration.records` - the typed C-FIND records;
* :mod:`bridge.migration.errors` - the source's errors in the tree of :mod:`bridge.errors`.

Nothing is imported here: import the submodules themselves, so that using one part
of the room does not load all of it (pydicom, pynetdicom).  The settings section is
:mod:`bridge.sections`.
"""
