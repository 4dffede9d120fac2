//! Files on cards (SPEC 2.6): kept under `<data_dir>/files/<ab>/<abcd…>` (a random name,
//! not the card's id, so merging cards moves no file), with the original
//! name, a content type sniffed from the bytes (never the client's word), a size limit;
//! adding and removing one is written into the card's history.

use crate::access::Viewer;
use crate::store::invalid;
use crate::users::random_secret;
use crate::{on_db, Store, StoreError};
use serde::Serialize;
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize, PartialEq, sqlx::FromRow)]
pub struct PartnerFile {
    pub id: i64,
    pub partner_id: i64,
    pub name: String,
    pub content_type: String,
    pub size: i64,
    pub uploaded_at: String,
    pub user_name: String,
    #[serde(skip)]
    pub stored: String,
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

    /// Attaches `bytes` named `name` to a card (the "contacts" right).
    pub async fn add_file(
        &self,
        viewer: &Viewer,
        partner: i64,
        name: &str,
        bytes: &[u8],
    ) -> Result<PartnerFile, StoreError> {
        if !viewer.works_with_contacts() {
            return Err(StoreError::Forbidden(
                "attaching files needs the contacts right".into(),
            ));
        }
        let name = clean_name(name)?;
        if bytes.len() as u64 > self.max_file_bytes {
            return Err(invalid(
                "file",
                &format!("larger than {} bytes", self.max_file_bytes),
            ));
        }
        self.partner_exists(partner).await?;
        let stored = random_secret(16);
        let path = self.file_path(&stored);
        let dir = path.parent().expect("a folder");
        tokio::fs::create_dir_all(dir).await.map_err(io)?;
        // Written and synced before the row exists: a listed file is always there.
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
        let result: Result<i64, sqlx::Error> = on_db!(self, pool => {
            async {
                let mut tx = pool.begin().await?;
                let id: i64 = sqlx::query_scalar("INSERT INTO partner_files (partner_id, name, content_type, size, stored, uploaded_at, user_name) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id")
                    .bind(partner)
                    .bind(&name)
                    .bind(&content_type)
                    .bind(bytes.len() as i64)
                    .bind(&stored)
                    .bind(&now)
                    .bind(&viewer.user.name)
                    .fetch_one(&mut *tx)
                    .await?;
                sqlx::query("INSERT INTO partner_history (partner_id, at, user_id, user_name, action, new_value) VALUES ($1, $2, $3, $4, 'file', $5)")
                    .bind(partner)
                    .bind(&now)
                    .bind(viewer.user.id)
                    .bind(&viewer.user.name)
                    .bind(&name)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(id)
            }
            .await
        });
        match result {
            Ok(id) => self.file(partner, id).await,
            Err(e) => {
                let _ = tokio::fs::remove_file(&path).await;
                Err(e.into())
            }
        }
    }

    pub async fn files(&self, partner: i64) -> Result<Vec<PartnerFile>, StoreError> {
        self.partner_exists(partner).await?;
        Ok(on_db!(self, pool => {
            sqlx::query_as::<_, PartnerFile>("SELECT * FROM partner_files WHERE partner_id = $1 ORDER BY id")
                .bind(partner)
                .fetch_all(pool)
                .await?
        }))
    }

    pub async fn file(&self, partner: i64, id: i64) -> Result<PartnerFile, StoreError> {
        on_db!(self, pool => {
            sqlx::query_as::<_, PartnerFile>("SELECT * FROM partner_files WHERE partner_id = $1 AND id = $2")
                .bind(partner)
                .bind(id)
                .fetch_optional(pool)
                .await?
        })
        .ok_or(StoreError::NotFound)
    }

    /// A file's record and content.
    pub async fn file_content(
        &self,
        partner: i64,
        id: i64,
    ) -> Result<(PartnerFile, Vec<u8>), StoreError> {
        let file = self.file(partner, id).await?;
        let bytes = tokio::fs::read(self.file_path(&file.stored))
            .await
            .map_err(io)?;
        Ok((file, bytes))
    }

    /// Removes a file (the "contacts" right); its history line stays.
    pub async fn delete_file(
        &self,
        viewer: &Viewer,
        partner: i64,
        id: i64,
    ) -> Result<(), StoreError> {
        if !viewer.works_with_contacts() {
            return Err(StoreError::Forbidden(
                "removing files needs the contacts right".into(),
            ));
        }
        let file = self.file(partner, id).await?;
        let now = chrono::Utc::now().to_rfc3339();
        on_db!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM partner_files WHERE id = $1").bind(id).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO partner_history (partner_id, at, user_id, user_name, action, old_value) VALUES ($1, $2, $3, $4, 'file', $5)")
                .bind(partner)
                .bind(&now)
                .bind(viewer.user.id)
                .bind(&viewer.user.name)
                .bind(&file.name)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        let _ = tokio::fs::remove_file(self.file_path(&file.stored)).await;
        Ok(())
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
