"""Trained models as the domain sees them: a model card of our own, and what a card says of the data a model
learnt from.

A model is registered from a bioimage.io package (validated by ``bioimageio.spec``) or from a card of our own
(``ModelCard``, a YAML or JSON file); either way its record keeps what a reader needs to judge it: who made
it, its licence, what it is for and where it fails, how it was trained, its metrics, and the dataset versions
it was trained and evaluated on, by PID. The card's terms follow RDA's FAIR4ML vocabulary (trainedOn,
evaluatedOn, intendedUse, modelRisksBiasLimitations, mlTask).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Kind = Literal["bioimageio", "card"]
Role = Literal["trained", "evaluated"]


class Author(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1)
    orcid: str | None = None
    affiliation: str | None = None


class Training(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str | None = None  # where the training code is: a repository URL, a DOI
    parameters: dict[str, Any] = Field(default_factory=dict)  # epochs, learning rate, augmentations, ...


class PeerDataset(BaseModel):
    """A dataset version on another node that a model learnt from where it is (federated learning): its
    data never came here, only the weights learnt from it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    node: str = Field(min_length=1)  # the peer's name here
    url: str = Field(min_length=1)  # the dataset version's PID at its node: https://node/pid/ds-…
    dataset: str = Field(min_length=1)  # its id there
    images: int = Field(ge=0)  # how many images the model learnt from there
    run: str = ""  # the analysis run there, in its audit log

    @field_validator("url")
    @classmethod
    def _web(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("a dataset's PID at its node is an http(s) URL")
        return value


class ModelCard(BaseModel):
    """A model card of our own: what a model without a bioimage.io package says of itself."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=128)
    version: str = "1"
    description: str = ""
    authors: list[Author] = Field(default_factory=list)
    license: str | None = None
    task: str | None = None  # the ML task: "instance segmentation of nuclei"
    intended_use: str | None = None
    limitations: str | None = None  # risks, biases, where it fails
    training: Training = Field(default_factory=Training)
    metrics: dict[str, float | str] = Field(default_factory=dict)
    trained_on: list[str] = Field(default_factory=list)  # dataset versions: ds-…, NAME:VERSION or NAME
    evaluated_on: list[str] = Field(default_factory=list)
    trained_on_peers: list[PeerDataset] = Field(default_factory=list)  # federated: data left where it is
    weights: list[str] = Field(default_factory=list)  # the formats it comes in, where known
    inputs: list[str] = Field(default_factory=list)  # its tensors, e.g. "raw (batch, channel, y, x)"
    outputs: list[str] = Field(default_factory=list)

    @field_validator("authors", mode="before")
    @classmethod
    def _names(cls, value: Any) -> Any:
        """An author may be given by name alone."""
        if isinstance(value, list):
            return [{"name": author} if isinstance(author, str) else author for author in value]
        return value

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int | float) else value


@dataclass(frozen=True)
class DataLink:
    """A dataset version a model was trained or evaluated on, as a given reader may see it: by name where
    they may read it; otherwise only that it exists and on what terms its data may be used."""

    role: Role
    dataset_id: str
    name: str | None  # None: the reader may not read this dataset
    version: int | None
    public: bool  # every study of it is public now
    conditions: list[str]  # one line per study that is not public: its policy and consent (DUO) terms


@dataclass(frozen=True)
class Model:
    id: str
    name: str
    version: str
    kind: Kind
    card: ModelCard
    registered_by: str
    created_at: datetime | None
    package_sha256: str
    files: list[str]  # stored with it, downloadable
    data: list[DataLink] = field(default_factory=list)

    @property
    def trained_on_public_data(self) -> bool:
        """Only what this node can vouch for: a dataset on another node has its terms set there."""
        here = all(link.public for link in self.data if link.role == "trained")
        return here and not self.card.trained_on_peers

    @property
    def training_data_statement(self) -> str:
        """What the card says of the data the model learnt from, plainly."""
        trained = [link for link in self.data if link.role == "trained"]
        elsewhere = self.card.trained_on_peers
        if elsewhere:
            nodes = sorted({peer.node for peer in elsewhere})
            where = [f"{len(trained)} here"] if trained else []
            where.append(f"{len(elsewhere)} at {', '.join(nodes)}")
            said = (
                f"Trained by federated learning where its data are (dataset versions: {' and '.join(where)});"
                " the data never left their nodes, only weights did; the terms of use of the data "
                "elsewhere are set there"
            )
            conditions = sorted({line for link in trained for line in link.conditions})
            return said + (f"; here: {'; '.join(conditions)}." if conditions else ".")
        if not trained:
            return "The training data are not given: this model links to no dataset version here."
        if self.trained_on_public_data:
            return f"Trained on public data: {len(trained)} dataset version(s) here."
        conditions = sorted({line for link in trained for line in link.conditions})
        return "Trained on data that is not public: " + "; ".join(conditions) + "."
