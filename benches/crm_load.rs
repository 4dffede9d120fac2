//! CRM at scale: PARTNERS cards with 15 fields, loaded through the import path in
//! 100,000-row CSV files, then the partner table (a search term and two filters) and card
//! saves timed against the full database.
//!
//!   cargo run --release -p kolokol-crm --example crm_load -- [PARTNERS] [DATABASE_URL]
//!
//! PARTNERS defaults to 1,000,000; DATABASE_URL to a fresh SQLite file under the system
//! temp folder (give `postgres://…/db` for PostgreSQL, an empty database). A database this
//! tool loaded before is reused as it is: only the timings run again.

use kolokol_crm::access::Viewer;
use kolokol_crm::exchange::{Format, Import};
use kolokol_crm::form::{FieldKind, FieldSpec, Form, ListItem, Side};
use kolokol_crm::table::TableQuery;
use kolokol_crm::{NewUser, Store};
use serde_json::{json, Map, Value};
use std::time::{Duration, Instant};

const CITIES: [&str; 10] = [
    "Москва",
    "Санкт-Петербург",
    "Казань",
    "Новосибирск",
    "Екатеринбург",
    "Самара",
    "Омск",
    "Пермь",
    "Уфа",
    "Воронеж",
];
const STAGES: [&str; 5] = ["Лид", "Переговоры", "Сделка", "Клиент", "Архив"];
const TAGS: [&str; 6] = ["VIP", "Опт", "Розница", "Партнёр", "Тендер", "Госзаказ"];
const WORDS: [&str; 12] = [
    "Альфа",
    "Бета",
    "Гамма",
    "Дельта",
    "Омега",
    "Север",
    "Восток",
    "Строй",
    "Торг",
    "Групп",
    "Сервис",
    "Логистик",
];

fn spec(
    name: &str,
    latin: &str,
    kind: FieldKind,
    list_id: Option<i64>,
    in_table: bool,
) -> FieldSpec {
    FieldSpec {
        name: name.into(),
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

/// A cheap deterministic generator (xorshift), so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[(self.next() % from.len() as u64) as usize]
    }
}

fn csv_rows(rng: &mut Rng, from: usize, count: usize) -> String {
    let mut out = String::from(
        "title;phone;email;city;stage;revenue;since;inn;manager;note;tags;site;address;staff;source\n",
    );
    for i in from..from + count {
        let title = format!("{} {} {i}", rng.pick(&WORDS), rng.pick(&WORDS));
        let tags = format!("{},{}", rng.pick(&TAGS), rng.pick(&TAGS));
        out.push_str(&format!(
            "{title};+7495{:07};info{i}@example{}.ru;{};{};{};2026-{:02}-{:02};77{:08};{};Заметка о клиенте {i};\"{tags}\";www.site{i}.ru;ул. {} д. {};{};{}\n",
            i % 10_000_000,
            i % 97,
            rng.pick(&CITIES),
            rng.pick(&STAGES),
            rng.next() % 10_000_000,
            1 + rng.next() % 12,
            1 + rng.next() % 28,
            i,
            rng.pick(&WORDS),
            rng.pick(&WORDS),
            rng.next() % 200,
            rng.next() % 5000,
            rng.pick(&["сайт", "звонок", "выставка", "рекомендация"]),
        ));
    }
    out
}

fn percentile(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// Creates the form and imports `partners` generated cards.
async fn load(store: &Store, partners: usize) {
    let (admin, _) = store
        .create_user(
            &NewUser {
                login: "bench".into(),
                name: "Bench".into(),
                admin: true,
                ..Default::default()
            },
            "bench",
        )
        .await
        .expect("user");
    let cities = store
        .create_list("Города", &items(&CITIES, None))
        .await
        .unwrap();
    let stages = store
        .create_list("Этапы", &items(&STAGES, Some("Архив")))
        .await
        .unwrap();
    let tags = store
        .create_list("Метки", &items(&TAGS, None))
        .await
        .unwrap();
    for s in [
        spec("Название", "title", FieldKind::Text, None, true),
        spec("Телефон", "phone", FieldKind::Phone, None, true),
        spec("E-mail", "email", FieldKind::Email, None, true),
        spec("Город", "city", FieldKind::Dropdown, Some(cities.id), true),
        spec("Этап", "stage", FieldKind::List, Some(stages.id), true),
        spec("Оборот", "revenue", FieldKind::Number, None, true),
        spec("Клиент с", "since", FieldKind::Date, None, true),
        spec("ИНН", "inn", FieldKind::Text, None, false),
        spec("Менеджер", "manager", FieldKind::Text, None, false),
        spec("Заметка", "note", FieldKind::LargeText, None, false),
        spec(
            "Метки",
            "tags",
            FieldKind::MultiSelect,
            Some(tags.id),
            false,
        ),
        spec("Сайт", "site", FieldKind::Text, None, false),
        spec("Адрес", "address", FieldKind::Text, None, false),
        spec("Сотрудников", "staff", FieldKind::Number, None, false),
        spec("Источник", "source", FieldKind::Text, None, false),
    ] {
        store.create_field(&s).await.expect("field");
    }
    let form: Form = store.form().await.unwrap();
    let viewer: Viewer = store.viewer(admin).await.unwrap();

    // Load: 100,000-row CSV imports (each parsed, checked and written as through the API).
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let started = Instant::now();
    let mut import_times = Vec::new();
    let mut done = 0;
    while done < partners {
        let n = (partners - done).min(100_000);
        let csv = csv_rows(&mut rng, done, n);
        let t = Instant::now();
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
        assert_eq!(report.imported, n, "{:?}", report.rejected.first());
        import_times.push(t.elapsed());
        done += n;
        eprintln!("{done} partners");
    }
    let total = started.elapsed();
    let best = import_times.iter().min().unwrap();
    println!(
        "import: {partners} partners in {:.1} s; a 100,000-row file: {:.1} s at best ({:.0} rows/s), {:.0} rows/s overall",
        total.as_secs_f64(),
        best.as_secs_f64(),
        100_000f64.min(partners as f64) / best.as_secs_f64(),
        partners as f64 / total.as_secs_f64()
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let partners: usize = args
        .get(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let url = args.get(2).cloned().unwrap_or_else(|| {
        let path = std::env::temp_dir().join(format!("kolokol-crm-load-{}.db", std::process::id()));
        format!("sqlite://{}", path.display())
    });
    let store = Store::open(&url).await.expect("database");
    let reused = store.user_exists("bench").await.expect("database");
    if !reused {
        load(&store, partners).await;
    } else {
        eprintln!("reusing the partners loaded before");
    }
    let admin = store.user_by_login("bench").await.expect("user");
    let form: Form = store.form().await.unwrap();
    let viewer: Viewer = store.viewer(admin).await.unwrap();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);

    // Table pages: a search term and two filters, first page and a later one.
    let queries = [
        (
            "common term",
            "Альфа",
            "city",
            "Казань",
            "revenue",
            "1000000..5000000",
        ),
        (
            "a name typed whole",
            "Омега Восток 4242",
            "city",
            "Москва,Омск,Казань,Пермь,Уфа",
            "since",
            "2026-01-01..2026-12-31",
        ),
        (
            "common words, rare together",
            "Омега 424",
            "city",
            "Москва,Казань",
            "since",
            "2026-03-01..2026-09-30",
        ),
        (
            "common words, never together",
            "Альфа Бета Гамма",
            "city",
            "Москва,Казань",
            "since",
            "2026-03-01..2026-09-30",
        ),
        (
            "digits of a phone",
            "4950123",
            "stage",
            "Лид,Сделка",
            "revenue",
            "..9000000",
        ),
    ];
    for (what, term, f1, v1, f2, v2) in queries {
        let q = TableQuery {
            search: Some(term.into()),
            filters: vec![(f1.into(), v1.into()), (f2.into(), v2.into())],
            limit: 50,
            ..TableQuery::default()
        };
        let mut times = Vec::new();
        let mut rows = 0;
        for _ in 0..20 {
            let t = Instant::now();
            let page = store
                .partner_table(&viewer, &form, &q)
                .await
                .expect("table");
            times.push(t.elapsed());
            rows = page.rows.len();
        }
        println!(
            "table, {what} (\"{term}\", {f1}={v1}, {f2}={v2}): {rows} rows, median {:.1} ms, p95 {:.1} ms",
            percentile(times.clone(), 0.5).as_secs_f64() * 1e3,
            percentile(times, 0.95).as_secs_f64() * 1e3
        );
    }
    // Sorted pages: by a number with a list filter, by a list (its items' order) with a
    // list filter, and a later page of the latter.
    for (what, sort, latin, value) in [
        ("by revenue desc", "-revenue", "stage", "Клиент"),
        ("by stage (the list's order)", "stage", "city", "Москва"),
    ] {
        let mut q = TableQuery {
            sort: Some(sort.into()),
            filters: vec![(latin.into(), value.into())],
            limit: 50,
            ..TableQuery::default()
        };
        for page in ["first", "fifth"] {
            if page == "fifth" {
                for _ in 0..4 {
                    let next = store
                        .partner_table(&viewer, &form, &q)
                        .await
                        .expect("table");
                    q.after = next.next;
                }
            }
            let mut times = Vec::new();
            for _ in 0..20 {
                let t = Instant::now();
                store
                    .partner_table(&viewer, &form, &q)
                    .await
                    .expect("table");
                times.push(t.elapsed());
            }
            println!(
                "table, sorted {what}, {latin}={value}, {page} page: median {:.1} ms",
                percentile(times, 0.5).as_secs_f64() * 1e3
            );
        }
    }

    // Card saves: three fields changed, history written. The values are new on every run
    // (a save changing nothing writes nothing).
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock")
        .as_millis() as u64;
    let mut times = Vec::new();
    for i in 0..200u64 {
        let id = 1 + (rng.next() % partners as u64) as i64;
        let mut values = Map::new();
        values.insert(
            "manager".into(),
            Value::String(format!("Менеджер {i} {run}")),
        );
        values.insert("revenue".into(), json!(run % 1_000_000 + i));
        values.insert(
            "stage".into(),
            Value::String(STAGES[(i % 4) as usize].into()),
        );
        let t = Instant::now();
        store
            .update_partner(&viewer, &form, id, &values)
            .await
            .expect("save");
        times.push(t.elapsed());
    }
    println!(
        "card save (3 fields + history): median {:.2} ms, p95 {:.2} ms",
        percentile(times.clone(), 0.5).as_secs_f64() * 1e3,
        percentile(times, 0.95).as_secs_f64() * 1e3
    );
}
