"""The NCT02780583 anakinra protocol as cited data (clinical.md §1.4, §1.3, §3.4).

Registry Detailed Description, verbatim: "anakinra at dose of 10 mg/kg/day to a maximum of dose of
200 mg/day divided every 12 hours (for children [≤]40 kg) or 5 mg/kg/day up to a maximum dose of
400 mg/day divided every 6 hours (children > 40 kg and adults)" — subcutaneous, added to
corticosteroids.

Read carefully: the low band is for *children* of 40 kg or less; an adult of 40 kg or less is in the
high band ("children > 40 kg and adults"). The comparison sign before "40 kg" was lost in every stored
copy of the registry text; the complementary "> 40 kg" implies "≤ 40 kg" (UNVERIFIED), so exactly
40 kg is in the low band, and the card says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

PROTOCOL_VERSION = "NCT02780583-registry-2024-08"
TRIAL_URL = "https://clinicaltrials.gov/study/NCT02780583"
PROTOCOL_CITATION = (
    "NCT02780583 (UAB), registry Detailed Description: 10 mg/kg/day, max 200 mg/day, divided every "
    "12 h (children ≤ 40 kg); 5 mg/kg/day, max 400 mg/day, divided every 6 h (children > 40 kg and adults)"
)


@dataclass(frozen=True)
class DoseBand:
    key: str
    label: str
    mg_per_kg_per_day: Decimal
    max_mg_per_day: Decimal
    interval_hours: int
    citation: str

    @property
    def doses_per_day(self) -> int:
        return 24 // self.interval_hours

    @property
    def max_mg_per_dose(self) -> Decimal:
        return self.max_mg_per_day / self.doses_per_day


CHILD_UP_TO_40_KG = DoseBand(
    key="child-le-40kg",
    label="child ≤ 40 kg",
    mg_per_kg_per_day=Decimal(10),
    max_mg_per_day=Decimal(200),
    interval_hours=12,
    citation=PROTOCOL_CITATION,
)
OVER_40_KG_OR_ADULT = DoseBand(
    key="gt-40kg-or-adult",
    label="> 40 kg or adult",
    mg_per_kg_per_day=Decimal(5),
    max_mg_per_day=Decimal(400),
    interval_hours=6,
    citation=PROTOCOL_CITATION,
)
BANDS = (CHILD_UP_TO_40_KG, OVER_40_KG_OR_ADULT)

# "(for children [≤]40 kg)": 40 kg itself is in the low band (sign UNVERIFIED, clinical.md §1.4).
BAND_LIMIT_KG = Decimal(40)

# Derived (clinical.md §1.4 table): 200/2 = 400/4 = 100 mg; matches the narrative's case reports
# "doses up to 100 mg every 6 hours". No per-dose amount above this, in either band.
MAX_MG_PER_DOSE = Decimal(100)
assert all(band.max_mg_per_dose == MAX_MG_PER_DOSE for band in BANDS)

# The graduated syringe measures 20-100 mg (EU PIL "20 to 90 mg or 100 mg", clinical.md §3.4);
# a smaller per-dose amount cannot be measured with it and is flagged.
SMALLEST_MEASURABLE_MG = Decimal(20)

# NCT02780583 eligibility: 1 year and older, no upper limit (clinical.md §1.1).
MINIMUM_TRIAL_AGE_YEARS = 1

# Kineret 100 mg/0.67 mL (clinical.md §3.4).
PRODUCT_LABEL = "Kineret (anakinra) 100 mg/0.67 mL prefilled syringe"
MG_PER_ML = Decimal(100) / Decimal("0.67")


def band_for(*, weight_kg: Decimal, adult: bool) -> DoseBand:
    """Protocol band: children ≤ 40 kg get 10 mg/kg/day q12h; everyone else 5 mg/kg/day q6h."""
    if not adult and weight_kg <= BAND_LIMIT_KG:
        return CHILD_UP_TO_40_KG
    return OVER_40_KG_OR_ADULT
