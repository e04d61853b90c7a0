//! The token core: sessions, login state, objects and operations, in Rust
//! terms. The `C_*` functions (module `fns`, above this one) translate pointers to calls on
//! a [`Token`]; unit tests drive a `Token` directly with a fake backend.
//!
//! Locking: the session table and the lazily created backend/object store sit
//! behind short-lived locks; every session has its own mutex. No lock is held
//! while the backend talks to the network, so sessions on many threads sign
//! in parallel.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use cryptoki_sys::*;
use ks_common::hash::{digest, HashAlg, Hasher};
use ks_common::keys::KeyEntry;
use ks_common::sign::SignRequest;

use ks_common::signer::Signer;
use crate::error::{from_common, Result};
use crate::mechanism::{digest_hash, SignMechanism};
use crate::object::ObjectStore;

/// The one slot's ID.
pub const SLOT_ID: CK_SLOT_ID = 1;

/// Largest input buffered for the raw (single-part) mechanisms.
const MAX_RAW_INPUT: usize = 64 * 1024;

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
    buffer: Vec<u8>,
    multi_part: bool,
}

impl KeyOp {
    fn new(key: Arc<KeyEntry>, mechanism: SignMechanism) -> KeyOp {
        KeyOp {
            hasher: mechanism.local_hash().map(Hasher::new),
            key,
            mechanism,
            buffer: Vec::new(),
            multi_part: false,
        }
    }

    fn signature_len(&self) -> usize {
        self.mechanism.signature_len(&self.key.public_key)
    }

    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.multi_part = true;
        match &mut self.hasher {
            Some(h) => h.update(data),
            None => {
                if self.buffer.len() + data.len() > MAX_RAW_INPUT {
                    return Err(CKR_DATA_LEN_RANGE);
                }
                self.buffer.extend_from_slice(data);
            }
        }
        Ok(())
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

    /// The request after `update` calls.
    fn finish(self) -> Result<SignRequest> {
        match self.hasher {
            Some(h) => self.mechanism.request_from_digest(h.finalize()),
            None => self
                .mechanism
                .request_from_input(&self.key.public_key, &self.buffer),
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
    Sign(KeyOp),
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

    /// Opens a session (`rw` for `CKF_RW_SESSION`).
    pub fn open_session(&self, rw: bool) -> Result<CK_SESSION_HANDLE> {
        if !rw && *lock(&self.login) == Login::So {
            return Err(CKR_SESSION_READ_WRITE_SO_EXISTS);
        }
        let handle = self.next_session.fetch_add(1, Ordering::Relaxed) as CK_SESSION_HANDLE;
        let session = Session {
            rw,
            ..Session::default()
        };
        self.sessions_write()
            .insert(handle, Arc::new(Mutex::new(session)));
        Ok(handle)
    }

    fn sessions_write(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, HashMap<CK_SESSION_HANDLE, Arc<Mutex<Session>>>> {
        self.sessions.write().unwrap_or_else(|e| e.into_inner())
    }

    fn sessions_read(
        &self,
    ) -> std::sync::RwLockReadGuard<'_, HashMap<CK_SESSION_HANDLE, Arc<Mutex<Session>>>> {
        self.sessions.read().unwrap_or_else(|e| e.into_inner())
    }

    /// A session by handle.
    pub fn session(&self, handle: CK_SESSION_HANDLE) -> Result<Arc<Mutex<Session>>> {
        self.sessions_read()
            .get(&handle)
            .cloned()
            .ok_or(CKR_SESSION_HANDLE_INVALID)
    }

    /// Closes a session; closing the last one logs out.
    pub fn close_session(&self, handle: CK_SESSION_HANDLE) -> Result<()> {
        let mut sessions = self.sessions_write();
        sessions.remove(&handle).ok_or(CKR_SESSION_HANDLE_INVALID)?;
        if sessions.is_empty() {
            *lock(&self.login) = Login::Public;
        }
        Ok(())
    }

    /// Closes every session and logs out.
    pub fn close_all_sessions(&self) {
        self.sessions_write().clear();
        *lock(&self.login) = Login::Public;
    }

    /// (all sessions, read/write sessions)
    pub fn session_counts(&self) -> (usize, usize) {
        let sessions = self.sessions_read();
        let rw = sessions.values().filter(|s| lock(s).rw).count();
        (sessions.len(), rw)
    }

    /// `C_GetSessionInfo`: (state, flags).
    pub fn session_info(&self, handle: CK_SESSION_HANDLE) -> Result<(CK_STATE, CK_FLAGS)> {
        let session = self.session(handle)?;
        let rw = lock(&session).rw;
        let login = *lock(&self.login);
        let state = match (login, rw) {
            (Login::Public, false) => CKS_RO_PUBLIC_SESSION,
            (Login::Public, true) => CKS_RW_PUBLIC_SESSION,
            (Login::User, false) => CKS_RO_USER_FUNCTIONS,
            (Login::User, true) => CKS_RW_USER_FUNCTIONS,
            (Login::So, _) => CKS_RW_SO_FUNCTIONS,
        };
        let flags = CKF_SERIAL_SESSION | if rw { CKF_RW_SESSION } else { 0 };
        Ok((state, flags))
    }

    /// `C_Login`. No login is required; any PIN is accepted (and never logged).
    pub fn login(&self, handle: CK_SESSION_HANDLE, user: CK_USER_TYPE) -> Result<()> {
        let session = self.session(handle)?;
        let mut login = lock(&self.login);
        match user {
            CKU_USER => match *login {
                Login::User => Err(CKR_USER_ALREADY_LOGGED_IN),
                Login::So => Err(CKR_USER_ANOTHER_ALREADY_LOGGED_IN),
                Login::Public => {
                    *login = Login::User;
                    Ok(())
                }
            },
            CKU_SO => match *login {
                Login::So => Err(CKR_USER_ALREADY_LOGGED_IN),
                Login::User => Err(CKR_USER_ANOTHER_ALREADY_LOGGED_IN),
                Login::Public => {
                    let any_ro = self.sessions_read().values().any(|s| !lock(s).rw);
                    if any_ro {
                        return Err(CKR_SESSION_READ_ONLY_EXISTS);
                    }
                    *login = Login::So;
                    Ok(())
                }
            },
            CKU_CONTEXT_SPECIFIC => {
                if lock(&session).sign.is_none() {
                    return Err(CKR_OPERATION_NOT_INITIALIZED);
                }
                Ok(())
            }
            _ => Err(CKR_USER_TYPE_INVALID),
        }
    }

    /// `C_Logout`.
    pub fn logout(&self, handle: CK_SESSION_HANDLE) -> Result<()> {
        self.session(handle)?;
        let mut login = lock(&self.login);
        if *login == Login::Public {
            return Err(CKR_USER_NOT_LOGGED_IN);
        }
        *login = Login::Public;
        Ok(())
    }

    // ---- objects --------------------------------------------------------

    /// `C_FindObjectsInit`.
    pub fn find_init(
        &self,
        handle: CK_SESSION_HANDLE,
        template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)],
    ) -> Result<()> {
        let session = self.session(handle)?;
        if lock(&session).find.is_some() {
            return Err(CKR_OPERATION_ACTIVE);
        }
        let handles = self.objects()?.find(template);
        let mut s = lock(&session);
        if s.find.is_some() {
            return Err(CKR_OPERATION_ACTIVE);
        }
        s.find = Some(FindOp {
            handles,
            position: 0,
        });
        Ok(())
    }

    /// `C_FindObjects`: up to `max` further handles.
    pub fn find_next(
        &self,
        handle: CK_SESSION_HANDLE,
        max: usize,
    ) -> Result<Vec<CK_OBJECT_HANDLE>> {
        let session = self.session(handle)?;
        let mut s = lock(&session);
        let find = s.find.as_mut().ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        let end = find.handles.len().min(find.position.saturating_add(max));
        let out = find.handles[find.position..end].to_vec();
        find.position = end;
        Ok(out)
    }

    /// `C_FindObjectsFinal`.
    pub fn find_final(&self, handle: CK_SESSION_HANDLE) -> Result<()> {
        let session = self.session(handle)?;
        let find = lock(&session).find.take();
        find.map(|_| ()).ok_or(CKR_OPERATION_NOT_INITIALIZED)
    }

    /// Checks the session, then returns the object store (for attribute reads).
    pub fn objects_for(&self, handle: CK_SESSION_HANDLE) -> Result<Arc<ObjectStore>> {
        self.session(handle)?;
        self.objects()
    }

    // ---- signing and verification -----------------------------------------

    fn key_op(
        &self,
        object: CK_OBJECT_HANDLE,
        mechanism: SignMechanism,
        class: CK_OBJECT_CLASS,
    ) -> Result<KeyOp> {
        let objects = self.objects()?;
        let obj = objects.get(object).ok_or(CKR_KEY_HANDLE_INVALID)?;
        if obj.class() == CKO_CERTIFICATE {
            return Err(CKR_KEY_HANDLE_INVALID);
        }
        if obj.class() != class {
            return Err(CKR_KEY_FUNCTION_NOT_PERMITTED);
        }
        mechanism.check_key(&obj.key().public_key)?;
        Ok(KeyOp::new(Arc::clone(obj.key()), mechanism))
    }

    /// `C_SignInit` (`None` cancels an active signature, as PKCS#11 3.0 allows).
    pub fn sign_init(
        &self,
        handle: CK_SESSION_HANDLE,
        mechanism: Option<SignMechanism>,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        self.key_op_init(KeyOpKind::Sign, handle, mechanism, key)
    }

    /// `C_SignInit`/`C_VerifyInit`: `None` cancels the active operation.
    fn key_op_init(
        &self,
        kind: KeyOpKind,
        handle: CK_SESSION_HANDLE,
        mechanism: Option<SignMechanism>,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        let session = self.session(handle)?;
        let Some(mechanism) = mechanism else {
            *lock(&session).op_slot(kind) = None;
            return Ok(());
        };
        // Checked before resolving the key (which may fetch the key list) and
        // again under the lock, since another thread may have started one since.
        if lock(&session).op_slot(kind).is_some() {
            return Err(CKR_OPERATION_ACTIVE);
        }
        let op = self.key_op(key, mechanism, kind.key_class())?;
        let mut s = lock(&session);
        let slot = s.op_slot(kind);
        if slot.is_some() {
            return Err(CKR_OPERATION_ACTIVE);
        }
        *slot = Some(op);
        Ok(())
    }

    /// `C_SignUpdate`/`C_VerifyUpdate`: a failed update ends the operation.
    fn key_op_update(&self, kind: KeyOpKind, handle: CK_SESSION_HANDLE, data: &[u8]) -> Result<()> {
        let session = self.session(handle)?;
        let mut s = lock(&session);
        let slot = s.op_slot(kind);
        let op = slot.as_mut().ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        let result = op.update(data);
        if result.is_err() {
            *slot = None;
        }
        result
    }

    /// Takes the active signature out of the session unless the caller only asks
    /// for the size (`capacity` absent or too small).
    fn take_sign(
        &self,
        handle: CK_SESSION_HANDLE,
        capacity: Option<usize>,
        single_part: bool,
    ) -> Result<SignTurn> {
        let session = self.session(handle)?;
        let mut s = lock(&session);
        let op = s.sign.as_ref().ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        if single_part && op.multi_part {
            // C_Sign cannot finish a multi-part signature (C_SignFinal does).
            return Err(CKR_OPERATION_ACTIVE);
        }
        let len = op.signature_len();
        if capacity.is_none_or(|c| c < len) {
            return Ok(SignTurn::SizeOnly(len));
        }
        s.sign
            .take()
            .map(SignTurn::Sign)
            .ok_or(CKR_OPERATION_NOT_INITIALIZED)
    }

    fn remote_sign(&self, key: &KeyEntry, request: &SignRequest) -> Result<Vec<u8>> {
        let backend = self.backend()?;
        backend
            .sign(&key.keyid, request)
            .map_err(|e| from_common(&format!("signing with {}", key.keyid), &e))
    }

    /// `C_Sign`: one sign order unless only the size is asked for.
    pub fn sign(
        &self,
        handle: CK_SESSION_HANDLE,
        data: &[u8],
        capacity: Option<usize>,
    ) -> Result<Output> {
        let op = match self.take_sign(handle, capacity, true)? {
            SignTurn::Sign(op) => op,
            SignTurn::SizeOnly(len) => return Ok(Output::Size(len)),
        };
        let request = op.single(data)?;
        self.remote_sign(&op.key, &request).map(Output::Done)
    }

    /// `C_SignUpdate`.
    pub fn sign_update(&self, handle: CK_SESSION_HANDLE, data: &[u8]) -> Result<()> {
        self.key_op_update(KeyOpKind::Sign, handle, data)
    }

    /// `C_SignFinal`.
    pub fn sign_final(&self, handle: CK_SESSION_HANDLE, capacity: Option<usize>) -> Result<Output> {
        let op = match self.take_sign(handle, capacity, false)? {
            SignTurn::Sign(op) => op,
            SignTurn::SizeOnly(len) => return Ok(Output::Size(len)),
        };
        let key = Arc::clone(&op.key);
        let request = op.finish()?;
        self.remote_sign(&key, &request).map(Output::Done)
    }

    /// `C_VerifyInit` (`None` cancels).
    pub fn verify_init(
        &self,
        handle: CK_SESSION_HANDLE,
        mechanism: Option<SignMechanism>,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        self.key_op_init(KeyOpKind::Verify, handle, mechanism, key)
    }

    fn take_verify(&self, handle: CK_SESSION_HANDLE, single_part: bool) -> Result<KeyOp> {
        let session = self.session(handle)?;
        let mut s = lock(&session);
        let op = s.verify.as_ref().ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        if single_part && op.multi_part {
            // C_Verify cannot finish a multi-part verification (C_VerifyFinal does).
            return Err(CKR_OPERATION_ACTIVE);
        }
        s.verify.take().ok_or(CKR_OPERATION_NOT_INITIALIZED)
    }

    fn check_signature(
        key: &KeyEntry,
        len: usize,
        request: &SignRequest,
        signature: &[u8],
    ) -> Result<()> {
        if signature.len() != len {
            return Err(CKR_SIGNATURE_LEN_RANGE);
        }
        ks_common::verify::verify(&key.public_key, request, signature).map_err(|e| {
            log::info!(
                "libpkcs11ks: signature does not verify with {}: {e}",
                key.keyid
            );
            CKR_SIGNATURE_INVALID
        })
    }

    /// `C_Verify` (local, with the public key).
    pub fn verify(&self, handle: CK_SESSION_HANDLE, data: &[u8], signature: &[u8]) -> Result<()> {
        let op = self.take_verify(handle, true)?;
        let request = op.single(data)?;
        Self::check_signature(&op.key, op.signature_len(), &request, signature)
    }

    /// `C_VerifyUpdate`.
    pub fn verify_update(&self, handle: CK_SESSION_HANDLE, data: &[u8]) -> Result<()> {
        self.key_op_update(KeyOpKind::Verify, handle, data)
    }

    /// `C_VerifyFinal`.
    pub fn verify_final(&self, handle: CK_SESSION_HANDLE, signature: &[u8]) -> Result<()> {
        let op = self.take_verify(handle, false)?;
        let key = Arc::clone(&op.key);
        let len = op.signature_len();
        let request = op.finish()?;
        Self::check_signature(&key, len, &request, signature)
    }

    // ---- digests ----------------------------------------------------------

    /// `C_DigestInit`.
    pub fn digest_init(
        &self,
        handle: CK_SESSION_HANDLE,
        mechanism: CK_MECHANISM_TYPE,
        param: &[u8],
    ) -> Result<()> {
        let session = self.session(handle)?;
        let mut s = lock(&session);
        if s.digest.is_some() {
            return Err(CKR_OPERATION_ACTIVE);
        }
        let alg = digest_hash(mechanism).ok_or(CKR_MECHANISM_INVALID)?;
        if !param.is_empty() {
            return Err(CKR_MECHANISM_PARAM_INVALID);
        }
        s.digest = Some(DigestOp {
            alg,
            hasher: Hasher::new(alg),
        });
        Ok(())
    }

    /// `C_Digest`.
    pub fn digest(
        &self,
        handle: CK_SESSION_HANDLE,
        data: &[u8],
        capacity: Option<usize>,
    ) -> Result<Output> {
        let session = self.session(handle)?;
        let mut s = lock(&session);
        let op = s.digest.as_ref().ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        let len = op.alg.output_len();
        if capacity.is_none_or(|c| c < len) {
            return Ok(Output::Size(len));
        }
        let alg = op.alg;
        s.digest = None;
        Ok(Output::Done(digest(alg, data)))
    }

    /// `C_DigestUpdate`.
    pub fn digest_update(&self, handle: CK_SESSION_HANDLE, data: &[u8]) -> Result<()> {
        let session = self.session(handle)?;
        let mut s = lock(&session);
        let op = s.digest.as_mut().ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        op.hasher.update(data);
        Ok(())
    }

    /// `C_DigestFinal`.
    pub fn digest_final(
        &self,
        handle: CK_SESSION_HANDLE,
        capacity: Option<usize>,
    ) -> Result<Output> {
        let session = self.session(handle)?;
        let mut s = lock(&session);
        let op = s.digest.as_ref().ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        let len = op.alg.output_len();
        if capacity.is_none_or(|c| c < len) {
            return Ok(Output::Size(len));
        }
        let op = s.digest.take().ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        Ok(Output::Done(op.hasher.finalize()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::tests::{ec_key, rsa_key};
    use ks_common::error::Error;
    use ks_common::signer::fake::FakeSigner;

    fn token() -> (Token, Arc<FakeSigner>) {
        let fake = Arc::new(FakeSigner::new(vec![rsa_key("key1"), ec_key("key2")]));
        let backend = Arc::clone(&fake);
        let factory: SignerFactory =
            Arc::new(move || Ok(Arc::clone(&backend) as Arc<dyn Signer>));
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
        t.sign_update(s, b"world").expect("update");
        assert_eq!(t.sign(s, b"x", Some(64)), Err(CKR_OPERATION_ACTIVE));
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
        let msg = include_bytes!("testdata/msg.txt");
        let rsa_sig = include_bytes!("testdata/rsa2048-pkcs1-sha256.sig");
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
        let der = include_bytes!("testdata/p256-sha256.der.sig");
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
