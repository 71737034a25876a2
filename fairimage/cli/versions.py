"""Commands for a study's history: its description, versions, differences, publication, and the provenance
of its images."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from fairimage.cli.common import (
    JsonOption,
    RepoOption,
    _json,
    as_operator,
    opened,
    operator_principal,
    out,
    print_listing,
)
from fairimage.model.discovery import exports as discovery_exports
from fairimage.model.governance.version import Version, VersionDiff
from fairimage.services.discovery import exports
from fairimage.services.governance import policies, provenance, versions

StudyArgument = Annotated[str, typer.Argument(help="study id or name")]


def register(app: typer.Typer, study_app: typer.Typer) -> None:
    app.command("versions")(versions_command)
    app.command("diff")(diff_command)
    app.command("publish")(publish_command)
    app.command("provenance")(provenance_command)
    app.command("export")(export_command)
    study_app.command("describe")(describe_command)


def describe_command(
    study: StudyArgument,
    description: Annotated[str, typer.Argument(help="the new description")],
    repo: RepoOption = None,
) -> None:
    """Set a study's description; this makes a new version of the study."""
    with opened(repo) as repository:
        policies.describe_study(repository, operator_principal(), study, description)
        latest = versions.get_version(repository, operator_principal(), study, None)
    out.print(f"{latest.study_name}: description set (version {latest.number})", highlight=False)


def versions_command(study: StudyArgument, repo: RepoOption = None, as_json: JsonOption = False) -> None:
    """List a study's versions: every ingest run and metadata change made one."""
    found = as_operator(repo, versions.list_versions, study)
    if as_json:
        _json([_summary(version) for version in found])
        return
    table = Table("version", "created", "by", "images", "published", "checksum", "note", box=None)
    for version in found:
        table.add_row(
            str(version.number),
            f"{version.created_at:%Y-%m-%d %H:%M}",
            version.created_by,
            str(version.image_count),
            f"{version.published_at:%Y-%m-%d}" if version.published_at else "",
            version.content_sha256[:12] + ("" if version.intact else " DAMAGED"),
            version.note,
        )
    print_listing(table, f"{study}: no versions yet.")


def diff_command(
    study: StudyArgument,
    before: Annotated[int, typer.Argument(help="the earlier version's number")],
    after: Annotated[int, typer.Argument(help="the later version's number")],
    repo: RepoOption = None,
    as_json: JsonOption = False,
) -> None:
    """What changed between two versions of a study: metadata fields and images."""
    changes = as_operator(repo, versions.diff, study, before, after)
    if as_json:
        _json(changes.model_dump(mode="json"))
        return
    out.print(_diff_text(changes), highlight=False, markup=False)


def _diff_text(changes: VersionDiff) -> str:
    lines = [f"version {changes.before} -> {changes.after}"]
    if changes.unchanged:
        lines.append("  no changes")
    lines += [f"  {c.field}: {c.before!r} -> {c.after!r}" for c in changes.metadata]
    lines += [f"  + image {image.id} {image.name}" for image in changes.added]
    lines += [f"  - image {image.id} {image.name}" for image in changes.removed]
    lines += [f"  ! {c.field}: manifest {c.before} -> {c.after}" for c in changes.changed]
    return "\n".join(lines)


def publish_command(
    study: StudyArgument,
    version: Annotated[int | None, typer.Option(help="the version to publish (default: the latest)")] = None,
    repo: RepoOption = None,
    as_json: JsonOption = False,
) -> None:
    """Publish a version of a study: frozen and citable by its persistent identifier."""
    with opened(repo) as repository:
        published = versions.publish(repository, operator_principal(), study, version)
        url = repository.settings.pid_base + published.id
        prefix = repository.settings.doi_prefix
    doi = discovery_exports.doi(prefix, published.study_id, published.number) if prefix else None
    if as_json:
        _json({**_summary(published), "pid_url": url, "citation": published.citation(url), "doi": doi})
        return
    out.print(f"published {published.study_name} version {published.number} as {url}", highlight=False)
    if doi:
        out.print(f"its DOI, once registered with DataCite: {doi} (fairimage export STUDY --as datacite "
                  f"--version {published.number})", highlight=False)  # fmt: skip
    out.print(f"cite as: {published.citation(url)}", highlight=False)


def provenance_command(
    image: Annotated[str, typer.Argument(help="image id")],
    repo: RepoOption = None,
    as_json: JsonOption = False,
) -> None:
    """Where an image came from and how it was made; --json prints it as W3C PROV JSON-LD."""
    with opened(repo) as repository:
        document = provenance.image_provenance(
            repository, operator_principal(), image, repository.settings.pid_base
        )
    if as_json:
        _json(document)
        return
    nodes = {node["@id"]: node for node in document["@graph"]}
    stored, source = document["@graph"][0], document["@graph"][1]
    out.print(f"{stored['schema:name']} ({image})", highlight=False, markup=False)
    out.print(
        f"  derived from {source['schema:name']} ({source['schema:encodingFormat']}, "
        f"{source['schema:contentSize']} bytes, sha256 {source['schema:sha256']})",
        highlight=False,
        markup=False,
    )
    run = nodes.get(stored.get("prov:wasGeneratedBy", {}).get("@id", ""))
    if run is None:
        out.print("  the ingest run was not recorded (the image is older than provenance records)")
        return
    person = nodes[stored["prov:wasAttributedTo"]["@id"]]
    software = next(node for node in nodes.values() if "prov:SoftwareAgent" in node["@type"])
    plan = nodes[run["prov:qualifiedAssociation"]["prov:hadPlan"]["@id"]]
    out.print(
        f"  by {run['@id']}, started {run['prov:startedAtTime']['@value']} by {person['rdfs:label']}, "
        f"with fairimage {software['schema:softwareVersion']} "
        f"({', '.join(software['schema:softwareRequirements'])})",
        highlight=False,
        markup=False,
    )
    for item in plan["schema:additionalProperty"]:
        out.print(f"  {item['schema:name']} = {item['schema:value']}", highlight=False, markup=False)


def _summary(version: Version) -> dict[str, object]:
    return version.model_dump(mode="json", exclude={"content"})


def export_command(
    study: StudyArgument,
    kind: Annotated[
        str, typer.Option("--as", help="ro-crate, datacite, datacite-xml or rembi-json")
    ] = "ro-crate",
    to: Annotated[
        Path | None, typer.Option(help="where to write: a folder or a .zip (RO-Crate), a .json")
    ] = None,
    copy_images: Annotated[
        bool,
        typer.Option("--copy-images", help="copy the OME-Zarr images into the RO-Crate (default: link them)"),
    ] = False,
    version: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="DataCite: the record of this published version (its own DOI) rather than of the study "
            "(its concept DOI)",
        ),
    ] = None,
    repo: RepoOption = None,
) -> None:
    """Export a study as an RO-Crate 1.3, DataCite 4.5 (JSON or kernel-4 XML, to register a DOI) or REMBI
    JSON."""
    default = {"ro-crate": "-ro-crate", "datacite": "-datacite.json", "rembi-json": "-rembi.json"}.get(
        kind, ""
    )
    with opened(repo) as repository:
        name = to or Path(f"{study.replace(' ', '_')}{default}")
        written = exports.export(
            repository,
            operator_principal(),
            study,
            kind,
            name,
            repository.settings.public_url,
            copy_images,
            version,
        )
    out.print(f"wrote {written}", highlight=False)
