//! Sessions and login: open, close, info, login state.

use super::*;

impl Token {
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

    pub(super) fn sessions_write(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, HashMap<CK_SESSION_HANDLE, Arc<Mutex<Session>>>> {
        self.sessions.write().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn sessions_read(
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
}
