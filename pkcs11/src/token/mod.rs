//! The token core: sessions, login state, objects and operations, in Rust
//! terms. The `C_*` functions (module `fns`, above this one) translate pointers to calls on
//! a [`Token`]; unit tests drive a `Token` directly with a fake backend.
//!
//! Locking: the session table and the lazily created backend/object store sit
//! behind short-lived locks; every session has its own mutex. No lock is held
//! while the backend talks to the network, so sessions on many threads sign
//! in parallel.
//!
//! Files by job: this one holds the types and the token's lazily created signer and object
//! store; `sessions` opens, closes and logs in; `objects` finds; `operations` signs, verifies
//! and digests.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use cryptoki_sys::*;
use ks_common::hash::{digest, HashAlg, Hasher};
use ks_common::keys::KeyEntry;
use ks_common::sign::SignRequest;

use crate::error::{from_common, Result, Rv};
use crate::mechanism::{digest_hash, SignMechanism};
use crate::object::ObjectStore;
use ks_common::signer::Signer;

/// The one slot's ID.
pub const SLOT_ID: CK_SLOT_ID = 1;

/// Locks a mutex, ignoring poisoning (a panicking thread was already answered
/// with `CKR_GENERAL_ERROR`; the state it guards stays consistent).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Who is logged in (applies to all sessions of the application).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Login {
    /// Nobody.
    Public,
    /// The normal user.
    User,
    /// The security officer.
    So,
}

/// What an output-producing call answered.
#[derive(Debug, PartialEq, Eq)]
pub enum Output {
    /// The caller's buffer is absent or too short: this many bytes are needed.
    /// The operation stays active.
    Size(usize),
    /// The result; the operation has ended.
    Done(Vec<u8>),
}

/// A signature or verification in progress.
pub struct KeyOp {
    key: Arc<KeyEntry>,
    mechanism: SignMechanism,
    hasher: Option<Hasher>,
    multi_part: bool,
}

impl KeyOp {
    fn new(key: Arc<KeyEntry>, mechanism: SignMechanism) -> KeyOp {
        KeyOp {
            hasher: mechanism.local_hash().map(Hasher::new),
            key,
            mechanism,
            multi_part: false,
        }
    }

    fn signature_len(&self) -> usize {
        self.mechanism.signature_len(&self.key.public_key)
    }

    /// Feeds a part of a multi-part operation. The raw mechanisms (`CKM_RSA_PKCS`,
    /// `CKM_ECDSA`, `CKM_RSA_PKCS_PSS`) are single-part only in PKCS#11: their input is
    /// refused here rather than buffered, so a bad input can never surface later from
    /// `C_SignFinal`/`C_VerifyFinal` with a code those functions do not list.
    fn update(&mut self, data: &[u8]) -> Result<()> {
        match &mut self.hasher {
            Some(h) => {
                self.multi_part = true;
                h.update(data);
                Ok(())
            }
            None => Err(self.single_part_only()),
        }
    }

    /// Logs why a multi-part call on a raw mechanism is refused and answers the code:
    /// `CKR_FUNCTION_NOT_SUPPORTED`, the code PKCS#11 (5.1) gives for what a library does not
    /// support, and the one callers test for here (pkcs11-tool's `--test` then starts a
    /// single-part signature). As any failed Update/Final, it ends the operation.
    fn single_part_only(&self) -> Rv {
        log::warn!(
            "libpkcs11ks: {} is a single-part mechanism: use C_Sign/C_Verify, not the Update/Final calls",
            self.mechanism.name()
        );
        CKR_FUNCTION_NOT_SUPPORTED
    }

    /// The request for a single-part call with `data`.
    fn single(&self, data: &[u8]) -> Result<SignRequest> {
        match self.mechanism.local_hash() {
            Some(alg) => self.mechanism.request_from_digest(digest(alg, data)),
            None => self
                .mechanism
                .request_from_input(&self.key.public_key, data),
        }
    }

    /// The request after `update` calls (only hash-and-sign mechanisms get here).
    fn finish(self) -> Result<SignRequest> {
        match self.hasher {
            Some(h) => self.mechanism.request_from_digest(h.finalize()),
            None => Err(self.single_part_only()),
        }
    }
}

/// A digest in progress.
pub struct DigestOp {
    alg: HashAlg,
    hasher: Hasher,
}

/// An object search in progress.
#[derive(Debug, Default)]
pub struct FindOp {
    handles: Vec<CK_OBJECT_HANDLE>,
    position: usize,
}

/// Which key operation of a session a call is about: signing with the private
/// key (on KeyServer) or verifying with the public key (locally).
#[derive(Clone, Copy)]
enum KeyOpKind {
    Sign,
    Verify,
}

impl KeyOpKind {
    /// The object class a key handle must have for this operation.
    fn key_class(self) -> CK_OBJECT_CLASS {
        match self {
            KeyOpKind::Sign => CKO_PRIVATE_KEY,
            KeyOpKind::Verify => CKO_PUBLIC_KEY,
        }
    }
}

/// One session.
#[derive(Default)]
pub struct Session {
    rw: bool,
    find: Option<FindOp>,
    sign: Option<KeyOp>,
    verify: Option<KeyOp>,
    digest: Option<DigestOp>,
}

impl Session {
    /// The session's active signing or verifying operation.
    fn op_slot(&mut self, kind: KeyOpKind) -> &mut Option<KeyOp> {
        match kind {
            KeyOpKind::Sign => &mut self.sign,
            KeyOpKind::Verify => &mut self.verify,
        }
    }
}

/// Creates the signer on first need (never in `C_Initialize`).
pub type SignerFactory = Arc<dyn Fn() -> ks_common::Result<Arc<dyn Signer>> + Send + Sync>;

/// The production factory: [`ks_common::signer::connect`] with no overrides (configuration
/// from the environment and `KSC_CONFIG`).
pub fn client_factory() -> SignerFactory {
    Arc::new(|| ks_common::signer::connect(&ks_common::Settings::new()))
}

/// What `C_Sign`/`C_SignFinal` go on with: the operation, taken out of the session, or
/// only the signature size (the caller's buffer is absent or too small; the operation stays).
enum SignTurn {
    /// Sign now: the operation has left the session.
    Sign(Box<KeyOp>),
    /// Report this many bytes; nothing was taken.
    SizeOnly(usize),
}

/// The token (and library) state between `C_Initialize` and `C_Finalize`.
pub struct Token {
    pid: u32,
    factory: SignerFactory,
    backend: Mutex<Option<Arc<dyn Signer>>>,
    objects: Mutex<Option<Arc<ObjectStore>>>,
    sessions: RwLock<HashMap<CK_SESSION_HANDLE, Arc<Mutex<Session>>>>,
    next_session: AtomicU64,
    login: Mutex<Login>,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("pid", &self.pid)
            .finish_non_exhaustive()
    }
}

impl Token {
    /// A fresh token; nothing touches the network until a key is needed.
    pub fn new(factory: SignerFactory) -> Token {
        Token {
            pid: std::process::id(),
            factory,
            backend: Mutex::new(None),
            objects: Mutex::new(None),
            sessions: RwLock::new(HashMap::new()),
            next_session: AtomicU64::new(1),
            login: Mutex::new(Login::Public),
        }
    }

    /// The process that initialised the token (a forked child must re-initialise).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The backend, created on first use.
    pub fn backend(&self) -> Result<Arc<dyn Signer>> {
        let mut slot = lock(&self.backend);
        if let Some(b) = slot.as_ref() {
            return Ok(Arc::clone(b));
        }
        // Creating the client reads configuration only; no network I/O.
        let backend = (self.factory)().map_err(|e| from_common("configuration", &e))?;
        *slot = Some(Arc::clone(&backend));
        Ok(backend)
    }

    /// The objects, built from the key catalog on first need.
    pub fn objects(&self) -> Result<Arc<ObjectStore>> {
        if let Some(store) = lock(&self.objects).as_ref() {
            return Ok(Arc::clone(store));
        }
        let backend = self.backend()?;
        // No lock held across the network; a concurrent first fetch is harmless
        // (the client caches the catalog) and the first stored store wins.
        let keys = backend
            .keys()
            .map_err(|e| from_common("listing keys", &e))?;
        let store = Arc::new(ObjectStore::new(&keys));
        let mut slot = lock(&self.objects);
        Ok(Arc::clone(slot.get_or_insert(store)))
    }

    // ---- sessions -------------------------------------------------------
}

mod objects;
mod operations;
mod sessions;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::tests::{ec_key, rsa_key};
    use ks_common::error::Error;
    use ks_common::signer::fake::FakeSigner;

    fn token() -> (Token, Arc<FakeSigner>) {
        let fake = Arc::new(FakeSigner::new(vec![rsa_key("key1"), ec_key("key2")]));
        let backend = Arc::clone(&fake);
        let factory: SignerFactory = Arc::new(move || Ok(Arc::clone(&backend) as Arc<dyn Signer>));
        (Token::new(factory), fake)
    }

    #[test]
    fn size_queries_do_not_sign_and_keep_the_operation() {
        let (t, fake) = token();
        let s = t.open_session(false).expect("session");
        t.sign_init(s, Some(SignMechanism::RsaPkcs(HashAlg::Sha256)), 1)
            .expect("init");
        assert_eq!(t.sign(s, b"data", None), Ok(Output::Size(256)));
        assert_eq!(t.sign(s, b"data", Some(10)), Ok(Output::Size(256)));
        assert_eq!(fake.sign_calls(), 0);
        assert_eq!(
            t.sign(s, b"data", Some(256)),
            Ok(Output::Done(vec![0x5a; 256]))
        );
        assert_eq!(fake.sign_calls(), 1);
        assert_eq!(
            fake.last(),
            Some(SignRequest::RsaPkcs1 {
                hash: HashAlg::Sha256,
                digest: digest(HashAlg::Sha256, b"data")
            })
        );
        // The operation ended.
        assert_eq!(
            t.sign(s, b"data", Some(256)),
            Err(CKR_OPERATION_NOT_INITIALIZED)
        );
        assert_eq!(fake.key_calls(), 1);
    }

    #[test]
    fn multi_part_hashes_locally() {
        let (t, fake) = token();
        let s = t.open_session(true).expect("session");
        t.sign_init(s, Some(SignMechanism::Ecdsa(HashAlg::Sha384)), 4)
            .expect("init");
        t.sign_update(s, b"hello ").expect("update");
        // C_Sign cannot finish a multi-part signature: refused with a listed code, and
        // (as for any failure but a size answer) the operation has ended.
        assert_eq!(t.sign(s, b"x", Some(64)), Err(CKR_FUNCTION_FAILED));
        assert_eq!(t.sign_final(s, None), Err(CKR_OPERATION_NOT_INITIALIZED));
        t.sign_init(s, Some(SignMechanism::Ecdsa(HashAlg::Sha384)), 4)
            .expect("init");
        t.sign_update(s, b"hello ").expect("update");
        t.sign_update(s, b"world").expect("update");
        assert_eq!(t.sign_final(s, None), Ok(Output::Size(64)));
        assert_eq!(t.sign_final(s, Some(64)), Ok(Output::Done(vec![0x5a; 64])));
        assert_eq!(
            fake.last(),
            Some(SignRequest::Ecdsa {
                digest: digest(HashAlg::Sha384, b"hello world"),
                format: ks_common::sign::EcdsaFormat::P1363
            })
        );
    }

    #[test]
    fn finishing_calls_check_state_and_shape_alike_for_sign_and_verify() {
        let (t, fake) = token();
        let s = t.open_session(false).expect("session");
        let mech = Some(SignMechanism::RsaPkcs(HashAlg::Sha256));
        // Nothing active, or no such session.
        assert_eq!(t.sign(s, b"x", None), Err(CKR_OPERATION_NOT_INITIALIZED));
        assert_eq!(t.sign_final(s, None), Err(CKR_OPERATION_NOT_INITIALIZED));
        assert_eq!(
            t.verify(s, b"x", &[0; 256]),
            Err(CKR_OPERATION_NOT_INITIALIZED)
        );
        assert_eq!(
            t.verify_final(s, &[0; 256]),
            Err(CKR_OPERATION_NOT_INITIALIZED)
        );
        assert_eq!(
            t.sign(s + 1000, b"x", None),
            Err(CKR_SESSION_HANDLE_INVALID)
        );
        assert_eq!(
            t.verify(s + 1000, b"x", &[0; 256]),
            Err(CKR_SESSION_HANDLE_INVALID)
        );
        // The single-part call cannot finish a multi-part verification: refused, and ended.
        t.verify_init(s, mech, 2).expect("init");
        t.verify_update(s, b"x").expect("update");
        assert_eq!(t.verify(s, b"x", &[0; 256]), Err(CKR_FUNCTION_FAILED));
        assert_eq!(
            t.verify_final(s, &[0; 256]),
            Err(CKR_OPERATION_NOT_INITIALIZED)
        );
        // A finished verification (here a wrong signature) has left the session too.
        t.verify_init(s, mech, 2).expect("init");
        t.verify_update(s, b"x").expect("update");
        assert_eq!(t.verify_final(s, &[0; 256]), Err(CKR_SIGNATURE_INVALID));
        assert_eq!(
            t.verify_final(s, &[0; 256]),
            Err(CKR_OPERATION_NOT_INITIALIZED)
        );
        // A size answer keeps a multi-part signature active; the real call then signs once.
        t.sign_init(s, mech, 1).expect("init");
        t.sign_update(s, b"x").expect("update");
        assert_eq!(t.sign_final(s, Some(255)), Ok(Output::Size(256)));
        assert_eq!(
            t.sign_final(s, Some(256)),
            Ok(Output::Done(vec![0x5a; 256]))
        );
        assert_eq!(
            t.sign_final(s, Some(256)),
            Err(CKR_OPERATION_NOT_INITIALIZED)
        );
        assert_eq!(fake.sign_calls(), 1);
    }

    /// The signature length of the test keys for a mechanism.
    fn t_len(mech: SignMechanism) -> usize {
        if mech == SignMechanism::EcdsaRaw {
            64
        } else {
            256
        }
    }

    #[test]
    fn single_part_mechanisms_refuse_update_and_final() {
        let (t, fake) = token();
        let s = t.open_session(false).expect("session");
        let pss = SignMechanism::RsaPssRaw {
            hash: HashAlg::Sha256,
            salt_len: 32,
        };
        let raw = [
            (SignMechanism::RsaPkcsRaw, 1, 2),
            (pss, 1, 2),
            (SignMechanism::EcdsaRaw, 4, 5),
        ];
        for (mech, private, public) in raw {
            // Update refused (nothing buffered), and the operation has ended.
            t.sign_init(s, Some(mech), private).expect("init");
            assert_eq!(
                t.sign_update(s, &[1; 32]),
                Err(CKR_FUNCTION_NOT_SUPPORTED),
                "{mech:?}"
            );
            assert_eq!(
                t.sign(s, &[1; 32], None),
                Err(CKR_OPERATION_NOT_INITIALIZED)
            );
            // Final without Update: the same.
            t.sign_init(s, Some(mech), private).expect("init");
            assert_eq!(
                t.sign_final(s, None),
                Err(CKR_FUNCTION_NOT_SUPPORTED),
                "{mech:?}"
            );
            // A fresh single-part signature works (size query, no server call).
            t.sign_init(s, Some(mech), private).expect("init");
            assert_eq!(t.sign(s, &[1; 32], None), Ok(Output::Size(t_len(mech))));
            t.sign_init(s, None, 0).expect("cancel");
            // The same for verification.
            t.verify_init(s, Some(mech), public).expect("init");
            assert_eq!(
                t.verify_update(s, &[1; 32]),
                Err(CKR_FUNCTION_NOT_SUPPORTED),
                "{mech:?}"
            );
            assert_eq!(
                t.verify(s, &[1; 32], &[0; 64]),
                Err(CKR_OPERATION_NOT_INITIALIZED)
            );
            t.verify_init(s, Some(mech), public).expect("init");
            assert_eq!(
                t.verify_final(s, &[0; 64]),
                Err(CKR_FUNCTION_NOT_SUPPORTED),
                "{mech:?}"
            );
        }
        assert_eq!(fake.sign_calls(), 0);
    }

    #[test]
    fn keys_and_mechanisms_are_checked() {
        let (t, _) = token();
        let s = t.open_session(false).expect("session");
        assert_eq!(
            t.sign_init(s, Some(SignMechanism::EcdsaRaw), 1),
            Err(CKR_KEY_TYPE_INCONSISTENT)
        );
        assert_eq!(
            t.sign_init(s, Some(SignMechanism::EcdsaRaw), 5),
            Err(CKR_KEY_FUNCTION_NOT_PERMITTED)
        );
        assert_eq!(
            t.sign_init(s, Some(SignMechanism::EcdsaRaw), 6),
            Err(CKR_KEY_HANDLE_INVALID)
        );
        assert_eq!(
            t.sign_init(s, Some(SignMechanism::EcdsaRaw), 99),
            Err(CKR_KEY_HANDLE_INVALID)
        );
        assert_eq!(
            t.sign_init(99, Some(SignMechanism::EcdsaRaw), 4),
            Err(CKR_SESSION_HANDLE_INVALID)
        );
        t.sign_init(s, Some(SignMechanism::EcdsaRaw), 4)
            .expect("init");
        assert_eq!(
            t.sign_init(s, Some(SignMechanism::EcdsaRaw), 4),
            Err(CKR_OPERATION_ACTIVE)
        );
        t.sign_init(s, None, 0).expect("cancel");
        t.sign_init(s, Some(SignMechanism::RsaPkcsRaw), 1)
            .expect("init");
        assert_eq!(
            t.sign(s, b"not a digest info", Some(256)),
            Err(CKR_DATA_INVALID)
        );
    }

    #[test]
    fn verify_locally() {
        let (t, fake) = token();
        let s = t.open_session(false).expect("session");
        let msg = include_bytes!("../testdata/msg.txt");
        let rsa_sig = include_bytes!("../testdata/rsa2048-pkcs1-sha256.sig");
        let sha256 = Some(SignMechanism::RsaPkcs(HashAlg::Sha256));
        t.verify_init(s, sha256, 2).expect("init");
        assert_eq!(t.verify(s, msg, rsa_sig), Ok(()));
        // Multi-part.
        t.verify_init(s, sha256, 2).expect("init");
        t.verify_update(s, &msg[..3]).expect("update");
        t.verify_update(s, &msg[3..]).expect("update");
        assert_eq!(t.verify_final(s, rsa_sig), Ok(()));
        // Wrong data, wrong length.
        t.verify_init(s, sha256, 2).expect("init");
        assert_eq!(t.verify(s, b"other", rsa_sig), Err(CKR_SIGNATURE_INVALID));
        t.verify_init(s, sha256, 2).expect("init");
        assert_eq!(
            t.verify(s, msg, &rsa_sig[1..]),
            Err(CKR_SIGNATURE_LEN_RANGE)
        );
        // Raw CKM_RSA_PKCS over the DigestInfo.
        let di = ks_common::hash::digest_info(HashAlg::Sha256, &digest(HashAlg::Sha256, msg))
            .expect("DigestInfo");
        t.verify_init(s, Some(SignMechanism::RsaPkcsRaw), 2)
            .expect("init");
        assert_eq!(t.verify(s, &di, rsa_sig), Ok(()));
        // ECDSA r||s, raw hash and hash-and-sign.
        let der = include_bytes!("../testdata/p256-sha256.der.sig");
        let p1363 =
            ks_common::sign::ecdsa_der_to_p1363(ks_common::keys::EcCurve::P256, der).expect("r||s");
        t.verify_init(s, Some(SignMechanism::Ecdsa(HashAlg::Sha256)), 5)
            .expect("init");
        assert_eq!(t.verify(s, msg, &p1363), Ok(()));
        t.verify_init(s, Some(SignMechanism::EcdsaRaw), 5)
            .expect("init");
        assert_eq!(t.verify(s, &digest(HashAlg::Sha256, msg), &p1363), Ok(()));
        // Only public keys verify.
        assert_eq!(
            t.verify_init(s, sha256, 1),
            Err(CKR_KEY_FUNCTION_NOT_PERMITTED)
        );
        assert_eq!(fake.sign_calls(), 0);
    }

    #[test]
    fn sessions_and_login() {
        let (t, _) = token();
        let ro = t.open_session(false).expect("ro");
        let rw = t.open_session(true).expect("rw");
        assert_eq!(t.session_counts(), (2, 1));
        assert_eq!(
            t.session_info(ro),
            Ok((CKS_RO_PUBLIC_SESSION, CKF_SERIAL_SESSION))
        );
        assert_eq!(t.logout(ro), Err(CKR_USER_NOT_LOGGED_IN));
        assert_eq!(t.login(ro, CKU_SO), Err(CKR_SESSION_READ_ONLY_EXISTS));
        t.login(ro, CKU_USER).expect("login");
        assert_eq!(t.login(rw, CKU_USER), Err(CKR_USER_ALREADY_LOGGED_IN));
        assert_eq!(
            t.session_info(rw),
            Ok((CKS_RW_USER_FUNCTIONS, CKF_SERIAL_SESSION | CKF_RW_SESSION))
        );
        t.close_session(ro).expect("close");
        assert_eq!(t.close_session(ro), Err(CKR_SESSION_HANDLE_INVALID));
        t.close_all_sessions();
        assert_eq!(t.session_counts(), (0, 0));
        let s = t.open_session(false).expect("ro");
        assert_eq!(
            t.session_info(s),
            Ok((CKS_RO_PUBLIC_SESSION, CKF_SERIAL_SESSION))
        );
    }

    #[test]
    fn find_in_rounds() {
        let (t, _) = token();
        let s = t.open_session(false).expect("session");
        assert_eq!(t.find_next(s, 1), Err(CKR_OPERATION_NOT_INITIALIZED));
        t.find_init(s, &[]).expect("init");
        assert_eq!(t.find_init(s, &[]), Err(CKR_OPERATION_ACTIVE));
        assert_eq!(t.find_next(s, 4), Ok(vec![1, 2, 3, 4]));
        assert_eq!(t.find_next(s, 4), Ok(vec![5, 6]));
        assert_eq!(t.find_next(s, 4), Ok(vec![]));
        t.find_final(s).expect("final");
        assert_eq!(t.find_final(s), Err(CKR_OPERATION_NOT_INITIALIZED));
    }

    #[test]
    fn digests() {
        let (t, _) = token();
        let s = t.open_session(false).expect("session");
        t.digest_init(s, CKM_SHA512, &[]).expect("init");
        assert_eq!(t.digest(s, b"abc", Some(3)), Ok(Output::Size(64)));
        assert_eq!(
            t.digest(s, b"abc", Some(64)),
            Ok(Output::Done(digest(HashAlg::Sha512, b"abc")))
        );
        assert_eq!(t.digest_init(s, CKM_MD5, &[]), Err(CKR_MECHANISM_INVALID));
    }

    #[test]
    fn backend_errors_map_to_codes() {
        let factory: SignerFactory = Arc::new(|| {
            Err(Error::new(
                ks_common::error::ErrorKind::Config,
                "KSC_API_SERVER is not set",
            ))
        });
        let t = Token::new(factory);
        let s = t.open_session(false).expect("session");
        assert_eq!(t.find_init(s, &[]), Err(CKR_GENERAL_ERROR));
    }
}
