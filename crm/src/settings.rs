//! A user's own settings, kept with their account: what the web app needs to look as they
//! left it (its language), whatever browser they sign in from.

use crate::{on_db, Store, StoreError};
use serde::{Deserialize, Deserializer, Serialize};

/// The languages the web app ships in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Ru,
    En,
}

impl Language {
    fn code(self) -> &'static str {
        match self {
            Language::Ru => "ru",
            Language::En => "en",
        }
    }

    fn from_code(code: &str) -> Option<Language> {
        match code {
            "ru" => Some(Language::Ru),
            "en" => Some(Language::En),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, schemars::JsonSchema)]
pub struct UserSettings {
    /// The web app's language; null: the browser's.
    pub language: Option<Language>,
}

/// Changes to one's settings: an absent field stays, a null one goes back to the default.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsChange {
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "Option<Language>")]
    pub language: Option<Option<Language>>,
}

/// A field that is there, null or not (serde's `default` covers its absence).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

impl Store {
    pub async fn user_settings(&self, user_id: i64) -> Result<UserSettings, StoreError> {
        let language: Option<Option<String>> = on_db!(self, pool => {
            sqlx::query_scalar("SELECT language FROM users WHERE id = $1")
                .bind(user_id)
                .fetch_optional(pool)
                .await?
        });
        let language = language.ok_or(StoreError::NotFound)?;
        Ok(UserSettings {
            language: language.as_deref().and_then(Language::from_code),
        })
    }

    /// Applies `change` to the user's settings; returns them as they now are.
    pub async fn change_settings(
        &self,
        user_id: i64,
        change: &SettingsChange,
    ) -> Result<UserSettings, StoreError> {
        if let Some(language) = change.language {
            on_db!(self, pool => {
                sqlx::query("UPDATE users SET language = $1 WHERE id = $2")
                    .bind(language.map(Language::code))
                    .bind(user_id)
                    .execute(pool)
                    .await?;
            });
        }
        self.user_settings(user_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_null_and_a_language_are_three_changes() {
        let read = |s: &str| serde_json::from_str::<SettingsChange>(s).map(|c| c.language);
        assert_eq!(read("{}").unwrap(), None);
        assert_eq!(read(r#"{"language":null}"#).unwrap(), Some(None));
        assert_eq!(
            read(r#"{"language":"ru"}"#).unwrap(),
            Some(Some(Language::Ru))
        );
        assert!(read(r#"{"language":"de"}"#).is_err());
        assert!(read(r#"{"theme":"dark"}"#).is_err());
    }
}
