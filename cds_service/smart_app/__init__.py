"""The SMART on FHIR app "MAS work-up" (/app): launched from the MAS card (EHR launch) or standalone, it
reads the patient's data with its own token and shows every criteria set and the trend charts."""
