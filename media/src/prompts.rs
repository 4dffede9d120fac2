//! Spoken prompts for waiting callers (position in the queue, estimated wait), in Russian
//! or English. Generated once, without downloads, by `espeak-ng` into WAV files under a
//! directory (an operator may replace any file with a recorded voice); where a phrase is
//! missing and cannot be generated, beeps stand in for it.

use crate::sound::Sound;
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

/// The largest position or number of minutes spoken; beyond it, "more than" is said.
pub const MAX_NUMBER: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    Russian,
    English,
}

impl Language {
    pub fn parse(s: &str) -> Option<Language> {
        match s {
            "ru" => Some(Language::Russian),
            "en" => Some(Language::English),
            _ => None,
        }
    }

    fn code(self) -> &'static str {
        match self {
            Language::Russian => "ru",
            Language::English => "en",
        }
    }

    fn text(self, phrase: &str) -> String {
        let (ru, en) = match phrase {
            "position" => ("Ваш номер в очереди", "Your position in the queue is"),
            "wait" => (
                "Примерное время ожидания в минутах",
                "Estimated waiting time in minutes",
            ),
            "more" => ("больше двадцати", "more than twenty"),
            "stay" => (
                "Пожалуйста, оставайтесь на линии.",
                "Please stay on the line.",
            ),
            n => (n, n),
        };
        match self {
            Language::Russian => ru.to_string(),
            Language::English => en.to_string(),
        }
    }
}

fn phrases() -> impl Iterator<Item = String> {
    ["position", "wait", "more", "stay"]
        .into_iter()
        .map(str::to_string)
        .chain((1..=MAX_NUMBER).map(|n| n.to_string()))
}

#[derive(Debug, Clone, Default)]
pub struct Prompts {
    phrases: HashMap<String, Sound>,
}

impl Prompts {
    /// Loads `dir/<lang>/<phrase>.wav`, generating missing files with espeak-ng when it is
    /// installed. Never fails: what cannot be had is left out (and beeped).
    pub fn load_or_generate(dir: &Path, language: Language) -> Prompts {
        let dir = dir.join(language.code());
        let _ = std::fs::create_dir_all(&dir);
        let mut phrases = HashMap::new();
        let mut generated = 0;
        for phrase in self::phrases() {
            let path = dir.join(format!("{phrase}.wav"));
            if !path.exists() {
                let spoken = Command::new("espeak-ng")
                    .args(["-v", language.code(), "-s", "150", "-w"])
                    .arg(&path)
                    .arg(language.text(&phrase))
                    .output()
                    .is_ok_and(|o| o.status.success());
                generated += usize::from(spoken);
            }
            if let Ok(sound) = Sound::load(&path) {
                phrases.insert(phrase, sound);
            }
        }
        tracing::info!(
            dir = %dir.display(),
            phrases = phrases.len(),
            generated,
            "prompts ready"
        );
        Prompts { phrases }
    }

    fn phrase(&self, name: &str) -> Option<&Sound> {
        self.phrases.get(name)
    }

    /// "Your position in the queue is N" (N beeps without prompts).
    pub fn position(&self, n: usize) -> Sound {
        self.sentence("position", n)
    }

    /// "Estimated waiting time in minutes: N".
    pub fn wait_minutes(&self, n: usize) -> Sound {
        self.sentence("wait", n.max(1))
    }

    pub fn stay(&self) -> Sound {
        self.phrase("stay").cloned().unwrap_or_default()
    }

    fn sentence(&self, lead: &str, n: usize) -> Sound {
        let number = if n > MAX_NUMBER {
            self.phrase("more")
        } else {
            self.phrase(&n.to_string())
        };
        match (self.phrase(lead), number) {
            (Some(lead), Some(number)) => {
                Sound::concat(&[lead, &Sound::silence(150), number, &Sound::silence(400)])
            }
            _ => Sound::beeps(n.min(MAX_NUMBER)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_prompts_numbers_are_beeped() {
        let p = Prompts::default();
        let three = p.position(3);
        let one = p.position(1);
        assert!(three.samples.len() > one.samples.len());
        assert!(three.samples.iter().any(|s| *s != 0));
        assert!(p.stay().samples.is_empty());
    }

    #[test]
    fn prompts_on_disk_are_used_and_missing_numbers_fall_back() {
        let dir = std::env::temp_dir().join(format!("kolokol-prompts-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let ru = dir.join("ru");
        std::fs::create_dir_all(&ru).unwrap();
        let write = |name: &str, level: i16| {
            let spec = hound::WavSpec {
                channels: 1,
                sample_rate: 8_000,
                bits_per_sample: 16,
                sample_format: hound::SampleFormat::Int,
            };
            let mut w = hound::WavWriter::create(ru.join(format!("{name}.wav")), spec).unwrap();
            for _ in 0..800 {
                w.write_sample(level).unwrap();
            }
            w.finalize().unwrap();
        };
        write("position", 1000);
        write("2", 2000);
        // A path where espeak-ng cannot write keeps the test from depending on it.
        let p = Prompts {
            phrases: ["position", "2"]
                .iter()
                .map(|n| {
                    (
                        n.to_string(),
                        Sound::load(&ru.join(format!("{n}.wav"))).unwrap(),
                    )
                })
                .collect(),
        };
        let s = p.position(2);
        assert_eq!(s.samples.len(), 800 + 1_200 + 800 + 3_200);
        assert_eq!((s.samples[0], s.samples[2_000]), (1000, 2000));
        assert_eq!(p.position(3), Sound::beeps(3), "no file for 3");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
