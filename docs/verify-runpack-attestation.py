#!/usr/bin/python3
"""Check a Decision Gate runpack attestation with securesystemslib, independently of Decision Gate.

Usage: /usr/bin/python3 verify-runpack-attestation.py <manifest file> <Ed25519 public key, SPKI PEM>

Reads <manifest file>.intoto.dsse.json, a DSSE envelope, and checks:
  - its Ed25519 signature over the DSSE pre-authentication encoding, by the given key (securesystemslib's
    SSlibKey does the signature check);
  - that the payload is an in-toto Statement v1 with a SLSA verification summary predicate;
  - that the statement's subject is the manifest file: its name and the SHA-256 of its bytes.
Prints the summary and exits 0 when all hold; prints why not and exits 1 otherwise.

Written for the securesystemslib 0.26 of Debian 12 (python3-securesystemslib), whose signer API verifies
signatures but has no DSSE envelope class yet, so the pre-authentication encoding is spelled out here.
"""

import base64
import binascii
import hashlib
import json
import os
import sys

from securesystemslib.exceptions import UnverifiedSignatureError, VerificationError
from securesystemslib.signer import Signature, SSlibKey

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/verification_summary/v1"
# DER prefix of an Ed25519 SubjectPublicKeyInfo; the raw 32-byte key follows it.
ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")


def fail(reason):
    print(f"attestation NOT verified: {reason}")
    sys.exit(1)


def ed25519_public_key(path):
    with open(path, encoding="ascii") as pem:
        body = "".join(line.strip() for line in pem if not line.startswith("-----"))
    der = base64.b64decode(body)
    if len(der) != 44 or not der.startswith(ED25519_SPKI_PREFIX):
        fail(f"{path} is not an Ed25519 public key in SPKI PEM")
    raw = der[12:]
    # securesystemslib key ids are hex; any hex name does, the key's SHA-256 is the customary one.
    return SSlibKey(hashlib.sha256(raw).hexdigest(), "ed25519", "ed25519", {"public": raw.hex()})


def pre_authentication_encoding(payload_type, payload):
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def signed_by(key, envelope, payload):
    message = pre_authentication_encoding(envelope["payloadType"], payload)
    for entry in envelope["signatures"]:
        try:
            signature = base64.b64decode(entry["sig"], validate=True)
            key.verify_signature(Signature(key.keyid, signature.hex()), message)
            return True
        except (binascii.Error, UnverifiedSignatureError, VerificationError):
            continue
    return False


def main():
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[2])
        sys.exit(2)
    manifest_path, key_path = sys.argv[1], sys.argv[2]
    with open(f"{manifest_path}.intoto.dsse.json", encoding="utf-8") as file:
        envelope = json.load(file)
    if envelope.get("payloadType") != PAYLOAD_TYPE:
        fail(f"payloadType is not {PAYLOAD_TYPE}")
    payload = base64.b64decode(envelope["payload"], validate=True)
    if not signed_by(ed25519_public_key(key_path), envelope, payload):
        fail("no valid signature by the given key")
    statement = json.loads(payload)
    if statement.get("_type") != STATEMENT_TYPE or statement.get("predicateType") != PREDICATE_TYPE:
        fail("not an in-toto SLSA verification summary statement")
    with open(manifest_path, "rb") as manifest:
        digest = hashlib.sha256(manifest.read()).hexdigest()
    name = os.path.basename(manifest_path)
    if [entry.get("digest", {}).get("sha256") for entry in statement["subject"] if entry["name"] == name] != [digest]:
        fail(f"the statement's subject is not {name} with sha256 {digest}")
    predicate = statement["predicate"]
    print(
        f"attestation verified: {predicate['verificationResult']} for {predicate['resourceUri']}, "
        f"verified by {predicate['verifier']['id']} at {predicate['timeVerified']}"
    )


if __name__ == "__main__":
    main()
