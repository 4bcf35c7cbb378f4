"""One patient's MAS evaluation, engine-neutral: the hook, the SMART app and population screening call it."""
