"""Deterministic, threshold-dense synthetic patients for comparing the product with the independent oracle.

Each case puts one item of one criteria set on a threshold (just below, at, just above; in the paper's unit and in
other units) while the other items of that set are arranged so that this item decides the outcome. Further cases
vary what makes a result usable: time windows, statuses, time fields, comparators, units, coded conditions and their
statuses, medication orders, temperature sites and ages at the population gates.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from random import Random
from typing import Any

from tests.independent import gen_values as v
from tests.independent.gen_model import (
    ICD10CM,
    SNOMED,
    SURFACE_TEMPERATURE_SITES,
    TEMPERATURE_SITES,
    UNIT_FACTORS,
    Diagnosis,
    Lab,
    Order,
    Spec,
    Temperature,
    birth_date_for,
    render,
)
from tests.independent.gen_values import Probe, express


@dataclass(frozen=True)
class Case:
    name: str
    patient_id: str
    resources: list[dict[str, Any]]
    now: datetime


DIAGNOSES: dict[str, tuple[tuple[str, str, str], ...]] = {
    "sjia": (
        (ICD10CM, "M08.20", "Juvenile rheumatoid arthritis with systemic onset, unspecified site"),
        (ICD10CM, "M08.29", "Juvenile rheumatoid arthritis with systemic onset, multiple sites"),
        (ICD10CM, "M08.2A", "Juvenile rheumatoid arthritis with systemic onset, other specified site"),
        (ICD10CM, "M08.211", "Juvenile rheumatoid arthritis with systemic onset, right shoulder"),
        (SNOMED, "201796004", "Systemic onset juvenile chronic arthritis"),
    ),
    "aosd": ((ICD10CM, "M06.1", "Adult-onset Still's disease"),),
    "sle": (
        (ICD10CM, "M32.9", "Systemic lupus erythematosus, unspecified"),
        (ICD10CM, "M32.14", "Glomerular disease in systemic lupus erythematosus"),
        (SNOMED, "55464009", "Systemic lupus erythematosus"),
    ),
    "sepsis": (
        (ICD10CM, "A41.9", "Sepsis, unspecified organism"),
        (ICD10CM, "A40.0", "Sepsis due to streptococcus, group A"),
        (ICD10CM, "A41.51", "Sepsis due to Escherichia coli [E. coli]"),
        (ICD10CM, "R65.20", "Severe sepsis without septic shock"),
        (ICD10CM, "R65.21", "Severe sepsis with septic shock"),
        (SNOMED, "91302008", "Sepsis"),
        (SNOMED, "76571007", "Septic shock"),
        (SNOMED, "770349000", "Sepsis caused by virus"),
    ),
    "hiv": ((ICD10CM, "B20", "Human immunodeficiency virus [HIV] disease"),),
    "malignancy": (
        (ICD10CM, "C91.00", "Acute lymphoblastic leukemia not having achieved remission"),
        (ICD10CM, "C83.30", "Diffuse large B-cell lymphoma, unspecified site"),
        (ICD10CM, "C50.911", "Malignant neoplasm of unspecified site of right female breast"),
        (ICD10CM, "C7A.00", "Malignant carcinoid tumor of unspecified site"),
        (ICD10CM, "C96.9", "Malignant neoplasm of lymphoid, hematopoietic and related tissue, unspecified"),
    ),
    "not-malignant-neoplasm": (
        (ICD10CM, "D36.9", "Benign neoplasm, unspecified site"),
        (ICD10CM, "D03.9", "Melanoma in situ, unspecified"),
    ),
    "splenomegaly": (
        (ICD10CM, "R16.1", "Splenomegaly, not elsewhere classified"),
        (SNOMED, "16294009", "Splenomegaly"),
    ),
    "hepatomegaly": (
        (ICD10CM, "R16.0", "Hepatomegaly, not elsewhere classified"),
        (SNOMED, "80515008", "Hepatomegaly"),
    ),
    "hepatosplenomegaly": ((ICD10CM, "R16.2", "Hepatomegaly with splenomegaly, not elsewhere classified"),),
    "hemorrhage": (
        (ICD10CM, "R58", "Hemorrhage, not elsewhere classified"),
        (SNOMED, "131148009", "Bleeding"),
    ),
    "cns": (
        (ICD10CM, "R56.9", "Unspecified convulsions"),
        (ICD10CM, "R40.20", "Unspecified coma"),
        (ICD10CM, "R41.0", "Disorientation, unspecified"),
        (ICD10CM, "R40.0", "Somnolence"),
        (ICD10CM, "R45.4", "Irritability and anger"),
        (SNOMED, "91175000", "Seizure"),
        (SNOMED, "371632003", "Coma"),
        (SNOMED, "62476001", "Disorientated"),
        (SNOMED, "214264003", "Lethargy"),
        (SNOMED, "55929007", "Feeling irritable"),
    ),
    "unrelated": ((ICD10CM, "I10", "Essential (primary) hypertension"),),
}

IMMUNOSUPPRESSANTS = (
    ("Prednisone", "8640"),
    ("Methylprednisolone", "6902"),
    ("Dexamethasone", "3264"),
    ("Cyclosporine", "3008"),
    ("Azathioprine", "1256"),
    ("Tacrolimus", "42316"),
    ("Methotrexate", "6851"),
)
OTHER_DRUGS = (
    ("Acetaminophen", "161"),
    ("Ceftriaxone", "2193"),
    ("0.67 ML anakinra 149 MG/ML Prefilled Syringe", "727711"),
)
CLINICAL_STATUSES = ("active", "recurrence", "relapse", "inactive", "remission", "resolved", None)
VERIFICATION_STATUSES = ("confirmed", "provisional", "differential", "unconfirmed", "refuted", "entered-in-error", None)


class _Builder:
    """Random but reproducible details (units, codes, times, ages) around a fixed clinical arrangement."""

    def __init__(self, rng: Random, now: datetime) -> None:
        self.rng = rng
        self.now = now

    # ---- people
    def child(self) -> str:
        return birth_date_for(self.now, years=self.rng.randint(2, 15), extra_days=self.rng.randint(1, 300))

    def adult(self) -> str:
        return birth_date_for(self.now, years=self.rng.randint(19, 80), extra_days=self.rng.randint(1, 300))

    def anyone(self) -> str:
        return self.child() if self.rng.random() < 0.4 else self.adult()

    # ---- results
    def lab_age(self) -> timedelta:
        return timedelta(minutes=self.rng.randint(30, 60 * 60))

    def lab(self, analyte: str, canonical: str, unit: str | None = None, **details: Any) -> Lab:
        """A result given in the canonical unit, written in a randomly chosen unit it converts to exactly."""
        value = Decimal(canonical)
        if unit is None:
            choices = [u for u in UNIT_FACTORS[analyte] if express(analyte, value, u) is not None]
            unit = choices[0] if self.rng.random() < 0.5 else self.rng.choice(choices)
        written = express(analyte, value, unit)
        assert written is not None, (analyte, canonical, unit)
        return Lab(analyte, written, unit, age=details.pop("age", self.lab_age()), **details)

    def probe(self, analyte: str, probe: Probe, **details: Any) -> Lab:
        value, unit = probe
        return Lab(analyte, value, unit, age=details.pop("age", self.lab_age()), **details)

    def temperature(self, celsius: str, **details: Any) -> Temperature:
        value = Decimal(celsius)
        age = details.pop("age", timedelta(minutes=self.rng.randint(20, 20 * 60)))
        if self.rng.random() < 0.3:
            return Temperature(value * Decimal("1.8") + 32, "[degF]", age=age, **details)
        return Temperature(value, "Cel", age=age, **details)

    def temperature_probe(self, probe: Probe, **details: Any) -> Temperature:
        value, unit = probe
        site = details.pop("loinc", self.rng.choice(TEMPERATURE_SITES))
        age = details.pop("age", timedelta(minutes=self.rng.randint(20, 20 * 60)))
        return Temperature(value, unit, loinc=site, age=age, **details)

    # ---- coded data
    def dx(self, kind: str, clinical: str | None = "active", verification: str | None = "confirmed") -> Diagnosis:
        system, code, display = self.rng.choice(DIAGNOSES[kind])
        if verification == "entered-in-error":
            clinical = None  # FHIR con-5: no clinicalStatus on an entered-in-error Condition
        return Diagnosis(system, code, display, clinical, verification)

    def still(self) -> Diagnosis:
        return self.dx("sjia" if self.rng.random() < 0.75 else "aosd")

    def long_term_immunosuppressant(self) -> Order:
        name, code = self.rng.choice(IMMUNOSUPPRESSANTS[:5])
        return Order(name, code, age=timedelta(days=self.rng.randint(45, 400)))

    def other_drug(self) -> Order:
        name, code = self.rng.choice(OTHER_DRUGS[:2])
        return Order(name, code, age=timedelta(days=self.rng.randint(0, 60)))

    def noise(self, spec: Spec) -> None:
        """Unrelated data that no criterion uses, and sometimes an older result the latest one supersedes."""
        if self.rng.random() < 0.3:
            spec.labs.append(Lab("crp", Decimal(self.rng.randint(5, 300)), "mg/L", loinc="1988-5"))
        if self.rng.random() < 0.2:
            spec.diagnoses.append(self.dx("unrelated"))
        probed = spec.labs[-1] if spec.labs else None
        if (
            probed is not None
            and not spec.name.startswith("window/")
            and probed.value_form == "quantity"
            and probed.status == "final"
            and probed.age < timedelta(hours=60)
            and self.rng.random() < 0.3
        ):
            # an older result of the same analyte on the other side of most thresholds: the latest must win
            factor = Decimal(2) if self.rng.random() < 0.5 else Decimal("0.5")
            spec.labs.insert(0, replace(probed, value=probed.value * factor, age=probed.age + timedelta(hours=5)))


# ----------------------------------------------------------------------------------------------- arrangements
# Each arrangement returns labs/temperatures/diagnoses that make one item met or not met.

Arrangement = Callable[[_Builder, Spec], None]


def _add(*labs: tuple[str, str]) -> Arrangement:
    def apply(b: _Builder, spec: Spec) -> None:
        for analyte, value in labs:
            spec.labs.append(b.lab(analyte, value))

    return apply


def _add_dx(kind: str) -> Arrangement:
    def apply(b: _Builder, spec: Spec) -> None:
        spec.diagnoses.append(b.dx(kind))

    return apply


def _fever(celsius: str) -> Arrangement:
    def apply(b: _Builder, spec: Spec) -> None:
        spec.temperatures.append(b.temperature(celsius))

    return apply


def _nothing(b: _Builder, spec: Spec) -> None:
    return None


def _normal(analyte: str) -> Arrangement:
    """A transaminase within twice its upper limit of normal (so its trial item is known to be not met)."""

    def apply(b: _Builder, spec: Spec) -> None:
        spec.labs.append(Lab(analyte, Decimal(30), "U/L", upper_limit=Decimal(40), age=b.lab_age()))

    return apply


def _transaminases_normal(b: _Builder, spec: Spec) -> None:
    spec.labs.append(Lab("alt", Decimal(35), "U/L", upper_limit=Decimal(40), age=b.lab_age()))
    spec.labs.append(Lab("ast", Decimal(30), "U/L", upper_limit=Decimal(40), age=b.lab_age()))


EULAR_ITEMS: dict[str, tuple[Arrangement, Arrangement]] = {
    "platelets": (_add(("platelets", "150")), _add(("platelets", "300"))),
    "ast": (_add(("ast", "80")), _add(("ast", "30"))),
    "triglycerides": (_add(("triglycerides", "200")), _add(("triglycerides", "120"))),
    "fibrinogen": (_add(("fibrinogen", "3.0")), _add(("fibrinogen", "4.0"))),
}

TRIAL_LAB_ITEMS: dict[str, tuple[Arrangement, Arrangement]] = {
    "platelets": (_add(("platelets", "200")), _add(("platelets", "320"))),
    "ast": (_add(("ast", "90")), _add(("ast", "40"))),
    "wbc": (_add(("wbc", "3.0")), _add(("wbc", "7.5"))),
    "fibrinogen": (_add(("fibrinogen", "2.0")), _add(("fibrinogen", "3.5"))),
}

TRIAL2_ITEMS: dict[str, tuple[Arrangement, Arrangement]] = {
    "bicytopenia": (
        _add(("anc", "0.5"), ("platelets", "60"), ("hemoglobin", "12.0")),
        _add(("anc", "2.5"), ("platelets", "250"), ("hemoglobin", "12.5")),
    ),
    "triglycerides": (_add(("triglycerides", "320")), _add(("triglycerides", "140"))),
    "splenomegaly": (_add_dx("splenomegaly"), _nothing),
    "transaminases": (_add(("alt", "250")), _transaminases_normal),
    "fever": (_fever("39.2"), _fever("37.1")),
    "coagulopathy": (
        _add(("inr", "2.1"), ("fibrinogen", "3.0"), ("ddimer", "300")),
        _add(("inr", "1.1"), ("fibrinogen", "3.0"), ("ddimer", "300")),
    ),
}

HLH_ITEMS: dict[str, tuple[Arrangement, Arrangement]] = {
    "fever": (_fever("39.0"), _fever("37.0")),
    "splenomegaly": (_add_dx("splenomegaly"), _nothing),
    "cytopenias": (
        _add(("hemoglobin", "8.0"), ("platelets", "50"), ("anc", "2.0")),
        _add(("hemoglobin", "12.0"), ("platelets", "200"), ("anc", "3.0")),
    ),
    "lipids": (
        _add(("triglycerides", "400"), ("fibrinogen", "2.0")),
        _add(("triglycerides", "100"), ("fibrinogen", "3.0")),
    ),
    "ferritin": (_add(("ferritin", "5000")), _add(("ferritin", "300"))),
}


@dataclass(frozen=True)
class _Probe:
    """One probed item: the analyte, its probe values, and the arrangement of the rest of that item."""

    item: str
    analyte: str
    values: tuple[Probe, ...]
    rest: Arrangement = _nothing
    upper_limit: Decimal | None = None


# ----------------------------------------------------------------------------------------------- families


def _limit_in(p: _Probe, probe: Probe) -> Decimal | None:
    """The probe's upper limit of normal (given in U/L) written in the probe value's unit."""
    if p.upper_limit is None:
        return None
    limit = express(p.analyte, p.upper_limit, probe[1])
    assert limit is not None, (p.analyte, p.upper_limit, probe)
    return limit


def _named(spec: Spec, *parts: object) -> Spec:
    spec.name = "/".join(str(p) for p in parts)
    return spec


def _probe_name(probe: Probe) -> str:
    return f"{probe[0]} {probe[1]}"


def eular_family(b: _Builder) -> Iterator[Spec]:
    """2016 EULAR/ACR/PRINTO: ferritin > 684 plus 2 of 4, in a febrile patient with Still's disease."""
    thresholds = {
        "ferritin": v.FERRITIN_684,
        "platelets": v.PLATELETS_181,
        "ast": v.AST_48,
        "triglycerides": v.TRIGLYCERIDES_156,
        "fibrinogen": v.FIBRINOGEN_360,
    }
    for item, probes in thresholds.items():
        for probe in probes:
            spec = Spec("", b.child() if b.rng.random() < 0.7 else b.adult(), diagnoses=[b.still()])
            spec.temperatures.append(b.temperature("38.9"))
            others = [k for k in EULAR_ITEMS if k != item]
            met = b.rng.sample(others, 2 if item == "ferritin" else 1)
            for other in others:
                EULAR_ITEMS[other][0 if other in met else 1](b, spec)
            if item != "ferritin":
                spec.labs.append(b.lab("ferritin", "1500"))
            spec.labs.append(b.probe(item, probe))
            yield _named(spec, "eular2016", item, _probe_name(probe))
    for probe in v.TEMPERATURE_FEBRILE:
        spec = Spec("", b.child(), diagnoses=[b.still()])
        spec.labs += [b.lab("ferritin", "2500"), b.lab("platelets", "120"), b.lab("ast", "90")]
        spec.temperatures.append(b.temperature_probe(probe))
        yield _named(spec, "eular2016", "febrile", _probe_name(probe))


def ms_score_family(b: _Builder) -> Iterator[Spec]:
    """MS score: ferritin (or LDH) solved so the lowest or highest possible score sits on -2.1."""
    target = Decimal("-2.1")
    options = list(
        itertools.product(
            (150, 250, 400, 600, 800, 1000, 1200), (200, 400, 800, 1500), (100, 200, 300, 450, 600, 800, 1000)
        )
    )
    for bound in ("lowest", "highest"):
        for cns, hemorrhage in itertools.product((False, True), repeat=2):
            feasible: list[tuple[int, int, int, Decimal]] = []
            for platelets, ldh, fibrinogen in options:
                rest = Decimal("-0.003") * platelets + Decimal("0.001") * ldh - Decimal("0.004") * fibrinogen
                coded = (Decimal("2.44") if cns else 0) + (Decimal("1.54") if hemorrhage else 0)
                if bound == "lowest":
                    rest += coded - Decimal("1.30")
                else:
                    rest += Decimal("3.98")  # uncoded findings may be present; arthritis may be absent
                ferritin = (target - rest) * 10000
                if 200 <= ferritin <= 50000:
                    feasible.append((platelets, ldh, fibrinogen, ferritin))
            if not feasible:
                continue
            platelets, ldh, fibrinogen, ferritin = b.rng.choice(feasible)
            for delta in (Decimal(-1), Decimal(0), Decimal(1)):
                spec = Spec("", b.child(), diagnoses=[b.still()])
                spec.temperatures.append(b.temperature("39.1"))
                if cns:
                    spec.diagnoses.append(b.dx("cns"))
                if hemorrhage:
                    spec.diagnoses.append(b.dx("hemorrhage"))
                spec.labs += [
                    b.lab("platelets", str(platelets)),
                    b.lab("ldh", str(ldh)),
                    b.lab("fibrinogen", str(Decimal(fibrinogen) / 100)),
                    b.lab("ferritin", str(ferritin + delta)),
                ]
                yield _named(spec, "ms-score", bound, f"cns={cns}", f"hemorrhage={hemorrhage}", f"delta={delta}")
    for missing in ("platelets", "ldh", "fibrinogen", "ferritin"):
        spec = Spec("", b.child(), diagnoses=[b.still()])
        spec.temperatures.append(b.temperature("39.1"))
        values = {"platelets": "100", "ldh": "1500", "fibrinogen": "1.2", "ferritin": "20000"}
        spec.labs += [b.lab(k, value) for k, value in values.items() if k != missing]
        yield _named(spec, "ms-score", "missing", missing)


def ferritin_esr_family(b: _Builder) -> Iterator[Spec]:
    for esr in (2, 4, 10, 20, 30, 50):
        ratio_point = Decimal("21.5") * esr
        for delta in ("-1", "-0.1", "0", "0.1", "1"):
            spec = Spec("", b.child(), diagnoses=[b.still()])
            spec.labs += [b.lab("esr", str(esr)), b.lab("ferritin", str(ratio_point + Decimal(delta)))]
            yield _named(spec, "ferritin-esr", f"esr={esr}", f"delta={delta}")
    for esr_text, ferritin_text in (("0", "0"), ("0", "50"), ("1", "21")):
        spec = Spec("", b.child(), diagnoses=[b.still()])
        spec.labs += [b.lab("esr", esr_text), b.lab("ferritin", ferritin_text)]
        yield _named(spec, "ferritin-esr", f"esr={esr_text}", f"ferritin={ferritin_text}")
    spec = Spec("", b.child(), diagnoses=[b.still()])
    spec.labs += [Lab("esr", Decimal(10), "mm", age=b.lab_age()), b.lab("ferritin", "900")]
    yield _named(spec, "ferritin-esr", "esr-unknown-unit")


def trial_sjia_family(b: _Builder) -> Iterator[Spec]:
    """NCT02780583 path 1 (sJIA): 2 of 4 laboratory criteria, or 3 of the 7 clinical and laboratory criteria."""
    thresholds = {
        "platelets": v.PLATELETS_262,
        "ast": v.AST_59,
        "wbc": v.WBC_4,
        "fibrinogen": v.FIBRINOGEN_250,
    }
    for item, probes in thresholds.items():
        for probe in probes:
            layout = b.rng.choice(("one-lab", "two-clinical"))
            spec = Spec("", b.child(), diagnoses=[b.dx("sjia")])
            others = [k for k in TRIAL_LAB_ITEMS if k != item]
            met = b.rng.sample(others, 1) if layout == "one-lab" else []
            for other in others:
                TRIAL_LAB_ITEMS[other][0 if other in met else 1](b, spec)
            if layout == "two-clinical":
                for kind in b.rng.sample(("cns", "hemorrhage", "hepatomegaly"), 2):
                    spec.diagnoses.append(b.dx(kind))
            spec.labs.append(b.probe(item, probe))
            yield _named(spec, "trial-sjia", item, layout, _probe_name(probe))


def _trial2_probes() -> list[_Probe]:
    return [
        _Probe("bicytopenia", "anc", tuple(v.ANC_1), _add(("platelets", "60"), ("hemoglobin", "12.0"))),
        _Probe("bicytopenia", "platelets", tuple(v.PLATELETS_100), _add(("anc", "0.4"), ("hemoglobin", "12.0"))),
        _Probe("bicytopenia", "hemoglobin", tuple(v.HEMOGLOBIN_9), _add(("anc", "3.0"), ("platelets", "50"))),
        _Probe("triglycerides", "triglycerides", tuple(v.TRIGLYCERIDES_265)),
        _Probe("transaminases", "alt", tuple(v.TRANSAMINASE_120), _normal("ast")),
        _Probe("transaminases", "alt", tuple(v.TRANSAMINASE_120), _normal("ast"), upper_limit=Decimal(60)),
        _Probe("transaminases", "ast", tuple(v.TRANSAMINASE_120), _normal("alt"), upper_limit=Decimal(66)),
        _Probe(
            "transaminases",
            "alt",
            tuple((Decimal(x), "U/L") for x in ("79", "80", "81")),
            _normal("ast"),
            upper_limit=Decimal(40),
        ),
        _Probe("coagulopathy", "fibrinogen", tuple(v.FIBRINOGEN_150), _add(("inr", "1.0"), ("ddimer", "200"))),
        _Probe("coagulopathy", "inr", tuple(v.INR_1_5), _add(("fibrinogen", "3.0"), ("ddimer", "200"))),
        _Probe("coagulopathy", "ddimer", tuple(v.DDIMER_500), _add(("fibrinogen", "3.0"), ("inr", "1.0"))),
    ]


def trial_other_family(b: _Builder) -> Iterator[Spec]:
    """NCT02780583 path 2 (no sJIA): ferritin > 2,000 plus 3 of 6."""
    background = ("none", "aosd", "sle", "sepsis")

    def base(item: str) -> Spec:
        spec = Spec("", b.anyone())
        kind = b.rng.choice(background)
        if kind != "none":
            spec.diagnoses.append(b.dx(kind))
        others = [k for k in TRIAL2_ITEMS if k != item]
        if item != "splenomegaly" and b.rng.random() < 0.7:
            # splenomegaly is never absent, so it is usually one of the met items to let the probe decide met/not met
            met = ["splenomegaly", b.rng.choice([k for k in others if k != "splenomegaly"])]
        else:
            met = b.rng.sample(others, 2)
        for other in others:
            TRIAL2_ITEMS[other][0 if other in met else 1](b, spec)
        return spec

    for p in _trial2_probes():
        for probe in p.values:
            spec = base(p.item)
            spec.labs.append(b.lab("ferritin", "6000"))
            p.rest(b, spec)
            spec.labs.append(b.probe(p.analyte, probe, upper_limit=_limit_in(p, probe)))
            yield _named(spec, "trial-other", p.item, p.analyte, f"uln={p.upper_limit}", _probe_name(probe))
    for probe in v.TEMPERATURE_101F:
        spec = base("fever")
        spec.labs.append(b.lab("ferritin", "6000"))
        spec.temperatures.append(b.temperature_probe(probe))
        yield _named(spec, "trial-other", "fever", _probe_name(probe))
    for probe in v.FERRITIN_2000:
        spec = Spec("", b.anyone())
        items = b.rng.sample(list(TRIAL2_ITEMS), 3)
        for item in TRIAL2_ITEMS:
            TRIAL2_ITEMS[item][0 if item in items else 1](b, spec)
        spec.labs.append(b.probe("ferritin", probe))
        yield _named(spec, "trial-other", "ferritin", _probe_name(probe))
    for clinical, verification in _status_pairs():
        spec = base("splenomegaly")
        spec.labs.append(b.lab("ferritin", "6000"))
        spec.diagnoses.append(b.dx("splenomegaly", clinical, verification))
        yield _named(spec, "trial-other", "splenomegaly", f"{clinical}-{verification}")


def _status_pairs() -> list[tuple[str | None, str | None]]:
    return [(c, "confirmed") for c in CLINICAL_STATUSES] + [("active", s) for s in VERIFICATION_STATUSES]


def hlh_family(b: _Builder) -> Iterator[Spec]:
    """HLH-2004: 5 of 8. Met needs all five available items; not met needs at most one (see DECISIONS.md)."""
    probes = [
        _Probe("fever", "temperature", tuple(v.TEMPERATURE_38_5)),
        _Probe("cytopenias", "hemoglobin", tuple(v.HEMOGLOBIN_9), _add(("platelets", "50"), ("anc", "2.0"))),
        _Probe("cytopenias", "platelets", tuple(v.PLATELETS_100), _add(("hemoglobin", "12.0"), ("anc", "0.5"))),
        _Probe("cytopenias", "anc", tuple(v.ANC_1), _add(("hemoglobin", "8.0"), ("platelets", "150"))),
        _Probe("lipids", "triglycerides", tuple(v.TRIGLYCERIDES_265), _add(("fibrinogen", "3.0"))),
        _Probe("lipids", "fibrinogen", tuple(v.FIBRINOGEN_150), _add(("triglycerides", "100"))),
        _Probe("ferritin", "ferritin", tuple(v.FERRITIN_500)),
    ]
    for p in probes:
        for boundary in ("met", "not-met", "not-met-malignancy"):
            for probe in p.values:
                spec = Spec("", b.anyone())
                if boundary == "met":
                    met = [k for k in HLH_ITEMS if k != p.item]
                elif boundary == "not-met":
                    met = []
                else:
                    met = [b.rng.choice([k for k in HLH_ITEMS if k not in (p.item, "splenomegaly")])]
                    spec.diagnoses.append(b.dx("malignancy"))
                for other in HLH_ITEMS:
                    if other != p.item:
                        HLH_ITEMS[other][0 if other in met else 1](b, spec)
                p.rest(b, spec)
                if p.analyte == "temperature":
                    spec.temperatures.append(b.temperature_probe(probe))
                else:
                    spec.labs.append(b.probe(p.analyte, probe))
                yield _named(spec, "hlh2004", boundary, p.item, p.analyte, _probe_name(probe))
    for days in (26, 27, 28, 29):
        for probe in v.HEMOGLOBIN_INFANT:
            spec = Spec("", (b.now.date() - timedelta(days=days)).isoformat())
            for other in ("fever", "splenomegaly", "lipids", "ferritin"):
                HLH_ITEMS[other][0](b, spec)
            spec.labs += [b.lab("platelets", "40"), b.lab("anc", "2.0"), b.probe("hemoglobin", probe)]
            yield _named(spec, "hlh2004", "infant", f"days={days}", _probe_name(probe))


# HScore: point levels of each item and how to produce them.
HSCORE_LEVELS: dict[str, tuple[tuple[int, Arrangement], ...]] = {
    "immunosuppression": (
        (0, lambda b, s: s.orders.append(b.other_drug())),
        (18, lambda b, s: s.orders.append(b.long_term_immunosuppressant())),
    ),
    "temperature": ((0, _fever("37.2")), (33, _fever("39.0")), (49, _fever("40.1"))),
    "cytopenias": (
        (0, _add(("hemoglobin", "12.0"), ("wbc", "8.0"), ("platelets", "250"))),
        (24, _add(("hemoglobin", "8.0"), ("wbc", "3.0"), ("platelets", "250"))),
        (34, _add(("hemoglobin", "8.0"), ("wbc", "3.0"), ("platelets", "50"))),
    ),
    "ferritin": ((0, _add(("ferritin", "800"))), (35, _add(("ferritin", "3000"))), (50, _add(("ferritin", "9000")))),
    "triglycerides": (
        (0, _add(("triglycerides", "80"))),
        (44, _add(("triglycerides", "220"))),
        (64, _add(("triglycerides", "450"))),
    ),
    "fibrinogen": ((0, _add(("fibrinogen", "4.0"))), (30, _add(("fibrinogen", "2.0")))),
    "ast": ((0, _add(("ast", "20"))), (19, _add(("ast", "60")))),
}
HSCORE_ORGANS_BOTH = 38
HSCORE_MARROW_UNKNOWN = 35


def _hscore_others(b: _Builder, item: str, low: int, high: int) -> list[tuple[str, int, Arrangement]] | None:
    """Levels for the other items so that moving this item from `low` to `high` points crosses a boundary:
    the lowest score reaching 169 (met) or the highest score reaching 169 (no longer "not met")."""
    names = [k for k in HSCORE_LEVELS if k != item]
    valid: list[tuple[tuple[int, Arrangement], ...]] = []
    for combo in itertools.product(*(HSCORE_LEVELS[k] for k in names)):
        others = sum(points for points, _ in combo) + HSCORE_ORGANS_BOTH
        crosses_met = others + low < 169 <= others + high
        crosses_not_met = others + low + HSCORE_MARROW_UNKNOWN < 169 <= others + high + HSCORE_MARROW_UNKNOWN
        if crosses_met or crosses_not_met:
            valid.append(combo)
    if not valid:
        return None
    chosen = b.rng.choice(valid)
    return [(name, points, arrange) for name, (points, arrange) in zip(names, chosen, strict=True)]


def hscore_family(b: _Builder) -> Iterator[Spec]:
    """HScore in adults: each threshold with the rest of the score set on a decision boundary."""
    probes: list[tuple[str, str, tuple[Probe, ...], int, int, Arrangement]] = [
        ("temperature", "temperature", tuple(v.TEMPERATURE_38_4), 0, 33, _nothing),
        ("temperature", "temperature", tuple(v.TEMPERATURE_39_4), 33, 49, _nothing),
        ("ferritin", "ferritin", tuple(v.FERRITIN_2000), 0, 35, _nothing),
        ("ferritin", "ferritin", tuple(v.FERRITIN_6000), 35, 50, _nothing),
        ("triglycerides", "triglycerides", v.TRIGLYCERIDES_1_5_MMOL, 0, 44, _nothing),
        ("triglycerides", "triglycerides", v.TRIGLYCERIDES_4_MMOL, 44, 64, _nothing),
        ("fibrinogen", "fibrinogen", tuple(v.FIBRINOGEN_250), 0, 30, _nothing),
        ("ast", "ast", tuple(v.AST_30), 0, 19, _nothing),
        ("cytopenias", "hemoglobin", tuple(v.HEMOGLOBIN_9_2), 0, 24, _add(("wbc", "3.0"), ("platelets", "250"))),
        ("cytopenias", "hemoglobin", tuple(v.HEMOGLOBIN_9_2), 24, 34, _add(("wbc", "3.0"), ("platelets", "50"))),
        ("cytopenias", "wbc", tuple(v.WBC_5), 0, 24, _add(("hemoglobin", "12.0"), ("platelets", "90"))),
        ("cytopenias", "wbc", tuple(v.WBC_5), 24, 34, _add(("hemoglobin", "8.0"), ("platelets", "90"))),
        ("cytopenias", "platelets", tuple(v.PLATELETS_110), 0, 24, _add(("hemoglobin", "8.0"), ("wbc", "8.0"))),
        ("cytopenias", "platelets", tuple(v.PLATELETS_110), 24, 34, _add(("hemoglobin", "8.0"), ("wbc", "3.0"))),
    ]
    for item, analyte, values, low, high, rest in probes:
        for probe in values:
            others = _hscore_others(b, item, low, high)
            if others is None:
                continue
            spec = Spec("", b.adult(), diagnoses=[b.dx("hepatomegaly"), b.dx("splenomegaly")])
            for _, _, arrange in others:
                arrange(b, spec)
            rest(b, spec)
            if analyte == "temperature":
                spec.temperatures.append(b.temperature_probe(probe))
            else:
                spec.labs.append(b.probe(analyte, probe))
            yield _named(spec, "hscore", item, f"{low}-{high}", analyte, _probe_name(probe))
    yield from _hscore_immunosuppression(b)
    yield from _hscore_organs(b)


def _hscore_immunosuppression(b: _Builder) -> Iterator[Spec]:
    variants: list[tuple[str, list[Order], list[Diagnosis]]] = []
    for name, code in IMMUNOSUPPRESSANTS:
        for age in (
            timedelta(days=29),
            timedelta(days=29, hours=23, minutes=59),
            timedelta(days=30),
            timedelta(days=31),
        ):
            variants.append((f"{name}-{age}", [Order(name, code, age=age)], []))
    for status in ("active", "on-hold", "stopped", "completed", "cancelled", "draft", "entered-in-error"):
        variants.append((f"prednisone-{status}", [Order("Prednisone", "8640", status=status)], []))
    variants += [
        ("no-orders", [], []),
        ("acetaminophen-only", [Order("Acetaminophen", "161")], []),
        ("anakinra-only", [Order(*OTHER_DRUGS[2])], []),
        ("reference-only", [Order("unknown", None, reference_only=True)], []),
        ("text-only-prednisolone", [Order("Prednisolone 5 mg tablet", None)], []),
        ("no-authored-date", [Order("Azathioprine", "1256", age=None)], []),
        ("hiv", [], [Diagnosis(ICD10CM, "B20", "Human immunodeficiency virus [HIV] disease")]),
        (
            "hiv-with-acetaminophen",
            [Order("Acetaminophen", "161")],
            [Diagnosis(ICD10CM, "B20", "Human immunodeficiency virus [HIV] disease")],
        ),
        ("recent-and-long", [Order("Prednisone", "8640", age=timedelta(days=2)), Order("Cyclosporine", "3008")], []),
    ]
    for name, orders, diagnoses in variants:
        others = _hscore_others(b, "immunosuppression", 0, 18)
        if others is None:
            continue
        spec = Spec("", b.adult(), diagnoses=[b.dx("hepatomegaly"), b.dx("splenomegaly"), *diagnoses])
        for _, _, arrange in others:
            arrange(b, spec)
        spec.orders += orders
        yield _named(spec, "hscore", "immunosuppression", name)


def _hscore_organs(b: _Builder) -> Iterator[Spec]:
    layouts: list[tuple[str, list[str]]] = [
        ("none", []),
        ("hepatomegaly", ["hepatomegaly"]),
        ("splenomegaly", ["splenomegaly"]),
        ("both", ["hepatomegaly", "splenomegaly"]),
        ("hepatosplenomegaly", ["hepatosplenomegaly"]),
    ]
    for name, kinds in layouts:
        for _ in range(2):
            spec = Spec("", b.adult(), diagnoses=[b.dx(kind) for kind in kinds])
            for levels in HSCORE_LEVELS.values():
                b.rng.choice(levels)[1](b, spec)
            yield _named(spec, "hscore", "organomegaly", name)
        spec = Spec("", b.adult(), diagnoses=[b.dx("splenomegaly", clinical=b.rng.choice(("resolved", "inactive")))])
        for levels in HSCORE_LEVELS.values():
            levels[-1][1](b, spec)
        yield _named(spec, "hscore", "organomegaly", "inactive-finding")


def sepsis_family(b: _Builder) -> Iterator[Spec]:
    def base() -> Spec:
        return Spec("", b.adult(), diagnoses=[b.dx("sepsis")])

    for probe in v.FERRITIN_2000:
        spec = base()
        spec.labs += [b.lab("inr", "2.0"), b.lab("ast", "300"), b.probe("ferritin", probe)]
        yield _named(spec, "sepsis", "ferritin", _probe_name(probe))
    for p in _trial2_probes():
        if p.item not in ("coagulopathy", "transaminases"):
            continue
        for probe in p.values:
            spec = base()
            spec.labs.append(b.lab("ferritin", "5000"))
            if p.item == "coagulopathy":
                spec.labs.append(b.lab("ast", "300"))
            else:
                spec.labs.append(b.lab("inr", "2.0"))
            p.rest(b, spec)
            spec.labs.append(b.probe(p.analyte, probe, upper_limit=_limit_in(p, probe)))
            yield _named(spec, "sepsis", p.item, p.analyte, f"uln={p.upper_limit}", _probe_name(probe))
    for clinical, verification in _status_pairs():
        spec = Spec("", b.adult(), diagnoses=[b.dx("sepsis", clinical, verification)])
        spec.labs += [b.lab("ferritin", "5000"), b.lab("inr", "2.0"), b.lab("ast", "300")]
        yield _named(spec, "sepsis", "status", f"{clinical}-{verification}")


def warning_family(b: _Builder) -> Iterator[Spec]:
    for probe in v.FERRITIN_500:
        spec = Spec("", b.anyone())
        spec.labs.append(b.probe("ferritin", probe))
        yield _named(spec, "warning", "ferritin", _probe_name(probe))


def population_family(b: _Builder) -> Iterator[Spec]:
    """Diagnoses at the population gates, with every clinical and verification status."""
    for kind in ("sjia", "aosd", "sle"):
        for clinical, verification in _status_pairs():
            spec = Spec("", b.child(), diagnoses=[b.dx(kind, clinical, verification)])
            spec.temperatures.append(b.temperature("39.0"))
            spec.labs += [b.lab("ferritin", "3000"), b.lab("platelets", "90"), b.lab("ast", "120"), b.lab("esr", "20")]
            yield _named(spec, "population", kind, f"{clinical}-{verification}")
    spec = Spec("", b.child())
    spec.temperatures.append(b.temperature("39.0"))
    spec.labs += [b.lab("ferritin", "3000"), b.lab("platelets", "90"), b.lab("ast", "120"), b.lab("esr", "20")]
    yield _named(spec, "population", "no-diagnosis")
    for kind in ("malignancy", "not-malignant-neoplasm"):
        for clinical, verification in _status_pairs():
            spec = Spec("", b.adult(), diagnoses=[b.dx(kind, clinical, verification), b.dx("splenomegaly")])
            spec.temperatures.append(b.temperature("39.5"))
            spec.labs += [b.lab("ferritin", "8000"), b.lab("triglycerides", "400"), b.lab("inr", "2.0")]
            yield _named(spec, "population", kind, f"{clinical}-{verification}")
    for kind in ("cns", "hemorrhage", "hepatomegaly"):
        companion = "cns" if kind == "hepatomegaly" else "hepatomegaly"
        for clinical, verification in _status_pairs():
            spec = Spec("", b.child(), diagnoses=[b.dx("sjia"), b.dx(companion), b.dx(kind, clinical, verification)])
            spec.temperatures.append(b.temperature("39.0"))
            spec.labs += [b.lab("platelets", "200"), b.lab("wbc", "7.0"), b.lab("fibrinogen", "5.0")]
            spec.labs += [b.lab("ast", "40"), b.lab("ldh", "900"), b.lab("ferritin", "1000")]
            yield _named(spec, "population", kind, f"{clinical}-{verification}")


def age_family(b: _Builder) -> Iterator[Spec]:
    """Ages at the gates: 1 year (trial), 18 years (HScore), partial and missing birth dates."""
    births: list[tuple[str, str | None]] = []
    for years in (1, 18):
        for extra in (-1, 0, 1):
            births.append((f"{years}y{extra:+d}d", birth_date_for(b.now, years=years, extra_days=extra)))
    births += [
        ("year-only-18", str(b.now.year - 18)),
        ("year-month-1", f"{b.now.year - 1:04d}-{b.now.month:02d}"),
        ("no-birth-date", None),
    ]
    for label, birth in births:
        spec = Spec("", birth, diagnoses=[b.dx("splenomegaly"), b.dx("hepatomegaly")])
        spec.temperatures.append(b.temperature("39.8"))
        spec.labs += [b.lab("ferritin", "9000"), b.lab("triglycerides", "400"), b.lab("fibrinogen", "1.2")]
        spec.labs += [b.lab("ast", "200"), b.lab("hemoglobin", "8.0"), b.lab("wbc", "2.0"), b.lab("inr", "2.0")]
        spec.orders.append(b.long_term_immunosuppressant())
        yield _named(spec, "age", label)


def _decisive_bases(b: _Builder) -> list[tuple[str, Spec, Lab]]:
    """Arrangements where one lab result decides a set, to be perturbed (window, status, value form...)."""
    eular = Spec("", b.child(), diagnoses=[b.still()])
    eular.temperatures.append(b.temperature("39.0"))
    eular.labs += [b.lab("ferritin", "2000"), b.lab("ast", "80"), b.lab("triglycerides", "100")]
    eular.labs.append(b.lab("fibrinogen", "4.0"))
    trial = Spec("", b.adult())
    for item in ("bicytopenia", "fever", "coagulopathy"):
        TRIAL2_ITEMS[item][0](b, trial)
    for item in ("triglycerides", "transaminases"):
        TRIAL2_ITEMS[item][1](b, trial)
    hlh = Spec("", b.adult())
    for item in ("fever", "splenomegaly", "cytopenias", "lipids"):
        HLH_ITEMS[item][0](b, hlh)
    return [
        ("eular2016-platelets", eular, b.lab("platelets", "150")),
        ("trial-other-ferritin", trial, b.lab("ferritin", "5000")),
        ("hlh2004-ferritin", hlh, b.lab("ferritin", "800")),
    ]


def _perturbations(lab: Lab, opposite: Decimal) -> list[tuple[str, list[Lab]]]:
    day = timedelta(hours=24)
    older = replace(lab, age=lab.age + timedelta(hours=5), value=opposite)
    variants: list[tuple[str, list[Lab]]] = [
        ("fresh-71h59m", [replace(lab, age=3 * day - timedelta(minutes=1))]),
        ("stale-72h01m", [replace(lab, age=3 * day + timedelta(minutes=1))]),
        ("stale-4d", [replace(lab, age=4 * day)]),
        ("future-9min", [replace(lab, age=-timedelta(minutes=9))]),
        ("future-11min", [replace(lab, age=-timedelta(minutes=11))]),
        ("date-only-time", [replace(lab, time_field="date-only")]),
        ("effective-period", [replace(lab, time_field="effectivePeriod")]),
        ("effective-instant", [replace(lab, time_field="effectiveInstant")]),
        ("issued-only", [replace(lab, time_field="issued")]),
        ("comparator-lt", [replace(lab, comparator="<")]),
        ("comparator-gt", [replace(lab, comparator=">")]),
        ("value-string", [replace(lab, value_form="string")]),
        ("value-absent", [replace(lab, value_form="absent")]),
        ("unit-without-code", [replace(lab, value_form="unit-only")]),
        ("unknown-unit", [replace(lab, unit="%")]),
        ("older-opposite", [lab, older]),
        ("newer-cancelled-opposite", [replace(lab, age=older.age), replace(older, age=lab.age, status="cancelled")]),
        ("newer-comparator-over-usable", [replace(lab, age=older.age), replace(older, age=lab.age, comparator=">")]),
        ("older-only-stale-opposite", [replace(older, age=4 * day), lab]),
    ]
    for status in ("amended", "corrected", "preliminary", "cancelled", "entered-in-error", "registered", "unknown"):
        variants.append((f"status-{status}", [replace(lab, status=status)]))
    return variants


def window_family(b: _Builder) -> Iterator[Spec]:
    """The deciding result moved across the time windows, given other statuses, time fields and value forms."""
    opposite_canonical = {"eular2016-platelets": "300", "trial-other-ferritin": "1500", "hlh2004-ferritin": "300"}
    for base_name, base, lab in _decisive_bases(b):
        opposite = express(lab.analyte, Decimal(opposite_canonical[base_name]), lab.unit)
        assert opposite is not None
        for variant, labs in _perturbations(lab, opposite):
            spec = Spec("", base.birth_date, list(base.labs), list(base.temperatures), list(base.diagnoses))
            spec.labs += labs
            yield _named(spec, "window", base_name, variant)
    special = [
        ("ferritin-pmol", Lab("ferritin", Decimal(20000), "pmol/L", loinc="14723-1")),
        ("hemoglobin-mmol", Lab("hemoglobin", Decimal("4.9"), "mmol/L", loinc="59260-0")),
    ]
    for name, lab in special:
        spec = Spec("", b.adult())
        replaced = "cytopenias" if name == "hemoglobin-mmol" else "ferritin"
        for item in ("fever", "splenomegaly", "lipids", "ferritin", "cytopenias"):
            if item != replaced:
                HLH_ITEMS[item][0](b, spec)
        if name == "hemoglobin-mmol":
            spec.labs += [b.lab("platelets", "40"), b.lab("anc", "2.0")]
        spec.labs.append(replace(lab, age=b.lab_age()))
        yield _named(spec, "window", "unit", name)


def temperature_family(b: _Builder) -> Iterator[Spec]:
    """The febrile gate of the 2016 criteria decided by temperatures at every site, time and status."""

    def base() -> Spec:
        spec = Spec("", b.child(), diagnoses=[b.still()])
        spec.labs += [b.lab("ferritin", "2500"), b.lab("platelets", "120"), b.lab("ast", "90")]
        return spec

    hour = timedelta(hours=1)
    for site in TEMPERATURE_SITES + SURFACE_TEMPERATURE_SITES:
        spec = base()
        spec.temperatures += [
            Temperature(Decimal("36.8"), loinc="8310-5", age=3 * hour),
            b.temperature_probe((Decimal("38.6"), "Cel"), loinc=site),
        ]
        yield _named(spec, "temperature", "site", site)
    variants: list[tuple[str, list[Temperature]]] = [
        ("23h59m", [Temperature(Decimal("38.6"), age=24 * hour - timedelta(minutes=1))]),
        ("24h01m", [Temperature(Decimal("38.6"), age=24 * hour + timedelta(minutes=1))]),
        ("future-9min", [Temperature(Decimal("38.6"), age=-timedelta(minutes=9))]),
        ("future-11min", [Temperature(Decimal("38.6"), age=-timedelta(minutes=11))]),
        ("max-not-latest", [Temperature(Decimal("38.6"), age=10 * hour), Temperature(Decimal("37.0"), age=hour)]),
        ("all-afebrile", [Temperature(Decimal("37.9"), age=10 * hour), Temperature(Decimal("37.0"), age=hour)]),
        ("fahrenheit", [Temperature(Decimal("101.5"), "[degF]")]),
        ("comparator-over-afebrile", [Temperature(Decimal("37.2")), Temperature(Decimal("38"), comparator=">")]),
        ("comparator-with-febrile", [Temperature(Decimal("38.7")), Temperature(Decimal("36"), comparator="<")]),
        ("unknown-unit", [Temperature(Decimal("311.8"), "K")]),
        ("unknown-unit-with-afebrile", [Temperature(Decimal("37.0")), Temperature(Decimal("311.8"), "K")]),
        ("none", []),
    ]
    for status in ("amended", "corrected", "preliminary", "cancelled", "entered-in-error", "registered"):
        variants.append((f"status-{status}", [Temperature(Decimal("38.6"), status=status)]))
    for name, temperatures in variants:
        spec = base()
        spec.temperatures += temperatures
        yield _named(spec, "temperature", name)


FAMILIES: tuple[Callable[[_Builder], Iterator[Spec]], ...] = (
    eular_family,
    ms_score_family,
    ferritin_esr_family,
    trial_sjia_family,
    trial_other_family,
    hlh_family,
    hscore_family,
    sepsis_family,
    warning_family,
    population_family,
    age_family,
    window_family,
    temperature_family,
)


def catalogue(rng: Random, now: datetime) -> list[Spec]:
    builder = _Builder(rng, now)
    specs: list[Spec] = []
    for family in FAMILIES:
        for spec in family(builder):
            builder.noise(spec)
            specs.append(spec)
    return specs


def generate(seed: int, n: int, now: datetime) -> list[Case]:
    """`n` cases, the same for the same seed and `now`. Every probe of the catalogue appears once before any
    appears twice (repeats get fresh random details); the order is shuffled so a short run samples every set."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    rng = Random(seed)
    cases: list[Case] = []
    rounds = 0
    while len(cases) < n:
        specs = catalogue(rng, now)
        rng.shuffle(specs)
        for spec in specs[: n - len(cases)]:
            patient_id = f"oracle-{seed}-{len(cases)}"
            resources = render(spec, patient_id, now, rng)
            cases.append(Case(f"{spec.name}#{rounds}", patient_id, resources, now))
        rounds += 1
    return cases


__all__ = ["Case", "catalogue", "generate"]
