"""Fuzz `sansio_wss.x509.certificate_names` on raw DER, and on real certificates with fuzzer-built names."""

from __future__ import annotations

import base64

import atheris
from _oracle import check

from sansio_wss.x509 import certificate_names

# A real certificate (Ed25519, made with `cryptography`): the structured mode keeps its version,
# serial, algorithms, validity, key, extensions and signature, and puts fuzzer-built names in it.
TEMPLATE = base64.b64decode(
    "MIIBPzCB8qADAgECAgIwOTAFBgMrZXAwOTELMAkGA1UEBhMCRlIxEDAOBgNVBAoMB0V4YW1wbGUxGDAWBgNVBAMMD3NpcC5l"
    "eGFtcGxlLmNvbTAeFw0yNjAxMDEwMDAwMDBaFw0yNzAxMDEwMDAwMDBaMDkxCzAJBgNVBAYTAkZSMRAwDgYDVQQKDAdFeGFt"
    "cGxlMRgwFgYDVQQDDA9zaXAuZXhhbXBsZS5jb20wKjAFBgMrZXADIQDo7THXu1kVuczhhXlYP60EE+oWZ+D+NEDOZrV5Y79V"
    "w6MeMBwwGgYDVR0RBBMwEYIPc2lwLmV4YW1wbGUuY29tMAUGAytlcANBAOs6OEBxgCTerusT/zyWds8iapT1ovGI/75ZCB+c"
    "s4NaP4+b6y+LQax8zj0PCUS/AYt7tzVAXS7sL0NnIBESCQc="
)
UTF8, PRINTABLE, T61, IA5, BMP, UNIVERSAL, BIT_STRING, SEQUENCE = (
    0x0C,
    0x13,
    0x14,
    0x16,
    0x1E,
    0x1C,
    0x03,
    0x30,
)
TAGS = (UTF8, PRINTABLE, T61, IA5, BMP, UNIVERSAL, BIT_STRING, SEQUENCE, 0x12, 0x1A, 0x04, 0x02, 0x31, 0x07)
_PRINTABLE_SET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 '()+,-./:=?")


def _tlv(tag: int, content: bytes) -> bytes:
    """One DER element, minimal length (written here, not with the code under test)."""
    n = len(content)
    if n < 0x80:
        return bytes((tag, n)) + content
    size = (n.bit_length() + 7) // 8
    return bytes((tag, 0x80 | size)) + n.to_bytes(size, "big") + content


def _oid(text: str) -> bytes:
    """The content bytes of an OBJECT IDENTIFIER (X.690 8.19)."""
    arcs = [int(arc) for arc in text.split(".")]
    out = bytearray()
    for number in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [number & 0x7F]
        rest = number >> 7
        while rest:
            chunk.append(0x80 | rest & 0x7F)
            rest >>= 7
        out += bytes(reversed(chunk))
    return bytes(out)


_LONG = "2.999." + ".".join(["1234567"] * 30)  # written dotted, cut to 79 characters
_HUGE = "2.999." + ".".join(["1234567"] * 200)  # over 586 content bytes: OpenSSL writes no name
OIDS = (  # (OID, what X509_NAME_oneline writes for it)
    ("2.5.4.3", "CN"),
    ("2.5.4.6", "C"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.5", "serialNumber"),
    ("2.5.4.45", "x500UniqueIdentifier"),
    ("2.5.4.97", "organizationIdentifier"),
    ("1.2.840.113549.1.9.1", "emailAddress"),
    ("0.9.2342.19200300.100.1.25", "DC"),
    ("0.9.2342.19200300.100.1.1", "UID"),
    ("1.3.6.1.4.1.311.60.2.1.3", "jurisdictionC"),
    ("1.2.3.4", "1.2.3.4"),
    ("2.999.1", "2.999.1"),
    (_LONG, _LONG[:79]),
    (_HUGE, ""),
)
_OID_BODIES = tuple(_oid(oid) for oid, _ in OIDS)


def _split(der: bytes) -> list[bytes]:
    """The whole elements inside a known-good DER constructed element (the template only)."""
    n = der[1]
    pos = 2
    if n & 0x80:
        pos += n & 0x7F
    found = []
    while pos < len(der):
        start = pos
        n = der[pos + 1]
        pos += 2
        if n & 0x80:
            size = n & 0x7F
            n = int.from_bytes(der[pos : pos + size], "big")
            pos += size
        pos += n
        found.append(der[start:pos])
    return found


_OUTER = _split(TEMPLATE)  # tbsCertificate, signatureAlgorithm, signature
_TBS = _split(_OUTER[0])  # version, serial, signature, issuer, validity, subject, key, extensions


def escaped(value: bytes) -> str:
    """A value as X509_NAME_oneline writes it: \\xHH outside ' '..'~', a backslash before / and +."""
    out = []
    for byte in value:
        if byte < 0x20 or byte > 0x7E:
            out.append(f"\\x{byte:02X}")
        else:
            out.append("\\" + chr(byte) if byte in b"/+" else chr(byte))
    return "".join(out)


def _expected_value(tag: int, element: bytes, body: bytes) -> bytes | None:
    """The bytes written for a value OpenSSL surely takes; None when not sure (not predicted)."""
    if tag == SEQUENCE:
        return element
    if tag == BIT_STRING:
        if not body or body[0] > 7:
            return None
        return body[1:-1] + bytes([body[-1] & (0xFF << body[0]) & 0xFF]) if len(body) > 1 else b""
    if tag == PRINTABLE:
        return body if set(body) <= _PRINTABLE_SET else None
    if tag in (IA5, T61):
        return body if body.isascii() else None
    if tag == UTF8:
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            return None
        return body
    if tag in (BMP, UNIVERSAL):
        unit = 2 if tag == BMP else 4
        if len(body) % unit:
            return None
        points = [int.from_bytes(body[i : i + unit], "big") for i in range(0, len(body), unit)]
        return None if any(0xD800 <= p <= 0xDFFF or p > 0x10FFFF for p in points) else body
    return None


def _value(fdp: atheris.FuzzedDataProvider, tag: int) -> bytes:
    """Content bytes for a value of type `tag`: often valid for it, sometimes anything."""
    kind = fdp.ConsumeIntInRange(0, 3)
    if kind < 2:  # any bytes; or repeated, long enough for long-form lengths
        data: bytes = fdp.ConsumeBytes(
            fdp.ConsumeIntInRange(0, 64) if kind == 0 else fdp.ConsumeIntInRange(1, 8)
        )
        return data * (1 if kind == 0 else fdp.ConsumeIntInRange(1, 400))
    text: str = fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 40))
    if tag == BMP:
        return b"".join(
            min(ord(c), 0xFFFF).to_bytes(2, "big") for c in text if not 0xD800 <= ord(c) <= 0xDFFF
        )
    if tag == UNIVERSAL:
        return text.encode("utf-32-be")
    if tag == BIT_STRING:
        return bytes([fdp.ConsumeIntInRange(0, 7)]) + text.encode()
    if kind == 2:
        return text.encode()
    return bytes(byte for byte in text.encode("ascii", "ignore") if byte in _PRINTABLE_SET)


def build_name(fdp: atheris.FuzzedDataProvider) -> tuple[bytes, str | None]:
    """A Name from fuzzer-chosen attributes; with the text it must give, when that is sure."""
    if fdp.ConsumeIntInRange(0, 15) == 0:
        return _tlv(0x30, bytes(fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 200)))), None
    rdns: list[bytes] = []
    text: list[str] | None = []
    for _ in range(fdp.ConsumeIntInRange(0, 6)):
        attributes: list[bytes] = []
        for index in range(fdp.ConsumeIntInRange(0 if fdp.ConsumeIntInRange(0, 31) == 0 else 1, 3)):
            which = fdp.ConsumeIntInRange(0, len(OIDS))
            if which < len(OIDS):
                oid, short = _OID_BODIES[which], OIDS[which][1]
            else:
                oid, short = bytes(fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 12))), None
            choice = fdp.ConsumeIntInRange(0, len(TAGS))
            tag = TAGS[choice] if choice < len(TAGS) else fdp.ConsumeIntInRange(0, 255)
            body = _value(fdp, tag)
            element = _tlv(tag, body)
            attributes.append(_tlv(0x30, _tlv(0x06, oid) + element))
            value = _expected_value(tag, element, body)
            if short is None or value is None or text is None:
                text = None
            else:
                text.append(f"{'+' if index else '/'}{short}={escaped(value)}")
        rdns.append(_tlv(0x31, b"".join(attributes)))
    return _tlv(0x30, b"".join(rdns)), None if text is None else "".join(text)


def structured(fdp: atheris.FuzzedDataProvider) -> tuple[bytes, tuple[str | None, str | None]]:
    """The template with a fuzzer-built subject and issuer; the names it must give when sure."""
    subject, subject_text = build_name(fdp)
    issuer, issuer_text = (
        build_name(fdp) if fdp.ConsumeBool() else (_TBS[3], "/C=FR/O=Example/CN=sip.example.com")
    )
    tbs = list(_TBS)
    tbs[3], tbs[5] = issuer, subject
    if fdp.ConsumeIntInRange(0, 7) == 0:
        tbs = tbs[1:]  # no version: a v1 certificate
    der = _tlv(0x30, _tlv(0x30, b"".join(tbs)) + b"".join(_OUTER[1:]))
    return der, (subject_text, issuer_text)


def names(der: bytes) -> tuple[str, str] | None:
    """`certificate_names`, which raises only ValueError and returns printable ASCII."""
    try:
        result = certificate_names(der)
    except ValueError:
        return None
    check(type(result) is tuple and len(result) == 2, lambda: f"returned {result!r}")
    for text in result:
        check(type(text) is str, lambda: f"returned {result!r}")
        check(text.isascii() and text.isprintable(), lambda: f"not printable ASCII: {result!r}")
    return result


def run(data: bytes) -> tuple[str, str] | None:
    """An input with an even first byte (a DER certificate's 0x30) is the DER; else the rest builds one."""
    if not data or not data[0] & 1:
        return names(data)
    der, (subject, issuer) = structured(atheris.FuzzedDataProvider(data[1:]))
    result = names(der)
    if subject is not None and issuer is not None:
        check(result is not None, lambda: f"a valid certificate refused: {der.hex()}")
    if result is not None:
        check(subject in (None, result[0]), lambda: f"subject {result[0]!r}, expected {subject!r}")
        check(issuer in (None, result[1]), lambda: f"issuer {result[1]!r}, expected {issuer!r}")
    return result


def TestOneInput(data: bytes) -> None:  # noqa: N802 (the OSS-Fuzz entry point's name)
    """The atheris entry point."""
    run(data)


if __name__ == "__main__":
    from _engine import fuzz

    fuzz(TestOneInput)
