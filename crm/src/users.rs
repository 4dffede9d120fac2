//! Users: web login (argon2id), telephony credentials (HA1 per realm), rights, API tokens.

use crate::store::invalid;
use crate::{on_db, Store, StoreError};
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use dashmap::DashMap;
use kolokol_engine::registrar::digest::{ha1, Algorithm};
use kolokol_engine::registrar::{Directory, SipAccount};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;

#[derive(Debug, Clone, Serialize, PartialEq, sqlx::FromRow, schemars::JsonSchema)]
pub struct User {
    pub id: i64,
    pub login: String,
    pub name: String,
    pub extension: Option<String>,
    pub active: bool,
    /// Everything, every field.
    pub admin: bool,
    /// May create partners (SPEC 2.1 "work with contacts").
    pub contacts: bool,
    pub tasks: bool,
    pub reports: bool,
    pub created_at: String,
}

#[derive(Debug, Clone, Deserialize, Default, schemars::JsonSchema)]
pub struct NewUser {
    pub login: String,
    pub name: String,
    pub extension: Option<String>,
    pub sip_password: Option<String>,
    pub password: Option<String>,
    #[serde(default)]
    pub admin: bool,
    #[serde(default)]
    pub contacts: bool,
    #[serde(default)]
    pub tasks: bool,
    #[serde(default)]
    pub reports: bool,
}

impl NewUser {
    /// Checks every field; the first fault is named.
    pub fn validate(&self) -> Result<(), StoreError> {
        let login_ok = !self.login.is_empty()
            && self.login.len() <= 64
            && self
                .login
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if !login_ok {
            return Err(invalid(
                "login",
                "1-64 latin letters, digits, '.', '_' or '-'",
            ));
        }
        if self.name.trim().is_empty() || self.name.len() > 200 {
            return Err(invalid("name", "must not be empty (at most 200 bytes)"));
        }
        if let Some(ext) = &self.extension {
            if ext.is_empty() || ext.len() > 16 || !ext.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid("extension", "1-16 digits"));
            }
            match &self.sip_password {
                Some(p) if p.len() >= 8 => {}
                _ => {
                    return Err(invalid(
                        "sip_password",
                        "required with an extension, at least 8 characters",
                    ))
                }
            }
        } else if self.sip_password.is_some() {
            return Err(invalid("extension", "a SIP password needs an extension"));
        }
        if let Some(p) = &self.password {
            check_password_rule("password", p)?;
        }
        Ok(())
    }
}

/// The rule every web password meets, whoever sets it: 8 characters or more, and a bound
/// (1024 bytes) on what is hashed.
pub fn check_password_rule(field: &'static str, password: &str) -> Result<(), StoreError> {
    if password.chars().count() < 8 {
        return Err(invalid(field, "at least 8 characters"));
    }
    if password.len() > 1024 {
        return Err(invalid(field, "at most 1024 bytes"));
    }
    Ok(())
}

pub fn hash_secret(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub fn random_secret(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

pub(crate) const USER_COLUMNS: &str =
    "id, login, name, extension, active, admin, contacts, tasks, reports, created_at";

/// Changes to a user; absent fields stay as they are.
#[derive(Debug, Clone, Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserChange {
    pub name: Option<String>,
    pub password: Option<String>,
    pub active: Option<bool>,
    pub admin: Option<bool>,
    pub contacts: Option<bool>,
    pub tasks: Option<bool>,
    pub reports: Option<bool>,
}

fn hash_password(password: &str) -> Result<String, StoreError> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| StoreError::Hash(e.to_string()))?
        .to_string())
}

impl Store {
    /// Creates a user; returns it and the web password (generated when none was given).
    pub async fn create_user(
        &self,
        new: &NewUser,
        realm: &str,
    ) -> Result<(User, String), StoreError> {
        new.validate()?;
        // Logins and extensions are one namespace to the dialplan (a user is dialled by
        // either): a login that is someone's extension, or the reverse, would take their calls.
        let clash: Option<String> = on_db!(self, pool => {
            sqlx::query_scalar(
                "SELECT CASE WHEN extension = $1 THEN 'login' ELSE 'extension' END FROM users \
                 WHERE extension = $1 OR login = $2 LIMIT 1",
            )
            .bind(&new.login)
            .bind(&new.extension)
            .fetch_optional(pool)
            .await?
        });
        if let Some(field) = clash {
            return Err(StoreError::Conflict {
                field: if field == "login" {
                    "login"
                } else {
                    "extension"
                },
            });
        }
        let password = new.password.clone().unwrap_or_else(|| random_secret(8));
        let password_hash = hash_password(&password)?;
        let (md5, sha) = match (&new.extension, &new.sip_password) {
            (Some(ext), Some(p)) => (
                Some(ha1(Algorithm::Md5, ext, realm, p)),
                Some(ha1(Algorithm::Sha256, ext, realm, p)),
            ),
            _ => (None, None),
        };
        let result: Result<i64, sqlx::Error> = on_db!(self, pool => {
            sqlx::query_scalar(
                "INSERT INTO users (login, name, extension, sip_realm, ha1_md5, ha1_sha256, password_hash, active, admin, contacts, tasks, reports, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, TRUE, $8, $9, $10, $11, $12) RETURNING id",
            )
            .bind(&new.login)
            .bind(new.name.trim())
            .bind(&new.extension)
            .bind(realm)
            .bind(&md5)
            .bind(&sha)
            .bind(&password_hash)
            .bind(new.admin)
            .bind(new.contacts)
            .bind(new.tasks)
            .bind(new.reports)
            .bind(chrono::Utc::now().to_rfc3339())
            .fetch_one(pool)
            .await
        });
        let id = match result {
            Ok(id) => id,
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                let field = if e.message().contains("extension") {
                    "extension"
                } else {
                    "login"
                };
                return Err(StoreError::Conflict { field });
            }
            Err(e) => return Err(e.into()),
        };
        Ok((self.user(id).await?, password))
    }

    /// Applies `change` to user `id`. A new password is hashed and ends every session and
    /// API token of the user (whoever learnt the old one keeps nothing); deactivating
    /// does the same.
    ///
    /// `keep_token`: the session or token making the change, kept when users change their
    /// own password (they stay signed in where they are; everywhere else they are not).
    pub async fn update_user(
        &self,
        id: i64,
        change: &UserChange,
        keep_token: Option<&str>,
    ) -> Result<User, StoreError> {
        let mut user = self.user(id).await?;
        if let Some(name) = &change.name {
            if name.trim().is_empty() || name.len() > 200 {
                return Err(invalid("name", "must not be empty (at most 200 bytes)"));
            }
            user.name = name.trim().to_string();
        }
        let password_hash = match &change.password {
            Some(p) => {
                check_password_rule("password", p)?;
                let p = p.clone();
                Some(
                    tokio::task::spawn_blocking(move || hash_password(&p))
                        .await
                        .map_err(|e| StoreError::Io(format!("hashing: {e}")))??,
                )
            }
            None => None,
        };
        user.active = change.active.unwrap_or(user.active);
        user.admin = change.admin.unwrap_or(user.admin);
        user.contacts = change.contacts.unwrap_or(user.contacts);
        user.tasks = change.tasks.unwrap_or(user.tasks);
        user.reports = change.reports.unwrap_or(user.reports);
        on_db!(self, pool => {
            sqlx::query("UPDATE users SET name = $1, active = $2, admin = $3, contacts = $4, tasks = $5, reports = $6, password_hash = COALESCE($7, password_hash) WHERE id = $8")
                .bind(&user.name)
                .bind(user.active)
                .bind(user.admin)
                .bind(user.contacts)
                .bind(user.tasks)
                .bind(user.reports)
                .bind(&password_hash)
                .bind(id)
                .execute(pool)
                .await?;
        });
        if !user.active {
            self.revoke_tokens(id, None).await?;
        } else if password_hash.is_some() {
            self.revoke_tokens(id, keep_token).await?;
        }
        Ok(user)
    }

    /// Removes a user and their sessions and tokens, and the tasks assigned to them with
    /// those tasks' files.
    pub async fn delete_user(&self, id: i64) -> Result<(), StoreError> {
        let files: Vec<crate::files::Attachment> = on_db!(self, pool => {
            sqlx::query_as("SELECT f.* FROM task_files f JOIN tasks t ON t.id = f.task_id WHERE t.assignee_id = $1")
                .bind(id)
                .fetch_all(pool)
                .await?
        });
        let done = on_db!(self, pool => {
            sqlx::query("DELETE FROM users WHERE id = $1").bind(id).execute(pool).await?.rows_affected()
        });
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        self.remove_stored(&files).await;
        Ok(())
    }

    pub async fn user(&self, id: i64) -> Result<User, StoreError> {
        on_db!(self, pool => {
            sqlx::query_as::<_, User>(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await?
        })
        .ok_or(StoreError::NotFound)
    }

    pub async fn user_by_login(&self, login: &str) -> Result<User, StoreError> {
        on_db!(self, pool => {
            sqlx::query_as::<_, User>(&format!("SELECT {USER_COLUMNS} FROM users WHERE login = $1"))
                .bind(login)
                .fetch_optional(pool)
                .await?
        })
        .ok_or(StoreError::NotFound)
    }

    /// The user called `login`; an unknown login is a fault in request field `field`.
    pub async fn user_named(&self, field: &'static str, login: &str) -> Result<User, StoreError> {
        self.user_by_login(login).await.map_err(|e| match e {
            StoreError::NotFound => invalid(field, "no user with this login"),
            e => e,
        })
    }

    pub async fn users(&self) -> Result<Vec<User>, StoreError> {
        Ok(on_db!(self, pool => {
            sqlx::query_as::<_, User>(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY id"))
                .fetch_all(pool)
                .await?
        }))
    }

    pub async fn user_count(&self) -> Result<i64, StoreError> {
        Ok(on_db!(self, pool => {
            sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(pool).await?
        }))
    }

    /// A user changing their own web password: `new` must meet the rule (422 naming
    /// `new`), then `current` must be theirs (false when it is not, nothing changed). Every
    /// other session and token of theirs ends; `keep_token` (the one asking) stays.
    pub async fn change_own_password(
        &self,
        user: &User,
        current: &str,
        new: &str,
        keep_token: Option<&str>,
    ) -> Result<bool, StoreError> {
        check_password_rule("new", new)?;
        if self.check_password(&user.login, current).await?.is_none() {
            return Ok(false);
        }
        let change = UserChange {
            password: Some(new.to_string()),
            ..UserChange::default()
        };
        self.update_user(user.id, &change, keep_token).await?;
        Ok(true)
    }

    /// The user whose web login and password match, if active.
    pub async fn check_password(
        &self,
        login: &str,
        password: &str,
    ) -> Result<Option<User>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct WithHash {
            #[sqlx(flatten)]
            user: User,
            password_hash: String,
        }
        let row: Option<WithHash> = on_db!(self, pool => {
            sqlx::query_as(&format!(
                "SELECT {USER_COLUMNS}, password_hash FROM users WHERE login = $1 AND active"
            ))
            .bind(login)
            .fetch_optional(pool)
            .await?
        });
        // argon2 takes tens of milliseconds of a core: off the async runtime, so guesses
        // cannot stall everything else on its threads.
        let password = password.to_string();
        let Some(row) = row else {
            // Same work for an unknown login as for a wrong password.
            let _ = tokio::task::spawn_blocking(move || hash_password(&password)).await;
            return Ok(None);
        };
        let hash = row.password_hash;
        let ok = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash)
                .map(|h| {
                    Argon2::default()
                        .verify_password(password.as_bytes(), &h)
                        .is_ok()
                })
                .unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        Ok(ok.then_some(row.user))
    }

    /// Issues a bearer token ('api', no expiry) or a session ('session', 12 hours).
    pub async fn issue_token(&self, user_id: i64, kind: &str) -> Result<String, StoreError> {
        let token = random_secret(24);
        let expires = (kind == "session")
            .then(|| (chrono::Utc::now() + chrono::Duration::hours(12)).to_rfc3339());
        on_db!(self, pool => {
            sqlx::query("INSERT INTO api_tokens (token_hash, user_id, kind, expires_at, created_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(hash_secret(&token))
                .bind(user_id)
                .bind(kind)
                .bind(&expires)
                .bind(chrono::Utc::now().to_rfc3339())
                .execute(pool)
                .await?;
        });
        Ok(token)
    }

    /// Ends one session (logout, or the old one replaced at login).
    pub async fn end_session(&self, token: &str) -> Result<(), StoreError> {
        on_db!(self, pool => {
            sqlx::query("DELETE FROM api_tokens WHERE token_hash = $1 AND kind = 'session'")
                .bind(hash_secret(token))
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Ends every session and API token of a user (deactivated, or a new password) but
    /// `keep`.
    async fn revoke_tokens(&self, user_id: i64, keep: Option<&str>) -> Result<(), StoreError> {
        let keep = keep.map(hash_secret).unwrap_or_default();
        on_db!(self, pool => {
            sqlx::query("DELETE FROM api_tokens WHERE user_id = $1 AND token_hash <> $2")
                .bind(user_id)
                .bind(&keep)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The active user a token or session belongs to.
    pub async fn user_by_token(&self, token: &str) -> Result<Option<User>, StoreError> {
        // The users' columns, qualified: the join has its own `id`.
        static COLUMNS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            USER_COLUMNS
                .split(", ")
                .map(|c| format!("u.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        });
        let columns = &*COLUMNS;
        Ok(on_db!(self, pool => {
            sqlx::query_as::<_, User>(&format!(
                "SELECT {columns} FROM api_tokens t JOIN users u ON u.id = t.user_id \
                 WHERE t.token_hash = $1 AND u.active AND (t.expires_at IS NULL OR t.expires_at > $2)"
            ))
            .bind(hash_secret(token))
            .bind(chrono::Utc::now().to_rfc3339())
            .fetch_optional(pool)
            .await?
        }))
    }

    /// SIP accounts of active users for the realm.
    pub async fn sip_accounts(&self, realm: &str) -> Result<Vec<SipAccount>, StoreError> {
        Ok(on_db!(self, pool => {
            sqlx::query("SELECT id, extension, ha1_md5, ha1_sha256 FROM users WHERE active AND extension IS NOT NULL AND sip_realm = $1")
                .bind(realm)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| SipAccount {
                    user_id: r.get("id"),
                    username: r.get("extension"),
                    ha1_md5: r.get("ha1_md5"),
                    ha1_sha256: r.get("ha1_sha256"),
                    websocket_only: false,
                })
                .collect()
        }))
    }

    /// The live softphone keys of active users for the realm: (digest username, account,
    /// when the session they belong to ends).
    pub async fn softphone_keys(&self, realm: &str) -> Result<Vec<SoftphoneKey>, StoreError> {
        Ok(on_db!(self, pool => {
            sqlx::query(
                "SELECT k.username, u.id, u.extension, k.ha1_md5, k.ha1_sha256, t.expires_at \
                 FROM softphone_keys k JOIN api_tokens t ON t.token_hash = k.token_hash \
                 JOIN users u ON u.id = k.user_id \
                 WHERE u.active AND u.extension IS NOT NULL AND u.sip_realm = $1 \
                 AND (t.expires_at IS NULL OR t.expires_at > $2)",
            )
            .bind(realm)
            .bind(chrono::Utc::now().to_rfc3339())
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| SoftphoneKey {
                username: r.get(0),
                account: SipAccount {
                    user_id: r.get(1),
                    username: r.get(2),
                    ha1_md5: r.get(3),
                    ha1_sha256: r.get(4),
                    websocket_only: true,
                },
                expires_at: expiry(r.get(5)),
            })
            .collect()
        }))
    }

    /// The softphone key of the session (or token) `token` of `user`, made on first use.
    /// It works over WebSocket only and ends with the session.
    pub async fn softphone_key(
        &self,
        user: &User,
        token: &str,
        realm: &str,
    ) -> Result<SoftphoneKey, StoreError> {
        let extension = user
            .extension
            .as_deref()
            .ok_or_else(|| StoreError::NotConfigured("the user has no extension".into()))?;
        let username = format!("{extension}~{}", random_secret(8));
        let secret = random_secret(24);
        let token_hash = hash_secret(token);
        on_db!(self, pool => {
            sqlx::query(
                "INSERT INTO softphone_keys (token_hash, user_id, username, ha1_md5, ha1_sha256, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (token_hash) DO NOTHING",
            )
            .bind(&token_hash)
            .bind(user.id)
            .bind(&username)
            .bind(ha1(Algorithm::Md5, &username, realm, &secret))
            .bind(ha1(Algorithm::Sha256, &username, realm, &secret))
            .bind(chrono::Utc::now().to_rfc3339())
            .execute(pool)
            .await?;
            let row = sqlx::query(
                "SELECT k.username, k.ha1_md5, k.ha1_sha256, t.expires_at FROM softphone_keys k \
                 JOIN api_tokens t ON t.token_hash = k.token_hash WHERE k.token_hash = $1",
            )
            .bind(&token_hash)
            .fetch_one(pool)
            .await?;
            Ok(SoftphoneKey {
                username: row.get(0),
                account: SipAccount {
                    user_id: user.id,
                    username: extension.to_string(),
                    ha1_md5: row.get(1),
                    ha1_sha256: row.get(2),
                    websocket_only: true,
                },
                expires_at: expiry(row.get(3)),
            })
        })
    }
}

/// A token's end as stored (RFC 3339), if it has one.
fn expiry(stored: Option<String>) -> Option<chrono::DateTime<chrono::Utc>> {
    stored
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// A browser softphone's credential, as the directory holds it.
#[derive(Debug, Clone)]
pub struct SoftphoneKey {
    /// The digest username (`<extension>~<random>`).
    pub username: String,
    pub account: SipAccount,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// SIP accounts held in memory, answering the registrar without touching the database.
#[derive(Default)]
pub struct UserDirectory {
    accounts: DashMap<String, SipAccount>,
    softphone_keys: DashMap<String, SoftphoneKey>,
}

impl UserDirectory {
    /// Reads every account and softphone key again (after a change to users, or when a
    /// session ends).
    pub async fn reload(&self, store: &Store, realm: &str) -> Result<usize, StoreError> {
        let accounts = store.sip_accounts(realm).await?;
        let keys = store.softphone_keys(realm).await?;
        self.accounts.clear();
        for a in accounts {
            self.accounts.insert(a.username.clone(), a);
        }
        self.softphone_keys.clear();
        for k in keys {
            self.softphone_keys.insert(k.username.clone(), k);
        }
        Ok(self.accounts.len())
    }

    /// A key just issued, known at once (no reload for every new session).
    pub fn add_softphone_key(&self, key: SoftphoneKey) {
        self.softphone_keys.insert(key.username.clone(), key);
    }
}

impl Directory for UserDirectory {
    fn account(&self, username: &str) -> Option<SipAccount> {
        if let Some(a) = self.accounts.get(username) {
            return Some(a.clone());
        }
        let key = self.softphone_keys.get(username)?;
        key.expires_at
            .is_none_or(|t| t > chrono::Utc::now())
            .then(|| key.account.clone())
    }
}
