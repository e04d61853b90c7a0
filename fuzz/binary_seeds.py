"""Writes the binary seeds of the PKCS#11 and OSSL_PARAM targets (formats: see the targets).

Called by make-corpus.sh with the corpus directory; needs fixtures/key1.pem (RSA) and
fixtures/key2.pem (EC P-256) for realistic public keys.
"""
import hashlib
import os
import struct
import sys

corpus = sys.argv[1]


def write(target, name, data):
    os.makedirs(f"{corpus}/{target}", exist_ok=True)
    with open(f"{corpus}/{target}/{name}", "wb") as f:
        f.write(data)


# ---- pkcs11_mechanism: flags u8, mechanism u64 LE, param len u8 (0xff: NULL), param, data.
CKM = dict(RSA_PKCS=0x1, RSA_PKCS_PSS=0xD, SHA256_RSA_PKCS=0x40, SHA384_RSA_PKCS=0x41,
           SHA256_RSA_PKCS_PSS=0x43, SHA512_RSA_PKCS_PSS=0x45, ECDSA=0x1041,
           ECDSA_SHA256=0x1044, ECDSA_SHA384=0x1045, SHA256=0x250, SHA384=0x260, SHA512=0x270,
           SHA_1=0x220)
MGF1 = dict(SHA256=2, SHA384=3, SHA512=4)
digest = hashlib.sha256(b"keyserver-signing fuzz").digest()
digest_info = bytes.fromhex("3031300d060960864801650304020105000420") + digest


def mech(flags, ckm, param, data):
    plen = 0xFF if param is None else len(param)
    return bytes([flags]) + struct.pack("<Q", ckm) + bytes([plen]) + (param or b"") + data


pss = lambda h, mgf, slen: struct.pack("<QQQ", CKM[h], MGF1[mgf], slen)
seeds = {
    "rsa-pkcs-digestinfo": mech(0, CKM["RSA_PKCS"], None, digest_info),
    "sha256-rsa-pkcs": mech(0, CKM["SHA256_RSA_PKCS"], None, b"firmware image"),
    "sha384-rsa-pkcs-verify": mech(2, CKM["SHA384_RSA_PKCS"], None, b"firmware image"),
    "rsa-pss": mech(0, CKM["RSA_PKCS_PSS"], pss("SHA256", "SHA256", 32), digest),
    "sha256-rsa-pss": mech(0, CKM["SHA256_RSA_PKCS_PSS"], pss("SHA256", "SHA256", 32), b"data"),
    "sha512-rsa-pss-mismatch": mech(0, CKM["SHA512_RSA_PKCS_PSS"], pss("SHA256", "SHA384", 0), b"x"),
    "ecdsa": mech(1, CKM["ECDSA"], None, digest),
    "ecdsa-sha1-length": mech(1, CKM["ECDSA"], None, digest[:20]),
    "ecdsa-sha256": mech(1, CKM["ECDSA_SHA256"], None, b"firmware image"),
    "ecdsa-sha384-verify": mech(3, CKM["ECDSA_SHA384"], None, b"firmware image"),
    "digest-sha256": mech(4, CKM["SHA256"], None, b"firmware image"),
    "digest-sha1": mech(4, CKM["SHA_1"], None, b"firmware image"),
}
for name, data in seeds.items():
    write("pkcs11_mechanism", name, data)

# ---- pkcs11_template: object selector u8, then entries: type u32 LE, value len u8, value,
# buffer size u8 for C_GetAttributeValue (0xff: NULL pValue, the size query).
CKA = dict(CLASS=0x0, TOKEN=0x1, PRIVATE=0x2, LABEL=0x3, VALUE=0x11, CERTIFICATE_TYPE=0x80,
           KEY_TYPE=0x100, ID=0x102, SIGN=0x108, MODULUS=0x120, PUBLIC_EXPONENT=0x122,
           EC_PARAMS=0x180, EC_POINT=0x181, SUBJECT=0x101, ALWAYS_AUTHENTICATE=0x202)
ul = lambda v: struct.pack("<Q", v)


def template(sel, entries):
    out = bytes([sel])
    for t, value, buf in entries:
        out += struct.pack("<I", CKA[t]) + bytes([len(value)]) + value + bytes([buf])
    return out


write("pkcs11_template", "private-key1", template(0, [("CLASS", ul(3), 0xFF), ("LABEL", b"key1", 64), ("MODULUS", b"", 0xFF)]))
write("pkcs11_template", "public-ec", template(4, [("CLASS", ul(2), 8), ("KEY_TYPE", ul(3), 8), ("EC_POINT", b"", 0xFF), ("EC_PARAMS", b"", 16)]))
write("pkcs11_template", "certificate", template(2, [("CLASS", ul(1), 8), ("CERTIFICATE_TYPE", ul(0), 8), ("VALUE", b"", 0xFF), ("SUBJECT", b"", 4)]))
write("pkcs11_template", "by-id", template(1, [("ID", b"key2", 0xFF), ("SIGN", b"\x01", 1), ("TOKEN", b"\x01", 1)]))
write("pkcs11_template", "all", template(3, []))
write("pkcs11_template", "short-buffer", template(0, [("LABEL", b"", 1), ("ALWAYS_AUTHENTICATE", b"", 0)]))

# ---- ossl_params: mode u8, then entries: name index u8, type index u8, length u8, data.
# Names and types: see NAMES and TYPES in fuzz_targets/ossl_params.rs (same order here).
NAMES = ["digest", "pad-mode", "saltlen", "mgf1-digest", "n", "e", "group", "pub",
         "encoded-pub-key", "d", "priv", "properties", "digest-size", "algorithm-id", "bits",
         "security-bits", "max-size", "default-digest", "mandatory-digest", "mgf1-properties"]
TYPES = ["int", "uint", "utf8", "octets", "utf8ptr", "octetptr", "real"]


def param(name, ty, data):
    return bytes([NAMES.index(name), TYPES.index(ty), len(data)]) + data


def pem_der(path):
    import base64
    text = open(path).read()
    body = text.split("-----")[2]
    return base64.b64decode("".join(body.split()))


def rsa_n_e(cert):
    # Good enough for seeds: take the 257-byte INTEGER of the 2048-bit modulus.
    i = cert.find(b"\x02\x82\x01\x01\x00")
    return cert[i + 5:i + 5 + 256], b"\x01\x00\x01"


def ec_point(cert):
    i = cert.find(b"\x03\x42\x00\x04")
    return cert[i + 3:i + 3 + 65]


here = os.path.dirname(os.path.abspath(__file__))
n, e = rsa_n_e(pem_der(f"{here}/fixtures/key1.pem"))
point = ec_point(pem_der(f"{here}/fixtures/key2.pem"))
le = lambda b: b[::-1]  # OpenSSL big numbers are native-endian (little here)
# n is 256 bytes, too long for one length byte: the target reads length 0 as "the rest".
write("ossl_params", "rsa-import", bytes([0]) + param("e", "uint", le(e)) + bytes([NAMES.index("n"), TYPES.index("uint"), 0]) + le(n))
write("ossl_params", "ec-import", bytes([2]) + param("group", "utf8", b"prime256v1") + param("pub", "octets", point))
write("ossl_params", "rsa-pss-ctx", bytes([1 | 8]) + param("pad-mode", "utf8", b"pss") + param("digest", "utf8", b"SHA2-256") + param("saltlen", "utf8", b"digest") + param("mgf1-digest", "utf8ptr", b"SHA256"))
write("ossl_params", "rsa-pkcs1-int", bytes([8]) + param("pad-mode", "int", struct.pack("<i", 1)) + param("saltlen", "int", struct.pack("<i", -3)) + param("digest", "utf8", b"SHA384"))
write("ossl_params", "ec-ctx-get", bytes([2 | 8 | 16]) + param("digest", "utf8", b"sha512") + param("algorithm-id", "octets", bytes(64)) + param("digest-size", "uint", bytes(8)))
write("ossl_params", "get-key-params", bytes([2 | 16]) + param("bits", "int", bytes(4)) + param("security-bits", "int", bytes(4)) + param("max-size", "uint", bytes(8)) + param("default-digest", "utf8", bytes(32)) + param("encoded-pub-key", "octets", bytes(80)))
write("ossl_params", "private-refused", bytes([0 | 4]) + param("d", "uint", bytes(16)) + param("n", "uint", bytes(16)) + param("e", "uint", b"\x03"))
