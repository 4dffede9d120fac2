//! Users: web login (argon2id), telephony credentials (HA1 per realm), rights, API tokens.

use crate::{Store, StoreError};
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

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct User {
    pub id: i64,
    pub login: String,
    pub name: String,
    pub extension: Option<String>,
    pub active: bool,
    pub admin: bool,
    pub created_at: String,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct NewUser {
    pub login: String,
    pub name: String,
    pub extension: Option<String>,
    pub sip_password: Option<String>,
    pub password: Option<String>,
    #[serde(default)]
    pub admin: bool,
}

fn invalid(field: &'static str, message: &str) -> StoreError {
    StoreError::Invalid {
        field,
        message: message.to_string(),
    }
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
            if p.len() < 8 {
                return Err(invalid("password", "at least 8 characters"));
            }
        }
        Ok(())
    }
}

pub fn hash_secret(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub fn random_secret(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

fn row_to_user(r: &sqlx::sqlite::SqliteRow) -> User {
    User {
        id: r.get("id"),
        login: r.get("login"),
        name: r.get("name"),
        extension: r.get("extension"),
        active: r.get::<i64, _>("active") != 0,
        admin: r.get::<i64, _>("admin") != 0,
        created_at: r.get("created_at"),
    }
}

const USER_COLUMNS: &str = "id, login, name, extension, active, admin, created_at";

impl Store {
    /// Creates a user; returns it and the web password (generated when none was given).
    pub async fn create_user(
        &self,
        new: &NewUser,
        realm: &str,
    ) -> Result<(User, String), StoreError> {
        new.validate()?;
        let password = new.password.clone().unwrap_or_else(|| random_secret(8));
        let salt = SaltString::generate(&mut OsRng);
        let password_hash = Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map_err(|e| StoreError::Hash(e.to_string()))?
            .to_string();
        let (md5, sha) = match (&new.extension, &new.sip_password) {
            (Some(ext), Some(p)) => (
                Some(ha1(Algorithm::Md5, ext, realm, p)),
                Some(ha1(Algorithm::Sha256, ext, realm, p)),
            ),
            _ => (None, None),
        };
        let result = sqlx::query(
            "INSERT INTO users (login, name, extension, sip_realm, ha1_md5, ha1_sha256, password_hash, active, admin, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $9) RETURNING id",
        )
        .bind(&new.login)
        .bind(new.name.trim())
        .bind(&new.extension)
        .bind(realm)
        .bind(md5)
        .bind(sha)
        .bind(password_hash)
        .bind(new.admin as i64)
        .bind(chrono::Utc::now().to_rfc3339())
        .fetch_one(&self.pool)
        .await;
        let id: i64 = match result {
            Ok(row) => row.get("id"),
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

    pub async fn user(&self, id: i64) -> Result<User, StoreError> {
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(row_to_user(&row))
    }

    pub async fn users(&self) -> Result<Vec<User>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY id"))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(row_to_user).collect())
    }

    pub async fn user_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await?)
    }

    /// The user whose web login and password match, if active.
    pub async fn check_password(
        &self,
        login: &str,
        password: &str,
    ) -> Result<Option<User>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS}, password_hash FROM users WHERE login = $1 AND active = 1"
        ))
        .bind(login)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            // Same work for an unknown login as for a wrong password.
            let _ = Argon2::default()
                .hash_password(password.as_bytes(), &SaltString::generate(&mut OsRng));
            return Ok(None);
        };
        let stored: String = row.get("password_hash");
        let ok = PasswordHash::new(&stored)
            .map(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false);
        Ok(ok.then(|| row_to_user(&row)))
    }

    /// Issues a bearer token ('api', no expiry) or a session ('session', 12 hours).
    pub async fn issue_token(&self, user_id: i64, kind: &str) -> Result<String, StoreError> {
        let token = random_secret(24);
        let expires = (kind == "session")
            .then(|| (chrono::Utc::now() + chrono::Duration::hours(12)).to_rfc3339());
        sqlx::query("INSERT INTO api_tokens (token_hash, user_id, kind, expires_at, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(hash_secret(&token))
            .bind(user_id)
            .bind(kind)
            .bind(expires)
            .bind(chrono::Utc::now().to_rfc3339())
            .execute(&self.pool)
            .await?;
        Ok(token)
    }

    /// The active user a token or session belongs to.
    pub async fn user_by_token(&self, token: &str) -> Result<Option<User>, StoreError> {
        let row = sqlx::query(
            "SELECT u.id, u.login, u.name, u.extension, u.active, u.admin, u.created_at FROM api_tokens t JOIN users u ON u.id = t.user_id \
             WHERE t.token_hash = $1 AND u.active = 1 AND (t.expires_at IS NULL OR t.expires_at > $2)",
        )
        .bind(hash_secret(token))
        .bind(chrono::Utc::now().to_rfc3339())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(row_to_user))
    }

    /// SIP accounts of active users for the realm.
    pub async fn sip_accounts(&self, realm: &str) -> Result<Vec<SipAccount>, StoreError> {
        let rows = sqlx::query("SELECT id, extension, ha1_md5, ha1_sha256 FROM users WHERE active = 1 AND extension IS NOT NULL AND sip_realm = $1")
            .bind(realm)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| SipAccount {
                user_id: r.get("id"),
                username: r.get("extension"),
                ha1_md5: r.get("ha1_md5"),
                ha1_sha256: r.get("ha1_sha256"),
            })
            .collect())
    }
}

/// SIP accounts held in memory, answering the registrar without touching the database.
#[derive(Default)]
pub struct UserDirectory {
    accounts: DashMap<String, SipAccount>,
}

impl UserDirectory {
    pub async fn reload(&self, store: &Store, realm: &str) -> Result<usize, StoreError> {
        let accounts = store.sip_accounts(realm).await?;
        self.accounts.clear();
        for a in accounts {
            self.accounts.insert(a.username.clone(), a);
        }
        Ok(self.accounts.len())
    }
}

impl Directory for UserDirectory {
    fn account(&self, username: &str) -> Option<SipAccount> {
        self.accounts.get(username).map(|a| a.clone())
    }
}
