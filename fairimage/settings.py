"""All configuration in one object. Precedence: command-line flags, then FAIRIMAGE_* environment variables,
then the repository's ``fairimage.toml``, then defaults."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_serializer,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from fairimage.model.errors import InvalidInputError
from fairimage.model.governance.policy import Role

CONFIG_FILE = "fairimage.toml"


Codec = Literal["zstd", "lz4", "lz4hc", "blosclz", "zlib"]
CODECS: tuple[str, ...] = ("zstd", "lz4", "lz4hc", "blosclz", "zlib")


def parse_codec(text: str) -> tuple[str, int | None]:
    """``zstd:3`` -> ("zstd", 3); ``lz4`` -> ("lz4", None: the configured level)."""
    name, _, level = text.strip().lower().partition(":")
    if name not in CODECS or (level and (not level.isdigit() or not 1 <= int(level) <= 9)):
        raise InvalidInputError(
            f"--codec {text!r}: use NAME or NAME:LEVEL, NAME one of {', '.join(CODECS)} and LEVEL 1 to 9 "
            "(e.g. zstd:3, lz4)"
        )
    return name, int(level) if level else None


class _Environment(BaseSettings):
    """FAIRIMAGE_REPO, FAIRIMAGE_DB, FAIRIMAGE_STORAGE, FAIRIMAGE_CHUNK_BYTES, FAIRIMAGE_CNAME, ..."""

    model_config = SettingsConfigDict(env_prefix="FAIRIMAGE_", extra="ignore")

    repo: Path | None = None
    db: str | None = None
    storage: str | None = None
    s3_endpoint: str | None = None
    scheduler: str | None = None
    chunk_bytes: int | None = None
    cname: str | None = None
    clevel: int | None = None
    shuffle: str | None = None
    threads: int | None = None
    shard_chunks: int | None = None
    cluster_split_bytes: int | None = None
    default_policy: str | None = None
    fixity_hours: float | None = None
    fixity_sample: float | None = None
    public_url: str | None = None
    oai_admin_email: str | None = None
    doi_prefix: str | None = None
    oai_page_size: int | None = None
    deid_key_file: Path | None = None
    keep_dicom_originals: bool | None = None
    crypt4gh_key_dir: Path | None = None
    crypt4gh_passphrase: str | None = None
    # the [oidc] section, one variable per key: FAIRIMAGE_OIDC_ISSUER, FAIRIMAGE_OIDC_CLIENT_SECRET, ...
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None
    oidc_scopes: str | None = None
    oidc_name: str | None = None
    oidc_default_role: str | None = None
    oidc_orcid_claim: str | None = None
    node_name: str | None = None
    peer_timeout: float | None = None
    publish_restricted: bool | None = None
    federation_hours: float | None = None
    min_cell: int | None = None
    analysis_seconds: float | None = None
    analysis_memory_mb: int | None = None
    coordinator_listen: str | None = None
    coordinator_address: str | None = None


OIDC_PREFIX = "oidc_"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class OidcSettings(BaseModel):
    """An OpenID Connect provider people sign in with: the ``[oidc]`` section of fairimage.toml, each key
    also FAIRIMAGE_OIDC_<KEY> (the client secret best there). Register BASE/auth/oidc/callback (BASE the
    address users reach the server at) as the client's redirect URI at the provider."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    issuer: str  # https://login.example.org/realms/lab: its discovery document is ISSUER/.well-known/...
    client_id: Annotated[str, Field(min_length=1, max_length=255)]
    client_secret: SecretStr  # never logged, never in a message; FAIRIMAGE_OIDC_CLIENT_SECRET
    scopes: str = "openid profile email"
    name: Annotated[str, Field(min_length=1, max_length=80)] = "your institution"  # "Sign in with NAME"
    # The role of a user made at their first sign-in (an admin promotes them later); never admin.
    default_role: Role = Role.VIEWER
    # The claim that holds the user's ORCID iD: ORCID's own provider puts it in "sub"; others may send
    # "orcid" (the default) or none.
    orcid_claim: str = "orcid"

    @field_validator("issuer")
    @classmethod
    def _https_issuer(cls, issuer: str) -> str:
        parts = urlsplit(issuer)
        loopback = parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS
        if not parts.hostname or (parts.scheme != "https" and not loopback) or parts.query or parts.fragment:
            raise ValueError(
                f"{issuer!r} is not a provider's issuer URL: give the https:// address its discovery "
                "document lives under (ISSUER/.well-known/openid-configuration); http:// only on 127.0.0.1"
            )
        return issuer.rstrip("/")

    @field_validator("default_role")
    @classmethod
    def _not_admin(cls, role: Role) -> Role:
        if role is Role.ADMIN:
            raise ValueError(
                "admin cannot be the role of everyone the provider signs in; give viewer, submitter or "
                "steward (an admin promotes people later)"
            )
        return role

    @field_validator("scopes")
    @classmethod
    def _openid_scope(cls, scopes: str) -> str:
        if "openid" not in scopes.split():
            raise ValueError(f"{scopes!r} lacks the scope openid, which OpenID Connect sign-in needs")
        return " ".join(scopes.split())

    @field_serializer("client_secret", when_used="json")
    def _secret_for_workers(self, secret: SecretStr) -> str:
        # JSON is how `fairimage serve` hands its settings to its worker processes (in their environment,
        # as FAIRIMAGE_OIDC_CLIENT_SECRET would be); repr and Python dumps keep it hidden.
        return secret.get_secret_value()


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    repo: Path
    db: str  # SQLAlchemy URL: sqlite:///REPO/catalog.sqlite by default, or postgresql://...
    storage: str  # a folder (REPO/objects by default) or s3://bucket/prefix
    s3_endpoint: str | None = None  # an S3-compatible service other than AWS (MinIO, Ceph, moto); not secret
    chunk_bytes: int = 1 << 20
    # Blosc's codec and level for chunks. zstd 5 by default: on the benchmark's microscopy it stores 1.4-1.6x
    # smaller than lz4 at 55-70% of its speed, and storage and transfer outlast one conversion
    # (benchmarks/README.md). `ingest --codec lz4` when speed matters more.
    cname: Codec = "zstd"
    clevel: Annotated[int, Field(ge=1, le=9)] = 5
    shuffle: Literal["shuffle", "bitshuffle", "noshuffle"] = "shuffle"
    threads: int = 0  # encoding threads per conversion; 0 = every core
    shard_chunks: Annotated[int, Field(ge=0)] = (
        0  # chunks per shard along y and x; 0 = no sharding (one object per chunk)
    )
    scheduler: str | None = None  # a dask.distributed scheduler (tcp://host:8786) that ingest uses
    # On a cluster, an image larger than this is written by several workers at once, each taking some planes.
    cluster_split_bytes: Annotated[int, Field(gt=0)] = 1 << 30
    # The policy of a study that ingest creates; its owner or a steward changes it with 'fairimage study'.
    default_policy: Literal["public", "restricted", "private"] = "public"
    # 'serve' re-hashes fixity_sample percent of the stored objects every fixity_hours (0 = never).
    fixity_hours: Annotated[float, Field(ge=0)] = 0.0
    fixity_sample: Annotated[float, Field(gt=0, le=100)] = 10.0
    # The node's address as its users reach it (https://images.example.org): the base of the persistent
    # identifiers in what the command line exports. The server uses the address a request came to.
    public_url: str = "http://127.0.0.1:8000"
    # OAI-PMH: the contact harvesters see (Identify), and how many records a page holds before a
    # resumption token.
    oai_admin_email: str = "admin@localhost"
    # The node's DOI prefix (from DataCite, e.g. 10.12345): DataCite exports then carry a DOI for each study
    # (its concept DOI) and each published version, made from the prefix and the PID, so they never change.
    doi_prefix: Annotated[str | None, Field(pattern=r"^10\.[0-9]{4,9}$")] = None
    oai_page_size: Annotated[int, Field(ge=1, le=10_000)] = 100
    # DICOM de-identification (PS3.15 Annex E), always on for DICOM: the options chosen (their names in
    # fairimage.model.privacy.deid.Option: retain_modified_dates, clean_descriptors, ...), the private
    # attributes known to be safe ("PRIVATE CREATOR:0x10"), and the file holding the key that makes new
    # UIDs, pseudonyms and date shifts (REPO/keys/dicom-deid.key by default; never in the catalog).
    deid_options: tuple[str, ...] = ()
    deid_safe_private: tuple[str, ...] = ()
    deid_key_file: Path | None = None

    # Keep each DICOM original as it came (identified) but encrypted with Crypt4GH for the repository's key
    # pair (REPO/keys/repository.c4gh.sec|pub by default; the passphrase of the secret key, if any, from
    # FAIRIMAGE_CRYPT4GH_PASSPHRASE only). Stored originals never leave unencrypted.
    keep_dicom_originals: bool = False
    crypt4gh_key_dir: Path | None = None
    crypt4gh_passphrase: str | None = Field(default=None, exclude=True, repr=False)
    # Federation: the name other nodes know this one by (node-<its key's fingerprint> by default), how long
    # a federated search waits for a peer that answers live, and whether the restricted studies' titles
    # and access conditions are published to peers (never their data, never their other metadata).
    node_name: Annotated[str | None, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")] = None
    peer_timeout: Annotated[float, Field(gt=0, le=60)] = 2.0
    # 'serve' harvests every peer and witnesses their audit checkpoints every federation_hours (0 = never).
    federation_hours: Annotated[float, Field(ge=0)] = 0.0
    publish_restricted: bool = True
    # Analyses that go to the data: rows of fewer images than min_cell are suppressed; a run is stopped
    # after analysis_seconds and may use analysis_memory_mb of address space.
    min_cell: Annotated[int, Field(ge=2, le=1000)] = 5
    analysis_seconds: Annotated[float, Field(gt=0, le=86_400)] = 600.0
    analysis_memory_mb: Annotated[int, Field(ge=32, le=1_048_576)] = 4096
    # Federated learning this node coordinates ('fairimage train'): where its Flower server listens
    # (port 0: a free one each run), and the address given to the nodes if another (a proxy, a NAT).
    coordinator_listen: Annotated[str, Field(pattern=r"^\S+:\d{1,5}$")] = "127.0.0.1:0"
    coordinator_address: Annotated[str, Field(pattern=r"^(\S+:\d{1,5})?$")] = ""
    # Sign-in with an OpenID Connect provider (institutional, ORCID, Keycloak), beside local accounts.
    oidc: OidcSettings | None = None

    @property
    def crypt4gh_keys(self) -> tuple[Path, Path]:
        folder = self.crypt4gh_key_dir or self.repo / "keys"
        return folder / "repository.c4gh.sec", folder / "repository.c4gh.pub"

    @property
    def node_key_path(self) -> Path:
        """The node's Ed25519 signing key (never in the catalog; made at init or first use)."""
        return self.repo / "keys" / "node.ed25519"

    @property
    def deid_key_path(self) -> Path:
        return self.deid_key_file or self.repo / "keys" / "dicom-deid.key"

    @property
    def pid_base(self) -> str:
        return self.public_url.rstrip("/") + "/pid/"

    @property
    def config_path(self) -> Path:
        return self.repo / CONFIG_FILE


def find_repo(repo: Path | None) -> Path:
    """The repository folder: --repo, else FAIRIMAGE_REPO, else the current folder if it is one."""
    repo = repo or _Environment().repo
    if repo is None:
        if (Path.cwd() / CONFIG_FILE).is_file():
            return Path.cwd()
        raise InvalidInputError(
            "no repository given: pass --repo DIR or set FAIRIMAGE_REPO "
            "(create one with 'fairimage init DIR')"
        )
    return repo.expanduser().resolve()


def load_settings(repo: Path | None = None, **flags: Any) -> Settings:
    """Settings for a repository folder, merging its config file, the environment and ``flags``."""
    root = find_repo(repo)
    values: dict[str, Any] = _defaults(root)
    config = root / CONFIG_FILE
    if config.is_file():
        try:
            values.update(tomllib.loads(config.read_text()))
        except tomllib.TOMLDecodeError as exc:
            raise InvalidInputError(f"{config}: not valid TOML ({exc}); fix or remove the file") from exc
    environment = _Environment().model_dump(exclude_none=True, exclude={"repo"})
    given = {key: value for key, value in flags.items() if value is not None}
    oidc = _oidc_section(values.pop("oidc", None), environment, given)
    values.update(environment)
    values.update(given)
    if oidc:
        values["oidc"] = oidc
    values["db"] = normalise_db_url(str(values["db"]))
    try:
        return Settings(repo=root, **values)
    except ValidationError as exc:
        problem = exc.errors()[0]
        field = ".".join(str(p) for p in problem["loc"])
        raise InvalidInputError(
            f"setting {field}: {problem['msg']} (from flags, FAIRIMAGE_* or {config})"
        ) from exc


def _oidc_section(section: Any, *layers: dict[str, Any]) -> dict[str, Any]:
    """The [oidc] table of fairimage.toml, overridden key by key by FAIRIMAGE_OIDC_* and oidc_* flags
    (taken out of ``layers``)."""
    if section is not None and not isinstance(section, dict):
        raise InvalidInputError(f"{CONFIG_FILE}: oidc must be a table ([oidc] with issuer, client_id, ...)")
    merged = dict(section or {})
    for layer in layers:
        for key in [key for key in layer if key.startswith(OIDC_PREFIX)]:
            merged[key[len(OIDC_PREFIX) :]] = layer.pop(key)
    return merged


def _defaults(root: Path) -> dict[str, Any]:
    return {"db": f"sqlite:///{root / 'catalog.sqlite'}", "storage": str(root / "objects")}


def normalise_db_url(url: str) -> str:
    """Accept the plain postgresql:// URLs people write; SQLAlchemy needs the driver named."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def write_config(settings: Settings) -> None:
    """Record where a repository keeps its catalog and objects, so later commands need only --repo."""
    defaults = _defaults(settings.repo)
    lines = ["# fairimage repository configuration (flags and FAIRIMAGE_* variables override it)"]
    # The default catalog and object folder live inside the repository and follow it when it moves.
    lines += [
        f'{key} = "{getattr(settings, key)}"'
        for key in ("db", "storage", "s3_endpoint")
        if getattr(settings, key) != defaults.get(key)
    ]
    lines += [
        f"chunk_bytes = {settings.chunk_bytes}",
        f'cname = "{settings.cname}"',
        f"clevel = {settings.clevel}",
        f'shuffle = "{settings.shuffle}"',
        f"shard_chunks = {settings.shard_chunks}",
        f'default_policy = "{settings.default_policy}"',
    ]
    settings.config_path.write_text("\n".join(lines) + "\n")
