"""Subject and issuer of a DER X.509 certificate, written as OpenSSL's `X509_NAME_oneline` writes them.

OpenSIPS puts `X509_NAME_oneline()` of the peer's names into its HEP trace payloads, so this
follows OpenSSL 3 (crypto/x509/x509_obj.c and the decoder in front of it) rather than RFC 4514:

- each attribute is `/` (first of its RDN) or `+` (the others), OpenSSL's short name, `=`, value;
  an OID OpenSSL has no name for is written dotted, cut to 79 characters (its buffer is 80) and
  empty past 586 bytes (the limit in `OBJ_obj2txt`);
- the value's raw content bytes are written whatever the string type (UTF8String, BMPString
  included): bytes below ' ' or above '~' as `\\xHH`, '/' and '+' with a backslash before;
- the value types and checks are those of OpenSSL's decoder (`ASN1_PRINTABLE` and the
  canonical copy every decoded name gets): a UTF8String must be valid UTF-8, a BMPString or
  UniversalString whole code points that are not surrogates; a SEQUENCE is written whole
  (header included), a BIT STRING without its unused-bits byte and with those bits cleared.

The reader is strict DER (definite, minimal lengths) where OpenSSL would also take BER, and it
checks the certificate's shape only as far as the subject.
"""

from __future__ import annotations

__all__ = ["certificate_names"]

_RUNS = (  # OpenSSL 3.0 short names of consecutive OIDs: prefix, first arc, names ("-": none)
    (
        "2.5.4",
        3,
        "CN SN serialNumber C L ST street O OU title description searchGuide businessCategory"
        " postalAddress postalCode postOfficeBox physicalDeliveryOfficeName telephoneNumber telexNumber"
        " teletexTerminalIdentifier facsimileTelephoneNumber x121Address internationaliSDNNumber"
        " registeredAddress destinationIndicator preferredDeliveryMethod presentationAddress"
        " supportedApplicationContext member owner roleOccupant seeAlso userPassword userCertificate"
        " cACertificate authorityRevocationList certificateRevocationList crossCertificatePair name GN"
        " initials generationQualifier x500UniqueIdentifier dnQualifier enhancedSearchGuide"
        " protocolInformation distinguishedName uniqueMember houseIdentifier supportedAlgorithms"
        " deltaRevocationList dmdName",
    ),
    (
        "1.2.840.113549.1.9",
        1,
        "emailAddress unstructuredName contentType messageDigest signingTime countersignature"
        " challengePassword unstructuredAddress extendedCertificateAttributes - - - - extReq SMIME-CAPS"
        " SMIME - - - friendlyName localKeyID",
    ),
    (
        "0.9.2342.19200300.100.1",
        1,
        "UID textEncodedORAddress mail info favouriteDrink roomNumber photo userClass host manager"
        " documentIdentifier documentTitle documentVersion documentAuthor documentLocation - - - -"
        " homeTelephoneNumber secretary otherMailbox lastModifiedTime lastModifiedBy DC aRecord"
        " pilotAttributeType27 mXRecord nSRecord sOARecord cNAMERecord - - - - - associatedDomain"
        " associatedName homePostalAddress personalTitle mobileTelephoneNumber pagerTelephoneNumber"
        " friendlyCountryName uid organizationalStatus janetMailbox mailPreferenceOption buildingName"
        " dSAQuality singleLevelQuality subtreeMinimumQuality subtreeMaximumQuality personalSignature"
        " dITRedirect audio documentPublisher",
    ),
    ("1.3.6.1.4.1.311.60.2.1", 1, "jurisdictionL jurisdictionST jurisdictionC"),
    ("2.5.4", 97, "organizationIdentifier c3 n3 dnsName"),
    ("1.2.643.100", 1, "OGRN - SNILS - OGRNIP"),
    ("1.2.643.100", 111, "subjectSignTool issuerSignTool"),
)
_SHORT_NAMES = {
    f"{prefix}.{first + i}": name
    for prefix, first, names in _RUNS
    for i, name in enumerate(names.split())
    if name != "-"
} | {
    "2.5.4.65": "pseudonym",
    "2.5.4.72": "role",
    "1.2.643.3.131.1.1": "INN",
    "1.3.6.1.4.1.311.20.2.3": "msUPN",
}

# Universal tags OpenSSL's ASN1_PRINTABLE takes as plain strings (B_ASN1_UNKNOWN ones included);
# besides these only BIT STRING (3) and a constructed SEQUENCE (0x30).
_STRING_TAGS = frozenset({7, 8, 9, 11, 12, 13, 14, 15, 18, 19, 20, 22, 28, 29, 30})
_UNIT = {28: 4, 30: 2}  # UniversalString, BMPString: bytes per code point
_ESCAPED = tuple(
    f"\\x{b:02X}" if b < 0x20 or b > 0x7E else "\\" + chr(b) if chr(b) in "/+" else chr(b) for b in range(256)
)
_LIMIT = 1 << 20  # X509_NAME_MAX and NAME_ONELINE_MAX: OpenSSL gives up on longer names


def certificate_names(der: bytes) -> tuple[str, str]:
    """(subject, issuer) of a DER X.509 certificate, written as OpenSSL's X509_NAME_oneline
    writes them, e.g. "/C=FR/O=Example/CN=sip.example.com". Raises ValueError for bytes that
    are not a DER certificate."""
    der = bytes(der)
    outer = _elements(der, 0, len(der))
    if len(outer) != 1 or outer[0][0] != 0x30:
        raise ValueError("not a DER certificate: expected one SEQUENCE")
    parts = _elements(der, outer[0][2], outer[0][3])
    if [tag for tag, *_ in parts] != [0x30, 0x30, 0x03]:
        raise ValueError("not a DER certificate: expected tbsCertificate, signatureAlgorithm, signature")
    tbs = _elements(der, parts[0][2], parts[0][3])
    if tbs and tbs[0][0] == 0xA0:  # [0] EXPLICIT version
        tbs = tbs[1:]
    if [tag for tag, *_ in tbs[:5]] != [0x02, 0x30, 0x30, 0x30, 0x30]:
        raise ValueError("not a DER certificate: bad tbsCertificate")
    return _oneline(der, tbs[4]), _oneline(der, tbs[2])


def _elements(der: bytes, pos: int, end: int) -> list[tuple[int, int, int, int]]:
    """(tag, start, content start, end) of each DER element from `pos` to exactly `end`."""
    found: list[tuple[int, int, int, int]] = []
    while pos < end:
        if end - pos < 2:
            raise ValueError("truncated DER header")
        start, tag, length = pos, der[pos], der[pos + 1]
        pos += 2
        if tag & 0x1F == 0x1F:
            raise ValueError("multi-byte DER tag")
        if length & 0x80:
            count = length & 0x7F
            if not 0 < count <= 4 or end - pos < count or der[pos] == 0:
                raise ValueError("indefinite or malformed DER length")
            length = int.from_bytes(der[pos : pos + count], "big")
            pos += count
            if length < 0x80:
                raise ValueError("non-minimal DER length")
        if length > end - pos:
            raise ValueError("truncated DER element")
        found.append((tag, start, pos, pos + length))
        pos += length
    return found


def _oneline(der: bytes, name: tuple[int, int, int, int]) -> str:
    """X509_NAME_oneline() of the Name element `name`."""
    if name[3] - name[1] > _LIMIT:
        raise ValueError("name too long")
    out: list[str] = []
    for rdn, _, start, end in _elements(der, name[2], name[3]):
        if rdn != 0x31:
            raise ValueError("relative distinguished name is not a SET")
        for index, (tag, _, start2, end2) in enumerate(_elements(der, start, end)):
            pair = _elements(der, start2, end2)
            if tag != 0x30 or len(pair) != 2 or pair[0][0] != 0x06:
                raise ValueError("bad AttributeTypeAndValue")
            oid = _dotted(der[pair[0][2] : pair[0][3]])
            value = "".join(map(_ESCAPED.__getitem__, _value(der, *pair[1])))
            out.append(f"{'+' if index else '/'}{_SHORT_NAMES.get(oid, oid)}={value}")
    text = "".join(out)
    if len(text) > _LIMIT:
        raise ValueError("name too long")
    return text


def _dotted(body: bytes) -> str:
    """An OID as OBJ_obj2txt() writes it into X509_NAME_oneline()'s 80-byte buffer."""
    if (
        not body
        or body[-1] & 0x80
        or any(b == 0x80 and (i == 0 or not body[i - 1] & 0x80) for i, b in enumerate(body))
    ):
        raise ValueError("bad OBJECT IDENTIFIER encoding")
    if len(body) > 586:
        return ""
    arcs: list[int] = []
    arc = 0
    for b in body:
        arc = arc << 7 | b & 0x7F
        if not b & 0x80:
            arcs.append(arc)
            arc = 0
    first = [2, arcs[0] - 80] if arcs[0] >= 80 else [arcs[0] // 40, arcs[0] % 40]
    return ".".join(map(str, first + arcs[1:]))[:79]


def _value(der: bytes, tag: int, start: int, content: int, end: int) -> bytes:
    """The bytes X509_NAME_oneline() writes for an attribute value, checked as OpenSSL checks it."""
    body = der[content:end]
    if tag == 0x30:
        return der[start:end]
    if tag == 0x03:
        if not body or body[0] > 7:
            raise ValueError("bad BIT STRING")
        return body[1:-1] + bytes([body[-1] & (0xFF << body[0]) & 0xFF]) if len(body) > 1 else b""
    if tag not in _STRING_TAGS:
        raise ValueError(f"attribute value type {tag:#04x} not taken by OpenSSL")
    if tag == 12:
        body.decode("utf-8")  # UnicodeDecodeError is a ValueError: as strict as OpenSSL's UTF8_getc
    elif tag in _UNIT:
        unit = _UNIT[tag]
        points = [int.from_bytes(body[i : i + unit], "big") for i in range(0, len(body), unit)]
        if len(body) % unit or any(0xD800 <= p <= 0xDFFF or p > 0x10FFFF for p in points):
            raise ValueError("bad BMPString or UniversalString")
    return body
