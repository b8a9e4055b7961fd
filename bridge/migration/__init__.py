"""Migration of legacy PACS into the archive over DIMSE (issue 15); see docs/migration.md.

* :mod:`bridge.sections.migration` (the settings section, kept with the others) -
  ``LegacySourceSettings``, ``MigrationSettings``;
* :mod:`bridge.migration.client` - ``LegacySource``: C-ECHO and Study Root C-FIND, async;
* :mod:`bridge.migration.retrieve` - ``get_study``: C-GET of one study, instances as received;
* :mod:`bridge.migration.stow` - ``stow_study``: STOW-RS in chunks, read per instance;
* :mod:`bridge.migration.verify` - ``verify_study``: SOP Instance UIDs, source vs archive;
* :mod:`bridge.migration.inventory` - ``walk_inventory``: every study by date windows;
* :mod:`bridge.migration.records` - the typed C-FIND records;
* :mod:`bridge.migration.errors` - the source's errors in the tree of :mod:`bridge.errors`.

Nothing is imported here: import the submodules themselves, so that using one part
of the room does not load all of it (pydicom, pynetdicom).  The settings section is
:mod:`bridge.sections`.
"""
