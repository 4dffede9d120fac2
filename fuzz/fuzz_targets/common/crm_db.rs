//! The small CRM database the `table_page` and `import_dry_run` targets run against:
//! a form with a field of every kind (lists with an item hidden by default), 24 cards,
//! an administrator, on a SQLite file per fuzzing process.

use kolokol_crm::access::Viewer;
use kolokol_crm::exchange::{Format, Import};
use kolokol_crm::form::{FieldKind, FieldSpec, Form, ListItem, Side};
use kolokol_crm::{NewUser, Store, StoreError};
use std::sync::OnceLock;

pub struct Table {
    pub rt: tokio::runtime::Runtime,
    pub store: Store,
    pub form: Form,
    pub viewer: Viewer,
}

fn spec(latin: &str, kind: FieldKind, list_id: Option<i64>, in_table: bool) -> FieldSpec {
    FieldSpec {
        name: format!("Поле {latin}"),
        latin: latin.into(),
        section: String::new(),
        kind,
        list_id,
        position: 0,
        shown: true,
        placeholder: String::new(),
        side: Side::Left,
        in_table,
        required: false,
    }
}

fn items(names: &[&str], hidden: Option<&str>) -> Vec<ListItem> {
    names
        .iter()
        .enumerate()
        .map(|(i, n)| ListItem {
            id: 0,
            name: n.to_string(),
            position: i as i64,
            hidden_by_default: Some(*n) == hidden,
        })
        .collect()
}

/// A database file per fuzzing process, under the system's temp folder; those of
/// processes that ended are removed.
fn database_url() -> String {
    let dir = std::env::temp_dir().join("kolokol-fuzz-table");
    let _ = std::fs::create_dir_all(&dir);
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name.split('.').next().unwrap_or_default();
        if !std::path::Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    let path = dir.join(format!("{}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    format!("sqlite://{}", path.display())
}

pub fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (store, form, viewer) = rt.block_on(async {
            let store = Store::open(&database_url()).await.expect("database");
            let (admin, _) = store
                .create_user(
                    &NewUser {
                        login: "fuzz".into(),
                        name: "Fuzz".into(),
                        admin: true,
                        ..Default::default()
                    },
                    "kolokol",
                )
                .await
                .expect("user");
            let city = store
                .create_list("Города", &items(&["Москва", "Казань", "Омск"], None))
                .await
                .unwrap();
            let stage = store
                .create_list("Этапы", &items(&["Лид", "Сделка", "Архив"], Some("Архив")))
                .await
                .unwrap();
            let tags = store
                .create_list("Метки", &items(&["VIP", "Опт"], None))
                .await
                .unwrap();
            for s in [
                spec("title", FieldKind::Text, None, true),
                spec("phone", FieldKind::Phone, None, true),
                spec("email", FieldKind::Email, None, true),
                spec("city", FieldKind::Dropdown, Some(city.id), true),
                spec("stage", FieldKind::List, Some(stage.id), true),
                spec("revenue", FieldKind::Number, None, true),
                spec("since", FieldKind::Date, None, true),
                spec("note", FieldKind::LargeText, None, false),
                spec("tags", FieldKind::MultiSelect, Some(tags.id), true),
                spec("checks", FieldKind::Checkboxes, Some(tags.id), false),
            ] {
                store.create_field(&s).await.expect("field");
            }
            let form = store.form().await.unwrap();
            let viewer = store.viewer(admin).await.unwrap();
            let mut csv =
                String::from("title,phone,email,city,stage,revenue,since,note,tags,checks\n");
            for i in 0..24 {
                csv.push_str(&format!(
                    "Альфа {i},+7 495 123-45-{i:02},a{i}@example.com,{},{},{}.5,2026-0{}-1{},note {i},\"{}\",VIP\n",
                    ["Москва", "Казань", "Омск", ""][i % 4],
                    ["Лид", "Сделка", "Архив"][i % 3],
                    i * 1000,
                    1 + i % 9,
                    i % 10,
                    ["VIP", "Опт", "VIP, Опт", ""][i % 4],
                ));
            }
            let report = store
                .import_partners(
                    &viewer,
                    &form,
                    Import {
                        format: Format::Csv,
                        bytes: csv.into_bytes().into(),
                        mapping: None,
                        dry_run: false,
                    },
                    |_, _| {},
                )
                .await
                .expect("import");
            assert_eq!(report.imported, 24, "{:?}", report.rejected.first());
            (store, form, viewer)
        });
        Table {
            rt,
            store,
            form,
            viewer,
        }
    })
}

/// A refusal the API answers with 4xx, naming what is wrong.
pub fn refused(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::Invalid { .. } | StoreError::InvalidField { .. } | StoreError::NotFound
    )
}
