#!/bin/bash
# Regenerates the trust fixtures (signing CAs and key certificates); private keys are discarded.
set -eu
cd "$(dirname "$0")"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
ca() { # name keyalg subject
  openssl req -x509 -new -newkey "$2" -nodes -keyout "$tmp/$1.key" -subj "$3" -days 36500 \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    -out "$1.pem" 2>/dev/null
}
leaf() { # name ca start end keyalg [keyUsage]
  openssl req -new -newkey "$5" -nodes -keyout "$tmp/$1.key" -subj "/CN=$1" -out "$tmp/$1.csr" 2>/dev/null
  : > "$tmp/index"; echo 01 > "$tmp/serial"
  {
    echo "[ca]"; echo "default_ca=c"; echo "[c]"; echo "database=$tmp/index"; echo "serial=$tmp/serial"
    echo "new_certs_dir=$tmp"; echo "default_md=sha256"; echo "policy=p"; echo "unique_subject=no"
    echo "[p]"; echo "commonName=supplied"; echo "[x]"; echo "basicConstraints=CA:FALSE"
    if [ -n "${6:-}" ]; then echo "keyUsage=critical,$6"; fi
  } > "$tmp/ca.cnf"
  openssl ca -batch -config "$tmp/ca.cnf" -extensions x -cert "$2.pem" -keyfile "$tmp/$2.key" \
    -startdate "$3" -enddate "$4" -in "$tmp/$1.csr" -out "$tmp/$1.full" 2>/dev/null
  openssl x509 -in "$tmp/$1.full" -out "$1.pem"
}
ca ca-ec ec:<(openssl ecparam -name prime256v1) "/CN=Test Signing CA"
ca ca-rsa rsa:2048 "/CN=Test RSA Signing CA"
# Same name as ca-ec, different key: a certificate it issues names the right issuer but is forged.
ca ca-evil ec:<(openssl ecparam -name prime256v1) "/CN=Test Signing CA"
leaf ec-ok ca-ec 20200101000000Z 21000101000000Z ec:<(openssl ecparam -name prime256v1) digitalSignature
leaf rsa-ok ca-rsa 20200101000000Z 21000101000000Z rsa:2048
leaf expired ca-ec 20200101000000Z 20210101000000Z ec:<(openssl ecparam -name prime256v1) digitalSignature
leaf future ca-ec 20900101000000Z 20910101000000Z ec:<(openssl ecparam -name prime256v1) digitalSignature
leaf certsign ca-ec 20200101000000Z 21000101000000Z ec:<(openssl ecparam -name prime256v1) keyCertSign
leaf forged ca-evil 20200101000000Z 21000101000000Z ec:<(openssl ecparam -name prime256v1) digitalSignature
