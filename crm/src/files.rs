//! Files on cards (SPEC 2.6) and tasks (SPEC 2.10): kept under `<data_dir>/files/<ab>/<abcd…>`
//! (a random name, not the owner's id, so merging cards moves no file), with the original
//! name, a content type sniffed from the bytes (never the client's word), a size limit;
//! adding and removing one is written into the owner's history.

use crate::access::Viewer;
use crate::store::{invalid, Arg};
use crate::users::random_secret;
use crate::{bind_args, on_db, Store, StoreError, User};
use serde::Serialize;
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize, PartialEq, sqlx::FromRow, schemars::JsonSchema)]
pub struct Attachment {
    pub id: i64,
    pub name: String,
    pub content_type: String,
    pub size: i64,
    pub uploaded_at: String,
    /// Who uploaded it: id and login (none once deleted) and name as it is now.
    #[sqlx(default)]
    pub user_id: Option<i64>,
    #[sqlx(default)]
    pub user_login: Option<String>,
    pub user_name: String,
    #[serde(skip)]
    pub stored: String,
}

/// The columns of an [`Attachment`] from `{table} f`, its uploader as they are now.
fn attachment_select(table: &str) -> String {
    format!(
        "SELECT f.id, f.name, f.content_type, f.size, f.uploaded_at, u.id AS user_id, u.login AS user_login, \
         COALESCE(u.name, f.user_name) AS user_name, f.stored FROM {table} f LEFT JOIN users u ON u.id = f.user_id"
    )
}

/// What a file hangs on.
#[derive(Debug, Clone, Copy)]
pub enum Owner {
    Partner(i64),
    Task(i64),
}

impl Owner {
    fn id(self) -> i64 {
        match self {
            Owner::Partner(id) | Owner::Task(id) => id,
        }
    }

    /// The table of its files and the column naming it there.
    fn table(self) -> (&'static str, &'static str) {
        match self {
            Owner::Partner(_) => ("partner_files", "partner_id"),
            Owner::Task(_) => ("task_files", "task_id"),
        }
    }

    /// The owner's history line for a file `name` added or removed.
    fn history(self, by: &User, at: &str, name: &str, added: bool) -> (String, Vec<Arg>) {
        let value = if added { "new_value" } else { "old_value" };
        let text = |s: &str| Arg::Text(Some(s.to_string()));
        match self {
            Owner::Partner(id) => (
                format!("INSERT INTO partner_history (partner_id, at, user_id, user_name, action, {value}) VALUES ($1, $2, $3, $4, 'file', $5)"),
                vec![Arg::Int(Some(id)), text(at), Arg::Int(Some(by.id)), text(&by.name), text(name)],
            ),
            Owner::Task(id) => (
                format!("INSERT INTO task_history (task_id, at, user_id, user_name, field, {value}) VALUES ($1, $2, $3, $4, 'file', $5)"),
                vec![Arg::Int(Some(id)), text(at), Arg::Int(Some(by.id)), text(&by.name), text(name)],
            ),
        }
    }
}

/// What the bytes are: known signatures first, then text, else opaque.
pub fn sniff(bytes: &[u8]) -> String {
    if let Some(kind) = infer::get(bytes) {
        return kind.mime_type().to_string();
    }
    if std::str::from_utf8(bytes).is_ok() {
        "text/plain; charset=utf-8".into()
    } else {
        "application/octet-stream".into()
    }
}

/// The name as given, without any directory part or control characters.
fn clean_name(name: &str) -> Result<String, StoreError> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base.chars().filter(|c| !c.is_control()).collect();
    let cleaned = cleaned.trim();
    if cleaned.is_empty() || cleaned == "." || cleaned == ".." || cleaned.chars().count() > 255 {
        return Err(invalid("name", "a file name of 1-255 characters"));
    }
    Ok(cleaned.to_string())
}

impl Store {
    fn file_path(&self, stored: &str) -> PathBuf {
        self.files_dir.join(&stored[..2]).join(stored)
    }

    /// Attaches `bytes` named `name` to a card (the "contacts" right, and seeing cards).
    pub async fn add_file(
        &self,
        viewer: &Viewer,
        partner: i64,
        name: &str,
        bytes: &[u8],
    ) -> Result<Attachment, StoreError> {
        viewer.may_see_cards(&self.form().await?)?;
        if !viewer.works_with_contacts() {
            return Err(StoreError::Forbidden(
                "attaching files needs the contacts right".into(),
            ));
        }
        self.partner_exists(partner).await?;
        self.attach(&viewer.user, Owner::Partner(partner), name, bytes)
            .await
    }

    /// Attaches `bytes` named `name` to a task `by` may touch.
    pub async fn add_task_file(
        &self,
        by: &User,
        task: i64,
        name: &str,
        bytes: &[u8],
    ) -> Result<Attachment, StoreError> {
        self.task_for(by, task).await?;
        self.attach(by, Owner::Task(task), name, bytes).await
    }

    /// Writes the file to disk (synced before its row exists: a listed file is always
    /// there), then its row and the owner's history line in one transaction.
    async fn attach(
        &self,
        by: &User,
        owner: Owner,
        name: &str,
        bytes: &[u8],
    ) -> Result<Attachment, StoreError> {
        let name = clean_name(name)?;
        if bytes.len() as u64 > self.max_file_bytes {
            return Err(invalid(
                "file",
                &format!("larger than {} bytes", self.max_file_bytes),
            ));
        }
        let stored = random_secret(16);
        let path = self.file_path(&stored);
        let dir = path.parent().expect("a folder");
        tokio::fs::create_dir_all(dir).await.map_err(io)?;
        let tmp = path.with_extension("part");
        tokio::fs::write(&tmp, bytes).await.map_err(io)?;
        tokio::fs::File::open(&tmp)
            .await
            .map_err(io)?
            .sync_all()
            .await
            .map_err(io)?;
        tokio::fs::rename(&tmp, &path).await.map_err(io)?;
        let now = chrono::Utc::now().to_rfc3339();
        let content_type = sniff(bytes);
        let (table, key) = owner.table();
        let insert = format!("INSERT INTO {table} ({key}, name, content_type, size, stored, uploaded_at, user_id, user_name) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id");
        let (history, args) = owner.history(by, &now, &name, true);
        let result: Result<i64, sqlx::Error> = on_db!(self, pool => {
            async {
                let mut tx = pool.begin().await?;
                let id: i64 = sqlx::query_scalar(&insert)
                    .bind(owner.id())
                    .bind(&name)
                    .bind(&content_type)
                    .bind(bytes.len() as i64)
                    .bind(&stored)
                    .bind(&now)
                    .bind(by.id)
                    .bind(&by.name)
                    .fetch_one(&mut *tx)
                    .await?;
                bind_args!(sqlx::query(&history), &args).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(id)
            }
            .await
        });
        match result {
            Ok(id) => self.file(owner, id).await,
            Err(e) => {
                let _ = tokio::fs::remove_file(&path).await;
                Err(e.into())
            }
        }
    }

    /// A card's files, for a viewer who sees cards ([`Viewer::sees_cards`]).
    pub async fn partner_files(
        &self,
        viewer: &Viewer,
        form: &crate::form::Form,
        partner: i64,
    ) -> Result<Vec<Attachment>, StoreError> {
        viewer.may_see_cards(form)?;
        self.files(Owner::Partner(partner)).await
    }

    /// A card's file and its content, for a viewer who sees cards.
    pub async fn partner_file(
        &self,
        viewer: &Viewer,
        form: &crate::form::Form,
        partner: i64,
        id: i64,
    ) -> Result<(Attachment, Vec<u8>), StoreError> {
        viewer.may_see_cards(form)?;
        self.file_content(Owner::Partner(partner), id).await
    }

    /// The files of a card or task (which must exist).
    pub async fn files(&self, owner: Owner) -> Result<Vec<Attachment>, StoreError> {
        match owner {
            Owner::Partner(id) => self.partner_exists(id).await?,
            Owner::Task(id) => drop(self.task(id).await?),
        }
        let (table, key) = owner.table();
        let sql = format!(
            "{} WHERE f.{key} = $1 ORDER BY f.id",
            attachment_select(table)
        );
        Ok(on_db!(self, pool => {
            sqlx::query_as::<_, Attachment>(&sql)
                .bind(owner.id())
                .fetch_all(pool)
                .await?
        }))
    }

    pub async fn file(&self, owner: Owner, id: i64) -> Result<Attachment, StoreError> {
        let (table, key) = owner.table();
        let sql = format!(
            "{} WHERE f.{key} = $1 AND f.id = $2",
            attachment_select(table)
        );
        on_db!(self, pool => {
            sqlx::query_as::<_, Attachment>(&sql)
                .bind(owner.id())
                .bind(id)
                .fetch_optional(pool)
                .await?
        })
        .ok_or(StoreError::NotFound)
    }

    /// A file's record and content.
    pub async fn file_content(
        &self,
        owner: Owner,
        id: i64,
    ) -> Result<(Attachment, Vec<u8>), StoreError> {
        let file = self.file(owner, id).await?;
        let bytes = tokio::fs::read(self.file_path(&file.stored))
            .await
            .map_err(io)?;
        Ok((file, bytes))
    }

    /// Removes a card's file (the "contacts" right, and seeing cards); its history line
    /// stays.
    pub async fn delete_file(
        &self,
        viewer: &Viewer,
        partner: i64,
        id: i64,
    ) -> Result<(), StoreError> {
        viewer.may_see_cards(&self.form().await?)?;
        if !viewer.works_with_contacts() {
            return Err(StoreError::Forbidden(
                "removing files needs the contacts right".into(),
            ));
        }
        self.detach(&viewer.user, Owner::Partner(partner), id).await
    }

    /// Removes a file from a task `by` may touch.
    pub async fn delete_task_file(&self, by: &User, task: i64, id: i64) -> Result<(), StoreError> {
        self.task_for(by, task).await?;
        self.detach(by, Owner::Task(task), id).await
    }

    async fn detach(&self, by: &User, owner: Owner, id: i64) -> Result<(), StoreError> {
        let file = self.file(owner, id).await?;
        let now = chrono::Utc::now().to_rfc3339();
        let (table, _) = owner.table();
        let delete = format!("DELETE FROM {table} WHERE id = $1");
        let (history, args) = owner.history(by, &now, &file.name, false);
        on_db!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(&delete).bind(id).execute(&mut *tx).await?;
            bind_args!(sqlx::query(&history), &args).execute(&mut *tx).await?;
            tx.commit().await?;
        });
        self.remove_stored(std::slice::from_ref(&file)).await;
        Ok(())
    }

    /// Removes files whose rows are gone. A file that will not go is only logged: its
    /// row, what the API answers from, is already deleted.
    pub(crate) async fn remove_stored(&self, files: &[Attachment]) {
        for file in files {
            if let Err(e) = tokio::fs::remove_file(self.file_path(&file.stored)).await {
                tracing::warn!(file = %file.stored, error = %e, "a deleted file stays on disk");
            }
        }
    }
}

fn io(e: std::io::Error) -> StoreError {
    StoreError::Io(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_comes_from_the_bytes_and_names_lose_their_folders() {
        assert_eq!(sniff(b"%PDF-1.7\n..."), "application/pdf");
        assert_eq!(
            sniff(&[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0]),
            "image/png"
        );
        assert_eq!(sniff("счёт".as_bytes()), "text/plain; charset=utf-8");
        assert_eq!(sniff(&[0xff, 0xfe, 0x00, 0x81]), "application/octet-stream");
        assert_eq!(clean_name("../../etc/passwd").unwrap(), "passwd");
        assert_eq!(clean_name("C:\\docs\\Договор.pdf").unwrap(), "Договор.pdf");
        assert!(clean_name("..").is_err());
        assert!(clean_name("dir/").is_err());
    }
}
