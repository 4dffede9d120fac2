//! Trunks, inbound numbers and per-user call settings, and the in-memory dialplan call
//! control asks on every INVITE.

use crate::store::{conflict_on, invalid};
use crate::{on_db, Store, StoreError};
use dashmap::DashMap;
use kolokol_engine::call::outbound_registration::RegistrationTarget;
use kolokol_engine::call::routing::{Destination, Dialplan, Number, Trunk, UserRoute};
use kolokol_engine::transport::{Flow, Transport};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use std::net::{IpAddr, SocketAddr};

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, schemars::JsonSchema)]
pub struct NewTrunk {
    pub name: String,
    /// `ip:port` calls out are sent to.
    pub address: String,
    #[serde(default = "udp")]
    pub transport: String,
    /// Calls from this IP are the trunk's (no digest asked).
    pub inbound_ip: Option<String>,
    pub inbound_port: Option<u16>,
    pub caller_id: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Register with the provider as `username` (needs `password`).
    #[serde(default)]
    pub register: bool,
}

fn udp() -> String {
    "udp".into()
}

#[derive(Debug, Clone, Serialize, PartialEq, schemars::JsonSchema)]
pub struct TrunkRow {
    pub id: i64,
    #[serde(flatten)]
    pub trunk: NewTrunk,
}

impl NewTrunk {
    pub fn validate(&self) -> Result<(SocketAddr, Option<IpAddr>), StoreError> {
        if self.name.trim().is_empty() || self.name.len() > 100 {
            return Err(invalid("name", "must not be empty (at most 100 bytes)"));
        }
        let address: SocketAddr = self
            .address
            .parse()
            .map_err(|_| invalid("address", "must be ip:port"))?;
        if self.transport != "udp" {
            return Err(invalid("transport", "only udp trunks are supported"));
        }
        let inbound = match &self.inbound_ip {
            Some(ip) => Some(
                ip.parse::<IpAddr>()
                    .map_err(|_| invalid("inbound_ip", "must be an IP address"))?,
            ),
            None => None,
        };
        if let Some(c) = &self.caller_id {
            if c.is_empty()
                || c.len() > 32
                || !c
                    .trim_start_matches('+')
                    .bytes()
                    .all(|b| b.is_ascii_digit())
            {
                return Err(invalid("caller_id", "digits, optionally after '+'"));
            }
        }
        if self.register && (self.username.is_none() || self.password.is_none()) {
            return Err(invalid("register", "needs username and password"));
        }
        Ok((address, inbound))
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, schemars::JsonSchema)]
pub struct NewNumber {
    pub number: String,
    /// The login of the user the number rings …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// … or the queue it enters (exactly one of the two).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    #[serde(default = "yes")]
    pub record: bool,
}

fn yes() -> bool {
    true
}

/// Per-user call settings.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, schemars::JsonSchema)]
pub struct UserCalls {
    pub record: bool,
    pub trunk_id: Option<i64>,
}

impl Store {
    pub async fn create_trunk(&self, new: &NewTrunk) -> Result<TrunkRow, StoreError> {
        new.validate()?;
        let r = on_db!(self, pool => sqlx::query("INSERT INTO trunks (name, address, transport, inbound_ip, inbound_port, caller_id, username, password, register, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id")
            .bind(new.name.trim())
            .bind(&new.address)
            .bind(&new.transport)
            .bind(&new.inbound_ip)
            .bind(new.inbound_port.map(i64::from))
            .bind(&new.caller_id)
            .bind(&new.username)
            .bind(&new.password)
            .bind(new.register)
            .bind(chrono::Utc::now().to_rfc3339())
            .fetch_one(pool)
            .await.map(|row| row.get::<i64, _>("id")));
        let id = r.map_err(conflict_on("name"))?;
        Ok(TrunkRow {
            id,
            trunk: new.clone(),
        })
    }

    pub async fn trunks(&self) -> Result<Vec<TrunkRow>, StoreError> {
        Ok(
            on_db!(self, pool => sqlx::query("SELECT id, name, address, transport, inbound_ip, inbound_port, caller_id, username, password, register FROM trunks ORDER BY id")
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| TrunkRow {
                id: r.get("id"),
                trunk: NewTrunk {
                    name: r.get("name"),
                    address: r.get("address"),
                    transport: r.get("transport"),
                    inbound_ip: r.get("inbound_ip"),
                    inbound_port: r.get::<Option<i64>, _>("inbound_port").map(|p| p as u16),
                    caller_id: r.get("caller_id"),
                    username: r.get("username"),
                    password: r.get("password"),
                    register: r.get("register"),
                },
            })
            .collect()),
        )
    }

    pub async fn create_number(&self, new: &NewNumber) -> Result<NewNumber, StoreError> {
        let digits = new.number.trim_start_matches('+');
        if digits.is_empty() || digits.len() > 32 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid("number", "digits, optionally after '+'"));
        }
        let destination = match (&new.user, &new.queue) {
            (Some(user), None) => {
                if !self.user_exists(user).await? {
                    return Err(invalid("user", "no user with this login"));
                }
                format!("user:{user}")
            }
            (None, Some(queue)) => {
                if !self.queue_exists(queue).await? {
                    return Err(invalid("queue", "no queue with this name"));
                }
                format!("queue:{queue}")
            }
            _ => return Err(invalid("user", "give either user or queue")),
        };
        let r = on_db!(self, pool => sqlx::query(
            "INSERT INTO numbers (number, destination, record, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&new.number)
        .bind(destination)
        .bind(new.record)
        .bind(chrono::Utc::now().to_rfc3339())
        .execute(pool)
        .await.map(|d| d.rows_affected()));
        r.map_err(conflict_on("number"))?;
        Ok(new.clone())
    }

    pub async fn numbers(&self) -> Result<Vec<NewNumber>, StoreError> {
        Ok(
            on_db!(self, pool => sqlx::query("SELECT number, destination, record FROM numbers ORDER BY number")
            .fetch_all(pool)
            .await?
            .iter()
            .filter_map(|r| {
                let dest: String = r.get("destination");
                let (kind, name) = dest.split_once(':')?;
                Some(NewNumber {
                    number: r.get("number"),
                    user: (kind == "user").then(|| name.to_string()),
                    queue: (kind == "queue").then(|| name.to_string()),
                    record: r.get("record"),
                })
            })
            .collect()),
        )
    }

    pub async fn set_user_calls(&self, login: &str, calls: &UserCalls) -> Result<(), StoreError> {
        if let Some(t) = calls.trunk_id {
            let found: Option<i64> = on_db!(self, pool => sqlx::query_scalar("SELECT id FROM trunks WHERE id = $1")
                .bind(t)
                .fetch_optional(pool)
                .await)?;
            if found.is_none() {
                return Err(invalid("trunk_id", "no trunk with this id"));
            }
        }
        let done = on_db!(self, pool => sqlx::query("UPDATE users SET record = $1, trunk_id = $2 WHERE login = $3")
            .bind(calls.record)
            .bind(calls.trunk_id)
            .bind(login)
            .execute(pool)
            .await.map(|d| d.rows_affected()))?;
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn user_routes(&self) -> Result<Vec<UserRoute>, StoreError> {
        Ok(on_db!(self, pool => sqlx::query(
            "SELECT login, name, extension, record, trunk_id FROM users WHERE active",
        )
        .fetch_all(pool)
        .await?
            .iter()
            .map(|r| UserRoute {
                login: r.get("login"),
                name: r.get("name"),
                extension: r.get("extension"),
                record: r.get("record"),
                trunk: r.get("trunk_id"),
            })
            .collect()))
    }
}

/// Users, numbers and trunks in memory; reloaded whenever one of them changes.
#[derive(Default)]
pub struct RoutingTable {
    users: DashMap<String, UserRoute>,
    numbers: DashMap<String, Number>,
    trunks: DashMap<i64, Trunk>,
}

impl RoutingTable {
    pub async fn reload(&self, store: &Store) -> Result<(), StoreError> {
        let users = store.user_routes().await?;
        let numbers = store.numbers().await?;
        let trunks = store.trunks().await?;
        self.users.clear();
        // Extensions win over logins spelt the same (data from before the two were kept
        // apart): what is dialled as digits reaches the extension's owner.
        for u in &users {
            self.users.insert(u.login.clone(), u.clone());
        }
        for u in users {
            if let Some(ext) = u.extension.clone() {
                self.users.insert(ext, u);
            }
        }
        self.numbers.clear();
        for n in numbers {
            self.numbers.insert(
                n.number.clone(),
                Number {
                    number: n.number,
                    destination: match (n.user, n.queue) {
                        (Some(user), _) => Destination::User(user),
                        (None, queue) => Destination::Queue(queue.unwrap_or_default()),
                    },
                    record: n.record,
                },
            );
        }
        self.trunks.clear();
        for t in trunks {
            let Ok((address, inbound_ip)) = t.trunk.validate() else {
                continue;
            };
            self.trunks.insert(
                t.id,
                Trunk {
                    id: t.id,
                    name: t.trunk.name,
                    address,
                    transport: Transport::Udp,
                    inbound_ip,
                    inbound_port: t.trunk.inbound_port,
                    caller_id: t.trunk.caller_id,
                    username: t.trunk.username,
                    password: t.trunk.password,
                },
            );
        }
        Ok(())
    }
}

impl Dialplan for RoutingTable {
    fn trunk_from(&self, flow: &Flow) -> Option<Trunk> {
        self.trunks
            .iter()
            .find(|t| t.matches(flow))
            .map(|t| t.clone())
    }

    fn trunk(&self, id: i64) -> Option<Trunk> {
        self.trunks.get(&id).map(|t| t.clone())
    }

    fn number(&self, number: &str) -> Option<Number> {
        self.numbers.get(number).map(|n| n.clone())
    }

    fn user(&self, extension_or_login: &str) -> Option<UserRoute> {
        self.users.get(extension_or_login).map(|u| u.clone())
    }
}

impl Store {
    /// The trunks kolokol registers with, for call control.
    pub async fn registration_targets(&self) -> Result<Vec<RegistrationTarget>, StoreError> {
        Ok(self
            .trunks()
            .await?
            .into_iter()
            .filter(|t| t.trunk.register)
            .filter_map(|t| {
                let (address, _) = t.trunk.validate().ok()?;
                Some(RegistrationTarget {
                    trunk_id: t.id,
                    address,
                    username: t.trunk.username?,
                    password: t.trunk.password?,
                })
            })
            .collect())
    }
}
