"""Read, check and compile a rule pack folder into a `RulePack`.

Checks beyond each file's schema (any failure raises RulePackError naming the file and the problem):
- every value set, analyte, condition and finding a file names exists; the analytes and conditions are exactly the
  ones the code knows (facts.analytes.A, facts.conditions.Underlying/Finding);
- every threshold's unit is an accepted unit of its analyte, so it converts through the same catalogue as values;
- every item name a criteria set uses is defined, and every defined item is used;
- score bands cover the number line without gaps or overlaps;
- every dose band's cap per dose equals the protocol's per-dose cap;
- a site override names an existing parameter and stays within its bounds or allowed values.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable, Mapping
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from cds_service.facts.analytes import LOINC, A, Analyte, Catalogue, Conversion
from cds_service.facts.conditions import ConditionCodes, Finding, NamedValueSet, Underlying
from cds_service.facts.medications import DrugCodes
from cds_service.facts.valuesets import ValueSet, build_value_set
from cds_service.rulepack import schema as s
from cds_service.rulepack.model import Decision, ParameterEntry, Parameters, RulePack
from cds_service.rules.dosing.protocol import DoseBand, OrderTemplate, Product, Protocol
from cds_service.rules.dosing.safety import SafetyRules
from cds_service.rules.mas import definitions as d
from cds_service.rules.mas.screen import WorkupGroup

PACK_DIR = Path(__file__).parent / "pack"
Model = TypeVar("Model", bound=BaseModel)


class RulePackError(Exception):
    """The pack cannot be used; the message says which file and why (shown at start-up, one line)."""


class _DecimalLoader(yaml.SafeLoader):
    """YAML numbers with a fraction become Decimal from their text: "2.5" is 2.5, never a binary float."""


def _decimal(loader: yaml.SafeLoader, node: yaml.Node) -> Decimal:
    text = loader.construct_scalar(node)  # type: ignore[arg-type]
    value = Decimal(str(text).replace("_", ""))
    if not value.is_finite():
        raise yaml.constructor.ConstructorError(None, None, f"non-finite number {text!r}", node.start_mark)
    return value


_DecimalLoader.add_constructor("tag:yaml.org,2002:float", _decimal)


def _read(path: Path) -> Any:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_DecimalLoader)  # noqa: S506 (a SafeLoader)
    except (OSError, yaml.YAMLError, ArithmeticError) as error:
        raise RulePackError(f"{path.name}: not readable YAML ({error})") from error


def _parse(model: type[Model], document: Any, where: str) -> Model:
    try:
        return model.model_validate(document)
    except ValidationError as error:
        first = error.errors()[0]
        location = ".".join(str(part) for part in first["loc"])
        raise RulePackError(f"{where}: {location}: {first['msg']} ({error.error_count()} problem(s))") from error


def _canonical_json(documents: Mapping[str, Any]) -> bytes:
    return json.dumps(documents, sort_keys=True, default=str, ensure_ascii=False, separators=(",", ":")).encode()


def load_rule_pack(directory: Path | None = None, overrides: Path | None = None) -> RulePack:
    folder = directory or PACK_DIR
    if not (folder / "pack.yaml").is_file():
        raise RulePackError(f"{folder}: no pack.yaml (not a rule pack folder)")
    raw: dict[str, Any] = {
        "pack.yaml": _read(folder / "pack.yaml"),
        "analytes.yaml": _read(folder / "analytes.yaml"),
        "conditions.yaml": _read(folder / "conditions.yaml"),
        "dosing.yaml": _read(folder / "dosing.yaml"),
        "workup.yaml": _read(folder / "workup.yaml"),
    }
    for sub in ("valuesets", "criteria"):
        for path in sorted((folder / sub).glob("*.yaml")):
            raw[f"{sub}/{path.name}"] = _read(path)
    site: s.SiteOverrides | None = None
    if overrides is not None:
        raw["site-overrides"] = _read(overrides)
        site = _parse(s.SiteOverrides, raw["site-overrides"], overrides.name)

    manifest = _parse(s.PackManifest, raw["pack.yaml"], "pack.yaml")
    specs = {name: _parse(s.ValueSetSpec, doc, name) for name, doc in raw.items() if name.startswith("valuesets/")}
    for name, spec in specs.items():
        if name != f"valuesets/{spec.id}.yaml":
            raise RulePackError(f"{name}: its id must be the file name ('{spec.id}')")
    valuesets = {spec.id: _value_set(spec) for spec in specs.values()}
    valueset_specs = {spec.id: spec for spec in specs.values()}

    def valueset(name: str, where: str) -> ValueSet:
        if name not in valuesets:
            raise RulePackError(f"{where}: value set '{name}' not found in valuesets/")
        return valuesets[name]

    entries = _parameters(manifest, site)
    parameters = _typed_parameters(entries)
    catalogue = _catalogue(_parse(s.AnalyteFile, raw["analytes.yaml"], "analytes.yaml"), valueset)
    conditions = _conditions(_parse(s.ConditionsFile, raw["conditions.yaml"], "conditions.yaml"), valueset, parameters)
    dosing = _parse(s.DosingFile, raw["dosing.yaml"], "dosing.yaml")
    protocol, product, safety, drugs = _dosing(dosing, valueset, catalogue)
    order_template = _order_template(dosing, drugs)
    conditions = ConditionCodes(
        conditions.underlying,
        conditions.findings,
        valueset(dosing.valuesets.immunosuppressants, "dosing.yaml"),
        parameters.immunosuppression_long_term,
    )
    compiler = _SetCompiler(catalogue, parameters)
    sets = tuple(
        compiler.compile(_parse(s.CriteriaSetSpec, doc, name), name)
        for name, doc in raw.items()
        if name.startswith("criteria/")
    )
    by_key = {criteria.key: criteria for criteria in sets}
    if sorted(by_key) != sorted(manifest.sets) or len(set(manifest.sets)) != len(manifest.sets):
        raise RulePackError(f"pack.yaml: 'sets' must list each criteria file once (files: {sorted(by_key)})")
    warning = manifest.decision.warning.ferritin
    decision = Decision(
        critical=manifest.decision.critical,
        warning=manifest.decision.warning.why,
        warning_ferritin=compiler.threshold(A.FERRITIN, warning, "pack.yaml decision.warning.ferritin"),
        warning_ferritin_citation=warning.citation,
    )
    workup_file = _parse(s.WorkupFile, raw["workup.yaml"], "workup.yaml")
    workup = tuple(_workup_group(group, compiler, set(by_key)) for group in workup_file.groups)
    return RulePack(
        id=manifest.id,
        version=manifest.version,
        title=manifest.title,
        sha256=hashlib.sha256(_canonical_json(raw)).hexdigest(),
        source=folder,
        site=site.site if site else None,
        site_why=site.why if site else None,
        parameters=parameters,
        parameter_entries=entries,
        catalogue=catalogue,
        valuesets=valuesets,
        valueset_specs=valueset_specs,
        conditions=conditions,
        drugs=drugs,
        sets=tuple(by_key[key] for key in manifest.sets),
        decision=decision,
        workup=workup,
        workup_source=workup_file.source,
        protocol=protocol,
        product=product,
        safety=safety,
        order=order_template,
    )


def _workup_group(spec: s.WorkupGroupSpec, compiler: _SetCompiler, set_keys: set[str]) -> WorkupGroup:
    compiler.where = "workup.yaml"
    unknown_sets = set(spec.for_sets) - set_keys
    if unknown_sets:
        raise RulePackError(f"workup.yaml: {spec.key}: unknown criteria sets {sorted(unknown_sets)}")
    requirements = tuple(
        (compiler.analyte(entry),) if isinstance(entry, str) else tuple(compiler.analyte(name) for name in entry)
        for entry in spec.analytes
    )
    return WorkupGroup(spec.key, spec.label, spec.order.code, spec.order.display, requirements, spec.for_sets)


def _value_set(spec: s.ValueSetSpec) -> ValueSet:
    codes = [
        (include.match, system, concept.code)
        for include in spec.include
        for system in include.all_systems()
        for concept in include.concepts
    ]
    return build_value_set(spec.id, spec.title, codes=codes, words=spec.text)


def _parameters(manifest: s.PackManifest, site: s.SiteOverrides | None) -> dict[str, ParameterEntry]:
    entries = {name: ParameterEntry(spec, spec.value, False) for name, spec in manifest.parameters.items()}
    for name, value in (site.parameters if site else {}).items():
        if name not in entries:
            raise RulePackError(f"site overrides: unknown parameter '{name}'")
        spec = entries[name].spec
        if spec.bounds is not None and not spec.bounds[0] <= value <= spec.bounds[1]:
            raise RulePackError(f"site overrides: {name} = {value} is outside its bounds {list(spec.bounds)}")
        if spec.allowed is not None and value not in spec.allowed:
            raise RulePackError(f"site overrides: {name} = {value} is not one of {list(spec.allowed)}")
        entries[name] = ParameterEntry(spec, value, True)
    return entries


def _typed_parameters(entries: Mapping[str, ParameterEntry]) -> Parameters:
    def value(name: str) -> Decimal:
        if name not in entries:
            raise RulePackError(f"pack.yaml: parameter '{name}' is missing")
        return entries[name].value

    def whole(name: str) -> int:
        number = value(name)
        if number != number.to_integral_value():
            raise RulePackError(f"pack.yaml: parameter '{name}' must be a whole number")
        return int(number)

    return Parameters(
        lab_window=timedelta(hours=whole("lab_window_hours")),
        temperature_window=timedelta(hours=whole("temperature_window_hours")),
        future_tolerance=timedelta(minutes=whole("future_tolerance_minutes")),
        adult_age_years=whole("adult_age_years"),
        weight_max_age_child=timedelta(days=whole("weight_max_age_days_child")),
        weight_max_age_adult=timedelta(days=whole("weight_max_age_days_adult")),
        safety_lab_lookback=timedelta(days=whole("safety_lab_lookback_days")),
        height_max_age=timedelta(days=whole("height_max_age_days")),
        immunosuppression_long_term=timedelta(days=whole("immunosuppression_long_term_days")),
        trend_min_change=value("trend_min_change_percent") / 100,
        underdose_tolerance=value("underdose_tolerance_percent") / 100,
        dose_rounding_mg=value("dose_rounding_mg"),
    )


def _catalogue(file: s.AnalyteFile, valueset: Callable[[str, str], ValueSet]) -> Catalogue:
    analytes: dict[A, Analyte] = {}
    known = {key.value: key for key in A}
    for spec in file.analytes:
        where = f"analytes.yaml: {spec.key}"
        if spec.key not in known:
            raise RulePackError(f"{where}: not an analyte the code knows ({sorted(known)})")
        if spec.unit not in spec.conversions:
            raise RulePackError(f"{where}: the canonical unit {spec.unit} has no conversion entry")
        for alias, target in spec.aliases.items():
            if target not in spec.conversions:
                raise RulePackError(f"{where}: alias '{alias}' points at '{target}', which is not an accepted unit")
        codes = valueset(spec.valueset, where)
        loinc = codes.codes(LOINC)
        if not loinc:
            raise RulePackError(f"{where}: value set '{spec.valueset}' has no LOINC codes")
        analytes[known[spec.key]] = Analyte(
            key=spec.key,
            name=spec.name,
            codes=frozenset(loinc),
            unit=spec.unit,
            display_unit=spec.display_unit,
            conversions={
                unit: Conversion(c.factor, c.divisor, c.shift, c.note, c.basis, c.molar_mass)
                for unit, c in spec.conversions.items()
            },
            plausible=spec.plausible,
            unitless_ok=spec.unitless_ok,
            aliases=dict(spec.aliases),
            valueset=spec.valueset,
        )
    missing = set(A) - set(analytes)
    if missing:
        raise RulePackError(f"analytes.yaml: missing analytes {sorted(key.value for key in missing)}")
    try:
        return Catalogue(analytes)
    except ValueError as error:
        raise RulePackError(f"analytes.yaml: {error}") from error


def _conditions(
    file: s.ConditionsFile, valueset: Callable[[str, str], ValueSet], parameters: Parameters
) -> ConditionCodes:
    def named(kind: str, entries: Mapping[str, s.NamedValueSet], keys: Mapping[str, Any]) -> dict[Any, NamedValueSet]:
        if set(entries) != set(keys):
            raise RulePackError(f"conditions.yaml: {kind} must be exactly {sorted(keys)}")
        return {
            keys[name]: NamedValueSet(
                entry.name, valueset(entry.valueset, f"conditions.yaml {kind}.{name}"), entry.counts == "known"
            )
            for name, entry in entries.items()
        }

    empty = build_value_set("none", "none", codes=())
    return ConditionCodes(
        underlying=named("underlying", file.underlying, {key.value: key for key in Underlying}),
        findings=named("findings", file.findings, {key.value: key for key in Finding}),
        immunosuppressants=empty,  # set by the caller from dosing.yaml
        long_term=parameters.immunosuppression_long_term,
    )


def _order_template(file: s.DosingFile, drugs: DrugCodes) -> OrderTemplate:
    order = file.order
    if not any(drugs.anakinra.contains(c.system, c.code) for c in order.medication.coding):
        raise RulePackError("dosing.yaml: order.medication has no coding in the anakinra value set")
    if not any(drugs.subcutaneous.contains(c.system, c.code) for c in order.route.coding):
        raise RulePackError("dosing.yaml: order.route has no coding in the subcutaneous value set")

    def concept(spec: s.ConceptForOrders) -> dict[str, object]:
        return {"coding": [c.model_dump() for c in spec.coding], "text": spec.text}

    return OrderTemplate(concept(order.medication), concept(order.route), order.note)


def _dosing(
    file: s.DosingFile, valueset: Callable[[str, str], ValueSet], catalogue: Catalogue
) -> tuple[Protocol, Product, SafetyRules, DrugCodes]:
    spec = file.protocol
    bands = tuple(
        DoseBand(b.key, b.label, b.applies_to, b.mg_per_kg_per_day, b.max_mg_per_day, b.interval_hours)
        for b in spec.bands
    )
    for band in bands:
        if 24 % band.interval_hours:
            raise RulePackError(f"dosing.yaml: band {band.key}: 24 h is not a whole number of {band.interval_hours} h")
        if band.max_mg_per_dose != spec.max_mg_per_dose:
            raise RulePackError(
                f"dosing.yaml: band {band.key}: cap per dose {band.max_mg_per_dose} mg differs from max_mg_per_dose"
            )
    protocol = Protocol(
        version=spec.version,
        citation=spec.citation,
        url=spec.url,
        route=spec.route,
        child_band=bands[0],
        other_band=bands[1],
        band_limit_kg=spec.band_limit_kg,
        band_limit_note=spec.band_limit_note,
        max_mg_per_dose=spec.max_mg_per_dose,
        minimum_age_years=spec.minimum_age_years,
        max_mg_per_dose_note=spec.max_mg_per_dose_note,
        minimum_age_note=spec.minimum_age_note,
    )
    product = Product(
        file.product.label,
        file.product.mg,
        file.product.ml,
        file.product.smallest_measurable_mg,
        file.product.citation,
    )
    safety = file.safety
    anc = catalogue[A.ANC]
    if safety.anc_limit.op != "<" or safety.anc_limit.unit not in anc.conversions:
        raise RulePackError("dosing.yaml: safety.anc_limit must be '<' in an accepted neutrophil unit")
    rules = SafetyRules(
        crcl_limit_ml_min=safety.crcl_limit_ml_min,
        renal_citation=safety.renal_citation,
        anc_limit=anc.to_canonical(safety.anc_limit.value, safety.anc_limit.unit),
        anc_citation=safety.anc_citation,
        tnf_citation=safety.tnf_citation,
        cg_age_from=safety.cockcroft_gault.age_from,
        cg_denominator=safety.cockcroft_gault.denominator,
        cg_female_factor=safety.cockcroft_gault.female_factor,
        cg_citation=safety.cockcroft_gault.citation,
        schwartz_k=safety.bedside_schwartz.k,
        schwartz_citation=safety.bedside_schwartz.citation,
    )
    if any(per_day <= 0 for per_day in file.timing_codes.values()):
        raise RulePackError("dosing.yaml: timing codes need a positive number of doses per day")
    drugs = DrugCodes(
        anakinra=valueset(file.valuesets.anakinra, "dosing.yaml valuesets"),
        tnf_inhibitors=valueset(file.valuesets.tnf_inhibitors, "dosing.yaml valuesets"),
        subcutaneous=valueset(file.valuesets.subcutaneous, "dosing.yaml valuesets"),
        timing_codes={code.upper(): per_day for code, per_day in file.timing_codes.items()},
        unit_dose_products=valueset(file.product.unit_dose_valueset, "dosing.yaml product"),
        unit_dose_units=frozenset(file.product.unit_dose_units),
        mg_per_unit=file.product.mg,
        ml_per_unit=file.product.ml,
    )
    return protocol, product, rules, drugs


class _SetCompiler:
    """Turns one criteria file into typed definitions, converting every threshold through the catalogue."""

    def __init__(self, catalogue: Catalogue, parameters: Parameters) -> None:
        self.catalogue = catalogue
        self.parameters = parameters
        self.analytes = {key.value: key for key in A}
        self.findings = {key.value: key for key in Finding}
        self.diseases = {key.value: key for key in Underlying}

    def compile(self, spec: s.CriteriaSetSpec, where: str) -> d.CriteriaSet:
        self.where = where
        self.named = spec.items
        self.used: set[str] = set()
        rule = self.item(spec.rule) if spec.rule is not None else None
        score = self.score(spec.score) if spec.score is not None else None
        unused = set(spec.items) - self.used
        if unused:
            raise RulePackError(f"{where}: items defined but never used: {sorted(unused)}")
        if spec.key != Path(where).stem:
            raise RulePackError(f"{where}: the set key must be the file name ('{spec.key}')")
        return d.CriteriaSet(
            key=spec.key,
            name=spec.name,
            short_name=spec.short_name,
            version=spec.version,
            role=spec.role,
            citation=spec.citation.text,
            url=spec.citation.url,
            setting=spec.setting,
            population=tuple(self.precondition(p) for p in spec.population),
            assumptions=spec.assumptions,
            notes=tuple(
                d.SetNote(
                    self.disease(n.when_diagnosis),
                    self.disease(n.unless_diagnosis) if n.unless_diagnosis else None,
                    n.text,
                )
                for n in spec.notes
            ),
            rule=rule,
            score=score,
        )

    # -- names ---------------------------------------------------------------------------------------------------
    def analyte(self, name: str) -> A:
        if name not in self.analytes:
            raise RulePackError(f"{self.where}: unknown analyte '{name}'")
        return self.analytes[name]

    def finding(self, name: str) -> Finding:
        if name not in self.findings:
            raise RulePackError(f"{self.where}: unknown finding '{name}'")
        return self.findings[name]

    def disease(self, name: str) -> Underlying:
        if name not in self.diseases:
            raise RulePackError(f"{self.where}: unknown diagnosis '{name}'")
        return self.diseases[name]

    def canonical(self, analyte: A, value: Decimal, unit: str, what: str) -> Decimal:
        definition = self.catalogue[analyte]
        try:
            return definition.to_canonical(value, unit)
        except KeyError:
            raise RulePackError(
                f"{self.where}: {what}: unit '{unit}' is not an accepted unit of {analyte.value} "
                f"({sorted(definition.conversions)})"
            ) from None

    def threshold(self, analyte: A, spec: s.ThresholdSpec, what: str) -> d.Threshold:
        self.where = getattr(self, "where", "pack.yaml")
        return d.Threshold(spec.op, spec.value, spec.unit, self.canonical(analyte, spec.value, spec.unit, what))

    # -- items ---------------------------------------------------------------------------------------------------
    def item(self, ref: s.ItemRef) -> d.Item:
        if isinstance(ref, str):
            if ref not in self.named:
                raise RulePackError(f"{self.where}: item '{ref}' is used but not defined under 'items'")
            self.used.add(ref)
            return self.item_spec(self.named[ref], key=ref)
        return self.item_spec(ref, key=None)

    def item_spec(self, spec: s.ItemSpec, *, key: str | None) -> d.Item:
        if isinstance(spec, s.LabItemSpec):
            names = (spec.lab,) if isinstance(spec.lab, str) else spec.lab
            analytes = tuple(self.analyte(name) for name in names)
            threshold = d.Threshold(spec.op, spec.value, spec.unit, Decimal(0))
            converted = {self.canonical(a, spec.value, spec.unit, spec.label) for a in analytes}
            if len(converted) != 1:
                raise RulePackError(f"{self.where}: {spec.label}: the analytes convert the threshold differently")
            threshold = d.Threshold(spec.op, spec.value, spec.unit, converted.pop())
            infants = None
            if spec.infants is not None:
                infants = d.InfantThreshold(
                    spec.infants.under_age_days,
                    d.Threshold(
                        spec.op,
                        spec.infants.value,
                        spec.unit,
                        self.canonical(analytes[0], spec.infants.value, spec.unit, spec.label),
                    ),
                )
            if spec.reading == "max" and analytes != (A.TEMPERATURE,):
                raise RulePackError(f"{self.where}: {spec.label}: 'max' reading is for temperature only")
            return d.LabItem(key or names[0], spec.label, analytes, threshold, spec.reading, spec.or_above_uln, infants)
        if isinstance(spec, s.FindingItemSpec):
            return d.FindingItem(key or spec.finding, spec.label, self.finding(spec.finding))
        if isinstance(spec, s.UnreadableItemSpec):
            return d.UnreadableItem(key or spec.label, spec.label, spec.unreadable)
        if isinstance(spec, s.TrendItemSpec):
            return d.TrendItem(spec.key, spec.label, self.analyte(spec.trend), spec.direction)
        if isinstance(spec, s.RatioItemSpec):
            ratio = spec.ratio
            numerator, denominator = self.analyte(ratio.numerator.lab), self.analyte(ratio.denominator.lab)
            for analyte, unit in ((numerator, ratio.numerator.unit), (denominator, ratio.denominator.unit)):
                self.canonical(analyte, Decimal(1), unit, ratio.label)  # the unit must be accepted
            return d.RatioItem(
                ratio.key,
                ratio.label,
                numerator,
                ratio.numerator.unit,
                denominator,
                ratio.denominator.unit,
                ratio.op,
                ratio.value,
            )
        if isinstance(spec, s.AnyOfSpec):
            group = spec.any_of
            items = tuple(self.item(ref) for ref in group.items)
            return d.Group(group.key, group.label, "any", 1, items)
        if isinstance(spec, s.AllOfSpec):
            group = spec.all_of
            items = tuple(self.item(ref) for ref in group.items)
            return d.Group(group.key, group.label, "all", len(items), items)
        group = spec.k_of
        items = tuple(self.item(ref) for ref in group.items)
        assert group.k is not None  # checked by the schema
        return d.Group(group.key, group.label, "k", group.k, items)

    def precondition(self, spec: s.PopulationSpec) -> d.Precondition:
        if spec.diagnosis is not None:
            return d.Precondition(spec.citation, diagnosis=tuple(self.disease(n) for n in spec.diagnosis))
        if spec.no_diagnosis is not None:
            return d.Precondition(spec.citation, no_diagnosis=tuple(self.disease(n) for n in spec.no_diagnosis))
        if spec.min_age_years is not None:
            if spec.min_age_years == "adult":
                return d.Precondition(spec.citation, min_age_years=self.parameters.adult_age_years, adult_age=True)
            return d.Precondition(spec.citation, min_age_years=spec.min_age_years)
        assert spec.febrile is not None
        return d.Precondition(spec.citation, febrile=self.threshold(A.TEMPERATURE, spec.febrile, "febrile"))

    # -- scores --------------------------------------------------------------------------------------------------
    def score(self, spec: s.ScoreSpec) -> d.Score:
        items = tuple(self.score_item(item) for item in spec.items)
        terms = tuple(self.term(term) for term in spec.terms)
        return d.Score(
            spec.cutoff.op,
            spec.cutoff.value,
            tuple(d.Interpretation(i.text, i.at_most, i.at_least) for i in spec.interpretation),
            items,
            terms,
        )

    def score_item(self, spec: s.ScoreItemSpec) -> d.ScoreItem:
        if isinstance(spec, s.BandsScoreItem):
            analyte = self.analyte(spec.lab)
            bands = tuple(self.band(analyte, spec.unit, band, spec.label) for band in spec.bands)
            self.check_bands(bands, spec.label)
            return d.BandsScoreItem(spec.key, spec.label, analyte, spec.unit, spec.reading, bands)
        if isinstance(spec, s.IfScoreItem):
            return d.IfScoreItem(spec.key, spec.label, self.item(spec.if_), spec.points)
        if isinstance(spec, s.ImmunosuppressionScoreItem):
            return d.ImmunosuppressionScoreItem(spec.key, spec.label, spec.points)
        return d.CountScoreItem(
            spec.key, spec.label, tuple(self.item(ref) for ref in spec.count_of), spec.points_by_count
        )

    def band(self, analyte: A, unit: str, spec: s.Band, label: str) -> d.PointsBand:
        def bound(value: Decimal | None, inclusive: bool) -> d.Bound | None:
            if value is None:
                return None
            return d.Bound(value, self.canonical(analyte, value, unit, label), inclusive)

        if spec.below is not None:
            return d.PointsBand(spec.points, None, bound(spec.below, False))
        if spec.above is not None:
            return d.PointsBand(spec.points, bound(spec.above, False), None)
        if spec.from_ is None or spec.to is None:
            raise RulePackError(f"{self.where}: {label}: a band needs 'below', 'above' or 'from' and 'to'")
        return d.PointsBand(spec.points, bound(spec.from_, True), bound(spec.to, True))

    def check_bands(self, bands: tuple[d.PointsBand, ...], label: str) -> None:
        """Contiguous, no gap, no overlap: each band starts exactly where the previous one ends."""
        if bands[0].low is not None or bands[-1].high is not None:
            raise RulePackError(f"{self.where}: {label}: the bands must be open at both ends")
        for lower, upper in itertools.pairwise(bands):
            end, start = lower.high, upper.low
            if end is None or start is None or end.canonical != start.canonical or end.inclusive == start.inclusive:
                raise RulePackError(f"{self.where}: {label}: bands leave a gap or overlap")

    def term(self, spec: s.LinearTerm) -> d.LinearTerm:
        if spec.lab is not None and spec.unit is not None:
            analyte = self.analyte(spec.lab)
            self.canonical(analyte, Decimal(1), spec.unit, spec.label)
            return d.LinearTerm(spec.key, spec.label, spec.coefficient, analyte=analyte, unit=spec.unit)
        if spec.finding is not None:
            return d.LinearTerm(spec.key, spec.label, spec.coefficient, finding=self.finding(spec.finding))
        return d.LinearTerm(spec.key, spec.label, spec.coefficient)
