//! E-mail from a card (SPEC 2.6) over SMTP (`lettre`): subject, to/cc/bcc, a text body,
//! the card's files as attachments; each message sent is a line in the card's history.

use crate::access::Viewer;
use crate::store::invalid;
use crate::{on_db, Store, StoreError};
use lettre::message::{header::ContentType, Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Deserialize;

/// Where mail goes out (`[smtp]` in the configuration).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default)]
pub struct SmtpSettings {
    /// Empty: e-mail is off.
    pub host: String,
    pub port: u16,
    /// "none" (plain, for a local relay), "starttls" or "tls".
    pub security: String,
    pub username: String,
    pub password: String,
    /// The sender, e.g. "Контакт-центр <crm@example.ru>".
    pub from: String,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Email {
    pub subject: String,
    pub to: Vec<String>,
    #[serde(default)]
    pub cc: Vec<String>,
    #[serde(default)]
    pub bcc: Vec<String>,
    pub body: String,
    /// Ids of the card's files to attach.
    #[serde(default)]
    pub attachments: Vec<i64>,
}

fn mailboxes(field: &'static str, list: &[String]) -> Result<Vec<Mailbox>, StoreError> {
    list.iter()
        .map(|a| {
            a.parse::<Mailbox>()
                .map_err(|_| invalid(field, &format!("\"{a}\" is not an e-mail address")))
        })
        .collect()
}

impl Store {
    /// Sends `email` about card `partner` (the "contacts" right) and notes it in history.
    pub async fn send_email(
        &self,
        viewer: &Viewer,
        partner: i64,
        email: &Email,
    ) -> Result<(), StoreError> {
        if !viewer.works_with_contacts() {
            return Err(StoreError::Forbidden(
                "e-mail needs the contacts right".into(),
            ));
        }
        // The message may carry the card's files.
        viewer.may_see_cards(&self.form().await?)?;
        if self.smtp.host.is_empty() {
            return Err(StoreError::NotConfigured(
                "e-mail is not set up ([smtp] host)".into(),
            ));
        }
        self.partner_exists(partner).await?;
        let subject = email.subject.trim();
        if subject.is_empty() || subject.chars().count() > 500 {
            return Err(invalid("subject", "1-500 characters"));
        }
        if email.to.is_empty() {
            return Err(invalid("to", "at least one address"));
        }
        let from: Mailbox = self
            .smtp
            .from
            .parse()
            .map_err(|_| StoreError::NotConfigured("[smtp] from is not an address".into()))?;
        let mut builder = Message::builder().from(from).subject(subject);
        for m in mailboxes("to", &email.to)? {
            builder = builder.to(m);
        }
        for m in mailboxes("cc", &email.cc)? {
            builder = builder.cc(m);
        }
        for m in mailboxes("bcc", &email.bcc)? {
            builder = builder.bcc(m);
        }
        let mut parts = MultiPart::mixed().singlepart(SinglePart::plain(email.body.clone()));
        for id in &email.attachments {
            let (file, bytes) = self
                .file_content(crate::files::Owner::Partner(partner), *id)
                .await
                .map_err(|e| match e {
                    StoreError::NotFound => {
                        invalid("attachments", &format!("the card has no file {id}"))
                    }
                    e => e,
                })?;
            let kind = ContentType::parse(&file.content_type)
                .unwrap_or(ContentType::parse("application/octet-stream").expect("a content type"));
            parts = parts.singlepart(Attachment::new(file.name).body(bytes, kind));
        }
        let message = builder
            .multipart(parts)
            .map_err(|e| invalid("to", &e.to_string()))?;
        let s = &self.smtp;
        let mut transport = match s.security.as_str() {
            "tls" => AsyncSmtpTransport::<Tokio1Executor>::relay(&s.host),
            "starttls" => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&s.host),
            _ => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                &s.host,
            )),
        }
        .map_err(|e| StoreError::Unavailable(format!("SMTP: {e}")))?
        .port(s.port)
        .timeout(Some(std::time::Duration::from_secs(30)));
        if !s.username.is_empty() {
            transport =
                transport.credentials(Credentials::new(s.username.clone(), s.password.clone()));
        }
        transport
            .build()
            .send(message)
            .await
            .map_err(|e| StoreError::Unavailable(format!("SMTP: {e}")))?;
        let line = format!("{subject} → {}", email.to.join(", "));
        on_db!(self, pool => {
            sqlx::query("INSERT INTO partner_history (partner_id, at, user_id, user_name, action, new_value) VALUES ($1, $2, $3, $4, 'email', $5)")
                .bind(partner)
                .bind(chrono::Utc::now().to_rfc3339())
                .bind(viewer.user.id)
                .bind(&viewer.user.name)
                .bind(&line)
                .execute(pool)
                .await?;
        });
        Ok(())
    }
}
