"""The CDS Hooks 2.0 wire types, typed once (https://cds-hooks.hl7.org/2.0/)."""
