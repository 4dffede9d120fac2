//! Sounds kolokol plays itself (music on hold, tones): 8 kHz mono samples, decoded and
//! resampled once at load with `symphonia` (WAV, MP3, OGG/Vorbis, FLAC), or generated.

use std::f64::consts::TAU;
use std::path::Path;
use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::DecoderOptions;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

pub const RATE: u32 = 8_000;

#[derive(Debug, thiserror::Error)]
pub enum SoundError {
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("decoding {path}: {message}")]
    Decode { path: String, message: String },
}

/// Audio at 8 kHz, mono, played in a loop.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sound {
    pub samples: Vec<i16>,
}

fn tone(out: &mut Vec<i16>, freqs: &[f64], ms: u32, level: f64) {
    let n = (RATE * ms / 1000) as usize;
    let start = out.len();
    for i in 0..n {
        let t = (start + i) as f64 / f64::from(RATE);
        let v: f64 = freqs.iter().map(|f| (TAU * f * t).sin()).sum::<f64>() / freqs.len() as f64;
        // 5 ms fades so notes do not click.
        let fade = (i.min(n - 1 - i) as f64 / 40.0).min(1.0);
        out.push((v * level * fade * f64::from(i16::MAX)) as i16);
    }
}

fn silence(out: &mut Vec<i16>, ms: u32) {
    out.extend(std::iter::repeat_n(0, (RATE * ms / 1000) as usize));
}

impl Sound {
    /// Ringback as Russian and most European networks play it: 425 Hz, 1 s on, 4 s off.
    pub fn ringback() -> Sound {
        let mut s = Vec::new();
        tone(&mut s, &[425.0], 1_000, 0.3);
        silence(&mut s, 4_000);
        Sound { samples: s }
    }

    /// Music on hold when no file is configured: a slow, quiet arpeggio (C major, then
    /// A minor), so a waiting caller knows the line is alive.
    pub fn hold_music() -> Sound {
        let mut s = Vec::new();
        for chord in [[261.63, 329.63, 392.0], [220.0, 261.63, 329.63]] {
            for _ in 0..2 {
                for f in chord {
                    tone(&mut s, &[f, f * 2.0], 400, 0.2);
                }
                silence(&mut s, 200);
            }
        }
        Sound { samples: s }
    }

    /// Decodes an audio file to 8 kHz mono (channels mixed, a box filter against
    /// aliasing before taking every n-th sample).
    pub fn load(path: &Path) -> Result<Sound, SoundError> {
        let name = path.display().to_string();
        let decode_error = |message: String| SoundError::Decode {
            path: name.clone(),
            message,
        };
        let file = std::fs::File::open(path).map_err(|source| SoundError::Io {
            path: name.clone(),
            source,
        })?;
        let stream = MediaSourceStream::new(Box::new(file), Default::default());
        let mut hint = Hint::new();
        if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
            hint.with_extension(ext);
        }
        let probed = symphonia::default::get_probe()
            .format(
                &hint,
                stream,
                &FormatOptions::default(),
                &MetadataOptions::default(),
            )
            .map_err(|e| decode_error(e.to_string()))?;
        let mut format = probed.format;
        let track = format
            .default_track()
            .ok_or_else(|| decode_error("no audio track".into()))?;
        let track_id = track.id;
        let rate = track
            .codec_params
            .sample_rate
            .ok_or_else(|| decode_error("unknown sample rate".into()))?;
        let mut decoder = symphonia::default::get_codecs()
            .make(&track.codec_params, &DecoderOptions::default())
            .map_err(|e| decode_error(e.to_string()))?;
        let mut mono: Vec<f32> = Vec::new();
        while let Ok(packet) = format.next_packet() {
            if packet.track_id() != track_id {
                continue;
            }
            let decoded = match decoder.decode(&packet) {
                Ok(d) => d,
                Err(symphonia::core::errors::Error::DecodeError(_)) => continue,
                Err(e) => return Err(decode_error(e.to_string())),
            };
            let channels = decoded.spec().channels.count().max(1);
            let mut buf = SampleBuffer::<f32>::new(decoded.capacity() as u64, *decoded.spec());
            buf.copy_interleaved_ref(decoded);
            mono.extend(
                buf.samples()
                    .chunks(channels)
                    .map(|f| f.iter().sum::<f32>() / channels as f32),
            );
        }
        if mono.is_empty() {
            return Err(decode_error("no samples".into()));
        }
        Ok(Sound {
            samples: resample(&mono, rate),
        })
    }

    pub fn silence(ms: u32) -> Sound {
        let mut s = Vec::new();
        silence(&mut s, ms);
        Sound { samples: s }
    }

    /// `n` short beeps: what stands in for a number when no prompt can say it.
    pub fn beeps(n: usize) -> Sound {
        let mut s = Vec::new();
        for _ in 0..n {
            tone(&mut s, &[800.0], 150, 0.25);
            silence(&mut s, 150);
        }
        silence(&mut s, 400);
        Sound { samples: s }
    }

    pub fn concat(parts: &[&Sound]) -> Sound {
        Sound {
            samples: parts
                .iter()
                .flat_map(|p| p.samples.iter().copied())
                .collect(),
        }
    }

    pub fn duration_ms(&self) -> u64 {
        self.samples.len() as u64 * 1000 / u64::from(RATE)
    }

    /// The sample at `i` of the endless loop.
    pub fn at(&self, i: usize) -> i16 {
        self.samples[i % self.samples.len()]
    }
}

/// To 8 kHz: each output sample is the mean of the input samples its interval covers.
fn resample(input: &[f32], rate: u32) -> Vec<i16> {
    let step = f64::from(rate) / f64::from(RATE);
    let n = (input.len() as f64 / step) as usize;
    (0..n)
        .map(|i| {
            let a = (i as f64 * step) as usize;
            let b = (((i + 1) as f64 * step) as usize).clamp(a + 1, input.len());
            let mean = input[a..b].iter().sum::<f32>() / (b - a) as f32;
            (mean.clamp(-1.0, 1.0) * f32::from(i16::MAX)).round() as i16
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_sounds_have_the_expected_length_and_level() {
        let r = Sound::ringback();
        assert_eq!(r.samples.len(), 5 * 8_000);
        assert!(r.samples[..8_000].iter().any(|s| s.unsigned_abs() > 8_000));
        assert!(r.samples[8_000..].iter().all(|s| *s == 0));
        let m = Sound::hold_music();
        assert!(m.samples.iter().any(|s| *s != 0));
        assert_eq!(m.at(m.samples.len() + 3), m.samples[3], "loops");
    }

    #[test]
    fn a_wav_at_44100_hz_stereo_becomes_8_khz_mono() {
        let dir = std::env::temp_dir().join(format!("kolokol-sound-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("moh.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 44_100,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        for i in 0..44_100 {
            let v = ((TAU * 400.0 * i as f64 / 44_100.0).sin() * 16_000.0) as i16;
            w.write_sample(v).unwrap();
            w.write_sample(v).unwrap();
        }
        w.finalize().unwrap();
        let s = Sound::load(&path).unwrap();
        assert!(
            (7_990..=8_000).contains(&s.samples.len()),
            "{}",
            s.samples.len()
        );
        let peak = s.samples.iter().map(|v| v.unsigned_abs()).max().unwrap();
        assert!((14_000..17_000).contains(&peak), "level kept: {peak}");
        // 400 Hz at 8 kHz: 20 samples a period, so 800 sign changes a second.
        let crossings = s
            .samples
            .windows(2)
            .filter(|w| (w[0] < 0) != (w[1] < 0))
            .count();
        assert!((790..=810).contains(&crossings), "{crossings}");
        assert!(matches!(
            Sound::load(&dir.join("missing.ogg")),
            Err(SoundError::Io { .. })
        ));
        std::fs::write(dir.join("junk.mp3"), b"not audio at all").unwrap();
        assert!(matches!(
            Sound::load(&dir.join("junk.mp3")),
            Err(SoundError::Decode { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
