"""SMART-on-FHIR launch app (EHR and standalone launch, imaging history, viewer hand-off)."""
