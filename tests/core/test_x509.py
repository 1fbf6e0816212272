"""certificate_names(): checked against the openssl CLI (`-nameopt compat` prints X509_NAME_oneline())."""

from __future__ import annotations

import datetime
import shutil
import subprocess

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from sansio_wss.x509 import _SHORT_NAMES, certificate_names

OPENSSL = shutil.which("openssl") or "openssl"  # the reference: required, as on Debian
KEY = ec.generate_private_key(ec.SECP256R1())
PRIVATE_ARC = 55555  # an enterprise arc OpenSSL has no name for, under every first arc


def openssl_names(der: bytes) -> tuple[str, str] | None:
    """(subject, issuer) as `openssl x509 -nameopt compat` prints them; None if openssl cannot read `der`."""
    command = [OPENSSL, "x509", "-inform", "DER", "-noout", "-subject", "-issuer", "-nameopt", "compat"]
    run = subprocess.run(command, input=der, capture_output=True, check=False)
    if run.returncode:
        return None
    subject, issuer = run.stdout.decode("ascii").split("\n")[:2]
    assert subject.startswith("subject=") and issuer.startswith("issuer=")
    return subject.removeprefix("subject="), issuer.removeprefix("issuer=")


def ours(der: bytes) -> tuple[str, str] | None:
    try:
        return certificate_names(der)
    except ValueError:
        return None


def signed(subject: x509.Name, issuer: x509.Name) -> bytes:
    """A real certificate, signed by `cryptography`."""
    start = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
    builder = x509.CertificateBuilder(
        issuer_name=issuer,
        subject_name=subject,
        public_key=KEY.public_key(),
        serial_number=7,
        not_valid_before=start,
        not_valid_after=start + datetime.timedelta(1),
    )
    return builder.sign(KEY, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def tlv(tag: int, body: bytes) -> bytes:
    size = len(body)
    length = (
        bytes([size])
        if size < 0x80
        else bytes([0x80 | (size.bit_length() + 7) // 8]) + size.to_bytes(4, "big").lstrip(b"\0")
    )
    return bytes([tag]) + length + body


def subidentifiers(values: list[int]) -> bytes:
    out = b""
    for value in values:
        groups = [value & 0x7F]
        while value := value >> 7:
            groups.append(0x80 | value & 0x7F)
        out += bytes(reversed(groups))
    return out


def oid(dotted: str) -> bytes:
    arcs = [int(arc) for arc in dotted.split(".")]
    return subidentifiers([arcs[0] * 40 + arcs[1], *arcs[2:]])


def attribute(oid_body: bytes, tag: int, value: bytes) -> bytes:
    return tlv(0x30, tlv(0x06, oid_body) + tlv(tag, value))


def raw(subject: list[list[bytes]], issuer: list[list[bytes]] | None = None) -> bytes:
    """A certificate built by hand around names given as RDNs of encoded attributes (unsigned: openssl
    prints it all the same)."""

    def name(rdns: list[list[bytes]]) -> bytes:
        return tlv(0x30, b"".join(tlv(0x31, b"".join(rdn)) for rdn in rdns))

    algorithm = tlv(0x30, tlv(0x06, oid("1.2.840.10045.4.3.2")))
    curve = tlv(0x30, tlv(0x06, oid("1.2.840.10045.2.1")) + tlv(0x06, oid("1.2.840.10045.3.1.7")))
    key = tlv(0x30, curve + tlv(0x03, b"\0\x04" + bytes(range(1, 65))))
    validity = tlv(0x30, tlv(0x17, b"240101000000Z") + tlv(0x17, b"250101000000Z"))
    version = tlv(0xA0, tlv(0x02, b"\x02"))
    tbs = version + tlv(0x02, b"\x07") + algorithm + name(issuer or []) + validity + name(subject) + key
    return tlv(0x30, tlv(0x30, tbs) + algorithm + tlv(0x03, b"\0"))


def attr(o: x509.ObjectIdentifier, value: str, kind: _ASN1Type | None = None) -> x509.NameAttribute[str]:
    return x509.NameAttribute(o, value) if kind is None else x509.NameAttribute(o, value, _type=kind)


UNKNOWN = x509.ObjectIdentifier(f"1.3.6.1.4.1.{PRIVATE_ARC}.1.2")
NAMES = [
    x509.Name([]),
    x509.Name([attr(NameOID.COMMON_NAME, "sip.example.com")]),
    x509.Name(
        [
            attr(o, "FR" if o in {NameOID.COUNTRY_NAME, NameOID.JURISDICTION_COUNTRY_NAME} else f"v {i}")
            for i, o in enumerate(vars(NameOID).values())
            if isinstance(o, x509.ObjectIdentifier)
        ]
    ),
    x509.Name(
        [
            x509.RelativeDistinguishedName(
                [attr(NameOID.COMMON_NAME, "a/b+c=d"), attr(NameOID.ORGANIZATION_NAME, "O")]
            ),
            x509.RelativeDistinguishedName(
                [attr(NameOID.DOMAIN_COMPONENT, "example"), attr(NameOID.USER_ID, "u"), attr(UNKNOWN, "x")]
            ),
            x509.RelativeDistinguishedName([attr(NameOID.EMAIL_ADDRESS, "alice@example.com")]),
        ]
    ),
    x509.Name(
        [
            attr(NameOID.COMMON_NAME, "Société Générale ☎ 𝄞 \t\x7f"),
            attr(NameOID.ORGANIZATION_NAME, "printable", _ASN1Type.PrintableString),
            attr(NameOID.ORGANIZATION_NAME, "utf8", _ASN1Type.UTF8String),
            attr(NameOID.LOCALITY_NAME, "Zürich", _ASN1Type.BMPString),
            attr(NameOID.LOCALITY_NAME, "Zürich 𝄞", _ASN1Type.UniversalString),
            attr(NameOID.STATE_OR_PROVINCE_NAME, "t61 é", _ASN1Type.T61String),
            attr(NameOID.SERIAL_NUMBER, "0123", _ASN1Type.NumericString),
            attr(NameOID.ORGANIZATIONAL_UNIT_NAME, "ia5", _ASN1Type.IA5String),
            attr(UNKNOWN, "x" * 300),
        ]
    ),
]


@pytest.mark.parametrize("subject", NAMES)
def test_cryptography_certificates_match_openssl(subject: x509.Name) -> None:
    der = signed(subject, NAMES[3])
    assert certificate_names(der) == openssl_names(der)


def test_trustme_certificates_match_openssl() -> None:
    ca = trustme.CA()
    chain = [
        ca.cert_pem,
        ca.create_child_ca().cert_pem,
        *ca.issue_cert("sip.example.com", common_name="sip").cert_chain_pems,
    ]
    for pem in chain:
        der = x509.load_pem_x509_certificate(pem.bytes()).public_bytes(serialization.Encoding.DER)
        assert certificate_names(der) == openssl_names(der)


def test_example() -> None:
    subject = x509.Name(
        [
            attr(NameOID.COUNTRY_NAME, "FR"),
            attr(NameOID.ORGANIZATION_NAME, "Example"),
            attr(NameOID.COMMON_NAME, "sip.example.com"),
        ]
    )
    issuer = x509.Name([attr(NameOID.COMMON_NAME, "é+")])
    assert certificate_names(signed(subject, issuer)) == (
        "/C=FR/O=Example/CN=sip.example.com",
        "/CN=\\xC3\\xA9\\+",
    )


def test_every_short_name_is_openssls() -> None:
    der = raw([[attribute(oid(dotted), 0x13, b"v")] for dotted in _SHORT_NAMES])
    subject = "".join(f"/{name}=v" for name in _SHORT_NAMES.values())
    assert certificate_names(der) == openssl_names(der) == (subject, "")


EDGE_CASES = [
    [[attribute(oid("2.5.4.3"), 0x30, b"\x01\x02/")]],  # a SEQUENCE value is written whole
    [[attribute(oid("2.5.4.3"), 0x03, b"\x03\xff\xff")], [attribute(oid("2.5.4.3"), 0x03, b"\x05")]],
    [[attribute(oid("2.5.4.3"), 0x03, b"\x08\xff")]],
    [[attribute(oid("2.5.4.3"), 0x03, b"")]],
    [[attribute(oid("2.5.4.3"), 0x10, b"")]],  # a primitive SEQUENCE
    [[attribute(oid("2.5.4.3"), 0x1B, b"\0\0\0A")]],  # GeneralString: dead code in X509_NAME_oneline
    [[attribute(oid("2.5.4.3"), 0x1A, b"visible")]],
    [[attribute(oid("2.5.4.3"), 0x0C, b"\xed\xa0\x80")]],  # a surrogate in UTF-8
    [[attribute(oid("2.5.4.3"), 0x0C, b"\xc0\x80")]],  # overlong
    [[attribute(oid("2.5.4.3"), 0x1E, b"\xd8\x00")], [attribute(oid("2.5.4.3"), 0x1E, b"\0")]],
    [[attribute(oid("2.5.4.3"), 0x1C, b"\0\x11\0\0")]],
    [[attribute(oid("2.5.4.3"), 0x1C, b"\0\x10\xff\xff")]],
    [[attribute(subidentifiers([2**64, 2**70]), 0x13, b"big arcs")]],
    [[attribute(subidentifiers([79, 1, 2]), 0x13, b"first arc")]],
    [[attribute(b"", 0x13, b"empty OID")]],
    [[attribute(b"\x2b\x80\x01", 0x13, b"padded arc")]],
    [[attribute(b"\x2b\x86", 0x13, b"cut arc")]],
    [[attribute(subidentifiers([43, *range(1, 60)]), 0x13, b"long OID")]],
    [[attribute(subidentifiers([43] + [2**63] * 67), 0x13, b"over 586 bytes")]],
    [[], [attribute(oid("2.5.4.3"), 0x13, b"after an empty RDN")], []],
    [[tlv(0x30, tlv(0x06, oid("2.5.4.3")))]],
    [[tlv(0x30, tlv(0x06, oid("2.5.4.3")) + tlv(0x13, b"a") + tlv(0x13, b"b"))]],
    [[tlv(0x30, tlv(0x13, b"a") + tlv(0x13, b"b"))]],
]


@pytest.mark.parametrize("subject", EDGE_CASES)
def test_edge_cases_match_openssl(subject: list[list[bytes]]) -> None:
    der = raw(subject)
    assert ours(der) == openssl_names(der)


def test_ber_that_openssl_reads_is_refused() -> None:
    """OpenSSL's decoder takes BER (here a constructed UTF8String); a DER reader does not."""
    der = raw([[attribute(oid("2.5.4.3"), 0x2C, tlv(0x04, b"ab") + tlv(0x04, b"c"))]])
    assert openssl_names(der) == ("/CN=abc", "")
    with pytest.raises(ValueError):
        certificate_names(der)


STRING_TAGS = [0x03, 0x0C, 0x12, 0x13, 0x14, 0x16, 0x1C, 0x1E, 0x30, *range(0x01, 0x1F)]
CODECS = {0x0C: "utf-8", 0x1C: "utf-32-be", 0x1E: "utf-16-be"}


@st.composite
def attributes(draw: st.DrawFn) -> bytes:
    if draw(st.booleans()):
        oid_body = oid(draw(st.sampled_from(sorted(_SHORT_NAMES))))
    else:
        first = draw(st.integers(0, 2**70))
        oid_body = subidentifiers([first, PRIVATE_ARC, *draw(st.lists(st.integers(0, 2**80), max_size=70))])
    tag = draw(st.sampled_from([*STRING_TAGS, 0x80, 0xA0, 0x31]))
    text = st.text(max_size=6).map(lambda t: t.encode(CODECS.get(tag, "utf-8"), "surrogatepass"))
    return attribute(oid_body, tag, draw(st.binary(max_size=8) | text))


@given(
    st.lists(st.lists(attributes(), max_size=3), max_size=4),
    st.lists(st.lists(attributes(), max_size=2), max_size=2),
)
def test_random_names_match_openssl(subject: list[list[bytes]], issuer: list[list[bytes]]) -> None:
    der = raw(subject, issuer)
    assert ours(der) == openssl_names(der)


CERTIFICATE = signed(NAMES[3], NAMES[4])


@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_value_error(data: bytes) -> None:
    for der in (data, b"\x30" + data, b"\x30\x82" + data):
        names = ours(der)
        assert names is None or all(isinstance(name, str) for name in names)


@given(
    st.lists(
        st.tuples(st.integers(0, len(CERTIFICATE) - 1), st.integers(0, 255), st.sampled_from("rid")),
        min_size=1,
        max_size=4,
    )
)
def test_mutated_certificates(mutations: list[tuple[int, int, str]]) -> None:
    der = bytearray(CERTIFICATE)
    for position, byte, how in mutations:
        at = min(position, len(der) - 1)
        if how == "r":
            der[at] = byte
        elif how == "i":
            der.insert(at, byte)
        else:
            del der[at]
    names = ours(bytes(der))
    theirs = openssl_names(bytes(der)) if names is not None else None
    assert names is None or theirs is None or names == theirs  # openssl reads BER too and checks more


def test_truncated_certificates_raise() -> None:
    for size in range(len(CERTIFICATE)):
        with pytest.raises(ValueError):
            certificate_names(CERTIFICATE[:size])
    with pytest.raises(ValueError):
        certificate_names(CERTIFICATE + b"\0")
