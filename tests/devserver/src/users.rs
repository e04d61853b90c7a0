//! Users, their client secrets and their rights (API.md §8).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::config::UserConfig;

/// A set of keys: all, or some.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySet {
    /// Every key.
    All,
    /// Only these.
    Some(BTreeSet<String>),
}

impl KeySet {
    /// No key.
    pub fn none() -> KeySet {
        KeySet::Some(BTreeSet::new())
    }
    /// Exactly one key.
    pub fn one(k: &str) -> KeySet {
        KeySet::Some([k.to_string()].into())
    }
    /// Contains `keyid`.
    pub fn contains(&self, keyid: &str) -> bool {
        match self {
            KeySet::All => true,
            KeySet::Some(s) => s.contains(keyid),
        }
    }
    /// Empty.
    pub fn is_empty(&self) -> bool {
        matches!(self, KeySet::Some(s) if s.is_empty())
    }
    fn from_list(list: &[String]) -> KeySet {
        if list.iter().any(|k| k == "*") {
            KeySet::All
        } else {
            KeySet::Some(list.iter().cloned().collect())
        }
    }
}

/// What a caller may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rights {
    /// Create operations (with keys it may sign with).
    pub create: bool,
    /// Sign with these keys.
    pub sign: KeySet,
    /// Approve / reject for these keys.
    pub approve: KeySet,
    /// See every operation and the audit log.
    pub admin: bool,
}

impl Rights {
    /// No rights at all.
    pub fn nothing() -> Rights {
        Rights {
            create: false,
            sign: KeySet::none(),
            approve: KeySet::none(),
            admin: false,
        }
    }
    fn everything() -> Rights {
        Rights {
            create: true,
            sign: KeySet::All,
            approve: KeySet::All,
            admin: true,
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Identity used for four-eyes and requestid scoping: the user name for
    /// our own tokens, `iss#sub` for external tokens.
    pub id: String,
    /// The rights.
    pub rights: Rights,
    /// Where the caller runs, when its token says so (a CI job's token).
    pub context: Option<CiContext>,
}

/// The CI context a GitLab `id_token` or a GitHub Actions OIDC token carries:
/// which project, ref and pipeline a request comes from and who started it.
/// Recorded at operation creation so approvers see more than a shared
/// identity and a free text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CiContext {
    /// `gitlab` or `github`.
    pub system: String,
    /// The claims, by their names in the token: GitLab `project_path`,
    /// `ref`, `pipeline_id`, `user_login`; GitHub `repository`, `ref`,
    /// `run_id`, `actor`. Only those present.
    #[serde(flatten)]
    pub claims: BTreeMap<String, String>,
}

/// GitLab `id_token` claims kept in a [`CiContext`].
pub const GITLAB_CLAIMS: [&str; 4] = ["project_path", "ref", "pipeline_id", "user_login"];
/// GitHub Actions OIDC claims kept in a [`CiContext`].
pub const GITHUB_CLAIMS: [&str; 4] = ["repository", "ref", "run_id", "actor"];
/// Longest claim value kept (a token is signed, but not necessarily sane).
const MAX_CLAIM: usize = 200;

impl CiContext {
    /// The context in a token's claims (`claim` gives a claim as text), if
    /// the token looks like a GitLab or GitHub Actions one.
    pub fn from_claims(claim: impl Fn(&str) -> Option<String>) -> Option<CiContext> {
        let (system, names) = if claim("project_path").is_some() || claim("pipeline_id").is_some() {
            ("gitlab", GITLAB_CLAIMS)
        } else if claim("repository").is_some() || claim("run_id").is_some() {
            ("github", GITHUB_CLAIMS)
        } else {
            return None;
        };
        let claims = names
            .iter()
            .filter_map(|n| claim(n).map(|v| (n.to_string(), v.chars().take(MAX_CLAIM).collect())))
            .collect();
        Some(CiContext {
            system: system.into(),
            claims,
        })
    }
}

/// A configured user.
#[derive(Debug, Clone)]
pub struct User {
    /// Client id.
    pub name: String,
    /// Client secret.
    pub secret: String,
    /// Rights.
    pub rights: Rights,
}

/// All users by name.
#[derive(Debug, Clone, Default)]
pub struct Users {
    by_name: BTreeMap<String, User>,
}

impl Users {
    /// The demo users for `keyids`, then the file's changes.
    pub fn build(keyids: &[String], file: &BTreeMap<String, UserConfig>) -> Result<Users, String> {
        let mut users = Users::default();
        let mut add = |name: String, rights: Rights| {
            let secret = format!("{name}-secret");
            users.by_name.insert(
                name.clone(),
                User {
                    name,
                    secret,
                    rights,
                },
            );
        };
        add("adminuser".into(), Rights::everything());
        add("adminclient".into(), Rights::everything());
        add(
            "orderer-client".into(),
            Rights {
                create: true,
                sign: KeySet::All,
                ..Rights::nothing()
            },
        );
        for k in keyids {
            add(
                format!("orderer-client{k}"),
                Rights {
                    create: true,
                    sign: KeySet::one(k),
                    ..Rights::nothing()
                },
            );
            add(
                format!("approver-{k}"),
                Rights {
                    approve: KeySet::one(k),
                    ..Rights::nothing()
                },
            );
        }
        for (name, cfg) in file {
            let existing = users.by_name.get(name).cloned();
            let has_rights = cfg.create.is_some()
                || cfg.sign.is_some()
                || cfg.approve.is_some()
                || cfg.admin.is_some();
            let mut user = match existing {
                Some(u) => u,
                None if has_rights => User {
                    name: name.clone(),
                    secret: format!("{name}-secret"),
                    rights: Rights::nothing(),
                },
                None => {
                    return Err(format!(
                        "config: user {name:?} is not a demo user; give it rights (create, sign, approve, admin)"
                    ))
                }
            };
            if let Some(s) = &cfg.secret {
                if s.is_empty() {
                    return Err(format!("config: user {name:?} has an empty secret"));
                }
                user.secret = s.clone();
            }
            if let Some(c) = cfg.create {
                user.rights.create = c;
            }
            if let Some(s) = &cfg.sign {
                user.rights.sign = KeySet::from_list(s);
            }
            if let Some(a) = &cfg.approve {
                user.rights.approve = KeySet::from_list(a);
            }
            if let Some(a) = cfg.admin {
                user.rights.admin = a;
            }
            users.by_name.insert(name.clone(), user);
        }
        Ok(users)
    }

    /// Looks a user up.
    pub fn get(&self, name: &str) -> Option<&User> {
        self.by_name.get(name)
    }

    /// Checks client credentials in constant time per byte.
    pub fn authenticate(&self, name: &str, secret: &str) -> Option<&User> {
        let user = self.by_name.get(name)?;
        let a = user.secret.as_bytes();
        let b = secret.as_bytes();
        let mut diff = a.len() ^ b.len();
        for (x, y) in a.iter().zip(b.iter()) {
            diff |= usize::from(x ^ y);
        }
        (diff == 0).then_some(user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_users() {
        let keys: Vec<String> = ["key1", "key2"].iter().map(|s| s.to_string()).collect();
        let u = Users::build(&keys, &BTreeMap::new()).unwrap();
        assert!(u
            .authenticate("adminclient", "adminclient-secret")
            .is_some());
        assert!(u
            .authenticate("adminclient", "adminclient-secreT")
            .is_none());
        let o = u.get("orderer-clientkey1").unwrap();
        assert!(o.rights.sign.contains("key1") && !o.rights.sign.contains("key2"));
        let a = u.get("approver-key2").unwrap();
        assert!(a.rights.approve.contains("key2") && !a.rights.create);
        assert!(u.get("approver-key3").is_none());
    }
}
