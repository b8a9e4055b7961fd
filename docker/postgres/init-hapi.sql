-- Docker only: a second database for HAPI FHIR next to the bridge's state store.
CREATE DATABASE hapi OWNER bridge;
