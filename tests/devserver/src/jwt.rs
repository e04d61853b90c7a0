//! JWT access tokens: the ES256 tokens this server issues, and the tokens of
//! configured external issuers (RS256/384/512, ES256/384 via a JWKS file),
//! like KeyServer accepting the GitLab CI `id_tokens`.
//!
//! Hand-written on purpose: the checks (signature, `iss`, `aud`, `exp`, `nbf`)
//! are few, and the server must be strict and explicit about each of them.

use std::path::Path;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ecdsa::signature::{Signer, Verifier};
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use serde_json::{json, Map, Value};

use crate::config::{ClaimMapping, IssuerConfig};
use crate::error::ApiError;
use crate::keys::write_atomic;
use crate::users::{CiContext, Principal, Users};
use crate::util::{now_secs, random_hex};

/// Issues and checks this server's own tokens.
pub struct TokenIssuer {
    key: p256::ecdsa::SigningKey,
    kid: String,
    /// `iss` of issued tokens.
    pub issuer: String,
    /// `aud` of issued tokens (required by the API).
    pub audience: String,
    /// Token lifetime.
    pub lifetime: Duration,
}

impl TokenIssuer {
    /// Loads `<dir>/token-signing.key.pem`, creating it on first start, so
    /// tokens stay valid across restarts.
    pub fn load_or_create(
        dir: &Path,
        issuer: String,
        audience: String,
        lifetime: Duration,
    ) -> Result<TokenIssuer, String> {
        let path = dir.join("token-signing.key.pem");
        let key = if path.exists() {
            let pem = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            p256::ecdsa::SigningKey::from_pkcs8_pem(&pem)
                .map_err(|e| format!("{}: {e}", path.display()))?
        } else {
            let key = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
            let pem = key
                .to_pkcs8_pem(LineEnding::LF)
                .map_err(|e| format!("token key: {e}"))?;
            write_atomic(&path, pem.as_bytes())
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            key
        };
        let point = key.verifying_key().to_encoded_point(false);
        let kid = hex::encode(&sha2_256(point.as_bytes())[..8]);
        Ok(TokenIssuer {
            key,
            kid,
            issuer,
            audience,
            lifetime,
        })
    }

    /// A signed token for `sub`; returns the token and its lifetime in seconds.
    pub fn issue(&self, sub: &str) -> (String, u64) {
        let now = now_secs();
        let lifetime = self.lifetime.as_secs().max(1);
        let header = json!({"alg": "ES256", "typ": "JWT", "kid": self.kid});
        let claims = json!({
            "iss": self.issuer, "sub": sub, "aud": self.audience, "client_id": sub,
            "iat": now, "nbf": now, "exp": now + lifetime, "jti": random_hex(12),
        });
        let signing_input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let sig: p256::ecdsa::Signature = self.key.sign(signing_input.as_bytes());
        (
            format!("{signing_input}.{}", B64.encode(sig.to_bytes())),
            lifetime,
        )
    }

    /// The public key as a JWKS document.
    pub fn jwks(&self) -> Value {
        let point = self.key.verifying_key().to_encoded_point(false);
        let (x, y) = (point.x(), point.y());
        json!({"keys": [{
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": self.kid,
            "x": x.map(|v| B64.encode(v)), "y": y.map(|v| B64.encode(v)),
        }]})
    }
}

fn sha2_256(data: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(data).to_vec()
}

/// One public key from a JWKS.
enum Jwk {
    Rsa(Option<String>, Box<rsa::RsaPublicKey>),
    P256(Option<String>, p256::ecdsa::VerifyingKey),
    P384(Option<String>, p384::ecdsa::VerifyingKey),
}

impl Jwk {
    fn kid(&self) -> Option<&str> {
        match self {
            Jwk::Rsa(k, _) | Jwk::P256(k, _) | Jwk::P384(k, _) => k.as_deref(),
        }
    }
}

fn b64_field(v: &Value, name: &str) -> Result<Vec<u8>, String> {
    let s = v
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("JWK lacks {name:?}"))?;
    B64.decode(s.trim_end_matches('='))
        .map_err(|_| format!("JWK field {name:?} is not base64url"))
}

fn parse_jwk(v: &Value) -> Result<Jwk, String> {
    let kid = v.get("kid").and_then(Value::as_str).map(str::to_string);
    match v.get("kty").and_then(Value::as_str) {
        Some("RSA") => {
            let n = rsa::BigUint::from_bytes_be(&b64_field(v, "n")?);
            let e = rsa::BigUint::from_bytes_be(&b64_field(v, "e")?);
            let key = rsa::RsaPublicKey::new(n, e).map_err(|e| format!("JWK RSA key: {e}"))?;
            Ok(Jwk::Rsa(kid, Box::new(key)))
        }
        Some("EC") => {
            let mut sec1 = vec![4u8];
            sec1.extend(b64_field(v, "x")?);
            sec1.extend(b64_field(v, "y")?);
            match v.get("crv").and_then(Value::as_str) {
                Some("P-256") => Ok(Jwk::P256(
                    kid,
                    p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1)
                        .map_err(|_| "JWK P-256 point is invalid".to_string())?,
                )),
                Some("P-384") => Ok(Jwk::P384(
                    kid,
                    p384::ecdsa::VerifyingKey::from_sec1_bytes(&sec1)
                        .map_err(|_| "JWK P-384 point is invalid".to_string())?,
                )),
                other => Err(format!("JWK curve {other:?} is not supported")),
            }
        }
        other => Err(format!("JWK key type {other:?} is not supported")),
    }
}

/// A trusted external issuer.
pub struct ExternalIssuer {
    issuer: String,
    audience: String,
    keys: Vec<Jwk>,
    map: Vec<ClaimMapping>,
}

impl ExternalIssuer {
    /// Reads the JWKS file of a configured issuer.
    pub fn load(cfg: &IssuerConfig, users: &Users) -> Result<ExternalIssuer, String> {
        let text = std::fs::read_to_string(&cfg.jwks_file)
            .map_err(|e| format!("cannot read JWKS {}: {e}", cfg.jwks_file.display()))?;
        let doc: Value = serde_json::from_str(&text)
            .map_err(|e| format!("JWKS {}: {e}", cfg.jwks_file.display()))?;
        let keys = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| format!("JWKS {} has no \"keys\" array", cfg.jwks_file.display()))?
            .iter()
            .map(parse_jwk)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("JWKS {}: {e}", cfg.jwks_file.display()))?;
        for m in &cfg.map {
            if users.get(&m.user).is_none() {
                return Err(format!(
                    "issuer {}: mapping names unknown user {:?}",
                    cfg.issuer, m.user
                ));
            }
        }
        Ok(ExternalIssuer {
            issuer: cfg.issuer.clone(),
            audience: cfg.audience.clone(),
            keys,
            map: cfg.map.clone(),
        })
    }
}

/// Checks bearer tokens.
pub struct TokenVerifier {
    /// Our own issuer.
    pub own: TokenIssuer,
    /// External issuers.
    pub external: Vec<ExternalIssuer>,
}

struct Parsed {
    header: Map<String, Value>,
    claims: Map<String, Value>,
    signing_input: String,
    signature: Vec<u8>,
}

fn parse(token: &str) -> Result<Parsed, ApiError> {
    let bad = || ApiError::unauthorized("the bearer token is not a well-formed JWT");
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let dec = |p: &str| B64.decode(p).map_err(|_| bad());
    let header: Map<String, Value> = serde_json::from_slice(&dec(h)?).map_err(|_| bad())?;
    let claims: Map<String, Value> = serde_json::from_slice(&dec(c)?).map_err(|_| bad())?;
    Ok(Parsed {
        header,
        claims,
        signing_input: format!("{h}.{c}"),
        signature: dec(s)?,
    })
}

fn check_times_and_audience(p: &Parsed, audience: &str) -> Result<(), ApiError> {
    let now = now_secs() as i64;
    let exp = p
        .claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or_else(|| ApiError::unauthorized("the token has no exp claim"))?;
    if now >= exp {
        return Err(ApiError::unauthorized(
            "the token has expired; fetch a new one",
        ));
    }
    if let Some(nbf) = p.claims.get("nbf") {
        let nbf = nbf
            .as_i64()
            .ok_or_else(|| ApiError::unauthorized("the token's nbf claim is not a number"))?;
        // A minute of leeway for clock skew between a CI issuer and us.
        if nbf > now + 60 {
            return Err(ApiError::unauthorized("the token is not valid yet (nbf)"));
        }
    }
    let aud_ok = match p.claims.get("aud") {
        Some(Value::String(s)) => s == audience,
        Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(audience)),
        _ => false,
    };
    if !aud_ok {
        return Err(ApiError::unauthorized(format!(
            "the token's audience does not include {audience:?}"
        )));
    }
    Ok(())
}

fn bad_signature() -> ApiError {
    ApiError::unauthorized("the token's signature does not verify")
}

fn verify_with(key: &Jwk, alg: &str, input: &[u8], sig: &[u8]) -> Result<(), ApiError> {
    use sha2::{Sha256, Sha384, Sha512};
    match (key, alg) {
        (Jwk::Rsa(_, k), "RS256" | "RS384" | "RS512") => {
            let s = rsa::pkcs1v15::Signature::try_from(sig).map_err(|_| bad_signature())?;
            let k = (**k).clone();
            let r = match alg {
                "RS256" => rsa::pkcs1v15::VerifyingKey::<Sha256>::new(k).verify(input, &s),
                "RS384" => rsa::pkcs1v15::VerifyingKey::<Sha384>::new(k).verify(input, &s),
                _ => rsa::pkcs1v15::VerifyingKey::<Sha512>::new(k).verify(input, &s),
            };
            r.map_err(|_| bad_signature())
        }
        (Jwk::P256(_, k), "ES256") => {
            let s = p256::ecdsa::Signature::from_slice(sig).map_err(|_| bad_signature())?;
            k.verify(input, &s).map_err(|_| bad_signature())
        }
        (Jwk::P384(_, k), "ES384") => {
            let s = p384::ecdsa::Signature::from_slice(sig).map_err(|_| bad_signature())?;
            k.verify(input, &s).map_err(|_| bad_signature())
        }
        _ => Err(bad_signature()),
    }
}

fn claim_as_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl TokenVerifier {
    /// Verifies a bearer token and returns the caller with its rights.
    pub fn verify(&self, token: &str, users: &Users) -> Result<Principal, ApiError> {
        let p = parse(token)?;
        let alg = p
            .header
            .get("alg")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let iss = p
            .claims
            .get("iss")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::unauthorized("the token has no iss claim"))?
            .to_string();
        let sub = p
            .claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or("-")
            .to_string();
        if iss == self.own.issuer {
            if alg != "ES256" {
                return Err(bad_signature());
            }
            let s =
                p256::ecdsa::Signature::from_slice(&p.signature).map_err(|_| bad_signature())?;
            self.own
                .key
                .verifying_key()
                .verify(p.signing_input.as_bytes(), &s)
                .map_err(|_| bad_signature())?;
            check_times_and_audience(&p, &self.own.audience)?;
            let user = users.get(&sub).ok_or_else(|| {
                ApiError::unauthorized(format!("the token's user {sub:?} no longer exists"))
            })?;
            return Ok(Principal {
                id: user.name.clone(),
                rights: user.rights.clone(),
                context: None,
            });
        }
        let ext = self
            .external
            .iter()
            .find(|e| e.issuer == iss)
            .ok_or_else(|| {
                ApiError::unauthorized(format!("tokens from issuer {iss:?} are not trusted"))
            })?;
        let kid = p.header.get("kid").and_then(Value::as_str);
        let candidates: Vec<&Jwk> = ext
            .keys
            .iter()
            .filter(|k| kid.is_none() || k.kid().is_none() || k.kid() == kid)
            .collect();
        if !candidates
            .iter()
            .any(|k| verify_with(k, &alg, p.signing_input.as_bytes(), &p.signature).is_ok())
        {
            return Err(bad_signature());
        }
        check_times_and_audience(&p, &ext.audience)?;
        let mapping = ext.map.iter().find(|m| {
            m.claims.iter().all(|(name, want)| {
                p.claims.get(name).and_then(claim_as_string).as_deref() == Some(want.as_str())
            })
        });
        let Some(m) = mapping else {
            return Err(ApiError::forbidden(format!(
                "the token from {iss} (sub {sub:?}) matches no configured claim mapping"
            )));
        };
        let user = users
            .get(&m.user)
            .ok_or_else(|| ApiError::forbidden("the claim mapping names no known user"))?;
        let context = CiContext::from_claims(|name| p.claims.get(name).and_then(claim_as_string));
        Ok(Principal {
            id: format!("{iss}#{sub}"),
            rights: user.rights.clone(),
            context,
        })
    }
}
