"""Commands for consent terms (DUO) and access requests: apply, list, show, approve, deny, revoke."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from fairimage import ontology
from fairimage.cli.common import (
    JsonOption,
    RepoOption,
    _json,
    as_operator,
    opened,
    out,
    print_listing,
)
from fairimage.cli.governance import UntilOption, _date, study_app
from fairimage.model.errors import InvalidInputError
from fairimage.model.governance.duo import DataUse, Match, ResearchPurpose
from fairimage.services.governance import access_requests, accounts, policies
from fairimage.services.governance.access_requests import AccessRequest

access_app = typer.Typer(
    help="Access requests to restricted studies: apply with a research purpose; owners and data "
    "stewards approve or deny.",
    no_args_is_help=True,
)

NoteOption = Annotated[str, typer.Option("--note", help="the reason, shown to the applicant")]


def register(app: typer.Typer) -> None:
    app.add_typer(access_app, name="access")
    study_app.command("consent")(study_consent)
    app.command("duo")(duo_terms)


def study_consent(
    study: Annotated[str, typer.Argument(help="study id or name")],
    permission: Annotated[
        str | None, typer.Argument(help="NRES, GRU, HMB, DS or POA (or a DUO id); leave out with --clear")
    ] = None,
    modifier: Annotated[list[str] | None, typer.Option("--modifier", "-m", help="NPU, IRB, PUB ...")] = None,
    disease: Annotated[list[str] | None, typer.Option(help="MONDO term, for DS")] = None,
    region: Annotated[list[str] | None, typer.Option(help="GS: a region where use is allowed")] = None,
    institution: Annotated[list[str] | None, typer.Option(help="IS: an approved institution")] = None,
    project: Annotated[list[str] | None, typer.Option(help="PS: an approved project")] = None,
    research_type: Annotated[list[str] | None, typer.Option(help="RS: an allowed research type")] = None,
    months: Annotated[int | None, typer.Option(help="TS: how many months a grant may last")] = None,
    moratorium_until: Annotated[
        str | None, typer.Option(help="MOR: no publication before YYYY-MM-DD")
    ] = None,
    clear: Annotated[bool, typer.Option("--clear", help="remove the study's consent terms")] = False,
    repo: RepoOption = None,
    as_json: JsonOption = False,
) -> None:
    """Set a study's consent terms in DUO (the Data Use Ontology); access requests are assessed on them."""
    terms = None
    if not clear:
        if permission is None:
            raise InvalidInputError("give a data use permission (e.g. HMB), or --clear")
        until = _date(moratorium_until)
        terms = DataUse(
            permission=permission,
            modifiers=tuple(modifier or ()),
            diseases=tuple(disease or ()),
            regions=tuple(region or ()),
            institutions=tuple(institution or ()),
            projects=tuple(project or ()),
            research_types=tuple(research_type or ()),
            months=months,
            moratorium_until=until.date() if until else None,
        )
    saved = as_operator(repo, policies.set_data_use, study, terms)
    if as_json:
        _json(saved.model_dump(mode="json") if saved else None)
    else:
        out.print(f"{study}: consent terms {_terms(saved)}", highlight=False)


def duo_terms(as_json: JsonOption = False) -> None:
    """List the DUO terms fairimage knows (the bundled release)."""
    vocabulary = ontology.duo()
    if as_json:
        _json([{**term.__dict__, "iri": term.iri} for term in vocabulary.terms])
        return
    table = Table("id", "shorthand", "kind", "label", box=None, title=f"DUO {vocabulary.version}")
    for term in vocabulary.terms:
        table.add_row(term.id, term.shorthand, term.kind, term.label)
    print_listing(table)


@access_app.command("request")
def access_request(
    study: Annotated[str, typer.Argument(help="study id or name")],
    user: Annotated[str, typer.Option("--user", help="the applicant (a user name)")],
    title: Annotated[str, typer.Option(help="the project's title")],
    use: Annotated[str, typer.Option(help="GRU, HMB, DS or POA: what kind of research")] = "HMB",
    description: Annotated[str, typer.Option(help="what will be done with the data")] = "",
    disease: Annotated[list[str] | None, typer.Option(help="MONDO term, for DS research")] = None,
    methods_development: Annotated[bool, typer.Option(help="develops methods or software")] = False,
    commercial: Annotated[bool, typer.Option(help="for commercial use")] = False,
    for_profit: Annotated[bool, typer.Option(help="by a for-profit organisation")] = False,
    genetic: Annotated[bool, typer.Option(help="a genetic study")] = False,
    clinical_care: Annotated[bool, typer.Option(help="for clinical care")] = False,
    region: Annotated[str, typer.Option(help="where the data will be used")] = "",
    institution: Annotated[str, typer.Option(help="the applicant's institution")] = "",
    project: Annotated[str, typer.Option(help="the project's identifier")] = "",
    research_type: Annotated[str, typer.Option(help="the research type")] = "",
    ethics_approval: Annotated[str, typer.Option(help="IRB/ERB approval reference")] = "",
    accept: Annotated[
        list[str] | None, typer.Option(help="a condition agreed to: PUB, COL, RTN, MOR, TS")
    ] = None,
    check: Annotated[bool, typer.Option("--check", help="only assess the purpose; do not apply")] = False,
    repo: RepoOption = None,
    as_json: JsonOption = False,
) -> None:
    """Apply for access to a restricted study on a user's behalf (users apply themselves over the API)."""
    purpose = ResearchPurpose(
        title=title,
        description=description,
        use=use,
        diseases=tuple(disease or ()),
        methods_development=methods_development,
        commercial=commercial,
        for_profit_organisation=for_profit,
        genetic_study=genetic,
        clinical_care=clinical_care,
        region=region,
        institution=institution,
        project=project,
        research_type=research_type,
        ethics_approval=ethics_approval,
        accepts=tuple(accept or ()),
    )
    with opened(repo) as repository:
        applicant = accounts.principal_for_user(repository, user)
        if check:
            result = access_requests.assess(repository, applicant, study, purpose)
            _json(_assessment(result)) if as_json else _print_assessment(result)
            return
        request = access_requests.submit(repository, applicant, study, purpose)
    if as_json:
        _json(_request_json(request))
    else:
        out.print(f"request {request.id}: {request.state} ({request.assessment.decision})", highlight=False)
        _print_assessment(request.assessment)


@access_app.command("list")
def access_list(
    study: Annotated[str | None, typer.Option(help="only this study (id or name)")] = None,
    state: Annotated[
        str | None, typer.Option(help="submitted, approved, denied, withdrawn or revoked")
    ] = None,
    repo: RepoOption = None,
    as_json: JsonOption = False,
) -> None:
    """List access requests, oldest first."""
    found = as_operator(repo, access_requests.list_requests, study, state)
    if as_json:
        _json([_request_json(request) for request in found])
        return
    table = Table("id", "study", "applicant", "purpose", "assessment", "state", box=None)
    for request in found:
        table.add_row(
            request.id,
            request.study,
            request.applicant,
            request.purpose.title,
            request.assessment.decision,
            request.state,
        )
    print_listing(table, "No access requests.")


@access_app.command("show")
def access_show(
    request_id: Annotated[str, typer.Argument(help="the request's id")],
    repo: RepoOption = None,
    as_json: JsonOption = False,
) -> None:
    """One request: the purpose, the assessment against the consent terms, and the decision."""
    request = as_operator(repo, access_requests.get_request, request_id)
    if as_json:
        _json(_request_json(request))
        return
    out.print(
        f"{request.id}: {request.applicant} asks for {request.study} ({request.state})", highlight=False
    )
    out.print(f"purpose: {request.purpose.title} [{ontology.duo().shorthand(request.purpose.use)}]")
    _print_assessment(request.assessment)
    if request.decided_by:
        out.print(f"decided by {request.decided_by} at {request.decided_at}: {request.decision_note}")
    if request.access_until:
        out.print(f"access until {request.access_until.date()}")


@access_app.command("approve")
def access_approve(
    request_id: Annotated[str, typer.Argument(help="the request's id")],
    until: UntilOption = None,
    note: Annotated[str, typer.Option("--note", help="a note for the applicant")] = "",
    repo: RepoOption = None,
    as_json: JsonOption = False,
) -> None:
    """Approve a request: the applicant may read the study (until --until, or the consent's TS limit)."""
    request = as_operator(repo, access_requests.approve, request_id, _date(until), note)
    _decided(request, as_json)


@access_app.command("deny")
def access_deny(
    request_id: Annotated[str, typer.Argument(help="the request's id")],
    note: NoteOption,
    repo: RepoOption = None,
    as_json: JsonOption = False,
) -> None:
    """Deny a request, with a reason the applicant sees."""
    request = as_operator(repo, access_requests.deny, request_id, note)
    _decided(request, as_json)


@access_app.command("revoke")
def access_revoke(
    request_id: Annotated[str, typer.Argument(help="the request's id")],
    note: NoteOption,
    repo: RepoOption = None,
    as_json: JsonOption = False,
) -> None:
    """Revoke an approved request's access, effective at the applicant's next request."""
    request = as_operator(repo, access_requests.revoke, request_id, note)
    _decided(request, as_json)


def _decided(request: AccessRequest, as_json: bool) -> None:
    if as_json:
        _json(_request_json(request))
        return
    approved = request.state == "approved" and request.access_until is not None
    until = f" until {request.access_until.date()}" if approved and request.access_until else ""
    out.print(f"request {request.id}: {request.state}{until}", highlight=False)


def _terms(terms: DataUse | None) -> str:
    if terms is None:
        return "cleared"
    name = ontology.duo().shorthand
    words = [name(terms.permission), *[name(m) for m in terms.modifiers]]
    if terms.diseases:
        words.append(f"({', '.join(terms.diseases)})")
    return " ".join(words)


def _assessment(result: Match) -> dict[str, object]:
    return {"decision": result.decision, "reasons": result.reasons, "conditions": result.conditions}


def _print_assessment(result: Match) -> None:
    out.print(f"assessment: {result.decision}", highlight=False)
    for reason in result.reasons:
        out.print(f"  - {reason}", highlight=False)
    for condition in result.conditions:
        out.print(f"  condition: {condition}", highlight=False)


def _request_json(request: AccessRequest) -> dict[str, object]:
    return {
        **request.__dict__,
        "purpose": request.purpose.model_dump(mode="json"),
        "assessment": _assessment(request.assessment),
    }
