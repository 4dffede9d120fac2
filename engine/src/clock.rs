//! Wall-clock milliseconds: the one place the engine reads the time; the cores take it
//! as an argument.

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}
