//! What the browser softphone needs to register — taken from the signed-in web account.

use crate::api::{Caller, CallerToken};
use crate::{AppState, Problem};
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use kolokol_engine::registrar::Directory;
use serde::Serialize;

/// An ICE server handed to browsers (STUN/TURN), as `RTCIceServer` wants it.
#[derive(Debug, Clone, Serialize, serde::Deserialize, Default, schemars::JsonSchema)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

#[derive(Serialize, schemars::JsonSchema)]
pub struct Softphone {
    login: String,
    name: String,
    /// The address of record the softphone registers (`sip:<extension>@…`).
    extension: String,
    realm: String,
    /// The digest username of this session's key (`<extension>~<random>`).
    sip_username: String,
    /// The HA1 of this session's key: JsSIP answers digest challenges with it. The key
    /// works over WebSocket only and ends with the web session, so a web login never
    /// yields the account's SIP password (or its hash) for a desk phone.
    ha1: String,
    ice_servers: Vec<IceServer>,
}

/// The signed-in user's SIP identity for the softphone, with the key of their session.
pub async fn credentials(
    State(st): State<AppState>,
    Caller(user): Caller,
    Extension(CallerToken(token)): Extension<CallerToken>,
) -> Result<Json<Softphone>, Problem> {
    let no_phone = || {
        Problem::new(
            StatusCode::CONFLICT,
            "No telephony account",
            "this user has no extension with a SIP password",
        )
    };
    let extension = user.extension.clone().ok_or_else(no_phone)?;
    st.directory.account(&extension).ok_or_else(no_phone)?;
    let key = st.store.softphone_key(&user, &token, &st.realm).await?;
    let (sip_username, ha1) = (key.username.clone(), key.account.ha1_md5.clone());
    st.directory.add_softphone_key(key);
    Ok(Json(Softphone {
        login: user.login,
        name: user.name,
        extension,
        realm: st.realm.clone(),
        sip_username,
        ha1,
        ice_servers: st.ice_servers.clone(),
    }))
}
