"""Files that say a model made them: a PNG, JPEG or TIFF whose C2PA manifest (Content Credentials) declares
algorithmic media is marked AI-generated at ingest, by the generator it names, as --generated-by marks one;
a manifest of a capture is not, a manifest that does not validate still marks (and is said), an unreadable
one is said, and --generated-by wins. The files are signed here with c2pa-python's own Builder, by a key and
certificate chain made for the test: no network, no timestamp authority."""

from __future__ import annotations

import datetime
import io
import json
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import c2pa
import httpx
import pytest
import tifffile
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from PIL import Image

from fairimage.settings import load_settings
from tests import samples
from tests.conftest import LiveServer, run_cli

IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
GENERATOR = {"name": "Diffusion Microscopy", "version": "2.1"}


@pytest.fixture(scope="module")
def signer_info() -> c2pa.C2paSignerInfo:
    """An ES256 signing key and its chain (signer, then a root CA), as C2PA asks of a signing credential:
    an end-entity certificate for digital signatures with a C2PA-accepted extended key usage."""
    now = datetime.datetime.now(datetime.UTC)
    root_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    def certificate(subject: str, public: Any, ca: bool) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .issuer_name(name("fairimage test root"))
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=7))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        )

    root = (
        certificate("fairimage test root", root_key.public_key(), ca=True)
        .add_extension(key_usage("key_cert_sign", "crl_sign"), critical=True)
        .sign(root_key, hashes.SHA256())
    )
    leaf = (
        certificate("fairimage test signer", key.public_key(), ca=False)
        .add_extension(key_usage("digital_signature"), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False
        )
        .sign(root_key, hashes.SHA256())
    )
    chain = b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in (leaf, root))
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return c2pa.C2paSignerInfo(alg=b"es256", sign_cert=chain, private_key=private, ta_url=None)


def key_usage(*granted: str) -> x509.KeyUsage:
    uses = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
            "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")  # fmt: skip
    return x509.KeyUsage(**{use: use in granted for use in uses})


def signed(info: c2pa.C2paSignerInfo, picture: bytes, media_type: str, action: dict[str, Any]) -> bytes:
    """The picture with a C2PA manifest whose one action is ``action``, signed by the test's key."""
    manifest = {
        "claim_generator_info": [{"name": "fairimage tests", "version": "1.0"}],
        "assertions": [{"label": "c2pa.actions", "data": {"actions": [action]}}],
    }
    context = c2pa.Context.from_dict({"builder": {"thumbnail": {"enabled": False}}})
    with context, c2pa.Signer.from_info(info) as signer, c2pa.Builder(manifest, context) as builder:
        out = io.BytesIO()
        builder.sign(signer, media_type, io.BytesIO(picture), out)
    return out.getvalue()


def picture(fmt: str, seed: int) -> bytes:
    data = samples.ramp((48, 64), "uint8", seed=seed)
    out = io.BytesIO()
    if fmt == "tiff":
        tifffile.imwrite(out, data)
    else:
        Image.fromarray(data).save(out, fmt)
    return out.getvalue()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def truncate_manifest(png: bytes) -> bytes:
    """The PNG with its caBX chunk (the manifest store) cut to half, the chunk itself well formed."""
    out, pos = bytearray(png[:8]), 8
    while pos < len(png):
        (length,), kind = struct.unpack(">I", png[pos : pos + 4]), png[pos + 4 : pos + 8]
        body = png[pos + 8 : pos + 8 + length]
        out += png_chunk(kind, body[: length // 2] if kind == b"caBX" else body)
        pos += 12 + length
    return bytes(out)


@dataclass(frozen=True)
class Ingested:
    folder: Path
    repo: Path
    said: list[str]  # the warning lines of both ingests
    images: dict[str, dict[str, Any]]  # fairimage images --json, by original file name

    def warning(self, name: str) -> str:
        """The one warning line about file ``name``."""
        (line,) = [line for line in self.said if line.startswith(f"warning {self.folder / name}: ")]
        return line


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory, signer_info: c2pa.C2paSignerInfo) -> Ingested:
    """A repository where signed files were ingested as a user would: a model's output, a capture, a file
    without a manifest, a JPEG and a TIFF that declare AI, one edited after signing, one whose manifest is
    cut short; then, with --generated-by, one whose manifest names another generator."""
    folder = tmp_path_factory.mktemp("c2pa")
    made = {"action": "c2pa.created", "digitalSourceType": IPTC + "trainedAlgorithmicMedia"}
    by_model = {**made, "softwareAgent": GENERATOR}
    captured = {
        "action": "c2pa.created",
        "digitalSourceType": IPTC + "digitalCapture",
        "softwareAgent": "Scope",
    }
    files = {
        "generated.png": signed(signer_info, picture("png", 1), "image/png", by_model),
        "captured.png": signed(signer_info, picture("png", 2), "image/png", captured),
        "plain.png": picture("png", 3),
        "generated.jpg": signed(signer_info, picture("jpeg", 4), "image/jpeg", made),
        "generated.tif": signed(signer_info, picture("tiff", 5), "image/tiff", made),
        "damaged.png": truncate_manifest(signed(signer_info, picture("png", 7), "image/png", by_model)),
    }
    edited = signed(signer_info, picture("png", 6), "image/png", by_model)
    iend = edited.rindex(b"IEND") - 4  # a text chunk added after signing: the signed hash no longer matches
    files["edited.png"] = edited[:iend] + png_chunk(b"tEXt", b"Comment\0edited later") + edited[iend:]
    composite = {"action": "c2pa.created", "digitalSourceType": IPTC + "compositeWithTrainedAlgorithmicMedia"}
    restored = signed(signer_info, picture("png", 8), "image/png", {**composite, "softwareAgent": GENERATOR})
    for name, content in {**files, "restored.png": restored}.items():
        (folder / name).write_bytes(content)
    repo = folder / "repo"
    run_cli("init", repo, check=True)

    ingest = run_cli("ingest", *(folder / name for name in files), "--study", "Synthetic", "--repo", repo)
    assert ingest.returncode == 0 and f"{len(files)} ingested" in ingest.stdout, ingest.stderr
    flagged = run_cli(
        "ingest", folder / "restored.png", "--generated-by", "care@0.9", "--repo", repo, check=True
    )
    said = [line for line in (ingest.stderr + flagged.stderr).splitlines() if line.startswith("warning")]
    listed = json.loads(run_cli("images", "--repo", repo, "--json", check=True).stdout)
    return Ingested(folder, repo, said, {image["original_file"]["name"]: image for image in listed})


def test_a_file_whose_content_credentials_say_a_model_made_it_is_marked(ingested: Ingested) -> None:
    marks = {name: image["ai_generated"] for name, image in ingested.images.items()}
    assert marks == {
        "generated.png": True,
        "captured.png": False,  # a capture's manifest: not a model's output
        "plain.png": False,
        "generated.jpg": True,
        "generated.tif": True,
        "damaged.png": False,  # unreadable: nothing to go by (and said, below)
        "edited.png": True,  # does not validate, but says a model made it
        "restored.png": True,
    }
    mark = {
        "by": "Diffusion Microscopy@2.1", "from_images": [], "model": None, "parameters": {}, "source": "c2pa"
    }  # fmt: skip
    assert ingested.images["generated.png"]["generated"] == {**mark, "unverified": None}
    assert ingested.images["edited.png"]["generated"] == {
        **mark,
        "unverified": "assertion.dataHash.mismatch: the file was changed after it was signed",
    }
    # no softwareAgent on the action: the manifest's claim generator made it
    assert ingested.images["generated.jpg"]["generated"]["by"] == "fairimage tests@1.0"

    with LiveServer(load_settings(ingested.repo)) as server:
        generated = ingested.images["generated.png"]["id"]
        page = httpx.get(f"{server.url}/images/{generated}").text
        assert "Made by the model <strong>Diffusion Microscopy@2.1</strong>" in page
        assert "The file's own C2PA manifest (Content Credentials) declares it." in page
        linked = httpx.get(f"{server.url}/api/images/{generated}/jsonld").json()
        assert linked["digitalSourceType"] == "https://schema.org/TrainedAlgorithmicMediaDigitalSource"
        assert linked["creator"]["name"] == "Diffusion Microscopy@2.1"
        assert "as its C2PA manifest (Content Credentials) declares" in linked["description"]
        hits = httpx.get(f"{server.url}/api/search", params={"origin": "ai-generated"}).json()["hits"]
        assert {hit["id"] for hit in hits} == {
            image["id"] for image in ingested.images.values() if image["ai_generated"]
        }


def test_a_manifest_that_does_not_validate_or_cannot_be_read_is_one_line(ingested: Ingested) -> None:
    assert len(ingested.said) == 3  # these two and --generated-by's (below): nothing for the others
    assert ingested.warning("edited.png") == (
        f"warning {ingested.folder / 'edited.png'}: its C2PA manifest (Content Credentials) does not "
        "validate (assertion.dataHash.mismatch: the file was changed after it was signed); marked "
        "AI-generated by Diffusion Microscopy@2.1 all the same, as it declares"
    )
    unreadable = ingested.warning("damaged.png")
    assert unreadable.startswith(
        f"warning {ingested.folder / 'damaged.png'}: its C2PA manifest (Content Credentials) could not "
        "be read ("
    ) and unreadable.endswith("); ingested without an AI-generated mark")


def test_generated_by_wins_over_what_the_file_declares(ingested: Ingested) -> None:
    assert ingested.warning("restored.png") == (
        f"warning {ingested.folder / 'restored.png'}: marked AI-generated by care@0.9 as --generated-by "
        "says; its C2PA manifest names Diffusion Microscopy@2.1"
    )
    assert ingested.images["restored.png"]["generated"] == {
        "by": "care@0.9",
        "from_images": [],
        "model": None,
        "parameters": {},
        "source": "declared",
        "unverified": None,
    }
