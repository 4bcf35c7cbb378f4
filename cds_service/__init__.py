"""CDS Hooks 2.0 service: MAS screen and anakinra (NCT02780583) dose checks."""

__version__ = "0.1.0"
