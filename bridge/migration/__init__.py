"""Migration of legacy PACS into the archive over DIMSE (issue 15); see docs/migration.md."""
