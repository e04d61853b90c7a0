#!/usr/bin/env bash
# Regenerates the seed corpora under fuzz/corpus/ from a real dev KeyServer:
# its token, key-list, operation and sign-order replies (good and refused), its
# certificates, plus hand-written seeds for the inputs no server sends (config
# text, ks: URIs, PKCS#11 mechanisms and templates, OSSL_PARAM arrays).
#
#   fuzz/make-corpus.sh [path/to/ks-devserver]    (default: target/debug/ks-devserver)
#
# Seeds are small and committed; rerun this after a change to the API replies.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
server=${1:-$root/target/debug/ks-devserver}
[[ -x $server ]] || { echo "make-corpus: $server missing; cargo build -p ks-devserver" >&2; exit 2; }
corpus=$root/fuzz/corpus
work=$(mktemp -d)
cleanup() { [[ -n ${pid:-} ]] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

"$server" --data-dir "$work/data" --auth-listen 127.0.0.1:0 --api-listen 127.0.0.1:0 \
    --ready-file "$work/ready.json" --watch-stdin < <(sleep infinity) 2>"$work/server.log" &
pid=$!
for _ in $(seq 600); do [[ -s $work/ready.json ]] && break; sleep 0.1; done
[[ -s $work/ready.json ]] || { cat "$work/server.log" >&2; exit 1; }
field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$work/ready.json" "$1"; }
auth=$(field auth_url); api=$(field api_url); ca=$(field ca_file); signing_ca=$(field signing_ca_file)

mkdir -p "$corpus"/{key_list,operation,sign_reply,token_reply,certificate,config,ks_uri,pkcs11_mechanism,pkcs11_template,ossl_params}
c() { curl -sS --cacert "$ca" "$@"; }
token_for() { c -u "$1:$1-secret" -d grant_type=client_credentials "$auth/oauth2/token"; }

# Token replies: granted, refused, malformed request.
token_for orderer-client > "$corpus/token_reply/granted.json"
c -u orderer-client:wrong -d grant_type=client_credentials "$auth/oauth2/token" > "$corpus/token_reply/refused.json" || true
c -u orderer-client:orderer-client-secret -d grant_type=password "$auth/oauth2/token" > "$corpus/token_reply/bad-grant.json" || true
tok=$(python3 -c "import json,sys; print(json.load(sys.stdin)['access_token'])" < "$corpus/token_reply/granted.json")
atok=$(token_for approver-key2 | python3 -c "import json,sys; print(json.load(sys.stdin)['access_token'])")
H=(-H "Authorization: Bearer $tok")

# Key list and certificates.
c "${H[@]}" "$api/api/keys" > "$corpus/key_list/all-keys.json"
python3 - "$corpus" "$signing_ca" "$ca" <<'PY'
import json, sys, base64, re
corpus, signing_ca, tls_ca = sys.argv[1:4]
keys = json.load(open(f"{corpus}/key_list/all-keys.json"))
json.dump(keys[:1], open(f"{corpus}/key_list/one-key.json", "w"))
json.dump({"keys": keys[1:2]}, open(f"{corpus}/key_list/wrapped.json", "w"))
def der(pem):
    body = re.search(r"-----BEGIN [^-]+-----(.*?)-----END", pem, re.S).group(1)
    return base64.b64decode("".join(body.split()))
for k in keys:
    open(f"{corpus}/certificate/{k['keyid']}.pem", "w").write(k["certificate"])
    open(f"{corpus}/certificate/{k['keyid']}.der", "wb").write(der(k["certificate"]))
for name, path in (("signing-ca", signing_ca), ("tls-ca", tls_ca)):
    pem = open(path).read()
    open(f"{corpus}/certificate/{name}.pem", "w").write(pem)
    open(f"{corpus}/certificate/{name}.der", "wb").write(der(pem))
PY
# The sign_reply target verifies against key1 (RSA-2048) and key2 (EC P-256).
cp "$corpus/certificate/key1.pem" "$root/fuzz/fixtures/key1.pem"
cp "$corpus/certificate/key2.pem" "$root/fuzz/fixtures/key2.pem"

# Operations: created, pending, approved, the list, refused.
op=$(c "${H[@]}" -H 'Content-Type: application/json' -d '{"validms": 600000, "description": "fuzz corpus operation", "new-keyusagerestrictions": [{"keyid": "key1", "maxusagecount": 3}, {"keyid": "key2", "maxusagecount": 3}]}' "$api/api/operations")
echo "$op" > "$corpus/operation/created.json"
id=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['id'])" "$op")
c "${H[@]}" "$api/api/operations/$id" > "$corpus/operation/pending.json"
c -H "Authorization: Bearer $atok" -X POST "$api/api/operations/$id/approve" > "$corpus/operation/approve-reply.json"
c "${H[@]}" "$api/api/operations/$id" > "$corpus/operation/approved.json"
c "${H[@]}" "$api/api/operations?status=pending" > "$corpus/operation/list.json"
c "${H[@]}" -X POST "$api/api/operations/$id/approve" > "$corpus/operation/refused.json" || true

# Sign orders over the digest the target uses: SHA-256("keyserver-signing fuzz").
digest=$(printf 'keyserver-signing fuzz' | sha256sum | cut -d' ' -f1)
sign() { c "${H[@]}" -H 'Content-Type: application/json' -d "$1" "$api/api/signorders"; }
sign "{\"operationid\": \"$id\", \"keyid\": \"key1\", \"inputdata\": \"3031300d060960864801650304020105000420$digest\", \"inputformat\": \"hex\", \"inputpadding\": \"digestinfo\", \"signatureformat\": \"asn1\", \"description\": \"fuzz corpus\"}" > "$corpus/sign_reply/rsa-pkcs1.json"
sign "{\"operationid\": \"$id\", \"keyid\": \"key2\", \"inputdata\": \"$digest\", \"inputformat\": \"hex\", \"inputpadding\": \"none\", \"signatureformat\": \"p1363\", \"description\": \"fuzz corpus\"}" > "$corpus/sign_reply/ecdsa-p1363.json"
sign "{\"operationid\": \"$id\", \"keyid\": \"key2\", \"inputdata\": \"$digest\", \"inputformat\": \"hex\", \"inputpadding\": \"none\", \"signatureformat\": \"asn1\", \"description\": \"fuzz corpus\"}" > "$corpus/sign_reply/ecdsa-der.json"
sign "{\"operationid\": \"$id\", \"keyid\": \"key3\", \"inputdata\": \"$digest\", \"inputformat\": \"hex\", \"inputpadding\": \"none\", \"signatureformat\": \"asn1\", \"description\": \"fuzz corpus\"}" > "$corpus/sign_reply/refused.json" || true
sign "{\"operationid\": \"99999\", \"keyid\": \"key1\", \"inputdata\": \"00\", \"inputformat\": \"hex\", \"inputpadding\": \"none\", \"signatureformat\": \"asn1\", \"description\": \"x\"}" > "$corpus/sign_reply/bad-request.json" || true

# Inputs no server sends.
cp "$root/conf/ksc.conf" "$corpus/config/ksc.conf"
cp "$root/conf/ksc-legacy.json" "$corpus/config/ksc-legacy.json"
printf 'export KSC_API_SERVER="https://127.0.0.1:8200"\nKSC_HTTP_CLIENT_TIMEOUT=1m30s\nKSC_APPROVAL_TIMEOUT=500ms\nKSC_LOG=debug:/tmp/ksc.log\nKSC_CLIENT_ID=ci\nKSC_CLIENT_SECRET=s\n' > "$corpus/config/env.conf"
printf '{"KSC_API_SERVER": "http://localhost:8200", "KSC_OPERATION_ID": 42, "KSC_HTTP_CLIENT_TIMEOUT": "2.5s"}' > "$corpus/config/object.json"
for u in 'ks:' 'ks:key1' 'KS:key-2.backup_1' 'pkcs11:token=KEYSERVER' 'ks:key 1'; do
    printf '%s' "$u" > "$corpus/ks_uri/$(printf '%s' "$u" | sha1sum | cut -c1-12)"
done
python3 "$root/fuzz/binary_seeds.py" "$corpus"
echo "make-corpus: seeds written under $corpus (operation $id)"
